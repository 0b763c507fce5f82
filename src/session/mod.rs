//! HLS sessions: one GStreamer pipeline per (media, user), found in O(1),
//! kept alive by every playlist or segment request, stopped when idle.
//!
//! The registry lives behind a `std::sync::Mutex` that is only held for
//! map operations, never across an `.await` (as in mini-redis's `db.rs`).
//! Each session's state lives in a `tokio::sync::watch` channel: the bus
//! task writes it, HTTP handlers read it or wait for a change.

mod registry;

pub use registry::Registry;

use crate::config::PipelineTemplates;
use crate::hls::{Grid, Variant};
use crate::library::{AudioPlan, MediaItem, Playback, VideoPlan};
use crate::pipeline::{self, PipelineEvent, Throttle};
use crate::stats::{Stats, StopReason};
use futures_util::StreamExt;
use gst::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// Where a session's pipeline is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Built, not yet producing.
    Starting,
    /// Producing segments.
    Running,
    /// Held back: the encoder is more than the throttle margin ahead of
    /// the newest segment a client asked for.
    Throttled,
    /// The encoder reached the end of the file; segments it skipped
    /// (before the point a seek moved it to) are made when asked for.
    Idle,
    /// Every segment is written; the pipeline is stopped.
    Complete,
    /// The pipeline reported an error; see [`Status::error`].
    Failed,
}

/// One segment slot of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Not on disk yet.
    Pending,
    /// On disk (renamed from its `.part` file), with this duration.
    Ready(Duration),
    /// The encoder went through this slot's time and found no media there;
    /// there will never be a file.
    Empty,
}

/// What a session's bus task has learnt so far.
#[derive(Debug, Clone)]
pub struct Status {
    /// Current state.
    pub state: SessionState,
    /// Segment slots by index (`segment_00000.ts` first). A seekable
    /// session has one per grid slot from the start; a growing one gains
    /// one per finished segment.
    pub segments: Vec<Slot>,
    /// Running time at which the segment being written started.
    segment_start: Duration,
    /// Media time the encoder has reached.
    pub position: Duration,
    /// Media seconds per wall-clock second since the pipeline started.
    pub speed: f64,
    /// A plain error message when failed.
    pub error: Option<String>,
    /// Index of the segment the current pipeline started at.
    pub encoder_start: usize,
    /// Index of the segment the current pipeline is writing.
    pub encoder_next: usize,
    /// Whether a pipeline is producing (or about to).
    pub encoder_active: bool,
}

impl Status {
    fn new(slots: usize) -> Self {
        Status {
            state: SessionState::Starting,
            segments: vec![Slot::Pending; slots],
            segment_start: Duration::ZERO,
            position: Duration::ZERO,
            speed: 0.0,
            error: None,
            encoder_start: 0,
            encoder_next: 0,
            encoder_active: true,
        }
    }

    /// The slot of segment `n` (`Pending` past the end of a growing list).
    pub fn slot(&self, n: usize) -> Slot {
        self.segments.get(n).copied().unwrap_or(Slot::Pending)
    }

    /// Durations of the finished segments at the start of the list, in
    /// order: what a growing (EVENT) playlist lists.
    pub fn ready_prefix(&self) -> Vec<Duration> {
        self.segments
            .iter()
            .map_while(|s| match s {
                Slot::Ready(d) => Some(*d),
                _ => None,
            })
            .collect()
    }

    /// How many segments are on disk.
    pub fn ready_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Slot::Ready(_)))
            .count()
    }
}

/// What a segment request found, once it was allowed to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentOutcome {
    /// On disk: serve the file.
    Ready,
    /// There is no such segment, or no media in it.
    Missing,
    /// Still coming after the wait: answer 503 with `Retry-After`.
    NotYet,
    /// The session failed with this message.
    Failed(String),
}

/// How seekable sessions run: relocation and throttling settings.
#[derive(Debug, Clone, Copy)]
pub struct SeekSettings {
    /// A segment more than this many segments ahead of the one the
    /// encoder is writing makes the encoder move (relocate) to it.
    pub relocate_ahead: usize,
    /// The encoder is held once it is this far (media time) past the end
    /// of the newest segment a client asked for; `None` never holds it.
    pub throttle_margin: Option<Duration>,
}

/// One HLS session.
pub struct Session {
    /// Random id (v4), the handle clients use.
    pub id: Uuid,
    /// The media it plays.
    pub media_id: Uuid,
    /// The user it belongs to.
    pub user: String,
    /// Remux or transcode.
    pub mode: Playback,
    /// Its own folder under the transcode dir.
    pub dir: PathBuf,
    /// The source's duration, if known.
    pub duration: Option<Duration>,
    /// The one variant of its master playlist.
    pub variant: Variant,
    /// The segment grid when the session is seekable (VOD playlist);
    /// `None` for a growing (EVENT) one.
    pub grid: Option<Grid>,
    settings: SeekSettings,
    status: watch::Sender<Status>,
    last_access: Mutex<Instant>,
    /// The newest segment index a client asked for.
    last_requested: AtomicUsize,
    /// The current pipeline's throttle.
    throttle: Mutex<Arc<Throttle>>,
    /// Segment indexes the encoder is asked to move to.
    relocate: tokio::sync::mpsc::Sender<usize>,
    relocations: Mutex<Option<tokio::sync::mpsc::Receiver<usize>>>,
    /// Started by a preload and not played yet: its encoder stops after
    /// the first segments and it expires after the preload timeout.
    preload: AtomicBool,
    /// When it was created (for the time to its first segment).
    created: Instant,
    /// Whether its first segment has been counted.
    first_segment_seen: AtomicBool,
    /// Whether its completion has been counted.
    completion_counted: AtomicBool,
    /// Where its figures are counted.
    stats: Arc<Stats>,
    /// Bytes of each finished segment on disk, by index.
    on_disk: Mutex<std::collections::BTreeMap<usize, u64>>,
    /// The server-wide disk budget it counts against.
    disk: Arc<DiskBudget>,
    /// Cancelled to stop the pipeline.
    cancel: CancellationToken,
    /// Cancelled once the pipeline task has ended (pipeline at NULL).
    finished: CancellationToken,
}

