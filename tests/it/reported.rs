//! The files users reported (`../shared/media/reported/`, see its
//! MANIFEST), and a good film whose name is not UTF-8: each is listed,
//! probed and played through `/api/v1/stream/{id}` in ffmpeg used as an
//! HTTP client, to the length ffmpeg decodes from the file itself. The
//! audiobook whose tracks hold no sample at all (stripped of its media)
//! has nothing to play and says so.

use crate::common::library::probes;
use crate::common::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The reported files that play, and the one that cannot.
const PLAYS: [&str; 4] = [
    "h264_aac_864x480_0.6s.ts",
    "wmv2_wmav2_lego.asf",
    "mpeg4_aac51_bbb_720p.mkv",
    "rpza_qdm2_190x240.mov",
];
const NO_MEDIA: &str = "odd_bogus_duration_chapters.m4b";

/// A film named `caf\xe9 #1.avi`: Latin-1, not UTF-8.
fn latin1_name() -> OsString {
    OsString::from_vec(b"caf\xe9 #1.avi".to_vec())
}

/// Plays item `item` (JSON) of `server` in ffmpeg through `/stream`;
/// returns ffprobe's duration of what it played, or why it did not play.
async fn play(server: &TestServer, item: &serde_json::Value) -> Result<f64, String> {
    let id = item["id"].as_str().unwrap();
    let url = server.url(&format!("/api/v1/stream/{id}?api_key={ALICE}"));
    if item["playback"] != "direct_play" {
        // The session's timeline known (a copy's key frames read).
        let r = server.client.get(&url).send().await.unwrap();
        if r.status() != 302 {
            return Err(format!("/stream answered {}", r.status()));
        }
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let sid = server.session_behind(&location, ALICE).await;
        let view = wait_session(server, &sid, ALICE, |v| v["state"] != "starting").await;
        if view["seekable"] != true {
            wait_complete(server, &sid, ALICE).await;
        }
    }
    let out = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i", &url, "-f", "null", "-"])
        .output()
        .await
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr)
            .lines()
            .take(3)
            .collect());
    }
    decoded_seconds(&url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reported_file_plays_and_one_with_no_media_says_so() {
    let Some(shared) = shared_media() else { return };
    let reported = shared.join("reported");
    let media = tempfile::tempdir().unwrap();
    for name in PLAYS.iter().chain([&NO_MEDIA]) {
        std::os::unix::fs::symlink(reported.join(name), media.path().join(name)).unwrap();
    }
    let good = shared.join("h264_aac_screencast_1024x576.avi");
    std::fs::copy(&good, media.path().join(latin1_name())).unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_path_buf();
    let server = start_server_with(media.path(), |c| {
        c.sessions.max_sessions_per_user = 100;
        c.library.data_dir = data_dir.clone();
    })
    .await;
    let list = server.get_json("/api/v1/media?limit=100", ALICE, 200).await;
    let items = list["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 6, "{list}");
    let mut failures = Vec::new();
    for item in &items {
        let name = item["path"].as_str().unwrap().to_string();
        if name == NO_MEDIA {
            assert_eq!(item["playable"], false, "{item}");
            assert!(
                item["reasons"].to_string().contains("no_media_data"),
                "{name}: {item}"
            );
            let id = item["id"].as_str().unwrap();
            let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
            assert_eq!(r.status(), 422, "{name}");
            continue;
        }
        let file = if name.starts_with("caf") {
            good.clone()
        } else {
            reported.join(&name)
        };
        let source = decoded_seconds(file.to_str().unwrap()).unwrap();
        let played = play(&server, item).await;
        println!(
            "{name:32} {:12} ffmpeg decodes {source:6.3} s of the file, played {played:?}",
            item["playback"].as_str().unwrap_or("unplayable")
        );
        match played {
            Ok(s) if (s - source).abs() <= 0.5 => {}
            other => failures.push(format!("{name}: {other:?} of {source:.3} s ({item})")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The Latin-1 name is shown with U+FFFD for its byte, and survives a
    // restart: the same id, listed and played with no new probe.
    let latin1 = items
        .iter()
        .find(|i| i["path"] == "caf\u{FFFD} #1.avi")
        .expect("the Latin-1 name is listed");
    let id = latin1["id"].as_str().unwrap().to_string();
    server.stop().await;
    let server = start_server_with(media.path(), |c| {
        c.library.data_dir = data_dir.clone();
        c.http.admins = vec!["alice".into()];
    })
    .await;
    let item = server
        .get_json(&format!("/api/v1/media/{id}"), ALICE, 200)
        .await;
    assert_eq!(item["playable"], true, "{item}");
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    assert!(
        r.status() == 200 || r.status() == 302,
        "after a restart: {}",
        r.status()
    );
    assert_eq!(probes(&server).await, 0.0, "a restart probes nothing");
}
