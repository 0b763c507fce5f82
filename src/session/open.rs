//! Opening a viewer session: the use case behind `GET /api/v1/stream/{id}`,
//! `POST /api/v1/hls/start`, the preload, a master playlist's signed URL
//! opened on any node, and a playback token whose session timed out.
//!
//! A [`PlayRequest`] (the tracks, the start and the client's profile, with
//! its bit-rate limit) is resolved against the item's decision for that
//! profile: the title of that decision's presentation (one whose lowest
//! rung is lowered when no rung fits the limit), the video variants that
//! fit, and of each audio track the rendition the client plays (a copy
//! where it plays the codec and, under a limit, where it fits; else an
//! AAC encode).

use super::session::{Opening, Session};
use super::sessions::Sessions;
use crate::library::decision::audio_copied;
use crate::library::{Decision, MediaItem, Playback};
use crate::packaging::Packaging;
use crate::profile::ClientProfile;
use crate::rendition::{
    audio_options, choose, floor_for, richest, video_options, Choice, Presentation, Rendition,
    TrackRef,
};
use crate::supervisor::{AtCapacity, Title};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The latest `start` taken, in seconds (11.6 days): an item whose length
/// is not known is not checked against its end.
pub const MAX_START_S: f64 = 1_000_000.0;

/// What a client asks to play: tracks (by index or language), an image
/// subtitle track to burn in, where to start, and its profile.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayRequest {
    /// Preferred audio track; `None`: the item's default.
    pub audio: Option<TrackRef>,
    /// Preferred subtitle track, or [`TrackRef::Off`]; `None`: the track
    /// the file marks default, if any.
    pub subtitle: Option<TrackRef>,
    /// An image subtitle track (its index) burned into the video.
    pub burn: Option<usize>,
    /// Where to start, in seconds from 0 to [`MAX_START_S`] (a resume).
    pub start_s: Option<f64>,
    /// The client's profile: what it plays as it is.
    pub profile: ClientProfile,
}

impl Default for PlayRequest {
    /// The defaults: the item's default tracks, from the start, for the
    /// `generic` profile.
    fn default() -> Self {
        PlayRequest {
            audio: None,
            subtitle: None,
            burn: None,
            start_s: None,
            profile: ClientProfile::generic(),
        }
    }
}

impl PlayRequest {
    /// The query that asks for the same tracks, start and profile
    /// (`audio=fr&start=95&profile=safari`; empty for the defaults): what a
    /// session's master URL carries so that any node can open the session
    /// again as it was asked for.
    pub fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        let track = |t: &TrackRef| match t {
            TrackRef::Index(i) => i.to_string(),
            TrackRef::Language(l) => l.clone(),
            TrackRef::Off => "off".to_string(),
        };
        if let Some(a) = &self.audio {
            q.append_pair("audio", &track(a));
        }
        if let Some(s) = &self.subtitle {
            q.append_pair("subtitle", &track(s));
        }
        if let Some(b) = self.burn {
            q.append_pair("burn", &b.to_string());
        }
        if let Some(s) = self.start_s {
            q.append_pair("start", &s.to_string());
        }
        if self.profile != ClientProfile::generic() {
            q.append_pair("profile", &self.profile.to_request());
        }
        q.finish()
    }
}

/// Why a session could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenError {
    /// A track the item does not have, a start past its end: the client's
    /// mistake.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing in the item can be played.
    #[error("{0}")]
    Unplayable(String),
    /// The timeline a start needs is not known yet: try again soon.
    #[error("{0}")]
    NotReady(String),
    /// The item's key frames cannot be read.
    #[error("{0}")]
    Failed(String),
    /// A new producer or session would pass a cap.
    #[error(transparent)]
    AtCapacity(#[from] AtCapacity),
}

/// The HLS mode of `decision` (made for `item`): its own, or remux or
/// transcode for a direct-play file that is asked for as HLS.
///
/// # Errors
/// [`OpenError::Unplayable`] with the decision's reasons.
pub fn hls_playback(item: &MediaItem, decision: &Decision) -> Result<Playback, OpenError> {
    match decision.playback {
        None => Err(OpenError::Unplayable(format!(
            "{} cannot be played: {}",
            item.path,
            decision.reasons.join(", ")
        ))),
        Some(Playback::DirectPlay) => Ok(decision.hls_mode()),
        Some(mode) => Ok(mode),
    }
}

