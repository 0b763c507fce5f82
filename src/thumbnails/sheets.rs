//! Thumbnail sheets: the [`Layout`] of a title made into JPEG sheets, in
//! the background, from the first request for any of them, the sheet
//! asked for first and then outward from it; kept on disk under the
//! file's identity (`DATA_DIR/thumbnails/{title key}/sheet_N.jpg`), so
//! every user shares them and a restart makes none again.
//!
//! A sheet is made by one pipeline sought to each of its tiles' key
//! frames in turn ([`key_frame_pictures`]): only key frames are decoded,
//! each scaled to the tile's width before it is tiled; the sheet is then
//! JPEG-encoded once. At most [`MAKING`] sheets are made at once, server
//! wide; a request waits for its sheet at most the wait it is given,
//! then is told to come back.

use super::budget::{to_evict, Folder};
use super::layout::{sheet_name, Layout, Tile, TILE_WIDTH};
use super::posters::seek_for;
use crate::library::passes::still::{i420_jpeg, key_frame_pictures, RawPicture, Seek};
use crate::library::MediaItem;
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sheets made at once, server wide: a sheet decodes 100 key frames, on
/// a core, beside the producers.
const MAKING: usize = 1;
/// Pipelines that decode one sheet's tiles at once, each a contiguous
/// part of them (at most one per core): a sheet at the viewer's place
/// comes in half the time on two cores.
const PIPELINES_PER_SHEET: usize = 2;
/// How long one tile's key frame may take to decode.
const TILE_LIMIT: Duration = Duration::from_secs(20);

