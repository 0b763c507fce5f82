//! A title: one media file being served, with its renditions, its
//! timeline, the producers making its segments and the players watching
//! it.
//!
//! Its state lives behind a `std::sync::Mutex` held only for bookkeeping,
//! never across an `.await` (as in mini-redis's `db.rs`); streaming threads
//! take it when a segment is finished. Lock order: the supervisor's
//! admission lock, then a title, then the store; never the other way.

use super::cues::TitleCues;
use super::producer::Producer;
use crate::library::MediaItem;
use crate::policy::{self, ProducerView, ViewerView, WaiterView};
use crate::rendition::{Rendition, SubtitleRendition};
use crate::store::{SegmentKey, SegmentStore};
use crate::timeline::Timeline;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use uuid::Uuid;

/// A player of a viewer session: (session id, player number).
pub type ViewerKey = (Uuid, u32);

/// Where a title's timeline is.
#[derive(Debug, Clone, PartialEq)]
pub enum TimelineState {
    /// Its key frames are being read.
    Building,
    /// Known.
    Ready(Timeline),
    /// It cannot be had (the file cannot be indexed); the message says why.
    Failed(String),
}

/// One player's place.
#[derive(Debug, Clone)]
struct Viewer {
    playhead: usize,
    last_seen: Instant,
    preload: bool,
    renditions: u64,
}

/// A hook run once a segment of the driving rendition is in the store.
type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct TitleState {
    producers: Vec<Arc<Producer>>,
    viewers: HashMap<ViewerKey, Viewer>,
    waiters: HashMap<u64, (ViewerKey, usize, usize)>,
    next_waiter: u64,
    failure: Option<String>,
    first_segment_hooks: Vec<((usize, usize), Hook)>,
}

/// One media file being served.
pub struct Title {
    /// Its file identity (media id, size, mtime): its folder in the store.
    pub key: Arc<str>,
    /// The library item, as probed.
    pub item: Arc<MediaItem>,
    /// Its renditions; a rendition's index here is its bit in masks.
    pub renditions: Vec<Rendition>,
    /// Its WebVTT renditions, one per text subtitle track.
    pub subtitles: Vec<SubtitleRendition>,
    /// The cues of each of [`Title::subtitles`] known so far.
    pub cues: TitleCues,
    rendition_keys: Vec<Arc<str>>,
    timeline: watch::Sender<TimelineState>,
    state: Mutex<TitleState>,
    /// Bumped whenever a segment arrives, a producer ends or fails, or the
    /// timeline changes: requests waiting for a segment watch it.
    changed: watch::Sender<u64>,
    store: Arc<SegmentStore>,
    /// How far ahead of a producer a request still counts as coming
    /// (`--relocate-ahead`).
    ahead: usize,
    /// The throttle margin (`--throttle-margin`); `None`: never held.
    margin: Option<Duration>,
    /// Media seconds per second of the last producer that ended.
    last_speed: Mutex<f64>,
    /// Whether its end was unknown when it was first served: its media
    /// playlists are then growing (EVENT) ones for good, since a playlist
    /// may not change its type (RFC 8216 §4.3.3.5).
    growing: std::sync::atomic::AtomicBool,
    /// Lengths of the segments of the driving rendition made so far, for a
    /// growing playlist (which may only append, even if the store evicts).
    made: Mutex<std::collections::BTreeMap<usize, Duration>>,
}

/// Removes a waiting request from its title when dropped.
pub struct WaiterGuard {
    title: Arc<Title>,
    id: u64,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        self.title.lock().waiters.remove(&self.id);
        // A producer that gave way to this request runs on.
        self.title.retune();
    }
}

/// The bit of rendition `i` in a mask.
pub fn bit(i: usize) -> u64 {
    1u64 << i.min(63)
}

impl Title {
    /// A title for `item` with `renditions`, its timeline still to come.
    pub fn new(
        key: Arc<str>,
        item: Arc<MediaItem>,
        renditions: Vec<Rendition>,
        subtitles: Vec<SubtitleRendition>,
        store: Arc<SegmentStore>,
        ahead: usize,
        margin: Option<Duration>,
    ) -> Self {
        let rendition_keys = renditions.iter().map(|r| r.key.as_str().into()).collect();
        Title {
            key,
            item,
            renditions,
            cues: TitleCues::new(subtitles.len()),
            subtitles,
            rendition_keys,
            timeline: watch::Sender::new(TimelineState::Building),
            state: Mutex::new(TitleState::default()),
            changed: watch::Sender::new(0),
            store,
            ahead,
            margin,
            last_speed: Mutex::new(0.0),
            growing: std::sync::atomic::AtomicBool::new(false),
            made: Mutex::new(Default::default()),
        }
    }

