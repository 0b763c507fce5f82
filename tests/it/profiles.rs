//! Client profiles: the decision follows what the client plays, and what
//! MPEG-TS cannot carry goes out as fragmented-MP4 HLS, copied.
//!
//! - The same WebM is direct play for `chromium` and a transcode for
//!   `generic`; an HEVC MP4 is direct play for `safari`; reasons name what
//!   the profile lacks; custom JSON profiles work by query and header, bad
//!   ones get a 400.
//! - An HEVC MKV asked for by `safari` is remuxed (no decoding) into fMP4:
//!   every init segment and segment passes the CMAF checker, segment `n`
//!   starts where the playlist places it, and ffmpeg decodes each
//!   rendition to the source's duration.
//! - `chromium` gets VP9 + Opus and H.264 + FLAC copied into fMP4; a second
//!   client whose profile leads to the same renditions is served the same
//!   bytes without a second producer.

use crate::common::fmp4_check::check_rendition;
use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

const VP8_WEBM: &str = "vp8_vorbis_rocket_launch_640x360.webm";
const HEVC_MP4: &str = "derived_hevc_main10_hvc1_phone_rot90.mp4";

async fn decision(server: &TestServer, id: &str, profile: &str) -> Value {
    let q: String = form_urlencoded::byte_serialize(profile.as_bytes()).collect();
    server
        .get_json(&format!("/api/v1/media/{id}?profile={q}"), ALICE, 200)
        .await
}

