//! The persistent catalogue: one SQLite database (WAL) under the data dir
//! that remembers every media file's probe result and key-frame index,
//! keyed by its path relative to the media dir, so a restart serves the
//! whole library without probing anything.
//!
//! A row is valid for the [`FileStamp`] (size, mtime, inode, device) it was made
//! for and the [`PROBE_VERSION`] that made it; the library probes a file
//! again when either differs. Peers do the same (Jellyfin, Plex, Emby:
//! SQLite keyed by path, re-probe on size or mtime change).

use super::item::FileStamp;
use super::keyframe_columns::{from_columns, to_columns};
use super::streams::MediaInfo;
use crate::container::index::KeyframeIndex;
use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

/// Bumped whenever probing gives different results for the same file
/// (new fields, fixed parsing): rows of an older version are served as
/// they are and probed again in the background.
/// 2: audio streams an MPEG-TS file declares but never fills left out,
/// short TS clips measured, MP4 headers that overstate corrected.
/// 3: an MP3 with an ID3 tag is container `mp3`, not `id3`.
/// 4: video colour (primaries, transfer, matrix) and HDR (PQ, HLG,
/// mastering display, light levels).
pub const PROBE_VERSION: i64 = 4;

/// The database's file name in the data dir.
pub const FILE_NAME: &str = "catalogue.sqlite3";

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

/// The catalogue database: one connection for reads (WAL: a write in
/// progress never holds a read up), and a writer thread of its own that
/// makes every write in the order it was asked for, so no caller waits for
/// a write (or for a lock another process holds on the file) but the one
/// whose answer depends on it ([`Catalogue::put_progress`]).
pub struct Catalogue {
    reader: Mutex<Connection>,
    writes: Mutex<mpsc::Sender<Job>>,
    path: PathBuf,
}

/// A write the writer thread makes.
enum Op {
    Put(Box<Row>),
    PutInfo(String, String),
    Remove(String),
    PutKeyframes(String, FileStamp, KeyframeIndex),
    PutProgress(String, String, i64, i64),
}

/// What the writer thread is asked: a write, and where its outcome goes
/// when the caller waits for it; or to report once every write before it
/// is made.
enum Job {
    Write(Op, Option<mpsc::Sender<anyhow::Result<()>>>),
    Flush(mpsc::Sender<()>),
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("path", &self.path)
            .finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    path          TEXT PRIMARY KEY,
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    inode         INTEGER NOT NULL,
    device        INTEGER NOT NULL DEFAULT 0,
    probe_version INTEGER NOT NULL,
    info          TEXT NOT NULL,
    -- key frames of copied video: little-endian u64 nanoseconds each
    keyframes     BLOB,
    keyframes_end INTEGER,
    keyframes_src TEXT,
    -- their byte offsets, then the data end: little-endian u64 each
    keyframes_pos BLOB
);
-- where each user stopped watching each item (see progress.rs)
CREATE TABLE IF NOT EXISTS progress (
    user        TEXT NOT NULL,
    media_id    TEXT NOT NULL,
    position_ms INTEGER NOT NULL,
    updated_s   INTEGER NOT NULL,
    PRIMARY KEY (user, media_id)
);
";

