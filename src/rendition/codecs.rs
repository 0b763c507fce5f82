//! RFC 6381 `CODECS` strings of copied and encoded video, from what the
//! probe knows of a stream (pure).

use crate::library::VideoStream;

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

/// The `CODECS` string of `v` copied as it is: `avc1.PPCCLL` (RFC 6381
/// §3.3), `hvc1.P.C.TLL.B0` (ISO/IEC 14496-15 Annex E), `av01.P.LLT.DD`
/// (AV1 codec ISO media file format binding, "Codecs Parameter String")
/// or `vp09.PP.LL.DD` (VP9 codec ISO media file format binding). Fields
/// the probe does not give are taken from the stream's size and rate.
pub fn video_copy_codecs(v: &VideoStream) -> String {
    let depth = v.bit_depth.unwrap_or(8);
    match v.codec.as_str() {
        "hevc" => {
            // general_profile_idc, and its compatibility flag (bit 31 - idc).
            let (idc, compat) = match v.profile.as_deref() {
                Some("main-10") => (2, 4),
                Some("main-still-picture") => (3, 8),
                Some("main") => (1, 6),
                _ if depth > 8 => (2, 4),
                _ => (1, 6),
            };
            // general_level_idc is 30 × the level number.
            let level = v
                .level
                .as_deref()
                .and_then(|l| l.parse::<f64>().ok())
                .map(|l| (l * 30.0).round() as u32)
                .unwrap_or(if v.height > 1080 { 153 } else { 120 });
            format!("hvc1.{idc}.{compat}.L{level}.B0")
        }
        "av1" => {
            let profile = match v.profile.as_deref() {
                Some("high") => 1,
                Some("professional") => 2,
                _ => 0,
            };
            format!(
                "av01.{profile}.{:02}M.{depth:02}",
                av1_level_idx(v.width, v.height)
            )
        }
        "vp9" => {
            let profile: u32 = v
                .profile
                .as_deref()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            format!(
                "vp09.{profile:02}.{}.{depth:02}",
                vp9_level(v.width, v.height)
            )
        }
        _ => avc1_codec(
            v.profile.as_deref(),
            v.level.as_deref(),
            h264_level_idc(v.width, v.height, v.fps),
        ),
    }
}

/// AV1 `seq_level_idx` of the smallest level whose MaxPicSize holds a
/// `width`×`height` picture (AV1 spec, Annex A.3).
fn av1_level_idx(width: u32, height: u32) -> u32 {
    // (seq_level_idx, MaxPicSize)
    const LEVELS: &[(u32, u64)] = &[
        (0, 147_456),
        (1, 278_784),
        (4, 665_856),
        (5, 1_065_024),
        (8, 2_359_296),
        (12, 8_912_896),
        (16, 35_651_584),
    ];
    let size = u64::from(width) * u64::from(height);
    LEVELS
        .iter()
        .find(|(_, max)| size <= *max)
        .map_or(19, |(l, _)| *l)
}

/// VP9 level (×10) of the smallest level whose picture size holds a
/// `width`×`height` picture (VP9 profiles and levels, webmproject.org).
pub fn vp9_level(width: u32, height: u32) -> u32 {
    // (level × 10, max luma picture size)
    const LEVELS: &[(u32, u64)] = &[
        (10, 36_864),
        (11, 73_728),
        (20, 122_880),
        (21, 245_760),
        (30, 552_960),
        (31, 983_040),
        (40, 2_228_224),
        (50, 8_912_896),
        (60, 35_651_584),
    ];
    let size = u64::from(width) * u64::from(height);
    LEVELS
        .iter()
        .find(|(_, max)| size <= *max)
        .map_or(62, |(l, _)| *l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::decision::tests::h264;

    #[test]
    fn codec_strings_of_copied_video() {
        let mut v = h264(1920, 1080);
        v.codec = "hevc".into();
        v.profile = Some("main-10".into());
        v.level = Some("4".into());
        v.bit_depth = Some(10);
        assert_eq!(video_copy_codecs(&v), "hvc1.2.4.L120.B0");
        v.profile = Some("main".into());
        v.level = Some("5.1".into());
        assert_eq!(video_copy_codecs(&v), "hvc1.1.6.L153.B0");
        let mut v = h264(640, 360);
        v.codec = "av1".into();
        v.profile = Some("main".into());
        assert_eq!(video_copy_codecs(&v), "av01.0.01M.08");
        v.codec = "vp9".into();
        v.profile = Some("0".into());
        assert_eq!(video_copy_codecs(&v), "vp09.00.21.08");
        assert_eq!(video_copy_codecs(&h264(1280, 720)), "avc1.640028");
    }
}
