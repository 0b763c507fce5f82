//! HLS playlist text (RFC 8216), free of GStreamer and HTTP types.
//!
//! hlsd writes its own playlists from the item's renditions and timeline:
//! a master (multivariant) playlist whose variant is the video rendition
//! with the audio as an `EXT-X-MEDIA` rendition, and one media playlist
//! per rendition, a complete `VOD` playlist whenever the item's end is
//! known. URIs are passed in by the caller (they carry signed tokens).

use crate::packaging::Packaging;
use crate::rendition::{Rendition, SubtitleRendition};
use crate::timeline::{
    fmp4_segment_name, segment_name, subtitle_segment_name, INIT_SEGMENT_NAME, SEGMENT_SECONDS,
};
use std::fmt::Write;
use std::time::Duration;

/// `GROUP-ID` of the audio renditions in the master playlist.
pub const AUDIO_GROUP: &str = "audio";
/// `GROUP-ID` of the subtitle renditions in the master playlist.
pub const SUBTITLE_GROUP: &str = "subs";

/// A rendition and the URI of its media playlist, for the master playlist.
#[derive(Debug, Clone, Copy)]
pub struct Listed<'a> {
    /// The rendition.
    pub rendition: &'a Rendition,
    /// Its media playlist's URI, relative to the master playlist.
    pub uri: &'a str,
    /// `DEFAULT=YES`: the one a player plays unless told otherwise.
    pub default: bool,
    /// The average bit rate to declare, in bits per second: measured on
    /// the segments made so far, else the rendition's estimate.
    pub average_bps: u64,
    /// The peak segment bit rate to declare, in bits per second: a copy's
    /// from where its key frames lie in the file, else the rendition's
    /// [`Rendition::bandwidth_bps`].
    pub bandwidth_bps: u64,
}

/// A WebVTT rendition and the URI of its media playlist.
#[derive(Debug, Clone, Copy)]
pub struct ListedSubtitles<'a> {
    /// The rendition.
    pub rendition: &'a SubtitleRendition,
    /// Its media playlist's URI, relative to the master playlist.
    pub uri: &'a str,
    /// `DEFAULT=YES`.
    pub default: bool,
}

/// A quoted-string attribute value (RFC 8216 §4.2): no `"`, CR or LF.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            '\r' | '\n' => ' ',
            c => c,
        })
        .collect()
}

/// `NAME`s made unique within a group (RFC 8216 §4.3.4.1.1: "All
/// EXT-X-MEDIA tags in the same Group MUST have different NAME
/// attributes"): a repeated name gets ` (2)`, ` (3)`, ...
fn unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        let base = quoted(name);
        let mut candidate = base.clone();
        let mut n = 2;
        while out.contains(&candidate) {
            candidate = format!("{base} ({n})");
            n += 1;
        }
        out.push(candidate);
    }
    out
}

