//! Cutting one rendition's elementary stream into MPEG-TS or fragmented-MP4
//! segment files on the item's timeline.
//!
//! Every producer pipeline ends in one appsink per rendition whose
//! callbacks, in the streaming thread, hand each access unit (an H.264
//! access unit or an ADTS AAC frame for MPEG-TS; any codec
//! [`crate::packaging::Packaging::Fmp4`] carries for fMP4) to a
//! [`SegmentWriter`]. The writer packetizes it ([`super::ts`]) or gathers
//! it into a fragment ([`super::fmp4`]), and cuts at each segment's end on the
//! [`Timeline`]: video on the first key frame at or after the cut (the
//! cutter of a transcode forces one there; a copy's cuts are its key
//! frames), audio on the first frame at or after it. A segment is written
//! to a `.part` file and handed to its [`SegmentOutput`] once the next
//! one begins (or the stream ends), which moves it into the store. A
//! segment the store already holds is not written again.
//!
//! Timestamps are running times, which every producer keeps equal to
//! media time, plus mpegtsmux's 3600 s offset: segment `n` carries the
//! same timestamps whichever producer made it. Video without decode times
//! (Matroska) gets them from [`super::decode_time::DecodeTimes`]. Each access unit is held
//! until the next one comes, so that the packetizer knows a segment's
//! last one (it ends the continuity counter at 15, [`super::ts`]) and the
//! PCR of the next segment's first one (it fills the gap up to it); an
//! fMP4 fragment's last sample lasts until the next segment's first.

use super::decode_time::{Dated, Frame, Reorder};
use super::packager::{Packager, StreamKind, Unit, WriteError};
use super::throttle::Throttle;
use crate::continuity::Continuity;
use crate::timeline::Timeline;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Offset added to running time in the output timestamps, as `mpegtsmux`
/// does (its `TSMUX_START_TS`, 3600 s): B-frames' DTS before PTS never go
/// below zero.
pub const TS_OFFSET: Duration = Duration::from_secs(3600);

/// A frame this close before a cut counts as at it (demuxers round
/// timestamps to their own clock).
const CUT_SLACK_NS: u64 = 1_000_000;

/// A first video frame this far after its segment's start is logged: one
/// second, more than any frame interval but 1 fps slide shows.
const LATE_START_NS: u64 = 1_000_000_000;

/// Audio frames without a timestamp held until one has one (about 3 s of
/// AAC at 22 kHz); more are dropped.
const MAX_UNDATED_AUDIO: usize = 64;

/// Segment bytes gathered before each `write()`.
const WRITE_BUFFER: usize = 1 << 20;

/// Where a writer's segments go: the store, through the producer.
pub trait SegmentOutput: Send + Sync {
    /// Whether segment `n` is in the store already: it is then not written.
    fn exists(&self, n: usize) -> bool;
    /// The `.part` file to write segment `n` into.
    fn part_path(&self, n: usize) -> PathBuf;
    /// Segment `n` begins (it is written, or skipped when it exists).
    fn opened(&self, n: usize);
    /// Where the rendition's init segment goes (fragmented MP4 only).
    fn init_path(&self) -> PathBuf;
    /// Segment `n` is complete in `part`, `duration` of media long: move
    /// it into the store.
    ///
    /// # Errors
    /// The rename's error (a full or read-only disk, say).
    fn finished(&self, n: usize, part: &Path, duration: Duration) -> std::io::Result<()>;
    /// The item's timeline now, when it may have changed since the
    /// producer started (an open one: its cuts are still being found, or
    /// its end is not known).
    fn timeline(&self) -> Option<Timeline>;
    /// The stream ended in segment `last`, at media time `end`.
    fn ended(&self, last: usize, end: Duration);
}

/// Output time (ns) of a running time: plus [`TS_OFFSET`].
fn offset_ns(running_time_ns: u64) -> u64 {
    running_time_ns + TS_OFFSET.as_nanos() as u64
}

/// Output time (ns) of a signed running time (a decode time may precede
/// running time 0), never below 0.
fn offset_signed_ns(running_time_ns: i64) -> u64 {
    u64::try_from(i128::from(running_time_ns) + TS_OFFSET.as_nanos() as i128).unwrap_or(0)
}

