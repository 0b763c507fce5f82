//! Renditions: the streams an HLS client is offered for a media item, each
//! one elementary stream cut into its own segments on the item's
//! [`crate::timeline::Timeline`]. Pure: no GStreamer, no HTTP.
//!
//! A rendition is everything that decides its segments' bytes: which
//! source stream, copied or encoded, and how (size, rate control, the
//! encode branch's text). Two viewers who need the same rendition of the
//! same file share its segments in the store ([`Rendition::key`]). An item
//! has its video copied with the rungs cheaper than it beside it, all cut
//! on its key frames, or, when it cannot be copied, encoded to H.264 at
//! each rung of its quality ladder on the fixed grid ([`crate::ladder`]:
//! the source's size and the steps below it; every rung made only when a
//! player asks for its segments; `video.rs`); one more video rendition per
//! image subtitle track (encoded with that track burned in, made only if
//! asked for); and per playable audio track its copy where the packaging
//! carries the codec, and an AAC encode where it does not, where a client
//! may not play it, or for surround. Each text subtitle
//! track, embedded or sidecar, is a [`SubtitleRendition`]: WebVTT cut on
//! the same timeline. The master playlist lists each video rendition a
//! client takes as a variant, and the audio and subtitles as `EXT-X-MEDIA`
//! renditions (RFC 8216 §4.3.4.1).

mod choice;
mod codecs;
mod fit;
mod set;
mod video;

pub use choice::{audio_options, choose, Choice, TrackRef};
pub use codecs::{avc1_codec, h264_level_idc, video_copy_codecs, vp9_level};
pub use fit::{floor_for, richest, video_options};
pub use set::RenditionSet;

use crate::library::{
    AudioStream, Decision, MediaItem, SubtitleKind, SubtitleSource, SubtitleStream, VideoPlan,
};
use crate::packaging::Packaging;
use sha2::{Digest, Sha256};
use video::{burn_renditions, video_renditions};

/// Bumped whenever hlsd's segment bytes change for the same inputs (the
/// TS packetizer, the cutter), so a store from an older build is never
/// served.
pub const FORMAT_VERSION: u32 = 4;

/// What a rendition is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The source's H.264 video, copied (`h264parse` only).
    VideoCopy,
    /// The source's video decoded and encoded to H.264 at this size, one
    /// rung of its ladder ([`crate::ladder`]).
    VideoEncode {
        /// Output width in pixels (even).
        width: u32,
        /// Output height in pixels (even).
        height: u32,
        /// The bit-rate cap (`vbv-maxrate`), in kilobits per second.
        maxrate_kbps: u32,
        /// Whether a deinterlacer goes before the encoder.
        deinterlace: bool,
        /// Whether the `image-orientation` tag is applied.
        rotate: bool,
        /// The image subtitle track (index into [`MediaItem::subtitles`])
        /// burned into the picture, if any.
        burn: Option<usize>,
        /// HDR made SDR BT.709 on the way (an HDR source), if any.
        tonemap: Option<ToneMapping>,
    },
    /// Audio track `track` (index into the item's audio list), AAC copied.
    AudioCopy {
        /// Index into [`MediaItem::audio`].
        track: usize,
    },
    /// Audio track `track` decoded and encoded to AAC-LC stereo 48 kHz.
    AudioEncode {
        /// Index into [`MediaItem::audio`].
        track: usize,
    },
}

impl Plan {
    /// Whether it is a video rendition.
    pub fn is_video(&self) -> bool {
        matches!(self, Plan::VideoCopy | Plan::VideoEncode { .. })
    }

    /// Whether its stream is copied rather than encoded.
    pub fn is_copy(&self) -> bool {
        matches!(self, Plan::VideoCopy | Plan::AudioCopy { .. })
    }
}

