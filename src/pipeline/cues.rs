//! Reading text subtitle cues with GStreamer: a sidecar file through
//! `subparse` (which also finds its character encoding: UTF-8 with or
//! without a BOM, else the legacy encoding of the locale, Latin-1 by
//! default), or an embedded track through a demux-only pass over a range
//! of the file (no decoding: `parsebin`, every other stream to a
//! `fakesink`).
//!
//! Cue times are media time, as in every segment: the range pass seeks
//! and rewrites segments with the producers' own machinery
//! ([`super::media_time::SeekOnce`], [`super::media_time::media_time_segments`]).

use super::media_time::{media_time_segments, Linked, SeekOnce};
use crate::subtitle::{to_vtt_text, Cue, CueTrack, Markup, DEFAULT_CUE_LENGTH};
use gst::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a buffer's text is to be read, from its caps.
fn markup_of(caps: &gst::CapsRef) -> Option<Markup> {
    let s = caps.structure(0)?;
    match s.name().as_str() {
        "text/x-raw" => Some(match s.get::<&str>("format").ok() {
            Some("pango-markup") => Markup::Pango,
            _ => Markup::Plain,
        }),
        "application/x-ass" | "application/x-ssa" => Some(Markup::Ass),
        "application/x-subtitle-vtt" | "application/x-subtitle" => Some(Markup::Plain),
        _ => None,
    }
}

/// Whether a parsed pad carries text subtitles this module reads.
pub fn is_text(caps: &gst::CapsRef) -> bool {
    markup_of(caps).is_some()
}

/// Where a pipeline's cues go.
pub type CueSink = Arc<dyn Fn(Cue) + Send + Sync>;

/// A sink for `track`.
fn into_track(track: &Arc<Mutex<CueTrack>>) -> CueSink {
    let track = track.clone();
    Arc::new(move |cue| track.lock().expect("cue track").add(cue))
}

/// An appsink handing every buffer it gets, as a cue in media time, to
/// `on_cue`.
pub fn cue_sink(on_cue: CueSink) -> gst_app::AppSink {
    let callbacks = gst_app::AppSinkCallbacks::builder()
        .new_sample(move |sink| {
            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let (Some(buffer), Some(segment), Some(caps)) =
                (sample.buffer(), sample.segment(), sample.caps())
            else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let (Some(segment), Some(pts), Some(markup)) = (
                segment.downcast_ref::<gst::ClockTime>(),
                buffer.pts(),
                markup_of(caps),
            ) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            // Running time is media time here (media_time_segments).
            let Some(start) = segment.to_running_time(pts) else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let Ok(map) = buffer.map_readable() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            let raw = String::from_utf8_lossy(&map);
            let text = to_vtt_text(raw.trim_end_matches('\0'), markup);
            let start = Duration::from_nanos(start.nseconds());
            let length = buffer
                .duration()
                .map(|d| Duration::from_nanos(d.nseconds()))
                .filter(|d| !d.is_zero())
                .unwrap_or(DEFAULT_CUE_LENGTH);
            on_cue(Cue {
                start,
                end: start + length,
                text,
            });
            Ok(gst::FlowSuccess::Ok)
        })
        .build();
    gst_app::AppSink::builder()
        .sync(false)
        .property("async", false)
        .enable_last_sample(false)
        .callbacks(callbacks)
        .build()
}

fn fakesink() -> Result<gst::Element, String> {
    gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .map_err(|e| format!("fakesink: {e}"))
}

