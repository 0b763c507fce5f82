//! MP4 / MOV: key frames from the sample tables of the first video track,
//! with `qtdemux`'s timestamp arithmetic.
//!
//! What `qtdemux` (GStreamer 1.22) does and this module reproduces:
//! * sample PTS = `gst_util_uint64_scale(dts + ctts_offset + shift, GST_SECOND, mdhd_timescale)`
//!   (rounded down); ctts offsets are read as signed 32-bit in both box
//!   versions; `shift` = `cslg` compositionToDTSShift, or without `cslg` the
//!   largest negative offset (so `-movflags +negative_cts_offsets` files work);
//! * key frames = samples listed in `stss` (plus `stps`); no `stss` = all;
//! * the edit list becomes the segment: `start` = media_time (mdhd timescale)
//!   plus shift, `base` = a leading empty edit (mvhd timescale), `stop` =
//!   `MIN(media_start + edit duration, movie duration - base + media_start)`
//!   plus shift; without an edit list, one segment over the mdhd duration. So
//!   running time = PTS - start + base, nothing outside `[start, stop]` has a
//!   running time, and a sample whose DTS reaches the edit's media stop is not
//!   pushed. ffmpeg writes such an edit list for H.264 with B-frames
//!   (media_time = the composition delay, e.g. 2 frames) plus an empty edit
//!   when the source started late (21 ms in the tests).
//!
//! `end` = PTS of the latest-presented pushed sample + its `stts` duration.
//! GStreamer's last buffer carries `h264parse`'s nominal 1/framerate instead,
//! so the two ends can differ by a fraction of a frame.
//!
//! Only edit lists of the shape `[empty edit] media edit` at rate 1 are
//! handled; longer edit lists, fragmented files (`mvex`), a missing `moov`
//! and inconsistent tables give `None`.

use super::index::{finish, scale, KeyframeIndex, Source};
use super::input::bytes::{be16, be32, be64};
use super::input::Input;
use super::isobmff::{children, find, path, read_moov, top_box_around};
use super::mp4_chunks::{Chunks, Samples};
use super::mp4_weights::{weights, Timed};

/// Nanoseconds per second.
const SECOND: u64 = 1_000_000_000;
/// Most samples a track may have before we give up (about 2 weeks at 60 fps).
const MAX_SAMPLES: u64 = 80_000_000;

/// Reads the key-frame index of the first video track; see the module docs.
pub fn index(r: &mut Input) -> Option<KeyframeIndex> {
    let (_, moov) = read_moov(r)?;
    let boxes = children(&moov)?;
    if boxes.iter().any(|(t, _)| t == b"mvex") {
        return None; // fragmented: samples live in moof/trun, not in stbl
    }
    let mvhd = find(&boxes, b"mvhd")?;
    let movie = if *mvhd.first()? == 1 {
        (u64::from(be32(mvhd, 20)?), be64(mvhd, 24)?)
    } else {
        (u64::from(be32(mvhd, 12)?), u64::from(be32(mvhd, 16)?))
    };
    for (kind, trak) in &boxes {
        if kind != b"trak" {
            continue;
        }
        if let Some(track) = parse_trak(trak, r.len())? {
            if track.samples > 0 {
                let (mut index, placed) = track.index(movie)?;
                let others = boxes
                    .iter()
                    .filter(|(k, t)| k == b"trak" && !std::ptr::eq(t.as_ptr(), trak.as_ptr()));
                let others: Vec<&[u8]> = others.map(|(_, t)| *t).collect();
                if interleaved(&placed, others.iter().copied()) {
                    place(&mut index, placed, r);
                } else {
                    weigh(&mut index, placed, &others);
                }
                return Some(index);
            }
        }
    }
    None
}

/// Where the key frames of a track lie: (running time, byte offset) of
/// each key frame in decode order, and the end of its last sample; and
/// (running time, bytes of the track's samples before it) of each, and
/// the track's bytes in all.
struct Placed {
    keys: Vec<(u64, u64)>,
    end: u64,
    weights: Vec<(u64, u64)>,
    bytes: u64,
}

/// Whether every audio track's chunks lie among the video's, so that the
/// bytes between two key frames hold the audio of their time too (a file
/// with all its audio after its video does not say what a segment weighs).
fn interleaved<'a>(video: &Placed, others: impl Iterator<Item = &'a [u8]>) -> bool {
    let (Some(first), Some(last)) = (video.keys.iter().map(|k| k.1).min(), Some(video.end)) else {
        return false;
    };
    others.into_iter().all(|trak| {
        let audio = path(trak, &[b"mdia", b"hdlr"]).and_then(|h| h.get(8..12)) == Some(b"soun");
        let span = path(trak, &[b"mdia", b"minf", b"stbl"])
            .and_then(children)
            .and_then(|stbl| Chunks::new(&stbl)?.span());
        !audio || span.is_none_or(|(a, b)| a < last && b >= first)
    })
}

