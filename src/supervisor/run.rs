//! A producer's task: build its pipeline, read its bus, move each finished
//! segment into the store, notice stalls, tear it down.
//!
//! GStreamer meets tokio here: the pipeline is built and started on a
//! blocking thread, its bus is read as an async stream by this task, and it
//! is set to NULL on a thread of its own (a pipeline may take a while to
//! stop, and one that never stops must not hold up the runtime).

use super::producer::Producer;
use super::spec::spec_for;
use super::title::Title;
use crate::config::PipelineTemplates;
use crate::library::catalogue::Catalogue;
use crate::pipeline::{self, PipelineEvent, ProducerSpec};
use crate::stats::Stats;
use crate::timeline::Timeline;
use futures_util::StreamExt;
use gst::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running pipeline whose output has not moved for this long (and is not
/// throttled) is ended where it is; if that does not end it within as long
/// again, the producer fails. No healthy pipeline goes this long without a
/// buffer: even 4 concurrent 1080p transcodes output several per second.
const STALL_TIMEOUT: Duration = Duration::from_secs(20);

/// How long stopping waits for a pipeline to reach NULL.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Everything a producer's task needs.
pub struct RunContext {
    /// The title it makes segments of.
    pub title: Arc<Title>,
    /// Its shared state.
    pub producer: Arc<Producer>,
    /// The title's timeline when it started.
    pub timeline: Timeline,
    /// The encode branches.
    pub templates: PipelineTemplates,
    /// Where its figures are counted.
    pub stats: Arc<Stats>,
    /// A catalogue other nodes share, told of every segment made
    /// ([`Catalogue::note_made`]); `None` or SQLite: nobody to tell.
    pub cluster: Option<Arc<Catalogue>>,
}

/// How a producer's pipeline ended.
enum End {
    /// Asked to stop.
    Stopped,
    /// The file ended.
    Eos,
    /// It failed: (kind for the statistics, plain message).
    Failed(&'static str, String),
}

/// Runs one producer until it is stopped, reaches the end or fails, then
/// tears its pipeline down and leaves no `.part` file behind.
pub async fn run(ctx: RunContext) {
    let RunContext {
        title,
        producer,
        timeline,
        templates,
        stats,
        cluster,
    } = ctx;
    let keys = title.rendition_keys(producer.renditions);
    let names: Vec<&str> = producer
        .list
        .iter()
        .map(|&i| title.renditions[i].name.as_str())
        .collect();
    tracing::info!(
        producer = producer.id,
        media_id = %title.item.id,
        renditions = ?names,
        segment = producer.start,
        kind = producer.kind.as_str(),
        "producer started"
    );
    stats.producer_started(&names);
    let started = Instant::now();
    let end = produce(
        &title,
        &producer,
        timeline.clone(),
        templates,
        stats.clone(),
        cluster,
    )
    .await;
    let (store, key, id) = (title.store().clone(), title.key.clone(), producer.id);
    let _ = tokio::task::spawn_blocking(move || store.remove_parts(&key, &keys, id)).await;
    let start_time = title
        .timeline()
        .map(|t| t.start(producer.start))
        .unwrap_or_default();
    title.note_speed(producer.speed(start_time));
    match &end {
        End::Stopped => tracing::info!(
            producer = producer.id,
            media_id = %title.item.id,
            reason = producer.stop_reason(),
            next_segment = producer.next(),
            "producer stopped"
        ),
        End::Eos => tracing::info!(
            producer = producer.id,
            media_id = %title.item.id,
            next_segment = producer.next(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "producer reached the end"
        ),
        End::Failed(kind, message) => {
            tracing::error!(producer = producer.id, media_id = %title.item.id, kind, error = %message, "producer failed");
            let sessions = title.fail(producer.renditions, message.clone());
            for _ in 0..sessions.max(1) {
                stats.session_failed(producer.kind, kind);
            }
        }
    }
    title.remove_producer(producer.id);
    title.retune();
}

/// Builds and runs the pipeline; returns how it ended, with the pipeline
/// at NULL.
async fn produce(
    title: &Arc<Title>,
    producer: &Arc<Producer>,
    timeline: Timeline,
    templates: PipelineTemplates,
    stats: Arc<Stats>,
    cluster: Option<Arc<Catalogue>>,
) -> End {
    if let Err(end) = prepare(title, producer).await {
        return end;
    }
    let start_time = timeline.start(producer.start);
    let spec = spec_for(title, producer, timeline, templates, stats, cluster);
    let built = match start(spec).await {
        Ok(built) => built,
        Err(end) => return end,
    };
    let mut guard = PipelineGuard {
        pipeline: Some(built.pipeline.clone()),
        throttle: producer.throttle.clone(),
    };
    let end = watch(title, producer, &built).await;
    producer.throttle.release();
    set_null(guard.take()).await;
    if matches!(end, End::Eos)
        && producer.next() == producer.start
        && !producer_made_anything(title, producer)
    {
        if producer.start == 0 {
            return End::Failed("empty", "the file has no media that could be played".into());
        }
        // The file ends before where this producer started.
        title.record_end(producer.start - 1, start_time);
    }
    end
}

/// Makes the producer's segment folders (off the async threads) and
/// checks that its file is still there.
async fn prepare(title: &Title, producer: &Producer) -> Result<(), End> {
    let (store, key) = (title.store().clone(), title.key.clone());
    let renditions = title.rendition_keys(producer.renditions);
    let made = tokio::task::spawn_blocking(move || {
        renditions
            .iter()
            .try_for_each(|r| store.ensure_dir(&key, r))
    })
    .await;
    if let Ok(Err(e)) | Err(e) = made.map_err(std::io::Error::other) {
        return Err(End::Failed(
            "write",
            format!("cannot create the segment folder: {e}"),
        ));
    }
    if tokio::fs::metadata(&title.item.abs_path).await.is_err() {
        return Err(End::Failed(
            "media_gone",
            "the file is no longer on disk".into(),
        ));
    }
    Ok(())
}

/// Builds the pipeline and sets it playing, off the async threads.
async fn start(spec: ProducerSpec) -> Result<pipeline::BuiltPipeline, End> {
    let built = tokio::task::spawn_blocking(move || {
        let built = pipeline::build(&spec)?;
        if let Err(e) = built.pipeline.set_state(gst::State::Playing) {
            // A pipeline must be at NULL before it is dropped.
            let _ = built.pipeline.set_state(gst::State::Null);
            return Err(e.into());
        }
        anyhow::Ok(built)
    })
    .await;
    match built {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            tracing::error!(error = format!("{e:#}"), "pipeline could not start");
            Err(End::Failed(
                "pipeline_start",
                "the pipeline could not start".into(),
            ))
        }
        Err(e) => Err(End::Failed(
            "pipeline_start",
            format!("pipeline task failed: {e}"),
        )),
    }
}

/// Follows a running pipeline until it ends, fails, stalls or its
/// producer is stopped: reads its bus and, every 250 ms, its position.
async fn watch(title: &Title, producer: &Producer, built: &pipeline::BuiltPipeline) -> End {
    let pipeline = &built.pipeline;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut messages = bus.stream();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let position = || Duration::from_nanos(built.position_ns.load(Ordering::Relaxed));
    let mut stall = Stall::new(position());
    loop {
        tokio::select! {
            _ = producer.stopped() => return End::Stopped,
            msg = messages.next() => {
                let Some(msg) = msg else {
                    return End::Failed("pipeline", "the pipeline's bus closed".into());
                };
                let Some(event) = pipeline::event_of(&msg, pipeline) else { continue };
                tracing::debug!(producer = producer.id, ?event, "pipeline event");
                producer.set_position(position());
                if let Some(end) = on_event(event) {
                    return end;
                }
            }
            _ = tick.tick() => {
                let reached = position();
                producer.set_position(reached);
                match stall.check(reached, producer.throttle.is_holding()) {
                    StallCheck::Moving => {}
                    StallCheck::EndHere => end_stalled(title, producer, pipeline, reached),
                    StallCheck::Failed => {
                        return End::Failed(
                            "stalled",
                            "the pipeline stopped making progress (a damaged file?)".into(),
                        )
                    }
                }
            }
        }
    }
}

/// What a pipeline event means for its producer: `Some` when it ends.
fn on_event(event: PipelineEvent) -> Option<End> {
    match event {
        PipelineEvent::Playing => None,
        PipelineEvent::Eos => Some(End::Eos),
        PipelineEvent::Error {
            element,
            message,
            debug: details,
        } => {
            tracing::error!(element, message, details, "pipeline error");
            let message =
                if details.contains("No space left on device") && !message.contains("full") {
                    format!("{message} The transcode dir is full.")
                } else {
                    message
                };
            Some(End::Failed("pipeline", message))
        }
        PipelineEvent::Warning { element, message } => {
            tracing::warn!(element, message, "pipeline warning");
            None
        }
    }
}

/// Whether a pipeline still moves: its position, and when that last
/// changed (a throttled pipeline counts as moving).
struct Stall {
    position: Duration,
    since: Instant,
    ended: bool,
}

/// What [`Stall::check`] found.
enum StallCheck {
    /// It moves, or has not stood still for [`STALL_TIMEOUT`].
    Moving,
    /// Still for [`STALL_TIMEOUT`]: end its streams where they are.
    EndHere,
    /// Still again for as long after its streams were ended.
    Failed,
}

impl Stall {
    fn new(position: Duration) -> Self {
        Stall {
            position,
            since: Instant::now(),
            ended: false,
        }
    }

    fn check(&mut self, reached: Duration, holding: bool) -> StallCheck {
        if reached != self.position || holding {
            self.position = reached;
            self.since = Instant::now();
            return StallCheck::Moving;
        }
        if self.since.elapsed() <= STALL_TIMEOUT {
            return StallCheck::Moving;
        }
        if self.ended {
            return StallCheck::Failed;
        }
        self.ended = true;
        self.since = Instant::now();
        StallCheck::EndHere
    }
}

/// Ends a stalled pipeline's streams where they are, so the segments made
/// so far are closed and kept. A demuxer resyncing through a damaged tail
/// (seen: a valid file followed by gigabytes of zeros) reads on without
/// output.
fn end_stalled(title: &Title, producer: &Producer, pipeline: &gst::Pipeline, reached: Duration) {
    tracing::warn!(
        producer = producer.id,
        media_id = %title.item.id,
        position_s = reached.as_secs_f64(),
        "no progress for {} s: ending the stream here",
        STALL_TIMEOUT.as_secs()
    );
    // Off the async threads: a serialized event waits for the streaming
    // thread.
    let stalled = pipeline.clone();
    tokio::task::spawn_blocking(move || {
        for pad in pipeline::output_sinks(&stalled)
            .iter()
            .flat_map(|s| s.sink_pads())
        {
            pad.send_event(gst::event::Eos::new());
        }
    });
}

/// Whether segment `start` of the producer's driving rendition is in the
/// store (it made it, or found it there).
fn producer_made_anything(title: &Title, producer: &Producer) -> bool {
    producer
        .list
        .first()
        .is_some_and(|&r| title.has_segment(r, producer.start))
}

/// Sets `pipeline` to NULL on a thread of its own (it may wait for
/// streaming threads to stop). Not `spawn_blocking`: should GStreamer never
/// return, that thread would hold up the runtime's shutdown, and with it
/// the process's exit; waiting here is bounded by [`STOP_WAIT`].
async fn set_null(pipeline: gst::Pipeline) {
    let (done, finished) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("pipeline-stop".into())
        .spawn(move || {
            if let Err(e) = pipeline.set_state(gst::State::Null) {
                tracing::warn!(error = %e, "pipeline did not go to NULL cleanly");
            }
            let _ = done.send(());
        });
    if spawned.is_err() {
        tracing::error!("could not start a thread to stop a pipeline");
        return;
    }
    if tokio::time::timeout(STOP_WAIT, finished).await.is_err() {
        tracing::error!("pipeline did not reach NULL in time; its thread is left behind");
    }
}

/// Owns a producer's running pipeline. If it is dropped still owning it
/// (the task was dropped, at runtime shutdown say), it releases the
/// throttle and sets the pipeline to NULL on a thread of its own: a
/// pipeline dropped while PLAYING would dispose its elements under running
/// streaming threads (seen to deadlock).
struct PipelineGuard {
    pipeline: Option<gst::Pipeline>,
    throttle: Arc<crate::pipeline::Throttle>,
}

impl PipelineGuard {
    /// Takes the pipeline out, for the caller to stop.
    fn take(&mut self) -> gst::Pipeline {
        self.pipeline.take().expect("the pipeline is taken once")
    }
}

impl Drop for PipelineGuard {
    fn drop(&mut self) {
        self.throttle.release();
        if let Some(pipeline) = self.pipeline.take() {
            let _ = std::thread::Builder::new()
                .name("pipeline-drop".into())
                .spawn(move || {
                    let _ = pipeline.set_state(gst::State::Null);
                });
        }
    }
}
