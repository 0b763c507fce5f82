//! The segment store: every finished segment of every rendition, on disk
//! once, whoever asked for it, within a disk budget.
//!
//! A segment is keyed by its item's file identity (media id, size and
//! modification time: a replaced file never serves old bytes), its
//! rendition's key (everything that decides its bytes,
//! [`crate::rendition::Rendition::key`]) and its index on the item's
//! timeline; it lives at `{transcode_dir}/store/{title}/{rendition}/segment_NNNNN.ts`.
//! Producers write a `.part` file beside it and move it in when it is
//! complete, so only whole segments are ever served. The index is in
//! memory: the store is a cache, emptied at start-up and at shutdown.
//!
//! Past the budget, the least recently used segments that are in no
//! viewer's window are evicted (the producer supervisor says which are
//! protected); an evicted segment is made again if asked for.

mod memory;

pub use memory::MemoryCache;

use crate::policy::{eviction_order, StoredView};
use crate::timeline::segment_name;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where a segment is in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentKey {
    /// The item's file identity ([`title_key`]).
    pub title: Arc<str>,
    /// The rendition's key.
    pub rendition: Arc<str>,
    /// The segment's index on the item's timeline.
    pub index: usize,
}

/// The store's folder name for a file: media id, size and modification
/// time in nanoseconds.
pub fn title_key(
    media_id: &uuid::Uuid,
    size_bytes: u64,
    modified: std::time::SystemTime,
) -> Arc<str> {
    let mtime_ns = modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{size_bytes}-{mtime_ns}", media_id.simple()).into()
}

/// The index: every segment, how many each rendition of each title has,
/// and what each rendition has made since start-up.
#[derive(Debug, Default)]
struct Segments {
    entries: HashMap<SegmentKey, Entry>,
    counts: HashMap<(Arc<str>, Arc<str>), usize>,
    made: HashMap<(Arc<str>, Arc<str>), Made>,
}

/// What one rendition has made since start-up, evicted segments included.
#[derive(Debug, Default, Clone, Copy)]
struct Made {
    segments: usize,
    bytes: u64,
    duration: Duration,
}

impl Segments {
    fn insert(&mut self, key: SegmentKey, entry: Entry) -> Option<Entry> {
        let counted = (key.title.clone(), key.rendition.clone());
        let made = self.made.entry(counted.clone()).or_default();
        made.segments += 1;
        made.bytes += entry.bytes;
        made.duration += entry.duration;
        let old = self.entries.insert(key, entry);
        if old.is_none() {
            *self.counts.entry(counted).or_default() += 1;
        }
        old
    }

    fn remove(&mut self, key: &SegmentKey) -> Option<Entry> {
        let old = self.entries.remove(key)?;
        let counted = (key.title.clone(), key.rendition.clone());
        if let Some(n) = self.counts.get_mut(&counted) {
            *n -= 1;
            if *n == 0 {
                self.counts.remove(&counted);
            }
        }
        Some(old)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    bytes: u64,
    duration: Duration,
    last_used: u64,
}

/// What [`SegmentStore::stats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Segments held.
    pub segments: usize,
    /// Bytes held.
    pub bytes: u64,
    /// The budget in bytes, if any.
    pub limit_bytes: Option<u64>,
    /// Segments evicted for the budget since start-up.
    pub evicted: u64,
}

/// Finished segments on disk, their sizes and when they were last used.
pub struct SegmentStore {
    root: PathBuf,
    limit: Option<u64>,
    segments: Mutex<Segments>,
    used: AtomicU64,
    evicted: AtomicU64,
    tick: AtomicU64,
    /// Woken when an insert passes the budget.
    over: tokio::sync::Notify,
    /// Recently served segments, in memory.
    memory: MemoryCache,
}

/// A stored segment's bytes, as [`SegmentStore::read`] gives them.
pub enum SegmentBytes {
    /// Held in memory (the cache had them, or they were just read whole).
    Memory(bytes::Bytes),
    /// Too large for the cache: the open file and its length in bytes, to
    /// stream.
    File(tokio::fs::File, u64),
}

impl SegmentStore {
    /// A store under `root` holding at most `limit` bytes (`None`: no
    /// budget). Nothing is created until a segment is written.
    pub fn new(root: PathBuf, limit: Option<u64>) -> Self {
        SegmentStore {
            root,
            limit,
            segments: Mutex::new(Segments::default()),
            used: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            tick: AtomicU64::new(0),
            over: tokio::sync::Notify::new(),
            memory: MemoryCache::new(0),
        }
    }

