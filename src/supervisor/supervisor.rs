//! The supervisor itself: the titles being played, their producers and
//! the store they fill, the key-frame indexes it keeps, and the
//! admission lock every start takes.

use super::outcome::{Player, SegmentOutcome};
use super::producer::{Phase, Producer};
use super::run;
use super::title::{TimelineState, Title};
use crate::config::SupervisorSettings;
use crate::container::index::KeyframeIndex;
use crate::container::keyframes;
use crate::library::catalogue::Catalogue;
use crate::library::passes;
use crate::library::{MediaItem, Playback};
use crate::pipeline::Throttle;

use crate::rendition::{renditions_of, subtitle_renditions, KeyInputs, Plan, Presentation};
use crate::stats::Stats;
use crate::store::{title_key, SegmentStore};
use crate::timeline::Timeline;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type IndexCell = Arc<tokio::sync::OnceCell<Result<Arc<KeyframeIndex>, String>>>;

/// Key-frame indexes by file identity, and the order they came in.
type IndexCache = (
    HashMap<Arc<str>, IndexCell>,
    std::collections::VecDeque<Arc<str>>,
);

/// Key-frame indexes kept in memory: a 2-hour film's is about 40 KB (one
/// `Duration` per key frame), so 512 cost at most ~20 MB. The catalogue
/// will keep them on disk.
const INDEXES_KEPT: usize = 512;

/// Producers, the titles they work for, and the store they fill.
pub struct Supervisor {
    pub(super) settings: SupervisorSettings,
    pub(super) store: Arc<SegmentStore>,
    pub(super) stats: Arc<Stats>,
    /// Where key-frame indexes outlive the process (`None`: memory only).
    pub(super) catalogue: Option<Arc<Catalogue>>,
    pub(super) titles: Mutex<HashMap<Arc<str>, Arc<Title>>>,
    /// Key-frame indexes by file identity, the newest [`INDEXES_KEPT`].
    pub(super) indexes: Mutex<IndexCache>,
    pub(super) admission: Mutex<()>,
    pub(super) next_id: AtomicU64,
    /// Every task it starts (producers, timeline builds, first producers
    /// waiting for their timeline): shutdown waits on them.
    pub(super) tasks: Mutex<tokio::task::JoinSet<()>>,
}

/// `starting`, `running`, `held` or `stopping`.
fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Starting => "starting",
        Phase::Running => "running",
        Phase::Held => "held",
        Phase::Stopping => "stopping",
    }
}

/// One producer, as the admin statistics list it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProducerInfo {
    /// The item it works for.
    pub media_id: String,
    /// `remux` or `transcode`.
    pub kind: &'static str,
    /// `starting`, `running`, `held` or `stopping`.
    pub phase: &'static str,
    /// The names of the renditions it makes, the driving one first.
    pub renditions: Vec<String>,
    /// The segment it started at.
    pub start_segment: usize,
    /// The segment its driving rendition is writing.
    pub next_segment: usize,
}

/// Producer counts by kind and phase, for the statistics.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ProducerCounts {
    /// `{kind: {phase: n}}`.
    pub by_kind:
        std::collections::BTreeMap<&'static str, std::collections::BTreeMap<&'static str, u64>>,
}

