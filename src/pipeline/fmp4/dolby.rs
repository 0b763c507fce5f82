//! The configuration boxes of AC-3 and E-AC-3 in ISOBMFF (ETSI TS 102 366
//! Annex F): `dac3` (F.4) and `dec3` (F.6), read from the bit stream
//! information of the stream's first sync frame. Pure: bytes in, bytes out.

/// Sampling rates by `fscod` (TS 102 366, 4.4.1.3).
const RATES: [u32; 3] = [48_000, 44_100, 32_000];

/// Reads bits most significant first.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: usize) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Some(v)
    }
}

/// Packs `(value, width)` fields into bytes, most significant first.
fn pack(fields: &[(u32, usize)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc: u64 = 0;
    let mut bits = 0;
    for &(v, n) in fields {
        acc = (acc << n) | u64::from(v & ((1 << n) - 1));
        bits += n;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The `dac3` payload and sampling rate of an AC-3 stream whose first
/// sync frame is `frame` (bsi: 4.4.2).
pub fn dac3(frame: &[u8]) -> Option<(Vec<u8>, u32)> {
    if frame.get(..2)? != [0x0B, 0x77] {
        return None;
    }
    let mut b = Bits {
        data: frame,
        at: 32,
    };
    let fscod = b.read(2)?;
    let frmsizecod = b.read(6)?;
    let bsid = b.read(5)?;
    let bsmod = b.read(3)?;
    let acmod = b.read(3)?;
    if acmod & 1 != 0 && acmod != 1 {
        b.read(2)?; // cmixlev
    }
    if acmod & 4 != 0 {
        b.read(2)?; // surmixlev
    }
    if acmod == 2 {
        b.read(2)?; // dsurmod
    }
    let lfeon = b.read(1)?;
    let rate = *RATES.get(fscod as usize)?;
    let payload = pack(&[
        (fscod, 2),
        (bsid, 5),
        (bsmod, 3),
        (acmod, 3),
        (lfeon, 1),
        (frmsizecod >> 1, 5),
        (0, 5),
    ]);
    Some((payload, rate))
}

/// The `dec3` payload and sampling rate of an E-AC-3 stream whose first
/// sync frame is `frame` (bsi: E.1.2.2): one independent substream, no
/// dependent ones; `bsmod` 0 (complete main), which lies too deep in the
/// bsi to be worth reading; `data_rate` from the frame's size and blocks.
pub fn dec3(frame: &[u8]) -> Option<(Vec<u8>, u32)> {
    if frame.get(..2)? != [0x0B, 0x77] {
        return None;
    }
    let mut b = Bits {
        data: frame,
        at: 16,
    };
    let _strmtyp = b.read(2)?;
    let _substreamid = b.read(3)?;
    let frmsiz = b.read(11)?;
    let fscod = b.read(2)?;
    let (rate, blocks) = if fscod == 3 {
        let fscod2 = b.read(2)?;
        (*RATES.get(fscod2 as usize)? / 2, 6)
    } else {
        let numblkscod = b.read(2)?;
        (
            *RATES.get(fscod as usize)?,
            [1, 2, 3, 6][numblkscod as usize],
        )
    };
    let acmod = b.read(3)?;
    let lfeon = b.read(1)?;
    let bsid = b.read(5)?;
    let bytes = u64::from(frmsiz + 1) * 2;
    let data_rate = bytes * 8 * u64::from(rate) / (256 * blocks) / 1000;
    let payload = pack(&[
        (data_rate as u32, 13),
        (0, 3), // num_ind_sub: one substream
        (fscod.min(2), 2),
        (bsid, 5),
        (0, 1),
        (0, 1), // asvc
        (0, 3), // bsmod
        (acmod, 3),
        (lfeon, 1),
        (0, 3),
        (0, 4), // num_dep_sub
        (0, 1),
    ]);
    Some((payload, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ac3_sync_frame_gives_its_dac3() {
        // 48 kHz (fscod 0), frmsizecod 28 (448 kb/s), bsid 8, bsmod 0,
        // acmod 7 (3/2), then cmixlev, surmixlev, lfeon 1.
        let frame = [
            0x0B,
            0x77,
            0,
            0,
            0b0001_1100,
            0b0100_0000,
            0b1110_0001,
            0b0000_0000,
        ];
        let (dac3, rate) = dac3(&frame).expect("dac3");
        assert_eq!(rate, 48_000);
        // fscod 00, bsid 01000, bsmod 000, acmod 111, lfeon 1,
        // bit_rate_code 01110, reserved 00000.
        assert_eq!(dac3, [0b0001_0000, 0b0011_1101, 0b1100_0000]);
        assert_eq!(super::dac3(b"\x0B\x78rest"), None);
    }

    #[test]
    fn an_eac3_sync_frame_gives_its_dec3() {
        // strmtyp 0, substreamid 0, frmsiz 767 (1536 bytes), fscod 0,
        // numblkscod 3 (6 blocks), acmod 2, lfeon 0, bsid 16.
        let frame = [0x0B, 0x77, 0b0000_0010, 0xFF, 0b0011_0100, 0b1000_0000];
        let (dec3, rate) = dec3(&frame).expect("dec3");
        assert_eq!(rate, 48_000);
        // data_rate = 1536 * 8 * 48000 / 1536 / 1000 = 384 kb/s.
        assert_eq!(u16::from_be_bytes([dec3[0], dec3[1]]) >> 3, 384);
        assert_eq!(dec3.len(), 5);
        // fscod 00, bsid 10000, reserved, asvc, bsmod 000, acmod 010, lfeon 0.
        assert_eq!(dec3[2], 0b0010_0000);
        assert_eq!(dec3[3], 0b0000_0100);
    }
}
