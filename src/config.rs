//! Configuration: one place for every knob and its default.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::timeline::SEGMENT_SECONDS;

/// A user and the bearer token that authenticates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserToken {
    /// User name, as sessions record it.
    pub user: String,
    /// The secret the client presents (`Authorization: Bearer` or `api_key`).
    pub token: String,
}

impl std::str::FromStr for UserToken {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((user, token)) if !user.is_empty() && !token.is_empty() => Ok(UserToken {
                user: user.to_string(),
                token: token.to_string(),
            }),
            _ => Err(format!("expected USER:TOKEN, got {s:?}")),
        }
    }
}

/// The encode branches, as gst-launch descriptions (see `pipelines/`).
#[derive(Debug, Clone)]
pub struct PipelineTemplates {
    /// Raw video in, H.264 out; placeholders `{width}`, `{height}`,
    /// `{keyint}`, `{maxrate_kbps}` and `{bufsize_kbits}` (the rung's VBV
    /// cap and buffer, [`crate::ladder`]).
    pub video_transcode: String,
    /// Raw audio in, AAC out.
    pub audio_transcode: String,
}

const BUILTIN_VIDEO: &str = include_str!("../pipelines/video-transcode.gst");
const BUILTIN_AUDIO: &str = include_str!("../pipelines/audio-transcode.gst");

/// Drops `#` comment lines and joins the rest into one description.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

impl PipelineTemplates {
    /// The copies compiled into the binary (the repository's `pipelines/`).
    pub fn builtin() -> Self {
        PipelineTemplates {
            video_transcode: strip_comments(BUILTIN_VIDEO),
            audio_transcode: strip_comments(BUILTIN_AUDIO),
        }
    }

    /// Reads `video-transcode.gst` and `audio-transcode.gst` from `dir`.
    ///
    /// # Errors
    /// Fails when either file cannot be read.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .with_context(|| format!("reading pipeline description {}", path.display()))
                .map(|t| strip_comments(&t))
        };
        Ok(PipelineTemplates {
            video_transcode: read("video-transcode.gst")?,
            audio_transcode: read("audio-transcode.gst")?,
        })
    }

    /// The video description with its placeholders filled in: the size
    /// in pixels, `keyint` in frames, the VBV cap in kilobits per second
    /// and its buffer in kilobits.
    pub fn video(
        &self,
        width: u32,
        height: u32,
        keyint: u32,
        maxrate_kbps: u32,
        bufsize_kbits: u32,
    ) -> String {
        self.video_transcode
            .replace("{width}", &width.to_string())
            .replace("{height}", &height.to_string())
            .replace("{keyint}", &keyint.to_string())
            .replace("{maxrate_kbps}", &maxrate_kbps.to_string())
            .replace("{bufsize_kbits}", &bufsize_kbits.to_string())
    }

    /// Checks that both descriptions parse into GStreamer bins with one sink
    /// and one source pad, so a typo fails at start-up rather than per session.
    ///
    /// # Errors
    /// Names the description and GStreamer's parse error.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, desc) in [
            (
                "video-transcode.gst",
                self.video(1280, 720, 150, 3000, 3000),
            ),
            ("audio-transcode.gst", self.audio_transcode.clone()),
        ] {
            let bin = gst::parse::bin_from_description(&desc, true)
                .with_context(|| format!("{name} does not parse: {desc}"))?;
            use gst::prelude::*;
            if bin.static_pad("sink").is_none() || bin.static_pad("src").is_none() {
                bail!("{name} must have exactly one unlinked sink and one unlinked src pad");
            }
        }
        Ok(())
    }
}

/// The default length of an item's first segment: 2 s, a third of the
/// others, so a transcode's first picture comes after a third of the
/// encoding (README, "Fast start": 0.41x the ffmpeg peer's time to first
/// segment, for about 1 % more bytes).
pub const DEFAULT_FIRST_SEGMENT: Duration = Duration::from_secs(2);

/// The machine's host name (`gethostname(2)`), if it is a valid header
/// value, else `hlsd`.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if ok && valid_node_name(&name) {
        name
    } else {
        "hlsd".into()
    }
}

