//! Image subtitles (PGS, VobSub, DVB) burned into a video rendition of
//! their own: the burned picture differs from the plain one where the
//! subtitle is.

use crate::common::*;
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn an_image_subtitle_is_burned_into_its_own_video_rendition() {
    let Some(shared) = shared_media() else {
        return;
    };
    // The shared file's PGS track was authored for a 2048x858 picture
    // (its text sits below 720 lines): give it a picture of that size, as
    // a Blu-ray has, with its PGS track copied (Matroska), and the same
    // pictures as VobSub (Matroska, as ripped from a DVD) and as DVB
    // subtitles (MPEG-TS, as broadcast).
    let dir = tempfile::tempdir().unwrap();
    for (file, codec, subtitle_codec) in [
        ("pgs.mkv", "pgs", "copy"),
        ("vobsub.mkv", "dvdsub", "dvdsub"),
        ("dvb.ts", "dvbsub", "dvbsub"),
    ] {
        let made = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(shared.join("derived_bbb_h264_3audio_srt_pgs.mkv"))
            .args(["-map", "0:v", "-map", "0:a:0", "-map", "0:s:2", "-t", "5"])
            .args([
                "-vf",
                "scale=2048:858",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
            ])
            .args(["-c:a", "copy", "-c:s", subtitle_codec])
            .arg(dir.path().join(file))
            .status();
        if !made.is_ok_and(|s| s.success()) {
            skip(format!("ffmpeg cannot make the {codec} fixture"));
            return;
        }
    }
    let server = start_server(dir.path(), std::time::Duration::from_secs(60)).await;
    for (file, codec) in [
        ("pgs.mkv", "pgs"),
        ("vobsub.mkv", "dvdsub"),
        ("dvb.ts", "dvbsub"),
    ] {
        burns_in(&server, file, codec).await;
    }
    server.stop().await;
}

/// `file`'s `codec` subtitle track burned in: the burned rendition
/// decodes, and its frame at 1.5 s differs from the unburned one where the
/// subtitle is.
async fn burns_in(server: &TestServer, file: &str, codec: &str) {
    let item = server.media(file).await;
    let track = item["subtitles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec"] == codec)
        .unwrap_or_else(|| panic!("no {codec} track: {item}"))["index"]
        .as_u64()
        .unwrap();
    assert_eq!(item["subtitles"][track as usize]["kind"], "image");
    let id = item["id"].as_str().unwrap();
    // The PGS track shows its first picture from 0.585 s to 2.405 s.
    let frame_at = |bytes: &[u8]| -> Vec<u8> {
        let frame = ffmpeg_decode(
            bytes,
            &[
                "-ss",
                "1.5",
                "-frames:v",
                "1",
                "-vf",
                "scale=1280:536",
                "-pix_fmt",
                "gray",
                "-f",
                "rawvideo",
                "-",
            ],
        );
        assert_eq!(frame.len(), 1280 * 536, "one frame decoded");
        frame
    };
    let mut frames = Vec::new();
    for query in [format!("?burn={track}"), "?mode=hls".to_string()] {
        let r = server
            .client
            .get(server.url(&format!("/api/v1/stream/{id}{query}")))
            .bearer_auth(ALICE)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            302,
            "{query}: {}",
            r.text().await.unwrap_or_default()
        );
        let master_url = r.headers()["location"].to_str().unwrap().to_string();
        let master = fetch_master(server, &master_url, ALICE).await;
        if query.starts_with("?burn") {
            assert!(master.variant.contains("burn"), "{}", master.text);
        }
        let p = complete_playlist(server, &master.variant, ALICE).await;
        let r = get_segment(server, &resolve(&master.variant, &p.segments[0].uri), ALICE).await;
        assert_eq!(r.status(), 200);
        let bytes = r.bytes().await.unwrap().to_vec();
        decode_ts(&bytes).expect("the segment decodes");
        frames.push(frame_at(&bytes));
    }
    let diff: f64 = frames[0]
        .iter()
        .zip(&frames[1])
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .sum::<f64>()
        / frames[0].len() as f64;
    // Re-encoding alone changes pixels by about 1 level; a burned
    // subtitle changes its area by tens.
    let changed = frames[0]
        .iter()
        .zip(&frames[1])
        .filter(|(a, b)| (**a as i32 - **b as i32).abs() > 60)
        .count();
    assert!(
        changed > 100,
        "{file}: burned pixels: {changed} (mean diff {diff:.2})"
    );
}
