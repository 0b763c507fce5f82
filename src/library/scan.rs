//! Scanning the media dir: every file gets an id, a probe and a decision.

use super::{decide, id, probe, MediaInfo, MediaItem};
use anyhow::Context;
use futures_util::stream::{self, StreamExt};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use uuid::Uuid;

/// The scanned library, in memory: items in path order and an index by id.
#[derive(Debug, Default)]
pub struct Library {
    items: Vec<MediaItem>,
    by_id: HashMap<Uuid, usize>,
}

impl Library {
    /// Builds a library from items (sorted by path here).
    pub fn new(mut items: Vec<MediaItem>) -> Self {
        items.sort_by(|a, b| a.path.cmp(&b.path));
        let by_id = items.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
        Library { items, by_id }
    }

    /// Every item, in path order.
    pub fn items(&self) -> &[MediaItem] {
        &self.items
    }

    /// The item with this id, if any.
    pub fn get(&self, id: &Uuid) -> Option<&MediaItem> {
        self.by_id.get(id).map(|&i| &self.items[i])
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
    Ok(Library::new(items))
}

async fn probe_item(dir: &Path, path: PathBuf, timeout: Duration) -> MediaItem {
    let relative = path.strip_prefix(dir).unwrap_or(&path).to_path_buf();
    let meta = tokio::fs::metadata(&path).await.ok();
    let probe_path = path.clone();
    // The Discoverer has its own timeout; the outer one guards against a
    // demuxer that ignores it.
    let info = match tokio::time::timeout(
        timeout + Duration::from_secs(5),
        tokio::task::spawn_blocking(move || probe::probe_file(&probe_path, timeout)),
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
    let decision = decide(&info);
    let item = MediaItem {
        id: id::media_id(&relative),
        path: id::portable_path(&relative),
        size_bytes: meta.as_ref().map(|m| m.len()).unwrap_or(0),
        duration_s: info
            .duration
            .map(|d| (d.as_secs_f64() * 1000.0).round() / 1000.0),
        container: info.container.clone(),
        video: info.video.clone(),
        audio: info.audio.clone(),
        subtitles: info.subtitles.clone(),
        playable: decision.playback.is_some(),
        playback: decision.playback,
        reasons: decision.reasons.clone(),
        abs_path: path,
        modified: meta
            .and_then(|m| m.modified().ok())
            .unwrap_or(SystemTime::UNIX_EPOCH),
        decision,
    };
    tracing::debug!(path = %item.path, playback = ?item.playback, reasons = ?item.reasons, "probed");
    item
}