impl Sessions {
    /// Opens (or finds) `user`'s session of `item` playing what `request`
    /// asks for. Burned-in subtitles are MPEG-TS only: with `burn`, a
    /// client that takes fMP4 gets the decision it would get without it.
    /// With a start, the session starts at the segment holding that time
    /// (its first producer is started there) once the title's timeline is
    /// known (waiting up to `timeline_wait`), and its media playlists say
    /// where to start (`EXT-X-START`). A `preload` session makes only its
    /// first segments until played. With `id`, a new session takes that id
    /// (one a signed URL names, opened again on this node).
    ///
    /// # Errors
    /// [`OpenError::BadRequest`] for a track the item does not have or a
    /// start past its end, [`OpenError::Unplayable`],
    /// [`OpenError::AtCapacity`], [`OpenError::NotReady`] when the
    /// timeline a start needs is not known within `timeline_wait`,
    /// [`OpenError::Failed`] when it cannot be had.
    pub async fn open(
        &self,
        item: Arc<MediaItem>,
        user: &str,
        request: &PlayRequest,
        opening: OpenAs,
        timeline_wait: Duration,
    ) -> Result<Arc<Session>, OpenError> {
        let mut profile = request.profile.clone();
        let mut decision = item.decision_for(&profile);
        if request.burn.is_some() && decision.packaging == Packaging::Fmp4 {
            profile.fmp4 = false;
            decision = item.decision_for(&profile);
        }
        let mut mode = hls_playback(&item, &decision)?;
        let mut presentation = Presentation::of(&decision);
        let limited = profile.max_bitrate_bps.is_some();
        // A limit is held against what the master will declare, which
        // the title's cut list decides: wait for it (as a start does).
        if limited {
            let title = self.supervisor().title(item.clone(), presentation);
            let _ = title.wait_timeline(timeline_wait).await;
        }
        let (mut title, mut choice, declared) =
            self.choose_in(&item, &profile, presentation, request)?;
        // No rung fits the client's limit: its lowest, with a lower cap.
        if let Some(floor) = floor_for(&declared, &choice, profile.max_bitrate_bps) {
            presentation.floor_kbps = Some(floor);
            let floored = self.supervisor().title(item.clone(), presentation);
            let _ = floored.wait_timeline(timeline_wait).await;
            (title, choice, _) = self.choose_in(&item, &profile, presentation, request)?;
        }
        choice.dolby_vision = item
            .video
            .as_ref()
            .is_some_and(|v| profile.shows_dolby_vision(&v.codec));
        if choice
            .video
            .is_some_and(|v| !title.renditions[v].plan.is_copy())
        {
            mode = Playback::Transcode;
        }
        let start = match request.start_s.filter(|s| *s > 0.0) {
            None => None,
            Some(s) => {
                if item.duration_s.is_some_and(|d| s >= d) {
                    return Err(OpenError::BadRequest(format!(
                        "start {s} s is past the end of {} ({:?} s)",
                        item.path, item.duration_s
                    )));
                }
                let timeline = match title.wait_timeline(timeline_wait).await {
                    Some(Ok(t)) => t,
                    Some(Err(e)) => return Err(OpenError::Failed(e)),
                    None => {
                        return Err(OpenError::NotReady(
                            "the file's key frames are being read".into(),
                        ))
                    }
                };
                let at = Duration::try_from_secs_f64(s).map_err(|_| {
                    OpenError::BadRequest(format!("start {s} s is not a time in this item"))
                })?;
                Some((timeline.index_at(at), at))
            }
        };
        let (session, _) = self.start(
            title,
            mode,
            Opening {
                id: opening.id.unwrap_or_else(Uuid::new_v4),
                user: user.to_string(),
                choice,
                start,
                preload: opening.preload,
                request: request.query(),
            },
        )?;
        Ok(session)
    }

