//! Unit tests of renditions, presentations and rendition keys.

use super::*;
use crate::library::decision::tests::{audio as audio_stream, h264};
use crate::library::{decide, AudioStream, MediaInfo, VideoStream};
use crate::packaging::Packaging;

fn item(codec: &str, audio: &str, container: &str) -> MediaItem {
    let info = MediaInfo {
        duration: Some(std::time::Duration::from_secs(10)),
        container: Some(container.into()),
        video: Some(VideoStream {
            codec: codec.into(),
            level: Some("3.1".into()),
            ..h264(1920, 1080)
        }),
        audio: vec![AudioStream {
            channels: 6,
            language: Some("en".into()),
            ..audio_stream(audio)
        }],
        ..Default::default()
    };
    MediaItem::from_probe(
        std::path::Path::new("/m"),
        std::path::Path::new("/m/a.mkv"),
        crate::library::FileStamp {
            size_bytes: 1_000_000,
            ..Default::default()
        },
        &info,
        decide(&info),
    )
}

const INPUTS: KeyInputs<'static> = KeyInputs {
    video_template: "x264 crf=23",
    audio_template: "avenc_aac",
    first_segment_ms: 6000,
    max_height: 1080,
    tonemap: crate::tonemap::Curve::Bt2390,
};

#[test]
fn every_playable_audio_track_is_a_rendition_with_its_own_codec() {
    let mut it = item("h264", "aac", "matroska");
    it.audio[0].profile = Some("he-aac".into());
    let mut fre = audio_stream("ac3");
    fre.index = 1;
    fre.language = Some("fr".into());
    fre.default = true;
    let mut bad = audio_stream("cook");
    bad.index = 2;
    bad.decodable = false;
    it.audio.extend([fre, bad]);
    let r = renditions_of(&it, Presentation::of(&it.decision), &INPUTS);
    let audio: Vec<(&str, &str, bool)> = r
        .iter()
        .filter(|r| !r.plan.is_video())
        .map(|r| (r.name.as_str(), r.codecs.as_str(), r.default))
        .collect();
    // The undecodable track is left out; the decision's track (the
    // first, decided before the flags were added here) is the default.
    assert_eq!(
        audio,
        [
            ("audio-0-copy", "mp4a.40.5", true),
            // 5.1: a stereo encode too, for clients under a limit.
            ("audio-0-aac", "mp4a.40.2", true),
            ("audio-1-aac", "mp4a.40.2", false)
        ]
    );
    let fr = r.iter().find(|r| r.name == "audio-1-aac").unwrap();
    assert_eq!(fr.label.as_deref(), Some("fr ac3 stereo"));
}

#[test]
fn a_remux_has_the_copy_with_the_rungs_below_it_and_a_copied_audio_rendition() {
    // 5 MB over 10 s: 4 Mb/s, under the 720p rung's cap (2.9 Mb/s) and
    // over the 1080p one's (6 Mb/s). The rungs are cut on the copy's key
    // frames: `-kf`.
    let mut it = item("h264", "aac", "matroska");
    it.size_bytes = 5_000_000;
    let r = renditions_of(&it, Presentation::of(&it.decision), &INPUTS);
    let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "video-copy",
            "video-720p-kf",
            "video-480p-kf",
            "video-360p-kf",
            "audio-0-copy",
            "audio-0-aac"
        ]
    );
    // 0.8 Mb/s: no rung is cheaper; the lowest stays, for a limit to lower.
    let thin = item("h264", "aac", "matroska");
    let r_thin = renditions_of(&thin, Presentation::of(&thin.decision), &INPUTS);
    let video: Vec<&str> = r_thin
        .iter()
        .filter(|r| r.plan.is_video())
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(video, ["video-copy", "video-360p-kf"]);
    // A lowered cap is in the name, and the name gives the presentation.
    let floored = Presentation {
        floor_kbps: Some(64),
        ..Presentation::of(&thin.decision)
    };
    let low = renditions_of(&thin, floored, &INPUTS);
    assert_eq!(low[1].name, "video-360p-kf-f64k");
    assert_ne!(low[1].key, r_thin[1].key);
    assert_eq!(Presentation::of_video_name(&low[1].name), Some(floored));
    assert_eq!(
        Presentation::of_video_name("video-720p"),
        Some(Presentation {
            packaging: Packaging::Ts,
            copy_video: false,
            floor_kbps: None
        })
    );
    assert_eq!(Presentation::of_video_name("audio-0-copy"), None);
    assert_eq!(r[0].plan, Plan::VideoCopy);
    assert_eq!(r[0].codecs, "avc1.64001f");
    assert_eq!(r[0].resolution, Some((1920, 1080)));
    assert_eq!(
        (r[4].channels, r[4].language.as_deref()),
        (Some(6), Some("en"))
    );
    assert_ne!(r[0].key, r[4].key);
    // A source far above the 1080p rung's cap (40 MB over 10 s: 32 Mb/s)
    // keeps that rung too.
    let mut rich = item("h264", "aac", "matroska");
    rich.size_bytes = 40_000_000;
    let r = renditions_of(&rich, Presentation::of(&rich.decision), &INPUTS);
    assert_eq!(r[1].name, "video-1080p-kf");
    assert_eq!(r.iter().filter(|r| r.plan.is_video()).count(), 5);
    // Undecodable video has its copy alone.
    let mut odd = item("h264", "aac", "matroska");
    odd.video.as_mut().unwrap().decodable = false;
    let r = renditions_of(&odd, Presentation::of(&odd.decision), &INPUTS);
    assert_eq!(r.iter().filter(|r| r.plan.is_video()).count(), 1);
}

