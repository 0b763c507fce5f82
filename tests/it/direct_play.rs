//! Direct play: the original bytes with HTTP Range (RFC 9110 §14).

use crate::common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_requests_return_exactly_the_files_bytes() {
    let file = fixtures_dir().join("direct_h264_aac.mp4");
    let media = media_subset(std::slice::from_ref(&file));
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let item = server.media("direct_h264_aac.mp4").await;
    assert_eq!(item["playback"], "direct_play");
    assert_eq!(item["playable"], true);
    let bytes = std::fs::read(&file).unwrap();
    let url = format!("/api/v1/stream/{}", item["id"].as_str().unwrap());

    // Whole file.
    let r = server.get(&url, ALICE).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.headers()["content-type"], "video/mp4");
    assert_eq!(
        r.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let last_modified = r.headers()["last-modified"].to_str().unwrap().to_string();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..]);

    // One range in the middle, a suffix range and an open-ended one.
    let n = bytes.len();
    for (range, start) in [
        ("bytes=100-1099", 100),
        ("bytes=-500", n - 500),
        ("bytes=1000-", 1000),
    ] {
        let end = if range == "bytes=100-1099" { 1100 } else { n };
        let expected = &bytes[start..end];
        let r = server
            .client
            .get(server.url(&url))
            .bearer_auth(ALICE)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "{range}");
        let cr = r.headers()["content-range"].to_str().unwrap().to_string();
        assert_eq!(cr, format!("bytes {start}-{}/{n}", end - 1), "{range}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), expected, "{range}");
    }

    // Outside the file: 416 with the size.
    let r = server
        .client
        .get(server.url(&url))
        .bearer_auth(ALICE)
        .header("range", format!("bytes={}-", bytes.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{}", bytes.len()).as_str()
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "range_not_satisfiable");

    // If-Range: a matching ETag or date keeps the range, a stale one gets everything.
    for validator in [etag.as_str(), last_modified.as_str()] {
        let r = server
            .client
            .get(server.url(&url))
            .bearer_auth(ALICE)
            .header("range", "bytes=0-9")
            .header("if-range", validator)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "If-Range {validator}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[..10]);
    }
    let r = server
        .client
        .get(server.url(&url))
        .bearer_auth(ALICE)
        .header("range", "bytes=0-9")
        .header("if-range", "\"stale\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), bytes.len());

    // HEAD: the same headers, no body.
    let r = server
        .client
        .head(server.url(&url))
        .bearer_auth(ALICE)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-length"], "100");
    assert!(r.bytes().await.unwrap().is_empty());

    // ?mode=hls forces HLS for a direct-play file.
    let r = server.get(&format!("{url}?mode=hls"), ALICE).await;
    assert_eq!(r.status(), 302);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/master.m3u8?token="));
    let r = server.get(&format!("{url}?mode=bogus"), ALICE).await;
    assert_eq!(r.status(), 400);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_mov_and_mp4_files_are_direct_play() {
    let Some(shared) = shared_media() else { return };
    let files: Vec<_> = [
        "h264_aac_coin_568x320.mov",
        "h264_videoonly_bikes_640x272.mp4",
        "h264_aac_android_phone_1080p_vfr.mp4",
    ]
    .iter()
    .map(|f| shared.join(f))
    .collect();
    let media = media_subset(&files);
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        let item = server.media(name).await;
        assert_eq!(item["playback"], "direct_play", "{name}: {item}");
        let r = server
            .client
            .get(server.url(&format!("/api/v1/stream/{}", item["id"].as_str().unwrap())))
            .bearer_auth(ALICE)
            .header("range", "bytes=16-31")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(
            r.bytes().await.unwrap().as_ref(),
            &std::fs::read(f).unwrap()[16..32]
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_swapped_for_a_symlink_to_something_else_serves_nothing() {
    let file = fixtures_dir().join("direct_h264_aac.mp4");
    let media = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("secret.txt");
    std::fs::write(&secret, "SECRET ".repeat(10_000)).unwrap();
    let link = media.path().join("film.mp4");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    // Not watching, and no poll during the test: only the request sees it.
    let server = start_server_with(media.path(), |c| {
        c.library.no_watch = true;
        c.library.rescan_interval = Duration::from_secs(3600).into();
    })
    .await;
    let id = server.media_id("film.mp4").await;
    let url = format!("/api/v1/stream/{id}");
    // Any case of the Bearer scheme (RFC 9110 §11.1).
    let r = server
        .client
        .get(server.url(&url))
        .header("authorization", format!("bEaReR {ALICE}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.bytes().await.unwrap().len() as u64,
        file.metadata().unwrap().len()
    );

    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let r = server
            .client
            .request(method.clone(), server.url(&url))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.bytes().await.unwrap();
        assert!(
            matches!(status, 404 | 422),
            "{method}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        assert!(!String::from_utf8_lossy(&body).contains("SECRET"));
    }
}
