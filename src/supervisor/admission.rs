//! Admission: whether a new producer may start, within the title's cap
//! (`--producers-per-item`, [`policy::plan_start`]) and the server's
//! (`--max-transcodes`, `--max-remuxes`, the disk budget), and which
//! producer gives way. Every decision is taken under the supervisor's
//! admission lock, so two requests never both pass a cap.

use super::outcome::{AtCapacity, Player, SegmentOutcome};
use super::supervisor::Supervisor;
use super::title::Title;
use crate::library::Playback;
use crate::policy::{self, StartPlan};
use crate::timeline::Timeline;
use std::sync::Arc;

impl Supervisor {
    /// The renditions a new producer for segment `n` of `rendition` makes:
    /// that one, and the others `player` needs at `n` that are neither
    /// stored nor coming from a producer serving it (one that makes them
    /// for another player's video may stop or hold for that player). The
    /// video drives (its cuts and its players), so it comes first.
    fn renditions_to_make(
        &self,
        title: &Title,
        player: &Player,
        rendition: usize,
        n: usize,
    ) -> Vec<usize> {
        let producers = title.producers();
        let serving = |r: usize| {
            producers.iter().any(|p| {
                let view = p.view();
                !p.is_stopping()
                    && player.renditions.contains(view.driving)
                    && policy::coming(&view, r, n, self.settings.relocate_ahead)
            })
        };
        let mut list = vec![rendition];
        for r in player
            .renditions
            .iter()
            .filter(|r| *r < title.renditions.len())
        {
            if r != rendition && !title.has_segment(r, n) && !serving(r) {
                list.push(r);
            }
        }
        list.sort_unstable_by_key(|r| (!title.renditions[*r].plan.is_video(), *r));
        list
    }

    /// Starts a producer for segment `n` of `rendition` unless one is
    /// coming, within the title's and the server's caps.
    pub(super) fn ensure(
        &self,
        title: &Arc<Title>,
        player: &Player,
        rendition: usize,
        n: usize,
        timeline: &Timeline,
    ) -> Result<(), SegmentOutcome> {
        let _admission = self.admission.lock().expect("admission");
        if title.coming(rendition, n) {
            return Ok(());
        }
        if !self.store.admits() {
            self.enforce_budget();
        }
        let list = self.renditions_to_make(title, player, rendition, n);
        let kind = if list.iter().all(|&r| title.renditions[r].plan.is_copy()) {
            Playback::Remux
        } else {
            Playback::Transcode
        };
        let (producers, players, waiters) = title.views();
        let plan = policy::plan_start(
            &producers,
            &players,
            &waiters,
            Title::player_id(&player.key),
            self.settings.producers_per_item,
            self.settings.relocate_ahead,
        );
        let victim = match plan {
            StartPlan::Go => None,
            StartPlan::Replace(id) => title.producers().into_iter().find(|p| p.id == id),
            StartPlan::Refuse => {
                return Err(SegmentOutcome::NotYet(format!(
                    "this item already runs its maximum of {} producers (--producers-per-item) for other players",
                    self.settings.producers_per_item
                )))
            }
        };
        let limit = match kind {
            Playback::Remux => self.settings.max_remuxes,
            _ => self.settings.max_transcodes,
        }
        .max(1);
        let frees_one = victim.as_ref().is_some_and(|v| v.kind == kind);
        if !frees_one && self.running(kind) >= limit && !self.preempt(kind) {
            self.stats.error("capacity");
            tracing::warn!(mode = kind.as_str(), limit, "producer refused: at capacity");
            return Err(SegmentOutcome::AtCapacity(AtCapacity::Producers {
                mode: kind,
                limit,
            }));
        }
        if !self.store.admits() {
            self.stats.error("disk_budget");
            tracing::warn!(
                used_bytes = self.store.used(),
                "producer refused: disk budget"
            );
            return Err(SegmentOutcome::AtCapacity(AtCapacity::Disk {
                limit_bytes: self.store.limit().unwrap_or(0),
            }));
        }
        if let Some(v) = victim {
            v.stop("replaced by a newer request");
        }
        self.spawn(title, list, n, kind, timeline);
        Ok(())
    }

