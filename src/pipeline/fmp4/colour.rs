//! A video sample entry's colour boxes (ISO/IEC 14496-12 §12.1.5 `colr`;
//! `mdcv` and `clli` for HDR): what they hold and how they are written.
//! Pure.

use crate::container::isobmff::{begin, end, leaf, u16be};

/// What a video sample entry says of its colour: `colr` of type `nclx`
/// (ISO/IEC 14496-12 §12.1.5; codes of ITU-T H.273), and for HDR the
/// mastering display (`mdcv`, SMPTE ST 2086 as ISO/IEC 23001-8 carries
/// it) and the content light levels (`clli`, CTA-861.3), as Apple's HLS
/// authoring spec asks of HDR10 (9.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colour {
    /// H.273 colour primaries (1 BT.709, 9 BT.2020).
    pub primaries: u16,
    /// H.273 transfer characteristics (1 BT.709, 16 PQ, 18 HLG).
    pub transfer: u16,
    /// H.273 matrix coefficients (1 BT.709, 9 BT.2020 non-constant).
    pub matrix: u16,
    /// Full range (0–255 for 8 bits) rather than limited.
    pub full_range: bool,
    /// The `mdcv` payload: display primaries in the order green, blue,
    /// red, then the white point, each x and y in units of 0.00002, then
    /// the most and least luminance in units of 0.0001 cd/m²: 24 bytes.
    pub mastering: Option<[u8; 24]>,
    /// The `clli` payload: MaxCLL and MaxFALL, cd/m².
    pub light_level: Option<(u16, u16)>,
}

/// `colr` (`nclx`), then `mdcv` and `clli` where known.
pub(super) fn write(out: &mut Vec<u8>, c: &Colour) {
    let b = begin(out, b"colr");
    out.extend_from_slice(b"nclx");
    u16be(out, c.primaries);
    u16be(out, c.transfer);
    u16be(out, c.matrix);
    out.push(u8::from(c.full_range) << 7);
    end(out, b);
    if let Some(m) = &c.mastering {
        leaf(out, b"mdcv", m);
    }
    if let Some((cll, fall)) = c.light_level {
        let b = begin(out, b"clli");
        u16be(out, cll);
        u16be(out, fall);
        end(out, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::isobmff::{children, path};
    use crate::pipeline::fmp4::boxes::{init_segment, SampleEntry, Track};

    #[test]
    fn an_hdr10_entry_says_its_colour_mastering_display_and_light_levels() {
        let mut mastering = [0u8; 24];
        mastering[20..24].copy_from_slice(&50u32.to_be_bytes());
        let init = init_segment(&Track {
            timescale: 90_000,
            entry: SampleEntry::Video {
                format: *b"hvc1",
                width: 3840,
                height: 2160,
                config_kind: *b"hvcC",
                config: vec![1],
                rotation: 0,
                colour: Some(Colour {
                    primaries: 9,
                    transfer: 16,
                    matrix: 9,
                    full_range: false,
                    mastering: Some(mastering),
                    light_level: Some((1000, 400)),
                }),
                dolby_vision: None,
            },
        });
        let stsd = path(
            &init,
            &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"],
        )
        .expect("stsd");
        // The entry's boxes after its 78 bytes of fields.
        let boxes = children(&stsd[8 + 8 + 78..]).expect("entry boxes");
        let kinds: Vec<&[u8; 4]> = boxes.iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, [b"hvcC", b"colr", b"mdcv", b"clli"]);
        assert_eq!(boxes[1].1, b"nclx\0\x09\0\x10\0\x09\0");
        assert_eq!(boxes[2].1, mastering);
        assert_eq!(boxes[3].1, [0x03, 0xE8, 0x01, 0x90]);
    }
}
