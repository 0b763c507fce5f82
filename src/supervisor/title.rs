//! A title: one media file being served, with its renditions, its
//! timeline, the producers making its segments and the players watching
//! it.
//!
//! Everything that changes lives in one [`TitleState`] behind one
//! `std::sync::Mutex`, held only for bookkeeping, never across an
//! `.await` (as in mini-redis's `db.rs`); streaming threads take it when a
//! segment is finished. Every change that a waiting request may care
//! about (a segment, a producer's end or failure, the timeline) bumps one
//! `watch` channel. Lock order: the supervisor's admission lock, then a
//! title, then the store; never the other way.

use super::cues::TitleCues;
use super::playheads::{player_id, PlayerKey, Playheads};
use super::producer::Producer;
use crate::hls::PlaylistType;
use crate::library::MediaItem;
use crate::policy::{self, PlayerView, ProducerView, WaiterView};
use crate::rendition::{Plan, Rendition, RenditionSet, SubtitleRendition};
use crate::store::{SegmentKey, SegmentStore};
use crate::timeline::{BitRates, Timeline};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

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

/// A hook run once a segment of the driving rendition is in the store.
type Hook = Box<dyn FnOnce() + Send>;

/// What changes in a title, behind its one lock.
struct TitleState {
    timeline: TimelineState,
    /// EVENT when its end was unknown when it was first served: its media
    /// playlists then grow for good, since a playlist may not change its
    /// type (RFC 8216 §4.3.3.5); else VOD.
    playlist_type: PlaylistType,
    producers: Vec<Arc<Producer>>,
    playheads: Playheads,
    failure: Option<String>,
    first_segment_hooks: Vec<((usize, usize), Hook)>,
    /// Lengths of the segments of the driving rendition made so far, for a
    /// growing playlist (which may only append, even if the store evicts).
    made: BTreeMap<usize, Duration>,
    /// Media seconds per second of the last producer that ended.
    last_speed: f64,
    /// What its copied video's segments weigh, from the key frames'
    /// offsets in the file, when they are known.
    copy_rates: Option<BitRates>,
}

/// One media file being served.
pub struct Title {
    /// Its file identity (media id, size, mtime): its folder in the store.
    pub key: Arc<str>,
    /// The library item, as probed.
    pub item: Arc<MediaItem>,
    /// Its renditions; a rendition's index here is its place in a
    /// [`RenditionSet`].
    pub renditions: Vec<Rendition>,
    /// Its WebVTT renditions, one per text subtitle track.
    pub subtitles: Vec<SubtitleRendition>,
    /// The cues of each of [`Title::subtitles`] known so far.
    pub cues: TitleCues,
    rendition_keys: Vec<Arc<str>>,
    state: Mutex<TitleState>,
    /// Bumped whenever a segment arrives, a producer ends or fails, or the
    /// timeline changes: requests waiting for any of these watch it.
    changed: watch::Sender<u64>,
    store: Arc<SegmentStore>,
    /// How far ahead of a producer a request still counts as coming
    /// (`--relocate-ahead`).
    ahead: usize,
    /// The throttle margin (`--throttle-margin`); `None`: never held.
    margin: Option<Duration>,
}

