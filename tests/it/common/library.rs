//! Helpers for the library tests (`tests/library.rs`, `tests/watching.rs`):
//! metrics, pages, waiting for the library, playing an item.

use super::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// A remux file (H.264 + AAC 5.1 in Matroska, 5.3 s).
pub const REMUX: &str = "derived_h264_aac51_bbb_720p.mkv";
/// A direct-play file (H.264 + AAC in MP4, 5.3 s).
pub const DIRECT: &str = "h264_aac51_bbb_720p_5s.mp4";

/// The value of the first `/metrics` sample whose line starts with
/// `sample` (name and labels), as admin alice.
pub async fn metric(server: &TestServer, sample: &str) -> f64 {
    let text = server
        .get("/metrics", ALICE)
        .await
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find(|l| l.starts_with(sample))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics"))
}

/// Files probed since start-up, whatever the outcome.
pub async fn probes(server: &TestServer) -> f64 {
    let mut n = 0.0;
    for outcome in ["probed", "refused", "crashed", "timed_out"] {
        n += metric(
            server,
            &format!("hlsd_library_probes_total{{outcome=\"{outcome}\"}}"),
        )
        .await;
    }
    n
}

/// Every item, page by page (`limit` each).
pub async fn all_items(server: &TestServer, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let page = server
            .get_json(
                &format!("/api/v1/media?offset={}&limit={limit}", out.len()),
                ALICE,
                200,
            )
            .await;
        let items = page["items"].as_array().expect("items").clone();
        assert!(items.len() <= limit);
        if items.is_empty() {
            assert_eq!(page["total"].as_u64(), Some(out.len() as u64));
            return out;
        }
        out.extend(items);
    }
}

/// The listed item at `path`, if any.
pub async fn listed(server: &TestServer, path: &str) -> Option<Value> {
    let q: String = form_urlencode(path);
    let page = server
        .get_json(&format!("/api/v1/media?path={q}&limit=10"), ALICE, 200)
        .await;
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|m| m["path"] == path)
        .cloned()
}

pub fn form_urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `check` every 100 ms until it gives `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return (v, started.elapsed());
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (10 s at most) until `path` is listed and probed; the item and
/// how long it took.
pub async fn listed_and_probed(server: &TestServer, path: &str) -> (Value, Duration) {
    eventually(
        Duration::from_secs(10),
        "a new file is listed and probed",
        || async { listed(server, path).await.filter(|m| m["probed"] == true) },
    )
    .await
}

/// Waits (10 s at most) until `path` is no longer listed.
pub async fn leaves_the_list(server: &TestServer, path: &str) {
    eventually(
        Duration::from_secs(10),
        "a deleted file leaves the list",
        || async { listed(server, path).await.is_none().then_some(()) },
    )
    .await;
}

/// Plays the first segment of item `id`: stream → master → segment 0,
/// decoded. For direct play, the first bytes of the file.
pub async fn plays(server: &TestServer, id: &str) {
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    match r.status().as_u16() {
        200 => assert!(!r.bytes().await.expect("body").is_empty()),
        302 => {
            let master_url = r.headers()["location"].to_str().unwrap().to_string();
            let master = fetch_master(server, &master_url, ALICE).await;
            let seg = get_segment(server, &segment_url(&master.variant, 0), ALICE).await;
            assert_eq!(seg.status(), 200);
            let decoded = decode_ts(&seg.bytes().await.unwrap()).expect("segment decodes");
            assert!(decoded.video_frames > 0, "{decoded:?}");
        }
        other => panic!(
            "stream {id}: {other} {}",
            r.text().await.unwrap_or_default()
        ),
    }
}

pub fn admin(c: &mut hlsd::config::Config) {
    c.http.admins = vec!["alice".into()];
}

/// Admin alice, user carol, no watching, polling every `interval`.
pub fn polling(interval: Duration) -> impl FnOnce(&mut hlsd::config::Config) {
    move |c| {
        admin(c);
        c.http.users.push(hlsd::config::UserToken {
            user: "carol".into(),
            token: "carol-token-0123456789".into(),
        });
        c.library.no_watch = true;
        c.library.rescan_interval = interval.into();
    }
}
