//! One producer: a pipeline making a run of segments of one or more
//! renditions of a title, from a segment on. This is its shared state; its
//! task is in [`super::run`].

use crate::library::Playback;
use crate::pipeline::Throttle;
use crate::policy::ProducerView;
use crate::rendition::RenditionSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the task of a producer has reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Building its pipeline, or before its first segment.
    Starting,
    /// Making segments.
    Running,
    /// Held by its throttle: far enough ahead of its players.
    Held,
    /// Asked to stop; its pipeline is being torn down.
    Stopping,
}

/// How long a held producer's output must have stood still before it is
/// reported held: two ticks of its task, which records the position every
/// 250 ms.
const HELD_AFTER: Duration = Duration::from_millis(600);

/// One running producer.
pub struct Producer {
    /// Unique in the process; names its `.part` files.
    pub id: u64,
    /// The renditions it makes.
    pub renditions: RenditionSet,
    /// The same renditions as indexes, the driving one first.
    pub list: Vec<usize>,
    /// The segment it started at.
    pub start: usize,
    /// Remux (every rendition copied) or transcode, for the caps.
    pub kind: Playback,
    /// Holds its pipeline back.
    pub throttle: std::sync::Arc<Throttle>,
    /// The segment each rendition is writing, in `list` order.
    nexts: Vec<AtomicUsize>,
    /// Media time reached by its driving rendition, in nanoseconds.
    position_ns: AtomicU64,
    /// When that last moved, in milliseconds since `created`.
    moved_ms: AtomicU64,
    /// Whether its pipeline has produced anything yet.
    running: AtomicBool,
    /// Cancelled to stop it.
    cancel: CancellationToken,
    /// Why it was asked to stop, for the log.
    stop_reason: Mutex<Option<&'static str>>,
    created: Instant,
}

impl Producer {
    /// A producer of `list` (driving rendition first) from segment `start`,
    /// whose media time there is `start_time`.
    pub fn new(
        id: u64,
        list: Vec<usize>,
        start: usize,
        start_time: Duration,
        kind: Playback,
        throttle: std::sync::Arc<Throttle>,
    ) -> Self {
        Producer {
            nexts: (0..list.len()).map(|_| AtomicUsize::new(start)).collect(),
            id,
            renditions: list.iter().copied().collect(),
            list,
            start,
            kind,
            throttle,
            position_ns: AtomicU64::new(start_time.as_nanos() as u64),
            moved_ms: AtomicU64::new(0),
            running: AtomicBool::new(false),
            cancel: CancellationToken::new(),
            stop_reason: Mutex::new(None),
            created: Instant::now(),
        }
    }

    /// Whether rendition `i` is the one that drives it.
    pub fn drives(&self, i: usize) -> bool {
        self.list.first() == Some(&i)
    }

    /// The segment its driving rendition is writing.
    pub fn next(&self) -> usize {
        self.nexts[0].load(Ordering::SeqCst)
    }

    /// The segment its furthest-behind rendition is writing.
    pub fn lagging(&self) -> usize {
        self.nexts
            .iter()
            .map(|n| n.load(Ordering::SeqCst))
            .min()
            .unwrap_or(self.start)
    }

    /// Rendition `rendition` (a title index) is writing segment `n`.
    pub fn set_next(&self, rendition: usize, n: usize) {
        if let Some(i) = self.list.iter().position(|r| *r == rendition) {
            self.nexts[i].store(n, Ordering::SeqCst);
        }
        self.running.store(true, Ordering::SeqCst);
    }

    /// Media time reached.
    pub fn position(&self) -> Duration {
        Duration::from_nanos(self.position_ns.load(Ordering::Relaxed))
    }

    /// Records the media time reached.
    pub fn set_position(&self, t: Duration) {
        let t = t.as_nanos() as u64;
        if self.position_ns.fetch_max(t, Ordering::Relaxed) < t {
            self.moved_ms
                .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
    }

    /// Media seconds made per wall-clock second since it started.
    pub fn speed(&self, start_time: Duration) -> f64 {
        let elapsed = self.created.elapsed().as_secs_f64();
        if elapsed <= 0.0 {
            return 0.0;
        }
        let done = self.position().saturating_sub(start_time).as_secs_f64();
        (done / elapsed * 100.0).round() / 100.0
    }

    /// Where it is. Held once its throttle holds and its output has
    /// stopped moving (the encoder drains the frames it holds first).
    pub fn phase(&self) -> Phase {
        let still = self
            .created
            .elapsed()
            .saturating_sub(Duration::from_millis(self.moved_ms.load(Ordering::Relaxed)))
            >= HELD_AFTER;
        if self.is_stopping() {
            Phase::Stopping
        } else if self.throttle.is_holding() && still {
            Phase::Held
        } else if self.running.load(Ordering::SeqCst) {
            Phase::Running
        } else {
            Phase::Starting
        }
    }

    /// Time since it was created.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }

    /// The rules' view of it.
    pub fn view(&self) -> ProducerView {
        ProducerView {
            id: self.id,
            renditions: self.renditions,
            driving: self.list.first().copied().unwrap_or(0),
            start: self.start,
            next: self.next(),
            lagging: self.lagging(),
            held: self.throttle.is_holding(),
        }
    }

    /// Asks it to stop (its task tears the pipeline down); `reason` goes
    /// to the log. Its held streams are let go at once.
    pub fn stop(&self, reason: &'static str) {
        let mut r = self.stop_reason.lock().expect("stop reason");
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.cancel.cancel();
        // Now, not when its task next looks: a stream held in a sink's
        // render (under the sink's preroll lock) would block the task's
        // own state change to PLAYING, and so the task, for good.
        self.throttle.release();
    }

    /// Whether it was asked to stop.
    pub fn is_stopping(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Why it was asked to stop.
    pub fn stop_reason(&self) -> &'static str {
        self.stop_reason
            .lock()
            .expect("stop reason")
            .unwrap_or("stopped")
    }

    /// Resolves when it is asked to stop.
    pub async fn stopped(&self) {
        self.cancel.cancelled().await
    }
}
