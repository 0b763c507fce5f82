//! Lead-in frames of a Matroska file given their true times back.
//!
//! A file cut from a longer one may keep frames before its time 0 (the
//! reported MPEG-4 clip: a key frame at -2.28 s, 57 video and 107 audio
//! blocks before 0), to be decoded but not shown. GStreamer 1.22's
//! `matroskademux` clamps their times to 0; the parser then left them
//! undated, the decoder dated them 0 to 2.28 s, and the real frames that
//! followed, from 0 again, were taken for a re-base and played after them:
//! 5.8 s of a 3.6 s film. From the container's own block times
//! ([`crate::container::matroska::lead_in`]) each demuxed stream is
//! shifted later by the earliest lead-in time `S`, its lead-in video frames
//! get their true times (plus `S`) and its segment starts at `S`: the
//! decoder decodes them and, as they lie before the segment, shows none of
//! them. Lead-in audio blocks are left out (they need no decoding order).
//! Seeks going up are shifted back by `S`. Only a file with lead-in blocks
//! is touched.

use crate::container::input::Input;
use crate::container::matroska::lead_in::{lead_in, LeadIn};
use gst::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// `TrackType` of video and audio tracks (RFC 9559 §5.1.4.1.3).
const VIDEO: u64 = 1;
const AUDIO: u64 = 2;

/// Watches `bin` (a `uridecodebin`) for the `matroskademux` of `path`, and
/// gives its lead-in frames their times back, if the file has any.
pub fn restore(bin: &gst::Element, path: &Path) {
    let Some(lead) = Input::open(path).as_mut().and_then(lead_in) else {
        return;
    };
    tracing::info!(path = %path.display(), shift_ms = lead.shift_ns / 1_000_000, "frames before time 0: shifting them into place");
    let lead = Arc::new(lead);
    bin.connect("deep-element-added", false, move |args| {
        let element = args.get(2).and_then(|v| v.get::<gst::Element>().ok());
        crate::guard::callback(element.as_ref(), "deep-element-added", None, || {
            let demuxer = element
                .as_ref()
                .filter(|e| e.factory().is_some_and(|f| f.name() == "matroskademux"));
            if let Some(demuxer) = demuxer {
                let lead = lead.clone();
                crate::guard::on_pad_added(demuxer, move |_, pad| shift_pad(pad, &lead));
            }
            None
        })
    });
}

/// The lead-in times of the stream behind demuxer pad `pad`
/// (`video_N`, `audio_N`: the N-th track of its type), and its type.
fn lead_of(pad: &gst::Pad, lead: &LeadIn) -> Option<(u64, Vec<i64>)> {
    let name = pad.name();
    let (kind, n) = match name.split_once('_') {
        Some(("video", n)) => (VIDEO, n.parse::<usize>().ok()?),
        Some(("audio", n)) => (AUDIO, n.parse::<usize>().ok()?),
        _ => return None,
    };
    let (_, times) = lead.tracks.iter().filter(|(k, _)| *k == kind).nth(n)?;
    Some((kind, times.clone()))
}

/// Shifts the stream of `pad` by the lead-in (see the module doc).
fn shift_pad(pad: &gst::Pad, lead: &LeadIn) {
    let Some((kind, times)) = lead_of(pad, lead) else {
        return;
    };
    let shift = gst::ClockTime::from_nseconds(lead.shift_ns);
    let shift_ns = i64::try_from(lead.shift_ns).unwrap_or(i64::MAX);
    // Lead-in buffers met since the last flush.
    let met = Mutex::new(0usize);
    let down = gst::PadProbeType::BUFFER
        | gst::PadProbeType::EVENT_DOWNSTREAM
        | gst::PadProbeType::EVENT_FLUSH;
    crate::guard::probe(pad, down, move |_, info| {
        match &mut info.data {
            Some(gst::PadProbeData::Buffer(buffer)) => {
                let mut met = met.lock().expect("lead-in state");
                // A lead-in block comes clamped to 0, before the first real
                // one (a real block at 0 comes after them all).
                let clamped = buffer.pts().is_none_or(|t| t.is_zero());
                if clamped && *met < times.len() {
                    let true_ns = times[*met];
                    *met += 1;
                    if kind == AUDIO {
                        return gst::PadProbeReturn::Drop;
                    }
                    let b = buffer.make_mut();
                    let at = u64::try_from(true_ns.saturating_add(shift_ns)).unwrap_or(0);
                    b.set_pts(gst::ClockTime::from_nseconds(at));
                    b.set_dts(gst::ClockTime::NONE);
                    return gst::PadProbeReturn::Ok;
                }
                *met = times.len();
                let b = buffer.make_mut();
                if let Some(t) = b.pts() {
                    b.set_pts(t + shift);
                }
                if let Some(t) = b.dts() {
                    b.set_dts(t + shift);
                }
            }
            Some(gst::PadProbeData::Event(event)) => match event.view() {
                gst::EventView::FlushStop(_) => *met.lock().expect("lead-in state") = 0,
                gst::EventView::Segment(e) => {
                    if let Some(s) = e.segment().downcast_ref::<gst::ClockTime>() {
                        let mut s = s.clone();
                        s.set_start(s.start().map(|t| t + shift));
                        if s.stop().is_some() {
                            s.set_stop(s.stop().map(|t| t + shift));
                        }
                        s.set_position(s.position().map(|t| t + shift));
                        let seqnum = event.seqnum();
                        *event = gst::event::Segment::builder(&s).seqnum(seqnum).build();
                    }
                }
                _ => {}
            },
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });
    crate::guard::probe(pad, gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(event)) = &mut info.data else {
            return gst::PadProbeReturn::Ok;
        };
        if let gst::EventView::Seek(seek) = event.view() {
            let (rate, flags, start_type, start, stop_type, stop) = seek.get();
            let back = |v: gst::GenericFormattedValue| match v {
                gst::GenericFormattedValue::Time(Some(t)) => {
                    gst::GenericFormattedValue::Time(Some(t.saturating_sub(shift)))
                }
                other => other,
            };
            let seqnum = event.seqnum();
            *event = gst::event::Seek::builder(
                rate,
                flags,
                start_type,
                back(start),
                stop_type,
                back(stop),
            )
            .seqnum(seqnum)
            .build();
        }
        gst::PadProbeReturn::Ok
    });
}
