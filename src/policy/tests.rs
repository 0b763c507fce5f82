//! Unit tests of the supervisor's rules.

use super::*;

use crate::rendition::RenditionSet;

/// The video rendition.
const V: usize = 0;
/// The audio rendition.
const A: usize = 1;

/// Renditions by index.
fn set(indexes: &[usize]) -> RenditionSet {
    RenditionSet::of(indexes.iter().copied())
}

fn p(id: u64, start: usize, next: usize) -> ProducerView {
    ProducerView {
        id,
        renditions: set(&[V, A]),
        driving: V,
        start,
        next,
        lagging: next,
        held: false,
    }
}

fn v(id: u64, playhead: usize) -> PlayerView {
    PlayerView {
        id,
        playhead,
        renditions: set(&[V, A]),
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
    let switched = PlayerView {
        renditions: set(&[A, 2]),
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
        player: 7,
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
            renditions: set(&[A]),
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
    let pre = PlayerView {
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
    let other = PlayerView {
        renditions: set(&[2]),
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
    let late = PlayerView {
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
        player: 1,
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
        player: 1,
        rendition: A,
        index: 25,
    }];
    assert!(!preemptable(&prod, &[viewer], &waiting, 2));
    assert!(preemptable(&p(2, 0, 3), &[], &[], 2), "nobody needs it");
}

#[test]
fn a_producer_stops_at_work_that_is_done_or_being_done() {
    let prod = p(1, 0, 7);
    let nothing = |_: usize, _: usize| false;
    assert!(!reached_existing(&prod, 7, nothing, &[]));
    assert!(reached_existing(&prod, 7, |_, n| n == 7, &[]));
    // Only the video is there: the audio is still needed.
    assert!(!reached_existing(&prod, 7, |r, _| r == V, &[]));
    // Another producer started at 7 and is at 9.
    assert!(reached_existing(&prod, 7, nothing, &[p(2, 7, 9)]));
    // ... but not one that makes only the audio.
    let audio_only = ProducerView {
        renditions: set(&[A]),
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
        renditions: set(&[0, 1]),
        driving: 0,
        start: 0,
        next: 8,
        lagging: 8,
        held: false,
    };
    let player = |playhead| PlayerView {
        id: 7,
        playhead,
        renditions: set(&[0, 1]),
        preload: false,
        idle: Duration::ZERO,
    };
    // The player switched audio: it waits for rendition 2 at 2.
    let switch = WaiterView {
        player: 7,
        rendition: 2,
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
        player: 9,
        rendition: 0,
        index: 9,
    };
    assert!(!yields(&p, &[player(2)], &[switch, mine], 2));
}
