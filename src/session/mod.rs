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
use crate::hls::Variant;
use crate::library::{MediaItem, Playback};
use crate::pipeline::{self, PipelineEvent};
use futures_util::StreamExt;
use gst::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
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
    /// Every segment is written; the pipeline is stopped.
    Complete,
    /// The pipeline reported an error; see [`Status::error`].
    Failed,
}

/// What a session's bus task has learnt so far.
#[derive(Debug, Clone)]
pub struct Status {
    /// Current state.
    pub state: SessionState,
    /// Durations of finished segments, in order (`segment_00000.ts` first).
    pub segments: Vec<Duration>,
    /// Running time at which the segment being written started.
    segment_start: Duration,
    /// Media time encoded so far.
    pub position: Duration,
    /// Media seconds per wall-clock second since the pipeline started.
    pub speed: f64,
    /// A plain error message when failed.
    pub error: Option<String>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: SessionState::Starting,
            segments: Vec::new(),
            segment_start: Duration::ZERO,
            position: Duration::ZERO,
            speed: 0.0,
            error: None,
        }
    }
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
    status: watch::Sender<Status>,
    last_access: Mutex<Instant>,
    /// Cancelled to stop the pipeline.
    cancel: CancellationToken,
    /// Cancelled once the pipeline task has ended (pipeline at NULL).
    finished: CancellationToken,
}

impl Session {
    /// A new session in state `Starting`, touched now, with a random id and
    /// its folder `transcode_dir/<id>` (not created here).
    pub fn new(
        media_id: Uuid,
        user: &str,
        mode: Playback,
        transcode_dir: &Path,
        duration: Option<Duration>,
        variant: Variant,
    ) -> Self {
        let id = Uuid::new_v4();
        Session {
            id,
            media_id,
            user: user.to_string(),
            mode,
            dir: transcode_dir.join(id.to_string()),
            duration,
            variant,
            status: watch::Sender::new(Status::default()),
            last_access: Mutex::new(Instant::now()),
            cancel: CancellationToken::new(),
            finished: CancellationToken::new(),
        }
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

    /// Progress in percent of the source duration (0–100), if known.
    pub fn percent(&self, status: &Status) -> Option<f64> {
        if status.state == SessionState::Complete {
            return Some(100.0);
        }
        let total = self.duration?.as_secs_f64();
        (total > 0.0).then(|| (status.position.as_secs_f64() / total * 100.0).min(100.0))
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        self.status.send_modify(f);
    }

    fn apply(&self, event: &PipelineEvent) {
        match event {
            PipelineEvent::Playing => self.update(|s| {
                if s.state == SessionState::Starting {
                    s.state = SessionState::Running;
                }
            }),
            PipelineEvent::SegmentOpened { running_time } => {
                self.update(|s| s.segment_start = *running_time)
            }
            PipelineEvent::SegmentClosed { running_time } => self.update(|s| {
                s.segments
                    .push(running_time.saturating_sub(s.segment_start));
                s.segment_start = *running_time;
                if s.state == SessionState::Starting {
                    s.state = SessionState::Running;
                }
            }),
            PipelineEvent::Eos => self.update(|s| {
                s.state = SessionState::Complete;
                // splitmuxsink closes the last segment at its last buffer's
                // start; the progress probe saw that buffer's end, so the
                // last segment is extended to it (one frame at 1 fps).
                let total: Duration = s.segments.iter().sum();
                if let Some(last) = s.segments.last_mut() {
                    *last += s.position.saturating_sub(total);
                }
                s.position = s.position.max(total);
            }),
            PipelineEvent::Error {
                element,
                message,
                debug: details,
            } => {
                tracing::error!(element, message, details, "pipeline error");
                self.update(|s| {
                    s.state = SessionState::Failed;
                    s.error.get_or_insert_with(|| message.clone());
                })
            }
            PipelineEvent::Warning { element, message } => {
                tracing::warn!(element, message, "pipeline warning")
            }
        }
    }

    fn fail(&self, message: String) {
        self.update(|s| {
            s.state = SessionState::Failed;
            s.error = Some(message);
        });
    }
}

/// The session manager: the registry plus what starting and stopping a
/// pipeline needs.
pub struct Sessions {
    registry: Mutex<Registry>,
    transcode_dir: PathBuf,
    templates: PipelineTemplates,
    first_segment: Duration,
    timeout: Duration,
}

impl Sessions {
    /// A manager writing under `transcode_dir`, encoding with `templates`,
    /// ending each session's first segment at `first_segment`, and stopping
    /// sessions idle longer than `timeout`.
    pub fn new(
        transcode_dir: PathBuf,
        templates: PipelineTemplates,
        first_segment: Duration,
        timeout: Duration,
    ) -> Self {
        Sessions {
            registry: Mutex::new(Registry::default()),
            transcode_dir,
            templates,
            first_segment,
            timeout,
        }
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
    /// one they already have (a failed one is replaced). Does not wait for
    /// the pipeline: it is built and started on a task. Returns the session
    /// and whether it was created.
    pub fn start(
        self: &Arc<Self>,
        item: &MediaItem,
        mode: Playback,
        user: &str,
    ) -> (Arc<Session>, bool) {
        let (session, replaced) = {
            let mut registry = self.registry();
            if let Some(existing) = registry.by_owner(&item.id, user) {
                if existing.status.borrow().state != SessionState::Failed {
                    existing.touch();
                    return (existing, false);
                }
            }
            let session = Arc::new(Session::new(
                item.id,
                user,
                mode,
                &self.transcode_dir,
                item.duration_s.map(Duration::from_secs_f64),
                Variant::for_item(item),
            ));
            let replaced = registry.insert(session.clone());
            (session, replaced)
        };
        if let Some(old) = replaced {
            tokio::spawn(stop_session(old));
        }
        let span = tracing::info_span!("session", session_id = %session.id, media_id = %item.id);
        tracing::info!(parent: &span, path = %item.path, mode = mode.as_str(), user, "session started");
        tokio::spawn(
            run(
                session.clone(),
                item.clone(),
                self.templates.clone(),
                self.first_segment,
            )
            .instrument(span),
        );
        (session, true)
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
                stop_session(s).await;
                true
            }
            None => false,
        }
    }

