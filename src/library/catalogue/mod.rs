//! The persistent catalogue: every media file's probe result and key-frame
//! index, keyed by its path relative to the media dir, so a restart serves
//! the whole library without probing anything; and every user's playback
//! positions ([`super::progress`]).
//!
//! Two back ends keep the same tables, made by the same versioned
//! migrations (`migrations/sqlite`, `migrations/postgres`, run by the
//! `refinery` crate):
//! - [`sqlite`]: one file (WAL) under the data dir, the single-node
//!   default;
//! - [`postgres`]: one PostgreSQL database (`--database postgres://…`)
//!   shared by every node of a cluster, through a bounded pool.
//!
//! A row is valid for the [`FileStamp`] (size, mtime, inode, device) it was
//! made for and the [`PROBE_VERSION`] that made it; the library probes a
//! file again when either differs. Peers do the same (Jellyfin, Plex, Emby:
//! SQLite keyed by path, re-probe on size or mtime change).

mod postgres;
mod sqlite;
mod writer;

use super::item::FileStamp;
use super::keyframe_columns::from_columns;
use super::streams::MediaInfo;
use crate::container::index::KeyframeIndex;
use std::path::Path;
use std::sync::{mpsc, Mutex};
use writer::{write_loop, Job};

/// Bumped whenever probing gives different results for the same file
/// (new fields, fixed parsing): rows of an older version are served as
/// they are and probed again in the background.
/// 2: audio streams an MPEG-TS file declares but never fills left out,
/// short TS clips measured, MP4 headers that overstate corrected.
/// 3: an MP3 with an ID3 tag is container `mp3`, not `id3`.
/// 4: video colour (primaries, transfer, matrix) and HDR (PQ, HLG,
/// mastering display, light levels).
/// 5: Dolby Vision's profile and base layer.
pub const PROBE_VERSION: i64 = 5;

/// The SQLite database's file name in the data dir.
pub const FILE_NAME: &str = sqlite::FILE_NAME;

/// Where the catalogue is kept (`--database`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// [`FILE_NAME`] in the data dir: one node.
    Sqlite,
    /// A PostgreSQL database every node shares: its URL
    /// (`postgres://user:password@host:port/dbname`) and the most
    /// connections this node holds open to it.
    Postgres {
        /// The connection URL.
        url: String,
        /// The pool's size, connections.
        pool_size: u32,
    },
}

/// One file as the catalogue remembers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Path relative to the media dir, `/`-separated.
    pub path: String,
    /// The file as it was probed.
    pub stamp: FileStamp,
    /// The [`PROBE_VERSION`] that probed it.
    pub probe_version: i64,
    /// The probe result, sidecar subtitles included.
    pub info: MediaInfo,
}

/// The database could not be reached or did not answer: the request that
/// needed it can be tried again later (HTTP 503 `database_unavailable`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the catalogue database is unavailable: {0}")]
pub struct Unavailable(pub String);

impl From<anyhow::Error> for Unavailable {
    fn from(e: anyhow::Error) -> Self {
        Unavailable(format!("{e:#}"))
    }
}

/// A row as a back end stores it: path, stamp, probe version, probe
/// result as JSON.
pub(super) type Stored = (String, FileStamp, i64, String);

/// The key-frame columns as a back end reads them (see
/// [`super::keyframe_columns`]): times, end, source, positions.
pub(super) type StoredKeyframes = (Vec<u8>, Option<i64>, String, Option<Vec<u8>>);

/// What a back end does: reads on the caller's thread (blocking), writes
/// on the catalogue's writer thread, in order.
pub(super) trait Backend: Send + Sync {
    /// Every row.
    fn load(&self) -> anyhow::Result<Vec<Stored>>;
    /// The row of `path`.
    fn load_one(&self, path: &str) -> anyhow::Result<Option<Stored>>;
    /// The key-frame columns of `path`, if stored for `stamp`'s content.
    fn keyframes(&self, path: &str, stamp: FileStamp) -> anyhow::Result<Option<StoredKeyframes>>;
    /// `user`'s position in `media_id`: milliseconds, and when stored
    /// (seconds since the Unix epoch).
    fn progress(&self, user: &str, media_id: &str) -> anyhow::Result<Option<(i64, i64)>>;
    /// Makes one write.
    fn apply(&self, op: &Op) -> anyhow::Result<()>;
    // What other nodes did: a cluster's back end answers from its
    // tables; the defaults are one node's answers (no other node made,
    // published or claimed anything).