/// How an HDR source's picture is made SDR for an encode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ToneMapping {
    /// The source's transfer.
    pub transfer: crate::tonemap::Transfer,
    /// The curve (`--tonemap`).
    pub curve: crate::tonemap::Curve,
    /// The source's brightest light, cd/m²: its mastering peak (or
    /// MaxCLL), else 1000.
    pub peak_nits: u32,
}

/// One rendition of a media item.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    /// Its name in URLs (`/api/v1/hls/media/{id}/{name}/...`): `video-copy`,
    /// `video-720p`, `audio-0-copy`, `audio-0-aac`. Unique within the item.
    pub name: String,
    /// What it is made of.
    pub plan: Plan,
    /// RFC 6381 codec string (`avc1.64001f`, `mp4a.40.2`).
    pub codecs: String,
    /// Peak segment bit rate in bits per second, container included
    /// (RFC 8216 §4.3.4.2 `BANDWIDTH`): a bound from the VBV cap for an
    /// encoded video rung, an estimate with 20 % headroom otherwise.
    pub bandwidth_bps: u64,
    /// Expected average bit rate in bits per second, container included
    /// (`AVERAGE-BANDWIDTH`): an estimate.
    pub average_bps: u64,
    /// Output size in pixels, for video.
    pub resolution: Option<(u32, u32)>,
    /// Output channel count, for audio.
    pub channels: Option<u32>,
    /// The source track's language tag, for audio, when it is a plausible
    /// BCP 47 primary tag (2 or 3 letters).
    pub language: Option<String>,
    /// A name for people (`English (AAC 5.1)`), for audio: the track's
    /// title, else its language and codec.
    pub label: Option<String>,
    /// Whether it is the item's default audio track, for audio.
    pub default: bool,
    /// Hex digest of everything that decides its bytes (plan, packaging,
    /// encode branch, grid, [`FORMAT_VERSION`]): its folder in the store.
    pub key: String,
    /// The segment container it is written in.
    pub packaging: Packaging,
}

/// Which set of renditions a viewer plays of an item: the packaging,
/// whether the video is copied (cut on the source's key frames, the rungs
/// beside it) or encoded (cut on the fixed grid), and the cap of a lowest
/// rung lowered for a client no standard rung fits. Each is a title of its
/// own: clients whose decisions share it share its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Presentation {
    /// The segment container.
    pub packaging: Packaging,
    /// Whether the video is the source's, copied.
    pub copy_video: bool,
    /// The cap of its lowest rung, in kilobits per second, where it is
    /// lowered below the ladder's to fit a client's bit-rate limit
    /// ([`floor_for`]); `None`: the ladder's.
    pub floor_kbps: Option<u32>,
}

impl Presentation {
    /// The presentation a decision's HLS plan gives.
    pub fn of(decision: &Decision) -> Presentation {
        Presentation {
            packaging: decision.packaging,
            copy_video: decision.video == Some(VideoPlan::Copy),
            floor_kbps: None,
        }
    }

    /// The presentation a video rendition named `name` belongs to
    /// (`video-720p-kf-f92k-cmaf`: on the copy's key frames, the lowest
    /// rung lowered to 92 kb/s, fMP4), for a session opened again from a
    /// rendition URL; `None` for a name that is not a video rendition's.
    pub fn of_video_name(name: &str) -> Option<Presentation> {
        let rest = name.strip_prefix("video-")?;
        let (rest, packaging) = match rest.strip_suffix("-cmaf") {
            Some(r) => (r, Packaging::Fmp4),
            None => (rest, Packaging::Ts),
        };
        // Only the caps a floor can have: a name makes no other title.
        let floor_kbps = rest
            .rsplit_once("-f")
            .and_then(|(_, k)| k.strip_suffix('k'))
            .and_then(|k| k.parse().ok())
            .filter(|k| fit::FLOOR_STEPS_KBPS.contains(k));
        Some(Presentation {
            packaging,
            copy_video: rest.starts_with("copy") || rest.contains("-kf"),
            floor_kbps,
        })
    }

