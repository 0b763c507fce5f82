//! What `GET /api/v1/sessions` says of a session as its title's producers
//! start, run, are held, fail and stop, on tokio's paused clock.

use super::*;
use crate::pipeline::Throttle;
use crate::supervisor::testing::{producer, title};
use crate::timeline::Timeline;
use gst::prelude::*;

fn session(title: Arc<Title>) -> Session {
    let choice = Choice {
        video: Some(0),
        ..Default::default()
    };
    Session::new(
        Uuid::new_v4(),
        title,
        "alice",
        Playback::Remux,
        choice,
        0,
        false,
    )
}

/// 50 segments of 6 s.
fn five_minutes() -> TimelineState {
    TimelineState::Ready(Timeline::grid(
        Duration::from_secs(6),
        Some(Duration::from_secs(300)),
    ))
}

/// Holds a streaming thread in `throttle` (as a pipeline past its limit
/// does) until the throttle is released.
fn hold(throttle: Arc<Throttle>) -> std::thread::JoinHandle<()> {
    gst::init().expect("GStreamer");
    let pad = gst::Pad::builder(gst::PadDirection::Src).build();
    // Active: an inactive pad is flushing, which lets a held stream go.
    pad.set_active(true).expect("pad activates");
    std::thread::spawn(move || throttle.wait(u64::MAX - 1, &pad, true))
}

#[tokio::test(start_paused = true)]
async fn a_session_starts_while_its_key_frames_are_read() {
    let s = session(title(None, None));
    let status = s.status(2);
    assert_eq!(status.state, SessionState::Starting);
    assert_eq!(status.segments_total, None);
    assert_eq!(s.percent(&status), None);
}

#[tokio::test(start_paused = true)]
async fn with_no_producer_a_session_is_starting_for_a_second_then_idle() {
    let t = title(None, None);
    t.set_timeline(five_minutes());
    let s = session(t);
    assert_eq!(s.status(2).state, SessionState::Starting);
    tokio::time::advance(Duration::from_millis(1100)).await;
    let status = s.status(2);
    assert_eq!(status.state, SessionState::Idle);
    assert_eq!(status.segments_total, Some(50));
    assert_eq!(s.percent(&status), Some(0.0));
}

#[tokio::test(start_paused = true)]
async fn a_running_producer_gives_its_position_and_speed() {
    let t = title(None, None);
    t.set_timeline(five_minutes());
    let s = session(t.clone());
    t.touch((s.id, 1), 0, false, s.renditions);
    let p = producer(&t, 1, 0);
    assert_eq!(s.status(2).state, SessionState::Starting);

    tokio::time::advance(Duration::from_secs(10)).await;
    p.set_next(0, 5);
    p.set_position(Duration::from_secs(30));
    let status = s.status(2);
    assert_eq!(status.state, SessionState::Running);
    assert_eq!(status.position, Duration::from_secs(30));
    assert_eq!(status.speed, 3.0, "30 s of media in 10 s");
}

#[tokio::test(start_paused = true)]
async fn a_held_producer_is_throttled_once_its_output_stands_still() {
    let t = title(None, None);
    t.set_timeline(five_minutes());
    let s = session(t.clone());
    let p = producer(&t, 1, 0);
    p.set_next(0, 3);
    p.set_position(Duration::from_secs(18));
    p.throttle.set_limit(Some(Duration::from_secs(18)));
    let held = hold(p.throttle.clone());
    while !p.throttle.is_holding() {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The encoder may still drain what it holds: not throttled yet.
    assert_eq!(s.status(2).state, SessionState::Running);
    tokio::time::advance(Duration::from_millis(700)).await;
    assert_eq!(s.status(2).state, SessionState::Throttled);

    p.throttle.release();
    held.join().expect("held thread");
    assert_eq!(s.status(2).state, SessionState::Running);
}

#[tokio::test(start_paused = true)]
async fn a_stopped_producer_leaves_its_session_idle() {
    let t = title(None, None);
    t.set_timeline(five_minutes());
    let s = session(t.clone());
    let p = producer(&t, 1, 0);
    p.set_next(0, 2);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(s.status(2).state, SessionState::Running);
    p.stop("test");
    assert_eq!(s.status(2).state, SessionState::Idle);
}

#[tokio::test(start_paused = true)]
async fn a_failure_is_reported_with_its_message() {
    let t = title(None, None);
    t.set_timeline(five_minutes());
    let s = session(t.clone());
    producer(&t, 1, 0).set_next(0, 2);
    t.fail(s.renditions, "decoder: not negotiated".into());
    let status = s.status(2);
    assert_eq!(status.state, SessionState::Failed);
    assert_eq!(status.error.as_deref(), Some("decoder: not negotiated"));

    let t = title(None, None);
    t.set_timeline(TimelineState::Failed("no key frame".into()));
    let status = session(t).status(2);
    assert_eq!(status.state, SessionState::Failed);
    assert_eq!(status.error.as_deref(), Some("no key frame"));
}
