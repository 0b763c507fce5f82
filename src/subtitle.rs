//! Text subtitles as WebVTT (W3C WebVTT; RFC 8216 §3.5 for its use in
//! HLS). Pure: cues, the media time a track's cues are known for, and the
//! WebVTT text of a segment or of a whole file.
//!
//! Cues are kept in media time, the time base of every segment. Each
//! WebVTT segment carries `X-TIMESTAMP-MAP=MPEGTS:324000000,LOCAL:00:00:00.000`
//! (RFC 8216 §3.5): media time 0 is 90 kHz tick 324,000,000, the 3600 s
//! that hlsd's MPEG-TS timestamps start at (`TS_OFFSET` of the segment
//! writer, after `mpegtsmux`), so cue times need no rewriting and line up
//! with the audio and video whichever producer made them.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

/// 90 kHz ticks of media time zero in the MPEG-TS segments (3600 s).
pub const MPEGTS_ZERO_TICKS: u64 = 3600 * 90_000;

/// Length given to a cue that comes without one (a Matroska block with no
/// `BlockDuration`): long enough to read two lines.
pub const DEFAULT_CUE_LENGTH: Duration = Duration::from_secs(4);

/// One cue, in media time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cue {
    /// When it appears.
    pub start: Duration,
    /// When it goes (after `start`).
    pub end: Duration,
    /// WebVTT cue text ([`to_vtt_text`]), never empty, no blank line.
    pub text: String,
}

/// The cues of one text track found so far, and the media time they are
/// known to be complete for (the ranges some pipeline read through).
#[derive(Debug, Clone, Default)]
pub struct CueTrack {
    cues: BTreeSet<Cue>,
    /// Disjoint, sorted ranges of media time read, in ns.
    covered: Vec<(u64, u64)>,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl CueTrack {
    /// Adds a cue (a duplicate, seen by a second pipeline, is kept once).
    pub fn add(&mut self, cue: Cue) {
        if cue.end > cue.start && !cue.text.is_empty() {
            self.cues.insert(cue);
        }
    }

    /// Records that every cue starting in `[from, to)` has been added.
    pub fn cover(&mut self, from: Duration, to: Duration) {
        let (mut a, mut b) = (ns(from), ns(to));
        if b <= a {
            return;
        }
        let mut merged = Vec::with_capacity(self.covered.len() + 1);
        for &(x, y) in &self.covered {
            if y < a || x > b {
                merged.push((x, y));
            } else {
                a = a.min(x);
                b = b.max(y);
            }
        }
        merged.push((a, b));
        merged.sort_unstable();
        self.covered = merged;
    }

    /// Whether every cue starting in `[from, to)` is known.
    pub fn covers(&self, from: Duration, to: Duration) -> bool {
        let (a, b) = (ns(from), ns(to));
        self.covered.iter().any(|&(x, y)| x <= a && b <= y)
    }

    /// Adds the cues and the coverage of `other`.
    pub fn merge(&mut self, other: CueTrack) {
        for (a, b) in &other.covered {
            self.cover(Duration::from_nanos(*a), Duration::from_nanos(*b));
        }
        for c in other.cues {
            self.add(c);
        }
    }

    /// How many cues it holds.
    pub fn len(&self) -> usize {
        self.cues.len()
    }

    /// Whether it holds no cue.
    pub fn is_empty(&self) -> bool {
        self.cues.is_empty()
    }

    /// The cues shown during `[from, to)`, in start order: those that
    /// begin in it and those that began before and are still up (a cue
    /// that spans a boundary is repeated in both segments, as RFC 8216
    /// §3.5 expects; players drop the duplicate).
    pub fn during(&self, from: Duration, to: Duration) -> Vec<&Cue> {
        self.cues
            .iter()
            .take_while(|c| c.start < to)
            .filter(|c| c.end > from)
            .collect()
    }

    /// Every cue, in start order.
    pub fn all(&self) -> impl Iterator<Item = &Cue> {
        self.cues.iter()
    }
}

/// A WebVTT timestamp (W3C WebVTT §4.1): `HH:MM:SS.mmm`.
pub fn timestamp(d: Duration) -> String {
    let ms = d.as_millis();
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn write_cues<'a>(out: &mut String, cues: impl Iterator<Item = &'a Cue>) {
    for c in cues {
        let _ = write!(
            out,
            "\n{} --> {}\n{}\n",
            timestamp(c.start),
            timestamp(c.end),
            c.text
        );
    }
}

/// The WebVTT segment with `cues` (from [`CueTrack::during`]), mapped to
/// the MPEG-TS clock.
pub fn segment(cues: &[&Cue]) -> String {
    let mut out =
        format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{MPEGTS_ZERO_TICKS},LOCAL:00:00:00.000\n");
    write_cues(&mut out, cues.iter().copied());
    out
}

/// A whole-file WebVTT document (for a `<track>` element beside a direct
/// play), cue times in media time.
pub fn document(track: &CueTrack) -> String {
    let mut out = String::from("WEBVTT\n");
    write_cues(&mut out, track.all());
    out
}

/// What markup a cue's text arrives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Plain UTF-8 (Matroska `S_TEXT/UTF8`, which may hold SubRip's
    /// `<i>`/`<b>`/`<u>` tags).
    Plain,
    /// Pango markup (what GStreamer's `subparse` and `ssaparse` give):
    /// tags plus `&amp;`-style entities.
    Pango,
    /// A Matroska ASS/SSA block: `ReadOrder,Layer,Style,Name,MarginL,
    /// MarginR,MarginV,Effect,Text`, of which only the text is kept.
    Ass,
}

