//! The two segment containers hlsd writes, and which codecs each carries
//! as they are (pure; imports nothing of hlsd).
//!
//! - **MPEG-TS** ([`crate::pipeline::ts`]): H.264 video and AAC or MP3
//!   audio, the codecs of RFC 8216 §3.2 every HLS client plays (MPEG audio
//!   in MPEG-TS: ISO/IEC 13818-1 stream types 0x03 and 0x04); hlsd's TS
//!   packetizer writes no other stream type.
//! - **Fragmented MP4** (CMAF, ISO/IEC 23000-19; RFC 8216 §3.3,
//!   [`crate::pipeline::fmp4`]): also HEVC, AV1 and VP9 video and Opus,
//!   FLAC, AC-3 and E-AC-3 audio, which hlsd's MPEG-TS does not carry. A client gets it only when
//!   its profile says it takes fMP4 segments.

use serde::Serialize;

/// A segment container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Packaging {
    /// MPEG-2 transport stream segments (`.ts`).
    #[default]
    Ts,
    /// Fragmented MP4 segments (`.m4s`) after an `EXT-X-MAP` init segment.
    Fmp4,
}

impl Packaging {
    /// The snake_case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Packaging::Ts => "ts",
            Packaging::Fmp4 => "fmp4",
        }
    }

    /// What its headers add to the elementary stream's bytes, as a factor:
    /// MPEG-TS 4 bytes per 188-byte packet plus PES headers, PCR and the
    /// tables of each segment (measured 3 to 5 % on hlsd's segments:
    /// 1.06); fMP4 a `moof` per segment and 8 to 16 bytes per sample
    /// (1.02).
    pub const fn overhead(self) -> f64 {
        match self {
            Packaging::Ts => 1.06,
            Packaging::Fmp4 => 1.02,
        }
    }

    /// Whether it carries video `codec` (hlsd's short codec name) as it is.
    pub fn carries_video(self, codec: &str) -> bool {
        match self {
            Packaging::Ts => codec == "h264",
            Packaging::Fmp4 => matches!(codec, "h264" | "hevc" | "av1" | "vp9"),
        }
    }

    /// Whether it carries audio `codec` as it is.
    pub fn carries_audio(self, codec: &str) -> bool {
        match self {
            Packaging::Ts => matches!(codec, "aac" | "mp3"),
            Packaging::Fmp4 => matches!(codec, "aac" | "opus" | "flac" | "ac3" | "eac3"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_carries_h264_and_aac_and_fmp4_also_the_newer_codecs() {
        assert!(Packaging::Ts.carries_video("h264"));
        for c in ["hevc", "av1", "vp9", "vp8"] {
            assert!(!Packaging::Ts.carries_video(c), "{c}");
        }
        for c in ["h264", "hevc", "av1", "vp9"] {
            assert!(Packaging::Fmp4.carries_video(c), "{c}");
        }
        assert!(!Packaging::Fmp4.carries_video("vp8"));
        assert!(Packaging::Ts.carries_audio("aac"));
        assert!(Packaging::Ts.carries_audio("mp3"));
        assert!(!Packaging::Ts.carries_audio("opus"));
        for c in ["aac", "opus", "flac", "ac3", "eac3"] {
            assert!(Packaging::Fmp4.carries_audio(c), "{c}");
        }
        assert!(!Packaging::Fmp4.carries_audio("dts"));
    }
}
