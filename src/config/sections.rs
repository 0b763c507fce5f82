//! The settings of each component, as `clap` argument groups: the flag,
//! its environment variable, its default (a named constant here) and why
//! that default.

use super::{
    default_data_dir, default_transcode_dir, host_name, valid_node_name, PipelineTemplates,
    ProberCommand, Seconds, UserToken,
};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `--addr`: loopback, so a first run is not open to the network.
pub const ADDR: &str = "127.0.0.1:8080";
/// `--session-timeout`: 600 s (Jellyfin's ping timeout is 60 s; a paused
/// viewer keeps its session for ten minutes).
pub const SESSION_TIMEOUT: Seconds = Seconds::from_secs(600);
/// `--first-segment`: 2 s, a third of the others, so a transcode's first
/// picture comes after a third of the encoding (docs/benchmarks.md, "Fast
/// start": 0.41x the ffmpeg peer's time to first segment, for about 1 %
/// more bytes).
pub const FIRST_SEGMENT: Seconds = Seconds::from_secs(2);
/// `--segment-wait`: 8 s, under hls.js's default time-to-first-byte limit
/// for segments (10 s, `fragLoadPolicy`), so the player gets an answer it
/// can retry on rather than timing out.
pub const SEGMENT_WAIT: Seconds = Seconds::from_secs(8);
/// `--playlist-wait`: 5 s.
pub const PLAYLIST_WAIT: Seconds = Seconds::from_secs(5);
/// `--relocate-ahead`: 2 segments. At the 4.6x real time measured for
/// 1080p → 720p here, two segments are about 2.6 s of encoding, about
/// what a new producer costs (a pipeline and the seek, ~0.3 s, plus the
/// requested segment itself, ~1.3 s); players also ask for the next
/// segment or two while one is in flight, and those must not start
/// producers of their own.
pub const RELOCATE_AHEAD: usize = 2;
/// `--throttle-margin`: 120 s, within the 60–180 s peers use (Jellyfin
/// throttles at 180 s by default).
pub const THROTTLE_MARGIN: Seconds = Seconds::from_secs(120);
/// `--preload-timeout`: 60 s, long enough for a viewer reading a detail
/// page to press play, far shorter than the playing timeout.
pub const PRELOAD_TIMEOUT: Seconds = Seconds::from_secs(60);
/// `--max-transcodes`: 4, the most 1080p HEVC → 720p H.264 transcodes
/// that all kept real time on this 2-core machine (docs/benchmarks.md).
pub const MAX_TRANSCODES: usize = 4;
/// `--max-remuxes`: 32; a remux runs at disk speed and is held at the
/// throttle margin.
pub const MAX_REMUXES: usize = 32;
/// `--producers-per-item`: 3 (players of one title seeking apart).
pub const PRODUCERS_PER_ITEM: usize = 3;
/// `--max-sessions-per-user`: 4, a household sharing one account on a few
/// screens, while one user cannot take every transcode slot and the
/// page's preloads on top.
pub const MAX_SESSIONS_PER_USER: usize = 4;
/// `--max-waiting-requests`: 256, far above what the producers can serve
/// (a few players per producer, each with a request or two in flight), so
/// only a burst or a misbehaving client meets it.
pub const MAX_WAITING_REQUESTS: usize = 256;
/// Default `--memory-cache`: 64 MiB, about 50 segments of a 1080p
/// transcode, or every segment of a few minutes of one title.
pub const MEMORY_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Default `--thumbnail-budget`: 2 GiB, the sheets of about 700 two-hour
/// films (8 sheets of 300–400 KB each).
pub const THUMBNAIL_BUDGET_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// `--token-ttl`: 6 h beyond twice the item's duration: a VOD playlist is
/// loaded once, so its segment URLs must outlast the film and a long
/// pause; a leaked URL opens that one item for no longer.
pub const TOKEN_TTL: Seconds = Seconds::from_secs(6 * 3600);
/// `--index-timeout`: 600 s for a demux-only pass over a file whose
/// container has no index (12 s for a 2-hour film here).
pub const INDEX_TIMEOUT: Seconds = Seconds::from_secs(600);
/// `--rescan-interval`: 30 s (peers rescan on a schedule of hours; their
/// users report new items taking 10–15 minutes to appear).
pub const RESCAN_INTERVAL: Seconds = Seconds::from_secs(30);
/// `--settle-ms`: 1 s of a file not changing before it is probed.
pub const SETTLE_MS: u64 = 1000;
/// `--probe-timeout`: 10 s for the Discoverer per file.
pub const PROBE_TIMEOUT: Seconds = Seconds::from_secs(10);
/// `--probe-concurrency`: 2 (the machine's cores).
pub const PROBE_CONCURRENCY: usize = 2;
/// `--database-pool`: 8 connections per node, so three nodes hold 24 of
/// PostgreSQL's default `max_connections` of 100.
pub const DATABASE_POOL: u32 = 8;
/// `--probe-claim-timeout`: 60 s, six times the default `--probe-timeout`:
/// a claim older than this belongs to a node that died while probing.
pub const PROBE_CLAIM_TIMEOUT: Seconds = Seconds::from_secs(60);

