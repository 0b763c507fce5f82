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
}
