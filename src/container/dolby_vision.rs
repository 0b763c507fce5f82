//! Dolby Vision's configuration record (`DOVIDecoderConfigurationRecord`,
//! Dolby's "Dolby Vision Streams Within the ISO Base Media File Format"
//! §3.2): the profile of a stream and the base layer a decoder without
//! Dolby Vision shows. MP4 carries it as a `dvcC`, `dvvC` or `dvwC` box in
//! the video sample entry; Matroska as the `BlockAddIDExtraData` of a
//! `BlockAdditionMapping` of type `dvcC`/`dvvC` (read in
//! [`super::matroska_tracks`]). GStreamer 1.22's parsers and Discoverer
//! report neither. Pure; hostile input gives `None`.

use super::input::Input;
use super::isobmff::{children, find, path, read_moov};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What a stream's Dolby Vision record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DolbyVision {
    /// `dv_profile`: 5 (no backward-compatible base layer), 7, 8 (HDR10,
    /// SDR or HLG base layer), 9, 10.
    pub profile: u8,
    /// `dv_level`: 1–13.
    pub level: u8,
    /// `dv_bl_signal_compatibility_id`: what the base layer is to a
    /// decoder without Dolby Vision: 0 none, 1 HDR10 (PQ), 2 SDR
    /// (BT.709), 4 HLG, 6 BT.2100 PQ (Blu-ray).
    pub compatibility_id: u8,
}

impl DolbyVision {
    /// Parses a record's payload (24 bytes; the first five say all this).
    pub fn parse(record: &[u8]) -> Option<DolbyVision> {
        let b = record.get(..5)?;
        let profile = b[2] >> 1;
        let level = ((b[2] & 1) << 5) | (b[3] >> 3);
        let compatibility_id = b[4] >> 4;
        (profile <= 10 && b[0] >= 1).then_some(DolbyVision {
            profile,
            level,
            compatibility_id,
        })
    }

    /// Whether a decoder without Dolby Vision shows the right picture:
    /// the base layer is HDR10, SDR, HLG or BT.2100 PQ.
    pub fn has_compatible_base_layer(&self) -> bool {
        matches!(self.compatibility_id, 1 | 2 | 4 | 6)
    }

    /// The configuration box a copy's MP4 sample entry carries, as
    /// (type, payload): `dvvC` (Dolby's ISOBMFF specification §3.1: the
    /// box of profiles 8 to 10). The payload is a 24-byte record rebuilt
    /// from what the probe keeps: version 1.0, the profile, level and
    /// base-layer compatibility, an RPU and a base layer present and no
    /// enhancement layer, which is what a profile 8, 9 or 10 stream is;
    /// the bits after the compatibility id are zero (no metadata
    /// compression). `None` for other profiles: 5 is never copied, and
    /// a dual-layer profile 7 copy plays by its base layer, without a
    /// record that would misdescribe its enhancement layer.
    pub fn config_box(&self) -> Option<([u8; 4], [u8; 24])> {
        if !matches!(self.profile, 8..=10) {
            return None;
        }
        let mut record = [0u8; 24];
        record[0] = 1;
        record[1] = 0;
        record[2] = (self.profile << 1) | (self.level >> 5);
        // dv_level's low 5 bits, then rpu_present 1, el_present 0,
        // bl_present 1.
        record[3] = ((self.level & 31) << 3) | 0b101;
        record[4] = self.compatibility_id << 4;
        Some((*b"dvvC", record))
    }

    /// Its `SUPPLEMENTAL-CODECS` entry in a master playlist (RFC 8216bis
    /// §4.4.6.2; Dolby's "Dolby Vision Streams within the HTTP Live
    /// Streaming format"): `dvh1.PP.LL` (HEVC; `dav1` for AV1, profile
    /// 10) with the brand of its base layer (the ISOBMFF specification's
    /// compatible brands: `db1p` HDR10, `db2g` SDR, `db4h` HLG, `db4g` SDR
    /// in BT.2020), for a stream whose `CODECS` names its base layer.
    /// (The probe keeps a record only where the base layer is HDR, so
    /// `db2g` is not reached today: an 8.2 stream plays as SDR.)
    /// `None` where there is no base layer such a client reads (profile
    /// 5, compatibility 0 or 6) or for the AVC profile 9.
    pub fn supplemental_codecs(&self, base_is_hlg: bool) -> Option<String> {
        let brand = match (self.compatibility_id, base_is_hlg) {
            (1, _) => "db1p",
            (2, _) => "db2g",
            (4, true) => "db4h",
            (4, false) => "db4g",
            _ => return None,
        };
        let codec = match self.profile {
            8 => "dvh1",
            10 => "dav1",
            _ => return None,
        };
        Some(format!(
            "{codec}.{:02}.{:02}/{brand}",
            self.profile, self.level
        ))
    }
}

