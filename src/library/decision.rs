//! The playback decision: direct play, remux or transcode, with reasons,
//! for one client profile ([`crate::profile`]).
//!
//! Pure logic over [`MediaInfo`]; the pipeline builder follows the plan it
//! returns. The rules (design.md, "Playback decision"): a file plays as it
//! is when the client plays its container and every selected stream;
//! otherwise it goes out as HLS, each stream copied when the client plays
//! it and a segment container carries it ([`Packaging`]: MPEG-TS for H.264
//! and AAC, RFC 8216 §3.2; fragmented MP4 also for HEVC, AV1, VP9, Opus
//! and FLAC, for clients that take it), and encoded to H.264/AAC
//! otherwise. The `generic` profile gives hlsd's rules from before
//! profiles.

use super::{AudioStream, MediaInfo, VideoStream};
use crate::packaging::Packaging;
use crate::profile::{ClientProfile, VideoTraits};
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
    /// The source's video is copied (a parser only): H.264 into either
    /// packaging, HEVC, AV1 and VP9 into fragmented MP4.
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
    /// The track is copied (a parser only): AAC into either packaging,
    /// Opus and FLAC into fragmented MP4.
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
    /// The segment container of its HLS output.
    pub packaging: Packaging,
    /// The profile it was made for.
    pub profile: String,
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

/// Whether an audio track goes into MPEG-TS HLS as it is (AAC, RFC 8216
/// §3.2).
pub fn audio_copyable(a: &AudioStream) -> bool {
    Packaging::Ts.carries_audio(&a.codec)
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

/// The traits of `v` a profile checks.
pub fn video_traits(v: &VideoStream) -> VideoTraits<'_> {
    VideoTraits {
        codec: &v.codec,
        profile: v.profile.as_deref(),
        level: v.level.as_deref(),
        bit_depth: v.bit_depth,
        chroma: v.chroma_format.as_deref(),
    }
}

/// Why `profile` cannot take audio track `a` as it is in HLS, if it
/// cannot. AAC counts as played whatever the profile lists (an encode
/// would give AAC again), unless it has too many channels.
pub fn audio_hls_problem(profile: &ClientProfile, a: &AudioStream) -> Option<String> {
    profile
        .audio_problem(&a.codec, a.channels)
        .filter(|p| !(a.codec == "aac" && p.starts_with("audio_codec_unsupported")))
}

/// Why `profile` cannot take video `v` as it is in HLS. H.264 counts as
/// played whatever the profile lists (an encode would give H.264 again),
/// unless its profile, level, depth or chroma are beyond the client.
fn video_hls_problems(profile: &ClientProfile, v: &VideoStream) -> Vec<String> {
    let mut problems = profile.video_problems(&video_traits(v));
    if v.codec == "h264" && problems.iter().any(|p| p.starts_with("video_codec_")) {
        problems = ClientProfile::generic().video_problems(&video_traits(v));
    }
    problems
}

/// Whether `profile` gets audio track `a` copied in `packaging`.
pub fn audio_copied(profile: &ClientProfile, a: &AudioStream, packaging: Packaging) -> bool {
    packaging.carries_audio(&a.codec)
        && (packaging == Packaging::Ts || profile.fmp4)
        && audio_hls_problem(profile, a).is_none()
}

/// Decides how `info` plays for the `generic` profile.
pub fn decide(info: &MediaInfo) -> Decision {
    decide_for(info, &ClientProfile::generic())
}

