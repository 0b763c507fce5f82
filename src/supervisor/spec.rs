//! What a producer's pipeline is built from ([`spec_for`]): one output per
//! rendition, whose finished segments go into the store and then into
//! the title's books, the subtitle it burns in and the text tracks whose
//! cues it collects on the way.

use super::producer::Producer;
use super::title::Title;
use crate::config::PipelineTemplates;
use crate::library::catalogue::Catalogue;
use crate::pipeline::{self, Output, ProducerSpec, SegmentOutput};
use crate::rendition::Plan;
use crate::stats::Stats;
use crate::timeline::Timeline;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the producer's pipeline is built from: its outputs (one per
/// rendition, each writing into the store), the subtitle it burns in, the
/// text tracks whose cues it collects.
pub fn spec_for(
    title: &Arc<Title>,
    producer: &Arc<Producer>,
    timeline: Timeline,
    templates: PipelineTemplates,
    stats: Arc<Stats>,
    cluster: Option<Arc<Catalogue>>,
) -> ProducerSpec {
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
            dolby_vision: title
                .item
                .video
                .as_ref()
                .and_then(|v| v.hdr.as_ref()?.dolby_vision),
            stream_id: stream_id(title, title.renditions[i].plan),
            // The probe lists one video stream (the first) whatever the
            // file holds: only audio can be known to be alone.
            sole_of_kind: !title.renditions[i].plan.is_video() && title.item.audio.len() == 1,
            sink: Arc::new(RenditionOutput {
                title: title.clone(),
                producer: producer.clone(),
                rendition: i,
                stats: stats.clone(),
                collecting: collecting.clone(),
                cluster: cluster.clone(),
            }) as Arc<dyn SegmentOutput>,
        })
        .collect();
    ProducerSpec {
        path: title.item.abs_path.clone(),
        fps: title.item.video.as_ref().map_or(0.0, |v| v.fps),
        outputs,
        timeline,
        start_index: producer.start,
        throttle: producer.throttle.clone(),
        templates,
        name: format!("producer-{}", producer.id),
        burn: burn_source(title, producer),
        text_tracks: text_tracks.into_iter().map(|(_, t)| t).collect(),
    }
}

/// The embedded subtitle stream a producer burns into its video, if one
/// of its renditions does.
fn burn_source(title: &Title, producer: &Producer) -> Option<pipeline::BurnSource> {
    producer
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
        })
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
    /// The catalogue other nodes share, told of each segment made.
    cluster: Option<Arc<Catalogue>>,
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
        let key = self.title.segment_key(self.rendition, n);
        self.title.store().insert(key.clone(), part, duration)?;
        if let Some(cluster) = &self.cluster {
            cluster.note_made(&key.title, &key.rendition, n);
        }
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
