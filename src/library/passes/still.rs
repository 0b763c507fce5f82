//! One picture of a file: the key frame nearest a time, decoded on its
//! own (a key-unit seek, so no frame between is decoded), turned upright
//! (the stream's rotation tag), scaled to a width with square pixels and
//! encoded as a JPEG.
//!
//! ```text
//! source ─ parsebin ─ (video) queue ─ decodebin ─ videoconvert ─ videoflip(auto)
//!          │            ─ videoscale ─ videoconvert ─ I420,width=W ─ jpegenc ─ appsink
//!          └ (others) dropped
//! ```

use super::pipeline::{file_parsebin, make};
use gst::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// JPEG quality (`jpegenc`'s 0–100; 85 is its own default).
const QUALITY: i32 = 85;

/// A picture of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Still {
    /// The JPEG file's bytes.
    pub jpeg: Vec<u8>,
    /// The key frame's presentation time in the file's own stream time.
    pub at: Duration,
    /// Width and height of the picture, pixels.
    pub size: (u32, u32),
}

/// Which key frame a [`key_frame_jpeg`] seek lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// The key frame at or before this stream time.
    Before(Duration),
    /// The key frame nearest this stream time, as the demuxer finds it
    /// (some take the one before).
    Nearest(Duration),
}

/// The key frame of the first video stream of `path` that `seek` names,
/// `width` pixels wide (the height keeps the display aspect ratio), as a
/// JPEG. Blocking: it runs a pipeline, each of its steps bounded by
/// `limit`.
///
/// # Errors
/// A missing element, a file GStreamer cannot demux or decode, no video
/// stream, or a step that took longer than `limit`.
pub fn key_frame_jpeg(
    path: &Path,
    seek: Seek,
    width: u32,
    limit: Duration,
) -> Result<Still, String> {
    let (pipeline, _, parsebin) = file_parsebin(path)?;
    super::one_codec::keep_first_codec(&parsebin);
    let chain = [
        make("queue")?,
        make("decodebin")?,
        make("videoconvert")?,
        make("videoflip")?,
        make("videoscale")?,
        make("videoconvert")?,
        make("capsfilter")?,
        make("jpegenc")?,
    ];
    chain[3].set_property_from_str("video-direction", "auto");
    chain[6].set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field(
                "width",
                i32::try_from(width).map_err(|_| "width too large")?,
            )
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    );
    chain[7].set_property("quality", QUALITY);
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline
        .add_many(chain.iter().chain([sink.upcast_ref()]))
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    chain[0]
        .link(&chain[1])
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    gst::Element::link_many(chain[2..].iter().chain([sink.upcast_ref()]))
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    // The queue gives the video a thread of its own: decodebin holds its
    // first picture until it knows the stream, which would block the
    // demuxer's one thread.
    let (queue, decodebin, convert) = (chain[0].clone(), chain[1].clone(), chain[2].clone());
    crate::guard::on_pad_added(&decodebin, move |_, pad| {
        if let Some(sinkpad) = convert.static_pad("sink") {
            if !sinkpad.is_linked() && is_raw_video(pad) {
                let _ = pad.link(&sinkpad);
            }
        }
    });
    {
        // The first video stream to the decoder, anything else discarded.
        crate::guard::on_pad_added(&parsebin, move |_, pad| {
            let video = pad
                .current_caps()
                .unwrap_or_else(|| pad.query_caps(None))
                .structure(0)
                .is_some_and(|s| s.name().starts_with("video/"));
            match queue.static_pad("sink").filter(|p| video && !p.is_linked()) {
                Some(target) => {
                    let _ = pad.link(&target);
                }
                // Dropped at the pad rather than sent to a sink: in PAUSED
                // a sink would hold the demuxer's one thread on its first
                // buffer, and the video would never come.
                None => {
                    crate::guard::probe(
                        pad,
                        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                        |_, _| gst::PadProbeReturn::Drop,
                    );
                }
            }
        });
    }
    let result = grab(&pipeline, &sink, seek, limit);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Whether `pad` gives raw video.
fn is_raw_video(pad: &gst::Pad) -> bool {
    pad.current_caps()
        .unwrap_or_else(|| pad.query_caps(None))
        .structure(0)
        .is_some_and(|s| s.name() == "video/x-raw")
}

/// Prerolls `pipeline`, seeks it to the key frame `seek` names and takes
/// the picture its appsink prerolled on.
fn grab(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    seek: Seek,
    limit: Duration,
) -> Result<Still, String> {
    let deadline = Instant::now() + limit;
    pipeline
        .set_state(gst::State::Paused)
        .map_err(|_| "the file cannot be opened".to_string())?;
    settle(pipeline, deadline)?;
    let (at, snap) = match seek {
        Seek::Before(at) => (at, gst::SeekFlags::SNAP_BEFORE),
        Seek::Nearest(at) => (at, gst::SeekFlags::SNAP_NEAREST),
    };
    if !at.is_zero() {
        let position =
            gst::ClockTime::from_nseconds(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX));
        pipeline
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT | snap,
                position,
            )
            .map_err(|_| "the file cannot be seeked".to_string())?;
        settle(pipeline, deadline)?;
    }
    let left = deadline.saturating_duration_since(Instant::now());
    let sample = sink
        .try_pull_preroll(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
        .ok_or("no picture: the file has no video that decodes")?;
    let buffer = sample.buffer().ok_or("an empty picture")?;
    let info = sample
        .caps()
        .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
        .ok_or("a picture without caps")?;
    let at = buffer
        .pts()
        .and_then(|pts| {
            let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?.clone();
            segment.to_stream_time(pts)
        })
        .map_or(Duration::ZERO, |t| Duration::from_nanos(t.nseconds()));
    let map = buffer.map_readable().map_err(|_| "an unreadable picture")?;
    Ok(Still {
        jpeg: map.to_vec(),
        at,
        size: (info.width(), info.height()),
    })
}

/// Waits until the pipeline has prerolled (or has no more to preroll),
/// or fails with its error or at `deadline`.
fn settle(pipeline: &gst::Pipeline, deadline: Instant) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("a pipeline without a bus")?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the picture took too long to decode".into());
        }
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::AsyncDone, gst::MessageType::Error],
        ) else {
            return Err("the picture took too long to decode".into());
        };
        match msg.view() {
            gst::MessageView::AsyncDone(_) => return Ok(()),
            gst::MessageView::Error(e) => {
                return Err(format!("the file does not decode: {}", e.error()))
            }
            _ => {}
        }
    }
}
