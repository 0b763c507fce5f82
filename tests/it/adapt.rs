//! Every title adapts: where the source video is copied, the master
//! playlist lists the original beside the encoded rungs of its ladder, all
//! cut on the source's key frames, so a player may switch between them at
//! any segment boundary.
//!
//! Over a 60 s 1080p H.264 film at 12 Mb/s whose key frames fall 2.4 to
//! 5.6 s apart, with one 11 s GOP:
//! - the master lists the original first, then 1080p (the source is far
//!   above that rung's 6 Mb/s cap), 720p, 480p and 360p;
//! - every variant's media playlist has the same `EXTINF` list; the 11 s
//!   GOP is one segment, within `EXT-X-TARGETDURATION`;
//! - segment N of every rung starts on an IDR frame within one frame of
//!   the original's segment N;
//! - the original's segments 0-3, then the 480p rung's 4-7, then the
//!   original's 8 to the end, decoded as one stream by ffmpeg, give every
//!   frame of the source once, in order.

use crate::common::ts_check::starts_with_idr;
use crate::common::*;
use std::time::Duration;

const FILM: &str = "h264_irregular_gops_1080p_60s.mkv";
/// A 10 s 1080p H.264 + AAC MP4 at 10 Mb/s, key frames every 2 s.
const MP4: &str = "h264_10mbps_1080p_10s.mp4";
/// The film's frame rate, frames per second.
const FPS: f64 = 25.0;

/// A server over the film whose producers stay close to their players.
async fn server_over_film() -> Option<(TestServer, tempfile::TempDir, std::path::PathBuf)> {
    let made = adapt_media()?;
    let media = media_subset(&[made.join(FILM)]);
    let server = start_server_with(media.path(), |c| {
        c.supervisor.throttle_margin_s = Duration::from_secs(6).into();
    })
    .await;
    server.wait_library(Duration::from_secs(60)).await;
    Some((server, media, made.join(FILM)))
}

/// The variant whose URL names `rendition`.
fn variant<'a>(master: &'a Master, rendition: &str) -> &'a Variant {
    master
        .variants
        .iter()
        .find(|v| v.url.contains(&format!("/{rendition}/")))
        .unwrap_or_else(|| panic!("no {rendition} variant: {}", master.text))
}

/// The segments of the media playlist at `url`: their URLs and lengths.
async fn segments(server: &TestServer, url: &str) -> (Vec<String>, Vec<f32>, String) {
    let playlist = complete_playlist(server, url, ALICE).await;
    let text = server.get(url, ALICE).await.text().await.unwrap();
    (
        playlist
            .segments
            .iter()
            .map(|s| resolve(url, &s.uri))
            .collect(),
        playlist.segments.iter().map(|s| s.duration).collect(),
        text,
    )
}

