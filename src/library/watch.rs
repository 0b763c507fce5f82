//! Noticing changes in the media dir: inotify events (the `notify` crate,
//! debounced) as the fast path, and a periodic listing of the folders
//! whose mtime changed as the safety net, or as the only way where
//! watching cannot work: a network file system (NFS, SMB/CIFS, FUSE, 9p:
//! changes made by other machines raise no inotify event here) or the
//! inotify watch limit (`fs.inotify.max_user_watches`). Which one runs is
//! logged and shown in `/metrics` (`hlsd_library_watching`) and
//! `/healthz`.

use super::figures::ChangeWatch;
use super::live::Library;
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{Debouncer, NoCache};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Events for one path closer together than this are one event.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// When watching works, the safety-net listing runs this many times less
/// often than `--rescan-interval`.
const SAFETY_NET_FACTOR: u32 = 10;

/// The file system of `path` if it is one inotify cannot see remote
/// changes on, by `statfs` magic number (linux/magic.h).
fn network_fs(path: &Path) -> Option<&'static str> {
    let fs = nix::sys::statfs::statfs(path).ok()?;
    match fs.filesystem_type().0 as u64 {
        0x6969 => Some("nfs"),
        0x517B => Some("smb"),
        0xFF53_4D42 => Some("cifs"),
        0xFE53_4D42 => Some("smb2"),
        0x6573_5546 => Some("fuse"),
        0x0102_1997 => Some("9p"),
        0x0BD0_0BD0 => Some("lustre"),
        0x7346_1574 => Some("ocfs2"),
        0x0122_1997 => Some("ceph"),
        _ => None,
    }
}

/// Watches (or polls) `lib`'s media dir until `stop`.
pub(super) async fn run(
    lib: Arc<Library>,
    stop: CancellationToken,
    watch: bool,
    interval: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = if !watch {
        tracing::info!(
            interval_s = interval.as_secs(),
            "watching is off: polling the media dir for changes"
        );
        None
    } else if let Some(fs) = network_fs(lib.root()) {
        tracing::warn!(fs, interval_s = interval.as_secs(), "the media dir is on a network file system, where inotify misses changes made elsewhere: polling for changes instead");
        None
    } else {
        match start_watcher(lib.root(), tx) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, interval_s = interval.as_secs(), "cannot watch the media dir: polling for changes instead");
                None
            }
        }
    };
    let watching = watcher.is_some();
    lib.counters().set_watch(if watching {
        ChangeWatch::Watching
    } else {
        ChangeWatch::Polling
    });
    let every = if watching {
        interval * SAFETY_NET_FACTOR
    } else {
        interval
    };
    let mut poll = tokio::time::interval(every.max(Duration::from_millis(100)));
    poll.tick().await;
    let _watcher = watcher;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = poll.tick() => lib.poll_changed().await,
            event = rx.recv() => match event {
                Some(Ok(paths)) => {
                    for p in dedup(paths) {
                        lib.observe(&p).await;
                    }
                }
                Some(Err(e)) => {
                    // Lost events (queue overflow, a watch that failed):
                    // list what changed rather than trust the events.
                    tracing::warn!(error = %e, "watch error: listing the changed folders");
                    lib.poll_changed().await;
                }
                None => return,
            },
        }
    }
}

type Events = Result<Vec<PathBuf>, String>;

/// The debounced watcher of `root`: every event but reads (opening a file
/// or folder, which probing and listing do all the time) goes to `tx` as
/// its paths.
fn start_watcher(
    root: &Path,
    tx: tokio::sync::mpsc::UnboundedSender<Events>,
) -> Result<Debouncer<notify::RecommendedWatcher, NoCache>, String> {
    let mut debouncer = notify_debouncer_full::new_debouncer_opt(
        DEBOUNCE,
        None,
        move |result: notify_debouncer_full::DebounceEventResult| {
            let _ = tx.send(match result {
                Ok(events) => Ok(events
                    .into_iter()
                    .filter(|e| !matches!(e.kind, EventKind::Access(_)))
                    .flat_map(|e| e.event.paths)
                    .collect()),
                Err(errors) => Err(errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")),
            });
        },
        NoCache,
        notify::Config::default(),
    )
    .map_err(|e| e.to_string())?;
    debouncer
        .watch(root, RecursiveMode::Recursive)
        .map_err(|e| match e.kind {
            notify::ErrorKind::MaxFilesWatch => {
                "the inotify watch limit is reached (raise fs.inotify.max_user_watches)".to_string()
            }
            _ => e.to_string(),
        })?;
    Ok(debouncer)
}

/// The paths of one batch, each once, parents before children.
fn dedup(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort();
    paths.dedup();
    paths
}
