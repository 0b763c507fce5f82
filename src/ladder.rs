//! The quality ladder of a transcode: which sizes an item's video is
//! offered at, and each rung's bit-rate cap. Pure: no GStreamer, no HTTP.
//!
//! A ladder is the source's display size (at most `--max-height` lines)
//! and the standard steps below it: 1080, 720, 480 and 360 lines. A step
//! within 15 % of the rung above it is left out (a 500-line source gets
//! 500 and 360, not 500, 480 and 360): the two would look alike and cost
//! alike. Every rung is encoded with a capped CRF: x264's CRF 23 keeps
//! quality where the cap allows, and a VBV (`vbv-maxrate`, `vbv-bufsize`)
//! bounds every segment's bit rate, so the `BANDWIDTH` a master playlist
//! declares holds (RFC 8216 §4.3.4.2: the peak segment bit rate).
//!
//! The caps follow the H.264 ladder of Apple's HLS authoring
//! specification (1920×1080 at 6 Mb/s, 1280×720 at 3 Mb/s, both at 30
//! frames per second): `6 Mb/s × (pixels / 1920×1080)^0.9`, which gives
//! 2.9 Mb/s at 720p, 1.4 Mb/s at 480p and 0.83 Mb/s at 360p, and ×1.5
//! above 30 frames per second (Apple lists higher rates for 60 fps).

use std::time::Duration;

/// The standard steps below the source, in lines (Apple's HLS authoring
/// spec and Jellyfin's and Dim's ladders share them).
pub const STEPS: [u32; 4] = [1080, 720, 480, 360];

/// The default of `--max-height`: the tallest rung, in lines.
pub const DEFAULT_MAX_HEIGHT: u32 = 1080;

/// The smallest `--max-height` accepted, in lines.
pub const MIN_MAX_HEIGHT: u32 = 144;

/// A step is left out when it is at least this share of the rung above.
const CLOSE_STEP: f64 = 0.85;

/// The rung a player starts on unless its client asks otherwise: the
/// tallest at or below this height, in lines. 720p encodes about twice as
/// fast as 1080p and is a sharp picture on most screens; a player on a
/// fast link steps up after its first segments.
pub const START_HEIGHT: u32 = 720;

/// Apple's 1080p30 H.264 rate, in bits per second.
const CAP_1080P_BPS: f64 = 6_000_000.0;

/// VBV buffer, in seconds of the cap: one second keeps a segment's peak
/// within `cap × (1 + 1 s / segment length)`.
const BUFFER_SECONDS: f64 = 1.0;

/// MPEG-TS and PES headers over the elementary stream
/// ([`crate::packaging::Packaging::overhead`]).
const TS_OVERHEAD: f64 = crate::packaging::Packaging::Ts.overhead();

/// Bits per pixel per frame assumed for x264 veryfast CRF 23 output when
/// estimating an average bit rate below the cap: an estimate, not a
/// bound (~2.8 Mb/s for 720p30).
const CRF23_BITS_PER_PIXEL: f64 = 0.1;

/// One rung of a ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rung {
    /// Output width in pixels (even).
    pub width: u32,
    /// Output height in pixels (even).
    pub height: u32,
    /// The VBV cap (`vbv-maxrate`), in kilobits per second.
    pub maxrate_kbps: u32,
}

impl Rung {
    /// The VBV buffer (`vbv-bufsize`), in kilobits.
    pub fn bufsize_kbits(&self) -> u32 {
        (self.maxrate_kbps as f64 * BUFFER_SECONDS) as u32
    }

    /// The most a segment of at least `shortest` can carry per second, in
    /// bits per second, headers included: the VBV lets at most `cap × t +
    /// buffer` bits through in any `t` seconds.
    pub fn peak_bps(&self, shortest: Duration) -> u64 {
        let t = shortest.as_secs_f64().max(1.0);
        let cap = self.maxrate_kbps as f64 * 1000.0;
        let buffer = self.bufsize_kbits() as f64 * 1000.0;
        ((cap + buffer / t) * TS_OVERHEAD) as u64
    }

    /// The expected average bit rate at `fps`, in bits per second,
    /// headers included: CRF 23's usual rate for the size, never above the
    /// cap.
    pub fn average_bps(&self, fps: f64) -> u64 {
        let crf = self.width as f64 * self.height as f64 * fps * CRF23_BITS_PER_PIXEL;
        (crf.min(self.maxrate_kbps as f64 * 1000.0) * TS_OVERHEAD) as u64
    }
}

/// The lowest cap hlsd lowers a rung to, in kilobits per second: below it
/// x264 cannot keep a picture at any size.
pub const FLOOR_KBPS: u32 = 48;

/// The cap of a `width`×`height` rung at `fps`, in kilobits per second.
pub fn maxrate_kbps(width: u32, height: u32, fps: f64) -> u32 {
    let share = (width as f64 * height as f64) / (1920.0 * 1080.0);
    let rate = if fps > 31.0 { 1.5 } else { 1.0 };
    ((CAP_1080P_BPS * share.powf(0.9) * rate / 1000.0).round() as u32).max(100)
}

