//! A title's throttling, on tokio's paused clock: where each producer is
//! held as its players move, pause and leave.

use super::*;
use crate::supervisor::testing::{producer, title};
use crate::timeline::Timeline;

const MARGIN: Duration = Duration::from_secs(120);

/// 50 segments of 6 s: segment `n` ends at `6 (n + 1)` s.
fn five_minutes() -> TimelineState {
    TimelineState::Ready(Timeline::grid(
        Duration::from_secs(6),
        Some(Duration::from_secs(300)),
    ))
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

fn rendition_0() -> RenditionSet {
    [0].into_iter().collect()
}

#[tokio::test(start_paused = true)]
async fn a_producer_is_held_the_margin_past_its_furthest_player() {
    let t = title(Some(MARGIN), None);
    t.set_timeline(five_minutes());
    let p = producer(&t, 1, 0);
    let (a, b) = ((Uuid::new_v4(), 1), (Uuid::new_v4(), 1));

    t.touch(a, 2, false, rendition_0());
    assert_eq!(
        p.throttle.limit(),
        secs(18 + 120),
        "end of segment 2 + margin"
    );

    // A second player further on (the producer has reached it) moves the
    // limit with it; the one behind does not pull it back.
    p.set_next(0, 9);
    t.touch(b, 10, false, rendition_0());
    assert_eq!(p.throttle.limit(), secs(66 + 120));
    t.touch(a, 3, false, rendition_0());
    assert_eq!(p.throttle.limit(), secs(66 + 120));

    // A player far ahead of the producer is another producer's.
    t.touch(b, 30, false, rendition_0());
    assert_eq!(p.throttle.limit(), secs(24 + 120));

    // Near the end the limit passes the end: the file's end stops it.
    p.set_next(0, 44);
    t.touch(b, 45, false, rendition_0());
    assert_eq!(p.throttle.limit(), secs(276 + 120));
}

#[tokio::test(start_paused = true)]
async fn a_preloaded_player_holds_its_producer_after_two_segments_until_played() {
    let t = title(Some(MARGIN), None);
    t.set_timeline(five_minutes());
    let p = producer(&t, 1, 0);
    let session = Uuid::new_v4();

    t.touch((session, 1), 0, true, rendition_0());
    assert_eq!(p.throttle.limit(), secs(12), "end of segment 1");
    t.played(session);
    assert_eq!(p.throttle.limit(), secs(6 + 120));
}

#[tokio::test(start_paused = true)]
async fn a_store_past_its_budget_holds_producers_at_their_players_window() {
    // A budget of 0 bytes: the store never admits more.
    let t = title(Some(MARGIN), Some(0));
    t.set_timeline(five_minutes());
    let p = producer(&t, 1, 0);
    p.set_next(0, 3);
    t.touch((Uuid::new_v4(), 1), 4, false, rendition_0());
    // The window: the playhead and `ahead` (2) + 1 segments after it.
    assert_eq!(p.throttle.limit(), secs(6 * 8));
}

#[tokio::test(start_paused = true)]
async fn without_a_margin_a_producer_runs_to_the_end() {
    let t = title(None, None);
    t.set_timeline(five_minutes());
    let p = producer(&t, 1, 0);
    p.throttle.set_limit(secs(1));
    t.touch((Uuid::new_v4(), 1), 2, false, rendition_0());
    assert_eq!(p.throttle.limit(), None);
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_elsewhere_holds_a_producer_whose_players_are_served() {
    let t = title(Some(MARGIN), None);
    t.set_timeline(five_minutes());
    let p = producer(&t, 1, 0);
    let player = (Uuid::new_v4(), 1);
    t.touch(player, 0, false, rendition_0());
    // It has written segments 0 to 4: its player's next one is made.
    p.set_next(0, 5);
    assert_eq!(p.throttle.limit(), secs(6 + 120));

    let seek = (Uuid::new_v4(), 1);
    let waiting = t.add_waiter(seek, 0, 40);
    assert_eq!(p.throttle.limit(), secs(30), "held where it is");
    drop(waiting);
    assert_eq!(p.throttle.limit(), secs(6 + 120), "runs on once served");
}

#[tokio::test(start_paused = true)]
async fn a_producer_stops_once_its_last_player_is_gone() {
    let t = title(Some(MARGIN), None);
    t.set_timeline(five_minutes());
    let p = producer(&t, 1, 0);
    let player = (Uuid::new_v4(), 1);
    t.touch(player, 0, false, rendition_0());

    tokio::time::advance(Duration::from_secs(20)).await;
    t.expire_players(Duration::from_secs(30));
    t.retune();
    assert!(!p.is_stopping(), "its player was heard from 20 s ago");

    tokio::time::advance(Duration::from_secs(20)).await;
    t.expire_players(Duration::from_secs(30));
    assert_eq!(t.player_count(), 0);
    t.retune();
    assert!(p.is_stopping());
    assert_eq!(p.stop_reason(), "nobody needs it");
    assert_eq!(p.throttle.limit(), Some(Duration::ZERO), "held at once");
}

#[tokio::test(start_paused = true)]
async fn a_new_producer_is_given_a_second_before_it_counts_as_unneeded() {
    let t = title(Some(MARGIN), None);
    t.set_timeline(five_minutes());
    let p = producer(&t, 1, 0);
    t.retune();
    assert!(!p.is_stopping(), "its first request is on the way");
    tokio::time::advance(Duration::from_millis(1100)).await;
    t.retune();
    assert!(p.is_stopping());
}
