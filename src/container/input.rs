//! Byte input for the container readers: a buffered file whose every read
//! is bounds-checked against its length, and big- and little-endian field
//! readers on byte slices that answer `None` past the end. Hostile files
//! (lying sizes, truncation) never make a reader panic or allocate more
//! than [`MAX_ALLOC`] bytes at once.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

/// Upper bound for any single structure read into memory (moov, Cues, index).
pub const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// Where an [`Input`]'s bytes come from.
enum Bytes {
    /// A file, buffered: moves within the buffer cost no system call.
    File(BufReader<File>),
    /// Bytes in memory (tests, property tests).
    Memory(Cursor<Vec<u8>>),
}

/// A buffered file (or bytes in memory) with its length; every read is
/// bounds-checked.
pub struct Input {
    inner: Bytes,
    len: u64,
    /// Logical read position, `None` after a failed read.
    pos: Option<u64>,
}

impl Input {
    /// The file at `path`, buffered, read from its start.
    pub fn open(path: &Path) -> Option<Input> {
        let file = File::open(path).ok()?;
        let len = file.metadata().ok()?.len();
        Some(Input {
            inner: Bytes::File(BufReader::with_capacity(16 * 1024, file)),
            len,
            pos: Some(0),
        })
    }

    /// `bytes`, read as a file holding them would be.
    pub fn from_bytes(bytes: Vec<u8>) -> Input {
        Input {
            len: bytes.len() as u64,
            inner: Bytes::Memory(Cursor::new(bytes)),
            pos: Some(0),
        }
    }

    /// File length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Fills `buf` from absolute byte offset `pos`.
    pub fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = pos.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match self.pos {
            Some(cur) if cur.abs_diff(pos) < (1 << 40) => {
                // In-buffer moves are free; others become one lseek.
                let delta = i64::try_from(i128::from(pos) - i128::from(cur))
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
                match &mut self.inner {
                    Bytes::File(f) => f.seek_relative(delta)?,
                    Bytes::Memory(m) => m.set_position(pos),
                }
            }
            _ => match &mut self.inner {
                Bytes::File(f) => {
                    f.seek(SeekFrom::Start(pos))?;
                }
                Bytes::Memory(m) => m.set_position(pos),
            },
        }
        self.pos = None;
        match &mut self.inner {
            Bytes::File(f) => f.read_exact(buf)?,
            Bytes::Memory(m) => m.read_exact(buf)?,
        }
        self.pos = end;
        Ok(())
    }

    /// Reads `n` bytes at `pos` into a new vector (bounded by [`MAX_ALLOC`]).
    pub fn read_vec(&mut self, pos: u64, n: u64) -> Option<Vec<u8>> {
        if n > MAX_ALLOC {
            return None;
        }
        let mut v = vec![0u8; usize::try_from(n).ok()?];
        self.read_at(pos, &mut v).ok()?;
        Some(v)
    }

    /// Reads up to `buf.len()` bytes at `pos` (fewer near the end of the file).
    pub fn read_upto(&mut self, pos: u64, buf: &mut [u8]) -> Option<usize> {
        let avail = self.len.checked_sub(pos)?;
        let n = buf.len().min(usize::try_from(avail).unwrap_or(usize::MAX));
        let slice = buf.get_mut(..n)?;
        self.read_at(pos, slice).ok()?;
        Some(n)
    }
}

/// Big-endian / little-endian field readers on byte slices (`None` past the end).
pub mod bytes {
    /// Big-endian u16 at `off`.
    pub fn be16(b: &[u8], off: usize) -> Option<u16> {
        Some(u16::from_be_bytes(
            b.get(off..off.checked_add(2)?)?.try_into().ok()?,
        ))
    }
    /// Big-endian u32 at `off`.
    pub fn be32(b: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_be_bytes(
            b.get(off..off.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    /// Big-endian u64 at `off`.
    pub fn be64(b: &[u8], off: usize) -> Option<u64> {
        Some(u64::from_be_bytes(
            b.get(off..off.checked_add(8)?)?.try_into().ok()?,
        ))
    }
    /// Little-endian u16 at `off`.
    pub fn le16(b: &[u8], off: usize) -> Option<u16> {
        Some(u16::from_le_bytes(
            b.get(off..off.checked_add(2)?)?.try_into().ok()?,
        ))
    }
    /// Little-endian u32 at `off`.
    pub fn le32(b: &[u8], off: usize) -> Option<u32> {
        Some(u32::from_le_bytes(
            b.get(off..off.checked_add(4)?)?.try_into().ok()?,
        ))
    }
    /// Little-endian u64 at `off`.
    pub fn le64(b: &[u8], off: usize) -> Option<u64> {
        Some(u64::from_le_bytes(
            b.get(off..off.checked_add(8)?)?.try_into().ok()?,
        ))
    }
}
