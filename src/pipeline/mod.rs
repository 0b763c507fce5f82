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
//! it on the item's [`crate::timeline::Timeline`]; a [`Throttle`] holds the pipeline back
//! once it runs too far ahead of its viewers. A pipeline that starts past
//! segment 0 seeks to that segment's start, and a probe rewrites each
//! stream's segment so that running time equals media time: segment `n`
//! carries the same timestamps whichever producer made it.

mod adts;
mod appsink;
pub mod cues;
mod decode_time;
mod events;
pub mod fmp4;
mod lead_in;
mod link;
mod media_time;
mod packager;
pub mod remux;
pub mod scale;
pub mod segmenter;
mod spec;
mod throttle;
pub mod tonemap;
mod transcode;
pub mod ts;
pub mod x264;

/// Registers hlsd's own elements with GStreamer (`hlsdx264enc`,
/// [`x264`]; `hlsdvideoscale`, [`scale`]; `hlsdtonemap`, [`tonemap`]),
/// which the built-in pipeline descriptions name. Later calls do nothing.
///
/// # Errors
/// Names the element that cannot be registered (GStreamer not initialised).
pub fn register_elements() -> anyhow::Result<()> {
    use anyhow::Context;
    x264::register().context("registering hlsdx264enc")?;
    scale::register().context("registering hlsdvideoscale")?;
    tonemap::register().context("registering hlsdtonemap")?;
    Ok(())
}

pub use events::{event_of, PipelineEvent};
pub use link::CopyFormat;
pub use packager::StreamKind;
pub use segmenter::SegmentOutput;
pub use spec::{BuiltPipeline, BurnSource, Output, ProducerSpec, TextTrack};
pub use throttle::Throttle;

use anyhow::anyhow;
use gst::prelude::*;

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
