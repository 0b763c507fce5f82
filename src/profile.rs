//! Client profiles: what a client plays, so that the playback decision can
//! be made for it (pure; imports nothing of hlsd).
//!
//! A profile lists the containers the client plays as files (direct
//! play), the video codecs it decodes (with H.264/HEVC profiles, a level
//! and a bit depth), the audio codecs (with a channel count), and whether
//! it takes fragmented-MP4 HLS segments. Three are built in:
//!
//! - `generic`: a conservative HLS client (the default, and hlsd's rules
//!   before profiles): MP4/MOV files with H.264 8-bit 4:2:0 and AAC or
//!   MP3; MPEG-TS HLS only.
//! - `chromium`: Chrome, Edge and other Chromium browsers with their
//!   proprietary codecs: also WebM, VP8, VP9 and AV1 (up to 10-bit),
//!   Opus, Vorbis and FLAC, and fMP4 HLS through Media Source Extensions
//!   (hls.js); MP3, FLAC, Ogg and AAC files as they are. HEVC is left
//!   out: Chromium decodes it only on some GPUs.
//! - `safari`: Safari on macOS and iOS, Apple TV: also HEVC Main and
//!   Main 10 (Apple's HLS authoring spec, 1.10) with PQ and HLG HDR,
//!   AC-3, E-AC-3 and FLAC, and fMP4 HLS; MP3, FLAC and AAC files as they
//!   are.
//!
//! A video codec's `hdr` lists the HDR transfers the client shows (`pq`,
//! `hlg`): a stream in another is not copied to it
//! (`hdr_unsupported:pq`). `chromium` takes PQ and HLG in VP9 and AV1.
//!
//! A client may send its own profile as JSON (`?profile={...}`, the
//! `X-Hlsd-Profile` header, or the `profile` field of
//! `POST /api/v1/hls/start`); the web page builds one from
//! `MediaSource.isTypeSupported`.

use serde::{Deserialize, Serialize};

/// The most entries a custom profile may list in each of its lists.
pub const MAX_ENTRIES: usize = 32;

/// A video codec a client decodes, with its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoCapability {
    /// hlsd's short codec name: `h264`, `hevc`, `vp8`, `vp9`, `av1`, ...
    pub codec: String,
    /// The codec profiles it plays (`main`, `high`, `main-10`; GStreamer's
    /// names); absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<String>>,
    /// The highest level it plays (`4.1`); absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_level: Option<f64>,
    /// The deepest bit depth it plays, in bits per sample (default 8).
    #[serde(default = "eight")]
    pub max_bit_depth: u32,
    /// The chroma formats it plays (default `["4:2:0"]`).
    #[serde(default = "yuv420")]
    pub chroma: Vec<String>,
    /// The HDR transfers it shows as HDR (`pq`, `hlg`; default none: a
    /// stream coded in another is not copied to it), and `dolby_vision`
    /// when it shows Dolby Vision: then a copy of a Dolby Vision profile
    /// 8 (or AV1 profile 10) stream is announced to it with
    /// `SUPPLEMENTAL-CODECS` (`dvh1`, `dav1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hdr: Vec<String>,
}

fn eight() -> u32 {
    8
}

fn yuv420() -> Vec<String> {
    vec!["4:2:0".to_string()]
}

/// An audio codec a client decodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioCapability {
    /// hlsd's short codec name: `aac`, `mp3`, `opus`, `flac`, `ac3`, ...
    pub codec: String,
    /// The most channels it plays; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_channels: Option<u32>,
}

