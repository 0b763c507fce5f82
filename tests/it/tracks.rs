//! Every audio track and every subtitle: alternate audio renditions made
//! on their own, WebVTT renditions from embedded and sidecar text,
//! whole-file WebVTT beside a direct play (burn-in: `burn_in.rs`).

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Cues of the embedded English track: (start, end, text), seconds.
const EMBEDDED: &[(f64, f64, &str)] = &[
    (1.0, 3.0, "Hello from the start"),
    (5.0, 8.5, "Across the first cut"),
    (13.2, 15.0, "Third line"),
];
/// Cues of the French sidecar.
const SIDECAR: &[(f64, f64, &str)] = &[(2.5, 4.0, "Bonjour"), (17.0, 19.0, "Au revoir")];

fn srt(cues: &[(f64, f64, &str)]) -> String {
    let t = |s: f64| {
        let ms = (s * 1000.0).round() as u64;
        format!(
            "{:02}:{:02}:{:02},{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    cues.iter()
        .enumerate()
        .map(|(i, (a, b, text))| format!("{}\n{} --> {}\n{text}\n\n", i + 1, t(*a), t(*b)))
        .collect()
}

/// 20 s of H.264 video, a 440 Hz `eng` AAC track, an 880 Hz `fre` AC-3
/// track and an embedded English SubRip track, in Matroska; beside it a
/// French sidecar, a Latin-1 German one and a Spanish one with a BOM and
/// a broken cue. `None` (with a notice) without ffmpeg.
fn make_fixture(dir: &Path) -> Option<PathBuf> {
    let embedded = dir.join("embedded.srt.in");
    std::fs::write(&embedded, srt(EMBEDDED)).unwrap();
    // The tones are encoded on their own first, so that every track starts
    // at 0: muxed in one go, AAC's priming delay starts the video 21 ms
    // after the audio, and hls.js 1.6 then fails to decode the copied
    // video in Chromium (a finding of its own, in docs/design.md, "Audio tracks and subtitles").
    let tone = |hz: u32, codec: &str, file: &str| {
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("sine=frequency={hz}:sample_rate=48000:duration=20"))
            .args(["-c:a", codec, "-b:a", "128k"])
            .arg(dir.join(file))
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(tone(440, "aac", "en.aac") && tone(880, "ac3", "fr.ac3")) {
        skip("ffmpeg cannot make the multi-track fixture");
        return None;
    }
    let out = dir.join("film.mkv");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=20",
        ])
        .arg("-i")
        .arg(dir.join("en.aac"))
        .arg("-i")
        .arg(dir.join("fr.ac3"))
        .args(["-f", "srt", "-i"])
        .arg(&embedded)
        .args(["-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s"])
        // No B-frames: copied B-frames go out with a PTS and no DTS
        // (issue 16), which Chromium fails to decode through hls.js.
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-bf", "0",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "copy", "-c:s", "srt"])
        .args([
            "-metadata:s:a:0",
            "language=eng",
            "-metadata:s:a:1",
            "language=fre",
        ])
        .args(["-metadata:s:s:0", "language=eng"])
        .args(["-disposition:a:0", "default", "-disposition:a:1", "0"])
        .args(["-disposition:s:0", "forced"])
        .arg(&out)
        .status();
    for f in ["en.aac", "fr.ac3"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    if !status.is_ok_and(|s| s.success()) {
        skip("ffmpeg cannot make the multi-track fixture");
        return None;
    }
    std::fs::remove_file(&embedded).unwrap();
    std::fs::write(dir.join("film.fr.srt"), srt(SIDECAR)).unwrap();
    // Latin-1: "Grüße" with ü = 0xFC and ß = 0xDF.
    let mut latin1 = b"1\n00:00:03,000 --> 00:00:05,000\nGr".to_vec();
    latin1.extend_from_slice(&[0xFC, 0xDF, b'e', b'\n', b'\n']);
    std::fs::write(dir.join("film.de.srt"), latin1).unwrap();
    // A UTF-8 BOM, then a cue with a broken time line, then a good one.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(
        "1\n00:00:01,000 -> nonsense\nRota\n\n2\n00:00:06,000 --> 00:00:07,000\nAdiós\n\n"
            .as_bytes(),
    );
    std::fs::write(dir.join("film.es.srt"), bom).unwrap();
    Some(out)
}