/// How log lines on stderr are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; ANSI colours only when stderr is a terminal.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// The library: the media files, the catalogue, probing, watching.
#[derive(Debug, Clone, Args)]
pub struct LibrarySettings {
    /// Folder of media files (recursively), watched for changes.
    #[arg(long, env = "HLSD_MEDIA_DIR")]
    pub media_dir: PathBuf,
    /// Where the library catalogue (catalogue.sqlite3) is kept; not inside
    /// the media dir [default: $XDG_DATA_HOME/hlsd or ~/.local/share/hlsd].
    #[arg(long, env = "HLSD_DATA_DIR", default_value_os_t = default_data_dir(), hide_default_value = true)]
    pub data_dir: PathBuf,
    /// A PostgreSQL database (postgres://USER:PASSWORD@HOST:PORT/DBNAME)
    /// that keeps the catalogue, key frames and users' positions for every
    /// node of a cluster; without it, catalogue.sqlite3 in the data dir
    /// (one node).
    #[arg(long = "database", env = "HLSD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Connections this node holds open to --database at most.
    #[arg(long, env = "HLSD_DATABASE_POOL", default_value_t = DATABASE_POOL, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub database_pool: u32,
    /// Seconds after which another node's claim on probing a file is
    /// taken over (with --database; that node died mid-probe).
    #[arg(long, env = "HLSD_PROBE_CLAIM_TIMEOUT", default_value_t = PROBE_CLAIM_TIMEOUT, value_parser = positive_seconds)]
    pub probe_claim_timeout: Seconds,
    /// This node's name in probe claims: `--node-name`, set by the
    /// configuration.
    #[arg(skip)]
    pub node_name: String,
    /// Do not watch the media dir (inotify); poll it every
    /// --rescan-interval instead.
    #[arg(long, env = "HLSD_NO_WATCH")]
    pub no_watch: bool,
    /// Make no thumbnails: no poster frames, no thumbnail sheets, WebVTT
    /// thumbnail tracks or image playlists (kept, when on, in
    /// DATA_DIR/thumbnails).
    #[arg(long, env = "HLSD_NO_THUMBNAILS")]
    pub no_thumbnails: bool,
    /// Bytes the thumbnail sheets of every file may hold in
    /// DATA_DIR/thumbnails; past it, the sheets of the files whose sheets
    /// were made longest ago are deleted (made again when asked for).
    #[arg(long = "thumbnail-budget", env = "HLSD_THUMBNAIL_BUDGET", default_value_t = THUMBNAIL_BUDGET_BYTES)]
    pub thumbnail_budget_bytes: u64,
    /// Seconds between listings of the folders whose mtime changed: when
    /// the media dir cannot be watched (network file systems, the inotify
    /// limit), and ten times less often as a safety net when it can.
    #[arg(long, env = "HLSD_RESCAN_INTERVAL", default_value_t = RESCAN_INTERVAL, value_parser = positive_seconds)]
    pub rescan_interval: Seconds,
    /// Milliseconds a new or changed file's size and mtime must hold still
    /// before it is probed (a download being written is not).
    #[arg(long, env = "HLSD_SETTLE_MS", default_value_t = SETTLE_MS)]
    pub settle_ms: u64,
    /// Files probed at once in the background (a request a viewer waits
    /// on has one more prober of its own).
    #[arg(long, env = "HLSD_PROBE_CONCURRENCY", default_value_t = PROBE_CONCURRENCY, value_parser = probe_concurrency)]
    pub probe_concurrency: usize,
    /// Seconds the Discoverer may take per file.
    #[arg(long, env = "HLSD_PROBE_TIMEOUT", default_value_t = PROBE_TIMEOUT)]
    pub probe_timeout: Seconds,
    /// The program probes run in, as child processes (`hlsd probe
    /// --worker`); `None` probes in-process, where a crashing demuxer
    /// takes the server down. The binary sets itself.
    #[arg(skip)]
    pub prober: Option<ProberCommand>,
}

