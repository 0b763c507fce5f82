//! Key-frame index of the video track of a media file, for cutting a stream
//! copy (remux) into HLS segments on key frames and publishing an exact VOD
//! playlist before any segment exists.
//!
//! All times are the **running time** (in nanosecond precision, as
//! [`Duration`]) that GStreamer gives the key-frame buffers in the pipeline
//!
//! ```text
//! filesrc ! parsebin ! h264parse config-interval=-1
//!         ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink
//! ```
//!
//! i.e. `segment.to_running_time(pts)` (or the DTS when the PTS is missing),
//! for buffers without the `DELTA_UNIT` flag.
//!
//! Two ways to get it:
//! * [`from_container`]: reads the container's own index (Matroska `Cues`,
//!   MP4/MOV sample tables, AVI `idx1`/OpenDML `indx`) without reading the
//!   media data, and reproduces the demuxer's timestamp arithmetic
//!   (`matroskademux` stream start time, `qtdemux` edit lists, `avidemux`
//!   frame numbers). Milliseconds even for a 2-hour film.
//! * [`demux_pass`]: a GStreamer demux-only pass over the whole file (no
//!   decoding); works for every container GStreamer can demux, costs a full
//!   read of the file.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

mod avi;
mod demux;
pub(crate) mod ebml;
mod matroska;
pub(crate) mod mp4;
mod open_gop;

/// Where a [`KeyframeIndex`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Matroska / WebM `Cues` (plus a few sampled clusters, see [`from_container`]).
    Matroska,
    /// MP4 / MOV sample tables (`stss`, `stts`, `ctts`, `elst`, `mdhd`).
    Mp4,
    /// AVI `idx1` or OpenDML (`indx` / `ix##`) index.
    Avi,
    /// A GStreamer demux-only pass over the whole file ([`demux_pass`]).
    DemuxPass,
}

/// Key frames of the (first) video track of a media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyframeIndex {
    /// Key-frame times: the GStreamer running time of each key-frame buffer
    /// (PTS, or DTS when the PTS is missing), ascending, deduplicated.
    pub keyframes: Vec<Duration>,
    /// End of the video, as running time: PTS + duration of the
    /// latest-presented frame. From the container, the frame duration is the
    /// container's own (MP4 `stts`, Matroska BlockDuration/DefaultDuration,
    /// AVI stream length); from the demux pass it is the buffer duration,
    /// which `h264parse` sets to 1/framerate: the two can differ by less than
    /// a frame. `None` when no duration is known or it could not be read
    /// cheaply.
    pub end: Option<Duration>,
    /// Where the index came from.
    pub source: Source,
}

/// Fast path: reads the container's own index, without decoding or reading
/// the media data.
///
/// * Matroska/WebM: `Cues` of the first video track (found through the
///   `SeekHead`, else by walking the top-level elements), `TimecodeScale` from
///   `Info`. The first clusters, the last clusters and three clusters spread
///   over the file are read block header by block header, to reproduce
///   `matroskademux`'s stream start time and the end, and to check that the
///   Cues list every key frame there; the first video block of every other
///   cluster is read too (one small read per cluster), which catches a key
///   frame missing from the Cues wherever clusters start on key frames
///   (ffmpeg, matroskamux). A key frame missing from the Cues in the middle
///   of a cluster elsewhere cannot be seen without reading every block:
///   that risk remains.
/// * MP4/MOV: `stss` sync samples, `stts` durations, `ctts` composition
///   offsets, `elst` edit list (at most one empty edit then one media edit),
///   `mdhd`/`mvhd` timescales; `moov` may be anywhere in the file.
/// * AVI: OpenDML `indx`/`ix##` (preferred, as `avidemux` does) or `idx1`,
///   with the video stream's `strh` scale/rate.
///
/// Returns `None` when the file is of another kind (e.g. MPEG-TS), has no
/// usable index (e.g. Matroska without Cues, fragmented MP4), or on any
/// parse doubt. Never panics on hostile input; reads are bounded.
#[must_use]
pub fn from_container(path: &Path) -> Option<KeyframeIndex> {
    let mut r = Input::open(path)?;
    let mut magic = [0u8; 12];
    r.read_at(0, &mut magic).ok()?;
    if magic[..4] == [0x1A, 0x45, 0xDF, 0xA3] {
        matroska::index(&mut r)
    } else if &magic[..4] == b"RIFF" && &magic[8..12] == b"AVI " {
        avi::index(&mut r)
    } else if matches!(
        &magic[4..8],
        b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide" | b"skip" | b"pnot"
    ) {
        mp4::index(&mut r)
    } else {
        None
    }
}

