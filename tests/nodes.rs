//! What lets several hlsd nodes stand behind one load balancer and cache
//! (README, "Scaling out"): every answer names its node (`X-Hlsd-Node`,
//! `--node-name`), and `GET /api/v1/hls/authorize` tells a cache in front
//! (nginx `auth_request`) whether the rendition URI it is about to serve
//! from its cache carries a good playback token: 204 for one, 401 without
//! a token, 403 for a forged token or another item's, 400 for no URI.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_name_their_node_and_a_cache_can_check_tokens() {
    let media = media_subset(&[
        fixtures_dir().join("transcode_vp8_vorbis_20s.webm"),
        fixtures_dir().join("remux_h264_aac.mkv"),
    ]);
    let server = start_server_with(media.path(), |c| c.node_name = "node-a".into()).await;
    let r = server.get("/healthz", ALICE).await;
    assert_eq!(r.headers()["x-hlsd-node"], "node-a");
    let r = server.get("/api/v1/media/nope", ALICE).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-hlsd-node"], "node-a", "errors too");

    let webm = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let mkv = server.media_id("remux_h264_aac.mkv").await;
    let s = server.start_hls(&webm, ALICE).await;
    let master = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    let segment = segment_url(&master.variant, 0);
    let r = get_segment(&server, &segment, ALICE).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-hlsd-node"], "node-a");

    let authorize = |uri: Option<String>| {
        let mut req = server.client.get(server.url("/api/v1/hls/authorize"));
        if let Some(u) = uri {
            req = req.header("x-original-uri", u);
        }
        req.send()
    };
    // The segment's own URI: good, with no account token at all.
    let r = authorize(Some(segment.clone())).await.unwrap();
    assert_eq!(r.status(), 204, "{segment}");
    // No token; a forged one; the token on another item's URI.
    let (path, query) = segment.split_once('?').unwrap();
    let token = query.strip_prefix("token=").unwrap();
    let forged = format!("{}x", &token[..token.len() - 1]);
    let other = path.replace(&webm, &mkv);
    for (uri, status, code) in [
        (path.to_string(), 401, "unauthorized"),
        (format!("{path}?token={forged}"), 403, "token_invalid"),
        (format!("{other}?{query}"), 403, "token_invalid"),
        ("/api/v1/media".to_string(), 400, "bad_request"),
    ] {
        let r = authorize(Some(uri.clone())).await.unwrap();
        assert_eq!(r.status(), status, "{uri}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{uri}: {body}");
    }
    assert_eq!(authorize(None).await.unwrap().status(), 400);
    server.stop().await;
}
