//! The transcode pipeline: at least one rendition decoded and encoded.
//!
//! ```text
//! uridecodebin (caps: raw + the compressed formats that are copied)
//!   ├─ video ─ h264parse ─────────────────────────────────────────── appsink (copy)
//!   │          [gate, cutter] queue ─ [deinterlace] ─ [videoflip] ─ video-transcode.gst ─ appsink
//!   ├─ audio ─ aacparse ─────────────────────────────────────────── appsink (copy)
//!   │          [gate] queue ─ audio-transcode.gst ─ aacparse ────── appsink
//!   └─ other tracks ─ fakesink
//! ```
//!
//! `uridecodebin` stops autoplugging at the caps it is given, so a copied
//! stream arrives parsed but not decoded, and an encoded one arrives raw.
//! On the stream that drives the cuts (the first output), the gate probe
//! holds buffers at the [`Throttle`], and for encoded video the cutter asks
//! the encoder for a key frame on the first frame at or after each cut of
//! the timeline, where the segment writer then cuts.

use super::appsink::writer_sink;
use super::link::{claim_output, copy_format, discard_pad, link_text_pad, packaged, CopyFormat};
use super::media_time::{media_time, media_time_segments, Linked, MediaSegment, SeekOnce};
use super::packager::StreamKind;
use super::segmenter::SegmentWriter;
use super::spec::{BuiltPipeline, BurnSource, Output, ProducerSpec};
use super::throttle::Throttle;
use crate::config::PipelineTemplates;
use crate::packaging::Packaging;
use crate::rendition::Plan;
use crate::timeline::{Timeline, SEGMENT_SECONDS};
use anyhow::{anyhow, Context};
use gst::prelude::*;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Caps at which `uridecodebin` stops: every raw and subtitle format (its
/// default) plus the compressed formats this producer copies.
fn decodebin_caps(outputs: &[Output]) -> gst::Caps {
    let mut caps = String::from(
        "video/x-raw(ANY); audio/x-raw(ANY); text/x-raw(ANY); subpicture/x-dvd; \
         subpicture/x-dvb; subpicture/x-pgs; closedcaption/x-cea-608; closedcaption/x-cea-708",
    );
    for o in outputs.iter().filter(|o| o.plan.is_copy()) {
        if let Some(f) = CopyFormat::of(&o.codec, o.packaging) {
            caps.push_str("; ");
            caps.push_str(f.caps_name);
            if f.caps_name == "audio/mpeg" {
                caps.push_str(if o.codec == "mp3" {
                    ", mpegversion=(int)1"
                } else {
                    ", mpegversion=(int){2,4}"
                });
            }
        }
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
/// Copied streams get no queue of their own: decodebin's multiqueue
/// already decouples them.
const RAW_VIDEO_QUEUE: &str = "queue max-size-buffers=1 max-size-bytes=0 max-size-time=0";

/// What the writers' appsinks take.
const H264_OUT: &str = "capsfilter caps=video/x-h264,stream-format=byte-stream,alignment=au";
/// Encoded H.264 for fMP4: length-prefixed NAL units, with the `avcC` of
/// the init segment in the caps (`h264parse` converts).
const H264_FMP4_OUT: &str = "capsfilter caps=video/x-h264,stream-format=avc,alignment=au";
const AAC_OUT: &str = "capsfilter caps=audio/mpeg,stream-format=adts";

/// Media time the audio queue may hold: 5 s, or 60 video frames when that
/// is longer (a slide show at 1 fps: 60 s), which leaves room for an
/// operator's slower x264 settings (medium: 40 frames of lookahead). It was
/// 30 s: decoded stereo is 384 KB a second, so the queue held 11 MB on the
/// bench file (35 MB for 5.1) for nothing.
fn audio_queue_time(fps: f64) -> Duration {
    let floor = Duration::from_secs(5);
    if fps > 0.0 {
        floor.max(Duration::from_secs_f64(60.0 / fps))
    } else {
        floor
    }
}

/// The gst-launch description of the branch between a decoded (or
/// parsed) pad and its appsink.
fn branch_description(
    output: &Output,
    templates: &PipelineTemplates,
    keyint: u32,
    fps: f64,
    burn_with: Option<&BurnSource>,
) -> anyhow::Result<String> {
    Ok(match output.plan {
        Plan::VideoCopy | Plan::AudioCopy { .. } => copy_format(output)?.description(),
        Plan::VideoEncode {
            width,
            height,
            maxrate_kbps,
            deinterlace,
            rotate,
            burn,
            tonemap,
        } => {
            let mut d = format!("{RAW_VIDEO_QUEUE} name=head");
            if deinterlace {
                d.push_str(" ! videoconvert ! deinterlace");
            }
            if let (Some(_), Some(source)) = (burn, burn_with) {
                // The sub-picture pad is linked when its stream shows up
                // (see `link_subpicture`). I420 in system memory on both
                // sides, so the overlay draws into the frames rather than
                // attaching an overlay composition the encoder ignores.
                let (overlay, _) = source.overlay();
                d.push_str(&format!(
                    " ! videoconvert ! video/x-raw,format=I420 ! {overlay} name={BURN_ELEMENT} ! video/x-raw,format=I420 ! videoconvert"
                ));
            }
            if rotate {
                d.push_str(" ! videoflip video-direction=auto");
            }
            if let Some(t) = tonemap {
                d.push_str(" ! ");
                d.push_str(&super::tonemap::description(&t, width, height));
            }
            d.push_str(" ! ");
            let rung = crate::ladder::Rung {
                width,
                height,
                maxrate_kbps,
            };
            d.push_str(&templates.video(
                width,
                height,
                keyint,
                maxrate_kbps,
                rung.bufsize_kbits(),
            ));
            d.push_str(" ! ");
            d.push_str(match output.packaging {
                Packaging::Ts => H264_OUT,
                Packaging::Fmp4 => H264_FMP4_OUT,
            });
            d.push_str(" name=tail");
            d
        }
        Plan::AudioEncode { .. } => format!(
            "queue max-size-buffers=0 max-size-bytes=0 max-size-time={} ! {} ! aacparse ! {AAC_OUT}",
            audio_queue_time(fps).as_nanos(),
            templates.audio_transcode
        ),
    })
}

/// Name of the overlay (`dvdspu`, `dvbsuboverlay`) in a burn-in branch.
const BURN_ELEMENT: &str = "burn";

/// The two ends of a burn-in, which show up in either order: the
/// branch's sub-picture sink pad (ghosted out of the branch) and the
/// decoded sub-picture stream (held by a blocking probe until then).
#[derive(Default)]
struct Burn {
    sink: Option<gst::Pad>,
    waiting: Option<(gst::Pad, gst::PadProbeId)>,
}

/// What the `pad-added` handler needs.
struct LinkContext {
    /// The image subtitle track burned in, if any.
    burn_source: Option<BurnSource>,
    burn: Mutex<Burn>,
    pipeline: glib::WeakRef<gst::Pipeline>,
    spec: ProducerSpec,
    linked: Arc<Mutex<Linked>>,
    seek: Option<Arc<SeekOnce>>,
    position: Arc<AtomicU64>,
    keyint: u32,
}

/// The `uridecodebin` of `spec`'s file: each stream's first codec kept,
/// Matroska lead-in frames restored, the source corrected as the prober
/// saw it (its header fix).
fn decoding_source(spec: &ProducerSpec, uri: &str) -> anyhow::Result<gst::Element> {
    let src = gst::ElementFactory::make("uridecodebin")
        .name("source")
        .property("uri", uri)
        .property("caps", decodebin_caps(&spec.outputs))
        .build()
        .context("uridecodebin")?;
    crate::library::passes::one_codec::keep_first_codec(&src);
    super::lead_in::restore(&src, &spec.path);
    let media_path = spec.path.clone();
    src.connect("source-setup", false, move |args| {
        let source = args.get(1).and_then(|v| v.get::<gst::Element>().ok());
        crate::guard::callback(source.as_ref(), "source-setup", None, || {
            if let Some(source) = &source {
                crate::library::passes::source_fix::correct_source(&media_path, source);
            }
            None
        })
    });

    Ok(src)
}

/// Streams nobody asked for stay compressed (and go to a fakesink) rather
/// than being decoded for nothing: an audio-only producer does not decode
/// the video. Only when every wanted stream is known by id.
fn decode_only_wanted(src: &gst::Element, spec: &ProducerSpec) {
    if spec.outputs.iter().all(|o| o.stream_id.is_some()) {
        let wanted: Vec<String> = spec
            .outputs
            .iter()
            .filter_map(|o| o.stream_id.clone())
            .chain(spec.burn.iter().map(|b| b.stream_id.clone()))
            .chain(spec.text_tracks.iter().map(|t| t.stream_id.clone()))
            .collect();
        src.connect("autoplug-continue", false, move |args| {
            let element = args.first().and_then(|v| v.get::<gst::Element>().ok());
            let go_on = true.to_value();
            crate::guard::callback(element.as_ref(), "autoplug-continue", Some(go_on), || {
                let pad = args.get(1).and_then(|v| v.get::<gst::Pad>().ok());
                let id = pad
                    .as_ref()
                    .and_then(|p| p.stream_id())
                    .map(|s| s.to_string());
                // Demuxed streams have ids `{upstream}/{stream}`: the source's
                // own pad (a container, whose id has no `/`) and containers
                // holding a wanted stream go on.
                let go_on = id.is_none_or(|id| {
                    !id.contains('/')
                        || wanted.contains(&id)
                        || wanted.iter().any(|w| w.starts_with(&format!("{id}/")))
                });
                Some(go_on.to_value())
            })
        });
    }
}

/// Builds the transcode pipeline of `spec`.
///
/// # Errors
/// Fails when an element is missing from this GStreamer installation or an
/// encode description does not parse.
pub fn build(spec: &ProducerSpec) -> anyhow::Result<BuiltPipeline> {
    let uri = glib::filename_to_uri(&spec.path, None).context("media path to uri")?;
    let start = spec.timeline.start(spec.start_index);
    let pipeline = gst::Pipeline::with_name(&spec.name);
    let src = decoding_source(spec, uri.as_str())?;
    pipeline.add(&src)?;

    let position_ns = Arc::new(AtomicU64::new(start.as_nanos() as u64));
    let linked = Arc::new(Mutex::new(Linked::default()));
    let keyint = if spec.fps > 0.0 {
        (spec.fps * SEGMENT_SECONDS as f64).round().max(1.0) as u32
    } else {
        250
    };
    let seek = SeekOnce::new(
        start.saturating_sub(SEEK_PREROLL),
        true,
        &pipeline,
        linked.clone(),
        spec.outputs.len(),
    );
    if let Some(seek) = &seek {
        seek.on_no_more_pads(&src);
    }
    let burn_source = spec.burn.clone();
    decode_only_wanted(&src, spec);
    let ctx = LinkContext {
        burn_source,
        burn: Mutex::new(Burn::default()),
        pipeline: pipeline.downgrade(),
        spec: spec.clone(),
        linked: linked.clone(),
        seek,
        position: position_ns.clone(),
        keyint,
    };
    crate::guard::on_pad_added(&src, move |_, pad| {
        let Some(pipeline) = ctx.pipeline.upgrade() else {
            return;
        };
        if let Err(e) = link_pad(&ctx, &pipeline, pad) {
            // Callbacks never panic: report on the bus and let the producer fail.
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

/// Links a decoded stream of the source: the sub-picture stream burnt in
/// to its overlay, a stream an output wants to its branch (encode or
/// copy, then the segment writer), a text track to its cue collector, and
/// anything else to a fakesink.
fn link_pad(ctx: &LinkContext, pipeline: &gst::Pipeline, pad: &gst::Pad) -> anyhow::Result<()> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let media_type = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let stream_id = pad.stream_id().map(|s| s.to_string());
    if media_type.starts_with("subpicture/")
        && ctx
            .burn_source
            .as_ref()
            .is_some_and(|b| Some(&b.stream_id) == stream_id.as_ref())
    {
        media_time_segments(pad, ctx.seek.clone());
        return link_subpicture(ctx, Some(pad.clone()), None);
    }
    let claimed = output_for(ctx, pad, &media_type, stream_id.as_deref());
    tracing::debug!(media_type, ?stream_id, ?claimed, "decoded pad");
    let Some((index, kind)) = claimed else {
        if link_text_pad(pipeline, pad, &ctx.spec.text_tracks, ctx.seek.clone())? {
            return Ok(());
        }
        return discard_pad(pipeline, pad);
    };
    let branch = add_branch(ctx, pipeline, index, kind)?;
    time_stream(ctx, pad, index);
    pad.link(
        &branch
            .static_pad("sink")
            .ok_or_else(|| anyhow!("branch has no sink pad"))?,
    )?;
    if let Some(seek) = &ctx.seek {
        seek.when_linked();
    }
    Ok(())
}

/// The output a decoded (or, for copies, parsed) stream of `media_type`
/// feeds, and its kind: the first free output of that kind whose source
/// stream it is.
fn output_for(
    ctx: &LinkContext,
    pad: &gst::Pad,
    media_type: &str,
    stream_id: Option<&str>,
) -> Option<(usize, StreamKind)> {
    let outputs = &ctx.spec.outputs;
    let is_video = media_type.starts_with("video/x-raw")
        || (media_type.starts_with("video/") && outputs.iter().any(|o| o.plan == Plan::VideoCopy));
    let is_audio = media_type.starts_with("audio/x-raw")
        || (media_type.starts_with("audio/")
            && outputs
                .iter()
                .any(|o| matches!(o.plan, Plan::AudioCopy { .. })));
    if !is_video && !is_audio {
        return None;
    }
    let index = claim_output(&ctx.linked, outputs, is_video, stream_id, pad)?;
    let kind = if is_video {
        StreamKind::Video
    } else {
        StreamKind::Audio
    };
    Some((index, kind))
}

/// Adds output `index`'s branch (its encoder, or parser for a copy) and
/// its segment writer to `pipeline`, linked and playing; a burn-in
/// branch's overlay is joined to the sub-picture stream.
fn add_branch(
    ctx: &LinkContext,
    pipeline: &gst::Pipeline,
    index: usize,
    kind: StreamKind,
) -> anyhow::Result<gst::Bin> {
    let output: &Output = &ctx.spec.outputs[index];
    let branch = branch_bin(ctx, output)?;
    let position = if index == 0 {
        ctx.position.clone()
    } else {
        Arc::new(AtomicU64::new(0))
    };
    let writer = SegmentWriter::new(
        kind,
        ctx.spec.timeline.clone(),
        ctx.spec.start_index,
        output.sink.clone(),
        position,
        None,
    );
    let sink = writer_sink(&format!("out{index}"), packaged(writer, output));
    pipeline.add_many([branch.upcast_ref::<gst::Element>(), sink.upcast_ref()])?;
    let branch_src = branch
        .static_pad("src")
        .ok_or_else(|| anyhow!("branch has no src pad"))?;
    branch_src.link(&sink.static_pad("sink").expect("appsink sink pad"))?;
    sink.sync_state_with_parent()?;
    branch.sync_state_with_parent()?;
    if let (Some(overlay), Some(source)) = (branch.by_name(BURN_ELEMENT), &ctx.burn_source) {
        let (name, pad) = source.overlay();
        let target = overlay
            .static_pad(pad)
            .ok_or_else(|| anyhow!("{name} has no {pad} pad"))?;
        let ghost = gst::GhostPad::builder_with_target(&target)?
            .name("subpicture")
            .build();
        ghost.set_active(true)?;
        branch.add_pad(&ghost)?;
        let ghost = ghost.upcast();
        link_subpicture(ctx, None, Some(ghost))?;
    }
    Ok(branch)
}

/// The bin of `output`'s branch, from its description, with `sink` and
/// `src` ghost pads.
fn branch_bin(ctx: &LinkContext, output: &Output) -> anyhow::Result<gst::Bin> {
    let description = branch_description(
        output,
        &ctx.spec.templates,
        ctx.keyint,
        ctx.spec.fps,
        ctx.burn_source.as_ref(),
    )?;
    let burns = matches!(output.plan, Plan::VideoEncode { burn: Some(_), .. });
    // A burn-in branch has two sink pads: its ghosts are made by hand.
    let branch = gst::parse::bin_from_description(&description, !burns)
        .with_context(|| format!("parsing branch: {description}"))?;
    if burns {
        for (element, pad, name) in [("head", "sink", "sink"), ("tail", "src", "src")] {
            let target = branch
                .by_name(element)
                .and_then(|e| e.static_pad(pad))
                .ok_or_else(|| anyhow!("burn-in branch without {element}"))?;
            let ghost = gst::GhostPad::builder_with_target(&target)?
                .name(name)
                .build();
            branch.add_pad(&ghost)?;
        }
    }
    Ok(branch)
}

/// Puts a decoded stream feeding output `index` on media time: counted
/// for the seek, gated until the seek's start (less the preroll), held by
/// the throttle, and for an encode cut at the timeline's boundaries.
fn time_stream(ctx: &LinkContext, pad: &gst::Pad, index: usize) {
    // Counted before the gate, which drops everything until the seek.
    if let Some(seek) = &ctx.seek {
        seek.watch(pad, index);
    }
    let segment = media_time_segments(pad, ctx.seek.clone());
    let start = ctx.spec.timeline.start(ctx.spec.start_index);
    add_gate(
        pad,
        segment.clone(),
        (start.saturating_sub(SEEK_PREROLL), start),
        ctx.spec.throttle.clone(),
        index == 0,
    );
    if matches!(ctx.spec.outputs[index].plan, Plan::VideoEncode { .. }) {
        add_cutter(
            pad,
            segment,
            ctx.spec.timeline.clone(),
            ctx.spec.start_index,
        );
    }
}

/// Joins the decoded sub-picture stream `decoded` and the burn-in
/// branch's sub-picture pad `sink`, whichever comes second.
fn link_subpicture(
    ctx: &LinkContext,
    decoded: Option<gst::Pad>,
    sink: Option<gst::Pad>,
) -> anyhow::Result<()> {
    let mut burn = ctx.burn.lock().expect("burn state");
    if let Some(sink) = sink {
        burn.sink = Some(sink);
    }
    if let Some(pad) = decoded {
        // Held until the branch exists: a push to nowhere would fail.
        let probe = crate::guard::probe(&pad, gst::PadProbeType::BLOCK_DOWNSTREAM, |_, _| {
            gst::PadProbeReturn::Ok
        })
        .ok_or_else(|| anyhow!("cannot hold the sub-picture stream"))?;
        burn.waiting = Some((pad, probe));
    }
    if let (Some(sink), Some(_)) = (burn.sink.clone(), burn.waiting.as_ref()) {
        let (pad, probe) = burn.waiting.take().expect("checked");
        pad.link(&sink)?;
        pad.remove_probe(probe);
        tracing::debug!("sub-picture stream linked for burn-in");
    }
    Ok(())
}

/// How far before its first segment a transcode producer seeks. Demuxers
/// that seek by estimate land past the target: `mpegpsdemux` landed a
/// second late in an SVCD file (its key frame at 8.44 s skipped for a
/// seek to 8.0 s), whose last segment then looked empty and ended the
/// title there. The frames between are decoded and dropped by the gate,
/// never encoded: about 0.1 s of decoding for 1080p.
const SEEK_PREROLL: Duration = Duration::from_secs(2);

/// The gate on every decoded stream of a transcode: buffers are dropped
/// until the seek to `seek_start` (the first of `(seek_start, start)`) has
/// landed (the segment's `time` is still short of it), when they precede
/// the segment's start, and when their media time precedes `start`, the
/// producer's first segment (the seek's pre-roll); then the throttle may
/// hold the buffer.
fn add_gate(
    pad: &gst::Pad,
    media: MediaSegment,
    (seek_start, start): (Duration, Duration),
    throttle: Arc<Throttle>,
    drives_cuts: bool,
) {
    // Demuxers may round the segment's time to their own clock.
    const SLACK: Duration = Duration::from_millis(2);
    let seek_ns = seek_start.saturating_sub(SLACK).as_nanos() as u64;
    let start_ns = start.saturating_sub(SLACK).as_nanos() as u64;
    crate::guard::probe(pad, gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(segment) = media.lock().expect("media segment").clone() else {
            return gst::PadProbeReturn::Ok;
        };
        if seek_ns > 0 && segment.time().map_or(0, |t| t.nseconds()) < seek_ns {
            return gst::PadProbeReturn::Drop;
        }
        if segment.start().is_some_and(|s| pts < s) {
            return gst::PadProbeReturn::Drop;
        }
        let t = segment.to_stream_time(pts).map(|t| t.nseconds());
        if start_ns > 0 && t.is_some_and(|t| t < start_ns) {
            return gst::PadProbeReturn::Drop;
        }
        if let Some(t) = t {
            throttle.wait(t, pad, drives_cuts);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Asks the encoder for a key frame on the first frame at or after each
/// cut of `timeline` (from segment `start_index` on), where the segment
/// writer then cuts. Times here are media times (this pad's own sticky
/// segment is the demuxer's, before the segment probe rewrote it).
fn add_cutter(pad: &gst::Pad, media: MediaSegment, timeline: Timeline, start_index: usize) {
    // The segment whose end comes next.
    let next = Mutex::new(start_index);
    crate::guard::probe(pad, gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(t) = info
            .buffer()
            .and_then(|b| b.pts())
            .and_then(|pts| media_time(&media, pts))
        else {
            return gst::PadProbeReturn::Ok;
        };
        let mut next = next.lock().expect("cutter state");
        let Some(cut) = timeline.cut_after(*next) else {
            return gst::PadProbeReturn::Ok;
        };
        if Duration::from_nanos(t.nseconds()) < cut {
            return gst::PadProbeReturn::Ok;
        }
        *next = timeline.index_at(Duration::from_nanos(t.nseconds()));
        drop(next);
        let event = gst_video::DownstreamForceKeyUnitEvent::builder()
            .running_time(t)
            .all_headers(true)
            .build();
        pad.push_event(event);
        gst::PadProbeReturn::Ok
    });
}