async fn segment(server: &TestServer, url: &str) -> Vec<u8> {
    let r = get_segment(server, url, ALICE).await;
    assert_eq!(r.status(), 200, "{url}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_and_its_rungs_share_one_cut_list() {
    let Some((server, _media, _)) = server_over_film().await else {
        return;
    };
    let id = server.media_id(FILM).await;
    let s = server.start_hls(&id, ALICE).await;
    assert_eq!(s["mode"], "remux", "{s}");
    let master = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE).await;

    // The original first (where the player starts), then the rungs.
    let listed: Vec<(bool, u64)> = master
        .variants
        .iter()
        .map(|v| (v.url.contains("/video-copy/"), v.resolution.unwrap().1))
        .collect();
    assert_eq!(
        listed,
        [
            (true, 1080),
            (false, 1080),
            (false, 720),
            (false, 480),
            (false, 360)
        ],
        "{}",
        master.text
    );
    let original = variant(&master, "video-copy");
    assert!(
        original.bandwidth > 12_000_000,
        "the original's BANDWIDTH is its peak: {}",
        master.text
    );
    assert!(master.variants[1..]
        .iter()
        .all(|v| v.bandwidth < original.bandwidth));

    // One cut list: the same EXTINF list everywhere, the 11 s GOP one
    // segment within the target duration.
    let (_, copy_durations, copy_text) = segments(&server, &original.url).await;
    assert_eq!(copy_durations.len(), 11, "{copy_text}");
    assert!(
        copy_text.contains("#EXT-X-TARGETDURATION:11\n"),
        "{copy_text}"
    );
    assert!(
        copy_durations.iter().any(|d| (d - 11.0).abs() < 0.01),
        "the 11 s GOP is one segment: {copy_durations:?}"
    );
    let copy_starts = original_declares_what_it_makes(&server, &master).await;
    for (rendition, asked) in [
        ("video-360p-kf", (0..11).collect::<Vec<usize>>()),
        ("video-480p-kf", vec![0, 4, 10]),
        ("video-720p-kf", vec![4]),
        ("video-1080p-kf", vec![4]),
    ] {
        let (urls, durations, text) = segments(&server, &variant(&master, rendition).url).await;
        assert_eq!(durations, copy_durations, "{rendition}: {text}");
        assert!(text.contains("#EXT-X-TARGETDURATION:11\n"), "{text}");
        for n in asked {
            let bytes = segment(&server, &urls[n]).await;
            assert!(starts_with_idr(&bytes), "{rendition} segment {n}");
            let start = first_video_s(&bytes);
            assert!(
                (start - copy_starts[n]).abs() < 1.0 / FPS + 0.001,
                "{rendition} segment {n} starts at {start} s, the original's at {} s",
                copy_starts[n]
            );
        }
    }
    server.stop().await;
}

/// Fetches every segment of the original and of the first audio
/// rendition; checks that the original's `BANDWIDTH`, known before any
/// segment was made, holds for every segment (video and audio together)
/// and is not far above the peak, and that its `AVERAGE-BANDWIDTH` is the
/// mean within 10 %. Returns where each video segment starts, seconds.
async fn original_declares_what_it_makes(server: &TestServer, master: &Master) -> Vec<f64> {
    let original = variant(master, "video-copy");
    let (copy_urls, copy_durations, _) = segments(server, &original.url).await;
    let (audio_urls, _, _) = segments(server, &master.audio[0]).await;
    let mut copy_starts = Vec::new();
    let (mut peak, mut total) = (0u64, 0u64);
    for (n, url) in copy_urls.iter().enumerate() {
        let bytes = segment(server, url).await;
        assert!(starts_with_idr(&bytes), "{url}");
        copy_starts.push(first_video_s(&bytes));
        let both = bytes.len() + segment(server, &audio_urls[n]).await.len();
        peak = peak.max(bps(both, copy_durations[n]));
        total += both as u64;
    }
    let mean =
        (total as f64 * 8.0 / copy_durations.iter().map(|d| f64::from(*d)).sum::<f64>()) as u64;
    let average = original.average_bandwidth.unwrap();
    println!(
        "original: BANDWIDTH {} AVERAGE-BANDWIDTH {average}; made: peak {peak}, mean {mean}",
        original.bandwidth
    );
    assert!(
        peak <= original.bandwidth,
        "a segment of {peak} b/s: {}",
        master.text
    );
    assert!(
        original.bandwidth < peak * 13 / 10,
        "BANDWIDTH {} is far above the peak {peak}",
        original.bandwidth
    );
    assert!(
        average.abs_diff(mean) * 10 <= mean,
        "AVERAGE-BANDWIDTH {average}, mean {mean}"
    );
    copy_starts
}