impl Catalogue {
    /// Opens (or creates) the catalogue in `data_dir` for the media dir
    /// `media_root` (canonical). A catalogue made for another media dir is
    /// emptied: its paths mean other files.
    ///
    /// # Errors
    /// Fails when the data dir cannot be created or the database cannot be
    /// opened or is not a catalogue.
    pub fn open(data_dir: &Path, media_root: &Path) -> anyhow::Result<Catalogue> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let path = data_dir.join(FILE_NAME);
        let conn = Connection::open(&path)
            .with_context(|| format!("opening catalogue {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("{} is not an hlsd catalogue", path.display()))?;
        add_columns(&conn)?;
        let root = media_root.to_string_lossy().to_string();
        let known: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'media_root'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if known.as_deref() != Some(root.as_str()) {
            if let Some(old) = known {
                tracing::warn!(old = %old, new = %root, "the media dir changed: emptying the catalogue");
            }
            conn.execute("DELETE FROM items", [])?;
            conn.execute("DELETE FROM progress", [])?;
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('media_root', ?1)",
                [&root],
            )?;
        }
        let writer = Connection::open(&path)
            .with_context(|| format!("opening catalogue {}", path.display()))?;
        writer.busy_timeout(WRITE_BUSY_TIMEOUT)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("catalogue-writer".into())
            .spawn(move || write_loop(&writer, rx))
            .context("starting the catalogue writer")?;
        Ok(Catalogue {
            reader: Mutex::new(conn),
            writes: Mutex::new(tx),
            path,
        })
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

    /// Waits until every write asked for so far is made (blocking): at
    /// shutdown, and where a test reads the file itself.
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

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection reads go through.
    pub(super) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every row. A row whose stored probe result no longer parses is
    /// skipped (and so probed again).
    ///
    /// # Errors
    /// Fails when the database cannot be read.
    pub fn load(&self) -> anyhow::Result<Vec<Row>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT path, size, mtime_ns, inode, device, probe_version, info FROM items",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, stored(r, 1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (path, (stamp, probe_version, info)) = row?;
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
    /// which belonged to the old content): queued, not waited for (a write
    /// that fails is logged; the file is probed again at the next start).
    pub fn put(&self, row: &Row) {
        self.queue(Op::Put(Box::new(row.clone())), None);
    }

    /// The row of the file at `path`, if any.
    ///
    /// # Errors
    /// Fails when the database cannot be read or the row does not parse.
    pub fn load_one(&self, path: &str) -> anyhow::Result<Option<Row>> {
        let conn = self.conn();
        let found = conn
            .query_row(
                "SELECT size, mtime_ns, inode, device, probe_version, info FROM items WHERE path = ?1",
                [path],
                |r| stored(r, 0),
            )
            .optional()?;
        let Some((stamp, probe_version, info)) = found else {
            return Ok(None);
        };
        Ok(Some(Row {
            path: path.to_string(),
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
    /// the content `stamp` names.
    pub fn keyframes(&self, path: &str, stamp: FileStamp) -> Option<KeyframeIndex> {
        let conn = self.conn();
        let found = conn
            .query_row(
                "SELECT keyframes, keyframes_end, keyframes_src, keyframes_pos FROM items
                 WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3 AND keyframes IS NOT NULL",
                params![path, stamp.size_bytes as i64, stamp.mtime_ns],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Option<i64>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<Vec<u8>>>(3)?,
                    ))
                },
            )
            .optional()
            .ok()
            .flatten()?;
        let (times, end_ns, source, positions) = found;
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

/// How long a write waits for a lock another connection holds before it
/// fails (the writer thread's; no request waits on it but a progress
/// update).
const WRITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The writer thread: makes each write in order until every sender is
/// gone.
fn write_loop(conn: &Connection, jobs: mpsc::Receiver<Job>) {
    for job in jobs {
        match job {
            Job::Flush(done) => {
                let _ = done.send(());
            }
            Job::Write(op, reply) => {
                let outcome = apply(conn, &op);
                if let Err(e) = &outcome {
                    tracing::warn!(error = %e, "cannot write the catalogue");
                }
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
            }
        }
    }
}

/// Makes one write.
fn apply(conn: &Connection, op: &Op) -> anyhow::Result<()> {
    match op {
        Op::Put(row) => {
            let info = serde_json::to_string(&row.info)?;
            conn.execute(
                "INSERT OR REPLACE INTO items (path, size, mtime_ns, inode, device, probe_version, info)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    row.path,
                    row.stamp.size_bytes as i64,
                    row.stamp.mtime_ns,
                    row.stamp.inode as i64,
                    row.stamp.device as i64,
                    row.probe_version,
                    info
                ],
            )?;
        }
        Op::PutInfo(path, info) => {
            conn.execute(
                "UPDATE items SET info = ?1 WHERE path = ?2",
                params![info, path],
            )?;
        }
        Op::Remove(path) => {
            conn.execute("DELETE FROM items WHERE path = ?1", [path])?;
        }
        Op::PutKeyframes(path, stamp, index) => {
            let c = to_columns(index);
            conn.execute(
                "UPDATE items SET keyframes = ?1, keyframes_end = ?2, keyframes_src = ?3,
                 keyframes_pos = ?4
                 WHERE path = ?5 AND size = ?6 AND mtime_ns = ?7",
                params![
                    c.times,
                    c.end_ns,
                    c.source,
                    c.positions,
                    path,
                    stamp.size_bytes as i64,
                    stamp.mtime_ns
                ],
            )?;
        }
        Op::PutProgress(user, media_id, ms, now) => {
            conn.execute(
                "INSERT OR REPLACE INTO progress (user, media_id, position_ms, updated_s) VALUES (?1, ?2, ?3, ?4)",
                params![user, media_id, ms, now],
            )?;
        }
    }
    Ok(())
}

/// Size, mtime, inode, device, probe version and probe result (JSON),
/// from column `at` on.
fn stored(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<(FileStamp, i64, String)> {
    Ok((
        FileStamp {
            size_bytes: r.get::<_, i64>(at)? as u64,
            mtime_ns: r.get(at + 1)?,
            inode: r.get::<_, i64>(at + 2)? as u64,
            device: r.get::<_, i64>(at + 3)? as u64,
        },
        r.get(at + 4)?,
        r.get(at + 5)?,
    ))
}

/// Columns added to `items` since the first catalogues: `device` (0:
/// such rows look changed and are probed again in the background) and
/// `keyframes_pos` (key frames' byte offsets then the data end; empty:
/// the file does not say, and the copy's bit rate is estimated; NULL:
/// stored before they were read, so read again).
fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    for (name, decl) in [
        ("device", "device INTEGER NOT NULL DEFAULT 0"),
        ("keyframes_pos", "keyframes_pos BLOB"),
    ] {
        let has = conn
            .prepare("SELECT 1 FROM pragma_table_info('items') WHERE name = ?1")?
            .exists([name])?;
        if !has {
            conn.execute(&format!("ALTER TABLE items ADD COLUMN {decl}"), [])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::index::Source;

    fn row(path: &str, size: u64) -> Row {
        Row {
            path: path.into(),
            stamp: FileStamp {
                size_bytes: size,
                mtime_ns: 1_700_000_000_123_456_789,
                inode: 42,
                device: 2049,
            },
            probe_version: PROBE_VERSION,
            info: MediaInfo {
                duration: Some(Duration::from_millis(12_345)),
                container: Some("matroska".into()),
                ..Default::default()
            },
        }
    }

    #[test]
    fn rows_and_key_frames_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new("/srv/media");
        let stamp = row("a.mkv", 10).stamp;
        {
            let c = Catalogue::open(dir.path(), root).expect("opens");
            c.put(&row("a.mkv", 10));
            c.put(&row("b/c.mp4", 20));
            let index = KeyframeIndex {
                keyframes: vec![Duration::ZERO, Duration::from_nanos(6_006_000_001)],
                end: Some(Duration::from_secs(12)),
                source: Source::Matroska,
                offsets: vec![4_000, 900_000],
                data_end: Some(1_800_000),
            };
            c.put_keyframes("a.mkv", stamp, &index);
            c.flush();
            assert_eq!(c.keyframes("a.mkv", stamp), Some(index));
        }
        let c = Catalogue::open(dir.path(), root).expect("reopens");
        let mut rows = c.load().expect("loads");
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(rows, vec![row("a.mkv", 10), row("b/c.mp4", 20)]);
        assert_eq!(
            c.keyframes("a.mkv", stamp).map(|k| k.keyframes.len()),
            Some(2)
        );
        // Other content: the stored key frames are not its own.
        let changed = FileStamp {
            size_bytes: 11,
            ..stamp
        };
        assert_eq!(c.keyframes("a.mkv", changed), None);
        // A new probe of the file drops its key frames.
        c.put(&row("a.mkv", 10));
        c.flush();
        assert_eq!(c.keyframes("a.mkv", stamp), None);
        c.remove("b/c.mp4");
        c.flush();
        assert_eq!(c.load().expect("loads").len(), 1);
    }

    #[test]
    fn key_frames_stored_before_offsets_were_read_are_read_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Catalogue::open(dir.path(), Path::new("/srv/media")).expect("opens");
        let stamp = row("a.mp4", 10).stamp;
        c.put(&row("a.mp4", 10));
        let index = KeyframeIndex {
            keyframes: vec![Duration::ZERO, Duration::from_secs(6)],
            end: None,
            source: Source::Mp4,
            offsets: Vec::new(),
            data_end: None,
        };
        c.put_keyframes("a.mp4", stamp, &index);
        c.flush();
        assert_eq!(c.keyframes("a.mp4", stamp), Some(index));
        let null = "UPDATE items SET keyframes_pos = NULL";
        c.conn().execute(null, []).expect("update");
        assert_eq!(c.keyframes("a.mp4", stamp), None);
    }

    #[test]
    fn another_media_dir_empties_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        Catalogue::open(dir.path(), Path::new("/one"))
            .expect("opens")
            .put(&row("a.mkv", 10));
        let c = Catalogue::open(dir.path(), Path::new("/two")).expect("opens");
        assert!(c.load().expect("loads").is_empty());
    }
}
