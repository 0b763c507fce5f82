//! A real PostgreSQL for a test: Debian's `postgresql` server, made with
//! `initdb` in a temp dir and started with `pg_ctl` on a free loopback
//! port, as the unprivileged `postgres` user when the test runs as root
//! (the server refuses to run as root). Stopped and deleted on drop.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One PostgreSQL server.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The OS user it runs as, when started as root.
    run_as: Option<String>,
    running: bool,
}

/// The newest `/usr/lib/postgresql/N/bin`, or `None` with a notice.
fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|b| b.join("initdb").exists() && b.join("pg_ctl").exists());
    found.sort();
    if found.is_empty() {
        super::skip("PostgreSQL is not installed (scripts/setup.sh installs postgresql)");
    }
    found.pop()
}

impl Postgres {
    /// Makes and starts a new server; `None` (a skip) when PostgreSQL is
    /// not installed.
    pub fn start() -> Option<Postgres> {
        let bin = server_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("hlsd-pg-")
            .tempdir()
            .expect("temp dir");
        let run_as = (effective_uid() == 0).then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let (uid, gid) = user_ids(user);
            chown(dir.path(), Some(uid), Some(gid)).expect("chown the server's dir");
        }
        let mut pg = Postgres {
            bin,
            dir,
            port: super::cluster::free_port(),
            run_as,
            running: false,
        };
        let data = pg.data().display().to_string();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "hlsd",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.start_again();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `postgres://hlsd@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://hlsd@127.0.0.1:{}/postgres", self.port)
    }

    /// One of the server's programs, run as its user.
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        }
    }

    /// Runs one of the server's programs (as its user), asserting success.
    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log.txt")).unwrap_or_default()
        );
    }

    /// Starts the server (again, after [`Self::stop_immediately`]) and
    /// waits until it accepts connections.
    pub fn start_again(&mut self) {
        let data = self.data().display().to_string();
        let log = self.dir.path().join("log.txt").display().to_string();
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-o", &options, "-w", "start"],
        );
        self.running = true;
    }

    /// `pg_ctl stop -m immediate`: the server dies at once, as on a crash
    /// (committed transactions are recovered from the WAL at the next
    /// start).
    pub fn stop_immediately(&mut self) {
        let data = self.data().display().to_string();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
        self.running = false;
    }

    /// The temp dir everything is in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data().display().to_string();
            let exe = self.bin.join("pg_ctl");
            let mut command = match &self.run_as {
                Some(user) => {
                    let mut c = Command::new("runuser");
                    c.args(["-u", user, "--"]).arg(&exe);
                    c
                }
                None => Command::new(&exe),
            };
            let _ = command
                .args(["-D", &data, "-m", "immediate", "stop"])
                .output();
        }
    }
}

/// This process's effective user id, from `/proc/self/status`.
fn effective_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// The uid and gid of `user`, from `id`.
fn user_ids(user: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, user])
            .output()
            .expect("id runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no user {user}: the postgresql package makes it"))
    };
    (id("-u"), id("-g"))
}