/// Removes a waiting request from its title when dropped.
pub struct WaiterGuard {
    title: Arc<Title>,
    id: u64,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        self.title.lock().playheads.done_waiting(self.id);
        // A producer that gave way to this request runs on.
        self.title.retune();
    }
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
            state: Mutex::new(TitleState {
                timeline: TimelineState::Building,
                playlist_type: PlaylistType::Vod,
                producers: Vec::new(),
                playheads: Playheads::default(),
                failure: None,
                first_segment_hooks: Vec::new(),
                made: BTreeMap::new(),
                last_speed: 0.0,
                copy_rates: None,
            }),
            changed: watch::Sender::new(0),
            store,
            ahead,
            margin,
        }
    }

    fn lock(&self) -> MutexGuard<'_, TitleState> {
        self.state.lock().expect("title lock")
    }

    // ---- renditions ----

    /// Its video renditions.
    pub fn video_renditions(&self) -> RenditionSet {
        self.renditions_where(|r| r.plan.is_video())
    }

    /// Its audio renditions.
    pub fn audio_renditions(&self) -> RenditionSet {
        self.renditions_where(|r| !r.plan.is_video())
    }

    fn renditions_where(&self, f: impl Fn(&Rendition) -> bool) -> RenditionSet {
        (0..self.renditions.len())
            .filter(|i| f(&self.renditions[*i]))
            .collect()
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

    /// The store keys of the renditions in `set`.
    pub fn rendition_keys(&self, set: RenditionSet) -> Vec<Arc<str>> {
        set.iter()
            .filter_map(|i| self.rendition_keys.get(i).cloned())
            .collect()
    }

    /// The store.
    pub fn store(&self) -> &Arc<SegmentStore> {
        &self.store
    }

    /// Whether segment `n` of `rendition` is in the store.
    pub fn has_segment(&self, rendition: usize, n: usize) -> bool {
        rendition < self.renditions.len() && self.store.contains(&self.segment_key(rendition, n))
    }

    // ---- what was made ----

    /// Records the length of segment `n` of the driving rendition.
    pub fn note_made(&self, n: usize, duration: Duration) {
        self.lock().made.insert(n, duration);
    }

    /// The lengths of the driving rendition's segments made from 0 on
    /// without a gap: what a growing playlist lists.
    pub fn made_prefix(&self) -> Vec<Duration> {
        let st = self.lock();
        (0..).map_while(|n| st.made.get(&n).copied()).collect()
    }

    /// Records the speed of a producer that ended.
    pub fn note_speed(&self, speed: f64) {
        if speed > 0.0 {
            self.lock().last_speed = speed;
        }
    }

    /// The speed of the last producer that ended (0 before any).
    pub fn last_speed(&self) -> f64 {
        self.lock().last_speed
    }

    // ---- timeline ----

    /// Whether its media playlists list the whole timeline (VOD) or
    /// grow (EVENT).
    pub fn playlist_type(&self) -> PlaylistType {
        self.lock().playlist_type
    }

    /// The timeline's state now.
    pub fn timeline_state(&self) -> TimelineState {
        self.lock().timeline.clone()
    }

    /// The timeline, if known.
    pub fn timeline(&self) -> Option<Timeline> {
        match &self.lock().timeline {
            TimelineState::Ready(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// What its copied video's segments weigh ([`Timeline::bit_rates`]),
    /// once its key frames' offsets are known.
    pub fn copy_rates(&self) -> Option<BitRates> {
        self.lock().copy_rates
    }

    /// The `BANDWIDTH` (peak) and the estimated `AVERAGE-BANDWIDTH` of
    /// rendition `i`, in bits per second, as its timeline makes them: a
    /// copy's from its key frames' offsets ([`Self::copy_rates`], with
    /// its packaging's overhead); an encoded rung's VBV bound over the
    /// shortest segment of the cut list (key-frame cuts may be shorter
    /// than the first segment the rendition was estimated for); else the
    /// rendition's own estimates.
    pub fn declared_bps(&self, i: usize) -> (u64, u64) {
        let r = &self.renditions[i];
        let (peak, average) = (r.bandwidth_bps, r.average_bps);
        match r.plan {
            Plan::VideoCopy => match self.copy_rates() {
                Some(rates) => {
                    let overhead = r.packaging.overhead();
                    (
                        (rates.peak_bps as f64 * overhead) as u64,
                        (rates.average_bps as f64 * overhead) as u64,
                    )
                }
                None => (peak, average),
            },
            Plan::VideoEncode {
                width,
                height,
                maxrate_kbps,
                ..
            } => {
                let shortest = self.timeline().and_then(|t| t.shortest());
                let rung = crate::ladder::Rung {
                    width,
                    height,
                    maxrate_kbps,
                };
                (peak.max(shortest.map_or(0, |s| rung.peak_bps(s))), average)
            }
            _ => (peak, average),
        }
    }

    /// Keeps what its copied video's segments weigh.
    pub fn set_copy_rates(&self, rates: Option<BitRates>) {
        self.lock().copy_rates = rates;
    }

    /// Sets the timeline (once it is built, or when a producer finds the
    /// real end) and wakes everyone waiting. A first timeline without an
    /// end makes its playlists EVENT ones.
    pub fn set_timeline(&self, state: TimelineState) {
        {
            let mut st = self.lock();
            if let (TimelineState::Building, TimelineState::Ready(t)) = (&st.timeline, &state) {
                st.playlist_type = if t.is_closed() {
                    PlaylistType::Vod
                } else {
                    PlaylistType::Event
                };
            }
            st.timeline = state;
        }
        self.bump();
    }

    /// Waits up to `wait` for the timeline; `None` if it is still being
    /// built then.
    pub async fn wait_timeline(&self, wait: Duration) -> Option<Result<Timeline, String>> {
        let mut changes = self.subscribe();
        let deadline = Instant::now() + wait;
        loop {
            match self.timeline_state() {
                TimelineState::Building => {}
                TimelineState::Ready(t) => return Some(Ok(t)),
                TimelineState::Failed(e) => return Some(Err(e)),
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return None },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
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

    /// Records that a producer of `renditions` failed with `message`: its
    /// renditions' segments are dropped, and every player of the title
    /// sees the failure. Returns the distinct sessions that were watching.
    pub fn fail(&self, renditions: RenditionSet, message: String) -> usize {
        let sessions = {
            let mut st = self.lock();
            st.failure = Some(message);
            st.playheads.sessions()
        };
        self.store
            .remove_renditions(&self.key, &self.rendition_keys(renditions));
        self.bump();
        sessions
    }

    /// Forgets a failure, so a new session tries again.
    pub fn clear_failure(&self) {
        self.lock().failure = None;
    }

    // ---- players ----

    /// Records a request of player `player` for segment `n` (or where it
    /// starts): its playhead moves there. `preload` marks a player of a
    /// session that was only preloaded. Retunes the throttles.
    pub fn touch(&self, player: PlayerKey, n: usize, preload: bool, renditions: RenditionSet) {
        self.lock()
            .playheads
            .touch(player, n, preload, renditions, Instant::now());
        self.retune();
    }

    /// Forgets one player (a session's start placeholder, once a real
    /// player has fetched the master playlist).
    pub fn remove_player(&self, player: PlayerKey) {
        self.lock().playheads.remove(player);
    }

    /// The players of session `session` are no longer preloads.
    pub fn played(&self, session: Uuid) {
        self.lock().playheads.played(session);
        self.retune();
    }

    /// Forgets every player of `session` (stopped or timed out).
    pub fn remove_session(&self, session: Uuid) {
        self.lock().playheads.remove_session(session);
        self.retune();
    }

    /// Forgets players not heard from for `timeout` (a closed device whose
    /// session lives on through another).
    pub fn expire_players(&self, timeout: Duration) {
        self.lock().playheads.expire(timeout, Instant::now());
    }

    /// The playheads of the players of `session`.
    pub fn playheads(&self, session: Uuid) -> Vec<usize> {
        self.lock().playheads.of_session(session)
    }

    /// Segment indexes in some player's window (never evicted).
    pub fn windows(&self) -> Vec<(usize, usize)> {
        self.lock().playheads.windows(self.ahead)
    }

    /// Registers a request waiting for segment `n` of `rendition`.
    pub fn add_waiter(
        self: &Arc<Self>,
        player: PlayerKey,
        rendition: usize,
        n: usize,
    ) -> WaiterGuard {
        let id = self.lock().playheads.wait(player, rendition, n);
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
        st.playheads.is_empty() && st.producers.is_empty()
    }

    /// How many players watch it.
    pub fn player_count(&self) -> usize {
        self.lock().playheads.len()
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

    /// The rules' view of producers, players and waiters now.
    pub fn views(&self) -> (Vec<ProducerView>, Vec<PlayerView>, Vec<WaiterView>) {
        Self::views_of(&self.lock())
    }

    fn views_of(st: &TitleState) -> (Vec<ProducerView>, Vec<PlayerView>, Vec<WaiterView>) {
        let producers = st
            .producers
            .iter()
            .filter(|p| !p.is_stopping())
            .map(|p| p.view())
            .collect();
        let (players, waiters) = st.playheads.views(Instant::now());
        (producers, players, waiters)
    }

    /// The rules' id of `player`.
    pub fn player_id(player: &PlayerKey) -> u64 {
        player_id(player)
    }

    /// Whether a running producer will make segment `n` of `rendition` soon.
    pub fn coming(&self, rendition: usize, n: usize) -> bool {
        let st = self.lock();
        st.producers
            .iter()
            .filter(|p| !p.is_stopping())
            .any(|p| policy::coming(&p.view(), rendition, n, self.ahead))
    }

    /// Moves every producer's throttle to where its players need it, and
    /// stops producers that nobody needs any more.
    pub fn retune(&self) {
        let tight = !self.store.admits();
        let st = self.lock();
        let TimelineState::Ready(timeline) = &st.timeline else {
            return;
        };
        let (producers, players, waiters) = Self::views_of(&st);
        let running = st.producers.iter().filter(|p| !p.is_stopping());
        for (p, view) in running.zip(&producers) {
            // Held at cuts only: the last segment ends with the file (held
            // at the timeline's end, with audio past it, a producer never
            // saw EOS).
            let limit = policy::throttle_limit(
                view,
                &players,
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
            let limit = if policy::yields(view, &players, &waiters, self.ahead) {
                let here = timeline.start(view.next);
                Some(limit.map_or(here, |l| l.min(here)))
            } else {
                limit
            };
            p.throttle.set_limit(limit);
            if !policy::has_demand(view, &players, &waiters, self.ahead)
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
        let reached =
            policy::reached_existing(&p.view(), next, |r, n| self.has_segment(r, n), &producers);
        if reached {
            p.stop("reached segments that exist");
        }
    }
}

#[cfg(test)]
mod tests;
