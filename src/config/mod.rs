//! Configuration: every setting once, as a `clap` flag with its
//! environment variable and its default (a named constant), in one
//! section per component: each component takes its own section
//! ([`LibrarySettings`], [`SupervisorSettings`], [`StoreSettings`],
//! [`SessionSettings`], [`HttpSettings`]). `hlsd --help` lists them; tests
//! and embedders start from [`Config::new`], the same defaults.

mod sections;
mod templates;

pub use sections::{
    HttpSettings, LibrarySettings, LogFormat, SessionSettings, StoreSettings, SupervisorSettings,
};
pub use templates::PipelineTemplates;

use anyhow::bail;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// A length of time given in seconds (`600`, `0.5`) on the command line
/// and in the environment; a [`Duration`] in the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Seconds(pub Duration);

impl Seconds {
    /// `s` whole seconds.
    pub const fn from_secs(s: u64) -> Seconds {
        Seconds(Duration::from_secs(s))
    }
}

impl std::ops::Deref for Seconds {
    type Target = Duration;
    fn deref(&self) -> &Duration {
        &self.0
    }
}

impl From<Duration> for Seconds {
    fn from(d: Duration) -> Seconds {
        Seconds(d)
    }
}

impl std::fmt::Display for Seconds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

impl std::str::FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Seconds, String> {
        s.trim()
            .parse::<f64>()
            .ok()
            .and_then(|v| Duration::try_from_secs_f64(v).ok())
            .map(Seconds)
            .ok_or_else(|| format!("expected seconds (e.g. 600 or 0.5), got {s:?}"))
    }
}

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

/// A user's bit-rate limit (`--user-max-bitrate USER:BPS`): every
/// playback of theirs fits it, as a profile's `max_bitrate_bps` would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLimit {
    /// User name, as a token names it.
    pub user: String,
    /// The limit, in bits per second.
    pub bitrate_bps: u64,
}

impl std::str::FromStr for UserLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((user, bps)) if !user.is_empty() => Ok(UserLimit {
                user: user.to_string(),
                bitrate_bps: crate::profile::parse_bitrate(bps)?,
            }),
            _ => Err(format!("expected USER:BPS, got {s:?}")),
        }
    }
}

/// HTTP streaming server for a folder of media: direct play or HLS.
#[derive(Debug, Clone, Parser)]
#[command(name = "hlsd", version, about)]
pub struct Config {
    /// The media files, their catalogue and how changes are noticed.
    #[command(flatten)]
    pub library: LibrarySettings,
    /// The producers: segments, the ladder, throttling, caps.
    #[command(flatten)]
    pub supervisor: SupervisorSettings,
    /// Where segments are kept, and how much.
    #[command(flatten)]
    pub store: StoreSettings,
    /// Viewer sessions: timeouts and caps.
    #[command(flatten)]
    pub sessions: SessionSettings,
    /// The HTTP edge: address, users, tokens, waits, CORS.
    #[command(flatten)]
    pub http: HttpSettings,
    /// Log lines as text (coloured only on a terminal, and not with
    /// NO_COLOR set) or as one JSON object per line, for log collectors.
    #[arg(long, env = "HLSD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The shortest account token accepted (characters). A token is a
/// password sent with every request; 16 characters of a random alphabet
/// are beyond guessing over HTTP (OWASP's session-id guidance asks for at
/// least 64 bits of entropy).
pub const MIN_TOKEN_LEN: usize = 16;

impl Config {
    /// Every default, for `media_dir` and `users`: what `hlsd --media-dir
    /// DIR` runs with (its `HLSD_*` environment variables included), for
    /// tests and embedders.
    pub fn new(media_dir: PathBuf, users: Vec<UserToken>) -> Config {
        let mut config = Config::parse_from([
            std::ffi::OsString::from("hlsd"),
            "--media-dir".into(),
            media_dir.into_os_string(),
        ]);
        config.http.users = users;
        config
    }

    /// Checks what can only be wrong in the configuration itself.
    ///
    /// # Errors
    /// A user's token shorter than [`MIN_TOKEN_LEN`], an empty user name,
    /// or a `--cors-origin` that is not an origin.
    pub fn validate(&self) -> anyhow::Result<()> {
        for u in &self.http.users {
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
        for origin in &self.http.cors_origins {
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

/// The machine's host name, if it is a valid header value, else `hlsd`.
pub fn host_name() -> String {
    hostname::get()
        .ok()
        .and_then(|n| n.into_string().ok())
        .filter(|n| valid_node_name(n))
        .unwrap_or_else(|| "hlsd".into())
}

/// Whether `name` may be a node name: 1 to 64 letters, digits, `-`, `_`
/// and `.`.
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
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

    #[test]
    fn the_defaults_are_the_named_ones_and_flags_override_them() {
        let c = Config::new("/m".into(), Vec::new());
        assert_eq!(c.sessions.session_timeout, sections::SESSION_TIMEOUT);
        assert_eq!(c.supervisor.first_segment, sections::FIRST_SEGMENT);
        assert_eq!(
            c.supervisor.throttle_margin(),
            Some(Duration::from_secs(120))
        );
        assert_eq!(c.store.budget_bytes(), None);
        let c = Config::parse_from([
            "hlsd",
            "--media-dir",
            "/m",
            "--throttle-margin",
            "0",
            "--disk-budget",
            "0",
            "--rescan-interval",
            "0.5",
        ]);
        assert_eq!(c.supervisor.throttle_margin(), None);
        assert_eq!(c.store.budget_bytes(), Some(u64::MAX));
        assert_eq!(*c.library.rescan_interval, Duration::from_millis(500));
        assert!("x".parse::<Seconds>().is_err() && "-1".parse::<Seconds>().is_err());
    }
}
