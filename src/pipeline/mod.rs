//! Building a session's GStreamer pipeline and reading its bus.
//!
//! ```text
//! uridecodebin (caps: raw + the compressed formats that are copied)
//!   ├─ video ─ h264parse ───────────────────────────────────┐   (copy)
//!   │          queue ─ [deinterlace] ─ [videoflip] ─ video-transcode.gst ─┤ hlssink2 ─> segment_00000.ts ...
//!   ├─ audio ─ aacparse ──────────────────────────────────────┤   (copy)
//!   │          queue ─ audio-transcode.gst ──────────────────┘
//!   └─ other tracks ─ fakesink
//! ```
//!
//! `uridecodebin` stops autoplugging at the caps it is given, so a copied
//! stream arrives parsed but not decoded, and a transcoded one arrives raw.
//! A pure stream copy (H.264 copied, AAC copied or no audio) does not come
//! here: [`remux`] cuts it in the demuxer's thread, with its own TS
//! packetizer ([`ts`]).
//!
//! When the stream that drives the cuts (video, else audio) is encoded
//! here, the cuts follow a fixed [`Grid`] in media time: the encoder is
//! asked for a key frame on the first frame of each segment and
//! `splitmuxsink` is told to split there (`split-at-running-time`). A
//! pipeline may start at any segment of the grid: it seeks there, and a pad
//! rewritten segment base keeps running time equal to media time, so segment `n` carries
//! the same timestamps whichever pipeline made it. A [`Throttle`] on the
//! decoded pads holds the pipeline back once it runs too far ahead of the
//! viewer. Every segment is written to a `.part` file first and renamed by
//! the session once `splitmuxsink` has closed it.

mod events;
pub mod remux;
pub mod ts;
pub mod x264;

pub use events::{event_of, PipelineEvent};

use crate::config::{PipelineTemplates, SEGMENT_SECONDS};
use crate::hls::Grid;
use crate::library::{AudioPlan, MediaItem, VideoPlan};
use anyhow::{anyhow, Context};
use gio::prelude::*;
use gst::prelude::*;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Segment file name pattern handed to `hlssink2` (`location`).
pub const SEGMENT_PATTERN: &str = "segment_%05d.ts";

/// The segment file name for an index, matching [`SEGMENT_PATTERN`].
pub fn segment_name(index: usize) -> String {
    format!("segment_{index:05}.ts")
}

