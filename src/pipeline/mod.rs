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

mod events;

pub use events::{event_of, PipelineEvent};

use crate::config::{PipelineTemplates, SEGMENT_SECONDS};
use crate::library::{AudioPlan, MediaItem, VideoPlan};
use anyhow::{anyhow, Context};
use gio::prelude::*;
use gst::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Segment file name pattern handed to `hlssink2` (`location`).
pub const SEGMENT_PATTERN: &str = "segment_%05d.ts";

/// The segment file name for an index, matching [`SEGMENT_PATTERN`].
pub fn segment_name(index: usize) -> String {
    format!("segment_{index:05}.ts")
}

/// A built, not yet started pipeline and the handles a session watches.
pub struct BuiltPipeline {
    /// The pipeline; the caller sets it to `Playing` and later to `Null`.
    pub pipeline: gst::Pipeline,
    /// Running time in nanoseconds of the newest buffer that reached
    /// `hlssink2` on the progress stream (video if any, else audio).
    pub position_ns: Arc<AtomicU64>,
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

/// Queues in front of the encoders (times in nanoseconds of media): audio
/// may wait a long time for an encoder that holds video frames back (x264
/// lookahead), so its queue is bounded by time only and generously; the raw
/// video queue stays short so that memory does not grow with frame size
/// (design.md: the default 1 s queue deadlocked with x264 lookahead).
/// Copied streams get no queue of their own: decodebin's multiqueue and
/// splitmuxsink's queues already decouple them, and each extra queue is one
/// more thread hand-off per buffer.
const AUDIO_QUEUE: &str = "queue max-size-buffers=0 max-size-bytes=0 max-size-time=30000000000";
const RAW_VIDEO_QUEUE: &str = "queue max-size-buffers=3 max-size-bytes=0 max-size-time=0";

/// Which branch a decoded pad gets.
#[derive(Clone)]
struct Plan {
    video: Option<(VideoPlan, Option<String>)>,
    audio: Option<(AudioPlan, Option<String>)>,
    keyint: u32,
    templates: PipelineTemplates,
    /// Where the first segment ends (later ones every SEGMENT_SECONDS).
    first_segment: Duration,
}

#[derive(Default)]
struct Linked {
    video: bool,
    audio: bool,
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
                format!("{AUDIO_QUEUE} ! {}", plan.templates.audio_transcode)
            }
            None => unreachable!("only called for planned streams"),
        }
    }
}

/// Builds the pipeline for `item` that writes segments into `dir`.
///
/// # Errors
/// Fails when an element is missing from this GStreamer installation or an
/// encode description does not parse.
pub fn build(
    item: &MediaItem,
    dir: &Path,
    templates: &PipelineTemplates,
    first_segment: Duration,
) -> anyhow::Result<BuiltPipeline> {
    let decision = &item.decision;
    let uri = glib::filename_to_uri(&item.abs_path, None).context("media path to uri")?;
    let video_stream_id = item.video.as_ref().and_then(|v| v.stream_id.clone());
    let fps = item.video.as_ref().map(|v| v.fps).unwrap_or(0.0);
    let audio = decision
        .audio
        .map(|(i, p)| (p, item.audio.get(i).and_then(|a| a.stream_id.clone())));
    let plan = Plan {
        video: decision.video.map(|p| (p, video_stream_id)),
        audio,
        keyint: if fps > 0.0 {
            (fps * SEGMENT_SECONDS as f64).round().max(1.0) as u32
        } else {
            250
        },
        templates: templates.clone(),
        first_segment: first_segment.min(Duration::from_secs(SEGMENT_SECONDS.into())),
    };

    let pipeline = gst::Pipeline::with_name(&format!("session-{}", item.id));
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
    connect_buffered_fragments(&sink);
    if plan.first_segment < Duration::from_secs(SEGMENT_SECONDS.into()) {
        shorten_first_segment(&sink, plan.first_segment)?;
    }

    let position_ns = Arc::new(AtomicU64::new(0));
    let linked = Arc::new(Mutex::new(Linked::default()));
    let progress_on_video = plan.video.is_some();
    let pipeline_weak = pipeline.downgrade();
    let sink_weak = sink.downgrade();
    let position = position_ns.clone();
    src.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(sink)) = (pipeline_weak.upgrade(), sink_weak.upgrade()) else {
            return;
        };
        if let Err(e) = link_pad(
            &pipeline,
            &sink,
            pad,
            &plan,
            &linked,
            &position,
            progress_on_video,
        ) {
            // Callbacks never panic: report on the bus and let the session fail.
            tracing::error!(error = format!("{e:#}"), pad = %pad.name(), "linking a decoded stream failed");
            gst::element_error!(
                pipeline,
                gst::CoreError::Negotiation,
                ("Could not link a stream: {}", e)
            );
        }
    });

    Ok(BuiltPipeline {
        pipeline,
        position_ns,
    })
}

/// The running time of `pts` in the time segment that `pad` carries.
fn running_time(pad: &gst::Pad, pts: gst::ClockTime) -> Option<gst::ClockTime> {
    pad.sticky_event::<gst::event::Segment>(0)?
        .segment()
        .downcast_ref::<gst::ClockTime>()?
        .to_running_time(pts)
}