/// A buffer's duration in nanoseconds, 0 when unknown.
pub fn duration_ns(buffer: &gst::BufferRef) -> u64 {
    buffer.duration().map_or(0, |d| d.nseconds())
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// An access unit waiting to be written: output times in ns.
struct Held {
    buffer: gst::Buffer,
    pts: u64,
    dts: Option<u64>,
    key: bool,
    duration: u64,
}

/// A video frame waiting for its decode time: its buffer and its
/// presentation time as running time (ns, for the cuts and the throttle).
#[derive(Debug)]
struct VideoFrame {
    buffer: gst::Buffer,
    running: u64,
}

/// One rendition's segmenter. Owned by its appsink's callbacks.
pub struct SegmentWriter {
    kind: StreamKind,
    mux: Packager,
    timeline: Timeline,
    /// The segment being written (or, before the first frame, the first
    /// one to write).
    index: usize,
    /// Whether the first frame has come (the start gate is open).
    started: bool,
    /// The open `.part` file; `None` while skipping a segment the store has.
    file: Option<(File, PathBuf)>,
    buf: Vec<u8>,
    output: Arc<dyn SegmentOutput>,
    /// Media time (ns) reached: the end of the newest frame written.
    position: Arc<AtomicU64>,
    /// Holds the stream past the viewers' margin (a remux, whose writers
    /// run in the demuxer's thread); `None` when the pipeline holds it
    /// further up (a transcode).
    throttle: Option<(Arc<Throttle>, bool)>,
    /// Where the last audio frame written ends (running time, ns).
    audio_next: Option<u64>,
    /// Audio frames that came before any audio timestamp.
    audio_undated: Vec<gst::Buffer>,
    /// The last access unit taken, not written yet.
    held: Option<Held>,
    /// Video frames in decode order, dated ([`Reorder`]): held back while
    /// a key frame waits to know its leading pictures.
    reorder: Reorder<VideoFrame>,
    /// Timestamps kept from jumping back ([`crate::continuity`]).
    continuity: Continuity,
    /// Whether an audio frame was handed on (the first is held until the
    /// second comes).
    audio_written: bool,
    /// Where the last audio frame written ends (output time, ns): the next
    /// segment's first frame may not decode before it.
    audio_end: Option<u64>,
    /// The duration (ns) of the last access unit written.
    last_duration: u64,
    ended: bool,
}

impl SegmentWriter {
    /// A writer for a `kind` stream cut on `timeline`, starting at segment
    /// `start_index`, handing segments to `output` and reporting progress
    /// in `position` (ns). With `throttle`, frames past its limit wait in
    /// [`Self::push`]; the flag says whether this stream's wait counts as
    /// the throttle holding (the stream that drives the cuts).
    pub fn new(
        kind: StreamKind,
        timeline: Timeline,
        start_index: usize,
        output: Arc<dyn SegmentOutput>,
        position: Arc<AtomicU64>,
        throttle: Option<(Arc<Throttle>, bool)>,
    ) -> Self {
        SegmentWriter {
            kind,
            mux: Packager::ts(kind),
            timeline,
            index: start_index,
            started: false,
            file: None,
            buf: Vec::with_capacity(WRITE_BUFFER + (1 << 16)),
            output,
            position,
            throttle,
            audio_next: None,
            audio_undated: Vec::new(),
            held: None,
            reorder: Reorder::default(),
            continuity: Continuity::default(),
            audio_written: false,
            audio_end: None,
            last_duration: 0,
            ended: false,
        }
    }

    /// The same writer, writing fragmented MP4 instead of MPEG-TS; a
    /// copied video's sample entry says what `copied` does.
    pub fn fmp4(mut self, copied: super::fmp4::CopiedVideo) -> Self {
        self.mux = Packager::fmp4(self.kind, copied);
        self
    }

    fn open(&mut self) -> Result<(), WriteError> {
        self.buf.clear();
        self.held = None;
        self.output.opened(self.index);
        if self.output.exists(self.index) {
            self.file = None;
            return Ok(());
        }
        let part = self.output.part_path(self.index);
        let file = File::create(&part).map_err(|error| WriteError {
            part: part.clone(),
            error,
        })?;
        self.file = Some((file, part));
        self.mux.begin(&mut self.buf, self.index);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        if let Some((file, part)) = &mut self.file {
            file.write_all(&self.buf).map_err(|error| WriteError {
                part: part.clone(),
                error,
            })?;
        }
        self.buf.clear();
        Ok(())
    }

    /// Writes the held access unit (`last`: the segment's last).
    fn write_held(&mut self, last: bool) {
        let Some(held) = self.held.take() else {
            return;
        };
        if self.file.is_none() {
            return;
        }
        let Ok(map) = held.buffer.map_readable() else {
            return;
        };
        self.last_duration = held.duration;
        if self.kind == StreamKind::Audio {
            self.audio_end = Some(held.pts + held.duration.max(1));
        }
        let unit = Unit {
            data: &map,
            pts: held.pts,
            dts: held.dts,
            key: held.key,
        };
        self.mux.write(&mut self.buf, self.kind, unit, last);
    }

    /// Writes the access unit held so far and holds `buffer` instead.
    ///
    /// Every audio PES must decode after the one before, so an audio frame
    /// dated at or before the held one is moved: the stream's first frame
    /// (the AAC priming frame of an MP4 with an edit list, which `qtdemux`
    /// stamps 0 like the first real one) is dated a frame earlier; a later
    /// frame (a TS whose PES times overlap the frames `aacparse` dated
    /// from the PES before) follows the held one, and the first frame of a
    /// segment follows the last one of the segment before (seen: a TS
    /// whose re-dated frames ran 72 ms past a cut the next PES's own time
    /// fell before).
    fn hold(&mut self, buffer: &gst::BufferRef, mut pts: u64, dts: Option<u64>, key: bool) {
        if self.kind == StreamKind::Audio {
            match &mut self.held {
                Some(held) if held.pts >= pts => {
                    if self.audio_written {
                        pts = held.pts + held.duration.max(1);
                    } else {
                        held.pts = pts.saturating_sub(held.duration.max(1));
                    }
                }
                None => {
                    if let Some(end) = self.audio_end.filter(|end| *end > pts) {
                        pts = end;
                    }
                }
                _ => {}
            }
            self.audio_written |= self.held.is_some();
        }
        self.write_held(false);
        if self.file.is_some() {
            self.held = Some(Held {
                buffer: buffer.to_owned(),
                pts,
                dts,
                key,
                duration: duration_ns(buffer),
            });
        }
    }

    /// Writes out and closes the open segment, which ends at `end_ns`;
    /// `next_dts`: the output decode time (ns) of the next segment's first
    /// access unit, if it is known (the PCR gap is filled up to its PCR; an
    /// fMP4 fragment's last sample lasts until it).
    fn close(&mut self, end_ns: u64, next_dts: Option<u64>) -> Result<(), WriteError> {
        self.write_held(true);
        if self.file.is_some() {
            self.mux.end(&mut self.buf, next_dts, self.last_duration);
        }
        self.flush()?;
        if let Some((file, part)) = self.file.take() {
            drop(file);
            let start = self.timeline.start(self.index);
            let duration = Duration::from_nanos(end_ns).saturating_sub(start);
            self.output
                .finished(self.index, &part, duration)
                .map_err(|error| WriteError { part, error })?;
        }
        Ok(())
    }

    /// Takes one frame at running time `pts_ns` (decode time `dts_ns`,
    /// which may be negative).
    /// `pad` is the appsink's pad, for the throttle.
    ///
    /// # Errors
    /// A segment file that cannot be written or moved.
    pub fn push(
        &mut self,
        buffer: &gst::BufferRef,
        pts_ns: Option<u64>,
        dts_ns: Option<i64>,
        pad: &gst::Pad,
    ) -> Result<(), WriteError> {
        if self.ended {
            return Ok(());
        }
        if self.mux.skips(self.kind, buffer) {
            return Ok(());
        }
        if let Packager::Fmp4 { .. } = self.mux {
            let map = buffer.map_readable().map_err(|_| WriteError {
                part: self.output.init_path(),
                error: std::io::Error::other("an unreadable buffer"),
            })?;
            self.mux.configure(&map, &self.output.init_path())?;
        }
        match self.kind {
            StreamKind::Video => self.push_video(buffer, pts_ns, dts_ns, pad)?,
            StreamKind::Audio => self.push_audio(buffer, pts_ns, dts_ns, pad)?,
        }
        if self.buf.len() >= WRITE_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    /// A video frame at running time `pts_ns` (decode time `dts_ns`).
    fn push_video(
        &mut self,
        buffer: &gst::BufferRef,
        pts_ns: Option<u64>,
        dts_ns: Option<i64>,
        pad: &gst::Pad,
    ) -> Result<(), WriteError> {
        // AVI gives decode times only on some frames: the decoder
        // still orders them (as mpegtsmux does).
        let Some(pts) = pts_ns.or(dts_ns.and_then(|d| u64::try_from(d).ok())) else {
            tracing::debug!(index = self.index, pts = ?buffer.pts(), "a video frame without a running time is left out");
            return Ok(());
        };
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let duration = duration_ns(buffer);
        // Jumps back are looked for in decode order: on the decode
        // time where there is one. Presentation times step back
        // with B-frames, and across a real gap in the stream a
        // B-frame shown before the gap comes after a P-frame shown
        // after it (the reported ASF: 1.1 s), which on presentation
        // times looked like a re-base and moved every later frame
        // 1.2 s.
        let pts = match dts_ns.and_then(|d| u64::try_from(d).ok()) {
            Some(dts) => {
                self.continuity.map(dts, duration);
                u64::try_from(i128::from(pts) + self.continuity.offset()).unwrap_or(pts)
            }
            None => self.continuity.map(pts, duration),
        };
        let offset = self.continuity.offset();
        let dts_ns = dts_ns.map(|d| i64::try_from(i128::from(d) + offset).unwrap_or(d));
        // Decode times in output time: they may precede running
        // time 0 (B-frames at the very start). Without a PTS the
        // DTS shows the frame (AVI).
        let pts_out = offset_ns(pts);
        let given = match pts_ns {
            Some(_) => dts_ns.map(offset_signed_ns),
            None => Some(pts_out),
        };
        let dated = self.reorder.push(Frame {
            item: VideoFrame {
                buffer: buffer.to_owned(),
                running: pts,
            },
            pts: pts_out,
            given,
            duration,
            key,
        });
        self.write_video(dated, Some(pad))?;
        Ok(())
    }

    /// An audio frame at running time `pts_ns` (decode time `dts_ns`).
    fn push_audio(
        &mut self,
        buffer: &gst::BufferRef,
        pts_ns: Option<u64>,
        dts_ns: Option<i64>,
        pad: &gst::Pad,
    ) -> Result<(), WriteError> {
        let duration = duration_ns(buffer);
        let dts = dts_ns.and_then(|d| u64::try_from(d).ok());
        let dated = pts_ns.or(dts).map(|t| self.continuity.map(t, duration));
        let pts = match dated.or(self.audio_next) {
            Some(pts) => pts,
            None => {
                // No timestamp yet (seen: the first PES of a TS file
                // carried several ADTS frames and no PTS): hold the
                // frames and date them back from the first that has one.
                if self.audio_undated.len() < MAX_UNDATED_AUDIO {
                    self.audio_undated.push(buffer.to_owned());
                }
                return Ok(());
            }
        };
        if !self.audio_undated.is_empty() {
            let undated = std::mem::take(&mut self.audio_undated);
            let total: u64 = undated.iter().map(|b| duration_ns(b)).sum();
            let mut t = pts.saturating_sub(total);
            for b in &undated {
                self.write_audio(b, t, pad)?;
                t += duration_ns(b);
            }
        }
        self.write_audio(buffer, pts, pad)?;
        self.audio_next = Some(pts + duration);
        Ok(())
    }

    /// Cuts and writes video frames whose decode times are known, in
    /// decode order; `pad` holds them at the throttle (none at the end of
    /// the stream).
    fn write_video(
        &mut self,
        dated: Vec<Dated<VideoFrame>>,
        pad: Option<&gst::Pad>,
    ) -> Result<(), WriteError> {
        for Dated { frame, dts } in dated {
            let VideoFrame { buffer, running } = frame.item;
            self.place(running, frame.key, Some(dts), pad)?;
            if !self.started {
                continue;
            }
            self.hold(&buffer, frame.pts, Some(dts), frame.key);
            self.position
                .fetch_max(running + frame.duration, Ordering::Relaxed);
        }
        Ok(())
    }

    fn write_audio(
        &mut self,
        buffer: &gst::BufferRef,
        pts: u64,
        pad: &gst::Pad,
    ) -> Result<(), WriteError> {
        // Half a frame of slack: a frame that mostly lies after a cut
        // belongs to the next segment.
        let half = duration_ns(buffer) / 2;
        let pts_out = offset_ns(pts);
        self.place(
            pts + half.min(CUT_SLACK_NS * 20),
            true,
            Some(pts_out),
            Some(pad),
        )?;
        if !self.started {
            return Ok(());
        }
        self.hold(buffer, pts_out, None, true);
        self.position
            .fetch_max(pts + duration_ns(buffer), Ordering::Relaxed);
        Ok(())
    }

    /// Opens the first segment once a frame that may start it comes, and
    /// cuts when a frame that may start the next one comes (`dts`: its
    /// output decode time, ns). Holds the stream at the throttle first.
    fn place(
        &mut self,
        t: u64,
        may_start: bool,
        dts: Option<u64>,
        pad: Option<&gst::Pad>,
    ) -> Result<(), WriteError> {
        if let (Some((throttle, counts)), Some(pad)) = (&self.throttle, pad) {
            throttle.wait(t, pad, *counts);
        }
        if !self.timeline.is_closed() {
            // Cuts found since the producer started (they only ever grow).
            if let Some(t) = self.output.timeline() {
                self.timeline = t;
            }
        }
        if !self.started {
            let start = ns(self.timeline.start(self.index));
            if !may_start || t + CUT_SLACK_NS < start {
                return Ok(());
            }
            if self.kind == StreamKind::Video && t > start + LATE_START_NS {
                // The seek landed off its key frame (or the file lacks it):
                // the segment starts late, and its first second is missing.
                tracing::warn!(
                    segment = self.index,
                    late_ms = (t - start) / 1_000_000,
                    "the first frame of a segment came late"
                );
            }
            self.started = true;
            self.open()?;
        }
        if !may_start {
            return Ok(());
        }
        while let Some(cut) = self.timeline.cut_after(self.index).map(ns) {
            if t + CUT_SLACK_NS < cut {
                break;
            }
            self.close(cut, dts)?;
            self.index += 1;
            self.open()?;
        }
        Ok(())
    }

    /// The stream ended: closes the last segment at the end of the newest
    /// frame and reports where the media ends.
    ///
    /// # Errors
    /// A segment file that cannot be written or moved.
    pub fn finish(&mut self) -> Result<(), WriteError> {
        if self.ended {
            return Ok(());
        }
        let held = self.reorder.finish();
        self.write_video(held, None)?;
        self.ended = true;
        let end = self.position.load(Ordering::Relaxed);
        if self.started {
            let end = end.max(ns(self.timeline.start(self.index)));
            self.close(end, None)?;
            self.output.ended(self.index, Duration::from_nanos(end));
        }
        Ok(())
    }

    /// Takes the caps of the stream: an fMP4 track is configured from
    /// them, and their audio rate is the one every ADTS header must carry.
    pub fn set_caps(&mut self, caps: &gst::CapsRef) {
        self.mux.set_caps(self.kind, caps);
    }

    /// The `.part` file being written, if any (deleted when the producer
    /// is torn down).
    pub fn open_part(&self) -> Option<&Path> {
        self.file.as_ref().map(|(_, p)| p.as_path())
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        // Torn down mid-segment: its unfinished file goes.
        if let Some((file, part)) = self.file.take() {
            drop(file);
            let _ = std::fs::remove_file(part);
        }
    }
}