    /// A short name, for store folders and logs: `ts-copy`, `ts-encode`,
    /// `fmp4-copy`; `ts-copy-floor92k` with a lowered lowest rung.
    pub fn name(&self) -> String {
        let base = match (self.packaging, self.copy_video) {
            (Packaging::Ts, true) => "ts-copy",
            (Packaging::Ts, false) => "ts-encode",
            (Packaging::Fmp4, true) => "fmp4-copy",
            (Packaging::Fmp4, false) => "fmp4-encode",
        };
        match self.floor_kbps {
            Some(k) => format!("{base}-floor{k}k"),
            None => base.to_string(),
        }
    }

    /// The name suffix of its renditions: none for MPEG-TS, `-cmaf` for
    /// fragmented MP4, so that a rendition's name says which presentation
    /// it belongs to.
    pub(super) fn suffix(&self) -> &'static str {
        match self.packaging {
            Packaging::Ts => "",
            Packaging::Fmp4 => "-cmaf",
        }
    }
}

/// AAC-LC's RFC 6381 string (ISO/IEC 14496-3 audio object type 2).
pub const AAC_LC: &str = "mp4a.40.2";
/// Bit rate of encoded audio (see `pipelines/audio-transcode.gst`).
pub const AAC_BITRATE_BPS: u64 = 128_000;
/// Assumed bit rate of copied AAC per channel, for `BANDWIDTH` estimates.
const COPIED_AAC_BPS_PER_CHANNEL: u64 = 96_000;
/// `bps` with [`crate::library::PEAK_HEADROOM`].
pub(super) fn with_headroom(bps: u64) -> u64 {
    (bps as f64 * crate::library::PEAK_HEADROOM) as u64
}

/// What besides the item decides its renditions: the encode branches and
/// the grid decide their bytes, the maximum height which rungs there are.
#[derive(Debug, Clone, Copy)]
pub struct KeyInputs<'a> {
    /// The video encode branch (`pipelines/video-transcode.gst`).
    pub video_template: &'a str,
    /// The audio encode branch (`pipelines/audio-transcode.gst`).
    pub audio_template: &'a str,
    /// The first segment's length in milliseconds (`--first-segment`):
    /// it moves every cut.
    pub first_segment_ms: u128,
    /// The tallest rung of a ladder, in lines (`--max-height`).
    pub max_height: u32,
    /// The curve HDR sources are tone-mapped with (`--tonemap`).
    pub tonemap: crate::tonemap::Curve,
}

