//! The remux pipeline: a stream copy of H.264 and AAC into segments, with
//! no GStreamer muxer and no thread hand-off.
//!
//! ```text
//! source ─ parsebin ─ video ─ h264parse ─ appsink ─> SegmentWriter (video rendition)
//!                    ├ audio ─ aacparse ─ appsink ─> SegmentWriter (audio rendition)
//!                    └ other tracks ─ fakesink
//! ```
//!
//! `parsebin` has no multiqueue, so the demuxer's streaming thread carries
//! every buffer through the parsers into the appsinks' callbacks, where the
//! writers packetize it ([`super::ts`]) and cut it at the key frames the
//! timeline lists: one thread, buffers in file order. The writers hold that
//! thread at the producer's [`super::Throttle`], so a remux runs no further
//! ahead of its viewers than a transcode. `hlssink2` (splitmuxsink, its
//! queues and `mpegtsmux`'s aggregator thread, one `GstBuffer` per 188-byte
//! packet) took 3.7× ffmpeg's time for the same copy (docs/benchmarks.md,
//! "Earlier measurements").

use super::appsink::writer_sink;
use super::link::{claim_output, copy_format, discard_pad, link_text_pad, packaged, CopyFormat};
use super::media_time::{media_time_segments, Linked, SeekOnce};
use super::packager::StreamKind;
use super::segmenter::SegmentWriter;
use super::spec::{BuiltPipeline, Output, ProducerSpec};
use crate::rendition::Plan;
use anyhow::{anyhow, Context};
use gst::prelude::*;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Builds the remux pipeline of `spec` (every output copied).
///
/// # Errors
/// Fails when the file's URI has no source element or a parser is
/// missing from this GStreamer installation.
pub fn build(spec: &ProducerSpec) -> anyhow::Result<BuiltPipeline> {
    let uri = glib::filename_to_uri(&spec.path, None).context("media path to uri")?;
    let pipeline = gst::Pipeline::with_name(&spec.name);
    // Made from the URI as uridecodebin does, so stream ids match the
    // Discoverer's.
    let src = gst::Element::make_from_uri(gst::URIType::Src, uri.as_str(), Some("source"))
        .context("source for the media file")?;
    crate::library::passes::source_fix::correct_source(&spec.path, &src);
    let parsebin = gst::ElementFactory::make("parsebin")
        .build()
        .context("parsebin")?;
    pipeline.add_many([&src, &parsebin])?;
    src.link(&parsebin)?;
    crate::library::passes::one_codec::keep_first_codec(&parsebin);

    let start = spec.timeline.start(spec.start_index);
    let position = Arc::new(AtomicU64::new(start.as_nanos() as u64));
    let branches = add_outputs(spec, &pipeline, &position)?;

    let linked = Arc::new(Mutex::new(Linked::default()));
    // A copy seeks to the segment before its first (a key frame: a copy's
    // cuts are its key frames) and its writers leave that segment out, so
    // that the first segment it makes is not the first thing after a
    // flush. Parsers treat what follows a flush apart: `h265parse` left
    // out the leading pictures of the open GOP a seek landed on (3 frames,
    // there in a pass from the start), `h264parse` repeated the parameter
    // sets; a segment's bytes then depended on where its producer started.
    let seek_to = spec.timeline.start(spec.start_index.saturating_sub(1));
    let seek = SeekOnce::new(
        seek_to,
        false,
        &pipeline,
        linked.clone(),
        spec.outputs.len(),
    );
    if let Some(seek) = &seek {
        seek.on_no_more_pads(&parsebin);
    }
    let weak = pipeline.downgrade();
    let parsed = Parsed {
        linked,
        outputs: spec.outputs.clone(),
        text_tracks: spec.text_tracks.clone(),
        branches: branches.clone(),
        seek,
    };
    crate::guard::on_pad_added(&parsebin, move |_, pad| {
        if let Some(pipeline) = weak.upgrade() {
            parsed.link(&pipeline, pad);
        }
    });
    // A planned stream that never showed up would leave its sink waiting
    // for ever: end it, so the producer ends too.
    crate::guard::on_no_more_pads(&parsebin, move |_| {
        for pad in &branches {
            if !pad.is_linked() {
                tracing::warn!(pad = %pad.name(), "a planned stream was not found in the file");
                pad.send_event(gst::event::Eos::new());
            }
        }
    });
    Ok(BuiltPipeline {
        pipeline,
        position_ns: position,
    })
}