/// What a client plays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientProfile {
    /// Its name (`generic`, `chromium`, `safari`, or a client's own: at
    /// most 64 letters, digits, `-` and `_`).
    #[serde(default = "custom")]
    pub name: String,
    /// Containers it plays as files, by hlsd's short names (`mp4`, `mov`,
    /// `webm`, `matroska`).
    #[serde(default)]
    pub containers: Vec<String>,
    /// Video codecs it decodes.
    #[serde(default)]
    pub video: Vec<VideoCapability>,
    /// Audio codecs it decodes.
    #[serde(default)]
    pub audio: Vec<AudioCapability>,
    /// Whether it takes fragmented-MP4 HLS segments (`EXT-X-MAP`).
    #[serde(default)]
    pub fmp4: bool,
    /// The tallest picture it shows, in lines: no taller rung of a
    /// quality ladder is offered to it. Absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_height: Option<u32>,
    /// The most it can take, in bits per second: no variant with a larger
    /// `BANDWIDTH` is offered to it. Absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bitrate_bps: Option<u64>,
}

fn custom() -> String {
    "custom".to_string()
}

/// The lowest bit-rate limit accepted, in bits per second: the stereo
/// AAC rendition's `BANDWIDTH` (153.6 kb/s) and the lowest cap a rung is
/// lowered to (48 kb/s, 76 kb/s at its peak) fit under it.
pub const MIN_BITRATE_BPS: u64 = 250_000;
/// The highest bit-rate limit accepted, in bits per second (100 Gb/s).
pub const MAX_BITRATE_BPS: u64 = 100_000_000_000;

/// A bit-rate limit as a client or an operator writes it: bits per
/// second, an integer from [`MIN_BITRATE_BPS`] to [`MAX_BITRATE_BPS`].
///
/// # Errors
/// Anything else, with a message for the client.
pub fn parse_bitrate(raw: &str) -> Result<u64, String> {
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|b| (MIN_BITRATE_BPS..=MAX_BITRATE_BPS).contains(b))
        .ok_or_else(|| {
            format!(
                "a bit-rate limit is bits per second from {MIN_BITRATE_BPS} to {MAX_BITRATE_BPS}, not {raw:?}"
            )
        })
}

/// What the profile checks of a video stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct VideoTraits<'a> {
    /// Short codec name.
    pub codec: &'a str,
    /// Codec profile, when known.
    pub profile: Option<&'a str>,
    /// Level (`4.1`, `1b`), when known.
    pub level: Option<&'a str>,
    /// Bits per sample, when known.
    pub bit_depth: Option<u32>,
    /// Chroma format (`4:2:0`), when known.
    pub chroma: Option<&'a str>,
    /// Its HDR transfer (`pq`, `hlg`); `None` for SDR.
    pub hdr: Option<&'a str>,
}

/// The H.264 profiles every browser decodes.
const H264_PROFILES: &[&str] = &["constrained-baseline", "baseline", "main", "high"];

fn h264(max_level: Option<f64>) -> VideoCapability {
    VideoCapability {
        codec: "h264".into(),
        profiles: Some(H264_PROFILES.iter().map(|s| s.to_string()).collect()),
        max_level,
        max_bit_depth: 8,
        chroma: yuv420(),
        hdr: Vec::new(),
    }
}

fn video(codec: &str, max_bit_depth: u32) -> VideoCapability {
    VideoCapability {
        codec: codec.into(),
        profiles: None,
        max_level: None,
        max_bit_depth,
        chroma: yuv420(),
        hdr: Vec::new(),
    }
}

