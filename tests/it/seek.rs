//! Seeking in a transcode: a complete VOD playlist from the start, a fixed
//! 6-second grid, relocation of the encoder to a requested segment, and
//! throttling when nobody asks for more; and cold seeks in copied video,
//! which land on their key frame in every container.

use crate::common::*;
use std::time::{Duration, Instant};

/// The frame rate of [`make_long_avi`]'s video.
const FPS: f64 = 30_000.0 / 1001.0;

/// Fetches segment `n` beside media playlist `playlist` (retrying 503s)
/// and returns its bytes.
async fn segment(server: &TestServer, playlist: &str, n: usize) -> Vec<u8> {
    let r = get_segment(server, &segment_url(playlist, n), ALICE).await;
    assert_eq!(r.status(), 200, "segment {n}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_seek_near_the_end_returns_the_right_media_without_encoding_the_rest() {
    if video_pts(&[]).is_none() {
        skip("ffprobe is not installed (scripts/setup.sh installs it)");
        return;
    }
    let (media, name) = long_avi_dir(600).await;
    // The 6 s grid throughout (the short first segment has its own test).
    let server = start_server_with(media.path(), |c| {
        c.sessions.session_timeout = Duration::from_secs(600).into();
        c.supervisor.first_segment = Duration::from_secs(6).into();
    })
    .await;
    let item = server.media(&name).await;
    let duration = item["duration_s"].as_f64().unwrap();
    let started = server.start_hls(item["id"].as_str().unwrap(), ALICE).await;
    assert_eq!(started["mode"], "transcode");
    let sid = started["session_id"].as_str().unwrap().to_string();
    let master = fetch_master(&server, started["master_url"].as_str().unwrap(), ALICE).await;
    let base = master.variant.clone();
    let audio = master.audio[0].clone();

    // The whole timeline at once: VOD, one 6 s slot per segment, ENDLIST.
    let r = server.get(&base, ALICE).await;
    assert_eq!(r.status(), 200);
    let text = r.bytes().await.unwrap();
    let playlist = match m3u8_rs::parse_playlist_res(&text) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => m,
        other => panic!("not a media playlist: {other:?}"),
    };
    assert_eq!(
        playlist.playlist_type,
        Some(m3u8_rs::MediaPlaylistType::Vod)
    );
    assert!(playlist.end_list);
    assert_eq!(playlist.segments.len(), 100, "600 s in 6 s slots");
    assert!(playlist.segments[..99]
        .iter()
        .all(|s| (s.duration - 6.0).abs() < 1e-6));
    let total: f64 = playlist.segments.iter().map(|s| s.duration as f64).sum();
    assert!((total - duration).abs() < 0.01, "{total} vs {duration}");

    // A cold seek: the first request is for segment 95, [570 s, 576 s).
    let t0 = Instant::now();
    let s95 = segment(&server, &base, 95).await;
    let seek_time = t0.elapsed();
    let view = session_view(&server, &sid, ALICE).await;
    println!("cold seek to segment 95: {seek_time:?}; session then: {view}");
    // The encoder went to 95 rather than through the 570 s before it.
    assert!(
        view["segments_ready"].as_u64().unwrap() <= 5,
        "encoded through the file: {view}"
    );
    let on_disk: Vec<String> = server
        .files_ending(".ts")
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!on_disk.is_empty());
    assert!(
        on_disk.iter().all(|n| n.as_str() >= "segment_00095.ts"),
        "{on_disk:?}"
    );

    // Sequential playback continues from there with no gap or overlap.
    let s96 = segment(&server, &base, 96).await;
    let s97 = segment(&server, &base, 97).await;
    let p95 = video_pts(&s95).unwrap();
    let p96 = video_pts(&s96).unwrap();
    let p97 = video_pts(&s97).unwrap();
    for (a, b, n) in [(&p95, &p96, 96), (&p96, &p97, 97)] {
        let gap = b[0] - (a[a.len() - 1] + 1.0 / FPS);
        assert!(
            gap.abs() < 0.5 / FPS,
            "segment {n} starts {gap:+.4} s off where {} ends",
            n - 1
        );
    }
    // Audio and video segments start together (within one AAC frame,
    // 21 ms, plus one video frame).
    for (n, video) in [(95, &p95), (96, &p96), (97, &p97)] {
        let a = get_segment(&server, &segment_url(&audio, n), ALICE).await;
        assert_eq!(a.status(), 200);
        let audio_pts = stream_pts(&a.bytes().await.unwrap(), "a").unwrap();
        let skew = audio_pts[0] - video[0];
        assert!(
            skew.abs() < 0.03 + 1.0 / FPS,
            "segment {n}: audio starts {skew:+.4} s from video"
        );
    }
    // Each segment decodes on its own.
    for (n, bytes) in [(95, &s95), (96, &s96), (97, &s97)] {
        let bytes = bytes.clone();
        let d = tokio::task::spawn_blocking(move || decode_ts(&bytes))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("segment {n} does not decode: {e}"));
        assert!(d.video_frames >= 170, "{n}: {d:?}");
    }

    // Back to the start: behind where the encoder began, so it moves again.
    let s0 = segment(&server, &base, 0).await;
    let p0 = video_pts(&s0).unwrap();
    // Every segment sits on the playlist's timeline: its first frame is
    // within one frame of 6n after segment 0's.
    for (n, pts) in [(95, &p95), (96, &p96), (97, &p97)] {
        let offset = pts[0] - p0[0] - 6.0 * n as f64;
        assert!(
            offset.abs() <= 1.0 / FPS + 1e-3,
            "segment {n} starts {offset:+.4} s off its slot"
        );
    }
    // The last segment ends the file.
    let last = segment(&server, &base, 99).await;
    let p99 = video_pts(&last).unwrap();
    assert!((p99[p99.len() - 1] - p0[0] - 600.0).abs() < 0.1, "{p99:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwatched_encoder_is_throttled_and_resumes_on_request() {
    let (media, name) = long_avi_dir(180).await;
    let server = start_server_with(media.path(), |c| {
        c.supervisor.throttle_margin_s = Duration::from_secs(30).into()
    })
    .await;
    let id = server.media_id(&name).await;
    let started = server.start_hls(&id, ALICE).await;
    let sid = started["session_id"].as_str().unwrap().to_string();
    let base = fetch_master(&server, started["master_url"].as_str().unwrap(), ALICE)
        .await
        .variant;
    segment(&server, &base, 0).await;

    // Nobody asks for more: the encoder stops 30 s past segment 0's end.
    let held = wait_throttled(&server, &sid, 0.0).await;
    let p1 = held["position_s"].as_f64().unwrap();
    assert!((30.0..=36.5).contains(&p1), "held at {p1}: {held}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = session_view(&server, &sid, ALICE).await;
    assert_eq!(still["position_s"].as_f64().unwrap(), p1, "{still}");
    assert_eq!(still["state"], "throttled");

    // A request for segment 5 ([30 s, 36 s)) moves the limit to 66 s.
    segment(&server, &base, 5).await;
    let held = wait_throttled(&server, &sid, p1 + 1.0).await;
    let p2 = held["position_s"].as_f64().unwrap();
    assert!((60.0..=66.5).contains(&p2), "held again at {p2}: {held}");
    server.stop().await;
}

/// Polls the session until it is throttled past media time `above`
/// (seconds); returns its view.
async fn wait_throttled(server: &TestServer, sid: &str, above: f64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let v = session_view(server, sid, ALICE).await;
        if v["state"] == "throttled" && v["position_s"].as_f64().unwrap() > above {
            return v;
        }
        assert!(Instant::now() < deadline, "never throttled: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_seeks_in_copied_video_land_on_their_key_frame_in_every_container() {
    if video_pts(&[]).is_none() {
        skip("ffprobe is not installed (scripts/setup.sh installs it)");
        return;
    }
    let Some(made) = keyframe_media() else { return };
    // ffmpeg's MKV (video starts 21 ms after the audio), MP4 (an edit
    // list), MPEG-TS (PCR 0.7 s before the first PTS) and AVI: demuxers
    // that each map times differently after a seek.
    let names = [
        "bf_ffmpeg.mkv",
        "bf_ffmpeg.mp4",
        "bf_ffmpeg.ts",
        "bf_ffmpeg.avi",
    ];
    let media = media_subset(&names.map(|n| made.join(n)));
    // A 1 s margin holds the first producer near segment 0, so the
    // requests below start producers that seek.
    let server = start_server_with(media.path(), |c| {
        c.supervisor.throttle_margin_s = Duration::from_secs(1).into()
    })
    .await;
    for name in names {
        let id = server.media_id(name).await;
        let s = server.start_hls(&id, ALICE).await;
        let m = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE).await;
        let playlist = complete_playlist(&server, &m.variant, ALICE).await;
        let durations: Vec<f64> = playlist
            .segments
            .iter()
            .map(|s| s.duration as f64)
            .collect();
        assert!(durations.len() >= 8, "{name}: {durations:?}");
        for n in [5, 6, durations.len() - 1] {
            let place: f64 = durations[..n].iter().sum();
            let r = get_segment(&server, &segment_url(&m.variant, n), ALICE).await;
            assert_eq!(r.status(), 200, "{name} {n}");
            let bytes = r.bytes().await.unwrap().to_vec();
            let first = first_video_s(&bytes);
            assert!(
                (first - place).abs() < 0.002,
                "{name}: segment {n} starts at {first:.3} s, listed at {place:.3} s"
            );
            let a = get_segment(&server, &segment_url(&m.audio[0], n), ALICE).await;
            let audio = stream_pts(&a.bytes().await.unwrap(), "a").unwrap()[0] - 3600.0;
            assert!(
                (audio - place).abs() < 0.03,
                "{name}: audio segment {n} starts at {audio:.3} s, listed at {place:.3} s"
            );
        }
    }
    server.stop().await;
}