    /// Producers of `kind` running (not stopping) on the whole server.
    fn running(&self, kind: Playback) -> usize {
        self.titles()
            .iter()
            .flat_map(|t| t.producers())
            .filter(|p| p.kind == kind && !p.is_stopping())
            .count()
    }

    /// Stops one producer of `kind` that may give way
    /// ([`policy::preemptable`]); whether there was one.
    fn preempt(&self, kind: Playback) -> bool {
        for t in self.titles() {
            let (producers, players, waiters) = t.views();
            for view in producers {
                if !policy::preemptable(&view, &players, &waiters, self.settings.relocate_ahead) {
                    continue;
                }
                if let Some(p) = t
                    .producers()
                    .into_iter()
                    .find(|p| p.id == view.id && p.kind == kind)
                {
                    p.stop("preempted: its players are idle");
                    return true;
                }
            }
        }
        false
    }

    /// Registers `player` at segment `start` of `title` and, unless that
    /// segment is in the store or coming, starts a producer there once the
    /// timeline is known. Does not wait for it.
    ///
    /// # Errors
    /// [`AtCapacity`] when the server is at a cap and a producer would be
    /// needed.
    pub fn begin(
        self: &Arc<Self>,
        title: &Arc<Title>,
        player: Player,
        start: usize,
    ) -> Result<(), AtCapacity> {
        // The player's first rendition (its video, if it has one) drives.
        let first = player.renditions.first().unwrap_or(0);
        let needed = first < title.renditions.len()
            && !title.has_segment(first, start)
            && !title.coming(first, start);
        if needed {
            let _admission = self.admission.lock().expect("admission");
            let copies = title
                .renditions
                .iter()
                .enumerate()
                .filter(|(i, _)| player.renditions.contains(*i))
                .all(|(_, r)| r.plan.is_copy());
            let kind = if copies {
                Playback::Remux
            } else {
                Playback::Transcode
            };
            let limit = match kind {
                Playback::Remux => self.settings.max_remuxes,
                _ => self.settings.max_transcodes,
            }
            .max(1);
            let preemptable = self.titles().iter().any(|t| {
                let (producers, players, waiters) = t.views();
                producers.iter().any(|v| {
                    policy::preemptable(v, &players, &waiters, self.settings.relocate_ahead)
                })
            });
            if self.running(kind) >= limit && !preemptable {
                self.stats.error("capacity");
                tracing::warn!(mode = kind.as_str(), limit, "session refused: at capacity");
                return Err(AtCapacity::Producers { mode: kind, limit });
            }
            if !self.store.admits() {
                self.enforce_budget();
                if !self.store.admits() {
                    self.stats.error("disk_budget");
                    tracing::warn!(
                        used_bytes = self.store.used(),
                        "session refused: disk budget"
                    );
                    return Err(AtCapacity::Disk {
                        limit_bytes: self.store.limit().unwrap_or(0),
                    });
                }
            }
        }
        title.touch(player.key, start, player.preload, player.renditions);
        if needed && !title.renditions.is_empty() {
            let me = self.clone();
            let title = title.clone();
            let wait = *self.settings.index_timeout;
            self.spawn_task(async move {
                let Some(Ok(timeline)) = title.wait_timeline(wait).await else {
                    return;
                };
                if !timeline.contains(start) || title.has_segment(first, start) {
                    return;
                }
                if me.made_in_cluster(&title, first, start).await {
                    tracing::debug!(media_id = %title.item.id, segment = start, "another node made the first segment: not started ahead");
                    return;
                }
                if let Err(SegmentOutcome::AtCapacity(e)) =
                    me.ensure(&title, &player, first, start, &timeline)
                {
                    tracing::warn!(error = %e, "could not start the first producer");
                }
            });
        }
        Ok(())
    }

    /// Whether another node of the cluster made segment `n` of
    /// `rendition` of `title` (a shared catalogue): the load balancer's
    /// cache serves it, so it is not made ahead of a request here.
    async fn made_in_cluster(&self, title: &Title, rendition: usize, n: usize) -> bool {
        let Some(cluster) = self.catalogue.clone().filter(|c| c.is_shared()) else {
            return false;
        };
        let key = title.segment_key(rendition, n);
        tokio::task::spawn_blocking(move || cluster.made_in_cluster(&key.title, &key.rendition, n))
            .await
            .unwrap_or(false)
    }
}
