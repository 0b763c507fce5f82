//! The library as a user of a real media folder meets it: a restart serves
//! the catalogue without probing, files copied in, replaced, deleted or
//! still being written, a prober that crashes, non-media files, sidecars,
//! paging, polling where watching is off, and the scan hook.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A remux file (H.264 + AAC 5.1 in Matroska, 5.3 s).
const REMUX: &str = "derived_h264_aac51_bbb_720p.mkv";
/// A direct-play file (H.264 + AAC in MP4, 5.3 s).
const DIRECT: &str = "h264_aac51_bbb_720p_5s.mp4";

/// The value of the first `/metrics` sample whose line starts with
/// `sample` (name and labels), as admin alice.
async fn metric(server: &TestServer, sample: &str) -> f64 {
    let text = server
        .get("/metrics", ALICE)
        .await
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find(|l| l.starts_with(sample))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics"))
}

/// Files probed since start-up, whatever the outcome.
async fn probes(server: &TestServer) -> f64 {
    let mut n = 0.0;
    for outcome in ["probed", "refused", "crashed", "timed_out"] {
        n += metric(
            server,
            &format!("hlsd_library_probes_total{{outcome=\"{outcome}\"}}"),
        )
        .await;
    }
    n
}

/// Every item, page by page (`limit` each).
async fn all_items(server: &TestServer, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let page = server
            .get_json(
                &format!("/api/v1/media?offset={}&limit={limit}", out.len()),
                ALICE,
                200,
            )
            .await;
        let items = page["items"].as_array().expect("items").clone();
        assert!(items.len() <= limit);
        if items.is_empty() {
            assert_eq!(page["total"].as_u64(), Some(out.len() as u64));
            return out;
        }
        out.extend(items);
    }
}

/// The listed item at `path`, if any.
async fn listed(server: &TestServer, path: &str) -> Option<Value> {
    let q: String = form_urlencode(path);
    let page = server
        .get_json(&format!("/api/v1/media?path={q}&limit=10"), ALICE, 200)
        .await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|m| m["path"] == path)
        .cloned()
}

