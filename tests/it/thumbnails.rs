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

/// The mean colour (RGB) of the `w`×`h` rectangle at (`x`, `y`) of a JPEG.
fn tile_rgb(jpeg: &[u8], (x, y, w, h): (u32, u32, u32, u32)) -> [u8; 3] {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sheet.jpg");
    std::fs::write(&file, jpeg).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-vf", &format!("crop={w}:{h}:{x}:{y},scale=1:1:flags=area")])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
        .output()
        .unwrap();
    out.stdout[..3].try_into().unwrap()
}

/// The mean colour (RGB) of `film`'s frame at `t` seconds: its mean
/// Y'CbCr as ffmpeg decodes it, turned into R'G'B' here by BT.709's
/// limited-range equations (ITU-R BT.709 §3), as the film is made.
fn frame_rgb(film: &std::path::Path, t: f64) -> [u8; 3] {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-ss", &format!("{t:.3}"), "-i"])
        .arg(film)
        .args(["-frames:v", "1", "-vf", "scale=1:1:flags=area"])
        .args(["-f", "rawvideo", "-pix_fmt", "yuv444p", "pipe:1"])
        .output()
        .unwrap();
    let [y, cb, cr] = [0, 1, 2].map(|i| f64::from(out.stdout[i]));
    let (y, cb, cr) = (
        (y - 16.0) * 255.0 / 219.0,
        (cb - 128.0) * 255.0 / 224.0,
        (cr - 128.0) * 255.0 / 224.0,
    );
    let (kr, kb) = (0.2126, 0.0722);
    let r = y + 2.0 * (1.0 - kr) * cr;
    let b = y + 2.0 * (1.0 - kb) * cb;
    let g = (y - kr * r - kb * b) / (1.0 - kr - kb);
    [r, g, b].map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// The key frames of `film`, seconds.
fn key_frames(film: &std::path::Path) -> Vec<f64> {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
        ])
        .args(["-show_entries", "frame=pts_time", "-of", "csv=p=0"])
        .arg(film)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// A sheet, retried while it is being made (503).
async fn fetch_sheet(server: &TestServer, path: &str, token: &str) -> bytes::Bytes {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let r = server.get(path, token).await;
        match r.status().as_u16() {
            200 => {
                assert_eq!(r.headers()["content-type"], "image/jpeg");
                return r.bytes().await.unwrap();
            }
            503 if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            s => panic!("{path}: {s} {}", r.text().await.unwrap()),
        }
    }
}

