//! What lets several hlsd nodes stand behind one load balancer and cache
//! (docs/deployment.md, "Scaling out"): every answer names its node (`X-Hlsd-Node`,
//! `--node-name`), and `GET /api/v1/hls/authorize` tells a cache in front
//! (nginx `auth_request`) whether the rendition URI it is about to serve
//! from its cache carries a good playback token: 204 for one, 401 without
//! a token, 403 for a forged token, another item's or any URI but a plain
//! rendition URI, 400 for no URI.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_name_their_node_and_a_cache_can_check_tokens() {
    let media = media_subset(&[
        fixtures_dir().join("transcode_vp8_vorbis_20s.webm"),
        fixtures_dir().join("remux_h264_aac.mkv"),
    ]);
    let server = start_server_with(media.path(), |c| c.http.node_name = "node-a".into()).await;
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
        ("/api/v1/media".to_string(), 403, "forbidden"),
        (format!("{path}/..?{query}"), 403, "forbidden"),
    ] {
        let r = authorize(Some(uri.clone())).await.unwrap();
        assert_eq!(r.status(), status, "{uri}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{uri}: {body}");
    }
    assert_eq!(authorize(None).await.unwrap().status(), 400);
    // A start can name its item in the query, where a balancer routes on
    // it; the body may still carry the rest, and may not name another.
    let start = |query: String, body: &'static str| {
        server
            .client
            .post(server.url(&format!("/api/v1/hls/start{query}")))
            .bearer_auth(BOB)
            .body(body)
            .send()
    };
    let r = start(format!("?media_id={mkv}"), "").await.unwrap();
    assert_eq!(r.status(), 200);
    let started: serde_json::Value = r.json().await.unwrap();
    let master_url = started["master_url"].as_str().unwrap();
    assert!(
        master_url.starts_with(&format!("/api/v1/hls/media/{mkv}/")),
        "{master_url}"
    );
    let r = start(format!("?media_id={mkv}"), "{\"subtitle\": \"off\"}")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let conflicting = format!("{{\"media_id\": \"{webm}\"}}");
    let r = server
        .client
        .post(server.url(&format!("/api/v1/hls/start?media_id={mkv}")))
        .bearer_auth(BOB)
        .body(conflicting)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // ingress-nginx's auth-url sends the whole URL in X-Original-URL; when
    // both headers come they must name the same URI.
    for (url, uri, status) in [
        (format!("https://media.example{segment}"), None, 204),
        (
            format!("https://media.example{path}?token={forged}"),
            None,
            403,
        ),
        (
            format!("https://media.example{segment}"),
            Some(segment.clone()),
            204,
        ),
        (
            format!("https://media.example{other}?{query}"),
            Some(segment.clone()),
            403,
        ),
    ] {
        let mut req = server
            .client
            .get(server.url("/api/v1/hls/authorize"))
            .header("x-original-url", &url);
        if let Some(uri) = &uri {
            req = req.header("x-original-uri", uri);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), status, "{url} {uri:?}");
    }
    server.stop().await;
}

/// Text with every token's value blanked: what two fetches of one
/// playlist share.
fn without_tokens(text: &str) -> String {
    text.split("token=")
        .enumerate()
        .map(|(i, part)| match i {
            0 => part.to_string(),
            _ => part
                .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || "-_.".contains(c))
                .to_string(),
        })
        .collect::<Vec<_>>()
        .join("token=")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_node_opens_the_same_session_from_its_master_url() {
    let Some(shared) = shared_media() else {
        return;
    };
    let media = media_subset(&[shared.join("derived_bbb_h264_3audio_srt_pgs.mkv")]);
    let node = |name: &'static str| {
        move |c: &mut hlsd::config::Config| {
            c.http.node_name = name.into();
            c.http.secret = Some("one-secret-for-every-node".into());
        }
    };
    let a = start_server_with(media.path(), node("node-a")).await;
    let b = start_server_with(media.path(), node("node-b")).await;
    let id = a.media_id("derived_bbb_h264_3audio_srt_pgs.mkv").await;
    assert_eq!(b.media_id("derived_bbb_h264_3audio_srt_pgs.mkv").await, id);

    // Node A opens Alice's session with French audio and the second
    // subtitle track, as a 302 hands it out.
    let r = a
        .get(&format!("/api/v1/stream/{id}?audio=fr&subtitle=1"), ALICE)
        .await;
    assert_eq!(r.status(), 302);
    let master_url = r.headers()["location"].to_str().unwrap().to_string();
    assert!(master_url.contains("audio=fr"), "{master_url}");
    let sid = a.session_behind(&master_url, ALICE).await;
    let on_a = a.get(&master_url, ALICE).await.text().await.unwrap();

    // Node B first sees one of its media playlist URLs (the player's node
    // died): it opens the session with the item's default tracks. Then the
    // master URL, with no account token, opens it as it was asked for
    // (same id, same tracks), so the playlist is the same but for its
    // tokens.
    let from_a = fetch_master(&a, &master_url, ALICE).await;
    assert_eq!(b.get(&from_a.variant, ALICE).await.status(), 200);
    let r = b.client.get(b.url(&master_url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-hlsd-node"], "node-b");
    let on_b = r.text().await.unwrap();
    assert_eq!(without_tokens(&on_a), without_tokens(&on_b));
    let default_audio = on_b
        .lines()
        .find(|l| l.contains("TYPE=AUDIO") && l.contains("DEFAULT=YES"))
        .unwrap_or_else(|| panic!("no default audio: {on_b}"));
    assert!(default_audio.contains("LANGUAGE=\"fr"), "{default_audio}");
    assert_eq!(b.session_behind(&master_url, ALICE).await, sid);

    // Its media playlists too, byte for byte with the same token.
    let m = fetch_master(&b, &master_url, ALICE).await;
    let from_a = a.get(&m.variant, ALICE).await.text().await.unwrap();
    let from_b = b.get(&m.variant, ALICE).await.text().await.unwrap();
    assert_eq!(from_a, from_b);
    // What follows the token is checked as a start request's fields are.
    for bad in ["start=1e30", "start=-1", "burn=x", "profile=nope"] {
        let r = b.get(&format!("{master_url}&{bad}"), ALICE).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    // A forged token opens nothing.
    let forged = master_url.replacen("token=", "token=x", 1);
    assert_eq!(b.get(&forged, ALICE).await.status(), 403);
    a.stop().await;
    b.stop().await;
}
