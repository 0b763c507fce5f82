//! The producer supervisor's decisions, as pure functions over plain views
//! of producers, players and waiting requests: when a request is served by
//! a running producer, where a producer is held (throttling), which
//! producer gives way to a new one, when a producer stops, and which
//! segments are evicted first. No GStreamer, no tokio, no locks: every rule
//! is unit-tested here.
//!
//! Renditions are a [`RenditionSet`] of the item's rendition indexes.
//! Segment indexes are on the item's [`crate::timeline::Timeline`].

use crate::rendition::RenditionSet;
use std::time::Duration;

/// A running producer, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerView {
    /// Its id, unique in the process.
    pub id: u64,
    /// The renditions it makes.
    pub renditions: RenditionSet,
    /// Its driving rendition: the video, if it makes one. A
    /// producer serves the players who play this one; the others it makes
    /// ride along (a player that switched rungs still plays the audio of
    /// the old rung's producer, which must not keep that video encoding).
    pub driving: usize,
    /// The segment it started at.
    pub start: usize,
    /// The segment it is writing (of its driving rendition).
    pub next: usize,
    /// The segment its furthest-behind rendition is writing (audio may
    /// trail the video at the end of a file, or run a little ahead).
    pub lagging: usize,
    /// Whether it is held by its throttle right now.
    pub held: bool,
}

/// One player of a viewer session (one fetch of its master playlist), as
/// the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayerView {
    /// Its id, unique within the item.
    pub id: u64,
    /// The newest segment it asked for (or where it starts).
    pub playhead: usize,
    /// The renditions it plays.
    pub renditions: RenditionSet,
    /// Started by a preload and not played yet: only its first segments
    /// are made.
    pub preload: bool,
    /// Time since its last request.
    pub idle: Duration,
}

/// A request waiting for a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiterView {
    /// The player that asked.
    pub player: u64,
    /// The rendition it asked for.
    pub rendition: usize,
    /// The segment it asked for.
    pub index: usize,
}

/// Whether `p` will make segment `n` of `rendition` soon: it makes that
/// rendition and `n` is a segment one of its renditions is writing or at
/// most `ahead` segments after where it drives (docs/design.md, "Seeking": a new
/// producer costs about two segments of encoding).
pub fn coming(p: &ProducerView, rendition: usize, n: usize, ahead: usize) -> bool {
    p.renditions.contains(rendition)
        && p.lagging.min(p.next) <= n
        && n <= p.next.max(p.lagging) + ahead
}

/// Whether segment `n` is in the window of a player at `playhead`: the
/// segment it plays and the few it fetches ahead. Segments in a window are
/// never evicted.
pub fn in_window(playhead: usize, n: usize, ahead: usize) -> bool {
    playhead <= n && n <= playhead + ahead + 1
}

/// Whether `p` serves player `v`: `v` plays `p`'s driving rendition
/// between where `p` started and a little past where it is.
fn serves(p: &ProducerView, v: &PlayerView, ahead: usize) -> bool {
    v.renditions.contains(p.driving) && p.start <= v.playhead && v.playhead <= p.next + ahead
}

/// Whether `p` will make the segment waiter `w` asks for: one of its
/// renditions, between where it started and a little past where it is.
fn makes(p: &ProducerView, w: &WaiterView, ahead: usize) -> bool {
    p.renditions.contains(w.rendition) && p.start <= w.index && w.index <= p.next + ahead
}

/// Where `p`'s throttle holds it (media time): `margin` past the end of the
/// furthest segment asked for by a player behind it or just ahead of it;
/// for a player that only preloaded, the end of segment 1 (its first two
/// segments). When the store is past its disk budget (`tight`), only to
/// the end of that player's window instead of the margin. `end_of(n)` is
/// the end of segment `n`. `None`: no limit (throttling is off, `margin`
/// `None`, and no preload). With no player at all, zero: hold at once,
/// unless a request waits for one of its segments (`waiters`).
pub fn throttle_limit(
    p: &ProducerView,
    players: &[PlayerView],
    waiters: &[WaiterView],
    end_of: impl Fn(usize) -> Option<Duration>,
    margin: Option<Duration>,
    ahead: usize,
    tight: bool,
) -> Option<Duration> {
    let mut limit = None;
    // A request waiting for a segment `p` makes (of any of its renditions:
    // the audio of a rung a player left) lets it run to that segment's end.
    for w in waiters.iter().filter(|w| makes(p, w, ahead)) {
        let wanted = end_of(w.index).unwrap_or(Duration::MAX);
        limit = Some(limit.map_or(wanted, |l: Duration| l.max(wanted)));
    }
    for v in players
        .iter()
        .filter(|v| v.renditions.contains(p.driving) && v.playhead <= p.next + ahead)
    {
        // A window past the last segment reaches the end: no limit (the
        // caller caps it at the end known so far). Holding at the
        // playhead's own segment instead starved the very segment the
        // player asked for next (a remux of three segments, over budget).
        let wanted = if v.preload {
            end_of(v.playhead + 1).unwrap_or(Duration::MAX)
        } else if tight {
            end_of(v.playhead + ahead + 1).unwrap_or(Duration::MAX)
        } else {
            let m = margin?;
            end_of(v.playhead).map_or(Duration::MAX, |e| e.saturating_add(m))
        };
        limit = Some(limit.map_or(wanted, |l: Duration| l.max(wanted)));
    }
    Some(limit.unwrap_or(Duration::ZERO))
}

