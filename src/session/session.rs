//! One viewer session: its state as a client sees it, the renditions it
//! plays and the players it has handed out; each player's place is kept
//! by the [`Title`], where the supervisor's producers follow it.

use crate::library::Playback;
use crate::rendition::{Choice, RenditionSet};
use crate::supervisor::{Phase, Player, TimelineState, Title};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// Where a session's playback stands, derived from its title's producers
/// and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Nothing made yet: the key frames are being read or the first
    /// producer is starting.
    Starting,
    /// A producer is making its segments.
    Running,
    /// Its producer is held: far enough ahead of every player.
    Throttled,
    /// No producer runs for it; segments not in the store are made when
    /// asked for.
    Idle,
    /// Every segment of its renditions is in the store.
    Complete,
    /// A producer of its title failed; see [`Status::error`].
    Failed,
}

impl SessionState {
    /// The snake_case name used in the API and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Starting => "starting",
            SessionState::Running => "running",
            SessionState::Throttled => "throttled",
            SessionState::Idle => "idle",
            SessionState::Complete => "complete",
            SessionState::Failed => "failed",
        }
    }
}

/// A session's progress, as `GET /api/v1/sessions` shows it.
#[derive(Debug, Clone)]
pub struct Status {
    /// Where it stands.
    pub state: SessionState,
    /// Media time reached by the producer serving its players (the end
    /// once complete).
    pub position: Duration,
    /// That producer's media seconds per wall-clock second.
    pub speed: f64,
    /// Segments of every one of its renditions in the store.
    pub segments_ready: usize,
    /// Segments in its timeline, when known.
    pub segments_total: Option<usize>,
    /// A plain error message when failed.
    pub error: Option<String>,
}

/// One viewer session.
pub struct Session {
    /// Random id (v4), the handle clients use.
    pub id: Uuid,
    /// The media it plays.
    pub media_id: Uuid,
    /// The user it belongs to.
    pub user: String,
    /// Remux or transcode.
    pub mode: Playback,
    /// The title it plays: renditions, timeline, producers.
    pub title: Arc<Title>,
    /// The renditions it plays.
    pub renditions: RenditionSet,
    /// Its video, default audio and default subtitle renditions.
    pub choice: Choice,
    /// Each player's renditions, once it has asked for another audio or
    /// video rendition than the session's (it switched tracks).
    player_renditions: Mutex<std::collections::HashMap<u32, RenditionSet>>,
    /// The segment it starts at.
    pub start: usize,
    /// Where its players start (`?start=`, a resume): the media playlists'
    /// `EXT-X-START:TIME-OFFSET`. `None`: the beginning.
    pub start_at: Option<Duration>,
    /// The query that opens it again on any node (`audio=fr&profile=safari`,
    /// empty for the defaults): its master URL carries it beside the token.
    pub request: String,
    preload: AtomicBool,
    created: Instant,
    last_access: Mutex<Instant>,
    next_player: AtomicU32,
    first_segment_seen: AtomicBool,
    completion_counted: AtomicBool,
}

/// What opens a viewer session ([`super::Sessions::start`]).
#[derive(Debug, Clone)]
pub struct Opening {
    /// Its id: a new one, or the one a signed URL names when it is opened
    /// again on another node.
    pub id: Uuid,
    /// The user it plays for.
    pub user: String,
    /// Its video, default audio and default subtitle renditions.
    pub choice: Choice,
    /// Where it starts (a resume): the segment and the time in it.
    pub start: Option<(usize, Duration)>,
    /// Started by a preload: it makes only its first segments until played.
    pub preload: bool,
    /// The query that opens it again ([`Session::request`]).
    pub request: String,
}

/// The bit that numbers a viewer's I-frame player after its own.
const IFRAME_PLAYER: u32 = 1 << 31;

impl Session {
    /// A new session `id` of `user` for `title`, playing `renditions` from
    /// segment `start`, touched now.
    pub fn new(
        id: Uuid,
        title: Arc<Title>,
        user: &str,
        mode: Playback,
        choice: Choice,
        start: usize,
        preload: bool,
    ) -> Self {
        Session {
            id,
            media_id: title.item.id,
            user: user.to_string(),
            mode,
            title,
            renditions: choice.renditions(),
            choice,
            player_renditions: Mutex::new(Default::default()),
            start,
            start_at: None,
            request: String::new(),
            preload: AtomicBool::new(preload),
            created: Instant::now(),
            last_access: Mutex::new(Instant::now()),
            // Player numbers from a random place: a session made again on
            // another node hands out numbers its first node did not.
            next_player: AtomicU32::new(1 + (Uuid::new_v4().as_u128() as u32 >> 1)),
            first_segment_seen: AtomicBool::new(false),
            completion_counted: AtomicBool::new(false),
        }
    }

    /// The same session, its players starting at `at` (in segment
    /// [`Self::start`]).
    pub fn starting_at(mut self, at: Option<Duration>) -> Self {
        self.start_at = at;
        self
    }

    /// The same session, opened again on any node by `request` (see
    /// [`Self::request`]).
    pub fn opened_by(mut self, request: String) -> Self {
        self.request = request;
        self
    }

    /// Records activity: a playlist or segment request (the heartbeat).
    pub fn touch(&self) {
        *self.last_access.lock().expect("last_access") = Instant::now();
    }

    /// When it was last touched.
    pub fn last_access(&self) -> Instant {
        *self.last_access.lock().expect("last_access")
    }