/// Adds one parser branch and segment writer per output of `spec` to
/// `pipeline`; returns each branch's sink pad, in output order. The first
/// output drives: its writer moves `position`, and its wait at the
/// throttle is "holding".
fn add_outputs(
    spec: &ProducerSpec,
    pipeline: &gst::Pipeline,
    position: &Arc<AtomicU64>,
) -> anyhow::Result<Vec<gst::Pad>> {
    let mut branches = Vec::new();
    for (i, output) in spec.outputs.iter().enumerate() {
        let kind = match output.plan {
            Plan::VideoCopy => StreamKind::Video,
            Plan::AudioCopy { .. } => StreamKind::Audio,
            other => return Err(anyhow!("a remux cannot make {other:?}")),
        };
        let format = copy_format(output)?;
        let branch = gst::parse::bin_from_description(&format.description(), true)
            .with_context(|| format!("the {} parser", output.codec))?;
        let writer = SegmentWriter::new(
            kind,
            spec.timeline.clone(),
            spec.start_index,
            output.sink.clone(),
            if i == 0 {
                position.clone()
            } else {
                Arc::new(AtomicU64::new(0))
            },
            Some((spec.throttle.clone(), i == 0)),
        );
        let sink = writer_sink(&format!("out{i}"), packaged(writer, output));
        pipeline.add_many([branch.upcast_ref::<gst::Element>(), sink.upcast_ref()])?;
        branch.link(&sink)?;
        branches.push(branch.static_pad("sink").expect("ghost sink pad"));
    }
    Ok(branches)
}

/// What links the parsed streams of a remux as parsebin adds them.
struct Parsed {
    linked: Arc<Mutex<Linked>>,
    outputs: Vec<Output>,
    text_tracks: Vec<super::spec::TextTrack>,
    /// Each output's branch sink pad.
    branches: Vec<gst::Pad>,
    seek: Option<Arc<SeekOnce>>,
}

impl Parsed {
    /// Links parsed stream `pad` to the first free output that copies it,
    /// else to its text track's cue collector, else to a fakesink; a
    /// failure is an error on the bus.
    fn link(&self, pipeline: &gst::Pipeline, pad: &gst::Pad) {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let media_type = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        // A parser's pad may not have fixed caps yet: its template lists
        // every format it takes (`ac3parse`: AC-3 first, then E-AC-3).
        let copied = |o: &Output| {
            CopyFormat::of(&o.codec, o.packaging)
                .is_some_and(|f| caps.iter().any(|s| s.name() == f.caps_name))
        };
        let video = self.outputs.iter().any(|o| o.plan.is_video() && copied(o));
        let audio = self.outputs.iter().any(|o| !o.plan.is_video() && copied(o));
        let stream_id = pad.stream_id().map(|s| s.to_string());
        let index = (video || audio)
            .then(|| {
                claim_output(
                    &self.linked,
                    &self.outputs,
                    video,
                    stream_id.as_deref(),
                    pad,
                )
            })
            .flatten();
        tracing::debug!(media_type, ?stream_id, ?index, "parsed pad");
        let result = match index {
            Some(i) => self.link_output(pad, i),
            None => match link_text_pad(pipeline, pad, &self.text_tracks, self.seek.clone()) {
                Ok(true) => Ok(()),
                Ok(false) => discard_pad(pipeline, pad),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            tracing::error!(error = format!("{e:#}"), pad = %pad.name(), "linking a parsed stream failed");
            gst::element_error!(
                pipeline,
                gst::CoreError::Negotiation,
                ("Could not link a stream: {}", e)
            );
        }
    }

    /// Links `pad` to output `i`'s branch, on media time and behind the
    /// seek's gate.
    fn link_output(&self, pad: &gst::Pad, i: usize) -> anyhow::Result<()> {
        media_time_segments(pad, self.seek.clone());
        let linked = pad.link(&self.branches[i]).map(|_| ()).map_err(Into::into);
        if let Some(seek) = &self.seek {
            seek.gate(&self.branches[i]);
            seek.watch(pad, i);
            seek.when_linked();
        }
        linked
    }
}