/// The master (multivariant) playlist (RFC 8216 §4.3.4).
///
/// With video, one `EXT-X-STREAM-INF` per video rendition in `video` (the
/// rungs of a ladder; a player starts on the first listed, Apple's HLS
/// authoring spec 1.x) with `BANDWIDTH` and `AVERAGE-BANDWIDTH` (video
/// plus the largest audio, §4.3.4.2), `RESOLUTION`, `CODECS` (video and
/// audio codecs, as the Apple authoring spec asks; not WebVTT, which
/// browsers' MSE do not know), `AUDIO` and `SUBTITLES` naming the groups;
/// each audio rendition is an `EXT-X-MEDIA:TYPE=AUDIO` and each WebVTT one
/// an `EXT-X-MEDIA:TYPE=SUBTITLES`, each with its own `URI` (§4.3.4.1).
/// With audio only, the default audio rendition is the variant itself.
pub fn master_playlist(
    video: &[Listed<'_>],
    audio: &[Listed<'_>],
    subtitles: &[ListedSubtitles<'_>],
) -> String {
    let fmp4 = video
        .iter()
        .chain(audio)
        .any(|l| l.rendition.packaging == Packaging::Fmp4);
    let mut out = String::from(version_line(fmp4));
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    if video.is_empty() {
        if let Some(a) = audio.iter().find(|a| a.default).or(audio.first()) {
            let _ = writeln!(
                out,
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"\n{}",
                a.bandwidth_bps.max(a.average_bps),
                a.average_bps,
                a.rendition.codecs,
                a.uri
            );
        }
        return out;
    }
    write_audio_media(&mut out, audio);
    write_subtitle_media(&mut out, subtitles);
    write_variants(&mut out, video, audio, !subtitles.is_empty());
    out
}

/// One `EXT-X-MEDIA:TYPE=AUDIO` per audio rendition, in the one audio
/// group, each named uniquely (label, else language, else "Audio").
fn write_audio_media(out: &mut String, audio: &[Listed<'_>]) {
    let names = unique_names(audio.iter().enumerate().map(|(i, a)| {
        a.rendition
            .label
            .as_deref()
            .or(a.rendition.language.as_deref())
            .unwrap_or(if i == 0 { "Audio" } else { "Audio track" })
    }));
    for (a, name) in audio.iter().zip(&names) {
        let r = a.rendition;
        let _ = write!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME=\"{name}\""
        );
        if let Some(l) = &r.language {
            let _ = write!(out, ",LANGUAGE=\"{l}\"");
        }
        let default = if a.default { "YES" } else { "NO" };
        let _ = write!(out, ",DEFAULT={default},AUTOSELECT=YES");
        if let Some(c) = r.channels {
            let _ = write!(out, ",CHANNELS=\"{c}\"");
        }
        let _ = writeln!(out, ",URI=\"{}\"", a.uri);
    }
}

/// One `EXT-X-MEDIA:TYPE=SUBTITLES` per WebVTT rendition, in the one
/// subtitle group; a forced track says `FORCED=YES`.
fn write_subtitle_media(out: &mut String, subtitles: &[ListedSubtitles<'_>]) {
    let names = unique_names(subtitles.iter().map(|s| s.rendition.label.as_str()));
    for (s, name) in subtitles.iter().zip(&names) {
        let r = s.rendition;
        let _ = write!(
            out,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{SUBTITLE_GROUP}\",NAME=\"{name}\""
        );
        if let Some(l) = &r.language {
            let _ = write!(out, ",LANGUAGE=\"{l}\"");
        }
        // A forced track is meant to be shown without being chosen;
        // the Apple authoring spec has AUTOSELECT=YES on it too.
        let default = if s.default { "YES" } else { "NO" };
        let _ = write!(out, ",DEFAULT={default},AUTOSELECT=YES");
        if r.forced {
            out.push_str(",FORCED=YES");
        }
        let _ = writeln!(out, ",URI=\"{}\"", s.uri);
    }
}

/// One `EXT-X-STREAM-INF` per video rendition: its bandwidths with the
/// largest audio's added, its codecs with every audio codec, and the
/// groups it plays with.
fn write_variants(out: &mut String, video: &[Listed<'_>], audio: &[Listed<'_>], subtitles: bool) {
    let audio_peak = audio.iter().map(|a| a.bandwidth_bps).max();
    let audio_average = audio.iter().map(|a| a.average_bps).max();
    let mut audio_codecs: Vec<&str> = audio.iter().map(|a| a.rendition.codecs.as_str()).collect();
    audio_codecs.sort_unstable();
    audio_codecs.dedup();
    for listed in video {
        let v = listed.rendition;
        let mut codecs = v.codecs.clone();
        for c in &audio_codecs {
            codecs.push(',');
            codecs.push_str(c);
        }
        let average = listed.average_bps + audio_average.unwrap_or(0);
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={average}",
            (listed.bandwidth_bps + audio_peak.unwrap_or(0)).max(average),
        );
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        let _ = write!(out, ",CODECS=\"{codecs}\"");
        if !audio.is_empty() {
            let _ = write!(out, ",AUDIO=\"{AUDIO_GROUP}\"");
        }
        if subtitles {
            let _ = write!(out, ",SUBTITLES=\"{SUBTITLE_GROUP}\"");
        }
        let _ = writeln!(out, "\n{}", listed.uri);
    }
}

/// `#EXT-X-TARGETDURATION`: at least the segment length, and no less than
/// any segment's duration rounded up, since every `#EXTINF` rounded to an
/// integer must not exceed it (RFC 8216 §4.3.3.1). Key-frame cuts may be
/// further apart than 6 s.
pub fn target_duration(segments: &[Duration]) -> u64 {
    segments
        .iter()
        .map(|d| d.as_secs_f64().round() as u64)
        .max()
        .unwrap_or(0)
        .max(SEGMENT_SECONDS as u64)
}

/// What a media playlist lists: MPEG-TS, fragmented-MP4 or WebVTT
/// segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFormat {
    /// `segment_NNNNN.ts`.
    Ts,
    /// `segment_NNNNN.m4s` after `init.mp4` (`EXT-X-MAP`).
    Fmp4,
    /// `segment_NNNNN.vtt`.
    WebVtt,
}

impl SegmentFormat {
    /// The format of a rendition in `packaging`.
    pub fn of(packaging: Packaging) -> SegmentFormat {
        match packaging {
            Packaging::Ts => SegmentFormat::Ts,
            Packaging::Fmp4 => SegmentFormat::Fmp4,
        }
    }
}

/// `EXT-X-PLAYLIST-TYPE` (RFC 8216 §4.3.3.5): whether a media playlist
/// lists its whole timeline from the first request (VOD) or only grows by
/// appending segments (EVENT). A playlist never changes its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaylistType {
    /// Appended to until `#EXT-X-ENDLIST`: the end was not known when the
    /// title was first served.
    Event,
    /// Every segment listed up front, with `#EXT-X-ENDLIST`.
    Vod,
}

impl PlaylistType {
    /// Its name in the tag.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaylistType::Event => "EVENT",
            PlaylistType::Vod => "VOD",
        }
    }
}

