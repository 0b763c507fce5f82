//! hlsd: an HTTP streaming server for self-hosted media libraries.
//!
//! Files a browser plays as they are go out as **direct play** (HTTP Range);
//! the rest become **HLS** on the fly, by **remux** (stream copy) or
//! **transcode** (H.264/AAC), on in-process GStreamer pipelines.
//!
//! # Layout
//!
//! - [`config`]: every knob and its default.
//! - [`library`]: the media files, their stable ids, the SQLite catalogue
//!   of probe results and key frames, probing in child processes, watching
//!   the media dir, the playback decision per client profile (pure,
//!   unit-tested), key-frame indexes, and each user's playback positions.
//! - [`profile`]: client profiles, built in or sent as JSON: what a client
//!   plays (pure; imports nothing).
//! - [`ladder`]: the quality ladder of a transcode: rung sizes, bit-rate
//!   caps, peak and average bit rates (pure; imports nothing).
//! - [`packaging`]: MPEG-TS and fragmented MP4, and which codecs each
//!   carries (pure; imports nothing).
//! - [`timeline`]: the segment grid and key-frame cuts, segment names
//!   (pure; imported by everyone, importing nothing).
//! - [`rendition`]: an item's renditions per presentation (packaging,
//!   copied or encoded video), the keys that name their bytes, codec
//!   strings, and a session's choice of them (pure).
//! - [`hls`]: master and media playlist text (pure).
//! - [`subtitle`]: cues and WebVTT text, segments and whole files (pure).
//! - [`policy`]: the supervisor's rules: throttling, relocation,
//!   coalescing, stopping, eviction (pure, unit-tested).
//! - [`token`]: signed playback tokens in playlist URLs.
//! - [`store`]: the segment store, its disk budget and eviction.
//! - [`supervisor`]: titles, producers that follow the viewers, admission,
//!   and each producer's task with its bus loop.
//! - [`pipeline`]: GStreamer pipelines (remux, transcode), media time
//!   and the seek, the appsink, the segment writer and its packager, the TS packetizer (conformant: DTS, PCR,
//!   continuity across segments), the fMP4 (CMAF) writer, decode times for
//!   video without them, the throttle, hlsd's x264 element.
//! - [`session`]: viewer sessions and their registry (O(1) by id and by
//!   (media, user)), the idle reaper.
//! - [`http`]: warp routes by group (sessions and rendition routes apart),
//!   the profile a request names, playback positions, the web page built
//!   into the binary, auth, direct play with Range, JSON errors.
//! - [`stats`]: streaming statistics, as JSON and Prometheus text.
//! - [`continuity`]: timestamps that jump back mid-stream (a TS demuxer
//!   re-basing on a PCR gap) made to continue (pure; imports nothing).
//! - [`guard`]: pad probes and signal handlers whose panics fail their
//!   pipeline instead of aborting the process (imports nothing of hlsd).
//!
//! Dependencies point one way: `http` → `session` → `supervisor` →
//! (`store`, `pipeline`, `policy`) → (`rendition`, `timeline`, `library`)
//! → (`profile`, `packaging`, `ladder`).
//!
//! GStreamer meets tokio at two seams only: blocking calls (Discoverer,
//! building and stopping pipelines) run off the async threads, and each
//! producer's bus is read by one task that reports to its title.

#![deny(unsafe_code)]

pub mod app;
pub mod config;
pub mod container;
pub mod continuity;
pub mod guard;
pub mod hls;
pub mod http;
pub mod ladder;
pub mod library;
pub mod packaging;
pub mod pipeline;
pub mod policy;
pub mod profile;
pub mod rendition;
pub mod session;
pub mod stats;
pub mod store;
pub mod subtitle;
pub mod supervisor;
pub mod timeline;
pub mod token;

pub use app::AppState;

use anyhow::Context;
use config::Config;
use std::future::Future;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long shutdown waits for the background tasks (the library's
/// probers and watcher, the reaper) once every producer has stopped.
const TASKS_WAIT: Duration = Duration::from_secs(5);

/// Initialises GStreamer and registers hlsd's own elements
/// (`hlsdx264enc`, [`pipeline::x264`]), which the built-in pipeline
/// descriptions name. Call it once before [`run`]; later calls do nothing.
///
/// # Errors
/// Fails when GStreamer cannot initialise or an element cannot register.
pub fn init() -> anyhow::Result<()> {
    gst::init().context("initialising GStreamer")?;
    pipeline::x264::register().context("registering hlsdx264enc")?;
    Ok(())
}

/// Builds the application from `config` ([`AppState::new`]), serves HTTP
/// on `listener` at once (the library is compared with the disk in the
/// background) until `shutdown` resolves; then stops every producer,
/// empties the segment store and waits for the background tasks.
/// GStreamer must be initialised ([`init`], or `gst::init`: hlsd's
/// elements are then registered here).
///
/// # Errors
/// As [`AppState::new`].
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = AppState::new(config).await?;
    let stop = CancellationToken::new();
    let mut tasks = JoinSet::new();
    state.start(&stop, &mut tasks);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving");
    let signal = stop.clone();
    http::serve(listener, http::routes(state.clone()), async move {
        tokio::select! {
            _ = shutdown => {}
            _ = signal.cancelled() => {}
        }
    })
    .await;
    stop.cancel();
    state.sessions.shutdown().await;
    let joined = tokio::time::timeout(TASKS_WAIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if joined.is_err() {
        tracing::warn!(left = tasks.len(), "background tasks did not stop in time");
    }
    Ok(())
}
