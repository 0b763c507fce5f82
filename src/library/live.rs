//! The live library: what is served, loaded from the catalogue at start-up
//! and kept in step with the disk in the background.
//!
//! * At start-up the catalogue's rows become items at once; the server
//!   serves while the media dir is listed and compared with them.
//! * Only new and changed files (size, mtime or inode differ, or an older
//!   [`PROBE_VERSION`]) are probed, by [`Prober`] children, once their
//!   size and mtime have held still for the settle time (`--settle`).
//! * A request for an item not probed yet, or whose file changed, probes
//!   it at once, ahead of the background queue.
//! * Files that went away leave the library and the catalogue; their ids
//!   answer `media_gone`.

use super::catalogue::{Catalogue, Row, PROBE_VERSION};
use super::decision::decide;
use super::figures::{Figures, LibraryFigures};
use super::item::{FileStamp, MediaItem};
use super::items::{Items, Lookup, Page, PageQuery};
use super::prober::{Outcome, Prober};
use super::{id, sidecar};
use crate::config::LibrarySettings;
use anyhow::{bail, Context};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;
use uuid::Uuid;

/// How long a request waits for the media dir's file system (a `stat`, a
/// listing) before it answers without it: a dead network share hangs
/// those calls for minutes.
pub(super) const FS_WAIT: Duration = Duration::from_secs(5);

/// Another node is probing a file: the background queue looks at it
/// again later ([`Library::probe_or_defer`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Deferred;

/// What a node does about a file it is about to probe (decided by
/// [`Library::turn`], `cluster.rs`).
pub(super) enum Turn {
    /// Another node's result for this content: listed, nothing probed.
    Taken(Arc<MediaItem>),
    /// This node holds the claim: probe it.
    Probe,
    /// Another node holds the claim (a background probe): look again
    /// later.
    Deferred,
}

/// Why an item cannot be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unavailable {
    /// No item has this id.
    #[error("no media {0}")]
    NotFound(String),
    /// The item's file was deleted: its path.
    #[error("{0} is no longer on disk")]
    Gone(String),
}

/// The library. See the module doc.
pub struct Library {
    pub(super) root: PathBuf,
    /// Random per process: with the generation, the list's `ETag`.
    pub(super) instance: u32,
    pub(super) items: RwLock<Items>,
    pub(super) catalogue: Arc<Catalogue>,
    pub(super) prober: Prober,
    pub(super) figures: Figures,
    pub(super) settle: Duration,
    /// Whether the media dir is watched (else only polled).
    pub(super) watch: bool,
    /// How often folders are listed again (`--rescan-interval`).
    pub(super) rescan_interval: Duration,
    pub(super) probe_concurrency: usize,
    pub(super) queue: mpsc::UnboundedSender<PathBuf>,
    pub(super) queue_rx: Mutex<Option<mpsc::UnboundedReceiver<PathBuf>>>,
    pub(super) queued: Mutex<HashSet<PathBuf>>,
    pub(super) unsettled: Mutex<HashMap<PathBuf, (FileStamp, Instant)>>,
    /// Folders and their mtimes at their last listing (for polling).
    pub(super) dirs: Mutex<HashMap<PathBuf, SystemTime>>,
    /// Serialises probes a viewer waits for, so two requests for one
    /// pending item probe it once.
    pub(super) urgent: tokio::sync::Mutex<()>,
    /// This node's name in probe claims (`--node-name`).
    pub(super) node: String,
    /// After how long another node's probe claim is taken over.
    pub(super) claim_timeout: Duration,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library").field("root", &self.root).finish()
    }
}