/// Whether anyone needs `p` now: a player it serves or a request waiting
/// for a segment it will make.
pub fn has_demand(
    p: &ProducerView,
    players: &[PlayerView],
    waiters: &[WaiterView],
    ahead: usize,
) -> bool {
    players.iter().any(|v| serves(p, v, ahead)) || waiters.iter().any(|w| makes(p, w, ahead))
}

/// Whether `p` gives way for now: a request waits for a segment `p` will
/// not make, and every player `p` serves has its next segment made
/// already (`p` writes past `playhead + 1`: a player asks for the segment
/// after the newest it has, a wait of seconds is covered by the 6 s of
/// that segment), so holding `p` delays nobody's next request while the
/// waiting one gets the CPU. On 2
/// cores an encoder racing ahead of its players took half the CPU from an
/// audio switch or a seek (bench, "audio switch").
pub fn yields(
    p: &ProducerView,
    players: &[PlayerView],
    waiters: &[WaiterView],
    ahead: usize,
) -> bool {
    let someone_waits_elsewhere = waiters.iter().any(|w| !makes(p, w, ahead));
    let needed_soon = waiters.iter().any(|w| makes(p, w, ahead))
        || players
            .iter()
            .any(|v| serves(p, v, ahead) && p.next <= v.playhead + 1);
    someone_waits_elsewhere && !needed_soon
}

/// Whether all of `p`'s demand comes from player `player`.
fn only_demand_of(
    p: &ProducerView,
    player: u64,
    players: &[PlayerView],
    waiters: &[WaiterView],
    ahead: usize,
) -> bool {
    players
        .iter()
        .filter(|v| serves(p, v, ahead))
        .all(|v| v.id == player)
        && waiters
            .iter()
            .filter(|w| makes(p, w, ahead))
            .all(|w| w.player == player)
}

/// What to do about a new producer an item needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPlan {
    /// Start it: the item is under its cap.
    Go,
    /// Start it in place of this producer, which is torn down at once.
    Replace(u64),
    /// Every producer of the item serves someone else: answer 503.
    Refuse,
}

/// Whether player `requester` may start another producer for an item
/// that runs `producers`, at most `cap` at once. Past the cap, a producer
/// nobody needs gives way first, then one that only served `requester`
/// (the newest request of a player wins: a seek replaces the producer of
/// the place it left). Oldest first in both cases.
pub fn plan_start(
    producers: &[ProducerView],
    players: &[PlayerView],
    waiters: &[WaiterView],
    requester: u64,
    cap: usize,
    ahead: usize,
) -> StartPlan {
    if producers.len() < cap.max(1) {
        return StartPlan::Go;
    }
    let oldest = |ps: &mut dyn Iterator<Item = &ProducerView>| ps.map(|p| p.id).min();
    if let Some(id) = oldest(
        &mut producers
            .iter()
            .filter(|p| !has_demand(p, players, waiters, ahead)),
    ) {
        return StartPlan::Replace(id);
    }
    if let Some(id) = oldest(
        &mut producers
            .iter()
            .filter(|p| only_demand_of(p, requester, players, waiters, ahead)),
    ) {
        return StartPlan::Replace(id);
    }
    StartPlan::Refuse
}

/// A held producer whose every player has been quiet this long may be torn
/// down to admit another item's producer: they are paused, and resuming
/// starts a new producer (through admission again).
pub const PREEMPT_IDLE: Duration = Duration::from_secs(60);

/// Whether `p` may give way to another item's producer when the server is
/// at its cap: nobody needs it, or it is held and its players have all been
/// quiet for [`PREEMPT_IDLE`] with no request waiting on it.
pub fn preemptable(
    p: &ProducerView,
    players: &[PlayerView],
    waiters: &[WaiterView],
    ahead: usize,
) -> bool {
    if !has_demand(p, players, waiters, ahead) {
        return true;
    }
    let waited_on = waiters.iter().any(|w| makes(p, w, ahead));
    p.held
        && !waited_on
        && players
            .iter()
            .filter(|v| serves(p, v, ahead))
            .all(|v| v.idle >= PREEMPT_IDLE)
}

/// Whether `p`, about to write segment `next`, has reached work that is
/// done or being done: every one of its renditions has `next` in the store
/// (`present(rendition, next)`), or another producer that makes all of
/// its renditions has made or is making `next`. It then stops; its players
/// go on with the store and the other producer.
pub fn reached_existing(
    p: &ProducerView,
    next: usize,
    present: impl Fn(usize, usize) -> bool,
    others: &[ProducerView],
) -> bool {
    let all_present = p.renditions.iter().all(|r| present(r, next));
    all_present
        || others.iter().any(|q| {
            q.id != p.id
                && q.renditions.is_superset(p.renditions)
                && q.start <= next
                && next <= q.next
        })
}

/// A segment in the store, as eviction sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredView<K> {
    /// Its key.
    pub key: K,
    /// Bytes on disk.
    pub bytes: u64,
    /// When it was last made or served (any monotonic tick; smaller is older).
    pub last_used: u64,
    /// In some player's window, or being waited for: never evicted.
    pub protected: bool,
}

/// Which segments to evict, least recently used first, to bring `used`
/// bytes down to `target`; protected segments are kept whatever it costs.
pub fn eviction_order<K: Clone>(
    mut segments: Vec<StoredView<K>>,
    used: u64,
    target: u64,
) -> Vec<K> {
    segments.retain(|s| !s.protected);
    segments.sort_by_key(|s| s.last_used);
    let mut left = used;
    let mut out = Vec::new();
    for s in segments {
        if left <= target {
            break;
        }
        left = left.saturating_sub(s.bytes);
        out.push(s.key);
    }
    out
}

#[cfg(test)]
mod tests;