/// Whether `index` (from [`from_container`]) lists key frames that are
/// not IDR frames (an open-GOP H.264 stream); see `open_gop.rs`. `false`
/// when it cannot be told. Blocking (a seek and one access unit).
pub fn lists_non_idr_key_frames(path: &Path, index: &KeyframeIndex) -> bool {
    index
        .keyframes
        .get(1)
        .is_some_and(|at| open_gop::key_frame_is_idr(path, *at) == Some(false))
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
    demux::run(path, timeout, &mut |_| {})
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
    demux::run(path, timeout, on_progress)
}

/// Upper bound for any single structure read into memory (moov, Cues, index).
const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// A buffered file with its length; every read is bounds-checked.
pub(crate) struct Input {
    inner: BufReader<File>,
    len: u64,
    /// Logical read position, `None` after a failed read.
    pos: Option<u64>,
}

impl Input {
    /// The file at `path`, buffered, read from its start.
    pub(crate) fn open(path: &Path) -> Option<Input> {
        let file = File::open(path).ok()?;
        let len = file.metadata().ok()?.len();
        Some(Input {
            inner: BufReader::with_capacity(16 * 1024, file),
            len,
            pos: Some(0),
        })
    }

    /// File length in bytes.
    fn len(&self) -> u64 {
        self.len
    }

    /// Fills `buf` from absolute byte offset `pos`.
    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = pos.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match self.pos {
            Some(cur) if cur.abs_diff(pos) < (1 << 40) => {
                // In-buffer moves are free; others become one lseek.
                let delta = i64::try_from(i128::from(pos) - i128::from(cur))
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
                self.inner.seek_relative(delta)?;
            }
            _ => {
                self.inner.seek(SeekFrom::Start(pos))?;
            }
        }
        self.pos = None;
        self.inner.read_exact(buf)?;
        self.pos = end;
        Ok(())
    }

    /// Reads `n` bytes at `pos` into a new vector (bounded by [`MAX_ALLOC`]).
    pub(crate) fn read_vec(&mut self, pos: u64, n: u64) -> Option<Vec<u8>> {
        if n > MAX_ALLOC {
            return None;
        }
        let mut v = vec![0u8; usize::try_from(n).ok()?];
        self.read_at(pos, &mut v).ok()?;
        Some(v)
    }

    /// Reads up to `buf.len()` bytes at `pos` (fewer near the end of the file).
    pub(crate) fn read_upto(&mut self, pos: u64, buf: &mut [u8]) -> Option<usize> {
        let avail = self.len.checked_sub(pos)?;
        let n = buf.len().min(usize::try_from(avail).unwrap_or(usize::MAX));
        let slice = buf.get_mut(..n)?;
        self.read_at(pos, slice).ok()?;
        Some(n)
    }
}

/// `value * num / den` rounded down, like `gst_util_uint64_scale`; `None` on
/// division by zero or overflow of `u64`.
fn scale(value: u64, num: u64, den: u64) -> Option<u64> {
    if den == 0 {
        return None;
    }
    u64::try_from(u128::from(value) * u128::from(num) / u128::from(den)).ok()
}

/// Builds the public index from nanosecond times (sorts and deduplicates).
fn finish(mut keys: Vec<u64>, end: Option<u64>, source: Source) -> Option<KeyframeIndex> {
    if keys.is_empty() {
        return None;
    }
    keys.sort_unstable();
    keys.dedup();
    Some(KeyframeIndex {
        keyframes: keys.into_iter().map(Duration::from_nanos).collect(),
        end: end.map(Duration::from_nanos),
        source,
    })
}

/// Big-endian / little-endian field readers on byte slices (`None` past the end).
pub(crate) mod bytes {
    /// Big-endian u16 at `off`.
    pub fn be16(b: &[u8], off: usize) -> Option<u16> {
        Some(u16::from_be_bytes(
            b.get(off..off.checked_add(2)?)?.try_into().ok()?,
        ))
    }
    /// Big-endian u32 at `off`.
    pub fn be32(b: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_be_bytes(
            b.get(off..off.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    /// Big-endian u64 at `off`.
    pub fn be64(b: &[u8], off: usize) -> Option<u64> {
        Some(u64::from_be_bytes(
            b.get(off..off.checked_add(8)?)?.try_into().ok()?,
        ))
    }
    /// Little-endian u16 at `off`.
    pub fn le16(b: &[u8], off: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            b.get(off..off.checked_add(2)?)?.try_into().ok()?,
        ))
    }
    /// Little-endian u32 at `off`.
    pub fn le32(b: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            b.get(off..off.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    /// Little-endian u64 at `off`.
    pub fn le64(b: &[u8], off: usize) -> Option<u64> {
        Some(u64::from_le_bytes(
            b.get(off..off.checked_add(8)?)?.try_into().ok()?,
        ))
    }
}
