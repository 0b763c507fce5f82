//! The remux pipeline: a stream copy of H.264 (and AAC) into segments,
//! with no GStreamer muxer and no thread hand-off.
//!
//! ```text
//! source ─ parsebin ─ video ─ h264parse ─ appsink ┐
//!                    ├ audio ─ aacparse ─ appsink ┤ Segmenter (TS packets, cuts) ─> segment_00000.ts ...
//!                    └ other tracks ─ fakesink
//! ```
//!
//! `parsebin` has no multiqueue, so the demuxer's streaming thread carries
//! every buffer through the parsers into the appsinks' callbacks, where
//! `Segmenter` packetizes it ([`super::ts`]) and cuts a segment at the
//! first key frame [`SEGMENT_SECONDS`] or more after the last cut: one
//! thread, buffers in file order. `hlssink2` (splitmuxsink, its queues and
//! `mpegtsmux`'s aggregator thread, one `GstBuffer` per 188-byte packet)
//! took 3.7× ffmpeg's time for the same copy (README, "Performance").
//!
//! It reports to the session as the `hlssink2` pipeline does: segment
//! opened and closed element messages on the bus, `.part` files queued in
//! [`OpenSegments`], the progress position, and EOS.

use super::ts::{Streams, TsMuxer};
use super::{
    discard_pad, segment_name, take_planned, BuildOptions, BuiltPipeline, Linked, OpenSegments,
};
use crate::config::SEGMENT_SECONDS;
use crate::library::{AudioPlan, MediaItem, VideoPlan};
use anyhow::{anyhow, Context};
use gst::prelude::*;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bus message a `Segmenter` posts when it opens a segment; field
/// `running-time` (u64 nanoseconds) is the time of its first buffer.
pub const SEGMENT_OPENED: &str = "hlsd-segment-opened";
/// Bus message a `Segmenter` posts once a segment's file is written and
/// closed; field `running-time` (u64 nanoseconds) is where it ends.
pub const SEGMENT_CLOSED: &str = "hlsd-segment-closed";

/// Offset added to running time in the output timestamps, as `mpegtsmux`
/// does (its `TSMUX_START_TS`, 3600 s): B-frames' DTS before PTS never go
/// below zero.
const TS_OFFSET: Duration = Duration::from_secs(3600);

/// Audio frames without a timestamp held until one has one (about 3 s of
/// AAC at 22 kHz); more are dropped.
const MAX_UNDATED_AUDIO: usize = 64;

/// Segment bytes gathered before each `write()`.
const WRITE_BUFFER: usize = 1 << 20;

/// Whether `item` is a pure stream copy, which this module handles: H.264
/// video copied, and AAC copied or no audio.
pub fn handles(item: &MediaItem) -> bool {
    matches!(item.decision.video, Some(VideoPlan::Copy))
        && matches!(item.decision.audio, None | Some((_, AudioPlan::Copy)))
}

/// Output time (ns) of a running time: plus [`TS_OFFSET`].
fn offset_ns(running_time_ns: u64) -> u64 {
    running_time_ns + TS_OFFSET.as_nanos() as u64
}

/// 90 kHz ticks of an output time (ns).
fn ticks(output_ns: u64) -> u64 {
    output_ns * 9 / 100_000
}

/// Output timestamp in 90 kHz ticks of a running time.
fn ticks_90k(running_time_ns: u64) -> u64 {
    ticks(offset_ns(running_time_ns))
}

/// A buffer's duration in nanoseconds, 0 when unknown.
fn duration_ns(buffer: &gst::BufferRef) -> u64 {
    buffer.duration().map_or(0, |d| d.nseconds())
}

/// The file being written.
struct OpenFile {
    file: File,
    /// `.part` path, for error messages.
    part: PathBuf,
    /// Running time (ns) of the segment's first buffer.
    start_ns: u64,
}

/// Packetizes the copied streams and cuts them into segment files. Runs
/// in the streaming thread, behind a mutex.
struct Segmenter {
    mux: TsMuxer,
    dir: PathBuf,
    generation: u32,
    next_index: usize,
    /// Minimum length of the segment being written: the first segment's,
    /// then [`SEGMENT_SECONDS`].
    target: Duration,
    file: Option<OpenFile>,
    buf: Vec<u8>,
    open: OpenSegments,
    position: Arc<AtomicU64>,
    /// Streams that have not reached EOS yet.
    streams_left: usize,
    /// Where the last audio frame written ends (running time, ns).
    audio_next: Option<u64>,
    /// Audio frames that came before any audio timestamp.
    audio_undated: Vec<gst::Buffer>,
}

