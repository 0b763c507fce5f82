//! Keeping the library in step with the disk: listing (all of it, a
//! folder, or the folders whose mtime changed), the paths the watcher
//! reports, the settle wait of files still being written, the background
//! probe queue, and sidecar subtitles added or removed.

use super::decision::decide;
use super::item::{FileStamp, MediaItem};
use super::live::{Library, FS_WAIT};
use super::scan::{self, Listing};
use super::sidecar;
use super::streams::SubtitleSource;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// What `POST /api/v1/library/scan` did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ScanReport {
    /// Media files found in the scanned folder.
    pub files: usize,
    /// New or changed files queued for probing (or waiting to settle).
    pub queued: usize,
    /// Items removed because their file is gone.
    pub removed: usize,
}

impl Library {
    /// Lists `sub` (a folder or file relative to the media dir; `None`:
    /// all of it) and brings the library in step with what is there.
    ///
    /// # Errors
    /// A `sub` that is absolute or climbs out of the media dir.
    pub async fn scan(self: &Arc<Self>, sub: Option<&str>) -> Result<ScanReport, String> {
        let sub = match sub.map(str::trim).filter(|s| !s.is_empty() && *s != "/") {
            None => None,
            Some(s) => {
                let p = Path::new(s);
                if p.components()
                    .any(|c| !matches!(c, std::path::Component::Normal(_)))
                {
                    return Err(format!(
                        "path must be relative to the media dir, without '..': {s:?}"
                    ));
                }
                Some(p.to_path_buf())
            }
        };
        Ok(self.rescan(sub.as_deref()).await)
    }

    /// Whether the media dir looks unmounted: gone, or empty while the
    /// library lists items. A network share or disk that drops out must
    /// not empty the catalogue (peers' users lose their libraries that
    /// way); files go one by one only while the media dir is there.
    /// Off the async threads, and within [`FS_WAIT`]: a share that does
    /// not answer counts as unmounted.
    pub(super) async fn media_dir_missing(&self) -> bool {
        let root = self.root.clone();
        let listed = tokio::time::timeout(
            FS_WAIT,
            tokio::task::spawn_blocking(move || {
                std::fs::read_dir(&root).map_or(true, |mut d| d.next().is_none())
            }),
        )
        .await;
        let empty = !matches!(listed, Ok(Ok(false)));
        empty && self.items.read().expect("library lock").counts().0 > 0
    }

    /// Lists `sub` (all when `None`) and applies what was found.
    pub(super) async fn rescan(self: &Arc<Self>, sub: Option<&Path>) -> ScanReport {
        self.figures.scan();
        if self.media_dir_missing().await {
            tracing::warn!(dir = %self.root.display(), "the media dir is missing or empty (unmounted?): keeping the library as it is");
            return ScanReport::default();
        }
        let target = sub.map_or_else(|| self.root.clone(), |s| self.root.join(s));
        let rel = self.relative(&target);
        let meta = tokio::fs::metadata(&target).await;
        let listing = match meta {
            Ok(m) if m.is_dir() => {
                let t = target.clone();
                tokio::task::spawn_blocking(move || scan::list(&t))
                    .await
                    .unwrap_or_default()
            }
            Ok(m) if m.is_file() => {
                let files: Vec<_> = scan::is_media_file(&target)
                    .then(|| (target.clone(), FileStamp::of(&m)))
                    .into_iter()
                    .collect();
                return ScanReport {
                    files: files.len(),
                    queued: self.apply_files(files),
                    removed: 0,
                };
            }
            _ => {
                return ScanReport {
                    removed: self.forget_under(&rel),
                    ..Default::default()
                }
            }
        };
        let on_disk: HashSet<String> = listing
            .files
            .iter()
            .map(|(p, _)| self.relative(p))
            .collect();
        let missing: Vec<String> = self
            .items
            .read()
            .expect("library lock")
            .paths_under(&rel)
            .into_iter()
            .filter(|p| !on_disk.contains(p))
            .collect();
        let removed = missing.iter().filter(|p| self.forget(p)).count();
        self.dirs.lock().expect("dirs").extend(listing.dirs.clone());
        let files = listing.files.len();
        ScanReport {
            files,
            queued: self.apply_listing(listing).await,
            removed,
        }
    }

