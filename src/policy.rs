//! The producer supervisor's decisions, as pure functions over plain views
//! of producers, viewers and waiting requests: when a request is served by
//! a running producer, where a producer is held (throttling), which
//! producer gives way to a new one, when a producer stops, and which
//! segments are evicted first. No GStreamer, no tokio, no locks: every rule
//! is unit-tested here.
//!
//! Renditions are a bit set (`u64`, bit `i` for the item's rendition `i`).
//! Segment indexes are on the item's [`crate::timeline::Timeline`].

use std::time::Duration;

/// A running producer, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerView {
    /// Its id, unique in the process.
    pub id: u64,
    /// The renditions it makes.
    pub renditions: u64,
    /// Its driving rendition (one bit): the video, if it makes one. A
    /// producer serves the viewers who play this one; the others it makes
    /// ride along (a player that switched rungs still plays the audio of
    /// the old rung's producer, which must not keep that video encoding).
    pub driving: u64,
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

/// One player of a viewer session, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerView {
    /// Its id, unique within the item.
    pub id: u64,
    /// The newest segment it asked for (or where it starts).
    pub playhead: usize,
    /// The renditions it plays.
    pub renditions: u64,
    /// Started by a preload and not played yet: only its first segments
    /// are made.
    pub preload: bool,
    /// Time since its last request.
    pub idle: Duration,
}

/// A request waiting for a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaiterView {
    /// The viewer that asked.
    pub viewer: u64,
    /// The rendition it asked for (one bit).
    pub rendition: u64,
    /// The segment it asked for.
    pub index: usize,
}

/// Whether `p` will make segment `n` of `rendition` soon: it makes that
/// rendition and `n` is a segment one of its renditions is writing or at
/// most `ahead` segments after where it drives (README, "Seeking": a new
/// producer costs about two segments of encoding).
pub fn coming(p: &ProducerView, rendition: u64, n: usize, ahead: usize) -> bool {
    p.renditions & rendition != 0
        && p.lagging.min(p.next) <= n
        && n <= p.next.max(p.lagging) + ahead
}

/// Whether segment `n` is in the window of a player at `playhead`: the
/// segment it plays and the few it fetches ahead. Segments in a window are
/// never evicted.
pub fn in_window(playhead: usize, n: usize, ahead: usize) -> bool {
    playhead <= n && n <= playhead + ahead + 1
}

/// Whether `p` serves viewer `v`: it makes one of `v`'s renditions and
/// `v` plays between where `p` started and a little past where it is.
fn serves(p: &ProducerView, v: &ViewerView, ahead: usize) -> bool {
    p.driving & v.renditions != 0 && p.start <= v.playhead && v.playhead <= p.next + ahead
}

