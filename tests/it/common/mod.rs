//! Shared helpers: a real hlsd on 127.0.0.1:0 over a folder of real media,
//! an HTTP client that follows playlists as a player does; test media
//! (`media`), decoding what is served (`decode`), the library's helpers
//! (`library`), following playlists as a player does (`player`),
//! MPEG-TS and fMP4 conformance checkers (`ts_check`, `fmp4_check`), and
//! several hlsd processes behind nginx (`cluster`).
#![allow(dead_code)]

use gst::prelude::*;
use hlsd::config::{Config, UserToken};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub mod cluster;
mod decode;
pub mod fmp4_check;
pub mod library;
mod media;
mod player;
pub mod postgres;
pub mod ts_check;

pub use decode::*;
pub use media::*;
pub use player::*;

/// Token of user `alice`.
pub const ALICE: &str = "alice-token-0123456789";
/// Token of user `bob`.
pub const BOB: &str = "bob-token-0123456789";

/// Runs `web/tests/{script}` with node against Debian's chromium
/// (`CHROMIUM`), with `args`; asserts that it succeeds within `within`
/// (output printed for failing tests) and returns its stdout.
pub async fn run_page_script(
    script: &str,
    chromium: &str,
    args: &[std::ffi::OsString],
    within: Duration,
) -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = tokio::process::Command::new("node")
        .arg(repo.join("web/tests").join(script))
        .args(args)
        .env("CHROMIUM", chromium)
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(within, run)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {within:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        run.status.success(),
        "browser run failed:\n{stdout}\n{stderr}"
    );
    stdout
}

/// The JSON of the `RESULT {json}` line a page script prints.
pub fn page_result(stdout: &str) -> Value {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|j| serde_json::from_str(j).expect("RESULT is JSON"))
        .expect("a RESULT line")
}

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The session folders' parent.
    pub transcode_dir: PathBuf,
    /// HTTP client that does not follow redirects.
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _transcode_tmp: tempfile::TempDir,
}

/// Starts hlsd over `media_dir` with users alice and bob.
pub async fn start_server(media_dir: &Path, session_timeout: Duration) -> TestServer {
    start_server_with(media_dir, |c| {
        c.sessions.session_timeout = session_timeout.into()
    })
    .await
}

/// Starts hlsd over `media_dir` with users alice and bob, after `tweak`
/// has adjusted the configuration.
pub async fn start_server_with(media_dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_server_opts(media_dir, tweak, true).await
}

