//! How a video's colours are coded, and whether it is HDR: the colour
//! primaries, transfer characteristics and matrix coefficients as the
//! code points of ITU-T H.273 (= ISO/IEC 23001-8) name them, with the
//! names ffprobe prints (`bt709`, `bt2020`, `smpte2084`, `arib-std-b67`,
//! `bt2020nc`); and for HDR, its transfer (PQ, SMPTE ST 2084, or HLG,
//! ARIB STD-B67) with the mastering display and the content light levels
//! (SMPTE ST 2086, CTA-861.3) where the stream or container carries them.

use serde::{Deserialize, Serialize};

/// A video's colour description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Colour {
    /// Colour primaries (`bt709`, `bt2020`, ...), `unknown` when unsaid.
    pub primaries: String,
    /// Transfer characteristics (`bt709`, `smpte2084`, `arib-std-b67`, ...).
    pub transfer: String,
    /// Matrix coefficients (`bt709`, `bt2020nc`, ...).
    pub matrix: String,
    /// Whether samples use the full range (0–255 at 8 bits) rather than
    /// the limited one.
    pub full_range: bool,
}

/// The transfer an HDR video is coded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HdrTransfer {
    /// Perceptual quantizer, SMPTE ST 2084 (HDR10, HDR10+): H.273 transfer 16.
    Pq,
    /// Hybrid log-gamma, ARIB STD-B67 / ITU-R BT.2100: H.273 transfer 18.
    Hlg,
}

impl HdrTransfer {
    /// Its name in profiles and reasons: `pq`, `hlg`.
    pub fn as_str(self) -> &'static str {
        match self {
            HdrTransfer::Pq => "pq",
            HdrTransfer::Hlg => "hlg",
        }
    }

    /// Its HLS `VIDEO-RANGE` (RFC 8216bis §4.4.6.2): `PQ`, `HLG`.
    pub fn video_range(self) -> &'static str {
        match self {
            HdrTransfer::Pq => "PQ",
            HdrTransfer::Hlg => "HLG",
        }
    }
}

/// An HDR video's description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hdr {
    /// Its transfer.
    pub transfer: HdrTransfer,
    /// The mastering display's peak luminance, nits (cd/m²), if said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mastering_max_nits: Option<f64>,
    /// The mastering display's black level, nits, if said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mastering_min_nits: Option<f64>,
    /// Maximum content light level (MaxCLL), nits, if said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cll_nits: Option<u32>,
    /// Maximum frame-average light level (MaxFALL), nits, if said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fall_nits: Option<u32>,
    /// Dolby Vision's profile, level and base layer, when the stream has
    /// it; `transfer` is then its base layer's (PQ for profile 8.1 and
    /// for profile 5's IPT-PQ-c2, HLG for 8.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dolby_vision: Option<crate::container::dolby_vision::DolbyVision>,
}

/// The name of H.273 colour primaries code `code`.
pub fn primaries_name(code: u32) -> &'static str {
    match code {
        1 => "bt709",
        4 => "bt470m",
        5 => "bt470bg",
        6 => "smpte170m",
        7 => "smpte240m",
        8 => "film",
        9 => "bt2020",
        10 => "smpte428",
        11 => "smpte431",
        12 => "smpte432",
        22 => "ebu3213",
        _ => "unknown",
    }
}

/// The name of H.273 transfer characteristics code `code`.
pub fn transfer_name(code: u32) -> &'static str {
    match code {
        1 => "bt709",
        4 => "gamma22",
        5 => "gamma28",
        6 => "smpte170m",
        7 => "smpte240m",
        8 => "linear",
        9 => "log100",
        10 => "log316",
        11 => "iec61966-2-4",
        12 => "bt1361e",
        13 => "iec61966-2-1",
        14 => "bt2020-10",
        15 => "bt2020-12",
        16 => "smpte2084",
        17 => "smpte428",
        18 => "arib-std-b67",
        _ => "unknown",
    }
}