/// A write failure, with the `.part` file it concerns.
struct WriteError {
    part: PathBuf,
    error: std::io::Error,
}

impl Segmenter {
    fn open(&mut self, sink: &gst::Element, start_ns: u64) -> Result<(), WriteError> {
        let final_path = self.dir.join(segment_name(self.next_index));
        let mut part = final_path.clone().into_os_string();
        part.push(format!(".{}.part", self.generation));
        let part = PathBuf::from(part);
        let file = File::create(&part).map_err(|error| WriteError {
            part: part.clone(),
            error,
        })?;
        self.open
            .lock()
            .expect("open segments")
            .push_back((part.clone(), final_path));
        self.next_index += 1;
        self.file = Some(OpenFile {
            file,
            part,
            start_ns,
        });
        self.mux.write_tables(&mut self.buf);
        post(sink, SEGMENT_OPENED, start_ns);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        if let Some(f) = &mut self.file {
            f.file.write_all(&self.buf).map_err(|error| WriteError {
                part: f.part.clone(),
                error,
            })?;
        }
        self.buf.clear();
        Ok(())
    }

    /// Writes out and closes the open segment, which ends at `end_ns`.
    fn close(&mut self, sink: &gst::Element, end_ns: u64) -> Result<(), WriteError> {
        self.flush()?;
        if self.file.take().is_some() {
            self.target = Duration::from_secs(SEGMENT_SECONDS.into());
            post(sink, SEGMENT_CLOSED, end_ns);
        }
        Ok(())
    }

    fn video(&mut self, sink: &gst::Element, sample: &gst::Sample) -> Result<(), WriteError> {
        let Some((buffer, pts_ns, dts_ns)) = times(sample) else {
            return Ok(());
        };
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        match &self.file {
            None => self.open(sink, pts_ns)?,
            Some(f) if key => {
                let length = Duration::from_nanos(pts_ns.saturating_sub(f.start_ns));
                // A millisecond of slack for timestamps rounded by the demuxer.
                if length + Duration::from_millis(1) >= self.target {
                    self.close(sink, pts_ns)?;
                    self.open(sink, pts_ns)?;
                }
            }
            Some(_) => {}
        }
        let Ok(map) = buffer.map_readable() else {
            return Ok(());
        };
        self.mux.write_video(
            &mut self.buf,
            &map,
            ticks_90k(pts_ns),
            dts_ns.map(ticks_90k),
            key,
        );
        let end = pts_ns + duration_ns(buffer);
        self.position.fetch_max(end, Ordering::Relaxed);
        self.flush_if_full()
    }

    fn audio(&mut self, sink: &gst::Element, sample: &gst::Sample) -> Result<(), WriteError> {
        let Some(buffer) = sample.buffer_owned() else {
            return Ok(());
        };
        let duration = duration_ns(&buffer);
        let pts = match times(sample) {
            Some((_, pts, _)) => pts,
            // A frame without a timestamp follows the one before it.
            None => match self.audio_next {
                Some(next) => next,
                None => {
                    // No timestamp yet (seen: the first PES of a TS file
                    // carried several ADTS frames and no PTS): hold the
                    // frames and date them back from the first that has one.
                    if self.audio_undated.len() < MAX_UNDATED_AUDIO {
                        self.audio_undated.push(buffer);
                    }
                    return Ok(());
                }
            },
        };
        if !self.audio_undated.is_empty() {
            let undated = std::mem::take(&mut self.audio_undated);
            let total: u64 = undated.iter().map(|b| duration_ns(b)).sum();
            // In output time, where the 3600 s offset leaves room to go
            // below zero running time.
            let mut t = offset_ns(pts).saturating_sub(total);
            for b in &undated {
                self.write_audio_at(sink, b, t)?;
                t += duration_ns(b);
            }
        }
        self.write_audio_at(sink, &buffer, offset_ns(pts))?;
        self.audio_next = Some(pts + duration);
        self.flush_if_full()
    }

