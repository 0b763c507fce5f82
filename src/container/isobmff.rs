//! ISO base media file format boxes (ISO/IEC 14496-12 §4.2): the one
//! reader and writer of MP4 / QuickTime / CMAF boxes in hlsd.
//!
//! Reading walks untrusted files: every size is checked against what
//! holds it, a box that overruns its parent makes the walk answer `None`,
//! and nothing larger than [`MAX_ALLOC`] is read into memory. Writing
//! appends boxes to a `Vec<u8>` and fills in each size when the box ends.
//!
//! The `mp4-atom` crate (0.17) was measured for both and not adopted
//! (2026-12): it decodes a whole `moov` or nothing, so one damaged box
//! anywhere (the reported audiobook's empty `stsz`, a Mac-Roman track
//! name, a bad `esds` descriptor) loses the video's index that this
//! reader still finds (hlsd gave an index for 68–94 % of randomly damaged
//! real `moov`s, the crate for 37–82 %); it cannot give the file offset
//! the header fix ([`super::mp4_header`]) patches, drops `stps`, always
//! writes version-1 `mvhd`/`tkhd`/`mdhd`, and writes a version-1 `trun`
//! even for audio (Chromium refuses it in a FLAC track), and it decoded
//! a `moov` 3–5× and encoded a `moof` 4–9× slower than this module.

use super::input::bytes::{be32, be64};
use super::input::{Input, MAX_ALLOC};

/// Most top-level boxes walked while looking for `moov`.
const MAX_TOP_BOXES: u32 = 100_000;

/// A top-level box of a file: its type, where it starts, its header
/// length and its whole size, in bytes.
struct TopBox {
    kind: [u8; 4],
    start: u64,
    header: u64,
    size: u64,
}

/// Walks the top-level boxes of `r` (at most [`MAX_TOP_BOXES`]) until
/// `stop` answers `Some`; `None` at a malformed box or the end.
fn walk_top<T>(r: &mut Input, mut stop: impl FnMut(&mut Input, &TopBox) -> Option<T>) -> Option<T> {
    let mut pos = 0u64;
    for _ in 0..MAX_TOP_BOXES {
        let mut head = [0u8; 16];
        let got = r.read_upto(pos, &mut head)?;
        if got < 8 {
            return None;
        }
        let size32 = u64::from(be32(&head, 0)?);
        let kind: [u8; 4] = head.get(4..8)?.try_into().ok()?;
        let (header, size) = match size32 {
            0 => (8, r.len().checked_sub(pos)?),
            1 if got >= 16 => (16, be64(&head, 8)?),
            1 => return None,
            s => (8, s),
        };
        if size < header || pos.checked_add(size)? > r.len() {
            return None;
        }
        let found = TopBox {
            kind,
            start: pos,
            header,
            size,
        };
        if let Some(t) = stop(r, &found) {
            return Some(t);
        }
        pos += size;
        if pos >= r.len() {
            return None;
        }
    }
    None
}

/// Finds the `moov` box among the top-level boxes and returns its
/// payload and the payload's byte offset in the file.
pub fn read_moov(r: &mut Input) -> Option<(u64, Vec<u8>)> {
    walk_top(r, |r, b| {
        if &b.kind != b"moov" {
            return None;
        }
        let (at, len) = (b.start + b.header, b.size - b.header);
        // A moov too large to read ends the walk with no answer.
        Some(
            (len <= MAX_ALLOC)
                .then(|| r.read_vec(at, len))
                .flatten()
                .map(|v| (at, v)),
        )
    })
    .flatten()
}

/// The payload of the top-level box that holds byte `pos` of the file:
/// its first byte and the byte after its last, if that box is of type
/// `kind` (e.g. the `mdat` a sample lies in).
pub fn top_box_around(r: &mut Input, pos: u64, kind: &[u8; 4]) -> Option<(u64, u64)> {
    walk_top(r, |_, b| {
        let end = b.start + b.size;
        (pos < end).then(|| {
            (&b.kind == kind && pos >= b.start + b.header).then_some((b.start + b.header, end))
        })
    })
    .flatten()
}

/// Splits a box payload into its child boxes; `None` when malformed.
pub fn children(data: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 8 {
            // QuickTime allows a 32-bit zero terminator at the end of a container.
            return (rest.len() == 4 && be32(rest, 0)? == 0).then_some(out);
        }
        let size32 = u64::from(be32(rest, 0)?);
        let kind: [u8; 4] = rest.get(4..8)?.try_into().ok()?;
        let (hlen, size) = match size32 {
            0 => (8, rest.len() as u64),
            1 => (16, be64(rest, 8)?),
            s => (8, s),
        };
        if size < hlen || size > rest.len() as u64 {
            return None;
        }
        let size = usize::try_from(size).ok()?;
        out.push((kind, rest.get(usize::try_from(hlen).ok()?..size)?));
        rest = rest.get(size..)?;
    }
    Some(out)
}

/// First child of the given type.
pub fn find<'a>(boxes: &[([u8; 4], &'a [u8])], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes.iter().find(|(t, _)| t == kind).map(|(_, d)| *d)
}

/// Child box reached through a path of types, `None` if absent or malformed.
pub fn path<'a>(data: &'a [u8], kinds: &[&[u8; 4]]) -> Option<&'a [u8]> {
    let mut cur = data;
    for k in kinds {
        cur = find(&children(cur)?, k)?;
    }
    Some(cur)
}

// ---- writing ----

/// A box being written: its start in the buffer, for [`end`].
#[must_use]
pub struct Open(usize);

/// Starts box `kind` (size filled in by [`end`]).
pub fn begin(out: &mut Vec<u8>, kind: &[u8; 4]) -> Open {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    Open(start)
}

/// Starts full box `kind` with `version` and `flags` (24 bits).
pub fn begin_full(out: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32) -> Open {
    let open = begin(out, kind);
    out.push(version);
    out.extend_from_slice(&flags.to_be_bytes()[1..]);
    open
}

/// Ends a box: writes its size.
pub fn end(out: &mut [u8], open: Open) {
    let size = u32::try_from(out.len() - open.0).unwrap_or(u32::MAX);
    out[open.0..open.0 + 4].copy_from_slice(&size.to_be_bytes());
}

/// Appends a big-endian `u16`.
pub fn u16be(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a big-endian `u32`.
pub fn u32be(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// A box whose whole payload is `payload`.
pub fn leaf(out: &mut Vec<u8>, kind: &[u8; 4], payload: &[u8]) {
    let open = begin(out, kind);
    out.extend_from_slice(payload);
    end(out, open);
}
