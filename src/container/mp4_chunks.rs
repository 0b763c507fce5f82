//! Where each sample of an MP4 / QuickTime track lies in the file, from
//! its sample table (ISO/IEC 14496-12 §8.7): `stsc` says how many samples
//! each chunk holds, `stco` or `co64` where each chunk starts, and `stsz`
//! how large each sample is; a chunk's samples follow one another.
//!
//! What a copy's segments weigh is read from these offsets before any
//! segment is made ([`super::index::KeyframeIndex::offsets`]). Every
//! table is untrusted: a chunk or sample past its table ends the walk.

use super::input::bytes::{be32, be64};
use super::isobmff::find;

/// The sample-to-chunk and chunk-offset tables of one track.
pub struct Chunks<'a> {
    /// `stsc` payload after version and flags: entry count, then
    /// (first chunk, samples per chunk, description index) entries.
    stsc: &'a [u8],
    /// `stco` (4-byte) or `co64` (8-byte) payload after version and flags.
    offsets: &'a [u8],
    /// Bytes per chunk offset: 4 or 8.
    width: usize,
    /// Chunk count.
    count: u32,
}

impl<'a> Chunks<'a> {
    /// The chunk tables among a `stbl`'s children; `None` when absent or
    /// shorter than they say.
    pub fn new(stbl: &[([u8; 4], &'a [u8])]) -> Option<Chunks<'a>> {
        let stsc = find(stbl, b"stsc")?.get(4..)?;
        let (offsets, width) = match find(stbl, b"stco") {
            Some(b) => (b.get(4..)?, 4),
            None => (find(stbl, b"co64")?.get(4..)?, 8),
        };
        let count = be32(offsets, 0)?;
        let needed = 4u64 + u64::from(count) * width as u64;
        let entries = u64::from(be32(stsc, 0)?);
        if (offsets.len() as u64) < needed || (stsc.len() as u64) < 4 + entries * 12 {
            return None;
        }
        Some(Chunks {
            stsc,
            offsets,
            width,
            count,
        })
    }

    /// Byte offset of chunk `n` (1-based).
    fn offset(&self, n: u32) -> Option<u64> {
        let at = 4 + (n.checked_sub(1)? as usize) * self.width;
        if self.width == 4 {
            be32(self.offsets, at).map(u64::from)
        } else {
            be64(self.offsets, at)
        }
    }

    /// The first and last chunk offsets, in file order.
    pub fn span(&self) -> Option<(u64, u64)> {
        let mut span: Option<(u64, u64)> = None;
        for n in 1..=self.count {
            let o = self.offset(n)?;
            span = Some(span.map_or((o, o), |(a, b)| (a.min(o), b.max(o))));
        }
        span
    }
}

/// Sample sizes from `stsz`: one for all, or a table.
enum Sizes<'a> {
    /// Every sample has this size.
    Constant(u32),
    /// `stsz` payload; entry `i` at byte `12 + 4 i`.
    Table(&'a [u8]),
}

/// The samples of a track, in decode order: each one's byte offset and
/// size.
pub struct Samples<'a> {
    chunks: Chunks<'a>,
    sizes: Sizes<'a>,
    /// Index of the next `stsc` entry to apply.
    entry: u32,
    /// Current chunk (1-based; 0 before the first) and samples it holds.
    chunk: u32,
    per_chunk: u32,
    /// Samples of the current chunk already given.
    given: u32,
    /// Where the next sample starts.
    pos: u64,
    /// Samples given in all.
    index: u32,
}

impl<'a> Samples<'a> {
    /// The samples of the track whose `stbl` children are `stbl`; `None`
    /// when a table is missing or short.
    pub fn new(stbl: &[([u8; 4], &'a [u8])]) -> Option<Samples<'a>> {
        let stsz = find(stbl, b"stsz")?;
        let sizes = match be32(stsz, 4)? {
            0 => Sizes::Table(stsz),
            n => Sizes::Constant(n),
        };
        Some(Samples {
            chunks: Chunks::new(stbl)?,
            sizes,
            entry: 0,
            chunk: 0,
            per_chunk: 0,
            given: 0,
            pos: 0,
            index: 0,
        })
    }

    /// Samples per chunk for chunk `n`, advancing through `stsc`.
    fn per_chunk(&mut self, n: u32) -> Option<u32> {
        let entries = be32(self.chunks.stsc, 0)?;
        while self.entry < entries {
            let at = 4 + self.entry as usize * 12;
            if be32(self.chunks.stsc, at)? > n {
                break;
            }
            self.per_chunk = be32(self.chunks.stsc, at + 4)?;
            self.entry += 1;
        }
        Some(self.per_chunk)
    }
}

impl Iterator for Samples<'_> {
    /// Byte offset and size of the next sample.
    type Item = (u64, u32);

    fn next(&mut self) -> Option<(u64, u32)> {
        // Into the next chunk that holds a sample (an empty one is skipped).
        while self.chunk == 0 || self.given >= self.per_chunk {
            self.chunk = self.chunk.checked_add(1)?;
            if self.chunk > self.chunks.count {
                return None;
            }
            self.per_chunk(self.chunk)?;
            self.given = 0;
            self.pos = self.chunks.offset(self.chunk)?;
        }
        let size = match self.sizes {
            Sizes::Constant(s) => s,
            Sizes::Table(t) => be32(t, 12 + self.index as usize * 4)?,
        };
        let at = self.pos;
        self.pos = at.checked_add(u64::from(size))?;
        self.given += 1;
        self.index = self.index.checked_add(1)?;
        Some((at, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full box payload: version and flags, then `fields` as u32s.
    fn table(fields: &[u32]) -> Vec<u8> {
        let mut v = vec![0u8; 4];
        for f in fields {
            v.extend_from_slice(&f.to_be_bytes());
        }
        v
    }

    #[test]
    fn samples_follow_one_another_in_their_chunks() {
        // Chunks 1-2 hold 2 samples, chunk 3 holds 1, chunk 4 none.
        let stsc = table(&[3, 1, 2, 1, 3, 1, 1, 4, 0, 1]);
        let stco = table(&[4, 100, 1_000, 5_000, 9_000]);
        let stsz = table(&[0, 5, 10, 20, 30, 40, 50]);
        let stbl = [
            (*b"stsc", &stsc[..]),
            (*b"stco", &stco[..]),
            (*b"stsz", &stsz[..]),
        ];
        let got: Vec<_> = Samples::new(&stbl).unwrap().collect();
        assert_eq!(
            got,
            [(100, 10), (110, 20), (1_000, 30), (1_030, 40), (5_000, 50)]
        );
        assert_eq!(Chunks::new(&stbl).unwrap().span(), Some((100, 9_000)));
    }

    #[test]
    fn co64_and_a_constant_size_work_and_short_tables_end_the_walk() {
        let stsc = table(&[1, 1, 3, 1]);
        let mut co64 = table(&[1]);
        co64.extend_from_slice(&(5u64 << 32).to_be_bytes());
        let stsz = table(&[7, 3]);
        let stbl = [
            (*b"stsc", &stsc[..]),
            (*b"co64", &co64[..]),
            (*b"stsz", &stsz[..]),
        ];
        let base = 5u64 << 32;
        let got: Vec<_> = Samples::new(&stbl).unwrap().collect();
        assert_eq!(got, [(base, 7), (base + 7, 7), (base + 14, 7)]);
        // A chunk count the table does not hold.
        let short = table(&[9, 100]);
        let stbl = [
            (*b"stsc", &stsc[..]),
            (*b"stco", &short[..]),
            (*b"stsz", &stsz[..]),
        ];
        assert!(Samples::new(&stbl).is_none());
        // Sizes that run out.
        let stsc = table(&[1, 1, 5, 1]);
        let stco = table(&[1, 100]);
        let stsz = table(&[0, 5, 1, 2]);
        let stbl = [
            (*b"stsc", &stsc[..]),
            (*b"stco", &stco[..]),
            (*b"stsz", &stsz[..]),
        ];
        assert_eq!(Samples::new(&stbl).unwrap().count(), 2);
    }
}
