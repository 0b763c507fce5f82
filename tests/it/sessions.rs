//! Sessions: reuse, heartbeat and idle timeout, delete, auth and ownership,
//! shutdown cleanup.

use crate::common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_starts_by_one_user_share_a_session() {
    let media = media_subset(&[fixtures_dir().join("remux_h264_aac.mkv")]);
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let id = server.media_id("remux_h264_aac.mkv").await;

    let a = server.start_hls(&id, ALICE).await;
    let b = server.start_hls(&id, ALICE).await;
    assert_eq!(a["session_id"], b["session_id"]);
    // The stream entry point reuses it too (its URL's token is signed
    // anew, with a later expiry).
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location.split('?').next(),
        a["master_url"].as_str().unwrap().split('?').next()
    );
    assert_eq!(
        server.session_behind(&location, ALICE).await,
        a["session_id"].as_str().unwrap()
    );
    let list = server.get_json("/api/v1/sessions", ALICE, 200).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Another user gets a session of their own.
    let c = server.start_hls(&id, BOB).await;
    assert_ne!(a["session_id"], c["session_id"]);
    assert_eq!(
        server
            .get_json("/api/v1/sessions", ALICE, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server
            .get_json("/api/v1/sessions", BOB, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Both users play one title: its segments are made once, in one place.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.files_ending(".ts").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no segment made");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let titles = std::fs::read_dir(server.transcode_dir.join("store"))
        .unwrap()
        .count();
    assert_eq!(titles, 1, "one title in the store for two users");

    // Stopping the server stops every pipeline and empties the store.
    let dir = server.stop().await;
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_session_and_idleness_removes_it() {
    let media = media_subset(&[fixtures_dir().join("remux_h264_aac.mkv")]);
    let server = start_server(media.path(), Duration::from_secs(2)).await;
    let id = server.media_id("remux_h264_aac.mkv").await;
    let s = server.start_hls(&id, ALICE).await;
    let sid = s["session_id"].as_str().unwrap().to_string();
    let master = s["master_url"].as_str().unwrap().to_string();
    let playlist = fetch_master(&server, &master, ALICE).await.variant;
    let done = wait_complete(&server, &sid, ALICE).await;
    assert_eq!(done["state"], "complete");
    assert!(server.store_bytes() > 0);

    // Requests every 0.5 s for 4 s (twice the timeout) keep it alive.
    for _ in 0..8 {
        assert_eq!(server.get(&playlist, ALICE).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        server
            .get_json("/api/v1/sessions", ALICE, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Then silence: gone. (Listing sessions is not a heartbeat.)
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(server
        .get_json("/api/v1/sessions", ALICE, 200)
        .await
        .as_array()
        .unwrap()
        .is_empty());
    // Gone by id; its signed URLs would make it again (a paused player).
    assert_eq!(master_by_id(&server, &sid).await, 404);
    assert!(server.files_ending(".part").is_empty());
    // A new start after the timeout makes a new session, which finds the
    // title's segments still in the store.
    let again = server.start_hls(&id, ALICE).await;
    assert_ne!(again["session_id"], s["session_id"]);
    let view = session_view(&server, again["session_id"].as_str().unwrap(), ALICE).await;
    assert_eq!(view["state"], "complete", "{view}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_stops_the_session_and_its_producer() {
    let media = media_subset(&[fixtures_dir().join("transcode_vp8_vorbis_20s.webm")]);
    let server = start_server_with(media.path(), |c| c.http.admins = vec!["alice".into()]).await;
    let id = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let s = server.start_hls(&id, ALICE).await;
    let sid = s["session_id"].as_str().unwrap();
    // Delete while the producer may still be running.
    let r = server.delete_session(sid, ALICE).await;
    assert_eq!(r.status(), 204);
    assert_eq!(master_by_id(&server, sid).await, 404);
    let r = server.delete_session(sid, ALICE).await;
    assert_eq!(r.status(), 404);
    // Its producer, needed by nobody else, stops and leaves no .part file.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = server.admin_stats(ALICE).await;
        if stats["producers"].as_object().unwrap().is_empty()
            && server.files_ending(".part").is_empty()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "producer left: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_sessions_are_private() {
    let media = media_subset(&[fixtures_dir().join("remux_h264_aac.mkv")]);
    let server = start_server(media.path(), Duration::from_secs(600)).await;

    assert_eq!(
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for path in ["/api/v1/media", "/api/v1/sessions"] {
        let r = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without token");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["error"]["message"].as_str().unwrap().contains("token"));
        assert_eq!(
            server.get(path, "wrong").await.status(),
            401,
            "{path} wrong token"
        );
        let r = server
            .client
            .get(server.url(&format!("{path}?api_key=wrong")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }

    let id = server.media_id("remux_h264_aac.mkv").await;
    // The redirect hands out a signed master URL scoped to the item: no
    // account token in it ...
    let r = server
        .client
        .get(server.url(&format!("/api/v1/stream/{id}?api_key={ALICE}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let master_url = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        master_url.starts_with(&format!("/api/v1/hls/media/{id}/master.m3u8?token=")),
        "{master_url}"
    );
    // ... but no playlist does: their URIs carry a signed playback token,
    // and name the media item and the rendition.
    let master = server
        .client
        .get(server.url(&master_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !master.contains("api_key") && !master.contains(ALICE),
        "{master}"
    );
    assert!(
        master.contains("\nvideo-copy/playlist.m3u8?token="),
        "{master}"
    );
    let m = fetch_master(&server, &master_url, ALICE).await;
    let playlist_url = m.variant.clone();
    // The playlist needs no account token at all.
    let r = server
        .client
        .get(server.url(&playlist_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let playlist = r.text().await.unwrap();
    assert!(!playlist.contains("api_key"), "{playlist}");
    let token = playlist_url.split("token=").nth(1).unwrap();
    assert!(
        playlist.contains(&format!("segment_00000.ts?token={token}")),
        "{playlist}"
    );
    // A token altered, missing, or for another item is refused.
    let (fields, mac) = token.split_once('.').unwrap();
    let forged = format!("{fields}.{}", mac.chars().rev().collect::<String>());
    for (url, status, code) in [
        (playlist_url.replace(token, &forged), 403, "token_invalid"),
        (
            playlist_url.split('?').next().unwrap().to_string(),
            401,
            "unauthorized",
        ),
        (
            playlist_url.replace(&id, &uuid::Uuid::new_v4().to_string()),
            403,
            "token_invalid",
        ),
    ] {
        let r = server.client.get(server.url(&url)).send().await.unwrap();
        assert_eq!(r.status(), status, "{url}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{url}");
    }

    // By session id with the account token, the same playlist, its URIs
    // relative to that path.
    let sid = server.session_behind(&master_url, ALICE).await;
    let by_id = server
        .get(&format!("/api/v1/hls/{sid}/master.m3u8"), ALICE)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        by_id.contains(&format!("../media/{id}/video-copy/playlist.m3u8?token=")),
        "{by_id}"
    );
    // Bob sees Alice's session exactly like an unknown one.
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/v1/hls/{sid}/master.m3u8"),
        format!("/api/v1/hls/{unknown}/master.m3u8"),
    ] {
        let r = server.get(&path, BOB).await;
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
    let r = server.delete_session(&sid, BOB).await;
    assert_eq!(r.status(), 404);
    assert!(server
        .get_json("/api/v1/sessions", BOB, 200)
        .await
        .as_array()
        .unwrap()
        .is_empty());
    // Alice's session survived Bob's attempts.
    assert_eq!(server.get(&master_url, ALICE).await.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_not_made_in_time_gets_503_with_retry_after() {
    let media = media_subset(&[fixtures_dir().join("transcode_vp8_vorbis_20s.webm")]);
    // No waiting at all: the first request certainly comes before a 6 s
    // segment has been encoded.
    let server = start_server_with(media.path(), |c| {
        c.http.segment_wait = Duration::ZERO.into()
    })
    .await;
    let id = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let s = server.start_hls(&id, ALICE).await;
    let playlist = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE)
        .await
        .variant;
    // The playlist of a transcode is complete at once (VOD) ...
    let r = server.get(&playlist, ALICE).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert_eq!(text.matches("#EXTINF").count(), 4, "{text}");
    // ... and a segment still being made is a bounded 503.
    let r = server.get(&segment_url(&playlist, 0), ALICE).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    // And it does come.
    let played = play_hls(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    assert_eq!(played.segments, 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_pipeline_fails_its_session_with_a_plain_message() {
    let media = media_subset(&[fixtures_dir().join("transcode_vp8_vorbis_20s.webm")]);
    // An encode branch that parses but cannot negotiate: x264 cannot make
    // this profile from I420 input.
    let server = start_server_with(media.path(), |c| {
        c.supervisor.templates.video_transcode = c.supervisor.templates.video_transcode.replace(
            "video/x-h264,profile=high",
            "video/x-h264,profile=high-4:4:4-intra",
        );
        assert!(c
            .supervisor
            .templates
            .video_transcode
            .contains("high-4:4:4-intra"));
    })
    .await;
    let id = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let s = server.start_hls(&id, ALICE).await;
    let sid = s["session_id"].as_str().unwrap();
    let master_url = s["master_url"].as_str().unwrap().to_string();
    // The master playlist, if it comes before the failure, lists a media
    // playlist that must fail too.
    let r = server.get(&master_url, ALICE).await;
    let playlist = if r.status() == 200 {
        let text = r.text().await.unwrap();
        let uri = text.lines().rfind(|l| !l.starts_with('#')).unwrap();
        Some(resolve(&master_url, uri))
    } else {
        None
    };
    let done = wait_complete(&server, sid, ALICE).await;
    assert_eq!(done["state"], "failed", "{done}");
    let message = done["error"].as_str().unwrap().to_string();
    assert!(!message.is_empty());
    assert!(
        !message.contains(".c("),
        "no GStreamer debug detail for clients: {message}"
    );

    for path in std::iter::once(master_url.clone()).chain(playlist) {
        let r = server.get(&path, ALICE).await;
        assert_eq!(r.status(), 500, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "session_failed");
        assert_eq!(body["error"]["message"], message.as_str());
    }
    // Starting again replaces the failed session rather than reusing it.
    let again = server.start_hls(&id, ALICE).await;
    assert_ne!(again["session_id"], s["session_id"]);
    server.stop().await;
}

/// The status of `GET /api/v1/hls/{sid}/master.m3u8` as Alice.
async fn master_by_id(server: &TestServer, sid: &str) -> u16 {
    server
        .get(&format!("/api/v1/hls/{sid}/master.m3u8"), ALICE)
        .await
        .status()
        .as_u16()
}
