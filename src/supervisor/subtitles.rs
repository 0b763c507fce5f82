//! WebVTT segments of a title's text subtitle tracks. An embedded track's
//! cues are collected by every producer as it reads the file (its text
//! pad goes to a cue sink, no second pass); a segment whose time no
//! producer has read through yet (a viewer who turns subtitles on at a
//! place nothing was made for, or right after a seek, when the cues that
//! began before it are missing) is served from a demux-only pass over the
//! minute around it (never the whole file, and no decoding). A sidecar is
//! read whole (it is small). What is known is kept in the title, so later
//! segments and every other viewer are served from memory.

use super::outcome::SegmentOutcome;
use super::supervisor::Supervisor;
use super::title::Title;
use crate::library::{MediaItem, SubtitleSource};
use crate::pipeline::cues;
use crate::subtitle::CueTrack;
use std::sync::Arc;
use std::time::Duration;

/// Media time read before a segment, for cues that began before it and
/// are still shown (a cue longer than this that spans a boundary is
/// missed in the later segment).
const LOOKBACK: Duration = Duration::from_secs(10);

/// Media time read past a segment's start in one pass: a minute of
/// viewing per pass (the demux-only pass runs hundreds of times faster
/// than real time).
const READ_AHEAD: Duration = Duration::from_secs(60);

/// Reads cues of subtitle track `track` of `item` covering `[from, to)`.
fn read(
    item: &MediaItem,
    track: usize,
    from: Duration,
    to: Option<Duration>,
    timeout: Duration,
) -> Result<CueTrack, String> {
    let s = item
        .subtitles
        .get(track)
        .ok_or_else(|| format!("no subtitle track {track}"))?;
    match &s.source {
        SubtitleSource::Sidecar { path, .. } => cues::read_sidecar(path, timeout),
        SubtitleSource::Embedded { stream_id } => {
            cues::read_embedded(&item.abs_path, stream_id.as_deref(), from, to, timeout)
        }
    }
}

/// Every cue of subtitle track `track` of `item` (a sidecar file, or an
/// embedded track read by a demux-only pass over the whole file), for a
/// `<track>` element beside a direct play.
///
/// # Errors
/// The track cannot be read within `timeout`.
async fn whole_file_cues(
    item: Arc<MediaItem>,
    track: usize,
    timeout: Duration,
) -> Result<CueTrack, String> {
    tokio::task::spawn_blocking(move || read(&item, track, Duration::ZERO, None, timeout))
        .await
        .map_err(|e| format!("reading subtitles failed: {e}"))?
}

impl Supervisor {
    /// Every cue of subtitle track `track` of `item`, read in one pass of
    /// its own (within `--index-timeout`), for a whole-file WebVTT.
    ///
    /// # Errors
    /// The track cannot be read in time.
    pub async fn whole_file_cues(
        &self,
        item: Arc<MediaItem>,
        track: usize,
    ) -> Result<CueTrack, String> {
        whole_file_cues(item, track, *self.settings.index_timeout).await
    }

    /// The WebVTT text of segment `n` of subtitle rendition `sub` of
    /// `title`, reading the cues it needs if they are not known yet.
    ///
    /// # Errors
    /// [`SegmentOutcome::Missing`] outside the timeline,
    /// [`SegmentOutcome::NotYet`] while the timeline is being built,
    /// [`SegmentOutcome::Failed`] when the track cannot be read.
    pub async fn subtitle_segment(
        &self,
        title: &Arc<Title>,
        sub: usize,
        n: usize,
        wait: Duration,
    ) -> Result<String, SegmentOutcome> {
        let timeline = match title.wait_timeline(wait).await {
            Some(Ok(t)) => t,
            Some(Err(e)) => return Err(SegmentOutcome::Failed(e)),
            None => {
                return Err(SegmentOutcome::NotYet(
                    "the file's key frames are being read".into(),
                ))
            }
        };
        if !timeline.contains(n) {
            return Err(if timeline.known_until().is_some() {
                SegmentOutcome::NotYet("the file's key frames are still being read".into())
            } else {
                SegmentOutcome::Missing
            });
        }
        let start = timeline.start(n);
        let end = timeline.end(n).unwrap_or(start + READ_AHEAD);
        let from = start.saturating_sub(LOOKBACK);
        let (Some(rendition), Some(gate)) = (title.subtitles.get(sub), title.cues.reads.get(sub))
        else {
            return Err(SegmentOutcome::Missing);
        };
        // Collected by a producer that read this part of the file?
        if let Some(text) = title.cues.segment(sub, from, start, end) {
            return Ok(text);
        }
        let _reading = gate.lock().await;
        if let Some(text) = title.cues.segment(sub, from, start, end) {
            return Ok(text);
        }
        let item = title.item.clone();
        let index = rendition.track;
        let source = match item.subtitles.get(index).map(|s| &s.source) {
            Some(SubtitleSource::Sidecar { .. }) => "sidecar",
            _ => "embedded",
        };
        self.stats.subtitle_read(source);
        let to = Some(end.max(start + READ_AHEAD));
        let timeout = *self.settings.index_timeout;
        let started = std::time::Instant::now();
        let read = tokio::task::spawn_blocking(move || read(&item, index, from, to, timeout))
            .await
            .map_err(|e| format!("reading subtitles failed: {e}"))
            .and_then(|r| r);
        match read {
            Ok(more) => {
                tracing::debug!(
                    media_id = %title.item.id,
                    track = index,
                    from_s = from.as_secs_f64(),
                    cues = more.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "subtitle cues read"
                );
                title.cues.merge(sub, more);
            }
            Err(e) => {
                tracing::warn!(media_id = %title.item.id, track = index, error = %e, "cannot read subtitles");
                return Err(SegmentOutcome::Failed(format!(
                    "subtitle track {index} cannot be read: {e}"
                )));
            }
        }
        title
            .cues
            .segment(sub, Duration::ZERO, start, end)
            .ok_or(SegmentOutcome::Missing)
    }
}
