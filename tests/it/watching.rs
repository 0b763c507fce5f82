//! Noticing changes on disk: files copied in, replaced, deleted or still
//! being written while the server runs (inotify), and the same found by
//! polling and by the scan hook where watching is off.

use crate::common::library::*;
use crate::common::*;
use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn files_copied_in_replaced_deleted_or_growing_reach_the_library() {
    let Some(shared) = shared_media() else { return };
    let media = tempfile::tempdir().unwrap();
    std::fs::copy(shared.join(DIRECT), media.path().join("already.mp4")).unwrap();
    let server = start_server_with(media.path(), |c| {
        admin(c);
        // Twice the default: a slow machine between two writes is not a
        // finished download.
        c.library.settle_ms = 2000;
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
