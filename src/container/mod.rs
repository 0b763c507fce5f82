//! Pure readers of container bytes: no GStreamer, no HTTP, no file
//! system beyond reading the one file they are given. Every reader takes
//! hostile input (lying sizes, truncation, garbage) and answers `None`
//! rather than panic, loop or allocate without bound; property tests
//! (`properties.rs`) feed them random bytes, random bytes behind each
//! container's magic, and made files truncated or garbled.
//!
//! - [`input`]: bounds-checked byte input over a file or bytes in memory,
//!   and big- and little-endian field readers;
//! - [`isobmff`]: the one MP4 / QuickTime / CMAF box reader and writer
//!   (ISO/IEC 14496-12);
//! - [`ebml`]: EBML elements (RFC 8794), under Matroska and WebM;
//! - [`index`]: the key-frame index of a video track, the type every
//!   reader of key frames gives;
//! - [`keyframes`]: that index from the container's own index, by kind;
//! - [`mp4`], [`matroska`], [`avi`]: each container's index (sample
//!   tables, `Cues`, `idx1`/OpenDML);
//! - [`matroska_tracks`]: the track flags Matroska keeps and the
//!   Discoverer does not report; [`dolby_vision`]: a stream's Dolby
//!   Vision profile and base layer (MP4 `dvcC`, Matroska block additions);
//! - [`mp4_chunks`]: where each sample of an MP4 track lies (its
//!   chunk tables); [`mp4_weights`]: what lies between two key frames of
//!   an MP4 whose tracks are not interleaved (sample sizes by time);
//! - [`mp4_header`]: an MP4 movie header that claims far more than its
//!   tracks hold, and the bytes that correct it;
//! - [`iframe`]: a video segment's first picture as an I-frame
//!   playlist's resource (MPEG-TS and fMP4);
//! - [`h264`]: what the passes need to know of an H.264 access unit;
//! - [`patch`]: bytes put in place of a file's own as it is read;
//! - [`fixes`]: the patches a file needs where a demuxer refuses a file
//!   ffmpeg plays: [`mp4_header`], [`ts`] (tables after the streams),
//!   [`asf`] (a header that lies).

pub mod asf;
pub mod avi;
pub mod dolby_vision;
pub mod ebml;
pub mod fixes;
pub mod h264;
pub mod iframe;
pub mod index;
pub mod input;
pub mod isobmff;
pub mod keyframes;
pub mod matroska;
pub mod matroska_tracks;
pub mod mp4;
pub mod mp4_chunks;
pub mod mp4_header;
pub mod mp4_weights;
pub mod patch;
#[cfg(test)]
mod properties;
pub mod ts;
