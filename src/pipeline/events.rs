//! Bus messages turned into the few events a session cares about.

use gst::prelude::*;

/// What a pipeline's bus told us, in plain data.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineEvent {
    /// The pipeline reached `Playing`.
    Playing,
    /// All streams reached the end of the file.
    Eos,
    /// A fatal error.
    Error {
        /// Path of the failing element, for the logs.
        element: String,
        /// GStreamer's message, plain enough for the API.
        message: String,
        /// GStreamer's debug string, for the logs only.
        debug: String,
    },
    /// A warning (logged, not fatal).
    Warning {
        /// Path of the element that warned.
        element: String,
        /// The warning text.
        message: String,
    },
}

/// Converts one bus message of `pipeline` into an event, if it matters.
pub fn event_of(msg: &gst::Message, pipeline: &gst::Pipeline) -> Option<PipelineEvent> {
    use gst::MessageView;
    let path = || {
        msg.src()
            .map(|s| s.path_string().to_string())
            .unwrap_or_else(|| "unknown".into())
    };
    match msg.view() {
        MessageView::Eos(_) => Some(PipelineEvent::Eos),
        MessageView::Error(e) => Some(PipelineEvent::Error {
            element: path(),
            message: e.error().message().to_string(),
            debug: e.debug().map(|d| d.to_string()).unwrap_or_default(),
        }),
        MessageView::Warning(w) => Some(PipelineEvent::Warning {
            element: path(),
            message: w.error().message().to_string(),
        }),
        MessageView::StateChanged(s)
            if msg.src() == Some(pipeline.upcast_ref()) && s.current() == gst::State::Playing =>
        {
            Some(PipelineEvent::Playing)
        }
        _ => None,
    }
}