impl Session {
    /// A new session in state `Starting`, touched now, with a random id and
    /// its folder `transcode_dir/<id>` (not created here). With a `grid`
    /// it is seekable: every slot is listed from the start. A `preload`
    /// session makes only its first segments until it is played.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        media_id: Uuid,
        user: &str,
        mode: Playback,
        transcode_dir: &Path,
        duration: Option<Duration>,
        variant: Variant,
        grid: Option<Grid>,
        settings: SeekSettings,
        preload: bool,
        stats: Arc<Stats>,
        disk: Arc<DiskBudget>,
    ) -> Self {
        let id = Uuid::new_v4();
        let (relocate, relocations) = tokio::sync::mpsc::channel(16);
        let session = Session {
            id,
            media_id,
            user: user.to_string(),
            mode,
            dir: transcode_dir.join(id.to_string()),
            duration,
            variant,
            grid,
            settings,
            status: watch::Sender::new(Status::new(grid.map_or(0, |g| g.len()))),
            last_access: Mutex::new(Instant::now()),
            last_requested: AtomicUsize::new(0),
            throttle: Mutex::new(Arc::new(Throttle::new(None))),
            relocate,
            relocations: Mutex::new(Some(relocations)),
            preload: AtomicBool::new(preload),
            created: Instant::now(),
            first_segment_seen: AtomicBool::new(false),
            completion_counted: AtomicBool::new(false),
            stats,
            on_disk: Mutex::new(Default::default()),
            disk,
            cancel: CancellationToken::new(),
            finished: CancellationToken::new(),
        };
        let limit = session.throttle_limit();
        session.throttle().set_limit(limit);
        session
    }

    /// Records activity: a playlist or segment request (the heartbeat).
    pub fn touch(&self) {
        *self.last_access.lock().expect("last_access") = Instant::now();
    }

    /// When it was last touched.
    pub fn last_access(&self) -> Instant {
        *self.last_access.lock().expect("last_access")
    }

    /// A copy of the current status.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Waits up to `wait` until `ready` holds for the status; returns the
    /// status either way.
    pub async fn wait_for(&self, wait: Duration, ready: impl Fn(&Status) -> bool) -> Status {
        let mut rx = self.status.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|s| ready(s))).await;
        let status = rx.borrow().clone();
        status
    }

    /// Progress in percent (0–100), if known: of the segments made for a
    /// seekable session, of the media encoded for a growing one.
    pub fn percent(&self, status: &Status) -> Option<f64> {
        if status.state == SessionState::Complete {
            return Some(100.0);
        }
        let total = self.duration?.as_secs_f64();
        if total <= 0.0 {
            return None;
        }
        let done = match self.grid {
            Some(grid) => status
                .segments
                .iter()
                .enumerate()
                .filter(|(_, s)| !matches!(s, Slot::Pending))
                .map(|(n, _)| grid.segment_duration(n).as_secs_f64())
                .sum(),
            None => status.position.as_secs_f64(),
        };
        Some((done / total * 100.0).min(100.0))
    }

    fn throttle(&self) -> Arc<Throttle> {
        self.throttle.lock().expect("throttle").clone()
    }

    /// Records segment `n` of `bytes` on disk (replacing an earlier copy).
    fn record_on_disk(&self, n: usize, bytes: u64) {
        let old = self.on_disk.lock().expect("on_disk").insert(n, bytes);
        if let Some(old) = old {
            self.disk.sub(old);
        }
        self.disk.add(bytes);
    }

    /// Its folder is gone: its bytes no longer count.
    fn release_disk(&self) {
        let all = std::mem::take(&mut *self.on_disk.lock().expect("on_disk"));
        self.disk.sub(all.values().sum());
    }

    /// Segments that may be evicted, oldest first: every finished one
    /// except the viewer's window (the newest asked for and the few after
    /// it). Only seekable sessions: an evicted segment is made again on
    /// request.
    fn evictable(&self) -> Vec<(usize, u64)> {
        if self.grid.is_none() {
            return Vec::new();
        }
        let current = self.last_requested.load(Ordering::SeqCst);
        let window = current..=current + self.settings.relocate_ahead + 1;
        self.on_disk
            .lock()
            .expect("on_disk")
            .iter()
            .filter(|(n, _)| !window.contains(*n))
            .map(|(n, b)| (*n, *b))
            .collect()
    }

    /// Deletes finished segment `n` to free disk space; it becomes pending
    /// again and is made anew if asked for.
    async fn evict(&self, n: usize) {
        let Some(bytes) = self.on_disk.lock().expect("on_disk").remove(&n) else {
            return;
        };
        self.update(|s| {
            if let Some(slot @ Slot::Ready(_)) = s.segments.get_mut(n) {
                *slot = Slot::Pending;
            }
        });
        let _ = tokio::fs::remove_file(self.dir.join(pipeline::segment_name(n))).await;
        self.disk.sub(bytes);
    }

    /// Whether it was started by a preload and has not been played yet.
    pub fn is_preload(&self) -> bool {
        self.preload.load(Ordering::SeqCst)
    }

    /// A client plays it: it is no longer a preload, and its encoder may
    /// run on to the usual throttle margin.
    pub fn mark_played(&self) {
        if self.preload.swap(false, Ordering::SeqCst) {
            tracing::info!(session_id = %self.id, media_id = %self.media_id, "preloaded session played");
            self.throttle().set_limit(self.throttle_limit());
        }
    }

    /// Where the encoder is held: for a preload, once its first two
    /// segments are made (the first is closed only when the encoder has
    /// gone a little past it); otherwise the margin past the end of the
    /// newest segment asked for.
    fn throttle_limit(&self) -> Option<Duration> {
        let grid = self.grid?;
        if self.is_preload() {
            return Some(grid.end(1.min(grid.len() - 1)));
        }
        let margin = self.settings.throttle_margin?;
        let n = self.last_requested.load(Ordering::SeqCst);
        Some(grid.end(n.min(grid.len() - 1)) + margin)
    }

    /// Segment `n` of a seekable session, once it is on disk or `wait` has
    /// passed. Records `n` as the newest segment asked for (which moves
    /// the throttle) and moves the encoder to `n` when `n` is behind where
    /// it started or further ahead than it would reach soon.
    pub async fn segment(&self, n: usize, wait: Duration) -> SegmentOutcome {
        let status = self.status();
        if status.state == SessionState::Failed {
            // Its folder is gone with its segments.
            return SegmentOutcome::Failed(
                status.error.unwrap_or_else(|| "the session failed".into()),
            );
        }
        let Some(grid) = self.grid else {
            return match status.slot(n) {
                Slot::Ready(_) => SegmentOutcome::Ready,
                _ => SegmentOutcome::Missing,
            };
        };
        if n >= grid.len() {
            return SegmentOutcome::Missing;
        }
        self.last_requested.store(n, Ordering::SeqCst);
        self.throttle().set_limit(self.throttle_limit());
        let status = self.status();
        match status.slot(n) {
            Slot::Ready(_) => return SegmentOutcome::Ready,
            Slot::Empty => return SegmentOutcome::Missing,
            Slot::Pending => {}
        }
        if let (SessionState::Failed, Some(e)) = (status.state, status.error.clone()) {
            return SegmentOutcome::Failed(e);
        }
        let coming = status.encoder_active
            && status.encoder_start <= n
            && n <= status.encoder_next + self.settings.relocate_ahead;
        if !coming {
            tracing::info!(
                session_id = %self.id,
                segment = n,
                encoder_at = status.encoder_next,
                "relocating the encoder"
            );
            let _ = self.relocate.try_send(n);
        }
        let status = self
            .wait_for(wait, |s| {
                s.slot(n) != Slot::Pending || s.state == SessionState::Failed
            })
            .await;
        match (status.slot(n), status.state) {
            (Slot::Ready(_), _) => SegmentOutcome::Ready,
            (Slot::Empty, _) => SegmentOutcome::Missing,
            (Slot::Pending, SessionState::Failed) => {
                SegmentOutcome::Failed(status.error.unwrap_or_else(|| "the session failed".into()))
            }
            (Slot::Pending, _) => SegmentOutcome::NotYet,
        }
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        self.status.send_modify(f);
    }

    /// Marks it failed with `message`; `kind` names the failure in the
    /// statistics.
    fn fail(&self, kind: &str, message: String) {
        tracing::error!(session_id = %self.id, media_id = %self.media_id, kind, error = %message, "session failed");
        self.stats.session_failed(self.mode, kind);
        self.update(|s| {
            s.state = SessionState::Failed;
            s.error = Some(message);
            s.encoder_active = false;
        });
    }
}