    /// When it was created.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// A new player number, for one fetch of its master playlist.
    pub fn new_player(&self) -> u32 {
        self.next_player.fetch_add(1, Ordering::SeqCst)
    }

    /// Player `player` of this session, as the supervisor sees it.
    pub fn player(&self, player: u32) -> Player {
        let renditions = self
            .player_renditions
            .lock()
            .expect("player renditions")
            .get(&player)
            .copied()
            .unwrap_or(self.renditions);
        Player {
            key: (self.id, player),
            preload: self.is_preload(),
            renditions,
        }
    }

    /// The player that fetches player `player`'s I-frames of video
    /// rendition `r` (an I-frame playlist's resources): a player of its
    /// own that plays `r` alone, so that scrubbing through one variant's
    /// I-frames neither moves the viewer's playhead nor switches its
    /// variant, and no other rendition is made for it.
    pub fn iframe_player(&self, player: u32, r: usize) -> Player {
        Player {
            key: (self.id, player | IFRAME_PLAYER),
            preload: false,
            renditions: RenditionSet::one(r),
        }
    }

    /// Player `player` asking for rendition `r`: an audio (or video)
    /// rendition other than the one it played replaces it in the player's
    /// set (it switched tracks), so producers make what it plays now.
    pub fn player_for(&self, player: u32, r: usize) -> Player {
        let group = if self.title.audio_renditions().contains(r) {
            self.title.audio_renditions()
        } else {
            self.title.video_renditions()
        };
        let mut players = self.player_renditions.lock().expect("player renditions");
        let set = players.entry(player).or_insert(self.renditions);
        *set = set.without(group).with(r);
        Player {
            key: (self.id, player),
            preload: self.is_preload(),
            renditions: *set,
        }
    }

    /// Whether it was started by a preload and has not been played yet.
    pub fn is_preload(&self) -> bool {
        self.preload.load(Ordering::SeqCst)
    }

    /// A client plays it: it is no longer a preload, and its producer may
    /// run on to the usual throttle margin.
    pub fn mark_played(&self) {
        if self.preload.swap(false, Ordering::SeqCst) {
            tracing::info!(session_id = %self.id, media_id = %self.media_id, "preloaded session played");
            self.title.played(self.id);
        }
    }

    /// Marks its first segment seen; true the first time.
    pub fn first_segment_once(&self) -> bool {
        !self.first_segment_seen.swap(true, Ordering::SeqCst)
    }

    /// Marks it counted as complete; true the first time.
    pub fn completion_once(&self) -> bool {
        !self.completion_counted.swap(true, Ordering::SeqCst)
    }

    /// Its source's duration, if known.
    pub fn duration(&self) -> Option<Duration> {
        self.title.timeline().and_then(|t| t.end_time()).or(self
            .title
            .item
            .duration_s
            .map(Duration::from_secs_f64))
    }

    /// Where it stands now. `ahead` is the supervisor's relocate-ahead.
    pub fn status(&self, ahead: usize) -> Status {
        let title = &self.title;
        let segments_ready = self
            .renditions
            .iter()
            .filter(|i| *i < title.renditions.len())
            .map(|i| {
                let key = title.segment_key(i, 0);
                title.store().count(&key.title, &key.rendition)
            })
            .min()
            .unwrap_or(0);
        let timeline = title.timeline_state();
        let segments_total = match &timeline {
            TimelineState::Ready(t) => t.len(),
            _ => None,
        };
        let mut status = Status {
            state: SessionState::Idle,
            position: Duration::ZERO,
            speed: 0.0,
            segments_ready,
            segments_total,
            error: None,
        };
        if let Some(e) = title.failure().or(match &timeline {
            TimelineState::Failed(e) => Some(e.clone()),
            _ => None,
        }) {
            status.state = SessionState::Failed;
            status.error = Some(e);
            return status;
        }
        if timeline == TimelineState::Building {
            status.state = SessionState::Starting;
            return status;
        }
        if segments_total.is_some_and(|n| segments_ready >= n) {
            status.state = SessionState::Complete;
            status.position = self.duration().unwrap_or_default();
            status.speed = title.last_speed();
            return status;
        }
        let playheads = title.playheads(self.id);
        let producers: Vec<_> = title
            .producers()
            .into_iter()
            .filter(|p| p.renditions.intersects(self.renditions) && !p.is_stopping())
            .collect();
        let serving = producers
            .iter()
            .find(|p| {
                playheads
                    .iter()
                    .any(|&ph| p.start <= ph && ph <= p.next() + ahead)
            })
            .or(producers.first());
        if let Some(p) = serving {
            let start_time = title
                .timeline()
                .map(|t| t.start(p.start))
                .unwrap_or_default();
            status.position = p.position();
            status.speed = p.speed(start_time);
            status.state = match p.phase() {
                Phase::Starting => SessionState::Starting,
                Phase::Running => SessionState::Running,
                Phase::Held => SessionState::Throttled,
                Phase::Stopping => SessionState::Idle,
            };
        } else if segments_ready == 0 && self.created.elapsed() < Duration::from_secs(1) {
            status.state = SessionState::Starting;
        }
        status
    }

    /// Progress in percent (0–100), if known: of the segments made.
    pub fn percent(&self, status: &Status) -> Option<f64> {
        if status.state == SessionState::Complete {
            return Some(100.0);
        }
        let total = status.segments_total?;
        (total > 0).then(|| (status.segments_ready as f64 / total as f64 * 100.0).min(100.0))
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
