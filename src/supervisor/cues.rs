//! The cues a title's text subtitle renditions have so far: collected by
//! the producers as they read the file, or by a read of their own
//! ([`super::subtitles`]), with the media time each is complete for.

use crate::subtitle::{self, Cue, CueTrack};
use std::sync::Mutex;
use std::time::Duration;

/// One [`CueTrack`] per subtitle rendition of a title.
pub struct TitleCues {
    tracks: Vec<Mutex<CueTrack>>,
    /// Held while a read of a track's cues runs, so one read serves every
    /// request that needs it.
    pub(super) reads: Vec<tokio::sync::Mutex<()>>,
}

impl TitleCues {
    /// Empty tracks for `n` subtitle renditions.
    pub fn new(n: usize) -> Self {
        TitleCues {
            tracks: (0..n).map(|_| Default::default()).collect(),
            reads: (0..n).map(|_| Default::default()).collect(),
        }
    }

    /// Adds a cue of subtitle rendition `sub`.
    pub fn add(&self, sub: usize, cue: Cue) {
        if let Some(t) = self.tracks.get(sub) {
            t.lock().expect("cues").add(cue);
        }
    }

    /// Adds what a read of subtitle rendition `sub` found.
    pub fn merge(&self, sub: usize, read: CueTrack) {
        if let Some(t) = self.tracks.get(sub) {
            t.lock().expect("cues").merge(read);
        }
    }

    /// Records that every cue of subtitle rendition `sub` starting in
    /// `[from, to)` is known.
    pub fn cover(&self, sub: usize, from: Duration, to: Duration) {
        if let Some(t) = self.tracks.get(sub) {
            t.lock().expect("cues").cover(from, to);
        }
    }

    /// The WebVTT segment of subtitle rendition `sub` for `[from, to)`,
    /// if every cue that starts in `[known_from, to)` is known.
    pub fn segment(
        &self,
        sub: usize,
        known_from: Duration,
        from: Duration,
        to: Duration,
    ) -> Option<String> {
        let t = self.tracks.get(sub)?.lock().expect("cues");
        t.covers(known_from, to)
            .then(|| subtitle::segment(&t.during(from, to)))
    }
}
