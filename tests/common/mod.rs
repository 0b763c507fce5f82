//! Shared helpers: a real hlsd on 127.0.0.1:0 over a folder of real media,
//! an HTTP client, and a GStreamer decoder for checking segments.
#![allow(dead_code)]

use gst::prelude::*;
use hlsd::config::{Config, UserToken};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub mod library;
pub mod ts_check;

/// Token of user `alice`.
pub const ALICE: &str = "alice-token-0123456789";
/// Token of user `bob`.
pub const BOB: &str = "bob-token-0123456789";

/// The repository's fixtures (made by scripts/make-fixtures.sh).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `../shared/media`, or `None` (with a printed notice) when absent.
pub fn shared_media() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/media");
    if dir.is_dir() {
        Some(dir.canonicalize().expect("canonical shared media"))
    } else {
        eprintln!("NOTICE: ../shared/media is absent; skipping this test");
        None
    }
}

/// The media `tests/media/make-keyframe-media.sh` makes (H.264 with
/// B-frames and irregular GOPs in many containers and muxers), made once
/// into `target/testmedia`; `None`, with a notice, when it cannot be made.
pub fn keyframe_media() -> Option<PathBuf> {
    static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = MADE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/testmedia");
    if !dir.join(".done").exists() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/media/make-keyframe-media.sh");
        let ok = std::process::Command::new("bash")
            .arg(script)
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "NOTICE: cannot make the key-frame test media (ffmpeg missing?); skipping those"
            );
            return None;
        }
    }
    Some(dir)
}

/// The coverage corpus `tests/media/make-coverage-media.sh` makes (files
/// ffmpeg decodes that GStreamer-based servers trip over), made once into
/// `target/coverage-media`; `None`, with a notice, when it cannot be made.
pub fn coverage_media() -> Option<PathBuf> {
    static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = MADE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/coverage-media");
    if !dir.join(".done").exists() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/media/make-coverage-media.sh");
        let ok = std::process::Command::new("bash")
            .arg(script)
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("NOTICE: cannot make the coverage media (ffmpeg missing?); skipping those");
            return None;
        }
    }
    Some(dir)
}

/// Seconds of media ffmpeg decodes from `input` (a file or a URL), from
/// the last `out_time_us` of its progress report, and its stderr; `None`
/// when ffmpeg fails or is not installed.
pub fn decoded_seconds(input: &str) -> Result<f64, String> {
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-progress",
            "pipe:1",
            "-i",
            input,
            "-f",
            "null",
            "-",
        ])
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            stderr.lines().next().unwrap_or("")
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("out_time_us="))
        .filter_map(|v| v.trim().parse::<i64>().ok())
        .next_back()
        .map(|us| us as f64 / 1e6)
        .ok_or_else(|| format!("no progress report: {stderr}"))
}

/// The Chromium binary to drive, when it, playwright-core and hls.js are
/// installed (scripts/setup.sh installs them); `None` with a notice.
pub fn chromium() -> Option<String> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = Path::new(&chromium).is_file()
        && repo.join("web/node_modules/playwright-core").is_dir()
        && repo.join("web/static/vendor/hls.min.js").is_file();
    if !ready {
        eprintln!("NOTICE: chromium, playwright-core or hls.js is not installed (scripts/setup.sh installs them); skipping");
        return None;
    }
    Some(chromium)
}

/// A temporary media dir holding symlinks to `files` (paths), so a test
/// scans only what it uses.
pub fn media_subset(files: &[PathBuf]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp media dir");
    for f in files {
        assert!(
            f.is_file(),
            "missing media file {} (run scripts/make-fixtures.sh)",
            f.display()
        );
        std::os::unix::fs::symlink(f, dir.path().join(f.file_name().unwrap())).expect("symlink");
    }
    dir
}

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
            v.codecs.as_deref().unwrap().contains("mp4a"),
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

/// What decoding a file found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Decoded {
    /// Decoded video frames.
    pub video_frames: u64,
    /// Decoded audio buffers.
    pub audio_buffers: u64,
    /// Width and height of the decoded video.
    pub size: Option<(i32, i32)>,
}

