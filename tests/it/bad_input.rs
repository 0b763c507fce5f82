//! Bad input is normal: corrupt and truncated files, unknown ids, hostile
//! paths. Each gets a clear JSON error and the server keeps serving.

use crate::common::*;
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
        let r = server.post_start(id, ALICE).await;
        assert_eq!(r.status(), 422, "{name}");
    }
    assert!(server.files_ending(".ts").is_empty(), "no segment made");

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
    let playlist = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE)
        .await
        .variant;
    let token = playlist.split("token=").nth(1).unwrap().to_string();
    let item_base = playlist.split("/video-copy/").next().unwrap().to_string();

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
        (
            format!("{item_base}/video-1080p/playlist.m3u8?token={token}"),
            404,
        ),
        (
            format!("{item_base}/video-copy/segment_99999.ts?token={token}"),
            404,
        ),
        (
            format!("{item_base}/video-copy/segment_1.ts?token={token}"),
            404,
        ),
        (
            format!("{item_base}/video-copy/..%2F..%2Fstore?token={token}"),
            404,
        ),
        (
            format!("/api/v1/hls/media/{unknown}/video-copy/playlist.m3u8?token={token}"),
            403,
        ),
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
    for body in [
        "{",
        "{\"media_id\": 5}",
        "{\"media_id\": \"nope\"}",
        "",
        "{}",
    ] {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_http_gets_json_errors_and_never_a_byte_from_outside() {
    let media = media_subset(&[
        fixtures_dir().join("remux_h264_aac.mkv"),
        fixtures_dir().join("direct_h264_aac.mp4"),
    ]);
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let remux = server.media_id("remux_h264_aac.mkv").await;
    let direct = server.media_id("direct_h264_aac.mp4").await;
    let s = server.start_hls(&remux, ALICE).await;
    let sid = s["session_id"].as_str().unwrap().to_string();
    let playlist = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE)
        .await
        .variant;
    let token = playlist.split("token=").nth(1).unwrap().to_string();
    let size = std::fs::metadata(fixtures_dir().join("direct_h264_aac.mp4"))
        .unwrap()
        .len();

    // Traversal, encoded or not, absolute paths and over-long ids in every
    // path parameter.
    let long = "a".repeat(8000);
    let mut paths = Vec::new();
    for bad in [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%2E%2E",
        "..",
        "%2Fetc%2Fpasswd",
        long.as_str(),
        "00000000-0000-0000-0000-000000000000",
    ] {
        paths.push(format!("/api/v1/media/{bad}"));
        paths.push(format!("/api/v1/stream/{bad}"));
        paths.push(format!("/api/v1/hls/{bad}/master.m3u8"));
        paths.push(format!("/api/v1/hls/{sid}/{bad}/playlist.m3u8"));
        paths.push(format!("/api/v1/hls/{sid}/360p/{bad}"));
        paths.push(format!("/api/v1/hls/preload/{bad}"));
        paths.push(format!(
            "/api/v1/hls/media/{bad}/video-copy/playlist.m3u8?token={token}"
        ));
        paths.push(format!(
            "/api/v1/hls/media/{remux}/{bad}/playlist.m3u8?token={token}"
        ));
        paths.push(format!(
            "/api/v1/hls/media/{remux}/video-copy/{bad}?token={token}"
        ));
        paths.push(format!(
            "/api/v1/hls/media/{remux}/video-copy/playlist.m3u8?token={bad}"
        ));
    }
    paths.push("/api/v1/stream//etc/passwd".into());
    paths.push("/../../etc/passwd".into());
    for path in &paths {
        let r = server.get(path, ALICE).await;
        let status = r.status().as_u16();
        assert!(
            matches!(status, 400 | 401 | 403 | 404 | 405),
            "{}: {status}",
            &path[..path.len().min(120)]
        );
        let body = r.bytes().await.unwrap();
        assert!(
            !body.windows(5).any(|w| w == b"root:"),
            "{path}: file bytes"
        );
        let json: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{}: JSON error body", &path[..path.len().min(120)]));
        assert!(json["error"]["code"].is_string());
    }

    // Range headers, per RFC 9110: one satisfiable range is 206; several,
    // or malformed ones, are ignored (200, whole file); none inside is 416.
    for (range, status, len) in [
        ("bytes=0-9", 206, 10),
        ("bytes=0-1,4-5", 200, size),
        ("bytes=abc", 200, size),
        ("bytes=5-2", 200, size),
        ("items=0-9", 200, size),
        ("bytes=-", 200, size),
    ] {
        let r = server
            .client
            .get(server.url(&format!("/api/v1/stream/{direct}")))
            .bearer_auth(ALICE)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{range}");
        assert_eq!(r.bytes().await.unwrap().len() as u64, len, "{range}");
    }
    let r = server
        .client
        .get(server.url(&format!("/api/v1/stream/{direct}")))
        .bearer_auth(ALICE)
        .header("range", format!("bytes={}-", size + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{size}").as_str()
    );

    // Wrong methods.
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/v1/media".to_string()),
        (reqwest::Method::PATCH, format!("/api/v1/stream/{direct}")),
        (reqwest::Method::GET, "/api/v1/hls/start".to_string()),
    ] {
        let r = server
            .client
            .request(method.clone(), server.url(&path))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status().as_u16(), 404 | 405),
            "{method} {path}: {}",
            r.status()
        );
        let json: serde_json::Value = r.json().await.unwrap();
        assert!(json["error"]["code"].is_string());
    }

    // A huge header (past hyper's ~400 KiB read buffer) is refused by the
    // HTTP layer, or the connection is closed; the server lives on.
    let r = server
        .client
        .get(server.url("/api/v1/media"))
        .bearer_auth(ALICE)
        .header("x-big", "b".repeat(1024 * 1024))
        .send()
        .await;
    if let Ok(r) = r {
        assert!(r.status().is_client_error(), "{}", r.status());
    }

    // A slow client that never finishes its request holds nobody up.
    use tokio::io::AsyncWriteExt;
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /api/v1/media HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(server.get("/api/v1/media", ALICE).await.status(), 200);
    assert!(t0.elapsed() < Duration::from_secs(5));
    drop(slow);

    assert_eq!(server.get("/healthz", ALICE).await.status(), 200);
    server.stop().await;
}