/// Whether `name` may be a node name: 1 to 64 letters, digits, `-`, `_`
/// and `.`.
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The library root, scanned recursively at start-up.
    pub media_dir: PathBuf,
    /// Where the segment store lives (`{transcode_dir}/store`), emptied at
    /// start-up and at shutdown.
    pub transcode_dir: PathBuf,
    /// A session idle this long is stopped (its players forgotten, its
    /// producers stopped unless someone else needs them).
    /// Default 600 s (the issue's; Jellyfin's ping timeout is 60 s).
    pub session_timeout: Duration,
    /// Accepted users and tokens.
    pub users: Vec<UserToken>,
    /// Length of every item's first segment, at most [`SEGMENT_SECONDS`].
    /// Default 2 s ([`DEFAULT_FIRST_SEGMENT`]): the fast start measured in
    /// README, "Fast start"; later segments keep 6 s.
    pub first_segment: Duration,
    /// The tallest rung of a transcode's quality ladder, in lines
    /// (`--max-height`). Default 1080 ([`crate::ladder::DEFAULT_MAX_HEIGHT`]):
    /// a 4K source is offered at 1080p and below, since encoding 2160p in
    /// software is far from real time on a small server.
    pub max_height: u32,
    /// The encode branches.
    pub templates: PipelineTemplates,
    /// How long a media playlist request waits for an item's key frames to
    /// be read, or for the first segment of a growing playlist, before
    /// answering 503 with `Retry-After`. Default 5 s.
    pub playlist_wait: Duration,
    /// How long a request for a segment that is being made waits before
    /// answering 503 with `Retry-After`. Default 8 s: under hls.js's
    /// default time-to-first-byte limit for segments (10 s,
    /// `fragLoadPolicy`), so the player gets an answer it can retry on
    /// rather than timing out.
    pub segment_wait: Duration,
    /// A requested segment more than this many segments ahead of the one a
    /// producer is writing starts a new producer there (if none makes it
    /// already). Default 2: at the 4.6x real time measured for 1080p →
    /// 720p here, two segments are about 2.6 s of encoding, about what a
    /// new producer costs (a pipeline and the seek, ~0.3 s, plus the
    /// requested segment itself, ~1.3 s); players also ask for the next
    /// segment or two while one is in flight, and those must not start
    /// producers of their own.
    pub relocate_ahead: usize,
    /// A producer is paused once it is this far (media time) ahead of the
    /// end of the newest segment asked for by the furthest player it
    /// serves, and resumed when a request comes within it; `None` turns
    /// throttling off. Default 120 s, within the 60–180 s peers use
    /// (Jellyfin throttles at 180 s by default). Remux producers too: a
    /// paused viewer never costs more disk than this margin.
    pub throttle_margin: Option<Duration>,
    /// Producers one item may run at once (seeks by several players of
    /// one title). Past it a producer nobody needs gives way, then one
    /// that only served the same player; else 503. Default 3.
    pub producers_per_item: usize,
    /// Live sessions one user may have at once, preloads included
    /// (sessions are per item and user: items played at once). Past it
    /// the user's oldest unplayed preload gives way, else the session they
    /// left longest ago if idle for 30 s, else the start is refused (429). Default 4: a household sharing one account on a few
    /// screens, while one user cannot take every transcode slot
    /// (`max_transcodes`, 4) and the page's preloads on top.
    pub max_sessions_per_user: usize,
    /// Segment requests that may wait at once for segments being made,
    /// across all users; one more gets 503 with `Retry-After`. Default
    /// 256: far above what the producers can serve (a few players per
    /// producer, each with a request or two in flight), so only a burst
    /// or a misbehaving client meets it.
    pub max_waiting_requests: usize,
    /// The secret that signs playback tokens (`--secret`); `None`: a random
    /// one per process. Nodes behind one load balancer share it.
    pub secret: Option<String>,
    /// How long a playback token lives beyond twice the item's duration.
    /// Default 6 h: a VOD playlist is loaded once, so its segment URLs must
    /// outlast the film and a long pause; a leaked URL opens that one item
    /// for no longer.
    pub token_ttl: Duration,
    /// How long a demux-only pass for a file's key frames may take (files
    /// whose container has no index). Default 600 s.
    pub index_timeout: Duration,
    /// Whether `POST /api/v1/hls/preload/{id}` starts sessions. Default on.
    pub preload: bool,
    /// An unplayed preloaded session is stopped after this long. Default
    /// 60 s: long enough for a viewer reading a detail page to press play,
    /// far shorter than the playing timeout.
    pub preload_timeout: Duration,
    /// Transcode producers at once; past it a new one gets 503. Default 4:
    /// the most 1080p HEVC → 720p H.264 transcodes that all kept real time
    /// on this 2-core machine (README, "Performance", concurrency).
    pub max_transcodes: usize,
    /// Remux producers at once. Default 32: a remux runs at disk speed and
    /// is held at the throttle margin.
    pub max_remuxes: usize,
    /// Users who may read `/api/v1/admin/streaming-stats` (and `/metrics`
    /// unless it is public). Default `admin`.
    pub admins: Vec<String>,
    /// Whether `/metrics` is served without a token. Default off: it shows
    /// server-wide activity.
    pub metrics_public: bool,
    /// Origins whose pages may read the API, playlists and segments
    /// (`--cors-origin`): serialized origins (`https://host[:port]`) or
    /// `*` for every origin. Empty (default): no CORS headers.
    pub cors_origins: Vec<String>,
    /// This node's name, sent as `X-Hlsd-Node` on every answer so that a
    /// load balancer's logs and a client can tell which node served it
    /// (`--node-name`). Default: the host name, else `hlsd`.
    pub node_name: String,
    /// Bytes the segment store may hold; past it the least recently used
    /// segments in no player's window are evicted, and past 90 % new
    /// producers get 503. `None` (default): a quarter of the free space of
    /// the transcode dir's file system at start-up
    /// ([`crate::store::DEFAULT_BUDGET_SHARE`]).
    pub disk_budget: Option<u64>,
    /// A folder of the web page's files (`index.html`, `app.js`,
    /// `vendor/hls.min.js`), served at `/` and `/static/`; `None` (default)
    /// serves the page built into the binary.
    pub web_dir: Option<PathBuf>,
    /// Discoverer timeout per file. Default 10 s.
    pub probe_timeout: Duration,
    /// Files probed at once in the background (a request a viewer waits
    /// on has one more prober of its own). Default 2 (the machine's
    /// cores).
    pub probe_concurrency: usize,
    /// The program probes run in, as child processes (`hlsd probe
    /// --worker`); `None` probes in-process, where a crashing demuxer
    /// takes the server down. The binary sets itself.
    pub prober: Option<ProberCommand>,
    /// Where the catalogue database lives (`catalogue.sqlite3`); never
    /// inside the media dir. Default [`default_data_dir`].
    pub data_dir: PathBuf,
    /// Whether to watch the media dir for changes (inotify). Default on;
    /// where it cannot work (network file systems, the inotify watch limit)
    /// the library polls instead.
    pub watch: bool,
    /// How often the library looks for changes by listing the folders
    /// whose modification time changed: every interval when it cannot
    /// watch, every ten intervals as a safety net when it can. Default
    /// 30 s (peers: Jellyfin and Plex rescan on a schedule of hours; their
    /// users report new items taking 10–15 minutes to appear).
    pub rescan_interval: Duration,
    /// A new or changed file is probed once its size and modification
    /// time have not changed for this long, so a download still being
    /// written is not probed half-way. Default 1 s.
    pub settle: Duration,
}

