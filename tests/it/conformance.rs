//! MPEG-TS conformance of every segment hlsd writes (ISO/IEC 13818-1, RFC
//! 8216): remuxed and transcoded renditions, from sources with and
//! without B-frames, parsed packet by packet (`common::ts_check`).

use crate::common::ts_check::{check_rendition, TsReport};
use crate::common::*;
use std::path::Path;
use std::time::Duration;

/// Plays `name` from `dir` to the end, first asking for segment
/// `first_asked` (a producer starts there, another makes the segments
/// before it), and checks its video and audio renditions.
async fn check_item(dir: &Path, name: &str, first_asked: Option<usize>) -> (TsReport, TsReport) {
    let media = media_subset(&[dir.join(name)]);
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let id = server.media_id(name).await;
    let started = server.start_hls(&id, ALICE).await;
    let master = started["master_url"].as_str().unwrap();
    if let Some(n) = first_asked {
        let variant = fetch_master(&server, master, ALICE).await.variant;
        let r = get_segment(&server, &segment_url(&variant, n), ALICE).await;
        assert_eq!(r.status(), 200, "{name}: segment {n}");
    }
    let played = play_hls(&server, master, ALICE).await;
    server.stop().await;
    let video = check_rendition(&played.segment_bytes);
    let audio = check_rendition(&played.audio_bytes);
    for (what, report) in [("video", &video), ("audio", &audio)] {
        println!(
            "{name} {what}: {} segments, {} PES ({} with a DTS), {} PCRs, largest PCR gap {:.1} ms",
            if what == "video" {
                played.segment_bytes.len()
            } else {
                played.audio_bytes.len()
            },
            report.pes,
            report.with_dts,
            report.pcrs,
            report.max_pcr_gap as f64 / 90.0
        );
        assert!(
            report.violations.is_empty(),
            "{name} {what}: {:#?}",
            report.violations
        );
    }
    (video, audio)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remuxed_b_frame_video_carries_decode_times_and_a_steady_pcr() {
    // H.264 with B-frames in Matroska, which gives no decode times.
    let (video, audio) = check_item(&fixtures_dir(), "remux_h264_aac.mkv", None).await;
    assert!(video.pes > 100 && audio.pes > 100);
    assert!(
        video.with_dts > video.pes / 2,
        "B-frames need a DTS: {video:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcoded_segments_are_conformant() {
    let (video, audio) = check_item(&fixtures_dir(), "transcode_vp8_vorbis_20s.webm", None).await;
    assert!(video.pes > 100 && audio.pes > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_fps_remux_gets_pcrs_between_frames_and_counters_run_on_across_producers() {
    let Some(shared) = shared_media() else { return };
    // H.264 without B-frames at 1 fps, 600 s: frames lie 1 s apart, key
    // frames 60 s (so 10 segments of 60 s). Its segment 5 is asked for
    // first, so two producers make the segments either side of 4 | 5.
    let (video, _) = check_item(&shared, "h264_1fps_countdown_600s.mkv", Some(5)).await;
    assert!(video.pes >= 590, "{video:?}");
    assert!(
        video.pcrs > 5 * video.pes,
        "PCRs between 1 s frames: {video:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remux_without_b_frames_and_with_5_1_audio_is_conformant() {
    let Some(shared) = shared_media() else { return };
    let (video, audio) = check_item(&shared, "derived_h264_aac51_bbb_720p.mkv", None).await;
    assert!(video.pes > 100 && audio.pes > 100);
}

/// The checker itself: `mpegtsmux`'s output (the reference the issue
/// names) passes, and the faults it must catch are caught.
#[test]
fn the_checker_passes_mpegtsmux_output_and_catches_each_fault() {
    use gst::prelude::*;
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reference.ts");
    let pipeline = gst::parse::launch(&format!(
        "videotestsrc num-buffers=75 ! video/x-raw,width=320,height=240,framerate=25/1 \
         ! x264enc bframes=2 key-int-max=25 ! h264parse ! mpegtsmux ! filesink location={}",
        path.display()
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let good = std::fs::read(&path).unwrap();
    let report = check_rendition(std::slice::from_ref(&good));
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert!(report.pes >= 75 && report.with_dts > 0, "{report:?}");

    // The packet of the 10th video PES start, and its adaptation field.
    let starts: Vec<usize> = (0..good.len() / 188)
        .filter(|i| {
            let p = &good[i * 188..];
            p[1] & 0x40 != 0
                && ((u16::from(p[1] & 0x1f) << 8) | u16::from(p[2])) > 0x20
                && p[3] & 0x30 == 0x30
                && p[5] & 0x10 != 0
        })
        .collect();
    let at = starts[10] * 188;
    let broken = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        check_rendition(&[b]).violations
    };
    // A continuity counter skipped.
    let v = broken(&|b| b[at + 3] = (b[at + 3] & 0xf0) | ((b[at + 3] + 2) & 0x0f));
    assert!(v.iter().any(|m| m.contains("continuity")), "{v:?}");
    // A PCR moved back (by 2^25 ticks, 373 s).
    let v = broken(&|b| b[at + 6] = b[at + 6].wrapping_sub(1));
    assert!(v.iter().any(|m| m.contains("PCR")), "{v:?}");
    // The PAT missing from the start.
    let v = broken(&|b| {
        b.drain(..188);
    });
    assert!(v.iter().any(|m| m.contains("PAT")), "{v:?}");
}
