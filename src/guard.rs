//! Callbacks that cannot take the server down.
//!
//! GStreamer calls pad probes and signal handlers from its streaming
//! threads through C. A Rust panic cannot unwind through C: it aborts the
//! whole process, every viewer's playback with it. Every probe and signal
//! handler hlsd installs goes through this module, which catches a panic,
//! posts it as an element error on the bus (the producer then fails like
//! any other broken pipeline, and its viewers get an error they can retry)
//! and answers GStreamer with a harmless value. AppSink callbacks need no
//! wrapper: `gstreamer-app` already turns their panics into element errors.

use gst::prelude::*;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The text of a caught panic's payload.
fn panic_text(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs `f`; if it panics, posts a `CoreError::Failed` element error
/// naming `what` on `element` (or, without one, logs it) and returns
/// `fallback`.
pub fn callback<T>(
    element: Option<&gst::Element>,
    what: &str,
    fallback: T,
    f: impl FnOnce() -> T,
) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            let text = panic_text(payload.as_ref());
            tracing::error!(
                what,
                panic = text,
                "a pipeline callback panicked; failing its producer"
            );
            if let Some(element) = element {
                gst::element_error!(
                    element,
                    gst::CoreError::Failed,
                    ("Internal error in {}: {}", what, text)
                );
            }
            fallback
        }
    }
}

/// The element a pad belongs to, through ghost and proxy pads' parents.
fn owner(pad: &gst::Pad) -> Option<gst::Element> {
    let mut object = pad.parent();
    while let Some(o) = object {
        if let Ok(element) = o.clone().downcast::<gst::Element>() {
            return Some(element);
        }
        object = o.parent();
    }
    None
}

/// `pad.add_probe(mask, f)`, with a panic in `f` failing the pipeline
/// (the probe is then removed) instead of aborting the process.
pub fn probe<F>(pad: &gst::Pad, mask: gst::PadProbeType, f: F) -> Option<gst::PadProbeId>
where
    F: Fn(&gst::Pad, &mut gst::PadProbeInfo) -> gst::PadProbeReturn + Send + Sync + 'static,
{
    pad.add_probe(mask, move |pad, info| {
        callback(
            owner(pad).as_ref(),
            "a pad probe",
            gst::PadProbeReturn::Remove,
            || f(pad, info),
        )
    })
}

/// `element.connect_pad_added(f)`, guarded like [`probe`].
pub fn on_pad_added<F>(element: &gst::Element, f: F) -> glib::SignalHandlerId
where
    F: Fn(&gst::Element, &gst::Pad) + Send + Sync + 'static,
{
    element.connect_pad_added(move |element, pad| {
        callback(Some(element), "pad-added", (), || f(element, pad))
    })
}

/// `element.connect_no_more_pads(f)`, guarded like [`probe`].
pub fn on_no_more_pads<F>(element: &gst::Element, f: F) -> glib::SignalHandlerId
where
    F: Fn(&gst::Element) + Send + Sync + 'static,
{
    element.connect_no_more_pads(move |element| {
        callback(Some(element), "no-more-pads", (), || f(element))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panicking probe on a running pipeline ends as an element error on
    /// its bus, naming the panic, and this process (the test) lives on.
    #[test]
    fn a_panicking_probe_fails_the_pipeline_not_the_process() {
        gst::init().unwrap();
        let pipeline = gst::parse::launch("fakesrc num-buffers=50 name=src ! fakesink sync=false")
            .unwrap()
            .downcast::<gst::Pipeline>()
            .unwrap();
        let src = pipeline.by_name("src").unwrap();
        let pad = src.static_pad("src").unwrap();
        probe(&pad, gst::PadProbeType::BUFFER, |_, _| {
            panic!("deliberate test panic");
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let message = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(10),
                &[gst::MessageType::Error, gst::MessageType::Eos],
            )
            .expect("an error or EOS within 10 s");
        pipeline.set_state(gst::State::Null).unwrap();
        match message.view() {
            gst::MessageView::Error(e) => {
                assert!(
                    e.error().to_string().contains("deliberate test panic"),
                    "{}",
                    e.error()
                );
            }
            other => panic!("expected an element error, got {other:?}"),
        }
    }

    /// A panicking pad-added handler also becomes an element error.
    #[test]
    fn a_panicking_signal_handler_fails_the_pipeline() {
        gst::init().unwrap();
        let element = gst::ElementFactory::make("identity").build().unwrap();
        let pipeline = gst::Pipeline::new();
        pipeline.add(&element).unwrap();
        on_pad_added(&element, |_, _| panic!("handler panic"));
        let pad = gst::Pad::builder(gst::PadDirection::Src)
            .name("extra")
            .build();
        element.add_pad(&pad).unwrap();
        let message = pipeline
            .bus()
            .unwrap()
            .timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error])
            .expect("an element error");
        let gst::MessageView::Error(e) = message.view() else {
            unreachable!()
        };
        assert!(e.error().to_string().contains("handler panic"));
    }
}