/// MP4 and AVI originals declare their bit rates from their own indexes
/// (the MP4 sample tables' chunk offsets, the AVI index's chunk
/// positions), as a Matroska film does from its Cues, and a file without
/// an index from where its key frames were read in the demux pass (the
/// same MP4 in a Matroska file without Cues), and an MP4 whose audio lies
/// after its video from each track's sample sizes by time. The MP4's second half
/// carries several times the bits of its first: the file's mean bit rate
/// plus a margin, what it declared before, is below the peak of its
/// segments. The AVI is a real screen recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mp4_and_avi_originals_declare_their_bit_rates_from_their_indexes() {
    const UNEVEN: &str = "h264_uneven_1080p_20s.mp4";
    const NO_CUES: &str = "h264_uneven_1080p_20s_nocues.mkv";
    const APART: &str = "h264_uneven_1080p_20s_apart.mp4";
    const AVI: &str = "h264_aac_screencast_1024x576.avi";
    let (Some(made), Some(shared)) = (adapt_media(), shared_media()) else {
        return;
    };
    let media = media_subset(&[
        made.join(UNEVEN),
        made.join(NO_CUES),
        made.join(APART),
        shared.join(AVI),
    ]);
    let server = start_server_with(media.path(), |_| {}).await;
    server.wait_library(Duration::from_secs(60)).await;
    for file in [UNEVEN, NO_CUES, APART, AVI] {
        let id = server.media_id(file).await;
        let r = server
            .get(&format!("/api/v1/stream/{id}?mode=hls"), ALICE)
            .await;
        assert_eq!(r.status(), 302, "{file}");
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let master = fetch_master(&server, &location, ALICE).await;
        assert!(
            master.variants[0].url.contains("/video-copy/"),
            "{file}: {}",
            master.text
        );
        println!("{file}");
        original_declares_what_it_makes(&server, &master).await;
    }
    server.stop().await;
}

