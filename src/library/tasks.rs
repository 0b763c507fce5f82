//! The library's background work: the probe queue's workers, the first
//! comparison of the catalogue with the disk, then watching (or polling)
//! the media dir, and the settle tick.

use super::live::Library;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Library {
    /// Starts the background work in `tasks`: the probe queue, the
    /// reconcile of the catalogue with the disk, then watching (or
    /// polling) for changes, until `stop` is cancelled.
    pub fn start(
        self: &Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        let (watch, interval) = (self.watch, self.rescan_interval);
        if let Some(rx) = self.queue_rx.lock().expect("queue").take() {
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            for _ in 0..self.probe_concurrency {
                let (lib, rx, stop) = (self.clone(), rx.clone(), stop.clone());
                tasks.spawn(async move {
                    loop {
                        let next = tokio::select! {
                            _ = stop.cancelled() => return,
                            p = async { rx.lock().await.recv().await } => p,
                        };
                        let Some(path) = next else { return };
                        if lib.probe_or_defer(&path, false).await.is_err() {
                            // Another node is probing it: back of the queue.
                            let (queue, stop) = (lib.queue.clone(), stop.clone());
                            tokio::spawn(async move {
                                tokio::select! {
                                    _ = stop.cancelled() => {}
                                    _ = tokio::time::sleep(super::cluster::REQUEUE_AFTER) => {
                                        let _ = queue.send(path);
                                    }
                                }
                            });
                            continue;
                        }
                        lib.queued.lock().expect("queued").remove(&path);
                    }
                });
            }
        }
        let (lib, watch_stop) = (self.clone(), stop.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            let report = lib.rescan(None).await;
            lib.figures.set_reconciled();
            tracing::info!(
                files = report.files,
                queued = report.queued,
                removed = report.removed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "library compared with the disk"
            );
            super::watch::run(lib, watch_stop, watch, interval).await;
        });
        let lib = self.clone();
        tasks.spawn(async move {
            let tick =
                (lib.settle / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
            let mut every = tokio::time::interval(tick);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = every.tick() => {
                        let settling = lib.clone();
                        let _ = tokio::task::spawn_blocking(move || settling.settle_tick()).await;
                        lib.prober.reap_idle();
                    }
                }
            }
        });
    }
}
