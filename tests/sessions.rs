//! Sessions: reuse, heartbeat and idle timeout, delete, auth and ownership,
//! shutdown cleanup.

mod common;

use common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_starts_by_one_user_share_a_session() {
    let media = media_subset(&[fixtures_dir().join("remux_h264_aac.mkv")]);
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let id = server.media_id("remux_h264_aac.mkv").await;

    let a = server.start_hls(&id, ALICE).await;
    let b = server.start_hls(&id, ALICE).await;
    assert_eq!(a["session_id"], b["session_id"]);
    // The stream entry point reuses it too.
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    assert_eq!(r.status(), 302);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        a["master_url"].as_str().unwrap()
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
    // Each session's task creates its folder as it starts.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.session_folders().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "two session folders");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.session_folders().len(), 2);

    // Stopping the server stops every pipeline and deletes every folder.
    let dir = server.stop().await;
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_session_and_idleness_removes_it_with_its_folder() {
    let media = media_subset(&[fixtures_dir().join("remux_h264_aac.mkv")]);
    let server = start_server(media.path(), Duration::from_secs(2)).await;
    let id = server.media_id("remux_h264_aac.mkv").await;
    let s = server.start_hls(&id, ALICE).await;
    let sid = s["session_id"].as_str().unwrap().to_string();
    let master = s["master_url"].as_str().unwrap().to_string();
    let done = wait_complete(&server, &sid, ALICE).await;
    assert_eq!(done["state"], "complete");
    assert_eq!(server.session_folders().len(), 1);
    let playlist = master.replace("master.m3u8", "360p/playlist.m3u8");

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

    // Then silence: gone, with its folder. (Listing sessions is not a heartbeat.)
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(server
        .get_json("/api/v1/sessions", ALICE, 200)
        .await
        .as_array()
        .unwrap()
        .is_empty());
    assert!(
        server.session_folders().is_empty(),
        "folder left: {:?}",
        server.session_folders()
    );
    assert_eq!(server.get(&playlist, ALICE).await.status(), 404);
    // A new start after the timeout makes a new session.
    let again = server.start_hls(&id, ALICE).await;
    assert_ne!(again["session_id"], s["session_id"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_stops_the_session_and_deletes_its_folder() {
    let media = media_subset(&[fixtures_dir().join("transcode_vp8_vorbis_20s.webm")]);
    let server = start_server(media.path(), Duration::from_secs(600)).await;
    let id = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let s = server.start_hls(&id, ALICE).await;
    let sid = s["session_id"].as_str().unwrap();
    // Delete while the encoder may still be running.
    let r = server.delete_session(sid, ALICE).await;
    assert_eq!(r.status(), 204);
    assert!(server.session_folders().is_empty());
    assert_eq!(
        server
            .get(s["master_url"].as_str().unwrap(), ALICE)
            .await
            .status(),
        404
    );
    let r = server.delete_session(sid, ALICE).await;
    assert_eq!(r.status(), 404);
    // Nothing reappears once the pipeline has wound down.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(server.session_folders().is_empty());
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
    // With ?api_key, playlists carry the key in every URI they list.
    let r = server
        .client
        .get(server.url(&format!("/api/v1/stream/{id}?api_key={ALICE}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let master_url = r.headers()["location"].to_str().unwrap().to_string();
    assert!(master_url.ends_with(&format!("master.m3u8?api_key={ALICE}")));
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
        master.contains(&format!("360p/playlist.m3u8?api_key={ALICE}")),
        "{master}"
    );
    let playlist_url = master_url.replace("master.m3u8", "360p/playlist.m3u8");
    let playlist = server
        .client
        .get(server.url(&playlist_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        playlist.contains(&format!("segment_00000.ts?api_key={ALICE}")),
        "{playlist}"
    );
    // With a bearer header they do not.
    let plain = server.get(&master_url, ALICE).await.text().await.unwrap();
    assert!(
        plain.contains("360p/playlist.m3u8\n") && !plain.contains("api_key"),
        "{plain}"
    );

    // Bob sees Alice's session exactly like an unknown one.
    let sid = master_url.split('/').nth(4).unwrap();
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/v1/hls/{sid}/master.m3u8"),
        format!("/api/v1/hls/{sid}/360p/playlist.m3u8"),
        format!("/api/v1/hls/{sid}/360p/segment_00000.ts"),
        format!("/api/v1/hls/{unknown}/master.m3u8"),
    ] {
        let r = server.get(&path, BOB).await;
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found");
    }
    let r = server.delete_session(sid, BOB).await;
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
    let server = start_server_with(media.path(), |c| c.segment_wait = Duration::ZERO).await;
    let id = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let s = server.start_hls(&id, ALICE).await;
    let playlist = s["master_url"]
        .as_str()
        .unwrap()
        .replace("master.m3u8", "360p/playlist.m3u8");
    // The playlist of a transcode is complete at once (VOD) ...
    let r = server.get(&playlist, ALICE).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert_eq!(text.matches("#EXTINF").count(), 4, "{text}");
    // ... and a segment still being made is a bounded 503.
    let r = server
        .get(
            &playlist.replace("playlist.m3u8", "segment_00000.ts"),
            ALICE,
        )
        .await;
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
        c.templates.video_transcode = c.templates.video_transcode.replace(
            "video/x-h264,profile=high",
            "video/x-h264,profile=high-4:4:4-intra",
        );
        assert!(c.templates.video_transcode.contains("high-4:4:4-intra"));
    })
    .await;
    let id = server.media_id("transcode_vp8_vorbis_20s.webm").await;
    let s = server.start_hls(&id, ALICE).await;
    let sid = s["session_id"].as_str().unwrap();
    let done = wait_complete(&server, sid, ALICE).await;
    assert_eq!(done["state"], "failed", "{done}");
    let message = done["error"].as_str().unwrap().to_string();
    assert!(!message.is_empty());
    assert!(
        !message.contains(".c("),
        "no GStreamer debug detail for clients: {message}"
    );

    for path in [
        s["master_url"].as_str().unwrap().to_string(),
        s["master_url"]
            .as_str()
            .unwrap()
            .replace("master.m3u8", "360p/playlist.m3u8"),
    ] {
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
