//! The appsink at the end of each rendition's branch: its samples, as
//! running times, go to the rendition's [`SegmentWriter`] in the streaming
//! thread; a write that fails becomes an error on the pipeline's bus.

use super::packager::WriteError;
use super::segmenter::SegmentWriter;
use gst::prelude::*;
use std::sync::Arc;

/// A sample's buffer with its PTS and DTS as running times (ns), either
/// `None` when absent; a PTS before running time 0 is `None` too, while a
/// DTS may be negative (an encoder's B-frame delay before running time 0).
/// A PTS before the segment's start still has its running time: after a
/// seek to a key frame, the leading pictures of an open GOP (decoded
/// after it, shown before it) come before the start, and a segment made
/// by a producer that seeked there must hold them as one made from the
/// beginning does.
pub fn running_times(sample: &gst::Sample) -> Option<(&gst::BufferRef, Option<u64>, Option<i64>)> {
    let buffer = sample.buffer()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?;
    let pts = buffer
        .pts()
        .and_then(|t| match segment.to_running_time_full(t)? {
            gst::Signed::Positive(t) => Some(t.nseconds()),
            gst::Signed::Negative(_) => None,
        });
    let dts = buffer
        .dts()
        .and_then(|t| match segment.to_running_time_full(t)? {
            gst::Signed::Positive(t) => i64::try_from(t.nseconds()).ok(),
            gst::Signed::Negative(t) => i64::try_from(t.nseconds()).ok().map(|n| -n),
        });
    Some((buffer, pts, dts))
}

/// An appsink feeding `writer` in the streaming thread. `async=false`:
/// with no queue in front (a remux), a sink waiting for preroll would
/// block the demuxer before the other stream's sink got data.
pub fn writer_sink(name: &str, writer: SegmentWriter) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder()
        .name(name)
        .sync(false)
        .enable_last_sample(false)
        .build();
    sink.set_property("async", false);
    let writer = Arc::new(std::sync::Mutex::new(writer));
    let on_eos = writer.clone();
    let mut last_caps: Option<gst::Caps> = None;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some((buffer, pts, dts)) = running_times(&sample) else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let pad = sink.static_pad("sink").expect("appsink has a sink pad");
                let mut w = writer.lock().expect("segment writer");
                if let Some(caps) = sample.caps() {
                    // Caps change rarely: compared by pointer, not field by field.
                    if last_caps.as_ref().map(|c| c.as_ptr()) != Some(caps.as_ptr()) {
                        w.set_caps(caps);
                        last_caps = Some(caps.to_owned());
                    }
                }
                w.push(buffer, pts, dts, &pad)
                    .map(|()| gst::FlowSuccess::Ok)
                    .map_err(|e| write_failed(sink.upcast_ref(), e))
            })
            .eos(move |sink| {
                if let Err(e) = on_eos.lock().expect("segment writer").finish() {
                    let _ = write_failed(sink.upcast_ref(), e);
                }
            })
            .build(),
    );
    sink
}

/// Posts a resource error for `e` on `element`'s bus.
pub fn write_failed(element: &gst::Element, e: WriteError) -> gst::FlowError {
    tracing::error!(location = %e.part.display(), error = %e.error, "cannot write a segment");
    let full = e.error.kind() == std::io::ErrorKind::StorageFull;
    gst::element_error!(
        element,
        gst::ResourceError::Write,
        (
            "{}",
            if full {
                "Could not write a segment. The transcode dir is full."
            } else {
                "Could not write a segment."
            }
        ),
        ["{}: {}", e.part.display(), e.error]
    );
    gst::FlowError::Error
}
