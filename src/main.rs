//! The `hlsd` binary: CLI, logging, GStreamer init, bind, run.

use anyhow::Context;
use clap::Parser;
use hlsd::config::{Config, PipelineTemplates, ProberCommand, UserToken};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// HTTP streaming server for a folder of media: direct play or HLS.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Folder of media files (recursively), watched for changes.
    #[arg(long, env = "HLSD_MEDIA_DIR")]
    media_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (logged).
    #[arg(long, env = "HLSD_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// USER:TOKEN; may repeat. HLSD_TOKENS=user:token,user2:token2 does the
    /// same. Without any, a random token for user `admin` is printed.
    #[arg(
        long = "token",
        env = "HLSD_TOKENS",
        value_delimiter = ',',
        value_name = "USER:TOKEN"
    )]
    tokens: Vec<UserToken>,
    /// Where the segment store lives (emptied at start-up and shutdown)
    /// [default: $TMPDIR/hlsd].
    #[arg(long, env = "HLSD_TRANSCODE_DIR")]
    transcode_dir: Option<PathBuf>,
    /// Seconds of inactivity after which a session is stopped and deleted.
    #[arg(long, env = "HLSD_SESSION_TIMEOUT", default_value_t = 600)]
    session_timeout: u64,
    /// Seconds of media in every item's first segment (1-6): the default 2
    /// is the fast start, 6 turns it off; later segments keep 6.
    #[arg(long, env = "HLSD_FIRST_SEGMENT", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=6))]
    first_segment: u64,
    /// The tallest rung of a transcode's quality ladder, in lines: a taller
    /// source is offered at this height and the standard steps below it
    /// (1080, 720, 480, 360).
    #[arg(long, env = "HLSD_MAX_HEIGHT", default_value_t = hlsd::ladder::DEFAULT_MAX_HEIGHT, value_parser = clap::value_parser!(u32).range(144..=4320))]
    max_height: u32,
    /// Seconds a segment request waits for a segment being made before a
    /// 503 with Retry-After.
    #[arg(long, env = "HLSD_SEGMENT_WAIT", default_value_t = 8)]
    segment_wait: u64,
    /// A requested segment more than this many segments ahead of every
    /// producer starts a producer there.
    #[arg(long, env = "HLSD_RELOCATE_AHEAD", default_value_t = 2)]
    relocate_ahead: usize,
    /// Seconds of media a producer may run ahead of the newest segment its
    /// furthest player asked for before it is paused; 0 never pauses it.
    #[arg(long, env = "HLSD_THROTTLE_MARGIN", default_value_t = 120)]
    throttle_margin: u64,
    /// Turn off POST /api/v1/hls/preload (it then answers {"status":"disabled"}).
    #[arg(long, env = "HLSD_NO_PRELOAD")]
    no_preload: bool,
    /// Seconds after which a preloaded session nobody played is stopped.
    #[arg(long, env = "HLSD_PRELOAD_TIMEOUT", default_value_t = 60)]
    preload_timeout: u64,
    /// Most transcode producers running at once; more get 503.
    #[arg(long, env = "HLSD_MAX_TRANSCODES", default_value_t = 4)]
    max_transcodes: usize,
    /// Most remux producers running at once; more get 503.
    #[arg(long, env = "HLSD_MAX_REMUXES", default_value_t = 32)]
    max_remuxes: usize,
    /// Most producers of one item at once (players seeking apart).
    #[arg(long, env = "HLSD_PRODUCERS_PER_ITEM", default_value_t = 3)]
    producers_per_item: usize,
    /// Live sessions one user may have at once, preloads included (their
    /// oldest unplayed preload, or one idle for 30 s, gives way); one more
    /// is refused with 429.
    #[arg(long, env = "HLSD_MAX_SESSIONS_PER_USER", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    max_sessions_per_user: u64,
    /// Segment requests that may wait at once for segments being made;
    /// one more gets 503 with Retry-After.
    #[arg(long, env = "HLSD_MAX_WAITING_REQUESTS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    max_waiting_requests: u64,
    /// Secret that signs playback tokens; nodes behind one load balancer
    /// share it [default: random per process].
    #[arg(long, env = "HLSD_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Seconds a playback token lives beyond twice the item's duration.
    #[arg(long, env = "HLSD_TOKEN_TTL", default_value_t = 6 * 3600)]
    token_ttl: u64,
    /// A user who may read /api/v1/admin/streaming-stats and /metrics; may
    /// repeat.
    #[arg(
        long = "admin",
        env = "HLSD_ADMINS",
        value_delimiter = ',',
        default_value = "admin"
    )]
    admins: Vec<String>,
    /// Bytes the segment store may hold (0: no budget); past it the least
    /// recently used segments in no player's window are evicted and, past
    /// 90 %, new producers get 503 [default: a quarter of the transcode
    /// dir's free space at start-up].
    #[arg(long, env = "HLSD_DISK_BUDGET")]
    disk_budget: Option<u64>,
    /// Folder of an operator's own web page [default: the page built into
    /// the binary].
    #[arg(long, env = "HLSD_WEB_DIR")]
    web_dir: Option<PathBuf>,
    /// Serve /metrics without a token.
    #[arg(long, env = "HLSD_METRICS_PUBLIC")]
    metrics_public: bool,
    /// Folder with video-transcode.gst and audio-transcode.gst [default:
    /// ./pipelines if present, else the copies built into the binary].
    #[arg(long, env = "HLSD_PIPELINES_DIR")]
    pipelines_dir: Option<PathBuf>,
    /// Where the library catalogue (catalogue.sqlite3) is kept; not inside
    /// the media dir [default: $XDG_DATA_HOME/hlsd or ~/.local/share/hlsd].
    #[arg(long, env = "HLSD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Do not watch the media dir (inotify); poll it every
    /// --rescan-interval instead.
    #[arg(long, env = "HLSD_NO_WATCH")]
    no_watch: bool,
    /// Seconds between listings of the folders whose mtime changed: when
    /// the media dir cannot be watched (network file systems, the inotify
    /// limit), and ten times less often as a safety net when it can.
    #[arg(long, env = "HLSD_RESCAN_INTERVAL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    rescan_interval: u64,
    /// Milliseconds a new or changed file's size and mtime must hold still
    /// before it is probed (a download being written is not).
    #[arg(long, env = "HLSD_SETTLE_MS", default_value_t = 1000)]
    settle_ms: u64,
    /// Files probed at once in the background.
    #[arg(long, env = "HLSD_PROBE_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    probe_concurrency: u64,
    /// An origin (https://host[:port]) whose pages may read the API,
    /// playlists and segments, or `*` for any; may repeat [default: none,
    /// no CORS headers].
    #[arg(long = "cors-origin", env = "HLSD_CORS_ORIGIN", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// This node's name, sent as X-Hlsd-Node on every answer (1-64
    /// letters, digits, '-', '_', '.') [default: the host name].
    #[arg(long, env = "HLSD_NODE_NAME", value_parser = node_name)]
    node_name: Option<String>,
    /// Log lines as text (coloured only on a terminal, and not with
    /// NO_COLOR set) or as one JSON object per line, for log collectors.
    #[arg(long, env = "HLSD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// How log lines on stderr are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// Installs the log subscriber on stderr. `RUST_LOG` overrides the
