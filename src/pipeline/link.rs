//! Linking a demuxed or decoded pad to what it feeds: the output it
//! claims, a copy's parser and caps ([`CopyFormat`]), the segment writer's
//! packaging, a text track's cue sink, or a `fakesink` for a stream
//! nobody plays.

use super::cues;
use super::media_time::{media_time_segments, Linked, SeekOnce};
use super::segmenter;
use super::spec::{Output, TextTrack};
use crate::packaging::Packaging;
use crate::rendition::Plan;
use anyhow::anyhow;
use gst::prelude::*;
use std::sync::{Arc, Mutex};

/// Links `pad` to a cue sink if it carries one of `tracks` (a text track
/// the producer collects); whether it did.
///
/// # Errors
/// The link or the sink's state change failed.
pub(super) fn link_text_pad(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    tracks: &[TextTrack],
    seek: Option<Arc<SeekOnce>>,
) -> anyhow::Result<bool> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let id = pad.stream_id();
    let Some(track) = tracks
        .iter()
        .find(|t| cues::is_text(&caps) && id.as_deref() == Some(t.stream_id.as_str()))
    else {
        return Ok(false);
    };
    media_time_segments(pad, seek);
    let sink = cues::cue_sink(track.sink.clone());
    pipeline.add(&sink)?;
    sink.sync_state_with_parent()?;
    pad.link(&sink.static_pad("sink").expect("appsink has a sink pad"))?;
    track
        .linked
        .store(true, std::sync::atomic::Ordering::SeqCst);
    Ok(true)
}

/// The output `pad` feeds, claiming it: the unlinked output of the pad's
/// kind whose stream id matches, or whose stream id is unknown (then the
/// first pad of its kind). A pad without a stream id (a bare MP3 behind
/// an ID3 tag: `parsebin` exposes it before its stream-start) feeds an
/// output whose source is the file's only stream of its kind. `None`:
/// nobody wants this stream.
pub(super) fn claim_output(
    linked: &Mutex<Linked>,
    outputs: &[Output],
    is_video: bool,
    stream_id: Option<&str>,
    pad: &gst::Pad,
) -> Option<usize> {
    let mut linked = linked.lock().expect("link state");
    if linked.outputs.len() < outputs.len() {
        linked.outputs.resize(outputs.len(), false);
    }
    let found = outputs.iter().enumerate().position(|(i, o)| {
        !linked.outputs[i]
            && o.plan.is_video() == is_video
            && match (&o.stream_id, stream_id) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => o.sole_of_kind,
                (None, _) => true,
            }
    })?;
    linked.outputs[found] = true;
    linked.first_pad.get_or_insert_with(|| pad.clone());
    Some(found)
}

/// How a copied stream reaches its writer: the caps the demuxer gives it
/// (where `uridecodebin` stops), its parser, and the caps the writer takes
/// in `packaging` (ISOBMFF's formats for fMP4: length-prefixed NAL units,
/// raw AAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyFormat {
    /// The demuxed stream's caps name.
    pub caps_name: &'static str,
    /// The parser element and its properties.
    pub parser: &'static str,
    /// The caps between the parser and the writer.
    pub out: &'static str,
}

impl CopyFormat {
    /// The copy of a `codec` stream into `packaging`, if hlsd writes one.
    pub fn of(codec: &str, packaging: Packaging) -> Option<CopyFormat> {
        let ts = packaging == Packaging::Ts;
        let f = |caps_name, parser, out| {
            Some(CopyFormat {
                caps_name,
                parser,
                out,
            })
        };
        match codec {
            "h264" if ts => f(
                "video/x-h264",
                "h264parse config-interval=-1",
                "video/x-h264,stream-format=byte-stream,alignment=au",
            ),
            "h264" => f(
                "video/x-h264",
                "h264parse",
                "video/x-h264,stream-format=avc,alignment=au",
            ),
            "aac" if ts => f("audio/mpeg", "aacparse", "audio/mpeg,stream-format=adts"),
            "aac" => f("audio/mpeg", "aacparse", "audio/mpeg,stream-format=raw"),
            "mp3" if ts => f(
                "audio/mpeg",
                "mpegaudioparse",
                "audio/mpeg,mpegversion=(int)1,parsed=(boolean)true",
            ),
            _ if ts => None,
            "hevc" => f(
                "video/x-h265",
                "h265parse",
                "video/x-h265,stream-format=hvc1,alignment=au",
            ),
            "av1" => f(
                "video/x-av1",
                "av1parse",
                "video/x-av1,stream-format=obu-stream,alignment=tu",
            ),
            "vp9" => f("video/x-vp9", "vp9parse", "video/x-vp9"),
            "opus" => f("audio/x-opus", "opusparse", "audio/x-opus"),
            "flac" => f("audio/x-flac", "flacparse", "audio/x-flac"),
            "ac3" => f(
                "audio/x-ac3",
                "ac3parse",
                "audio/x-ac3,framed=(boolean)true,alignment=(string)frame",
            ),
            "eac3" => f(
                "audio/x-eac3",
                "ac3parse",
                "audio/x-eac3,framed=(boolean)true,alignment=(string)frame",
            ),
            _ => None,
        }
    }

    /// The branch from the demuxed pad to the writer's appsink, as a
    /// gst-launch description.
    pub fn description(&self) -> String {
        format!("{} ! capsfilter caps={}", self.parser, self.out)
    }
}

/// The copy format of `output`.
///
/// # Errors
/// Its codec has none in its packaging.
pub(super) fn copy_format(output: &Output) -> anyhow::Result<CopyFormat> {
    CopyFormat::of(&output.codec, output.packaging).ok_or_else(|| {
        anyhow!(
            "{} cannot be copied into {}",
            output.codec,
            output.packaging.as_str()
        )
    })
}

/// `writer`, as `output` asks: fMP4 for a fragmented-MP4 rendition.
pub(super) fn packaged(
    writer: segmenter::SegmentWriter,
    output: &Output,
) -> segmenter::SegmentWriter {
    match output.packaging {
        Packaging::Ts => writer,
        Packaging::Fmp4 => writer.fmp4(match output.plan {
            Plan::VideoCopy => super::fmp4::CopiedVideo {
                rotation: output.rotation,
                dolby_vision: output.dolby_vision.and_then(|dv| dv.config_box()),
            },
            _ => super::fmp4::CopiedVideo::default(),
        }),
    }
}

/// Links a stream nobody plays to a `fakesink` of its own.
pub(super) fn discard_pad(pipeline: &gst::Pipeline, pad: &gst::Pad) -> anyhow::Result<()> {
    let fakesink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()?;
    pipeline.add(&fakesink)?;
    fakesink.sync_state_with_parent()?;
    pad.link(
        &fakesink
            .static_pad("sink")
            .expect("fakesink has a sink pad"),
    )?;
    Ok(())
}