impl LibrarySettings {
    /// Whether the media dir is watched (inotify) rather than only polled.
    pub fn watch(&self) -> bool {
        !self.no_watch
    }

    /// Where the catalogue is kept.
    pub fn database(&self) -> crate::library::catalogue::Database {
        use crate::library::catalogue::Database;
        match &self.database_url {
            Some(url) => Database::Postgres {
                url: url.clone(),
                pool_size: self.database_pool,
            },
            None => Database::Sqlite,
        }
    }

    /// How long a new or changed file must hold still before it is probed.
    pub fn settle(&self) -> Duration {
        Duration::from_millis(self.settle_ms)
    }
}

/// The producers: how segments are cut and made, and how many at once.
#[derive(Debug, Clone, Args)]
pub struct SupervisorSettings {
    /// Seconds of media in every item's first segment (1-6): the default 2
    /// is the fast start, 6 turns it off; later segments keep 6.
    #[arg(long, env = "HLSD_FIRST_SEGMENT", default_value_t = FIRST_SEGMENT, value_parser = first_segment)]
    pub first_segment: Seconds,
    /// The tallest rung of a transcode's quality ladder, in lines: a taller
    /// source is offered at this height and the standard steps below it
    /// (1080, 720, 480, 360).
    #[arg(long, env = "HLSD_MAX_HEIGHT", default_value_t = crate::ladder::DEFAULT_MAX_HEIGHT, value_parser = clap::value_parser!(u32).range(144..=4320))]
    pub max_height: u32,
    /// The curve an HDR (PQ, HLG) source's encoded rungs are tone-mapped
    /// to SDR BT.709 with: ITU-R BT.2390's EETF (Jellyfin's default), or
    /// ffmpeg's hable, mobius or reinhard.
    #[arg(long, env = "HLSD_TONEMAP", value_enum, default_value_t = crate::tonemap::Curve::Bt2390)]
    pub tonemap: crate::tonemap::Curve,
    /// A requested segment more than this many segments ahead of every
    /// producer starts a producer there.
    #[arg(long, env = "HLSD_RELOCATE_AHEAD", default_value_t = RELOCATE_AHEAD)]
    pub relocate_ahead: usize,
    /// Seconds of media a producer may run ahead of the newest segment its
    /// furthest player asked for before it is paused; 0 never pauses it.
    /// Remux producers too: a paused viewer never costs more disk than
    /// this margin.
    #[arg(long = "throttle-margin", env = "HLSD_THROTTLE_MARGIN", default_value_t = THROTTLE_MARGIN)]
    pub throttle_margin_s: Seconds,
    /// Most transcode producers running at once; more get 503.
    #[arg(long, env = "HLSD_MAX_TRANSCODES", default_value_t = MAX_TRANSCODES, value_parser = at_least_one)]
    pub max_transcodes: usize,
    /// Most remux producers running at once; more get 503.
    #[arg(long, env = "HLSD_MAX_REMUXES", default_value_t = MAX_REMUXES, value_parser = at_least_one)]
    pub max_remuxes: usize,
    /// Most producers of one item at once (players seeking apart).
    #[arg(long, env = "HLSD_PRODUCERS_PER_ITEM", default_value_t = PRODUCERS_PER_ITEM, value_parser = at_least_one)]
    pub producers_per_item: usize,
    /// Seconds a demux-only pass for a file's key frames may take (files
    /// whose container has no index).
    #[arg(long, env = "HLSD_INDEX_TIMEOUT", default_value_t = INDEX_TIMEOUT)]
    pub index_timeout: Seconds,
    /// Folder with video-transcode.gst and audio-transcode.gst [default:
    /// ./pipelines if present, else the copies built into the binary].
    #[arg(long, env = "HLSD_PIPELINES_DIR")]
    pub pipelines_dir: Option<PathBuf>,
    /// The encode branches: the built-in ones until
    /// [`SupervisorSettings::load_templates`] reads `pipelines_dir`.
    #[arg(skip = PipelineTemplates::builtin())]
    pub templates: PipelineTemplates,
}

impl SupervisorSettings {
    /// The throttle margin; `None`: producers are never held.
    pub fn throttle_margin(&self) -> Option<Duration> {
        (!self.throttle_margin_s.is_zero()).then_some(*self.throttle_margin_s)
    }