/// Why no sheet was given.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    /// `--no-thumbnails`.
    #[error("thumbnails are turned off on this server (--no-thumbnails)")]
    Off,
    /// The item has no video, or no known duration to lay tiles on.
    #[error("{0} has no video with a known duration to take thumbnails of")]
    NoVideo(String),
    /// No sheet of that number.
    #[error("no thumbnail sheet {0} in this item")]
    NoSheet(usize),
    /// Being made: come back soon.
    #[error("thumbnail sheet {0} is being made; retry shortly")]
    NotReady(usize),
    /// The file did not give it.
    #[error("thumbnail sheet {sheet} of {path} could not be made: {reason}")]
    Failed {
        /// The sheet.
        sheet: usize,
        /// The item's path in the library.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// The sheets of every title: made on demand, kept on disk.
pub struct Sheets {
    /// `DATA_DIR/thumbnails`; `None` with `--no-thumbnails`.
    dir: Option<PathBuf>,
    /// Bytes every file's sheets may hold (`--thumbnail-budget`).
    budget_bytes: u64,
    stats: Arc<crate::stats::Stats>,
    making: Arc<tokio::sync::Semaphore>,
    /// Title key → its job while one runs.
    jobs: Jobs,
    closing: Arc<AtomicBool>,
}

/// The jobs running, by title key.
type Jobs = Arc<Mutex<HashMap<Arc<str>, Arc<Job>>>>;

/// One title's sheets being made.
struct Job {
    layout: Layout,
    dir: PathBuf,
    file: PathBuf,
    path: String,
    /// Sheets asked for and not made yet, the latest last.
    wanted: Mutex<Vec<usize>>,
    /// Sheets on disk, and sheets that failed with why.
    done: Mutex<(BTreeSet<usize>, HashMap<usize, String>)>,
    /// Told each time a sheet is done.
    changed: tokio::sync::watch::Sender<usize>,
}

impl Sheets {
    /// Sheets kept under `dir` (`None`: turned off), at most
    /// `budget_bytes` of them (the least recently made files' go first),
    /// counted in `stats` (`hlsd_thumbnail_sheets_made_total`,
    /// `hlsd_thumbnail_sheet_seconds_total`).
    pub fn new(dir: Option<PathBuf>, budget_bytes: u64, stats: Arc<crate::stats::Stats>) -> Self {
        Sheets {
            dir,
            budget_bytes,
            stats,
            making: Arc::new(tokio::sync::Semaphore::new(MAKING)),
            jobs: Arc::new(Mutex::new(HashMap::new())),
            closing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether thumbnails are on.
    pub fn enabled(&self) -> bool {
        self.dir.is_some()
    }

    /// Stops every job after the tile it decodes (at shutdown).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// The layout of `item`'s thumbnails.
    ///
    /// # Errors
    /// [`SheetError::Off`], or [`SheetError::NoVideo`] for an item without
    /// video or a known duration.
    pub fn layout(&self, item: &MediaItem) -> Result<Layout, SheetError> {
        if !self.enabled() {
            return Err(SheetError::Off);
        }
        let no_video = || SheetError::NoVideo(item.path.clone());
        let video = item.video.as_ref().ok_or_else(no_video)?;
        let duration = item
            .duration_s
            .filter(|d| d.is_finite() && *d > 0.0)
            .ok_or_else(no_video)?;
        let shown_w = u64::from(video.width) * u64::from(video.pixel_aspect.0)
            / u64::from(video.pixel_aspect.1.max(1));
        let shown = (u32::try_from(shown_w).unwrap_or(u32::MAX), video.height);
        let display = if video.rotation % 180 == 90 {
            (shown.1, shown.0)
        } else {
            shown
        };
        Ok(Layout::new(Duration::from_secs_f64(duration), display))
    }

    /// Sheet `sheet` of `item` as JPEG bytes: from disk, or made (its job
    /// started if none runs, this sheet next) and waited for at most
    /// `wait`.
    ///
    /// # Errors
    /// As [`Self::layout`]; [`SheetError::NoSheet`] past the last sheet;
    /// [`SheetError::NotReady`] when it is not made within `wait`;
    /// [`SheetError::Failed`] when the file does not give it.
    pub async fn sheet(
        &self,
        item: &MediaItem,
        sheet: usize,
        wait: Duration,
    ) -> Result<Bytes, SheetError> {
        let layout = self.layout(item)?;
        if sheet >= layout.sheets() {
            return Err(SheetError::NoSheet(sheet));
        }
        let root = self.dir.as_ref().ok_or(SheetError::Off)?;
        let key = title_key(item);
        let path = root.join(&*key).join(sheet_name(sheet));
        if let Ok(bytes) = tokio::fs::read(&path).await {
            return Ok(bytes.into());
        }
        let job = self.job(item, key, layout, root, sheet);
        let mut changed = job.changed.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(reason) = job.failed(sheet) {
                return Err(SheetError::Failed {
                    sheet,
                    path: item.path.clone(),
                    reason,
                });
            }
            if job.is_made(sheet) {
                return tokio::fs::read(&path)
                    .await
                    .map(Bytes::from)
                    .map_err(|_| SheetError::NotReady(sheet));
            }
            tokio::select! {
                r = changed.changed() => {
                    if r.is_err() {
                        // The job ended without it (shutting down).
                        return Err(SheetError::NotReady(sheet));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return Err(SheetError::NotReady(sheet)),
            }
        }
    }

    /// The job of `item`'s title, `sheet` wanted of it: the running one,
    /// or a new one started. Wanted under the jobs' lock, so a job that
    /// is ending sees it.
    fn job(
        &self,
        item: &MediaItem,
        key: Arc<str>,
        layout: Layout,
        root: &Path,
        sheet: usize,
    ) -> Arc<Job> {
        let mut jobs = self.jobs.lock().expect("sheet jobs");
        if let Some(job) = jobs.get(&key) {
            job.want(sheet);
            return job.clone();
        }
        let job = Arc::new(Job {
            layout,
            dir: root.join(&*key),
            file: item.abs_path.clone(),
            path: item.path.clone(),
            wanted: Mutex::new(Vec::new()),
            done: Mutex::new(Default::default()),
            changed: tokio::sync::watch::channel(0).0,
        });
        job.want(sheet);
        jobs.insert(key.clone(), job.clone());
        let run = JobRun {
            job: job.clone(),
            key,
            root: root.to_path_buf(),
            media_id: item.id,
            stats: self.stats.clone(),
            making: self.making.clone(),
            closing: self.closing.clone(),
            jobs: self.jobs.clone(),
            budget_bytes: self.budget_bytes,
        };
        tokio::spawn(run.run());
        job
    }
}

/// The folder name of a file's sheets: its media id, size and
/// modification time (a changed file gets new ones).
fn title_key(item: &MediaItem) -> Arc<str> {
    crate::store::title_key(&item.id, item.size_bytes, item.stamp.modified())
}

impl Job {
    /// Sheet `sheet` is wanted now: made next.
    fn want(&self, sheet: usize) {
        let mut wanted = self.wanted.lock().expect("wanted sheets");
        wanted.retain(|s| *s != sheet);
        wanted.push(sheet);
        drop(wanted);
        // Wakes the job if it waits for work.
        self.changed.send_modify(|_| {});
    }

    fn is_made(&self, sheet: usize) -> bool {
        self.done.lock().expect("done sheets").0.contains(&sheet)
    }

    fn failed(&self, sheet: usize) -> Option<String> {
        self.done
            .lock()
            .expect("done sheets")
            .1
            .get(&sheet)
            .cloned()
    }

    /// The next sheet to make: the latest wanted one not done, else the
    /// one nearest the first wanted (`origin`), later ones first on a tie.
    fn next(&self, origin: usize) -> Option<usize> {
        let done = self.done.lock().expect("done sheets");
        let is_done = |s: &usize| done.0.contains(s) || done.1.contains_key(s);
        let mut wanted = self.wanted.lock().expect("wanted sheets");
        wanted.retain(|s| !is_done(s));
        if let Some(s) = wanted.last() {
            return Some(*s);
        }
        (0..self.layout.sheets())
            .filter(|s| !is_done(s))
            .min_by_key(|s| (s.abs_diff(origin), *s < origin))
    }
}

/// A job's task and what it needs.
struct JobRun {
    job: Arc<Job>,
    key: Arc<str>,
    root: PathBuf,
    media_id: uuid::Uuid,
    stats: Arc<crate::stats::Stats>,
    making: Arc<tokio::sync::Semaphore>,
    closing: Arc<AtomicBool>,
    jobs: Jobs,
    budget_bytes: u64,
}

impl JobRun {
    /// Makes every sheet not on disk, one at a time, then leaves.
    async fn run(self) {
        let job = self.job.clone();
        let (root, key, media_id) = (self.root.clone(), self.key.clone(), self.media_id);
        // What is on disk already; sheets of the file's older versions go.
        let start = tokio::task::spawn_blocking(move || {
            remove_older_versions(&root, &key, &media_id);
            let on_disk = on_disk(&job.dir);
            let keys = crate::container::keyframes::from_container(&job.file).map(|k| k.keyframes);
            (on_disk, keys)
        })
        .await;
        let (on_disk, keys) = start.unwrap_or_default();
        self.job.done.lock().expect("done sheets").0.extend(on_disk);
        self.job.changed.send_modify(|n| *n += 1);
        let keys = Arc::new(keys);
        let mut origin = None;
        while !self.closing.load(Ordering::SeqCst) {
            // The first sheet wanted is where the viewer is.
            let first = self.job.wanted.lock().expect("wanted").first().copied();
            let origin = *origin.get_or_insert(first.unwrap_or(0));
            let Some(sheet) = self.job.next(origin) else {
                // Nothing left: gone from the jobs unless a sheet was
                // wanted meanwhile (wanting takes the same lock).
                let mut jobs = self.jobs.lock().expect("sheet jobs");
                if self.job.next(origin).is_none() {
                    jobs.remove(&self.key);
                    return;
                }
                continue;
            };
            let Ok(_permit) = self.making.clone().acquire_owned().await else {
                break;
            };
            let (job, keys, closing) = (self.job.clone(), keys.clone(), self.closing.clone());
            let started = Instant::now();
            let made = tokio::task::spawn_blocking(move || {
                make_sheet(&job, sheet, keys.as_deref(), &closing)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            {
                let mut done = self.job.done.lock().expect("done sheets");
                match made {
                    Ok(()) => {
                        self.stats.sheet_made(started.elapsed());
                        done.0.insert(sheet);
                    }
                    Err(reason) => {
                        tracing::warn!(path = %self.job.path, sheet, %reason, "no thumbnail sheet");
                        done.1.insert(sheet, reason);
                    }
                }
            }
            self.job.changed.send_modify(|n| *n += 1);
            self.keep_to_budget().await;
        }
        self.jobs.lock().expect("sheet jobs").remove(&self.key);
    }
}

impl JobRun {
    /// Deletes the sheets of the files made longest ago while every
    /// file's sheets hold more than the budget; never those of a file
    /// whose sheets are being made.
    async fn keep_to_budget(&self) {
        let keep: Vec<String> = self
            .jobs
            .lock()
            .expect("sheet jobs")
            .keys()
            .map(|k| k.to_string())
            .collect();
        let (root, budget) = (self.root.clone(), self.budget_bytes);
        let _ = tokio::task::spawn_blocking(move || {
            let folders = folders(&root);
            let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
            for name in to_evict(&folders, budget, &keep) {
                tracing::info!(folder = %name, "thumbnail sheets deleted past --thumbnail-budget");
                let _ = std::fs::remove_dir_all(root.join(name));
            }
        })
        .await;
    }
}

/// Every file's sheets under `root`: each folder's bytes and when its
/// last sheet was made. Blocking.
fn folders(root: &Path) -> Vec<Folder> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let mut folder = Folder {
                name,
                bytes: 0,
                made: std::time::UNIX_EPOCH,
            };
            for sheet in std::fs::read_dir(e.path()).ok()?.flatten() {
                let Ok(meta) = sheet.metadata() else { continue };
                folder.bytes += meta.len();
                if let Ok(t) = meta.modified() {
                    folder.made = folder.made.max(t);
                }
            }
            Some(folder)
        })
        .collect()
}

/// The sheets in `dir` (`sheet_N.jpg`). Blocking.
fn on_disk(dir: &Path) -> Vec<usize> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| super::layout::sheet_index(e.file_name().to_str()?))
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes the sheets of `media_id`'s earlier versions under `root` (the
/// folders named by its id but another size or time than `key`).
/// Blocking.
fn remove_older_versions(root: &Path, key: &str, media_id: &uuid::Uuid) {
    let prefix = format!("{}-", media_id.simple());
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name != key {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Makes sheet `sheet` of `job` into its file: each tile's key frame
/// (nearest its time, by the container's index `keys` where there is
/// one), tiled and JPEG-encoded, written aside and renamed into place.
/// Blocking.
fn make_sheet(
    job: &Job,
    sheet: usize,
    keys: Option<&[Duration]>,
    closing: &AtomicBool,
) -> Result<(), String> {
    let layout = &job.layout;
    let tiles = layout.tiles_of(sheet);
    let seeks: Vec<Seek> = tiles
        .clone()
        .map(|t| {
            let at = layout.time(t);
            keys.map_or(Seek::Nearest(at), |k| seek_for(k, at))
        })
        .collect();
    // The tiles in contiguous parts, one pipeline (and thread) each.
    let parts = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(PIPELINES_PER_SHEET);
    let per_part = seeks.len().div_ceil(parts).max(1);
    let made: Vec<Result<Vec<Option<RawPicture>>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = seeks
            .chunks(per_part)
            .map(|part| {
                scope.spawn(move || {
                    let mut pictures = vec![None; part.len()];
                    key_frame_pictures(&job.file, part, TILE_WIDTH, TILE_LIMIT, |i, picture| {
                        pictures[i] = Some(picture);
                        !closing.load(Ordering::SeqCst)
                    })
                    .map(|()| pictures)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a tile decoder panicked".into()))
            })
            .collect()
    });
    let mut pictures = Vec::with_capacity(seeks.len());
    for part in made {
        pictures.extend(part?);
    }
    if closing.load(Ordering::SeqCst) {
        return Err("the server is shutting down".into());
    }
    let tiled: Vec<Option<Tile<'_>>> = pictures
        .iter()
        .map(|p| {
            p.as_ref().map(|p| Tile {
                size: p.size,
                planes: [&p.planes[0], &p.planes[1], &p.planes[2]],
            })
        })
        .collect();
    let planes = layout.compose(sheet, &tiled);
    let jpeg = i420_jpeg(layout.sheet_size(sheet), &planes)?;
    std::fs::create_dir_all(&job.dir)
        .map_err(|e| format!("cannot create {}: {e}", job.dir.display()))?;
    let path = job.dir.join(sheet_name(sheet));
    let part = path.with_extension("jpg.part");
    std::fs::write(&part, &jpeg)
        .and_then(|()| std::fs::rename(&part, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&part);
            format!("cannot write {}: {e}", path.display())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheets_are_made_from_the_wanted_one_outward() {
        let job = Job {
            layout: Layout::new(Duration::from_secs(7200), (1920, 1080)),
            dir: PathBuf::new(),
            file: PathBuf::new(),
            path: String::new(),
            wanted: Mutex::new(Vec::new()),
            done: Mutex::new(Default::default()),
            changed: tokio::sync::watch::channel(0).0,
        };
        job.want(3);
        let mut order = Vec::new();
        while let Some(s) = job.next(3) {
            order.push(s);
            job.done.lock().unwrap().0.insert(s);
            if s == 4 {
                // The viewer seeks: that sheet comes next.
                job.want(7);
            }
        }
        assert_eq!(order, vec![3, 4, 7, 2, 5, 1, 6, 0]);
    }
}
