//! A session's playlists: the master playlist a new player fetches, and
//! the media playlists of its title's renditions (every rendition shares
//! the title's timeline). The text itself is [`crate::hls`]'s; this
//! module decides what is listed and when it can be.

use super::session::Session;
use crate::hls::{self, Listed, ListedImages, ListedSubtitles, PlaylistType, SegmentFormat};
use crate::rendition::Plan;
use crate::supervisor::TimelineState;
use crate::thumbnails::Layout;
use std::time::Duration;

/// Why a playlist cannot be given now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlaylistError {
    /// The session's title failed; the message is plain.
    #[error("{0}")]
    Failed(String),
    /// Not yet (the key frames are being read, no segment is made): try
    /// again soon.
    #[error("{0}")]
    NotReady(String),
}

/// The file name of a rendition's media playlist.
pub const MEDIA_PLAYLIST: &str = "playlist.m3u8";
/// The file name of a video rendition's I-frame playlist.
pub const IFRAME_PLAYLIST: &str = "iframes.m3u8";
/// Where a title's thumbnails are, beside its renditions.
pub const THUMBNAILS: &str = "thumbs";
/// The file name of the thumbnail sheets' image playlist.
pub const IMAGE_PLAYLIST: &str = "images.m3u8";
/// The file name of the WebVTT thumbnails track.
pub const THUMBNAILS_VTT: &str = "thumbnails.vtt";

/// Segments a rendition must have made before its measured mean bit rate
/// replaces the estimate in `AVERAGE-BANDWIDTH`.
const MEASURED_AFTER_SEGMENTS: usize = 3;

impl Session {
    /// Why it cannot play, if it cannot: its title's failure, or a
    /// timeline that cannot be had.
    pub fn failure(&self) -> Option<String> {
        self.title.failure().or(match self.title.timeline_state() {
            TimelineState::Failed(e) => Some(e),
            _ => None,
        })
    }

    /// A new player of this session, for one fetch of its master
    /// playlist: it gets a number of its own (its playback token names
    /// it) and a playhead at the session's start; the session's
    /// placeholder player 0 gives its place to it.
    ///
    /// # Errors
    /// [`PlaylistError::Failed`] when the session cannot play.
    pub fn join(&self) -> Result<u32, PlaylistError> {
        self.touch();
        if let Some(e) = self.failure() {
            return Err(PlaylistError::Failed(e));
        }
        let player = self.new_player();
        self.title.touch(
            (self.id, player),
            self.start,
            self.is_preload(),
            self.renditions,
        );
        self.title.remove_player((self.id, 0));
        Ok(player)
    }

    /// Waits (at most `wait`) until its master playlist says what its
    /// variants weigh: a copy's key frames are indexed. At once for a
    /// title that copies no video.
    pub async fn master_ready(&self, wait: Duration) {
        let copies = self
            .title
            .renditions
            .iter()
            .any(|r| r.plan == Plan::VideoCopy);
        if copies {
            let _ = self.title.wait_timeline(wait).await;
        }
    }