    /// Reads the encode branches from `--pipelines-dir` (else
    /// `./pipelines` when it holds them) and checks that they parse.
    ///
    /// # Errors
    /// A description that cannot be read or does not parse into a bin
    /// with one sink and one source pad.
    pub fn load_templates(&mut self) -> anyhow::Result<()> {
        let local = PathBuf::from("pipelines");
        self.templates = match &self.pipelines_dir {
            Some(dir) => PipelineTemplates::load(dir)?,
            None if local.join("video-transcode.gst").is_file() => PipelineTemplates::load(&local)?,
            None => {
                tracing::info!("using the built-in pipeline descriptions");
                PipelineTemplates::builtin()
            }
        };
        self.templates.validate()
    }
}

/// The segment store.
#[derive(Debug, Clone, Args)]
pub struct StoreSettings {
    /// Where the segment store lives (emptied at start-up and shutdown)
    /// [default: $TMPDIR/hlsd].
    #[arg(long, env = "HLSD_TRANSCODE_DIR", default_value_os_t = default_transcode_dir(), hide_default_value = true)]
    pub transcode_dir: PathBuf,
    /// Bytes the segment store may hold (0: no budget); past it the least
    /// recently used segments in no player's window are evicted and, past
    /// 90 %, new producers get 503 [default: a quarter of the transcode
    /// dir's free space at start-up].
    #[arg(long = "disk-budget", env = "HLSD_DISK_BUDGET")]
    pub disk_budget_bytes: Option<u64>,
    /// Bytes of recently served segments kept in memory, so that segments
    /// many players fetch are not read from disk each time (0: none; a
    /// segment over an eighth of it is always read from its file).
    #[arg(long = "memory-cache", env = "HLSD_MEMORY_CACHE", default_value_t = MEMORY_CACHE_BYTES)]
    pub memory_cache_bytes: u64,
}

impl StoreSettings {
    /// The budget asked for, in bytes: `Some(u64::MAX)` for `0` (no
    /// budget); `None` when none was given (the store picks its default).
    pub fn budget_bytes(&self) -> Option<u64> {
        self.disk_budget_bytes
            .map(|b| if b == 0 { u64::MAX } else { b })
    }
}

/// Viewer sessions.
#[derive(Debug, Clone, Args)]
pub struct SessionSettings {
    /// Seconds of inactivity after which a session is stopped and deleted.
    #[arg(long, env = "HLSD_SESSION_TIMEOUT", default_value_t = SESSION_TIMEOUT)]
    pub session_timeout: Seconds,
    /// Turn off POST /api/v1/hls/preload (it then answers {"status":"disabled"}).
    #[arg(long, env = "HLSD_NO_PRELOAD")]
    pub no_preload: bool,
    /// Seconds after which a preloaded session nobody played is stopped.
    #[arg(long, env = "HLSD_PRELOAD_TIMEOUT", default_value_t = PRELOAD_TIMEOUT)]
    pub preload_timeout: Seconds,
    /// Live sessions one user may have at once, preloads included (their
    /// oldest unplayed preload, or one idle for 30 s, gives way); one more
    /// is refused with 429.
    #[arg(long, env = "HLSD_MAX_SESSIONS_PER_USER", default_value_t = MAX_SESSIONS_PER_USER, value_parser = at_least_one)]
    pub max_sessions_per_user: usize,
}

impl SessionSettings {
    /// Whether `POST /api/v1/hls/preload` starts sessions.
    pub fn preload(&self) -> bool {
        !self.no_preload
    }
}