/// Plays `pipeline` until EOS, an error, `done` or `timeout`; then NULL.
/// Returns whether it reached the end of the file.
fn drive(pipeline: &gst::Pipeline, done: &AtomicBool, timeout: Duration) -> Result<bool, String> {
    let bus = pipeline.bus().ok_or("pipeline without bus")?;
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| "cannot read the file".to_string())?;
        let deadline = Instant::now() + timeout;
        loop {
            if done.load(Ordering::SeqCst) {
                return Ok(false);
            }
            if Instant::now() >= deadline {
                return Err(format!("reading subtitles timed out after {timeout:?}"));
            }
            let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(50),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            ) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Eos(_) => return Ok(true),
                gst::MessageView::Error(e) => return Err(format!("{}", e.error())),
                _ => {}
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Every cue of the sidecar subtitle file at `path` (SubRip, WebVTT,
/// ASS/SSA, and whatever else `subparse` reads).
///
/// # Errors
/// A file `subparse` cannot read, or one that takes longer than `timeout`.
pub fn read_sidecar(path: &Path, timeout: Duration) -> Result<CueTrack, String> {
    match parse_sidecar(path, timeout) {
        Ok(track) if !track.is_empty() => Ok(track),
        first => {
            // subparse refuses a file whose first cue is broken: read what
            // can be read of it.
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
            let track = crate::subtitle::parse_srt_lenient(&crate::subtitle::decode_text(&bytes));
            if track.is_empty() {
                return first;
            }
            tracing::info!(path = %path.display(), cues = track.len(), "subtitle file read leniently");
            Ok(track)
        }
    }
}

fn parse_sidecar(path: &Path, timeout: Duration) -> Result<CueTrack, String> {
    let pipeline = gst::Pipeline::with_name("sidecar");
    let uri = glib::filename_to_uri(path, None).map_err(|e| format!("bad path: {e}"))?;
    let src = gst::Element::make_from_uri(gst::URIType::Src, uri.as_str(), Some("source"))
        .map_err(|e| format!("no source for the file: {e}"))?;
    let parse = gst::ElementFactory::make("subparse")
        .build()
        .map_err(|e| format!("subparse: {e}"))?;
    let track = Arc::new(Mutex::new(CueTrack::default()));
    let sink = cue_sink(into_track(&track));
    pipeline
        .add_many([&src, &parse, sink.upcast_ref()])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([&src, &parse, sink.upcast_ref()])
        .map_err(|e| format!("linking the subtitle parser: {e}"))?;
    drive(&pipeline, &AtomicBool::new(false), timeout)?;
    let mut track = std::mem::take(&mut *track.lock().expect("cue track"));
    track.cover(Duration::ZERO, Duration::MAX);
    Ok(track)
}

/// The cues of the embedded text track `stream_id` (`None`: the first
/// text track) of the file at `path` that start in `[from, to)`
/// (`to: None`: to the end), by a demux-only pass over that range. The
/// track returned says what it covers.
///
/// # Errors
/// A file that cannot be demuxed, a failed seek, or `timeout`.
pub fn read_embedded(
    path: &Path,
    stream_id: Option<&str>,
    from: Duration,
    to: Option<Duration>,
    timeout: Duration,
) -> Result<CueTrack, String> {
    let (pipeline, parsebin) = demux_pipeline(path)?;

    let track = Arc::new(Mutex::new(CueTrack::default()));
    let done = Arc::new(AtomicBool::new(false));
    let linked = Arc::new(Mutex::new(Linked::default()));
    let seek = SeekOnce::new(from, false, &pipeline, linked.clone(), 1);
    if let Some(seek) = &seek {
        seek.on_no_more_pads(&parsebin);
    }
    let weak = pipeline.downgrade();
    let want = stream_id.map(str::to_string);
    let text_taken = AtomicBool::new(false);
    let sink_track = track.clone();
    let on_pad_done = done.clone();
    crate::guard::on_pad_added(&parsebin, move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let id = pad.stream_id().map(|s| s.to_string());
        let wanted_text = is_text(&caps)
            && match (&want, &id) {
                (Some(w), Some(h)) => w == h,
                (Some(_), None) => false,
                (None, _) => true,
            }
            && !text_taken.swap(true, Ordering::SeqCst);
        media_time_segments(pad, seek.clone());
        let sink: gst::Element = if wanted_text {
            cue_sink(into_track(&sink_track)).upcast()
        } else {
            match fakesink() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "reading cues");
                    return;
                }
            }
        };
        // The first stream that is not sparse drives: the seek waits for
        // its buffers, and the pass ends once it passes `to`.
        let drives = !is_text(&caps) && claim_drive(&linked, pad);
        if drives {
            if let Some(seek) = &seek {
                seek.watch(pad, 0);
            }
            if let Some(to) = to {
                done_past(pad, to, on_pad_done.clone());
            }
        }
        let linked_ok = pipeline.add(&sink).is_ok()
            && sink.sync_state_with_parent().is_ok()
            && sink
                .static_pad("sink")
                .is_some_and(|s| pad.link(&s).is_ok());
        if !linked_ok {
            tracing::warn!(pad = %pad.name(), "reading cues: a stream could not be linked");
        }
        if drives {
            if let Some(seek) = &seek {
                seek.when_linked();
            }
        }
    });
    let reached_end = drive(&pipeline, &done, timeout)?;
    let mut track = std::mem::take(&mut *track.lock().expect("cue track"));
    let end = if reached_end {
        Duration::MAX
    } else {
        to.unwrap_or(Duration::MAX)
    };
    track.cover(from, end);
    Ok(track)
}

/// A pipeline of the file at `path` demuxed and parsed (no decoding): the
/// pipeline and its parsebin, whose pads come as streams are found.
fn demux_pipeline(path: &Path) -> Result<(gst::Pipeline, gst::Element), String> {
    let uri = glib::filename_to_uri(path, None).map_err(|e| format!("bad path: {e}"))?;
    let pipeline = gst::Pipeline::with_name("cues");
    let src = gst::Element::make_from_uri(gst::URIType::Src, uri.as_str(), Some("source"))
        .map_err(|e| format!("no source for the file: {e}"))?;
    crate::library::passes::source_fix::correct_source(path, &src);
    let parsebin = gst::ElementFactory::make("parsebin")
        .build()
        .map_err(|e| format!("parsebin: {e}"))?;
    pipeline
        .add_many([&src, &parsebin])
        .map_err(|e| e.to_string())?;
    src.link(&parsebin).map_err(|e| e.to_string())?;
    Ok((pipeline, parsebin))
}

/// Makes `pad` the stream that drives the pass if none does yet.
fn claim_drive(linked: &Mutex<Linked>, pad: &gst::Pad) -> bool {
    let mut l = linked.lock().expect("link state");
    if l.first_pad.is_some() {
        return false;
    }
    l.first_pad = Some(pad.clone());
    l.outputs = vec![true];
    true
}

/// Sets `done` once a buffer on `pad` reaches running time `to`.
fn done_past(pad: &gst::Pad, to: Duration, done: Arc<AtomicBool>) {
    let segment = Mutex::new(None::<gst::FormattedSegment<gst::ClockTime>>);
    crate::guard::probe(
        pad,
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            match &info.data {
                Some(gst::PadProbeData::Event(e)) => {
                    if let gst::EventView::Segment(s) = e.view() {
                        *segment.lock().expect("segment") =
                            s.segment().downcast_ref::<gst::ClockTime>().cloned();
                    }
                }
                Some(gst::PadProbeData::Buffer(b)) => {
                    let rt = b.pts().or(b.dts()).and_then(|t| {
                        segment
                            .lock()
                            .expect("segment")
                            .as_ref()?
                            .to_running_time(t)
                    });
                    if rt.is_some_and(|rt| rt.nseconds() as u128 >= to.as_nanos()) {
                        done.store(true, Ordering::SeqCst);
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}
