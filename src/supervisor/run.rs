//! A producer's task: build its pipeline, read its bus, move each finished
//! segment into the store, notice stalls, tear it down.
//!
//! GStreamer meets tokio here: the pipeline is built and started on a
//! blocking thread, its bus is read as an async stream by this task, and it
//! is set to NULL on a thread of its own (a pipeline may take a while to
//! stop, and one that never stops must not hold up the runtime).

use super::producer::Producer;
use super::title::Title;
use crate::config::PipelineTemplates;
use crate::pipeline::{self, Output, PipelineEvent, ProducerSpec, SegmentOutput};
use crate::rendition::Plan;
use crate::stats::Stats;
use crate::timeline::Timeline;
use futures_util::StreamExt;
use gst::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

/// The codec of the source stream a rendition is made from.
fn source_codec(title: &Title, plan: Plan) -> String {
    match plan {
        Plan::VideoCopy | Plan::VideoEncode { .. } => {
            title.item.video.as_ref().map(|v| v.codec.clone())
        }
        Plan::AudioCopy { track } | Plan::AudioEncode { track } => {
            title.item.audio.get(track).map(|a| a.codec.clone())
        }
    }
    .unwrap_or_default()
}

/// Where one rendition's segments go: the store, then the title's books.
struct RenditionOutput {
    title: Arc<Title>,
    producer: Arc<Producer>,
    rendition: usize,
    stats: Arc<Stats>,
    /// The subtitle renditions whose cues the pipeline collects, and
    /// whether each one's pad got linked.
    collecting: Arc<[(usize, Arc<AtomicBool>)]>,
}

impl RenditionOutput {
    /// Every cue starting between the producer's start and `to` has come
    /// through its pipeline, for each text track it collects.
    fn cover_cues(&self, to: Duration) {
        let from = self
            .title
            .timeline()
            .map(|t| t.start(self.producer.start))
            .unwrap_or_default();
        for (sub, linked) in self.collecting.iter() {
            if linked.load(Ordering::SeqCst) {
                self.title.cues.cover(*sub, from, to);
            }
        }
    }
}

/// The embedded text subtitle tracks of `title` that a producer collects
/// the cues of as it reads the file, with their subtitle rendition index.
fn text_tracks(title: &Arc<Title>) -> Vec<(usize, pipeline::TextTrack)> {
    title
        .subtitles
        .iter()
        .enumerate()
        .filter_map(|(sub, r)| {
            let s = title.item.subtitles.get(r.track)?;
            let crate::library::SubtitleSource::Embedded {
                stream_id: Some(id),
            } = &s.source
            else {
                return None;
            };
            let to = title.clone();
            Some((
                sub,
                pipeline::TextTrack {
                    stream_id: id.clone(),
                    sink: Arc::new(move |cue| to.cues.add(sub, cue)),
                    linked: Arc::new(AtomicBool::new(false)),
                },
            ))
        })
        .collect()
}

impl SegmentOutput for RenditionOutput {
    fn exists(&self, n: usize) -> bool {
        self.title.has_segment(self.rendition, n)
    }

    fn part_path(&self, n: usize) -> PathBuf {
        self.title
            .store()
            .part_path(&self.title.segment_key(self.rendition, n), self.producer.id)
    }

    fn init_path(&self) -> PathBuf {
        let key = &self.title.renditions[self.rendition].key;
        self.title.store().init_path(&self.title.key, key)
    }

    fn opened(&self, n: usize) {
        self.producer.set_next(self.rendition, n);
        if self.producer.drives(self.rendition) && n > self.producer.start {
            self.title.check_reached(&self.producer, n);
        }
    }

    fn finished(&self, n: usize, part: &Path, duration: Duration) -> std::io::Result<()> {
        self.title
            .store()
            .insert(self.title.segment_key(self.rendition, n), part, duration)?;
        if self.rendition == 0 {
            self.title.note_made(n, duration);
        }
        self.producer.set_next(self.rendition, n + 1);
        if self.producer.drives(self.rendition) {
            let end = self
                .title
                .timeline()
                .and_then(|t| t.end(n))
                .unwrap_or_default();
            self.producer.set_position(end);
            self.cover_cues(end);
            self.stats.segment_made(self.producer.kind, duration);
        }
        tracing::debug!(producer = self.producer.id, rendition = %self.title.renditions[self.rendition].name, segment = n, "segment made");
        self.title.segment_added(&self.producer, self.rendition, n);
        Ok(())
    }

    fn timeline(&self) -> Option<Timeline> {
        self.title.timeline()
    }

