//! GStreamer's Discoverer turned into plain [`MediaInfo`].
//!
//! Discovering is blocking (85–140 ms per file measured here, design.md), so
//! callers run [`probe_file`] on a blocking thread.

use super::colour::{self, Colour, Hdr};
use super::language;
use super::streams::{AudioStream, MediaInfo, SubtitleSource, SubtitleStream, VideoStream};
use crate::container::matroska_tracks;
use gst::prelude::*;
use gst_pbutils::prelude::*;
use gst_pbutils::{Discoverer, DiscovererContainerInfo, DiscovererResult};
use std::path::Path;
use std::time::Duration;

/// The Discoverer's timeouts, tried in turn while it times out, the last
/// being `timeout`. GStreamer 1.22's Discoverer sometimes misses the error
/// of a file with no streams and waits out its whole timeout instead
/// (`bad_no_streams_262b.mp4`: 5 of 11 probes in one process, which
/// otherwise answer in 2–9 ms; `derived_truncated_no_moov_bbb.mp4`: 1 of
/// 11), on whichever thread it runs. A short first attempt bounds that
/// wait: with 1 s then 2 s, the 11 probes of the first file took 1.0 or
/// 3.0 s when they missed it (300 probes of the `../shared/media` files:
/// 12.8–20.4 s, against 160 s with a first attempt of 0.5 s, after which
/// the retries missed it too). A file that really needs long (a slow
/// network share) still gets `timeout` on its last attempt.
fn attempts(timeout: Duration) -> Vec<Duration> {
    let mut out: Vec<Duration> = [Duration::from_secs(1), Duration::from_secs(2)]
        .into_iter()
        .filter(|t| *t < timeout)
        .collect();
    out.push(timeout);
    out
}

/// The longest [`probe_file`] can take with `timeout`: every attempt
/// timing out.
pub fn longest(timeout: Duration) -> Duration {
    attempts(timeout).iter().sum()
}

/// The probe error of an MP4 whose tracks list no sample the file holds
/// ([`crate::container::mp4_header::holds_samples`]): nothing to play, so
/// it says so rather than the demuxer's "This file is corrupt".
pub const NO_MEDIA_DATA: &str =
    "no_media_data: the file's tracks list no sample it holds (empty sample tables, data past its end)";

/// Probes one file. Never fails: a file that cannot be probed comes back
/// with [`MediaInfo::probe_error`] set, so it stays listed as unplayable.
pub fn probe_file(path: &Path, timeout: Duration) -> MediaInfo {
    if let Some(input) = crate::container::input::Input::open(path).as_mut() {
        if crate::container::mp4_header::holds_samples(input) == Some(false) {
            return MediaInfo {
                probe_error: Some(NO_MEDIA_DATA.into()),
                ..Default::default()
            };
        }
    }
    let mut last = String::new();
    for t in attempts(timeout) {
        match try_probe(path, t) {
            Ok(info) => return without_empty_streams(path, info),
            Err(Failure::TimedOut(e)) => last = e,
            Err(Failure::Other(e)) => {
                last = e;
                break;
            }
        }
    }
    MediaInfo {
        probe_error: Some(last),
        ..Default::default()
    }
}

/// `info` without the audio streams an MPEG-TS file declares but never
/// fills ([`super::stream_data`]; other containers declare only streams
/// they hold), and with the length the pass read when it read the whole
/// file (the Discoverer says 0 s for a clip shorter than a second, and
/// takes a `tsdemux` re-base for the end). Kept as it is when the pass
/// cannot tell.
fn without_empty_streams(path: &Path, mut info: MediaInfo) -> MediaInfo {
    if info.container.as_deref() != Some("mpegts") {
        return info;
    }
    // An entry with no stream id and no format is no stream at all (seen
    // beside an empty PID's own entry).
    info.audio
        .retain(|a| a.stream_id.is_some() || a.channels > 0 || a.sample_rate > 0);
    let declared: Vec<String> = info
        .video
        .iter()
        .filter_map(|v| v.stream_id.clone())
        .chain(info.audio.iter().filter_map(|a| a.stream_id.clone()))
        .collect();
    if let Some(data) = super::passes::stream_data::streams_with_data(path, &declared) {
        // Read to its end, the file's own timestamps give its length.
        if data.whole_span.is_some() {
            info.duration = data.whole_span;
        }
        let before = info.audio.len();
        info.audio.retain(|a| {
            a.stream_id
                .as_ref()
                .is_none_or(|id| data.with_data.contains(id))
        });
        if info.audio.len() < before {
            tracing::info!(path = %path.display(), dropped = before - info.audio.len(), "audio streams declared but without data left out");
        }
    }
    for (index, a) in info.audio.iter_mut().enumerate() {
        a.index = index;
    }
    info
}

