//! What the library counts, for `/metrics` and `/healthz`.

use super::prober::Outcome;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// How the library notices changes on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeWatch {
    /// Not started yet.
    Starting,
    /// inotify events, with a periodic scan as a safety net.
    Watching,
    /// Periodic listing of folders whose mtime changed: watching could not
    /// work here (network file system, inotify watch limit) or is off.
    Polling,
}

/// Counters kept by the library.
#[derive(Debug, Default)]
pub struct Figures {
    probed: AtomicU64,
    refused: AtomicU64,
    crashed: AtomicU64,
    timed_out: AtomicU64,
    scans: AtomicU64,
    watch: AtomicI64,
    reconciled: AtomicBool,
}

/// A snapshot of [`Figures`] with the item counts.
#[derive(Debug, Clone, Serialize)]
pub struct LibraryFigures {
    /// Items listed.
    pub items: usize,
    /// Items waiting to be probed.
    pub pending: usize,
    /// New or changed files waiting for their size and mtime to hold
    /// still before they are probed.
    pub settling: usize,
    /// Probes since start-up by how they ended: `probed`, `refused`,
    /// `crashed`, `timed_out`.
    pub probes: std::collections::BTreeMap<&'static str, u64>,
    /// Rescans since start-up (start-up, polling, safety net, requests).
    pub scans: u64,
    /// How changes are noticed.
    pub watch: ChangeWatch,
    /// Whether the first comparison of the catalogue with the disk ended.
    pub reconciled: bool,
}

impl LibraryFigures {
    /// Probes of every kind since start-up.
    pub fn probes_total(&self) -> u64 {
        self.probes.values().sum()
    }
}

impl Figures {
    /// Counts one probe.
    pub fn probe(&self, outcome: Outcome) {
        let c = match outcome {
            Outcome::Probed => &self.probed,
            Outcome::Refused => &self.refused,
            Outcome::Crashed | Outcome::Unavailable => &self.crashed,
            Outcome::TimedOut => &self.timed_out,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one rescan.
    pub fn scan(&self) {
        self.scans.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how changes are noticed.
    pub fn set_watch(&self, w: ChangeWatch) {
        self.watch.store(
            match w {
                ChangeWatch::Starting => 0,
                ChangeWatch::Watching => 1,
                ChangeWatch::Polling => 2,
            },
            Ordering::Relaxed,
        );
    }

    /// Records that the start-up reconcile ended.
    pub fn set_reconciled(&self) {
        self.reconciled.store(true, Ordering::Relaxed);
    }

    /// A snapshot, with the counts of the item set and the settling files.
    pub fn snapshot(&self, items: usize, pending: usize, settling: usize) -> LibraryFigures {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LibraryFigures {
            items,
            pending,
            settling,
            probes: [
                ("probed", get(&self.probed)),
                ("refused", get(&self.refused)),
                ("crashed", get(&self.crashed)),
                ("timed_out", get(&self.timed_out)),
            ]
            .into(),
            scans: get(&self.scans),
            watch: match self.watch.load(Ordering::Relaxed) {
                1 => ChangeWatch::Watching,
                2 => ChangeWatch::Polling,
                _ => ChangeWatch::Starting,
            },
            reconciled: self.reconciled.load(Ordering::Relaxed),
        }
    }
}