/// Asks the encoder for key frames on the first frame at or after each
/// segment boundary and on the frame after it. Boundaries are at `first`,
/// then every [`SEGMENT_SECONDS`].
///
/// `splitmuxsink`, inside `hlssink2`, closes a segment only once the GOP
/// that follows it is complete; with one key frame per 6 s segment that
/// held every segment back by a whole segment of encoding (segment 0 came
/// out when the encoder reached 11.6 s of media). A one-frame GOP at the
/// boundary lets it close at once. The cost is one I-frame in place of a
/// P-frame per segment (measured in README, "Performance").
fn add_early_close_keyframes(pad: &gst::Pad, first: Duration) {
    let first_ns = first.as_nanos() as u64;
    let segment_ns = u64::from(SEGMENT_SECONDS) * 1_000_000_000;
    // (next boundary in ns, key frames asked for at it so far)
    let state = Mutex::new((first_ns, 0u8));
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(rt) = info
            .buffer()
            .and_then(|b| b.pts())
            .and_then(|pts| running_time(pad, pts))
        else {
            return gst::PadProbeReturn::Ok;
        };
        {
            let mut state = state.lock().expect("keyframe state");
            if rt.nseconds() < state.0 {
                return gst::PadProbeReturn::Ok;
            }
            state.1 += 1;
            if state.1 == 2 {
                let past = rt.nseconds().saturating_sub(first_ns) / segment_ns;
                *state = (first_ns + (past + 1) * segment_ns, 0);
            }
        }
        let event = gst_video::DownstreamForceKeyUnitEvent::builder()
            .running_time(rt)
            .all_headers(true)
            .build();
        pad.push_event(event);
        gst::PadProbeReturn::Ok
    });
}

/// Makes the first segment end at `first` instead of after
/// [`SEGMENT_SECONDS`]: `hlssink2` starts with that target duration and
/// gets the full one back as soon as `splitmuxsink` opens the second
/// segment (`format-location-full` runs before it asks for the next key
/// frame).
fn shorten_first_segment(sink: &gst::Element, first: Duration) -> anyhow::Result<()> {
    let bin = sink
        .downcast_ref::<gst::Bin>()
        .ok_or_else(|| anyhow!("hlssink2 is not a bin"))?;
    let splitmux = bin
        .iterate_elements()
        .into_iter()
        .flatten()
        .find(|e| e.factory().is_some_and(|f| f.name() == "splitmuxsink"))
        .ok_or_else(|| anyhow!("hlssink2 has no splitmuxsink"))?;
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
    Ok(())
}

/// Bytes of segment data buffered before a write: `hlssink2`'s
/// `giostreamsink` otherwise writes every 188-byte TS packet with its own
/// `write()` call, which was most of the remux time (see README,
/// "Performance").
const FRAGMENT_WRITE_BUFFER: usize = 1 << 20;

/// Hands `hlssink2` a buffered file stream for each segment (its
/// `get-fragment-stream` signal). The buffer is flushed when the segment's
/// EOS reaches `giostreamsink`, before `splitmuxsink-fragment-closed`.
fn connect_buffered_fragments(sink: &gst::Element) {
    sink.connect("get-fragment-stream", false, |args| {
        let location = args[1].get::<String>().ok()?;
        let file = gio::File::for_path(&location);
        match file.replace(
            None,
            false,
            gio::FileCreateFlags::REPLACE_DESTINATION,
            gio::Cancellable::NONE,
        ) {
            Ok(stream) => {
                let buffered = gio::BufferedOutputStream::builder()
                    .base_stream(&stream)
                    .buffer_size(FRAGMENT_WRITE_BUFFER as u32)
                    .build();
                Some(buffered.upcast::<gio::OutputStream>().to_value())
            }
            Err(e) => {
                // hlssink2 posts an OPEN_WRITE error when it gets no stream.
                tracing::error!(location, error = %e, "cannot create segment file");
                None
            }
        }
    });
}

fn link_pad(
    pipeline: &gst::Pipeline,
    sink: &gst::Element,
    pad: &gst::Pad,
    plan: &Plan,
    linked: &Mutex<Linked>,
    position: &Arc<AtomicU64>,
    progress_on_video: bool,
) -> anyhow::Result<()> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let media_type = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let stream_id = pad.stream_id().map(|s| s.to_string());
    let is_video = media_type.starts_with("video/");
    let is_audio = media_type.starts_with("audio/");

    // Take the planned stream: matched by stream id when the Discoverer gave
    // one, else the first of its kind.
    let wanted = {
        let mut linked = linked.lock().expect("link state");
        let (planned, done) = if is_video {
            (plan.video.as_ref().map(|(_, id)| id), &mut linked.video)
        } else if is_audio {
            (plan.audio.as_ref().map(|(_, id)| id), &mut linked.audio)
        } else {
            (None, &mut false)
        };
        let take = match planned {
            Some(Some(id)) => !*done && stream_id.as_deref() == Some(id.as_str()),
            Some(None) => !*done,
            None => false,
        };
        if take {
            *done = true;
        }
        take
    };
    tracing::debug!(media_type, ?stream_id, wanted, "decoded pad");

    if !wanted {
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
        return Ok(());
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
    pad.link(
        &branch
            .static_pad("sink")
            .ok_or_else(|| anyhow!("branch has no sink pad"))?,
    )?;

    if is_video && matches!(plan.video, Some((VideoPlan::Transcode { .. }, _))) {
        add_early_close_keyframes(pad, plan.first_segment);
    }
    if is_video == progress_on_video {
        let position = position.clone();
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
