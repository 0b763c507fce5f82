//! Building a producer's GStreamer pipeline: one pipeline that makes a run
//! of segments of one or more renditions of a media item, from a segment
//! of its timeline on.
//!
//! ```text
//! remux (every rendition copied, src/pipeline/remux.rs):
//!   source ─ parsebin ─ h264parse ─ appsink ─> SegmentWriter (video rendition)
//!                     └ aacparse ── appsink ─> SegmentWriter (audio rendition)
//! transcode (src/pipeline/transcode.rs):
//!   uridecodebin ─ [cutter] video-transcode.gst ─ appsink ─> SegmentWriter
//!                └ audio-transcode.gst ─────────── appsink ─> SegmentWriter
//! ```
//!
//! Either way each rendition's elementary stream ends in an appsink whose
//! [`segmenter::SegmentWriter`] packetizes it into MPEG-TS ([`ts`]) and cuts
//! it on the item's [`Timeline`]; a [`Throttle`] holds the pipeline back
//! once it runs too far ahead of its viewers. A pipeline that starts past
//! segment 0 seeks to that segment's start, and a probe rewrites each
//! stream's segment so that running time equals media time: segment `n`
//! carries the same timestamps whichever producer made it.

mod events;
pub mod remux;
pub mod segmenter;
mod throttle;
mod transcode;
pub mod ts;
pub mod x264;

pub use events::{event_of, PipelineEvent};
pub use segmenter::{SegmentOutput, StreamKind};
pub use throttle::Throttle;

use crate::config::PipelineTemplates;
use crate::rendition::Plan;
use crate::timeline::Timeline;
use anyhow::anyhow;
use gst::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One rendition a pipeline makes, and where its segments go.
#[derive(Clone)]
pub struct Output {
    /// How the rendition is made.
    pub plan: Plan,
    /// GStreamer stream id of its source stream (from the Discoverer), to
    /// pick it among the file's streams; `None`: the first of its kind.
    pub stream_id: Option<String>,
    /// Where its segments go.
    pub sink: Arc<dyn SegmentOutput>,
}

/// Everything a producer's pipeline is built from.
#[derive(Clone)]
pub struct ProducerSpec {
    /// The media file.
    pub path: PathBuf,
    /// The source video's frame rate (0 when unknown), for the encoder's
    /// key-frame interval and the audio queue.
    pub fps: f64,
    /// The renditions to make; the first drives progress and throttling.
    pub outputs: Vec<Output>,
    /// Where segments start and end.
    pub timeline: Timeline,
    /// The first segment to make; the pipeline seeks to its start.
    pub start_index: usize,
    /// Holds the pipeline back past a media time.
    pub throttle: Arc<Throttle>,
    /// The encode branches.
    pub templates: PipelineTemplates,
    /// The pipeline's name, for logs and debugging.
    pub name: String,
}

/// A built, not yet started pipeline and the handles a producer watches.
pub struct BuiltPipeline {
    /// The pipeline; the caller sets it to `Playing` and later to `Null`.
    pub pipeline: gst::Pipeline,
    /// Media time in nanoseconds reached by the first output's writer.
    pub position_ns: Arc<AtomicU64>,
}

/// The segment writers' appsinks of a pipeline (named `outN`; pads may be
/// linked after it starts): EOS on their pads ends the streams when the
/// source stalls.
pub fn output_sinks(pipeline: &gst::Pipeline) -> Vec<gst::Element> {
    pipeline
        .iterate_sinks()
        .into_iter()
        .flatten()
        .filter(|e| e.name().starts_with("out"))
        .collect()
}

/// Builds the pipeline `spec` describes: the remux path when every
/// rendition is copied, else the transcode path.
///
/// # Errors
/// Fails when an element is missing from this GStreamer installation or an
/// encode description does not parse.
pub fn build(spec: &ProducerSpec) -> anyhow::Result<BuiltPipeline> {
    if spec.outputs.is_empty() {
        return Err(anyhow!("a producer needs at least one rendition"));
    }
    if spec.outputs.iter().all(|o| o.plan.is_copy()) {
        remux::build(spec)
    } else {
        transcode::build(spec)
    }
}