/// The index in `segment_NNNNN.ts`, or `None` for any other name (which
/// also keeps hostile paths out: only these names are ever opened).
pub fn segment_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("segment_")?.strip_suffix(".ts")?;
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segment files being written, oldest first: (the `.part` file, the
/// final name it is renamed to once closed).
pub type OpenSegments = Arc<Mutex<VecDeque<(PathBuf, PathBuf)>>>;

/// A built, not yet started pipeline and the handles a session watches.
pub struct BuiltPipeline {
    /// The pipeline; the caller sets it to `Playing` and later to `Null`.
    pub pipeline: gst::Pipeline,
    /// Media time in nanoseconds reached by the newest buffer that left an
    /// encode or copy branch on the progress stream (video if any, else
    /// audio).
    pub position_ns: Arc<AtomicU64>,
    /// Segments opened by `hlssink2` and not yet closed, in order.
    pub open_segments: OpenSegments,
    /// The sink elements (`hlssink2`, or the remux appsinks): EOS on their
    /// sink pads ends the streams when the source stalls.
    pub sinks: Vec<gst::Element>,
}

/// How a pipeline runs: where it starts, where it cuts, what holds it back.
#[derive(Clone)]
pub struct BuildOptions {
    /// Where cuts fall when the driving stream is encoded here; `None`
    /// when it is copied (cuts then follow the source's key frames, every
    /// [`SEGMENT_SECONDS`] or more, the first after `first_segment`).
    pub grid: Option<Grid>,
    /// First segment length of a copied-video session.
    pub first_segment: Duration,
    /// Segment index the pipeline starts at; with a grid, it seeks to that
    /// segment's start. 0 starts at the beginning.
    pub start_index: usize,
    /// Distinguishes this pipeline's `.part` files from those of an
    /// earlier one of the same session.
    pub generation: u32,
    /// Holds the decoded streams back past a media time.
    pub throttle: Arc<Throttle>,
}

/// Holds a pipeline's decoded streams once they pass a media time limit
/// (throttling), until the limit moves or the throttle is released.
///
/// Waiting happens in the streaming threads, in a pad probe on each decoded
/// stream; nothing is dropped and no state change is needed.
#[derive(Debug)]
pub struct Throttle {
    limit_ns: AtomicU64,
    released: AtomicBool,
    waiting: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Throttle {
    /// A throttle that holds streams past `limit` (`None`: never).
    pub fn new(limit: Option<Duration>) -> Self {
        Throttle {
            limit_ns: AtomicU64::new(limit.map_or(u64::MAX, |l| l.as_nanos() as u64)),
            released: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }

    /// Moves the limit (`None`: no limit) and wakes the held streams.
    pub fn set_limit(&self, limit: Option<Duration>) {
        self.limit_ns.store(
            limit.map_or(u64::MAX, |l| l.as_nanos() as u64),
            Ordering::SeqCst,
        );
        let _guard = self.lock.lock().expect("throttle lock");
        self.cond.notify_all();
    }

    /// Lets everything through from now on (used when stopping).
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        let _guard = self.lock.lock().expect("throttle lock");
        self.cond.notify_all();
    }

    /// Whether a stream is being held right now.
    pub fn is_holding(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    fn holds(&self, t_ns: u64) -> bool {
        !self.released.load(Ordering::SeqCst) && t_ns > self.limit_ns.load(Ordering::SeqCst)
    }

    /// Blocks the calling streaming thread while `t_ns` is past the limit,
    /// or until `pad` is flushing (its pipeline is being stopped).
    /// `counts` says whether this stream's wait makes the throttle
    /// [holding](Self::is_holding): only the stream that drives the cuts
    /// does, since the others may simply have run ahead of it.
    fn wait(&self, t_ns: u64, pad: &gst::Pad, counts: bool) {
        if !self.holds(t_ns) {
            return;
        }
        let mut guard = self.lock.lock().expect("throttle lock");
        if counts {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        while self.holds(t_ns) && !pad.pad_flags().contains(gst::PadFlags::FLUSHING) {
            guard = self
                .cond
                .wait_timeout(guard, Duration::from_millis(200))
                .expect("throttle lock")
                .0;
        }
        if counts {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Caps at which `uridecodebin` stops: every raw and subtitle format (its
/// default) plus the compressed formats this session copies.
fn decodebin_caps(copy_video: bool, copy_audio: bool) -> gst::Caps {
    let mut caps = String::from(
        "video/x-raw(ANY); audio/x-raw(ANY); text/x-raw(ANY); subpicture/x-dvd; \
         subpicture/x-dvb; subpicture/x-pgs; closedcaption/x-cea-608; closedcaption/x-cea-708",
    );
    if copy_video {
        caps.push_str("; video/x-h264");
    }
    if copy_audio {
        caps.push_str("; audio/mpeg, mpegversion=(int){2,4}");
    }
    caps.parse().expect("static caps parse")
}

/// Queues in front of the encoders. Audio waits for an encoder that holds
/// video frames back (x264's lookahead, B-frames and frame threads: about
/// 17 frames at veryfast), so its queue is bounded by time only, to
/// [`audio_queue_time`]; the raw video queue stays short so that memory does
/// not grow with frame size (design.md: the default 1 s queue deadlocked
/// with x264 lookahead). One decoded frame (3.1 MB at 1080p) keeps the
/// decoder and the encoder thread both busy: the bench transcode ran at the
/// same speed with 1 as with 3, and 5-10 % slower with no queue at all.
/// Copied streams get no queue of their own:
/// decodebin's multiqueue and splitmuxsink's queues already decouple them,
/// and each extra queue is one more thread hand-off per buffer.
const RAW_VIDEO_QUEUE: &str = "queue max-size-buffers=1 max-size-bytes=0 max-size-time=0";

/// Media time the audio queue may hold: 5 s, or 60 video frames when that
/// is longer (a slide show at 1 fps: 60 s), which leaves room for an
/// operator's slower x264 settings (medium: 40 frames of lookahead). It was
/// 30 s: decoded stereo is 384 KB a second, so the queue held 11 MB on the
/// bench file (35 MB for 5.1) for nothing (README, "Performance").
fn audio_queue_time(fps: f64) -> Duration {
    let floor = Duration::from_secs(5);
    if fps > 0.0 {
        floor.max(Duration::from_secs_f64(60.0 / fps))
    } else {
        floor
    }
}

/// Which branch a decoded pad gets.
#[derive(Clone)]
struct Plan {
    video: Option<(VideoPlan, Option<String>)>,
    audio: Option<(AudioPlan, Option<String>)>,
    keyint: u32,
    templates: PipelineTemplates,
    /// Where the cuts fall when this pipeline encodes the driving stream.
    grid: Option<Grid>,
    /// Media time the pipeline starts at (the seek target), or zero.
    start: Duration,
    /// Bound of the queue in front of the audio encoder.
    audio_queue: Duration,
}

#[derive(Default)]
struct Linked {
    video: bool,
    audio: bool,
    /// The first planned pad linked: the seek is sent through it.
    first_pad: Option<gst::Pad>,
}

fn branch_description(plan: &Plan, is_video: bool) -> String {
    if is_video {
        match plan.video.as_ref().map(|(p, _)| *p) {
            Some(VideoPlan::Copy) => "h264parse config-interval=-1 ! capsfilter caps=video/x-h264,stream-format=byte-stream,alignment=au".to_string(),
            Some(VideoPlan::Transcode {
                width,
                height,
                deinterlace,
                rotate,
            }) => {
                let mut d = RAW_VIDEO_QUEUE.to_string();
                if deinterlace {
                    d.push_str(" ! videoconvert ! deinterlace");
                }
                if rotate {
                    d.push_str(" ! videoflip video-direction=auto");
                }
                d.push_str(" ! ");
                d.push_str(&plan.templates.video(width, height, plan.keyint));
                d
            }
            None => unreachable!("only called for planned streams"),
        }
    } else {
        match plan.audio.as_ref().map(|(p, _)| *p) {
            Some(AudioPlan::Copy) => "aacparse".to_string(),
            Some(AudioPlan::Transcode) => {
                format!(
                    "queue max-size-buffers=0 max-size-bytes=0 max-size-time={} ! {}",
                    plan.audio_queue.as_nanos(),
                    plan.templates.audio_transcode
                )
            }
            None => unreachable!("only called for planned streams"),
        }
    }
}

/// Builds the pipeline for `item` that writes segments into `dir`, as
/// `options` say.
///
/// # Errors
/// Fails when an element is missing from this GStreamer installation or an
/// encode description does not parse.
pub fn build(
    item: &MediaItem,
    dir: &Path,
    templates: &PipelineTemplates,
    options: &BuildOptions,
) -> anyhow::Result<BuiltPipeline> {
    if remux::handles(item) {
        return remux::build(item, dir, options);
    }
    let decision = &item.decision;
    let uri = glib::filename_to_uri(&item.abs_path, None).context("media path to uri")?;
    let video_stream_id = item.video.as_ref().and_then(|v| v.stream_id.clone());
    let fps = item.video.as_ref().map(|v| v.fps).unwrap_or(0.0);
    let audio = decision
        .audio
        .map(|(i, p)| (p, item.audio.get(i).and_then(|a| a.stream_id.clone())));
    let start = options
        .grid
        .map(|g| g.start(options.start_index))
        .unwrap_or_default();
    let plan = Plan {
        video: decision.video.map(|p| (p, video_stream_id)),
        audio,
        keyint: if fps > 0.0 {
            (fps * SEGMENT_SECONDS as f64).round().max(1.0) as u32
        } else {
            250
        },
        templates: templates.clone(),
        grid: options.grid,
        start,
        audio_queue: audio_queue_time(fps),
    };

    let pipeline = gst::Pipeline::with_name(&format!("session-{}-{}", item.id, options.generation));
    let src = gst::ElementFactory::make("uridecodebin")
        .name("source")
        .property("uri", uri.as_str())
        .property(
            "caps",
            decodebin_caps(
                matches!(plan.video, Some((VideoPlan::Copy, _))),
                matches!(plan.audio, Some((AudioPlan::Copy, _))),
            ),
        )
        .build()
        .context("uridecodebin")?;
    let sink = gst::ElementFactory::make("hlssink2")
        .name("hlssink")
        .property(
            "location",
            dir.join(SEGMENT_PATTERN).to_string_lossy().as_ref(),
        )
        .property(
            "playlist-location",
            dir.join("hlssink2.m3u8").to_string_lossy().as_ref(),
        )
        .property("target-duration", SEGMENT_SECONDS)
        .property("playlist-length", 0u32)
        .property("max-files", 0u32)
        .property("message-forward", true)
        .build()
        .context("hlssink2")?;
    pipeline.add_many([&src, &sink])?;
    let splitmux = splitmuxsink_of(&sink)?;
    splitmux.set_property("start-index", options.start_index as i32);
    let open_segments = OpenSegments::default();
    connect_part_files(
        &sink,
        &splitmux,
        dir,
        options.grid,
        open_segments.clone(),
        options.generation,
    );
    if options.grid.is_some() {
        // Cuts come from split-at-running-time alone (target-duration 0
        // turns off splitmuxsink's own time limit), and key frames from
        // the cutter probe rather than from splitmuxsink's requests.
        sink.set_property("target-duration", 0u32);
        sink.set_property("send-keyframe-requests", false);
    } else if options.first_segment < Duration::from_secs(SEGMENT_SECONDS.into()) {
        shorten_first_segment(&sink, &splitmux, options.first_segment);
    }

    let position_ns = Arc::new(AtomicU64::new(start.as_nanos() as u64));
    let linked = Arc::new(Mutex::new(Linked::default()));
    let progress_on_video = plan.video.is_some();
    let ctx = LinkContext {
        pipeline: pipeline.downgrade(),
        sink: sink.downgrade(),
        splitmux: splitmux.downgrade(),
        plan: plan.clone(),
        linked: linked.clone(),
        position: position_ns.clone(),
        progress_on_video,
        throttle: options.throttle.clone(),
    };
    src.connect_pad_added(move |_, pad| {
        let Some(pipeline) = ctx.pipeline.upgrade() else {
            return;
        };
        if let Err(e) = link_pad(&ctx, pad) {
            // Callbacks never panic: report on the bus and let the session fail.
            tracing::error!(error = format!("{e:#}"), pad = %pad.name(), "linking a decoded stream failed");
            gst::element_error!(
                pipeline,
                gst::CoreError::Negotiation,
                ("Could not link a stream: {}", e)
            );
        }
    });
    if !start.is_zero() {
        seek_when_exposed(&src, &pipeline, linked, start);
    }

    Ok(BuiltPipeline {
        pipeline,
        position_ns,
        open_segments,
        sinks: vec![sink],
    })
}

/// Once `uridecodebin` has exposed all its pads, seeks to `start` (media
/// time), flushing and accurate, from a thread of its own (a flushing seek
/// must not run on a streaming thread). Until the seek lands, the gate
/// probes drop what the decoders produce from the beginning of the file.
fn seek_when_exposed(
    src: &gst::Element,
    pipeline: &gst::Pipeline,
    linked: Arc<Mutex<Linked>>,
    start: Duration,
) {
    let pipeline = pipeline.downgrade();
    src.connect_no_more_pads(move |_| {
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

/// The media time (stream time) of `pts` in the time segment `pad` carries.
fn stream_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    pad.sticky_event::<gst::event::Segment>(0)?
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_stream_time(pts)
}

/// The running time of `pts` in the time segment that `pad` carries.
fn running_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    pad.sticky_event::<gst::event::Segment>(0)?
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_running_time(pts)
}

/// The probe on every decoded stream of a pipeline.
///
/// - Segment events get `base = time`, so that running time downstream
///   equals media (stream) time whatever the seek did: segment `n` then
///   carries the same timestamps whichever pipeline made it.
/// - Buffers are dropped until the seek to `start` has landed (the
///   segment's `time` is still short of it), and when they precede the
///   segment's start.
/// - Then the throttle may hold the buffer.
fn add_gate(pad: &gst::Pad, start: Duration, throttle: Arc<Throttle>, drives_cuts: bool) {
    // Demuxers may round the segment's time to their own clock.
    const SLACK: Duration = Duration::from_millis(2);
    let start_ns = start.saturating_sub(SLACK).as_nanos() as u64;
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
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
                return gst::PadProbeReturn::Ok;
            }
            let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(event) = pad.sticky_event::<gst::event::Segment>(0) else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(segment) = event.segment().downcast_ref::<gst::ClockTime>() else {
                return gst::PadProbeReturn::Ok;
            };
            if start_ns > 0 && segment.time().map_or(0, |t| t.nseconds()) < start_ns {
                return gst::PadProbeReturn::Drop;
            }
            if segment.start().is_some_and(|s| pts < s) {
                return gst::PadProbeReturn::Drop;
            }
            if let Some(t) = segment.to_stream_time(pts) {
                throttle.wait(t.nseconds(), pad, drives_cuts);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Cuts the driving stream on the grid: when its first buffer at or after
/// a segment boundary passes, tells `splitmuxsink` to split there and, for
/// video, asks the encoder for key frames on that frame and on the next.
///
/// `splitmuxsink` closes a segment only once the GOP after it is complete;
/// with one key frame per segment that held every segment back by a whole
/// segment of encoding. A one-frame GOP at the boundary lets it close at
/// once. The cost is one I-frame in place of a P-frame per segment
/// (measured in README, "Performance"). Times here are media times, which
/// the gate probe makes equal to running times downstream.
fn add_cutter(
    pad: &gst::Pad,
    grid: Grid,
    start_index: usize,
    splitmux: &gst::Element,
    video: bool,
) {
    let splitmux = splitmux.downgrade();
    // (index of the next boundary's segment, key frames asked for at it)
    let state = Mutex::new((start_index + 1, 0u8));
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(t) = info
            .buffer()
            .and_then(|b| b.pts())
            .and_then(|pts| stream_time(pad, pts))
        else {
            return gst::PadProbeReturn::Ok;
        };
        let mut state = state.lock().expect("cutter state");
        if state.0 >= grid.len()
            || t < gst::ClockTime::from_nseconds(grid.start(state.0).as_nanos() as u64)
        {
            return gst::PadProbeReturn::Ok;
        }
        if state.1 == 0 {
            let boundary = grid.start(state.0).as_nanos() as u64;
            if let Some(splitmux) = splitmux.upgrade() {
                splitmux.emit_by_name::<()>("split-at-running-time", &[&boundary]);
            }
        }
        state.1 += 1;
        if !video || state.1 == 2 {
            *state = (grid.index_at(t.into()) + 1, 0);
        }
        drop(state);
        if video {
            let event = gst_video::DownstreamForceKeyUnitEvent::builder()
                .running_time(t)
                .all_headers(true)
                .build();
            pad.push_event(event);
        }
        gst::PadProbeReturn::Ok
    });
}

/// `hlssink2`'s `splitmuxsink` child.
fn splitmuxsink_of(sink: &gst::Element) -> anyhow::Result<gst::Element> {
    sink.downcast_ref::<gst::Bin>()
        .ok_or_else(|| anyhow!("hlssink2 is not a bin"))?
        .iterate_elements()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "splitmuxsink"))
        .ok_or_else(|| anyhow!("hlssink2 has no splitmuxsink"))
}

/// Makes the first segment end at `first` instead of after
/// [`SEGMENT_SECONDS`] (copied video): `hlssink2` starts with that target
/// duration and gets the full one back as soon as `splitmuxsink` opens the
/// second segment (`format-location-full` runs before it asks for the next
/// key frame).
fn shorten_first_segment(sink: &gst::Element, splitmux: &gst::Element, first: Duration) {
    sink.set_property("target-duration", first.as_secs().max(1) as u32);
    let sink_weak = sink.downgrade();
    splitmux.connect("format-location-full", false, move |args| {
        let fragment = args[1].get::<u32>().unwrap_or(0);
        if fragment >= 1 {
            if let Some(sink) = sink_weak.upgrade() {
                sink.set_property("target-duration", SEGMENT_SECONDS);
            }
        }
        // No name from here: hlssink2's own handler names the segment.
        Some(None::<String>.to_value())
    });
}

/// Bytes of segment data buffered before a write: `hlssink2`'s
/// `giostreamsink` otherwise writes every 188-byte TS packet with its own
/// `write()` call, which was most of the remux time (see README,
/// "Performance").
const FRAGMENT_WRITE_BUFFER: usize = 1 << 20;

/// Hands `hlssink2` a buffered `.part` file stream for each segment (its
/// `get-fragment-stream` signal) and queues it in `open` with its final
/// name, for the session to rename once the segment is closed. The buffer
/// is flushed when the segment's EOS reaches `giostreamsink`, before
/// `splitmuxsink-fragment-closed`.
///
/// With a grid, the final name comes from the grid index of the segment's
/// first buffer (`format-location-full`), so a segment is named for the
/// media it holds; otherwise from `hlssink2`'s counter.
fn connect_part_files(
    sink: &gst::Element,
    splitmux: &gst::Element,
    dir: &Path,
    grid: Option<Grid>,
    open: OpenSegments,
    generation: u32,
) {
    let grid_index = Arc::new(Mutex::new(None::<usize>));
    if let Some(grid) = grid {
        let grid_index = grid_index.clone();
        splitmux.connect("format-location-full", false, move |args| {
            let t = args[2].get::<gst::Sample>().ok().and_then(|sample| {
                let pts = sample.buffer()?.pts()?;
                sample
                    .segment()?
                    .downcast_ref::<gst::ClockTime>()?
                    .to_stream_time(pts)
            });
            *grid_index.lock().expect("grid index") =
                t.map(|t| grid.index_at(Duration::from_nanos(t.nseconds())));
            Some(None::<String>.to_value())
        });
    }
    let dir = dir.to_path_buf();
    sink.connect("get-fragment-stream", false, move |args| {
        let location = PathBuf::from(args[1].get::<String>().ok()?);
        let final_path = match grid_index.lock().expect("grid index").take() {
            Some(n) => dir.join(segment_name(n)),
            None => location,
        };
        let mut part = final_path.clone().into_os_string();
        part.push(format!(".{generation}.part"));
        let part = PathBuf::from(part);
        let file = gio::File::for_path(&part);
        match file.replace(
            None,
            false,
            gio::FileCreateFlags::REPLACE_DESTINATION,
            gio::Cancellable::NONE,
        ) {
            Ok(stream) => {
                open.lock()
                    .expect("open segments")
                    .push_back((part, final_path));
                let buffered = gio::BufferedOutputStream::builder()
                    .base_stream(&stream)
                    .buffer_size(FRAGMENT_WRITE_BUFFER as u32)
                    .build();
                Some(buffered.upcast::<gio::OutputStream>().to_value())
            }
            Err(e) => {
                // hlssink2 posts an OPEN_WRITE error when it gets no stream.
                tracing::error!(location = %part.display(), error = %e, "cannot create segment file");
                None
            }
        }
    });
}

/// What the `pad-added` handler needs.
struct LinkContext {
    pipeline: glib::WeakRef<gst::Pipeline>,
    sink: glib::WeakRef<gst::Element>,
    splitmux: glib::WeakRef<gst::Element>,
    plan: Plan,
    linked: Arc<Mutex<Linked>>,
    position: Arc<AtomicU64>,
    progress_on_video: bool,
    throttle: Arc<Throttle>,
}

/// Whether `pad` is the planned stream of its kind, claiming it if so:
/// matched by stream id when the Discoverer gave one (`Some(Some(id))`),
/// else the first of its kind (`Some(None)`); `None`: nothing of this
/// kind is planned. The first pad claimed is kept for the seek.
fn take_planned(
    linked: &Mutex<Linked>,
    is_video: bool,
    planned_id: Option<Option<&str>>,
    stream_id: Option<&str>,
    pad: &gst::Pad,
) -> bool {
    let mut linked = linked.lock().expect("link state");
    let done = if is_video { linked.video } else { linked.audio };
    let take = match planned_id {
        Some(Some(id)) => !done && stream_id == Some(id),
        Some(None) => !done,
        None => false,
    };
    if take {
        if is_video {
            linked.video = true;
        } else {
            linked.audio = true;
        }
        linked.first_pad.get_or_insert_with(|| pad.clone());
    }
    take
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

fn link_pad(ctx: &LinkContext, pad: &gst::Pad) -> anyhow::Result<()> {
    let (Some(pipeline), Some(sink), Some(splitmux)) = (
        ctx.pipeline.upgrade(),
        ctx.sink.upgrade(),
        ctx.splitmux.upgrade(),
    ) else {
        return Ok(());
    };
    let plan = &ctx.plan;
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let media_type = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let stream_id = pad.stream_id().map(|s| s.to_string());
    let is_video = media_type.starts_with("video/");
    let is_audio = media_type.starts_with("audio/");

    let planned_id = if is_video {
        plan.video.as_ref().map(|(_, id)| id.as_deref())
    } else if is_audio {
        plan.audio.as_ref().map(|(_, id)| id.as_deref())
    } else {
        None
    };
    let wanted = take_planned(&ctx.linked, is_video, planned_id, stream_id.as_deref(), pad);
    tracing::debug!(media_type, ?stream_id, wanted, "decoded pad");
    if !wanted {
        return discard_pad(&pipeline, pad);
    }

    let description = branch_description(plan, is_video);
    let branch = gst::parse::bin_from_description(&description, true)
        .with_context(|| format!("parsing branch: {description}"))?;
    pipeline.add(&branch)?;
    let branch_src = branch
        .static_pad("src")
        .ok_or_else(|| anyhow!("branch has no src pad"))?;
    let sink_pad = sink
        .request_pad_simple(if is_video { "video" } else { "audio" })
        .ok_or_else(|| anyhow!("hlssink2 refused a {media_type} pad"))?;
    branch_src.link(&sink_pad)?;
    branch.sync_state_with_parent()?;
    let drives_cuts = is_video || plan.video.is_none();
    add_gate(pad, plan.start, ctx.throttle.clone(), drives_cuts);
    if let (Some(grid), true) = (plan.grid, drives_cuts) {
        add_cutter(pad, grid, grid.index_at(plan.start), &splitmux, is_video);
    }
    pad.link(
        &branch
            .static_pad("sink")
            .ok_or_else(|| anyhow!("branch has no sink pad"))?,
    )?;

    if is_video == ctx.progress_on_video {
        let position = ctx.position.clone();
        branch_src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let end = info
                .buffer()
                .and_then(|b| Some(b.pts()? + b.duration().unwrap_or_default()));
            if let Some(rt) = end.and_then(|end| running_time(pad, end)) {
                position.fetch_max(rt.nseconds(), Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
    }
    Ok(())
}