impl Library {
    /// Opens the catalogue under `config.data_dir` and lists its items.
    /// Nothing is probed or listed on disk here: see [`Library::start`].
    /// Blocking (the file system and SQLite).
    ///
    /// # Errors
    /// Fails when the media dir cannot be read, the data dir is inside it,
    /// or the catalogue cannot be opened.
    pub fn open(config: &LibrarySettings) -> anyhow::Result<Library> {
        let started = Instant::now();
        let root = std::fs::canonicalize(&config.media_dir)
            .with_context(|| format!("media dir {} is not readable", config.media_dir.display()))?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let data_dir = std::fs::canonicalize(&config.data_dir)?;
        if data_dir.starts_with(&root) {
            bail!(
                "the data dir {} is inside the media dir {}: choose another --data-dir",
                data_dir.display(),
                root.display()
            );
        }
        let catalogue = Arc::new(Catalogue::open(&config.database(), &data_dir, &root)?);
        let rows = catalogue.load()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let library = Library {
            root: root.clone(),
            instance: Uuid::new_v4().as_u128() as u32,
            items: RwLock::new(Items::default()),
            catalogue,
            prober: Prober::new(
                config.prober.clone(),
                *config.probe_timeout,
                config.probe_concurrency,
            ),
            figures: Figures::default(),
            settle: config.settle(),
            watch: config.watch(),
            rescan_interval: *config.rescan_interval,
            probe_concurrency: config.probe_concurrency.max(1),
            queue: tx,
            queue_rx: Mutex::new(Some(rx)),
            queued: Mutex::new(HashSet::new()),
            unsettled: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            urgent: tokio::sync::Mutex::new(()),
            node: config.node_name.clone(),
            claim_timeout: *config.probe_claim_timeout,
        };
        let mut stale = Vec::new();
        {
            let mut items = library.items.write().expect("library lock");
            for row in &rows {
                let abs = root.join(super::id::decode(&row.path));
                if row.probe_version != PROBE_VERSION {
                    stale.push((abs.clone(), row.stamp));
                }
                items.insert(Arc::new(MediaItem::from_probe(
                    &root,
                    &abs,
                    row.stamp,
                    &row.info,
                    decide(&row.info),
                )));
            }
        }
        for (abs, stamp) in stale {
            library.enqueue(abs, stamp);
        }
        tracing::info!(
            catalogue = %library.catalogue.describe(),
            items = rows.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "library loaded from the catalogue"
        );
        Ok(library)
    }

    /// A number random per process, so that list `ETag`s of two runs
    /// never match.
    pub fn instance(&self) -> u32 {
        self.instance
    }

