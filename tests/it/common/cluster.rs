//! Several hlsd processes behind Debian's nginx on loopback (docs/deployment.md,
//! "Scaling out"): nodes started from the built binary on fixed ports, so
//! that one can be killed and started again in its place, sharing one
//! `--secret` and one media folder; nginx in a prefix of its own running
//! `deploy/nginx.conf` with only its lines marked `# local` changed.

use super::{library_ready, ALICE, BOB};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `--secret` every node shares.
pub const SECRET: &str = "scale-out-secret-shared-by-every-node";

/// A free loopback TCP port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Debian's nginx, or `None` with a notice when it is not installed.
pub fn nginx_binary() -> Option<PathBuf> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        super::skip("nginx is not installed (scripts/setup.sh installs it)");
    }
    found
}

/// One hlsd node: a child process on a fixed loopback port.
pub struct Node {
    /// Its `--node-name` (what `X-Hlsd-Node` says).
    pub name: String,
    /// Its port on 127.0.0.1.
    pub port: u16,
    media: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
    /// Whether it is given the shared `--secret` (else it keeps its own).
    shared_secret: bool,
    /// Further arguments (`--database URL`).
    extra: Vec<String>,
}

impl Node {
    /// Starts node `name` on `port` over `media`, its transcode and data
    /// dirs and logs under `dir`; waits until its library is ready.
    pub async fn start(name: &str, port: u16, media: &Path, dir: &Path) -> Node {
        Node::start_with(name, port, media, dir, true).await
    }

    /// Launches node `name` as [`Self::start`] does, with `extra`
    /// arguments, without waiting: [`Self::ready`] waits.
    pub fn launch(name: &str, port: u16, media: &Path, dir: &Path, extra: &[&str]) -> Node {
        let mut node = Node::new(name, port, media, dir, true);
        node.extra = extra.iter().map(|a| a.to_string()).collect();
        node.spawn_child();
        node
    }

    /// [`Self::start`] without `--secret`: the node signs with the secret
    /// it keeps in its data dir, as a single node does.
    pub async fn start_alone(name: &str, port: u16, media: &Path, dir: &Path) -> Node {
        Node::start_with(name, port, media, dir, false).await
    }

    async fn start_with(
        name: &str,
        port: u16,
        media: &Path,
        dir: &Path,
        shared_secret: bool,
    ) -> Node {
        let mut node = Node::new(name, port, media, dir, shared_secret);
        node.spawn().await;
        node
    }

    fn new(name: &str, port: u16, media: &Path, dir: &Path, shared_secret: bool) -> Node {
        Node {
            name: name.to_string(),
            port,
            media: media.to_path_buf(),
            dir: dir.join(name),
            child: None,
            starts: 0,
            shared_secret,
            extra: Vec::new(),
        }
    }