/// A session could not start: the server is at a cap.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AtCapacity {
    /// Its mode has its most sessions running.
    #[error(
        "the server is running its maximum of {limit} {} sessions ({}); try again later",
        mode.as_str(),
        if *mode == Playback::Remux { "--max-remuxes" } else { "--max-transcodes" }
    )]
    Sessions {
        /// The mode that is full.
        mode: Playback,
        /// Its cap (`--max-transcodes` or `--max-remuxes`).
        limit: usize,
    },
    /// The session folders are near the disk budget.
    #[error("the session folders are near their disk budget of {limit_bytes} bytes (--disk-budget); try again later")]
    Disk {
        /// The budget in bytes.
        limit_bytes: u64,
    },
}

/// The bytes all session folders may hold (`--disk-budget`), and what
/// they hold now.
#[derive(Debug, Default)]
pub struct DiskBudget {
    limit: Option<u64>,
    used: AtomicU64,
    over: tokio::sync::Notify,
}

impl DiskBudget {
    /// A budget of `limit` bytes (`None`: no limit).
    pub fn new(limit: Option<u64>) -> Self {
        DiskBudget {
            limit,
            ..Default::default()
        }
    }

    /// Bytes in finished segments of live sessions.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    fn add(&self, bytes: u64) {
        let used = self.used.fetch_add(bytes, Ordering::SeqCst) + bytes;
        if self.limit.is_some_and(|l| used > l) {
            self.over.notify_one();
        }
    }

    fn sub(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    /// Whether a new session may start: under 90 % of the limit, so that
    /// the sessions already running have room to go on.
    fn admits(&self) -> bool {
        self.limit.is_none_or(|l| self.used() < l / 10 * 9)
    }
}

