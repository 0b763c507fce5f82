//! Resume: a user's playback position is stored and read back
//! (`/api/v1/progress/{id}`, in the catalogue database, so it outlives a
//! restart), and `/api/v1/stream/{id}?start=SECONDS` starts there: the
//! media playlists carry `EXT-X-START:TIME-OFFSET`, the first producer
//! starts at the segment holding that time, and that segment covers it.

use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FILM: &str = "h264_1fps_countdown_600s.mkv";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_position_resumes_playback_there() {
    let Some(shared) = shared_media() else { return };
    let media = media_subset(&[shared.join(FILM)]);
    let server = start_server(media.path(), Duration::from_secs(60)).await;
    server.wait_library(Duration::from_secs(60)).await;
    let id = server.media_id(FILM).await;
    let progress = format!("/api/v1/progress/{id}");
    let put = |body: Value, token: &'static str| {
        server
            .client
            .put(server.url(&progress))
            .bearer_auth(token)
            .json(&body)
            .send()
    };

    // Nothing stored yet; bad positions and unknown items are refused.
    assert_eq!(server.get(&progress, ALICE).await.status(), 404);
    for bad in [
        json!({"position_s": -1.0}),
        json!({"position_s": 601.5}),
        json!({"position": 3}),
        json!("95"),
    ] {
        assert_eq!(
            put(bad.clone(), ALICE).await.unwrap().status(),
            400,
            "{bad}"
        );
    }
    let r = server
        .client
        .put(server.url("/api/v1/progress/00000000-0000-0000-0000-000000000000"))
        .bearer_auth(ALICE)
        .json(&json!({"position_s": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Stored per user.
    assert_eq!(
        put(json!({"position_s": 95.0}), ALICE)
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        put(json!({"position_s": 12.0}), BOB)
            .await
            .unwrap()
            .status(),
        204
    );
    let mine = server.get_json(&progress, ALICE, 200).await;
    assert_eq!(mine["position_s"], 95.0, "{mine}");
    assert_eq!(
        server.get_json(&progress, BOB, 200).await["position_s"],
        12.0
    );

    // Bad starts are refused.
    for bad in ["abc", "-5", "600.5"] {
        let r = server
            .get(&format!("/api/v1/stream/{id}?start={bad}"), ALICE)
            .await;
        assert_eq!(r.status(), 400, "start={bad}");
    }

    // Resume at 95 s.
    let r = server
        .get(&format!("/api/v1/stream/{id}?start=95"), ALICE)
        .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = fetch_master(&server, &location, ALICE).await;
    let text = server
        .get(&master.variant, ALICE)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.contains("#EXT-X-START:TIME-OFFSET=95.000\n"), "{text}");
    let playlist = complete_playlist(&server, &master.variant, ALICE).await;
    let mut start = 0.0;
    let (n, seg) = playlist
        .segments
        .iter()
        .enumerate()
        .find(|(_, s)| {
            let found = start + s.duration as f64 > 95.0;
            if !found {
                start += s.duration as f64;
            }
            found
        })
        .expect("a segment holds 95 s");
    assert!(n > 0, "95 s is past the first segment");

    // The first producer started there: its position reaches past the
    // start of that segment before anything asked for a segment.
    let sid = server.session_behind(&location, ALICE).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = session_view(&server, &sid, ALICE).await;
        if view["segments_ready"].as_u64().unwrap_or(0) >= 1 {
            assert!(
                view["position_s"].as_f64().unwrap() >= start,
                "the producer did not start at segment {n} ({start} s): {view}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no segment made: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // That segment covers 95 s.
    let bytes = get_segment(&server, &resolve(&master.variant, &seg.uri), ALICE)
        .await
        .bytes()
        .await
        .unwrap();
    let pts = video_pts(&bytes).expect("video timestamps");
    let first = pts.iter().cloned().fold(f64::MAX, f64::min) - 3600.0;
    let last = pts.iter().cloned().fold(f64::MIN, f64::max) - 3600.0;
    println!("segment {n}: {first:.3} s to {last:.3} s, listed from {start:.3} s");
    assert!(
        first <= 95.0 && 95.0 < last + 1.0,
        "segment {n} shows {first}..{last}"
    );
    assert!(
        (first - start).abs() < 0.05,
        "segment {n} starts at {first}, listed at {start}"
    );

    // Without start=, the same user gets a session from the beginning.
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    let again = r.headers()["location"].to_str().unwrap().to_string();
    let text = {
        let m = fetch_master(&server, &again, ALICE).await;
        server.get(&m.variant, ALICE).await.text().await.unwrap()
    };
    // From the beginning: no offset into the film (an EVENT playlist, for
    // a title whose end was not known when first served, says 0).
    assert!(
        !text.contains("EXT-X-START") || text.contains("#EXT-X-START:TIME-OFFSET=0\n"),
        "{text}"
    );
    server.stop().await;
}