/// The shortest account token accepted (characters). A token is a
/// password sent with every request; 16 characters of a random alphabet
/// are beyond guessing over HTTP (OWASP's session-id guidance asks for at
/// least 64 bits of entropy).
pub const MIN_TOKEN_LEN: usize = 16;

impl Config {
    /// Checks what can only be wrong in the configuration itself.
    ///
    /// # Errors
    /// A user's token shorter than [`MIN_TOKEN_LEN`], or an empty user
    /// name.
    pub fn validate(&self) -> anyhow::Result<()> {
        for u in &self.users {
            if u.user.is_empty() {
                bail!("a token has an empty user name");
            }
            if u.token.chars().count() < MIN_TOKEN_LEN {
                bail!(
                    "the token of user {} is shorter than {MIN_TOKEN_LEN} characters: use a longer, random one",
                    u.user
                );
            }
        }
        for origin in &self.cors_origins {
            if !is_origin(origin) {
                bail!("--cors-origin {origin:?} is not `*` or an origin such as https://cast.example:8443 (scheme, host, optional port; no path)");
            }
        }
        Ok(())
    }
}

/// Whether `text` is `*` or a serialized origin: `http`/`https`, `://`, a
/// host and an optional port, with no path, query or user info (RFC 6454
/// §6.2).
fn is_origin(text: &str) -> bool {
    if text == "*" {
        return true;
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    // An IPv6 host is bracketed: its colons are not the port's.
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => (h, Some(p.strip_prefix(':').unwrap_or("x"))),
            None => return false,
        },
        None => match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        },
    };
    matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && port.is_none_or(|p| p.parse::<u16>().is_ok())
}

/// How to start a prober child: `{program} probe --worker --timeout-ms N
/// {args}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProberCommand {
    /// The hlsd binary.
    pub program: PathBuf,
    /// Extra arguments after the subcommand's own.
    pub args: Vec<String>,
}

