//! The library's catalogue as a user of a real media folder meets it: a
//! restart serves it without probing, a prober that crashes or cannot
//! start, a request that cannot wait for the queue, a media dir that drops
//! out, non-media files, sidecars, paging.

use crate::common::library::*;
use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
        c.library.data_dir = data.path().to_path_buf();
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
    let catalogue = hlsd::library::catalogue::Catalogue::open_sqlite(
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
async fn a_crashing_prober_leaves_the_server_serving() {
    let Some(shared) = shared_media() else { return };
    let media = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(shared.join(REMUX), media.path().join("poison.mkv")).unwrap();
    std::os::unix::fs::symlink(shared.join(DIRECT), media.path().join("good.mp4")).unwrap();
    let tweak = |c: &mut hlsd::config::Config| {
        admin(c);
        c.library.data_dir = data.path().to_path_buf();
        // Test hook of `hlsd probe --worker`: abort on this path, as a
        // demuxer crashing on a hostile file would.
        c.library.prober = Some(hlsd::config::ProberCommand {
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
            c.library.probe_concurrency = 1;
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
            c.library.data_dir = data.path().to_path_buf();
            c.library.prober = Some(hlsd::config::ProberCommand {
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
        c.library.data_dir = data.path().to_path_buf();
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
        c.library.rescan_interval = Duration::from_millis(500).into();
        c.library.no_watch = true;
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
