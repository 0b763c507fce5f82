//! Key-frame index of the video track of a media file, for cutting a stream
//! copy (remux) into HLS segments on key frames and publishing an exact VOD
//! playlist before any segment exists.
//!
//! All times are the **running time** (in nanosecond precision, as
//! [`std::time::Duration`]) that GStreamer gives the key-frame buffers in the pipeline
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
//! * the demux pass (`crate::library::passes`): a GStreamer demux-only
//!   pass over the whole file (no decoding); works for every container
//!   GStreamer can demux, costs a full read of the file.

use super::index::KeyframeIndex;
use super::input::Input;
use super::{avi, matroska, mp4};
use std::path::Path;

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
    index_of(&mut Input::open(path)?)
}

/// [`from_container`] on `r`, a file's bytes.
pub fn index_of(r: &mut Input) -> Option<KeyframeIndex> {
    let mut magic = [0u8; 12];
    r.read_at(0, &mut magic).ok()?;
    if magic[..4] == [0x1A, 0x45, 0xDF, 0xA3] {
        matroska::cues::index(r)
    } else if &magic[..4] == b"RIFF" && &magic[8..12] == b"AVI " {
        avi::index(r)
    } else if matches!(
        &magic[4..8],
        b"ftyp" | b"moov" | b"mdat" | b"free" | b"wide" | b"skip" | b"pnot"
    ) {
        mp4::index(r)
    } else {
        None
    }
}