    /// Whether a node recorded segment `index` of `rendition` of `title`
    /// as made within the last `within_s` seconds (the database's clock).
    fn made(
        &self,
        _title: &str,
        _rendition: &str,
        _index: i64,
        _within_s: i64,
    ) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// The session views (JSON) of `user` that nodes other than `node`
    /// published within the last `within_s` seconds.
    fn published_sessions(
        &self,
        _user: &str,
        _node: &str,
        _within_s: i64,
    ) -> anyhow::Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// The figures (JSON) nodes other than `node` published at or after
    /// within the last `within_s` seconds: node, figures, when.
    fn published_figures(
        &self,
        _node: &str,
        _within_s: i64,
    ) -> anyhow::Result<Vec<(String, String, i64)>> {
        Ok(Vec::new())
    }
    /// Claims the probe of `path` for `node` now: true when no other node
    /// holds a claim younger than `timeout_s` seconds.
    fn claim(&self, _path: &str, _node: &str, _timeout_s: i64) -> anyhow::Result<bool> {
        Ok(true)
    }
    /// Answers when the database is reachable.
    fn ping(&self) -> anyhow::Result<()>;
    /// Where it is, for logs (no password).
    fn describe(&self) -> String;
}

/// The catalogue: reads go straight to the back end; writes go to a
/// writer thread of its own that makes every write in the order it was
/// asked for, so no caller waits for a write (or for a lock another
/// process holds) but the one whose answer depends on it
/// ([`Catalogue::put_progress`]).
pub struct Catalogue {
    backend: std::sync::Arc<dyn Backend>,
    writes: Mutex<mpsc::Sender<Job>>,
    shared: bool,
}

/// A write the writer thread makes.
pub(super) enum Op {
    Put(Box<Row>),
    PutInfo(String, String),
    Remove(String),
    PutKeyframes(String, FileStamp, KeyframeIndex),
    PutProgress(String, String, i64, i64),
    Release(String, String),
    /// A segment made now: title, rendition, index; rows older than
    /// [`MADE_KEPT_S`] go.
    Made(String, String, i64),
    /// A node's heartbeat ([`Publication`]): its rows replaced.
    Publish(Box<Publication>),
    /// A node stops: its rows go.
    Withdraw(String),
}

/// What a node publishes each heartbeat (see `crate::cluster`).
#[derive(Debug, Clone, Default)]
pub struct Publication {
    /// Its `--node-name`.
    pub node: String,
    /// Its live sessions: id, user, view as JSON.
    pub sessions: Vec<(String, String, String)>,
    /// Its figures as JSON.
    pub figures: String,
}

/// Seconds a made segment is remembered: nginx's `inactive=2h` in
/// `deploy/nginx.conf`, after which its cache forgets a segment nobody
/// asked for.
pub const MADE_KEPT_S: i64 = 2 * 3600;

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("at", &self.backend.describe())
            .finish()
    }
}

impl Catalogue {
    /// Opens (or creates, and migrates to the newest schema) the catalogue
    /// in `database` for the media dir `media_root` (canonical). Blocking:
    /// async callers use `spawn_blocking`.
    /// - SQLite, in `data_dir`: a catalogue made for another media dir is
    ///   emptied (its paths mean other files).
    /// - PostgreSQL: a database made for another media dir is refused, as
    ///   other nodes may still use it.
    ///
    /// # Errors
    /// Fails when the data dir cannot be created, the database cannot be
    /// reached, opened or migrated or is not a catalogue, or (PostgreSQL)
    /// catalogues another media dir.
    pub fn open(
        database: &Database,
        data_dir: &Path,
        media_root: &Path,
    ) -> anyhow::Result<Catalogue> {
        let root = media_root.to_string_lossy().to_string();
        let backend: std::sync::Arc<dyn Backend> = match database {
            Database::Sqlite => std::sync::Arc::new(sqlite::Sqlite::open(data_dir, &root)?),
            Database::Postgres { url, pool_size } => {
                std::sync::Arc::new(postgres::Postgres::open(url, *pool_size, &root)?)
            }
        };
        let (tx, rx) = mpsc::channel();
        let writer = backend.clone();
        std::thread::Builder::new()
            .name("catalogue-writer".into())
            .spawn(move || write_loop(&*writer, rx))
            .map_err(|e| anyhow::anyhow!("starting the catalogue writer: {e}"))?;
        Ok(Catalogue {
            backend,
            writes: Mutex::new(tx),
            shared: matches!(database, Database::Postgres { .. }),
        })
    }

