//! The real binary as an operator runs it: SIGTERM with producers running,
//! a restart after SIGKILL, tokens kept out of the logs, and the web page
//! with hls.js served from the binary itself in an empty directory.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `hlsd` binary, its stderr in a file.
struct Proc {
    child: Child,
    base: String,
    log: PathBuf,
}

fn spawn(media: &Path, transcode: &Path, log: &Path, rust_log: &str) -> Proc {
    let child = Command::new(env!("CARGO_BIN_EXE_hlsd"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--token",
            &format!("alice:{ALICE}"),
        ])
        .arg("--media-dir")
        .arg(media)
        .arg("--transcode-dir")
        .arg(transcode)
        .arg("--data-dir")
        .arg(transcode.with_file_name("data"))
        .env("RUST_LOG", rust_log)
        .env("NO_COLOR", "1")
        // Not the repository: nothing of it may be needed at run time.
        .current_dir(transcode.parent().unwrap())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    // The bound port is logged ("serving addr=127.0.0.1:PORT").
    let deadline = Instant::now() + Duration::from_secs(30);
    let base = loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(at) = text.find("serving") {
            let rest = &text[at..];
            let start = rest.find("127.0.0.1:").expect("address logged");
            let port: String = rest[start + 10..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            break format!("http://127.0.0.1:{port}");
        }
        assert!(Instant::now() < deadline, "hlsd did not start: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    wait_library(&base);
    Proc {
        child,
        base,
        log: log.to_path_buf(),
    }
}

/// Waits until `/healthz` says the library is compared with the disk and
/// probed (the server answers before that).
fn wait_library(base: &str) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut body = String::new();
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = write!(
                s,
                "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            let _ = s.read_to_string(&mut body);
        }
        let json = body.split("\r\n\r\n").nth(1).unwrap_or_default();
        if serde_json::from_str(json).is_ok_and(|h| library_ready(&h)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the library was not ready: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn session_dirs(transcode: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(transcode)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default()
}

async fn start_session(base: &str, file: &str) -> serde_json::Value {
    let server = TestServer::remote(base);
    let id = server.media_id(file).await;
    server.start_hls(&id, ALICE).await
}

/// Finished segments anywhere under `dir`.
fn segments_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| {
                    if e.path().is_dir() {
                        segments_under(&e.path())
                    } else {
                        usize::from(e.file_name().to_string_lossy().ends_with(".ts"))
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Waits until the segment store holds segments of `titles` titles.
async fn wait_segment(transcode: &Path, titles: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let store = transcode.join("store");
        let made = session_dirs(&store)
            .iter()
            .filter(|t| segments_under(t) > 0)
            .count();
        if made >= titles {
            return;
        }
        assert!(Instant::now() < deadline, "no segment made");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_sessions_running_exits_in_seconds_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let transcode = tmp.path().join("sessions");
    let p = spawn(
        &fixtures_dir(),
        &transcode,
        &tmp.path().join("log"),
        "hlsd=info",
    );
    start_session(&p.base, "transcode_vp8_vorbis_20s.webm").await;
    start_session(&p.base, "remux_h264_aac.mkv").await;
    wait_segment(&transcode, 2).await;
    assert_eq!(session_dirs(&transcode), vec![transcode.join("store")]);

    let t0 = Instant::now();
    let mut child = p.child;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("hlsd did not exit within 15 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    println!("exited {status} {:?} after SIGTERM", t0.elapsed());
    assert!(status.success(), "{status}");
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "exit took {:?}",
        t0.elapsed()
    );
    assert!(
        session_dirs(&transcode).is_empty(),
        "{:?}",
        session_dirs(&transcode)
    );
    let log = std::fs::read_to_string(&p.log).unwrap();
    assert_eq!(
        log.matches("reason=\"shutdown\"").count() + log.matches("reason=shutdown").count(),
        2,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_sigkill_sweeps_the_folders_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let transcode = tmp.path().join("sessions");
    let p = spawn(
        &fixtures_dir(),
        &transcode,
        &tmp.path().join("log1"),
        "hlsd=info",
    );
    start_session(&p.base, "transcode_vp8_vorbis_20s.webm").await;
    wait_segment(&transcode, 1).await;
    let mut child = p.child;
    child.kill().unwrap(); // SIGKILL: no cleanup at all
    child.wait().unwrap();
    let left = session_dirs(&transcode);
    assert_eq!(
        left,
        vec![transcode.join("store")],
        "a crash leaves its store"
    );
    // A session folder of an older hlsd is swept too.
    std::fs::create_dir(transcode.join(uuid::Uuid::new_v4().to_string())).unwrap();
    // An operator's own file in the transcode dir is not touched.
    std::fs::write(transcode.join("keep-me.txt"), b"x").unwrap();

    let mut p = spawn(
        &fixtures_dir(),
        &transcode,
        &tmp.path().join("log2"),
        "hlsd=info",
    );
    assert_eq!(
        session_dirs(&transcode),
        vec![transcode.join("keep-me.txt")],
        "swept at start-up"
    );
    let log = std::fs::read_to_string(&p.log).unwrap();
    assert!(
        log.contains("deleted the segment store left by an earlier run"),
        "{log}"
    );
    assert!(
        log.contains("deleted session folders left by an earlier run"),
        "{log}"
    );
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_in_the_query_never_reach_the_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let transcode = tmp.path().join("sessions");
    let wrong = "wrong-secret-4711";
    // Everything hlsd and warp log, at the most verbose level.
    let mut p = spawn(
        &fixtures_dir(),
        &transcode,
        &tmp.path().join("log"),
        "hlsd=trace,warp=trace",
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{}{path}", p.base);
        async move { client.get(url).send().await.unwrap() }
    };
    assert_eq!(
        get(format!("/api/v1/media?api_key={ALICE}")).await.status(),
        200
    );
    assert_eq!(
        get(format!("/api/v1/media?api_key={wrong}")).await.status(),
        401
    );
    let media: serde_json::Value = get(format!("/api/v1/media?api_key={ALICE}"))
        .await
        .json()
        .await
        .unwrap();
    let id = media["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == "remux_h264_aac.mkv")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = get(format!("/api/v1/stream/{id}?mode=hls&api_key={ALICE}")).await;
    assert_eq!(r.status(), 302);
    let master = r.headers()["location"].to_str().unwrap().to_string();
    // Signed: it needs no account token, and nothing without its own.
    assert!(
        master.contains("token=") && !master.contains(ALICE),
        "{master}"
    );
    assert_eq!(get(master.clone()).await.status(), 200);
    let unsigned = master.split('?').next().unwrap().to_string();
    assert_eq!(get(unsigned).await.status(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let log = std::fs::read_to_string(&p.log).unwrap();
    assert!(log.lines().count() > 5, "the log has content: {log}");
    for secret in [ALICE, wrong] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resetting_its_connection_is_no_error_in_the_log() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    // Every crate at WARN and above (warp logged resets at ERROR).
    let transcode = tmp.path().join("sessions");
    let mut p = spawn(
        &fixtures_dir(),
        &transcode,
        &tmp.path().join("log"),
        "warn,hlsd=debug",
    );
    let id = TestServer::remote(&p.base)
        .media_id("direct_h264_aac.mp4")
        .await;
    let addr = p.base.trim_start_matches("http://").to_string();
    // Players that read the start of a direct-play answer and go, with a
    // reset (SO_LINGER 0) rather than a close.
    for _ in 0..3 {
        let addr = addr.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            write!(
                s,
                "GET /api/v1/stream/{id} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALICE}\r\n\r\n"
            )
            .unwrap();
            let mut head = [0u8; 1024];
            let n = s.read(&mut head).unwrap();
            assert!(head[..n].starts_with(b"HTTP/1.1 200"));
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        })
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    let log = std::fs::read_to_string(&p.log).unwrap();
    let closed = log
        .lines()
        .filter(|l| l.contains("closed its connection"))
        .count();
    assert!(closed >= 1, "the resets are logged at DEBUG:\n{log}");
    let errors: Vec<_> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// The binary over `fixtures/` on a free port with one `USER:TOKEN`, its
/// transcode and data dirs in `tmp`.
fn hlsd_over_fixtures(tmp: &Path, token: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hlsd"));
    command
        .args(["--addr", "127.0.0.1:0", "--token", token])
        .arg("--media-dir")
        .arg(fixtures_dir())
        .arg("--transcode-dir")
        .arg(tmp.join("sessions"))
        .arg("--data-dir")
        .arg(tmp.join("data"));
    command
}

#[test]
fn a_token_under_16_characters_is_refused_at_start_up() {
    let tmp = tempfile::tempdir().unwrap();
    let out = hlsd_over_fixtures(tmp.path(), "alice:short-token")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alice") && err.contains("shorter than 16 characters"),
        "{err}"
    );
}

/// A kept signing secret that other users can read is refused at
/// start-up, with what to do; so is a file that holds no secret.
#[test]
fn a_kept_secret_others_can_read_is_refused_at_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let kept = data.join("signing-secret");
    let start = || {
        hlsd_over_fixtures(tmp.path(), &format!("alice:{ALICE}"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    std::fs::write(&kept, "A".repeat(43)).unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = start();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("can be read by other users") && err.contains("chmod 600"),
        "{err}"
    );
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&kept, "not a secret").unwrap();
    let out = start();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("does not hold a signing secret"), "{err}");
}

/// The log lines the binary writes to a file (not a terminal) until it
/// serves, with `args`; NO_COLOR is not set.
fn startup_log(args: &[&str]) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("hlsd.log");
    let mut child = hlsd_over_fixtures(tmp.path(), &format!("alice:{ALICE}"))
        .args(args)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "hlsd=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("serving") {
            break text;
        }
        assert!(Instant::now() < deadline, "hlsd did not start: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    text
}

#[test]
fn a_log_written_to_a_file_has_no_colour_codes_and_json_lines_parse() {
    let text = startup_log(&[]);
    assert!(text.contains("hlsd starting"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "ANSI escapes in a redirected log: {text:?}"
    );

    let json = startup_log(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 2);
    let start = lines
        .iter()
        .find(|l| l["message"] == "hlsd starting")
        .expect("the start-up line");
    assert_eq!(start["level"], "INFO");
    assert!(start["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(start["timestamp"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_hls_js_come_from_the_binary_in_an_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let media = tmp.path().join("media");
    std::fs::create_dir(&media).unwrap();
    let transcode = tmp.path().join("sessions");
    let log = tmp.path().join("hlsd.log");
    let mut proc = spawn(&media, &transcode, &log, "hlsd=info");
    assert!(!tmp.path().join("web").exists(), "no page files beside it");
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{}{path}", proc.base)).send();
    let page = get("/").await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("/static/vendor/hls.min.js"), "{html}");
    let app = get("/static/app.js").await.unwrap();
    assert_eq!(app.status(), 200);
    assert!(app.text().await.unwrap().contains("isTypeSupported"));
    let hls = get("/static/vendor/hls.min.js").await.unwrap();
    assert_eq!(
        hls.status(),
        200,
        "hls.js is built in (scripts/setup.sh copies it before the build)"
    );
    assert!(hls.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    let js = hls.bytes().await.unwrap();
    assert!(js.len() > 100_000, "{} bytes", js.len());
    assert!(String::from_utf8_lossy(&js).contains("isSupported"));
    for missing in [
        "/static/nope.js",
        "/static/../Cargo.toml",
        "/static/%2e%2e/Cargo.toml",
    ] {
        assert_eq!(get(missing).await.unwrap().status(), 404, "{missing}");
    }
    proc.child.kill().unwrap();
    proc.child.wait().unwrap();
}

/// A prober child (what a hostile file may crash) turns core dumps off for
/// itself, however the machine allows them: no core file of its memory
/// lands in the server's working directory.
#[test]
fn a_prober_child_turns_core_dumps_off() {
    use std::io::{BufRead, Write};
    let mut child = Command::new("prlimit")
        .args(["--core=unlimited", "--"])
        .arg(env!("CARGO_BIN_EXE_hlsd"))
        .args(["probe", "--worker"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux) runs");
    // Once it answers a request, it has set itself up.
    let file = fixtures_dir().join("remux_h264_aac.mkv");
    let request = serde_json::json!({ "path": file.to_str().unwrap() });
    writeln!(child.stdin.as_mut().unwrap(), "{request}").unwrap();
    let mut reply = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut reply)
        .unwrap();
    assert!(reply.contains("h264"), "{reply}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap()
        .to_string();
    let _ = child.kill();
    let _ = child.wait();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(fields[4..6], ["0", "0"], "{core}");
}
