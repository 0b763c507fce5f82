//! HLS playlist text (RFC 8216), free of GStreamer and HTTP types.
//!
//! hlsd renders its own playlists from the segments its bus task saw, rather
//! than serving `hlssink2`'s, so that it can add `#EXT-X-START`, carry an
//! `api_key` in every URI and state the variant's codecs.

use crate::config::SEGMENT_SECONDS;
use crate::library::{decision::transcode_size, AudioPlan, MediaItem, VideoPlan};
use std::fmt::Write;
use std::time::Duration;

/// The one variant a session's master playlist lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Variant {
    /// Path segment naming it, e.g. `720p` or `audio`.
    pub quality: String,
    /// Estimated peak bit rate in bits per second (`BANDWIDTH`).
    pub bandwidth_bps: u64,
    /// Output size in pixels (`RESOLUTION`), when there is video.
    pub resolution: Option<(u32, u32)>,
    /// RFC 6381 codec strings (`CODECS`), e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
}

/// AAC-LC's RFC 6381 string (ISO/IEC 14496-3 audio object type 2).
const AAC_LC: &str = "mp4a.40.2";
/// Bit rate of transcoded audio (see `pipelines/audio-transcode.gst`).
const AAC_BITRATE_BPS: u64 = 128_000;
/// Bits per pixel per frame assumed for x264 veryfast CRF 23 output when
/// estimating `BANDWIDTH` (~2.8 Mb/s for 720p30); an estimate, not a cap.
const CRF23_BITS_PER_PIXEL: f64 = 0.1;

/// H.264 `level_idc` for a stream of this size and rate: the lowest level of
/// ITU-T H.264 Table A-1 whose macroblock rate and frame size allow it.
pub fn h264_level_idc(width: u32, height: u32, fps: f64) -> u8 {
    // (level_idc, MaxMBPS, MaxFS) from Table A-1.
    const LEVELS: &[(u8, f64, u32)] = &[
        (30, 40_500.0, 1_620),
        (31, 108_000.0, 3_600),
        (32, 216_000.0, 5_120),
        (40, 245_760.0, 8_192),
        (42, 522_240.0, 8_704),
        (50, 589_824.0, 22_080),
        (51, 983_040.0, 36_864),
    ];
    let frame_mbs = width.div_ceil(16) * height.div_ceil(16);
    let fps = if fps > 0.0 { fps } else { 30.0 };
    LEVELS
        .iter()
        .find(|(_, mbps, fs)| frame_mbs <= *fs && frame_mbs as f64 * fps <= *mbps)
        .map(|(l, _, _)| *l)
        .unwrap_or(52)
}

/// The `avc1.PPCCLL` string (RFC 6381 §3.3) for a caps profile and level.
pub fn avc1_codec(profile: Option<&str>, level: Option<&str>, fallback_level_idc: u8) -> String {
    let (profile_idc, constraints) = match profile.unwrap_or("high") {
        "constrained-baseline" => (0x42, 0xE0),
        "baseline" => (0x42, 0x00),
        "main" => (0x4D, 0x40),
        "extended" => (0x58, 0x00),
        _ => (0x64, 0x00),
    };
    let level_idc = match level {
        Some("1b") => 9,
        Some(l) => l
            .parse::<f64>()
            .map(|l| (l * 10.0).round() as u8)
            .unwrap_or(fallback_level_idc),
        None => fallback_level_idc,
    };
    format!("avc1.{profile_idc:02x}{constraints:02x}{level_idc:02x}")
}

