//! The demux-only pipeline the library's own passes read files with (the
//! key-frame pass, the open-GOP look, the stream-data pass): the file's
//! source and `parsebin`, no decoding, with the file's container corrected
//! where it needs ([`super::source_fix`]) so that they see the streams the
//! producers will.

use gst::prelude::*;
use std::path::Path;

/// A new pipeline holding the file's source (from its URI) and `parsebin`;
/// returns it, the source and the parsebin (whose pads the caller links).
///
/// # Errors
/// The missing element's name, or a path that has no file URI.
pub(crate) fn file_parsebin(
    path: &Path,
) -> Result<(gst::Pipeline, gst::Element, gst::Element), String> {
    // From the URI, as `uridecodebin` makes it: any bytes a name holds
    // (a Latin-1 name is not UTF-8) reach the source as they are.
    let uri = glib::filename_to_uri(path, None)
        .map_err(|e| format!("{} has no file URI: {e}", path.display()))?;
    let src = gst::Element::make_from_uri(gst::URIType::Src, uri.as_str(), Some("source"))
        .map_err(|e| format!("no source for {}: {e}", path.display()))?;
    super::source_fix::correct_source(path, &src);
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
