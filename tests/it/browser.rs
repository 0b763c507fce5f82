//! hlsd's own web page in a real browser: Debian's chromium, headless,
//! driven by playwright-core (web/tests/browser.mjs). Direct play (an MP4,
//! and a FLAC file, which Chromium plays as it is), remux, transcode and
//! an AV1 Matroska file (which the page's own profile gets as fMP4 HLS
//! with its streams copied) each play past 3 s with no error; the
//! transcode and the fMP4 remux seek to 80 % and resume there; screenshots
//! of the library and of a playing video are saved to web/test-results/
//! and must not be blank.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DIRECT: &str = "h264_aac_screencast_720p_8s.mp4";
const REMUX: &str = "h264_aac_screencast_1024x576.avi";
/// Not the VP8 WebM any more: Chromium plays that as it is.
const TRANSCODE: &str = "mpeg2_city_720x405.mpg";
const FMP4: &str = "av1_bbb_640x360_2srt.mkv";
/// Audio only, FLAC: played as it is, as a browser plays a music file.
const FLAC: &str = "flac_music_stereo_139s.flac";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Distinct colours in a PNG (a blank page has one or two).
fn distinct_colours(path: &Path) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let mut colours: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    colours.sort_unstable();
    colours.dedup();
    colours.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_plays_direct_remux_and_transcode_and_seeks_in_chromium() {
    let Some(shared) = shared_media() else { return };
    let Some(chromium) = chromium() else { return };
    let media = media_subset(&[
        shared.join(DIRECT),
        shared.join(REMUX),
        shared.join(TRANSCODE),
        shared.join(FMP4),
        shared.join(FLAC),
    ]);
    // The page built into the binary (no --web-dir).
    let server = start_server_with(media.path(), |_| {}).await;
    // The page itself needs no token; the API does.
    let r = server.client.get(server.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("/static/vendor/hls.min.js"));
    let r = server
        .client
        .get(server.url("/static/vendor/hls.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A position stored for the transcode: the page offers to resume.
    let transcode = server.media_id(TRANSCODE).await;
    let r = server
        .client
        .put(server.url(&format!("/api/v1/progress/{transcode}")))
        .bearer_auth(ALICE)
        .json(&serde_json::json!({"position_s": 4.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let out = repo().join("web/test-results");
    std::fs::create_dir_all(&out).unwrap();
    for f in ["library.png", "playing.png", "scrubbing.png"] {
        let _ = std::fs::remove_file(out.join(f));
    }
    let stdout = run_page_script(
        "browser.mjs",
        &chromium,
        &[
            server.base.clone().into(),
            ALICE.into(),
            out.clone().into(),
            format!("{DIRECT},{FLAC}").into(),
            REMUX.into(),
            TRANSCODE.into(),
            FMP4.into(),
        ],
        Duration::from_secs(300),
    )
    .await;
    for line in [
        // Each video item has a poster frame: 4 of the 5 (not the FLAC).
        "library listed, 4 poster frames",
        "past 3 s",
        "resumed after",
        "remux (fMP4)",
        "offers \"Resume from",
        "resumed at",
        "thumbnail above the seek bar: thumbnails/sheet_00000.jpg",
        "seek bar click went to",
    ] {
        assert!(stdout.contains(line), "{stdout}");
    }
    // The page saved where the direct play stood when it left it.
    let direct = server.media_id(DIRECT).await;
    let saved = server
        .get_json(&format!("/api/v1/progress/{direct}"), ALICE, 200)
        .await;
    assert!(saved["position_s"].as_f64().unwrap() > 3.0, "{saved}");
    // The AV1 was copied: its session is a remux, and nothing transcoded it.
    let sessions = server.get_json("/api/v1/sessions", ALICE, 200).await;
    let av1 = server.media_id(FMP4).await;
    let modes: Vec<&str> = sessions
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["media_id"] == av1.as_str())
        .map(|s| s["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["remux"], "{sessions:#}");
    assert!(
        stdout.contains(&format!("direct_play {FLAC}: past 3 s")),
        "{stdout}"
    );
    // The FLAC file went out as it is: no session was opened for it.
    let flac = server.media_id(FLAC).await;
    assert!(
        !sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["media_id"] == flac.as_str()),
        "{sessions:#}"
    );
    for f in ["library.png", "playing.png", "scrubbing.png"] {
        let colours = distinct_colours(&out.join(f));
        println!("{f}: {colours} colours");
        assert!(colours > 20, "{f} looks blank ({colours} colours)");
    }
    server.stop().await;
}
