//! The segment timeline of a media item: where each segment starts and
//! ends in media time, and how segment files are named.
//!
//! Pure data and arithmetic, no GStreamer and no HTTP: everyone imports it
//! (playlists, the store, pipelines, producers) and it imports nothing of
//! hlsd's.
//!
//! Every rendition of an item shares one timeline, so segment `n` of its
//! video and segment `n` of its audio cover the same media time, whichever
//! producer made them. A timeline is one of two kinds:
//!
//! - **a fixed grid** for items whose cuts are encoded by hlsd (transcoded
//!   video, or no video): segment 0 covers `[0, first)`, segment `n ≥ 1`
//!   covers `[first + (n-1)·6 s, first + n·6 s)`; with the default `first`
//!   of 6 s, segment `n` is `[6n, 6n+6)`.
//! - **key-frame cuts** for items whose video is copied: each cut is the
//!   first key frame at or after a boundary of that same grid, so the
//!   playlist is exact before any segment exists (Jellyfin reads Matroska
//!   Cues for the same purpose).
//!
//! A timeline whose end is not known (a duration the file cannot back)
//! is *open*: its segments are listed as producers make them, in a growing
//! (EVENT) playlist, until the end is found.

use crate::packaging::Packaging;
use std::sync::Arc;
use std::time::Duration;

/// Segment length in seconds. Six seconds is Apple's recommendation (HLS
/// Authoring Specification) and what mydia and Jellyfin use.
pub const SEGMENT_SECONDS: u32 = 6;

/// A tail shorter than this is folded into the segment before it rather
/// than given a slot of its own: container durations run past the last
/// frame (seen: 600.57 s for 600.0 s of frames in an AVI with MP3 audio),
/// and a slot past the last frame would never get a segment.
pub const MIN_TAIL: Duration = Duration::from_secs(1);

/// A key frame this close before a boundary counts as on it: demuxers
/// round timestamps to their own clock (milliseconds in Matroska).
const CUT_SLACK: Duration = Duration::from_micros(500);

/// The segment file name for an index: `segment_00042.ts`.
pub fn segment_name(index: usize) -> String {
    format!("segment_{index:05}.ts")
}

/// The index in `segment_NNNNN.ts`, or `None` for any other name (which
/// also keeps hostile paths out: only these names are ever opened).
pub fn segment_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("segment_")?.strip_suffix(".ts")?;
    parse_index(digits)
}

/// The name of fragmented-MP4 segment `index`: `segment_00042.m4s`.
pub fn fmp4_segment_name(index: usize) -> String {
    format!("segment_{index:05}.m4s")
}

/// The index in `segment_NNNNN.m4s`, or `None` for any other name.
pub fn fmp4_segment_index(name: &str) -> Option<usize> {
    parse_index(name.strip_prefix("segment_")?.strip_suffix(".m4s")?)
}

/// The name of segment `index`'s I-frame (the resource an I-frame
/// playlist lists): `iframe_00042.ts`, or `.m4s` in fMP4.
pub fn iframe_name(index: usize, packaging: Packaging) -> String {
    format!("iframe_{index:05}.{}", iframe_extension(packaging))
}

/// The index in `iframe_NNNNN.ts` (`.m4s` in fMP4), or `None` for any
/// other name.
pub fn iframe_index(name: &str, packaging: Packaging) -> Option<usize> {
    let rest = name.strip_prefix("iframe_")?;
    parse_index(
        rest.strip_suffix(iframe_extension(packaging))?
            .strip_suffix('.')?,
    )
}

fn iframe_extension(packaging: Packaging) -> &'static str {
    match packaging {
        Packaging::Ts => "ts",
        Packaging::Fmp4 => "m4s",
    }
}

/// The name of a fragmented-MP4 rendition's init segment (`EXT-X-MAP`).
pub const INIT_SEGMENT_NAME: &str = "init.mp4";

/// The name of WebVTT segment `index`: `segment_00042.vtt`.
pub fn subtitle_segment_name(index: usize) -> String {
    format!("segment_{index:05}.vtt")
}