/// Starts hlsd as [`start_server_with`] does.into(); `wait_library`: whether to
/// wait until its library is compared with the disk and probed (else only
/// until it answers).
pub async fn start_server_opts(
    media_dir: &Path,
    tweak: impl FnOnce(&mut Config),
    wait_library: bool,
) -> TestServer {
    // Server logs in the test output (shown for failing tests); RUST_LOG
    // overrides the default of warnings and errors only.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "hlsd=warn".into()),
        )
        .with_test_writer()
        .try_init();
    hlsd::init().expect("GStreamer initialises");
    let transcode_tmp = tempfile::tempdir().expect("temp transcode dir");
    let mut config = Config::new(
        media_dir.to_path_buf(),
        vec![
            UserToken {
                user: "alice".into(),
                token: ALICE.into(),
            },
            UserToken {
                user: "bob".into(),
                token: BOB.into(),
            },
        ],
    );
    config.store.transcode_dir = transcode_tmp.path().join("sessions");
    config.library.data_dir = transcode_tmp.path().join("data");
    config.library.prober = Some(prober());
    // Test media is written just before the server starts: settle soon.
    config.library.settle_ms = 300;
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let transcode_dir = config.store.transcode_dir.clone();
    let task = tokio::spawn(hlsd::run(listener, config, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let server = TestServer {
        base: format!("http://{addr}"),
        transcode_dir,
        client,
        stop: Some(tx),
        task: Some(task),
        _transcode_tmp: transcode_tmp,
    };
    if wait_library {
        server.wait_library(Duration::from_secs(120)).await;
    } else {
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.health().await.is_none() {
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    server
}

/// Whether a `/healthz` body says the library was compared with the disk
/// and nothing waits to be probed or to settle.
pub fn library_ready(health: &Value) -> bool {
    let lib = &health["library"];
    lib["reconciled"] == true && lib["pending"] == 0 && lib["settling"] == 0
}

/// How tests run prober children: the hlsd binary built with the tests.
pub fn prober() -> hlsd::config::ProberCommand {
    hlsd::config::ProberCommand {
        program: PathBuf::from(env!("CARGO_BIN_EXE_hlsd")),
        args: Vec::new(),
    }
}

impl TestServer {
    /// A server this test did not start (another process, or nginx in
    /// front of several), for the same helpers; never [`Self::stop`]ped.
    pub fn remote(base: &str) -> TestServer {
        TestServer {
            base: base.to_string(),
            transcode_dir: PathBuf::new(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            stop: None,
            task: None,
            _transcode_tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `/healthz` once it answers.
    pub async fn health(&self) -> Option<Value> {
        let r = self.client.get(self.url("/healthz")).send().await.ok()?;
        (r.status() == 200).then_some(())?;
        r.json().await.ok()
    }

    /// Waits until the library has been compared with the disk and every
    /// item is probed.
    pub async fn wait_library(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.health().await.is_some_and(|h| library_ready(&h)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the library was not ready in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Absolute URL for a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    /// GET JSON with a bearer token, asserting the status.
    pub async fn get_json(&self, path: &str, token: &str, status: u16) -> Value {
        let r = self.get(path, token).await;
        assert_eq!(r.status().as_u16(), status, "GET {path}");
        r.json().await.expect("JSON body")
    }

    /// The library item whose path is `name`.
    pub async fn media(&self, name: &str) -> Value {
        let list = self.get_json("/api/v1/media?limit=1000", ALICE, 200).await;
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["path"] == name)
            .unwrap_or_else(|| panic!("{name} not in library: {list}"))
            .clone()
    }

    /// The id of the library item whose path is `name`.
    pub async fn media_id(&self, name: &str) -> String {
        self.media(name).await["id"].as_str().unwrap().to_string()
    }

    /// The id of `token`'s session behind a signed master URL
    /// (`/api/v1/hls/media/{media_id}/master.m3u8?token=`, as a 302 of
    /// `/api/v1/stream` hands out), from `GET /api/v1/sessions`.
    pub async fn session_behind(&self, master_url: &str, token: &str) -> String {
        let media_id = master_url
            .strip_prefix("/api/v1/hls/media/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("{master_url} is not a signed master URL"));
        let list = self.get_json("/api/v1/sessions", token, 200).await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["media_id"] == media_id)
            .unwrap_or_else(|| panic!("no session of {media_id}: {list}"))["session_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// POST /api/v1/hls/start for `media_id` as `token`; returns the body.
    pub async fn start_hls(&self, media_id: &str, token: &str) -> Value {
        let r = self.post_start(media_id, token).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// `POST /api/v1/hls/start` for `media_id` as `token`, whatever it answers.
    pub async fn post_start(&self, media_id: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/hls/start"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "media_id": media_id }))
            .send()
            .await
            .unwrap()
    }

    /// `DELETE /api/v1/hls/{session_id}` as `token`, whatever it answers.
    pub async fn delete_session(&self, session_id: &str, token: &str) -> reqwest::Response {
        self.client
            .delete(self.url(&format!("/api/v1/hls/{session_id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Files under the transcode dir whose names end with `suffix`
    /// (`.ts` segments in the store, `.part` files being written).
    pub fn files_ending(&self, suffix: &str) -> Vec<PathBuf> {
        fn walk(dir: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.filter_map(|e| e.ok()) {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, suffix, out);
                } else if p.to_string_lossy().ends_with(suffix) {
                    out.push(p);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.transcode_dir, suffix, &mut out);
        out
    }

    /// Bytes of the finished segments in the store.
    pub fn store_bytes(&self) -> u64 {
        self.files_ending(".ts")
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// `GET /api/v1/admin/streaming-stats` as `token` (an admin).
    pub async fn admin_stats(&self, token: &str) -> Value {
        self.get_json("/api/v1/admin/streaming-stats", token, 200)
            .await
    }

    /// Stops the server as Ctrl-C would and waits for it.
    pub async fn stop(mut self) -> PathBuf {
        let _ = self.stop.take().unwrap().send(());
        // The server bounds each step (connections 10 s, producers 12 s,
        // background tasks 5 s); this waits for their sum and a margin.
        // The server's log (shown with a failure) names a slow phase.
        let asked = Instant::now();
        match tokio::time::timeout(Duration::from_secs(45), self.task.take().unwrap()).await {
            Err(_) => panic!("the server did not stop within 45 s"),
            Ok(Err(e)) => panic!("the server's task failed while stopping: {e}"),
            Ok(Ok(Err(e))) => panic!("the server's run ended in an error: {e:#}"),
            Ok(Ok(Ok(()))) => {}
        }
        let took = asked.elapsed();
        if took > Duration::from_secs(5) {
            println!("the server took {took:?} to stop");
        }
        self.transcode_dir.clone()
    }
}

/// Polls GET /api/v1/sessions until `session_id` is complete (or failed).
pub async fn wait_complete(server: &TestServer, session_id: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let list = server.get_json("/api/v1/sessions", token, 200).await;
        let s = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["session_id"] == session_id)
            .cloned()
            .unwrap_or_else(|| panic!("session {session_id} vanished"));
        if s["state"] == "complete" || s["state"] == "failed" {
            return s;
        }
        assert!(Instant::now() < deadline, "session did not finish: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A session as `GET /api/v1/sessions` lists it.
pub async fn session_view(server: &TestServer, session_id: &str, token: &str) -> Value {
    let list = server.get_json("/api/v1/sessions", token, 200).await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == session_id)
        .cloned()
        .unwrap_or_else(|| panic!("session {session_id} vanished"))
}

/// Polls `GET /api/v1/sessions` (as `token`) until `pred` holds for session
/// `sid`, for at most 90 s; returns its view.
pub async fn wait_session(
    server: &TestServer,
    sid: &str,
    token: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = session_view(server, sid, token).await;
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "session never got there: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts `r` is a 503 `at_capacity` with `Retry-After`; returns its message.
pub async fn assert_at_capacity(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "at_capacity");
    body["error"]["message"].as_str().unwrap().to_string()
}
