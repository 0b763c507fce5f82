//! The `hlsd` binary: the configuration ([`Config`], flags and
//! environment), logging, GStreamer, bind, run.

#![forbid(unsafe_code)]

use anyhow::Context;
use clap::Parser;
use hlsd::config::{Config, LogFormat, ProberCommand, UserToken};
use std::path::PathBuf;
use std::time::Duration;

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
/// each (docs/benchmarks.md, "Memory"): RSS growth per session 163-168 MB
/// with 16 arenas (the default here), 152-160 MB with 2, at the same speed.
///
/// glibc reads the variable only when the process starts, so hlsd starts
/// itself again with it set (`exec`, same pid, before any thread), which
/// needs no `unsafe` call into libc. Returns only if that `exec` failed;
/// hlsd then runs with glibc's default.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        use std::os::unix::process::CommandExt;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let error = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env("MALLOC_ARENA_MAX", cores.max(2).to_string())
            .exec();
        eprintln!("hlsd: cannot restart with MALLOC_ARENA_MAX set: {error}");
    }
}

async fn serve() -> anyhow::Result<()> {
    let mut config = Config::parse();
    init_logging(config.log_format);
    hlsd::init()?;
    config.supervisor.load_templates()?;
    config.library.prober = ProberCommand::current_exe();
    let generated = config.http.users.is_empty();
    if generated {
        config.http.users.push(UserToken {
            user: "admin".into(),
            token: uuid::Uuid::new_v4().simple().to_string(),
        });
    }
    let addr = config.http.addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        media_dir = %config.library.media_dir.display(),
        transcode_dir = %config.store.transcode_dir.display(),
        data_dir = %config.library.data_dir.display(),
        "hlsd starting"
    );
    if generated {
        // Printed once, on stdout, not in the logs.
        println!(
            "hlsd: no --token given; user admin has token {token}\n      open http://{addr}/ (the page asks for it) or http://{addr}/api/v1/media?api_key={token}",
            token = config.http.users[0].token
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