/// Gives `index` the key frames' byte offsets and the end of the `mdat`
/// they lie in, when there is one offset per key frame, each after the
/// one before.
fn place(index: &mut KeyframeIndex, mut placed: Placed, r: &mut Input) {
    placed.keys.sort_unstable();
    placed.keys.dedup_by_key(|k| k.0);
    let offsets: Vec<u64> = placed.keys.iter().map(|k| k.1).collect();
    if offsets.len() != index.keyframes.len() || offsets.windows(2).any(|w| w[0] >= w[1]) {
        return;
    }
    let Some((start, end)) = offsets.first().and_then(|o| top_box_around(r, *o, b"mdat")) else {
        return;
    };
    if start <= offsets[0] && placed.end <= end {
        index.offsets = offsets;
        index.data_end = Some(end);
    }
}

/// Gives `index` stand-ins for its key frames' offsets when the audio
/// does not lie among the video ([`super::mp4_weights`]): the bytes of
/// every track decoded before each key frame.
fn weigh(index: &mut KeyframeIndex, mut placed: Placed, others: &[&[u8]]) {
    let audio = others
        .iter()
        .filter(|t| path(t, &[b"mdia", b"hdlr"]).and_then(|h| h.get(8..12)) == Some(b"soun"));
    let Some(timed) = audio.map(|t| Timed::of_trak(t)).collect::<Option<Vec<_>>>() else {
        return;
    };
    placed.weights.sort_unstable();
    placed.weights.dedup_by_key(|k| k.0);
    if placed.weights.len() != index.keyframes.len() {
        return;
    }
    if let Some((offsets, end)) = weights(&placed.weights, placed.bytes, &timed) {
        index.offsets = offsets;
        index.data_end = Some(end);
    }
}

/// One edit-list entry: (segment duration in movie timescale, media time or -1, rate is 1).
type Edit = (u64, i64, bool);

/// What we need from a video `trak`.
struct Track<'a> {
    /// mdhd timescale (ticks per second) and duration (ticks).
    media: (u64, u64),
    /// `cslg` compositionToDTSShift as qtdemux reads it (u32 after version/flags).
    cslg: Option<u32>,
    /// Number of samples (from `stts`, checked against `stsz`).
    samples: u64,
    /// `stts` payload (after version/flags).
    stts: &'a [u8],
    /// `ctts` payload, if present.
    ctts: Option<&'a [u8]>,
    /// 1-based sync sample numbers from `stss` and `stps`, or `None` = all samples.
    sync: Option<Vec<u32>>,
    /// Edit list, if present.
    edits: Option<Vec<Edit>>,
    /// The `stbl` children: where each sample lies (`stsc`, `stco`/`co64`, `stsz`).
    tables: Vec<([u8; 4], &'a [u8])>,
}

/// Parses a `trak`; `Ok(None)`-like `Some(None)` for non-video tracks, `None` on doubt.
fn parse_trak(trak: &[u8], file_len: u64) -> Option<Option<Track<'_>>> {
    let hdlr = path(trak, &[b"mdia", b"hdlr"])?;
    if hdlr.get(8..12)? != b"vide" {
        return Some(None);
    }
    let mdhd = path(trak, &[b"mdia", b"mdhd"])?;
    let media = if *mdhd.first()? == 1 {
        (u64::from(be32(mdhd, 20)?), be64(mdhd, 24)?)
    } else {
        (u64::from(be32(mdhd, 12)?), u64::from(be32(mdhd, 16)?))
    };
    if media.0 == 0 {
        return None;
    }
    let tables = children(path(trak, &[b"mdia", b"minf", b"stbl"])?)?;
    let stbl = tables.as_slice();
    let stts = find(stbl, b"stts")?.get(4..)?;
    let mut samples = 0u64;
    for i in 0..be32(stts, 0)? as usize {
        samples += u64::from(be32(stts, 4 + i.checked_mul(8)?)?);
    }
    if samples > MAX_SAMPLES {
        return None;
    }
    // stsz must agree, and bounds the work on hostile input: a table of sizes
    // has one entry per sample, a constant size times the count fits the file.
    let stsz = find(stbl, b"stsz")?;
    let (size, count) = (u64::from(be32(stsz, 4)?), u64::from(be32(stsz, 8)?));
    let fits = if size == 0 {
        count.checked_mul(4)?.checked_add(12)? <= stsz.len() as u64
    } else {
        count.checked_mul(size)? <= file_len
    };
    if count != samples || !fits {
        return None;
    }
    let ctts = match find(stbl, b"ctts") {
        Some(c) => Some(c.get(4..)?),
        None => None,
    };
    let cslg = match find(stbl, b"cslg") {
        Some(c) => Some(be32(c, 4)?),
        None => None,
    };
    let mut sync: Option<Vec<u32>> = None;
    for kind in [b"stss", b"stps"] {
        if let Some(b) = find(stbl, kind) {
            let n = be32(b, 4)? as usize;
            let list = sync.get_or_insert_with(Vec::new);
            for i in 0..n {
                list.push(be32(b, 8 + i.checked_mul(4)?)?);
            }
        }
    }
    if sync.as_ref().is_some_and(Vec::is_empty) {
        return None;
    }
    let edits = match path(trak, &[b"edts", b"elst"]) {
        Some(elst) => Some(parse_elst(elst)?),
        None => None,
    };
    Some(Some(Track {
        media,
        cslg,
        samples,
        stts,
        ctts,
        sync,
        edits,
        tables: tables.clone(),
    }))
}