/// Caps on concurrent sessions (admission control).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Transcode sessions with a pipeline at once.
    pub max_transcodes: usize,
    /// Remux sessions with a pipeline at once.
    pub max_remuxes: usize,
    /// An unplayed preloaded session is stopped after this long.
    pub preload_timeout: Duration,
}

/// The session manager: the registry plus what starting and stopping a
/// pipeline needs.
pub struct Sessions {
    registry: Mutex<Registry>,
    transcode_dir: PathBuf,
    templates: PipelineTemplates,
    first_segment: Duration,
    timeout: Duration,
    seek: SeekSettings,
    limits: Limits,
    stats: Arc<Stats>,
    disk: Arc<DiskBudget>,
}

impl Sessions {
    /// A manager writing under `transcode_dir`, encoding with `templates`,
    /// ending each session's first segment at `first_segment`, stopping
    /// sessions idle longer than `timeout`, and running seekable sessions
    /// with `seek`, admitting sessions within `limits`, counting into
    /// `stats` and keeping the session folders within `disk`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        transcode_dir: PathBuf,
        templates: PipelineTemplates,
        first_segment: Duration,
        timeout: Duration,
        seek: SeekSettings,
        limits: Limits,
        stats: Arc<Stats>,
        disk: Arc<DiskBudget>,
    ) -> Self {
        Sessions {
            registry: Mutex::new(Registry::default()),
            transcode_dir,
            templates,
            first_segment,
            timeout,
            seek,
            limits,
            stats,
            disk,
        }
    }

    /// The disk budget and what the session folders hold.
    pub fn disk(&self) -> &DiskBudget {
        &self.disk
    }

    /// Frees space until the session folders are back under the disk
    /// budget: the oldest finished segments of the least recently used
    /// sessions go first, never a viewer's current window. Returns the
    /// segments evicted.
    pub async fn enforce_disk_budget(&self) -> usize {
        let Some(limit) = self.disk.limit() else {
            return 0;
        };
        if self.disk.used() <= limit {
            return 0;
        }
        let mut sessions: Vec<Arc<Session>> = self.registry().all().cloned().collect();
        sessions.sort_by_key(|s| s.last_access());
        let mut evicted = 0;
        'sessions: for s in sessions {
            for (n, _) in s.evictable() {
                if self.disk.used() <= limit / 10 * 9 {
                    break 'sessions;
                }
                s.evict(n).await;
                evicted += 1;
            }
        }
        if evicted > 0 {
            tracing::info!(
                evicted,
                used_bytes = self.disk.used(),
                limit_bytes = limit,
                "disk budget: evicted the oldest segments of the least recently used sessions"
            );
        }
        evicted
    }

    /// `(mode, state)` of every live session, for the statistics.
    pub fn snapshot(&self) -> Vec<(Playback, SessionState)> {
        self.registry()
            .all()
            .map(|s| (s.mode, s.status.borrow().state))
            .collect()
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().expect("registry lock")
    }

    /// The session `id` of `user` (another user's is `None`, like an unknown id).
    pub fn get(&self, id: &Uuid, user: &str) -> Option<Arc<Session>> {
        self.registry().get(id, user)
    }

    /// Every session of `user`.
    pub fn for_user(&self, user: &str) -> Vec<Arc<Session>> {
        self.registry().for_user(user)
    }

    /// Starts a session of `user` for `item` in `mode`, or returns the live
    /// one they already have (a failed one is replaced). A `preload`
    /// session makes only its first segments until a later start (not a
    /// preload) plays it. Does not wait for the pipeline: it is built and
    /// started on a task. Returns the session and whether it was created.
    ///
    /// # Errors
    /// [`AtCapacity`] when a new session would pass its mode's cap; reusing
    /// a session never counts against it.
    pub fn start(
        self: &Arc<Self>,
        item: &MediaItem,
        mode: Playback,
        user: &str,
        preload: bool,
    ) -> Result<(Arc<Session>, bool), AtCapacity> {
        let (session, replaced) = {
            let mut registry = self.registry();
            if let Some(existing) = registry.by_owner(&item.id, user) {
                if existing.status.borrow().state != SessionState::Failed {
                    existing.touch();
                    if !preload {
                        existing.mark_played();
                    }
                    return Ok((existing, false));
                }
            }
            let limit = match mode {
                Playback::Remux => self.limits.max_remuxes,
                _ => self.limits.max_transcodes,
            };
            let live = registry
                .all()
                .filter(|s| s.mode == mode && s.status.borrow().encoder_active)
                .count();
            if live >= limit {
                self.stats.error("capacity");
                tracing::warn!(
                    mode = mode.as_str(),
                    limit,
                    user,
                    "session refused: at capacity"
                );
                return Err(AtCapacity::Sessions { mode, limit });
            }
            if !self.disk.admits() {
                self.stats.error("disk_budget");
                tracing::warn!(
                    used_bytes = self.disk.used(),
                    user,
                    "session refused: disk budget"
                );
                return Err(AtCapacity::Disk {
                    limit_bytes: self.disk.limit().unwrap_or(0),
                });
            }
            let duration = item.duration_s.map(Duration::from_secs_f64);
            let grid = duration
                .filter(|_| cuts_are_encoded(item))
                .and_then(|d| Grid::new(self.first_segment, d));
            let session = Arc::new(Session::new(
                item.id,
                user,
                mode,
                &self.transcode_dir,
                duration,
                Variant::for_item(item),
                grid,
                self.seek,
                preload,
                self.stats.clone(),
                self.disk.clone(),
            ));
            let replaced = registry.insert(session.clone());
            (session, replaced)
        };
        if let Some(old) = replaced {
            tokio::spawn(stop_session(old, StopReason::Replaced));
        }
        self.stats.session_started(mode);
        let span = tracing::info_span!("session", session_id = %session.id, media_id = %item.id);
        tracing::info!(
            parent: &span,
            session_id = %session.id,
            media_id = %item.id,
            path = %item.path,
            mode = mode.as_str(),
            user,
            preload,
            "session started"
        );
        tokio::spawn(
            run(
                session.clone(),
                item.clone(),
                self.templates.clone(),
                self.first_segment,
            )
            .instrument(span),
        );
        Ok((session, true))
    }

    /// Stops session `id` of `user` and deletes its folder. Returns whether
    /// there was such a session.
    pub async fn stop(&self, id: &Uuid, user: &str) -> bool {
        let session = {
            let mut registry = self.registry();
            match registry.get(id, user) {
                Some(_) => registry.remove(id),
                None => None,
            }
        };
        match session {
            Some(s) => {
                stop_session(s, StopReason::Delete).await;
                true
            }
            None => false,
        }
    }

    /// Stops every session idle for longer than its timeout: the session
    /// timeout, or the preload timeout for an unplayed preload.
    pub async fn reap_idle(&self) {
        let idle: Vec<Arc<Session>> = {
            let mut registry = self.registry();
            let ids = registry.idle(Instant::now(), |s| self.timeout_of(s));
            ids.iter().filter_map(|id| registry.remove(id)).collect()
        };
        for s in idle {
            let reason = if s.is_preload() {
                StopReason::PreloadTimeout
            } else {
                StopReason::Timeout
            };
            stop_session(s, reason).await;
        }
    }

    fn timeout_of(&self, session: &Session) -> Duration {
        if session.is_preload() {
            self.limits.preload_timeout
        } else {
            self.timeout
        }
    }

    /// Runs [`Self::reap_idle`] periodically, and [`Self::enforce_disk_budget`]
    /// then and whenever the budget is passed, until `shutdown` is cancelled.
    pub async fn reaper(self: Arc<Self>, shutdown: CancellationToken) {
        let period = (self.timeout.min(self.limits.preload_timeout) / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        let mut tick = tokio::time::interval(period);
        let mut trimmed = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    self.reap_idle().await;
                    self.enforce_disk_budget().await;
                    self.trim_when_idle(&mut trimmed);
                }
                _ = self.disk.over.notified() => {
                    self.enforce_disk_budget().await;
                }
            }
        }
    }

    /// Once no session is left, hands the memory the pipelines freed back
    /// to the system (`malloc_trim`): glibc otherwise keeps it in its
    /// per-thread arenas, and after a burst of sessions the server stayed
    /// ~180 MB above where it started (bench/soak.py). Runs once per
    /// busy-then-empty period; `trimmed` remembers which.
    fn trim_when_idle(&self, trimmed: &mut bool) {
        let empty = self.registry().is_empty();
        if !empty {
            *trimmed = false;
        } else if !*trimmed {
            *trimmed = true;
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim only releases free memory; it has no
            // preconditions and is thread-safe in glibc.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }

    /// Stops every session and deletes every session folder.
    pub async fn shutdown(&self) {
        let all = self.registry().drain();
        let n = all.len();
        futures_util::future::join_all(
            all.into_iter()
                .map(|s| stop_session(s, StopReason::Shutdown)),
        )
        .await;
        tracing::info!(sessions = n, "all sessions stopped");
    }

    /// Deletes session folders (named by UUID) left in the transcode dir by
    /// an earlier run that did not shut down cleanly. Other files are kept.
    pub async fn remove_stale_folders(&self) -> std::io::Result<usize> {
        let mut removed = 0;
        let mut entries = match tokio::fs::read_dir(&self.transcode_dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name();
            if Uuid::parse_str(&name.to_string_lossy()).is_ok() && entry.file_type().await?.is_dir()
            {
                tokio::fs::remove_dir_all(entry.path()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// How long stopping waits for a pipeline to reach NULL before deleting
/// its folder anyway.
const STOP_WAIT: Duration = Duration::from_secs(10);

async fn stop_session(session: Arc<Session>, reason: StopReason) {
    session.stats.session_stopped(reason);
    session.cancel.cancel();
    // The pipeline task sets the pipeline to NULL as it exits.
    if tokio::time::timeout(DRAIN_WAIT + STOP_WAIT, session.finished.cancelled())
        .await
        .is_err()
    {
        tracing::warn!(session_id = %session.id, "pipeline did not stop in time");
    }
    remove_dir(&session.dir).await;
    session.release_disk();
    tracing::info!(
        session_id = %session.id,
        media_id = %session.media_id,
        reason = reason.as_str(),
        "session stopped, folder deleted"
    );
}

async fn remove_dir(dir: &Path) {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "could not delete session folder")
        }
    }
}

/// Sets `pipeline` to NULL on a thread of its own (it may wait for
/// streaming threads to stop). Not `spawn_blocking`: should GStreamer never
/// return, that thread would hold up the runtime's shutdown, and with it
/// the process's exit; waiting here is bounded by [`STOP_WAIT`].
async fn set_null(pipeline: gst::Pipeline) {
    let (done, finished) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("pipeline-stop".into())
        .spawn(move || {
            if let Err(e) = pipeline.set_state(gst::State::Null) {
                tracing::warn!(error = %e, "pipeline did not go to NULL cleanly");
            }
            let _ = done.send(());
        });
    if spawned.is_err() {
        tracing::error!("could not start a thread to stop a pipeline");
        return;
    }
    if tokio::time::timeout(STOP_WAIT, finished).await.is_err() {
        tracing::error!("pipeline did not reach NULL in time; its thread is left behind");
    }
}

/// Ends a pipeline that is still running the way a file ends: EOS from its
/// source, so that `splitmuxsink` finishes its segment, then NULL. Setting
/// a pipeline to NULL while `splitmuxsink` is opening a segment could hang
/// (seen when a session was stopped ~10 ms after it started). Waits for the
/// EOS (or an error) at most [`DRAIN_WAIT`].
async fn drain_and_stop(pipeline: gst::Pipeline, messages: &mut gst::bus::BusStream) {
    if pipeline.send_event(gst::event::Eos::new()) {
        let _ = tokio::time::timeout(DRAIN_WAIT, async {
            while let Some(msg) = messages.next().await {
                if matches!(
                    msg.view(),
                    gst::MessageView::Eos(_) | gst::MessageView::Error(_)
                ) {
                    break;
                }
            }
        })
        .await;
    }
    set_null(pipeline).await;
}

/// A running pipeline whose output has not moved for this long (and is not
/// throttled) is ended where it is; if that does not end it within as long
/// again, the session fails. No healthy pipeline goes this long without a
/// buffer: even 4 concurrent 1080p transcodes output several per second.
const STALL_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a stopped session's pipeline may take to drain.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Whether the stream that drives the cuts (video, else audio) is encoded
/// by hlsd, so that cuts can fall on a fixed grid: then the session is
/// seekable. Copied video is cut at the source's key frames instead.
fn cuts_are_encoded(item: &MediaItem) -> bool {
    match item.decision.video {
        Some(VideoPlan::Transcode { .. }) => true,
        Some(VideoPlan::Copy) => false,
        None => matches!(item.decision.audio, Some((_, AudioPlan::Transcode))),
    }
}

/// A grid that never ends, for cutting a transcode of unknown duration.
fn open_grid(first: Duration) -> Grid {
    Grid::new(first, Duration::from_secs(100_000 * 3600)).expect("non-zero duration")
}

/// Deletes the `.part` files that pipeline `generation` left in `dir`.
async fn remove_parts(dir: &Path, generation: u32) {
    let suffix = format!(".{generation}.part");
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name().to_string_lossy().ends_with(&suffix) {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

/// Stops a pipeline that is being replaced or cancelled: lets its
/// throttled streams go, drains it, and deletes its unfinished segments.
async fn retire(
    pipeline: gst::Pipeline,
    mut messages: gst::bus::BusStream,
    throttle: Arc<Throttle>,
    dir: PathBuf,
    generation: u32,
) {
    throttle.release();
    drain_and_stop(pipeline, &mut messages).await;
    remove_parts(&dir, generation).await;
}

/// Releases a throttle when dropped.
struct ReleaseOnDrop(Arc<Throttle>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Owns a session's running pipeline. If it is dropped still owning it
/// (the task was dropped, at runtime shutdown say), it releases the
/// throttle and sets the pipeline to NULL on a thread of its own: a
/// pipeline dropped while PLAYING would dispose its elements under running
/// streaming threads (seen to deadlock).
struct PipelineGuard {
    pipeline: Option<gst::Pipeline>,
    throttle: Arc<Throttle>,
}

impl PipelineGuard {
    /// Takes the pipeline out, for the caller to stop.
    fn take(&mut self) -> gst::Pipeline {
        self.pipeline.take().expect("the pipeline is taken once")
    }
}

impl Drop for PipelineGuard {
    fn drop(&mut self) {
        self.throttle.release();
        if let Some(pipeline) = self.pipeline.take() {
            let _ = std::thread::Builder::new()
                .name("pipeline-drop".into())
                .spawn(move || {
                    let _ = pipeline.set_state(gst::State::Null);
                });
        }
    }
}

/// `state` after the throttle was seen `holding` (or not).
fn throttled_state(state: SessionState, holding: bool) -> SessionState {
    match (state, holding) {
        (SessionState::Running, true) => SessionState::Throttled,
        (SessionState::Throttled, false) => SessionState::Running,
        (state, _) => state,
    }
}

/// How one pipeline of a session ended.
enum End {
    /// The session was cancelled; the pipeline is stopped.
    Cancelled,
    /// The encoder must move to this segment; the old pipeline is being
    /// stopped by the task.
    Relocate(usize, tokio::task::JoinHandle<()>),
    /// It reached the end of the file.
    Eos,
    /// It failed (the status says why).
    Failed,
}

/// Builds and runs a session's pipelines, feeding their buses into the
/// status, until the session is cancelled, fails or is complete. A
/// seekable session runs one pipeline after another as the encoder is
/// relocated; each starts at a grid segment.
async fn run(
    session: Arc<Session>,
    item: MediaItem,
    templates: PipelineTemplates,
    first_segment: Duration,
) {
    let _finished = session.finished.clone().drop_guard();
    if let Err(e) = tokio::fs::create_dir_all(&session.dir).await {
        tracing::error!(error = %e, dir = %session.dir.display(), "cannot create session folder");
        session.fail("write", format!("cannot create session folder: {e}"));
        return;
    }
    let Some(mut relocations) = session.relocations.lock().expect("relocations").take() else {
        return;
    };
    let cut_grid = session
        .grid
        .or_else(|| cuts_are_encoded(&item).then(|| open_grid(first_segment)));
    let mut retiring = Vec::new();
    let mut start_index = 0;
    let mut generation = 0u32;
    loop {
        let options = pipeline::BuildOptions {
            grid: cut_grid,
            first_segment,
            start_index,
            generation,
            throttle: Arc::new(Throttle::new(session.throttle_limit())),
        };
        match run_pipeline(&session, &item, &templates, options, &mut relocations).await {
            End::Relocate(n, old) => {
                retiring.push(old);
                start_index = n;
                generation += 1;
                continue;
            }
            End::Cancelled => break,
            End::Failed => {
                // A failed session serves nothing: its segments go now,
                // not when it is reaped.
                remove_dir(&session.dir).await;
                session.release_disk();
                break;
            }
            End::Eos => {}
        }
        if session.grid.is_none() {
            break;
        }
        // A seekable session outlives its encoder: a segment it skipped
        // (idle) or one evicted for the disk budget is made on request.
        let next = loop {
            tokio::select! {
                _ = session.cancel.cancelled() => break None,
                n = relocations.recv() => match n {
                    None => break None,
                    Some(n) if session.status().slot(n) == Slot::Pending => break Some(n),
                    Some(_) => {}
                },
            }
        };
        match next {
            Some(n) => {
                start_index = n;
                generation += 1;
            }
            None => break,
        }
    }
    for old in retiring {
        let _ = old.await;
    }
}

/// Runs one pipeline of `session`, starting at `options.start_index`.
async fn run_pipeline(
    session: &Arc<Session>,
    item: &MediaItem,
    templates: &PipelineTemplates,
    options: pipeline::BuildOptions,
    relocations: &mut tokio::sync::mpsc::Receiver<usize>,
) -> End {
    let start_index = options.start_index;
    let generation = options.generation;
    let throttle = options.throttle.clone();
    // However this ends (even by the task being dropped), no streaming
    // thread stays held.
    let _release = ReleaseOnDrop(throttle.clone());
    *session.throttle.lock().expect("throttle") = throttle.clone();
    let start_time = session
        .grid
        .map(|g| g.start(start_index))
        .unwrap_or_default();
    session.update(|s| {
        s.encoder_start = start_index;
        s.encoder_next = start_index;
        s.encoder_active = true;
        s.position = start_time;
        s.segment_start = start_time;
        if matches!(
            s.state,
            SessionState::Idle | SessionState::Throttled | SessionState::Complete
        ) {
            s.state = SessionState::Running;
        }
    });
    let dir = session.dir.clone();
    let build_item = item.clone();
    let build_templates = templates.clone();
    let built = tokio::task::spawn_blocking(move || {
        let built = pipeline::build(&build_item, &dir, &build_templates, &options)?;
        if let Err(e) = built.pipeline.set_state(gst::State::Playing) {
            // A pipeline must be at NULL before it is dropped.
            let _ = built.pipeline.set_state(gst::State::Null);
            return Err(e.into());
        }
        anyhow::Ok(built)
    })
    .await;
    let built = match built {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::error!(error = format!("{e:#}"), "pipeline could not start");
            session.fail("pipeline_start", "the pipeline could not start".into());
            return End::Failed;
        }
        Err(e) => {
            session.fail("pipeline_start", format!("pipeline task failed: {e}"));
            return End::Failed;
        }
    };
    if start_index > 0 {
        tracing::info!(segment = start_index, generation, "encoder relocated");
    }
    let started = Instant::now();
    // Media seconds per wall-clock second since this pipeline started.
    let speed = |s: &Status| {
        let elapsed = started.elapsed().as_secs_f64();
        if elapsed > 0.0 {
            let done = s.position.saturating_sub(start_time).as_secs_f64();
            (done / elapsed * 100.0).round() / 100.0
        } else {
            0.0
        }
    };
    let mut guard = PipelineGuard {
        pipeline: Some(built.pipeline.clone()),
        throttle: throttle.clone(),
    };
    let pipeline = built.pipeline;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut messages = bus.stream();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let position = || Duration::from_nanos(built.position_ns.load(Ordering::Relaxed));
    // (position, when it last moved), and whether the stream was ended
    // because it stopped moving.
    let mut progress = (position(), Instant::now());
    let mut ended_stalled = false;
    loop {
        tokio::select! {
            _ = session.cancel.cancelled() => {
                retire(guard.take(), messages, throttle, session.dir.clone(), generation).await;
                return End::Cancelled;
            }
            Some(n) = relocations.recv() => {
                let status = session.status();
                let coming = status.encoder_start <= n
                    && n <= status.encoder_next + session.settings.relocate_ahead;
                if status.slot(n) != Slot::Pending || coming {
                    continue;
                }
                let old = tokio::spawn(retire(guard.take(), messages, throttle, session.dir.clone(), generation));
                return End::Relocate(n, old);
            }
            msg = messages.next() => {
                let Some(msg) = msg else {
                    session.fail("pipeline", "the pipeline's bus closed".into());
                    set_null(guard.take()).await;
                    return End::Failed;
                };
                let Some(event) = pipeline::event_of(&msg, &pipeline) else { continue };
                tracing::debug!(?event, "pipeline event");
                // Fresh position with every event, so that a segment is
                // reported with the media time the encoder had reached.
                let reached = position();
                let holding = throttle.is_holding();
                session.update(|s| {
                    s.position = s.position.max(reached);
                    s.state = throttled_state(s.state, holding);
                });
                match event {
                    PipelineEvent::Playing => session.update(|s| {
                        if s.state == SessionState::Starting {
                            s.state = SessionState::Running;
                        }
                    }),
                    PipelineEvent::SegmentOpened { running_time } => {
                        session.update(|s| s.segment_start = running_time)
                    }
                    PipelineEvent::SegmentClosed { running_time } => {
                        if let Err(e) = finish_segment(session, &built.open_segments, running_time).await {
                            tracing::error!(error = %e, "cannot finish a segment");
                            session.fail("write", format!("cannot write segments: {e}"));
                            set_null(guard.take()).await;
                            remove_parts(&session.dir, generation).await;
                            return End::Failed;
                        }
                    }
                    PipelineEvent::Eos => {
                        session.update(|s| {
                            s.encoder_active = false;
                            s.speed = speed(s);
                            if session.grid.is_some() {
                                for slot in s.segments.iter_mut().skip(s.encoder_start) {
                                    if *slot == Slot::Pending {
                                        *slot = Slot::Empty;
                                    }
                                }
                            } else {
                                // splitmuxsink closes the last segment at its last
                                // buffer's start; the progress probe saw that
                                // buffer's end, so the last segment is extended
                                // to it (one frame at 1 fps).
                                let total: Duration = s.ready_prefix().iter().sum();
                                let position = s.position;
                                if let Some(Slot::Ready(last)) = s.segments.last_mut() {
                                    *last += position.saturating_sub(total);
                                }
                                s.position = s.position.max(total);
                            }
                            s.state = if s.segments.contains(&Slot::Pending) {
                                SessionState::Idle
                            } else {
                                SessionState::Complete
                            };
                        });
                        let status = session.status();
                        tracing::info!(
                            session_id = %session.id,
                            media_id = %session.media_id,
                            segments = status.ready_count(),
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "{}",
                            if status.state == SessionState::Complete {
                                "session complete"
                            } else {
                                "encoder reached the end; skipped segments are made on request"
                            }
                        );
                        if status.state == SessionState::Complete
                            && !session.completion_counted.swap(true, Ordering::SeqCst)
                        {
                            session.stats.session_completed(session.mode);
                        }
                        set_null(guard.take()).await;
                        remove_parts(&session.dir, generation).await;
                        return End::Eos;
                    }
                    PipelineEvent::Error { element, message, debug: details } => {
                        tracing::error!(element, message, details, "pipeline error");
                        let message = if details.contains("No space left on device") {
                            format!("{message} The transcode dir is full.")
                        } else {
                            message
                        };
                        session.fail("pipeline", message);
                        set_null(guard.take()).await;
                        remove_parts(&session.dir, generation).await;
                        return End::Failed;
                    }
                    PipelineEvent::Warning { element, message } => {
                        tracing::warn!(element, message, "pipeline warning")
                    }
                }
            }
            _ = tick.tick() => {
                let reached = position();
                let holding = throttle.is_holding();
                if reached != progress.0 || holding {
                    progress = (reached, Instant::now());
                } else if progress.1.elapsed() > STALL_TIMEOUT {
                    if ended_stalled {
                        session.fail("stalled", "the pipeline stopped making progress (a damaged file?)".into());
                        set_null(guard.take()).await;
                        remove_parts(&session.dir, generation).await;
                        return End::Failed;
                    }
                    // A demuxer resyncing through a damaged tail (seen: a
                    // valid file followed by gigabytes of zeros) reads on
                    // without output: end the streams where they are, so
                    // the segments made so far are closed and kept.
                    tracing::warn!(
                        session_id = %session.id,
                        media_id = %session.media_id,
                        position_s = reached.as_secs_f64(),
                        "no progress for {} s: ending the stream here",
                        STALL_TIMEOUT.as_secs()
                    );
                    for pad in built.sinks.iter().flat_map(|s| s.sink_pads()) {
                        pad.send_event(gst::event::Eos::new());
                    }
                    ended_stalled = true;
                    progress.1 = Instant::now();
                }
                session.update(|s| {
                    if s.encoder_active {
                        s.position = reached;
                        s.speed = speed(s);
                        s.state = throttled_state(s.state, holding);
                    }
                });
            }
        }
    }
}

/// Renames the oldest open segment's `.part` file to its final name and
/// marks it ready, with the duration since the segment opened.
///
/// # Errors
/// The rename's error (a full or read-only disk, say).
async fn finish_segment(
    session: &Session,
    open: &pipeline::OpenSegments,
    closed_at: Duration,
) -> std::io::Result<()> {
    let Some((part, final_path)) = open.lock().expect("open segments").pop_front() else {
        tracing::warn!("a segment closed that was never opened");
        return Ok(());
    };
    tokio::fs::rename(&part, &final_path).await?;
    let bytes = tokio::fs::metadata(&final_path)
        .await
        .map_or(0, |m| m.len());
    let Some(n) = final_path
        .file_name()
        .and_then(|n| pipeline::segment_index(&n.to_string_lossy()))
    else {
        return Ok(());
    };
    let mut made = Duration::ZERO;
    session.update(|s| {
        let duration = closed_at.saturating_sub(s.segment_start);
        made = duration;
        if s.segments.len() <= n {
            s.segments.resize(n + 1, Slot::Pending);
        }
        s.segments[n] = Slot::Ready(duration);
        s.segment_start = closed_at;
        s.encoder_next = n + 1;
        if s.state == SessionState::Starting {
            s.state = SessionState::Running;
        }
    });
    session.stats.segment_made(session.mode, made);
    session.record_on_disk(n, bytes);
    if !session.first_segment_seen.swap(true, Ordering::SeqCst) {
        let elapsed = session.created.elapsed();
        session.stats.first_segment(elapsed);
        tracing::info!(
            session_id = %session.id,
            media_id = %session.media_id,
            segment = n,
            ttfs_ms = elapsed.as_millis() as u64,
            "first segment ready"
        );
    }
    Ok(())
}