/// The index in `segment_NNNNN.vtt`, or `None` for any other name.
pub fn subtitle_segment_index(name: &str) -> Option<usize> {
    parse_index(name.strip_prefix("segment_")?.strip_suffix(".vtt")?)
}

fn parse_index(digits: &str) -> Option<usize> {
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What a copy's segments weigh, in bits per second, before any is made
/// ([`Timeline::bit_rates`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitRates {
    /// The largest segment's bytes over its length (RFC 8216 §4.3.4.2
    /// `BANDWIDTH`).
    pub peak_bps: u64,
    /// Every segment's bytes over the whole length (`AVERAGE-BANDWIDTH`).
    pub average_bps: u64,
}

/// Where the segments of one media item start and end, in media time.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    starts: Starts,
    /// Number of segments; `None` while the end is not known.
    len: Option<usize>,
    /// The media end, when known.
    end: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
enum Starts {
    /// Fixed steps of [`SEGMENT_SECONDS`] after a first segment of `first`.
    Grid { first: Duration },
    /// Explicit segment starts (the first is zero), ascending.
    Cuts(Arc<[Duration]>),
}

fn step() -> Duration {
    Duration::from_secs(SEGMENT_SECONDS.into())
}

/// Start of grid slot `n` for a first segment of `first`.
fn grid_start(first: Duration, n: usize) -> Duration {
    match n {
        0 => Duration::ZERO,
        n => first + step() * (n as u32 - 1),
    }
}

/// The grid slot holding media time `t` for a first segment of `first`.
fn grid_index(first: Duration, t: Duration) -> usize {
    if t < first {
        return 0;
    }
    1 + ((t - first).as_nanos() / step().as_nanos()) as usize
}

impl Timeline {
    /// A fixed grid whose first segment lasts `first` (clamped to 0.1–6 s),
    /// over `duration`; `None` for an open grid (end not known). A zero
    /// duration is treated as unknown.
    pub fn grid(first: Duration, duration: Option<Duration>) -> Timeline {
        let first = first.clamp(Duration::from_millis(100), step());
        let Some(duration) = duration.filter(|d| !d.is_zero()) else {
            return Timeline {
                starts: Starts::Grid { first },
                len: None,
                end: None,
            };
        };
        let mut len = if duration <= first {
            1
        } else {
            1 + (duration - first).as_nanos().div_ceil(step().as_nanos()) as usize
        };
        if len > 1 && duration - grid_start(first, len - 1) < MIN_TAIL {
            len -= 1;
        }
        Timeline {
            starts: Starts::Grid { first },
            len: Some(len),
            end: Some(duration),
        }
    }

    /// Cuts at the key frames of copied video: segment 0 starts at zero,
    /// and each later segment at the first key frame at or after a
    /// boundary of the grid of [`Timeline::grid`] with first segment
    /// `first`. `keyframes` are presentation times, ascending; `end` is the
    /// media end when known (cuts less than [`MIN_TAIL`] before it are
    /// dropped). The first key frame opens segment 0 whatever its time, so
    /// no segment is ever empty.
    pub fn cuts(keyframes: &[Duration], end: Option<Duration>, first: Duration) -> Timeline {
        let first = first.clamp(Duration::from_millis(100), step());
        let mut starts = vec![Duration::ZERO];
        let mut keys = keyframes.iter().copied().skip(1).peekable();
        let mut n = 1;
        while let Some(&k) = keys.peek() {
            let boundary = grid_start(first, n);
            if k + CUT_SLACK < boundary {
                keys.next();
                continue;
            }
            starts.push(k);
            keys.next();
            // The next boundary is the first one after this cut.
            n = grid_index(first, k + CUT_SLACK) + 1;
        }
        if let Some(end) = end {
            while starts.len() > 1 && starts.last().is_some_and(|s| *s + MIN_TAIL > end) {
                starts.pop();
            }
        }
        let len = end.map(|_| starts.len());
        Timeline {
            starts: Starts::Cuts(starts.into()),
            len,
            end,
        }
    }

