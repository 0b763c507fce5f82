//! Probing in child processes, so that a demuxer that crashes or hangs
//! on a hostile file costs one child, never the server.
//!
//! Each child is the hlsd binary run as `hlsd probe --worker`: it reads one
//! JSON request per line on stdin (`{"path": "/abs/film.mkv"}`), probes
//! the file with the Discoverer ([`super::probe::probe_file`]) and writes
//! one JSON line back (`{"info": MediaInfo}`). Children are kept and
//! reused (GStreamer starts once per child, not once per file). A child
//! that dies mid-probe or does not answer within the probe's longest time
//! ([`super::probe::longest`]) plus [`GRACE`] is killed; the file is recorded as unplayable with the reason
//! (`prober_crashed: ...`, `prober_timed_out: ...`) and a fresh child
//! takes the next file.

use super::streams::MediaInfo;
use crate::config::ProberCommand;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::Semaphore;

/// How much longer than the Discoverer's own timeout a child may take
/// before it is killed (starting GStreamer in a new child takes ~0.1 s).
pub const GRACE: Duration = Duration::from_secs(5);

/// How a probe ended, for the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The Discoverer read the file.
    Probed,
    /// The Discoverer refused the file (the reason is in the info).
    Refused,
    /// The child died while probing it.
    Crashed,
    /// The child did not answer in time and was killed.
    TimedOut,
    /// No child could be started (the binary was removed by an upgrade,
    /// no processes left): says nothing about the file, which is probed
    /// again later.
    Unavailable,
}

/// One probe request on the child's stdin.
#[derive(Serialize, Deserialize)]
struct Request {
    /// The file's absolute path as text without loss ([`super::id::encode`]:
    /// a name that is not UTF-8 crosses the pipe as it is).
    path: String,
}

#[derive(Serialize, Deserialize)]
struct Reply {
    info: MediaInfo,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    probes: u32,
    idle_since: std::time::Instant,
}

/// A child is replaced after this many probes: the Discoverer keeps some
/// memory per file (a child's RSS grew from 178 to 206 MB over its first
/// ~100 files here).
const PROBES_PER_CHILD: u32 = 200;

/// A child idle this long is stopped (a library at rest costs no prober).
pub const IDLE_CHILD: Duration = Duration::from_secs(30);

/// A pool of prober children: `concurrency` for the background queue and
/// one more kept for requests a viewer waits on.
pub struct Prober {
    command: Option<ProberCommand>,
    timeout: Duration,
    idle: Mutex<Vec<Worker>>,
    background: Semaphore,
    urgent: Semaphore,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("command", &self.command)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Prober {
    /// A pool that runs `command` (`None`: probe in this process, without
    /// crash isolation, for embedders without the hlsd binary), bounding
    /// each probe by `timeout`.
    pub fn new(command: Option<ProberCommand>, timeout: Duration, concurrency: usize) -> Prober {
        if command.is_none() {
            tracing::warn!(
                "no prober program: probing in-process, a crashing demuxer takes the server down"
            );
        }
        Prober {
            command,
            timeout,
            idle: Mutex::new(Vec::new()),
            background: Semaphore::new(concurrency.max(1)),
            urgent: Semaphore::new(1),
        }
    }

    /// Probes the file at `path`; `urgent` when a viewer waits for it (it
    /// then goes ahead of the background queue). Never fails: what went
    /// wrong is in [`MediaInfo::probe_error`] and the [`Outcome`].
    pub async fn probe(&self, path: &Path, urgent: bool) -> (MediaInfo, Outcome) {
        let slots = if urgent {
            &self.urgent
        } else {
            &self.background
        };
        let _slot = slots.acquire().await.expect("prober semaphore open");
        let (info, outcome) = match &self.command {
            Some(command) => self.in_child(command, path).await,
            None => self.in_process(path).await,
        };
        (info, outcome)
    }

    /// Stops the children idle for [`IDLE_CHILD`] or more.
    pub fn reap_idle(&self) {
        self.idle
            .lock()
            .expect("prober pool")
            .retain(|w| w.idle_since.elapsed() < IDLE_CHILD);
    }

    async fn in_process(&self, path: &Path) -> (MediaInfo, Outcome) {
        let timeout = self.timeout;
        let path = path.to_path_buf();
        let job = tokio::task::spawn_blocking(move || probe_one(&path, timeout));
        let limit = super::probe::longest(timeout) + GRACE;
        match tokio::time::timeout(limit, job).await {
            Ok(Ok(info)) => outcome_of(info),
            Ok(Err(join)) => failed(format!("prober_crashed: {join}"), Outcome::Crashed),
            Err(_) => failed(
                format!("prober_timed_out: no answer in {limit:?}"),
                Outcome::TimedOut,
            ),
        }
    }

    async fn in_child(&self, command: &ProberCommand, path: &Path) -> (MediaInfo, Outcome) {
        let reused = self.idle.lock().expect("prober pool").pop();
        let mut worker = match reused {
            Some(w) => w,
            None => match spawn(command, self.timeout) {
                Ok(w) => w,
                Err(e) => {
                    tracing::error!(program = %command.program.display(), error = %e, "cannot start a prober");
                    return failed(format!("prober_unavailable: {e}"), Outcome::Unavailable);
                }
            },
        };
        let limit = super::probe::longest(self.timeout) + GRACE;
        match tokio::time::timeout(limit, ask(&mut worker, path)).await {
            Ok(Ok(info)) => {
                worker.probes += 1;
                if worker.probes < PROBES_PER_CHILD {
                    worker.idle_since = std::time::Instant::now();
                    self.idle.lock().expect("prober pool").push(worker);
                }
                outcome_of(info)
            }
            Ok(Err(e)) => {
                // The child died or spoke nonsense: say how it ended.
                let _ = worker.child.start_kill();
                let status = tokio::time::timeout(Duration::from_secs(2), worker.child.wait())
                    .await
                    .ok()
                    .and_then(Result::ok);
                let how = status.map_or_else(|| e.to_string(), |s| describe_exit(&s));
                tracing::warn!(path = %path.display(), how = %how, "the prober died on this file");
                failed(format!("prober_crashed: {how}"), Outcome::Crashed)
            }
            Err(_) => {
                let _ = worker.child.start_kill();
                let _ = worker.child.wait().await;
                tracing::warn!(path = %path.display(), limit_s = limit.as_secs(), "the prober hung on this file: killed");
                failed(
                    format!("prober_timed_out: no answer in {} s", limit.as_secs()),
                    Outcome::TimedOut,
                )
            }
        }
    }
}

fn failed(reason: String, outcome: Outcome) -> (MediaInfo, Outcome) {
    (
        MediaInfo {
            probe_error: Some(reason),
            ..Default::default()
        },
        outcome,
    )
}

fn outcome_of(info: MediaInfo) -> (MediaInfo, Outcome) {
    let outcome = if info.probe_error.is_some() {
        Outcome::Refused
    } else {
        Outcome::Probed
    };
    (info, outcome)
}

fn spawn(command: &ProberCommand, timeout: Duration) -> std::io::Result<Worker> {
    let mut child = tokio::process::Command::new(&command.program)
        .arg("probe")
        .arg("--worker")
        .arg("--timeout-ms")
        .arg(timeout.as_millis().to_string())
        .args(&command.args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    Ok(Worker {
        child,
        stdin,
        stdout,
        probes: 0,
        idle_since: std::time::Instant::now(),
    })
}

async fn ask(worker: &mut Worker, path: &Path) -> std::io::Result<MediaInfo> {
    let mut line = serde_json::to_string(&Request {
        path: super::id::encode(path),
    })?;
    line.push('\n');
    worker.stdin.write_all(line.as_bytes()).await?;
    worker.stdin.flush().await?;
    let mut answer = String::new();
    if worker.stdout.read_line(&mut answer).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the prober closed its output",
        ));
    }
    let reply: Reply = serde_json::from_str(&answer)?;
    Ok(reply.info)
}

