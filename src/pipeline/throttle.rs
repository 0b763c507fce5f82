//! Holding a pipeline back once it runs too far ahead of its viewers.

use gst::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Holds a pipeline's streams once they pass a media time limit
/// (throttling), until the limit moves or the throttle is released.
///
/// Waiting happens in the streaming threads (a pad probe on each decoded
/// stream of a transcode, the segment writers of a remux); nothing is
/// dropped and no state change is needed.
#[derive(Debug)]
pub struct Throttle {
    limit_ns: AtomicU64,
    released: AtomicBool,
    waiting: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Throttle {
    /// A throttle that holds streams past `limit` (`None`: never).
    pub fn new(limit: Option<Duration>) -> Self {
        Throttle {
            limit_ns: AtomicU64::new(limit.map_or(u64::MAX, |l| l.as_nanos() as u64)),
            released: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
        }
    }

    /// Moves the limit (`None`: no limit) and wakes the held streams.
    pub fn set_limit(&self, limit: Option<Duration>) {
        let ns = limit.map_or(u64::MAX, |l| {
            u64::try_from(l.as_nanos()).unwrap_or(u64::MAX)
        });
        if self.limit_ns.swap(ns, Ordering::SeqCst) != ns {
            let _guard = self.lock.lock().expect("throttle lock");
            self.cond.notify_all();
        }
    }

    /// The current limit, `None` when there is none.
    pub fn limit(&self) -> Option<Duration> {
        match self.limit_ns.load(Ordering::SeqCst) {
            u64::MAX => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Lets everything through from now on (used when stopping).
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        let _guard = self.lock.lock().expect("throttle lock");
        self.cond.notify_all();
    }

    /// Whether a stream is being held right now.
    pub fn is_holding(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
    }

    fn holds(&self, t_ns: u64) -> bool {
        !self.released.load(Ordering::SeqCst) && t_ns > self.limit_ns.load(Ordering::SeqCst)
    }

    /// Blocks the calling streaming thread while `t_ns` is past the limit,
    /// or until `pad` is flushing (its pipeline is being stopped).
    /// `counts` says whether this stream's wait makes the throttle
    /// [holding](Self::is_holding): only the stream that drives the cuts
    /// does, since the others may simply have run ahead of it.
    pub fn wait(&self, t_ns: u64, pad: &gst::Pad, counts: bool) {
        if !self.holds(t_ns) {
            return;
        }
        let mut guard = self.lock.lock().expect("throttle lock");
        if counts {
            self.waiting.fetch_add(1, Ordering::SeqCst);
        }
        while self.holds(t_ns) && !pad.pad_flags().contains(gst::PadFlags::FLUSHING) {
            guard = self
                .cond
                .wait_timeout(guard, Duration::from_millis(200))
                .expect("throttle lock")
                .0;
        }
        if counts {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
