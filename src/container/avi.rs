//! AVI: key frames of the first video stream from the OpenDML index
//! (`indx` super index → `ix##` chunks) or the legacy `idx1`, with
//! `avidemux`'s timestamp arithmetic.
//!
//! What `avidemux` (GStreamer 1.22) does and this module reproduces:
//! * video time of the n-th index entry of the stream (0-based, counting every
//!   entry, empty ones too) = `gst_util_uint64_scale(n, scale * GST_SECOND, rate)`
//!   from the stream's `strh`, rounded down: AVI has no timestamps, only frame
//!   numbers, so with B-frames these are *decode* times;
//! * key frames (AVIIF_KEYFRAME in `idx1`, size bit 31 clear in `ix##`) get PTS
//!   = DTS = that time; other frames get only a DTS;
//! * `end` is the stream length (index entries × scale/rate); GStreamer's last
//!   buffer ends at its DTS + the frame duration `h264parse` derives from the
//!   frame rate, which can differ by less than a frame;
//! * the OpenDML index is used when present, `idx1` otherwise; `idx1` entries
//!   with id 0 or `rec `, or offset 0 (after the first), are skipped.
//!
//! Each key frame's chunk position (what a copy's segments weigh) comes
//! with it when every one lies in the `movi` list, in order.
//!
//! Returns `None` for files without an index (avidemux would scan), a
//! `dwStart` other than 0, field indexes, or anything inconsistent.

use super::index::{finish, scale, KeyframeIndex, Source};
use super::input::bytes::{le16, le32, le64};
use super::input::{Input, MAX_ALLOC};

/// Nanoseconds per second.
const SECOND: u64 = 1_000_000_000;
/// Most chunks walked at one level.
const MAX_CHUNKS: u32 = 1_000_000;
/// Most OpenDML standard-index chunks followed.
const MAX_SUBINDEXES: usize = 100_000;

/// The first video stream's header and index entries as (size, keyframe).
struct Video {
    /// Stream number (position among `strl` lists).
    number: u32,
    /// Number of streams in the file.
    streams: u32,
    /// `strh` dwScale / dwRate: one frame lasts scale/rate seconds.
    scale: u64,
    /// See `scale`.
    rate: u64,
    /// OpenDML super index entries: (absolute offset, size) of `ix##` chunks.
    superindex: Vec<(u64, u32)>,
}

/// Reads the key-frame index of the first video stream; see the module docs.
pub fn index(r: &mut Input) -> Option<KeyframeIndex> {
    let riff_end = 8u64.checked_add(u64::from(le32(&read(r, 4, 4)?, 0)?))?;
    let riff_end = riff_end.min(r.len());
    let mut video = None;
    let mut idx1 = None;
    // The `movi` list: where its `movi` fourcc lies, and where it ends.
    let mut movi = None;
    let mut pos = 12u64;
    for _ in 0..MAX_CHUNKS {
        if pos.checked_add(8)? > riff_end {
            break;
        }
        let head = read(r, pos, 8)?;
        let size = u64::from(le32(&head, 4)?);
        let data = pos + 8;
        match head.get(..4)? {
            b"LIST" => {
                let kind = read(r, data, 4)?;
                if kind == b"hdrl" {
                    video = Some(parse_hdrl(&read(r, data + 4, size.checked_sub(4)?)?)?);
                } else if kind == b"movi" && movi.is_none() {
                    movi = Some((data, data.checked_add(size)?.min(riff_end)));
                }
            }
            b"idx1" => idx1 = Some(read(r, data, size)?),
            _ => {}
        }
        pos = data.checked_add(size)?.checked_add(size & 1)?;
    }
    let video = video?;
    if video.scale == 0 || video.rate == 0 {
        return None;
    }
    let entries = if video.superindex.is_empty() {
        idx1_entries(&idx1?, video.number, video.streams)?
    } else {
        odml_entries(r, &video)?
    };
    let time = |n: u64| scale(n, video.scale.checked_mul(SECOND)?, video.rate);
    let mut keys = Vec::new();
    let mut places = Vec::new();
    for (n, e) in entries.iter().enumerate() {
        // Nothing is pushed for an empty chunk (ffmpeg pads VFR input with them).
        if e.key && e.size > 0 {
            keys.push(time(n as u64)?);
            places.push(e.offset);
        }
    }
    // The last frame lasts until the end of the stream (trailing empty chunks included).
    let end = Some(time(entries.len() as u64)?);
    let mut index = finish(keys, end, Source::Avi)?;
    if let Some(movi) = movi {
        place(&mut index, places, movi, video.superindex.is_empty(), r);
    }
    Some(index)
}

/// Gives `index` its key frames' chunk positions (`places`, in time
/// order) and the end of the `movi` list, when each lies in that list
/// after the one before. `idx1` offsets count from the `movi` fourcc, or
/// from the file's start in some writers: the one whose first offset
/// holds a chunk of the video stream is taken, as `avidemux` does.
fn place(
    index: &mut KeyframeIndex,
    mut places: Vec<u64>,
    movi: (u64, u64),
    idx1: bool,
    r: &mut Input,
) {
    let (start, end) = movi;
    if idx1 {
        let Some(first) = places.first().copied() else {
            return;
        };
        let is_chunk = |r: &mut Input, at: u64| {
            read(r, at, 4).is_some_and(|id| id.get(2..4).is_some_and(|t| t == b"dc" || t == b"db"))
        };
        let base = if start.checked_add(first).is_some_and(|at| is_chunk(r, at)) {
            start
        } else if is_chunk(r, first) {
            0
        } else {
            return;
        };
        for p in &mut places {
            *p = p.saturating_add(base);
        }
    }
    let inside = places.iter().all(|p| (start..end).contains(p));
    if places.len() == index.keyframes.len() && inside && places.windows(2).all(|w| w[0] < w[1]) {
        index.offsets = places;
        index.data_end = Some(end);
    }
}