/// Why one attempt failed.
enum Failure {
    /// The Discoverer's timeout passed: worth another attempt.
    TimedOut(String),
    /// Anything else: final.
    Other(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Other(e)
    }
}

fn try_probe(path: &Path, timeout: Duration) -> Result<MediaInfo, Failure> {
    let uri = glib::filename_to_uri(path, None).map_err(|e| format!("bad path: {e}"))?;
    let discoverer = Discoverer::new(gst::ClockTime::from_nseconds(timeout.as_nanos() as u64))
        .map_err(|e| format!("discoverer unavailable: {e}"))?;
    let source_path = path.to_path_buf();
    discoverer.connect_source_setup(move |_, source| {
        super::passes::source_fix::correct_source(&source_path, source);
    });
    let info = discoverer
        .discover_uri(&uri)
        .map_err(|e| plain_error(&e.to_string()))?;
    match info.result() {
        DiscovererResult::Ok | DiscovererResult::MissingPlugins => {}
        DiscovererResult::Timeout => {
            return Err(Failure::TimedOut(format!("timed out after {timeout:?}")))
        }
        DiscovererResult::UriInvalid => return Err("invalid uri".to_string().into()),
        other => return Err(format!("{other:?}").to_lowercase().into()),
    }

    let video = video_stream(&info);
    let audio = audio_streams(&info);
    let subtitles = subtitle_streams(&info);
    Ok(MediaInfo {
        duration: info.duration().map(|d| Duration::from_nanos(d.nseconds())),
        container: container_name(&info),
        video,
        audio,
        subtitles,
        probe_error: None,
    })
}

/// The first video stream that is not a still image (a cover), if any.
fn video_stream(info: &gst_pbutils::DiscovererInfo) -> Option<VideoStream> {
    let global_rotation = info
        .stream_info()
        .and_then(|s| s.tags())
        .as_ref()
        .and_then(rotation_of);
    let v = info.video_streams().into_iter().find(|v| !v.is_image())?;
    let caps = v.caps();
    let s = caps.as_ref().and_then(|c| c.structure(0));
    let codec = s.map(video_codec_name).unwrap_or_else(|| "unknown".into());
    let profile = s.and_then(|s| s.get::<String>("profile").ok());
    let bit_depth = s
        .and_then(|s| s.get::<u32>("bit-depth-luma").ok())
        .or_else(|| profile.as_deref().and_then(depth_from_profile));
    let fps = v.framerate();
    let par = v.par();
    Some(VideoStream {
        codec,
        profile,
        level: s.and_then(|s| s.get::<String>("level").ok()),
        width: v.width(),
        height: v.height(),
        fps: if fps.denom() > 0 {
            (fps.numer() as f64 / fps.denom() as f64 * 1000.0).round() / 1000.0
        } else {
            0.0
        },
        bit_depth,
        chroma_format: s.and_then(|s| s.get::<String>("chroma-format").ok()),
        pixel_aspect: (par.numer().max(0) as u32, par.denom().max(0) as u32),
        interlaced: v.is_interlaced(),
        rotation: v
            .tags()
            .as_ref()
            .and_then(rotation_of)
            .or(global_rotation)
            .unwrap_or(0),
        colour: s.and_then(colour_of),
        hdr: s.and_then(hdr_of),
        decodable: caps.as_ref().is_some_and(decoder_available),
        stream_id: v.stream_id().map(|s| s.to_string()),
    })
}

/// The colour description in caps `s` (`colorimetry`), as H.273 names.
fn colour_of(s: &gst::StructureRef) -> Option<Colour> {
    let c: gst_video::VideoColorimetry = s.get::<String>("colorimetry").ok()?.parse().ok()?;
    Some(Colour {
        primaries: colour::primaries_name(c.primaries().to_iso()).into(),
        transfer: colour::transfer_name(c.transfer().to_iso()).into(),
        matrix: colour::matrix_name(c.matrix().to_iso()).into(),
        full_range: c.range() == gst_video::VideoColorRange::Range0_255,
    })
}

