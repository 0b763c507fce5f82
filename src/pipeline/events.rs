//! Bus messages turned into the few events a session cares about.

use gst::prelude::*;
use std::time::Duration;

/// What a pipeline's bus told us, in plain data.
#[derive(Debug, Clone, PartialEq)]
pub enum PipelineEvent {
    /// The pipeline reached `Playing`.
    Playing,
    /// `hlssink2` (or the remux segmenter) opened a new segment at this running time.
    SegmentOpened {
        /// Running time of the segment's first buffer.
        running_time: Duration,
    },
    /// `hlssink2` (or the remux segmenter) finished a segment (its bytes are on disk) at this running time.
    SegmentClosed {
        /// Running time at which the segment ends.
        running_time: Duration,
    },
    /// All streams reached the end: the session is complete.
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

fn running_time(s: &gst::StructureRef) -> Duration {
    Duration::from_nanos(
        s.get::<u64>("running-time")
            .or_else(|_| {
                s.get::<gst::ClockTime>("running-time")
                    .map(|t| t.nseconds())
            })
            .unwrap_or(0),
    )
}

/// Converts one bus message of `pipeline` into an event, if it matters.
/// `hlssink2` must have `message-forward=true`: its `splitmuxsink` child's
/// fragment messages then arrive wrapped in `GstBinForwarded`.
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
        MessageView::Element(e) => {
            let s = e.structure()?;
            let inner;
            let s = if s.name() == "GstBinForwarded" {
                inner = s.get::<gst::Message>("message").ok()?;
                inner.structure()?
            } else {
                s
            };
            match s.name().as_str() {
                "splitmuxsink-fragment-opened" | super::remux::SEGMENT_OPENED => {
                    Some(PipelineEvent::SegmentOpened {
                        running_time: running_time(s),
                    })
                }
                "splitmuxsink-fragment-closed" | super::remux::SEGMENT_CLOSED => {
                    Some(PipelineEvent::SegmentClosed {
                        running_time: running_time(s),
                    })
                }
                _ => None,
            }
        }
        _ => None,
    }
}
