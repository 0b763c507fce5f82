//! The quality ladder: a transcode is offered at the source's size and the
//! standard steps below it, each rung made only when a player asks for its
//! segments, on the same grid.
//!
//! - A 1080p source lists 1080p, 720p, 480p and 360p variants, the 720p
//!   one first (where players start); a 480p source lists none above it;
//!   every variant has `BANDWIDTH`, `AVERAGE-BANDWIDTH` and the same
//!   audio group; a profile with `max_height: 480` is offered 480p and
//!   360p only.
//! - Segment 3 of the 480p rung starts one producer, for that rung only.
//! - Segment 3 of the 360p rung starts where the 480p one does (within a
//!   frame), and every segment of the 360p rung stays within the
//!   `BANDWIDTH` its variant declares although its content (coarse noise)
//!   asks CRF 23 for twice that.

use crate::common::ts_check::starts_with_idr;
use crate::common::*;
use std::time::Duration;

const TALL: &str = "mpeg2_noise_1080p_48s.mkv";
const SHORT: &str = "mpeg2_480p_20s.mkv";

/// `hlsd_producers_started_total` for `rendition` (0 when none started).
async fn started(server: &TestServer, rendition: &str) -> f64 {
    let text = server.get("/metrics", ALICE).await.text().await.unwrap();
    let sample = format!("hlsd_producers_started_total{{rendition=\"{rendition}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&sample))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn heights(master: &Master) -> Vec<u64> {
    master
        .variants
        .iter()
        .map(|v| v.resolution.expect("RESOLUTION").1)
        .collect()
}

fn variant(master: &Master, height: u64) -> String {
    master
        .variants
        .iter()
        .find(|v| v.resolution.map(|r| r.1) == Some(height))
        .unwrap_or_else(|| panic!("no {height}p variant: {}", master.text))
        .url
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rungs_are_listed_to_the_source_and_made_only_when_asked() {
    let Some(made) = ladder_media() else { return };
    let media = media_subset(&[made.join(TALL), made.join(SHORT)]);
    let server = start_server_with(media.path(), |c| {
        c.http.admins = vec!["alice".into()];
        // Held a little past the player rather than run to the end, so
        // the producer is still there to be listed.
        c.supervisor.throttle_margin_s = Duration::from_secs(6).into();
    })
    .await;
    server.wait_library(Duration::from_secs(60)).await;

    // The 480p source: nothing above 480 lines.
    let short = server.media_id(SHORT).await;
    let s = server.start_hls(&short, ALICE).await;
    let m = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    assert_eq!(heights(&m), [480, 360], "{}", m.text);

    // The 1080p source: every step, 720p first.
    let tall = server.media_id(TALL).await;
    let s = server.start_hls(&tall, ALICE).await;
    let master = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    assert_eq!(heights(&master), [720, 1080, 480, 360], "{}", master.text);
    let by_height = |h: u64| {
        master
            .variants
            .iter()
            .find(|v| v.resolution.unwrap().1 == h)
    };
    assert!(
        by_height(1080).unwrap().bandwidth > by_height(720).unwrap().bandwidth
            && by_height(480).unwrap().bandwidth > by_height(360).unwrap().bandwidth,
        "richer rungs declare more: {}",
        master.text
    );

    // Segment 3 of the 480p rung: one producer, for that rung alone.
    let rungs = ["video-1080p", "video-720p", "video-480p", "video-360p"];
    let mut before = Vec::new();
    for r in rungs {
        before.push(started(&server, r).await);
    }
    let p480 = variant(&master, 480);
    let media480 = complete_playlist(&server, &p480, ALICE).await;
    assert_eq!(media480.segments.len(), 9, "48 s: 2 s first, then 6 s each");
    let seg480 = get_segment(&server, &segment_url(&p480, 3), ALICE).await;
    assert_eq!(seg480.status(), 200);
    let seg480 = seg480.bytes().await.unwrap().to_vec();
    for (r, b) in rungs.iter().zip(&before) {
        let now = started(&server, r).await;
        let want = if *r == "video-480p" { b + 1.0 } else { *b };
        assert_eq!(now, want, "producers started for {r}");
    }
    let stats = server.admin_stats(ALICE).await;
    let listed: Vec<Vec<String>> = stats["producer_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["media_id"] == tall.as_str() && p["start_segment"] == 3)
        .map(|p| serde_json::from_value(p["renditions"].clone()).unwrap())
        .collect();
    assert_eq!(listed.len(), 1, "{stats}");
    assert_eq!(listed[0][0], "video-480p", "{stats}");
    assert!(
        listed[0]
            .iter()
            .all(|r| !r.starts_with("video-") || r == "video-480p"),
        "no other rung in it: {listed:?}"
    );

    // The 360p rung: segment 3 starts where the 480p one does.
    let p360 = variant(&master, 360);
    let seg360 = get_segment(&server, &segment_url(&p360, 3), ALICE).await;
    assert_eq!(seg360.status(), 200);
    let seg360 = seg360.bytes().await.unwrap().to_vec();
    let (Some(a), Some(b)) = (video_pts(&seg480), video_pts(&seg360)) else {
        skip("ffprobe missing");
        return;
    };
    let frame = 1.0 / 25.0;
    assert!(
        (a[0] - b[0]).abs() <= frame + 1e-3,
        "segment 3 starts at {} s in 480p and {} s in 360p",
        a[0],
        b[0]
    );
    assert!(starts_with_idr(&seg480) && starts_with_idr(&seg360));

    // Every 360p segment within its variant's BANDWIDTH.
    let declared = by_height(360).unwrap().bandwidth;
    let media360 = complete_playlist(&server, &p360, ALICE).await;
    let segments = fetch_all(&server, &p360, &media360, ALICE).await;
    let mut peak = 0.0f64;
    let mut bits = 0.0;
    let mut seconds = 0.0;
    for (seg, bytes) in media360.segments.iter().zip(&segments) {
        let d = seg.duration as f64;
        bits += bytes.len() as f64 * 8.0;
        seconds += d;
        if d >= 1.0 {
            peak = peak.max(bytes.len() as f64 * 8.0 / d);
        }
    }
    eprintln!(
        "360p rung: peak segment {:.0} b/s, average {:.0} b/s; declared BANDWIDTH {declared}, AVERAGE-BANDWIDTH {:?}",
        peak,
        bits / seconds,
        by_height(360).unwrap().average_bandwidth
    );
    assert!(
        peak <= declared as f64,
        "a 360p segment carries {peak:.0} b/s, over the declared {declared}"
    );
    // Measured now: the master declares the 360p rung's own average.
    let again = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    let v360 = again
        .variants
        .iter()
        .find(|v| v.resolution.unwrap().1 == 360)
        .unwrap();
    let average = v360.average_bandwidth.unwrap() as f64;
    let video = bits / seconds;
    assert!(
        average >= video * 0.99 && average <= video + 300_000.0,
        "AVERAGE-BANDWIDTH {average} against {video:.0} b/s of video measured: {}",
        again.text
    );
    let decoded = decode_ts(&segments.concat()).expect("the 360p rung decodes");
    assert_eq!(decoded.size, Some((640, 360)));
    assert!(
        decoded.video_frames.abs_diff(48 * 25) <= 2,
        "{} frames of 48 s at 25 fps",
        decoded.video_frames
    );

    // A phone whose profile shows 480 lines: nothing taller is offered.
    let phone = serde_json::json!({
        "name": "phone",
        "video": [{"codec": "h264"}],
        "audio": [{"codec": "aac"}],
        "max_height": 480
    });
    let r = server
        .client
        .post(server.url("/api/v1/hls/start"))
        .bearer_auth(BOB)
        .json(&serde_json::json!({"media_id": tall, "profile": phone}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started: serde_json::Value = r.json().await.unwrap();
    let m = fetch_master(&server, started["master_url"].as_str().unwrap(), BOB).await;
    assert_eq!(heights(&m), [480, 360], "{}", m.text);
}

/// hls.js in Chromium, on a link throttled (Chrome DevTools Protocol)
/// below the rung it plays, switches down a rung and keeps playing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_switches_down_a_rung_on_a_throttled_link() {
    let Some(made) = ladder_media() else { return };
    let Some(chromium) = chromium() else { return };
    let media = media_subset(&[made.join(TALL)]);
    let server = start_server_with(media.path(), |c| c.http.admins = vec!["alice".into()]).await;
    server.wait_library(Duration::from_secs(60)).await;
    // 1.6 Mb/s: under the 720p and 480p variants' BANDWIDTH (~3.8 and
    // ~2.0 Mb/s), over the 360p one's (~1.3 Mb/s).
    let stdout = run_page_script(
        "ladder.mjs",
        &chromium,
        &[
            server.base.clone().into(),
            ALICE.into(),
            TALL.into(),
            "1600000".into(),
        ],
        Duration::from_secs(300),
    )
    .await;
    let result = page_result(&stdout);
    let start = result["start"]["height"].as_u64().unwrap();
    let down = result["down"].as_u64().unwrap();
    assert_eq!(start, 720, "players start on the 720p rung: {result}");
    assert!(down < start, "{result}");
    assert!(
        result["end"]["time"].as_f64().unwrap() > result["switchedAt"].as_f64().unwrap() + 3.9
            || result["end"]["time"].as_f64().unwrap() > 47.0,
        "kept playing: {result}"
    );
    // The lower rung was made by a producer of its own.
    let stats = server.admin_stats(ALICE).await;
    let rung = format!("video-{down}p");
    assert!(
        stats["producers_started"][&rung].as_u64().unwrap_or(0) >= 1,
        "{stats}"
    );
    server.stop().await;
}