    /// Number of segments, or `None` while the end is not known.
    pub fn len(&self) -> Option<usize> {
        self.len
    }

    /// Whether it is known to hold no segment (never: a closed timeline has
    /// at least one).
    pub fn is_empty(&self) -> bool {
        self.len == Some(0)
    }

    /// The media end, when known.
    pub fn end_time(&self) -> Option<Duration> {
        self.end
    }

    /// Whether the end is known (a VOD playlist can be written).
    pub fn is_closed(&self) -> bool {
        self.len.is_some()
    }

    /// Whether its cuts follow key frames (copied video) rather than a grid.
    pub fn has_cuts(&self) -> bool {
        matches!(self.starts, Starts::Cuts(_))
    }

    /// The lengths of the segments whose end is known, from segment 0: all
    /// of them for a closed timeline; for open key-frame cuts (found while
    /// a file is read), all but the last; none for an open grid.
    pub fn known_durations(&self) -> Vec<Duration> {
        match (self.len, &self.starts) {
            (Some(_), _) => self.durations(),
            (None, Starts::Grid { .. }) => Vec::new(),
            (None, Starts::Cuts(c)) => (0..c.len().saturating_sub(1))
                .filter_map(|n| self.segment_duration(n))
                .collect(),
        }
    }

    /// How far a producer may go on open key-frame cuts: the last cut
    /// known (the segment it opens cannot be closed before the next one is
    /// found). `None` when every cut is known, or on a grid.
    pub fn known_until(&self) -> Option<Duration> {
        match (self.len, &self.starts) {
            (None, Starts::Cuts(c)) => Some(c.last().copied().unwrap_or_default()),
            _ => None,
        }
    }

    /// Whether segment `n` may exist: within the known length, or anywhere
    /// on an open grid, or among the known cuts of open cuts.
    pub fn contains(&self, n: usize) -> bool {
        match (self.len, &self.starts) {
            (Some(len), _) => n < len,
            (None, Starts::Grid { .. }) => true,
            (None, Starts::Cuts(c)) => n < c.len(),
        }
    }

    /// Media time at which segment `n` starts. Past the known cuts of an
    /// open key-frame timeline, the last known cut.
    pub fn start(&self, n: usize) -> Duration {
        match &self.starts {
            Starts::Grid { first } => grid_start(*first, n),
            Starts::Cuts(c) => c.get(n).or(c.last()).copied().unwrap_or(Duration::ZERO),
        }
    }

    /// Media time at which segment `n` ends: the next one's start, or the
    /// media end for the last one. `None` when not known (the last segment
    /// of an open timeline).
    pub fn end(&self, n: usize) -> Option<Duration> {
        let last = match (self.len, &self.starts) {
            (Some(len), _) => n + 1 >= len,
            (None, Starts::Grid { .. }) => false,
            (None, Starts::Cuts(c)) => n + 1 >= c.len(),
        };
        if last {
            self.end
        } else {
            Some(self.start(n + 1))
        }
    }

    /// Where segment `n` ends for a producer: its end, or never (`None`)
    /// when it is the last one. A producer cuts at each of these times.
    pub fn cut_after(&self, n: usize) -> Option<Duration> {
        self.contains(n + 1).then(|| self.start(n + 1))
    }

    /// Length of segment `n` (its `#EXTINF`), if known.
    pub fn segment_duration(&self, n: usize) -> Option<Duration> {
        Some(self.end(n)?.saturating_sub(self.start(n)))
    }