    /// Opens the SQLite catalogue in `data_dir` (tests and tools).
    ///
    /// # Errors
    /// As [`Self::open`].
    pub fn open_sqlite(data_dir: &Path, media_root: &Path) -> anyhow::Result<Catalogue> {
        Catalogue::open(&Database::Sqlite, data_dir, media_root)
    }

    /// Whether other nodes share it (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Where it is, for logs and `/healthz` (no password).
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Answers when the database is reachable (blocking; at most the
    /// pool's connection timeout).
    ///
    /// # Errors
    /// [`Unavailable`] when it is not.
    pub fn ping(&self) -> Result<(), Unavailable> {
        Ok(self.backend.ping()?)
    }

    /// Queues `op` for the writer thread; `reply` gets its outcome.
    fn queue(&self, op: Op, reply: Option<mpsc::Sender<anyhow::Result<()>>>) {
        let sent = self
            .writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Job::Write(op, reply));
        if sent.is_err() {
            tracing::error!("the catalogue writer is gone: a write is lost");
        }
    }

    /// Queues `op` and waits for it to be made (blocking).
    fn write_now(&self, op: Op) -> anyhow::Result<()> {
        let (tx, rx) = mpsc::channel();
        self.queue(op, Some(tx));
        rx.recv()
            .map_err(|_| anyhow::anyhow!("the catalogue writer stopped"))?
    }

