//! The master (multivariant) playlist (RFC 8216 §4.3.4): the variants,
//! their I-frame playlists, and the audio and subtitle renditions.

use crate::packaging::Packaging;
use crate::rendition::{Rendition, SubtitleRendition};
use std::fmt::Write;

use super::media::version_line;

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
    /// A video rendition's I-frame playlist URI, relative to the master
    /// playlist: listed as its `EXT-X-I-FRAME-STREAM-INF`.
    pub iframes_uri: Option<&'a str>,
    /// A video rendition's `VIDEO-RANGE` (`SDR`, `PQ`, `HLG`; Apple's HLS
    /// authoring spec 9.16), when it is said.
    pub video_range: Option<&'static str>,
    /// A video rendition's `SUPPLEMENTAL-CODECS` (RFC 8216bis §4.4.6.2):
    /// what a client may decode beside `CODECS`, a copied Dolby Vision
    /// stream's `dvh1.08.06/db1p`.
    pub supplemental_codecs: Option<&'a str>,
}

/// Thumbnail sheets and the URI of their image playlist (Roku's HLS image
/// extension, `EXT-X-IMAGE-STREAM-INF`, as Jellyfin lists its trickplay).
#[derive(Debug, Clone, Copy)]
pub struct ListedImages<'a> {
    /// The image playlist's URI, relative to the master playlist.
    pub uri: &'a str,
    /// Width and height of one tile, pixels.
    pub tile: (u32, u32),
    /// What the sheets weigh, bits per second of the title.
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
/// Each video variant's I-frame playlist follows the variants, then the
/// thumbnail sheets' image playlist (`images`).
pub fn master_playlist(
    video: &[Listed<'_>],
    audio: &[Listed<'_>],
    subtitles: &[ListedSubtitles<'_>],
    images: Option<ListedImages<'_>>,
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
    write_iframe_variants(&mut out, video);
    if let Some(i) = images {
        let _ = writeln!(
            out,
            "#EXT-X-IMAGE-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{},CODECS=\"jpeg\",URI=\"{}\"",
            i.bandwidth_bps.max(1),
            i.tile.0,
            i.tile.1,
            i.uri
        );
    }
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
        if let Some(supplemental) = listed.supplemental_codecs {
            let _ = write!(out, ",SUPPLEMENTAL-CODECS=\"{supplemental}\"");
        }
        if let Some(range) = listed.video_range {
            let _ = write!(out, ",VIDEO-RANGE={range}");
        }
        if !audio.is_empty() {
            let _ = write!(out, ",AUDIO=\"{AUDIO_GROUP}\"");
        }
        if subtitles {
            let _ = write!(out, ",SUBTITLES=\"{SUBTITLE_GROUP}\"");
        }
        let _ = writeln!(out, "\n{}", listed.uri);
    }
}

/// One `EXT-X-I-FRAME-STREAM-INF` per video rendition with an I-frame
/// playlist (RFC 8216 §4.3.4.3; the Apple authoring spec 6.1 asks for
/// them): the video's codec and resolution, and its bandwidths as bounds.
/// Each I-frame is its segment's first picture, declared for the whole
/// segment's duration, so it weighs at most what its segment does: the
/// video's own peak and mean (without audio) bound those of its I-frames.
/// The I-frames' own sizes are not known before their segments are made.
fn write_iframe_variants(out: &mut String, video: &[Listed<'_>]) {
    for listed in video {
        let Some(uri) = listed.iframes_uri else {
            continue;
        };
        let v = listed.rendition;
        let _ = write!(
            out,
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={}",
            listed.bandwidth_bps.max(listed.average_bps),
            listed.average_bps,
        );
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        let _ = write!(out, ",CODECS=\"{}\"", v.codecs);
        if let Some(supplemental) = listed.supplemental_codecs {
            let _ = write!(out, ",SUPPLEMENTAL-CODECS=\"{supplemental}\"");
        }
        if let Some(range) = listed.video_range {
            let _ = write!(out, ",VIDEO-RANGE={range}");
        }
        let _ = writeln!(out, ",URI=\"{uri}\"");
    }
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
                    iframes_uri: Some("v/iframes.m3u8?token=t"),
                    video_range: None,
                    supplemental_codecs: None,
                },
                Listed {
                    rendition: &low,
                    uri: "l.m3u8?token=t",
                    default: false,
                    average_bps: low.average_bps,
                    bandwidth_bps: low.bandwidth_bps,
                    iframes_uri: None,
                    video_range: None,
                    supplemental_codecs: None,
                },
            ],
            &[
                Listed {
                    rendition: &a,
                    uri: "a.m3u8?token=t",
                    default: false,
                    average_bps: a.average_bps,
                    bandwidth_bps: a.bandwidth_bps,
                    iframes_uri: None,
                    video_range: None,
                    supplemental_codecs: None,
                },
                Listed {
                    rendition: &b,
                    uri: "b.m3u8?token=t",
                    default: true,
                    average_bps: b.average_bps,
                    bandwidth_bps: b.bandwidth_bps,
                    iframes_uri: None,
                    video_range: None,
                    supplemental_codecs: None,
                },
            ],
            &[ListedSubtitles {
                rendition: &subs,
                uri: "s.m3u8?token=t",
                default: false,
            }],
            Some(ListedImages {
                uri: "thumbs/images.m3u8?token=t",
                tile: (320, 180),
                bandwidth_bps: 9_000,
            }),
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
        assert!(m.ends_with(
            "\n#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=9000,RESOLUTION=320x180,CODECS=\"jpeg\",URI=\"thumbs/images.m3u8?token=t\"\n"
        ), "{m}");
        // Its I-frame playlist after the variants, with the video alone.
        assert!(m.contains(
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS=\"avc1.64001f\",URI=\"v/iframes.m3u8?token=t\"\n"
        ), "{m}");
        assert_eq!(m.matches("I-FRAME").count(), 1, "{m}");
        // Audio only: the default audio playlist is the variant.
        let m = master_playlist(
            &[],
            &[Listed {
                rendition: &a,
                uri: "a.m3u8",
                default: true,
                average_bps: a.average_bps,
                bandwidth_bps: a.bandwidth_bps,
                iframes_uri: None,
                video_range: None,
                supplemental_codecs: None,
            }],
            &[],
            None,
        );
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\na.m3u8\n"
        ));
        assert!(!m.contains("EXT-X-MEDIA"));
    }
}
