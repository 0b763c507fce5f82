//! hlsd: an HTTP streaming server for self-hosted media libraries.
//!
//! Files a browser plays as they are go out as **direct play** (HTTP Range);
//! the rest become **HLS** on the fly, by **remux** (stream copy) or
//! **transcode** (H.264/AAC), on in-process GStreamer pipelines.
//!
//! # Layout
//!
//! - [`config`]: every knob and its default.
//! - [`library`]: scan the media dir, stable ids, Discoverer probe, and the
//!   playback decision (pure, unit-tested).
//! - [`session`]: sessions and their registry (O(1) by id and by
//!   (media, user)), the bus task, the idle reaper, cleanup.
//! - [`pipeline`]: the GStreamer pipeline builder and bus events.
//! - [`hls`]: master and media playlist text (pure, unit-tested).
//! - [`http`]: warp routes, auth, direct play with Range, JSON errors.
//! - [`stats`]: streaming statistics, as JSON and Prometheus text.
//!
//! GStreamer meets tokio at two seams only: blocking calls (Discoverer,
//! state changes) run on `spawn_blocking`, and each pipeline's bus is read by
//! one task that updates its session.

pub mod config;
pub mod hls;
pub mod http;
pub mod library;
pub mod pipeline;
pub mod session;
pub mod stats;

use anyhow::Context;
use config::Config;
use library::Library;
use session::Sessions;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
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
    /// The scanned library.
    pub library: Library,
    /// Live sessions.
    pub sessions: Arc<Sessions>,
    /// Streaming statistics.
    pub stats: Arc<stats::Stats>,
    /// token → user.
    tokens: HashMap<String, String>,
}

impl AppState {
    /// Whether `user` may read server-wide statistics.
    pub fn is_admin(&self, user: &str) -> bool {
        self.config.admins.iter().any(|a| a == user)
    }

    /// The user `token` belongs to, if any.
    pub fn user_for(&self, token: &str) -> Option<String> {
        self.tokens.get(token).cloned()
    }
}

/// Scans the library, then serves HTTP on `listener` until `shutdown`
/// resolves; then stops every session and deletes every session folder.
/// GStreamer must be initialised ([`init`], or `gst::init`: hlsd's
/// elements are then registered here).
///
/// # Errors
/// Fails when the media dir cannot be read, the transcode dir cannot be
/// created or hlsd's elements cannot be registered.
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    pipeline::x264::register().context("registering hlsdx264enc")?;
    tokio::fs::create_dir_all(&config.transcode_dir)
        .await
        .with_context(|| format!("creating transcode dir {}", config.transcode_dir.display()))?;
    let stats = Arc::new(stats::Stats::new());
    let sessions = Arc::new(Sessions::new(
        config.transcode_dir.clone(),
        config.templates.clone(),
        config.first_segment,
        config.session_timeout,
        session::SeekSettings {
            relocate_ahead: config.relocate_ahead,
            throttle_margin: config.throttle_margin,
        },
        session::Limits {
            max_transcodes: config.max_transcodes.max(1),
            max_remuxes: config.max_remuxes.max(1),
            preload_timeout: config.preload_timeout,
        },
        stats.clone(),
        Arc::new(session::DiskBudget::new(config.disk_budget)),
    ));
    match sessions.remove_stale_folders().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            folders = n,
            "deleted session folders left by an earlier run"
        ),
        Err(e) => tracing::warn!(error = %e, "could not clean the transcode dir"),
    }
    let library = library::scan(
        &config.media_dir,
        config.probe_timeout,
        config.probe_concurrency,
    )
    .await?;
    let tokens = config
        .users
        .iter()
        .map(|u| (u.token.clone(), u.user.clone()))
        .collect();
    let state = Arc::new(AppState {
        config,
        library,
        sessions: sessions.clone(),
        stats,
        tokens,
    });

    let stop = CancellationToken::new();
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
