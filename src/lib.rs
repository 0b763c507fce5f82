//! hlsd: an HTTP streaming server for self-hosted media libraries.
//!
//! Files a browser plays as they are go out as **direct play** (HTTP Range);
//! the rest become **HLS** on the fly, by **remux** (stream copy) or
//! **transcode** (H.264/AAC), on in-process GStreamer pipelines.
//!
//! # Layout
//!
//! The one description of the tree; README and docs/ point here.
//!
//! Edge:
//! - `main.rs`: the binary: parses [`config::Config`], sets up logging, runs
//!   [`run`]; `hlsd probe` is the prober child.
//! - [`app`]: [`AppState`], everything a request needs, built from the
//!   config, and the background tasks it starts.
//! - [`config`]: every setting, in clap sections (library, supervisor,
//!   store, sessions, http), with its env variable and named default; the
//!   pipeline templates.
//! - [`http`]: a thin edge. `mod.rs` mounts one function per route;
//!   `server.rs` accepts connections; `filters.rs` (auth, state),
//!   `request.rs` (parsing), `urls.rs` (signed URLs), `responses.rs` and
//!   `error.rs` (JSON errors, one `From` per domain error) are shared; the
//!   other files are route groups (library, media and direct play with
//!   `range.rs`, sessions, renditions, progress, admin, health, the web
//!   page built into the binary).
//!
//! Use cases:
//! - [`session`]: viewer sessions. `session.rs` is one session (its
//!   state, renditions and players), `open.rs` opens one
//!   (`Sessions::open`), `playlists.rs` answers its playlists,
//!   `sessions.rs` keeps them and reaps the idle, `registry.rs` finds one
//!   in O(1) by id and by (media, user), `view.rs` is one as
//!   `GET /api/v1/sessions` lists it.
//! - [`cluster`]: what the nodes sharing a PostgreSQL catalogue tell each
//!   other every heartbeat (live sessions, figures), so any node answers
//!   for all.
//! - [`supervisor`]: the supervisor (`supervisor.rs`) and what it answers
//!   a request with (`outcome.rs`); titles (`title.rs`, one lock, one
//!   change signal) and
//!   their players (`playheads.rs`), producers that follow the players
//!   (`producer.rs`), starting one within the caps (`admission.rs`), what
//!   its pipeline is built from (`spec.rs`) and its task (`run.rs`), cues
//!   of text subtitles (`cues.rs`, `subtitles.rs`).
//! - [`library`]: the media files: what a file holds (`streams.rs`) and
//!   the item it is listed as (`item.rs`), stable ids of byte names (`id.rs`),
//!   the catalogue and its writer thread (`catalogue/`: SQLite for one
//!   node, PostgreSQL shared by a cluster, one schema migrated from
//!   `migrations/`), probing each file once per cluster (`cluster.rs`), listing,
//!   watching and settling (`scan.rs`, `watch.rs`, `reconcile.rs`,
//!   `live.rs`, `tasks.rs`), probing in child processes (`prober.rs`,
//!   `probe.rs`), the playback decision per client profile (`decision/`,
//!   pure), the GStreamer passes over a file (`passes/`: key frames, open
//!   GOPs, which streams hold data, the source fix, a stream's first codec
//!   kept, a key frame as a JPEG), playback positions.
//!
//! Media:
//! - [`pipeline`]: GStreamer pipelines (remux, transcode) and what they
//!   need: what one is built from (`spec.rs`), linking each pad to what it
//!   feeds (`link.rs`), media time and the one seek (`media_time.rs`),
//!   Matroska lead-in restored (`lead_in.rs`),
//!   the appsink and segment writer (`appsink.rs`, `segmenter.rs`), the
//!   packager with the TS packetizer (`ts/`, its layout in `packet.rs`) and the fMP4 (CMAF) writer
//!   (`fmp4/`, its colour boxes in `colour.rs`), the tone mapper
//!   (`tonemap.rs`), decode times for video without them, the throttle, cues,
//!   and hlsd's own elements over C libraries: x264 (`x264/`) and the
//!   swscale downscaler (`scale/`), the two `ffi.rs` with `unsafe`.
//! - [`store`]: the segment store, its disk budget and eviction.
//! - [`thumbnails`]: pictures of a title: poster frames (a key frame as a
//!   JPEG, kept in memory), and thumbnail sheets for the seek bar (a key
//!   frame per 10 s, tiled; made in the background, kept in the data dir)
//!   with their WebVTT track and image playlist (`layout.rs`, pure).
//!
//! A folder's `mod.rs` declares its files and re-exports what the rest of
//! the crate uses; a folder's files import their siblings, never their own
//! `mod.rs`, so imports between files form no circle.
//!
//! Pure logic (no GStreamer, no HTTP, unit-tested):
//! - [`container`]: byte readers of containers: the input, the one
//!   ISOBMFF box reader and writer, EBML and Matroska (cues, lead-in),
//!   AVI, ASF, MPEG-TS tables, the MP4 header patch, key-frame indexes
//!   with their byte offsets (or, in an MP4 whose audio lies after its
//!   video, sample sizes by time: `mp4_weights.rs`), Dolby Vision's
//!   configuration record (`dolby_vision.rs`), a segment's first picture
//!   as an I-frame (`iframe.rs`).
//! - [`policy`]: the supervisor's rules: throttling, relocation,
//!   coalescing, stopping, eviction.
//! - [`rendition`]: an item's renditions per presentation (`video.rs`:
//!   the copy with the rungs beside it, or the ladder), the keys that
//!   name their bytes, codec strings, [`rendition::RenditionSet`], a
//!   session's choice (`choice.rs`) and what fits a client's bit-rate
//!   limit (`fit.rs`).
//! - [`hls`]: playlist text: the multivariant (master) playlist
//!   (`master.rs`) and media playlists, I-frame playlists among them
//!   (`media.rs`), [`hls::PlaylistType`].
//! - [`timeline`]: the segment grid and key-frame cuts, segment names.
//! - [`subtitle`]: cues and WebVTT text.
//! - [`profile`], [`ladder`], [`packaging`]: client profiles, the quality
//!   ladder, and which codecs MPEG-TS and fMP4 carry.
//! - [`continuity`]: timestamps that jump back made to continue.
//! - [`tonemap`]: HDR (PQ, HLG) to SDR BT.709: the curves (BT.2390,
//!   Hable, Möbius, Reinhard), linearisation and gamut map per pixel
//!   (`mod.rs`), the same made fast for whole pictures (`mapper.rs`) and
//!   its vectorisable arithmetic (`fastmath.rs`).
//! - [`token`]: signed playback tokens; [`secret`]: the signing secret a
//!   node keeps in its data dir.
//!
//! Around them: [`stats`] (JSON and Prometheus figures) and [`guard`]
//! (callbacks whose panics fail their pipeline, not the process).
//!
//! Dependencies point one way: `http` → (`session`, `app`, `cluster`) →
//! `supervisor` → (`store`, `pipeline`, `policy`) → (`rendition`,
//! `timeline`, `library`) → (`container`, `profile`, `packaging`,
//! `ladder`); no two files import each other, directly or in a loop.
//!
//! GStreamer meets tokio at two seams only: blocking calls (the prober,
//! building and stopping pipelines, file-system and database work) run off
//! the async threads, and each producer's bus is read by one task that
//! reports to its title.