    /// The master playlist: the video variants the session offers (the
    /// rung a player starts on first, then the others, richest first;
    /// beside the original, only rungs that declare less than it),
    /// each video variant's I-frame playlist, the audio renditions and
    /// the WebVTT renditions, each playlist's URI `uri(rendition name,
    /// playlist file name)`; the image playlist of the title's
    /// `thumbnails` sheets when there are some. `AVERAGE-BANDWIDTH` is a
    /// rendition's measured mean once it has made a few segments.
    pub fn master_playlist(
        &self,
        uri: impl Fn(&str, &str) -> String,
        thumbnails: Option<Layout>,
    ) -> String {
        let title = &self.title;
        let choice = self.choice;
        let mut rungs: Vec<usize> = (0..title.renditions.len())
            .filter(|i| {
                title.renditions[*i].plan.is_video()
                    && (choice.video_options.contains(*i) || choice.video == Some(*i))
            })
            .collect();
        rungs.sort_by_key(|i| {
            (
                choice.video != Some(*i),
                std::cmp::Reverse(title.renditions[*i].bandwidth_bps),
            )
        });
        let estimate = |i: usize| title.declared_bps(i);
        // Beside the original, a rung that declares as much as it offers
        // no way down (a short cut list's VBV bound can): left out.
        let copy = rungs
            .iter()
            .find(|i| title.renditions[**i].plan == Plan::VideoCopy)
            .map(|i| estimate(*i).0);
        if let Some(copy_bps) = copy {
            rungs.retain(|i| {
                title.renditions[*i].plan == Plan::VideoCopy
                    || choice.video == Some(*i)
                    || estimate(*i).0 < copy_bps
            });
        }
        let audio: Vec<usize> = (0..title.renditions.len())
            .filter(|i| !title.renditions[*i].plan.is_video() && choice.audio_options.contains(*i))
            .collect();
        let uris: Vec<String> = rungs
            .iter()
            .chain(&audio)
            .map(|i| uri(&title.renditions[*i].name, MEDIA_PLAYLIST))
            .collect();
        let iframe_uris: Vec<String> = rungs
            .iter()
            .map(|i| uri(&title.renditions[*i].name, IFRAME_PLAYLIST))
            .collect();
        let average = |i: usize| {
            title
                .store()
                .measured_bps(
                    &title.key,
                    &title.segment_key(i, 0).rendition,
                    MEASURED_AFTER_SEGMENTS,
                )
                .unwrap_or(estimate(i).1)
        };
        let mut video: Vec<Listed<'_>> = rungs
            .iter()
            .chain(&audio)
            .zip(&uris)
            .map(|(i, u)| Listed {
                rendition: &title.renditions[*i],
                uri: u,
                default: choice.video == Some(*i) || choice.audio == Some(*i),
                average_bps: average(*i),
                bandwidth_bps: estimate(*i).0,
                iframes_uri: None,
                video_range: None,
                supplemental_codecs: None,
            })
            .collect();
        // An HDR source: its copy says the source's range, its encodes
        // SDR (they are tone-mapped); an SDR title says none.
        let hdr = title
            .item
            .video
            .as_ref()
            .and_then(|v| v.hdr.as_ref())
            .map(|h| h.transfer.video_range());
        let range_of = |i: usize| match title.renditions[i].plan {
            Plan::VideoCopy => hdr,
            Plan::VideoEncode {
                tonemap: Some(_), ..
            } => hdr.map(|_| "SDR"),
            _ => None,
        };
        // A copied Dolby Vision stream, to a client that shows it: named
        // beside its base layer's codec.
        let dolby_vision = title
            .item
            .video
            .as_ref()
            .and_then(|v| v.hdr.as_ref())
            .filter(|_| choice.dolby_vision)
            .and_then(|h| {
                h.dolby_vision?
                    .supplemental_codecs(h.transfer == crate::library::colour::HdrTransfer::Hlg)
            });
        for ((listed, u), i) in video.iter_mut().zip(&iframe_uris).zip(&rungs) {
            listed.iframes_uri = Some(u);
            listed.video_range = range_of(*i);
            if title.renditions[*i].plan == Plan::VideoCopy {
                listed.supplemental_codecs = dolby_vision.as_deref();
            }
        }
        let audio = video.split_off(rungs.len());
        let subtitle_uris: Vec<String> = title
            .subtitles
            .iter()
            .map(|s| uri(&s.name, MEDIA_PLAYLIST))
            .collect();
        let subtitles: Vec<ListedSubtitles<'_>> = title
            .subtitles
            .iter()
            .zip(&subtitle_uris)
            .enumerate()
            .map(|(i, (rendition, uri))| ListedSubtitles {
                rendition,
                uri,
                default: choice.subtitle == Some(i),
            })
            .collect();
        let images_uri = uri(THUMBNAILS, IMAGE_PLAYLIST);
        let images = thumbnails.map(|layout| ListedImages {
            uri: &images_uri,
            tile: layout.tile,
            bandwidth_bps: layout.bandwidth_bps(),
        });
        hls::master_playlist(&video, &audio, &subtitles, images)
    }

    /// A media playlist of its title in `format`, every segment URI
    /// followed by `query` (`?token=...`): VOD when the timeline's end
    /// was known at its first request (every file whose duration can be
    /// believed, and every copy with a key-frame index), else an EVENT
    /// playlist of the segments made (waiting up to `wait` for the
    /// first).
    ///
    /// # Errors
    /// [`PlaylistError::NotReady`] when the key frames or the first
    /// segment do not come within `wait`; [`PlaylistError::Failed`].
    pub async fn media_playlist(
        &self,
        format: SegmentFormat,
        query: &str,
        wait: Duration,
    ) -> Result<String, PlaylistError> {
        let title = &self.title;
        let timeline = match title.wait_timeline(wait).await {
            Some(Ok(t)) => t,
            Some(Err(e)) => return Err(PlaylistError::Failed(e)),
            None => {
                return Err(PlaylistError::NotReady(
                    "the file's key frames are being read".into(),
                ))
            }
        };
        if let Some(e) = self.failure() {
            return Err(PlaylistError::Failed(e));
        }
        if title.playlist_type() == PlaylistType::Vod {
            return Ok(hls::vod_playlist(
                &timeline.durations(),
                query,
                format,
                self.start_at,
            ));
        }
        // The end was not known: list what is made, from the start, with
        // the lengths of the first rendition (every rendition shares its
        // cuts).
        let mut changes = title.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let now = title.timeline();
            let closed = now.as_ref().is_some_and(|t| t.is_closed());
            // Key-frame cuts being found: every segment whose end is
            // known; a grid whose end is not: the segments made.
            let made = match now {
                Some(t) if t.has_cuts() => t.known_durations(),
                _ => title.made_prefix(),
            };
            if !made.is_empty() || closed {
                return Ok(hls::event_playlist(
                    &made,
                    closed,
                    query,
                    format,
                    self.start_at,
                ));
            }
            if let Some(e) = title.failure() {
                return Err(PlaylistError::Failed(e));
            }
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(PlaylistError::NotReady(
                        "the first segment is not ready yet".into(),
                    ))
                }
            }
        }
    }
}