/// Which outputs have a pad linked, and the first pad linked (the seek
/// goes through it).
#[derive(Default)]
struct Linked {
    outputs: Vec<bool>,
    first_pad: Option<gst::Pad>,
}

/// The output `pad` feeds, claiming it: the unlinked output of the pad's
/// kind whose stream id matches, or whose stream id is unknown (then the
/// first pad of its kind). `None`: nobody wants this stream.
fn claim_output(
    linked: &Mutex<Linked>,
    outputs: &[Output],
    is_video: bool,
    stream_id: Option<&str>,
    pad: &gst::Pad,
) -> Option<usize> {
    let mut linked = linked.lock().expect("link state");
    if linked.outputs.len() < outputs.len() {
        linked.outputs.resize(outputs.len(), false);
    }
    let found = outputs.iter().enumerate().position(|(i, o)| {
        !linked.outputs[i]
            && o.plan.is_video() == is_video
            && match (&o.stream_id, stream_id) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            }
    })?;
    linked.outputs[found] = true;
    linked.first_pad.get_or_insert_with(|| pad.clone());
    Some(found)
}

/// Links a stream nobody plays to a `fakesink` of its own.
fn discard_pad(pipeline: &gst::Pipeline, pad: &gst::Pad) -> anyhow::Result<()> {
    let fakesink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()?;
    pipeline.add(&fakesink)?;
    fakesink.sync_state_with_parent()?;
    pad.link(
        &fakesink
            .static_pad("sink")
            .expect("fakesink has a sink pad"),
    )?;
    Ok(())
}

/// Makes running time equal media (stream) time downstream of `pad`: its
/// segment events get `base = time`, whatever a seek did to them.
fn media_time_segments(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        if let Some(gst::PadProbeData::Event(event)) = &mut info.data {
            if let gst::EventView::Segment(e) = event.view() {
                if let Some(segment) = e.segment().downcast_ref::<gst::ClockTime>() {
                    let mut segment = segment.clone();
                    segment.set_base(segment.time());
                    let seqnum = event.seqnum();
                    *event = gst::event::Segment::builder(&segment)
                        .seqnum(seqnum)
                        .build();
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Once `element` has exposed all its pads, seeks to `start` (media time),
/// flushing and accurate, from a thread of its own (a flushing seek must
/// not run on a streaming thread). Until the seek lands, the writers drop
/// what comes before their first segment.
fn seek_when_exposed(
    element: &gst::Element,
    pipeline: &gst::Pipeline,
    linked: Arc<Mutex<Linked>>,
    start: Duration,
) {
    let pipeline = pipeline.downgrade();
    element.connect_no_more_pads(move |_| {
        let pad = linked.lock().expect("link state").first_pad.clone();
        let pipeline = pipeline.clone();
        let spawned = std::thread::Builder::new()
            .name("pipeline-seek".into())
            .spawn(move || {
                let Some(pipeline) = pipeline.upgrade() else {
                    return;
                };
                let seek = gst::event::Seek::new(
                    1.0,
                    gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                    gst::SeekType::Set,
                    gst::ClockTime::from_nseconds(start.as_nanos() as u64),
                    gst::SeekType::None,
                    gst::ClockTime::NONE,
                );
                let done = pad.map(|p| p.send_event(seek)).unwrap_or(false);
                tracing::debug!(start_ms = start.as_millis() as u64, done, "seek");
                if !done {
                    gst::element_error!(
                        pipeline,
                        gst::ResourceError::Seek,
                        ("This file cannot be seeked to {:.1} s", start.as_secs_f64())
                    );
                }
            });
        if spawned.is_err() {
            tracing::error!("could not start a thread to seek");
        }
    });
}
