//! Faults: a pipeline that errors mid-stream, and a transcode dir that
//! fills up. The failing session fails with a message and loses its folder;
//! the others are untouched; nothing crashes.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

async fn wait_gone(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.exists() {
        assert!(Instant::now() < deadline, "{} still there", dir.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_element_error_mid_stream_fails_only_its_session_and_deletes_its_folder() {
    let media = media_subset(&[
        fixtures_dir().join("transcode_vp8_vorbis_20s.webm"),
        fixtures_dir().join("remux_h264_aac.mkv"),
    ]);
    // Injected fault: the video encode branch errors after 150 frames
    // (6 s at 25 fps): the first segment is made, then the error.
    let server = start_server_with(media.path(), |c| {
        c.templates.video_transcode =
            format!("identity error-after=150 ! {}", c.templates.video_transcode);
    })
    .await;
    let webm = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let mkv = server.media_id("remux_h264_aac.mkv").await;
    let failing = server.start_hls(&webm, ALICE).await;
    let other = server.start_hls(&mkv, BOB).await;
    let sid = failing["session_id"].as_str().unwrap();
    let folder = server.transcode_dir.join(sid);

    let failed = wait_session(&server, sid, ALICE, |v| v["state"] == "failed").await;
    let message = failed["error"].as_str().unwrap();
    assert!(!message.is_empty(), "{failed}");
    println!("failed mid-stream with: {message}");
    wait_gone(&folder).await;
    let base = failing["master_url"]
        .as_str()
        .unwrap()
        .trim_end_matches("/master.m3u8")
        .to_string();
    for path in [
        format!("{base}/master.m3u8"),
        format!("{base}/360p/playlist.m3u8"),
        format!("{base}/360p/segment_00000.ts"),
    ] {
        let r = server.get(&path, ALICE).await;
        assert_eq!(r.status(), 500, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "session_failed");
    }
    // Bob's session is untouched and plays to the end.
    let played = play_hls(&server, other["master_url"].as_str().unwrap(), BOB).await;
    assert_eq!(played.segments, 2);
    let done = wait_complete(&server, other["session_id"].as_str().unwrap(), BOB).await;
    assert_eq!(done["state"], "complete");
    server.stop().await;
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn used_bytes(&self) -> u64 {
        bytes_under(&self.0, &|_| true)
    }
}

/// Bytes of the files under `dir` whose names `keep` accepts.
fn bytes_under(dir: &Path, keep: &dyn Fn(&str) -> bool) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        bytes_under(&e.path(), keep)
                    } else if keep(&e.file_name().to_string_lossy()) {
                        m.len()
                    } else {
                        0
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_transcode_dir_fails_the_session_cleanly_and_frees_the_space() {
    let mnt = tempfile::tempdir().unwrap();
    // 700 KB: not even all of the first segment fits.
    let Some(disk) = Tmpfs::mount(mnt.path(), "700k") else {
        eprintln!("NOTICE: cannot mount a tmpfs here (needs root); skipping");
        return;
    };
    let media = media_subset(&[fixtures_dir().join("transcode_vp8_vorbis_20s.webm")]);
    let transcode = mnt.path().join("sessions");
    let server = start_server_with(media.path(), |c| c.transcode_dir = transcode.clone()).await;
    let webm = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let s = server.start_hls(&webm, ALICE).await;
    let sid = s["session_id"].as_str().unwrap();
    let failed = wait_session(&server, sid, ALICE, |v| {
        v["state"] == "failed" || v["state"] == "complete"
    })
    .await;
    assert_eq!(
        failed["state"], "failed",
        "700 KB cannot hold 20 s: {failed}"
    );
    let message = failed["error"].as_str().unwrap();
    println!("full disk: {message}");
    assert!(!message.is_empty());
    wait_gone(&transcode.join(sid)).await;
    assert_eq!(disk.used_bytes(), 0, "the failed session's bytes are freed");
    // The server still answers, and a new session starts.
    assert_eq!(server.get("/healthz", ALICE).await.status(), 200);
    let again = server.start_hls(&webm, ALICE).await;
    assert_ne!(again["session_id"], s["session_id"]);
    server.stop().await;
    drop(disk);
}

/// Bytes of `.ts` files under `dir`.
fn segment_bytes(dir: &Path) -> u64 {
    bytes_under(dir, &|name| name.ends_with(".ts"))
}

async fn play_all(server: &TestServer, master: &str, token: &str, segments: usize) {
    let base = master.trim_end_matches("/master.m3u8");
    for n in 0..segments {
        let r = get_segment(server, &format!("{base}/360p/segment_{n:05}.ts"), token).await;
        assert_eq!(r.status(), 200, "segment {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_budget_evicts_the_least_recently_used_segments_first() {
    const BUDGET: u64 = 3_200_000;
    let media = media_subset(&[fixtures_dir().join("transcode_vp8_vorbis_20s.webm")]);
    let server = start_server_with(media.path(), |c| c.disk_budget = Some(BUDGET)).await;
    let webm = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    // Alice watches all 4 segments (~2.6 MB), then Bob does: together they
    // would pass the budget.
    let alice = server.start_hls(&webm, ALICE).await;
    let a_master = alice["master_url"].as_str().unwrap();
    play_all(&server, a_master, ALICE, 4).await;
    let bob = server.start_hls(&webm, BOB).await;
    play_all(&server, bob["master_url"].as_str().unwrap(), BOB, 4).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while segment_bytes(&server.transcode_dir) > BUDGET {
        assert!(Instant::now() < deadline, "never back under the budget");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = session_view(&server, alice["session_id"].as_str().unwrap(), ALICE).await;
    let b = session_view(&server, bob["session_id"].as_str().unwrap(), BOB).await;
    println!(
        "on disk {} bytes; alice {} segments, bob {}",
        segment_bytes(&server.transcode_dir),
        a["segments_ready"],
        b["segments_ready"]
    );
    // Alice, the least recently used, lost her oldest segments; Bob kept his.
    assert!(a["segments_ready"].as_u64().unwrap() < 4, "{a}");
    assert_eq!(b["segments_ready"], 4, "{b}");
    // An evicted segment is made again when asked for.
    let r = get_segment(
        &server,
        &format!(
            "{}/360p/segment_00000.ts",
            a_master.trim_end_matches("/master.m3u8")
        ),
        ALICE,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(!r.bytes().await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_disk_budget_new_sessions_get_503() {
    // Smaller than one segment: nothing can be evicted (it is the viewer's
    // window), so the next session is refused before the disk fills.
    let media = media_subset(&[fixtures_dir().join("transcode_vp8_vorbis_20s.webm")]);
    let server = start_server_with(media.path(), |c| c.disk_budget = Some(500_000)).await;
    let webm = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let alice = server.start_hls(&webm, ALICE).await;
    play_all(&server, alice["master_url"].as_str().unwrap(), ALICE, 1).await;
    let message = assert_at_capacity(server.post_start(&webm, BOB).await).await;
    assert!(message.contains("--disk-budget"), "{message}");
    // Alice's own session goes on.
    play_all(&server, alice["master_url"].as_str().unwrap(), ALICE, 2).await;
    server.stop().await;
}
