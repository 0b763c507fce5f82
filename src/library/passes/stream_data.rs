//! Which of a file's streams carry data: an MPEG-TS program map table may
//! declare a stream that never gets a packet (a broadcast recording's
//! second audio PID, a capture whose audio input was off). The Discoverer
//! lists it all the same (with a made-up format), and an HLS rendition
//! made for it never gets a segment: players stall on it or, like ffmpeg,
//! fail (`Value inf for parameter 'time_base'`). A short demux pass finds
//! which streams have data, so the probe can leave out those that do not.
//!
//! Runs in the prober child, like the Discoverer (a crash here is the
//! child's).

use crate::continuity::Continuity;
use gst::prelude::*;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How much media the pass reads: a declared stream that has no packet in
/// the first 30 s counts as empty. Broadcast audio comes within a second
/// of the video; 30 s also covers a late start.
const HORIZON: Duration = Duration::from_secs(30);

/// The most the pass may take (a slow disk or a huge bit rate); when it
/// runs out, whatever was seen so far is not trusted.
const WALL_LIMIT: Duration = Duration::from_secs(5);

/// One stream's first and furthest buffer time (ns), and its continuity.
type Span = (u64, u64, Continuity);

/// What the pass saw.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamData {
    /// The stream ids among those declared that got at least one buffer
    /// within [`HORIZON`] of media (or before the file ended).
    pub with_data: Vec<String>,
    /// When the whole file was read (it ended within the horizon): the
    /// longest stream's span, first buffer to the end of the last, with
    /// timestamps that jump back made to continue. The Discoverer reports
    /// 0 s for a 0.6 s MPEG-TS clip, and 7.6 s for a 10.1 s one on which
    /// `tsdemux` re-based ([`crate::continuity`]).
    pub whole_span: Option<Duration>,
}

/// Reads the first [`HORIZON`] of `path`'s streams; `None` when the pass
/// could not tell (the pipeline failed, or [`WALL_LIMIT`] passed first).
pub fn streams_with_data(path: &Path, declared: &[String]) -> Option<StreamData> {
    let (pipeline, _, parse) = super::pipeline::file_parsebin(path).ok()?;

    // stream id -> first and furthest buffer time seen (ns), with times
    // that jump back made to continue as the segment writer does.
    let seen: Arc<Mutex<HashMap<String, Span>>> = Arc::default();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let done_tx = Mutex::new(done_tx);
    let weak = pipeline.downgrade();
    let seen_by_pads = seen.clone();
    crate::guard::on_pad_added(&parse, move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let Ok(sink) = super::pipeline::discard_sink() else {
            return;
        };
        if pipeline.add(&sink).is_err() || sink.sync_state_with_parent().is_err() {
            return;
        }
        let Some(sink_pad) = sink.static_pad("sink") else {
            return;
        };
        let _ = pad.link(&sink_pad);
        let done = done_tx.lock().expect("done sender").clone();
        record_spans(pad, seen_by_pads.clone(), done);
    });

    pipeline.set_state(gst::State::Playing).ok()?;
    let bus = pipeline.bus()?;
    let started = Instant::now();
    let mut finished = false;
    let mut ended = false;
    while started.elapsed() < WALL_LIMIT {
        if done_rx.try_recv().is_ok() {
            finished = true;
            break;
        }
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(20),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) {
            finished = matches!(msg.view(), gst::MessageView::Eos(_));
            ended = finished;
            break;
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    if !finished {
        return None;
    }
    let seen = seen.lock().expect("streams seen");
    Some(StreamData {
        with_data: declared
            .iter()
            .filter(|id| seen.contains_key(id.as_str()))
            .cloned()
            .collect(),
        whole_span: ended
            .then(|| {
                seen.values()
                    .map(|(first, end, _)| end.saturating_sub(*first))
                    .max()
            })
            .flatten()
            .map(Duration::from_nanos),
    })
}

/// Records, per stream id, the span of the buffers that pass `pad` into
/// `seen`, and says `done` once any stream spans [`HORIZON`].
fn record_spans(pad: &gst::Pad, seen: Arc<Mutex<HashMap<String, Span>>>, done: mpsc::Sender<()>) {
    crate::guard::probe(pad, gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(id) = pad.stream_id().map(|s| s.to_string()) else {
            return gst::PadProbeReturn::Remove;
        };
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let raw = buffer.dts_or_pts().map_or(0, |t| t.nseconds());
        let duration = buffer.duration().map_or(0, |d| d.nseconds());
        let mut seen = seen.lock().expect("streams seen");
        let entry = seen
            .entry(id)
            .or_insert_with(|| (u64::MAX, 0, Continuity::default()));
        let t = entry.2.map(raw, duration);
        entry.0 = entry.0.min(t);
        entry.1 = entry.1.max(t + duration);
        let far = seen
            .values()
            .any(|(first, last, _)| last.saturating_sub(*first) >= HORIZON.as_nanos() as u64);
        // Read on to the horizon even once every stream has data: a
        // file that ends before it gets its length measured.
        if far {
            let _ = done.send(());
        }
        gst::PadProbeReturn::Ok
    });
}