impl Variant {
    /// The variant an HLS session of `item` produces, following its decision.
    pub fn for_item(item: &MediaItem) -> Variant {
        let d = &item.decision;
        let duration = item.duration_s.unwrap_or(0.0);
        let source_bps = if duration > 0.0 {
            (item.size_bytes as f64 * 8.0 / duration) as u64
        } else {
            0
        };
        let mut codecs = Vec::new();
        let mut bandwidth = 0u64;
        let mut resolution = None;
        let mut quality = "audio".to_string();
        if let (Some(plan), Some(v)) = (d.video, item.video.as_ref()) {
            match plan {
                VideoPlan::Copy => {
                    resolution = Some((v.width, v.height));
                    codecs.push(avc1_codec(
                        v.profile.as_deref(),
                        v.level.as_deref(),
                        h264_level_idc(v.width, v.height, v.fps),
                    ));
                    // The source's whole bit rate: an upper bound for its video.
                    bandwidth += source_bps;
                }
                VideoPlan::Transcode { width, height, .. } => {
                    debug_assert_eq!((width, height), transcode_size(v));
                    resolution = Some((width, height));
                    let fps = if v.fps > 0.0 { v.fps.min(60.0) } else { 30.0 };
                    codecs.push(avc1_codec(
                        Some("high"),
                        None,
                        h264_level_idc(width, height, fps),
                    ));
                    bandwidth += (width as f64 * height as f64 * fps * CRF23_BITS_PER_PIXEL) as u64;
                }
            }
            quality = format!("{}p", resolution.map(|r| r.1).unwrap_or(0));
        }
        if let Some((_, plan)) = d.audio {
            codecs.push(AAC_LC.to_string());
            bandwidth += match plan {
                AudioPlan::Transcode => AAC_BITRATE_BPS,
                AudioPlan::Copy if d.video == Some(VideoPlan::Copy) => 0, // in source_bps
                AudioPlan::Copy => source_bps.max(AAC_BITRATE_BPS),
            };
        }
        Variant {
            quality,
            // ~20 % for MPEG-TS overhead and peaks above the average.
            bandwidth_bps: (bandwidth.max(64_000) as f64 * 1.2) as u64,
            resolution,
            codecs: codecs.join(","),
        }
    }
}

/// `?api_key=TOKEN` (URL-encoded) when the client authenticated that way,
/// so native players that cannot set headers keep working; else empty.
pub fn key_query(api_key: Option<&str>) -> String {
    match api_key {
        Some(k) => format!(
            "?api_key={}",
            form_urlencoded::byte_serialize(k.as_bytes()).collect::<String>()
        ),
        None => String::new(),
    }
}

/// The master (multivariant) playlist: one `#EXT-X-STREAM-INF` with
/// BANDWIDTH, RESOLUTION and CODECS (RFC 8216 §4.3.4.2).
pub fn master_playlist(variant: &Variant, query: &str) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", variant.bandwidth_bps);
    if let Some((w, h)) = variant.resolution {
        let _ = write!(out, ",RESOLUTION={w}x{h}");
    }
    let _ = writeln!(out, ",CODECS=\"{}\"", variant.codecs);
    let _ = writeln!(out, "{}/playlist.m3u8{query}", variant.quality);
    out
}

/// `#EXT-X-TARGETDURATION`: at least the segment length asked of
/// `hlssink2`, and no less than any segment's duration rounded up, since
/// every `#EXTINF` rounded to an integer must not exceed it (RFC 8216
/// §4.3.3.1). A stream copy splits at the source's key frames, which may be
/// further apart than 6 s.
pub fn target_duration(segments: &[Duration]) -> u64 {
    segments
        .iter()
        .map(|d| d.as_secs_f64().ceil() as u64)
        .max()
        .unwrap_or(0)
        .max(SEGMENT_SECONDS as u64)
}

/// The media playlist: an EVENT playlist of the finished segments, with
/// `#EXT-X-ENDLIST` once `complete`. `#EXT-X-START:TIME-OFFSET=0` tells
/// players to begin at the start rather than the live edge (RFC 8216
/// §4.3.5.2) while the encoder is still running.
pub fn media_playlist(segments: &[Duration], complete: bool, query: &str) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", target_duration(segments));
    out.push_str("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n");
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-START:TIME-OFFSET=0\n");
    for (i, d) in segments.iter().enumerate() {
        let _ = writeln!(
            out,
            "#EXTINF:{:.3},\n{}{query}",
            d.as_secs_f64(),
            crate::pipeline::segment_name(i)
        );
    }
    if complete {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// A tail shorter than this is folded into the segment before it rather
/// than given a slot of its own: container durations run past the last
/// frame (seen: 600.57 s for 600.0 s of frames in an AVI with MP3 audio),
/// and a slot past the last frame would never get a segment.
const MIN_TAIL: Duration = Duration::from_secs(1);

/// The fixed segment grid of a seekable (VOD) session, in media time.
///
/// Segment 0 covers `[0, first)`; segment `n ≥ 1` covers
/// `[first + (n-1)·6 s, first + n·6 s)`; the last one ends at the source's
/// duration. With the default `first` of 6 s, segment `n` is `[6n, 6n+6)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    first: Duration,
    duration: Duration,
    len: usize,
}

