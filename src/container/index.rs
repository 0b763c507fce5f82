//! The key-frame index of a file's video track: what the container
//! readers ([`super::matroska`], [`super::mp4`], [`super::avi`]) and the
//! demux pass (`crate::library::passes`) both give.

use std::time::Duration;

/// Where a [`KeyframeIndex`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Matroska / WebM `Cues` (plus a few sampled clusters, see [`super::keyframes::from_container`]).
    Matroska,
    /// MP4 / MOV sample tables (`stss`, `stts`, `ctts`, `elst`, `mdhd`).
    Mp4,
    /// AVI `idx1` or OpenDML (`indx` / `ix##`) index.
    Avi,
    /// A GStreamer demux-only pass over the whole file.
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
    /// The byte offset in the file where each key frame's data starts, or
    /// a point before it and after the key frame before (Matroska: its
    /// cluster), in the order of `keyframes`; empty when the container
    /// does not say. What a copy's segments weigh, before any is made.
    pub offsets: Vec<u64>,
    /// The byte offset where the media data ends (with `offsets`).
    pub data_end: Option<u64>,
}

/// `value * num / den` rounded down, like `gst_util_uint64_scale`; `None` on
/// division by zero or overflow of `u64`.
pub fn scale(value: u64, num: u64, den: u64) -> Option<u64> {
    if den == 0 {
        return None;
    }
    u64::try_from(u128::from(value) * u128::from(num) / u128::from(den)).ok()
}

/// Builds the public index from nanosecond times (sorts and deduplicates).
pub fn finish(mut keys: Vec<u64>, end: Option<u64>, source: Source) -> Option<KeyframeIndex> {
    if keys.is_empty() {
        return None;
    }
    keys.sort_unstable();
    keys.dedup();
    Some(KeyframeIndex {
        keyframes: keys.into_iter().map(Duration::from_nanos).collect(),
        end: end.map(Duration::from_nanos),
        source,
        offsets: Vec::new(),
        data_end: None,
    })
}
