//! The playback decision: direct play, remux or transcode, with reasons.
//!
//! Pure logic over [`MediaInfo`]; the pipeline builder follows the plan it
//! returns. The rules are the standard ones (design.md, "Playback decision"):
//! browsers play MP4/MOV with H.264 8-bit 4:2:0 (Baseline/Main/High) and AAC
//! or MP3; HLS in MPEG-TS carries H.264 and AAC as they are (RFC 8216 §3.2);
//! everything else is encoded to H.264/AAC.

use super::{AudioStream, MediaInfo, VideoStream};
use serde::Serialize;

/// The largest output height of a video transcode, in lines.
pub const MAX_TRANSCODE_HEIGHT: u32 = 720;

/// How a file reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Playback {
    /// The original bytes over HTTP with Range.
    DirectPlay,
    /// HLS by stream copy: parse, no decoding.
    Remux,
    /// HLS with at least one stream decoded and encoded again.
    Transcode,
}

impl Playback {
    /// The snake_case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Playback::DirectPlay => "direct_play",
            Playback::Remux => "remux",
            Playback::Transcode => "transcode",
        }
    }
}

/// What happens to the video stream in an HLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPlan {
    /// H.264 is copied: `h264parse` only.
    Copy,
    /// Decoded and encoded to H.264 at this size (even, at most 720 lines).
    Transcode {
        /// Output width in pixels (even).
        width: u32,
        /// Output height in pixels (even).
        height: u32,
        /// Whether a deinterlacer goes before the encoder.
        deinterlace: bool,
        /// Whether the `image-orientation` tag is applied (`videoflip`).
        rotate: bool,
    },
}

/// What happens to the chosen audio track in an HLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPlan {
    /// AAC is copied: `aacparse` only.
    Copy,
    /// Decoded and encoded to AAC-LC stereo 48 kHz.
    Transcode,
}

/// The outcome for one file: how it plays, why, and the per-stream plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// `None` when nothing in the file can be played.
    pub playback: Option<Playback>,
    /// Machine-readable reasons, e.g. `container_unsupported:matroska`,
    /// `video_codec_unsupported:hevc`, `bit_depth:10`.
    pub reasons: Vec<String>,
    /// Plan for the video stream, `None` when it is left out or absent.
    pub video: Option<VideoPlan>,
    /// The chosen audio track (index into [`MediaInfo::audio`]) and its plan.
    pub audio: Option<(usize, AudioPlan)>,
}

impl Decision {
    /// The HLS mode this plan gives: remux when every planned stream is
    /// copied, else transcode. For a direct-play file asked for as HLS.
    pub fn hls_mode(&self) -> Playback {
        let all_copy = self.video.is_none_or(|p| p == VideoPlan::Copy)
            && self.audio.is_none_or(|(_, p)| p == AudioPlan::Copy);
        if all_copy {
            Playback::Remux
        } else {
            Playback::Transcode
        }
    }
}

const DIRECT_PLAY_CONTAINERS: &[&str] = &["mp4", "mov"];
const BROWSER_H264_PROFILES: &[&str] = &["constrained-baseline", "baseline", "main", "high"];

/// Why this H.264 stream cannot be copied as it is, or an empty list if it can.
fn h264_copy_problems(v: &VideoStream) -> Vec<String> {
    let mut problems = Vec::new();
    if v.codec != "h264" {
        problems.push(format!("video_codec_unsupported:{}", v.codec));
        return problems;
    }
    if let Some(depth) = v.bit_depth.filter(|d| *d != 8) {
        problems.push(format!("bit_depth:{depth}"));
    }
    if let Some(chroma) = v.chroma_format.as_deref().filter(|c| *c != "4:2:0") {
        problems.push(format!("chroma:{chroma}"));
    }
    match v.profile.as_deref() {
        Some(p) if !BROWSER_H264_PROFILES.contains(&p) => {
            problems.push(format!("h264_profile_unsupported:{p}"))
        }
        _ => {}
    }
    problems
}

