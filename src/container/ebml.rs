//! Minimal EBML reading (the Matroska / WebM element syntax): variable-length
//! integers, element headers from the file or from memory, integer and float
//! values. Every read is bounds-checked; malformed input gives `None`.

use super::input::Input;

/// An element header found in the file.
#[derive(Clone, Copy)]
pub struct Elem {
    /// Element ID, marker bits kept (as the Matroska spec writes IDs).
    pub id: u32,
    /// Offset of the payload.
    pub data: u64,
    /// Payload size, `None` when "unknown" (live-written files).
    pub size: Option<u64>,
}

/// Reads an EBML variable-length integer; returns (value with marker removed, length, all-ones).
pub fn vint(b: &[u8]) -> Option<(u64, usize, bool)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut v = u64::from(first) & (0xFF >> len);
    for &x in b.get(1..len)? {
        v = (v << 8) | u64::from(x);
    }
    let all_ones = v == (1u64 << (7 * len)) - 1;
    Some((v, len, all_ones))
}

/// Parses an element header (ID with marker bits kept, size) at the start of `b`.
pub fn header(b: &[u8]) -> Option<(u32, Option<u64>, usize)> {
    let first = *b.first()?;
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return None;
    }
    let mut id = 0u32;
    for &x in b.get(..id_len)? {
        id = (id << 8) | u32::from(x);
    }
    let (size, size_len, unknown) = vint(b.get(id_len..)?)?;
    Some((id, (!unknown).then_some(size), id_len + size_len))
}

/// Reads an element header at file offset `pos`.
pub fn elem_at(r: &mut Input, pos: u64) -> Option<Elem> {
    let mut buf = [0u8; 12];
    let n = r.read_upto(pos, &mut buf)?;
    let (id, size, hlen) = header(buf.get(..n)?)?;
    Some(Elem {
        id,
        data: pos + hlen as u64,
        size,
    })
}

/// Children of an in-memory master element payload; `None` when malformed.
pub fn kids(b: &[u8]) -> Option<Vec<(u32, &[u8])>> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off < b.len() {
        let (id, size, hlen) = header(b.get(off..)?)?;
        let start = off + hlen;
        let end = start.checked_add(usize::try_from(size?).ok()?)?;
        out.push((id, b.get(start..end)?));
        off = end;
    }
    Some(out)
}

/// Unsigned integer element value.
pub fn uint(b: &[u8]) -> Option<u64> {
    if b.len() > 8 {
        return None;
    }
    Some(b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
}

/// Float element value.
pub fn float(b: &[u8]) -> Option<f64> {
    match b.len() {
        4 => Some(f64::from(f32::from_be_bytes(b.try_into().ok()?))),
        8 => Some(f64::from_be_bytes(b.try_into().ok()?)),
        _ => None,
    }
}
