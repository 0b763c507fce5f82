//! What the Discoverer found in a file, in plain data: its video, audio
//! and subtitle streams ([`MediaInfo`]).

use super::colour::{Colour, Hdr};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The video stream a file plays with, as the Discoverer reported it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VideoStream {
    /// Short codec name: `h264`, `hevc`, `vp9`, `av1`, `mpeg2video`, ...
    pub codec: String,
    /// Codec profile as GStreamer's caps spell it (`high`, `main-10`), if known.
    pub profile: Option<String>,
    /// Codec level as caps spell it (`3.1`), if known.
    pub level: Option<String>,
    /// Coded width in pixels.
    pub width: u32,
    /// Coded height in pixels.
    pub height: u32,
    /// Frames per second (0 when the container does not say).
    pub fps: f64,
    /// Bits per luma sample (8, 10, 12), if known.
    pub bit_depth: Option<u32>,
    /// Chroma subsampling as caps spell it (`4:2:0`), if known.
    pub chroma_format: Option<String>,
    /// Pixel aspect ratio as (numerator, denominator).
    pub pixel_aspect: (u32, u32),
    /// Whether the frames are interlaced (then a deinterlacer is added).
    pub interlaced: bool,
    /// Clockwise rotation in degrees from the `image-orientation` tag.
    pub rotation: u32,
    /// How its colours are coded (primaries, transfer, matrix, range), if
    /// the stream or container says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<Colour>,
    /// Its HDR form (PQ or HLG, mastering display, light levels); absent
    /// for SDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdr: Option<Hdr>,
    /// Whether this machine's GStreamer has a decoder for it.
    pub decodable: bool,
    /// GStreamer stream id, used to pick this stream in the pipeline.
    pub stream_id: Option<String>,
}

/// One audio track.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AudioStream {
    /// Its place among the file's audio tracks, from 0: what `audio=`
    /// names.
    pub index: usize,
    /// Short codec name: `aac`, `mp3`, `ac3`, `eac3`, `dts`, `vorbis`, `flac`, ...
    pub codec: String,
    /// Channel count.
    pub channels: u32,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Codec profile as caps spell it (AAC: `lc`, `he-aac`, `he-aac-v2`).
    pub profile: Option<String>,
    /// Language as ISO 639-1 (`en`) where it has one, else the tag as the
    /// file gives it (an ISO 639-2 code such as `gsw`); `null` if untagged.
    pub language: Option<String>,
    /// The track's title (`Director's commentary`), if tagged.
    pub title: Option<String>,
    /// Whether the file marks it as the default track.
    pub default: bool,
    /// Whether this machine's GStreamer has a decoder for it.
    pub decodable: bool,
    /// GStreamer stream id, used to pick this track in the pipeline.
    pub stream_id: Option<String>,
}

/// Whether a subtitle track is text (served as WebVTT) or pictures
/// (burned into the video on request).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SubtitleKind {
    /// Timed text: SubRip, WebVTT, ASS/SSA, `tx3g`.
    Text,
    /// Bitmaps: PGS (Blu-ray), VobSub (DVD), DVB.
    Image,
}

/// Where a subtitle track comes from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum SubtitleSource {
    /// A track inside the media file.
    Embedded {
        /// GStreamer stream id, to pick the track in a pipeline.
        stream_id: Option<String>,
    },
    /// A file next to the media file (`film.en.srt`).
    Sidecar {
        /// Its file name, in the media file's folder, as text without loss
        /// ([`super::id::name_text`]).
        file: String,
        /// Whether its name marks it as for the deaf and hard of hearing
        /// (`.sdh.`, `.cc.`, `.hi.`).
        sdh: bool,
        /// Absolute path on disk (not serialised).
        path: PathBuf,
    },
}

/// One subtitle track, embedded or sidecar.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubtitleStream {
    /// Its place in the item's subtitle list (embedded tracks first, in
    /// file order, then sidecars by name): what `subtitle=` and `burn=`
    /// name.
    pub index: usize,
    /// Short codec name: `subrip`, `webvtt`, `ass`, `pgs`, `dvdsub`, `dvbsub`, ...
    pub codec: String,
    /// Text or image.
    pub kind: SubtitleKind,
    /// Language as for [`AudioStream::language`].
    pub language: Option<String>,
    /// The track's title, if tagged.
    pub title: Option<String>,
    /// Only for foreign-language passages (a `.forced.` sidecar, or a title
    /// that says "forced").
    pub forced: bool,
    /// Whether the file marks it as the default track.
    pub default: bool,
    /// Embedded or sidecar.
    #[serde(flatten)]
    pub source: SubtitleSource,
}

impl SubtitleStream {
    /// The subtitle kind of a codec name ([`SubtitleStream::codec`]).
    pub fn kind_of(codec: &str) -> SubtitleKind {
        match codec {
            "pgs" | "dvdsub" | "dvbsub" => SubtitleKind::Image,
            _ => SubtitleKind::Text,
        }
    }
}

/// What the Discoverer found in a file, in plain data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    /// Duration, if the file declares one.
    pub duration: Option<std::time::Duration>,
    /// Short container name: `mp4`, `mov`, `matroska`, `webm`, `avi`,
    /// `mpegts`, `mpeg-ps`, `ogg`, or the bare stream's codec for files
    /// without a container (`flac`, `mp3`).
    pub container: Option<String>,
    /// The first video stream, if any.
    pub video: Option<VideoStream>,
    /// Every audio track in file order.
    pub audio: Vec<AudioStream>,
    /// Every subtitle track in file order.
    pub subtitles: Vec<SubtitleStream>,
    /// Why probing failed, when it did; the file is then unplayable.
    pub probe_error: Option<String>,
}