    fn ended(&self, last: usize, end: Duration) {
        if self.producer.drives(self.rendition) {
            // The file ended: every cue after the start has come.
            self.cover_cues(Duration::MAX);
            self.title.record_end(last, end);
        }
    }
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

/// The source stream id of rendition `plan` of `title`.
fn stream_id(title: &Title, plan: Plan) -> Option<String> {
    match plan {
        Plan::VideoCopy | Plan::VideoEncode { .. } => {
            title.item.video.as_ref().and_then(|v| v.stream_id.clone())
        }
        Plan::AudioCopy { track } | Plan::AudioEncode { track } => title
            .item
            .audio
            .get(track)
            .and_then(|a| a.stream_id.clone()),
    }
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
) -> End {
    let (store, key) = (title.store().clone(), title.key.clone());
    let renditions = title.rendition_keys(producer.renditions);
    let made = tokio::task::spawn_blocking(move || {
        renditions
            .iter()
            .try_for_each(|r| store.ensure_dir(&key, r))
    })
    .await;
    if let Ok(Err(e)) | Err(e) = made.map_err(std::io::Error::other) {
        return End::Failed("write", format!("cannot create the segment folder: {e}"));
    }
    if tokio::fs::metadata(&title.item.abs_path).await.is_err() {
        return End::Failed("media_gone", "the file is no longer on disk".into());
    }
    let text_tracks = text_tracks(title);
    let collecting: Arc<[(usize, Arc<AtomicBool>)]> = text_tracks
        .iter()
        .map(|(sub, t)| (*sub, t.linked.clone()))
        .collect();
    let outputs = producer
        .list
        .iter()
        .map(|&i| Output {
            plan: title.renditions[i].plan,
            codec: source_codec(title, title.renditions[i].plan),
            packaging: title.renditions[i].packaging,
            rotation: title.item.video.as_ref().map_or(0, |v| v.rotation),
            stream_id: stream_id(title, title.renditions[i].plan),
            sink: Arc::new(RenditionOutput {
                title: title.clone(),
                producer: producer.clone(),
                rendition: i,
                stats: stats.clone(),
                collecting: collecting.clone(),
            }) as Arc<dyn SegmentOutput>,
        })
        .collect();
    let start_time = timeline.start(producer.start);
    let burn = producer
        .list
        .iter()
        .find_map(|&r| match title.renditions[r].plan {
            Plan::VideoEncode { burn: Some(s), .. } => title.item.subtitles.get(s),
            _ => None,
        })
        .and_then(|s| match &s.source {
            crate::library::SubtitleSource::Embedded {
                stream_id: Some(id),
            } => Some(pipeline::BurnSource {
                stream_id: id.clone(),
                codec: s.codec.clone(),
            }),
            _ => None,
        });
    let spec = ProducerSpec {
        path: title.item.abs_path.clone(),
        fps: title.item.video.as_ref().map_or(0.0, |v| v.fps),
        outputs,
        timeline,
        start_index: producer.start,
        throttle: producer.throttle.clone(),
        templates,
        name: format!("producer-{}", producer.id),
        burn,
        text_tracks: text_tracks.into_iter().map(|(_, t)| t).collect(),
    };
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
    let built = match built {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            tracing::error!(error = format!("{e:#}"), "pipeline could not start");
            return End::Failed("pipeline_start", "the pipeline could not start".into());
        }
        Err(e) => return End::Failed("pipeline_start", format!("pipeline task failed: {e}")),
    };
    let mut guard = PipelineGuard {
        pipeline: Some(built.pipeline.clone()),
        throttle: producer.throttle.clone(),
    };
    let pipeline = built.pipeline;
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let mut messages = bus.stream();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let position = || Duration::from_nanos(built.position_ns.load(Ordering::Relaxed));
    // (position, when it last moved), and whether the stream was ended
    // because it stopped moving.
    let mut progress = (position(), Instant::now());
    let mut ended_stalled = false;
    let end = loop {
        tokio::select! {
            _ = producer.stopped() => break End::Stopped,
            msg = messages.next() => {
                let Some(msg) = msg else {
                    break End::Failed("pipeline", "the pipeline's bus closed".into());
                };
                let Some(event) = pipeline::event_of(&msg, &pipeline) else { continue };
                tracing::debug!(producer = producer.id, ?event, "pipeline event");
                producer.set_position(position());
                match event {
                    PipelineEvent::Playing => {}
                    PipelineEvent::Eos => break End::Eos,
                    PipelineEvent::Error { element, message, debug: details } => {
                        tracing::error!(element, message, details, "pipeline error");
                        let message = if details.contains("No space left on device") && !message.contains("full") {
                            format!("{message} The transcode dir is full.")
                        } else {
                            message
                        };
                        break End::Failed("pipeline", message);
                    }
                    PipelineEvent::Warning { element, message } => {
                        tracing::warn!(element, message, "pipeline warning")
                    }
                }
            }
            _ = tick.tick() => {
                let reached = position();
                producer.set_position(reached);
                let holding = producer.throttle.is_holding();
                if reached != progress.0 || holding {
                    progress = (reached, Instant::now());
                } else if progress.1.elapsed() > STALL_TIMEOUT {
                    if ended_stalled {
                        break End::Failed("stalled", "the pipeline stopped making progress (a damaged file?)".into());
                    }
                    // A demuxer resyncing through a damaged tail (seen: a
                    // valid file followed by gigabytes of zeros) reads on
                    // without output: end the streams where they are, so
                    // the segments made so far are closed and kept.
                    tracing::warn!(
                        producer = producer.id,
                        media_id = %title.item.id,
                        position_s = reached.as_secs_f64(),
                        "no progress for {} s: ending the stream here",
                        STALL_TIMEOUT.as_secs()
                    );
                    // Off the async threads: a serialized event waits for
                    // the streaming thread.
                    let stalled = pipeline.clone();
                    tokio::task::spawn_blocking(move || {
                        for pad in pipeline::output_sinks(&stalled).iter().flat_map(|s| s.sink_pads()) {
                            pad.send_event(gst::event::Eos::new());
                        }
                    });
                    ended_stalled = true;
                    progress.1 = Instant::now();
                }
            }
        }
    };
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
