//! One codec per stream, as ffmpeg keeps it: a demuxer's stream whose
//! caps change to another media type mid-stream has what follows left out
//! until its first type comes back.
//!
//! A QuickTime track may list several sample descriptions (the reported
//! Apple Video clip: `rpza`, then a `png ` one for its last frame).
//! `qtdemux` (GStreamer 1.22) switches the pad's caps to the new codec,
//! the decoder `decodebin` plugged for the first refuses them, and the
//! pipeline fails (`not-negotiated`) with its audio unfinished. ffmpeg
//! plays the stream's first codec and skips the rest ("multiple fourcc
//! not supported"): so does this, losing the one frame and keeping the
//! file.

use gst::prelude::*;
use std::sync::Mutex;

/// Watches `bin` (a `uridecodebin` or a `parsebin`) for demuxers, and
/// keeps each of their streams to its first media type.
pub fn keep_first_codec(bin: &gst::Element) {
    bin.connect("deep-element-added", false, |args| {
        let element = args.get(2).and_then(|v| v.get::<gst::Element>().ok());
        crate::guard::callback(element.as_ref(), "deep-element-added", None, || {
            let demuxer = element
                .as_ref()
                .filter(|e| e.factory().is_some_and(|f| f.klass().contains("Demux")));
            if let Some(demuxer) = demuxer {
                crate::guard::on_pad_added(demuxer, |_, pad| guard_pad(pad));
            }
            None
        })
    });
}

/// Drops the buffers after a caps change to another media type on `pad`
/// (the caps event is replaced by the first caps again: a dropped sticky
/// event upsets GStreamer), until caps of its first type come again.
fn guard_pad(pad: &gst::Pad) {
    // (the first caps event, whether another type is being left out)
    let state = Mutex::new((None::<gst::Event>, false));
    let mask = gst::PadProbeType::BUFFER
        | gst::PadProbeType::BUFFER_LIST
        | gst::PadProbeType::EVENT_DOWNSTREAM;
    crate::guard::probe(pad, mask, move |pad, info| {
        let mut st = state.lock().expect("codec state");
        let Some(gst::PadProbeData::Event(event)) = &mut info.data else {
            return if st.1 {
                gst::PadProbeReturn::Drop
            } else {
                gst::PadProbeReturn::Ok
            };
        };
        let gst::EventView::Caps(caps) = event.view() else {
            return gst::PadProbeReturn::Ok;
        };
        let name = |c: &gst::CapsRef| c.structure(0).map(|s| s.name().to_string());
        let Some(this) = name(caps.caps()) else {
            return gst::PadProbeReturn::Ok;
        };
        let first = st.0.as_ref().and_then(|e| match e.view() {
            gst::EventView::Caps(c) => name(c.caps()),
            _ => None,
        });
        match first {
            None => st.0 = Some(event.clone()),
            Some(first) if first == this => st.1 = false,
            Some(first) => {
                if !st.1 {
                    tracing::warn!(pad = %pad.name(), first, then = this, "a stream changes codec mid-stream: what follows in the new one is left out");
                }
                st.1 = true;
                if let Some(old) = &st.0 {
                    *event = old.clone();
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
}