/// Reads `n` bytes at `pos`.
fn read(r: &mut Input, pos: u64, n: u64) -> Option<Vec<u8>> {
    r.read_vec(pos, n)
}

/// Iterates the sub-chunks of a chunk payload: (fourcc, payload).
fn chunks(data: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while let (Some(id), Some(size)) = (data.get(off..off + 4), le32(data, off + 4)) {
        let start = off + 8;
        let Some(end) = start.checked_add(size as usize) else {
            break;
        };
        let Some(body) = data.get(start..end) else {
            break;
        };
        out.push((id, body));
        off = end + (end & 1);
        if out.len() as u32 >= MAX_CHUNKS {
            break;
        }
    }
    out
}

/// Finds the first video stream in the `hdrl` list payload (after the `hdrl` fourcc).
fn parse_hdrl(hdrl: &[u8]) -> Option<Video> {
    let mut streams = 0u32;
    let mut video: Option<Video> = None;
    for (id, body) in chunks(hdrl) {
        if id != b"LIST" || body.get(..4)? != b"strl" {
            continue;
        }
        let parts = chunks(body.get(4..)?);
        let strh = parts.iter().find(|(id, _)| *id == b"strh")?.1;
        if video.is_none() && strh.get(..4)? == b"vids" {
            if le32(strh, 28)? != 0 {
                return None; // dwStart: not modelled
            }
            let mut superindex = Vec::new();
            if let Some((_, indx)) = parts.iter().find(|(id, _)| *id == b"indx") {
                superindex = parse_superindex(indx)?;
            }
            video = Some(Video {
                number: streams,
                streams: 0,
                scale: u64::from(le32(strh, 20)?),
                rate: u64::from(le32(strh, 24)?),
                superindex,
            });
        }
        streams += 1;
    }
    let mut video = video?;
    video.streams = streams;
    Some(video)
}

/// Parses an OpenDML super index (`indx` of type AVI_INDEX_OF_INDEXES).
fn parse_superindex(indx: &[u8]) -> Option<Vec<(u64, u32)>> {
    let longs_per_entry = le16(indx, 0)?;
    let index_type = *indx.get(3)?;
    let n = le32(indx, 4)? as usize;
    if index_type != 0 || longs_per_entry != 4 || n > MAX_SUBINDEXES {
        return None;
    }
    (0..n)
        .map(|i| {
            let off = 24 + i * 16;
            Some((le64(indx, off)?, le32(indx, off + 8)?))
        })
        .collect()
}

/// One index entry of the video stream.
struct Entry {
    /// Bytes of the frame.
    size: u32,
    /// Whether it is a key frame.
    key: bool,
    /// Where its chunk starts: from the file's start (OpenDML), or as
    /// `idx1` gives it (see [`place`]).
    offset: u64,
}

/// Index entries of the video stream from the `ix##` chunks.
fn odml_entries(r: &mut Input, video: &Video) -> Option<Vec<Entry>> {
    let mut out = Vec::new();
    for &(offset, size) in &video.superindex {
        let head = read(r, offset, 8)?;
        let chunk_size = u64::from(le32(&head, 4)?);
        if head.get(..2)? != b"ix" || chunk_size > MAX_ALLOC || chunk_size + 8 < u64::from(size) {
            return None;
        }
        let ix = read(r, offset + 8, chunk_size)?;
        let longs_per_entry = le16(&ix, 0)?;
        let (sub_type, index_type) = (*ix.get(2)?, *ix.get(3)?);
        if longs_per_entry != 2 || sub_type != 0 || index_type != 1 {
            return None; // field indexes and other kinds are not modelled
        }
        let n = le32(&ix, 4)? as usize;
        let base = le64(&ix, 12)?;
        for i in 0..n {
            let at = 24 + i.checked_mul(8)?;
            let raw = le32(&ix, at + 4)?;
            // The offset points at the frame's data, after its chunk header.
            let data = base.saturating_add(u64::from(le32(&ix, at)?));
            out.push(Entry {
                size: raw & 0x7FFF_FFFF,
                key: raw & 0x8000_0000 == 0,
                offset: data.saturating_sub(8),
            });
        }
    }
    Some(out)
}

/// Index entries of stream `number` from `idx1`, as avidemux filters them.
fn idx1_entries(idx1: &[u8], number: u32, streams: u32) -> Option<Vec<Entry>> {
    let mut out = Vec::new();
    let mut added = 0u64;
    for e in idx1.chunks_exact(16) {
        let id = le32(e, 0)?;
        let offset = le32(e, 8)?;
        if id == 0 || id == u32::from_le_bytes(*b"rec ") || (offset == 0 && added > 0) {
            continue;
        }
        // CHUNKID_TO_STREAMNR: two ASCII decimal digits
        let d0 = i64::from(id & 0xff) - i64::from(b'0');
        let d1 = i64::from((id >> 8) & 0xff) - i64::from(b'0');
        let nr = d0 * 10 + d1;
        if !(0..i64::from(streams)).contains(&nr) {
            continue;
        }
        added += 1;
        if nr == i64::from(number) {
            out.push(Entry {
                size: le32(e, 12)?,
                key: le32(e, 4)? & 0x10 != 0,
                offset: u64::from(offset),
            });
        }
    }
    Some(out)
}
