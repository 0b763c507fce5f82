//! A patch: bytes to put in place of a file's own as it is read
//! ([`SourcePatch`]). Which files need which is in [`super::fixes`].

/// Bytes to put at a file offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePatch {
    /// Byte offset in the file.
    pub offset: u64,
    /// The bytes that replace the file's there (as many as they are).
    pub bytes: Vec<u8>,
}

impl SourcePatch {
    /// Where it ends (exclusive).
    pub fn end(&self) -> u64 {
        self.offset + self.bytes.len() as u64
    }

    /// Writes the part of it that falls in `buf`, which holds the file's
    /// bytes from `start` on.
    pub fn apply_to(&self, start: u64, buf: &mut [u8]) {
        let len = buf.len() as u64;
        if start >= self.end() || start + len <= self.offset {
            return;
        }
        let from = self.offset.max(start);
        let to = self.end().min(start + len);
        let src = &self.bytes[(from - self.offset) as usize..(to - self.offset) as usize];
        buf[(from - start) as usize..(to - start) as usize].copy_from_slice(src);
    }
}
