//! One encode for every viewer: renditions in a shared segment store,
//! producers that follow the viewers, and the bounds that keep it honest
//! (a paused remux, a lying header, a burst of seeks, a deleted file).

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The frame rate of [`make_long_avi`]'s video.
const FPS: f64 = 30_000.0 / 1001.0;

/// Runs a gst-launch description to its end (files made for a test).
fn launch(description: &str) {
    gst::init().unwrap();
    use gst::prelude::*;
    let pipeline = gst::parse::launch(description).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(300)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{description}: {}", e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

/// `seconds` of H.264 with B-frames (a key frame every 100 frames at
/// 30 fps: 3.33 s, off the 6 s grid) and AAC, in Matroska: a remux file.
/// Encoded by GStreamer, then copied into Matroska by ffmpeg, whose Cues
/// list every key frame: `matroskamux`'s do not, so the key frames would
/// come from a demux pass, published as a growing (EVENT) playlist when
/// the pass takes longer than its first progress report (it did on a
/// loaded machine).
fn make_remux_mkv(dir: &Path, seconds: u32) -> PathBuf {
    make_remux_mkv_gop(dir, seconds, 100)
}

/// [`make_remux_mkv`] with a key frame every `gop` frames.
fn make_remux_mkv_gop(dir: &Path, seconds: u32, gop: u32) -> PathBuf {
    let path = dir.join(format!("remux_bframes_{seconds}s_gop{gop}.mkv"));
    let encoded = dir.join(format!("remux_bframes_{seconds}s.gst.mkv.tmp"));
    launch(&format!(
        "videotestsrc num-buffers={} pattern=ball ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
         ! x264enc speed-preset=superfast key-int-max={gop} bitrate=1500 ! h264parse ! queue ! mux. \
         audiotestsrc num-buffers={} samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 \
         ! avenc_aac ! aacparse ! queue ! mux. matroskamux name=mux ! filesink location={}",
        seconds * 30,
        (seconds as u64 * 48_000).div_ceil(1024),
        encoded.display()
    ));
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&encoded)
        .args(["-map", "0", "-c", "copy"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg copies the file into Matroska");
    std::fs::remove_file(&encoded).unwrap();
    path
}

/// Media seconds transcoded so far (admin statistics).
async fn transcoded_s(server: &TestServer) -> f64 {
    server.admin_stats(ALICE).await["media_seconds_transcoded"]
        .as_f64()
        .unwrap()
}

/// Producers that exist and are not being torn down.
fn live_producers(stats: &Value) -> u64 {
    stats["producers"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|phases| phases.as_object().unwrap().iter())
        .filter(|(phase, _)| phase.as_str() != "stopping")
        .map(|(_, n)| n.as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_of_one_title_share_one_encode() {
    let (media, name) = long_avi_dir(60).await;
    let server = start_server_with(media.path(), |c| c.http.admins = vec!["alice".into()]).await;
    let id = server.media_id(&name).await;
    let alice = server.start_hls(&id, ALICE).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let bob = server.start_hls(&id, BOB).await;
    assert_ne!(alice["session_id"], bob["session_id"]);
    let (a, b) = tokio::join!(
        play_hls(&server, alice["master_url"].as_str().unwrap(), ALICE),
        play_hls(&server, bob["master_url"].as_str().unwrap(), BOB)
    );
    assert!(a.segments >= 10, "60 s in 6 s segments: {}", a.segments);
    assert_eq!(a.segments, b.segments);
    assert_eq!(a.segment_bytes, b.segment_bytes, "the same bytes for both");
    assert_eq!(a.audio_bytes, b.audio_bytes);
    for (i, bytes) in a.segment_bytes.iter().chain(&a.audio_bytes).enumerate() {
        let bytes = bytes.clone();
        let d = tokio::task::spawn_blocking(move || decode_ts(&bytes))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("segment {i} does not decode: {e}"));
        assert!(d.video_frames + d.audio_buffers > 0, "{i}: {d:?}");
    }
    let seconds = transcoded_s(&server).await;
    println!("two users of a 60 s title: {seconds} media seconds transcoded");
    assert!(
        (55.0..=66.0).contains(&seconds),
        "one file's length, not two: {seconds}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_players_of_one_session_60_s_apart_never_wait_for_each_other() {
    if video_pts(&[]).is_none() {
        skip("ffprobe is not installed (scripts/setup.sh installs it)");
        return;
    }
    let (media, name) = long_avi_dir(600).await;
    // Segment n at 6n s (the short first segment has its own test).
    let server = start_server_with(media.path(), |c| {
        c.sessions.session_timeout = Duration::from_secs(600).into();
        c.supervisor.first_segment = Duration::from_secs(6).into();
    })
    .await;
    let id = server.media_id(&name).await;
    let started = server.start_hls(&id, ALICE).await;
    let master = started["master_url"].as_str().unwrap().to_string();
    // Two devices of one account: two fetches of the master playlist.
    let first = fetch_master(&server, &master, ALICE).await;
    let second = fetch_master(&server, &master, ALICE).await;
    assert_ne!(
        first.variant, second.variant,
        "each player gets its own token"
    );

    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let play = |playlist: String,
                start_gate: Option<tokio::sync::oneshot::Receiver<()>>,
                ready: Option<tokio::sync::oneshot::Sender<()>>| {
        let server = &server;
        async move {
            if let Some(gate) = start_gate {
                gate.await.unwrap();
            }
            let mut ready = ready;
            let mut firsts = Vec::new();
            for n in 0..100 {
                let r = server.get(&segment_url(&playlist, n), ALICE).await;
                assert_eq!(
                    r.status(),
                    200,
                    "segment {n}: {}",
                    r.text().await.unwrap_or_default()
                );
                let bytes = r.bytes().await.unwrap().to_vec();
                firsts.push((
                    n,
                    tokio::task::spawn_blocking(move || first_video_s(&bytes))
                        .await
                        .unwrap(),
                ));
                if n == 10 {
                    // 60 s in: the second device starts from the beginning.
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(());
                    }
                }
            }
            firsts
        }
    };
    let (a, b) = tokio::join!(
        play(first.variant.clone(), None, Some(tx)),
        play(second.variant.clone(), Some(rx), None)
    );
    for (player, firsts) in [("first", a), ("second", b)] {
        for (n, t) in firsts {
            let off = t - 6.0 * n as f64;
            assert!(
                off.abs() <= 1.0 / FPS + 1e-3,
                "{player} player: segment {n} starts {off:+.4} s off its place"
            );
        }
    }
    let view = session_view(&server, started["session_id"].as_str().unwrap(), ALICE).await;
    assert_eq!(view["players"], 2, "{view}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_remux_viewer_costs_only_the_throttle_margin_and_seeks_anywhere() {
    if video_pts(&[]).is_none() {
        skip("ffprobe is not installed (scripts/setup.sh installs it)");
        return;
    }
    let media = tempfile::tempdir().unwrap();
    let dir = media.path().to_path_buf();
    let file = tokio::task::spawn_blocking(move || make_remux_mkv(&dir, 300))
        .await
        .unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    // Cuts at or after each 6 s boundary (the short first segment has its
    // own test).
    let server = start_server_with(media.path(), |c| {
        c.sessions.session_timeout = Duration::from_secs(600).into();
        c.supervisor.first_segment = Duration::from_secs(6).into();
    })
    .await;
    let item = server.media("remux_bframes_300s_gop100.mkv").await;
    assert_eq!(item["playback"], "remux");
    let started = server.start_hls(item["id"].as_str().unwrap(), ALICE).await;
    let m = fetch_master(&server, started["master_url"].as_str().unwrap(), ALICE).await;

    // The whole timeline at once, before anything is made: VOD, cut on the
    // source's key frames (every 3.33 s) at or after each 6 s boundary.
    let r = server.get(&m.variant, ALICE).await;
    assert_eq!(r.status(), 200);
    let playlist = match m3u8_rs::parse_playlist_res(&r.bytes().await.unwrap()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        playlist.playlist_type,
        Some(m3u8_rs::MediaPlaylistType::Vod)
    );
    assert!(playlist.end_list);
    let durations: Vec<f64> = playlist
        .segments
        .iter()
        .map(|s| s.duration as f64)
        .collect();
    let total: f64 = durations.iter().sum();
    assert!((total - 300.0).abs() < 0.1, "{total}");
    assert!(
        (durations[0] - 6.667).abs() < 0.01 && (durations[1] - 6.667).abs() < 0.01,
        "key frames every 3.33 s: cuts at 6.67, 13.33, ... ({:?})",
        &durations[..3]
    );

    // Only segment 0 is asked for; then the viewer pauses.
    let r = get_segment(&server, &segment_url(&m.variant, 0), ALICE).await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = server.store_bytes();
    let view = session_view(&server, started["session_id"].as_str().unwrap(), ALICE).await;
    // 120 s of margin past the end of segment 0 (6.67 s).
    let limit = 6.667 + 120.0;
    let stored = server.files_ending(".ts").len() / 2;
    let within = durations
        .iter()
        .scan(0.0, |t, d| {
            *t += d;
            Some(*t)
        })
        .take_while(|end| *end <= limit + durations[0])
        .count();
    println!(
        "paused remux viewer: producer {} at {} s; store {held} bytes ({:.0} % of the {size}-byte file), {stored} of {} segments",
        view["state"],
        view["position_s"],
        held as f64 / size as f64 * 100.0,
        durations.len()
    );
    assert_eq!(view["state"], "throttled", "{view}");
    let position = view["position_s"].as_f64().unwrap();
    assert!(position <= limit + 0.1, "held at {position} s");
    assert!(
        stored <= within,
        "{stored} segments stored, {within} within the margin"
    );
    assert!(
        (held as f64) < size as f64 * 0.6,
        "{held} bytes in the store"
    );

    // A cold request for the last segment: it opens on the key frame the
    // playlist lists for that place.
    let last = durations.len() - 1;
    let place: f64 = durations[..last].iter().sum();
    let r = get_segment(&server, &segment_url(&m.variant, last), ALICE).await;
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap().to_vec();
    let first = first_video_s(&bytes);
    assert!(
        (first - place).abs() < 0.002,
        "last segment starts at {first}, listed at {place}"
    );
    assert!(
        (first * 30.0).round() % 100.0 == 0.0,
        "{first} s is a source key frame"
    );
    let d = tokio::task::spawn_blocking(move || decode_ts(&bytes))
        .await
        .unwrap()
        .unwrap();
    assert!(d.video_frames > 0);
    server.stop().await;
}

/// Makes an MP4's headers claim 1,988 hours, as a real broken file did:
/// the movie (`mvhd`), track (`tkhd`) and media (`mdhd`) durations (version
/// 0 boxes) set to 2^32 - 1 ticks, the movie timescale to 600, and the edit
/// lists (in the movie timescale) scaled to match. The samples, and so the
/// real length, are untouched.
fn claim_huge_duration(path: &Path) {
    let mut data = std::fs::read(path).unwrap();
    let be32 = |d: &[u8], at: usize| u32::from_be_bytes(d[at..at + 4].try_into().unwrap());
    let boxes = |d: &[u8], name: &[u8; 4]| -> Vec<usize> {
        d.windows(4)
            .enumerate()
            .filter(|(_, w)| w == name)
            .map(|(i, _)| i)
            .collect()
    };
    for (name, offset) in [(b"mvhd", 16usize), (b"tkhd", 20), (b"mdhd", 16)] {
        for at in boxes(&data, name) {
            assert_eq!(data[at + 4], 0, "a version 0 box");
            let d = at + 4 + offset;
            data[d..d + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        }
    }
    let mvhd = boxes(&data, b"mvhd")[0];
    let old_scale = be32(&data, mvhd + 16) as u64;
    data[mvhd + 16..mvhd + 20].copy_from_slice(&600u32.to_be_bytes());
    for elst in boxes(&data, b"elst") {
        let entries = be32(&data, elst + 8) as usize;
        for e in 0..entries {
            let at = elst + 12 + e * 12;
            let d = be32(&data, at) as u64 * 600 / old_scale;
            data[at..at + 4].copy_from_slice(&(d as u32).to_be_bytes());
        }
    }
    std::fs::write(path, data).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_viewer_of_long_gops_costs_the_margin_and_one_segment() {
    let media = tempfile::tempdir().unwrap();
    let dir = media.path().to_path_buf();
    // A key frame every 10 s, the default short first segment and margin.
    tokio::task::spawn_blocking(move || make_remux_mkv_gop(&dir, 300, 300))
        .await
        .unwrap();
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let item = server.media("remux_bframes_300s_gop300.mkv").await;
    let started = server.start_hls(item["id"].as_str().unwrap(), ALICE).await;
    let m = fetch_master(&server, started["master_url"].as_str().unwrap(), ALICE).await;
    let playlist = complete_playlist(&server, &m.variant, ALICE).await;
    let durations: Vec<f64> = playlist
        .segments
        .iter()
        .map(|s| s.duration as f64)
        .collect();
    assert!((durations[1] - 10.0).abs() < 0.01, "{:?}", &durations[..3]);
    for url in std::iter::once(&m.variant).chain(&m.audio) {
        let r = get_segment(&server, &segment_url(url, 0), ALICE).await;
        assert_eq!(r.status(), 200);
    }
    // Held: its output stands still.
    let sid = started["session_id"].as_str().unwrap().to_string();
    wait_session(&server, &sid, ALICE, |v| v["state"] == "throttled").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let video_dir = server
        .files_ending(".ts")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("segment_00000"))
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .expect("segment 0 is stored");
    let seconds: f64 = server
        .files_ending(".ts")
        .iter()
        .filter(|p| p.parent() == Some(video_dir.as_path()))
        .filter_map(|p| hlsd::timeline::segment_index(&p.file_name()?.to_string_lossy()))
        .map(|n| durations[n])
        .sum();
    let longest = durations.iter().copied().fold(0.0, f64::max);
    println!("paused viewer, 10 s GOPs: {seconds:.1} s of video stored");
    assert!(
        seconds <= 120.0 + longest + 0.01,
        "{seconds:.1} s stored: more than the 120 s margin and one {longest:.1} s segment"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_that_claims_thousands_of_hours_gets_a_small_playlist() {
    let media = tempfile::tempdir().unwrap();
    let path = media.path().join("lying_10s.mp4");
    // H.264 High 4:4:4: on the transcode path, whose cuts follow the grid.
    launch(&format!(
        "videotestsrc num-buffers=250 ! video/x-raw,format=Y444,width=320,height=240,framerate=25/1 \
         ! x264enc speed-preset=ultrafast ! h264parse ! queue ! mux. \
         audiotestsrc num-buffers=470 samplesperbuffer=1024 \
         ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! queue ! mux. \
         mp4mux name=mux ! filesink location={}",
        path.display()
    ));
    claim_huge_duration(&path);
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let item = server.media("lying_10s.mp4").await;
    println!("listed as {item}");
    assert!(
        item["duration_s"].is_null(),
        "the claim is not listed: {item}"
    );
    assert!(
        item["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "duration_untrusted:7158278.8"),
        "{item}"
    );
    let started = server.start_hls(item["id"].as_str().unwrap(), ALICE).await;
    let m = fetch_master(&server, started["master_url"].as_str().unwrap(), ALICE).await;
    let t0 = Instant::now();
    let r = server.get(&m.variant, ALICE).await;
    let elapsed = t0.elapsed();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    println!("first playlist: {} bytes in {elapsed:?}", text.len());
    assert!(text.len() < 10_000, "{} bytes", text.len());
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{text}");
    // It grows as segments are made and ends at the real end.
    let done = complete_playlist(&server, &m.variant, ALICE).await;
    let total: f64 = done.segments.iter().map(|s| s.duration as f64).sum();
    assert!((total - 10.0).abs() < 0.5, "{total} s");
    for s in &done.segments {
        let r = get_segment(&server, &resolve(&m.variant, &s.uri), ALICE).await;
        assert_eq!(r.status(), 200);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_far_requests_runs_at_most_the_per_item_producers() {
    let (media, name) = long_avi_dir(600).await;
    let server = start_server_with(media.path(), |c| {
        c.http.admins = vec!["alice".into()];
        c.supervisor.producers_per_item = 3;
    })
    .await;
    let id = server.media_id(&name).await;
    let started = server.start_hls(&id, ALICE).await;
    let sid = started["session_id"].as_str().unwrap().to_string();
    let m = fetch_master(&server, started["master_url"].as_str().unwrap(), ALICE).await;
    let mut rng = fastrand::Rng::with_seed(13);
    let far: Vec<usize> = (0..8).map(|_| rng.usize(10..100)).collect();
    println!("requests for {far:?}");

    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let most = {
        let watching = watching.clone();
        let server = &server;
        async move {
            let mut most = 0;
            while watching.load(std::sync::atomic::Ordering::SeqCst) {
                most = most.max(live_producers(&server.admin_stats(ALICE).await));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            most
        }
    };
    let burst = async {
        let answers = futures_util::future::join_all(far.iter().map(|&n| {
            let url = segment_url(&m.variant, n);
            let server = &server;
            async move {
                let r = server.get(&url, ALICE).await;
                let status = r.status().as_u16();
                if status == 503 {
                    assert!(
                        r.headers().contains_key("retry-after"),
                        "503 without Retry-After"
                    );
                }
                (n, status)
            }
        }))
        .await;
        watching.store(false, std::sync::atomic::Ordering::SeqCst);
        answers
    };
    let (answers, most) = tokio::join!(burst, most);
    println!("answers {answers:?}; at most {most} producers at once");
    assert!(
        answers.iter().all(|(_, s)| *s == 200 || *s == 503),
        "{answers:?}"
    );
    assert!(answers.iter().any(|(_, s)| *s == 200), "{answers:?}");
    assert!(most <= 3, "{most} producers at once");

    // Afterwards: no producer and no .part file is left.
    assert_eq!(server.delete_session(&sid, ALICE).await.status(), 204);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let stats = server.admin_stats(ALICE).await;
        let producers = stats["producers"].as_object().unwrap().len();
        if producers == 0 && server.files_ending(".part").is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {stats}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_deleted_or_replaced_after_the_scan_gets_a_clear_answer() {
    let media = tempfile::tempdir().unwrap();
    let gone = media.path().join("gone.mkv");
    let swapped = media.path().join("swapped.mkv");
    std::fs::copy(fixtures_dir().join("remux_h264_aac.mkv"), &gone).unwrap();
    std::fs::copy(fixtures_dir().join("remux_h264_aac.mkv"), &swapped).unwrap();
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let gone_id = server.media_id("gone.mkv").await;
    let swapped_id = server.media_id("swapped.mkv").await;

    std::fs::remove_file(&gone).unwrap();
    for r in [
        server
            .get(&format!("/api/v1/stream/{gone_id}"), ALICE)
            .await,
        server.post_start(&gone_id, ALICE).await,
    ] {
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "media_gone", "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gone.mkv"));
    }

    // Replaced by another kind of file: probed again, played as it is now.
    std::fs::remove_file(&swapped).unwrap();
    std::fs::copy(
        fixtures_dir().join("transcode_vp8_vorbis_20s.webm"),
        &swapped,
    )
    .unwrap();
    let s = server.start_hls(&swapped_id, ALICE).await;
    assert_eq!(s["mode"], "transcode", "{s}");
    let played = play_hls(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    assert_eq!(played.segments, 4, "the new 20 s file");
    server.stop().await;
}
