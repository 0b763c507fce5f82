//! Operations: pre-warm (preload), admission control, statistics and
//! Prometheus metrics, against a real server.

use crate::common::*;
use std::time::{Duration, Instant};

const WEBM: &str = "transcode_vp8_vorbis_20s.webm";
const MP4: &str = "direct_h264_aac.mp4";

async fn post(server: &TestServer, path: &str, token: &str) -> reqwest::Response {
    server
        .client
        .post(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preloaded_session_is_reused_by_play_and_starts_in_milliseconds() {
    let media = media_subset(&[fixtures_dir().join(WEBM), fixtures_dir().join(MP4)]);
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let webm = server.media_id(WEBM).await;
    let mp4 = server.media_id(MP4).await;

    // A direct-play file starts nothing.
    let r = post(&server, &format!("/api/v1/hls/preload/{mp4}"), ALICE).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "direct_play");
    let none = server.get_json("/api/v1/sessions", ALICE, 200).await;
    assert!(none.as_array().unwrap().is_empty(), "{none}");
    // Unknown ids get the same errors as /stream.
    let r = post(
        &server,
        &format!("/api/v1/hls/preload/{}", uuid::Uuid::new_v4()),
        ALICE,
    )
    .await;
    assert_eq!(r.status(), 404);

    // A transcode warms in the background and stops after its first segments.
    let r = post(&server, &format!("/api/v1/hls/preload/{webm}"), ALICE).await;
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "warming");
    let sid = body["session_id"].as_str().unwrap().to_string();
    let warm = wait_session(&server, &sid, ALICE, |v| {
        v["segments_ready"].as_u64().unwrap() >= 1 && v["state"] == "throttled"
    })
    .await;
    assert_eq!(warm["preload"], true);
    assert!(warm["segments_ready"].as_u64().unwrap() <= 2, "{warm}");

    // Play: the same session, first segment already on disk.
    let t0 = Instant::now();
    let r = server.get(&format!("/api/v1/stream/{webm}"), ALICE).await;
    assert_eq!(r.status(), 302);
    let master = r.headers()["location"].to_str().unwrap().to_string();
    let sessions = server.get_json("/api/v1/sessions", ALICE, 200).await;
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(server.session_behind(&master, ALICE).await, sid, "reused");
    let playlist = fetch_master(&server, &master, ALICE).await.variant;
    let r = server.get(&playlist, ALICE).await;
    assert_eq!(r.status(), 200);
    let r = server.get(&segment_url(&playlist, 0), ALICE).await;
    assert_eq!(r.status(), 200);
    assert!(!r.bytes().await.unwrap().is_empty());
    println!(
        "preloaded play: stream -> first segment bytes in {:?}",
        t0.elapsed()
    );
    let played = session_view(&server, &sid, ALICE).await;
    assert_eq!(played["preload"], false, "{played}");
    // Played, it makes the rest.
    let done = wait_complete(&server, &sid, ALICE).await;
    assert_eq!(done["state"], "complete");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplayed_preload_expires_with_its_producer_and_preload_can_be_off() {
    let media = media_subset(&[fixtures_dir().join(WEBM)]);
    let server = start_server_with(media.path(), |c| {
        c.sessions.preload_timeout = Duration::from_secs(1).into();
        c.http.admins = vec!["alice".into()];
    })
    .await;
    let webm = server.media_id(WEBM).await;
    let r = post(&server, &format!("/api/v1/hls/preload/{webm}"), ALICE).await;
    assert_eq!(r.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = server.get_json("/api/v1/sessions", ALICE, 200).await;
        let stats = server.admin_stats(ALICE).await;
        if list.as_array().unwrap().is_empty()
            && stats["producers"].as_object().unwrap().is_empty()
            && server.files_ending(".part").is_empty()
        {
            break;
        }
        assert!(Instant::now() < deadline, "preload never expired: {list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = server
        .get_json("/api/v1/admin/streaming-stats", ALICE, 200)
        .await;
    assert_eq!(stats["sessions_stopped"]["preload_timeout"], 1, "{stats}");
    assert_eq!(stats["sessions_timed_out"], 1, "{stats}");
    // A page navigated away from cancels its preload at once.
    let r = post(&server, &format!("/api/v1/hls/preload/{webm}"), BOB).await;
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.unwrap();
    let sid = body["session_id"].as_str().unwrap();
    let r = server.delete_session(sid, BOB).await;
    assert_eq!(r.status(), 204);
    assert!(server
        .get_json("/api/v1/sessions", BOB, 200)
        .await
        .as_array()
        .unwrap()
        .is_empty());
    server.stop().await;

    let media = media_subset(&[fixtures_dir().join(WEBM)]);
    let server = start_server_with(media.path(), |c| c.sessions.no_preload = true).await;
    let webm = server.media_id(WEBM).await;
    let r = post(&server, &format!("/api/v1/hls/preload/{webm}"), ALICE).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "disabled");
    assert!(server.files_ending(".ts").is_empty(), "nothing made");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_transcode_cap_a_new_title_gets_503_and_a_shared_one_plays() {
    // Two titles on the transcode path: the same file under two names.
    let media = tempfile::tempdir().unwrap();
    for name in [WEBM, "second.webm"] {
        std::os::unix::fs::symlink(fixtures_dir().join(WEBM), media.path().join(name)).unwrap();
    }
    let server = start_server_with(media.path(), |c| c.supervisor.max_transcodes = 1).await;
    let webm = server.media_id(WEBM).await;
    let second = server.media_id("second.webm").await;
    let first = server.start_hls(&webm, ALICE).await;
    // Its producer starts in the background: the cap is full once it runs.
    wait_session(&server, first["session_id"].as_str().unwrap(), ALICE, |v| {
        v["state"] == "running"
    })
    .await;

    let message = assert_at_capacity(server.post_start(&second, BOB).await).await;
    assert!(
        message.contains("maximum of 1 transcode") && message.contains("--max-transcodes"),
        "{message}"
    );
    // Bob's /stream is refused the same way.
    let r = server.get(&format!("/api/v1/stream/{second}"), BOB).await;
    assert_eq!(r.status(), 503);

    // Alice's own session is reused, not counted again ...
    let again = server.start_hls(&webm, ALICE).await;
    assert_eq!(again["session_id"], first["session_id"]);
    // ... and Bob may watch her title: it needs no second encode.
    let bobs = server.start_hls(&webm, BOB).await;
    let played = play_hls(&server, first["master_url"].as_str().unwrap(), ALICE).await;
    assert_eq!(played.segments, 4);
    let played = play_hls(&server, bobs["master_url"].as_str().unwrap(), BOB).await;
    assert_eq!(played.segments, 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_metrics_count_starts_failures_and_timeouts_for_admins_only() {
    let media = media_subset(&[fixtures_dir().join(WEBM)]);
    let server = start_server_with(media.path(), |c| {
        c.sessions.session_timeout = Duration::from_secs(2).into();
        c.http.admins = vec!["alice".into()];
    })
    .await;
    let webm = server.media_id(WEBM).await;
    // Non-admins get 403; no token gets 401.
    let r = server.get("/api/v1/admin/streaming-stats", BOB).await;
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert_eq!(server.get("/metrics", BOB).await.status(), 403);
    let r = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let before = server
        .get_json("/api/v1/admin/streaming-stats", ALICE, 200)
        .await;
    assert_eq!(before["sessions_started"], 0);

    // A session that makes a segment, then is left idle until it times out.
    let s = server.start_hls(&webm, BOB).await;
    let playlist = fetch_master(&server, s["master_url"].as_str().unwrap(), BOB)
        .await
        .variant;
    let r = get_segment(&server, &segment_url(&playlist, 0), BOB).await;
    assert_eq!(r.status(), 200);
    let running = server
        .get_json("/api/v1/admin/streaming-stats", ALICE, 200)
        .await;
    assert_eq!(running["sessions_started"], 1, "{running}");
    assert_eq!(running["first_segment_s"]["samples"], 1, "{running}");
    assert!(running["first_segment_s"]["p50"].as_f64().unwrap() > 0.0);
    // At least the first segment (2 s by default, --first-segment).
    assert!(running["media_seconds_transcoded"].as_f64().unwrap() >= 2.0);
    let active: u64 = running["active_sessions"]["transcode"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(active, 1, "{running}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let timed_out = loop {
        let st = server
            .get_json("/api/v1/admin/streaming-stats", ALICE, 200)
            .await;
        if st["sessions_timed_out"] == 1 {
            break st;
        }
        assert!(Instant::now() < deadline, "never timed out: {st}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(timed_out["sessions_stopped"]["timeout"], 1);
    assert!(timed_out["active_sessions"].as_object().unwrap().is_empty());
    // The 403s and 401 above were counted.
    assert!(
        timed_out["errors"]["http_403"].as_u64().unwrap() >= 2,
        "{timed_out}"
    );

    // Metrics parse as Prometheus text and agree.
    let r = server.get("/metrics", ALICE).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text");
    let value = |name: &str| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    assert_eq!(value("hlsd_sessions_started_total"), 1.0, "{text}");
    assert_eq!(value("hlsd_sessions_stopped_total"), 1.0, "{text}");
    assert!(value("hlsd_media_seconds_transcoded_total") >= 6.0);
    server.stop().await;

    // A failing pipeline counts as failed, with its kind.
    let media = media_subset(&[fixtures_dir().join(WEBM)]);
    let server = start_server_with(media.path(), |c| {
        c.http.admins = vec!["alice".into()];
        c.supervisor.templates.video_transcode = c.supervisor.templates.video_transcode.replace(
            "video/x-h264,profile=high",
            "video/x-h264,profile=high-4:4:4-intra",
        );
    })
    .await;
    let webm = server.media_id(WEBM).await;
    let s = server.start_hls(&webm, ALICE).await;
    let done = wait_complete(&server, s["session_id"].as_str().unwrap(), ALICE).await;
    assert_eq!(done["state"], "failed");
    let st = server
        .get_json("/api/v1/admin/streaming-stats", ALICE, 200)
        .await;
    assert_eq!(st["sessions_failed"], 1, "{st}");
    assert_eq!(st["errors"]["pipeline"], 1, "{st}");
    let r = server.get("/metrics", ALICE).await;
    let text = r.text().await.unwrap();
    assert!(
        text.contains("hlsd_sessions_failed_total{mode=\"transcode\"} 1"),
        "{text}"
    );
    server.stop().await;
}

/// GET `url` (absolute or a path) with an `Origin` header and, if given,
/// a bearer token.
async fn get_from(
    server: &TestServer,
    url: &str,
    origin: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let url = if url.starts_with("http") {
        url.to_string()
    } else {
        server.url(url)
    };
    let mut request = server.client.get(url).header("origin", origin);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn allow_origin(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_origin_reads_the_api_playlists_and_segments_and_others_do_not() {
    const CAST: &str = "https://cast.example:8443";
    let media = media_subset(&[fixtures_dir().join(WEBM)]);
    let server = start_server_with(media.path(), |c| c.http.cors_origins = vec![CAST.into()]).await;
    let webm = server.media_id(WEBM).await;

    // The preflight a player on another origin sends before a GET with a
    // token and a Range header.
    let r = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/api/v1/media"))
        .header("origin", CAST)
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization, range, x-hlsd-profile",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(allow_origin(&r).as_deref(), Some(CAST));
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(
        allowed.contains("authorization")
            && allowed.contains("range")
            && allowed.contains("x-hlsd-profile"),
        "{allowed}"
    );
    // Another origin's preflight is refused, with a JSON error.
    let r = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/api/v1/media"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(allow_origin(&r), None);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    // The API, errors included, answers the listed origin.
    let r = get_from(&server, "/api/v1/media", CAST, Some(ALICE)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(allow_origin(&r).as_deref(), Some(CAST));
    assert!(r.headers()["vary"].to_str().unwrap().contains("origin"));
    let r = get_from(
        &server,
        "/api/v1/media",
        CAST,
        Some("wrong-token-0123456789"),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(allow_origin(&r).as_deref(), Some(CAST));
    // Another origin is served as without CORS: no header lets its page read.
    let r = get_from(
        &server,
        "/api/v1/media",
        "https://evil.example",
        Some(ALICE),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(allow_origin(&r), None);

    // Playlists and segments, as a player on CAST fetches them.
    let r = get_from(
        &server,
        &format!("/api/v1/stream/{webm}"),
        CAST,
        Some(ALICE),
    )
    .await;
    assert_eq!(r.status(), 302);
    assert_eq!(allow_origin(&r).as_deref(), Some(CAST));
    let master_url = r.headers()["location"].to_str().unwrap().to_string();
    let r = get_from(&server, &master_url, CAST, Some(ALICE)).await;
    assert_eq!(allow_origin(&r).as_deref(), Some(CAST));
    let variant = fetch_master(&server, &master_url, ALICE).await.variant;
    let r = get_from(&server, &variant, CAST, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(allow_origin(&r).as_deref(), Some(CAST));
    let r = get_from(&server, &segment_url(&variant, 0), CAST, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(allow_origin(&r).as_deref(), Some(CAST));
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(exposed.contains("content-length"), "{exposed}");
    assert!(!r.bytes().await.unwrap().is_empty());
    server.stop().await;

    // Without --cors-origin: no CORS headers, and no preflight route.
    let server = start_server_with(media.path(), |_| {}).await;
    let r = get_from(&server, "/api/v1/media", CAST, Some(ALICE)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(allow_origin(&r), None);
    let r = server
        .client
        .request(reqwest::Method::OPTIONS, server.url("/api/v1/media"))
        .header("origin", CAST)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(allow_origin(&r), None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_has_at_most_their_cap_of_sessions_and_an_unplayed_preload_gives_way() {
    // Four remux titles: the same file under four names.
    const MKV: &str = "remux_h264_aac.mkv";
    let media = tempfile::tempdir().unwrap();
    let names = ["a.mkv", "b.mkv", "c.mkv", "d.mkv"];
    for name in names {
        std::os::unix::fs::symlink(fixtures_dir().join(MKV), media.path().join(name)).unwrap();
    }
    let server = start_server_with(media.path(), |c| c.sessions.max_sessions_per_user = 2).await;
    let mut ids = Vec::new();
    for name in names {
        ids.push(server.media_id(name).await);
    }
    let sessions_of = |v: serde_json::Value| -> Vec<String> {
        let mut ids: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["media_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };

    let r = post(&server, &format!("/api/v1/hls/preload/{}", ids[0]), ALICE).await;
    assert_eq!(r.status(), 202);
    let b = server.start_hls(&ids[1], ALICE).await;
    // At the cap, the unplayed preload of a gives way to c.
    let c = server.start_hls(&ids[2], ALICE).await;
    let mut expected = vec![ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(
        sessions_of(server.get_json("/api/v1/sessions", ALICE, 200).await),
        expected
    );
    // Nothing gives way to d: 429 with the knob's name, on every way in.
    let r = server.post_start(&ids[3], ALICE).await;
    assert_eq!(r.status(), 429);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_sessions");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("--max-sessions-per-user"), "{message}");
    let r = server
        .get(&format!("/api/v1/stream/{}", ids[3]), ALICE)
        .await;
    assert_eq!(r.status(), 429);
    // A session already live is reused, and another user is not counted.
    let again = server.start_hls(&ids[1], ALICE).await;
    assert_eq!(again["session_id"], b["session_id"]);
    server.start_hls(&ids[3], BOB).await;
    // Stopping one makes room.
    let r = server
        .delete_session(c["session_id"].as_str().unwrap(), ALICE)
        .await;
    assert!(r.status().is_success());
    server.start_hls(&ids[3], ALICE).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_cap_on_waiting_requests_a_segment_request_gets_503_at_once() {
    let (media, name) = long_avi_dir(120).await;
    let server = start_server_with(media.path(), |c| {
        c.http.max_waiting_requests = 1;
        c.http.segment_wait = Duration::from_secs(20).into();
        c.http.admins = vec!["alice".into()];
    })
    .await;
    let id = server.media_id(&name).await;
    let started = server.start_hls(&id, ALICE).await;
    let variant = fetch_master(&server, started["master_url"].as_str().unwrap(), ALICE)
        .await
        .variant;
    // A far segment: a producer starts there and the request waits for it.
    let far = segment_url(&variant, 15);
    let waiting = {
        let client = server.client.clone();
        let url = server.url(&far);
        tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
    };
    // It waits once a producer was started for it (the server may be slow
    // to get there when other work loads the machine).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = server
            .get_json("/api/v1/admin/streaming-stats", ALICE, 200)
            .await;
        let started_there = stats["producer_list"]
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p["start_segment"] == 15));
        if started_there {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no producer started at segment 15"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let message = assert_at_capacity(server.get(&segment_url(&variant, 16), ALICE).await).await;
    assert!(message.contains("--max-waiting-requests"), "{message}");
    assert_eq!(waiting.await.unwrap(), 200, "the waiting request is served");
    // With the waiter gone, requests are served again.
    let r = get_segment(&server, &segment_url(&variant, 16), ALICE).await;
    assert_eq!(r.status(), 200);
    server.stop().await;
}