/// The key of `plan` in `packaging`: a copy depends on no encode branch,
/// an encode on its branch's text.
pub(super) fn key_of(plan: &Plan, presentation: Presentation, inputs: &KeyInputs<'_>) -> String {
    let template = match plan {
        Plan::VideoCopy | Plan::AudioCopy { .. } => "",
        Plan::VideoEncode { .. } => inputs.video_template,
        Plan::AudioEncode { .. } => inputs.audio_template,
    };
    let mut h = Sha256::new();
    // The cut list: the copy's key frames, or the fixed grid.
    h.update(format!(
        "hlsd-rendition/{FORMAT_VERSION}/{plan:?}/{}/{}{}",
        inputs.first_segment_ms,
        match presentation.packaging {
            Packaging::Ts => "",
            Packaging::Fmp4 => "fmp4/",
        },
        if presentation.copy_video { "cuts/" } else { "" }
    ));
    h.update(template.as_bytes());
    let digest = h.finalize();
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// A language tag fit for `LANGUAGE` (RFC 5646 primary subtag: 2 or 3
/// ASCII letters), lower-cased.
fn language_tag(language: Option<&str>) -> Option<String> {
    let l = language?.trim();
    ((2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| l.to_ascii_lowercase())
}

/// Most audio renditions listed per item: with the video rungs and the
/// burn-ins, within [`RenditionSet::CAPACITY`].
pub const MAX_AUDIO_RENDITIONS: usize = 32;
/// Most burn-in video renditions listed per item.
pub const MAX_BURN_RENDITIONS: usize = 16;

/// A people's name for an audio track: its title, else its language and
/// codec (`fr ac3 5.1`).
fn audio_label(a: &crate::library::AudioStream) -> String {
    if let Some(t) = &a.title {
        return t.clone();
    }
    let layout = match a.channels {
        1 => "mono".to_string(),
        2 => "stereo".to_string(),
        6 => "5.1".to_string(),
        8 => "7.1".to_string(),
        n => format!("{n} ch"),
    };
    let language = a.language.as_deref().unwrap_or("und");
    format!("{language} {} {layout}", a.codec)
}

/// The RFC 6381 string of audio `a` copied as it is.
fn audio_copy_codecs(a: &crate::library::AudioStream) -> &'static str {
    match (a.codec.as_str(), a.profile.as_deref()) {
        // ISO/IEC 14496-3 object types: 5 HE-AAC (SBR), 29 HE-AAC v2 (PS).
        ("aac", Some("he-aac")) => "mp4a.40.5",
        ("aac", Some("he-aac-v2")) => "mp4a.40.29",
        // Sample entry names (Opus in ISOBMFF, FLAC in ISOBMFF).
        ("opus", _) => "Opus",
        ("flac", _) => "fLaC",
        ("ac3", _) => "ac-3",
        // MP3, as the Apple HLS authoring spec names it.
        ("mp3", _) => "mp4a.40.34",
        ("eac3", _) => "ec-3",
        _ => AAC_LC,
    }
}

/// The renditions of `item` in `presentation`: its video rendition first
/// (if any: copied, or encoded at the decision's size), then the audio
/// renditions of each playable track in track order (a copy where the
/// packaging carries the codec, an AAC encode where it does not or where
/// a client may not play it; the item's default track is the default),
/// then, in MPEG-TS, one burn-in video rendition per image subtitle
/// track. Empty for an unplayable item. At most
/// [`RenditionSet::CAPACITY`] (the ladder's rungs,
/// [`MAX_AUDIO_RENDITIONS`] and [`MAX_BURN_RENDITIONS`] stay under it).
pub fn renditions_of(
    item: &MediaItem,
    presentation: Presentation,
    inputs: &KeyInputs<'_>,
) -> Vec<Rendition> {
    let d = &item.decision;
    let mut out = Vec::new();
    if d.playback.is_none() {
        return out;
    }
    if let Some(v) = item.video.as_ref() {
        out.extend(video_renditions(item, v, presentation, inputs));
    }
    out.extend(audio_renditions(item, presentation, inputs));
    if presentation.packaging == Packaging::Ts {
        out.extend(burn_renditions(item, presentation, inputs));
    }
    out.truncate(RenditionSet::CAPACITY);
    out
}

/// The audio renditions of each track in track order, at most
/// [`MAX_AUDIO_RENDITIONS`]: a copy where the packaging carries the codec,
/// an AAC encode where it does not, where a client may not play it, or
/// where it has more than two channels.
fn audio_renditions(
    item: &MediaItem,
    presentation: Presentation,
    inputs: &KeyInputs<'_>,
) -> Vec<Rendition> {
    let packaging = presentation.packaging;
    let chosen = item.decision.audio.map(|(track, _)| track);
    let mut out = Vec::new();
    for (track, a) in item.audio.iter().enumerate() {
        let container = item.container.as_deref().unwrap_or("unknown");
        let copy = crate::library::decision::copies_from(container, a, packaging);
        // Stereo AAC is what an encode would give: its copy is enough.
        // Surround AAC gets a stereo encode too, for clients held to a
        // bit-rate limit.
        let encode = a.decodable && (!copy || a.codec != "aac" || a.channels > 2);
        let plans = [
            copy.then_some(Plan::AudioCopy { track }),
            encode.then_some(Plan::AudioEncode { track }),
        ];
        for plan in plans.into_iter().flatten() {
            if out.len() == MAX_AUDIO_RENDITIONS {
                return out;
            }
            let mut r = audio_rendition(a, track, plan, presentation, inputs);
            // A music file is its audio: its own bit rate, with the
            // container's, is what a copy weighs (a 320 kb/s MP3 is more
            // than the per-channel guess).
            if plan.is_copy() && item.video.is_none() && item.audio.len() == 1 {
                let own = (item.bitrate_bps() as f64 * packaging.overhead()) as u64;
                r.average_bps = r.average_bps.max(own);
                r.bandwidth_bps = r.bandwidth_bps.max(with_headroom(own));
            }
            r.default = chosen == Some(track);
            out.push(r);
        }
    }
    out
}

/// The rendition of audio `track` (`a`) by `plan` (copy or AAC encode).
fn audio_rendition(
    a: &AudioStream,
    track: usize,
    plan: Plan,
    presentation: Presentation,
    inputs: &KeyInputs<'_>,
) -> Rendition {
    let suffix = presentation.suffix();
    let (name, channels, bandwidth, codecs) = match plan {
        Plan::AudioCopy { .. } => {
            let channels = a.channels.max(1);
            (
                format!("audio-{track}-copy{suffix}"),
                channels,
                COPIED_AAC_BPS_PER_CHANNEL * channels as u64,
                audio_copy_codecs(a),
            )
        }
        _ => (
            format!("audio-{track}-aac{suffix}"),
            2,
            AAC_BITRATE_BPS,
            AAC_LC,
        ),
    };
    Rendition {
        key: key_of(&plan, presentation, inputs),
        name,
        plan,
        codecs: codecs.to_string(),
        bandwidth_bps: with_headroom(bandwidth),
        average_bps: bandwidth,
        resolution: None,
        channels: Some(channels),
        language: language_tag(a.language.as_deref()),
        label: Some(audio_label(a)),
        default: false,
        packaging: presentation.packaging,
    }
}

/// One text subtitle track served as WebVTT on the item's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct SubtitleRendition {
    /// Its name in URLs: `subs-{index}`.
    pub name: String,
    /// Index into [`MediaItem::subtitles`].
    pub track: usize,
    /// Language tag for `LANGUAGE`, if known.
    pub language: Option<String>,
    /// Name for people: the title, else the language, with `forced`/`SDH`.
    pub label: String,
    /// `FORCED=YES`.
    pub forced: bool,
    /// Marked default by the file.
    pub default: bool,
}

