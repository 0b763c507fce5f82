//! Faults: a pipeline that errors mid-stream, a transcode dir that fills
//! up, and the disk budget. The failing session fails with a message and
//! its title's segments go; the others are untouched; nothing crashes.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The store's segment files of media item `id` for segment `n`.
fn stored(server: &TestServer, id: &str, n: usize) -> Vec<PathBuf> {
    let id = id.replace('-', "");
    let name = format!("segment_{n:05}.ts");
    server
        .files_ending(&name)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&id))
        .collect()
}

/// Waits until the store holds no segment of media item `id`.
async fn wait_no_segments(server: &TestServer, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while (0..10).any(|n| !stored(server, id, n).is_empty()) {
        assert!(Instant::now() < deadline, "segments of {id} still stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_element_error_mid_stream_fails_only_its_session_and_drops_its_segments() {
    let media = media_subset(&[
        fixtures_dir().join("transcode_vp8_vorbis_20s.webm"),
        fixtures_dir().join("remux_h264_aac.mkv"),
    ]);
    // Injected fault: the video encode branch errors after 150 frames
    // (6 s at 25 fps): the first segment is made, then the error.
    let server = start_server_with(media.path(), |c| {
        c.supervisor.templates.video_transcode = format!(
            "identity error-after=150 ! {}",
            c.supervisor.templates.video_transcode
        );
    })
    .await;
    let webm = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let mkv = server.media_id("remux_h264_aac.mkv").await;
    let failing = server.start_hls(&webm, ALICE).await;
    let other = server.start_hls(&mkv, BOB).await;
    let sid = failing["session_id"].as_str().unwrap();
    let master = failing["master_url"].as_str().unwrap().to_string();
    let playlist = fetch_master(&server, &master, ALICE).await.variant;

    let failed = wait_session(&server, sid, ALICE, |v| v["state"] == "failed").await;
    let message = failed["error"].as_str().unwrap();
    assert!(!message.is_empty(), "{failed}");
    println!("failed mid-stream with: {message}");
    wait_no_segments(&server, &webm).await;
    assert!(server.files_ending(".part").is_empty());
    for path in [master, playlist.clone(), segment_url(&playlist, 0)] {
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
        skip("cannot mount a tmpfs here (needs root)");
        return;
    };
    let media = media_subset(&[fixtures_dir().join("transcode_vp8_vorbis_20s.webm")]);
    let transcode = mnt.path().join("sessions");
    let server =
        start_server_with(media.path(), |c| c.store.transcode_dir = transcode.clone()).await;
    let webm = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let s = server.start_hls(&webm, ALICE).await;
    let sid = s["session_id"].as_str().unwrap();
    // A player asks for every segment, so the producer is not held.
    let playlist = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE)
        .await
        .variant;
    for n in 0..4 {
        let _ = server.get(&segment_url(&playlist, n), ALICE).await;
    }
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
    assert!(message.contains("full"), "{message}");
    wait_no_segments(&server, &webm).await;
    assert_eq!(
        disk.used_bytes(),
        0,
        "the failed producer's bytes are freed"
    );
    // The server still answers, and a new session starts.
    assert_eq!(server.get("/healthz", ALICE).await.status(), 200);
    let again = server.start_hls(&webm, ALICE).await;
    assert_ne!(again["session_id"], s["session_id"]);
    server.stop().await;
    drop(disk);
}

/// Fetches segments `0..segments` of the session's variant and audio
/// through a master playlist of its own (a player).
async fn play_all(server: &TestServer, master: &str, token: &str, segments: usize) {
    let m = fetch_master(server, master, token).await;
    for n in 0..segments {
        for playlist in std::iter::once(&m.variant).chain(&m.audio) {
            let r = get_segment(server, &segment_url(playlist, n), token).await;
            assert_eq!(r.status(), 200, "segment {n}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_budget_evicts_the_least_recently_used_segments_first() {
    // Room for the players' windows (4 segments each) and a little more.
    const BUDGET: u64 = 4_000_000;
    let media = media_subset(&[
        fixtures_dir().join("transcode_vp8_vorbis_20s.webm"),
        fixtures_dir().join("remux_h264_aac.mkv"),
    ]);
    // The sizes above are of 6 s segments (the short first segment has
    // its own test): with a 2 s one, both players' windows hold both whole
    // files, over 90 % of the budget, and a rewind is refused.
    let server = start_server_with(media.path(), |c| {
        c.store.disk_budget_bytes = Some(BUDGET);
        c.http.admins = vec!["alice".into()];
        c.supervisor.first_segment = Duration::from_secs(6).into();
    })
    .await;
    let webm = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let mkv = server.media_id("remux_h264_aac.mkv").await;
    // Alice watches all 4 segments of one title (~2.6 MB), then Bob
    // another (~2.8 MB): together they pass the budget.
    let alice = server.start_hls(&webm, ALICE).await;
    let a_master = alice["master_url"].as_str().unwrap();
    play_all(&server, a_master, ALICE, 4).await;
    let bob = server.start_hls(&mkv, BOB).await;
    play_all(&server, bob["master_url"].as_str().unwrap(), BOB, 2).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    while server.store_bytes() > BUDGET {
        assert!(Instant::now() < deadline, "never back under the budget");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = server.admin_stats(ALICE).await;
    println!(
        "on disk {} bytes; store {}",
        server.store_bytes(),
        stats["store"]
    );
    assert!(stats["store"]["evicted"].as_u64().unwrap() > 0, "{stats}");
    // Alice's oldest segments, least recently used and behind her
    // playhead, went first; the one she plays stayed.
    assert!(stored(&server, &webm, 0).is_empty(), "segment 0 evicted");
    assert!(
        !stored(&server, &webm, 3).is_empty(),
        "segment 3 is in her window"
    );
    assert!(server.store_bytes() <= BUDGET);
    // An evicted segment is made again when asked for.
    play_all(&server, a_master, ALICE, 1).await;
    assert!(!stored(&server, &webm, 0).is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_disk_budget_new_producers_get_503() {
    // Smaller than one segment: nothing can be evicted (it is the viewer's
    // window), so a session of another title, which needs a new producer,
    // is refused before the disk fills.
    let media = media_subset(&[
        fixtures_dir().join("transcode_vp8_vorbis_20s.webm"),
        fixtures_dir().join("remux_h264_aac.mkv"),
    ]);
    // 6 s segments: the first alone passes the budget.
    let server = start_server_with(media.path(), |c| {
        c.store.disk_budget_bytes = Some(500_000);
        c.supervisor.first_segment = Duration::from_secs(6).into();
    })
    .await;
    let webm = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let mkv = server.media_id("remux_h264_aac.mkv").await;
    let alice = server.start_hls(&webm, ALICE).await;
    play_all(&server, alice["master_url"].as_str().unwrap(), ALICE, 1).await;
    let message = assert_at_capacity(server.post_start(&mkv, BOB).await).await;
    assert!(message.contains("--disk-budget"), "{message}");
    // Alice's own session goes on.
    play_all(&server, alice["master_url"].as_str().unwrap(), ALICE, 2).await;
    server.stop().await;
}

/// One round of what a player does: the list, a start (the session is
/// reused), its master and media playlists, two segments, a direct-play
/// range and its saved position. Returns how long the round took.
async fn playback_round(server: &TestServer, mkv: &str, mp4: &str) -> Duration {
    let t0 = Instant::now();
    let list = server.get("/api/v1/media", ALICE).await;
    assert_eq!(list.status(), 200);
    let s = server.start_hls(mkv, ALICE).await;
    let m = fetch_master(server, s["master_url"].as_str().unwrap(), ALICE).await;
    let media = server.get(&m.variant, ALICE).await;
    assert_eq!(media.status(), 200);
    for n in 0..2 {
        let r = get_segment(server, &segment_url(&m.variant, n), ALICE).await;
        assert_eq!(r.status(), 200, "segment {n}");
        r.bytes().await.unwrap();
    }
    let range = server
        .client
        .get(server.url(&format!("/api/v1/stream/{mp4}")))
        .bearer_auth(ALICE)
        .header("range", "bytes=0-65535")
        .send()
        .await
        .unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.bytes().await.unwrap().len(), 65536);
    let progress = server.get(&format!("/api/v1/progress/{mkv}"), ALICE).await;
    assert!(matches!(progress.status().as_u16(), 200 | 404));
    t0.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_goes_on_while_another_connection_holds_the_catalogue_write_lock() {
    const HELD: Duration = Duration::from_secs(5);
    let media = media_subset(&[
        fixtures_dir().join("remux_h264_aac.mkv"),
        fixtures_dir().join("direct_h264_aac.mp4"),
    ]);
    let server = start_server(media.path(), Duration::from_secs(60)).await;
    let mkv = server.media_id("remux_h264_aac.mkv").await;
    let mp4 = server.media_id("direct_h264_aac.mp4").await;
    playback_round(&server, &mkv, &mp4).await;
    let mut usual = Vec::new();
    for _ in 0..5 {
        usual.push(playback_round(&server, &mkv, &mp4).await);
    }

    // Another process's connection takes the write lock and keeps it.
    let db = server
        .transcode_dir
        .parent()
        .unwrap()
        .join("data")
        .join("catalogue.sqlite3");
    assert!(db.is_file(), "{}", db.display());
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let _ = held_tx.send(Instant::now());
        std::thread::sleep(HELD);
        conn.execute_batch("COMMIT").unwrap();
        Instant::now()
    });
    let held_at = held_rx.await.unwrap();

    // A write asked for meanwhile (a saved position) waits for the lock
    // and is kept; a new file's catalogue row waits in the writer's queue.
    let put = {
        let client = server.client.clone();
        let url = server.url(&format!("/api/v1/progress/{mkv}"));
        tokio::spawn(async move {
            client
                .put(url)
                .bearer_auth(ALICE)
                .json(&serde_json::json!({ "position_s": 7.5 }))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    std::fs::copy(
        fixtures_dir().join("direct_h264_aac.mp4"),
        media.path().join("copy made while locked.mp4"),
    )
    .unwrap();

    let mut locked = Vec::new();
    while held_at.elapsed() < HELD - Duration::from_secs(1) {
        locked.push(playback_round(&server, &mkv, &mp4).await);
    }
    let released_at = holder.join().unwrap();
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (usual_max, locked_max) = (*usual.iter().max().unwrap(), *locked.iter().max().unwrap());
    println!(
        "playback rounds: usual median {:?}, max {usual_max:?}; with the write lock held \
         elsewhere for {HELD:?}: {} rounds, median {:?}, max {locked_max:?}",
        median(&mut usual),
        locked.len(),
        median(&mut locked),
    );
    // A round that waited for the lock would have lasted until it was let
    // go: every one ended well before.
    assert!(locked.len() >= 2, "{locked:?}");
    assert!(
        locked_max < HELD / 2,
        "a playback request waited for the catalogue's lock: {locked:?}"
    );
    assert!(released_at >= held_at + HELD);

    assert_eq!(
        put.await.unwrap(),
        204,
        "the saved position waited and landed"
    );
    let progress = server
        .get_json(&format!("/api/v1/progress/{mkv}"), ALICE, 200)
        .await;
    assert_eq!(progress["position_s"], 7.5);
    library::listed_and_probed(&server, "copy made while locked.mp4").await;
    server.stop().await;
}
