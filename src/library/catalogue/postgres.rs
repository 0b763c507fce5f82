//! The catalogue on PostgreSQL (`--database postgres://…`): one database
//! every node of a cluster shares, so that a file is probed once for the
//! cluster, its key frames are read once, and a user's positions outlive
//! any node. Connections come from a bounded `r2d2` pool; the migrations
//! run under an advisory lock, so nodes starting together migrate once.
//!
//! The `postgres` client blocks (it drives its own small runtime): every
//! call comes from the writer thread or from `spawn_blocking`, never from
//! an async task.

use super::{Backend, Op, Stored, StoredKeyframes};
use crate::library::item::FileStamp;
use crate::library::keyframe_columns::to_columns;
use anyhow::{bail, Context};
use r2d2_postgres::postgres::{Config, NoTls};
use r2d2_postgres::PostgresConnectionManager;
use std::time::Duration;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// How long a caller waits for a pooled connection before the database
/// counts as unavailable (a progress write then answers 503).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a ping (`/healthz`, the writer's retries) waits for a
/// connection.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// How long opening one connection may take (TCP and authentication).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The database's clock, in whole seconds since the Unix epoch: every
/// time that nodes compare (claims, made segments, heartbeats) is taken
/// from it, so the nodes' own clocks need not agree.
const NOW: &str = "EXTRACT(EPOCH FROM now())::bigint";

/// The advisory-lock key the migrations run under: "hlsd" in ASCII.
const MIGRATION_LOCK: i64 = 0x686c_7364;

/// See the module doc.
pub struct Postgres {
    pool: r2d2::Pool<PostgresConnectionManager<NoTls>>,
    at: String,
    /// The device number of the media dir on this node, which rows are
    /// read with: device numbers differ between machines mounting one
    /// share (an NFS mount's is given at mount time), so rows keep none.
    /// A file on another file system inside the media dir is probed
    /// again by each node that starts.
    device: u64,
}

impl Postgres {
    /// Connects to `url`, migrates the database to the newest schema, and
    /// checks that it catalogues the media dir `root` (a new database is
    /// marked for it); then opens a pool of at most `pool_size`
    /// connections.
    ///
    /// # Errors
    /// Fails when the URL does not parse, the database cannot be reached
    /// or migrated, or it catalogues another media dir.
    pub fn open(url: &str, pool_size: u32, root: &str) -> anyhow::Result<Postgres> {
        let mut config: Config = url.parse().context("--database is not a postgres:// URL")?;
        config.connect_timeout(CONNECT_TIMEOUT);
        let at = describe(&config);
        let mut client = config
            .connect(NoTls)
            .with_context(|| format!("cannot reach the database {at}"))?;
        client.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
        let migrated = embedded::migrations::runner().run(&mut client);
        client.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
        migrated.with_context(|| format!("cannot migrate the database {at}"))?;
        client.execute(
            "INSERT INTO meta (key, value) VALUES ('media_root', $1) ON CONFLICT (key) DO NOTHING",
            &[&root],
        )?;
        let known: String = client
            .query_one("SELECT value FROM meta WHERE key = 'media_root'", &[])?
            .get(0);
        if known != root {
            bail!(
                "the database {at} catalogues the media dir {known}, not {root}: give every node \
                 the same --media-dir, or use another database"
            );
        }
        drop(client);
        let device = std::os::unix::fs::MetadataExt::dev(
            &std::fs::metadata(root).with_context(|| format!("media dir {root}"))?,
        );
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            .connection_timeout(CONNECTION_TIMEOUT)
            .build(PostgresConnectionManager::new(config, NoTls))
            .with_context(|| format!("cannot open a pool of connections to {at}"))?;
        tracing::info!(database = %at, pool_size, "catalogue in PostgreSQL");
        Ok(Postgres { pool, at, device })
    }

    fn client(&self) -> anyhow::Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>> {
        self.pool
            .get()
            .with_context(|| format!("no connection to {}", self.at))
    }
}

impl Backend for Postgres {
    fn load(&self) -> anyhow::Result<Vec<Stored>> {
        let rows = self.client()?.query(
            "SELECT path, size, mtime_ns, inode, probe_version, info FROM items",
            &[],
        )?;
        Ok(rows.iter().map(|r| stored(r, self.device)).collect())
    }

