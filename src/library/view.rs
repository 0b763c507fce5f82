//! What clients see of an item's streams. The stream types keep every
//! field (the catalogue stores them whole); the API leaves out what is
//! the server's business: GStreamer stream ids and sidecar paths on disk.

use super::colour::{Colour, Hdr};
use super::streams::{AudioStream, SubtitleKind, SubtitleStream, VideoStream};
use serde::{Serialize, Serializer};

#[derive(Serialize)]
struct Video<'a> {
    codec: &'a str,
    profile: Option<&'a str>,
    level: Option<&'a str>,
    width: u32,
    height: u32,
    fps: f64,
    bit_depth: Option<u32>,
    interlaced: bool,
    rotation: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    colour: Option<&'a Colour>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hdr: Option<&'a Hdr>,
}

#[derive(Serialize)]
struct Audio<'a> {
    index: usize,
    codec: &'a str,
    channels: u32,
    sample_rate: u32,
    language: Option<&'a str>,
    title: Option<&'a str>,
    default: bool,
}

#[derive(Serialize)]
struct Subtitle<'a> {
    index: usize,
    codec: &'a str,
    kind: SubtitleKind,
    language: Option<&'a str>,
    title: Option<&'a str>,
    forced: bool,
    default: bool,
    /// `embedded` or `sidecar`.
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sdh: Option<bool>,
}

/// Serialises an item's path (as [`super::id`] keeps it) for people.
pub(super) fn path<S: Serializer>(path: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::id::display(path))
}

/// Serialises the video stream as clients see it.
pub(super) fn video<S: Serializer>(v: &Option<VideoStream>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref()
        .map(|v| Video {
            codec: &v.codec,
            profile: v.profile.as_deref(),
            level: v.level.as_deref(),
            width: v.width,
            height: v.height,
            fps: v.fps,
            bit_depth: v.bit_depth,
            interlaced: v.interlaced,
            rotation: v.rotation,
            colour: v.colour.as_ref(),
            hdr: v.hdr.as_ref(),
        })
        .serialize(s)
}

/// Serialises the audio tracks as clients see them.
pub(super) fn audio<S: Serializer>(tracks: &[AudioStream], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(tracks.iter().map(|a| Audio {
        index: a.index,
        codec: &a.codec,
        channels: a.channels,
        sample_rate: a.sample_rate,
        language: a.language.as_deref(),
        title: a.title.as_deref(),
        default: a.default,
    }))
}

/// Serialises the subtitle tracks as clients see them.
pub(super) fn subtitles<S: Serializer>(tracks: &[SubtitleStream], s: S) -> Result<S::Ok, S::Error> {
    use super::streams::SubtitleSource;
    s.collect_seq(tracks.iter().map(|t| {
        let (source, file, sdh) = match &t.source {
            SubtitleSource::Embedded { .. } => ("embedded", None, None),
            SubtitleSource::Sidecar { file, sdh, .. } => {
                ("sidecar", Some(super::id::display(file)), Some(*sdh))
            }
        };
        Subtitle {
            index: t.index,
            codec: &t.codec,
            kind: t.kind,
            language: t.language.as_deref(),
            title: t.title.as_deref(),
            forced: t.forced,
            default: t.default,
            source,
            file,
            sdh,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::super::SubtitleSource;
    use super::*;

    #[test]
    fn sidecar_paths_and_stream_ids_stay_on_the_server() {
        let tracks = vec![
            SubtitleStream {
                index: 0,
                codec: "subrip".into(),
                kind: SubtitleKind::Text,
                language: Some("en".into()),
                title: None,
                forced: false,
                default: false,
                source: SubtitleSource::Embedded {
                    stream_id: Some("abc/002".into()),
                },
            },
            SubtitleStream {
                index: 1,
                codec: "subrip".into(),
                kind: SubtitleKind::Text,
                language: None,
                title: None,
                forced: true,
                default: false,
                source: SubtitleSource::Sidecar {
                    file: "film.srt".into(),
                    sdh: true,
                    path: "/srv/media/film.srt".into(),
                },
            },
        ];
        let json = subtitles(&tracks, serde_json::value::Serializer).expect("serialises");
        let text = json.to_string();
        assert!(
            !text.contains("/srv/media") && !text.contains("abc/002"),
            "{text}"
        );
        assert_eq!(json[0]["source"], "embedded");
        assert_eq!(json[1]["source"], "sidecar");
        assert_eq!(json[1]["file"], "film.srt");
        assert_eq!(json[1]["sdh"], true);
    }
}
