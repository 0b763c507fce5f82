//! The session manager: the registry, starting and stopping sessions, the
//! idle reaper.
//!
//! The registry lives behind a `std::sync::Mutex` that is only held for
//! map operations, never across an `.await` (as in mini-redis's `db.rs`).

use super::registry::Registry;
use super::session::{Opening, Session, SessionState};
use crate::config::SessionSettings;
use crate::library::{MediaItem, Playback};
use crate::rendition::Presentation;
use crate::stats::{Stats, StopReason};
use crate::supervisor::{AtCapacity, Supervisor, Title};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A user's session nothing asked for this long gives way to their new
/// one at the per-user cap: 30 s, five times the segment length, so a
/// player that is playing (it asks for a segment at least every 6 s) never
/// loses its session, while one left for another film does.
const GIVES_WAY_AFTER: Duration = Duration::from_secs(30);

/// Sessions, and the supervisor they ask for segments.
pub struct Sessions {
    registry: Mutex<Registry>,
    supervisor: Arc<Supervisor>,
    stats: Arc<Stats>,
    timeout: Duration,
    preload_timeout: Duration,
    max_per_user: usize,
    /// Whether a preload starts sessions (`--no-preload` turns it off).
    preload: bool,
}

impl Sessions {
    /// A manager whose sessions are played by `supervisor`'s producers,
    /// stopped when idle for `--session-timeout` (`--preload-timeout` for
    /// a preload nobody played), counted into `stats`; one user may have
    /// at most `--max-sessions-per-user` live sessions.
    pub fn new(supervisor: Arc<Supervisor>, stats: Arc<Stats>, settings: &SessionSettings) -> Self {
        Sessions {
            registry: Mutex::new(Registry::default()),
            supervisor,
            stats,
            timeout: *settings.session_timeout,
            preload_timeout: *settings.preload_timeout,
            max_per_user: settings.max_sessions_per_user.max(1),
            preload: settings.preload(),
        }
    }

    /// Whether a preload starts sessions (`--no-preload` turns it off).
    pub fn preloads(&self) -> bool {
        self.preload
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
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

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.registry().all().cloned().collect()
    }

    /// `(mode, state)` of every live session, for the statistics.
    pub fn snapshot(&self) -> Vec<(Playback, &'static str)> {
        let ahead = self.supervisor.relocate_ahead();
        let all: Vec<Arc<Session>> = self.registry().all().cloned().collect();
        all.iter()
            .map(|s| (s.mode, self.observe(s, s.status(ahead).state).as_str()))
            .collect()
    }

    /// Counts a session's completion the first time its state is seen
    /// complete; returns the state.
    pub fn observe(&self, session: &Session, state: SessionState) -> SessionState {
        if state == SessionState::Complete && session.completion_once() {
            self.stats.session_completed(session.mode);
            tracing::info!(session_id = %session.id, media_id = %session.media_id, "session complete");
        }
        state
    }

    /// Starts a session of `user` for `title` in `mode`, playing `choice`,
    /// or returns the live one they already have for the same file and
    /// choice (a failed one, one of a file since replaced, or one with
    /// other tracks is replaced). A `preload` session makes only
    /// its first segments until a later start (not a preload) plays it.
    /// Does not wait for any segment. Returns the session and whether it
    /// was created.
    ///
    /// # Errors
    /// [`AtCapacity`] when its first segment needs a new producer and the
    /// server is at a cap, or ([`AtCapacity::UserSessions`]) when `user`
    /// has the most live sessions one user may have and none of them is
    /// an unplayed preload that could give way; reusing a session never
    /// counts against a cap.
    pub fn start(
        &self,
        title: Arc<Title>,
        mode: Playback,
        opening: Opening,
    ) -> Result<(Arc<Session>, bool), AtCapacity> {
        let Opening {
            id,
            user,
            choice,
            start,
            preload,
            request,
        } = opening;
        let user = user.as_str();
        let item = title.item.clone();
        let existing = self.registry().by_owner(&item.id, user);
        if let Some(existing) = existing {
            let failed = existing.status(0).state == SessionState::Failed;
            // A resume at another place (or none) is another session.
            let same_start = existing.start_at == start.map(|s| s.1);
            if !failed
                && Arc::ptr_eq(&existing.title, &title)
                && existing.choice == choice
                && same_start
            {
                existing.touch();
                if !preload {
                    existing.mark_played();
                }
                return Ok((existing, false));
            }
        }
        self.make_room_for(user, &item.id)?;
        // A new attempt: a failure of this file is tried again.
        title.clear_failure();
        let session = Arc::new(
            Session::new(
                id,
                title.clone(),
                user,
                mode,
                choice,
                start.map_or(0, |s| s.0),
                preload,
            )
            .starting_at(start.map(|s| s.1))
            .opened_by(request),
        );
        self.supervisor
            .begin(&title, session.player(0), session.start)?;
        let replaced = self.registry().insert(session.clone());
        self.end_replaced(replaced, &session);
        self.stats.session_started(mode);
        let weak: Weak<Session> = Arc::downgrade(&session);
        let stats = self.stats.clone();
        title.on_first_segment(
            session.choice.video.or(session.choice.audio).unwrap_or(0),
            session.start,
            Box::new(move || {
                if let Some(s) = weak.upgrade() {
                    if s.first_segment_once() {
                        let elapsed = s.created().elapsed();
                        stats.first_segment(elapsed);
                        tracing::info!(
                            session_id = %s.id,
                            media_id = %s.media_id,
                            ttfs_ms = elapsed.as_millis() as u64,
                            "first segment ready"
                        );
                    }
                }
            }),
        );
        tracing::info!(
            session_id = %session.id,
            media_id = %item.id,
            path = %item.path,
            mode = mode.as_str(),
            user,
            preload,
            "session started"
        );
        Ok((session, true))
    }

