//! Media playlists (RFC 8216 §4.3.3): a rendition's segments, VOD or
//! EVENT, and the I-frame playlists of video renditions.

use crate::packaging::Packaging;
use crate::timeline::{
    fmp4_segment_name, iframe_name, segment_name, subtitle_segment_name, INIT_SEGMENT_NAME,
    SEGMENT_SECONDS,
};
use std::fmt::Write;
use std::time::Duration;

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
    /// An I-frame playlist (`EXT-X-I-FRAMES-ONLY`, RFC 8216 §4.3.3.6) of
    /// MPEG-TS segments: `iframe_NNNNN.ts`, each segment's first picture.
    TsIFrames,
    /// An I-frame playlist of fMP4 segments: `iframe_NNNNN.m4s` after the
    /// rendition's `init.mp4`.
    Fmp4IFrames,
}

impl SegmentFormat {
    /// The format of a rendition in `packaging`.
    pub fn of(packaging: Packaging) -> SegmentFormat {
        match packaging {
            Packaging::Ts => SegmentFormat::Ts,
            Packaging::Fmp4 => SegmentFormat::Fmp4,
        }
    }

    /// The I-frame playlist's format of a video rendition in `packaging`.
    pub fn iframes_of(packaging: Packaging) -> SegmentFormat {
        match packaging {
            Packaging::Ts => SegmentFormat::TsIFrames,
            Packaging::Fmp4 => SegmentFormat::Fmp4IFrames,
        }
    }

    fn has_init(self) -> bool {
        matches!(self, SegmentFormat::Fmp4 | SegmentFormat::Fmp4IFrames)
    }

    fn iframes(self) -> bool {
        matches!(self, SegmentFormat::TsIFrames | SegmentFormat::Fmp4IFrames)
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
/// that is not I-frames only needs 6, and in one that is 5, RFC 8216 §7;
/// 7 as Apple's authoring spec has fMP4 presentations), else 3
/// (floating-point `EXTINF`).
pub(super) fn version_line(fmp4: bool) -> &'static str {
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
    let mut out = String::from(match format {
        // `EXT-X-I-FRAMES-ONLY` needs version 4 (RFC 8216 §7).
        SegmentFormat::TsIFrames => "#EXTM3U\n#EXT-X-VERSION:4\n",
        f => version_line(f.has_init()),
    });
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", target_duration(durations));
    let _ = writeln!(
        out,
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{}",
        kind.as_str()
    );
    if format.iframes() {
        out.push_str("#EXT-X-I-FRAMES-ONLY\n");
    }
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    if format.has_init() {
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
            SegmentFormat::TsIFrames => iframe_name(i, Packaging::Ts),
            SegmentFormat::Fmp4IFrames => iframe_name(i, Packaging::Fmp4),
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
    fn an_iframe_playlist_lists_each_segments_iframe() {
        let d = [6.0, 4.5].map(Duration::from_secs_f64);
        let p = vod_playlist(&d, "?token=k", SegmentFormat::TsIFrames, None);
        assert!(p.starts_with("#EXTM3U\n#EXT-X-VERSION:4\n"), "{p}");
        assert!(p.contains("#EXT-X-I-FRAMES-ONLY\n"), "{p}");
        assert!(!p.contains("EXT-X-MAP"), "{p}");
        assert!(
            p.contains("#EXTINF:4.500,\niframe_00001.ts?token=k\n"),
            "{p}"
        );
        let p = vod_playlist(&d, "?token=k", SegmentFormat::Fmp4IFrames, None);
        assert!(p.contains("#EXT-X-VERSION:7\n"), "{p}");
        assert!(p.contains("#EXT-X-MAP:URI=\"init.mp4?token=k\"\n"), "{p}");
        assert!(
            p.contains("#EXTINF:6.000,\niframe_00000.m4s?token=k\n"),
            "{p}"
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
