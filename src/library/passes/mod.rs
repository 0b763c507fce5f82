//! The GStreamer passes the library runs over a file, apart from the
//! pipelines that make segments: each reads the file through a demux-only
//! pipeline ([`pipeline`]: no decoding) with the MP4 header fix
//! ([`source_fix`]) applied.
//!
//! - [`keyframes`]: the demux pass, the key frames of a file whose
//!   container has no usable index;
//! - [`open_gop`]: whether a container's key frames are IDR frames;
//! - [`stream_data`]: which declared streams carry data (in the prober);
//! - [`still`]: key frames decoded alone, to a JPEG (a poster frame) or
//!   to raw pictures (a thumbnail sheet's tiles), and a JPEG encoder; the one
//!   pass that decodes;
//! - [`source_fix`]: the container patches (MP4 header, MPEG-TS tables,
//!   ASF header) on a source element;
//! - [`one_codec`]: each demuxed stream kept to its first codec (also in
//!   the producers' pipelines).
//!
//! The pure readers of container bytes are [`crate::container`].

pub mod keyframes;
pub mod one_codec;
pub mod open_gop;
mod pipeline;
pub mod source_fix;
pub mod still;
pub mod stream_data;

pub use keyframes::{demux_pass, demux_pass_progress};
pub use open_gop::lists_non_idr_key_frames;
