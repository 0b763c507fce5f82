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

use anyhow::Context;
use config::Config;
use library::Library;
use session::Sessions;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use store::SegmentStore;
use supervisor::Supervisor;
use tokio_util::sync::CancellationToken;

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

/// What every request handler shares.
pub struct AppState {
    /// The configuration the server runs with.
    pub config: Config,
    /// The library, kept in step with the disk in the background.
    pub library: Arc<Library>,
    /// Live sessions, and through them the supervisor and the store.
    pub sessions: Arc<Sessions>,
    /// Streaming statistics.
    pub stats: Arc<stats::Stats>,
    /// Signs and checks playback tokens.
    pub signer: token::Signer,
    /// Segment requests that may still wait for a segment being made
    /// (`max_waiting_requests` permits).
    pub segment_waiters: Arc<tokio::sync::Semaphore>,
    /// token → user.
    tokens: HashMap<String, String>,
}

impl AppState {
    /// Whether `user` may read server-wide statistics.
    pub fn is_admin(&self, user: &str) -> bool {
        self.config.admins.iter().any(|a| a == user)
    }

    /// The user `token` belongs to, if any. Every configured token is
    /// compared, each in constant time, so the answer's timing says
    /// nothing about how much of a guess was right.
    pub fn user_for(&self, token: &str) -> Option<String> {
        use subtle::ConstantTimeEq;
        let mut found = None;
        for (known, user) in &self.tokens {
            if bool::from(known.as_bytes().ct_eq(token.as_bytes())) {
                found = Some(user.clone());
            }
        }
        found
    }
}

/// Loads the library from its catalogue and serves HTTP on `listener` at
/// once (the library is compared with the disk in the background) until
/// `shutdown` resolves; then stops every producer and empties the segment
/// store.
/// GStreamer must be initialised ([`init`], or `gst::init`: hlsd's
/// elements are then registered here).
///
/// # Errors
/// Fails when a token is too short ([`Config::validate`]), the media dir
/// cannot be read, the transcode dir or the data
/// dir cannot be created, the catalogue cannot be opened, or hlsd's
/// elements cannot be registered.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    pipeline::x264::register().context("registering hlsdx264enc")?;
    tokio::fs::create_dir_all(&config.transcode_dir)
        .await
        .with_context(|| format!("creating transcode dir {}", config.transcode_dir.display()))?;
    remove_stale_session_folders(&config.transcode_dir).await;
    let budget = config
        .disk_budget
        .or_else(|| store::default_budget(&config.transcode_dir));
    let store = Arc::new(SegmentStore::new(
        config.transcode_dir.join("store"),
        budget,
    ));
    // A crashed run's segments are a cache nobody indexes: they go.
    if store.clear() {
        tracing::info!(dir = %store.root().display(), "deleted the segment store left by an earlier run");
    }
    tracing::info!(
        store = %store.root().display(),
        budget_bytes = budget.unwrap_or(0),
        explicit = config.disk_budget.is_some(),
        "segment store ready"
    );
    let stats = Arc::new(stats::Stats::new());
    let library = Arc::new(Library::open(&config)?);
    let supervisor = Arc::new(Supervisor::new(
        supervisor::Settings {
            templates: config.templates.clone(),
            first_segment: config.first_segment,
            max_height: config.max_height,
            relocate_ahead: config.relocate_ahead,
            throttle_margin: config.throttle_margin,
            max_transcodes: config.max_transcodes.max(1),
            max_remuxes: config.max_remuxes.max(1),
            producers_per_item: config.producers_per_item.max(1),
            index_timeout: config.index_timeout,
        },
        store,
        stats.clone(),
        Some(library.catalogue()),
    ));
    let sessions = Arc::new(Sessions::new(
        supervisor,
        stats.clone(),
        config.session_timeout,
        config.preload_timeout,
        config.max_sessions_per_user,
    ));
    let tokens = config
        .users
        .iter()
        .map(|u| (u.token.clone(), u.user.clone()))
        .collect();
    let signer = match &config.secret {
        Some(s) => token::Signer::new(s.as_bytes()),
        None => token::Signer::random(),
    };
    let state = Arc::new(AppState {
        segment_waiters: Arc::new(tokio::sync::Semaphore::new(
            config.max_waiting_requests.max(1),
        )),
        config,
        library,
        sessions: sessions.clone(),
        stats,
        signer,
        tokens,
    });

    let stop = CancellationToken::new();
    state.library.start(
        stop.clone(),
        state.config.watch,
        state.config.rescan_interval,
    );
    let reaper = tokio::spawn(sessions.clone().reaper(stop.clone()));
    let stop_server = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop_server.cancel();
    });
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving");
    let signal = stop.clone();
    warp::serve(http::routes(state))
        .incoming(listener)
        .graceful(async move { signal.cancelled().await })
        .run()
        .await;
    stop.cancel();
    let _ = reaper.await;
    sessions.shutdown().await;
    Ok(())
}

/// Deletes session folders (named by UUID) that hlsd versions before the
/// segment store left in the transcode dir. Other files are kept.
async fn remove_stale_session_folders(dir: &std::path::Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
        if is_dir
            && uuid::Uuid::parse_str(&name.to_string_lossy()).is_ok()
            && tokio::fs::remove_dir_all(entry.path()).await.is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(
            folders = removed,
            "deleted session folders left by an earlier run"
        );
    }
}
