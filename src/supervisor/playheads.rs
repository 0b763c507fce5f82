//! Where the players of one title are: each player's playhead (the newest
//! segment it asked for), and the requests waiting for a segment. The
//! producers follow them ([`crate::policy`] reads them as
//! [`PlayerView`]s and [`WaiterView`]s). Plain data: its title keeps it
//! behind its lock.

use crate::policy::{PlayerView, WaiterView};
use crate::rendition::RenditionSet;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

/// A player of a viewer session: (session id, player number). Each fetch
/// of a session's master playlist is a player with a playhead of its own
/// (one account may play on several devices at once).
pub type PlayerKey = (Uuid, u32);

/// One player's place.
#[derive(Debug, Clone)]
struct Place {
    playhead: usize,
    last_seen: Instant,
    preload: bool,
    renditions: RenditionSet,
}

/// A request waiting for segment `index` of `rendition`.
#[derive(Debug, Clone, Copy)]
struct Waiter {
    player: PlayerKey,
    rendition: usize,
    index: usize,
}

/// The players of one title and the requests waiting on it.
#[derive(Debug, Default)]
pub struct Playheads {
    places: HashMap<PlayerKey, Place>,
    waiters: HashMap<u64, Waiter>,
    next_waiter: u64,
}

/// A player's id for the rules: its session and number folded into one
/// number (a collision would only merge two players' demand).
pub fn player_id(k: &PlayerKey) -> u64 {
    let (hi, lo) = k.0.as_u64_pair();
    hi ^ lo.rotate_left(17) ^ (u64::from(k.1)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl Playheads {
    /// Player `player` asked for segment `n` (or starts there), at `now`.
    pub fn touch(
        &mut self,
        player: PlayerKey,
        n: usize,
        preload: bool,
        renditions: RenditionSet,
        now: Instant,
    ) {
        self.places.insert(
            player,
            Place {
                playhead: n,
                last_seen: now,
                preload,
                renditions,
            },
        );
    }

    /// Forgets one player.
    pub fn remove(&mut self, player: PlayerKey) {
        self.places.remove(&player);
    }

    /// Forgets every player of `session`.
    pub fn remove_session(&mut self, session: Uuid) {
        self.places.retain(|(s, _), _| *s != session);
    }

    /// The players of `session` are no longer preloads.
    pub fn played(&mut self, session: Uuid) {
        for ((s, _), p) in self.places.iter_mut() {
            if *s == session {
                p.preload = false;
            }
        }
    }

    /// Forgets players not heard from for `timeout` before `now`.
    pub fn expire(&mut self, timeout: Duration, now: Instant) {
        self.places
            .retain(|_, p| now.saturating_duration_since(p.last_seen) <= timeout);
    }

    /// The playheads of the players of `session`.
    pub fn of_session(&self, session: Uuid) -> Vec<usize> {
        self.places
            .iter()
            .filter(|((s, _), _)| *s == session)
            .map(|(_, p)| p.playhead)
            .collect()
    }

    /// The sessions with a player here.
    pub fn sessions(&self) -> usize {
        let mut ids: Vec<Uuid> = self.places.keys().map(|(s, _)| *s).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// How many players there are.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether no player is here and no request waits.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty() && self.waiters.is_empty()
    }

    /// Segment indexes in some player's window (never evicted): from its
    /// playhead to `ahead + 1` past it, and every segment waited for.
    pub fn windows(&self, ahead: usize) -> Vec<(usize, usize)> {
        let mut w: Vec<(usize, usize)> = self
            .places
            .values()
            .map(|p| (p.playhead, p.playhead + ahead + 1))
            .collect();
        w.extend(self.waiters.values().map(|w| (w.index, w.index)));
        w
    }

    /// Registers a request of `player` waiting for segment `n` of
    /// `rendition`; returns its number for [`Self::done_waiting`].
    pub fn wait(&mut self, player: PlayerKey, rendition: usize, n: usize) -> u64 {
        self.next_waiter += 1;
        self.waiters.insert(
            self.next_waiter,
            Waiter {
                player,
                rendition,
                index: n,
            },
        );
        self.next_waiter
    }

    /// The request numbered `id` waits no more.
    pub fn done_waiting(&mut self, id: u64) {
        self.waiters.remove(&id);
    }

    /// The rules' view of the players and the waiting requests at `now`.
    pub fn views(&self, now: Instant) -> (Vec<PlayerView>, Vec<WaiterView>) {
        let players = self
            .places
            .iter()
            .map(|(k, p)| PlayerView {
                id: player_id(k),
                playhead: p.playhead,
                renditions: p.renditions,
                preload: p.preload,
                idle: now.saturating_duration_since(p.last_seen),
            })
            .collect();
        let waiters = self
            .waiters
            .values()
            .map(|w| WaiterView {
                player: player_id(&w.player),
                rendition: w.rendition,
                index: w.index,
            })
            .collect();
        (players, waiters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> PlayerKey {
        (Uuid::from_u128(7), n)
    }

    #[test]
    fn players_are_forgotten_when_silent_and_windows_cover_their_waits() {
        let t0 = Instant::now();
        let mut p = Playheads::default();
        p.touch(key(1), 4, false, RenditionSet::one(0), t0);
        p.touch(
            key(2),
            9,
            true,
            RenditionSet::one(0),
            t0 + Duration::from_secs(50),
        );
        let w = p.wait(key(1), 1, 20);
        let mut windows = p.windows(2);
        windows.sort();
        assert_eq!(windows, [(4, 7), (9, 12), (20, 20)]);
        assert_eq!(p.sessions(), 1);
        p.expire(Duration::from_secs(30), t0 + Duration::from_secs(60));
        assert_eq!(p.of_session(Uuid::from_u128(7)), [9]);
        p.done_waiting(w);
        p.played(Uuid::from_u128(7));
        let (players, waiters) = p.views(t0 + Duration::from_secs(60));
        assert!(waiters.is_empty());
        assert_eq!(players.len(), 1);
        assert!(!players[0].preload);
        assert_eq!(players[0].idle, Duration::from_secs(10));
        p.remove_session(Uuid::from_u128(7));
        assert!(p.is_empty());
    }
}
