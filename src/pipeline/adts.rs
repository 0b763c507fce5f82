//! ADTS headers (ISO/IEC 13818-7, 6.2) whose sampling frequency disagrees
//! with the stream's.
//!
//! GStreamer 1.22 misreads an AudioSpecificConfig that signals SBR
//! explicitly (a sync extension after the channel configuration, as
//! ffmpeg writes for 5.1 AAC in Matroska): `matroskademux` announces
//! twice the rate, and `aacparse`, converting to ADTS, writes that
//! frequency index (96 kHz for 48 kHz audio) into every header although
//! its own caps say 48 kHz. Decoders then fail ("channel element 0.8 is
//! not allocated" in ffmpeg). The segment writer puts the caps' rate back
//! into each header. Pure: bytes in, bytes out.

/// Sampling frequencies by ADTS/AudioSpecificConfig index (13818-7,
/// table 35).
const RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// The sampling frequency (Hz) of ADTS index `index`, if it is one.
pub fn rate_of_index(index: u8) -> Option<u32> {
    RATES.get(usize::from(index)).copied()
}

/// The ADTS sampling frequency index of `rate` Hz, if it has one.
pub fn sampling_index(rate: u32) -> Option<u8> {
    RATES.iter().position(|&r| r == rate).map(|i| i as u8)
}

/// `data` (one or more ADTS frames) with every header's sampling
/// frequency index set to `index`, or `None` when every header has it
/// already (or `data` is not ADTS).
pub fn with_sampling_index(data: &[u8], index: u8) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut at = 0;
    while at + 7 <= data.len() && data[at] == 0xff && data[at + 1] & 0xf0 == 0xf0 {
        let current = (data[at + 2] >> 2) & 0x0f;
        if current != index {
            let buf = out.get_or_insert_with(|| data.to_vec());
            buf[at + 2] = (buf[at + 2] & !0x3c) | (index << 2);
        }
        let len = (usize::from(data[at + 3] & 0x03) << 11)
            | (usize::from(data[at + 4]) << 3)
            | usize::from(data[at + 5] >> 5);
        if len < 7 {
            break;
        }
        at += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 9-byte ADTS frame: LC, frequency index `sf`, 6 channels.
    fn frame(sf: u8) -> Vec<u8> {
        let len = 9usize;
        vec![
            0xff,
            0xf1,
            (1 << 6) | (sf << 2) | 1,
            (2 << 6) | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            ((len as u8 & 7) << 5) | 0x1f,
            0xfc,
            0xaa,
            0xbb,
        ]
    }

    #[test]
    fn a_wrong_index_is_replaced_in_every_frame_and_nothing_else_changes() {
        let data = [frame(0), frame(0)].concat();
        let fixed = with_sampling_index(&data, sampling_index(48_000).unwrap()).unwrap();
        assert_eq!(fixed, [frame(3), frame(3)].concat());
        // Channel configuration (6) and profile (LC) kept.
        assert_eq!((fixed[2] & 1) << 2 | fixed[3] >> 6, 6);
        assert_eq!(fixed[2] >> 6, 1);
    }

    #[test]
    fn right_headers_and_other_data_are_left_alone() {
        assert_eq!(with_sampling_index(&frame(3), 3), None);
        assert_eq!(
            with_sampling_index(&[0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0], 3),
            None
        );
        assert_eq!(sampling_index(44_100), Some(4));
        assert_eq!(sampling_index(12_345), None);
    }
}
