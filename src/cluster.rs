//! What the nodes of a cluster tell each other through the database they
//! share (`--database postgres://…`), so that any node answers for all of
//! them: every [`HEARTBEAT`], each node publishes its live sessions (as
//! `GET /api/v1/sessions` shows them) and its figures (as
//! `GET /api/v1/admin/streaming-stats` shows them). What a node has not
//! renewed for [`EXPIRES_S`] belongs to a dead node and is no longer read.
//! A node that stops withdraws its rows. On SQLite (one node) nothing is
//! published and nothing is read.

use crate::library::catalogue::{Catalogue, Publication, Unavailable};
use crate::session::SessionView;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a node publishes.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Seconds after which a node's rows count as a dead node's: three
/// heartbeats.
pub const EXPIRES_S: i64 = 15;

/// Another node's figures as it published them.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// Its `--node-name`.
    pub node: String,
    /// When it published them, seconds since the Unix epoch.
    pub seen_unix_s: i64,
    /// Its figures (the shape of `/api/v1/admin/streaming-stats`).
    pub figures: serde_json::Value,
}

/// What a node publishes: its sessions (id, user, view) and its figures.
pub type Snapshot = (Vec<(String, SessionView)>, serde_json::Value);

/// Publishes `snapshot()` as `node` every [`HEARTBEAT`] until `stop`, then
/// withdraws it. Does nothing unless `catalogue` is shared.
pub async fn heartbeat(
    catalogue: Arc<Catalogue>,
    node: String,
    snapshot: impl Fn() -> Snapshot + Send + 'static,
    stop: CancellationToken,
) {
    if !catalogue.is_shared() {
        return;
    }
    let mut every = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = every.tick() => {
                let (sessions, figures) = snapshot();
                catalogue.publish(Publication {
                    node: node.clone(),
                    sessions: sessions
                        .into_iter()
                        .filter_map(|(user, view)| {
                            let json = serde_json::to_string(&view).ok()?;
                            Some((view.session_id.to_string(), user, json))
                        })
                        .collect(),
                    figures: figures.to_string(),
                });
            }
        }
    }
    catalogue.withdraw(&node);
}

/// The sessions of `user` that live nodes other than `node` hold.
///
/// # Errors
/// [`Unavailable`] when the database does not answer.
pub async fn sessions_elsewhere(
    catalogue: &Arc<Catalogue>,
    node: &str,
    user: &str,
) -> Result<Vec<SessionView>, Unavailable> {
    let (catalogue, node, user) = (catalogue.clone(), node.to_string(), user.to_string());
    let rows =
        tokio::task::spawn_blocking(move || catalogue.published_sessions(&user, &node, EXPIRES_S))
            .await
            .map_err(|e| Unavailable(e.to_string()))??;
    Ok(rows
        .iter()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect())
}

/// The figures of the live nodes other than `node`.
///
/// # Errors
/// [`Unavailable`] when the database does not answer.
pub async fn nodes_elsewhere(
    catalogue: &Arc<Catalogue>,
    node: &str,
) -> Result<Vec<NodeReport>, Unavailable> {
    let (catalogue, node) = (catalogue.clone(), node.to_string());
    let rows = tokio::task::spawn_blocking(move || catalogue.published_figures(&node, EXPIRES_S))
        .await
        .map_err(|e| Unavailable(e.to_string()))??;
    Ok(rows
        .into_iter()
        .filter_map(|(node, figures, seen)| {
            Some(NodeReport {
                node,
                seen_unix_s: seen,
                figures: serde_json::from_str(&figures).ok()?,
            })
        })
        .collect())
}
