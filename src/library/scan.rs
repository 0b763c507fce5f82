//! Scanning the media dir: every file gets an id, a probe and a decision.

use super::{decide, probe, sidecar, MediaInfo, MediaItem};
use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// The scanned library, in memory: items in path order and an index by id.
/// An item is replaced when its file is found changed.
#[derive(Debug, Default)]
pub struct Library {
    inner: RwLock<Items>,
    /// The media dir, canonical.
    root: PathBuf,
    /// Discoverer timeout per file.
    probe_timeout: Duration,
}

#[derive(Debug, Default)]
struct Items {
    items: Vec<Arc<MediaItem>>,
    by_id: HashMap<Uuid, usize>,
}

/// A library item whose file is no longer on disk.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path} is no longer on disk")]
pub struct MediaGone {
    /// The item's path relative to the media dir.
    pub path: String,
}

impl Library {
    /// Builds a library of `items` (sorted by path here) under `root`.
    pub fn new(root: PathBuf, mut items: Vec<MediaItem>, probe_timeout: Duration) -> Self {
        items.sort_by(|a, b| a.path.cmp(&b.path));
        let by_id = items.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
        Library {
            inner: RwLock::new(Items {
                items: items.into_iter().map(Arc::new).collect(),
                by_id,
            }),
            root,
            probe_timeout,
        }
    }

    /// Every item, in path order.
    pub fn items(&self) -> Vec<Arc<MediaItem>> {
        self.inner.read().expect("library lock").items.clone()
    }

    /// The item with this id, if any.
    pub fn get(&self, id: &Uuid) -> Option<Arc<MediaItem>> {
        let inner = self.inner.read().expect("library lock");
        inner.by_id.get(id).map(|&i| inner.items[i].clone())
    }

    /// `item` as its file is now: the same item if its size and
    /// modification time are unchanged, else a fresh probe of it (which
    /// replaces it in the library).
    ///
    /// # Errors
    /// [`MediaGone`] when the file is no longer there.
    pub async fn refresh(&self, item: Arc<MediaItem>) -> Result<Arc<MediaItem>, MediaGone> {
        let gone = || MediaGone {
            path: item.path.clone(),
        };
        let meta = tokio::fs::metadata(&item.abs_path)
            .await
            .map_err(|_| gone())?;
        if !meta.is_file() {
            return Err(gone());
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if meta.len() == item.size_bytes && modified == item.modified {
            return Ok(item);
        }
        tracing::info!(path = %item.path, "file changed since the scan: probing it again");
        let fresh =
            Arc::new(probe_item(&self.root, item.abs_path.clone(), self.probe_timeout).await);
        let mut inner = self.inner.write().expect("library lock");
        if let Some(&i) = inner.by_id.get(&fresh.id) {
            inner.items[i] = fresh.clone();
        }
        Ok(fresh)
    }
}

/// Lists every regular, non-hidden file under `dir`, recursively.
fn list_files(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| match e {
            Ok(e) => Some(e),
            Err(err) => {
                tracing::warn!(error = %err, "skipping unreadable entry");
                None
            }
        })
        .filter(|e| e.file_type().is_file())
        // Subtitle files belong to the media file they sit beside.
        .filter(|e| !sidecar::is_subtitle_file(e.path()))
        .map(|e| e.into_path())
        .collect()
}

/// Scans `dir` recursively and probes every file with the Discoverer,
/// `concurrency` at a time on blocking threads, each bounded by `timeout`.
///
/// # Errors
/// Fails only when `dir` itself cannot be read; a file that cannot be probed
/// is listed with `playable: false` and the reason.
pub async fn scan(dir: &Path, timeout: Duration, concurrency: usize) -> anyhow::Result<Library> {
    let dir = tokio::fs::canonicalize(dir)
        .await
        .with_context(|| format!("media dir {} is not readable", dir.display()))?;
    let root = dir.clone();
    let files = tokio::task::spawn_blocking(move || list_files(&root)).await?;
    tracing::info!(dir = %dir.display(), files = files.len(), "probing media");
    let started = std::time::Instant::now();

    let items: Vec<MediaItem> = stream::iter(files)
        .map(|path| {
            let dir = dir.clone();
            async move { probe_item(&dir, path, timeout).await }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;

    let playable = items.iter().filter(|i| i.playable).count();
    tracing::info!(
        items = items.len(),
        playable,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "library ready"
    );
    Ok(Library::new(dir, items, timeout))
}

/// Probes the file at `path` (under `dir`) with a bound of `timeout` and
/// makes its library item.
pub async fn probe_item(dir: &Path, path: PathBuf, timeout: Duration) -> MediaItem {
    let meta = tokio::fs::metadata(&path).await.ok();
    let probe_path = path.clone();
    // The Discoverer has its own timeout; the outer one guards against a
    // demuxer that ignores it.
    let info = match tokio::time::timeout(
        timeout + Duration::from_secs(5),
        tokio::task::spawn_blocking(move || {
            let mut info = probe::probe_file(&probe_path, timeout);
            probe::add_container_flags(&mut info, &probe_path);
            let embedded = info.subtitles.len();
            info.subtitles.extend(sidecar::find(&probe_path, embedded));
            info
        }),
    )
    .await
    {
        Ok(Ok(info)) => info,
        Ok(Err(join)) => MediaInfo {
            probe_error: Some(format!("probe crashed: {join}")),
            ..Default::default()
        },
        Err(_) => MediaInfo {
            probe_error: Some(format!("timed out after {timeout:?}")),
            ..Default::default()
        },
    };
    let item = MediaItem::from_probe(
        dir,
        &path,
        meta.as_ref().map(|m| m.len()).unwrap_or(0),
        meta.and_then(|m| m.modified().ok())
            .unwrap_or(SystemTime::UNIX_EPOCH),
        &info,
        decide(&info),
    );
    tracing::debug!(path = %item.path, playback = ?item.playback, reasons = ?item.reasons, "probed");
    item
}
