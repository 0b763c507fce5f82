//! MP4 and QuickTime files whose movie header claims far more than their
//! tracks hold.
//!
//! `qtdemux` (GStreamer 1.22) skips every track shorter than 20 % of the
//! movie header's (`mvhd`) duration, taking it for a preview picture. A
//! file whose header is wrong (an M4B audiobook tool that wrote an hour
//! for 10 s of audio) so has no stream left, and the Discoverer and every
//! pipeline refuse it, while ffmpeg, which ignores that field, plays it.
//! For such a file hlsd corrects the header on the fly: this module finds
//! the bytes to change ([`header_patch`]), which [`super::fixes`] puts in
//! place as the file is read, before `qtdemux` reads them.
//!
//! Also: whether an MP4's tracks hold any sample at all ([`holds_samples`]):
//! a file stripped of its media (the reported audiobook: empty `stsz`
//! boxes, an empty `mdat`, chunk offsets past the end of its 80 KB) has
//! nothing to play, and says so rather than "This file is corrupt".

use super::input::bytes::{be32, be64};
use super::input::Input;
use super::isobmff::{children, find, path, read_moov};
use super::patch::SourcePatch;

/// A header claiming more than this many times its longest track is
/// corrected: `qtdemux` skips a track under 1/5 of it.
const CLAIM_FACTOR: u64 = 5;

/// The correction an MP4/QuickTime file's bytes (`input`) need, if its
/// movie header claims over [`CLAIM_FACTOR`] times its longest track.
pub fn header_patch(input: &mut Input) -> Option<SourcePatch> {
    let (offset, moov) = read_moov(input)?;
    patch_in_moov(&moov, offset)
}

/// Whether any track of an MP4/QuickTime file (`input`) lists a sample
/// whose data lies in the file: a sample count above 0 in `stsz` (or
/// `stz2`) and a first chunk (`stco`, `co64`) that starts before its end.
/// `None` when the file has no `moov` that can be read (the demuxer has
/// its say then).
pub fn holds_samples(input: &mut Input) -> Option<bool> {
    let mut head = [0u8; 8];
    if input.read_upto(0, &mut head)? < 8
        || !matches!(
            &head[4..8],
            b"ftyp" | b"moov" | b"free" | b"wide" | b"skip" | b"mdat"
        )
    {
        return None;
    }
    let (_, moov) = read_moov(input)?;
    let len = input.len();
    let boxes = children(&moov)?;
    if boxes.iter().any(|(t, _)| t == b"mvex") {
        // Fragmented: samples live in moof/trun.
        return Some(true);
    }
    let holds = |trak: &[u8]| {
        let stbl = path(trak, &[b"mdia", b"minf", b"stbl"])?;
        let stbl = children(stbl)?;
        let count = match (find(&stbl, b"stsz"), find(&stbl, b"stz2")) {
            (Some(stsz), _) => be32(stsz, 8)?,
            (None, Some(stz2)) => be32(stz2, 8)?,
            _ => return None,
        };
        let first_chunk = match (find(&stbl, b"stco"), find(&stbl, b"co64")) {
            (Some(stco), _) => u64::from(be32(stco, 8)?),
            (None, Some(co64)) => be64(co64, 8)?,
            _ => return None,
        };
        Some(count > 0 && first_chunk < len)
    };
    Some(
        boxes
            .iter()
            .filter(|(t, _)| t == b"trak")
            .any(|(_, trak)| holds(trak) == Some(true)),
    )
}

/// The patch for a `moov` payload that starts at file offset
/// `moov_offset`.
fn patch_in_moov(moov: &[u8], moov_offset: u64) -> Option<SourcePatch> {
    let boxes = children(moov)?;
    let mvhd = find(&boxes, b"mvhd")?;
    let v1 = *mvhd.first()? == 1;
    let (timescale, claimed, field) = if v1 {
        (u64::from(be32(mvhd, 20)?), be64(mvhd, 24)?, 24)
    } else {
        (u64::from(be32(mvhd, 12)?), u64::from(be32(mvhd, 16)?), 16)
    };
    if timescale == 0 || claimed == 0 {
        return None;
    }
    // The longest track, in the movie's timescale (mdhd: its own).
    let longest = boxes
        .iter()
        .filter(|(kind, _)| kind == b"trak")
        .filter_map(|(_, trak)| {
            let mdhd = path(trak, &[b"mdia", b"mdhd"])?;
            let (scale, duration) = if *mdhd.first()? == 1 {
                (u64::from(be32(mdhd, 20)?), be64(mdhd, 24)?)
            } else {
                (u64::from(be32(mdhd, 12)?), u64::from(be32(mdhd, 16)?))
            };
            (scale > 0)
                .then(|| (u128::from(duration) * u128::from(timescale)).div_ceil(u128::from(scale)))
        })
        .max()?;
    let longest = u64::try_from(longest).ok().filter(|l| *l > 0)?;
    if claimed <= longest.saturating_mul(CLAIM_FACTOR) {
        return None;
    }
    let at = mvhd.as_ptr() as usize - moov.as_ptr() as usize + field;
    let bytes = if v1 {
        longest.to_be_bytes().to_vec()
    } else {
        u32::try_from(longest).ok()?.to_be_bytes().to_vec()
    };
    Some(SourcePatch {
        offset: moov_offset + at as u64,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A box: size, type, payload.
    fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    /// A version-0 `mvhd` or `mdhd` payload with `timescale` and `duration`.
    fn header(timescale: u32, duration: u32, tail: usize) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&timescale.to_be_bytes());
        p.extend_from_slice(&duration.to_be_bytes());
        p.extend(std::iter::repeat_n(0u8, tail));
        p
    }

    /// A `moov` payload: movie timescale 1000 claiming `claimed_ms`, one
    /// track of 10 s at 48 kHz.
    fn moov(claimed_ms: u32) -> Vec<u8> {
        let mdhd = bx(b"mdhd", &header(48_000, 480_000, 4));
        let trak = bx(b"trak", &bx(b"mdia", &mdhd));
        [bx(b"mvhd", &header(1000, claimed_ms, 80)), trak].concat()
    }

    #[test]
    fn a_header_claiming_an_hour_for_10_s_is_corrected_to_10_s() {
        let moov = moov(3_600_000);
        let patch = patch_in_moov(&moov, 1000).expect("a patch");
        // mvhd box header (8) + version/flags, ctime, mtime, timescale (16).
        assert_eq!(patch.offset, 1000 + 8 + 16);
        assert_eq!(patch.bytes, 10_000u32.to_be_bytes());
        let at = (patch.offset - 1000) as usize;
        assert_eq!(&moov[at..at + 4], &3_600_000u32.to_be_bytes());
    }

    #[test]
    fn a_believable_or_zero_header_is_left_alone() {
        assert_eq!(patch_in_moov(&moov(11_000), 0), None);
        assert_eq!(patch_in_moov(&moov(49_000), 0), None);
        assert_eq!(patch_in_moov(&moov(0), 0), None);
    }
}