#![deny(unsafe_code)]

pub mod app;
pub mod cluster;
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
pub mod secret;
pub mod session;
pub mod stats;
pub mod store;
pub mod subtitle;
pub mod supervisor;
pub mod thumbnails;
pub mod timeline;
pub mod token;
pub mod tonemap;

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
/// (`hlsdx264enc`, [`pipeline::x264`]; `hlsdvideoscale`,
/// [`pipeline::scale`]), which the built-in pipeline
/// descriptions name. Call it once before [`run`]; later calls do nothing.
///
/// # Errors
/// Fails when GStreamer cannot initialise or an element cannot register.
pub fn init() -> anyhow::Result<()> {
    gst::init().context("initialising GStreamer")?;
    pipeline::register_elements()
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
    let (asked_tx, asked_rx) = tokio::sync::oneshot::channel();
    http::serve(listener, http::routes(state.clone()), async move {
        tokio::select! {
            _ = shutdown => {}
            _ = signal.cancelled() => {}
        }
        let _ = asked_tx.send(std::time::Instant::now());
    })
    .await;
    let asked = asked_rx.await.unwrap_or_else(|_| std::time::Instant::now());
    let phase = |name: &'static str| {
        let waited = asked.elapsed();
        if waited > SLOW_STOP {
            tracing::warn!(
                phase = name,
                waited_ms = waited.as_millis(),
                "shutdown is slow"
            );
        } else {
            tracing::debug!(phase = name, waited_ms = waited.as_millis(), "shutdown");
        }
    };
    phase("connections closed");
    stop.cancel();
    state.sheets.close();
    state.sessions.shutdown().await;
    phase("producers stopped");
    let joined = tokio::time::timeout(TASKS_WAIT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if joined.is_err() {
        tracing::warn!(left = tasks.len(), "background tasks did not stop in time");
    }
    drop(tasks);
    // The catalogue flushes its writes when the last of it goes: off the
    // async threads.
    let _ = tokio::task::spawn_blocking(move || drop(state)).await;
    phase("state released");
    Ok(())
}

/// A shutdown phase ending later than this after the stop was asked for
/// is logged as a warning, with the phase's name.
const SLOW_STOP: Duration = Duration::from_secs(5);