impl Grid {
    /// The grid for a source of `duration` whose first segment lasts
    /// `first` (at most [`SEGMENT_SECONDS`]). `None` for a zero duration.
    pub fn new(first: Duration, duration: Duration) -> Option<Grid> {
        let step = Duration::from_secs(SEGMENT_SECONDS.into());
        let first = first.clamp(Duration::from_millis(100), step);
        if duration.is_zero() {
            return None;
        }
        let mut len = if duration <= first {
            1
        } else {
            1 + (duration - first).as_nanos().div_ceil(step.as_nanos()) as usize
        };
        let mut grid = Grid {
            first,
            duration,
            len,
        };
        if len > 1 && duration - grid.start(len - 1) < MIN_TAIL {
            len -= 1;
            grid.len = len;
        }
        Some(grid)
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no segments (never: a grid has at least one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Media time at which segment `n` starts.
    pub fn start(&self, n: usize) -> Duration {
        match n {
            0 => Duration::ZERO,
            n => self.first + Duration::from_secs(SEGMENT_SECONDS.into()) * (n as u32 - 1),
        }
    }

    /// Media time at which segment `n` ends (the duration for the last).
    pub fn end(&self, n: usize) -> Duration {
        if n + 1 >= self.len {
            self.duration
        } else {
            self.start(n + 1)
        }
    }

    /// Length of segment `n`, its `#EXTINF`.
    pub fn segment_duration(&self, n: usize) -> Duration {
        self.end(n).saturating_sub(self.start(n))
    }

    /// The segment that holds media time `t` (the last one past the end).
    pub fn index_at(&self, t: Duration) -> usize {
        if t < self.first {
            return 0;
        }
        let step = Duration::from_secs(SEGMENT_SECONDS.into()).as_nanos();
        let n = 1 + ((t - self.first).as_nanos() / step) as usize;
        n.min(self.len - 1)
    }

    /// The source's duration.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

/// The media playlist of a seekable session: a VOD playlist that lists
/// every segment of `grid` from the start, so players show the whole
/// timeline and may seek anywhere (RFC 8216 §4.3.3.5, `#EXT-X-ENDLIST`
/// §4.3.3.4). Segments not yet made are made when asked for.
pub fn vod_playlist(grid: &Grid, query: &str) -> String {
    let durations: Vec<Duration> = (0..grid.len()).map(|n| grid.segment_duration(n)).collect();
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", target_duration(&durations));
    out.push_str("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (i, d) in durations.iter().enumerate() {
        let _ = writeln!(
            out,
            "#EXTINF:{:.3},\n{}{query}",
            d.as_secs_f64(),
            crate::pipeline::segment_name(i)
        );
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_table_a1() {
        assert_eq!(h264_level_idc(1280, 720, 30.0), 31);
        assert_eq!(h264_level_idc(1280, 720, 60.0), 32);
        assert_eq!(h264_level_idc(1920, 1080, 30.0), 40);
        assert_eq!(h264_level_idc(640, 360, 25.0), 30);
    }

    #[test]
    fn avc1_strings() {
        assert_eq!(avc1_codec(Some("high"), Some("3.1"), 0), "avc1.64001f");
        assert_eq!(avc1_codec(Some("main"), Some("4"), 0), "avc1.4d4028");
        assert_eq!(
            avc1_codec(Some("constrained-baseline"), None, 30),
            "avc1.42e01e"
        );
    }

    #[test]
    fn master_lists_one_variant_with_attributes_and_key() {
        let v = Variant {
            quality: "720p".into(),
            bandwidth_bps: 3_000_000,
            resolution: Some((1280, 720)),
            codecs: "avc1.64001f,mp4a.40.2".into(),
        };
        let m = master_playlist(&v, &key_query(Some("a b&c")));
        assert!(m.starts_with("#EXTM3U\n"));
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"\n"
        ));
        assert!(m.contains("720p/playlist.m3u8?api_key=a+b%26c\n"), "{m}");
    }

    #[test]
    fn media_playlist_lists_segments_and_ends_when_complete() {
        let segs = [Duration::from_secs(6), Duration::from_millis(3_960)];
        let p = media_playlist(&segs, false, "");
        assert!(p.contains("#EXT-X-TARGETDURATION:6\n"));
        assert!(p.contains("#EXTINF:6.000,\nsegment_00000.ts\n"));
        assert!(p.contains("#EXTINF:3.960,\nsegment_00001.ts\n"));
        assert!(!p.contains("#EXT-X-ENDLIST"));
        assert!(media_playlist(&segs, true, "").ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn target_duration_covers_long_copied_gops() {
        assert_eq!(target_duration(&[]), 6);
        assert_eq!(target_duration(&[Duration::from_millis(6_400)]), 7);
        assert_eq!(target_duration(&[Duration::from_secs(10)]), 10);
    }

    #[test]
    fn grid_is_six_second_slots_with_a_short_last_one() {
        let g = Grid::new(Duration::from_secs(6), Duration::from_millis(40_040)).unwrap();
        assert_eq!(g.len(), 7);
        assert_eq!(g.start(0), Duration::ZERO);
        assert_eq!(g.start(5), Duration::from_secs(30));
        assert_eq!(g.end(6), Duration::from_millis(40_040));
        assert_eq!(g.segment_duration(6), Duration::from_millis(4_040));
        assert_eq!(g.index_at(Duration::from_millis(35_999)), 5);
        assert_eq!(g.index_at(Duration::from_secs(36)), 6);
        assert_eq!(g.index_at(Duration::from_secs(99)), 6);
        let total: Duration = (0..g.len()).map(|n| g.segment_duration(n)).sum();
        assert_eq!(total, g.duration());
    }

    #[test]
    fn grid_folds_a_tiny_tail_and_honours_a_short_first_segment() {
        // 36.2 s: a 0.2 s slot might hold no frame; it joins segment 5.
        let g = Grid::new(Duration::from_secs(6), Duration::from_millis(36_200)).unwrap();
        assert_eq!(g.len(), 6);
        assert_eq!(g.segment_duration(5), Duration::from_millis(6_200));
        // Exactly on a boundary: no empty slot.
        assert_eq!(
            Grid::new(Duration::from_secs(6), Duration::from_secs(12))
                .unwrap()
                .len(),
            2
        );
        // Fast start: 2 s, then 6 s slots from 2 s.
        let g = Grid::new(Duration::from_secs(2), Duration::from_secs(20)).unwrap();
        assert_eq!(g.len(), 4);
        assert_eq!(
            (0..4).map(|n| g.start(n).as_secs()).collect::<Vec<_>>(),
            [0, 2, 8, 14]
        );
        assert_eq!(g.index_at(Duration::from_secs(1)), 0);
        assert_eq!(g.index_at(Duration::from_secs(2)), 1);
        assert!(Grid::new(Duration::from_secs(6), Duration::ZERO).is_none());
        assert_eq!(
            Grid::new(Duration::from_secs(6), Duration::from_millis(300))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn vod_playlist_lists_every_slot_and_ends() {
        let g = Grid::new(Duration::from_secs(6), Duration::from_millis(13_500)).unwrap();
        let p = vod_playlist(&g, "?api_key=k");
        assert!(p.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{p}");
        assert!(p.contains("#EXT-X-TARGETDURATION:6\n"), "{p}");
        assert!(
            p.contains("#EXTINF:6.000,\nsegment_00001.ts?api_key=k\n"),
            "{p}"
        );
        assert!(
            p.contains("#EXTINF:1.500,\nsegment_00002.ts?api_key=k\n"),
            "{p}"
        );
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(p.matches("#EXTINF").count(), 3);
    }
}