    /// Waits until every write asked for so far is made, or held while
    /// the database does not answer (blocking): at shutdown, and where a
    /// test reads the database itself.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        let sent = self
            .writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Job::Flush(tx));
        if sent.is_ok() {
            let _ = rx.recv();
        }
    }

    /// Every row. A row whose stored probe result no longer parses is
    /// skipped (and so probed again).
    ///
    /// # Errors
    /// Fails when the database cannot be read.
    pub fn load(&self) -> anyhow::Result<Vec<Row>> {
        let mut out = Vec::new();
        for (path, stamp, probe_version, info) in self.backend.load()? {
            match serde_json::from_str(&info) {
                Ok(info) => out.push(Row {
                    path,
                    stamp,
                    probe_version,
                    info,
                }),
                Err(e) => {
                    tracing::warn!(%path, error = %e, "unreadable catalogue row: probing again")
                }
            }
        }
        Ok(out)
    }

    /// Stores `row`, replacing any row for its path (and its key frames,
    /// which belonged to the old content), and drops this node's claim on
    /// it: queued, not waited for (a write that fails is logged; the file
    /// is probed again at the next start).
    pub fn put(&self, row: &Row) {
        self.queue(Op::Put(Box::new(row.clone())), None);
    }

    /// The row of the file at `path`, if any.
    ///
    /// # Errors
    /// Fails when the database cannot be read or the row does not parse.
    pub fn load_one(&self, path: &str) -> anyhow::Result<Option<Row>> {
        let Some((path, stamp, probe_version, info)) = self.backend.load_one(path)? else {
            return Ok(None);
        };
        Ok(Some(Row {
            path,
            stamp,
            probe_version,
            info: serde_json::from_str(&info)?,
        }))
    }

    /// Replaces the stored probe result of the file at `path`, keeping its
    /// key frames (its content did not change: only its sidecars did):
    /// queued.
    pub fn put_info(&self, path: &str, info: &MediaInfo) {
        match serde_json::to_string(info) {
            Ok(info) => self.queue(Op::PutInfo(path.to_string(), info), None),
            Err(e) => tracing::error!(path, error = %e, "a probe result does not serialise"),
        }
    }

    /// Forgets the file at `path`: queued.
    pub fn remove(&self, path: &str) {
        self.queue(Op::Remove(path.to_string()), None);
    }

    /// The stored key frames of the file at `path`, if they were read for
    /// the content `stamp` names (`None` too when the database does not
    /// answer: the caller reads the file).
    pub fn keyframes(&self, path: &str, stamp: FileStamp) -> Option<KeyframeIndex> {
        let (times, end_ns, source, positions) = match self.backend.keyframes(path, stamp) {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(path, error = %format!("{e:#}"), "cannot read stored key frames");
                return None;
            }
        };
        from_columns(&times, end_ns, &source, positions.as_deref())
    }

    /// Stores the key frames of the file at `path` as read for the content
    /// `stamp` names (nothing when the row is for other content): queued.
    pub fn put_keyframes(&self, path: &str, stamp: FileStamp, index: &KeyframeIndex) {
        self.queue(
            Op::PutKeyframes(path.to_string(), stamp, index.clone()),
            None,
        );
    }

    /// Claims the probe of the file at `path` for `node` (blocking): true
    /// when this node should probe it, false while another node's claim
    /// is younger than `timeout_s` seconds. SQLite, one node: always true.
    /// A database that does not answer: true (probing twice is better
    /// than not at all).
    pub fn claim(&self, path: &str, node: &str, timeout_s: i64) -> bool {
        if !self.shared {
            return true;
        }
        self.backend
            .claim(path, node, timeout_s)
            .unwrap_or_else(|e| {
                tracing::warn!(path, error = %format!("{e:#}"), "cannot claim a probe: probing");
                true
            })
    }

    /// Drops `node`'s claim on `path` (its probe failed or was not
    /// needed): queued.
    pub fn release(&self, path: &str, node: &str) {
        if self.shared {
            self.queue(Op::Release(path.to_string(), node.to_string()), None);
        }
    }

    /// Records that this node made segment `index` of `rendition` of
    /// `title` (store keys), for the other nodes of a cluster: queued.
    /// Nothing on SQLite.
    pub fn note_made(&self, title: &str, rendition: &str, index: usize) {
        if self.shared {
            self.queue(
                Op::Made(title.to_string(), rendition.to_string(), index as i64),
                None,
            );
        }
    }

    /// Whether some node of the cluster made segment `index` of
    /// `rendition` of `title` within the last [`MADE_KEPT_S`] (blocking):
    /// the load balancer's cache then serves it. False on SQLite and
    /// when the database does not answer.
    pub fn made_in_cluster(&self, title: &str, rendition: &str, index: usize) -> bool {
        if !self.shared {
            return false;
        }
        self.backend
            .made(title, rendition, index as i64, MADE_KEPT_S)
            .unwrap_or(false)
    }

    /// Publishes a node's heartbeat: queued. Nothing on SQLite.
    pub fn publish(&self, publication: Publication) {
        if self.shared {
            self.queue(Op::Publish(Box::new(publication)), None);
        }
    }

    /// Deletes what `node` published (it stops): queued. Nothing on SQLite.
    pub fn withdraw(&self, node: &str) {
        if self.shared {
            self.queue(Op::Withdraw(node.to_string()), None);
        }
    }

    /// The session views (JSON) of `user` that nodes other than `node`
    /// published within the last `within_s` seconds (blocking). Empty on SQLite.
    ///
    /// # Errors
    /// [`Unavailable`] when the database does not answer.
    pub fn published_sessions(
        &self,
        user: &str,
        node: &str,
        within_s: i64,
    ) -> Result<Vec<String>, Unavailable> {
        Ok(self.backend.published_sessions(user, node, within_s)?)
    }

    /// The figures (JSON) that nodes other than `node` published at or
    /// within the last `within_s` seconds: node, figures, when (blocking). Empty on SQLite.
    ///
    /// # Errors
    /// [`Unavailable`] when the database does not answer.
    pub fn published_figures(
        &self,
        node: &str,
        within_s: i64,
    ) -> Result<Vec<(String, String, i64)>, Unavailable> {
        Ok(self.backend.published_figures(node, within_s)?)
    }

    /// `user`'s stored position in `media_id`: milliseconds and when
    /// (blocking).
    pub(super) fn read_progress(
        &self,
        user: &str,
        media_id: &str,
    ) -> anyhow::Result<Option<(i64, i64)>> {
        self.backend.progress(user, media_id)
    }

    /// Stores `user`'s position in `media_id`: `position_ms`, at
    /// `now_unix_s`; waits until it is written (blocking).
    ///
    /// # Errors
    /// Fails when the database cannot be written.
    pub(super) fn write_progress(
        &self,
        user: &str,
        media_id: &str,
        position_ms: i64,
        now_unix_s: i64,
    ) -> anyhow::Result<()> {
        self.write_now(Op::PutProgress(
            user.to_string(),
            media_id.to_string(),
            position_ms,
            now_unix_s,
        ))
    }
}

impl Drop for Catalogue {
    /// Every write asked for is made before the catalogue goes.
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests;
