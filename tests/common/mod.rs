//! Shared helpers: a real hlsd on 127.0.0.1:0 over a folder of real media,
//! an HTTP client that follows playlists as a player does; test media
//! (`media`), decoding what is served (`decode`), the library's helpers
//! (`library`) and an MPEG-TS conformance checker (`ts_check`).
#![allow(dead_code)]

use gst::prelude::*;
use hlsd::config::{Config, UserToken};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

mod decode;
pub mod fmp4_check;
pub mod library;
mod media;
pub mod ts_check;

pub use decode::*;
pub use media::*;

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
    start_server_with(media_dir, |c| c.session_timeout = session_timeout).await
}

/// Starts hlsd over `media_dir` with users alice and bob, after `tweak`
/// has adjusted the configuration.
pub async fn start_server_with(media_dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
    start_server_opts(media_dir, tweak, true).await
}

/// Starts hlsd as [`start_server_with`] does; `wait_library`: whether to
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
    config.transcode_dir = transcode_tmp.path().join("sessions");
    config.data_dir = transcode_tmp.path().join("data");
    config.prober = Some(prober());
    // Test media is written just before the server starts: settle soon.
    config.settle = Duration::from_millis(300);
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let transcode_dir = config.transcode_dir.clone();
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
        let res = tokio::time::timeout(Duration::from_secs(30), self.task.take().unwrap())
            .await
            .expect("server stops within 30 s");
        res.expect("server task").expect("server run ok");
        self.transcode_dir.clone()
    }
}

/// `uri` resolved against the URL path `base` (RFC 3986), as a player
/// does: a path with its query.
pub fn resolve(base: &str, uri: &str) -> String {
    let root = reqwest::Url::parse("http://hlsd.invalid").unwrap();
    let url = root.join(base).unwrap().join(uri).unwrap();
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The URL of segment `n` beside a media playlist URL (its token kept).
pub fn segment_url(playlist_url: &str, n: usize) -> String {
    playlist_url.replace("playlist.m3u8", &format!("segment_{n:05}.ts"))
}

/// What a master playlist lists.
#[derive(Debug, Clone)]
pub struct Master {
    /// The variant's media playlist URL (video, or audio for audio-only).
    pub variant: String,
    /// The audio renditions' media playlist URLs (`EXT-X-MEDIA`).
    pub audio: Vec<String>,
    /// The one of them marked `DEFAULT=YES`.
    pub default_audio: Option<String>,
    /// The WebVTT renditions: (language, media playlist URL).
    pub subtitles: Vec<(Option<String>, String)>,
    /// The variant: (bandwidth, resolution, codecs).
    pub info: (u64, Option<(u64, u64)>, Option<String>),
    /// The playlist text.
    pub text: String,
}

/// Fetches and checks a master playlist as `token` (each fetch is a new
/// player of the session).
pub async fn fetch_master(server: &TestServer, master_url: &str, token: &str) -> Master {
    let r = server.get(master_url, token).await;
    assert_eq!(r.status(), 200, "master playlist");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    let text = r.text().await.unwrap();
    let master = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => m,
        other => panic!("not a master playlist: {other:?}"),
    };
    assert_eq!(master.variants.len(), 1, "{text}");
    let v = &master.variants[0];
    assert!(v.bandwidth > 0);
    assert!(
        v.codecs.as_deref().is_some_and(|c| !c.is_empty()),
        "CODECS present"
    );
    assert!(
        !text.contains("api_key"),
        "no account token in a playlist: {text}"
    );
    let audio: Vec<String> = master
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio)
        .map(|a| {
            resolve(
                master_url,
                a.uri.as_deref().expect("an audio rendition has a URI"),
            )
        })
        .collect();
    let default_audio = master
        .alternatives
        .iter()
        .find(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio && a.default)
        .and_then(|a| a.uri.as_deref())
        .map(|u| resolve(master_url, u));
    let subtitles = master
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
        .map(|a| {
            (
                a.language.clone(),
                resolve(master_url, a.uri.as_deref().expect("subtitles have a URI")),
            )
        })
        .collect();
    if !audio.is_empty() {
        assert_eq!(
            master
                .alternatives
                .iter()
                .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio && a.default)
                .count(),
            1,
            "one default audio rendition: {text}"
        );
        assert_eq!(
            v.audio.as_deref(),
            Some("audio"),
            "the variant names its audio group"
        );
        assert!(
            ["mp4a", "Opus", "fLaC"]
                .iter()
                .any(|c| v.codecs.as_deref().unwrap().contains(c)),
            "CODECS lists the audio"
        );
    }
    Master {
        variant: resolve(master_url, &v.uri),
        audio,
        default_audio,
        subtitles,
        info: (
            v.bandwidth,
            v.resolution.map(|r| (r.width, r.height)),
            v.codecs.clone(),
        ),
        text,
    }
}