    /// The media dir, canonical.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The catalogue, where key-frame indexes are kept too.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.catalogue.clone()
    }

    /// One page of the library.
    pub fn page(&self, q: &PageQuery) -> Page {
        self.items.read().expect("library lock").page(q)
    }

    /// The item with this id as listed (not probed or checked on disk).
    pub fn get(&self, id: &Uuid) -> Option<Arc<MediaItem>> {
        match self.items.read().expect("library lock").get(id) {
            Lookup::Found(item) => Some(item),
            _ => None,
        }
    }

    /// The item with this id as its file is now: probed first if it was
    /// not yet, or if its file changed since.
    ///
    /// # Errors
    /// [`Unavailable::NotFound`] for an unknown id, [`Unavailable::Gone`]
    /// when its file is no longer there.
    pub async fn current(&self, id: &Uuid) -> Result<Arc<MediaItem>, Unavailable> {
        let lookup = self.items.read().expect("library lock").get(id);
        let item = match lookup {
            Lookup::Found(item) => item,
            Lookup::Gone(path) => return Err(Unavailable::Gone(path)),
            Lookup::Unknown => return Err(Unavailable::NotFound(id.to_string())),
        };
        if self.fresh(&item).await? {
            return Ok(item);
        }
        let _one = self.urgent.lock().await;
        // Another request may have probed it meanwhile.
        if let Some(now) = self.get(id) {
            if self.fresh(&now).await? {
                return Ok(now);
            }
        }
        tracing::info!(path = %item.path, "probing on request");
        self.probe_path(&item.abs_path, true)
            .await
            .ok_or(Unavailable::Gone(item.path.clone()))
    }

    /// Whether `item` is probed and its file unchanged; the item leaves
    /// the library when its file is gone.
    async fn fresh(&self, item: &MediaItem) -> Result<bool, Unavailable> {
        let meta = tokio::time::timeout(FS_WAIT, tokio::fs::metadata(&item.abs_path)).await;
        let Ok(meta) = meta else {
            // A network share that does not answer: no hang.
            return Err(Unavailable::Gone(format!(
                "{} (its file system does not answer)",
                item.path
            )));
        };
        match meta {
            Ok(meta) if meta.is_file() => Ok(item.probed && FileStamp::of(&meta) == item.stamp),
            // Unmounted: gone for now, but kept for when it is back.
            _ if self.media_dir_missing().await => Err(Unavailable::Gone(item.path.clone())),
            _ => {
                self.forget(&item.path);
                Err(Unavailable::Gone(item.path.clone()))
            }
        }
    }

    /// Figures for `/metrics` and `/healthz`.
    pub fn figures(&self) -> LibraryFigures {
        let (items, pending) = self.items.read().expect("library lock").counts();
        let settling = self.unsettled.lock().expect("unsettled").len();
        self.figures.snapshot(items, pending, settling)
    }

    pub(super) fn counters(&self) -> &Figures {
        &self.figures
    }

    /// Probes the file at `abs`, stores the result in the catalogue and
    /// lists it; `None` (and the item forgotten) when the file is gone.
    /// With a shared catalogue, another node's result is taken instead,
    /// or waited for ([`Library::turn`]).
    pub(super) async fn probe_path(&self, abs: &Path, urgent: bool) -> Option<Arc<MediaItem>> {
        match self.probe_or_defer(abs, urgent).await {
            Ok(found) => found,
            Err(Deferred) => self
                .items
                .read()
                .expect("library lock")
                .at(&self.relative(abs))
                .cloned(),
        }
    }

    /// [`Self::probe_path`] for the background queue: `Err(Deferred)` when
    /// another node is probing the file.
    pub(super) async fn probe_or_defer(
        &self,
        abs: &Path,
        urgent: bool,
    ) -> Result<Option<Arc<MediaItem>>, Deferred> {
        let rel = self.relative(abs);
        let meta = match tokio::fs::metadata(abs).await {
            Ok(m) if m.is_file() => m,
            _ => {
                self.forget(&rel);
                return Ok(None);
            }
        };
        let stamp = FileStamp::of(&meta);
        // Queued twice for one content (a folder listing and an event that
        // raced): probed once.
        let known = self.items.read().expect("library lock").at(&rel).cloned();
        if let Some(item) = known.as_ref().filter(|i| i.probed && i.stamp == stamp) {
            return Ok(Some(item.clone()));
        }
        match self.turn(&rel, abs, stamp, urgent).await {
            Turn::Taken(item) => return Ok(Some(item)),
            Turn::Deferred => return Err(Deferred),
            Turn::Probe => {}
        }
        let (mut info, outcome) = self.prober.probe(abs, urgent).await;
        self.figures.probe(outcome);
        if outcome == Outcome::Unavailable {
            // Not the file's fault: not recorded; the next listing or
            // request tries again (and another node may take it over).
            self.catalogue.release(&rel, &self.node);
            return Ok(known);
        }
        let embedded = info.subtitles.len();
        let beside = abs.to_path_buf();
        let sidecars = tokio::task::spawn_blocking(move || sidecar::find(&beside, embedded)).await;
        info.subtitles.extend(sidecars.unwrap_or_default());
        let row = Row {
            path: rel,
            stamp,
            probe_version: PROBE_VERSION,
            info,
        };
        self.catalogue.put(&row);
        let item = self.list(abs, &row);
        tracing::debug!(path = %item.path, ?outcome, playback = ?item.playback, reasons = ?item.reasons, "probed");
        Ok(Some(item))
    }

    /// Lists the item the catalogue row `row` of the file at `abs`
    /// describes, in place of any item of that path.
    pub(super) fn list(&self, abs: &Path, row: &Row) -> Arc<MediaItem> {
        let item = Arc::new(MediaItem::from_probe(
            &self.root,
            abs,
            row.stamp,
            &row.info,
            decide(&row.info),
        ));
        self.items
            .write()
            .expect("library lock")
            .insert(item.clone());
        item
    }

    /// Removes the item at `rel` from the library and the catalogue;
    /// whether there was one.
    pub(super) fn forget(&self, rel: &str) -> bool {
        let removed = self
            .items
            .write()
            .expect("library lock")
            .remove(rel)
            .is_some();
        if removed {
            tracing::info!(path = %rel, "file gone: removed from the library");
            self.catalogue.remove(rel);
        }
        removed
    }

    /// Removes every item in folder `rel` and below; how many.
    pub(super) fn forget_under(&self, rel: &str) -> usize {
        let paths = self.items.read().expect("library lock").paths_under(rel);
        paths.iter().filter(|p| self.forget(p)).count()
    }

    /// `abs` relative to the media dir, `/`-separated (`""` for the root).
    pub(super) fn relative(&self, abs: &Path) -> String {
        id::portable_path(abs.strip_prefix(&self.root).unwrap_or(abs))
    }
}