/// default filter (`hlsd=info,warp=warn`).
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "hlsd=info,warp=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init()
        }
    }
}

/// `hlsd probe FILE...`: what the library records for each file, as one
/// JSON object per line. With `--worker` it is one of the server's prober
/// children instead: one JSON request per line on stdin, one answer per
/// line on stdout.
#[derive(Debug, Parser)]
#[command(name = "hlsd probe")]
struct ProbeArgs {
    /// Files to probe.
    files: Vec<PathBuf>,
    /// Answer probe requests on stdin (how the server runs its probers).
    #[arg(long)]
    worker: bool,
    /// The Discoverer's timeout per file, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    timeout_ms: u64,
    /// Test hook: abort, as a crashing demuxer would, on a path that
    /// contains this.
    #[arg(long, hide = true)]
    crash_on: Option<String>,
}

/// Runs `hlsd probe`.
fn probe_command() -> anyhow::Result<()> {
    let args = ProbeArgs::parse_from(std::env::args_os().skip(1));
    let timeout = Duration::from_millis(args.timeout_ms);
    if args.worker {
        hlsd::library::run_worker(timeout, args.crash_on.as_deref())
    } else {
        hlsd::library::print_probes(&args.files, timeout)
    }
}

/// Parses `--node-name`.
fn node_name(raw: &str) -> Result<String, String> {
    if hlsd::config::valid_node_name(raw) {
        Ok(raw.to_string())
    } else {
        Err("1 to 64 letters, digits, '-', '_' or '.'".into())
    }
}