/// Most subtitle renditions listed per item.
pub const MAX_SUBTITLE_RENDITIONS: usize = 64;

/// The WebVTT renditions of `item`: one per text subtitle track, embedded
/// or sidecar, in the item's subtitle order.
pub fn subtitle_renditions(item: &MediaItem) -> Vec<SubtitleRendition> {
    if item.playback.is_none() {
        return Vec::new();
    }
    item.subtitles
        .iter()
        .filter(|s| s.kind == SubtitleKind::Text && s.codec != "unknown")
        .take(MAX_SUBTITLE_RENDITIONS)
        .map(|s| SubtitleRendition {
            name: format!("subs-{}", s.index),
            track: s.index,
            language: language_tag(s.language.as_deref()),
            label: subtitle_label(s),
            forced: s.forced,
            default: s.default,
        })
        .collect()
}

fn subtitle_label(s: &SubtitleStream) -> String {
    let mut label = s
        .title
        .clone()
        .or_else(|| s.language.clone())
        .unwrap_or_else(|| format!("Subtitles {}", s.index + 1));
    if s.forced && !label.to_lowercase().contains("forced") {
        label.push_str(" (forced)");
    }
    if matches!(s.source, SubtitleSource::Sidecar { sdh: true, .. }) {
        label.push_str(" (SDH)");
    }
    label
}

#[cfg(test)]
mod tests;