/// The presentation time of every video frame of `file`, seconds, as
/// ffprobe lists them: the frames it decodes (`frame`, in the order they
/// are shown), or the packets it reads (`packet`, no decoding; sorted).
fn video_times(file: &std::path::Path, entries: &str) -> Vec<f64> {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg(format!("{entries}=pts_time"))
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    if entries == "packet" {
        times.sort_by(f64::total_cmp);
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_between_the_original_and_a_rung_plays_every_frame_once() {
    let Some((server, _media, source)) = server_over_film().await else {
        return;
    };
    let id = server.media_id(FILM).await;
    let s = server.start_hls(&id, ALICE).await;
    let master = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    let (copy, _, _) = segments(&server, &variant(&master, "video-copy").url).await;
    let (rung, _, _) = segments(&server, &variant(&master, "video-480p-kf").url).await;
    let mut stream = Vec::new();
    for n in 0..copy.len() {
        let url = if (4..=7).contains(&n) {
            &rung[n]
        } else {
            &copy[n]
        };
        stream.extend(segment(&server, url).await);
    }
    server.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let played = dir.path().join("switched.ts");
    std::fs::write(&played, &stream).unwrap();

    // The source's frames from its packets (decoding its 1,500 1080p
    // frames took ffprobe 16 s of CPU); the played stream's decoded.
    let want = video_times(&source, "packet");
    let got = video_times(&played, "frame");
    assert!(want.len() >= 1499, "the source has {} frames", want.len());
    assert!(
        got.len().abs_diff(want.len()) <= 1,
        "{} frames played of the source's {}",
        got.len(),
        want.len()
    );
    assert!(
        got.windows(2).all(|w| w[1] > w[0]),
        "a frame's time goes back: {:?}",
        got.windows(2).find(|w| w[1] <= w[0])
    );
    let span = |t: &[f64]| t[t.len() - 1] - t[0] + 1.0 / FPS;
    assert!(
        (span(&got) - span(&want)).abs() <= 1.0 / FPS + 0.001,
        "played {} s of the source's {} s",
        span(&got),
        span(&want)
    );
}

/// The bit rate of `bytes` over `seconds`, in bits per second.
fn bps(bytes: usize, seconds: f32) -> u64 {
    (bytes as f64 * 8.0 / f64::from(seconds)) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bitrate_limit_keeps_every_variant_and_segment_within_it() {
    let Some(made) = adapt_media() else { return };
    let Some(shared) = shared_media() else { return };
    const SURROUND: &str = "derived_h264_aac51_bbb_720p.mkv";
    let media = media_subset(&[made.join(FILM), made.join(MP4), shared.join(SURROUND)]);
    let server = start_server_with(media.path(), |c| {
        c.supervisor.throttle_margin_s = Duration::from_secs(6).into();
        c.http.user_max_bitrate = vec!["bob:4000000".parse().unwrap()];
    })
    .await;
    server.wait_library(Duration::from_secs(60)).await;

    // 2 Mb/s on the 12 Mb/s film: no original, every variant within it.
    let film = server.media_id(FILM).await;
    let r = server
        .get(&format!("/api/v1/stream/{film}?max_bitrate=2000000"), ALICE)
        .await;
    assert_eq!(r.status(), 302);
    let master = fetch_master(&server, r.headers()["location"].to_str().unwrap(), ALICE).await;
    assert!(!master.text.contains("/video-copy/"), "{}", master.text);
    assert!(!master.variants.is_empty());
    assert!(
        master.variants.iter().all(|v| v.bandwidth <= 2_000_000),
        "{}",
        master.text
    );
    let item = server
        .get_json(
            &format!("/api/v1/media/{film}?max_bitrate=2000000"),
            ALICE,
            200,
        )
        .await;
    assert_eq!(item["playback"], "transcode", "{item}");
    let reasons = item["reasons"].to_string();
    assert!(
        reasons.contains("bitrate_exceeds_limit:14.7Mbps>2Mbps"),
        "{reasons}"
    );

    // Unlimited, on that film: the original, and only rungs that declare
    // less (on its short cut list a rung's VBV bound can reach more).
    let surround = server.media_id(SURROUND).await;
    let s = server.start_hls(&surround, ALICE).await;
    let master = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    println!("{}", master.text);
    let original = variant(&master, "video-copy").bandwidth;
    assert!(
        master.variants[1..].iter().all(|v| v.bandwidth < original),
        "{}",
        master.text
    );

    // 300 kb/s on a 1.6 Mb/s 720p film with 5.1 AAC: one variant, its
    // lowest rung with a lowered cap and the audio as stereo AAC, whose
    // segments stay under the limit.
    let r = server
        .client
        .post(server.url("/api/v1/hls/start?max_bitrate=300000"))
        .bearer_auth(ALICE)
        .json(&serde_json::json!({ "media_id": surround }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let s: serde_json::Value = r.json().await.unwrap();
    let master = fetch_master(&server, s["master_url"].as_str().unwrap(), ALICE).await;
    assert_eq!(master.variants.len(), 1, "{}", master.text);
    println!("{}", master.text);
    assert!(master.variants[0].bandwidth <= 300_000, "{}", master.text);
    assert_eq!(master.audio.len(), 1, "{}", master.text);
    assert!(master.audio[0].contains("/audio-0-aac/"), "{}", master.text);
    let (video, durations, _) = segments(&server, &master.variants[0].url).await;
    let (audio, _, _) = segments(&server, &master.audio[0]).await;
    for n in 0..video.len().min(4) {
        let v = segment(&server, &video[n]).await;
        let a = segment(&server, &audio[n]).await;
        let total = bps(v.len() + a.len(), durations[n]);
        let (vb, ab) = (bps(v.len(), durations[n]), bps(a.len(), durations[n]));
        println!("300 kb/s, segment {n}: video {vb} b/s, audio {ab} b/s");
        assert!(
            total <= 300_000,
            "segment {n} ({} s): {total} b/s, video {vb}, audio {ab}",
            durations[n]
        );
    }

    // Bob's 4 Mb/s: no direct play of the 10 Mb/s MP4 Alice plays as it is.
    let mp4 = server.media_id(MP4).await;
    let path = format!("/api/v1/stream/{mp4}");
    let alice = server.get(&path, ALICE).await;
    assert_eq!(alice.status(), 200);
    let size = std::fs::metadata(made.join(MP4)).unwrap().len();
    assert_eq!(alice.bytes().await.unwrap().len() as u64, size);
    let bob = server.get(&path, BOB).await;
    assert_eq!(bob.status(), 302);
    let master = fetch_master(&server, bob.headers()["location"].to_str().unwrap(), BOB).await;
    assert!(
        master.variants.iter().all(|v| v.bandwidth <= 4_000_000),
        "{}",
        master.text
    );
    let richest = master.variants.iter().map(|v| v.bandwidth).max();
    assert_eq!(
        Some(master.variants[0].bandwidth),
        richest,
        "under a limit the richest variant that fits comes first: {}",
        master.text
    );
    let item = server
        .get_json(&format!("/api/v1/media/{mp4}"), BOB, 200)
        .await;
    assert!(item["reasons"].to_string().contains(">4Mbps"), "{item}");

    // Bad limits: 400 with a JSON error, on every route that takes one.
    for bad in ["abc", "-5", "1000", "1e9", ""] {
        for path in [
            format!("/api/v1/stream/{film}?max_bitrate={bad}"),
            format!("/api/v1/media/{film}?max_bitrate={bad}"),
        ] {
            let r = server.get(&path, ALICE).await;
            assert_eq!(r.status(), 400, "{path}");
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "bad_request", "{body}");
        }
        let r = server
            .client
            .post(server.url(&format!("/api/v1/hls/preload/{film}?max_bitrate={bad}")))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "preload max_bitrate={bad}");
    }
    let r = server
        .client
        .post(server.url("/api/v1/hls/start"))
        .bearer_auth(ALICE)
        .json(&serde_json::json!({ "media_id": film, "max_bitrate": "fast" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    server.stop().await;
}

/// hls.js in Chromium, the page's quality on Auto, plays the original of
/// the 12 Mb/s film; throttled to 3 Mb/s (Chrome DevTools Protocol) it
/// switches down to an encoded rung and keeps playing; unthrottled, the
/// original picked on the page plays on from the rung (hls.js's own
/// estimate does not climb back to the original's 15 Mb/s within a 60 s
/// film). Only the variants it asked fragments of ever started a producer.
/// A rung picked by hand is remembered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_leaves_the_original_on_a_slow_link_and_comes_back() {
    let Some(made) = adapt_media() else { return };
    let Some(chromium) = chromium() else { return };
    let media = media_subset(&[made.join(FILM)]);
    let server = start_server_with(media.path(), |c| c.http.admins = vec!["alice".into()]).await;
    server.wait_library(Duration::from_secs(60)).await;
    let stdout = run_page_script(
        "adapt.mjs",
        &chromium,
        &[
            server.base.clone().into(),
            ALICE.into(),
            FILM.into(),
            "3000000".into(),
        ],
        Duration::from_secs(420),
    )
    .await;
    let result = page_result(&stdout);
    assert_eq!(result["start"]["original"], true, "{result}");
    assert_eq!(
        result["start"]["labels"],
        serde_json::json!(["360p", "480p", "720p", "1080p", "Original (1920×1080)"]),
        "{result}"
    );
    assert!(result["down"].as_u64().unwrap() < 1080, "{result}");
    assert!(
        result["played"]["auto"]
            .as_str()
            .unwrap()
            .starts_with("Auto (Original"),
        "the picker shows what plays: {result}"
    );
    assert_eq!(result["remembered"], "480", "{result}");
    assert_eq!(result["again"]["height"], 480, "{result}");
    assert_eq!(result["again"]["auto"], false, "{result}");
    assert_eq!(result["again"]["shown"], "480p", "{result}");

    // Producers only for what the player asked fragments of.
    let loaded: Vec<String> = result["played"]["loaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let stats = server.admin_stats(ALICE).await;
    let started = stats["producers_started"].as_object().unwrap();
    for (rendition, n) in started {
        if rendition.starts_with("video-") && n.as_u64().unwrap_or(0) > 0 {
            assert!(
                loaded.contains(rendition) || rendition == "video-480p-kf",
                "{rendition} was made, but the player asked only {loaded:?}: {stats}"
            );
        }
    }
    assert!(started.contains_key("video-copy"), "{stats}");
    server.stop().await;
}
