//! What a producer's pipeline is built from ([`ProducerSpec`]): the
//! renditions it makes and where their segments go, the text tracks it
//! collects cues of, the image track it burns in; and what building gives
//! back ([`BuiltPipeline`]).

use super::cues::CueSink;
use super::segmenter::SegmentOutput;
use super::throttle::Throttle;
use crate::config::PipelineTemplates;
use crate::packaging::Packaging;
use crate::rendition::Plan;
use crate::timeline::Timeline;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

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
    /// The source video's Dolby Vision record, which a copy's fMP4 sample
    /// entry carries on.
    pub dolby_vision: Option<crate::container::dolby_vision::DolbyVision>,
    /// GStreamer stream id of its source stream (from the Discoverer), to
    /// pick it among the file's streams; `None`: the first of its kind.
    pub stream_id: Option<String>,
    /// Whether its source stream is the file's only one of its kind (the
    /// probe's count): then a pad without a stream id is it.
    pub sole_of_kind: bool,
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
    pub sink: CueSink,
    /// Set once its pad is linked: only then are its cues being collected.
    pub linked: Arc<std::sync::atomic::AtomicBool>,
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