fn main() -> anyhow::Result<()> {
    if std::env::args_os().nth(1).is_some_and(|a| a == "probe") {
        return probe_command();
    }
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(serve())
}

/// Caps glibc's malloc arenas at one per core (at least 2) unless the
/// operator set `MALLOC_ARENA_MAX`. glibc's default is 8 per core: each
/// streaming thread that frees frame buffers then keeps its own arena's
/// worth of them. Measured on the bench transcode, interleaved, 3 runs
/// each (README, "Performance"): RSS growth per session 163-168 MB with 16
/// arenas (the default here), 152-160 MB with 2, at the same speed.
/// Called before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets a glibc tunable; no thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.max(2) as libc::c_int);
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);
    hlsd::init()?;

    let templates = match &args.pipelines_dir {
        Some(dir) => PipelineTemplates::load(dir)?,
        None if PathBuf::from("pipelines/video-transcode.gst").is_file() => {
            PipelineTemplates::load(&PathBuf::from("pipelines"))?
        }
        None => {
            tracing::info!("using the built-in pipeline descriptions");
            PipelineTemplates::builtin()
        }
    };
    templates.validate()?;

    let mut users = args.tokens;
    let generated = users.is_empty();
    if generated {
        users.push(UserToken {
            user: "admin".into(),
            token: uuid::Uuid::new_v4().simple().to_string(),
        });
    }
    let mut config = Config::new(args.media_dir, users);
    config.templates = templates;
    config.session_timeout = Duration::from_secs(args.session_timeout);
    config.first_segment = Duration::from_secs(args.first_segment);
    config.max_height = args.max_height;
    config.segment_wait = Duration::from_secs(args.segment_wait);
    config.relocate_ahead = args.relocate_ahead;
    config.preload = !args.no_preload;
    config.preload_timeout = Duration::from_secs(args.preload_timeout);
    config.max_transcodes = args.max_transcodes.max(1);
    config.max_remuxes = args.max_remuxes.max(1);
    config.producers_per_item = args.producers_per_item.max(1);
    config.max_sessions_per_user = args.max_sessions_per_user as usize;
    config.max_waiting_requests = args.max_waiting_requests as usize;
    config.secret = args.secret.filter(|s| !s.is_empty());
    config.token_ttl = Duration::from_secs(args.token_ttl);
    config.admins = args.admins;
    config.metrics_public = args.metrics_public;
    config.cors_origins = args.cors_origins;
    if let Some(name) = args.node_name {
        config.node_name = name;
    }
    config.disk_budget = args.disk_budget.map(|b| if b == 0 { u64::MAX } else { b });
    config.web_dir = args.web_dir;
    config.throttle_margin =
        (args.throttle_margin > 0).then(|| Duration::from_secs(args.throttle_margin));
    config.prober = ProberCommand::current_exe();
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    config.watch = !args.no_watch;
    config.rescan_interval = Duration::from_secs(args.rescan_interval);
    config.settle = Duration::from_millis(args.settle_ms);
    config.probe_concurrency = args.probe_concurrency as usize;
    if let Some(dir) = args.transcode_dir {
        config.transcode_dir = dir;
    }

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, media_dir = %config.media_dir.display(), transcode_dir = %config.transcode_dir.display(), data_dir = %config.data_dir.display(), "hlsd starting");
    if generated {
        // Printed once, on stdout, not in the logs.
        println!(
            "hlsd: no --token given; user admin has token {token}\n      open http://{addr}/ (the page asks for it) or http://{addr}/api/v1/media?api_key={token}",
            token = config.users[0].token
        );
    }
    hlsd::run(listener, config, shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: stopping producers");
}
