//! Decoding what hlsd serves, as a player would: GStreamer for segments,
//! ffprobe for timestamps, ffmpeg for whole streams.

use super::*;

/// Seconds of media ffmpeg decodes from `input` (a file or a URL), from
/// the last `out_time_us` of its progress report, and its stderr; `None`
/// when ffmpeg fails or is not installed.
pub fn decoded_seconds(input: &str) -> Result<f64, String> {
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-progress",
            "pipe:1",
            "-i",
            input,
            "-f",
            "null",
            "-",
        ])
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            stderr.lines().next().unwrap_or("")
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("out_time_us="))
        .filter_map(|v| v.trim().parse::<i64>().ok())
        .next_back()
        .map(|us| us as f64 / 1e6)
        .ok_or_else(|| format!("no progress report: {stderr}"))
}

/// What decoding a file found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Decoded {
    /// Decoded video frames.
    pub video_frames: u64,
    /// Decoded audio buffers.
    pub audio_buffers: u64,
    /// Width and height of the decoded video.
    pub size: Option<(i32, i32)>,
}

/// Decodes an MPEG-TS segment with GStreamer (`decodebin` into fakesinks).
///
/// # Errors
/// The first error message the pipeline posts.
pub fn decode_ts(bytes: &[u8]) -> Result<Decoded, String> {
    use std::sync::{Arc, Mutex};
    let file = tempfile::Builder::new().suffix(".ts").tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", file.path().to_str().unwrap())
        .build()
        .unwrap();
    let decodebin = gst::ElementFactory::make("decodebin").build().unwrap();
    pipeline.add_many([&src, &decodebin]).unwrap();
    src.link(&decodebin).unwrap();
    let found = Arc::new(Mutex::new(Decoded::default()));
    let pipeline_weak = pipeline.downgrade();
    let found_cb = found.clone();
    decodebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap();
        let s = caps.structure(0).unwrap();
        let is_video = s.name().starts_with("video/");
        if is_video {
            let size = (
                s.get::<i32>("width").unwrap_or(0),
                s.get::<i32>("height").unwrap_or(0),
            );
            found_cb.lock().unwrap().size = Some(size);
        }
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .unwrap();
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        let found = found_cb.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let mut f = found.lock().unwrap();
            if is_video {
                f.video_frames += 1;
            } else {
                f.audio_buffers += 1;
            }
            gst::PadProbeReturn::Ok
        });
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    result.map(|_| *found.lock().unwrap())
}

/// Video packet PTS values (seconds, in presentation order) of an MPEG-TS
/// segment, read with ffprobe; `None` when ffprobe is not installed.
pub fn video_pts(bytes: &[u8]) -> Option<Vec<f64>> {
    stream_pts(bytes, "v")
}

/// Packet PTS values (seconds, sorted) of the `v` or `a` streams of an
/// MPEG-TS segment, read with ffprobe; `None` when ffprobe is not installed.
pub fn stream_pts(bytes: &[u8], kind: &str) -> Option<Vec<f64>> {
    let file = tempfile::Builder::new().suffix(".ts").tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            kind,
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(file.path())
        .output()
        .ok()?;
    let mut pts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    pts.sort_by(f64::total_cmp);
    Some(pts)
}

/// Decodes MPEG-TS `bytes` with ffmpeg, `output` being its output
/// options (ending in `-`, standard output); returns what it wrote.
pub fn ffmpeg_decode(bytes: &[u8], output: &[&str]) -> Vec<u8> {
    let file = tempfile::Builder::new().suffix(".ts").tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file.path())
        .args(output)
        .output()
        .expect("ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The first video PTS of an MPEG-TS segment (s) minus hlsd's 3600 s offset.
pub fn first_video_s(bytes: &[u8]) -> f64 {
    video_pts(bytes).unwrap()[0] - 3600.0
}