    /// Lists the folders whose mtime changed since they were last listed
    /// (the polling fallback and the safety net) and applies what changed.
    pub(super) async fn poll_changed(self: &Arc<Self>) {
        self.figures.scan();
        if self.media_dir_missing().await {
            tracing::warn!(dir = %self.root.display(), "the media dir is missing or empty (unmounted?): keeping the library as it is");
            return;
        }
        let known = self.dirs.lock().expect("dirs").clone();
        let Ok((listing, changed, gone)) =
            tokio::task::spawn_blocking(move || scan::list_changed(&known)).await
        else {
            return;
        };
        {
            let mut dirs = self.dirs.lock().expect("dirs");
            for d in &gone {
                dirs.remove(d);
            }
            dirs.extend(listing.dirs.clone());
        }
        for d in &gone {
            let rel = self.relative(d);
            self.forget_under(&rel);
        }
        let on_disk: HashSet<PathBuf> = listing.files.iter().map(|(p, _)| p.clone()).collect();
        for d in &changed {
            let in_dir = self
                .items
                .read()
                .expect("library lock")
                .paths_in(&self.relative(d));
            for p in in_dir {
                if !on_disk.contains(&self.root.join(&p)) {
                    self.forget(&p);
                }
            }
        }
        self.apply_listing(listing).await;
    }

    /// Applies a listing off the async threads (its sidecars are read and
    /// the catalogue asked): [`Self::check_sidecars`], then
    /// [`Self::apply_files`]; how many files were new or changed.
    async fn apply_listing(self: &Arc<Self>, listing: Listing) -> usize {
        let lib = self.clone();
        tokio::task::spawn_blocking(move || {
            lib.check_sidecars(&listing);
            lib.apply_files(listing.files)
        })
        .await
        .unwrap_or(0)
    }

    /// [`Self::refresh_sidecars_in`], off the async threads.
    async fn refresh_sidecars_later(self: &Arc<Self>, dir: &Path) {
        let (lib, dir) = (self.clone(), dir.to_path_buf());
        let _ = tokio::task::spawn_blocking(move || lib.refresh_sidecars_in(&dir)).await;
    }

    /// Applies one path the watcher reported: a file added, changed or
    /// removed, or a folder.
    pub(super) async fn observe(self: &Arc<Self>, path: &Path) {
        if path
            .ancestors()
            .any(|a| a != self.root && a.starts_with(&self.root) && scan::is_hidden(a))
        {
            return;
        }
        let meta = tokio::fs::metadata(path).await;
        let missing = meta.is_err() && (path == self.root || self.media_dir_missing().await);
        match meta {
            Err(_) if missing => {
                tracing::warn!(dir = %self.root.display(), "the media dir is missing or empty (unmounted?): keeping the library as it is");
            }
            Err(_) => {
                let rel = self.relative(path);
                if !self.forget(&rel) {
                    self.forget_under(&rel);
                }
                self.dirs.lock().expect("dirs").remove(path);
                if sidecar::is_subtitle_file(path) {
                    self.refresh_sidecars_later(path.parent().unwrap_or(&self.root))
                        .await;
                }
            }
            Ok(m) if m.is_dir() => {
                let rel = super::id::decode(&self.relative(path));
                self.rescan(Some(&rel)).await;
            }
            Ok(m) if m.is_file() => {
                if scan::is_media_file(path) {
                    self.apply_files(vec![(path.to_path_buf(), FileStamp::of(&m))]);
                } else if sidecar::is_subtitle_file(path) {
                    self.refresh_sidecars_later(path.parent().unwrap_or(&self.root))
                        .await;
                }
            }
            Ok(_) => {}
        }
    }

    /// Queues the files that are new or changed, directly when their
    /// mtime is older than the settle time, else once it has held still.
    /// Returns how many were new or changed.
    pub(super) fn apply_files(&self, files: Vec<(PathBuf, FileStamp)>) -> usize {
        let now = SystemTime::now();
        let mut changed = 0;
        for (abs, stamp) in files {
            let rel = self.relative(&abs);
            let same = self
                .items
                .read()
                .expect("library lock")
                .at(&rel)
                .is_some_and(|i| i.probed && i.stamp == stamp);
            if same {
                continue;
            }
            changed += 1;
            let age = now.duration_since(stamp.modified()).unwrap_or_default();
            if age >= self.settle {
                self.enqueue(abs, stamp);
            } else {
                self.unsettled
                    .lock()
                    .expect("unsettled")
                    .insert(abs, (stamp, Instant::now()));
            }
        }
        changed
    }

