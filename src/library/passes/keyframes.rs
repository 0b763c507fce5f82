//! Slow path: a demux-only GStreamer pass (no decoding) that records the key
//! frames of the first video stream exactly as the HLS cutter sees them.
//!
//! Pipeline: `filesrc ! parsebin`, then for the first video pad
//! `h264parse config-interval=-1 ! capsfilter(byte-stream, au) ! appsink`
//! (H.264) or straight `appsink` (any other video codec); every other pad goes
//! to a `fakesink`. All sinks run with `sync=false async=false`, so the single
//! demuxer streaming thread never blocks in preroll and the file is read as
//! fast as the disk and the demuxer allow.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::pipeline::{discard_sink, file_parsebin, make};
use crate::container::h264::has_idr_slice;
use crate::container::index::{KeyframeIndex, Source};

/// What the appsink callback collects.
#[derive(Default)]
struct Collected {
    /// Key-frame running times in nanoseconds, in arrival (decode) order.
    keys: Vec<u64>,
    /// Latest running time seen (ns) and the duration of that buffer (ns), if any.
    last: Option<(u64, Option<u64>)>,
    /// Whether a video pad was linked at all.
    have_video: bool,
    /// Running times made to continue where the demuxer re-based them,
    /// as the segment writer does.
    continuity: crate::continuity::Continuity,
    /// (running time, bytes the demuxer had given out on every stream)
    /// at each key frame: what the file holds between two key frames,
    /// every track's, as a container's index gives it with its offsets.
    places: Vec<(u64, u64)>,
}

/// How long the source may sit idle, after reading something, with no stream
/// exposed, before the pass is called stalled. `parsebin` sometimes swallows
/// its demuxer's error (seen with `qtdemux` on an MP4 without `moov`, about
/// one run in six): nothing else would end the pass before `timeout`.
const STALL: Duration = Duration::from_secs(3);

/// Progress markers shared with the streaming threads.
struct Progress {
    /// When the pass started.
    start: Instant,
    /// Milliseconds after `start` of the last buffer the source delivered, 0 = none yet.
    last_read_ms: AtomicU64,
    /// Whether `parsebin` exposed any stream.
    exposed: AtomicBool,
    /// Bytes the demuxer has given out on all its streams so far.
    emitted: AtomicU64,
}

