//! The playback decision: direct play, remux or transcode, with reasons,
//! for one client profile ([`crate::profile`]).
//!
//! Pure logic over [`MediaInfo`]; the pipeline builder follows the plan it
//! returns. The rules (design.md, "Playback decision"): a file plays as it
//! is when the client plays its container and every selected stream;
//! otherwise it goes out as HLS, each stream copied when the client plays
//! it and a segment container carries it ([`Packaging`]: MPEG-TS for H.264
//! and AAC, RFC 8216 §3.2; fragmented MP4 also for HEVC, AV1, VP9, Opus
//! and FLAC, for clients that take it), and encoded to H.264/AAC
//! otherwise. The `generic` profile gives hlsd's rules from before
//! profiles.

use super::streams::{AudioStream, MediaInfo, VideoStream};
use crate::packaging::Packaging;
use crate::profile::{ClientProfile, VideoTraits};
use serde::Serialize;

/// The output height a decision reports for a transcode, at most, in
/// lines: the top of the default ladder. The rungs a server makes follow
/// its own `--max-height` ([`crate::rendition::renditions_of`]); a
/// decision does not know it, so with `--max-height 720` a 1080p source's
/// decision still says 1920x1080.
pub const MAX_TRANSCODE_HEIGHT: u32 = crate::ladder::DEFAULT_MAX_HEIGHT;

/// How a file reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Playback {
    /// The original bytes over HTTP with Range.
    DirectPlay,
    /// HLS by stream copy: parse, no decoding.
    Remux,
    /// HLS with at least one stream decoded and encoded again.
    Transcode,
}

impl Playback {
    /// The snake_case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Playback::DirectPlay => "direct_play",
            Playback::Remux => "remux",
            Playback::Transcode => "transcode",
        }
    }
}

/// What happens to the video stream in an HLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPlan {
    /// The source's video is copied (a parser only): H.264 into either
    /// packaging, HEVC, AV1 and VP9 into fragmented MP4.
    Copy,
    /// Decoded and encoded to H.264 at this size (even, at most 720 lines).
    Transcode {
        /// Output width in pixels (even).
        width: u32,
        /// Output height in pixels (even).
        height: u32,
        /// Whether a deinterlacer goes before the encoder.
        deinterlace: bool,
        /// Whether the `image-orientation` tag is applied (`videoflip`).
        rotate: bool,
    },
}

/// What happens to the chosen audio track in an HLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPlan {
    /// The track is copied (a parser only): AAC into either packaging,
    /// Opus and FLAC into fragmented MP4.
    Copy,
    /// Decoded and encoded to AAC-LC stereo 48 kHz.
    Transcode,
}

/// The outcome for one file: how it plays, why, and the per-stream plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// `None` when nothing in the file can be played.
    pub playback: Option<Playback>,
    /// Machine-readable reasons, e.g. `container_unsupported:matroska`,
    /// `video_codec_unsupported:hevc`, `bit_depth:10`.
    pub reasons: Vec<String>,
    /// Plan for the video stream, `None` when it is left out or absent.
    pub video: Option<VideoPlan>,
    /// The chosen audio track (index into [`MediaInfo::audio`]) and its plan.
    pub audio: Option<(usize, AudioPlan)>,
    /// The segment container of its HLS output.
    pub packaging: Packaging,
    /// The profile it was made for.
    pub profile: String,
}

impl Decision {
    /// The HLS mode this plan gives: remux when every planned stream is
    /// copied, else transcode. For a direct-play file asked for as HLS.
    pub fn hls_mode(&self) -> Playback {
        let all_copy = self.video.is_none_or(|p| p == VideoPlan::Copy)
            && self.audio.is_none_or(|(_, p)| p == AudioPlan::Copy);
        if all_copy {
            Playback::Remux
        } else {
            Playback::Transcode
        }
    }
}

/// The size `v` is shown at, in pixels (width, height): its pixel aspect
/// ratio and rotation applied.
pub fn display_size(v: &VideoStream) -> (f64, f64) {
    let (par_n, par_d) = match v.pixel_aspect {
        (n, d) if n > 0 && d > 0 => (n as f64, d as f64),
        _ => (1.0, 1.0),
    };
    let (w, h) = (v.width as f64 * par_n / par_d, v.height as f64);
    if v.rotation % 180 == 90 {
        (h, w)
    } else {
        (w, h)
    }
}