/// Decides how `info` plays for a client with `profile`.
pub fn decide_for(info: &MediaInfo, profile: &ClientProfile) -> Decision {
    let mut d = Decision {
        profile: profile.name.clone(),
        ..Decision::default()
    };
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
    let chosen = default_audio(&info.audio).map(|i| (i, &info.audio[i]));
    if let Some((i, _)) = chosen.filter(|_| info.audio.len() > 1) {
        d.reasons
            .push(format!("audio_track:{}_of_{}", i + 1, info.audio.len()));
    }
    let video = info.video.as_ref();
    let video_problems = video.map(|v| video_hls_problems(profile, v));
    let audio_problem = chosen.and_then(|(_, a)| audio_hls_problem(profile, a));
    let container = info.container.as_deref().unwrap_or("unknown");
    d.packaging = hls_packaging(
        profile,
        video,
        video_problems.as_deref(),
        chosen.map(|c| c.1),
    );
    let packaging = d.packaging;
    let mut audio_copy = None;
    if let Some((i, a)) = chosen {
        if audio_copied(profile, a, packaging) {
            audio_copy = Some(a.codec.clone());
            d.audio = Some((i, AudioPlan::Copy));
        } else if a.decodable {
            d.reasons.push(audio_problem.unwrap_or_else(|| {
                format!("audio_not_carried_in_{}:{}", packaging.as_str(), a.codec)
            }));
            d.audio = Some((i, AudioPlan::Transcode));
        } else {
            d.reasons.push(format!("audio_undecodable:{}", a.codec));
        }
    }

    let mut video_copy = None;
    if let (Some(v), Some(problems)) = (video, video_problems) {
        if problems.is_empty() && packaging.carries_video(&v.codec) {
            video_copy = Some(v.codec.clone());
            d.video = Some(VideoPlan::Copy);
        } else if v.decodable {
            let (width, height) = transcode_size(v);
            if problems.is_empty() {
                d.reasons.push(format!(
                    "video_not_carried_in_{}:{}",
                    packaging.as_str(),
                    v.codec
                ));
            }
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
    d.playback = Some(if d.hls_mode() == Playback::Remux {
        if !profile.plays_container(container) {
            d.reasons.push(format!("container_unsupported:{container}"));
        } else if video_copy.is_none() {
            d.reasons.push("no_video".into());
        }
        Playback::Remux
    } else {
        Playback::Transcode
    });
    if packaging == Packaging::Fmp4 {
        d.reasons.push("packaging:fmp4".into());
    }
    if let Some(codec) = video_copy {
        d.reasons.push(format!("video_copy:{codec}"));
    }
    if let Some(codec) = audio_copy {
        d.reasons.push(format!("audio_copy:{codec}"));
    }

    // Direct play: the client plays the container and every stream. The
    // HLS plan stays, for a client that asks for HLS all the same.
    let plays_file = profile.plays_container(container)
        && video.is_none_or(|v| profile.video_problems(&video_traits(v)).is_empty())
        && chosen.is_none_or(|(_, a)| profile.audio_problem(&a.codec, a.channels).is_none());
    if plays_file {
        d.playback = Some(Playback::DirectPlay);
        d.reasons = vec![format!("direct_play_container:{container}")];
        if let Some(v) = video {
            d.reasons.push(format!("video_copy:{}", v.codec));
        }
        if let Some((_, a)) = chosen {
            d.reasons.push(format!("audio_copy:{}", a.codec));
        }
    }
    d
}

/// The segment container of a file's HLS output for `profile`: MPEG-TS
/// unless a stream the client plays can be copied only into fragmented
/// MP4 (HEVC, AV1, VP9 video; Opus, FLAC audio) and the client takes it.
/// Encoded video always goes into MPEG-TS.
fn hls_packaging(
    profile: &ClientProfile,
    video: Option<&VideoStream>,
    video_problems: Option<&[String]>,
    audio: Option<&AudioStream>,
) -> Packaging {
    if !profile.fmp4 {
        return Packaging::Ts;
    }
    let video_plays = video_problems.is_some_and(|p| p.is_empty());
    let copies_video_in =
        |p: Packaging| video.is_some_and(|v| video_plays && p.carries_video(&v.codec));
    let copies_audio_in = |p: Packaging| audio.is_some_and(|a| audio_copied(profile, a, p));
    match video {
        Some(_) if copies_video_in(Packaging::Ts) => {
            if !copies_audio_in(Packaging::Ts) && copies_audio_in(Packaging::Fmp4) {
                Packaging::Fmp4
            } else {
                Packaging::Ts
            }
        }
        Some(_) if copies_video_in(Packaging::Fmp4) => Packaging::Fmp4,
        Some(_) => Packaging::Ts,
        None if !copies_audio_in(Packaging::Ts) && copies_audio_in(Packaging::Fmp4) => {
            Packaging::Fmp4
        }
        None => Packaging::Ts,
    }
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

    fn webm(video: &str, audio_codec: &str) -> MediaInfo {
        let mut v = h264(640, 360);
        v.codec = video.into();
        v.profile = Some("0".into());
        info("webm", Some(v), vec![audio(audio_codec)])
    }

    #[test]
    fn a_webm_plays_directly_in_chromium_and_is_transcoded_for_generic() {
        for (video, audio_codec) in [("vp8", "vorbis"), ("vp9", "opus")] {
            let file = webm(video, audio_codec);
            let d = decide_for(&file, &ClientProfile::chromium());
            assert_eq!(d.playback, Some(Playback::DirectPlay), "{video}");
            assert_eq!(d.profile, "chromium");
            let d = decide(&file);
            assert_eq!(d.playback, Some(Playback::Transcode), "{video}");
            assert!(d
                .reasons
                .contains(&format!("video_codec_unsupported:{video}")));
            assert!(d
                .reasons
                .contains(&format!("audio_codec_unsupported:{audio_codec}")));
        }
    }

    #[test]
    fn hevc_plays_directly_in_safari_and_remuxes_to_fmp4_from_mkv() {
        let mut v = h264(1920, 1080);
        v.codec = "hevc".into();
        v.profile = Some("main-10".into());
        v.bit_depth = Some(10);
        let mp4 = info("mp4", Some(v.clone()), vec![audio("aac")]);
        let d = decide_for(&mp4, &ClientProfile::safari());
        assert_eq!(d.playback, Some(Playback::DirectPlay));
        assert_eq!(
            d.reasons,
            [
                "direct_play_container:mp4",
                "video_copy:hevc",
                "audio_copy:aac"
            ]
        );
        let mkv = info("matroska", Some(v.clone()), vec![audio("dts")]);
        let d = decide_for(&mkv, &ClientProfile::safari());
        assert_eq!(d.playback, Some(Playback::Transcode));
        assert_eq!(d.packaging, Packaging::Fmp4);
        assert_eq!(d.video, Some(VideoPlan::Copy));
        assert_eq!(d.audio, Some((0, AudioPlan::Transcode)));
        assert!(d
            .reasons
            .contains(&"audio_codec_unsupported:dts".to_string()));
        let mkv = info("matroska", Some(v), vec![audio("aac")]);
        let d = decide_for(&mkv, &ClientProfile::safari());
        assert_eq!(
            (d.playback, d.packaging),
            (Some(Playback::Remux), Packaging::Fmp4)
        );
        assert!(d.reasons.contains(&"video_copy:hevc".to_string()));
        // chromium does not list HEVC: a transcode into MPEG-TS.
        let d = decide_for(&mkv, &ClientProfile::chromium());
        assert_eq!(
            (d.playback, d.packaging),
            (Some(Playback::Transcode), Packaging::Ts)
        );
        assert!(d
            .reasons
            .contains(&"video_codec_unsupported:hevc".to_string()));
    }

    #[test]
    fn h264_with_opus_goes_to_fmp4_only_for_a_client_that_plays_opus() {
        let mkv = info("matroska", Some(h264(1280, 720)), vec![audio("opus")]);
        let d = decide_for(&mkv, &ClientProfile::chromium());
        assert_eq!(
            (d.playback, d.packaging),
            (Some(Playback::Remux), Packaging::Fmp4)
        );
        let d = decide_for(&mkv, &ClientProfile::safari());
        assert_eq!(
            (d.playback, d.packaging),
            (Some(Playback::Transcode), Packaging::Ts)
        );
        assert_eq!(d.audio, Some((0, AudioPlan::Transcode)));
        // VP8 plays in chromium but no segment container carries it.
        let mut v = h264(640, 360);
        v.codec = "vp8".into();
        let d = decide_for(
            &info("matroska", Some(v), vec![audio("vorbis")]),
            &ClientProfile::chromium(),
        );
        assert_eq!(
            (d.playback, d.packaging),
            (Some(Playback::Transcode), Packaging::Ts)
        );
        assert!(d
            .reasons
            .contains(&"video_not_carried_in_ts:vp8".to_string()));
    }
}