/// The name of H.273 matrix coefficients code `code`.
pub fn matrix_name(code: u32) -> &'static str {
    match code {
        0 => "gbr",
        1 => "bt709",
        4 => "fcc",
        5 => "bt470bg",
        6 => "smpte170m",
        7 => "smpte240m",
        9 => "bt2020nc",
        10 => "bt2020c",
        _ => "unknown",
    }
}

/// The HDR transfer H.273 transfer code `code` is, if any.
pub fn hdr_transfer(code: u32) -> Option<HdrTransfer> {
    match code {
        16 => Some(HdrTransfer::Pq),
        18 => Some(HdrTransfer::Hlg),
        _ => None,
    }
}

impl Hdr {
    /// What a client must show to take this stream as it is (its
    /// profile's `hdr` list): `dolby_vision` when no other decoder shows
    /// it right (no compatible base layer, as profile 5), else the base
    /// layer's transfer, `pq` or `hlg`.
    pub fn capability(&self) -> &'static str {
        match self.dolby_vision {
            Some(dv) if !dv.has_compatible_base_layer() => "dolby_vision",
            _ => self.transfer.as_str(),
        }
    }

    /// A short description for people: `HDR10 (PQ), mastered at 1000 nits,
    /// MaxCLL 1000, MaxFALL 400`, `HLG`, `Dolby Vision 8.1 (HDR10 base
    /// layer)`.
    pub fn describe(&self) -> String {
        let mut s = match self.transfer {
            HdrTransfer::Pq => "HDR10 (PQ)".to_string(),
            HdrTransfer::Hlg => "HLG".to_string(),
        };
        if let Some(dv) = self.dolby_vision {
            s = match dv.has_compatible_base_layer() {
                true => format!(
                    "Dolby Vision {}.{} ({s} base layer)",
                    dv.profile, dv.compatibility_id
                ),
                false => format!(
                    "Dolby Vision {} (no base layer other players show)",
                    dv.profile
                ),
            };
        }
        if let Some(max) = self.mastering_max_nits {
            s.push_str(&format!(", mastered at {max:.0} nits"));
        }
        if let Some(cll) = self.max_cll_nits {
            s.push_str(&format!(", MaxCLL {cll}"));
        }
        if let Some(fall) = self.max_fall_nits {
            s.push_str(&format!(", MaxFALL {fall}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_points_are_named_as_ffprobe_names_them() {
        assert_eq!(
            (primaries_name(9), transfer_name(16), matrix_name(9)),
            ("bt2020", "smpte2084", "bt2020nc")
        );
        assert_eq!(transfer_name(18), "arib-std-b67");
        assert_eq!(
            (primaries_name(1), transfer_name(1), matrix_name(1)),
            ("bt709", "bt709", "bt709")
        );
        assert_eq!(primaries_name(2), "unknown");
        assert_eq!(hdr_transfer(16), Some(HdrTransfer::Pq));
        assert_eq!(hdr_transfer(18), Some(HdrTransfer::Hlg));
        assert_eq!(hdr_transfer(14), None);
    }

    #[test]
    fn hdr_is_described_with_what_is_known() {
        let hdr = Hdr {
            transfer: HdrTransfer::Pq,
            mastering_max_nits: Some(1000.0),
            mastering_min_nits: Some(0.0001),
            max_cll_nits: Some(1000),
            max_fall_nits: Some(400),
            dolby_vision: None,
        };
        assert_eq!(
            hdr.describe(),
            "HDR10 (PQ), mastered at 1000 nits, MaxCLL 1000, MaxFALL 400"
        );
        let json = serde_json::to_value(&hdr).unwrap();
        assert_eq!(json["transfer"], "pq");
        let hlg = Hdr {
            transfer: HdrTransfer::Hlg,
            mastering_max_nits: None,
            mastering_min_nits: None,
            max_cll_nits: None,
            max_fall_nits: None,
            dolby_vision: None,
        };
        assert_eq!(hlg.describe(), "HLG");
        assert_eq!(
            serde_json::to_string(&hlg).unwrap(),
            r#"{"transfer":"hlg"}"#
        );
    }
}