/// The transcode output size (the top rung of its ladder,
/// [`crate::ladder`]): display aspect kept (pixel aspect and rotation
/// applied), at most `max_height` lines, never more lines than the
/// source, both dimensions even (4:2:0 needs it), at least 2.
pub fn transcode_size(v: &VideoStream, max_height: u32) -> (u32, u32) {
    let top = crate::ladder::ladder(display_size(v), v.fps, max_height)[0];
    (top.width, top.height)
}

/// Whether an audio track goes into MPEG-TS HLS as it is (AAC, RFC 8216
/// §3.2).
pub fn audio_copyable(a: &AudioStream) -> bool {
    Packaging::Ts.carries_audio(&a.codec)
}

/// The track a player gets when it asks for none: the first the file
/// marks as default and that can be played, else the first that can.
pub fn default_audio(audio: &[AudioStream]) -> Option<usize> {
    let playable = |a: &AudioStream| audio_copyable(a) || a.decodable;
    audio
        .iter()
        .position(|a| a.default && playable(a))
        .or_else(|| audio.iter().position(playable))
        .or((!audio.is_empty()).then_some(0))
}

/// The traits of `v` a profile checks.
pub fn video_traits(v: &VideoStream) -> VideoTraits<'_> {
    VideoTraits {
        codec: &v.codec,
        profile: v.profile.as_deref(),
        level: v.level.as_deref(),
        bit_depth: v.bit_depth,
        chroma: v.chroma_format.as_deref(),
        hdr: v.hdr.as_ref().map(|h| h.capability()),
    }
}

/// Why `profile` cannot take audio track `a` as it is in HLS, if it
/// cannot. AAC counts as played whatever the profile lists (an encode
/// would give AAC again), unless it has too many channels.
pub fn audio_hls_problem(profile: &ClientProfile, a: &AudioStream) -> Option<String> {
    profile
        .audio_problem(&a.codec, a.channels)
        .filter(|p| !(a.codec == "aac" && p.starts_with("audio_codec_unsupported")))
}

/// Why `profile` cannot take video `v` as it is in HLS. H.264 counts as
/// played whatever the profile lists (an encode would give H.264 again),
/// unless its profile, level, depth or chroma are beyond the client.
fn video_hls_problems(profile: &ClientProfile, v: &VideoStream) -> Vec<String> {
    let mut problems = profile.video_problems(&video_traits(v));
    if v.codec == "h264" && problems.iter().any(|p| p.starts_with("video_codec_")) {
        problems = ClientProfile::generic().video_problems(&video_traits(v));
    }
    problems
}

/// Whether `profile` gets audio track `a` of a file in `container`
/// copied in `packaging`.
pub fn audio_copied(
    profile: &ClientProfile,
    container: &str,
    a: &AudioStream,
    packaging: Packaging,
) -> bool {
    copies_from(container, a, packaging)
        && (packaging == Packaging::Ts || profile.fmp4)
        && audio_hls_problem(profile, a).is_none()
}

/// Whether `packaging` carries audio `a` of a file in `container` as it
/// is. Not MP3 out of AVI: GStreamer's `avidemux` dates the frames of a
/// VBR MP3 from the chunks' byte rate, up to 17 ms off (measured on a
/// `lamemp3enc` track), and a copy would carry those jumps; an encode
/// goes by the samples.
pub fn copies_from(container: &str, a: &AudioStream, packaging: Packaging) -> bool {
    packaging.carries_audio(&a.codec) && !(a.codec == "mp3" && container == "avi")
}

/// Decides how `info` plays for the `generic` profile.
pub fn decide(info: &MediaInfo) -> Decision {
    decide_for(info, &ClientProfile::generic())
}