/// The dominant frequency of decoded mono audio, by zero crossings (Hz).
fn tone_hz(samples: &[i16], rate: f64) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / rate)
}

/// Decodes concatenated MPEG-TS audio segments to 8 kHz mono PCM with
/// ffmpeg; returns the samples.
fn decode_audio(segments: &[Vec<u8>]) -> Vec<i16> {
    let pcm = ffmpeg_decode(
        &segments.concat(),
        &["-ac", "1", "-ar", "8000", "-f", "s16le", "-"],
    );
    pcm.chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Parses WebVTT cues: (start, end, text) in seconds, and the
/// `X-TIMESTAMP-MAP` (MPEGTS ticks, LOCAL seconds) if any.
/// Cues (start, end, text) in seconds.
type Cues = Vec<(f64, f64, String)>;

fn parse_vtt(text: &str) -> (Cues, Option<(u64, f64)>) {
    assert!(text.starts_with("WEBVTT"), "{text}");
    let secs = |t: &str| {
        let parts: Vec<f64> = t
            .trim()
            .split(':')
            .map(|p| p.parse::<f64>().unwrap())
            .collect();
        parts.iter().fold(0.0, |acc, p| acc * 60.0 + p)
    };
    let map = text.lines().find_map(|l| {
        let rest = l.strip_prefix("X-TIMESTAMP-MAP=")?;
        let mut mpegts = None;
        let mut local = None;
        for part in rest.split(',') {
            if let Some(v) = part.strip_prefix("MPEGTS:") {
                mpegts = v.parse().ok();
            }
            if let Some(v) = part.strip_prefix("LOCAL:") {
                local = Some(secs(v));
            }
        }
        Some((mpegts?, local?))
    });
    let mut cues = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some((a, b)) = l.split_once(" --> ") {
            let body: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| !l.is_empty())
                .copied()
                .collect();
            cues.push((secs(a), secs(b), body.join("\n")));
        }
    }
    (cues, map)
}