/// The transcode output size: display aspect kept (pixel aspect and rotation
/// applied), at most [`MAX_TRANSCODE_HEIGHT`] lines, never more lines than
/// the source, both dimensions even (4:2:0 needs it), at least 2.
pub fn transcode_size(v: &VideoStream) -> (u32, u32) {
    let (par_n, par_d) = match v.pixel_aspect {
        (n, d) if n > 0 && d > 0 => (n as f64, d as f64),
        _ => (1.0, 1.0),
    };
    let mut display_w = v.width as f64 * par_n / par_d;
    let mut display_h = v.height as f64;
    if v.rotation % 180 == 90 {
        std::mem::swap(&mut display_w, &mut display_h);
    }
    let even = |x: f64| ((x as u32) & !1).max(2);
    let height = even(display_h.min(MAX_TRANSCODE_HEIGHT as f64));
    let width = even((display_w * height as f64 / display_h.max(1.0)).round());
    (width, height)
}

/// Whether an audio track goes into HLS as it is (AAC, RFC 8216 §3.2).
pub fn audio_copyable(a: &AudioStream) -> bool {
    a.codec == "aac"
}

/// The track a player gets when it asks for none: the first the file
/// marks as default and that can be played, else the first that can.
pub fn default_audio(audio: &[AudioStream]) -> Option<usize> {
    let playable = |a: &AudioStream| audio_copyable(a) || a.decodable;
    audio
        .iter()
        .position(|a| a.default && playable(a))
        .or_else(|| audio.iter().position(playable))
        .or((!audio.is_empty()).then_some(0))
}