impl Progress {
    /// True when the source has read data, then stayed idle for [`STALL`], and no stream came out.
    fn stalled(&self) -> bool {
        let last = self.last_read_ms.load(Ordering::Relaxed);
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        !self.exposed.load(Ordering::Relaxed)
            && last > 0
            && now.saturating_sub(last) > u64::try_from(STALL.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Runs the demux-only pass; see [`demux_pass_progress`].
fn run(
    path: &Path,
    timeout: Duration,
    on_progress: &mut dyn FnMut(&[Duration]),
) -> Result<KeyframeIndex, String> {
    std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    gst::init().map_err(|e| format!("GStreamer init failed: {e}"))?;

    let (pipeline, src, parsebin) = file_parsebin(path)?;

    let progress = Arc::new(Progress {
        start: Instant::now(),
        last_read_ms: AtomicU64::new(0),
        exposed: AtomicBool::new(false),
        emitted: AtomicU64::new(0),
    });
    if let Some(pad) = src.static_pad("src") {
        let p = Arc::clone(&progress);
        crate::guard::probe(&pad, gst::PadProbeType::BUFFER, move |_, _| {
            let ms = u64::try_from(p.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            p.last_read_ms.store(ms.max(1), Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    }
    let collected = Arc::new(Mutex::new(Collected::default()));
    let weak = pipeline.downgrade();
    let state = Arc::clone(&collected);
    let p = Arc::clone(&progress);
    crate::guard::on_pad_added(&parsebin, move |_, pad| {
        p.exposed.store(true, Ordering::Relaxed);
        let counted = Arc::clone(&p);
        crate::guard::probe(pad, gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(b)) = &info.data {
                counted
                    .emitted
                    .fetch_add(b.size() as u64, Ordering::Relaxed);
            }
            gst::PadProbeReturn::Ok
        });
        if let Some(pipeline) = weak.upgrade() {
            // A failure here leaves the pad unlinked: the demuxer then stops with
            // not-linked and the error surfaces on the bus.
            let _ = link_pad(&pipeline, pad, &state, &p);
        }
    });

    let mut report = || {
        let mut keys = collected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .clone();
        keys.sort_unstable();
        keys.dedup();
        let keys: Vec<Duration> = keys.into_iter().map(Duration::from_nanos).collect();
        on_progress(&keys);
    };
    let result = drive(&pipeline, timeout, &progress, &mut report);
    let _ = pipeline.set_state(gst::State::Null);
    result?;

    let c = std::mem::take(&mut *collected.lock().unwrap_or_else(PoisonError::into_inner));
    if !c.have_video {
        return Err(format!("{}: no video stream", path.display()));
    }
    let mut keys = c.keys;
    keys.sort_unstable();
    keys.dedup();
    let end = c
        .last
        .and_then(|(t, d)| d.map(|d| Duration::from_nanos(t.saturating_add(d))));
    let data_end = progress.emitted.load(Ordering::Relaxed);
    let offsets = key_offsets(c.places, &keys, data_end);
    Ok(KeyframeIndex {
        keyframes: keys.into_iter().map(Duration::from_nanos).collect(),
        end,
        source: Source::DemuxPass,
        data_end: (!offsets.is_empty()).then_some(data_end),
        offsets,
    })
}

/// A stand-in for the byte offset of each key frame in `keys` (running
/// times, sorted, deduplicated): the bytes the demuxer had given out, on
/// every stream, when it arrived (`places`), ahead of the key frame by
/// the access unit `h264parse` holds (about the same at every key
/// frame). Empty unless every key frame has one, each past the one
/// before, all below `data_end` (every stream's bytes).
fn key_offsets(mut places: Vec<(u64, u64)>, keys: &[u64], data_end: u64) -> Vec<u64> {
    places.sort_unstable();
    places.dedup_by_key(|p| p.0);
    let offsets: Vec<u64> = places.iter().map(|p| p.1).collect();
    let fits = places.len() == keys.len()
        && offsets.windows(2).all(|w| w[0] < w[1])
        && offsets.last().is_some_and(|o| *o < data_end);
    if fits {
        offsets
    } else {
        Vec::new()
    }
}

/// Links a new parsebin pad: first video pad to the recording appsink, the rest to fakesinks.
fn link_pad(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    state: &Arc<Mutex<Collected>>,
    progress: &Arc<Progress>,
) -> Result<(), String> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let name = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let is_video = name.starts_with("video/");
    let first_video = is_video && {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        !std::mem::replace(&mut s.have_video, true)
    };
    let mut chain: Vec<gst::Element> = Vec::new();
    if first_video {
        if name == "video/x-h264" {
            let parse = make("h264parse")?;
            parse.set_property("config-interval", -1i32);
            let filter = make("capsfilter")?;
            let want = gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build();
            filter.set_property("caps", &want);
            chain.push(parse);
            chain.push(filter);
        }
        let sink = recording_sink(
            Arc::clone(state),
            Arc::clone(progress),
            name == "video/x-h264",
        );
        chain.push(sink.upcast());
    } else {
        chain.push(discard_sink()?);
    }
    pipeline
        .add_many(&chain)
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    gst::Element::link_many(&chain).map_err(|e| format!("pipeline setup failed: {e}"))?;
    for e in &chain {
        e.sync_state_with_parent()
            .map_err(|e| format!("pipeline setup failed: {e}"))?;
    }
    let first = chain.first().ok_or("empty chain")?;
    let sinkpad = first.static_pad("sink").ok_or("element without sink pad")?;
    pad.link(&sinkpad)
        .map(|_| ())
        .map_err(|e| format!("cannot link {name}: {e:?}"))
}

/// An appsink that records key-frame running times and the latest frame
/// end. For H.264 (`h264`), only IDR access units count as key frames:
/// `h264parse` also flags the I-frames of an open GOP (broadcast streams,
/// with a recovery point), whose leading pictures refer to the GOP
/// before, so a segment starting there would not be independent (RFC
/// 8216, `EXT-X-INDEPENDENT-SEGMENTS`).
fn recording_sink(
    state: Arc<Mutex<Collected>>,
    progress: Arc<Progress>,
    h264: bool,
) -> gst_app::AppSink {
    let callbacks = gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let (Some(buffer), Some(segment)) = (sample.buffer(), sample.segment()) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let Some(segment) = segment.downcast_ref::<gst::ClockTime>() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            // AVI (and some raw streams) carry only a DTS on some frames.
            let Some(ts) = buffer.pts().or_else(|| buffer.dts()) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let Some(rt) = segment.to_running_time(ts) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            let rt = s
                .continuity
                .map(rt.nseconds(), buffer.duration().map_or(0, |d| d.nseconds()));
            let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
                && (!h264 || buffer.map_readable().is_ok_and(|m| has_idr_slice(&m)));
            if key {
                s.keys.push(rt);
                let emitted = progress.emitted.load(Ordering::Relaxed);
                s.places.push((rt, emitted));
            }
            if s.last.is_none_or(|(t, _)| rt >= t) {
                s.last = Some((rt, buffer.duration().map(gst::ClockTime::nseconds)));
            }
            Ok(gst::FlowSuccess::Ok)
        })
        .build();
    gst_app::AppSink::builder()
        .sync(false)
        .property("async", false)
        .callbacks(callbacks)
        .build()
}

/// Plays the pipeline to EOS, an error, a stall or the deadline, calling
/// `report` about every 250 ms meanwhile.
fn drive(
    pipeline: &gst::Pipeline,
    timeout: Duration,
    progress: &Progress,
    report: &mut dyn FnMut(),
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let bus = pipeline.bus().ok_or("pipeline without bus")?;
    pipeline.set_state(gst::State::Playing).map_err(|_| {
        "cannot start the demux pipeline (unreadable or unknown format)".to_string()
    })?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("demux pass timed out after {timeout:?}"));
        }
        if progress.stalled() {
            return Err("the demuxer found no stream (unreadable or unknown format)".into());
        }
        report();
        let left = left.min(Duration::from_millis(250));
        let wait =
            gst::ClockTime::from_nseconds(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX));
        let Some(msg) =
            bus.timed_pop_filtered(wait, &[gst::MessageType::Eos, gst::MessageType::Error])
        else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(e) => {
                return Err(format!("demux failed: {} ({:?})", e.error(), e.debug()));
            }
            _ => {}
        }
    }
}

/// Slow path: a demux-only GStreamer pass (no decoding) over the whole file,
/// recording the key frames of the first video stream exactly as the HLS
/// cutter sees them (see the module docs for the pipeline). Other streams go
/// to `fakesink`. Blocking; gives up after `timeout`.
///
/// H.264 goes through `h264parse` as in the cutter; another video codec is
/// recorded as `parsebin` outputs it.
///
/// # Errors
/// A plain message when the file cannot be read or demuxed, has no video
/// stream, or the pass takes longer than `timeout`.
pub fn demux_pass(path: &Path, timeout: Duration) -> Result<KeyframeIndex, String> {
    run(path, timeout, &mut |_| {})
}

/// [`demux_pass`], calling `on_progress` about every 250 ms with the key
/// frames found so far (ascending): a 2-hour film takes seconds, and its
/// first minutes are known at once.
///
/// # Errors
/// As [`demux_pass`].
pub fn demux_pass_progress(
    path: &Path,
    timeout: Duration,
    on_progress: &mut dyn FnMut(&[Duration]),
) -> Result<KeyframeIndex, String> {
    run(path, timeout, on_progress)
}
