//! Decode times for video that comes without them.
//!
//! Matroska and WebM store presentation times only (`matroskademux` gives
//! buffers a PTS and no DTS), yet with B-frames a frame is decoded before
//! frames shown ahead of it, and an MPEG-TS PES must then carry a DTS
//! (ISO/IEC 13818-1, 2.4.3.7), and the PCR must follow decode order:
//! PCRs computed from PTSs went backwards 528 times in 5 segments of a
//! remuxed MKV. ffmpeg, remuxing the same file, derives decode times from
//! the reorder depth of the stream; so does this:
//!
//! - a key frame decodes [`REORDER_FRAMES`] frame durations, plus one per
//!   leading picture, before it is shown (its leading pictures, in an open
//!   GOP, are decoded after it and shown before it: each pushes it one
//!   frame earlier in decode order than in presentation order);
//! - every other frame one frame duration after the frame before it;
//! - never after its own presentation time, and always after the frame
//!   before it.
//!
//! A key frame waits in [`Reorder`] until the first frame shown after it
//! comes, which tells how many leading pictures it has. With a constant
//! frame duration this is every frame's true decode time shifted by a
//! constant: the last frame before a key frame decodes exactly one frame
//! before it, however the number of leading pictures changes from one
//! GOP to the next. A key frame's decode time depends on that frame and
//! the few after it alone, and a producer always starts at one, so every
//! frame of a segment gets the same decode time whichever producer made
//! it and wherever it started (a running chain from the start of the file
//! drifted from a seeking producer's by the leading pictures of an open
//! GOP: 130 ms on an HEVC copy, and the segments' bytes differed). A
//! decode time the source gives is kept. Pure: no GStreamer types; times
//! are nanoseconds.

use std::collections::VecDeque;

/// Frame durations a key frame without leading pictures decodes before it
/// is shown: x264's B-pyramid reorders by 2 frames (ffprobe's
/// `has_b_frames=2`); one more for x265's deeper pyramids.
pub const REORDER_FRAMES: u64 = 3;

/// The most frames a key frame waits for one shown after it; past that its
/// leading pictures are counted as they are.
const MAX_LOOKAHEAD: usize = 16;

/// Frame duration assumed until the stream shows one: 25 fps.
const DEFAULT_FRAME_NS: u64 = 40_000_000;

/// Derives decode times for one video stream, frame by frame in decode
/// order.
#[derive(Debug, Default, Clone)]
pub struct DecodeTimes {
    /// The decode time given to the previous frame.
    previous: Option<u64>,
    /// The frame duration last seen.
    frame_ns: Option<u64>,
}

impl DecodeTimes {
    /// The decode time (ns) of the next frame in decode order, shown at
    /// `pts`, lasting `duration` (0: unknown), with `given` the source's
    /// decode time if it has one. A key frame is
    /// `Some(its leading pictures)`.
    pub fn next(&mut self, pts: u64, given: Option<u64>, duration: u64, key: Option<u64>) -> u64 {
        if duration > 0 {
            self.frame_ns = Some(duration);
        }
        let frame = self.frame_ns.unwrap_or(DEFAULT_FRAME_NS);
        let dts = match (given, key, self.previous) {
            (Some(given), _, _) => given,
            (None, None, Some(previous)) => (previous + frame).min(pts),
            (None, leading, _) => {
                pts.saturating_sub((REORDER_FRAMES + leading.unwrap_or(0)) * frame)
            }
        };
        let dts = match self.previous {
            Some(previous) if dts <= previous => previous + 1,
            _ => dts,
        };
        self.previous = Some(dts);
        dts
    }
}

/// A frame waiting for its decode time, with what the caller keeps of it.
#[derive(Debug, Clone)]
pub struct Frame<T> {
    /// What the caller keeps with the frame (its buffer).
    pub item: T,
    /// Presentation time (ns).
    pub pts: u64,
    /// The source's decode time, if it gives one (ns).
    pub given: Option<u64>,
    /// Duration (ns), 0 when unknown.
    pub duration: u64,
    /// Whether it is a key frame.
    pub key: bool,
}

/// A frame with its decode time, in decode order.
#[derive(Debug, Clone)]
pub struct Dated<T> {
    /// The frame.
    pub frame: Frame<T>,
    /// Its decode time (ns).
    pub dts: u64,
}

/// Frames in decode order, held back only as long as a key frame waits to
/// know its leading pictures (see the module doc).
#[derive(Debug)]
pub struct Reorder<T> {
    times: DecodeTimes,
    queue: VecDeque<Frame<T>>,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Reorder {
            times: DecodeTimes::default(),
            queue: VecDeque::new(),
        }
    }
}

impl<T> Reorder<T> {
    /// Takes the next frame in decode order; returns the frames whose
    /// decode times are now known, in decode order.
    pub fn push(&mut self, frame: Frame<T>) -> Vec<Dated<T>> {
        self.queue.push_back(frame);
        self.ready(false)
    }

    /// The stream ended: every frame held, dated.
    pub fn finish(&mut self) -> Vec<Dated<T>> {
        self.ready(true)
    }