    /// Queues the files whose size and mtime held still for the settle
    /// time; restarts the wait of those that changed.
    pub(super) fn settle_tick(&self) {
        let due: Vec<(PathBuf, FileStamp, Instant)> = self
            .unsettled
            .lock()
            .expect("unsettled")
            .iter()
            .map(|(p, (s, t))| (p.clone(), *s, *t))
            .collect();
        for (path, stamp, since) in due {
            let now = std::fs::metadata(&path).ok().filter(|m| m.is_file());
            let mut unsettled = self.unsettled.lock().expect("unsettled");
            match now.map(|m| FileStamp::of(&m)) {
                None => {
                    unsettled.remove(&path);
                }
                Some(s) if s != stamp => {
                    unsettled.insert(path, (s, Instant::now()));
                }
                Some(_) if since.elapsed() >= self.settle => {
                    // Listed as pending before it stops counting as
                    // settling, so it is never counted as neither.
                    drop(unsettled);
                    self.enqueue(path.clone(), stamp);
                    self.unsettled.lock().expect("unsettled").remove(&path);
                }
                Some(_) => {}
            }
        }
    }

    /// Puts `abs` (as `stamp` describes it now) in the background probe
    /// queue (once), listing it as pending if it is not listed yet.
    pub(super) fn enqueue(&self, abs: PathBuf, stamp: FileStamp) {
        if !self.queued.lock().expect("queued").insert(abs.clone()) {
            return;
        }
        let rel = self.relative(&abs);
        {
            let mut items = self.items.write().expect("library lock");
            if items.at(&rel).is_none() {
                items.insert(Arc::new(MediaItem::pending(&self.root, &abs, stamp)));
            }
        }
        let _ = self.queue.send(abs);
    }

    /// Re-reads the sidecars of the items in folders whose subtitle files
    /// differ from the sidecars their items list.
    pub(super) fn check_sidecars(&self, listing: &Listing) {
        let mut dirs: HashSet<&Path> = listing.subtitles.keys().map(PathBuf::as_path).collect();
        // Folders where subtitles were removed list none.
        for (file, _) in &listing.files {
            if let Some(parent) = file.parent() {
                dirs.insert(parent);
            }
        }
        for dir in dirs {
            let names: HashSet<&str> = listing
                .subtitles
                .get(dir)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let stale: Vec<Arc<MediaItem>> = self
                .probed_in(dir)
                .into_iter()
                .filter(|i| {
                    let stem = i
                        .abs_path
                        .file_stem()
                        .map(super::id::name_text)
                        .unwrap_or_default();
                    let want: HashSet<&str> = names
                        .iter()
                        .copied()
                        .filter(|n| sidecar::parse(&stem, n).is_some())
                        .collect();
                    let have: HashSet<&str> = i
                        .subtitles
                        .iter()
                        .filter_map(|s| match &s.source {
                            SubtitleSource::Sidecar { file, .. } => Some(file.as_str()),
                            _ => None,
                        })
                        .collect();
                    want != have
                })
                .collect();
            for item in stale {
                self.refresh_sidecars(&item);
            }
        }
    }

    /// The probed items directly in folder `dir`.
    fn probed_in(&self, dir: &Path) -> Vec<Arc<MediaItem>> {
        let items = self.items.read().expect("library lock");
        items
            .paths_in(&self.relative(dir))
            .iter()
            .filter_map(|p| items.at(p).cloned())
            .filter(|i| i.probed)
            .collect()
    }

    /// Re-reads the sidecars of every item in folder `dir`.
    pub(super) fn refresh_sidecars_in(&self, dir: &Path) {
        for item in self.probed_in(dir) {
            self.refresh_sidecars(&item);
        }
    }

    /// Replaces `item`'s sidecar subtitles with those beside its file now.
    pub(super) fn refresh_sidecars(&self, item: &MediaItem) {
        let Some(row) = self
            .catalogue
            .load_one(&item.path)
            .ok()
            .flatten()
            .filter(|r| r.stamp == item.stamp)
        else {
            return;
        };
        let mut info = row.info.clone();
        info.subtitles
            .retain(|s| matches!(s.source, SubtitleSource::Embedded { .. }));
        let embedded = info.subtitles.len();
        info.subtitles
            .extend(sidecar::find(&item.abs_path, embedded));
        if info.subtitles == row.info.subtitles {
            return;
        }
        tracing::info!(path = %item.path, subtitles = info.subtitles.len(), "sidecar subtitles changed");
        self.catalogue.put_info(&item.path, &info);
        let fresh =
            MediaItem::from_probe(&self.root, &item.abs_path, item.stamp, &info, decide(&info));
        self.items
            .write()
            .expect("library lock")
            .insert(Arc::new(fresh));
    }
}