/// Decodes an MPEG-TS segment with GStreamer (`decodebin` into fakesinks).
///
/// # Errors
/// The first error message the pipeline posts.
pub fn decode_ts(bytes: &[u8]) -> Result<Decoded, String> {
    use std::sync::{Arc, Mutex};
    let file = tempfile::Builder::new().suffix(".ts").tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", file.path().to_str().unwrap())
        .build()
        .unwrap();
    let decodebin = gst::ElementFactory::make("decodebin").build().unwrap();
    pipeline.add_many([&src, &decodebin]).unwrap();
    src.link(&decodebin).unwrap();
    let found = Arc::new(Mutex::new(Decoded::default()));
    let pipeline_weak = pipeline.downgrade();
    let found_cb = found.clone();
    decodebin.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let caps = pad.current_caps().unwrap();
        let s = caps.structure(0).unwrap();
        let is_video = s.name().starts_with("video/");
        if is_video {
            let size = (
                s.get::<i32>("width").unwrap_or(0),
                s.get::<i32>("height").unwrap_or(0),
            );
            found_cb.lock().unwrap().size = Some(size);
        }
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .unwrap();
        pipeline.add(&sink).unwrap();
        sink.sync_state_with_parent().unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        let found = found_cb.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            let mut f = found.lock().unwrap();
            if is_video {
                f.video_frames += 1;
            } else {
                f.audio_buffers += 1;
            }
            gst::PadProbeReturn::Ok
        });
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                result = Err(format!("{} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    result.map(|_| *found.lock().unwrap())
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

/// Writes `seconds` of GStreamer test video (320x240 at 30000/1001 fps,
/// moving, MPEG-4 Part 2) and test tone (MP3) into an AVI file in `dir`:
/// a long file on hlsd's transcode path, made in a few seconds.
pub fn make_long_avi(dir: &Path, seconds: u32) -> PathBuf {
    gst::init().unwrap();
    let path = dir.join(format!("long_mpeg4_mp3_{seconds}s.avi"));
    let frames = (seconds as u64 * 30_000).div_ceil(1001);
    let audio_buffers = (seconds as u64 * 44_100).div_ceil(1024);
    let description = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=240,framerate=30000/1001 \
         ! avenc_mpeg4 bitrate=300000 ! queue ! mux. \
         audiotestsrc num-buffers={audio_buffers} samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2 \
         ! lamemp3enc ! queue ! mux. \
         avimux name=mux ! filesink location={}",
        path.display()
    );
    let pipeline = gst::parse::launch(&description).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(120)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("making {}: {}", path.display(), e.error()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    path
}

/// Video packet PTS values (seconds, in presentation order) of an MPEG-TS
/// segment, read with ffprobe; `None` when ffprobe is not installed.
pub fn video_pts(bytes: &[u8]) -> Option<Vec<f64>> {
    stream_pts(bytes, "v")
}

/// Packet PTS values (seconds, sorted) of the `v` or `a` streams of an
/// MPEG-TS segment, read with ffprobe; `None` when ffprobe is not installed.
pub fn stream_pts(bytes: &[u8], kind: &str) -> Option<Vec<f64>> {
    let file = tempfile::Builder::new().suffix(".ts").tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            kind,
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
        ])
        .arg(file.path())
        .output()
        .ok()?;
    let mut pts: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    pts.sort_by(f64::total_cmp);
    Some(pts)
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

/// A media dir holding one [`make_long_avi`] file of `seconds`; returns the
/// dir and the file's name.
pub async fn long_avi_dir(seconds: u32) -> (tempfile::TempDir, String) {
    let media = tempfile::tempdir().unwrap();
    let dir = media.path().to_path_buf();
    let file = tokio::task::spawn_blocking(move || make_long_avi(&dir, seconds))
        .await
        .unwrap();
    let name = file.file_name().unwrap().to_str().unwrap().to_string();
    (media, name)
}

/// Asserts `r` is a 503 `at_capacity` with `Retry-After`; returns its message.
pub async fn assert_at_capacity(r: reqwest::Response) -> String {
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "at_capacity");
    body["error"]["message"].as_str().unwrap().to_string()
}