fn reasons(d: &Value) -> Vec<String> {
    d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decision_follows_the_clients_profile() {
    let Some(shared) = shared_media() else { return };
    let Some(made) = profile_media() else { return };
    let media = media_subset(&[
        shared.join(VP8_WEBM),
        shared.join(HEVC_MP4),
        made.join("vp9_opus.webm"),
        made.join("hevc_aac.mkv"),
    ]);
    let server = start_server(media.path(), std::time::Duration::from_secs(60)).await;
    server
        .wait_library(std::time::Duration::from_secs(60))
        .await;

    for (file, video, audio) in [
        (VP8_WEBM, "vp8", "vorbis"),
        ("vp9_opus.webm", "vp9", "opus"),
    ] {
        let id = server.media_id(file).await;
        let d = decision(&server, &id, "chromium").await;
        assert_eq!(d["playback"], "direct_play", "{file} for chromium: {d}");
        assert_eq!(d["profile"], "chromium");
        let d = decision(&server, &id, "generic").await;
        assert_eq!(d["playback"], "transcode", "{file} for generic: {d}");
        let r = reasons(&d);
        assert!(
            r.contains(&format!("video_codec_unsupported:{video}")),
            "{r:?}"
        );
        assert!(
            r.contains(&format!("audio_codec_unsupported:{audio}")),
            "{r:?}"
        );
        // Without a profile: generic, as before profiles.
        let plain = server
            .get_json(&format!("/api/v1/media/{id}"), ALICE, 200)
            .await;
        assert_eq!(plain["playback"], "transcode");
        // The stream itself: the file's bytes for chromium, HLS for generic.
        let r = server
            .get(&format!("/api/v1/stream/{id}?profile=chromium"), ALICE)
            .await;
        assert_eq!(r.status(), 200, "{file}");
        let size = std::fs::metadata(media.path().join(file)).unwrap().len();
        assert_eq!(r.bytes().await.unwrap().len() as u64, size);
        let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
        assert_eq!(r.status(), 302, "{file}");
    }

    let hevc = server.media_id(HEVC_MP4).await;
    let d = decision(&server, &hevc, "safari").await;
    assert_eq!(d["playback"], "direct_play", "{d}");
    assert_eq!(
        reasons(&d),
        [
            "direct_play_container:mp4",
            "video_copy:hevc",
            "audio_copy:aac"
        ]
    );
    let d = decision(&server, &hevc, "chromium").await;
    assert_eq!(d["playback"], "transcode");
    assert!(reasons(&d).contains(&"video_codec_unsupported:hevc".to_string()));

    // A client's own profile, by header: HEVC Main only, so Main 10 is
    // transcoded, and the reasons say why.
    let tv = r#"{"name":"tv","containers":["mp4"],"video":[{"codec":"hevc","profiles":["main"]}],"audio":[{"codec":"aac","max_channels":2}],"fmp4":true}"#;
    let r = server
        .client
        .get(server.url(&format!("/api/v1/media/{hevc}")))
        .bearer_auth(ALICE)
        .header("X-Hlsd-Profile", tv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(
        (d["profile"].as_str(), d["playback"].as_str()),
        (Some("tv"), Some("transcode"))
    );
    let r = reasons(&d);
    assert!(r.contains(&"bit_depth:10".to_string()), "{r:?}");
    assert!(
        r.contains(&"hevc_profile_unsupported:main-10".to_string()),
        "{r:?}"
    );

    // Bad profiles are refused with a JSON error, never guessed.
    for bad in [
        "netscape",
        "{\"video\":[{\"codec\":\"h264\",\"depth\":10}]}",
        "{",
    ] {
        let q: String = form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        for path in [
            format!("/api/v1/media/{hevc}?profile={q}"),
            format!("/api/v1/stream/{hevc}?profile={q}"),
        ] {
            let r = server.get(&path, ALICE).await;
            assert_eq!(r.status(), 400, "{path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "bad_request", "{body}");
            assert!(body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("profile"));
        }
    }

    // POST /api/v1/hls/start takes the profile as a field, by name.
    let mkv = server.media_id("hevc_aac.mkv").await;
    let r = server
        .client
        .post(server.url("/api/v1/hls/start"))
        .bearer_auth(ALICE)
        .json(&serde_json::json!({"media_id": mkv, "profile": "safari"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["mode"], "remux", "{body}");
    server.stop().await;
}

/// One rendition of a master playlist, fetched whole.
struct Rendition {
    init: Vec<u8>,
    segments: Vec<Vec<u8>>,
    /// Each segment's `#EXTINF`, seconds.
    durations: Vec<f64>,
}

/// Fetches a fragmented-MP4 rendition: its media playlist (until it
/// ends), its `EXT-X-MAP` init segment and every segment.
async fn fetch_fmp4(server: &TestServer, url: &str) -> Rendition {
    let playlist = complete_playlist(server, url, ALICE).await;
    let text = server.get(url, ALICE).await.text().await.unwrap();
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"), "{text}");
    let map = playlist.segments[0]
        .map
        .as_ref()
        .unwrap_or_else(|| panic!("no EXT-X-MAP: {text}"));
    let r = get_segment(server, &resolve(url, &map.uri), ALICE).await;
    assert_eq!(r.status(), 200, "init segment");
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let init = r.bytes().await.unwrap().to_vec();
    let mut segments = Vec::new();
    for seg in &playlist.segments {
        assert!(seg.uri.contains(".m4s?token="), "{}", seg.uri);
        let r = get_segment(server, &resolve(url, &seg.uri), ALICE).await;
        assert_eq!(r.status(), 200, "{}", seg.uri);
        assert_eq!(r.headers()["content-type"], "video/mp4");
        segments.push(r.bytes().await.unwrap().to_vec());
    }
    // An MPEG-TS name is not one of this rendition's segments.
    let ts = resolve(url, &playlist.segments[0].uri).replace(".m4s", ".ts");
    assert_eq!(server.get(&ts, ALICE).await.status(), 404);
    Rendition {
        init,
        segments,
        durations: playlist
            .segments
            .iter()
            .map(|s| s.duration as f64)
            .collect(),
    }
}

/// ffmpeg's decoded seconds of a rendition written out as one file (its
/// init segment, then every segment: what a player appends).
fn decoded(r: &Rendition, dir: &Path, name: &str) -> f64 {
    let path = dir.join(format!("{name}.mp4"));
    let mut bytes = r.init.clone();
    for s in &r.segments {
        bytes.extend_from_slice(s);
    }
    std::fs::write(&path, bytes).unwrap();
    decoded_seconds(path.to_str().unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Plays `file` with `profile` through `/api/v1/stream`, checks every
/// rendition, video then each audio track (CMAF conformance, sample entry
/// `formats[i]`, segment starts
/// within one frame of the playlist's places, ffmpeg's decoded duration
/// within 0.5 s of the source's), and returns the master playlist.
async fn play_fmp4(
    server: &TestServer,
    media: &Path,
    file: &str,
    profile: &str,
    formats: &[&str],
    frame_s: f64,
) -> String {
    let id = server.media_id(file).await;
    let r = server
        .get(&format!("/api/v1/stream/{id}?profile={profile}"), ALICE)
        .await;
    assert_eq!(r.status(), 302, "{file}");
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = fetch_master(server, &location, ALICE).await;
    assert!(master.text.contains("#EXT-X-VERSION:7"), "{}", master.text);
    let source = decoded_seconds(media.join(file).to_str().unwrap()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let urls: Vec<String> = std::iter::once(master.variant.clone())
        .chain(master.audio.clone())
        .collect();
    assert_eq!(urls.len(), formats.len(), "{}", master.text);
    for (url, format) in urls.iter().zip(formats) {
        let r = fetch_fmp4(server, url).await;
        let video = matches!(*format, "hvc1" | "avc1" | "av01" | "vp09");
        let report = check_rendition(&r.init, &r.segments, video);
        assert!(
            report.violations.is_empty(),
            "{file} {format}: {:#?}",
            report.violations
        );
        assert_eq!(report.init.format, *format, "{file}");
        // Segment n's first sample (its key frame) is shown where the
        // playlist places it (3600 s on). Leading pictures of an open GOP
        // (x265's default) that follow it may be shown a little earlier.
        let timescale = f64::from(report.init.timescale);
        // Audio is cut on its own frames: within one of them (FLAC's last
        // 96 ms).
        let longest = report
            .fragments
            .iter()
            .flat_map(|f| f.durations.iter())
            .max()
            .map_or(0.0, |d| f64::from(*d) / timescale);
        let slack = if video { frame_s } else { frame_s.max(longest) };
        let mut place = 0.0;
        for (n, (f, d)) in report.fragments.iter().zip(&r.durations).enumerate() {
            let shown = f.decode_time as i64 + f.first_composition_offset;
            let start = shown as f64 / timescale - 3600.0;
            assert!(
                (start - place).abs() <= slack + 1e-3,
                "{file} {format} segment {n} starts at {start:.3} s, listed at {place:.3} s"
            );
            place += d;
        }
        let seconds = decoded(&r, out.path(), format);
        println!(
            "{file} for {profile}: {format} {} segments, decoded {seconds:.3} s of {source:.3} s",
            r.segments.len()
        );
        assert!(
            (seconds - source).abs() <= 0.5,
            "{file} {format}: decoded {seconds:.3} s of {source:.3} s"
        );
    }
    master.text
}

/// The `mode` of the caller's session of `media_id`.
async fn session_mode(server: &TestServer, media_id: &str) -> String {
    let list = server.get_json("/api/v1/sessions", ALICE, 200).await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["media_id"] == media_id)
        .map(|s| s["mode"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn subset(made: &Path, files: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = media_subset(&files.iter().map(|f| made.join(f)).collect::<Vec<_>>());
    let path = dir.path().to_path_buf();
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hevc_mkv_is_remuxed_into_fmp4_for_safari() {
    let Some(made) = profile_media() else { return };
    let files = ["hevc_aac.mkv", "hevc_main10_rot90.mkv", "hevc_ac3_eac3.mkv"];
    let (_dir, media) = subset(&made, &files);
    let server = start_server_with(&media, |c| c.http.admins = vec!["alice".into()]).await;
    server
        .wait_library(std::time::Duration::from_secs(60))
        .await;
    for (file, formats) in [
        (files[0], &["hvc1", "mp4a"][..]),
        (files[1], &["hvc1", "mp4a"]),
        // Safari plays AC-3 and E-AC-3: both copied, not encoded to AAC.
        (files[2], &["hvc1", "ac-3", "ec-3"]),
    ] {
        let master = play_fmp4(&server, &media, file, "safari", formats, 1.0 / 24.0).await;
        assert!(master.contains("CODECS=\"hvc1."), "{master}");
        let id = server.media_id(file).await;
        assert_eq!(
            session_mode(&server, &id).await,
            "remux",
            "{file}: nothing decoded"
        );
    }
    let stats = server.admin_stats(ALICE).await;
    assert_eq!(stats["media_seconds_transcoded"], 0.0, "{stats}");

    // The checker itself catches what it is there for.
    let id = server.media_id("hevc_aac.mkv").await;
    let r = server
        .get(&format!("/api/v1/stream/{id}?profile=safari"), ALICE)
        .await;
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = fetch_master(&server, &location, ALICE).await;
    let good = fetch_fmp4(&server, &master.variant).await;
    assert!(check_rendition(&good.init, &good.segments, true)
        .violations
        .is_empty());
    let caught = |init: &[u8], segments: &[Vec<u8>], what: &str| {
        let v = check_rendition(init, segments, true).violations;
        assert!(
            v.iter().any(|l| l.contains(what)),
            "{what} not caught: {v:?}"
        );
    };
    let mut init = good.init.clone();
    let mvex = init.windows(4).position(|w| w == b"mvex").unwrap();
    init[mvex..mvex + 4].copy_from_slice(b"free");
    caught(&init, &good.segments, "mvex");
    let mut later = good.segments.clone();
    let tfdt = later[1].windows(4).position(|w| w == b"tfdt").unwrap();
    later[1][tfdt + 15] ^= 0x10;
    caught(&good.init, &later, "where the one before ended");
    let mut shifted = good.segments.clone();
    let trun = shifted[0].windows(4).position(|w| w == b"trun").unwrap();
    shifted[0][trun + 15] ^= 0x04;
    caught(&good.init, &shifted, "data offset");
    let mut with_vps = good.segments.clone();
    let mdat = with_vps[0].windows(4).position(|w| w == b"mdat").unwrap();
    with_vps[0][mdat + 8] = 32 << 1; // the first NAL unit becomes a VPS
    caught(&good.init, &with_vps, "parameter set");
    server.stop().await;
}

/// Safari on a taller HEVC film: the original (HEVC, fMP4) first, then
/// H.264 rungs in fMP4 too (one `EXT-X-MAP` kind a master), each one
/// passing the CMAF checker and starting its segments where the
/// original's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safari_gets_h264_rungs_in_fmp4_beside_the_hevc_original() {
    let Some(made) = adapt_media() else { return };
    let file = "hevc_aac_720p_12s.mkv";
    let (_dir, media) = subset(&made, &[file]);
    let server = start_server_with(&media, |c| c.http.admins = vec!["alice".into()]).await;
    server
        .wait_library(std::time::Duration::from_secs(60))
        .await;
    let id = server.media_id(file).await;
    let r = server
        .get(&format!("/api/v1/stream/{id}?profile=safari"), ALICE)
        .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = fetch_master(&server, &location, ALICE).await;
    let variants: Vec<(&str, bool)> = master
        .text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
        .zip(master.variants.iter())
        .map(|(inf, v)| {
            let copy = v.url.contains("/video-copy-cmaf/");
            assert!(v.url.contains("-cmaf/"), "fMP4 only: {}", master.text);
            let codec = if copy {
                "CODECS=\"hvc1."
            } else {
                "CODECS=\"avc1."
            };
            assert!(inf.contains(codec), "{inf}");
            (inf, copy)
        })
        .collect();
    assert!(variants[0].1, "the original first: {}", master.text);
    assert!(variants.len() >= 2, "rungs beside it: {}", master.text);
    // Each declares less than the original (the 1.96 Mb/s HEVC original
    // leaves out the 480p rung, whose VBV bound over 2 s is more).
    assert!(
        master.variants[1..]
            .iter()
            .all(|v| v.bandwidth < master.variants[0].bandwidth),
        "{}",
        master.text
    );
    let original = fetch_fmp4(&server, &master.variants[0].url).await;
    let lowest = master.variants.iter().min_by_key(|v| v.bandwidth).unwrap();
    let rung = fetch_fmp4(&server, &lowest.url).await;
    assert_eq!(rung.durations, original.durations, "one cut list");
    let report = check_rendition(&rung.init, &rung.segments, true);
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert_eq!(report.init.format, "avc1");
    let first = check_rendition(&original.init, &original.segments, true);
    let start = |f: &crate::common::fmp4_check::Fragment, timescale: u32| {
        (f.decode_time as i64 + f.first_composition_offset) as f64 / f64::from(timescale)
    };
    for (n, (a, b)) in report.fragments.iter().zip(&first.fragments).enumerate() {
        let (x, y) = (
            start(a, report.init.timescale),
            start(b, first.init.timescale),
        );
        assert!(
            (x - y).abs() <= 1.0 / 24.0 + 1e-3,
            "segment {n}: {x} s, the original's {y} s"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_gets_vp9_opus_and_flac_copied_into_fmp4_and_shares_them() {
    let Some(made) = profile_media() else { return };
    let (_dir, media) = subset(&made, &["vp9_opus.mkv", "h264_flac.mkv"]);
    let server = start_server_with(&media, |c| c.http.admins = vec!["alice".into()]).await;
    server
        .wait_library(std::time::Duration::from_secs(60))
        .await;
    let master = play_fmp4(
        &server,
        &media,
        "vp9_opus.mkv",
        "chromium",
        &["vp09", "Opus"],
        1.0 / 24.0,
    )
    .await;
    assert!(master.contains("CODECS=\"vp09.00."), "{master}");
    play_fmp4(
        &server,
        &media,
        "h264_flac.mkv",
        "chromium",
        &["avc1", "fLaC"],
        1.0 / 24.0,
    )
    .await;
    for file in ["vp9_opus.mkv", "h264_flac.mkv"] {
        let id = server.media_id(file).await;
        assert_eq!(session_mode(&server, &id).await, "remux", "{file}");
    }
    // Bob's browser states its own profile, which leads to the same
    // renditions: same URLs' bytes, and no producer starts for him.
    let started = server.admin_stats(ALICE).await["producers_started"].clone();
    let mine = r#"{"name":"bobs-browser","video":[{"codec":"vp9"}],"audio":[{"codec":"opus"}],"fmp4":true}"#;
    let q: String = form_urlencoded::byte_serialize(mine.as_bytes()).collect();
    let id = server.media_id("vp9_opus.mkv").await;
    let r = server
        .get(&format!("/api/v1/stream/{id}?profile={q}"), BOB)
        .await;
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let master = fetch_master(&server, &location, BOB).await;
    let bobs = fetch_fmp4_as(&server, &master.variant, BOB).await;
    let alices_master = {
        let r = server
            .get(&format!("/api/v1/stream/{id}?profile=chromium"), ALICE)
            .await;
        let location = r.headers()["location"].to_str().unwrap().to_string();
        fetch_master(&server, &location, ALICE).await
    };
    let alices = fetch_fmp4_as(&server, &alices_master.variant, ALICE).await;
    assert_eq!(bobs.len(), alices.len());
    assert!(bobs == alices, "the same segments' bytes");
    assert_eq!(
        server.admin_stats(ALICE).await["producers_started"],
        started,
        "no producer started for the second profile"
    );
    server.stop().await;
}

/// Every segment of a fragmented-MP4 media playlist (init first) as `token`.
async fn fetch_fmp4_as(server: &TestServer, url: &str, token: &str) -> Vec<Vec<u8>> {
    let playlist = complete_playlist(server, url, token).await;
    let mut out = Vec::new();
    let map = playlist.segments[0].map.as_ref().expect("EXT-X-MAP");
    for uri in std::iter::once(&map.uri).chain(playlist.segments.iter().map(|s| &s.uri)) {
        let r = get_segment(server, &resolve(url, uri), token).await;
        assert_eq!(r.status(), 200, "{uri}");
        out.push(r.bytes().await.unwrap().to_vec());
    }
    out
}
