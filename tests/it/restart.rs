//! A restart costs a viewer nothing: a single node (no `--secret`) keeps
//! the secret that signs its playback URLs in its data dir, so the URLs a
//! player holds outlive the process. ffmpeg (`-re`, as fast as it plays)
//! plays a transcode and a remux from one node; once it plays and has
//! opened a video and an audio segment, the node is SIGKILLed and started again on the same port and dirs (as
//! systemd does after a crash): every request after the restart is
//! answered, none refused, and the whole title decodes.

use crate::common::cluster::{free_port, Node};
use crate::common::*;
use std::os::unix::fs::MetadataExt;
use tokio::io::AsyncBufReadExt;

/// The fixture a node transcodes.
const TRANSCODE: &str = "transcode_vp8_vorbis_20s.webm";
/// The film the test makes, which a node copies.
const REMUX: &str = "h264_aac_30s.mkv";

/// Frames of the first video stream of `file`, counted by decoding.
fn frames_of(file: &std::path::Path) -> u64 {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The last `frame=` count in ffmpeg's `-progress` output.
fn frames_decoded(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| l.strip_prefix("frame=")?.trim().parse().ok())
        .next_back()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playback_urls_outlive_a_restart_of_a_single_node() {
    let tmp = tempfile::tempdir().unwrap();
    // The transcode fixture (20 s of VP8), and a 30 s H.264 + AAC film the
    // node copies, key frames every 2 s: segments 0-2, 2-8, 8-14, ... s.
    let media = tmp.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::copy(fixtures_dir().join(TRANSCODE), media.join(TRANSCODE)).unwrap();
    let remux = media.join(REMUX);
    ffmpeg_make(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x240:r=25:d=30",
        "-f",
        "lavfi",
        "-i",
        "sine=d=30",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "50",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        remux.to_str().unwrap(),
    ]);
    let mut node = Node::start_alone("solo", free_port(), &media, tmp.path()).await;
    let kept = node.data_dir().join("signing-secret");
    assert_eq!(std::fs::metadata(&kept).unwrap().mode() & 0o777, 0o600);
    let secret = std::fs::read(&kept).unwrap();
    // (file, the segment whose opening, once playing, triggers the restart:
    // ffmpeg opens each rendition's next segment a segment ahead of what
    // it plays, so one more is asked for after the restart)
    for (file, at) in [(TRANSCODE, 2), (REMUX, 3)] {
        let server = TestServer::remote(&node.base());
        let id = server.media_id(file).await;
        let r = server.get(&format!("/api/v1/stream/{id}"), ALICE).await;
        assert_eq!(r.status(), 302, "{file}");
        let master = node.base() + r.headers()["location"].to_str().unwrap();
        let mut ffmpeg = tokio::process::Command::new("ffmpeg")
            .args(["-nostdin", "-nostats", "-hide_banner", "-v", "info", "-re"])
            .args(["-i", &master, "-f", "null", "-", "-progress", "pipe:2"])
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(ffmpeg.stderr.take().unwrap()).lines();
        let (mut before, mut after) = (String::new(), String::new());
        let (mut playing, mut restarted) = (false, false);
        // Once playing (ffmpeg first opens every variant to probe it), and
        // both the video's and the audio's segment `at` are open.
        let trigger = format!("/segment_{at:05}.ts");
        let mut opened = [false, false];
        while let Some(line) = lines.next_line().await.unwrap() {
            let log = if restarted { &mut after } else { &mut before };
            log.push_str(&line);
            log.push('\n');
            // `-progress`: the time played, microseconds.
            playing |= line
                .strip_prefix("out_time_us=")
                .and_then(|us| us.parse::<f64>().ok())
                .is_some_and(|us| us >= 1e6);
            if playing && !restarted && line.contains("Opening '") && line.contains(&trigger) {
                opened[usize::from(line.contains("/audio"))] = true;
                if opened == [true, true] {
                    // Their requests answered first (not a test of a
                    // request cut in half: a player retries those).
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    node.restart().await;
                    restarted = true;
                }
            }
        }
        let status = ffmpeg.wait().await.unwrap();
        println!("{file}: after the restart:\n{after}");
        assert!(
            restarted,
            "{file}: ffmpeg never opened segment {at} while playing:\n{before}"
        );
        assert!(status.success(), "{file}: ffmpeg failed:\n{before}{after}");
        for refused in [
            "HTTP error",
            "Server returned",
            "Failed to open",
            "Unable to open",
        ] {
            assert!(
                !after.contains(refused),
                "{file}: {refused} after the restart:\n{after}"
            );
        }
        assert!(
            after.contains("Opening '"),
            "{file}: nothing asked after the restart"
        );
        let source = frames_of(&media.join(file));
        let decoded = frames_decoded(&after).unwrap_or_default();
        assert!(
            decoded.abs_diff(source) <= 1,
            "{file}: decoded {decoded} frames of {source}"
        );
    }
    // The same secret throughout.
    assert_eq!(std::fs::read(&kept).unwrap(), secret);
}
