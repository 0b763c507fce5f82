//! Timestamps that jump back in the middle of a stream.
//!
//! `tsdemux` (GStreamer 1.22) maps an MPEG-TS file's timestamps through its
//! PCR. Where the PCR pauses for longer than it expects (2.9 s in
//! `h264_aac_sintel_cea608.ts`, whose broadcast-style muxer sent one PCR
//! and then none until the second IDR frame) it takes the next PCR for a
//! discontinuity and re-bases: the 70th frame, 2.9 s in, came out at
//! 0.5 s, and the remux decoded to 12.5 s where the file has 10.1 s.
//! ffmpeg ignores the PCR and reads the PTS as they are. A stream whose
//! timestamps fall back by more than [`JUMP_NS`] below the furthest seen
//! here continues where it was: from then on every timestamp gets the same
//! offset. Pure: nanoseconds in, nanoseconds out.

/// How far a timestamp may fall below the furthest one seen before it
/// counts as a re-base: 1 s, past any B-frame reordering.
pub const JUMP_NS: u64 = 1_000_000_000;

/// Keeps one stream's timestamps from jumping back.
#[derive(Debug, Default, Clone)]
pub struct Continuity {
    /// Added to every timestamp (ns).
    offset: i128,
    /// The furthest timestamp given out, and where that frame ends.
    furthest: Option<(u64, u64)>,
    /// How many re-bases were taken out.
    jumps: u32,
}

impl Continuity {
    /// The timestamp (ns) to use for a frame at `t` lasting `duration`
    /// (0: unknown), in arrival order.
    pub fn map(&mut self, t: u64, duration: u64) -> u64 {
        let mut mapped = i128::from(t) + self.offset;
        if let Some((start, end)) = self.furthest {
            if mapped + i128::from(JUMP_NS) < i128::from(start) {
                // Continue at the end of the furthest frame.
                self.offset += i128::from(end) - mapped;
                mapped = i128::from(end);
                self.jumps += 1;
            }
        }
        let mapped = u64::try_from(mapped.max(0)).unwrap_or(u64::MAX);
        let end = mapped + duration;
        self.furthest = Some(match self.furthest {
            Some((s, e)) => (s.max(mapped), e.max(end)),
            None => (mapped, end),
        });
        mapped
    }

    /// The offset (ns) added to the last timestamp mapped, for the
    /// frame's other timestamps (its DTS).
    pub fn offset(&self) -> i128 {
        self.offset
    }

    /// How many jumps back were taken out.
    pub fn jumps(&self) -> u32 {
        self.jumps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = 41_666_667;

    #[test]
    fn a_rebase_back_to_half_a_second_continues_after_the_last_frame() {
        let mut c = Continuity::default();
        let before: Vec<u64> = (0..69).map(|i| c.map(i * F, F)).collect();
        assert_eq!(before[68], 68 * F);
        // The 70th frame comes out at 0.5 s: it follows the 69th instead.
        assert_eq!(c.map(500_000_000, F), 69 * F);
        assert_eq!(c.map(500_000_000 + F, F), 70 * F);
        assert_eq!(c.jumps(), 1);
    }

    #[test]
    fn b_frame_reordering_and_small_steps_back_are_left_alone() {
        let mut c = Continuity::default();
        for (i, t) in [0, 4, 2, 1, 3, 8, 6, 5, 7].iter().enumerate() {
            assert_eq!(c.map(t * F, F), t * F, "frame {i}");
        }
        assert_eq!(c.offset(), 0);
        assert_eq!(c.jumps(), 0);
    }
}