    /// Writes one audio frame at `output_ns` (running time plus
    /// [`TS_OFFSET`]).
    fn write_audio_at(
        &mut self,
        sink: &gst::Element,
        buffer: &gst::BufferRef,
        output_ns: u64,
    ) -> Result<(), WriteError> {
        if self.file.is_none() {
            let running = output_ns.saturating_sub(offset_ns(0));
            self.open(sink, running)?;
        }
        if let Ok(map) = buffer.map_readable() {
            self.mux.write_audio(&mut self.buf, &map, ticks(output_ns));
        }
        Ok(())
    }

    fn flush_if_full(&mut self) -> Result<(), WriteError> {
        if self.buf.len() >= WRITE_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// One stream ended; once all have, the last segment is closed at the
    /// end of the newest video buffer.
    fn eos(&mut self, sink: &gst::Element) -> Result<(), WriteError> {
        self.streams_left = self.streams_left.saturating_sub(1);
        if self.streams_left == 0 {
            let end = self.position.load(Ordering::Relaxed);
            let end = self.file.as_ref().map_or(end, |f| end.max(f.start_ns));
            self.close(sink, end)?;
        }
        Ok(())
    }
}

/// A sample's buffer with its PTS and DTS as running times (ns); `None`
/// for a buffer with neither or outside its segment. A buffer with a DTS
/// and no PTS (AVI gives only decode times) gets its DTS as PTS, as
/// `mpegtsmux` does; the decoder still orders the frames.
fn times(sample: &gst::Sample) -> Option<(&gst::BufferRef, u64, Option<u64>)> {
    let buffer = sample.buffer()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let running = |t: Option<gst::ClockTime>| Some(segment.to_running_time(t?)?.nseconds());
    match (running(buffer.pts()), running(buffer.dts())) {
        (Some(pts), dts) => Some((buffer, pts, dts)),
        (None, Some(dts)) => Some((buffer, dts, None)),
        (None, None) => None,
    }
}

fn post(sink: &gst::Element, name: &str, running_time_ns: u64) {
    let s = gst::Structure::builder(name)
        .field("running-time", running_time_ns)
        .build();
    let _ = sink.post_message(gst::message::Element::builder(s).src(sink).build());
}

fn write_failed(sink: &gst::Element, e: WriteError) -> gst::FlowError {
    tracing::error!(location = %e.part.display(), error = %e.error, "cannot write a segment");
    gst::element_error!(
        sink,
        gst::ResourceError::Write,
        ("Could not write a segment."),
        ["{}: {}", e.part.display(), e.error]
    );
    gst::FlowError::Error
}

/// An appsink that hands every sample to `segmenter`, in the streaming
/// thread. `async=false`: with no queue in front, a sink waiting for
/// preroll would block the demuxer before the other stream's sink got data.
fn segment_sink(name: &str, segmenter: Arc<Mutex<Segmenter>>, video: bool) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder()
        .name(name)
        .sync(false)
        .enable_last_sample(false)
        .build();
    sink.set_property("async", false);
    let on_eos = segmenter.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let mut s = segmenter.lock().expect("segmenter");
                let element = sink.upcast_ref::<gst::Element>();
                let done = if video {
                    s.video(element, &sample)
                } else {
                    s.audio(element, &sample)
                };
                done.map(|()| gst::FlowSuccess::Ok)
                    .map_err(|e| write_failed(element, e))
            })
            .eos(move |sink| {
                let element = sink.upcast_ref::<gst::Element>();
                if let Err(e) = on_eos.lock().expect("segmenter").eos(element) {
                    let _ = write_failed(element, e);
                }
            })
            .build(),
    );
    sink
}