async fn get_text(server: &TestServer, url: &str) -> String {
    let r = get_segment(server, url, ALICE).await;
    assert_eq!(r.status(), 200, "{url}");
    r.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_audio_track_and_every_text_subtitle_is_a_rendition() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_) = make_fixture(dir.path()) else {
        return;
    };
    let server = start_server_with(dir.path(), |c| c.http.admins = vec!["alice".into()]).await;
    let list = server
        .get_json("/api/v1/media?limit=1000", ALICE, 200)
        .await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        1,
        "sidecars are not items: {list}"
    );
    let item = server.media("film.mkv").await;
    let audio = item["audio"].as_array().unwrap();
    assert_eq!(audio.len(), 2, "{item}");
    assert_eq!(
        (audio[0]["language"].as_str(), audio[0]["default"].as_bool()),
        (Some("en"), Some(true))
    );
    assert_eq!(audio[1]["default"], false);
    assert_eq!(audio[1]["language"], "fr");
    assert_eq!(audio[1]["codec"], "ac3");
    let subs = item["subtitles"].as_array().unwrap();
    assert_eq!(subs.len(), 4, "{item}");
    assert_eq!(
        (
            subs[0]["kind"].as_str(),
            subs[0]["source"].as_str(),
            subs[0]["language"].as_str(),
            subs[0]["forced"].as_bool()
        ),
        (Some("text"), Some("embedded"), Some("en"), Some(true))
    );
    let sidecar = |lang: &str| {
        subs.iter()
            .find(|s| s["language"] == lang && s["source"] == "sidecar")
            .unwrap_or_else(|| panic!("no {lang} sidecar: {item}"))
            .clone()
    };
    assert_eq!(sidecar("fr")["file"], "film.fr.srt");
    let id = item["id"].as_str().unwrap().to_string();

    // A start that prefers French audio and the embedded subtitles.
    let r = server
        .client
        .post(server.url("/api/v1/hls/start"))
        .bearer_auth(ALICE)
        .json(&serde_json::json!({"media_id": id, "audio": "fre", "subtitle": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let started: serde_json::Value = r.json().await.unwrap();
    let master_url = started["master_url"].as_str().unwrap().to_string();
    let master = fetch_master(&server, &master_url, ALICE).await;
    assert_eq!(master.audio.len(), 2, "{}", master.text);
    assert!(
        master
            .default_audio
            .as_deref()
            .is_some_and(|u| u.contains("audio-1-aac")),
        "French is the default: {}",
        master.text
    );
    assert!(
        master.text.contains("SUBTITLES=\"subs\""),
        "{}",
        master.text
    );
    assert_eq!(master.subtitles.len(), 4, "{}", master.text);

    // ffprobe reads the master: one video and both audio renditions with
    // their languages.
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type:stream_tags=language",
        ])
        .args(["-of", "compact"])
        .arg(server.url(&master_url))
        .output()
        .expect("ffprobe");
    let listed = String::from_utf8_lossy(&probe.stdout);
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(listed.contains("codec_type=video"), "{listed}");
    assert!(
        listed.contains("codec_type=audio|tag:language=en"),
        "{listed}"
    );
    assert!(
        listed.contains("codec_type=audio|tag:language=fr"),
        "{listed}"
    );

    // Each audio rendition plays the whole film with its own tone.
    let video = complete_playlist(&server, &master.variant, ALICE).await;
    let total: f64 = video.segments.iter().map(|s| s.duration as f64).sum();
    assert!((total - 20.0).abs() < 0.5, "{total}");
    for (url, want_hz) in [(&master.audio[0], 440.0), (&master.audio[1], 880.0)] {
        let p = complete_playlist(&server, url, ALICE).await;
        assert_eq!(p.segments.len(), video.segments.len());
        let mut bytes = Vec::new();
        for s in &p.segments {
            let r = get_segment(&server, &resolve(url, &s.uri), ALICE).await;
            assert_eq!(r.status(), 200);
            bytes.push(r.bytes().await.unwrap().to_vec());
        }
        let samples = decode_audio(&bytes);
        let seconds = samples.len() as f64 / 8000.0;
        assert!((seconds - 20.0).abs() < 0.5, "{url}: {seconds} s of audio");
        let hz = tone_hz(&samples, 8000.0);
        assert!(
            (hz - want_hz).abs() < 15.0,
            "{url}: {hz} Hz, want {want_hz}"
        );
    }

    // Video segment 0 starts at 3600 s on the MPEG-TS clock, where
    // X-TIMESTAMP-MAP puts media time 0.
    let first = get_segment(
        &server,
        &resolve(&master.variant, &video.segments[0].uri),
        ALICE,
    )
    .await
    .bytes()
    .await
    .unwrap();
    let pts = video_pts(&first).expect("video PTS");
    assert!((pts[0] - 3600.0).abs() < 0.05, "first PTS {}", pts[0]);

    // Each subtitle rendition: same segment list as the video, cues at
    // their media time after the map.
    for (name, want) in [("/subs-0/", EMBEDDED), ("fr", SIDECAR)] {
        let url = &master
            .subtitles
            .iter()
            // A path by its URL, a language by its tag: a signed URL's
            // token may hold any two letters.
            .find(|(l, u)| match name.starts_with('/') {
                true => u.contains(name),
                false => l.as_deref() == Some(name),
            })
            .unwrap_or_else(|| panic!("{name} subtitles: {}", master.text))
            .1;
        let p = complete_playlist(&server, url, ALICE).await;
        assert_eq!(p.segments.len(), video.segments.len(), "{url}");
        assert_eq!(p.target_duration, video.target_duration);
        let mut seen: Vec<(f64, f64, String)> = Vec::new();
        for (n, s) in p.segments.iter().enumerate() {
            let r = get_segment(&server, &resolve(url, &s.uri), ALICE).await;
            assert_eq!(r.status(), 200);
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/vtt"));
            let (cues, map) = parse_vtt(&r.text().await.unwrap());
            let (mpegts, local) = map.expect("X-TIMESTAMP-MAP");
            let offset = mpegts as f64 / 90_000.0 - local - 3600.0;
            let seg_start: f64 = video.segments[..n].iter().map(|s| s.duration as f64).sum();
            let seg_end = seg_start + video.segments[n].duration as f64;
            for (a, b, text) in cues {
                assert!(
                    a < seg_end + 0.01 && b > seg_start - 0.01,
                    "cue {a}-{b} in segment {n}"
                );
                seen.push((a + offset, b + offset, text));
            }
        }
        for (a, b, text) in want {
            assert!(
                seen.iter()
                    .any(|(x, y, t)| (x - a).abs() <= 0.1 && (y - b).abs() <= 0.1 && t == text),
                "{name}: cue {text:?} at {a} s not found in {seen:?}"
            );
        }
    }
    // The embedded track's cues came from the producers that made the
    // video and audio: no pass of their own; each sidecar was read once.
    let reads = &server.admin_stats(ALICE).await["subtitle_reads"];
    assert_eq!(reads["embedded"].as_u64().unwrap_or(0), 0, "{reads}");
    assert_eq!(reads["sidecar"], 1, "{reads}");
    // The cue across the first cut is repeated in both segments.
    let en = &master
        .subtitles
        .iter()
        .find(|(_, u)| u.contains("subs-0"))
        .unwrap()
        .1;
    let seg1 = get_text(&server, &en.replace("playlist.m3u8", "segment_00001.vtt")).await;
    assert!(seg1.contains("Across the first cut"), "{seg1}");

    // Odd sidecars: Latin-1 and a BOM with a broken cue give readable cues.
    for (lang, want) in [("de", "Grüße"), ("es", "Adiós")] {
        let index = sidecar(lang)["index"].as_u64().unwrap();
        let url = master
            .subtitles
            .iter()
            .find(|(_, u)| u.contains(&format!("/subs-{index}/")))
            .unwrap()
            .1
            .replace("playlist.m3u8", "segment_00000.vtt");
        let text = get_text(&server, &url).await;
        let url1 = url.replace("segment_00000", "segment_00001");
        let text1 = get_text(&server, &url1).await;
        assert!(
            text.contains(want) || text1.contains(want),
            "{lang}: {text}{text1}"
        );
    }

    // Whole-file WebVTT of the embedded track, for a <track> element.
    let r = server
        .get(&format!("/api/v1/media/{id}/subtitles/0.vtt"), ALICE)
        .await;
    assert_eq!(r.status(), 200);
    let (cues, _) = parse_vtt(&r.text().await.unwrap());
    assert_eq!(cues.len(), EMBEDDED.len(), "{cues:?}");
    assert!((cues[2].0 - 13.2).abs() <= 0.1);
    let r = server
        .get(&format!("/api/v1/media/{id}/subtitles/99.vtt"), ALICE)
        .await;
    assert_eq!(r.status(), 404);
    // A track that does not exist is a clear 400.
    let r = server
        .get(&format!("/api/v1/stream/{id}?audio=7"), ALICE)
        .await;
    assert_eq!(r.status(), 400);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_switches_audio_without_touching_the_video_and_shows_subtitles() {
    let Some(chromium) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let Some(_) = make_fixture(dir.path()) else {
        return;
    };
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let server = start_server_with(dir.path(), |c| {
        c.http.web_dir = Some(repo.join("web/static"));
        c.http.admins = vec!["alice".into()];
    })
    .await;
    let (cue_at, _, cue_text) = EMBEDDED[2];
    let stdout = run_page_script(
        "tracks.mjs",
        &chromium,
        &[
            server.base.clone().into(),
            ALICE.into(),
            "film.mkv".into(),
            format!("{}", cue_at + 0.3).into(),
            cue_text.into(),
        ],
        std::time::Duration::from_secs(180),
    )
    .await;
    let result = page_result(&stdout);
    let count = |when: &str, rendition: &str| result[when][rendition].as_u64().unwrap_or(0);
    // The switch started the French track's producer and no video one.
    assert!(count("afterSwitch", "audio-1-aac") >= 1, "{result}");
    assert_eq!(
        count("before", "video-copy"),
        count("afterSwitch", "video-copy"),
        "the audio switch started a video producer: {result}"
    );
    let shown_at = result["cueAt"].as_f64().unwrap();
    let (start, end) = (EMBEDDED[2].0, EMBEDDED[2].1);
    assert!(
        shown_at >= start - 0.1 && shown_at <= end + 0.1,
        "cue shown at {shown_at}"
    );
    server.stop().await;
}