/// Cue text fit for WebVTT: `<i>`, `<b>` and `<u>` kept, every other tag
/// (Pango's `<span>`, SubRip's `<font>`) and ASS override blocks
/// (`{\an8}`) dropped, `&`, `<` and `>` escaped, ASS's `\N` made a line
/// break, `-->` broken up (it may not appear in cue text) and blank lines
/// removed (a blank line ends a cue).
pub fn to_vtt_text(text: &str, markup: Markup) -> String {
    let text = match markup {
        Markup::Ass => text.splitn(9, ',').nth(8).unwrap_or(text),
        _ => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some(close) = rest.find('>') {
                let tag = &rest[1..close];
                let body = tag.strip_prefix('/').unwrap_or(tag);
                let name: String = body
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect::<String>()
                    .to_ascii_lowercase();
                let is_tag =
                    body.starts_with(|c: char| c.is_ascii_alphabetic()) && !tag.contains('<');
                if is_tag {
                    if matches!(name.as_str(), "i" | "b" | "u") {
                        let closing = if tag.starts_with('/') { "/" } else { "" };
                        let _ = write!(out, "<{closing}{name}>");
                    }
                    rest = &rest[close + 1..];
                    continue;
                }
            }
            out.push_str("&lt;");
        } else if c == '{' && rest.starts_with("{\\") {
            match rest.find('}') {
                Some(close) => rest = &rest[close + 1..],
                None => rest = "",
            }
            continue;
        } else if c == '&' && markup == Markup::Pango {
            let entity = rest
                .find(';')
                .filter(|&e| e <= 8)
                .map(|e| &rest[..=e])
                .unwrap_or("&");
            match entity {
                "&amp;" | "&lt;" | "&gt;" => out.push_str(entity),
                "&quot;" => out.push('"'),
                "&apos;" => out.push('\''),
                _ => {
                    out.push_str("&amp;");
                    rest = &rest[1..];
                    continue;
                }
            }
            rest = &rest[entity.len()..];
            continue;
        } else if c == '&' {
            out.push_str("&amp;");
        } else if c == '>' {
            out.push_str("&gt;");
        } else if c == '\\' && (rest.starts_with("\\N") || rest.starts_with("\\n")) {
            out.push('\n');
            rest = &rest[2..];
            continue;
        } else if c != '\r' {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    let out = out.replace("-->", "--&gt;");
    out.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text of a subtitle file: UTF-8 (a BOM dropped), else Latin-1, which
/// maps every byte to a character.
pub fn decode_text(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => bytes.iter().map(|&b| b as char).collect(),
    }
}

/// A lenient SubRip/WebVTT reader for files `subparse` refuses: every
/// block with a well-formed `start --> end` line is a cue; other blocks
/// are skipped.
pub fn parse_srt_lenient(text: &str) -> CueTrack {
    fn time(t: &str) -> Option<Duration> {
        let t = t.split_whitespace().next()?.replace(',', ".");
        let parts: Vec<&str> = t.split(':').collect();
        let (h, m, s) = match parts.as_slice() {
            [h, m, s] => (h.parse::<u64>().ok()?, m.parse::<u64>().ok()?, *s),
            [m, s] => (0, m.parse::<u64>().ok()?, *s),
            _ => return None,
        };
        let s: f64 = s.parse().ok()?;
        (s >= 0.0 && m < 60)
            .then(|| Duration::from_secs(h * 3600 + m * 60) + Duration::from_secs_f64(s))
    }
    let mut track = CueTrack::default();
    let text = text.replace("\r\n", "\n");
    for block in text.split("\n\n") {
        let lines: Vec<&str> = block.lines().collect();
        let Some(at) = lines.iter().position(|l| l.contains("-->")) else {
            continue;
        };
        let Some((a, b)) = lines[at].split_once("-->") else {
            continue;
        };
        if let (Some(start), Some(end)) = (time(a), time(b)) {
            track.add(Cue {
                start,
                end,
                text: to_vtt_text(&lines[at + 1..].join("\n"), Markup::Plain),
            });
        }
    }
    track.cover(Duration::ZERO, Duration::MAX);
    track
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(a: f64, b: f64, text: &str) -> Cue {
        Cue {
            start: Duration::from_secs_f64(a),
            end: Duration::from_secs_f64(b),
            text: text.into(),
        }
    }

    #[test]
    fn a_segment_repeats_cues_that_span_its_boundaries() {
        let mut t = CueTrack::default();
        t.add(cue(1.0, 2.0, "one"));
        t.add(cue(5.0, 7.5, "spans"));
        t.add(cue(8.0, 9.0, "two"));
        t.add(cue(8.0, 9.0, "two"));
        assert_eq!(t.len(), 3);
        let s0: Vec<&str> = t
            .during(Duration::ZERO, Duration::from_secs(6))
            .iter()
            .map(|c| c.text.as_str())
            .collect();
        assert_eq!(s0, ["one", "spans"]);
        let s1 = t.during(Duration::from_secs(6), Duration::from_secs(12));
        assert_eq!(s1.len(), 2);
        let text = segment(&s1);
        assert!(
            text.starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:324000000,LOCAL:00:00:00.000\n"),
            "{text}"
        );
        assert!(
            text.contains("\n00:00:05.000 --> 00:00:07.500\nspans\n"),
            "{text}"
        );
        assert!(document(&t).contains("00:00:08.000 --> 00:00:09.000\ntwo\n"));
    }

    #[test]
    fn a_lenient_read_skips_broken_cues_and_reads_latin1() {
        let text = decode_text(
            b"\xEF\xBB\xBF1\n00:00:01,000 -> x\nBad\n\n2\n00:00:06,000 --> 00:00:07,500\nGood\n",
        );
        let t = parse_srt_lenient(&text);
        let all: Vec<&Cue> = t.all().collect();
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].start, all[0].text.as_str()),
            (Duration::from_secs(6), "Good")
        );
        assert_eq!(decode_text(b"Gr\xFC\xDFe"), "Grüße");
    }

    #[test]
    fn coverage_merges_ranges() {
        let mut t = CueTrack::default();
        let s = Duration::from_secs;
        t.cover(s(0), s(6));
        t.cover(s(12), s(18));
        assert!(t.covers(s(0), s(6)));
        assert!(!t.covers(s(6), s(12)));
        t.cover(s(5), s(13));
        assert!(t.covers(s(0), s(18)));
        assert!(!t.covers(s(17), s(19)));
    }

    #[test]
    fn markup_becomes_webvtt() {
        assert_eq!(
            to_vtt_text(
                "<i>Hello</i> &amp; <span foreground=\"red\">bye</span>",
                Markup::Pango
            ),
            "<i>Hello</i> &amp; bye"
        );
        assert_eq!(
            to_vtt_text("a < b & c > d", Markup::Plain),
            "a &lt; b &amp; c &gt; d"
        );
        assert_eq!(to_vtt_text("{\\an8}Top\\Nline", Markup::Plain), "Top\nline");
        assert_eq!(
            to_vtt_text("x --> y\n\n\nz", Markup::Plain),
            "x --&gt; y\nz"
        );
        assert_eq!(
            to_vtt_text("<font color=\"#fff\">W</font>", Markup::Plain),
            "W"
        );
        assert_eq!(
            to_vtt_text("&quot;q&quot; & more", Markup::Pango),
            "\"q\" &amp; more"
        );
        assert_eq!(to_vtt_text("   \n ", Markup::Plain), "");
        assert_eq!(
            to_vtt_text("3,0,Default,,0,0,0,,{\\i1}Hi, you{\\i0}", Markup::Ass),
            "Hi, you"
        );
    }
}