/// Where `p`'s throttle holds it (media time): `margin` past the end of the
/// furthest segment asked for by a viewer behind it or just ahead of it;
/// for a viewer that only preloaded, the end of segment 1 (its first two
/// segments). When the store is past its disk budget (`tight`), only to
/// the end of that viewer's window instead of the margin. `end_of(n)` is
/// the end of segment `n`. `None`: no limit (throttling is off, `margin`
/// `None`, and no preload). With no viewer at all, zero: hold at once,
/// unless a request waits for one of its segments (`waiters`).
pub fn throttle_limit(
    p: &ProducerView,
    viewers: &[ViewerView],
    waiters: &[WaiterView],
    end_of: impl Fn(usize) -> Option<Duration>,
    margin: Option<Duration>,
    ahead: usize,
    tight: bool,
) -> Option<Duration> {
    let mut limit = None;
    // A request waiting for a segment `p` makes (of any of its renditions:
    // the audio of a rung a player left) lets it run to that segment's end.
    for w in waiters.iter().filter(|w| {
        p.renditions & w.rendition != 0 && p.start <= w.index && w.index <= p.next + ahead
    }) {
        let wanted = end_of(w.index).unwrap_or(Duration::MAX);
        limit = Some(limit.map_or(wanted, |l: Duration| l.max(wanted)));
    }
    for v in viewers
        .iter()
        .filter(|v| v.renditions & p.driving != 0 && v.playhead <= p.next + ahead)
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

/// Whether anyone needs `p` now: a viewer it serves or a request waiting
/// for a segment it will make.
pub fn has_demand(
    p: &ProducerView,
    viewers: &[ViewerView],
    waiters: &[WaiterView],
    ahead: usize,
) -> bool {
    viewers.iter().any(|v| serves(p, v, ahead))
        || waiters.iter().any(|w| {
            p.renditions & w.rendition != 0 && p.start <= w.index && w.index <= p.next + ahead
        })
}

/// Whether `p` gives way for now: a request waits for a segment `p` will
/// not make, and every viewer `p` serves has its next segment made
/// already (`p` writes past `playhead + 1`: a player asks for the segment
/// after the newest it has, a wait of seconds is covered by the 6 s of
/// that segment), so holding `p` delays nobody's next request while the
/// waiting one gets the CPU. On 2
/// cores an encoder racing ahead of its viewers took half the CPU from an
/// audio switch or a seek (bench, "audio switch").
pub fn yields(
    p: &ProducerView,
    viewers: &[ViewerView],
    waiters: &[WaiterView],
    ahead: usize,
) -> bool {
    let makes = |w: &WaiterView| {
        p.renditions & w.rendition != 0 && p.start <= w.index && w.index <= p.next + ahead
    };
    let someone_waits_elsewhere = waiters.iter().any(|w| !makes(w));
    let needed_soon = waiters.iter().any(makes)
        || viewers
            .iter()
            .any(|v| serves(p, v, ahead) && p.next <= v.playhead + 1);
    someone_waits_elsewhere && !needed_soon
}

/// Whether all of `p`'s demand comes from viewer `viewer`.
fn only_demand_of(
    p: &ProducerView,
    viewer: u64,
    viewers: &[ViewerView],
    waiters: &[WaiterView],
    ahead: usize,
) -> bool {
    viewers
        .iter()
        .filter(|v| serves(p, v, ahead))
        .all(|v| v.id == viewer)
        && waiters
            .iter()
            .filter(|w| {
                p.renditions & w.rendition != 0 && p.start <= w.index && w.index <= p.next + ahead
            })
            .all(|w| w.viewer == viewer)
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

/// Whether viewer `requester` may start another producer for an item
/// that runs `producers`, at most `cap` at once. Past the cap, a producer
/// nobody needs gives way first, then one that only served `requester`
/// (the newest request of a viewer wins: a seek replaces the producer of
/// the place it left). Oldest first in both cases.
pub fn plan_start(
    producers: &[ProducerView],
    viewers: &[ViewerView],
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
            .filter(|p| !has_demand(p, viewers, waiters, ahead)),
    ) {
        return StartPlan::Replace(id);
    }
    if let Some(id) = oldest(
        &mut producers
            .iter()
            .filter(|p| only_demand_of(p, requester, viewers, waiters, ahead)),
    ) {
        return StartPlan::Replace(id);
    }
    StartPlan::Refuse
}

/// A held producer whose every viewer has been quiet this long may be torn
/// down to admit another item's producer: they are paused, and resuming
/// starts a new producer (through admission again).
pub const PREEMPT_IDLE: Duration = Duration::from_secs(60);

/// Whether `p` may give way to another item's producer when the server is
/// at its cap: nobody needs it, or it is held and its viewers have all been
/// quiet for [`PREEMPT_IDLE`] with no request waiting on it.
pub fn preemptable(
    p: &ProducerView,
    viewers: &[ViewerView],
    waiters: &[WaiterView],
    ahead: usize,
) -> bool {
    if !has_demand(p, viewers, waiters, ahead) {
        return true;
    }
    let waited_on = waiters.iter().any(|w| {
        p.renditions & w.rendition != 0 && p.start <= w.index && w.index <= p.next + ahead
    });
    p.held
        && !waited_on
        && viewers
            .iter()
            .filter(|v| serves(p, v, ahead))
            .all(|v| v.idle >= PREEMPT_IDLE)
}

/// Whether `p`, about to write segment `next`, has reached work that is
/// done or being done: every one of its renditions has `next` in the store
/// (`present(rendition_bit, next)`), or another producer that makes all of
/// its renditions has made or is making `next`. It then stops; its viewers
/// go on with the store and the other producer.
pub fn reached_existing(
    p: &ProducerView,
    next: usize,
    present: impl Fn(u64, usize) -> bool,
    others: &[ProducerView],
) -> bool {
    let all_present = (0..64)
        .map(|i| 1u64 << i)
        .filter(|bit| p.renditions & bit != 0)
        .all(|bit| present(bit, next));
    all_present
        || others.iter().any(|q| {
            q.id != p.id
                && q.renditions & p.renditions == p.renditions
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
    /// In some viewer's window, or being waited for: never evicted.
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
mod tests {
    use super::*;

    const V: u64 = 1;
    const A: u64 = 2;

    fn p(id: u64, start: usize, next: usize) -> ProducerView {
        ProducerView {
            id,
            renditions: V | A,
            driving: V,
            start,
            next,
            lagging: next,
            held: false,
        }
    }

    fn v(id: u64, playhead: usize) -> ViewerView {
        ViewerView {
            id,
            playhead,
            renditions: V | A,
            preload: false,
            idle: Duration::ZERO,
        }
    }

    fn end_of(n: usize) -> Option<Duration> {
        (n < 100).then(|| Duration::from_secs(6 * (n as u64 + 1)))
    }

    #[test]
    fn a_producer_serves_the_viewers_of_its_video_not_of_what_rides_along() {
        // Rung 720p (bit 0) with the audio (bit 1); the player switched to
        // rung 360p (bit 2) and still plays the audio.
        let old = p(1, 0, 3);
        let switched = ViewerView {
            renditions: A | 4,
            ..v(7, 3)
        };
        assert!(!has_demand(&old, std::slice::from_ref(&switched), &[], 2));
        assert_eq!(
            throttle_limit(
                &old,
                std::slice::from_ref(&switched),
                &[],
                end_of,
                Some(Duration::from_secs(120)),
                2,
                false
            ),
            Some(Duration::ZERO),
            "nobody it serves: held at once"
        );
        // Its audio segment still waited for keeps it, and lets it run to
        // that segment's end.
        let wait = WaiterView {
            viewer: 7,
            rendition: A,
            index: 3,
        };
        let one = std::slice::from_ref(&switched);
        assert!(has_demand(&old, one, std::slice::from_ref(&wait), 2));
        assert_eq!(
            throttle_limit(
                &old,
                one,
                &[wait],
                end_of,
                Some(Duration::from_secs(120)),
                2,
                false
            ),
            Some(Duration::from_secs(24))
        );
        // A viewer on its rung keeps it.
        assert!(has_demand(&old, &[v(8, 2)], &[], 2));
    }

    #[test]
    fn a_segment_is_coming_only_from_just_ahead_of_a_producer() {
        let prod = p(1, 10, 12);
        assert!(coming(&prod, V, 12, 2));
        assert!(coming(&prod, A, 14, 2));
        assert!(!coming(&prod, V, 15, 2), "too far ahead: relocate");
        assert!(!coming(&prod, V, 11, 2), "already passed (evicted?)");
        assert!(!coming(
            &ProducerView {
                renditions: A,
                ..prod.clone()
            },
            V,
            12,
            2
        ));
        // The video is done (next 20) while the audio still writes 18.
        let tail = ProducerView {
            next: 20,
            lagging: 18,
            ..prod
        };
        assert!(coming(&tail, A, 18, 2));
    }

    #[test]
    fn the_throttle_follows_the_furthest_viewer_behind_the_producer() {
        let margin = Some(Duration::from_secs(120));
        let prod = p(1, 0, 20);
        // One viewer at segment 5: 36 s + 120 s.
        assert_eq!(
            throttle_limit(&prod, &[v(1, 5)], &[], end_of, margin, 2, false),
            Some(Duration::from_secs(156))
        );
        // Two viewers: the further one counts; one far ahead (served by
        // another producer) does not.
        assert_eq!(
            throttle_limit(
                &prod,
                &[v(1, 5), v(2, 9), v(3, 60)],
                &[],
                end_of,
                margin,
                2,
                false
            ),
            Some(Duration::from_secs(180))
        );
        // Nobody: hold at once.
        assert_eq!(
            throttle_limit(&prod, &[], &[], end_of, margin, 2, false),
            Some(Duration::ZERO)
        );
        // Throttling off.
        assert_eq!(
            throttle_limit(&prod, &[v(1, 5)], &[], end_of, None, 2, false),
            None
        );
        // A preload stops after its first two segments, even with throttling off.
        let pre = ViewerView {
            preload: true,
            ..v(1, 0)
        };
        assert_eq!(
            throttle_limit(
                &p(1, 0, 0),
                std::slice::from_ref(&pre),
                &[],
                end_of,
                None,
                2,
                false
            ),
            Some(Duration::from_secs(12))
        );
        // A viewer of other renditions does not hold this producer up.
        let other = ViewerView {
            renditions: 4,
            ..v(2, 9)
        };
        assert_eq!(
            throttle_limit(&prod, &[v(1, 5), other], &[], end_of, margin, 2, false),
            Some(Duration::from_secs(156))
        );
        // Past the end: no limit needed.
        assert_eq!(
            throttle_limit(&p(1, 0, 100), &[v(1, 100)], &[], end_of, margin, 2, false),
            Some(Duration::MAX)
        );
        // Past the disk budget: only to the end of the viewer's window.
        assert_eq!(
            throttle_limit(&prod, &[v(1, 5)], &[], end_of, margin, 2, true),
            Some(Duration::from_secs(54))
        );
        // A window that runs past the last segment (99) reaches the end,
        // rather than holding at the viewer's own segment.
        assert_eq!(
            throttle_limit(&p(1, 96, 97), &[v(1, 97)], &[], end_of, margin, 2, true),
            Some(Duration::MAX)
        );
        let late = ViewerView {
            preload: true,
            ..v(1, 99)
        };
        assert_eq!(
            throttle_limit(&p(1, 99, 99), &[late], &[], end_of, None, 2, false),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn under_the_cap_a_producer_starts() {
        assert_eq!(
            plan_start(&[p(1, 0, 3)], &[v(1, 2)], &[], 2, 2, 2),
            StartPlan::Go
        );
    }

    #[test]
    fn past_the_cap_an_unneeded_producer_gives_way_first() {
        let producers = [p(1, 0, 3), p(2, 40, 41), p(3, 80, 81)];
        // Viewer 1 at 2 (producer 1), viewer 2 at 40 (producer 2); nobody
        // needs producer 3.
        let viewers = [v(1, 2), v(2, 40)];
        assert_eq!(
            plan_start(&producers, &viewers, &[], 1, 3, 2),
            StartPlan::Replace(3)
        );
    }

    #[test]
    fn past_the_cap_the_newest_request_of_a_viewer_wins() {
        let producers = [p(1, 0, 3), p(2, 40, 41)];
        let viewers = [v(1, 2), v(2, 40)];
        // Viewer 2 seeks again: its old producer gives way.
        assert_eq!(
            plan_start(&producers, &viewers, &[], 2, 2, 2),
            StartPlan::Replace(2)
        );
        // A third viewer finds both producers serving others.
        assert_eq!(
            plan_start(&producers, &viewers, &[], 3, 2, 2),
            StartPlan::Refuse
        );
        // A request of viewer 1 waiting on producer 2 keeps it for viewer 1.
        let waiting = [WaiterView {
            viewer: 1,
            rendition: V,
            index: 41,
        }];
        assert_eq!(
            plan_start(&producers, &viewers, &waiting, 2, 2, 2),
            StartPlan::Refuse
        );
    }

    #[test]
    fn held_producers_of_quiet_viewers_may_be_preempted() {
        let mut prod = p(1, 0, 25);
        let mut viewer = v(1, 3);
        assert!(!preemptable(&prod, &[viewer.clone()], &[], 2));
        prod.held = true;
        assert!(
            !preemptable(&prod, &[viewer.clone()], &[], 2),
            "recently active"
        );
        viewer.idle = PREEMPT_IDLE;
        assert!(preemptable(&prod, &[viewer.clone()], &[], 2));
        let waiting = [WaiterView {
            viewer: 1,
            rendition: A,
            index: 25,
        }];
        assert!(!preemptable(&prod, &[viewer], &waiting, 2));
        assert!(preemptable(&p(2, 0, 3), &[], &[], 2), "nobody needs it");
    }

    #[test]
    fn a_producer_stops_at_work_that_is_done_or_being_done() {
        let prod = p(1, 0, 7);
        let nothing = |_: u64, _: usize| false;
        assert!(!reached_existing(&prod, 7, nothing, &[]));
        assert!(reached_existing(&prod, 7, |_, n| n == 7, &[]));
        // Only the video is there: the audio is still needed.
        assert!(!reached_existing(&prod, 7, |r, _| r == V, &[]));
        // Another producer started at 7 and is at 9.
        assert!(reached_existing(&prod, 7, nothing, &[p(2, 7, 9)]));
        // ... but not one that makes only the audio.
        let audio_only = ProducerView {
            renditions: A,
            driving: A,
            ..p(2, 7, 9)
        };
        assert!(!reached_existing(&prod, 7, nothing, &[audio_only]));
        assert!(!reached_existing(&prod, 7, nothing, &[p(2, 8, 9)]));
    }

    #[test]
    fn eviction_takes_the_least_recently_used_unprotected_segments() {
        let seg = |key: u32, last_used: u64, protected: bool| StoredView {
            key,
            bytes: 100,
            last_used,
            protected,
        };
        let all = vec![
            seg(1, 5, false),
            seg(2, 1, true),
            seg(3, 2, false),
            seg(4, 9, false),
        ];
        assert_eq!(eviction_order(all.clone(), 400, 250), vec![3, 1]);
        assert_eq!(eviction_order(all.clone(), 400, 400), Vec::<u32>::new());
        // The protected one stays even if the target cannot be reached.
        assert_eq!(eviction_order(all, 400, 0), vec![3, 1, 4]);
    }

    #[test]
    fn windows_cover_the_playhead_and_the_segments_fetched_ahead() {
        assert!(in_window(5, 5, 2));
        assert!(in_window(5, 8, 2));
        assert!(!in_window(5, 9, 2));
        assert!(!in_window(5, 4, 2));
    }

    #[test]
    fn a_producer_far_ahead_gives_way_while_another_request_waits() {
        let p = ProducerView {
            id: 1,
            renditions: 0b011,
            driving: 0b001,
            start: 0,
            next: 8,
            lagging: 8,
            held: false,
        };
        let player = |playhead| ViewerView {
            id: 7,
            playhead,
            renditions: 0b011,
            preload: false,
            idle: Duration::ZERO,
        };
        // The player switched audio: it waits for rendition 2 at 2.
        let switch = WaiterView {
            viewer: 7,
            rendition: 0b100,
            index: 2,
        };
        assert!(yields(&p, &[player(2)], std::slice::from_ref(&switch), 2));
        // Nobody waits: it runs on to its margin.
        assert!(!yields(&p, &[player(2)], &[], 2));
        // Its player is at its edge: it must not stop.
        assert!(!yields(&p, &[player(7)], std::slice::from_ref(&switch), 2));
        assert!(yields(&p, &[player(6)], std::slice::from_ref(&switch), 2));
        // It makes what is waited for.
        let mine = WaiterView {
            viewer: 9,
            rendition: 0b001,
            index: 9,
        };
        assert!(!yields(&p, &[player(2)], &[switch, mine], 2));
    }
}