/// Builds the remux pipeline for `item` (one that [`handles`]) writing
/// segments into `dir`.
///
/// # Errors
/// Fails when the file's URI has no source element or a parser is
/// missing from this GStreamer installation.
pub fn build(
    item: &MediaItem,
    dir: &Path,
    options: &BuildOptions,
) -> anyhow::Result<BuiltPipeline> {
    let uri = glib::filename_to_uri(&item.abs_path, None).context("media path to uri")?;
    let with_audio = item.decision.audio.is_some();
    let pipeline = gst::Pipeline::with_name(&format!("remux-{}-{}", item.id, options.generation));
    // Made from the URI as uridecodebin does, so stream ids match the
    // Discoverer's.
    let src = gst::Element::make_from_uri(gst::URIType::Src, uri.as_str(), Some("source"))
        .context("source for the media file")?;
    let parsebin = gst::ElementFactory::make("parsebin")
        .build()
        .context("parsebin")?;
    pipeline.add_many([&src, &parsebin])?;
    src.link(&parsebin)?;

    let position = Arc::new(AtomicU64::new(0));
    let open_segments = OpenSegments::default();
    let segmenter = Arc::new(Mutex::new(Segmenter {
        mux: TsMuxer::new(Streams {
            video: true,
            audio: with_audio,
        }),
        dir: dir.to_path_buf(),
        generation: options.generation,
        next_index: options.start_index,
        target: options.first_segment,
        file: None,
        buf: Vec::with_capacity(WRITE_BUFFER + (1 << 16)),
        open: open_segments.clone(),
        position: position.clone(),
        streams_left: 1 + usize::from(with_audio),
        audio_next: None,
        audio_undated: Vec::new(),
    }));

    let mut branches = Vec::new();
    let mut sinks = Vec::new();
    for video in [true, false] {
        if !video && !with_audio {
            continue;
        }
        let (parse, caps) = if video {
            (
                gst::ElementFactory::make("h264parse")
                    .property("config-interval", -1i32)
                    .build()
                    .context("h264parse")?,
                "video/x-h264,stream-format=byte-stream,alignment=au",
            )
        } else {
            (
                gst::ElementFactory::make("aacparse")
                    .build()
                    .context("aacparse")?,
                "audio/mpeg,stream-format=adts",
            )
        };
        let filter = gst::ElementFactory::make("capsfilter")
            .property("caps", caps.parse::<gst::Caps>().expect("static caps"))
            .build()?;
        let sink = segment_sink(
            if video { "video-sink" } else { "audio-sink" },
            segmenter.clone(),
            video,
        );
        pipeline.add_many([&parse, &filter, sink.upcast_ref()])?;
        gst::Element::link_many([&parse, &filter, sink.upcast_ref()])?;
        branches.push((video, parse.static_pad("sink").expect("parser sink pad")));
        sinks.push(sink.upcast::<gst::Element>());
    }

    let planned = (
        item.video.as_ref().and_then(|v| v.stream_id.clone()),
        item.decision
            .audio
            .and_then(|(i, _)| item.audio.get(i).and_then(|a| a.stream_id.clone())),
    );
    let linked = Arc::new(Mutex::new(Linked::default()));
    let weak = pipeline.downgrade();
    let on_pad = linked.clone();
    let pads = branches.clone();
    parsebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let media_type = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let video = media_type == "video/x-h264";
        let audio = media_type == "audio/mpeg";
        let planned_id = if video {
            Some(planned.0.as_deref())
        } else if audio && with_audio {
            Some(planned.1.as_deref())
        } else {
            None
        };
        let stream_id = pad.stream_id().map(|s| s.to_string());
        let wanted = take_planned(&on_pad, video, planned_id, stream_id.as_deref(), pad);
        tracing::debug!(media_type, ?stream_id, wanted, "parsed pad");
        let result = if wanted {
            let target = pads
                .iter()
                .find(|(v, _)| *v == video)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| anyhow!("no branch for {media_type}"));
            target.and_then(|t| pad.link(&t).map(|_| ()).map_err(Into::into))
        } else {
            discard_pad(&pipeline, pad)
        };
        if let Err(e) = result {
            tracing::error!(error = format!("{e:#}"), pad = %pad.name(), "linking a parsed stream failed");
            gst::element_error!(
                pipeline,
                gst::CoreError::Negotiation,
                ("Could not link a stream: {}", e)
            );
        }
    });
    // A planned stream that never showed up would leave its sink waiting
    // for ever: end it, so the session ends too.
    parsebin.connect_no_more_pads(move |_| {
        for (_, pad) in &branches {
            if !pad.is_linked() {
                tracing::warn!(pad = %pad.name(), "a planned stream was not found in the file");
                pad.send_event(gst::event::Eos::new());
            }
        }
    });

    Ok(BuiltPipeline {
        pipeline,
        position_ns: position,
        open_segments,
        sinks,
    })
}