fn audio(codecs: &[&str]) -> Vec<AudioCapability> {
    codecs
        .iter()
        .map(|c| AudioCapability {
            codec: c.to_string(),
            max_channels: None,
        })
        .collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A level string as a number: `4.1` → 4.1, `1b` → 1.05.
fn level_number(level: &str) -> Option<f64> {
    match level {
        "1b" => Some(1.05),
        l => l.parse().ok(),
    }
}

impl ClientProfile {
    /// The names of the built-in profiles.
    pub const BUILT_IN: [&'static str; 3] = ["generic", "chromium", "safari"];

    /// `generic`: see the module documentation.
    pub fn generic() -> ClientProfile {
        ClientProfile {
            name: "generic".into(),
            containers: strings(&["mp4", "mov"]),
            video: vec![h264(None)],
            audio: audio(&["aac", "mp3"]),
            fmp4: false,
            max_height: None,
            max_bitrate_bps: None,
        }
    }

    /// `chromium`: see the module documentation.
    pub fn chromium() -> ClientProfile {
        ClientProfile {
            name: "chromium".into(),
            // Audio files a browser plays as they are: MP3, FLAC, Ogg
            // (Opus, Vorbis) and ADTS AAC (`<audio>` in Chromium).
            containers: strings(&["mp4", "mov", "webm", "mp3", "flac", "ogg", "aac"]),
            video: vec![
                h264(None),
                video("vp8", 8),
                // Chromium shows PQ and HLG VP9 and AV1 (tone-mapped on
                // a display without HDR).
                VideoCapability {
                    hdr: strings(&["pq", "hlg"]),
                    ..video("vp9", 10)
                },
                VideoCapability {
                    hdr: strings(&["pq", "hlg"]),
                    ..video("av1", 10)
                },
            ],
            audio: audio(&["aac", "mp3", "opus", "vorbis", "flac"]),
            fmp4: true,
            max_height: None,
            max_bitrate_bps: None,
        }
    }

    /// `safari`: see the module documentation.
    pub fn safari() -> ClientProfile {
        ClientProfile {
            name: "safari".into(),
            // Audio files Safari plays as they are: MP3, FLAC, ADTS AAC.
            containers: strings(&["mp4", "mov", "mp3", "flac", "aac"]),
            video: vec![
                h264(None),
                // HDR10 and HLG HEVC (Apple's HLS authoring spec 1.6).
                VideoCapability {
                    profiles: Some(strings(&["main", "main-10"])),
                    hdr: strings(&["pq", "hlg"]),
                    ..video("hevc", 10)
                },
            ],
            audio: audio(&["aac", "mp3", "ac3", "eac3", "flac"]),
            fmp4: true,
            max_height: None,
            max_bitrate_bps: None,
        }
    }

    /// The built-in profile `name`, if there is one.
    pub fn built_in(name: &str) -> Option<ClientProfile> {
        match name {
            "generic" => Some(Self::generic()),
            "chromium" => Some(Self::chromium()),
            "safari" => Some(Self::safari()),
            _ => None,
        }
    }

    /// The text [`Self::parse`] reads back as this profile: its name for a
    /// built-in one, else its JSON.
    pub fn to_request(&self) -> String {
        match Self::built_in(&self.name) {
            Some(p) if p == *self => self.name.clone(),
            _ => serde_json::to_string(self).expect("a profile serialises"),
        }
    }

    /// A profile from what a client sent: a built-in name, or a JSON
    /// object (see [`ClientProfile`]'s fields).
    ///
    /// # Errors
    /// An unknown name, JSON that does not parse or has unknown fields, a
    /// bad name, or more than [`MAX_ENTRIES`] entries in a list; a message
    /// for the client.
    pub fn parse(raw: &str) -> Result<ClientProfile, String> {
        let raw = raw.trim();
        if !raw.starts_with('{') {
            return Self::built_in(raw).ok_or_else(|| {
                format!(
                    "unknown profile {raw:?}: use one of {} or a JSON profile",
                    Self::BUILT_IN.join(", ")
                )
            });
        }
        let mut p: ClientProfile =
            serde_json::from_str(raw).map_err(|e| format!("invalid profile JSON: {e}"))?;
        p.validate()?;
        p.normalise();
        Ok(p)
    }

    /// This profile with its bit-rate limit lowered to `limit` (bits per
    /// second) when that is lower: a profile's own limit, a request's
    /// `max_bitrate` and a user's `--user-max-bitrate` are one limit, the
    /// lowest.
    pub fn limited_to(mut self, limit: Option<u64>) -> ClientProfile {
        self.max_bitrate_bps = match (self.max_bitrate_bps, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self
    }

    fn validate(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(format!(
                "profile name {:?} must be 1 to 64 letters, digits, '-' or '_'",
                self.name
            ));
        }
        if let Some(b) = self.max_bitrate_bps {
            parse_bitrate(&b.to_string()).map_err(|e| format!("max_bitrate_bps: {e}"))?;
        }
        let longest = self
            .containers
            .len()
            .max(self.video.len())
            .max(self.audio.len());
        if longest > MAX_ENTRIES {
            return Err(format!(
                "a profile lists at most {MAX_ENTRIES} containers, video and audio codecs each"
            ));
        }
        Ok(())
    }

    fn normalise(&mut self) {
        for c in &mut self.containers {
            *c = c.to_ascii_lowercase();
        }
        for v in &mut self.video {
            v.codec = v.codec.to_ascii_lowercase();
        }
        for a in &mut self.audio {
            a.codec = a.codec.to_ascii_lowercase();
        }
    }

    /// Whether it shows `codec` video (hlsd's short name) in Dolby Vision
    /// (`dolby_vision` in that codec's `hdr` list).
    pub fn shows_dolby_vision(&self, codec: &str) -> bool {
        self.video
            .iter()
            .any(|c| c.codec == codec && c.hdr.iter().any(|h| h == "dolby_vision"))
    }

    /// Whether it plays files in `container` as they are.
    pub fn plays_container(&self, container: &str) -> bool {
        self.containers.iter().any(|c| c == container)
    }

    /// Why it cannot play this video stream (`video_codec_unsupported:vp8`,
    /// `bit_depth:10`, `h264_profile_unsupported:high-10`, `chroma:4:4:4`,
    /// `level_unsupported:5.2`), or an empty list if it can.
    pub fn video_problems(&self, v: &VideoTraits<'_>) -> Vec<String> {
        let mut problems = Vec::new();
        let Some(cap) = self.video.iter().find(|c| c.codec == v.codec) else {
            problems.push(format!("video_codec_unsupported:{}", v.codec));
            return problems;
        };
        if let Some(depth) = v.bit_depth.filter(|d| *d > cap.max_bit_depth) {
            problems.push(format!("bit_depth:{depth}"));
        }
        if let Some(chroma) = v.chroma.filter(|c| !cap.chroma.iter().any(|x| x == c)) {
            problems.push(format!("chroma:{chroma}"));
        }
        if let (Some(p), Some(allowed)) = (v.profile, &cap.profiles) {
            if !allowed.iter().any(|a| a == p) {
                problems.push(format!("{}_profile_unsupported:{p}", v.codec));
            }
        }
        if let (Some(level), Some(max)) = (v.level, cap.max_level) {
            if level_number(level).is_some_and(|l| l > max + 1e-6) {
                problems.push(format!("level_unsupported:{level}"));
            }
        }
        if let Some(hdr) = v.hdr.filter(|h| !cap.hdr.iter().any(|x| x == h)) {
            problems.push(format!("hdr_unsupported:{hdr}"));
        }
        problems
    }

    /// Why it cannot play an audio stream of `codec` with `channels`
    /// (`audio_codec_unsupported:opus`, `channels:6`), if it cannot.
    pub fn audio_problem(&self, codec: &str, channels: u32) -> Option<String> {
        let Some(cap) = self.audio.iter().find(|c| c.codec == codec) else {
            return Some(format!("audio_codec_unsupported:{codec}"));
        };
        cap.max_channels
            .filter(|max| channels > *max)
            .map(|_| format!("channels:{channels}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits<'a>(codec: &'a str, profile: &'a str, depth: u32) -> VideoTraits<'a> {
        VideoTraits {
            codec,
            profile: Some(profile),
            level: Some("4.1"),
            bit_depth: Some(depth),
            chroma: Some("4:2:0"),
            hdr: None,
        }
    }

    #[test]
    fn a_profile_reads_back_from_its_request_text() {
        for name in ClientProfile::BUILT_IN {
            let p = ClientProfile::built_in(name).unwrap();
            assert_eq!(p.to_request(), name);
            assert_eq!(ClientProfile::parse(&p.to_request()), Ok(p));
        }
        let mut custom = ClientProfile::built_in("safari").unwrap();
        custom.name = "tv".into();
        custom.max_height = Some(480);
        let text = custom.to_request();
        assert!(text.starts_with('{'), "{text}");
        assert_eq!(ClientProfile::parse(&text), Ok(custom));
    }

    #[test]
    fn built_in_profiles_differ_where_browsers_do() {
        let generic = ClientProfile::generic();
        let chromium = ClientProfile::chromium();
        let safari = ClientProfile::safari();
        let hevc = traits("hevc", "main-10", 10);
        assert_eq!(
            generic.video_problems(&hevc),
            ["video_codec_unsupported:hevc"]
        );
        assert!(safari.video_problems(&hevc).is_empty());
        assert!(!chromium.video_problems(&hevc).is_empty());
        let vp9 = traits("vp9", "0", 8);
        assert!(chromium.video_problems(&vp9).is_empty());
        assert!(!safari.video_problems(&vp9).is_empty());
        let high10 = traits("h264", "high-10", 10);
        assert_eq!(
            generic.video_problems(&high10),
            ["bit_depth:10", "h264_profile_unsupported:high-10"]
        );
        assert_eq!(
            generic.audio_problem("opus", 2).as_deref(),
            Some("audio_codec_unsupported:opus")
        );
        assert_eq!(chromium.audio_problem("opus", 2), None);
        assert!(generic.plays_container("mp4") && !generic.plays_container("webm"));
        assert!(chromium.plays_container("webm"));
        assert!(!generic.fmp4 && chromium.fmp4 && safari.fmp4);
    }

    #[test]
    fn hdr_is_copied_only_to_a_codec_that_lists_its_transfer() {
        let pq = VideoTraits {
            hdr: Some("pq"),
            ..traits("hevc", "main-10", 10)
        };
        assert!(ClientProfile::safari().video_problems(&pq).is_empty());
        let hlg = VideoTraits {
            hdr: Some("hlg"),
            ..traits("vp9", "0", 10)
        };
        assert!(ClientProfile::chromium().video_problems(&hlg).is_empty());
        let tv = ClientProfile::parse(
            r#"{"name":"tv","containers":[],"video":[{"codec":"hevc","max_bit_depth":10}],"audio":[]}"#,
        )
        .unwrap();
        assert_eq!(tv.video_problems(&pq), ["hdr_unsupported:pq"]);
    }

    #[test]
    fn a_json_profile_parses_with_defaults_and_limits() {
        let p = ClientProfile::parse(
            r#"{"name":"tv","containers":["MP4"],"video":[{"codec":"H264","max_level":4.1}],
                "audio":[{"codec":"aac","max_channels":2}],"fmp4":true}"#,
        )
        .unwrap();
        assert_eq!(p.name, "tv");
        assert_eq!(p.containers, ["mp4"]);
        assert_eq!(p.video[0].codec, "h264");
        assert_eq!(p.video[0].max_bit_depth, 8);
        let mut v = traits("h264", "high", 8);
        assert!(p.video_problems(&v).is_empty());
        v.level = Some("5.1");
        assert_eq!(p.video_problems(&v), ["level_unsupported:5.1"]);
        assert_eq!(p.audio_problem("aac", 6).as_deref(), Some("channels:6"));
        assert_eq!(ClientProfile::parse("{}").unwrap().name, "custom");
        assert_eq!(ClientProfile::parse(" safari ").unwrap().name, "safari");
    }

    #[test]
    fn bad_profiles_are_refused_with_a_message() {
        for bad in [
            "netscape",
            "{",
            r#"{"name":"a b"}"#,
            r#"{"colour":true}"#,
            r#"{"video":[{"codec":"h264","depth":10}]}"#,
        ] {
            assert!(ClientProfile::parse(bad).is_err(), "{bad}");
        }
        let many = format!(
            r#"{{"containers":[{}]}}"#,
            vec!["\"mp4\""; MAX_ENTRIES + 1].join(",")
        );
        assert!(ClientProfile::parse(&many).unwrap_err().contains("at most"));
    }
}
