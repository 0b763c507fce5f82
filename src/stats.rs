//! Streaming statistics: counters kept as sessions start, finish, fail and
//! time out, exposed as JSON (`/api/v1/admin/streaming-stats`) and in the
//! Prometheus text format (`/metrics`) from one `prometheus` registry.

use crate::library::Playback;
use prometheus::core::Collector;
use prometheus::{
    Counter, CounterVec, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// How many recent time-to-first-segment samples the percentiles use.
const TTFS_SAMPLES: usize = 1000;

/// Why a session was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Idle past the session timeout.
    Timeout,
    /// A preloaded session nobody played, past the preload timeout.
    PreloadTimeout,
    /// `DELETE /api/v1/hls/{id}`.
    Delete,
    /// The server is shutting down.
    Shutdown,
    /// A failed session replaced by a new start.
    Replaced,
}

impl StopReason {
    /// The snake_case name used in logs and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Timeout => "timeout",
            StopReason::PreloadTimeout => "preload_timeout",
            StopReason::Delete => "delete",
            StopReason::Shutdown => "shutdown",
            StopReason::Replaced => "replaced",
        }
    }
}

/// Every figure hlsd keeps about streaming.
pub struct Stats {
    registry: Registry,
    started: IntCounterVec,
    completed: IntCounterVec,
    failed: IntCounterVec,
    stopped: IntCounterVec,
    errors: IntCounterVec,
    producers_started: IntCounterVec,
    subtitle_reads: IntCounterVec,
    first_segment: Histogram,
    transcoded: Counter,
    media_seconds: CounterVec,
    active: IntGaugeVec,
    producers: IntGaugeVec,
    store_bytes: IntGauge,
    store_segments: IntGauge,
    library_items: IntGauge,
    library_pending: IntGauge,
    library_watching: IntGauge,
    library_probes: IntCounterVec,
    library_scans: IntCounter,
    pictures: IntCounter,
    picture_seconds: Counter,
    sheets: IntCounter,
    sheet_seconds: Counter,
    recent_ttfs: Mutex<VecDeque<f64>>,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Empty counters, registered under the `hlsd_` names. Long on
    /// purpose: one registration per metric, so every name, label and
    /// help text of `/metrics` is read in one place.
    pub fn new() -> Self {
        let registry = Registry::new();
        let started = counter_vec(
            &registry,
            "hlsd_sessions_started_total",
            "HLS sessions started, by mode",
            &["mode"],
        );
        let completed = counter_vec(
            &registry,
            "hlsd_sessions_completed_total",
            "HLS sessions whose every segment was made, by mode",
            &["mode"],
        );
        let failed = counter_vec(
            &registry,
            "hlsd_sessions_failed_total",
            "HLS sessions whose pipeline failed, by mode",
            &["mode"],
        );
        let stopped = counter_vec(
            &registry,
            "hlsd_sessions_stopped_total",
            "HLS sessions stopped, by reason (timeout, preload_timeout, delete, shutdown, replaced)",
            &["reason"],
        );
        let errors = counter_vec(
            &registry,
            "hlsd_errors_total",
            "Errors by kind: pipeline failures and HTTP error codes (http_<code>)",
            &["kind"],
        );
        let producers_started = counter_vec(
            &registry,
            "hlsd_producers_started_total",
            "Producer pipelines started, by each rendition they make (video-copy, video-720p, audio-1-aac, ...)",
            &["rendition"],
        );
        let subtitle_reads = counter_vec(
            &registry,
            "hlsd_subtitle_reads_total",
            "Reads of a subtitle track's cues of their own (embedded: a demux-only pass over about a minute, when no producer had read that part; sidecar: the whole file)",
            &["source"],
        );
        // Buckets in seconds around the measured 0.05 s (remux) to 1.6 s
        // (1080p transcode) first segments (docs/benchmarks.md).
        let first_segment = Histogram::with_opts(
            HistogramOpts::new(
                "hlsd_first_segment_seconds",
                "Time from a session's start to its first segment on disk",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 15.0, 30.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(first_segment.clone()))
            .expect("unique metric");
        let transcoded = Counter::new(
            "hlsd_media_seconds_transcoded_total",
            "Seconds of media in segments made by transcode producers (each made once, whoever watches)",
        )
        .expect("valid metric");
        registry
            .register(Box::new(transcoded.clone()))
            .expect("unique metric");
        let media_seconds = CounterVec::new(
            Opts::new(
                "hlsd_media_seconds_total",
                "Seconds of media in segments made, by mode",
            ),
            &["mode"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(media_seconds.clone()))
            .expect("unique metric");
        let active = IntGaugeVec::new(
            Opts::new(
                "hlsd_sessions_active",
                "Live HLS sessions, by mode and state",
            ),
            &["mode", "state"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(active.clone()))
            .expect("unique metric");
        let producers = IntGaugeVec::new(
            Opts::new(
                "hlsd_producers",
                "Producer pipelines, by kind (remux, transcode) and phase (starting, running, held)",
            ),
            &["kind", "phase"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(producers.clone()))
            .expect("unique metric");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let store_bytes = gauge("hlsd_store_bytes", "Bytes of segments in the segment store");
        let store_segments = gauge("hlsd_store_segments", "Segments in the segment store");
        let library_items = gauge("hlsd_library_items", "Items in the library");
        let library_pending = gauge("hlsd_library_pending", "Library items waiting to be probed");
        let library_watching = gauge(
            "hlsd_library_watching",
            "1 when the media dir is watched (inotify), 0 when it is polled every --rescan-interval (network file system, inotify limit, --no-watch)",
        );
        let library_probes = counter_vec(
            &registry,
            "hlsd_library_probes_total",
            "Files probed, by outcome (probed, refused, crashed, timed_out)",
            &["outcome"],
        );
        let library_scans = IntCounter::new(
            "hlsd_library_scans_total",
            "Listings of the media dir or of its changed folders",
        )
        .expect("valid metric");
        registry
            .register(Box::new(library_scans.clone()))
            .expect("unique metric");
        let pictures = IntCounter::new(
            "hlsd_thumbnails_made_total",
            "Pictures decoded from key frames (poster frames), each made once, whoever asks",
        )
        .expect("valid metric");
        registry
            .register(Box::new(pictures.clone()))
            .expect("unique metric");
        let picture_seconds = Counter::new(
            "hlsd_thumbnail_seconds_total",
            "Wall seconds spent making those pictures",
        )
        .expect("valid metric");
        registry
            .register(Box::new(picture_seconds.clone()))
            .expect("unique metric");
        let sheets = IntCounter::new(
            "hlsd_thumbnail_sheets_made_total",
            "Thumbnail sheets (10 x 10 tiles of key frames) made, each once per file",
        )
        .expect("valid metric");
        registry
            .register(Box::new(sheets.clone()))
            .expect("unique metric");
        let sheet_seconds = Counter::new(
            "hlsd_thumbnail_sheet_seconds_total",
            "Wall seconds spent making those sheets",
        )
        .expect("valid metric");
        registry
            .register(Box::new(sheet_seconds.clone()))
            .expect("unique metric");
        Stats {
            registry,
            started,
            completed,
            failed,
            stopped,
            errors,
            producers_started,
            subtitle_reads,
            first_segment,
            transcoded,
            media_seconds,
            active,
            producers,
            store_bytes,
            store_segments,
            library_items,
            library_pending,
            library_watching,
            library_probes,
            library_scans,
            pictures,
            picture_seconds,
            sheets,
            sheet_seconds,
            recent_ttfs: Mutex::new(VecDeque::new()),
        }
    }

    /// A producer making `renditions` (their names) started.
    pub fn producer_started(&self, renditions: &[&str]) {
        for r in renditions {
            self.producers_started.with_label_values(&[r]).inc();
        }
    }

    /// A subtitle track's cues were read by a pass of their own;
    /// `source` is `embedded` or `sidecar`.
    pub fn subtitle_read(&self, source: &str) {
        self.subtitle_reads.with_label_values(&[source]).inc();
    }

    /// A session of `mode` started.
    pub fn session_started(&self, mode: Playback) {
        self.started.with_label_values(&[mode.as_str()]).inc();
    }

    /// A session of `mode` made its last segment.
    pub fn session_completed(&self, mode: Playback) {
        self.completed.with_label_values(&[mode.as_str()]).inc();
    }

    /// A session of `mode` failed; `kind` names the failure.
    pub fn session_failed(&self, mode: Playback, kind: &str) {
        self.failed.with_label_values(&[mode.as_str()]).inc();
        self.error(kind);
    }

    /// A session was stopped for `reason`.
    pub fn session_stopped(&self, reason: StopReason) {
        self.stopped.with_label_values(&[reason.as_str()]).inc();
    }

    /// A thumbnail sheet was made in `elapsed`.
    pub fn sheet_made(&self, elapsed: Duration) {
        self.sheets.inc();
        self.sheet_seconds.inc_by(elapsed.as_secs_f64());
    }

    /// A picture was made from a key frame in `elapsed`.
    pub fn picture_made(&self, elapsed: Duration) {
        self.pictures.inc();
        self.picture_seconds.inc_by(elapsed.as_secs_f64());
    }

    /// One error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }

    /// A session's first segment was on disk `elapsed` after it started.
    pub fn first_segment(&self, elapsed: Duration) {
        let s = elapsed.as_secs_f64();
        self.first_segment.observe(s);
        let mut recent = self.recent_ttfs.lock().expect("ttfs samples");
        if recent.len() == TTFS_SAMPLES {
            recent.pop_front();
        }
        recent.push_back(s);
    }

    /// A segment of `duration` was made by a session of `mode`.
    pub fn segment_made(&self, mode: Playback, duration: Duration) {
        let s = duration.as_secs_f64();
        self.media_seconds
            .with_label_values(&[mode.as_str()])
            .inc_by(s);
        if mode == Playback::Transcode {
            self.transcoded.inc_by(s);
        }
    }

    /// Sets the active-session gauges from `(mode, state)` of every live
    /// session.
    /// `state` is the session state's snake_case name.
    pub fn set_active(&self, sessions: &[(Playback, &str)]) {
        self.active.reset();
        for (mode, state) in sessions {
            self.active.with_label_values(&[mode.as_str(), state]).inc();
        }
    }

    /// Sets the store gauges: `bytes` and `segments` held.
    pub fn set_store(&self, bytes: u64, segments: usize) {
        self.store_bytes.set(bytes as i64);
        self.store_segments.set(segments as i64);
    }

    /// Sets the producer gauges from `(kind, phase, count)`.
    pub fn set_producers(&self, counts: &[(&str, &str, u64)]) {
        self.producers.reset();
        for (kind, phase, n) in counts {
            self.producers
                .with_label_values(&[kind, phase])
                .set(*n as i64);
        }
    }

    /// Copies the library's figures into the metrics.
    pub fn set_library(&self, f: &crate::library::LibraryFigures) {
        self.library_items.set(f.items as i64);
        self.library_pending.set(f.pending as i64);
        self.library_watching
            .set(i64::from(f.watch == crate::library::ChangeWatch::Watching));
        for (outcome, n) in &f.probes {
            let c = self.library_probes.with_label_values(&[*outcome]);
            c.inc_by(n.saturating_sub(c.get()));
        }
        self.library_scans
            .inc_by(f.scans.saturating_sub(self.library_scans.get()));
    }

    /// The Prometheus text exposition (format 0.0.4) of every figure.
    pub fn prometheus_text(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The JSON view for `/api/v1/admin/streaming-stats`.
    pub fn report(&self, sessions: &[(Playback, &str)]) -> StatsReport {
        let mut active: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for (mode, state) in sessions {
            *active
                .entry(mode.as_str().to_string())
                .or_default()
                .entry(state.to_string())
                .or_default() += 1;
        }
        let by_label = |c: &IntCounterVec| -> BTreeMap<String, u64> {
            let mut m = BTreeMap::new();
            for family in c.collect() {
                for metric in family.get_metric() {
                    let label = metric
                        .get_label()
                        .first()
                        .map(|l| l.value().to_string())
                        .unwrap_or_default();
                    m.insert(label, metric.get_counter().get_value() as u64);
                }
            }
            m
        };
        let total = |c: &IntCounterVec| by_label(c).values().sum();
        let mut samples: Vec<f64> = self
            .recent_ttfs
            .lock()
            .expect("ttfs samples")
            .iter()
            .copied()
            .collect();
        samples.sort_by(f64::total_cmp);
        StatsReport {
            active_sessions: active,
            sessions_started: total(&self.started),
            sessions_completed: total(&self.completed),
            sessions_failed: total(&self.failed),
            sessions_timed_out: by_label(&self.stopped)
                .iter()
                .filter(|(k, _)| k.as_str() == "timeout" || k.as_str() == "preload_timeout")
                .map(|(_, v)| v)
                .sum(),
            sessions_stopped: by_label(&self.stopped),
            first_segment_s: Percentiles {
                samples: samples.len(),
                p50: percentile(&samples, 0.50),
                p95: percentile(&samples, 0.95),
            },
            media_seconds_transcoded: (self.transcoded.get() * 1000.0).round() / 1000.0,
            errors: by_label(&self.errors),
            producers_started: by_label(&self.producers_started),
            subtitle_reads: by_label(&self.subtitle_reads),
        }
    }
}

/// The `q` quantile (0–1) of sorted `samples`, nearest rank; `None` when
/// there are none.
fn percentile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    Some((samples[rank - 1] * 1000.0).round() / 1000.0)
}

/// Median and 95th percentile, in seconds, of recent samples.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    /// How many samples (at most the last 1000).
    pub samples: usize,
    /// Median, seconds.
    pub p50: Option<f64>,
    /// 95th percentile, seconds.
    pub p95: Option<f64>,
}

/// What `/api/v1/admin/streaming-stats` returns.
#[derive(Debug, Serialize)]
pub struct StatsReport {
    /// Live sessions: mode → state → count.
    pub active_sessions: BTreeMap<String, BTreeMap<String, u64>>,
    /// Sessions started since start-up.
    pub sessions_started: u64,
    /// Sessions that made every segment.
    pub sessions_completed: u64,
    /// Sessions whose pipeline failed.
    pub sessions_failed: u64,
    /// Sessions stopped for idleness (including unplayed preloads).
    pub sessions_timed_out: u64,
    /// Sessions stopped, by reason.
    pub sessions_stopped: BTreeMap<String, u64>,
    /// Time from a session's start to its first segment on disk.
    pub first_segment_s: Percentiles,
    /// Seconds of media in segments made by transcode producers.
    pub media_seconds_transcoded: f64,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Producers started since start-up, by each rendition they make: a
    /// switch of audio track starts an `audio-*` producer and no `video-*`
    /// one.
    pub producers_started: BTreeMap<String, u64>,
    /// Reads of subtitle cues by a pass of their own, by source
    /// (`embedded`, `sidecar`): embedded cues are otherwise collected by
    /// the producers as they read the file.
    pub subtitle_reads: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&s, 0.5), Some(10.0));
        assert_eq!(percentile(&s, 0.95), Some(19.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[3.0], 0.95), Some(3.0));
    }

    #[test]
    fn counters_show_in_the_report_and_the_text() {
        let stats = Stats::new();
        stats.session_started(Playback::Transcode);
        stats.session_failed(Playback::Transcode, "pipeline");
        stats.session_stopped(StopReason::Timeout);
        stats.first_segment(Duration::from_millis(1500));
        stats.segment_made(Playback::Transcode, Duration::from_secs(6));
        let active = [(Playback::Remux, "running")];
        stats.set_active(&active);
        let r = stats.report(&active);
        assert_eq!(r.sessions_started, 1);
        assert_eq!(r.sessions_failed, 1);
        assert_eq!(r.sessions_timed_out, 1);
        assert_eq!(r.errors["pipeline"], 1);
        assert_eq!(r.first_segment_s.p50, Some(1.5));
        assert_eq!(r.media_seconds_transcoded, 6.0);
        assert_eq!(r.active_sessions["remux"]["running"], 1);
        let text = stats.prometheus_text();
        assert!(
            text.contains("hlsd_sessions_started_total{mode=\"transcode\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("hlsd_sessions_active{mode=\"remux\",state=\"running\"} 1"),
            "{text}"
        );
    }
}