/// The HDR form in caps `s`: PQ or HLG by the `colorimetry` transfer,
/// with `mastering-display-info` (SMPTE ST 2086, luminance in 0.0001
/// cd/m²) and `content-light-level` (CTA-861.3, nits) where the parser
/// or demuxer put them.
fn hdr_of(s: &gst::StructureRef) -> Option<Hdr> {
    let c: gst_video::VideoColorimetry = s.get::<String>("colorimetry").ok()?.parse().ok()?;
    let transfer = colour::hdr_transfer(c.transfer().to_iso())?;
    let mastering = s
        .get::<String>("mastering-display-info")
        .ok()
        .and_then(|m| m.parse::<gst_video::VideoMasteringDisplayInfo>().ok());
    let light = s
        .get::<String>("content-light-level")
        .ok()
        .and_then(|l| l.parse::<gst_video::VideoContentLightLevel>().ok());
    let nits = |v: u32| f64::from(v) / 10_000.0;
    Some(Hdr {
        transfer,
        mastering_max_nits: mastering.map(|m| nits(m.max_display_mastering_luminance())),
        mastering_min_nits: mastering.map(|m| nits(m.min_display_mastering_luminance())),
        max_cll_nits: light.map(|l| u32::from(l.max_content_light_level())),
        max_fall_nits: light.map(|l| u32::from(l.max_frame_average_light_level())),
        dolby_vision: None,
    })
}

/// The audio streams, in the file's order.
fn audio_streams(info: &gst_pbutils::DiscovererInfo) -> Vec<AudioStream> {
    info.audio_streams()
        .into_iter()
        .enumerate()
        .map(|(index, a)| audio_stream(index, &a))
        .collect()
}

/// Audio stream `index`, from what the Discoverer found of it.
fn audio_stream(index: usize, a: &gst_pbutils::DiscovererAudioInfo) -> AudioStream {
    let caps = a.caps();
    AudioStream {
        index,
        title: title_of(a.upcast_ref()),
        default: is_default(a.upcast_ref()),
        codec: caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .map(audio_codec_name)
            .unwrap_or_else(|| "unknown".into()),
        channels: a.channels(),
        sample_rate: a.sample_rate(),
        profile: caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .and_then(|s| s.get::<String>("profile").ok()),
        language: a.language().as_deref().and_then(language::normalize),
        decodable: caps.as_ref().is_some_and(decoder_available),
        stream_id: a.stream_id().map(|s| s.to_string()),
    }
}

/// The subtitle streams, in the file's order.
fn subtitle_streams(info: &gst_pbutils::DiscovererInfo) -> Vec<SubtitleStream> {
    info.subtitle_streams()
        .into_iter()
        .enumerate()
        .map(|(index, s)| subtitle_stream(index, &s))
        .collect()
}

/// Subtitle stream `index`, from what the Discoverer found of it.
fn subtitle_stream(index: usize, s: &gst_pbutils::DiscovererSubtitleInfo) -> SubtitleStream {
    let codec = s
        .caps()
        .as_ref()
        .and_then(|c| c.structure(0))
        .map(subtitle_codec_name)
        .unwrap_or_else(|| "unknown".into());
    let title = title_of(s.upcast_ref());
    SubtitleStream {
        index,
        kind: SubtitleStream::kind_of(&codec),
        codec,
        language: s.language().as_deref().and_then(language::normalize),
        // GStreamer 1.22's demuxers do not expose Matroska's
        // FlagForced; a title that says so is the usual sign.
        forced: title
            .as_deref()
            .is_some_and(|t| t.to_lowercase().contains("forced")),
        title,
        default: is_default(s.upcast_ref()),
        source: SubtitleSource::Embedded {
            stream_id: s.stream_id().map(|id| id.to_string()),
        },
    }
}

/// A stream's title tag (Matroska's track name), if it has a useful one.
fn title_of(s: &gst_pbutils::DiscovererStreamInfo) -> Option<String> {
    let tags = s.tags()?;
    let title = tags.get::<gst::tags::Title>()?;
    let title = title.get().trim();
    (!title.is_empty()).then(|| title.to_string())
}

/// Whether the file marks the stream as its default. GStreamer 1.22's
/// Discoverer does not report it (the demuxers put Matroska's FlagDefault
/// in `GST_STREAM_FLAG_SELECT` on their pads' `GstStream`, which the
/// Discoverer's stream info does not carry); [`add_container_flags`]
/// reads it from a Matroska file itself.
fn is_default(_s: &gst_pbutils::DiscovererStreamInfo) -> bool {
    false
}

