//! Probing once per cluster: with a shared catalogue (`--database
//! postgres://…`), a node that finds a new or changed file takes another
//! node's result for it when one is stored, and otherwise claims the
//! probe in the database before probing. A file another node is probing
//! is put back at the end of this node's queue (a background probe) until
//! that node stores its result or its claim grows older than
//! `--probe-claim-timeout` and is taken over; a viewer's request waits
//! for it at most [`URGENT_WAIT`], then probes the file itself.
//! With SQLite every claim is this node's: nothing changes.

use super::catalogue::{Row, PROBE_VERSION};
use super::item::{FileStamp, MediaItem};
use super::live::{Library, Turn};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a viewer's request looks for another node's probe result.
const POLL: Duration = Duration::from_millis(250);

/// The longest a viewer's request waits for another node's probe: the
/// default `--probe-timeout` (10 s), with room for the prober to start.
const URGENT_WAIT: Duration = Duration::from_secs(15);

/// How long a file another node is probing waits before this node's
/// queue looks at it again.
pub(super) const REQUEUE_AFTER: Duration = Duration::from_secs(1);

impl Library {
    /// Whether this node probes the file at `rel` (content `stamp`), takes
    /// another node's result for it, or (not `urgent`) leaves it for now.
    pub(super) async fn turn(
        &self,
        rel: &str,
        abs: &std::path::Path,
        stamp: FileStamp,
        urgent: bool,
    ) -> Turn {
        if !self.catalogue.is_shared() {
            return Turn::Probe;
        }
        // A viewer waits for another node's probe no longer than a probe
        // takes at most, then probes itself: probing twice is better
        // than a viewer waiting for a dead node's claim to age.
        let deadline = Instant::now() + self.claim_timeout.min(URGENT_WAIT) + POLL;
        loop {
            if let Some(row) = self.stored_for(rel, stamp).await {
                return Turn::Taken(self.list_taken(abs, &row));
            }
            let (catalogue, path, node) =
                (self.catalogue.clone(), rel.to_string(), self.node.clone());
            let timeout_s = self.claim_timeout.as_secs() as i64;
            let claimed =
                tokio::task::spawn_blocking(move || catalogue.claim(&path, &node, timeout_s))
                    .await
                    .unwrap_or(true);
            if claimed {
                // Stored between the look and the claim: taken after all.
                return match self.stored_for(rel, stamp).await {
                    Some(row) => {
                        self.catalogue.release(rel, &self.node);
                        Turn::Taken(self.list_taken(abs, &row))
                    }
                    None => Turn::Probe,
                };
            }
            if !urgent {
                return Turn::Deferred;
            }
            if Instant::now() > deadline {
                return Turn::Probe;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The catalogue's row for `rel` if it was probed, by this version,
    /// for the content `stamp` names.
    async fn stored_for(&self, rel: &str, stamp: FileStamp) -> Option<Row> {
        let (catalogue, path) = (self.catalogue.clone(), rel.to_string());
        let row = tokio::task::spawn_blocking(move || catalogue.load_one(&path))
            .await
            .ok()?
            .ok()??;
        (row.stamp == stamp && row.probe_version == PROBE_VERSION).then_some(row)
    }

    /// Lists the item of another node's probe result `row`.
    fn list_taken(&self, abs: &std::path::Path, row: &Row) -> Arc<MediaItem> {
        tracing::debug!(path = %row.path, "probed by another node");
        self.list(abs, row)
    }
}