    /// Its data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        self.spawn_child();
        self.ready().await;
    }

    fn log(&self) -> PathBuf {
        self.dir.join(format!("log-{}.txt", self.starts))
    }

    /// Starts the process.
    fn spawn_child(&mut self) {
        std::fs::create_dir_all(&self.dir).unwrap();
        self.starts += 1;
        let log = self.dir.join(format!("log-{}.txt", self.starts));
        let mut command = Command::new(env!("CARGO_BIN_EXE_hlsd"));
        if self.shared_secret {
            command.args(["--secret", SECRET]);
        }
        let child = command
            .arg("--addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["--token", &format!("alice:{ALICE}")])
            .args(["--token", &format!("bob:{BOB}")])
            .args(["--node-name", &self.name])
            .args(["--metrics-public", "--settle-ms", "300"])
            .arg("--media-dir")
            .arg(&self.media)
            .arg("--transcode-dir")
            .arg(self.dir.join("transcode"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.extra)
            .env("RUST_LOG", "hlsd=info")
            .env("NO_COLOR", "1")
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("hlsd starts");
        self.child = Some(child);
    }

    /// Waits until its library is ready (listed and probed).
    pub async fn ready(&mut self) {
        let log = self.log();
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let health: Option<Value> =
                match client.get(format!("{}/healthz", self.base())).send().await {
                    Ok(r) if r.status() == 200 => r.json().await.ok(),
                    _ => None,
                };
            if health.is_some_and(|h| library_ready(&h)) {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(
                exited.is_none(),
                "node {} exited ({exited:?}); its log:\n{}",
                self.name,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            assert!(
                Instant::now() < deadline,
                "node {} was not ready; its log:\n{}",
                self.name,
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the node dies at once, mid-request, as a crashed machine.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Replaces its further arguments for its next start.
    pub fn set_args(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|a| a.to_string()).collect();
    }

    /// Waits up to `within` for the process to exit by itself: its exit
    /// code and its log, or `None` when it still runs.
    pub fn exited_within(&mut self, within: Duration) -> Option<(Option<i32>, String)> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some((
                    status.code(),
                    std::fs::read_to_string(self.log()).unwrap_or_default(),
                ));
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again on the same port, dirs and name.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// The sum of every sample of Prometheus counter `name` on this node
    /// (all labels), read directly, not through nginx.
    pub async fn counter(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.base()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One line of nginx's access log, in the test's format.
#[derive(Debug, Clone)]
pub struct Access {
    /// When the response was sent, seconds since the Unix epoch.
    pub at_s: f64,
    /// The status the client got.
    pub status: u16,
    /// The request URI, query included.
    pub uri: String,
    /// Every upstream tried (`127.0.0.1:8091, 127.0.0.1:8092`), or `-`.
    pub upstream: String,
    /// `HIT`, `MISS`, or `-` where no cache applies.
    pub cache: String,
}

impl Access {
    /// Whether this is a request for a segment (`.ts`) of item `media_id`.
    pub fn is_segment_of(&self, media_id: &str) -> bool {
        self.uri
            .starts_with(&format!("/api/v1/hls/media/{media_id}/"))
            && self.uri.split('?').next().unwrap_or("").ends_with(".ts")
    }

    /// The port of the upstream that answered last, if any.
    pub fn answered_by(&self) -> Option<u16> {
        self.upstream
            .rsplit(", ")
            .next()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    }
}

/// nginx in its own prefix, in front of the nodes, running
/// `deploy/nginx.conf`.
pub struct Nginx {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    prefix: PathBuf,
    child: Child,
}

impl Nginx {
    /// Starts `binary` in `prefix` on a free port, in front of `nodes`
    /// (ports), as a foreground process; waits until it answers.
    pub async fn start(binary: &Path, prefix: &Path, nodes: &[u16]) -> Nginx {
        let port = free_port();
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf");
        let site = local_site(
            &std::fs::read_to_string(deploy).unwrap(),
            port,
            nodes,
            &prefix.join("cache"),
        );
        std::fs::write(prefix.join("hlsd.conf"), site).unwrap();
        let p = prefix.display();
        let main = format!(
            "daemon off;\n\
             worker_processes 1;\n\
             pid {p}/nginx.pid;\n\
             error_log {p}/logs/error.log warn;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
               log_format hlsd '$msec $status \"$request_uri\" \"$upstream_addr\" $upstream_cache_status';\n\
               access_log {p}/logs/access.log hlsd;\n\
               client_body_temp_path {p}/tmp/body;\n\
               proxy_temp_path {p}/tmp/proxy;\n\
               fastcgi_temp_path {p}/tmp/fastcgi;\n\
               uwsgi_temp_path {p}/tmp/uwsgi;\n\
               scgi_temp_path {p}/tmp/scgi;\n\
               include {p}/hlsd.conf;\n\
             }}\n"
        );
        std::fs::create_dir_all(prefix.join("tmp")).unwrap();
        std::fs::write(prefix.join("nginx.conf"), main).unwrap();
        // nginx in this prefix with this config: `-t` checks it, then it runs.
        let command = || {
            let mut c = Command::new(binary);
            c.arg("-p")
                .arg(prefix)
                .arg("-e")
                .arg(prefix.join("logs/error.log"))
                .arg("-c")
                .arg(prefix.join("nginx.conf"));
            c
        };
        let check = command().arg("-t").output().unwrap();
        assert!(
            check.status.success(),
            "nginx -t refuses the config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let child = command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx {
            base: format!("http://127.0.0.1:{port}"),
            prefix: prefix.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut nginx = nginx;
        while reqwest::get(format!("{}/healthz", nginx.base))
            .await
            .is_err()
        {
            let exited = nginx.child.try_wait().ok().flatten();
            assert!(
                Instant::now() < deadline && exited.is_none(),
                "nginx did not come up ({exited:?}): {}",
                nginx.error_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nginx
    }

    /// Every line of its access log so far.
    pub fn access_log(&self) -> Vec<Access> {
        let text = std::fs::read_to_string(self.prefix.join("logs/access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (at, rest) = line.split_once(' ')?;
                let (status, rest) = rest.split_once(' ')?;
                let mut quoted = rest.split('"');
                let _ = quoted.next()?;
                let uri = quoted.next()?.to_string();
                let _ = quoted.next()?;
                let upstream = quoted.next()?.to_string();
                let cache = quoted.next()?.trim().to_string();
                Some(Access {
                    at_s: at.parse().ok()?,
                    status: status.parse().ok()?,
                    uri,
                    upstream,
                    cache,
                })
            })
            .collect()
    }

    /// The pids of its master's children (its workers, cache manager and
    /// loader), from `/proc`.
    pub fn children(&self) -> Vec<u32> {
        let master = self.child.id().to_string();
        std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|pid| {
                        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                            stat.rsplit_once(") ")
                                .and_then(|(_, rest)| {
                                    rest.split(' ').nth(1).map(|ppid| ppid == master)
                                })
                                .unwrap_or(false)
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The end of its error log (for a failing test's message).
    pub fn error_log(&self) -> String {
        let text = std::fs::read_to_string(self.prefix.join("logs/error.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Nginx {
    /// SIGTERM: nginx's fast shutdown, in which the master stops its
    /// workers (a SIGKILLed master would leave them running).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// `deploy/nginx.conf` with its `# local` lines pointed at loopback:
/// nginx listening on `port`, the upstream's servers at `nodes` (one line
/// each, in order; as many as the file lists), the cache in `cache`.
///
/// # Panics
/// When the file's `# local` lines are not the ones this knows (the test
/// would no longer run the file as shipped).
pub fn local_site(conf: &str, port: u16, nodes: &[u16], cache: &Path) -> String {
    let mut servers = nodes.iter();
    let mut changed = 0;
    let out: Vec<String> = conf
        .lines()
        .map(|line| {
            if !line.trim_end().ends_with("# local") {
                return line.to_string();
            }
            changed += 1;
            let t = line.trim_start();
            let indent = &line[..line.len() - t.len()];
            if t.starts_with("proxy_cache_path ") {
                let path = t.split_whitespace().nth(1).unwrap();
                line.replacen(path, &cache.display().to_string(), 1)
            } else if t.starts_with("listen ") {
                format!("{indent}listen 127.0.0.1:{port};")
            } else if let Some(rest) = t.strip_prefix("server 127.0.0.1:") {
                let options = rest.split_once(' ').map_or(";", |(_, o)| o);
                let port = servers.next().expect("as many nodes as server lines");
                format!("{indent}server 127.0.0.1:{port} {options}")
            } else {
                panic!("deploy/nginx.conf: unknown local line {line:?}")
            }
        })
        .collect();
    assert!(servers.next().is_none(), "more nodes than server lines");
    assert_eq!(
        changed,
        2 + nodes.len(),
        "the cache path, the port, the nodes"
    );
    out.join("\n")
}