    fn load_one(&self, path: &str) -> anyhow::Result<Option<Stored>> {
        let row = self.client()?.query_opt(
            "SELECT path, size, mtime_ns, inode, probe_version, info FROM items
             WHERE path = $1",
            &[&path],
        )?;
        Ok(row.as_ref().map(|r| stored(r, self.device)))
    }

    fn keyframes(&self, path: &str, stamp: FileStamp) -> anyhow::Result<Option<StoredKeyframes>> {
        let row = self.client()?.query_opt(
            "SELECT keyframes, keyframes_end, keyframes_src, keyframes_pos FROM items
             WHERE path = $1 AND size = $2 AND mtime_ns = $3 AND keyframes IS NOT NULL",
            &[&path, &(stamp.size_bytes as i64), &stamp.mtime_ns],
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
    }

    fn progress(&self, user: &str, media_id: &str) -> anyhow::Result<Option<(i64, i64)>> {
        let row = self.client()?.query_opt(
            "SELECT position_ms, updated_s FROM progress WHERE \"user\" = $1 AND media_id = $2",
            &[&user, &media_id],
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    fn apply(&self, op: &Op) -> anyhow::Result<()> {
        let mut client = self.client()?;
        match op {
            Op::Put(row) => {
                let info = serde_json::to_string(&row.info)?;
                // A new probe: the key frames belonged to the old content.
                client.execute(
                    "INSERT INTO items (path, size, mtime_ns, inode, device, probe_version, info)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (path) DO UPDATE SET size = EXCLUDED.size,
                       mtime_ns = EXCLUDED.mtime_ns, inode = EXCLUDED.inode,
                       device = EXCLUDED.device, probe_version = EXCLUDED.probe_version,
                       info = EXCLUDED.info, keyframes = NULL, keyframes_end = NULL,
                       keyframes_src = NULL, keyframes_pos = NULL",
                    &[
                        &row.path,
                        &(row.stamp.size_bytes as i64),
                        &row.stamp.mtime_ns,
                        &(row.stamp.inode as i64),
                        &0i64,
                        &row.probe_version,
                        &info,
                    ],
                )?;
                client.execute("DELETE FROM probe_claims WHERE path = $1", &[&row.path])?;
            }
            Op::PutInfo(path, info) => {
                client.execute("UPDATE items SET info = $1 WHERE path = $2", &[info, path])?;
            }
            Op::Remove(path) => {
                client.execute("DELETE FROM items WHERE path = $1", &[path])?;
            }
            Op::PutKeyframes(path, stamp, index) => {
                let c = to_columns(index);
                client.execute(
                    "UPDATE items SET keyframes = $1, keyframes_end = $2, keyframes_src = $3,
                     keyframes_pos = $4
                     WHERE path = $5 AND size = $6 AND mtime_ns = $7",
                    &[
                        &c.times,
                        &c.end_ns,
                        &c.source,
                        &c.positions,
                        path,
                        &(stamp.size_bytes as i64),
                        &stamp.mtime_ns,
                    ],
                )?;
            }
            Op::PutProgress(user, media_id, ms, now) => {
                client.execute(
                    "INSERT INTO progress (\"user\", media_id, position_ms, updated_s)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (\"user\", media_id) DO UPDATE
                     SET position_ms = EXCLUDED.position_ms, updated_s = EXCLUDED.updated_s",
                    &[user, media_id, ms, now],
                )?;
            }
            Op::Made(title, rendition, index) => {
                client.execute(
                    &format!(
                        "INSERT INTO made_segments (title, rendition, idx, made_s)
                         VALUES ($1, $2, $3, {NOW})
                         ON CONFLICT (title, rendition, idx) DO UPDATE SET made_s = EXCLUDED.made_s"
                    ),
                    &[title, rendition, index],
                )?;
                // Now and then (one segment in 256), forget what the cache
                // has forgotten.
                if index % 256 == 0 {
                    client.execute(
                        &format!("DELETE FROM made_segments WHERE made_s < {NOW} - $1"),
                        &[&super::MADE_KEPT_S],
                    )?;
                }
            }
            Op::Publish(p) => {
                let mut tx = client.transaction()?;
                tx.execute("DELETE FROM node_sessions WHERE node = $1", &[&p.node])?;
                for (id, user, view) in &p.sessions {
                    tx.execute(
                        &format!(
                            "INSERT INTO node_sessions (node, session_id, user_name, view, seen_s)
                             VALUES ($1, $2, $3, $4, {NOW})"
                        ),
                        &[&p.node, id, user, view],
                    )?;
                }
                tx.execute(
                    &format!(
                        "INSERT INTO node_figures (node, figures, seen_s) VALUES ($1, $2, {NOW})
                         ON CONFLICT (node) DO UPDATE SET figures = EXCLUDED.figures,
                           seen_s = EXCLUDED.seen_s"
                    ),
                    &[&p.node, &p.figures],
                )?;
                // Nodes gone for an hour: their rows go too.
                tx.execute(
                    &format!("DELETE FROM node_sessions WHERE seen_s < {NOW} - 3600"),
                    &[],
                )?;
                tx.execute(
                    &format!("DELETE FROM node_figures WHERE seen_s < {NOW} - 3600"),
                    &[],
                )?;
                tx.commit()?;
            }
            Op::Withdraw(node) => {
                client.execute("DELETE FROM node_sessions WHERE node = $1", &[node])?;
                client.execute("DELETE FROM node_figures WHERE node = $1", &[node])?;
            }
            Op::Release(path, node) => {
                client.execute(
                    "DELETE FROM probe_claims WHERE path = $1 AND node = $2",
                    &[path, node],
                )?;
            }
        }
        Ok(())
    }

    fn made(
        &self,
        title: &str,
        rendition: &str,
        index: i64,
        within_s: i64,
    ) -> anyhow::Result<bool> {
        let row = self.client()?.query_opt(
            &format!(
                "SELECT 1 FROM made_segments
                 WHERE title = $1 AND rendition = $2 AND idx = $3 AND made_s >= {NOW} - $4"
            ),
            &[&title, &rendition, &index, &within_s],
        )?;
        Ok(row.is_some())
    }

    fn published_sessions(
        &self,
        user: &str,
        node: &str,
        within_s: i64,
    ) -> anyhow::Result<Vec<String>> {
        let rows = self.client()?.query(
            &format!(
                "SELECT view FROM node_sessions
                 WHERE user_name = $1 AND node <> $2 AND seen_s >= {NOW} - $3
                 ORDER BY node, session_id"
            ),
            &[&user, &node, &within_s],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn published_figures(
        &self,
        node: &str,
        within_s: i64,
    ) -> anyhow::Result<Vec<(String, String, i64)>> {
        let rows = self.client()?.query(
            &format!(
                "SELECT node, figures, seen_s FROM node_figures
                 WHERE node <> $1 AND seen_s >= {NOW} - $2 ORDER BY node"
            ),
            &[&node, &within_s],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn claim(&self, path: &str, node: &str, timeout_s: i64) -> anyhow::Result<bool> {
        // Inserted, renewed by its own node, or taken over once stale: a
        // row comes back. Held by a live node: none does.
        let row = self.client()?.query_opt(
            &format!(
                "INSERT INTO probe_claims (path, node, claimed_s) VALUES ($1, $2, {NOW})
                 ON CONFLICT (path) DO UPDATE SET node = EXCLUDED.node,
                   claimed_s = EXCLUDED.claimed_s
                 WHERE probe_claims.node = EXCLUDED.node
                   OR probe_claims.claimed_s < {NOW} - $3
                 RETURNING node"
            ),
            &[&path, &node, &timeout_s],
        )?;
        Ok(row.is_some())
    }

    fn ping(&self) -> anyhow::Result<()> {
        let mut client = self
            .pool
            .get_timeout(PING_TIMEOUT)
            .with_context(|| format!("no connection to {}", self.at))?;
        client.simple_query("SELECT 1")?;
        Ok(())
    }

    fn describe(&self) -> String {
        self.at.clone()
    }
}

/// A row of `items` read as path, stamp (on `device`), probe version,
/// probe result.
fn stored(r: &r2d2_postgres::postgres::Row, device: u64) -> Stored {
    (
        r.get(0),
        FileStamp {
            size_bytes: r.get::<_, i64>(1) as u64,
            mtime_ns: r.get(2),
            inode: r.get::<_, i64>(3) as u64,
            device,
        },
        r.get(4),
        r.get(5),
    )
}

/// `postgres host:port/dbname`: where the database is, without user or
/// password.
fn describe(config: &Config) -> String {
    use r2d2_postgres::postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("postgres");
    format!("postgres {host}:{port}/{db}")
}
