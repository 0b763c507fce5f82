//! The MP4 header fix applied to a pipeline's source element: the patch
//! [`crate::container::mp4_header`] finds for a file whose movie header
//! claims far more than its tracks hold is written into the buffers that
//! hold those bytes, so `qtdemux` (and the Discoverer) see the tracks
//! ffmpeg plays.

use crate::container::mp4_header::{header_patch, HeaderPatch};
use gst::prelude::*;
use std::path::Path;

/// Writes `patch` into every buffer leaving `source`'s `src` pad that
/// holds its bytes (buffers carry their file offset, push and pull mode
/// alike).
pub fn apply(source: &gst::Element, patch: HeaderPatch) {
    let Some(pad) = source.static_pad("src") else {
        return;
    };
    crate::guard::probe(&pad, gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data {
            // GST_BUFFER_OFFSET_NONE (u64::MAX): no offset, nothing to do.
            let start = buffer.offset();
            let len = buffer.size() as u64;
            let end = patch.offset + patch.bytes.len() as u64;
            if start == u64::MAX || start >= end || start + len <= patch.offset {
                return gst::PadProbeReturn::Ok;
            }
            let buffer = buffer.make_mut();
            if let Ok(mut map) = buffer.map_writable() {
                for (i, b) in patch.bytes.iter().enumerate() {
                    let at = patch.offset + i as u64;
                    if at >= start && at < start + len {
                        map[(at - start) as usize] = *b;
                    }
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// [`apply`]s the correction `path` needs to `source`, if any; for the
/// source elements hlsd's pipelines and the Discoverer read files with.
pub fn correct_source(path: &Path, source: &gst::Element) {
    if let Some(patch) = header_patch(path) {
        tracing::debug!(path = %path.display(), offset = patch.offset, "correcting an MP4 header that claims far more than its tracks");
        apply(source, patch);
    }
}
