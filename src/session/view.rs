//! A session as `GET /api/v1/sessions` lists it: what it plays and how far
//! it is, from this node's live state or, in a cluster, as another node
//! published it ([`crate::cluster`]).

use super::session::{Session, SessionState};
use super::sessions::Sessions;
use crate::library::Playback;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One session's view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionView {
    /// Its id.
    pub session_id: Uuid,
    /// The item it plays.
    pub media_id: Uuid,
    /// Direct play, remux or transcode.
    pub mode: Playback,
    /// Where it is.
    pub state: SessionState,
    /// Media seconds reached by the producer serving its players.
    pub position_s: f64,
    /// Source duration in seconds, if known.
    pub duration_s: Option<f64>,
    /// 0–100, if the number of segments is known: of the segments made.
    pub percent: Option<f64>,
    /// Started by a preload and not played yet.
    pub preload: bool,
    /// Whether the media playlist is a complete VOD playlist (seek
    /// anywhere; segments are made on request) rather than a growing one.
    pub seekable: bool,
    /// Media seconds per wall-clock second.
    pub speed: f64,
    /// Segments of every one of its renditions in the store.
    pub segments_ready: usize,
    /// Players (master playlist fetches) it has handed out.
    pub players: usize,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The node that holds it (`--node-name`).
    pub node: String,
}

impl Sessions {
    /// The views of `user`'s sessions (every session for `None`), held by
    /// this node, `node`.
    pub fn views(&self, user: Option<&str>, node: &str) -> Vec<(String, SessionView)> {
        let ahead = self.supervisor().relocate_ahead();
        let sessions = match user {
            Some(user) => self.for_user(user),
            None => self.all(),
        };
        sessions
            .iter()
            .map(|s| (s.user.clone(), self.view(s, ahead, node)))
            .collect()
    }

    fn view(&self, s: &Session, ahead: usize, node: &str) -> SessionView {
        let status = s.status(ahead);
        self.observe(s, status.state);
        let round = |x: f64| (x * 100.0).round() / 100.0;
        SessionView {
            session_id: s.id,
            media_id: s.media_id,
            mode: s.mode,
            state: status.state,
            position_s: round(status.position.as_secs_f64()),
            duration_s: s.duration().map(|d| round(d.as_secs_f64())),
            percent: s.percent(&status).map(round),
            seekable: s.title.timeline().is_some_and(|t| t.is_closed()),
            preload: s.is_preload(),
            speed: status.speed,
            segments_ready: status.segments_ready,
            players: s.title.playheads(s.id).len(),
            error: status.error.clone(),
            node: node.to_string(),
        }
    }
}