    /// The same store, keeping up to `capacity_bytes` of recently served
    /// segments in memory ([`MemoryCache`]; 0: none).
    pub fn with_memory(mut self, capacity_bytes: u64) -> Self {
        self.memory = MemoryCache::new(capacity_bytes);
        self
    }

    /// The bytes of the stored segment at `path` (from [`Self::lookup`]):
    /// from memory, else read whole off the async threads and kept there,
    /// else (too large to keep) the file opened to stream.
    ///
    /// # Errors
    /// The file cannot be opened or read (evicted since the look-up).
    pub async fn read(&self, path: &Path) -> std::io::Result<SegmentBytes> {
        if let Some(bytes) = self.memory.get(path) {
            return Ok(SegmentBytes::Memory(bytes));
        }
        let memory = self.memory.clone();
        let owned = path.to_path_buf();
        let read = tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut file = std::fs::File::open(&owned)?;
            let len = file.metadata()?.len();
            if !memory.keeps(len) {
                return Ok(SegmentBytes::File(tokio::fs::File::from_std(file), len));
            }
            let mut data = Vec::with_capacity(len as usize);
            file.read_to_end(&mut data)?;
            let bytes = bytes::Bytes::from(data);
            memory.insert(owned, bytes.clone());
            Ok(SegmentBytes::Memory(bytes))
        });
        read.await.map_err(std::io::Error::other)?
    }

    /// Bytes of segments held in memory.
    pub fn memory_bytes(&self) -> u64 {
        self.memory.weight()
    }

    /// Its folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The budget in bytes, if any.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Bytes held.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// Segments held, bytes held, the budget, evictions so far.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            segments: self.lock().entries.len(),
            bytes: self.used(),
            limit_bytes: self.limit,
            evicted: self.evicted.load(Ordering::SeqCst),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Segments> {
        self.segments.lock().expect("store lock")
    }

    fn next_tick(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::SeqCst)
    }

    /// The folder of one rendition of one title.
    pub fn dir(&self, title: &str, rendition: &str) -> PathBuf {
        self.root.join(title).join(rendition)
    }

    /// Where the init segment of a fragmented-MP4 rendition is (or will
    /// be): beside its segments, outside the index and the budget (a few
    /// hundred bytes, written once, gone with the rendition's folder).
    pub fn init_path(&self, title: &str, rendition: &str) -> PathBuf {
        self.dir(title, rendition)
            .join(crate::timeline::INIT_SEGMENT_NAME)
    }

    /// Where segment `key` is (or will be) on disk.
    pub fn path(&self, key: &SegmentKey) -> PathBuf {
        self.dir(&key.title, &key.rendition)
            .join(segment_name(key.index))
    }

    /// The `.part` file producer `producer` writes segment `key` into.
    pub fn part_path(&self, key: &SegmentKey, producer: u64) -> PathBuf {
        self.dir(&key.title, &key.rendition)
            .join(format!("{}.{producer}.part", segment_name(key.index)))
    }

    /// Whether segment `key` is held.
    pub fn contains(&self, key: &SegmentKey) -> bool {
        self.lock().entries.contains_key(key)
    }

    /// The file of segment `key`, if held; counts as a use (for eviction).
    pub fn lookup(&self, key: &SegmentKey) -> Option<PathBuf> {
        let tick = self.next_tick();
        let mut segments = self.lock();
        let entry = segments.entries.get_mut(key)?;
        entry.last_used = tick;
        Some(self.path(key))
    }

    /// The lengths of the segments of one rendition held from index 0 on
    /// without a gap: what a growing (EVENT) playlist lists.
    pub fn ready_prefix(&self, title: &Arc<str>, rendition: &Arc<str>) -> Vec<Duration> {
        let segments = self.lock();
        let mut out = Vec::new();
        loop {
            let key = SegmentKey {
                title: title.clone(),
                rendition: rendition.clone(),
                index: out.len(),
            };
            match segments.entries.get(&key) {
                Some(e) => out.push(e.duration),
                None => return out,
            }
        }
    }

    /// The mean bit rate of the segments one rendition has made since
    /// start-up (evicted ones included), in bits per second, once it has
    /// made at least `min_segments`.
    pub fn measured_bps(
        &self,
        title: &Arc<str>,
        rendition: &Arc<str>,
        min_segments: usize,
    ) -> Option<u64> {
        let segments = self.lock();
        let m = segments.made.get(&(title.clone(), rendition.clone()))?;
        (m.segments >= min_segments.max(1) && !m.duration.is_zero())
            .then(|| (m.bytes as f64 * 8.0 / m.duration.as_secs_f64()) as u64)
    }

    /// How many segments of one rendition are held.
    pub fn count(&self, title: &Arc<str>, rendition: &Arc<str>) -> usize {
        self.lock()
            .counts
            .get(&(title.clone(), rendition.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// Creates the folder of one rendition of one title. Blocking.
    ///
    /// # Errors
    /// The file system's error.
    pub fn ensure_dir(&self, title: &str, rendition: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.dir(title, rendition))
    }

    /// Moves the finished `part` file in as segment `key`, `duration` of
    /// media long (replacing an older copy), and returns its size. Called
    /// from a streaming thread.
    ///
    /// # Errors
    /// The rename's error.
    pub fn insert(&self, key: SegmentKey, part: &Path, duration: Duration) -> std::io::Result<u64> {
        let path = self.path(&key);
        let tick = self.next_tick();
        // Under the lock: a deletion of an evicted copy ([`Self::discard`])
        // never undoes this rename.
        let (bytes, old) = {
            let mut segments = self.lock();
            std::fs::rename(part, &path)?;
            self.memory.remove(&path);
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            let old = segments.insert(
                key,
                Entry {
                    bytes,
                    duration,
                    last_used: tick,
                },
            );
            (bytes, old)
        };
        if let Some(old) = old {
            self.sub(old.bytes);
        }
        let used = self.used.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if self.limit.is_some_and(|l| used > l) {
            self.over.notify_one();
        }
        Ok(bytes)
    }

    fn sub(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    /// Deletes the files of `gone`, segments that left the index, off the
    /// async threads when there are some (a blocking task), each under the
    /// index lock and only if its key was not made again meanwhile.
    fn discard(self: &Arc<Self>, gone: Vec<SegmentKey>) {
        if gone.is_empty() {
            return;
        }
        let store = self.clone();
        let delete = move || {
            for key in gone {
                let segments = store.lock();
                if !segments.entries.contains_key(&key) {
                    let path = store.path(&key);
                    store.memory.remove(&path);
                    let _ = std::fs::remove_file(path);
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(delete)),
            Err(_) => delete(),
        }
    }

    /// Deletes every segment of `renditions` of `title` (a failed
    /// producer's work is not served).
    pub fn remove_renditions(self: &Arc<Self>, title: &str, renditions: &[Arc<str>]) {
        let gone: Vec<(SegmentKey, Entry)> = {
            let mut segments = self.lock();
            let keys: Vec<SegmentKey> = segments
                .entries
                .keys()
                .filter(|k| &*k.title == title && renditions.contains(&k.rendition))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| segments.remove(&k).map(|e| (k, e)))
                .collect()
        };
        for (_, entry) in &gone {
            self.sub(entry.bytes);
        }
        self.discard(gone.into_iter().map(|(k, _)| k).collect());
    }

    /// Whether a new producer may start: under 90 % of the budget, so that
    /// the producers already running have room to go on.
    pub fn admits(&self) -> bool {
        self.limit.is_none_or(|l| self.used() < l / 10 * 9)
    }

    /// Evicts the least recently used segments that `protected` does not
    /// keep until the store is back under 90 % of its budget. Returns how
    /// many went.
    pub fn enforce_budget(self: &Arc<Self>, protected: impl Fn(&SegmentKey) -> bool) -> usize {
        let Some(limit) = self.limit else {
            return 0;
        };
        if self.used() <= limit {
            return 0;
        }
        let target = limit / 10 * 9;
        let victims = {
            let segments = self.lock();
            let views = segments
                .entries
                .iter()
                .map(|(k, e)| StoredView {
                    key: k.clone(),
                    bytes: e.bytes,
                    last_used: e.last_used,
                    protected: protected(k),
                })
                .collect();
            eviction_order(views, self.used(), target)
        };
        let mut gone = Vec::new();
        for key in victims {
            let removed = self.lock().remove(&key);
            if let Some(e) = removed {
                self.sub(e.bytes);
                gone.push(key);
            }
        }
        let evicted = gone.len();
        self.discard(gone);
        if evicted > 0 {
            self.evicted.fetch_add(evicted as u64, Ordering::SeqCst);
            tracing::info!(
                evicted,
                used_bytes = self.used(),
                limit_bytes = limit,
                "disk budget: evicted the least recently used segments"
            );
        }
        evicted
    }

    /// Resolves when an insert has passed the budget.
    pub async fn over_budget(&self) {
        self.over.notified().await
    }

    /// Deletes the store's folder and forgets every segment (at start-up,
    /// for a crashed run's leftovers, and at shutdown). Returns whether
    /// there was a folder. Blocking.
    pub fn clear(&self) -> bool {
        *self.lock() = Segments::default();
        self.memory.clear();
        self.used.store(0, Ordering::SeqCst);
        match std::fs::remove_dir_all(&self.root) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::warn!(dir = %self.root.display(), error = %e, "could not empty the segment store");
                true
            }
        }
    }

    /// Deletes `.part` files of producer `producer` under the folders of
    /// `renditions` of `title` (left when it was torn down mid-segment).
    /// Blocking.
    pub fn remove_parts(&self, title: &str, renditions: &[Arc<str>], producer: u64) {
        let suffix = format!(".{producer}.part");
        for r in renditions {
            let Ok(entries) = std::fs::read_dir(self.dir(title, r)) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(&suffix) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }
}

/// The default disk budget: this share of the free space of the transcode
/// dir's file system at start-up.
pub const DEFAULT_BUDGET_SHARE: f64 = 0.25;

/// [`DEFAULT_BUDGET_SHARE`] of the space free where `dir` is (or its
/// nearest existing parent), in bytes; `None` when it cannot be read.
pub fn default_budget(dir: &Path) -> Option<u64> {
    let mut probe = dir;
    loop {
        if probe.exists() {
            break;
        }
        probe = probe.parent()?;
    }
    let free = fs4::available_space(probe).ok()?;
    Some((free as f64 * DEFAULT_BUDGET_SHARE) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(title: &Arc<str>, index: usize) -> SegmentKey {
        SegmentKey {
            title: title.clone(),
            rendition: "r".into(),
            index,
        }
    }

    fn put(store: &SegmentStore, k: &SegmentKey, bytes: usize) {
        store.ensure_dir(&k.title, &k.rendition).unwrap();
        let part = store.part_path(k, 7);
        std::fs::write(&part, vec![0u8; bytes]).unwrap();
        store
            .insert(k.clone(), &part, Duration::from_secs(6))
            .unwrap();
        assert!(!part.exists(), "moved in");
    }

    #[test]
    fn segments_go_in_whole_and_count_against_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SegmentStore::new(dir.path().join("store"), Some(1000)));
        let t: Arc<str> = "t".into();
        put(&store, &key(&t, 0), 300);
        put(&store, &key(&t, 1), 300);
        assert_eq!(store.used(), 600);
        assert!(store.contains(&key(&t, 1)));
        assert_eq!(store.ready_prefix(&t, &"r".into()).len(), 2);
        assert!(store.lookup(&key(&t, 0)).unwrap().is_file());
        // Replacing a segment does not count it twice.
        put(&store, &key(&t, 1), 250);
        assert_eq!(store.used(), 550);
        assert!(store.admits());
        put(&store, &key(&t, 2), 500);
        assert!(!store.admits(), "past 90 %");
        // Segment 0 was used most recently of 0 and 1; 2 is protected.
        store.lookup(&key(&t, 0));
        let evicted = store.enforce_budget(|k| k.index == 2);
        assert_eq!(evicted, 1);
        assert!(!store.contains(&key(&t, 1)));
        assert!(!store.path(&key(&t, 1)).exists());
        assert_eq!(store.used(), 800);
        assert_eq!(store.stats().evicted, 1);
        store.remove_renditions("t", &["r".into()]);
        assert_eq!(store.used(), 0);
        store.clear();
        assert!(!dir.path().join("store").exists());
    }

    #[test]
    fn leftover_parts_of_a_producer_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentStore::new(dir.path().join("store"), None);
        let t: Arc<str> = "t".into();
        let k = key(&t, 3);
        store.ensure_dir("t", "r").unwrap();
        std::fs::write(store.part_path(&k, 5), b"x").unwrap();
        std::fs::write(store.part_path(&k, 6), b"x").unwrap();
        store.remove_parts("t", &["r".into()], 5);
        assert!(!store.part_path(&k, 5).exists());
        assert!(store.part_path(&k, 6).exists());
    }

    #[test]
    fn the_default_budget_is_a_share_of_the_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let budget = default_budget(&dir.path().join("not/yet/made")).unwrap();
        assert!(budget > 0);
    }
}
