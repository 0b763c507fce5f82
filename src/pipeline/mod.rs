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
pub mod cues;
mod decode_time;
mod events;
pub mod fmp4;
mod packager;
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
use crate::packaging::Packaging;
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

/// Makes running time equal media time downstream of `pad`, the same
/// whichever producer made a segment.
///
/// Media time is the running time of a pipeline that did not seek (what
/// the key-frame index records): each segment event gets `base = start -
/// offset` and `time = base`, where `offset` (`start - base`, in the
/// demuxer's timestamp domain) is taken from the segments seen until the
/// pipeline's seek is sent (`seek`), then frozen; a pad whose first
/// segment comes after the seek takes the offset another pad had before
/// it (its own first segment already speaks of the seek). A producer that
/// starts at segment 0 sees the demuxer's running time unchanged; one that
/// seeks keeps the same mapping, because demuxers do not keep either time
/// across a seek alike: after seeking an ffmpeg-made MPEG-TS file,
/// `tsdemux`'s times were 0.78 s (its first PCR against its first PTS) off
/// a pass from the start, and every segment a seeking producer made came
/// that far off its place.
///
/// Returns the pad's current segment as rewritten (the pad's own sticky
/// event keeps the demuxer's), for probes on the same pad that need media
/// times.
fn media_time_segments(pad: &gst::Pad, seek: Option<Arc<SeekOnce>>) -> MediaSegment {
    let current = MediaSegment::default();
    let shared = current.clone();
    let offset = Mutex::new(None::<i128>);
    crate::guard::probe(pad, gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(event)) = &mut info.data {
            if let gst::EventView::Segment(e) = event.view() {
                if let Some(segment) = e.segment().downcast_ref::<gst::ClockTime>() {
                    let ns = |t: Option<gst::ClockTime>| i128::from(t.map_or(0, |t| t.nseconds()));
                    let (start, base) = (ns(segment.start()), ns(segment.base()));
                    let frozen = seek.as_ref().is_some_and(|s| s.is_sent());
                    let mut offset = offset.lock().expect("segment offset");
                    if !frozen {
                        *offset = Some(start - base);
                        if let Some(seek) = &seek {
                            seek.note_offset(start - base);
                        }
                    } else if offset.is_none() {
                        *offset = Some(seek.as_ref().and_then(|s| s.offset()).unwrap_or(0));
                    }
                    let media = (start - offset.unwrap_or(0)).max(0);
                    tracing::trace!(start = ?segment.start(), time = ?segment.time(), base = ?segment.base(), frozen, media_ns = media as u64, "segment");
                    let media = gst::ClockTime::from_nseconds(u64::try_from(media).unwrap_or(0));
                    let mut segment = segment.clone();
                    segment.set_time(media);
                    segment.set_base(media);
                    *shared.lock().expect("media segment") = Some(segment.clone());
                    let seqnum = event.seqnum();
                    *event = gst::event::Segment::builder(&segment)
                        .seqnum(seqnum)
                        .build();
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
    current
}

/// Buffers every output waits for before a pipeline seeks (see
/// [`SeekOnce`]): by the third, demuxers have told each pad where its
/// stream starts.
const SETTLED_BUFFERS: u8 = 3;

/// How long after `no-more-pads` a pipeline seeks even though an output
/// has not had [`SETTLED_BUFFERS`] buffers.
const NO_MORE_PADS_GRACE: Duration = Duration::from_secs(1);

/// A pad's segment with media time (see [`media_time_segments`]).
type MediaSegment = Arc<Mutex<Option<gst::FormattedSegment<gst::ClockTime>>>>;

/// The media time of `pts` in `segment`, if it lies in it.
fn media_time(segment: &MediaSegment, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    segment
        .lock()
        .expect("media segment")
        .as_ref()?
        .to_stream_time(pts)
}

/// The seek of a pipeline that starts past segment 0: sent once, as soon
/// as every output has its pad and [`SETTLED_BUFFERS`] buffers have come
/// through each (or the source says it has exposed all its pads;
/// `parsebin` was seen never to say so), from a thread of its own (a
/// flushing seek must not run on a streaming thread). Flushing and
/// accurate, to `start` in media time. Until it lands, the writers drop
/// what comes before their first segment.
///
/// Waiting for data on every output matters: `matroskademux` takes its
/// stream's start time from the earliest block it has read, and tells
/// each pad with a new segment before that pad's next buffer. A seek sent
/// before any block made it take the first block after the seek for the
/// start (stream time off by the whole seek: 0.089 s for 7192.788 s); one
/// sent before the video pad had its second segment (the audio's first
/// block was 21 ms earlier) left that pad's media time 21 ms off, and the
/// writer waited for the next key frame, 2 s late.
///
/// A transcode's seek (`shifted`) goes to `start` plus the offset its pads
/// had before the seek (their demuxer's first timestamp, 0.56 s in an SVCD
/// file): otherwise it lands that much before `start` in media time, and
/// its gate, which waits for a segment at or past the seek, never opened.
/// Remuxes and cue reads seek to `start` in the demuxer's time, which is
/// at or before it in media time: their writers drop what comes before.
struct SeekOnce {
    start: Duration,
    shifted: bool,
    pipeline: glib::WeakRef<gst::Pipeline>,
    linked: Arc<Mutex<Linked>>,
    outputs: usize,
    /// Buffers each output has had, up to [`SETTLED_BUFFERS`].
    flowing: Mutex<Vec<u8>>,
    /// Set once the seek is sent.
    sent: std::sync::atomic::AtomicBool,
    /// The first offset any pad had before the seek, for pads whose first
    /// segment comes after it (see [`media_time_segments`]).
    offset: Mutex<Option<i128>>,
}

impl SeekOnce {
    /// A seek to `start` for `pipeline`, once its `outputs` are linked,
    /// in media time when `shifted`; `None` when it starts at zero
    /// (nothing to seek).
    fn new(
        start: Duration,
        shifted: bool,
        pipeline: &gst::Pipeline,
        linked: Arc<Mutex<Linked>>,
        outputs: usize,
    ) -> Option<Arc<SeekOnce>> {
        (!start.is_zero()).then(|| {
            Arc::new(SeekOnce {
                start,
                shifted,
                pipeline: pipeline.downgrade(),
                linked,
                outputs,
                flowing: Mutex::new(vec![0; outputs]),
                sent: std::sync::atomic::AtomicBool::new(false),
                offset: Mutex::new(None),
            })
        })
    }

    /// Whether the seek is sent.
    fn is_sent(&self) -> bool {
        self.sent.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Records a pad's offset before the seek; the first one is kept.
    fn note_offset(&self, offset: i128) {
        self.offset
            .lock()
            .expect("seek offset")
            .get_or_insert(offset);
    }

    /// The first offset a pad had before the seek.
    fn offset(&self) -> Option<i128> {
        *self.offset.lock().expect("seek offset")
    }

    /// Seeks now if every output is linked and has had a buffer.
    fn when_linked(&self) {
        let all = {
            let linked = self.linked.lock().expect("link state");
            linked.outputs.iter().filter(|l| **l).count() >= self.outputs
        };
        let flowing = self
            .flowing
            .lock()
            .expect("flowing")
            .iter()
            .all(|f| *f >= SETTLED_BUFFERS);
        if all && flowing {
            self.fire();
        }
    }

    /// Counts the buffers of `pad`, the source pad of output `index`, up
    /// to [`SETTLED_BUFFERS`].
    fn watch(self: &Arc<Self>, pad: &gst::Pad, index: usize) {
        let me = self.clone();
        crate::guard::probe(pad, gst::PadProbeType::BUFFER, move |_, _| {
            let done = {
                let mut flowing = me.flowing.lock().expect("flowing");
                match flowing.get_mut(index) {
                    Some(f) => {
                        *f = f.saturating_add(1);
                        *f >= SETTLED_BUFFERS
                    }
                    None => true,
                }
            };
            me.when_linked();
            if done {
                gst::PadProbeReturn::Remove
            } else {
                gst::PadProbeReturn::Ok
            }
        });
    }

    /// Seeks now (once), through the first pad linked.
    fn fire(&self) {
        if self.sent.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let pad = self.linked.lock().expect("link state").first_pad.clone();
        let pipeline = self.pipeline.clone();
        let offset = match self.shifted {
            true => u64::try_from(self.offset().unwrap_or(0).max(0)).unwrap_or(0),
            false => 0,
        };
        let start = self.start + Duration::from_nanos(offset);
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
    }

    /// Also seeks [`NO_MORE_PADS_GRACE`] after `element` says it has
    /// exposed all its pads, should an output have too few buffers by
    /// then (a stream that starts late) to seek on them.
    fn on_no_more_pads(self: &Arc<Self>, element: &gst::Element) {
        let me = Arc::downgrade(self);
        crate::guard::on_no_more_pads(element, move |_| {
            let me = me.clone();
            let spawned = std::thread::Builder::new()
                .name("pipeline-seek-grace".into())
                .spawn(move || {
                    std::thread::sleep(NO_MORE_PADS_GRACE);
                    if let Some(me) = me.upgrade() {
                        if !me.is_sent() {
                            tracing::debug!("an output is still short of buffers: seeking anyway");
                        }
                        me.fire();
                    }
                });
            if spawned.is_err() {
                tracing::error!("could not start a thread to seek");
            }
        });
    }
}