/// A media playlist polled until it ends (`#EXT-X-ENDLIST`).
pub async fn complete_playlist(
    server: &TestServer,
    url: &str,
    token: &str,
) -> m3u8_rs::MediaPlaylist {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = server.get(url, token).await;
        match r.status().as_u16() {
            200 => {
                assert_eq!(r.headers()["cache-control"], "no-cache");
                let text = r.bytes().await.unwrap();
                match m3u8_rs::parse_playlist_res(&text) {
                    Ok(m3u8_rs::Playlist::MediaPlaylist(m)) if m.end_list => return m,
                    Ok(m3u8_rs::Playlist::MediaPlaylist(_)) => {}
                    other => panic!("not a media playlist: {other:?}"),
                }
            }
            503 => assert!(r.headers().contains_key("retry-after")),
            s => panic!(
                "media playlist status {s}: {}",
                r.text().await.unwrap_or_default()
            ),
        }
        assert!(Instant::now() < deadline, "the playlist never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An HLS playback checked as a player would: every segment of every
/// rendition fetched.
pub struct Played {
    /// Sum of the variant's `#EXTINF` durations, seconds.
    pub total_s: f64,
    /// The variant's segment count.
    pub segments: usize,
    /// Each of the variant's `#EXTINF`, seconds.
    pub durations: Vec<f64>,
    /// Bytes of every segment of the variant (video, or audio for an
    /// audio-only item), in order.
    pub segment_bytes: Vec<Vec<u8>>,
    /// Bytes of every segment of the audio rendition, when the variant is
    /// video with an audio group.
    pub audio_bytes: Vec<Vec<u8>>,
    /// The master playlist's variant: (bandwidth, resolution, codecs).
    pub variant: (u64, Option<(u64, u64)>, Option<String>),
    /// The variant's media playlist URL.
    pub playlist_url: String,
}

/// Fetches every segment of a complete media playlist.
async fn fetch_all(
    server: &TestServer,
    url: &str,
    media: &m3u8_rs::MediaPlaylist,
    token: &str,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for seg in &media.segments {
        assert!(
            (seg.duration as f64).round() as u64 <= media.target_duration,
            "EXTINF {} exceeds target duration {}",
            seg.duration,
            media.target_duration
        );
        assert!(
            seg.uri.contains("token="),
            "segment URIs carry a playback token"
        );
        let r = get_segment(server, &resolve(url, &seg.uri), token).await;
        assert_eq!(r.status(), 200, "segment {}", seg.uri);
        assert_eq!(r.headers()["content-type"], "video/mp2t");
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        out.push(r.bytes().await.unwrap().to_vec());
    }
    out
}

/// Follows `master_url` (relative) as `token`: master → media playlists
/// (polled until `#EXT-X-ENDLIST`) → every segment of every rendition.
/// Asserts the playlist rules a player relies on.
pub async fn play_hls(server: &TestServer, master_url: &str, token: &str) -> Played {
    let master = fetch_master(server, master_url, token).await;
    let media = complete_playlist(server, &master.variant, token).await;
    let segment_bytes = fetch_all(server, &master.variant, &media, token).await;
    let mut audio_bytes = Vec::new();
    if let Some(audio) = &master.default_audio {
        let a = complete_playlist(server, audio, token).await;
        assert_eq!(
            a.segments.len(),
            media.segments.len(),
            "audio and video share the timeline"
        );
        audio_bytes = fetch_all(server, audio, &a, token).await;
    }
    Played {
        total_s: media.segments.iter().map(|s| s.duration as f64).sum(),
        segments: media.segments.len(),
        durations: media.segments.iter().map(|s| s.duration as f64).collect(),
        segment_bytes,
        audio_bytes,
        variant: master.info,
        playlist_url: master.variant,
    }
}

/// GETs a segment, retrying while the server answers 503 (it is being
/// made; the server waits a bounded time per request).
pub async fn get_segment(server: &TestServer, url: &str, token: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = server.get(url, token).await;
        if r.status() != 503 {
            return r;
        }
        assert!(
            r.headers().contains_key("retry-after"),
            "503 without Retry-After"
        );
        assert!(Instant::now() < deadline, "segment {url} never came");
        tokio::time::sleep(Duration::from_millis(200)).await;
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