/// The HTTP edge.
#[derive(Debug, Clone, Args)]
pub struct HttpSettings {
    /// Address to listen on; port 0 picks a free port (logged).
    #[arg(long, env = "HLSD_ADDR", default_value = ADDR)]
    pub addr: SocketAddr,
    /// USER:TOKEN; may repeat. HLSD_TOKENS=user:token,user2:token2 does the
    /// same. Without any, a random token for user `admin` is printed.
    #[arg(
        long = "token",
        env = "HLSD_TOKENS",
        value_delimiter = ',',
        value_name = "USER:TOKEN"
    )]
    pub users: Vec<UserToken>,
    /// A user who may read /api/v1/admin/streaming-stats and /metrics; may
    /// repeat.
    #[arg(
        long = "admin",
        env = "HLSD_ADMINS",
        value_delimiter = ',',
        default_value = "admin"
    )]
    pub admins: Vec<String>,
    /// USER:BPS, the most a user's playback may take, in bits per second
    /// (a remote user on a home uplink); may repeat. The lowest of it, the
    /// client profile's `max_bitrate_bps` and a request's `max_bitrate`
    /// wins.
    #[arg(
        long = "user-max-bitrate",
        env = "HLSD_USER_MAX_BITRATE",
        value_delimiter = ',',
        value_name = "USER:BPS"
    )]
    pub user_max_bitrate: Vec<super::UserLimit>,
    /// Secret that signs playback tokens; nodes behind one load balancer
    /// share it [default: one made once and kept in
    /// `DATA_DIR/signing-secret`, mode 0600, so URLs outlive a restart].
    #[arg(long, env = "HLSD_SECRET", hide_env_values = true, value_parser = non_empty)]
    pub secret: Option<String>,
    /// Seconds a playback token lives beyond twice the item's duration.
    #[arg(long, env = "HLSD_TOKEN_TTL", default_value_t = TOKEN_TTL)]
    pub token_ttl: Seconds,
    /// Seconds a media playlist request waits for an item's key frames, or
    /// for the first segment of a growing playlist, before a 503 with
    /// Retry-After.
    #[arg(long, env = "HLSD_PLAYLIST_WAIT", default_value_t = PLAYLIST_WAIT)]
    pub playlist_wait: Seconds,
    /// Seconds a segment request waits for a segment being made before a
    /// 503 with Retry-After.
    #[arg(long, env = "HLSD_SEGMENT_WAIT", default_value_t = SEGMENT_WAIT)]
    pub segment_wait: Seconds,
    /// Segment requests that may wait at once for segments being made;
    /// one more gets 503 with Retry-After.
    #[arg(long, env = "HLSD_MAX_WAITING_REQUESTS", default_value_t = MAX_WAITING_REQUESTS, value_parser = at_least_one)]
    pub max_waiting_requests: usize,
    /// An origin (`https://host[:port]`) whose pages may read the API,
    /// playlists and segments, or `*` for any; may repeat [default: none,
    /// no CORS headers].
    #[arg(long = "cors-origin", env = "HLSD_CORS_ORIGIN", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// This node's name, sent as X-Hlsd-Node on every answer (1-64
    /// letters, digits, '-', '_', '.') [default: the host name].
    #[arg(long, env = "HLSD_NODE_NAME", value_parser = node_name, default_value_t = host_name(), hide_default_value = true)]
    pub node_name: String,
    /// Folder of an operator's own web page [default: the page built into
    /// the binary].
    #[arg(long, env = "HLSD_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Serve /metrics without a token.
    #[arg(long, env = "HLSD_METRICS_PUBLIC")]
    pub metrics_public: bool,
}

impl HttpSettings {
    /// `user`'s bit-rate limit in bits per second (the lowest one given for
    /// them), if any.
    pub fn user_limit(&self, user: &str) -> Option<u64> {
        self.user_max_bitrate
            .iter()
            .filter(|l| l.user == user)
            .map(|l| l.bitrate_bps)
            .min()
    }
}

/// `--first-segment`: 1 to 6 seconds.
fn first_segment(raw: &str) -> Result<Seconds, String> {
    let s: Seconds = raw.parse()?;
    (Duration::from_secs(1)..=Duration::from_secs(6))
        .contains(&s.0)
        .then_some(s)
        .ok_or_else(|| format!("must be 1 to 6 seconds, not {raw}"))
}

/// A number of seconds above 0.
fn positive_seconds(raw: &str) -> Result<Seconds, String> {
    let s: Seconds = raw.parse()?;
    (!s.is_zero())
        .then_some(s)
        .ok_or_else(|| "must be above 0".into())
}

/// `--probe-concurrency`: 1 to 64.
fn probe_concurrency(raw: &str) -> Result<usize, String> {
    let n = at_least_one(raw)?;
    if n <= 64 {
        Ok(n)
    } else {
        Err(format!("must be 1 to 64, not {raw}"))
    }
}

/// A count of at least 1.
fn at_least_one(raw: &str) -> Result<usize, String> {
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("must be a whole number of at least 1, not {raw:?}"))
}

/// A value that is not empty (an empty `--secret` is none).
fn non_empty(raw: &str) -> Result<String, String> {
    (!raw.is_empty())
        .then(|| raw.to_string())
        .ok_or_else(|| "must not be empty".into())
}

/// `--node-name`.
fn node_name(raw: &str) -> Result<String, String> {
    if valid_node_name(raw) {
        Ok(raw.to_string())
    } else {
        Err("1 to 64 letters, digits, '-', '_' or '.'".into())
    }
}
