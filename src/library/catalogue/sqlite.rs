//! The catalogue on SQLite: one file (WAL) in the data dir, the
//! single-node default. One connection for reads (WAL: a write in
//! progress never holds a read up) and one for the writer thread.

use super::{Backend, Op, Stored, StoredKeyframes};
use crate::library::item::FileStamp;
use crate::library::keyframe_columns::to_columns;
use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// The database's file name in the data dir.
pub const FILE_NAME: &str = "catalogue.sqlite3";

/// How long a write waits for a lock another connection holds before it
/// fails (the writer thread's; no request waits on it but a progress
/// update).
const WRITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// See the module doc.
pub struct Sqlite {
    reader: Mutex<Connection>,
    writer: Mutex<Connection>,
    path: std::path::PathBuf,
}

impl Sqlite {
    /// Opens (or creates) the file in `data_dir`, migrates it, and
    /// empties it when it catalogued another media dir than `root`.
    ///
    /// # Errors
    /// Fails when the data dir cannot be made or the file cannot be
    /// opened, migrated, or is not a catalogue.
    pub fn open(data_dir: &Path, root: &str) -> anyhow::Result<Sqlite> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let path = data_dir.join(FILE_NAME);
        let mut conn = Connection::open(&path)
            .with_context(|| format!("opening catalogue {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        embedded::migrations::runner()
            .run(&mut conn)
            .with_context(|| format!("{} is not an hlsd catalogue", path.display()))?;
        add_columns(&conn)?;
        let known: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'media_root'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if known.as_deref() != Some(root) {
            if let Some(old) = known {
                tracing::warn!(old = %old, new = %root, "the media dir changed: emptying the catalogue");
            }
            conn.execute("DELETE FROM items", [])?;
            conn.execute("DELETE FROM progress", [])?;
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('media_root', ?1)",
                [root],
            )?;
        }
        let writer = Connection::open(&path)
            .with_context(|| format!("opening catalogue {}", path.display()))?;
        writer.busy_timeout(WRITE_BUSY_TIMEOUT)?;
        Ok(Sqlite {
            reader: Mutex::new(conn),
            writer: Mutex::new(writer),
            path,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Backend for Sqlite {
    fn load(&self) -> anyhow::Result<Vec<Stored>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT path, size, mtime_ns, inode, device, probe_version, info FROM items",
        )?;
        let rows = stmt.query_map([], stored)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn load_one(&self, path: &str) -> anyhow::Result<Option<Stored>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT path, size, mtime_ns, inode, device, probe_version, info FROM items
                 WHERE path = ?1",
                [path],
                stored,
            )
            .optional()?)
    }

    fn keyframes(&self, path: &str, stamp: FileStamp) -> anyhow::Result<Option<StoredKeyframes>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT keyframes, keyframes_end, keyframes_src, keyframes_pos FROM items
                 WHERE path = ?1 AND size = ?2 AND mtime_ns = ?3 AND keyframes IS NOT NULL",
                params![path, stamp.size_bytes as i64, stamp.mtime_ns],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?)
    }

    fn progress(&self, user: &str, media_id: &str) -> anyhow::Result<Option<(i64, i64)>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT position_ms, updated_s FROM progress WHERE \"user\" = ?1 AND media_id = ?2",
                params![user, media_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn apply(&self, op: &Op) -> anyhow::Result<()> {
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
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
                    "INSERT OR REPLACE INTO progress (\"user\", media_id, position_ms, updated_s)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![user, media_id, ms, now],
                )?;
            }
            // One node: nothing is claimed, nobody else needs to know
            // what it made.
            Op::Release(..) | Op::Made(..) | Op::Publish(..) | Op::Withdraw(..) => {}
        }
        Ok(())
    }

    fn ping(&self) -> anyhow::Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        format!("sqlite {}", self.path.display())
    }
}

/// A row of `items` read as path, stamp, probe version, probe result.
fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    Ok((
        r.get(0)?,
        FileStamp {
            size_bytes: r.get::<_, i64>(1)? as u64,
            mtime_ns: r.get(2)?,
            inode: r.get::<_, i64>(3)? as u64,
            device: r.get::<_, i64>(4)? as u64,
        },
        r.get(5)?,
        r.get(6)?,
    ))
}

/// The bridge for catalogues made before migrations existed, whose
/// `items` table predates two columns (the first migration's `IF NOT
/// EXISTS` keeps such a table as it is): `device` (0: such rows look
/// changed and are probed again in the background) and `keyframes_pos`
/// (NULL: stored before offsets were read, so read again).
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
