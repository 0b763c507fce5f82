//! Bad input is normal: corrupt and truncated files, unknown ids, hostile
//! paths. Each gets a clear JSON error and the server keeps serving.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_truncated_files_get_clear_errors_and_the_server_keeps_serving() {
    let Some(shared) = shared_media() else { return };
    let mut files: Vec<_> = std::fs::read_dir(&shared)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("bad_") || n.contains("truncated")
        })
        .collect();
    assert!(
        files.len() >= 4,
        "expected the bad files in ../shared/media"
    );
    files.push(fixtures_dir().join("remux_h264_aac.mkv"));
    let media = media_subset(&files);
    let server = start_server(media.path(), Duration::from_secs(600)).await;

    for f in &files[..files.len() - 1] {
        let name = f.file_name().unwrap().to_str().unwrap();
        let item = server.media(name).await;
        let id = item["id"].as_str().unwrap();
        assert_eq!(item["playable"], false, "{name}: {item}");
        assert!(
            !item["reasons"].as_array().unwrap().is_empty(),
            "{name} has a reason"
        );
        for path in [
            format!("/api/v1/stream/{id}"),
            format!("/api/v1/stream/{id}?mode=hls"),
        ] {
            let r = server.get(&path, ALICE).await;
            assert_eq!(r.status(), 422, "{name}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unplayable");
            assert!(
                body["error"]["message"].as_str().unwrap().contains(name),
                "{body}"
            );
        }
        let r = server
            .client
            .post(server.url("/api/v1/hls/start"))
            .bearer_auth(ALICE)
            .json(&serde_json::json!({"media_id": id}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{name}");
    }
    assert!(server.session_folders().is_empty());

    // Still serving: a good file plays.
    let good = server.media("remux_h264_aac.mkv").await;
    let s = server.start_hls(good["id"].as_str().unwrap(), ALICE).await;
    let played = play_hls(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    assert!(played.segments >= 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_hostile_paths_and_bad_bodies_get_json_errors() {
    let media = media_subset(&[fixtures_dir().join("remux_h264_aac.mkv")]);
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let id = server.media_id("remux_h264_aac.mkv").await;
    let s = server.start_hls(&id, ALICE).await;
    let sid = s["session_id"].as_str().unwrap();
    let unknown = uuid::Uuid::new_v4();

    for (path, status) in [
        (format!("/api/v1/media/{unknown}"), 404),
        ("/api/v1/media/not-a-uuid".to_string(), 404),
        (format!("/api/v1/stream/{unknown}"), 404),
        ("/api/v1/stream/..%2F..%2Fetc%2Fpasswd".to_string(), 404),
        (format!("/api/v1/hls/{sid}/360p/..%2Fhlssink2.m3u8"), 404),
        (format!("/api/v1/hls/{sid}/360p/hlssink2.m3u8"), 404),
        (
            format!("/api/v1/hls/{sid}/..%2F..%2F/segment_00000.ts"),
            404,
        ),
        (format!("/api/v1/hls/{sid}/360p/segment_99999.ts"), 404),
        (format!("/api/v1/hls/{sid}/1080p/playlist.m3u8"), 404),
        ("/api/v1/nope".to_string(), 404),
    ] {
        let r = server.get(&path, ALICE).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
        let body: serde_json::Value = r
            .json()
            .await
            .unwrap_or_else(|_| panic!("{path}: JSON error body"));
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "{path}: {body}"
        );
    }
    for body in ["{", "{\"media_id\": 5}", "{\"media_id\": \"nope\"}"] {
        let r = server
            .client
            .post(server.url("/api/v1/hls/start"))
            .bearer_auth(ALICE)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 400 || r.status() == 404,
            "{body}: {}",
            r.status()
        );
        let json: serde_json::Value = r.json().await.unwrap();
        assert!(json["error"]["code"].is_string());
    }
    let r = server
        .client
        .put(server.url("/api/v1/media"))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    server.stop().await;
}