/// `EXT-X-VERSION`: 7 with fragmented MP4 (`EXT-X-MAP` in a playlist
/// that is not I-frames only needs 6, RFC 8216 §7; 7 as Apple's authoring
/// spec has fMP4 presentations), else 3 (floating-point `EXTINF`).
fn version_line(fmp4: bool) -> &'static str {
    if fmp4 {
        "#EXTM3U\n#EXT-X-VERSION:7\n"
    } else {
        "#EXTM3U\n#EXT-X-VERSION:3\n"
    }
}

/// The header of a media playlist up to its segment lines.
fn media_header(
    durations: &[Duration],
    kind: PlaylistType,
    query: &str,
    format: SegmentFormat,
) -> String {
    let mut out = String::from(version_line(format == SegmentFormat::Fmp4));
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", target_duration(durations));
    let _ = writeln!(
        out,
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{}",
        kind.as_str()
    );
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    if format == SegmentFormat::Fmp4 {
        // The init segment of every media segment (RFC 8216 §4.3.2.5).
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{INIT_SEGMENT_NAME}{query}\"");
    }
    out
}

fn segment_lines(out: &mut String, durations: &[Duration], query: &str, format: SegmentFormat) {
    for (i, d) in durations.iter().enumerate() {
        let name = match format {
            SegmentFormat::Ts => segment_name(i),
            SegmentFormat::Fmp4 => fmp4_segment_name(i),
            SegmentFormat::WebVtt => subtitle_segment_name(i),
        };
        let _ = writeln!(out, "#EXTINF:{:.3},\n{name}{query}", d.as_secs_f64());
    }
}

