//! Recently served segments kept in memory, so that a segment many
//! players fetch (viewers of one title share every segment) is read from
//! disk once and then answered from memory: no trip through tokio's
//! blocking pool, no read per chunk.
//!
//! Measured with `scripts/bench.sh` serving (1.1 MB segment, 64
//! connections, docs/benchmarks.md): streamed from the file in 256 KiB
//! chunks, hlsd served 0.74× nginx's requests/s with 1.42× its p99; the
//! figures with this cache are in docs/benchmarks.md.
//!
//! A segment's bytes never change for its path (the store's key names
//! everything that decides them), so an entry is never stale; it goes
//! when the store drops the segment or when newer ones need the room
//! (quick_cache's CLOCK-Pro, weighted by length).

use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Weighs an entry by its length in bytes.
#[derive(Clone)]
struct ByLength;

impl quick_cache::Weighter<PathBuf, Bytes> for ByLength {
    fn weight(&self, _path: &PathBuf, bytes: &Bytes) -> u64 {
        bytes.len().max(1) as u64
    }
}

/// The share of the cache one segment may take: a larger one is streamed
/// from its file instead.
const LARGEST_SHARE: u64 = 8;

/// Recently served segments by path, at most `capacity_bytes` of them.
#[derive(Clone)]
pub struct MemoryCache {
    cache: Option<Arc<quick_cache::sync::Cache<PathBuf, Bytes, ByLength>>>,
    largest_bytes: u64,
}

impl MemoryCache {
    /// A cache of at most `capacity_bytes` (0: none, every segment is
    /// streamed from its file).
    pub fn new(capacity_bytes: u64) -> Self {
        let cache = (capacity_bytes > 0).then(|| {
            // quick_cache sizes its table by an estimate of the entries: a
            // segment is about a megabyte.
            let estimated = (capacity_bytes / 1_000_000).max(16) as usize;
            Arc::new(quick_cache::sync::Cache::with_weighter(
                estimated,
                capacity_bytes,
                ByLength,
            ))
        });
        MemoryCache {
            cache,
            largest_bytes: capacity_bytes / LARGEST_SHARE,
        }
    }

    /// The bytes of the segment at `path`, if they are held.
    pub fn get(&self, path: &Path) -> Option<Bytes> {
        self.cache.as_ref()?.get(path)
    }

    /// Whether a segment of `len` bytes is kept.
    pub fn keeps(&self, len: u64) -> bool {
        self.cache.is_some() && len <= self.largest_bytes
    }

    /// Keeps `bytes` as the segment at `path`.
    pub fn insert(&self, path: PathBuf, bytes: Bytes) {
        if let Some(cache) = &self.cache {
            cache.insert(path, bytes);
        }
    }

    /// Forgets the segment at `path`.
    pub fn remove(&self, path: &Path) {
        if let Some(cache) = &self.cache {
            cache.remove(path);
        }
    }

    /// Forgets every segment.
    pub fn clear(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    /// Bytes held.
    pub fn weight(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_nothing_too_large() {
        let cache = MemoryCache::new(8_000);
        assert!(cache.keeps(1_000));
        assert!(!cache.keeps(1_001), "an eighth of the capacity at most");
        for i in 0..20 {
            cache.insert(
                PathBuf::from(format!("/s/{i}")),
                Bytes::from(vec![0u8; 1_000]),
            );
        }
        assert!(cache.weight() <= 8_000, "{}", cache.weight());
        cache.insert(PathBuf::from("/s/x"), Bytes::from_static(b"abc"));
        assert_eq!(cache.get(Path::new("/s/x")).as_deref(), Some(&b"abc"[..]));
        cache.remove(Path::new("/s/x"));
        assert_eq!(cache.get(Path::new("/s/x")), None);
    }

    #[test]
    fn a_cache_of_zero_bytes_keeps_nothing() {
        let cache = MemoryCache::new(0);
        assert!(!cache.keeps(1));
        cache.insert(PathBuf::from("/s/0"), Bytes::from_static(b"abc"));
        assert_eq!(cache.get(Path::new("/s/0")), None);
    }
}
