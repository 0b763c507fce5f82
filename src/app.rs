//! The application: every component built from its own settings, and what
//! the HTTP handlers share ([`AppState`]).

use crate::config::{Config, HttpSettings};
use crate::library::Library;
use crate::session::Sessions;
use crate::stats::Stats;
use crate::store::SegmentStore;
use crate::supervisor::Supervisor;
use crate::token::Signer;
use anyhow::Context;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What every request handler shares.
pub struct AppState {
    /// The HTTP edge's settings (users, tokens, waits, CORS, node name).
    pub http: HttpSettings,
    /// The library, kept in step with the disk in the background.
    pub library: Arc<Library>,
    /// Live sessions, and through them the supervisor and the store.
    pub sessions: Arc<Sessions>,
    /// Streaming statistics.
    pub stats: Arc<Stats>,
    /// Signs and checks playback tokens.
    pub signer: Signer,
    /// Segment requests that may still wait for a segment being made
    /// (`--max-waiting-requests` permits).
    pub segment_waiters: Arc<tokio::sync::Semaphore>,
    /// Poster frames, made on demand and kept.
    pub thumbnails: crate::thumbnails::Thumbnails,
    /// Thumbnail sheets for the seek bar.
    pub sheets: crate::thumbnails::Sheets,
    /// token → user.
    tokens: HashMap<String, String>,
}

impl AppState {
    /// Builds every component from its settings: the segment store (its
    /// folder made and emptied of an earlier run's segments), the library
    /// (its catalogue opened and loaded), the supervisor and the
    /// sessions. Nothing runs in the background yet ([`Self::start`]).
    /// The file-system and SQLite work runs off the async threads.
    ///
    /// # Errors
    /// Fails when a token is too short ([`Config::validate`]), hlsd's
    /// elements cannot be registered, the media dir cannot be read, the
    /// transcode dir, the data dir or the catalogue cannot be made, or,
    /// without `--secret`, the kept secret cannot be read or made
    /// ([`crate::secret::SecretError`]).
    pub async fn new(config: Config) -> anyhow::Result<Arc<AppState>> {
        config.validate()?;
        crate::pipeline::register_elements()?;
        let Config {
            mut library,
            supervisor,
            store,
            sessions,
            http,
            ..
        } = config;
        library.node_name = http.node_name.clone();
        let (secret_given, data_dir) = (http.secret.is_some(), library.data_dir.clone());
        let sheets_dir = (!library.no_thumbnails).then(|| data_dir.join("thumbnails"));
        let sheets_budget = library.thumbnail_budget_bytes;
        let (store, library, kept_secret) = tokio::task::spawn_blocking(move || {
            let dir = &store.transcode_dir;
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating transcode dir {}", dir.display()))?;
            remove_stale_session_folders(dir);
            let budget = store
                .budget_bytes()
                .or_else(|| crate::store::default_budget(dir));
            let segments =
                SegmentStore::new(dir.join("store"), budget).with_memory(store.memory_cache_bytes);
            // A crashed run's segments are a cache nobody indexes: they go.
            if segments.clear() {
                tracing::info!(dir = %segments.root().display(), "deleted the segment store left by an earlier run");
            }
            tracing::info!(
                store = %segments.root().display(),
                budget_bytes = budget.unwrap_or(0),
                explicit = store.disk_budget_bytes.is_some(),
                "segment store ready"
            );
            let library = Library::open(&library)?;
            // Without --secret, the one kept in the data dir (made once).
            let kept = match secret_given {
                true => Vec::new(),
                false => crate::secret::load_or_create(&data_dir)?,
            };
            anyhow::Ok((Arc::new(segments), Arc::new(library), kept))
        })
        .await
        .context("opening the store and the library")??;
        let stats = Arc::new(Stats::new());
        let supervisor = Arc::new(Supervisor::new(
            supervisor,
            store,
            stats.clone(),
            Some(library.catalogue()),
        ));
        let sessions = Arc::new(Sessions::new(supervisor, stats.clone(), &sessions));
        let tokens = http
            .users
            .iter()
            .map(|u| (u.token.clone(), u.user.clone()))
            .collect();
        let signer = match &http.secret {
            Some(s) => Signer::new(s.as_bytes()),
            None => Signer::new(&kept_secret),
        };
        let thumbnails = crate::thumbnails::Thumbnails::new(stats.clone(), sheets_dir.is_some());
        let sheets = crate::thumbnails::Sheets::new(sheets_dir, sheets_budget, stats.clone());
        Ok(Arc::new(AppState {
            segment_waiters: Arc::new(tokio::sync::Semaphore::new(
                http.max_waiting_requests.max(1),
            )),
            http,
            library,
            sessions,
            stats,
            signer,
            thumbnails,
            sheets,
            tokens,
        }))
    }

