//! Whether a container's key frames are IDR frames.
//!
//! An open-GOP H.264 stream (broadcast encoders, x264 `open-gop`) has I-frames
//! that are not IDR frames: their leading pictures refer to the GOP before.
//! ffmpeg flags them as key frames, so an MP4's `stss` or a Matroska file's
//! Cues list them (the corpus's open-GOP TS copied into MP4 and MKV: 7 key
//! frames, 1 IDR). A segment cut there cannot be decoded on its own, which
//! `EXT-X-INDEPENDENT-SEGMENTS` promises. Encoders are consistent within a
//! stream, so one look settles it: the demuxer is seeked to the second key
//! frame the index lists and its first access unit is read; if it holds no
//! IDR slice, the index is not used and the demux pass (which counts IDR
//! frames only) reads the key frames instead.

use crate::container::index::KeyframeIndex;
use gst::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Whether `index` (from `crate::container::keyframes::from_container`) lists key frames that are
/// not IDR frames (an open-GOP H.264 stream); see the module docs. `false`
/// when it cannot be told. Blocking (a seek and one access unit).
pub fn lists_non_idr_key_frames(path: &Path, index: &KeyframeIndex) -> bool {
    index
        .keyframes
        .get(1)
        .is_some_and(|at| key_frame_is_idr(path, *at) == Some(false))
}

/// How long each step of the look may take before it gives up (and the
/// index is used).
const LIMIT: gst::ClockTime = gst::ClockTime::from_seconds(5);

/// Whether the H.264 access unit at key frame time `at` of `path` holds an
/// IDR slice; `None` when it cannot be told (no H.264 video, a demuxer
/// error, the time limit).
pub fn key_frame_is_idr(path: &Path, at: Duration) -> Option<bool> {
    gst::init().ok()?;
    let (pipeline, _, parsebin) = super::pipeline::file_parsebin(path).ok()?;
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .property("async", false)
        .caps(
            &gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        )
        .build();
    let linked = Arc::new(Mutex::new(false));
    {
        let weak = pipeline.downgrade();
        let sink = sink.clone();
        crate::guard::on_pad_added(&parsebin, move |_, pad| {
            let Some(pipeline) = weak.upgrade() else {
                return;
            };
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let h264 = caps
                .structure(0)
                .is_some_and(|s| s.name() == "video/x-h264");
            let mut linked = linked.lock().expect("linked");
            let chain: Vec<gst::Element> = if h264 && !*linked {
                let Ok(parse) = gst::ElementFactory::make("h264parse").build() else {
                    return;
                };
                *linked = true;
                vec![parse, sink.clone().upcast()]
            } else {
                let Ok(fake) = super::pipeline::discard_sink() else {
                    return;
                };
                vec![fake]
            };
            if pipeline.add_many(&chain).is_err() || gst::Element::link_many(&chain).is_err() {
                return;
            }
            for e in &chain {
                let _ = e.sync_state_with_parent();
            }
            if let Some(sinkpad) = chain[0].static_pad("sink") {
                let _ = pad.link(&sinkpad);
            }
        });
    }
    // Playing, never paused: in PAUSED a sink holds the demuxer's only
    // streaming thread on its first buffer, and after the seek that can be
    // an audio buffer while the video sink waits.
    let result = (|| {
        let position = gst::ClockTime::from_nseconds(u64::try_from(at.as_nanos()).ok()?);
        pipeline.set_state(gst::State::Playing).ok()?;
        // The sink joins when the demuxer exposes its pads (until then a
        // pull returns at once): wait for its first access unit.
        let deadline = std::time::Instant::now() + Duration::from_nanos(LIMIT.nseconds());
        while sink
            .try_pull_sample(gst::ClockTime::from_mseconds(100))
            .is_none()
        {
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        pipeline
            .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT, position)
            .ok()?;
        // The first key frame at the seek position (demuxers round times).
        let slack = gst::ClockTime::from_mseconds(50);
        loop {
            let sample = sink.try_pull_sample(LIMIT)?;
            let buffer = sample.buffer()?;
            let at_key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
                && buffer.pts().is_some_and(|t| t + slack >= position);
            if at_key {
                let map = buffer.map_readable().ok()?;
                return Some(crate::container::h264::has_idr_slice(&map));
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}