    /// The bit rates of a copy cut on these key-frame cuts, from where the
    /// file's key frames lie: `keyframes` (presentation times, ascending)
    /// at byte `offsets` (the same count), the media data ending at
    /// `data_end`. Segment `n` weighs the bytes from its key frame's offset
    /// to the next segment's (every track's: its audio and container
    /// stand for MPEG-TS's overhead). `None` for a grid, an open timeline,
    /// or offsets that do not fit or do not tell two cuts apart.
    pub fn bit_rates(
        &self,
        keyframes: &[Duration],
        offsets: &[u64],
        data_end: u64,
    ) -> Option<BitRates> {
        let len = self.len?;
        if !self.has_cuts() || keyframes.is_empty() || keyframes.len() != offsets.len() {
            return None;
        }
        // The offset of the key frame a cut falls on (or the one before).
        let at = |t: Duration| {
            let k = keyframes.partition_point(|k| *k <= t + CUT_SLACK);
            offsets[k.saturating_sub(1)]
        };
        let (mut peak, mut bytes, mut seconds) = (0u64, 0u64, 0.0f64);
        for n in 0..len {
            let from = if n == 0 {
                offsets[0]
            } else {
                at(self.start(n))
            };
            let to = if n + 1 < len {
                at(self.start(n + 1))
            } else {
                data_end
            };
            // Cuts in one cluster share its offset: no weight to give.
            let size = to.checked_sub(from).filter(|s| *s > 0)?;
            let length = self.segment_duration(n)?.as_secs_f64().max(0.001);
            peak = peak.max((size as f64 * 8.0 / length) as u64);
            bytes += size;
            seconds += length;
        }
        Some(BitRates {
            peak_bps: peak,
            average_bps: (bytes as f64 * 8.0 / seconds.max(0.001)) as u64,
        })
    }

    /// The shortest segment but the last (which may be any length), for a
    /// closed timeline of two segments or more.
    pub fn shortest(&self) -> Option<Duration> {
        let d = self.durations();
        d[..d.len().saturating_sub(1)].iter().copied().min()
    }

    /// Every segment's length, for a closed timeline (empty for an open one).
    pub fn durations(&self) -> Vec<Duration> {
        (0..self.len.unwrap_or(0))
            .filter_map(|n| self.segment_duration(n))
            .collect()
    }

    /// The segment that holds media time `t` (the last one past the end).
    pub fn index_at(&self, t: Duration) -> usize {
        let n = match &self.starts {
            Starts::Grid { first } => grid_index(*first, t),
            Starts::Cuts(c) => c.partition_point(|s| *s <= t).saturating_sub(1),
        };
        match self.len {
            Some(len) => n.min(len.saturating_sub(1)),
            None => n,
        }
    }

    /// The same timeline closed at the real end a producer found: `len`
    /// segments, the last ending at `end`. Used when a file turns out
    /// shorter than it claimed, or when an open timeline's end is found.
    pub fn closed_at(&self, len: usize, end: Duration) -> Timeline {
        let len = len.max(1);
        let starts = match &self.starts {
            Starts::Cuts(c) if c.len() > len => Starts::Cuts(c[..len].into()),
            s => s.clone(),
        };
        Timeline {
            starts,
            len: Some(len),
            end: Some(end.max(self.start(len - 1))),
        }
    }
}

/// Whether a container's duration claim can be believed for a file of
/// `size_bytes`: at most [`MAX_PLAUSIBLE_DURATION`], and implying at least
/// [`MIN_PLAUSIBLE_BPS`]. A header that claims 1,988 hours for a 10 s clip
/// fails the second test by four orders of magnitude.
pub fn plausible_duration(claimed: Duration, size_bytes: u64) -> bool {
    if claimed.is_zero() || claimed > MAX_PLAUSIBLE_DURATION {
        return false;
    }
    (size_bytes as f64 * 8.0 / claimed.as_secs_f64()) >= MIN_PLAUSIBLE_BPS
}