    /// Starts the background work in `tasks` until `stop` is cancelled:
    /// the library's probing and watching, the sessions' reaper and, with
    /// a shared database, this node's heartbeat ([`crate::cluster`]).
    pub fn start(self: &Arc<Self>, stop: &CancellationToken, tasks: &mut JoinSet<()>) {
        self.library.start(stop.clone(), tasks);
        tasks.spawn(self.sessions.clone().reaper(stop.clone()));
        let state = self.clone();
        tasks.spawn(crate::cluster::heartbeat(
            self.library.catalogue(),
            self.http.node_name.clone(),
            move || {
                let sessions = state.sessions.views(None, &state.http.node_name);
                let figures = serde_json::to_value(state.figures()).unwrap_or_default();
                (sessions, figures)
            },
            stop.clone(),
        ));
    }

    /// This node's figures: sessions, the store, producers and the
    /// library (`/api/v1/admin/streaming-stats`); the gauges read from
    /// live state are refreshed on the way.
    pub fn figures(&self) -> NodeFigures {
        let sessions = self.refresh_gauges();
        let supervisor = self.sessions.supervisor();
        NodeFigures {
            node: self.http.node_name.clone(),
            report: self.stats.report(&sessions),
            store: supervisor.store().stats(),
            producers: supervisor.counts().by_kind,
            producer_list: supervisor.producers(),
            library: self.library.figures(),
        }
    }

    /// Refreshes the gauges that are read from live state; the `(mode,
    /// state)` of every live session.
    pub fn refresh_gauges(&self) -> Vec<(crate::library::Playback, &'static str)> {
        let sessions = self.sessions.snapshot();
        self.stats.set_active(&sessions);
        let store = self.sessions.supervisor().store().stats();
        self.stats.set_store(store.bytes, store.segments);
        let counts = self.sessions.supervisor().counts();
        let flat: Vec<(&str, &str, u64)> = counts
            .by_kind
            .iter()
            .flat_map(|(k, phases)| phases.iter().map(move |(p, n)| (*k, *p, *n)))
            .collect();
        self.stats.set_producers(&flat);
        self.stats.set_library(&self.library.figures());
        sessions
    }

    /// Whether `user` may read server-wide statistics.
    pub fn is_admin(&self, user: &str) -> bool {
        self.http.admins.iter().any(|a| a == user)
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

/// One node's figures (`/api/v1/admin/streaming-stats`): the session
/// statistics, the segment store, the producers and the library.
#[derive(Debug, serde::Serialize)]
pub struct NodeFigures {
    /// Its `--node-name`.
    pub node: String,
    /// Sessions, first-segment times, errors.
    #[serde(flatten)]
    pub report: crate::stats::StatsReport,
    /// Segments, bytes, budget and evictions of the segment store.
    pub store: crate::store::StoreStats,
    /// Producer pipelines: `{kind: {phase: n}}`.
    pub producers:
        std::collections::BTreeMap<&'static str, std::collections::BTreeMap<&'static str, u64>>,
    /// Every producer: its item, renditions (the rungs being encoded) and
    /// place.
    pub producer_list: Vec<crate::supervisor::ProducerInfo>,
    /// Items, probes by outcome, scans, and how changes are noticed.
    pub library: crate::library::LibraryFigures,
}

/// Deletes session folders (named by UUID) that hlsd versions before the
/// segment store left in the transcode dir. Other files are kept.
/// Blocking.
fn remove_stale_session_folders(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let removed = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| uuid::Uuid::parse_str(&e.file_name().to_string_lossy()).is_ok())
        .filter(|e| std::fs::remove_dir_all(e.path()).is_ok())
        .count();
    if removed > 0 {
        tracing::info!(
            folders = removed,
            "deleted session folders left by an earlier run"
        );
    }
}
