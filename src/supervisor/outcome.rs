//! What the supervisor answers a segment request with: the player that
//! asked ([`Player`]), what it found ([`SegmentOutcome`]) and, when no
//! producer may start, which cap stood in the way ([`AtCapacity`]).

use super::playheads::PlayerKey;
use crate::library::Playback;
use crate::rendition::RenditionSet;
use std::path::PathBuf;

/// What a segment request found, once it was allowed to wait.
#[derive(Debug)]
pub enum SegmentOutcome {
    /// In the store: serve this file.
    Ready(PathBuf),
    /// There is no such segment, or no media in it.
    Missing,
    /// Still coming after the wait, or no producer may start for it now:
    /// answer 503 with `Retry-After`.
    NotYet(String),
    /// A producer of the title failed with this message.
    Failed(String),
    /// A new producer would pass a server cap.
    AtCapacity(AtCapacity),
}

/// One player as a request names it.
#[derive(Debug, Clone, Copy)]
pub struct Player {
    /// (session, player number).
    pub key: PlayerKey,
    /// Its session was only preloaded.
    pub preload: bool,
    /// The renditions it plays.
    pub renditions: RenditionSet,
}

/// A new producer could not start: the server is at a cap.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AtCapacity {
    /// Its kind has its most producers running.
    #[error(
        "the server is running its maximum of {limit} {} pipelines ({}); try again later",
        mode.as_str(),
        if *mode == Playback::Remux { "--max-remuxes" } else { "--max-transcodes" }
    )]
    Producers {
        /// The kind that is full.
        mode: Playback,
        /// Its cap.
        limit: usize,
    },
    /// The user already has the most live sessions one user may have.
    #[error("you have {limit} live sessions, the most one user may have (--max-sessions-per-user): stop one (DELETE /api/v1/hls/{{session_id}}) or let it time out")]
    UserSessions {
        /// The per-user cap.
        limit: usize,
    },
    /// Too many segment requests are waiting for segments already.
    #[error("{limit} requests are already waiting for segments (--max-waiting-requests); try again later")]
    Waiting {
        /// The global cap.
        limit: usize,
    },
    /// The segment store is near its disk budget.
    #[error("the segment store is near its disk budget of {limit_bytes} bytes (--disk-budget); try again later")]
    Disk {
        /// The budget in bytes.
        limit_bytes: u64,
    },
}