/// The longest duration believed from a header: 7 days (a week of a
/// security camera's recording in one file).
pub const MAX_PLAUSIBLE_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The lowest average bit rate believed from a header, in bits per second:
/// below any real stream. The slowest real file seen here is a 1 fps H.264
/// countdown at 1,572 b/s; speech codecs start at 4,750 b/s (AMR-NB).
pub const MIN_PLAUSIBLE_BPS: f64 = 200.0;

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> Duration {
        Duration::from_secs_f64(x)
    }

    #[test]
    fn segment_names_round_trip_and_reject_everything_else() {
        assert_eq!(segment_name(42), "segment_00042.ts");
        assert_eq!(segment_index("segment_00042.ts"), Some(42));
        for bad in [
            "segment_0.ts",
            "../segment_00000.ts",
            "segment_00000.ts.bak",
            "segment_-0001.ts",
            "playlist.m3u8",
            "segment_0000a.ts",
        ] {
            assert_eq!(segment_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn grid_is_six_second_slots_with_a_short_last_one() {
        let g = Timeline::grid(s(6.0), Some(s(40.04)));
        assert_eq!(g.len(), Some(7));
        assert_eq!(g.start(0), Duration::ZERO);
        assert_eq!(g.start(5), s(30.0));
        assert_eq!(g.end(6), Some(s(40.04)));
        assert_eq!(g.segment_duration(6).unwrap().as_millis(), 4040);
        assert_eq!(g.index_at(s(35.999)), 5);
        assert_eq!(g.index_at(s(36.0)), 6);
        assert_eq!(g.index_at(s(99.0)), 6);
        let total: Duration = g.durations().iter().sum();
        assert_eq!(total, s(40.04));
        assert_eq!(g.cut_after(5), Some(s(36.0)));
        assert_eq!(g.cut_after(6), None, "the last segment ends at EOS");
    }

    #[test]
    fn grid_folds_a_tiny_tail_and_honours_a_short_first_segment() {
        let g = Timeline::grid(s(6.0), Some(s(36.2)));
        assert_eq!(g.len(), Some(6));
        assert_eq!(g.segment_duration(5).unwrap().as_millis(), 6200);
        assert_eq!(Timeline::grid(s(6.0), Some(s(12.0))).len(), Some(2));
        let g = Timeline::grid(s(2.0), Some(s(20.0)));
        assert_eq!(g.len(), Some(4));
        assert_eq!(
            (0..4).map(|n| g.start(n).as_secs()).collect::<Vec<_>>(),
            [0, 2, 8, 14]
        );
        assert_eq!(g.index_at(s(1.0)), 0);
        assert_eq!(g.index_at(s(2.0)), 1);
        assert_eq!(Timeline::grid(s(6.0), Some(s(0.3))).len(), Some(1));
    }

    #[test]
    fn an_open_grid_has_no_end_until_closed() {
        let g = Timeline::grid(s(6.0), None);
        assert_eq!(g.len(), None);
        assert!(g.contains(1_000_000));
        assert_eq!(g.end(10), Some(s(66.0)));
        assert!(g.durations().is_empty());
        let closed = g.closed_at(2, s(10.0));
        assert_eq!(closed.len(), Some(2));
        assert_eq!(closed.segment_duration(1), Some(s(4.0)));
        assert!(!closed.contains(2));
        assert_eq!(Timeline::grid(s(6.0), Some(Duration::ZERO)).len(), None);
    }

    #[test]
    fn cuts_fall_on_the_first_key_frame_at_or_after_each_boundary() {
        // A key frame every 1.96 s, 10.048 s long (the remux fixture).
        let keys: Vec<_> = (0..6).map(|i| s(1.96 * i as f64)).collect();
        let t = Timeline::cuts(&keys, Some(s(10.048)), s(6.0));
        assert_eq!(t.len(), Some(2));
        assert_eq!(t.start(1), s(7.84));
        assert!((t.segment_duration(1).unwrap().as_secs_f64() - 2.208).abs() < 1e-9);
        // Fast start: boundaries 2, 8, 14 -> 3.92, 9.8 (dropped: 0.248 s tail).
        let t = Timeline::cuts(&keys, Some(s(10.048)), s(2.0));
        assert_eq!(t.len(), Some(2));
        assert_eq!(t.start(1), s(3.92));
        // Irregular GOPs: one key frame may serve several boundaries.
        let keys = [0.0, 3.3, 6.6, 20.0, 21.0, 26.5].map(s);
        let t = Timeline::cuts(&keys, Some(s(30.0)), s(6.0));
        let starts: Vec<f64> = (0..t.len().unwrap())
            .map(|n| t.start(n).as_secs_f64())
            .collect();
        assert_eq!(starts, [0.0, 6.6, 20.0, 26.5]);
        assert_eq!(t.index_at(s(19.9)), 1);
        assert_eq!(t.index_at(s(20.0)), 2);
        // A key frame a rounding error short of a boundary is on it.
        let t = Timeline::cuts(&[s(0.0), s(5.9999)], Some(s(9.0)), s(6.0));
        assert_eq!(t.start(1), s(5.9999));
    }

    #[test]
    fn cuts_never_make_an_empty_first_segment() {
        // The first frame is 10 s in: it opens segment 0.
        let keys = [10.0, 13.0, 16.5].map(s);
        let t = Timeline::cuts(&keys, Some(s(20.0)), s(6.0));
        let starts: Vec<f64> = (0..t.len().unwrap())
            .map(|n| t.start(n).as_secs_f64())
            .collect();
        assert_eq!(starts, [0.0, 13.0]);
        // With no end known, the cuts are known but not the last length.
        let t = Timeline::cuts(&keys, None, s(6.0));
        assert_eq!(t.len(), None);
        assert!(t.contains(1) && !t.contains(2));
        assert_eq!(t.end(0), Some(s(13.0)));
        assert_eq!(t.end(1), None);
    }

    #[test]
    fn cuts_found_while_reading_are_a_prefix_of_the_final_ones() {
        let keys: Vec<_> = (0..40).map(|i| s(3.3 * i as f64)).collect();
        let all = Timeline::cuts(&keys, Some(s(132.0)), s(6.0));
        for found in [5, 17, 31] {
            let partial = Timeline::cuts(&keys[..found], None, s(6.0));
            assert!(partial.has_cuts() && !partial.is_closed());
            let known = partial.known_durations();
            assert_eq!(
                known,
                all.durations()[..known.len()],
                "after {found} key frames"
            );
            let last = partial.known_until().unwrap();
            assert_eq!(partial.start(known.len()), last);
            assert!(!partial.contains(known.len() + 1));
        }
        assert_eq!(all.known_until(), None);
        assert_eq!(all.known_durations(), all.durations());
        assert!(Timeline::grid(s(6.0), None).known_durations().is_empty());
    }

    #[test]
    fn duration_claims_that_the_bytes_cannot_back_are_refused() {
        // 1,988 hours claimed by a 500 KB file.
        assert!(!plausible_duration(s(7_158_278.8), 500_000));
        // The 1 fps countdown: 600 s in 118 KB.
        assert!(plausible_duration(s(600.0), 117_900));
        assert!(plausible_duration(s(7200.0), 4_000_000_000));
        assert!(!plausible_duration(s(8.0 * 24.0 * 3600.0), u64::MAX / 16));
        assert!(!plausible_duration(Duration::ZERO, 1000));
    }

    #[test]
    fn a_copys_bit_rates_come_from_its_key_frames_offsets() {
        let s = Duration::from_secs;
        let keys = [s(0), s(3), s(6), s(9), s(12)];
        let t = Timeline::cuts(&keys, Some(s(15)), s(6));
        assert_eq!(t.len(), Some(3), "[0, 6), [6, 12), [12, 15)");
        // 1 MB a second, but 3 MB in the second half of the middle one.
        let offsets = [0, 3_000_000, 6_000_000, 9_000_000, 15_000_000];
        let r = t.bit_rates(&keys, &offsets, 18_000_000).unwrap();
        assert_eq!(r.peak_bps, 12_000_000, "12 MB over 6 s");
        assert_eq!(r.average_bps, 18_000_000 * 8 / 15);
        // Offsets that go back, or do not match: none.
        assert_eq!(t.bit_rates(&keys, &offsets[..4], 18_000_000), None);
        assert_eq!(t.bit_rates(&keys, &[5, 4, 3, 2, 1], 18_000_000), None);
        assert_eq!(
            Timeline::grid(s(6), Some(s(15))).bit_rates(&keys, &offsets, 1),
            None
        );
    }
}