/// Decides how `info` plays for a client with `profile`.
pub fn decide_for(info: &MediaInfo, profile: &ClientProfile) -> Decision {
    let mut d = Decision {
        profile: profile.name.clone(),
        ..Decision::default()
    };
    if let Some(err) = &info.probe_error {
        d.reasons.push(format!("probe_failed:{err}"));
        return d;
    }
    if info.video.is_none() && info.audio.is_empty() {
        d.reasons.push("no_audio_and_no_video".into());
        return d;
    }
    // Audio: the file's default track, else the first (design.md); the
    // others are offered as alternate renditions.
    let chosen = default_audio(&info.audio).map(|i| (i, &info.audio[i]));
    if let Some((i, _)) = chosen.filter(|_| info.audio.len() > 1) {
        d.reasons
            .push(format!("audio_track:{}_of_{}", i + 1, info.audio.len()));
    }
    let video = info.video.as_ref();
    let video_problems = video.map(|v| video_hls_problems(profile, v));
    // Dolby Vision without a base layer other decoders show (profile 5):
    // decoded, its pictures come out green and purple; copied, only a
    // Dolby Vision client shows them, from a `dvh1` sample entry that a
    // copy does not write yet. Refused until that is done.
    if let Some(dv) = video
        .and_then(|v| v.hdr.as_ref()?.dolby_vision)
        .filter(|dv| !dv.has_compatible_base_layer())
    {
        d.reasons.push(format!(
            "dolby_vision_without_base_layer:profile_{}",
            dv.profile
        ));
        return d;
    }
    let audio_problem = chosen.and_then(|(_, a)| audio_hls_problem(profile, a));
    let container = info.container.as_deref().unwrap_or("unknown");
    d.packaging = hls_packaging(
        profile,
        container,
        video,
        video_problems.as_deref(),
        chosen.map(|c| c.1),
    );
    let packaging = d.packaging;
    let audio_copy =
        chosen.and_then(|(i, a)| plan_audio(&mut d, profile, container, i, a, audio_problem));

    let video_copy = video
        .zip(video_problems)
        .and_then(|(v, problems)| plan_video(&mut d, v, problems));

    if d.video.is_none() && d.audio.is_none() {
        d.reasons.push("no_playable_stream".into());
        return d;
    }
    d.playback = Some(if d.hls_mode() == Playback::Remux {
        if !profile.plays_container(container) {
            d.reasons.push(format!("container_unsupported:{container}"));
        } else if video_copy.is_none() {
            d.reasons.push("no_video".into());
        }
        Playback::Remux
    } else {
        Playback::Transcode
    });
    if packaging == Packaging::Fmp4 {
        d.reasons.push("packaging:fmp4".into());
    }
    if let Some(codec) = video_copy {
        d.reasons.push(format!("video_copy:{codec}"));
    }
    if let Some(codec) = audio_copy {
        d.reasons.push(format!("audio_copy:{codec}"));
    }

    direct_play(&mut d, profile, container, video, chosen.map(|c| c.1));
    d
}

/// Holds decision `d` to a client's bit-rate limit (`limit_bps`): a file
/// whose peak (`peak_bps`) is above it is not played directly, and its
/// copy is not offered, so its HLS plays encoded rungs that fit
/// (`bitrate_exceeds_limit:12.2Mbps>2Mbps` says why). Jellyfin makes the
/// same call from its per-user `RemoteClientBitrateLimit`.
pub fn fit_bitrate(d: &mut Decision, peak_bps: u64, limit_bps: u64) {
    if d.playback.is_none() || peak_bps <= limit_bps {
        return;
    }
    d.reasons.push(format!(
        "bitrate_exceeds_limit:{}>{}",
        mbps(peak_bps),
        mbps(limit_bps)
    ));
    if d.playback == Some(Playback::DirectPlay) || d.video == Some(VideoPlan::Copy) {
        d.playback = Some(Playback::Transcode);
    }
}

/// A bit rate for people: `12.2Mbps`, `8Mbps`, `300kbps`.
fn mbps(bps: u64) -> String {
    if bps >= 1_000_000 {
        let m = bps as f64 / 1e6;
        if (m - m.round()).abs() < 0.05 {
            format!("{}Mbps", m.round())
        } else {
            format!("{m:.1}Mbps")
        }
    } else {
        format!("{}kbps", bps / 1000)
    }
}

/// Plans audio track `i` (`a`) of an HLS output: copied when the client
/// plays it in `d.packaging`, else encoded when it can be decoded (the
/// reason goes in `d`). Returns the codec when copied.
fn plan_audio(
    d: &mut Decision,
    profile: &ClientProfile,
    container: &str,
    i: usize,
    a: &AudioStream,
    problem: Option<String>,
) -> Option<String> {
    let packaging = d.packaging;
    if audio_copied(profile, container, a, packaging) {
        d.audio = Some((i, AudioPlan::Copy));
        return Some(a.codec.clone());
    }
    if a.decodable {
        d.reasons.push(
            problem.unwrap_or_else(|| {
                format!("audio_not_carried_in_{}:{}", packaging.as_str(), a.codec)
            }),
        );
        d.audio = Some((i, AudioPlan::Transcode));
    } else {
        d.reasons.push(format!("audio_undecodable:{}", a.codec));
    }
    None
}

