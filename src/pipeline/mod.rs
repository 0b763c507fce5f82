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

mod adts;
mod appsink;
pub mod cues;
mod decode_time;
mod events;
pub mod fmp4;
mod lead_in;
mod media_time;
mod one_codec;
mod packager;
pub mod remux;
pub mod segmenter;
mod throttle;
mod transcode;
pub mod ts;
pub mod x264;

pub use events::{event_of, PipelineEvent};
pub use packager::StreamKind;
pub use segmenter::SegmentOutput;
pub use throttle::Throttle;

use media_time::{media_time, media_time_segments, MediaSegment, SeekOnce};

use crate::config::PipelineTemplates;
use crate::packaging::Packaging;
use crate::rendition::Plan;
use crate::timeline::Timeline;
use anyhow::anyhow;
use gst::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// One rendition a pipeline makes, and where its segments go.
#[derive(Clone)]
pub struct Output {
    /// How the rendition is made.
    pub plan: Plan,
    /// The source stream's codec (hlsd's short name), which picks a
    /// copy's parser.
    pub codec: String,
    /// The segment container.
    pub packaging: Packaging,
    /// Clockwise rotation (degrees) a copied video declares in fMP4.
    pub rotation: u32,
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
    /// The image subtitle track to burn into the encoded video, if any.
    pub burn: Option<BurnSource>,
    /// Text subtitle tracks whose cues this pipeline hands over as it
    /// reads the file (no second pass for them).
    pub text_tracks: Vec<TextTrack>,
}

/// A text subtitle track a producer collects cues of.
#[derive(Clone)]
pub struct TextTrack {
    /// Its GStreamer stream id.
    pub stream_id: String,
    /// Where its cues go.
    pub sink: cues::CueSink,
    /// Set once its pad is linked: only then are its cues being collected.
    pub linked: Arc<std::sync::atomic::AtomicBool>,
}

/// Links `pad` to a cue sink if it carries one of `tracks` (a text track
/// the producer collects); whether it did.
///
/// # Errors
/// The link or the sink's state change failed.
fn link_text_pad(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    tracks: &[TextTrack],
    seek: Option<Arc<SeekOnce>>,
) -> anyhow::Result<bool> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let id = pad.stream_id();
    let Some(track) = tracks
        .iter()
        .find(|t| cues::is_text(&caps) && id.as_deref() == Some(t.stream_id.as_str()))
    else {
        return Ok(false);
    };
    media_time_segments(pad, seek);
    let sink = cues::cue_sink(track.sink.clone());
    pipeline.add(&sink)?;
    sink.sync_state_with_parent()?;
    pad.link(&sink.static_pad("sink").expect("appsink has a sink pad"))?;
    track
        .linked
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(true)
}

/// An image subtitle track to burn in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurnSource {
    /// Its GStreamer stream id.
    pub stream_id: String,
    /// Its codec ([`crate::library::SubtitleStream::codec`]): `pgs` and
    /// `dvdsub` are drawn by `dvdspu`, `dvbsub` by `dvbsuboverlay`.
    pub codec: String,
}

impl BurnSource {
    /// The overlay element and its sub-picture sink pad for this codec.
    pub fn overlay(&self) -> (&'static str, &'static str) {
        match self.codec.as_str() {
            "dvbsub" => ("dvbsuboverlay", "text_sink"),
            _ => ("dvdspu", "subpicture"),
        }
    }
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

/// How a copied stream reaches its writer: the caps the demuxer gives it
/// (where `uridecodebin` stops), its parser, and the caps the writer takes
/// in `packaging` (ISOBMFF's formats for fMP4: length-prefixed NAL units,
/// raw AAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyFormat {
    /// The demuxed stream's caps name.
    pub caps_name: &'static str,
    /// The parser element and its properties.
    pub parser: &'static str,
    /// The caps between the parser and the writer.
    pub out: &'static str,
}

impl CopyFormat {
    /// The copy of a `codec` stream into `packaging`, if hlsd writes one.
    pub fn of(codec: &str, packaging: Packaging) -> Option<CopyFormat> {
        let ts = packaging == Packaging::Ts;
        let f = |caps_name, parser, out| {
            Some(CopyFormat {
                caps_name,
                parser,
                out,
            })
        };
        match codec {
            "h264" if ts => f(
                "video/x-h264",
                "h264parse config-interval=-1",
                "video/x-h264,stream-format=byte-stream,alignment=au",
            ),
            "h264" => f(
                "video/x-h264",
                "h264parse",
                "video/x-h264,stream-format=avc,alignment=au",
            ),
            "aac" if ts => f("audio/mpeg", "aacparse", "audio/mpeg,stream-format=adts"),
            "aac" => f("audio/mpeg", "aacparse", "audio/mpeg,stream-format=raw"),
            _ if ts => None,
            "hevc" => f(
                "video/x-h265",
                "h265parse",
                "video/x-h265,stream-format=hvc1,alignment=au",
            ),
            "av1" => f(
                "video/x-av1",
                "av1parse",
                "video/x-av1,stream-format=obu-stream,alignment=tu",
            ),
            "vp9" => f("video/x-vp9", "vp9parse", "video/x-vp9"),
            "opus" => f("audio/x-opus", "opusparse", "audio/x-opus"),
            "flac" => f("audio/x-flac", "flacparse", "audio/x-flac"),
            "ac3" => f(
                "audio/x-ac3",
                "ac3parse",
                "audio/x-ac3,framed=(boolean)true,alignment=(string)frame",
            ),
            "eac3" => f(
                "audio/x-eac3",
                "ac3parse",
                "audio/x-eac3,framed=(boolean)true,alignment=(string)frame",
            ),
            _ => None,
        }
    }

    /// The branch from the demuxed pad to the writer's appsink, as a
    /// gst-launch description.
    pub fn description(&self) -> String {
        format!("{} ! capsfilter caps={}", self.parser, self.out)
    }
}

/// The copy format of `output`.
///
/// # Errors
/// Its codec has none in its packaging.
fn copy_format(output: &Output) -> anyhow::Result<CopyFormat> {
    CopyFormat::of(&output.codec, output.packaging).ok_or_else(|| {
        anyhow!(
            "{} cannot be copied into {}",
            output.codec,
            output.packaging.as_str()
        )
    })
}

/// `writer`, as `output` asks: fMP4 for a fragmented-MP4 rendition.
fn packaged(writer: segmenter::SegmentWriter, output: &Output) -> segmenter::SegmentWriter {
    match output.packaging {
        Packaging::Ts => writer,
        Packaging::Fmp4 => writer.fmp4(if output.plan == Plan::VideoCopy {
            output.rotation
        } else {
            0
        }),
    }
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