/// The media playlist of a rendition whose timeline is closed: a VOD
/// playlist that lists every segment from the start, so players show the
/// whole timeline and may seek anywhere (RFC 8216 §4.3.3.5,
/// `#EXT-X-ENDLIST` §4.3.3.4). Segments not yet made are made when asked
/// for. `query` (`?token=...`) follows every segment URI. Every rendition
/// of an item, subtitles included, has the same list (the Apple authoring
/// spec asks WebVTT playlists to match the video's segments).
///
/// `start`: where a player starts (a resume), as
/// `#EXT-X-START:TIME-OFFSET` (§4.3.5.2).
pub fn vod_playlist(
    durations: &[Duration],
    query: &str,
    format: SegmentFormat,
    start: Option<Duration>,
) -> String {
    let mut out = media_header(durations, PlaylistType::Vod, query, format);
    if let Some(at) = start {
        let _ = writeln!(out, "#EXT-X-START:TIME-OFFSET={:.3}", at.as_secs_f64());
    }
    segment_lines(&mut out, durations, query, format);
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// The media playlist of a rendition whose end is not known yet: an EVENT
/// playlist of the segments made so far from the start, with
/// `#EXT-X-ENDLIST` once `complete`; `#EXT-X-START:TIME-OFFSET=0` tells
/// players to begin at the start rather than the live edge (§4.3.5.2).
/// The target duration is fixed (a player may see it before any long
/// segment), so a key-frame cut past it is listed as it is.
pub fn event_playlist(
    durations: &[Duration],
    complete: bool,
    query: &str,
    format: SegmentFormat,
    start: Option<Duration>,
) -> String {
    let mut out = media_header(durations, PlaylistType::Event, query, format);
    match start {
        Some(at) => {
            let _ = writeln!(out, "#EXT-X-START:TIME-OFFSET={:.3}", at.as_secs_f64());
        }
        None => out.push_str("#EXT-X-START:TIME-OFFSET=0\n"),
    }
    segment_lines(&mut out, durations, query, format);
    if complete {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rendition::Plan;

    fn rendition(name: &str, plan: Plan, codecs: &str, bps: u64) -> Rendition {
        Rendition {
            name: name.into(),
            plan,
            codecs: codecs.into(),
            bandwidth_bps: bps,
            average_bps: bps,
            packaging: Packaging::Ts,
            resolution: plan.is_video().then_some((1280, 720)),
            channels: (!plan.is_video()).then_some(2),
            language: (!plan.is_video()).then(|| "en".to_string()),
            label: (!plan.is_video()).then(|| "English".to_string()),
            default: false,
            key: "k".into(),
        }
    }

    #[test]
    fn the_master_lists_the_video_variant_its_audio_and_subtitle_groups() {
        let v = rendition("video-720p", Plan::VideoCopy, "avc1.64001f", 3_000_000);
        let a = rendition(
            "audio-0-aac",
            Plan::AudioEncode { track: 0 },
            "mp4a.40.2",
            128_000,
        );
        let mut b = rendition(
            "audio-1-copy",
            Plan::AudioCopy { track: 1 },
            "mp4a.40.2",
            192_000,
        );
        b.language = Some("fr".into());
        let subs = SubtitleRendition {
            name: "subs-2".into(),
            track: 2,
            language: Some("fr".into()),
            label: "fr \"forced\"".into(),
            forced: true,
            default: false,
        };
        let mut low = rendition("video-360p", Plan::VideoCopy, "avc1.64001e", 800_000);
        low.resolution = Some((640, 360));
        let m = master_playlist(
            &[
                Listed {
                    rendition: &v,
                    uri: "v.m3u8?token=t",
                    default: true,
                    average_bps: v.average_bps,
                    bandwidth_bps: v.bandwidth_bps,
                },
                Listed {
                    rendition: &low,
                    uri: "l.m3u8?token=t",
                    default: false,
                    average_bps: low.average_bps,
                    bandwidth_bps: low.bandwidth_bps,
                },
            ],
            &[
                Listed {
                    rendition: &a,
                    uri: "a.m3u8?token=t",
                    default: false,
                    average_bps: a.average_bps,
                    bandwidth_bps: a.bandwidth_bps,
                },
                Listed {
                    rendition: &b,
                    uri: "b.m3u8?token=t",
                    default: true,
                    average_bps: b.average_bps,
                    bandwidth_bps: b.bandwidth_bps,
                },
            ],
            &[ListedSubtitles {
                rendition: &subs,
                uri: "s.m3u8?token=t",
                default: false,
            }],
        );
        assert!(m.starts_with("#EXTM3U\n"), "{m}");
        assert!(m.contains(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"a.m3u8?token=t\"\n"
        ), "{m}");
        // Same label twice: NAME stays unique in the group.
        assert!(m.contains(
            "NAME=\"English (2)\",LANGUAGE=\"fr\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"b.m3u8?token=t\"\n"
        ), "{m}");
        assert!(m.contains(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"fr 'forced'\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,FORCED=YES,URI=\"s.m3u8?token=t\"\n"
        ), "{m}");
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=3192000,AVERAGE-BANDWIDTH=3192000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"audio\",SUBTITLES=\"subs\"\nv.m3u8?token=t\n"
        ), "{m}");
        // Every rung is a variant with the same groups, in the order given.
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=992000,AVERAGE-BANDWIDTH=992000,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"audio\",SUBTITLES=\"subs\"\nl.m3u8?token=t\n"
        ), "{m}");
        assert!(m.find("v.m3u8").unwrap() < m.find("l.m3u8").unwrap());
        // Audio only: the default audio playlist is the variant.
        let m = master_playlist(
            &[],
            &[Listed {
                rendition: &a,
                uri: "a.m3u8",
                default: true,
                average_bps: a.average_bps,
                bandwidth_bps: a.bandwidth_bps,
            }],
            &[],
        );
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\na.m3u8\n"
        ));
        assert!(!m.contains("EXT-X-MEDIA"));
    }

    #[test]
    fn a_vod_playlist_lists_every_segment_and_ends() {
        let d = [6.0, 6.0, 1.5].map(Duration::from_secs_f64);
        let p = vod_playlist(&d, "?token=k", SegmentFormat::Ts, None);
        assert!(p.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{p}");
        assert!(p.contains("#EXT-X-TARGETDURATION:6\n"), "{p}");
        assert!(
            p.contains("#EXTINF:6.000,\nsegment_00001.ts?token=k\n"),
            "{p}"
        );
        assert!(
            p.contains("#EXTINF:1.500,\nsegment_00002.ts?token=k\n"),
            "{p}"
        );
        assert!(p.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(p.matches("#EXTINF").count(), 3);
    }

    #[test]
    fn an_event_playlist_grows_and_ends_when_complete() {
        let segs = [Duration::from_secs(6), Duration::from_millis(3_960)];
        let p = event_playlist(&segs, false, "", SegmentFormat::Ts, None);
        assert!(p.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n"));
        assert!(p.contains("#EXTINF:3.960,\nsegment_00001.ts\n"));
        assert!(!p.contains("#EXT-X-ENDLIST"));
        assert!(
            event_playlist(&segs, true, "", SegmentFormat::Ts, None).ends_with("#EXT-X-ENDLIST\n")
        );
        let vtt = vod_playlist(&segs, "?t", SegmentFormat::WebVtt, None);
        let resumed = vod_playlist(
            &segs,
            "",
            SegmentFormat::Ts,
            Some(Duration::from_millis(95_500)),
        );
        assert!(
            resumed.contains("#EXT-X-START:TIME-OFFSET=95.500\n"),
            "{resumed}"
        );
        assert!(!vtt.contains("EXT-X-START"));
        assert!(
            vtt.contains("#EXTINF:3.960,\nsegment_00001.vtt?t\n"),
            "{vtt}"
        );
    }

    #[test]
    fn target_duration_covers_long_copied_gops() {
        assert_eq!(target_duration(&[]), 6);
        assert_eq!(target_duration(&[Duration::from_millis(6_400)]), 6);
        assert_eq!(target_duration(&[Duration::from_millis(6_600)]), 7);
        assert_eq!(target_duration(&[Duration::from_secs(10)]), 10);
    }
}