/// Thumbnail sheets over a 2-minute 1080p film made by the test whose hue
/// steps every 10 s, with a key frame every 3 s (so the key frame nearest
/// 10 s is at 9 s, still the first hue): each tile shows the film's key
/// frame nearest its time; the WebVTT cues cover the film; the sheet is
/// 3200 px wide with 320×180 tiles; the master lists the image playlist;
/// the sheet is made once across two users and a restart, and
/// `--no-thumbnails` turns it all off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnail_sheets_show_the_key_frame_nearest_each_ten_seconds() {
    let media = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let film = media.path().join("hues.mkv");
    ffmpeg_make(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=0xd02020:s=1920x1080:r=10:d=120,hue=h='36*floor(t/10)',\
         scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-x264-params",
        "keyint=30:min-keyint=30:scenecut=0",
        film.to_str().unwrap(),
    ]);
    let keys = key_frames(&film);
    assert!(keys.len() >= 40, "{keys:?}");
    // A second film, for the disk budget.
    ffmpeg_make(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=10:d=20",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        media.path().join("bars.mkv").to_str().unwrap(),
    ]);
    let with_data = |no_thumbnails: bool, budget: u64| {
        let data = data.path().to_path_buf();
        move |c: &mut hlsd::config::Config| {
            c.http.admins = vec!["alice".into()];
            c.library.data_dir = data;
            c.library.no_thumbnails = no_thumbnails;
            c.library.thumbnail_budget_bytes = budget;
        }
    };
    let server = start_server_with(media.path(), with_data(false, 1 << 30)).await;
    let id = server.media_id("hues.mkv").await;

    // The WebVTT track: 12 cues from 0 to the end, no gap, on one sheet.
    let r = server
        .get(&format!("/api/v1/media/{id}/thumbnails.vtt"), ALICE)
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/vtt"));
    let vtt = r.text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    let cues: Vec<(f64, f64, String)> = vtt
        .split("\n\n")
        .skip(1)
        .map(|cue| {
            let (times, text) = cue.trim().split_once('\n').unwrap();
            let (a, b) = times.split_once(" --> ").unwrap();
            let secs = |t: &str| {
                let p: Vec<f64> = t.split(':').map(|v| v.parse().unwrap()).collect();
                p[0] * 3600.0 + p[1] * 60.0 + p[2]
            };
            (secs(a), secs(b), text.to_string())
        })
        .collect();
    assert_eq!(cues.len(), 12, "{vtt}");
    assert_eq!(cues[0].0, 0.0);
    assert!(cues.windows(2).all(|w| w[0].1 == w[1].0), "no gap: {vtt}");
    assert!((cues[11].1 - 120.0).abs() < 0.2, "{vtt}");

    // The sheet: 3200 px wide, two rows of 320×180 tiles.
    let sheet_path = format!("/api/v1/media/{id}/thumbnails/sheet_00000.jpg");
    let sheet = fetch_sheet(&server, &sheet_path, ALICE).await;
    assert!(sheet.starts_with(&[0xFF, 0xD8]), "a JPEG");
    assert_eq!(probe_size(&sheet), (3200, 360));
    for (i, (start, _, text)) in cues.iter().enumerate() {
        let xywh: Vec<u32> = text
            .strip_prefix("thumbnails/sheet_00000.jpg#xywh=")
            .unwrap_or_else(|| panic!("{text}"))
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(&xywh[2..], &[320, 180]);
        let key = keys
            .iter()
            .copied()
            .min_by(|a, b| (a - start).abs().total_cmp(&(b - start).abs()))
            .unwrap();
        let (got, want) = (
            tile_rgb(&sheet, (xywh[0], xywh[1], 320, 180)),
            frame_rgb(&film, key),
        );
        println!("tile {i} at {start} s: key frame {key} s, {got:?} against {want:?}");
        let off = got
            .iter()
            .zip(want)
            .map(|(a, b)| a.abs_diff(b))
            .max()
            .unwrap();
        assert!(
            off <= 12,
            "tile {i}: {got:?}, the key frame at {key} s is {want:?}"
        );
    }

    // Beside the renditions of a playback URL: the image playlist in the
    // master, its sheets with the playback token.
    let r = server.get(&format!("/api/v1/stream/{id}"), BOB).await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = server.get(&location, BOB).await.text().await.unwrap();
    let images = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-IMAGE-STREAM-INF:"))
        .unwrap_or_else(|| panic!("no image playlist: {master}"));
    assert!(
        images.contains(",RESOLUTION=320x180,CODECS=\"jpeg\",URI=\"thumbs/images.m3u8?token="),
        "{images}"
    );
    let uri = images.split("URI=\"").nth(1).unwrap().trim_end_matches('"');
    let playlist_url = resolve(&location, uri);
    let playlist = server.get(&playlist_url, BOB).await.text().await.unwrap();
    assert!(playlist.contains("#EXT-X-IMAGES-ONLY\n"), "{playlist}");
    assert!(playlist.contains("#EXTINF:120.000,\n#EXT-X-TILES:RESOLUTION=320x180,LAYOUT=10x2,DURATION=10.000\nsheet_00000.jpg?token="), "{playlist}");
    let sheet_uri = playlist.lines().find(|l| l.starts_with("sheet_")).unwrap();
    let by_token = fetch_sheet(&server, &resolve(&playlist_url, sheet_uri), BOB).await;
    assert_eq!(by_token, sheet, "one sheet for every user");
    let vtt_url = playlist_url.replace("images.m3u8", "thumbnails.vtt");
    let token_vtt = server.get(&vtt_url, BOB).await.text().await.unwrap();
    assert!(
        token_vtt.contains("\nsheet_00000.jpg?token="),
        "{token_vtt}"
    );
    let made = crate::common::library::metric(&server, "hlsd_thumbnail_sheets_made_total").await;
    assert_eq!(made, 1.0, "made once for two users");
    let bad = format!("/api/v1/media/{id}/thumbnails/sheet_00001.jpg");
    assert_eq!(server.get(&bad, ALICE).await.status(), 404);
    server.stop().await;

    // After a restart: kept, not made again.
    let server = start_server_with(media.path(), with_data(false, 1 << 30)).await;
    let again = fetch_sheet(&server, &sheet_path, BOB).await;
    assert_eq!(again, sheet);
    let made = crate::common::library::metric(&server, "hlsd_thumbnail_sheets_made_total").await;
    assert_eq!(made, 0.0, "kept across the restart");
    server.stop().await;

    // Past --thumbnail-budget, the sheets made longest ago go: the
    // second film's sheet is made, and the first film's are deleted.
    let server = start_server_with(media.path(), with_data(false, 1)).await;
    let bars = server.media_id("bars.mkv").await;
    let folders = || {
        let mut names: Vec<String> = std::fs::read_dir(data.path().join("thumbnails"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(folders().len(), 1, "{:?}", folders());
    let bars_sheet = format!("/api/v1/media/{bars}/thumbnails/sheet_00000.jpg");
    fetch_sheet(&server, &bars_sheet, ALICE).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while folders().len() > 1 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let left = folders();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(
        left[0].starts_with(&bars.replace('-', "")),
        "{left:?} for {bars}"
    );
    // The deleted ones are made again when asked for.
    assert_eq!(fetch_sheet(&server, &sheet_path, ALICE).await, sheet);
    server.stop().await;

    // --no-thumbnails: none, and none listed.
    let server = start_server_with(media.path(), with_data(true, 1 << 30)).await;
    for path in [
        sheet_path.clone(),
        format!("/api/v1/media/{id}/thumbnails.vtt"),
        format!("/api/v1/media/{id}/thumbnail"),
    ] {
        let r = server.get(&path, ALICE).await;
        assert_eq!(r.status(), 404, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--no-thumbnails"));
    }
    let r = server.get(&format!("/api/v1/stream/{id}"), BOB).await;
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = server.get(&location, BOB).await.text().await.unwrap();
    assert!(!master.contains("IMAGE-STREAM"), "{master}");
    server.stop().await;
}

/// Shaka Player, a second HLS client, finds the image track the master
/// playlist lists (`EXT-X-IMAGE-STREAM-INF`) and gets each thumbnail's
/// sheet and place from the image playlist's `EXT-X-TILES`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shaka_player_lists_the_image_track_and_its_thumbnails() {
    let Some(chromium) = chromium() else { return };
    let media = tempfile::tempdir().unwrap();
    let film = media.path().join("film.mkv");
    ffmpeg_make(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=640x360:r=10:d=150",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-x264-params",
        "keyint=30:min-keyint=30:scenecut=0",
        film.to_str().unwrap(),
    ]);
    let server = start_server(media.path(), std::time::Duration::from_secs(60)).await;
    let id = server.media_id("film.mkv").await;
    let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
    assert_eq!(r.status(), 302);
    let master = r.headers()["location"].to_str().unwrap().to_string();
    let stdout = run_page_script(
        "shaka.mjs",
        &chromium,
        &[
            server.base.clone().into(),
            master.into(),
            "0".into(),
            "35".into(),
            "149".into(),
        ],
        std::time::Duration::from_secs(180),
    )
    .await;
    for line in [
        // One track: Shaka gives its size as a whole sheet's (10 × 2 tiles).
        "image tracks: 3200x360 image/jpeg tiles null\n",
        "thumbnail at 0 s: sheet_00000.jpg?token=… xywh=0,0,320,180 from 0 s",
        "thumbnail at 35 s: sheet_00000.jpg?token=… xywh=960,0,320,180 from 30 s",
        "thumbnail at 149 s: sheet_00000.jpg?token=… xywh=1280,180,320,180 from 140 s",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    server.stop().await;
}