    /// Whether its media playlists grow (EVENT) rather than list the
    /// whole timeline (VOD).
    pub fn is_growing(&self) -> bool {
        self.growing.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Records the length of segment `n` of the driving rendition.
    pub fn note_made(&self, n: usize, duration: Duration) {
        self.made.lock().expect("made").insert(n, duration);
    }

    /// The lengths of the driving rendition's segments made from 0 on
    /// without a gap: what a growing playlist lists.
    pub fn made_prefix(&self) -> Vec<Duration> {
        let made = self.made.lock().expect("made");
        (0..).map_while(|n| made.get(&n).copied()).collect()
    }

    /// Records the speed of a producer that ended.
    pub fn note_speed(&self, speed: f64) {
        if speed > 0.0 {
            *self.last_speed.lock().expect("last speed") = speed;
        }
    }

    /// The speed of the last producer that ended (0 before any).
    pub fn last_speed(&self) -> f64 {
        *self.last_speed.lock().expect("last speed")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TitleState> {
        self.state.lock().expect("title lock")
    }

    /// The bits of its video renditions.
    pub fn video_renditions(&self) -> u64 {
        self.mask_where(|r| r.plan.is_video())
    }

    /// The bits of its audio renditions.
    pub fn audio_renditions(&self) -> u64 {
        self.mask_where(|r| !r.plan.is_video())
    }

    fn mask_where(&self, f: impl Fn(&Rendition) -> bool) -> u64 {
        self.renditions
            .iter()
            .enumerate()
            .filter(|(_, r)| f(r))
            .fold(0, |m, (i, _)| m | bit(i))
    }

    /// The index of the subtitle rendition named `name`.
    pub fn subtitle_index(&self, name: &str) -> Option<usize> {
        self.subtitles.iter().position(|s| s.name == name)
    }

    /// The index of the rendition named `name`.
    pub fn rendition_index(&self, name: &str) -> Option<usize> {
        self.renditions.iter().position(|r| r.name == name)
    }

    /// The store key of segment `n` of rendition `rendition`.
    pub fn segment_key(&self, rendition: usize, n: usize) -> SegmentKey {
        SegmentKey {
            title: self.key.clone(),
            rendition: self.rendition_keys[rendition].clone(),
            index: n,
        }
    }

    /// The store keys of the renditions in `mask`.
    pub fn rendition_keys(&self, mask: u64) -> Vec<Arc<str>> {
        (0..self.renditions.len())
            .filter(|i| mask & bit(*i) != 0)
            .map(|i| self.rendition_keys[i].clone())
            .collect()
    }

    /// The store.
    pub fn store(&self) -> &SegmentStore {
        &self.store
    }

    /// Whether segment `n` of `rendition` is in the store.
    pub fn has_segment(&self, rendition: usize, n: usize) -> bool {
        rendition < self.renditions.len() && self.store.contains(&self.segment_key(rendition, n))
    }

    // ---- timeline ----

    /// The timeline's state now.
    pub fn timeline_state(&self) -> TimelineState {
        self.timeline.borrow().clone()
    }

    /// The timeline, if known.
    pub fn timeline(&self) -> Option<Timeline> {
        match &*self.timeline.borrow() {
            TimelineState::Ready(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// Sets the timeline (once it is built, or when a producer finds the
    /// real end) and wakes everyone waiting. A first timeline without an
    /// end makes the title growing.
    pub fn set_timeline(&self, state: TimelineState) {
        let first = *self.timeline.borrow() == TimelineState::Building;
        if let (true, TimelineState::Ready(t)) = (first, &state) {
            self.growing
                .store(!t.is_closed(), std::sync::atomic::Ordering::SeqCst);
        }
        self.timeline.send_replace(state);
        self.bump();
    }

    /// Waits up to `wait` for the timeline; `None` if it is still being
    /// built then.
    pub async fn wait_timeline(&self, wait: Duration) -> Option<Result<Timeline, String>> {
        let mut rx = self.timeline.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|s| *s != TimelineState::Building)).await;
        let state = rx.borrow().clone();
        match state {
            TimelineState::Building => None,
            TimelineState::Ready(t) => Some(Ok(t)),
            TimelineState::Failed(e) => Some(Err(e)),
        }
    }

    /// A producer's driving stream ended in segment `last` at media time
    /// `end`: the file ends there. Closes an open timeline, or shortens one
    /// that claimed more.
    pub fn record_end(&self, last: usize, end: Duration) {
        let Some(t) = self.timeline() else { return };
        let shorter = t.len().is_some_and(|len| last + 1 < len);
        if !t.is_closed() || shorter {
            tracing::info!(
                media_id = %self.item.id,
                segments = last + 1,
                end_s = end.as_secs_f64(),
                "the media ends here"
            );
            self.set_timeline(TimelineState::Ready(t.closed_at(last + 1, end)));
        }
    }

    // ---- changes ----

    /// Wakes everyone waiting on this title.
    pub fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that sees every [`Self::bump`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    // ---- failure ----

    /// The failure message, if a producer of this title failed.
    pub fn failure(&self) -> Option<String> {
        self.lock().failure.clone()
    }

    /// Records that a producer of `mask` failed with `message`: its
    /// renditions' segments are dropped, and every player of the title sees
    /// the failure. Returns the distinct sessions that were watching.
    pub fn fail(&self, mask: u64, message: String) -> usize {
        let sessions = {
            let mut st = self.lock();
            st.failure = Some(message);
            let mut ids: Vec<Uuid> = st.viewers.keys().map(|(s, _)| *s).collect();
            ids.sort();
            ids.dedup();
            ids.len()
        };
        self.store
            .remove_renditions(&self.key, &self.rendition_keys(mask));
        self.bump();
        sessions
    }

    /// Forgets a failure, so a new session tries again.
    pub fn clear_failure(&self) {
        self.lock().failure = None;
    }

    // ---- viewers ----

    /// Records a request of player `viewer` for segment `n` (or where it
    /// starts): its playhead moves there. `preload` marks a player of a
    /// session that was only preloaded. Retunes the throttles.
    pub fn touch(&self, viewer: ViewerKey, n: usize, preload: bool, renditions: u64) {
        {
            let mut st = self.lock();
            st.viewers.insert(
                viewer,
                Viewer {
                    playhead: n,
                    last_seen: Instant::now(),
                    preload,
                    renditions,
                },
            );
        }
        self.retune();
    }

    /// Forgets one player (a session's start placeholder, once a real
    /// player has fetched the master playlist).
    pub fn remove_player(&self, viewer: ViewerKey) {
        self.lock().viewers.remove(&viewer);
    }

    /// The players of session `session` are no longer preloads.
    pub fn played(&self, session: Uuid) {
        {
            let mut st = self.lock();
            for ((s, _), v) in st.viewers.iter_mut() {
                if *s == session {
                    v.preload = false;
                }
            }
        }
        self.retune();
    }

    /// Forgets every player of `session` (stopped or timed out).
    pub fn remove_session(&self, session: Uuid) {
        self.lock().viewers.retain(|(s, _), _| *s != session);
        self.retune();
    }

    /// Forgets players not heard from for `timeout` (a closed device whose
    /// session lives on through another).
    pub fn expire_players(&self, timeout: Duration) {
        let now = Instant::now();
        self.lock()
            .viewers
            .retain(|_, v| now.saturating_duration_since(v.last_seen) <= timeout);
    }

    /// The playheads of the players of `session`.
    pub fn playheads(&self, session: Uuid) -> Vec<usize> {
        self.lock()
            .viewers
            .iter()
            .filter(|((s, _), _)| *s == session)
            .map(|(_, v)| v.playhead)
            .collect()
    }

    /// Segment indexes in some player's window (never evicted), by
    /// rendition key.
    pub fn windows(&self) -> Vec<(usize, usize)> {
        let st = self.lock();
        let mut w: Vec<(usize, usize)> = st
            .viewers
            .values()
            .map(|v| (v.playhead, v.playhead + self.ahead + 1))
            .collect();
        w.extend(st.waiters.values().map(|(_, _, n)| (*n, *n)));
        w
    }

    /// Registers a request waiting for segment `n` of `rendition`.
    pub fn add_waiter(
        self: &Arc<Self>,
        viewer: ViewerKey,
        rendition: usize,
        n: usize,
    ) -> WaiterGuard {
        let id = {
            let mut st = self.lock();
            st.next_waiter += 1;
            let id = st.next_waiter;
            st.waiters.insert(id, (viewer, rendition, n));
            id
        };
        self.retune();
        WaiterGuard {
            title: self.clone(),
            id,
        }
    }

    /// Runs `hook` once segment `n` of `rendition` is in the store (at
    /// once if it is).
    pub fn on_first_segment(&self, rendition: usize, n: usize, hook: Hook) {
        if rendition >= self.renditions.len() || self.has_segment(rendition, n) {
            hook();
            return;
        }
        self.lock().first_segment_hooks.push(((rendition, n), hook));
    }

    /// Whether nobody watches, waits or produces: the title can go.
    pub fn is_idle(&self) -> bool {
        let st = self.lock();
        st.viewers.is_empty() && st.waiters.is_empty() && st.producers.is_empty()
    }

    /// How many players watch it.
    pub fn viewer_count(&self) -> usize {
        self.lock().viewers.len()
    }

    // ---- producers ----

    /// The producers running, oldest first.
    pub fn producers(&self) -> Vec<Arc<Producer>> {
        self.lock().producers.clone()
    }

    /// Adds a producer (before its task starts).
    pub fn add_producer(&self, p: Arc<Producer>) {
        self.lock().producers.push(p);
        self.bump();
    }

    /// Removes a producer whose task has ended.
    pub fn remove_producer(&self, id: u64) {
        self.lock().producers.retain(|p| p.id != id);
        self.bump();
    }

    /// The rules' view of viewers, producers and waiters now.
    pub fn views(&self) -> (Vec<ProducerView>, Vec<ViewerView>, Vec<WaiterView>) {
        let st = self.lock();
        Self::views_of(&st)
    }

    fn views_of(st: &TitleState) -> (Vec<ProducerView>, Vec<ViewerView>, Vec<WaiterView>) {
        let now = Instant::now();
        let producers = st
            .producers
            .iter()
            .filter(|p| !p.is_stopping())
            .map(|p| p.view())
            .collect();
        let viewers = st
            .viewers
            .iter()
            .map(|(k, v)| ViewerView {
                id: viewer_id(k),
                playhead: v.playhead,
                renditions: v.renditions,
                preload: v.preload,
                idle: now.saturating_duration_since(v.last_seen),
            })
            .collect();
        let waiters = st
            .waiters
            .values()
            .map(|(k, r, n)| WaiterView {
                viewer: viewer_id(k),
                rendition: bit(*r),
                index: *n,
            })
            .collect();
        (producers, viewers, waiters)
    }

    /// Whether a running producer will make segment `n` of `rendition` soon.
    pub fn coming(&self, rendition: usize, n: usize) -> bool {
        let st = self.lock();
        st.producers
            .iter()
            .filter(|p| !p.is_stopping())
            .any(|p| policy::coming(&p.view(), bit(rendition), n, self.ahead))
    }

    /// Moves every producer's throttle to where its viewers need it, and
    /// stops producers that nobody needs any more.
    pub fn retune(&self) {
        let Some(timeline) = self.timeline() else {
            return;
        };
        let tight = !self.store.admits();
        let st = self.lock();
        let (producers, viewers, waiters) = Self::views_of(&st);
        let ahead = self.ahead;
        for (p, view) in st
            .producers
            .iter()
            .filter(|p| !p.is_stopping())
            .zip(&producers)
        {
            // Held at cuts only: the last segment ends with the file (held
            // at the timeline's end, with audio past it, a producer never
            // saw EOS).
            let limit = policy::throttle_limit(
                view,
                &viewers,
                &waiters,
                |n| timeline.cut_after(n),
                self.margin,
                self.ahead,
                tight,
            );
            // Cuts still being found: no further than the last one known.
            let limit = match (limit, timeline.known_until()) {
                (Some(l), Some(k)) => Some(l.min(k)),
                (None, k) => k,
                (l, None) => l,
            };
            // Far enough ahead while another request waits: hold where it is.
            let limit = if policy::yields(view, &viewers, &waiters, ahead) {
                let here = timeline.start(view.next);
                Some(limit.map_or(here, |l| l.min(here)))
            } else {
                limit
            };
            p.throttle.set_limit(limit);
            if !policy::has_demand(view, &viewers, &waiters, self.ahead)
                && p.age() > Duration::from_secs(1)
            {
                p.stop("nobody needs it");
            }
        }
    }

    /// Segment `n` of `rendition` arrived from producer `p`: wakes
    /// waiters, runs first-segment hooks, retunes, and stops `p` if it has
    /// reached work that is done or being done.
    pub fn segment_added(&self, p: &Producer, rendition: usize, n: usize) {
        let hooks: Vec<Hook> = {
            let mut st = self.lock();
            let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut st.first_segment_hooks)
                .into_iter()
                .partition(|(at, _)| *at == (rendition, n));
            st.first_segment_hooks = waiting;
            ready.into_iter().map(|(_, h)| h).collect()
        };
        for h in hooks {
            h();
        }
        self.bump();
        self.retune();
        if p.drives(rendition) {
            self.check_reached(p, n + 1);
        }
    }

    /// Stops `p` when segment `next` is done or being done by another.
    pub fn check_reached(&self, p: &Producer, next: usize) {
        let (producers, _, _) = self.views();
        let view = p.view();
        let reached = policy::reached_existing(
            &view,
            next,
            |rbit, n| {
                let i = rbit.trailing_zeros() as usize;
                i < self.renditions.len() && self.has_segment(i, n)
            },
            &producers,
        );
        if reached {
            p.stop("reached segments that exist");
        }
    }
}

/// A viewer's id for the rules: its session and player folded into one
/// number (collisions would only merge two players' demand).
pub fn viewer_id(k: &ViewerKey) -> u64 {
    let (hi, lo) = k.0.as_u64_pair();
    hi ^ lo.rotate_left(17) ^ (u64::from(k.1)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
