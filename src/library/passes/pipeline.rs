//! The demux-only pipeline the library's own passes read files with (the
//! key-frame pass, the open-GOP look, the stream-data pass): `filesrc !
//! parsebin`, no decoding, with the file's MP4 header corrected where it
//! needs ([`super::header_fix`]) so that they see the streams the
//! producers will.

use gst::prelude::*;
use std::path::Path;

/// A new pipeline holding `filesrc location=path ! parsebin`; returns it,
/// the source and the parsebin (whose pads the caller links).
///
/// # Errors
/// The missing element's name, or a path that is not UTF-8.
pub(crate) fn file_parsebin(
    path: &Path,
) -> Result<(gst::Pipeline, gst::Element, gst::Element), String> {
    let location = path
        .to_str()
        .ok_or_else(|| format!("{} is not a UTF-8 path", path.display()))?;
    let src = make("filesrc")?;
    src.set_property("location", location);
    super::header_fix::correct_source(path, &src);
    let parsebin = make("parsebin")?;
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([&src, &parsebin])
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    src.link(&parsebin)
        .map_err(|e| format!("pipeline setup failed: {e}"))?;
    Ok((pipeline, src, parsebin))
}

/// A `fakesink` for a stream nobody reads: `sync=false async=false`, so
/// the demuxer's one streaming thread never waits on it in preroll.
///
/// # Errors
/// When `fakesink` is missing.
pub(crate) fn discard_sink() -> Result<gst::Element, String> {
    let sink = make("fakesink")?;
    sink.set_property("sync", false);
    sink.set_property("async", false);
    Ok(sink)
}

/// Creates an element or explains which plugin is missing.
pub(crate) fn make(factory: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| format!("GStreamer element {factory} is missing"))
}