fn form_urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `check` every 100 ms until it gives `Some`, for at most `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return (v, started.elapsed());
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (10 s at most) until `path` is listed and probed; the item and
/// how long it took.
async fn listed_and_probed(server: &TestServer, path: &str) -> (Value, Duration) {
    eventually(
        Duration::from_secs(10),
        "a new file is listed and probed",
        || async { listed(server, path).await.filter(|m| m["probed"] == true) },
    )
    .await
}

/// Waits (10 s at most) until `path` is no longer listed.
async fn leaves_the_list(server: &TestServer, path: &str) {
    eventually(
        Duration::from_secs(10),
        "a deleted file leaves the list",
        || async { listed(server, path).await.is_none().then_some(()) },
    )
    .await;
}

/// Plays the first segment of item `id`: stream → master → segment 0,
/// decoded. For direct play, the first bytes of the file.
async fn plays(server: &TestServer, id: &str) {
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    match r.status().as_u16() {
        200 => assert!(!r.bytes().await.expect("body").is_empty()),
        302 => {
            let master_url = r.headers()["location"].to_str().unwrap().to_string();
            let master = fetch_master(server, &master_url, ALICE).await;
            let seg = get_segment(server, &segment_url(&master.variant, 0), ALICE).await;
            assert_eq!(seg.status(), 200);
            let decoded = decode_ts(&seg.bytes().await.unwrap()).expect("segment decodes");
            assert!(decoded.video_frames > 0, "{decoded:?}");
        }
        other => panic!(
            "stream {id}: {other} {}",
            r.text().await.unwrap_or_default()
        ),
    }
}

fn admin(c: &mut hlsd::config::Config) {
    c.admins = vec!["alice".into()];
}

/// Admin alice, user carol, no watching, polling every `interval`.
fn polling(interval: Duration) -> impl FnOnce(&mut hlsd::config::Config) {
    move |c| {
        admin(c);
        c.users.push(hlsd::config::UserToken {
            user: "carol".into(),
            token: "carol-token-0123456789".into(),
        });
        c.watch = false;
        c.rescan_interval = interval;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_serves_the_catalogue_without_probing() {
    let Some(shared) = shared_media() else { return };
    let media = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    // A few hundred links in folders, as a library of episodes would be,
    // with files that are not media beside them.
    let sources: Vec<PathBuf> = std::fs::read_dir(&shared)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| hlsd::library::is_media_file(p))
        .collect();
    let mut links = 0;
    for season in 0..10 {
        let dir = media.path().join(format!("show/season {season:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, src) in sources.iter().enumerate().take(25) {
            let ext = src.extension().unwrap().to_str().unwrap();
            std::os::unix::fs::symlink(src, dir.join(format!("e{i:02}.{ext}"))).unwrap();
            links += 1;
        }
        std::fs::write(dir.join("README.md"), "notes").unwrap();
        std::fs::write(dir.join("e00.nfo"), "<episodedetails/>").unwrap();
    }
    std::fs::copy(
        shared.join("sub_example.srt"),
        media.path().join("show/season 00/e00.en.srt"),
    )
    .unwrap();
    let tweak = |c: &mut hlsd::config::Config| {
        admin(c);
        c.data_dir = data.path().to_path_buf();
    };

    let started = Instant::now();
    let server = start_server_with(media.path(), tweak).await;
    let first_start = started.elapsed();
    let items = all_items(&server, 37).await;
    assert_eq!(
        items.len(),
        links,
        "every link, and nothing else, is an item"
    );
    assert!(items.iter().all(|m| m["probed"] == true));
    let mut paths: Vec<&str> = items.iter().map(|m| m["path"].as_str().unwrap()).collect();
    let listed_order = paths.clone();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), links, "paging lists every item exactly once");
    assert_eq!(paths, listed_order, "pages come in path order");
    assert!(!paths
        .iter()
        .any(|p| p.ends_with(".md") || p.ends_with(".nfo") || p.ends_with(".srt")));
    let film = items
        .iter()
        .find(|m| {
            m["path"]
                == "show/season 00/e00.".to_string()
                    + sources[0].extension().unwrap().to_str().unwrap()
        })
        .expect("e00 listed");
    let sidecars: Vec<&Value> = film["subtitles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"] == "sidecar")
        .collect();
    assert_eq!(sidecars.len(), 1, "the .srt attaches to its film: {film}");
    assert_eq!(sidecars[0]["file"], "e00.en.srt");
    assert_eq!(sidecars[0]["language"], "en");
    assert!(
        sidecars[0].get("path").is_none(),
        "no server path in the API"
    );
    assert_eq!(probes(&server).await, links as f64);
    // A remux plays: its key frames are read once and kept in the catalogue.
    let remux = items
        .iter()
        .find(|m| m["playback"] == "remux" && m["container"] == "matroska")
        .expect("a remux item");
    plays(&server, remux["id"].as_str().unwrap()).await;
    server.stop().await;
    let remux_path = remux["path"].as_str().unwrap();
    let catalogue = hlsd::library::catalogue::Catalogue::open(
        data.path(),
        &media.path().canonicalize().unwrap(),
    )
    .unwrap();
    let stamp =
        hlsd::library::FileStamp::of(&std::fs::metadata(media.path().join(remux_path)).unwrap());
    let keys = catalogue
        .keyframes(remux_path, stamp)
        .expect("key frames in the catalogue");
    assert!(!keys.keyframes.is_empty(), "{keys:?}");
    drop(catalogue);

    let started = Instant::now();
    let server = start_server_with(media.path(), tweak).await;
    let restart = started.elapsed();
    let again = all_items(&server, 1000).await;
    assert_eq!(again.len(), links);
    assert_eq!(probes(&server).await, 0.0, "a restart probes nothing");
    assert_eq!(again, items, "the same items, the same answers");
    // Filters and the ETag.
    let page = server
        .get("/api/v1/media?playback=remux&limit=5", ALICE)
        .await;
    let etag = page.headers()["etag"].to_str().unwrap().to_string();
    let body: Value = page.json().await.unwrap();
    let remuxes = items.iter().filter(|m| m["playback"] == "remux").count();
    assert_eq!(body["total"].as_u64(), Some(remuxes as u64));
    assert!(body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["playback"] == "remux"));
    let cached = server
        .client
        .get(server.url("/api/v1/media?playback=remux&limit=5"))
        .bearer_auth(ALICE)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
    for bad in ["limit=0", "limit=5000", "offset=-1", "playback=fast"] {
        let r = server.get(&format!("/api/v1/media?{bad}"), ALICE).await;
        assert_eq!(r.status(), 400, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "bad_request");
    }
    server.stop().await;
    eprintln!(
        "library of {links} links: first start ready in {:.2} s, restart ready in {:.2} s",
        first_start.as_secs_f64(),
        restart.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_copied_in_replaced_deleted_or_growing_reach_the_library() {
    let Some(shared) = shared_media() else { return };
    let media = tempfile::tempdir().unwrap();
    std::fs::copy(shared.join(DIRECT), media.path().join("already.mp4")).unwrap();
    let server = start_server_with(media.path(), |c| {
        admin(c);
        c.settle = Duration::from_secs(1);
    })
    .await;
    assert_eq!(metric(&server, "hlsd_library_watching").await, 1.0);
    let before = probes(&server).await;

    // Copied in while the server runs: listed, probed once, and it plays.
    std::fs::create_dir(media.path().join("new")).unwrap();
    std::fs::copy(shared.join(REMUX), media.path().join("new/film.mkv")).unwrap();
    let (item, took) = listed_and_probed(&server, "new/film.mkv").await;
    assert_eq!(item["playback"], "remux", "{item}");
    let id = item["id"].as_str().unwrap().to_string();
    plays(&server, &id).await;
    eprintln!(
        "copied file listed and probed after {:.2} s",
        took.as_secs_f64()
    );
    assert_eq!(probes(&server).await, before + 1.0);

    // Its content replaced (another film, a new mtime): probed again.
    let tmp = media.path().join("new/.film.mkv.tmp");
    std::fs::copy(shared.join("derived_h264_dts51_bbb_720p.mkv"), &tmp).unwrap();
    std::fs::rename(&tmp, media.path().join("new/film.mkv")).unwrap();
    let (item, _) = eventually(
        Duration::from_secs(10),
        "a replaced file is probed again",
        || async {
            listed(&server, "new/film.mkv")
                .await
                .filter(|m| m["audio"][0]["codec"] == "dts")
        },
    )
    .await;
    assert_eq!(item["playback"], "transcode");
    assert_eq!(item["id"].as_str(), Some(id.as_str()), "same path, same id");
    assert_eq!(probes(&server).await, before + 2.0);

    // Deleted: gone from the list, and its id answers media_gone.
    std::fs::remove_file(media.path().join("new/film.mkv")).unwrap();
    leaves_the_list(&server, "new/film.mkv").await;
    for path in [
        format!("/api/v1/media/{id}"),
        format!("/api/v1/stream/{id}"),
    ] {
        let r = server.get(&path, ALICE).await;
        assert_eq!(r.status(), 404, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "media_gone", "{path}: {e}");
    }

    // Still being written (a download): not probed until it stops growing.
    let bytes = std::fs::read(shared.join(REMUX)).unwrap();
    let growing = media.path().join("download.mkv");
    let probes_before = probes(&server).await;
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&growing).unwrap();
        let chunk = bytes.len() / 12 + 1;
        for part in bytes.chunks(chunk) {
            f.write_all(part).unwrap();
            f.flush().unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                probes(&server).await,
                probes_before,
                "a file still growing is not probed"
            );
            assert!(listed(&server, "download.mkv").await.is_none());
        }
    }
    let (item, took) = listed_and_probed(&server, "download.mkv").await;
    assert_eq!(item["playback"], "remux");
    assert_eq!(item["duration_s"].as_f64().map(|d| d.round()), Some(5.0));
    assert_eq!(probes(&server).await, probes_before + 1.0, "probed once");
    eprintln!(
        "finished download listed {:.2} s after its last write",
        took.as_secs_f64()
    );

    // Non-media files never become items.
    std::fs::write(media.path().join("notes.nfo"), "x").unwrap();
    std::fs::write(media.path().join("README.md"), "x").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = all_items(&server, 100).await;
    let mut paths: Vec<&str> = all.iter().map(|m| m["path"].as_str().unwrap()).collect();
    paths.sort();
    assert_eq!(paths, vec!["already.mp4", "download.mkv"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashing_prober_leaves_the_server_serving() {
    let Some(shared) = shared_media() else { return };
    let media = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(shared.join(REMUX), media.path().join("poison.mkv")).unwrap();
    std::os::unix::fs::symlink(shared.join(DIRECT), media.path().join("good.mp4")).unwrap();
    let tweak = |c: &mut hlsd::config::Config| {
        admin(c);
        c.data_dir = data.path().to_path_buf();
        // Test hook of `hlsd probe --worker`: abort on this path, as a
        // demuxer crashing on a hostile file would.
        c.prober = Some(hlsd::config::ProberCommand {
            args: vec!["--crash-on".into(), "poison".into()],
            ..prober()
        });
    };
    let server = start_server_with(media.path(), tweak).await;
    let poison = listed(&server, "poison.mkv").await.expect("listed");
    assert_eq!(poison["playable"], false);
    let reason = poison["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("prober_crashed") && reason.contains("SIGABRT"),
        "{poison}"
    );
    assert_eq!(
        metric(&server, "hlsd_library_probes_total{outcome=\"crashed\"}").await,
        1.0
    );
    let good = listed(&server, "good.mp4").await.expect("listed");
    assert_eq!(good["playback"], "direct_play");
    plays(&server, good["id"].as_str().unwrap()).await;
    let r = server
        .get(
            &format!("/api/v1/stream/{}", poison["id"].as_str().unwrap()),
            ALICE,
        )
        .await;
    assert_eq!(r.status(), 422, "unplayable, with the reason");
    server.stop().await;

    // The next start remembers the verdict: no probe, same reason.
    let server = start_server_with(media.path(), tweak).await;
    assert_eq!(probes(&server).await, 0.0);
    let again = listed(&server, "poison.mkv").await.expect("listed");
    assert_eq!(again["reasons"], poison["reasons"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_watching_polling_and_the_scan_hook_find_changes() {
    let Some(shared) = shared_media() else { return };
    let media = tempfile::tempdir().unwrap();
    std::fs::create_dir(media.path().join("incoming")).unwrap();
    let server = start_server_with(media.path(), polling(Duration::from_secs(1))).await;
    assert_eq!(metric(&server, "hlsd_library_watching").await, 0.0);
    let health = server.health().await.unwrap();
    assert_eq!(health["library"]["watch"], "polling");

    // Polling: a new file in a folder is found by its folder's mtime.
    std::fs::copy(shared.join(DIRECT), media.path().join("incoming/a.mp4")).unwrap();
    let (item, took) = listed_and_probed(&server, "incoming/a.mp4").await;
    eprintln!("polling found a new file after {:.2} s", took.as_secs_f64());
    std::fs::remove_file(media.path().join("incoming/a.mp4")).unwrap();
    leaves_the_list(&server, "incoming/a.mp4").await;
    let r = server
        .get(
            &format!("/api/v1/media/{}", item["id"].as_str().unwrap()),
            ALICE,
        )
        .await;
    assert_eq!(r.status(), 404);
    server.stop().await;

    // The scan hook, with polling too slow to matter.
    let server = start_server_with(media.path(), polling(Duration::from_secs(3600))).await;
    std::fs::copy(shared.join(REMUX), media.path().join("incoming/b.mkv")).unwrap();
    let post = |token: &'static str, body: &'static str| {
        server
            .client
            .post(server.url("/api/v1/library/scan"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post("carol-token-0123456789", r#"{"path":"incoming"}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "admins only");
    for hostile in [
        r#"{"path":"../etc"}"#,
        r#"{"path":"/etc/passwd"}"#,
        r#"{"nope":1}"#,
        "not json",
    ] {
        let r = post(ALICE, hostile).await.unwrap();
        assert_eq!(r.status(), 400, "{hostile}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "bad_request");
    }
    let r = post(ALICE, r#"{"path":"incoming"}"#).await.unwrap();
    assert_eq!(r.status(), 202);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["scan"]["files"], 1, "{report}");
    assert_eq!(report["scan"]["queued"], 1, "{report}");
    listed_and_probed(&server, "incoming/b.mkv").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_for_an_item_not_yet_probed_probes_it_first() {
    let Some(shared) = shared_media() else { return };
    let media = tempfile::tempdir().unwrap();
    // Many files ahead of it in the background queue, one prober for them.
    for i in 0..150 {
        std::os::unix::fs::symlink(
            shared.join(DIRECT),
            media.path().join(format!("a{i:03}.mp4")),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink(shared.join(REMUX), media.path().join("z.mkv")).unwrap();
    let server = start_server_opts(
        media.path(),
        |c| {
            admin(c);
            c.probe_concurrency = 1;
        },
        false,
    )
    .await;
    let id = hlsd::library::id::media_id(Path::new("z.mkv")).to_string();
    let started = Instant::now();
    let (item, _) = eventually(Duration::from_secs(10), "z.mkv is listed", || async {
        let r = server.get(&format!("/api/v1/media/{id}"), ALICE).await;
        if r.status() == 200 {
            r.json::<Value>().await.ok()
        } else {
            None
        }
    })
    .await;
    let took = started.elapsed();
    assert_eq!(item["probed"], true, "{item}");
    assert_eq!(item["playback"], "remux");
    let health = server.health().await.unwrap();
    assert!(
        health["library"]["pending"].as_u64().unwrap() > 0,
        "the background queue was still busy: {health}"
    );
    eprintln!(
        "probed on request in {:.2} s with {} files still queued",
        took.as_secs_f64(),
        health["library"]["pending"]
    );
    plays(&server, &id).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prober_that_cannot_start_records_nothing() {
    let Some(shared) = shared_media() else { return };
    let media = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(shared.join(DIRECT), media.path().join("film.mp4")).unwrap();
    // As after an upgrade removed the binary the server was started from.
    let server = start_server_opts(
        media.path(),
        |c| {
            admin(c);
            c.data_dir = data.path().to_path_buf();
            c.prober = Some(hlsd::config::ProberCommand {
                program: "/nonexistent/hlsd".into(),
                args: Vec::new(),
            });
        },
        false,
    )
    .await;
    let id = hlsd::library::id::media_id(Path::new("film.mp4")).to_string();
    let (item, _) = eventually(Duration::from_secs(10), "film.mp4 is listed", || async {
        let r = server.get(&format!("/api/v1/media/{id}"), ALICE).await;
        (r.status() == 200).then_some(())?;
        r.json::<Value>().await.ok()
    })
    .await;
    assert_eq!(item["probed"], false, "not the file's fault: {item}");
    assert_eq!(item["reasons"][0], "not_probed_yet");
    server.stop().await;

    // With a prober again, the file is probed: nothing was recorded.
    let server = start_server_with(media.path(), |c| {
        admin(c);
        c.data_dir = data.path().to_path_buf();
    })
    .await;
    assert_eq!(probes(&server).await, 1.0);
    let item = listed(&server, "film.mp4").await.expect("listed");
    assert_eq!(item["playback"], "direct_play");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_media_dir_that_drops_out_keeps_the_catalogue() {
    let Some(shared) = shared_media() else { return };
    let parent = tempfile::tempdir().unwrap();
    let media = parent.path().join("share");
    let away = parent.path().join("share-unmounted");
    std::fs::create_dir(&media).unwrap();
    for (name, src) in [("a.mp4", DIRECT), ("b.mkv", REMUX)] {
        std::os::unix::fs::symlink(shared.join(src), media.join(name)).unwrap();
    }
    let server = start_server_with(&media, |c| {
        admin(c);
        c.rescan_interval = Duration::from_millis(500);
        c.watch = false;
    })
    .await;
    let id = listed(&server, "a.mp4").await.expect("listed")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let probed = probes(&server).await;

    // The share drops out (as an unmounted NAS leaves its mount point).
    std::fs::rename(&media, &away).unwrap();
    std::fs::create_dir(&media).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = server
        .client
        .post(server.url("/api/v1/library/scan"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(all_items(&server, 10).await.len(), 2, "nothing forgotten");
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "media_gone", "not there for now");

    // Back: the same items, nothing probed again, and they play.
    std::fs::remove_dir(&media).unwrap();
    std::fs::rename(&away, &media).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(all_items(&server, 10).await.len(), 2);
    assert_eq!(probes(&server).await, probed);
    plays(&server, &id).await;
    server.stop().await;
}
