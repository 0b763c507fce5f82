//! Poster frames: `GET /api/v1/media/{id}/thumbnail?t=SECONDS` gives the
//! key frame nearest `t` as a 320-pixel-wide JPEG, kept for the next
//! request, with JSON errors for what has no picture.
//!
//! Over a 30 s film made by the test, red for 10 s, then green, then blue,
//! with a key frame every 5 s: `t=8` is the key frame at 10 s (green), not
//! the one before (red), nor the frame at 8 s (red).

use crate::common::*;

/// The mean colour of a JPEG, as ffmpeg decodes and averages it (RGB).
fn mean_rgb(jpeg: &[u8]) -> [u8; 3] {
    use std::io::Write;
    let mut child = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "image2pipe", "-i", "pipe:0"])
        .args([
            "-vf",
            "scale=1:1:flags=area",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:1",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(jpeg).unwrap();
    let out = child.wait_with_output().unwrap();
    out.stdout[..3].try_into().unwrap()
}

/// Which of red, green and blue `rgb` is.
fn colour(rgb: [u8; 3]) -> &'static str {
    let [r, g, b] = rgb.map(i32::from);
    match () {
        _ if r > 150 && g < 100 && b < 100 => "red",
        _ if g > 100 && r < 100 && b < 100 => "green",
        _ if b > 150 && r < 100 && g < 100 => "blue",
        _ => "other",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poster_frame_is_the_key_frame_nearest_the_time_asked() {
    let media = tempfile::tempdir().unwrap();
    let film = media.path().join("colours.mkv");
    let song = media.path().join("song.m4a");
    let ff = ffmpeg_make;
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=640x360:r=25:d=10",
        "-f",
        "lavfi",
        "-i",
        "color=c=0x00ff00:s=640x360:r=25:d=10",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=640x360:r=25:d=10",
        "-f",
        "lavfi",
        "-i",
        "sine=d=30",
        "-filter_complex",
        "[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p[v]",
        "-map",
        "[v]",
        "-map",
        "3:a",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-x264-params",
        "keyint=125:min-keyint=125:scenecut=0",
        "-c:a",
        "aac",
        film.to_str().unwrap(),
    ]);
    ff(&[
        "-f",
        "lavfi",
        "-i",
        "sine=d=5",
        "-c:a",
        "aac",
        song.to_str().unwrap(),
    ]);
    let server = start_server_with(media.path(), |c| c.http.admins = vec!["alice".into()]).await;
    let id = server.media_id("colours.mkv").await;
    let url = |t: &str| format!("/api/v1/media/{id}/thumbnail{t}");

    // (t asked, the key frame it gives, its colour)
    for (t, key, expect) in [
        ("?t=0", 0.0, "red"),
        ("?t=3", 5.0, "red"),
        ("?t=8", 10.0, "green"),
        ("?t=14", 15.0, "green"),
        ("?t=23.5", 25.0, "blue"),
        ("?t=9999", 25.0, "blue"),
        // No time: a tenth in (3 s), so the key frame at 5 s.
        ("", 5.0, "red"),
    ] {
        let r = server.get(&url(t), ALICE).await;
        let status = r.status();
        assert_eq!(status, 200, "{t}: {}", r.text().await.unwrap());
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        let at: f64 = r.headers()["x-hlsd-picture-time"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let jpeg = r.bytes().await.unwrap();
        assert!(jpeg.starts_with(&[0xFF, 0xD8]), "{t}: not a JPEG");
        let size = probe_size(&jpeg);
        assert_eq!(size, (320, 180), "{t}");
        let rgb = mean_rgb(&jpeg);
        println!("t{t}: key frame at {at} s, {} bytes, {rgb:?}", jpeg.len());
        assert!(
            (at - key).abs() < 0.05,
            "{t}: the key frame at {at} s, not {key} s"
        );
        assert_eq!(colour(rgb), expect, "{t}: {rgb:?}");
    }
    // One picture made per time asked: 7 (no time is a tenth of the
    // film's 30.02 s, not quite t=3).
    let metrics = server.get("/metrics", ALICE).await.text().await.unwrap();
    let made = metrics
        .lines()
        .find_map(|l| l.strip_prefix("hlsd_thumbnails_made_total "))
        .unwrap_or_default()
        .to_string();
    assert_eq!(made, "7", "{metrics}");
    // Kept: the same bytes again, at once.
    let first = server.get(&url("?t=8"), ALICE).await.bytes().await.unwrap();
    let started = std::time::Instant::now();
    let again = server.get(&url("?t=8"), ALICE).await.bytes().await.unwrap();
    assert_eq!(first, again);
    println!("kept picture served in {:?}", started.elapsed());

    // What has no picture says why, in JSON.
    let song_id = server.media_id("song.m4a").await;
    for (path, status) in [
        (url("?t=abc"), 400),
        (url("?t=-1"), 400),
        (format!("/api/v1/media/{song_id}/thumbnail"), 422),
        (
            format!("/api/v1/media/{}/thumbnail", uuid::Uuid::nil()),
            404,
        ),
    ] {
        let r = server.get(&path, ALICE).await;
        assert_eq!(r.status(), status, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    assert_eq!(
        server
            .get(&url("?t=8"), "nobody-token-0123456789")
            .await
            .status(),
        401
    );
    server.stop().await;
}

/// Width and height of a JPEG, as ffprobe reads them.
fn probe_size(jpeg: &[u8]) -> (u32, u32) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.jpg");
    std::fs::write(&file, jpeg).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.trim().split(',').map(|v| v.parse::<u32>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}