#[test]
fn a_transcode_is_a_ladder_keyed_on_the_encoder_and_grid() {
    let it = item("hevc", "ac3", "matroska");
    let r = renditions_of(&it, Presentation::of(&it.decision), &INPUTS);
    let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "video-1080p",
            "video-720p",
            "video-480p",
            "video-360p",
            "audio-0-aac"
        ]
    );
    assert_eq!(r[1].codecs, "avc1.64001f");
    assert_eq!(r[1].resolution, Some((1280, 720)));
    // Each rung's cap bounds its BANDWIDTH; richer rungs cost more.
    assert!(r[..4]
        .windows(2)
        .all(|p| p[0].bandwidth_bps > p[1].bandwidth_bps));
    assert!(r[..4].iter().all(|v| v.average_bps < v.bandwidth_bps));
    let Plan::VideoEncode { maxrate_kbps, .. } = r[0].plan else {
        panic!("an encode")
    };
    assert_eq!(maxrate_kbps, 6000);
    // --max-height 720: no 1080p rung.
    let capped = KeyInputs {
        max_height: 720,
        ..INPUTS
    };
    let r720 = renditions_of(&it, Presentation::of(&it.decision), &capped);
    assert_eq!(r720[0].name, "video-720p");
    assert_eq!(r720[0].key, r[1].key, "the same rung, the same bytes");
    assert_eq!(r[4].channels, Some(2));
    let again = renditions_of(&it, Presentation::of(&it.decision), &INPUTS);
    assert_eq!(r[0].key, again[0].key, "stable");
    let other_encoder = KeyInputs {
        video_template: "x264 crf=20",
        ..INPUTS
    };
    let other = renditions_of(&it, Presentation::of(&it.decision), &other_encoder);
    assert_ne!(r[0].key, other[0].key);
    assert_eq!(
        r[4].key, other[4].key,
        "audio does not hang on the video branch"
    );
    let fast_start = KeyInputs {
        first_segment_ms: 2000,
        ..INPUTS
    };
    let fast = renditions_of(&it, Presentation::of(&it.decision), &fast_start);
    assert_ne!(r[4].key, fast[4].key);
    // A 2 s first segment may carry more of the VBV buffer per second.
    assert!(fast[1].bandwidth_bps > r[1].bandwidth_bps);
}

#[test]
fn an_fmp4_presentation_copies_hevc_and_offers_opus_copied_and_encoded() {
    let mut it = item("hevc", "opus", "matroska");
    it.size_bytes = 5_000_000;
    it.video.as_mut().unwrap().profile = Some("main".into());
    let fmp4 = Presentation {
        packaging: Packaging::Fmp4,
        copy_video: true,
        floor_kbps: None,
    };
    let r = renditions_of(&it, fmp4, &INPUTS);
    let names: Vec<&str> = r.iter().map(|r| r.name.as_str()).collect();
    // H.264 rungs in fMP4 beside the HEVC copy: one packaging a master.
    assert_eq!(
        names,
        [
            "video-copy-cmaf",
            "video-720p-kf-cmaf",
            "video-480p-kf-cmaf",
            "video-360p-kf-cmaf",
            "audio-0-copy-cmaf",
            "audio-0-aac-cmaf"
        ]
    );
    assert_eq!(r[0].codecs, "hvc1.1.6.L93.B0");
    assert_eq!(r[1].codecs, "avc1.64001f");
    let ts_720 = renditions_of(&it, Presentation::of(&it.decision), &INPUTS)
        .into_iter()
        .find(|r| r.name == "video-720p")
        .unwrap();
    assert_ne!(r[1].key, ts_720.key, "other bytes in fMP4");
    let r: Vec<Rendition> = r.into_iter().filter(|r| !r.name.contains("-kf")).collect();
    assert_eq!(r[1].codecs, "Opus");
    assert!(r.iter().all(|r| r.packaging == Packaging::Fmp4));
    // The same plan in another packaging is other bytes.
    let ts = renditions_of(&it, Presentation::of(&it.decision), &INPUTS);
    let aac_ts = ts.iter().find(|r| r.name == "audio-0-aac").unwrap();
    assert_ne!(aac_ts.key, r[2].key);
    // A client that plays Opus gets the copy, another the encode.
    assert_eq!(audio_options(&r, |_| true, None), RenditionSet::one(1));
    assert_eq!(audio_options(&r, |_| false, None), RenditionSet::one(2));
}

#[test]
fn levels_follow_table_a1_and_codec_strings_rfc_6381() {
    assert_eq!(h264_level_idc(1280, 720, 30.0), 31);
    assert_eq!(h264_level_idc(1280, 720, 60.0), 32);
    assert_eq!(h264_level_idc(1920, 1080, 30.0), 40);
    assert_eq!(h264_level_idc(640, 360, 25.0), 30);
    assert_eq!(avc1_codec(Some("high"), Some("3.1"), 0), "avc1.64001f");
    assert_eq!(avc1_codec(Some("main"), Some("4"), 0), "avc1.4d4028");
    assert_eq!(
        avc1_codec(Some("constrained-baseline"), None, 30),
        "avc1.42e01e"
    );
}

#[test]
fn only_plausible_language_tags_are_kept() {
    assert_eq!(language_tag(Some("fre")).as_deref(), Some("fre"));
    assert_eq!(language_tag(Some("EN")).as_deref(), Some("en"));
    assert_eq!(language_tag(Some("english")), None);
    assert_eq!(language_tag(Some("e\"n")), None);
    assert_eq!(language_tag(None), None);
}