impl Supervisor {
    /// A supervisor filling `store`, counting into `stats`, keeping
    /// key-frame indexes in `catalogue`.
    pub fn new(
        settings: SupervisorSettings,
        store: Arc<SegmentStore>,
        stats: Arc<Stats>,
        catalogue: Option<Arc<Catalogue>>,
    ) -> Self {
        Supervisor {
            settings,
            store,
            stats,
            catalogue,
            titles: Mutex::new(HashMap::new()),
            indexes: Mutex::new(Default::default()),
            admission: Mutex::new(()),
            next_id: AtomicU64::new(1),
            tasks: Mutex::new(tokio::task::JoinSet::new()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<SegmentStore> {
        &self.store
    }

    /// How many segments past a producer a request still counts as coming.
    pub fn relocate_ahead(&self) -> usize {
        self.settings.relocate_ahead
    }

    /// Every title being played.
    pub(super) fn titles(&self) -> Vec<Arc<Title>> {
        self.titles
            .lock()
            .expect("titles")
            .values()
            .cloned()
            .collect()
    }

    /// The title of `item` (by file identity) in `presentation`, made on
    /// first use; its timeline is built in the background.
    pub fn title(self: &Arc<Self>, item: Arc<MediaItem>, presentation: Presentation) -> Arc<Title> {
        let file = title_key(&item.id, item.size_bytes, item.stamp.modified());
        let key: Arc<str> = format!("{file}-{}", presentation.name()).into();
        let mut titles = self.titles.lock().expect("titles");
        if let Some(t) = titles.get(&key) {
            return t.clone();
        }
        let inputs = KeyInputs {
            video_template: &self.settings.templates.video_transcode,
            audio_template: &self.settings.templates.audio_transcode,
            first_segment_ms: self.settings.first_segment.as_millis(),
            max_height: self.settings.max_height,
            tonemap: self.settings.tonemap,
        };
        let renditions = renditions_of(&item, presentation, &inputs);
        let subtitles = subtitle_renditions(&item);
        let title = Arc::new(Title::new(
            key.clone(),
            item,
            renditions,
            subtitles,
            self.store.clone(),
            self.settings.relocate_ahead,
            self.settings.throttle_margin(),
        ));
        titles.insert(key, title.clone());
        drop(titles);
        self.spawn_task(self.clone().build_timeline(title.clone()));
        title
    }

    /// Finds the timeline of `title`: a grid, or the key-frame cuts of its
    /// copied video.
    async fn build_timeline(self: Arc<Self>, title: Arc<Title>) {
        let first = *self.settings.first_segment;
        let duration = title.item.duration_s.map(Duration::from_secs_f64);
        let copies_video = title
            .renditions
            .first()
            .is_some_and(|r| r.plan == Plan::VideoCopy);
        let state = if copies_video {
            let started = Instant::now();
            match self.keyframes(&title).await {
                Ok(index) => {
                    let last = index.keyframes.last().copied().unwrap_or_default();
                    // The container's duration only where it is believable.
                    let end = index.end.or(duration.filter(|d| *d >= last));
                    tracing::info!(
                        media_id = %title.item.id,
                        keyframes = index.keyframes.len(),
                        offsets = index.offsets.len(),
                        source = ?index.source,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "key frames indexed"
                    );
                    let timeline = Timeline::cuts(&index.keyframes, end, first);
                    title.set_copy_rates(index.data_end.and_then(|data_end| {
                        timeline.bit_rates(&index.keyframes, &index.offsets, data_end)
                    }));
                    TimelineState::Ready(timeline)
                }
                Err(e) => {
                    tracing::warn!(media_id = %title.item.id, error = %e, "cannot index key frames");
                    TimelineState::Failed(format!("the file's key frames cannot be read: {e}"))
                }
            }
        } else {
            TimelineState::Ready(Timeline::grid(first, duration))
        };
        title.set_timeline(state);
        title.retune();
    }

    /// The key frames of `title`'s video: from the catalogue when they were
    /// read before, else the container's index where it has one, else a
    /// demux-only pass (then stored in the catalogue); kept in memory per
    /// file identity while it is among the [`INDEXES_KEPT`] newest. During a demux pass, the
    /// cuts found so far are published as an open timeline every 250 ms, so
    /// a viewer gets a growing playlist within a second rather than waiting
    /// for the whole file to be read (12 s for a 2-hour film here).
    async fn keyframes(&self, title: &Arc<Title>) -> Result<Arc<KeyframeIndex>, String> {
        let cell = {
            let mut guard = self.indexes.lock().expect("indexes");
            let (cells, order) = &mut *guard;
            if !cells.contains_key(&title.key) {
                order.push_back(title.key.clone());
                if order.len() > INDEXES_KEPT {
                    if let Some(old) = order.pop_front() {
                        cells.remove(&old);
                    }
                }
            }
            cells.entry(title.key.clone()).or_default().clone()
        };
        let path = title.item.abs_path.clone();
        let timeout = *self.settings.index_timeout;
        let first = *self.settings.first_segment;
        let growing = title.clone();
        let catalogue = self.catalogue.clone();
        let (rel, stamp) = (title.item.path.clone(), title.item.stamp);
        let h264 = title.item.video.as_ref().is_some_and(|v| v.codec == "h264");
        cell.get_or_init(|| async move {
            let read = tokio::task::spawn_blocking(move || {
                if let Some(stored) = catalogue.as_ref().and_then(|c| c.keyframes(&rel, stamp)) {
                    return Ok(stored);
                }
                // An open-GOP H.264 index would cut on non-IDR frames: the
                // demux pass counts IDR frames only.
                let container = keyframes::from_container(&path).filter(|index| {
                    let open = h264 && passes::lists_non_idr_key_frames(&path, index);
                    if open {
                        tracing::info!(path = %path.display(), "the container's key frames include non-IDR frames (open GOP): reading them with a demux pass");
                    }
                    !open
                });
                let read = container.map(Ok).unwrap_or_else(|| {
                    let mut published = 0;
                    passes::demux_pass_progress(&path, timeout, &mut |keys| {
                        let partial = Timeline::cuts(keys, None, first);
                        let known = partial.known_durations().len();
                        if known > published {
                            published = known;
                            growing.set_timeline(TimelineState::Ready(partial));
                            growing.retune();
                        }
                    })
                });
                if let (Some(c), Ok(index)) = (&catalogue, &read) {
                    c.put_keyframes(&rel, stamp, index);
                }
                read
            })
            .await;
            match read {
                Ok(Ok(index)) if !index.keyframes.is_empty() => Ok(Arc::new(index)),
                Ok(Ok(_)) => Err("no key frame found".to_string()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(format!("indexing task failed: {e}")),
            }
        })
        .await
        .clone()
    }

    /// Segment `n` of rendition `rendition` of `title` for `player`, once
    /// it is in the store or `wait` has passed; starts a producer for it
    /// when none will reach it soon.
    pub async fn segment(
        &self,
        title: &Arc<Title>,
        player: Player,
        rendition: usize,
        n: usize,
        wait: Duration,
    ) -> SegmentOutcome {
        let deadline = tokio::time::Instant::now() + wait;
        let timeline = match title.wait_timeline(wait).await {
            Some(Ok(t)) => t,
            Some(Err(e)) => return SegmentOutcome::Failed(e),
            None => return SegmentOutcome::NotYet("the file's key frames are being read".into()),
        };
        if !timeline.contains(n) {
            return if timeline.known_until().is_some() {
                SegmentOutcome::NotYet("the file's key frames are still being read".into())
            } else {
                SegmentOutcome::Missing
            };
        }
        title.touch(player.key, n, player.preload, player.renditions);
        let key = title.segment_key(rendition, n);
        if let Some(path) = self.store.lookup(&key) {
            return SegmentOutcome::Ready(path);
        }
        if let Some(e) = title.failure() {
            return SegmentOutcome::Failed(e);
        }
        if let Err(o) = self.ensure(title, &player, rendition, n, &timeline) {
            return o;
        }
        let _waiting = title.add_waiter(player.key, rendition, n);
        let mut changes = title.subscribe();
        loop {
            if let Some(path) = self.store.lookup(&key) {
                return SegmentOutcome::Ready(path);
            }
            if let Some(e) = title.failure() {
                return SegmentOutcome::Failed(e);
            }
            if title.timeline().is_some_and(|t| !t.contains(n)) {
                return SegmentOutcome::Missing;
            }
            if !title.coming(rendition, n) {
                // Its producer may have stored it and ended since the
                // look-up above (a short remux ends within milliseconds).
                if let Some(path) = self.store.lookup(&key) {
                    return SegmentOutcome::Ready(path);
                }
                // Its producer gave way to a newer request, or stopped.
                return SegmentOutcome::NotYet(format!("segment {n} is not being made now"));
            }
            tokio::select! {
                changed = changes.changed() => if changed.is_err() {
                    return SegmentOutcome::NotYet(format!("segment {n} is being made"));
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return SegmentOutcome::NotYet(format!("segment {n} is being made"));
                }
            }
        }
    }

    pub(super) fn spawn(
        &self,
        title: &Arc<Title>,
        list: Vec<usize>,
        n: usize,
        kind: Playback,
        timeline: &Timeline,
    ) {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let producer = Arc::new(Producer::new(
            id,
            list,
            n,
            timeline.start(n),
            kind,
            Arc::new(Throttle::new(Some(Duration::ZERO))),
        ));
        title.add_producer(producer.clone());
        title.retune();
        self.spawn_task(run::run(run::RunContext {
            title: title.clone(),
            producer,
            timeline: timeline.clone(),
            templates: self.settings.templates.clone(),
            stats: self.stats.clone(),
            cluster: self.catalogue.clone().filter(|c| c.is_shared()),
        }));
    }

    /// Frees the store down to 90 % of its budget, never touching a
    /// segment in a player's window or waited for.
    pub fn enforce_budget(&self) -> usize {
        if self.store.limit().is_none() {
            return 0;
        }
        // Gathered before the store's lock is taken (lock order).
        let windows: HashMap<Arc<str>, Vec<(usize, usize)>> = self
            .titles()
            .iter()
            .map(|t| (t.key.clone(), t.windows()))
            .collect();
        self.store.enforce_budget(|k| {
            windows
                .get(&k.title)
                .is_some_and(|w| w.iter().any(|(a, b)| *a <= k.index && k.index <= *b))
        })
    }

    /// Periodic upkeep: forgets players silent for `player_timeout`, stops
    /// producers nobody needs, drops titles nobody uses, keeps the budget.
    pub fn reap(&self, player_timeout: Duration) {
        let mut idle = Vec::new();
        for t in self.titles() {
            t.expire_players(player_timeout);
            t.retune();
            if t.is_idle() {
                idle.push(t.key.clone());
            }
        }
        if !idle.is_empty() {
            let mut titles = self.titles.lock().expect("titles");
            for k in idle {
                if titles.get(&k).is_some_and(|t| t.is_idle()) {
                    titles.remove(&k);
                }
            }
        }
        self.enforce_budget();
    }

    /// Resolves when the store has passed its budget.
    pub async fn over_budget(&self) {
        self.store.over_budget().await
    }

    /// Producer counts by kind and phase.
    pub fn counts(&self) -> ProducerCounts {
        let mut c = ProducerCounts::default();
        for p in self.titles().iter().flat_map(|t| t.producers()) {
            *c.by_kind
                .entry(p.kind.as_str())
                .or_default()
                .entry(phase_name(p.phase()))
                .or_default() += 1;
        }
        c
    }

    /// Every producer: which item, which renditions, where it is.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let mut out = Vec::new();
        for t in self.titles() {
            for p in t.producers() {
                out.push(ProducerInfo {
                    media_id: t.item.id.to_string(),
                    kind: p.kind.as_str(),
                    phase: phase_name(p.phase()),
                    renditions: p
                        .list
                        .iter()
                        .filter_map(|r| t.renditions.get(*r).map(|r| r.name.clone()))
                        .collect(),
                    start_segment: p.start,
                    next_segment: p.next(),
                });
            }
        }
        out.sort_by(|a, b| (&a.media_id, &a.renditions).cmp(&(&b.media_id, &b.renditions)));
        out
    }

    /// How many producers exist now (stopping ones included).
    pub fn producer_count(&self) -> usize {
        self.titles().iter().map(|t| t.producers().len()).sum()
    }

    /// Runs `task` among the supervisor's own (see [`Supervisor::shutdown`]);
    /// forgets those that ended.
    pub(super) fn spawn_task(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().expect("tasks");
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Stops every producer, waits (at most `wait`) for its tasks to end
    /// (each producer's with its pipeline at NULL), and empties the store.
    pub async fn shutdown(&self, wait: Duration) {
        for p in self.titles().iter().flat_map(|t| t.producers()) {
            p.stop("the server is shutting down");
        }
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks"));
        let ended =
            tokio::time::timeout(wait, async { while tasks.join_next().await.is_some() {} }).await;
        if ended.is_err() {
            tracing::warn!(left = tasks.len(), "producers did not stop in time");
            tasks.abort_all();
        }
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.clear()).await;
    }
}
