//! Unit tests of the playback decision, per client profile.

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
        colour: None,
        hdr: None,
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
        // The top of its ladder: the source's size, at most 1080 lines.
        Some(VideoPlan::Transcode {
            width: 1920,
            height: 1080,
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
    assert_eq!(transcode_size(&h264(1920, 1080), 720), (1280, 720));
    // never upscale
    assert_eq!(transcode_size(&h264(320, 180), 720), (320, 180));
    // odd height rounds down to even
    assert_eq!(transcode_size(&h264(640, 465), 720), (638, 464));
    assert_eq!(transcode_size(&h264(720, 405), 720), (718, 404));
    // rotation swaps the display dimensions
    let mut v = h264(1920, 1080);
    v.rotation = 90;
    assert_eq!(transcode_size(&v, 720), (404, 720));
    // anamorphic SVCD 480x576 with 8:5 pixels displays as 768x576
    let mut v = h264(480, 576);
    v.pixel_aspect = (8, 5);
    assert_eq!(transcode_size(&v, 720), (768, 576));
    // odd widths from tiny sources stay even
    assert_eq!(transcode_size(&h264(190, 240), 720), (190, 240));
    assert_eq!(transcode_size(&h264(191, 241), 720), (190, 240));
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

#[test]
fn mp3_is_copied_into_ts_but_not_out_of_avi() {
    let mp3 = audio("mp3");
    assert!(copies_from("mp3", &mp3, Packaging::Ts));
    assert!(copies_from("matroska", &mp3, Packaging::Ts));
    assert!(!copies_from("avi", &mp3, Packaging::Ts));
    assert!(!copies_from("mp3", &mp3, Packaging::Fmp4));
    let info = MediaInfo {
        duration: Some(std::time::Duration::from_secs(5)),
        container: Some("mp3".into()),
        audio: vec![mp3],
        ..Default::default()
    };
    let d = decide(&info);
    assert_eq!(d.playback, Some(Playback::Remux), "{:?}", d.reasons);
    assert_eq!(d.audio, Some((0, AudioPlan::Copy)));
    let d = decide_for(&info, &ClientProfile::chromium());
    assert_eq!(d.playback, Some(Playback::DirectPlay), "{:?}", d.reasons);
}