    /// The title of `item` in `presentation`, what a client with
    /// `profile` asking for `request` plays of it, and its renditions with
    /// the `BANDWIDTH` its master declares ([`Title::declared_bps`]), which
    /// a limit is held against.
    ///
    /// # Errors
    /// [`OpenError::BadRequest`] for a track the item does not have.
    fn choose_in(
        &self,
        item: &Arc<MediaItem>,
        profile: &ClientProfile,
        presentation: Presentation,
        request: &PlayRequest,
    ) -> Result<(Arc<Title>, Choice, Vec<Rendition>), OpenError> {
        let title = self.supervisor().title(item.clone(), presentation);
        // The renditions with the BANDWIDTH the master declares.
        let declared: Vec<Rendition> = (0..title.renditions.len())
            .map(|i| Rendition {
                bandwidth_bps: title.declared_bps(i).0,
                ..title.renditions[i].clone()
            })
            .collect();
        let options = audio_options(
            &declared,
            |track| {
                item.audio.get(track).is_some_and(|a| {
                    audio_copied(
                        profile,
                        item.container.as_deref().unwrap_or("unknown"),
                        a,
                        presentation.packaging,
                    )
                })
            },
            profile.max_bitrate_bps,
        );
        let choice = choose(
            &declared,
            &title.subtitles,
            request.audio.as_ref(),
            request.subtitle.as_ref(),
            request.burn,
            options,
            video_options(
                &declared,
                options,
                profile.max_height,
                profile.max_bitrate_bps,
            ),
        )
        .map_err(OpenError::BadRequest)?;
        let mut choice = choice;
        // A client held to a limit starts on the richest variant that
        // fits it: all of them do.
        if profile.max_bitrate_bps.is_some() && request.burn.is_none() {
            choice.video = richest(&declared, &choice).or(choice.video);
        }
        Ok((title, choice, declared))
    }

    /// The session `id` of `user` for `item` as a playback token names
    /// it, for a request of rendition `rendition`: the live one, or the
    /// user's current session for the item, or one made again with that
    /// id (it timed out while its player was paused). A session made
    /// again plays the presentation `rendition` belongs to: the one a
    /// video rendition's name says ([`Presentation::of_video_name`]: a
    /// copy's cuts, a lowered cap, fMP4), fMP4 copies for another `-cmaf`
    /// name, else the `generic` decision's, with the default tracks (the
    /// token does not say which were chosen).
    ///
    /// # Errors
    /// [`OpenError::Unplayable`]; [`OpenError::AtCapacity`] as for
    /// [`Sessions::start`].
    pub fn for_token(
        &self,
        id: Uuid,
        item: Arc<MediaItem>,
        user: &str,
        rendition: &str,
    ) -> Result<Arc<Session>, OpenError> {
        if let Some(s) = self.get(&id, user).filter(|s| s.media_id == item.id) {
            return Ok(s);
        }
        let mode = hls_playback(&item, &item.decision)?;
        // A video rendition's name says its presentation (when it cuts
        // the video as the item's own decision does, or is fMP4's); an
        // audio or subtitle one's only its packaging.
        let decided = Presentation::of(&item.decision);
        let named = Presentation::of_video_name(rendition)
            .filter(|p| p.copy_video == decided.copy_video || p.packaging == Packaging::Fmp4);
        let presentation = match named {
            Some(p) => p,
            None if rendition.ends_with("-cmaf") => Presentation {
                packaging: Packaging::Fmp4,
                copy_video: item.video.is_some(),
                floor_kbps: None,
            },
            None => decided,
        };
        Ok(self.resume(id, item, mode, presentation, user)?)
    }
}

/// How a session is opened, besides what the client asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenAs {
    /// Started by a preload: it makes only its first segments until a
    /// later open (not a preload) plays it.
    pub preload: bool,
    /// The id a new session takes (one a signed URL names); `None`: a new
    /// random one.
    pub id: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reopens_from_its_query() {
        assert_eq!(PlayRequest::default().query(), "");
        let r = PlayRequest {
            audio: Some(TrackRef::Language("fr".into())),
            subtitle: Some(TrackRef::Off),
            burn: Some(2),
            start_s: Some(95.5),
            profile: ClientProfile::generic(),
        };
        assert_eq!(r.query(), "audio=fr&subtitle=off&burn=2&start=95.5");
    }
}