    fn ready(&mut self, all: bool) -> Vec<Dated<T>> {
        let mut out = Vec::new();
        while let Some(head) = self.queue.front() {
            let key = if head.key && head.given.is_none() {
                // Its leading pictures: the frames shown before it, up to
                // the first shown after it.
                let after = self.queue.iter().skip(1).position(|f| f.pts > head.pts);
                let known = after.is_some() || all || self.queue.len() > MAX_LOOKAHEAD;
                if !known {
                    break;
                }
                let upto = after.map_or(self.queue.len(), |i| i + 1);
                let leading = self
                    .queue
                    .range(1..upto)
                    .filter(|f| f.pts < head.pts)
                    .count();
                Some(leading as u64)
            } else {
                None
            };
            let frame = self.queue.pop_front().expect("a head");
            let dts = self.times.next(frame.pts, frame.given, frame.duration, key);
            out.push(Dated { frame, dts });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = 40_000_000;

    /// Decode times of frames given as (pts in frames, key), in decode
    /// order, through [`Reorder`].
    fn derive(frames: &[(u64, bool)]) -> Vec<u64> {
        let mut r = Reorder::default();
        let mut out = Vec::new();
        for (i, &(pts, key)) in frames.iter().enumerate() {
            out.extend(r.push(Frame {
                item: i,
                pts: 10 * F + pts * F,
                given: None,
                duration: F,
                key,
            }));
        }
        out.extend(r.finish());
        assert!(out.iter().enumerate().all(|(i, d)| d.frame.item == i));
        out.iter().map(|d| d.dts).collect()
    }

    /// I0 P4 B2 b1 b3 | P8 B6 b5 b7, in decode order: (PTS in frames, key).
    const PYRAMID_GOPS: [(u64, bool); 9] = [
        (0, true),
        (4, false),
        (2, false),
        (1, false),
        (3, false),
        (8, false),
        (6, false),
        (5, false),
        (7, false),
    ];

    /// Every frame decodes after the one before and not after it is shown.
    fn assert_on_time(frames: &[(u64, bool)], dts: &[u64]) {
        for (i, (&(pts, _), &d)) in frames.iter().zip(dts).enumerate() {
            assert!(d <= 10 * F + pts * F, "frame {i} decodes after it is shown");
            if i > 0 {
                assert!(d > dts[i - 1], "frame {i} decodes out of order");
            }
        }
    }

    #[test]
    fn b_pyramid_frames_decode_in_order_and_never_after_they_are_shown() {
        // The two GOPs, then I9 P13 B11, in decode order.
        let frames = [&PYRAMID_GOPS[..], &[(9, true), (13, false), (11, false)]].concat();
        let dts = derive(&frames);
        assert_on_time(&frames, &dts);
        // A constant shift of the true decode times: one frame apart.
        for w in dts.windows(2) {
            assert_eq!(w[1] - w[0], F);
        }
    }

    /// `frames` from key frame `k` on are dated as they are in the whole.
    fn assert_same_from(frames: &[(u64, bool)], k: usize) {
        let all = derive(frames);
        let from_key = derive(&frames[k..]);
        assert_eq!(&all[k..], &from_key[..], "from frame {k}");
    }

    #[test]
    fn a_producer_starting_at_a_key_frame_derives_the_same_times() {
        let frames = [
            (0, true),
            (2, false),
            (1, false),
            (3, true),
            (5, false),
            (4, false),
        ];
        assert_same_from(&frames, 3);
        // Open GOPs too: their leading pictures follow the I-frame.
        let open = [
            &PYRAMID_GOPS[..],
            &[
                (12, true),
                (10, false),
                (9, false),
                (11, false),
                (16, false),
            ],
        ]
        .concat();
        assert_same_from(&open, 9);
    }

    #[test]
    fn the_leading_pictures_of_open_gops_decode_in_time_however_many() {
        // ... P8 | I12 (not IDR) B10 b9 b11 | P16 ... | I20 b19 P24: three
        // leading pictures, then one. Shown before their I-frame although
        // decoded after it; every frame still decodes in order, before it
        // is shown, one frame after the one before.
        let frames = [
            &PYRAMID_GOPS[..],
            &[
                (12, true),
                (10, false),
                (9, false),
                (11, false),
                (16, false),
                (14, false),
                (13, false),
                (15, false),
                (18, false),
                (17, false),
                (20, true),
                (19, false),
                (24, false),
                (22, false),
                (21, false),
                (23, false),
            ],
        ]
        .concat();
        let dts = derive(&frames);
        assert_on_time(&frames, &dts);
        for w in dts.windows(2) {
            assert_eq!(w[1] - w[0], F);
        }
        assert_same_from(&frames, 9);
        assert_same_from(&frames, 19);
    }

    #[test]
    fn a_key_frame_after_a_gap_sets_the_times_afresh() {
        let mut d = DecodeTimes::default();
        d.next(0, None, F, Some(0));
        d.next(F, None, F, None);
        // 10 s later.
        assert_eq!(d.next(250 * F, None, F, Some(0)), 247 * F);
    }

    #[test]
    fn given_decode_times_are_kept_and_frames_without_b_frames_stay_in_order() {
        let mut d = DecodeTimes::default();
        assert_eq!(d.next(5 * F, Some(4 * F), F, Some(0)), 4 * F);
        let mut d = DecodeTimes::default();
        let times: Vec<u64> = (0..5)
            .map(|i| d.next(100 * F + i * F, None, F, (i == 0).then_some(0)))
            .collect();
        for w in times.windows(2) {
            assert_eq!(w[1] - w[0], F);
        }
    }

    #[test]
    fn a_key_frame_waits_only_for_the_first_frame_shown_after_it() {
        let mut r = Reorder::default();
        let frame = |item: u32, pts: u64, key: bool| Frame {
            item,
            pts: 10 * F + pts * F,
            given: None,
            duration: F,
            key,
        };
        assert!(r.push(frame(0, 4, true)).is_empty());
        assert!(r.push(frame(1, 3, false)).is_empty());
        let out = r.push(frame(2, 6, false));
        assert_eq!(
            out.iter().map(|d| d.frame.item).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        // I4 with one leading picture: 3 + 1 frames before it is shown.
        assert_eq!(out[0].dts, 10 * F);
        assert_eq!(r.push(frame(3, 5, false)).len(), 1);
    }
}