/// The record in the first video sample entry of the MP4 whose `moov`
/// payload is `moov`.
pub fn in_moov(moov: &[u8]) -> Option<DolbyVision> {
    for (kind, trak) in children(moov)? {
        if &kind != b"trak" || path(trak, &[b"mdia", b"hdlr"])?.get(8..12)? != b"vide" {
            continue;
        }
        let stsd = path(trak, &[b"mdia", b"minf", b"stbl", b"stsd"])?;
        let (_, entry) = *children(stsd.get(8..)?)?.first()?;
        // A VisualSampleEntry's own fields take 78 bytes (ISO/IEC
        // 14496-12 §12.1.3); its boxes follow.
        let boxes = children(entry.get(78..)?)?;
        let record = [b"dvcC", b"dvvC", b"dvwC"]
            .iter()
            .find_map(|k| find(&boxes, k))?;
        return DolbyVision::parse(record);
    }
    None
}

/// The record of the video of the MP4 or QuickTime file at `path`, if it
/// has one.
pub fn in_mp4_file(path: &Path) -> Option<DolbyVision> {
    let (_, moov) = read_moov(&mut Input::open(path)?)?;
    in_moov(&moov)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record: version 1.0, `profile`, `level`, RPU and base layer
    /// present, `compat`.
    pub fn record(profile: u8, level: u8, compat: u8) -> Vec<u8> {
        let mut r = vec![
            1,
            0,
            (profile << 1) | (level >> 5),
            ((level & 31) << 3) | 0b101,
        ];
        r.push(compat << 4);
        r.resize(24, 0);
        r
    }

    #[test]
    fn a_record_says_profile_level_and_base_layer() {
        let p8 = DolbyVision::parse(&record(8, 6, 1)).unwrap();
        assert_eq!((p8.profile, p8.level, p8.compatibility_id), (8, 6, 1));
        assert!(p8.has_compatible_base_layer());
        let p5 = DolbyVision::parse(&record(5, 9, 0)).unwrap();
        assert_eq!((p5.profile, p5.level), (5, 9));
        assert!(!p5.has_compatible_base_layer());
        assert_eq!(DolbyVision::parse(&[1, 0, 16]), None);
        assert_eq!(DolbyVision::parse(&record(127, 1, 1)), None);
    }

    #[test]
    fn a_copy_carries_the_record_it_was_read_from() {
        for (profile, level, compat) in [(8, 4, 1), (8, 9, 4), (10, 13, 2)] {
            let dv = DolbyVision::parse(&record(profile, level, compat)).unwrap();
            let (kind, payload) = dv.config_box().expect("a box");
            assert_eq!(payload.to_vec(), record(profile, level, compat));
            assert_eq!(DolbyVision::parse(&payload), Some(dv));
            assert_eq!(&kind, b"dvvC");
        }
        // Profile 5 is not copied; a profile 7 copy gets no record that
        // would say it has no enhancement layer.
        for (profile, compat) in [(5, 0), (7, 6)] {
            let dv = DolbyVision::parse(&record(profile, 6, compat)).unwrap();
            assert_eq!(dv.config_box(), None, "profile {profile}");
        }
    }

    #[test]
    fn supplemental_codecs_name_the_profile_level_and_base_layer_brand() {
        let dv = |p, l, c| DolbyVision::parse(&record(p, l, c)).unwrap();
        assert_eq!(
            dv(8, 4, 1).supplemental_codecs(false).as_deref(),
            Some("dvh1.08.04/db1p")
        );
        assert_eq!(
            dv(8, 10, 4).supplemental_codecs(true).as_deref(),
            Some("dvh1.08.10/db4h")
        );
        assert_eq!(
            dv(10, 1, 2).supplemental_codecs(false).as_deref(),
            Some("dav1.10.01/db2g")
        );
        assert_eq!(dv(5, 6, 0).supplemental_codecs(false), None);
        assert_eq!(dv(8, 6, 6).supplemental_codecs(false), None);
    }

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn the_record_is_found_in_the_video_sample_entry() {
        let mut entry = vec![0u8; 78];
        entry.extend(boxed(b"hvcC", &[1, 2, 3]));
        entry.extend(boxed(b"dvcC", &record(8, 4, 4)));
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend(boxed(b"hvc1", &entry));
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(b"vide");
        let stbl = boxed(b"stsd", &stsd);
        let minf = boxed(b"stbl", &stbl);
        let mdia = [boxed(b"hdlr", &hdlr), boxed(b"minf", &minf)].concat();
        let moov = boxed(b"trak", &boxed(b"mdia", &mdia));
        let dv = in_moov(&moov).unwrap();
        assert_eq!((dv.profile, dv.level, dv.compatibility_id), (8, 4, 4));
        // No record: none.
        let plain = moov.windows(4).position(|w| w == b"dvcC").unwrap();
        let mut without = moov.clone();
        without[plain..plain + 4].copy_from_slice(b"free");
        assert_eq!(in_moov(&without), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = DolbyVision::parse(&bytes);
            let _ = in_moov(&bytes);
        }
    }
}