/// `x` rounded down to an even number, at least 2.
fn even(x: f64) -> u32 {
    ((x as u32) & !1).max(2)
}

/// The ladder of a picture shown at `display` (width, height, after its
/// pixel aspect ratio and rotation) at `fps`, no rung taller than
/// `max_height`: the source's size (or `max_height`), then each standard
/// step below it not within 15 % of the rung above. Tallest first; never
/// empty.
pub fn ladder(display: (f64, f64), fps: f64, max_height: u32) -> Vec<Rung> {
    let (w, h) = (display.0.max(2.0), display.1.max(2.0));
    let rung = |height: f64| {
        let height = even(height);
        let width = even((w * height as f64 / h).round());
        Rung {
            width,
            height,
            maxrate_kbps: maxrate_kbps(width, height, fps),
        }
    };
    let mut out = vec![rung(h.min(max_height.max(MIN_MAX_HEIGHT) as f64))];
    for step in STEPS {
        let above = out.last().expect("a top rung").height;
        if (step as f64) < above as f64 * CLOSE_STEP {
            out.push(rung(step as f64));
        }
    }
    out
}

/// The index in `rungs` (tallest first) a player starts on: the tallest
/// at or below [`START_HEIGHT`], else the shortest.
pub fn start_rung(rungs: &[u32]) -> Option<usize> {
    rungs
        .iter()
        .position(|h| *h <= START_HEIGHT)
        .or_else(|| rungs.len().checked_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heights(l: &[Rung]) -> Vec<u32> {
        l.iter().map(|r| r.height).collect()
    }

    #[test]
    fn a_1080p_source_gets_every_step() {
        let l = ladder((1920.0, 1080.0), 25.0, 1080);
        assert_eq!(heights(&l), [1080, 720, 480, 360]);
        assert_eq!(
            (l[0].width, l[1].width, l[2].width, l[3].width),
            (1920, 1280, 852, 640)
        );
        // Apple's 1080p and 720p rates, within rounding of the formula.
        assert_eq!(l[0].maxrate_kbps, 6000);
        assert!((2800..=3000).contains(&l[1].maxrate_kbps), "{:?}", l[1]);
        assert!(l.windows(2).all(|p| p[0].maxrate_kbps > p[1].maxrate_kbps));
    }

    #[test]
    fn no_rung_is_above_the_source_or_the_maximum() {
        assert_eq!(heights(&ladder((854.0, 480.0), 30.0, 1080)), [480, 360]);
        assert_eq!(
            heights(&ladder((3840.0, 2160.0), 30.0, 1080)),
            [1080, 720, 480, 360]
        );
        assert_eq!(
            heights(&ladder((3840.0, 2160.0), 30.0, 720)),
            [720, 480, 360]
        );
        assert_eq!(heights(&ladder((320.0, 240.0), 30.0, 1080)), [240]);
        // A step close to the rung above it is left out.
        assert_eq!(heights(&ladder((888.0, 500.0), 30.0, 1080)), [500, 360]);
        assert_eq!(heights(&ladder((1280.0, 544.0), 24.0, 1080)), [544, 360]);
        // Portrait: the height is the long side, the width follows.
        let l = ladder((1080.0, 1920.0), 30.0, 1080);
        assert_eq!((l[0].width, l[0].height), (608, 1080));
    }

    #[test]
    fn odd_sizes_round_to_even_and_the_floor_holds() {
        let l = ladder((640.0, 465.0), 30.0, 1080);
        assert_eq!((l[0].width, l[0].height), (638, 464));
        assert_eq!(heights(&ladder((1920.0, 1080.0), 30.0, 10)), [144]);
    }

    #[test]
    fn peaks_bound_segments_and_averages_stay_under_the_cap() {
        let r = Rung {
            width: 1280,
            height: 720,
            maxrate_kbps: 3000,
        };
        // A 6 s segment: 3 Mb/s plus 1 s of buffer spread over 6 s.
        assert_eq!(r.peak_bps(Duration::from_secs(6)), 3_710_000);
        // A 2 s first segment may carry half its buffer more per second.
        assert!(r.peak_bps(Duration::from_secs(2)) > r.peak_bps(Duration::from_secs(6)));
        assert!(r.average_bps(60.0) <= (3_000_000.0 * TS_OVERHEAD) as u64);
        assert!(r.average_bps(24.0) < r.average_bps(60.0));
    }

    #[test]
    fn the_start_rung_is_720p_or_below() {
        assert_eq!(start_rung(&[1080, 720, 480, 360]), Some(1));
        assert_eq!(start_rung(&[2160, 1080]), Some(1));
        assert_eq!(start_rung(&[480, 360]), Some(0));
        assert_eq!(start_rung(&[]), None);
    }

    #[test]
    fn faster_video_gets_a_higher_cap() {
        assert!(maxrate_kbps(1280, 720, 60.0) > maxrate_kbps(1280, 720, 30.0));
        assert_eq!(maxrate_kbps(2, 2, 30.0), 100);
    }
}