    /// Keeps `user` under the per-user cap for a new session of `media_id`
    /// (which replaces any session they have of it): their oldest unplayed
    /// preload is stopped if that makes room, else the one they left
    /// longest ago if nothing asked for it for [`GIVES_WAY_AFTER`] (a film
    /// watched earlier, whose session has not timed out yet).
    ///
    /// # Errors
    /// [`AtCapacity::UserSessions`] when every session is in use.
    fn make_room_for(&self, user: &str, media_id: &Uuid) -> Result<(), AtCapacity> {
        let evicted = {
            let mut registry = self.registry();
            let others: Vec<Arc<Session>> = registry
                .for_user(user)
                .into_iter()
                .filter(|s| s.media_id != *media_id)
                .collect();
            if others.len() < self.max_per_user {
                return Ok(());
            }
            let now = Instant::now();
            let gives_way = others
                .iter()
                .filter(|s| s.is_preload())
                .min_by_key(|s| s.created())
                .or_else(|| {
                    others
                        .iter()
                        .filter(|s| {
                            now.saturating_duration_since(s.last_access()) >= GIVES_WAY_AFTER
                        })
                        .min_by_key(|s| s.last_access())
                })
                .ok_or(AtCapacity::UserSessions {
                    limit: self.max_per_user,
                })?;
            registry.remove(&gives_way.id)
        };
        if let Some(s) = evicted {
            self.end(s, StopReason::Replaced);
        }
        Ok(())
    }

    /// The session `id` of `user` for `item` as a playback token names it:
    /// the live one, or the user's current session for the item, or one
    /// made again with that id (it timed out while its player was paused).
    ///
    /// # Errors
    /// [`AtCapacity`] as for [`Self::start`].
    pub fn resume(
        &self,
        id: Uuid,
        item: Arc<MediaItem>,
        mode: Playback,
        presentation: Presentation,
        user: &str,
    ) -> Result<Arc<Session>, AtCapacity> {
        if let Some(s) = self.registry().get(&id, user) {
            return Ok(s);
        }
        let title = self.supervisor.title(item.clone(), presentation);
        if let Some(s) = self.registry().by_owner(&item.id, user) {
            if Arc::ptr_eq(&s.title, &title) {
                return Ok(s);
            }
        }
        // The token does not say which tracks it chose: the defaults, with
        // each track's copy where there is one.
        let options = crate::rendition::audio_options(&title.renditions, |_| true, None);
        let choice = crate::rendition::choose(
            &title.renditions,
            &title.subtitles,
            None,
            None,
            None,
            options,
            crate::rendition::video_options(&title.renditions, options, None, None),
        )
        .unwrap_or_default();
        let session = Arc::new(Session::new(
            id,
            title.clone(),
            user,
            mode,
            choice,
            0,
            false,
        ));
        let replaced = self.registry().insert(session.clone());
        self.end_replaced(replaced, &session);
        self.stats.session_started(mode);
        tracing::info!(session_id = %id, media_id = %item.id, user, "session resumed from a playback token");
        Ok(session)
    }

    /// Forgets `session`'s players (its producers stop when nobody else
    /// needs them) and logs why it ended.
    /// Ends the session `by` replaced, unless it was the same session of
    /// the same title opened twice at once with one id (two requests of
    /// one signed URL): its players are `by`'s now.
    fn end_replaced(&self, replaced: Option<Arc<Session>>, by: &Session) {
        if let Some(old) = replaced {
            if old.id != by.id || !Arc::ptr_eq(&old.title, &by.title) {
                self.end(old, StopReason::Replaced);
            }
        }
    }

    fn end(&self, session: Arc<Session>, reason: StopReason) {
        self.stats.session_stopped(reason);
        session.title.remove_session(session.id);
        tracing::info!(
            session_id = %session.id,
            media_id = %session.media_id,
            reason = reason.as_str(),
            "session stopped"
        );
    }

    /// Stops session `id` of `user`. Returns whether there was such a
    /// session.
    pub fn stop(&self, id: &Uuid, user: &str) -> bool {
        let session = {
            let mut registry = self.registry();
            match registry.get(id, user) {
                Some(_) => registry.remove(id),
                None => None,
            }
        };
        match session {
            Some(s) => {
                self.end(s, StopReason::Delete);
                true
            }
            None => false,
        }
    }

    fn timeout_of(&self, session: &Session) -> Duration {
        if session.is_preload() {
            self.preload_timeout
        } else {
            self.timeout
        }
    }

    /// Stops every session idle for longer than its timeout: the session
    /// timeout, or the preload timeout for an unplayed preload.
    pub fn reap_idle(&self) {
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
            self.end(s, reason);
        }
    }

    /// Runs [`Self::reap_idle`] and the supervisor's upkeep periodically,
    /// and the disk budget whenever it is passed, until `shutdown` is
    /// cancelled.
    pub async fn reaper(self: Arc<Self>, shutdown: CancellationToken) {
        let period = (self.timeout.min(self.preload_timeout) / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    self.reap_idle();
                    self.supervisor.reap(self.timeout);
                    let _ = self.snapshot();
                }
                _ = self.supervisor.over_budget() => {
                    self.supervisor.enforce_budget();
                }
            }
        }
    }

    /// Stops every session and producer and empties the store.
    pub async fn shutdown(&self) {
        let all = self.registry().drain();
        let n = all.len();
        for s in all {
            self.end(s, StopReason::Shutdown);
        }
        self.supervisor.shutdown(Duration::from_secs(12)).await;
        tracing::info!(sessions = n, "all sessions stopped");
    }
}
