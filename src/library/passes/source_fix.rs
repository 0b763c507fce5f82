//! The container patches ([`crate::container::patch`]) applied to a
//! pipeline's source element: the bytes of every buffer that holds a
//! patched range are rewritten as they leave the source, so the demuxer
//! (and the Discoverer) read the corrected file. Buffers carry their file
//! offset in push and pull mode alike.

use crate::container::fixes::source_patches;
use crate::container::patch::SourcePatch;
use gst::prelude::*;
use std::path::Path;

/// Writes `patches` into every buffer leaving `source`'s `src` pad that
/// holds their bytes.
pub fn apply(source: &gst::Element, patches: Vec<SourcePatch>) {
    let Some(pad) = source.static_pad("src") else {
        return;
    };
    crate::guard::probe(&pad, gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data {
            // GST_BUFFER_OFFSET_NONE (u64::MAX): no offset, nothing to do.
            let start = buffer.offset();
            let len = buffer.size() as u64;
            let touched = |p: &SourcePatch| start < p.end() && p.offset < start.saturating_add(len);
            if start == u64::MAX || !patches.iter().any(touched) {
                return gst::PadProbeReturn::Ok;
            }
            let buffer = buffer.make_mut();
            if let Ok(mut map) = buffer.map_writable() {
                for p in patches.iter().filter(|p| touched(p)) {
                    p.apply_to(start, &mut map);
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// [`apply`]s the patches `path` needs to `source`, if any; for the source
/// elements hlsd's pipelines and the Discoverer read files with.
pub fn correct_source(path: &Path, source: &gst::Element) {
    let patches = source_patches(path);
    if !patches.is_empty() {
        tracing::debug!(path = %path.display(), patches = patches.len(), "correcting a file's container as it is read");
        apply(source, patches);
    }
}