/// Plans the video of an HLS output: copied when the client plays it
/// (no `problems`) and `d.packaging` carries it, else encoded (scaled,
/// deinterlaced, rotated) when it can be decoded, with the reasons in
/// `d`. Returns the codec when copied.
fn plan_video(d: &mut Decision, v: &VideoStream, problems: Vec<String>) -> Option<String> {
    let packaging = d.packaging;
    if problems.is_empty() && packaging.carries_video(&v.codec) {
        d.video = Some(VideoPlan::Copy);
        return Some(v.codec.clone());
    }
    if !v.decodable {
        d.reasons.push(format!("video_undecodable:{}", v.codec));
        return None;
    }
    let (width, height) = transcode_size(v, MAX_TRANSCODE_HEIGHT);
    if problems.is_empty() {
        d.reasons.push(format!(
            "video_not_carried_in_{}:{}",
            packaging.as_str(),
            v.codec
        ));
    }
    d.reasons.extend(problems);
    if v.interlaced {
        d.reasons.push("deinterlace".into());
    }
    if (width, height) != (v.width, v.height) {
        d.reasons
            .push(format!("scale:{}x{}->{width}x{height}", v.width, v.height));
    }
    d.video = Some(VideoPlan::Transcode {
        width,
        height,
        deinterlace: v.interlaced,
        rotate: v.rotation != 0,
    });
    None
}

/// Direct play when the client plays the container and every stream:
/// `d` then says so. The HLS plan stays, for a client that asks for HLS
/// all the same.
fn direct_play(
    d: &mut Decision,
    profile: &ClientProfile,
    container: &str,
    video: Option<&VideoStream>,
    audio: Option<&AudioStream>,
) {
    let plays_file = profile.plays_container(container)
        && video.is_none_or(|v| profile.video_problems(&video_traits(v)).is_empty())
        && audio.is_none_or(|a| profile.audio_problem(&a.codec, a.channels).is_none());
    if !plays_file {
        return;
    }
    d.playback = Some(Playback::DirectPlay);
    d.reasons = vec![format!("direct_play_container:{container}")];
    if let Some(v) = video {
        d.reasons.push(format!("video_copy:{}", v.codec));
    }
    if let Some(a) = audio {
        d.reasons.push(format!("audio_copy:{}", a.codec));
    }
}

/// The segment container of a file's HLS output for `profile`: MPEG-TS
/// unless a stream the client plays can be copied only into fragmented
/// MP4 (HEVC, AV1, VP9 video; Opus, FLAC audio) and the client takes it.
/// Encoded video always goes into MPEG-TS.
fn hls_packaging(
    profile: &ClientProfile,
    container: &str,
    video: Option<&VideoStream>,
    video_problems: Option<&[String]>,
    audio: Option<&AudioStream>,
) -> Packaging {
    if !profile.fmp4 {
        return Packaging::Ts;
    }
    let video_plays = video_problems.is_some_and(|p| p.is_empty());
    let copies_video_in =
        |p: Packaging| video.is_some_and(|v| video_plays && p.carries_video(&v.codec));
    let copies_audio_in =
        |p: Packaging| audio.is_some_and(|a| audio_copied(profile, container, a, p));
    match video {
        Some(_) if copies_video_in(Packaging::Ts) => {
            if !copies_audio_in(Packaging::Ts) && copies_audio_in(Packaging::Fmp4) {
                Packaging::Fmp4
            } else {
                Packaging::Ts
            }
        }
        Some(_) if copies_video_in(Packaging::Fmp4) => Packaging::Fmp4,
        Some(_) => Packaging::Ts,
        None if !copies_audio_in(Packaging::Ts) && copies_audio_in(Packaging::Fmp4) => {
            Packaging::Fmp4
        }
        None => Packaging::Ts,
    }
}

#[cfg(test)]
pub(crate) mod tests;