/// Decides how `info` plays. `container` is matched by its short name.
pub fn decide(info: &MediaInfo) -> Decision {
    let mut d = Decision::default();
    if let Some(err) = &info.probe_error {
        d.reasons.push(format!("probe_failed:{err}"));
        return d;
    }
    if info.video.is_none() && info.audio.is_empty() {
        d.reasons.push("no_audio_and_no_video".into());
        return d;
    }

    // Audio: the file's default track, else the first (design.md); the
    // others are offered as alternate renditions.
    let mut audio_copy = false;
    let chosen = default_audio(&info.audio);
    if let Some((i, a)) = chosen.map(|i| (i, &info.audio[i])) {
        if info.audio.len() > 1 {
            d.reasons
                .push(format!("audio_track:{}_of_{}", i + 1, info.audio.len()));
        }
        if audio_copyable(a) {
            audio_copy = true;
            d.audio = Some((i, AudioPlan::Copy));
        } else if a.decodable {
            d.reasons
                .push(format!("audio_codec_unsupported:{}", a.codec));
            d.audio = Some((i, AudioPlan::Transcode));
        } else {
            d.reasons.push(format!("audio_undecodable:{}", a.codec));
        }
    }

    let mut video_copy = false;
    if let Some(v) = &info.video {
        let problems = h264_copy_problems(v);
        if problems.is_empty() {
            video_copy = true;
            d.video = Some(VideoPlan::Copy);
        } else if v.decodable {
            let (width, height) = transcode_size(v);
            d.reasons.extend(problems);
            if v.interlaced {
                d.reasons.push("deinterlace".into());
            }
            if (width, height) != (v.width, v.height) {
                d.reasons
                    .push(format!("scale:{}x{}->{width}x{height}", v.width, v.height));
            }
            d.video = Some(VideoPlan::Transcode {
                width,
                height,
                deinterlace: v.interlaced,
                rotate: v.rotation != 0,
            });
        } else {
            d.reasons.push(format!("video_undecodable:{}", v.codec));
        }
    }

    if d.video.is_none() && d.audio.is_none() {
        d.reasons.push("no_playable_stream".into());
        return d;
    }

    let container = info.container.as_deref().unwrap_or("unknown");
    let direct_container = DIRECT_PLAY_CONTAINERS.contains(&container);
    let direct_audio = chosen
        .map(|i| &info.audio[i])
        .is_none_or(|a| a.codec == "aac" || a.codec == "mp3");
    d.playback = Some(if video_copy && direct_container && direct_audio {
        // MP3 is fine for a browser; the reason only concerns HLS.
        d.reasons.retain(|r| r != "audio_codec_unsupported:mp3");
        d.reasons.push(format!("direct_play_container:{container}"));
        Playback::DirectPlay
    } else if d.hls_mode() == Playback::Remux {
        if !direct_container {
            d.reasons.push(format!("container_unsupported:{container}"));
        } else if !video_copy {
            d.reasons.push("no_video".into());
        }
        Playback::Remux
    } else {
        Playback::Transcode
    });
    if video_copy {
        d.reasons.push("video_copy:h264".into());
    }
    if audio_copy {
        d.reasons.push("audio_copy:aac".into());
    }
    d
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An 8-bit 4:2:0 H.264 High stream of `w`×`h` at 25 fps (shared
    /// with other modules' tests).
    pub(crate) fn h264(w: u32, h: u32) -> VideoStream {
        VideoStream {
            codec: "h264".into(),
            profile: Some("high".into()),
            level: Some("4".into()),
            width: w,
            height: h,
            fps: 25.0,
            bit_depth: Some(8),
            chroma_format: Some("4:2:0".into()),
            pixel_aspect: (1, 1),
            interlaced: false,
            rotation: 0,
            decodable: true,
            stream_id: None,
        }
    }

    /// A decodable stereo 48 kHz `codec` stream with no language.
    pub(crate) fn audio(codec: &str) -> AudioStream {
        AudioStream {
            index: 0,
            codec: codec.into(),
            channels: 2,
            sample_rate: 48_000,
            profile: None,
            language: None,
            title: None,
            default: false,
            decodable: true,
            stream_id: None,
        }
    }

    fn info(container: &str, video: Option<VideoStream>, audio: Vec<AudioStream>) -> MediaInfo {
        MediaInfo {
            duration: Some(std::time::Duration::from_secs(10)),
            container: Some(container.into()),
            video,
            audio,
            ..Default::default()
        }
    }

    #[test]
    fn mp4_h264_aac_is_direct_play() {
        let d = decide(&info("mp4", Some(h264(1920, 1080)), vec![audio("aac")]));
        assert_eq!(d.playback, Some(Playback::DirectPlay));
        assert!(d.reasons.contains(&"video_copy:h264".to_string()));
    }

    #[test]
    fn mov_h264_mp3_and_video_only_are_direct_play() {
        let d = decide(&info("mov", Some(h264(640, 480)), vec![audio("mp3")]));
        assert_eq!(d.playback, Some(Playback::DirectPlay));
        let d = decide(&info("mp4", Some(h264(640, 480)), vec![]));
        assert_eq!(d.playback, Some(Playback::DirectPlay));
        assert_eq!(d.audio, None);
    }

    #[test]
    fn mkv_h264_aac_is_remux_with_container_reason() {
        let d = decide(&info("matroska", Some(h264(1280, 720)), vec![audio("aac")]));
        assert_eq!(d.playback, Some(Playback::Remux));
        assert_eq!(d.video, Some(VideoPlan::Copy));
        assert_eq!(d.audio, Some((0, AudioPlan::Copy)));
        assert!(d
            .reasons
            .contains(&"container_unsupported:matroska".to_string()));
    }

    #[test]
    fn hevc_10bit_is_transcoded_and_aac_copied() {
        let mut v = h264(1920, 1080);
        v.codec = "hevc".into();
        v.profile = Some("main-10".into());
        v.bit_depth = Some(10);
        let d = decide(&info("mp4", Some(v), vec![audio("aac")]));
        assert_eq!(d.playback, Some(Playback::Transcode));
        assert_eq!(
            d.video,
            Some(VideoPlan::Transcode {
                width: 1280,
                height: 720,
                deinterlace: false,
                rotate: false
            })
        );
        assert_eq!(d.audio, Some((0, AudioPlan::Copy)));
        assert!(d
            .reasons
            .contains(&"video_codec_unsupported:hevc".to_string()));
    }

    #[test]
    fn h264_high10_is_transcoded_with_bit_depth_reason() {
        let mut v = h264(1280, 720);
        v.profile = Some("high-10".into());
        v.bit_depth = Some(10);
        let d = decide(&info("matroska", Some(v), vec![audio("aac")]));
        assert_eq!(d.playback, Some(Playback::Transcode));
        assert!(d.reasons.contains(&"bit_depth:10".to_string()));
        assert!(d
            .reasons
            .contains(&"h264_profile_unsupported:high-10".to_string()));
    }

    #[test]
    fn mp4_h264_with_ac3_transcodes_audio_only() {
        let d = decide(&info("mp4", Some(h264(1280, 720)), vec![audio("ac3")]));
        assert_eq!(d.playback, Some(Playback::Transcode));
        assert_eq!(d.video, Some(VideoPlan::Copy));
        assert_eq!(d.audio, Some((0, AudioPlan::Transcode)));
        assert!(d
            .reasons
            .contains(&"audio_codec_unsupported:ac3".to_string()));
    }

    #[test]
    fn undecodable_audio_is_left_out_and_video_still_plays() {
        let mut a = audio("dts");
        a.decodable = false;
        let d = decide(&info("matroska", Some(h264(1280, 720)), vec![a]));
        assert_eq!(d.playback, Some(Playback::Remux));
        assert_eq!(d.audio, None);
        assert!(d.reasons.contains(&"audio_undecodable:dts".to_string()));
    }

    #[test]
    fn nothing_decodable_is_unplayable() {
        let mut v = h264(640, 360);
        v.codec = "vp9".into();
        v.decodable = false;
        let d = decide(&info("matroska", Some(v), vec![]));
        assert_eq!(d.playback, None);
        assert!(d.reasons.contains(&"no_playable_stream".to_string()));
    }

    #[test]
    fn no_streams_and_probe_errors_are_unplayable() {
        let d = decide(&info("matroska", None, vec![]));
        assert_eq!(d.playback, None);
        assert_eq!(d.reasons, vec!["no_audio_and_no_video".to_string()]);
        let failed = MediaInfo {
            probe_error: Some("timeout".into()),
            ..Default::default()
        };
        assert_eq!(decide(&failed).playback, None);
    }

    #[test]
    fn audio_only_flac_transcodes_and_aac_in_adts_remuxes() {
        let d = decide(&info("flac", None, vec![audio("flac")]));
        assert_eq!(d.playback, Some(Playback::Transcode));
        let d = decide(&info("adts", None, vec![audio("aac")]));
        assert_eq!(d.playback, Some(Playback::Remux));
    }

    #[test]
    fn the_default_audio_track_is_chosen_else_the_first_playable() {
        let mut fre = audio("ac3");
        fre.default = true;
        let d = decide(&info(
            "matroska",
            Some(h264(1280, 720)),
            vec![audio("aac"), fre.clone()],
        ));
        assert_eq!(d.audio, Some((1, AudioPlan::Transcode)));
        assert!(d.reasons.contains(&"audio_track:2_of_2".to_string()));
        let mut bad = audio("cook");
        bad.decodable = false;
        assert_eq!(default_audio(&[bad, audio("mp3")]), Some(1));
        assert_eq!(default_audio(&[]), None);
    }

    #[test]
    fn first_of_several_audio_tracks_is_chosen() {
        let d = decide(&info(
            "matroska",
            Some(h264(1280, 720)),
            vec![audio("aac"), audio("ac3"), audio("eac3")],
        ));
        assert_eq!(d.audio, Some((0, AudioPlan::Copy)));
        assert!(d.reasons.contains(&"audio_track:1_of_3".to_string()));
    }

    #[test]
    fn transcode_size_scales_down_keeps_aspect_and_evenness() {
        assert_eq!(transcode_size(&h264(1920, 1080)), (1280, 720));
        // never upscale
        assert_eq!(transcode_size(&h264(320, 180)), (320, 180));
        // odd height rounds down to even
        assert_eq!(transcode_size(&h264(640, 465)), (638, 464));
        assert_eq!(transcode_size(&h264(720, 405)), (718, 404));
        // rotation swaps the display dimensions
        let mut v = h264(1920, 1080);
        v.rotation = 90;
        assert_eq!(transcode_size(&v), (404, 720));
        // anamorphic SVCD 480x576 with 8:5 pixels displays as 768x576
        let mut v = h264(480, 576);
        v.pixel_aspect = (8, 5);
        assert_eq!(transcode_size(&v), (768, 576));
        // odd widths from tiny sources stay even
        assert_eq!(transcode_size(&h264(190, 240)), (190, 240));
        assert_eq!(transcode_size(&h264(191, 241)), (190, 240));
    }

    #[test]
    fn interlaced_mpeg2_is_transcoded_with_deinterlacer() {
        let mut v = h264(480, 576);
        v.codec = "mpeg2video".into();
        v.interlaced = true;
        let d = decide(&info("mpeg-ps", Some(v), vec![]));
        assert!(matches!(
            d.video,
            Some(VideoPlan::Transcode {
                deinterlace: true,
                ..
            })
        ));
        assert!(d
            .reasons
            .contains(&"video_codec_unsupported:mpeg2video".to_string()));
    }
}