/// Parses an `elst` payload.
fn parse_elst(elst: &[u8]) -> Option<Vec<Edit>> {
    let v1 = *elst.first()? == 1;
    let n = be32(elst, 4)? as usize;
    let step = if v1 { 20 } else { 12 };
    let mut out = Vec::with_capacity(n.min(64));
    for i in 0..n {
        let off = 8usize.checked_add(i.checked_mul(step)?)?;
        let (dur, time, rate_off) = if v1 {
            (be64(elst, off)?, be64(elst, off + 8)? as i64, off + 16)
        } else {
            (
                u64::from(be32(elst, off)?),
                i64::from(be32(elst, off + 4)? as i32),
                off + 8,
            )
        };
        let rate_is_one = be16(elst, rate_off)? == 1 && be16(elst, rate_off + 2)? == 0;
        out.push((dur, time, rate_is_one));
    }
    Some(out)
}

/// The GStreamer segment `qtdemux` gives the track, in nanoseconds.
struct Segment {
    /// Segment start (media time of the edit, plus the ctts shift).
    start: u64,
    /// Segment stop, if any.
    stop: Option<u64>,
    /// Running time of `start` (duration of a leading empty edit).
    base: u64,
    /// Samples whose DTS reaches this (media time) are not pushed.
    media_stop: Option<u64>,
}

/// Timescales and durations the segment depends on.
struct Times {
    /// mvhd timescale and duration (ticks).
    movie: (u64, u64),
    /// mdhd timescale and duration (ticks).
    media: (u64, u64),
    /// cslg / negative-ctts shift (media ticks).
    shift: u64,
}

impl Segment {
    /// From the edit list, as `qtdemux_parse_segments` and
    /// `gst_qtdemux_stream_segment_get_boundaries` do (`None` for edit lists we do not model).
    fn new(edits: Option<&[Edit]>, t: &Times) -> Option<Segment> {
        let known = |d: u64| d != 0 && d != u64::from(u32::MAX) && d != u64::MAX;
        let movie_dur = known(t.movie.1)
            .then(|| scale(t.movie.1, SECOND, t.movie.0))
            .flatten();
        let (base, start, media_stop) = match edits {
            None | Some([]) => {
                let d = known(t.media.1)
                    .then(|| scale(t.media.1, SECOND, t.media.0))
                    .flatten();
                (0, 0, d)
            }
            Some(edits) => {
                let (empty, media) = match edits {
                    [m] => (0, m),
                    [(d, -1, _), m] => (*d, m),
                    _ => return None,
                };
                let (dur, media_time, rate_is_one) = *media;
                if !rate_is_one || media_time < 0 {
                    return None;
                }
                let base = scale(empty, SECOND, t.movie.0)?;
                let start = scale(u64::try_from(media_time).ok()?, SECOND, t.media.0)?;
                let media_stop = if dur == 0 {
                    None
                } else {
                    let end = scale(empty.checked_add(dur)?, SECOND, t.movie.0)?;
                    Some(start.checked_add(end.checked_sub(base)?)?)
                };
                (base, start, media_stop)
            }
        };
        // stop = MIN (media_stop, movie_duration - segment.time + media_start)
        let stop = match (media_stop, movie_dur) {
            (Some(m), Some(d)) => Some(m.min((d.checked_add(start)?).checked_sub(base)?)),
            (m, _) => m,
        };
        let shift = scale(t.shift, SECOND, t.media.0)?;
        Some(Segment {
            start: start.checked_add(shift)?,
            stop: match stop {
                Some(s) => Some(s.checked_add(shift)?),
                None => None,
            },
            base,
            media_stop,
        })
    }

    /// Running time of a timestamp, like `gst_segment_to_running_time`.
    fn running_time(&self, t: u64) -> Option<u64> {
        if t < self.start || self.stop.is_some_and(|s| t > s) {
            return None;
        }
        (t - self.start).checked_add(self.base)
    }
}