/// "killed by signal 6 (SIGABRT)" or "exited with status 3".
fn describe_exit(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(name) => format!("killed by signal {sig} ({name})"),
            Err(_) => format!("killed by signal {sig}"),
        },
        (Some(code), None) => format!("exited with status {code}"),
        (None, None) => "ended".to_string(),
    }
}

/// Probes one file the way a child does: the Discoverer, then the
/// container's own track flags.
fn probe_one(path: &Path, timeout: Duration) -> MediaInfo {
    let mut info = super::probe::probe_file(path, timeout);
    super::probe::add_container_flags(&mut info, path);
    super::probe::add_dolby_vision(&mut info, path);
    info
}

/// The child's side (`hlsd probe --worker`): answers requests on stdin
/// until it closes. `crash_on` is a test hook: a path containing it makes
/// the child abort, as a crashing demuxer would.
///
/// # Errors
/// Fails when GStreamer cannot start or stdout is closed.
pub fn run_worker(timeout: Duration, crash_on: Option<&str>) -> anyhow::Result<()> {
    no_core_dumps();
    gst::init()?;
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line?;
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => anyhow::bail!("bad request {line:?}: {e}"),
        };
        if crash_on.is_some_and(|c| request.path.contains(c)) {
            std::process::abort();
        }
        let info = probe_one(&super::id::decode(&request.path), timeout);
        serde_json::to_writer(&mut stdout, &Reply { info })?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}

/// Turns off core dumps for this process: a child that a hostile file
/// crashes (what the pool exists for) must not leave a core file of its
/// memory in the server's working directory, however the machine is set
/// up. Best effort: a refusal is ignored.
fn no_core_dumps() {
    use nix::sys::resource::{setrlimit, Resource};
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
}

/// `hlsd probe FILE...`: prints what the library would record for each
/// file, as JSON, one object per line.
///
/// # Errors
/// Fails when GStreamer cannot start or stdout is closed.
pub fn print_probes(files: &[PathBuf], timeout: Duration) -> anyhow::Result<()> {
    gst::init()?;
    let mut stdout = std::io::stdout().lock();
    for file in files {
        let info = probe_one(file, timeout);
        serde_json::to_writer(
            &mut stdout,
            &serde_json::json!({"path": file.to_string_lossy(), "info": info}),
        )?;
        stdout.write_all(b"\n")?;
    }
    Ok(())
}