/// Fills in what the Discoverer does not report from the container's own
/// track headers: for Matroska/WebM, each audio and subtitle track's
/// `FlagDefault` and `FlagForced`, and its name and language where the
/// Discoverer had none (it misses a sparse track's tags when they come
/// after it prerolls). Tracks are matched by order within their kind,
/// and only when the counts agree.
pub fn add_container_flags(info: &mut MediaInfo, path: &Path) {
    if !matches!(info.container.as_deref(), Some("matroska" | "webm")) {
        return;
    }
    let Some(headers) = matroska_tracks::read(path) else {
        return;
    };
    let of = |kind| headers.iter().filter(move |h| h.kind == kind);
    if of(matroska_tracks::Kind::Audio).count() == info.audio.len() {
        for (a, h) in info.audio.iter_mut().zip(of(matroska_tracks::Kind::Audio)) {
            a.default = h.default;
            a.title = a.title.take().or_else(|| h.name.clone());
            a.language = a
                .language
                .take()
                .or_else(|| h.language.as_deref().and_then(language::normalize));
        }
    }
    let embedded: Vec<&mut SubtitleStream> = info
        .subtitles
        .iter_mut()
        .filter(|s| matches!(s.source, SubtitleSource::Embedded { .. }))
        .collect();
    if of(matroska_tracks::Kind::Subtitle).count() == embedded.len() {
        for (s, h) in embedded
            .into_iter()
            .zip(of(matroska_tracks::Kind::Subtitle))
        {
            s.default = h.default;
            s.forced |= h.forced;
            s.title = s.title.take().or_else(|| h.name.clone());
            s.language = s
                .language
                .take()
                .or_else(|| h.language.as_deref().and_then(language::normalize));
        }
    }
}

/// Dolby Vision, which GStreamer 1.22 does not report, from the
/// container's record ([`crate::container::dolby_vision`]): MP4 and
/// QuickTime `dvcC`/`dvvC`/`dvwC`, Matroska's block addition mapping.
/// Where the stream's own colour description does not say HDR, the
/// record's base layer does: HLG for compatibility id 4, PQ for 1 and 6
/// and for profile 5's IPT-PQ-c2; an SDR base layer (2) plays as SDR.
pub fn add_dolby_vision(info: &mut MediaInfo, path: &Path) {
    use crate::container::dolby_vision;
    let record = match info.container.as_deref() {
        Some("matroska" | "webm") => matroska_tracks::read(path).and_then(|tracks| {
            tracks
                .iter()
                .find(|t| t.kind == matroska_tracks::Kind::Video)?
                .dolby_vision
        }),
        Some("mp4" | "mov") => dolby_vision::in_mp4_file(path),
        _ => None,
    };
    let (Some(video), Some(dv)) = (info.video.as_mut(), record) else {
        return;
    };
    let base = match dv.compatibility_id {
        2 => None,
        4 => Some(colour::HdrTransfer::Hlg),
        _ => Some(colour::HdrTransfer::Pq),
    };
    match (video.hdr.as_mut(), base) {
        (Some(hdr), _) => hdr.dolby_vision = Some(dv),
        (None, Some(transfer)) => {
            video.hdr = Some(Hdr {
                transfer,
                mastering_max_nits: None,
                mastering_min_nits: None,
                max_cll_nits: None,
                max_fall_nits: None,
                dolby_vision: Some(dv),
            })
        }
        (None, None) => {}
    }
}

/// The first line of a GLib error, without GStreamer debug detail.
fn plain_error(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or("unknown error")
        .to_string()
}

/// Whether any installed decoder accepts this stream. Only the fields that
/// pick a codec are kept, so a stream format a parser converts (`hvc1` vs
/// `byte-stream`) does not hide a decoder that decodebin would reach.
fn decoder_available(caps: &gst::Caps) -> bool {
    let Some(s) = caps.structure(0) else {
        return false;
    };
    let mut wanted = gst::Structure::new_empty(s.name());
    for field in [
        "mpegversion",
        "layer",
        "wmvversion",
        "msmpegversion",
        "divxversion",
    ] {
        if let Ok(v) = s.value(field) {
            wanted.set_value(field, v.clone());
        }
    }
    let wanted = gst::Caps::builder_full().structure(wanted).build();
    gst::ElementFactory::factories_with_type(gst::ElementFactoryType::DECODER, gst::Rank::MARGINAL)
        .iter()
        .any(|f| f.can_sink_any_caps(&wanted))
}

