//! H.264 (ITU-T H.264) access units as the byte-stream format of Annex B
//! carries them: what the library's passes need to know of one.

/// Whether an H.264 access unit (Annex B byte-stream) holds an IDR slice
/// (NAL unit type 5, ITU-T H.264 Table 7-1).
pub fn has_idr_slice(au: &[u8]) -> bool {
    au.windows(4)
        .any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && w[3] & 0x1f == 5)
}

#[cfg(test)]
mod tests {
    use super::has_idr_slice;

    #[test]
    fn only_access_units_with_an_idr_slice_are_idr() {
        // AUD, SPS, PPS, IDR slice.
        let idr = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0, 0, 1, 0x68, 0xee, 0, 0, 1, 0x65,
            0x88,
        ];
        // AUD, SEI (recovery point), non-IDR slice of an I-frame.
        let open_gop_i = [
            0, 0, 0, 1, 0x09, 0x10, 0, 0, 1, 0x06, 0x06, 0, 0, 1, 0x41, 0x9a,
        ];
        assert!(has_idr_slice(&idr));
        assert!(!has_idr_slice(&open_gop_i));
        assert!(!has_idr_slice(&[]));
    }
}
