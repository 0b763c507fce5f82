//! Decode times for video that comes without them.
//!
//! Matroska and WebM store presentation times only (`matroskademux` gives
//! buffers a PTS and no DTS), yet with B-frames a frame is decoded before
//! frames shown ahead of it, and an MPEG-TS PES must then carry a DTS
//! (ISO/IEC 13818-1, 2.4.3.7), and the PCR must follow decode order:
//! PCRs computed from PTSs went backwards 528 times in 5 segments of a
//! remuxed MKV. ffmpeg, remuxing the same file, derives decode times from
//! the reorder depth of the stream; this does the same without looking
//! ahead:
//!
//! - every key frame decodes [`KEY_FRAME_LEAD`] frame durations before it
//!   is shown;
//! - every other frame one frame duration after the frame before it;
//! - never after its own presentation time, and always after the frame
//!   before it.
//!
//! A key frame's decode time depends on that frame alone, and a producer
//! always starts at one, so every frame of a segment gets the same
//! decode time whichever producer made it and wherever it started (a
//! running chain from the start of the file drifted from a seeking
//! producer's by the leading pictures of an open GOP: 130 ms on an HEVC
//! copy, and the segments' bytes differed). With the stream's frame
//! duration and a closed GOP this is every frame's true decode time
//! shifted by a constant. A decode time the source gives is kept. Pure:
//! no GStreamer types; times are nanoseconds.

/// Frame durations a key frame decodes before it is shown: x264's
/// B-pyramid reorders by 2 frames (ffprobe's `has_b_frames=2`), and up
/// to 3 leading pictures of an open GOP (shown before their I-frame,
/// decoded after it, in a B-pyramid) must still decode in order before
/// they are shown.
pub const KEY_FRAME_LEAD: u64 = 5;

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
    /// `pts`, lasting `duration` (0: unknown), `key` if it is a key frame,
    /// with `given` the source's decode time if it has one.
    pub fn next(&mut self, pts: u64, given: Option<u64>, duration: u64, key: bool) -> u64 {
        if duration > 0 {
            self.frame_ns = Some(duration);
        }
        let frame = self.frame_ns.unwrap_or(DEFAULT_FRAME_NS);
        let dts = match (given, self.previous) {
            (Some(given), _) => given,
            (None, Some(previous)) if !key => (previous + frame).min(pts),
            _ => pts.saturating_sub(KEY_FRAME_LEAD * frame),
        };
        let dts = match self.previous {
            Some(previous) if dts <= previous => previous + 1,
            _ => dts,
        };
        self.previous = Some(dts);
        dts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = 40_000_000;

    /// Decode times of frames given as (pts in frames, key), in decode
    /// order.
    fn derive(frames: &[(u64, bool)]) -> Vec<u64> {
        let mut d = DecodeTimes::default();
        frames
            .iter()
            .map(|&(pts, key)| d.next(10 * F + pts * F, None, F, key))
            .collect()
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
        let all = derive(&frames);
        let from_key = derive(&frames[3..]);
        assert_eq!(&all[3..], &from_key[..]);
        // An open GOP too: its leading pictures follow the I-frame.
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
        let all = derive(&open);
        let from_key = derive(&open[9..]);
        assert_eq!(&all[9..], &from_key[..]);
    }

    #[test]
    fn the_leading_pictures_of_an_open_gop_decode_before_they_are_shown() {
        // ... P8 | I12 (not IDR) B10 b9 b11 | P16: B10, b9 and b11 are
        // shown before I12 although decoded after it.
        let open = [
            (12, true),
            (10, false),
            (9, false),
            (11, false),
            (16, false),
        ];
        let frames = [&PYRAMID_GOPS[..], &open[..]].concat();
        let dts = derive(&frames);
        assert_on_time(&frames, &dts);
    }

    #[test]
    fn a_key_frame_after_a_gap_sets_the_times_afresh() {
        let mut d = DecodeTimes::default();
        d.next(0, None, F, true);
        d.next(F, None, F, false);
        // 10 s later.
        assert_eq!(d.next(250 * F, None, F, true), 245 * F);
    }

    #[test]
    fn given_decode_times_are_kept_and_frames_without_b_frames_stay_in_order() {
        let mut d = DecodeTimes::default();
        assert_eq!(d.next(5 * F, Some(4 * F), F, true), 4 * F);
        let mut d = DecodeTimes::default();
        let times: Vec<u64> = (0..5)
            .map(|i| d.next(100 * F + i * F, None, F, i == 0))
            .collect();
        for w in times.windows(2) {
            assert_eq!(w[1] - w[0], F);
        }
    }
}