/// Run-length table reader over (count, value) pairs.
struct Runs<'a> {
    data: &'a [u8],
    entries: usize,
    idx: usize,
    left: u32,
}

impl<'a> Runs<'a> {
    /// Reader over a `stts`/`ctts` payload (entry count first).
    fn new(data: &'a [u8]) -> Option<Runs<'a>> {
        Some(Runs {
            data,
            entries: be32(data, 0)? as usize,
            idx: 0,
            left: 0,
        })
    }

    /// The raw 32-bit value for the next sample, `None` when the table runs out.
    fn next_value(&mut self) -> Option<u32> {
        while self.left == 0 {
            if self.idx >= self.entries {
                return None;
            }
            let off = 4usize.checked_add(self.idx.checked_mul(8)?)?;
            self.left = be32(self.data, off)?;
            self.idx += 1;
        }
        self.left -= 1;
        let off = 4usize.checked_add((self.idx - 1).checked_mul(8)?)?;
        be32(self.data, off + 4)
    }
}

impl Track<'_> {
    /// Walks all samples and builds the index (`movie` = mvhd timescale
    /// and duration), and where its key frames lie (no key frame placed
    /// when the chunk tables do not cover every sample).
    fn index(&self, movie: (u64, u64)) -> Option<(KeyframeIndex, Placed)> {
        // qtdemux reads ctts offsets as signed 32-bit in both box versions and,
        // without cslg, shifts them so the smallest is >= 0.
        let offset_of = |v: u32| -> i64 { i64::from(v as i32) };
        let shift = match (self.cslg, self.ctts) {
            (_, None) => 0,
            (Some(c), Some(_)) => i64::from(c),
            (None, Some(c)) => {
                // minimum over the table entries (not per sample: counts can be huge)
                let mut least = 0i64;
                for i in 0..be32(c, 0)? as usize {
                    least = least.min(offset_of(be32(c, 8 + i.checked_mul(8)?)?));
                }
                -least
            }
        };
        let times = Times {
            movie,
            media: self.media,
            shift: u64::try_from(shift).ok()?,
        };
        let seg = Segment::new(self.edits.as_deref(), &times)?;
        let mut sync = self.sync.clone();
        if let Some(s) = sync.as_mut() {
            s.sort_unstable();
            s.dedup();
        }
        let mut next_sync = 0usize;
        let mut stts = Runs::new(self.stts)?;
        let mut ctts = match self.ctts {
            Some(c) => Some(Runs::new(c)?),
            None => None,
        };
        let ts = self.media.0;
        let mut keys = Vec::new();
        let mut last: Option<(u64, u64)> = None; // (running time, duration) of latest PTS
        let mut dts = 0u64;
        let mut places = Samples::new(&self.tables);
        let mut placed = Placed {
            keys: Vec::new(),
            end: 0,
            weights: Vec::new(),
            bytes: 0,
        };
        for n in 1..=self.samples {
            let place = places.as_mut().and_then(Iterator::next);
            let before = placed.bytes;
            match place {
                Some((at, size)) => {
                    placed.end = placed.end.max(at.saturating_add(u64::from(size)));
                    placed.bytes = placed.bytes.saturating_add(u64::from(size));
                }
                None => places = None,
            }
            let delta = u64::from(stts.next_value()?);
            let off = match ctts.as_mut() {
                Some(runs) => offset_of(runs.next_value()?),
                None => 0,
            };
            let dts_ns = scale(dts, SECOND, ts)?;
            let next_dts = dts.checked_add(delta)?;
            // qtdemux leaves a segment once a sample's DTS reaches its media stop.
            if seg.media_stop.is_some_and(|s| dts_ns >= s) {
                break;
            }
            let pts_ticks = u64::try_from(i64::try_from(dts).ok()? + off + shift).ok()?;
            let pts_ns = scale(pts_ticks, SECOND, ts)?;
            let dur_ns = scale(next_dts, SECOND, ts)?.checked_sub(dts_ns)?;
            let is_key = match &sync {
                None => true,
                Some(s) => {
                    while s.get(next_sync).is_some_and(|&k| u64::from(k) < n) {
                        next_sync += 1;
                    }
                    s.get(next_sync).is_some_and(|&k| u64::from(k) == n)
                }
            };
            if let Some(rt) = seg.running_time(pts_ns) {
                if is_key {
                    keys.push(rt);
                    placed.keys.extend(place.map(|(at, _)| (rt, at)));
                    placed.weights.push((rt, before));
                }
                if last.is_none_or(|(t, _)| rt >= t) {
                    last = Some((rt, dur_ns));
                }
            }
            dts = next_dts;
        }
        if places.is_none() {
            placed.keys.clear();
            placed.weights.clear();
        }
        let index = finish(keys, last.and_then(|(t, d)| t.checked_add(d)), Source::Mp4)?;
        Some((index, placed))
    }
}