impl ProberCommand {
    /// The running binary itself, if it can be found.
    pub fn current_exe() -> Option<ProberCommand> {
        std::env::current_exe().ok().map(|program| ProberCommand {
            program,
            args: Vec::new(),
        })
    }
}

impl Config {
    /// A configuration with every default, for `media_dir` and `users`.
    pub fn new(media_dir: PathBuf, users: Vec<UserToken>) -> Self {
        Config {
            media_dir,
            transcode_dir: default_transcode_dir(),
            session_timeout: Duration::from_secs(600),
            users,
            first_segment: DEFAULT_FIRST_SEGMENT,
            max_height: crate::ladder::DEFAULT_MAX_HEIGHT,
            templates: PipelineTemplates::builtin(),
            playlist_wait: Duration::from_secs(5),
            segment_wait: Duration::from_secs(8),
            relocate_ahead: 2,
            throttle_margin: Some(Duration::from_secs(120)),
            producers_per_item: 3,
            max_sessions_per_user: 4,
            max_waiting_requests: 256,
            secret: None,
            token_ttl: Duration::from_secs(6 * 3600),
            index_timeout: Duration::from_secs(600),
            preload: true,
            preload_timeout: Duration::from_secs(60),
            max_transcodes: 4,
            max_remuxes: 32,
            admins: vec!["admin".to_string()],
            metrics_public: false,
            cors_origins: Vec::new(),
            node_name: host_name(),
            disk_budget: None,
            web_dir: None,
            probe_timeout: Duration::from_secs(10),
            probe_concurrency: 2,
            prober: None,
            data_dir: default_data_dir(),
            watch: true,
            rescan_interval: Duration::from_secs(30),
            settle: Duration::from_secs(1),
        }
    }
}

/// `$XDG_DATA_HOME/hlsd`, else `$HOME/.local/share/hlsd` (the XDG base
/// directory default), else `hlsd-data` in the temp dir.
pub fn default_data_dir() -> PathBuf {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_DATA_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local/share")))
        .map(|d| d.join("hlsd"))
        .unwrap_or_else(|| std::env::temp_dir().join("hlsd-data"))
}

/// `$TMPDIR/hlsd` (or the platform's temp dir).
pub fn default_transcode_dir() -> PathBuf {
    std::env::temp_dir().join("hlsd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_are_star_or_scheme_host_port() {
        for ok in [
            "*",
            "https://cast.example",
            "http://10.0.0.2:8096",
            "https://[::1]:8443",
            "http://[fe80::1]",
        ] {
            assert!(is_origin(ok), "{ok}");
        }
        for bad in [
            "",
            "cast.example",
            "https://",
            "https://a.example/",
            "https://a.example:99999",
            "ftp://a.example",
            "https://u@a.example",
            "https://[::1",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }

    #[test]
    fn user_token_parses_and_rejects() {
        let t: UserToken = "alice:s3cr:et".parse().unwrap();
        assert_eq!((t.user.as_str(), t.token.as_str()), ("alice", "s3cr:et"));
        assert!("alice".parse::<UserToken>().is_err());
        assert!(":tok".parse::<UserToken>().is_err());
        assert!("bob:".parse::<UserToken>().is_err());
    }

    #[test]
    fn short_tokens_are_refused() {
        let user = |token: &str| UserToken {
            user: "alice".into(),
            token: token.into(),
        };
        let ok = Config::new("/m".into(), vec![user("0123456789abcdef")]);
        assert!(ok.validate().is_ok());
        let short = Config::new("/m".into(), vec![user("0123456789abcde")]);
        let e = short.validate().unwrap_err().to_string();
        assert!(e.contains("alice") && e.contains("16"), "{e}");
    }

    #[test]
    fn node_names_are_header_safe() {
        assert!(valid_node_name(&host_name()));
        for ok in ["node-a", "hlsd_2", "edge1.example.org"] {
            assert!(valid_node_name(ok), "{ok}");
        }
        for bad in ["", "a b", "node\r\nx: y", &"n".repeat(65)] {
            assert!(!valid_node_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn builtin_templates_fill_placeholders() {
        let t = PipelineTemplates::builtin();
        let v = t.video(640, 360, 150, 830, 830);
        assert!(v.contains("width=640,height=360"), "{v}");
        assert!(v.contains("vbv-maxrate=830:vbv-bufsize=830"), "{v}");
        assert!(v.contains("key-int-max=150"), "{v}");
        assert!(!v.contains('#') && !v.contains('{'));
    }
}