fn rotation_of(tags: &gst::TagList) -> Option<u32> {
    let orientation = tags.get::<gst::tags::ImageOrientation>()?;
    let value = orientation.get();
    value
        .strip_prefix("rotate-")
        .and_then(|deg| deg.parse().ok())
}

fn depth_from_profile(profile: &str) -> Option<u32> {
    if profile.contains("12") {
        Some(12)
    } else if profile.contains("10") {
        Some(10)
    } else {
        None
    }
}

fn short_name(name: &str) -> String {
    let tail = name.rsplit('/').next().unwrap_or(name);
    tail.strip_prefix("x-").unwrap_or(tail).to_lowercase()
}

fn video_codec_name(s: &gst::StructureRef) -> String {
    match s.name().as_str() {
        "video/x-h264" => "h264".into(),
        "video/x-h265" => "hevc".into(),
        "video/mpeg" => match s.get::<i32>("mpegversion").unwrap_or(0) {
            1 => "mpeg1video".into(),
            2 => "mpeg2video".into(),
            4 => "mpeg4".into(),
            _ => "mpeg".into(),
        },
        "video/x-divx" | "video/x-xvid" => "mpeg4".into(),
        "image/jpeg" => "mjpeg".into(),
        other => short_name(other),
    }
}

fn audio_codec_name(s: &gst::StructureRef) -> String {
    match s.name().as_str() {
        "audio/mpeg" => match s.get::<i32>("mpegversion").unwrap_or(0) {
            1 => match s.get::<i32>("layer").unwrap_or(3) {
                1 => "mp1".into(),
                2 => "mp2".into(),
                _ => "mp3".into(),
            },
            _ => "aac".into(),
        },
        "audio/AMR" => "amr_nb".into(),
        "audio/AMR-WB" => "amr_wb".into(),
        "audio/x-raw" => "pcm".into(),
        other => short_name(other),
    }
}

fn subtitle_codec_name(s: &gst::StructureRef) -> String {
    match s.name().as_str() {
        "application/x-subtitle" | "text/x-raw" => "subrip".into(),
        "application/x-subtitle-vtt" => "webvtt".into(),
        "application/x-ssa" | "application/x-ass" => "ass".into(),
        "subpicture/x-pgs" => "pgs".into(),
        "subpicture/x-dvd" => "dvdsub".into(),
        "subpicture/x-dvb" => "dvbsub".into(),
        other => short_name(other),
    }
}

/// The short container name: the outermost container that is not a tag
/// wrapper (ID3, APE), or the bare stream's codec for container-less files.
fn container_name(info: &gst_pbutils::DiscovererInfo) -> Option<String> {
    let mut top = info.stream_info()?;
    loop {
        let caps = top.caps()?;
        let s = caps.structure(0)?;
        let name = s.name().as_str();
        // A tag wrapper: the container or stream under it. An MP3 with an
        // ID3 tag comes as a stream whose next is the MPEG audio.
        if matches!(name, "application/x-id3" | "application/x-apetag") {
            top = match top.downcast_ref::<DiscovererContainerInfo>() {
                Some(container) => container.streams().into_iter().next()?,
                None => top.next()?,
            };
            continue;
        }
        if top.is::<DiscovererContainerInfo>() {
            return Some(match name {
                "video/quicktime" => match s.get::<String>("variant").ok().as_deref() {
                    Some("apple") => "mov".into(),
                    Some("3gpp") | Some("3g2") => "3gp".into(),
                    _ => "mp4".into(),
                },
                "video/x-matroska" => "matroska".into(),
                "video/webm" | "audio/webm" => "webm".into(),
                "video/x-msvideo" => "avi".into(),
                "video/mpegts" => "mpegts".into(),
                "video/mpeg" => "mpeg-ps".into(),
                "application/ogg" | "video/ogg" | "audio/ogg" => "ogg".into(),
                "video/x-ms-asf" => "asf".into(),
                "video/x-flv" => "flv".into(),
                other => short_name(other),
            });
        }
        // A bare elementary stream (FLAC, MP3, ADTS AAC).
        return Some(if name.starts_with("audio/") {
            audio_codec_name(s)
        } else {
            video_codec_name(s)
        });
    }
}