    /// Stops every session idle for longer than the timeout.
    pub async fn reap_idle(&self) {
        let idle: Vec<Arc<Session>> = {
            let mut registry = self.registry();
            let ids = registry.idle(Instant::now(), self.timeout);
            ids.iter().filter_map(|id| registry.remove(id)).collect()
        };
        for s in idle {
            tracing::info!(session_id = %s.id, "session idle: stopping");
            stop_session(s).await;
        }
    }

    /// Runs [`Self::reap_idle`] periodically until `shutdown` is cancelled.
    pub async fn reaper(self: Arc<Self>, shutdown: CancellationToken) {
        let period = (self.timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.reap_idle().await,
            }
        }
    }

    /// Stops every session and deletes every session folder.
    pub async fn shutdown(&self) {
        let all = self.registry().drain();
        let n = all.len();
        futures_util::future::join_all(all.into_iter().map(stop_session)).await;
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

async fn stop_session(session: Arc<Session>) {
    session.cancel.cancel();
    // The pipeline task sets the pipeline to NULL as it exits.
    if tokio::time::timeout(DRAIN_WAIT + STOP_WAIT, session.finished.cancelled())
        .await
        .is_err()
    {
        tracing::warn!(session_id = %session.id, "pipeline did not stop in time");
    }
    remove_dir(&session.dir).await;
    tracing::info!(session_id = %session.id, "session stopped, folder deleted");
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

/// How long a stopped session's pipeline may take to drain.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Builds and runs the session's pipeline, feeding its bus into the status
/// until it ends, fails or is cancelled.
async fn run(
    session: Arc<Session>,
    item: MediaItem,
    templates: PipelineTemplates,
    first_segment: Duration,
) {
    let _finished = session.finished.clone().drop_guard();
    if let Err(e) = tokio::fs::create_dir_all(&session.dir).await {
        tracing::error!(error = %e, dir = %session.dir.display(), "cannot create session folder");
        session.fail(format!("cannot create session folder: {e}"));
        return;
    }
    let dir = session.dir.clone();
    let built = tokio::task::spawn_blocking(move || {
        let built = pipeline::build(&item, &dir, &templates, first_segment)?;
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
            session.fail("the pipeline could not start".into());
            return;
        }
        Err(e) => {
            session.fail(format!("pipeline task failed: {e}"));
            return;
        }
    };
    if session.cancel.is_cancelled() {
        set_null(built.pipeline).await;
        return;
    }
    let started = Instant::now();
    // Media seconds per wall-clock second since the start, 2 decimals.
    let speed = |s: &Status| {
        let elapsed = started.elapsed().as_secs_f64();
        if elapsed > 0.0 {
            (s.position.as_secs_f64() / elapsed * 100.0).round() / 100.0
        } else {
            0.0
        }
    };
    let pipeline = built.pipeline;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut messages = bus.stream();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut cancelled = false;
    loop {
        tokio::select! {
            _ = session.cancel.cancelled() => {
                cancelled = true;
                break;
            }
            msg = messages.next() => {
                let Some(msg) = msg else { break };
                let Some(event) = pipeline::event_of(&msg, &pipeline) else { continue };
                tracing::debug!(?event, "pipeline event");
                // Fresh position with every event, so that a segment is
                // reported with the media time the encoder had reached.
                let position = Duration::from_nanos(built.position_ns.load(Ordering::Relaxed));
                session.update(|s| s.position = s.position.max(position));
                session.apply(&event);
                if matches!(event, PipelineEvent::Eos | PipelineEvent::Error { .. }) {
                    break;
                }
            }
            _ = tick.tick() => {
                let position = Duration::from_nanos(built.position_ns.load(Ordering::Relaxed));
                session.update(|s| {
                    if s.state == SessionState::Running || s.state == SessionState::Starting {
                        s.position = position;
                    }
                    s.speed = speed(s);
                });
            }
        }
    }
    let status = session.status();
    if status.state == SessionState::Complete {
        session.update(|s| s.speed = speed(s));
        tracing::info!(
            segments = status.segments.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "session complete"
        );
    }
    if cancelled {
        drain_and_stop(pipeline, &mut messages).await;
    } else {
        set_null(pipeline).await;
    }
}
