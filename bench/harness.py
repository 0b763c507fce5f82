"""What every benchmark here shares: HTTP as a client, process figures, and a
release hlsd on a free loopback port (its own transcode and data dirs)."""
import json
import os
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "bench-token-0123456789"  # hlsd refuses tokens under 16 characters


def user_token(user):
    """The token of a bench user."""
    return TOKEN if user == "bench" else f"{user}-token-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url, method="GET", body=None, token=TOKEN, timeout=30):
    req = urllib.request.Request(url, method=method, data=body)
    req.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def library_is_ready(lib):
    """Whether /healthz's "library" says it is compared with the disk and probed."""
    return bool(lib.get("reconciled")) and lib.get("pending") == 0 and lib.get("settling") == 0


def library_ready(base):
    """Whether /healthz says the library is compared with the disk and probed."""
    try:
        status, body = http(base + "/healthz", timeout=2)
    except OSError:
        return False
    return status == 200 and library_is_ready(json.loads(body).get("library", {}))


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fetch_segment(url, token=TOKEN):
    """GETs a segment; a seekable session answers 503 while it is being made
    (after waiting up to 8 s itself), so retry. Its bytes."""
    while True:
        status, data = http(url, token=token)
        if status == 200 and data:
            return data
        assert status == 503, (status, data[:200])
        time.sleep(0.05)


def playlists(base, master_url, token=TOKEN):
    """The media playlist URLs a master playlist lists: (variant, [audio])."""
    url = base + master_url
    _, text = http(url, token=token)
    lines = text.decode().splitlines()
    variant = urllib.parse.urljoin(url, [l for l in lines if l and not l.startswith("#")][0])
    audio = [urllib.parse.urljoin(url, re.search(r'URI="([^"]+)"', l).group(1))
             for l in lines if l.startswith("#EXT-X-MEDIA:TYPE=AUDIO")]
    return variant, audio


def segment_urls(playlist_url, token=TOKEN):
    """Every segment URL of a media playlist (waiting for a first one)."""
    while True:
        status, body = http(playlist_url, token=token)
        if status == 200 and b"#EXTINF" in body:
            return [urllib.parse.urljoin(playlist_url, l) for l in body.decode().splitlines()
                    if l and not l.startswith("#")]
        time.sleep(0.02)


class RssSampler(threading.Thread):
    """Samples a process's RSS every 10 ms; keeps the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.01)

    def stop(self):
        self.running = False
        self.join()
        return self.peak


class Hlsd:
    """A release hlsd on a loopback port (a free one unless given) over the
    bench media."""

    def __init__(self, binary, media, users=("bench",), extra=(), port=None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tmp = tempfile.mkdtemp(prefix="hlsd-bench-")
        users = ["bench", *[u for u in users if u != "bench"]]  # "bench" lists the media
        tokens = [f"--token={u}:{user_token(u)}" for u in users]
        self.log = open(os.path.join(self.tmp, "hlsd.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "--media-dir", media, "--addr", f"127.0.0.1:{self.port}",
             "--transcode-dir", os.path.join(self.tmp, "sessions"),
             "--data-dir", os.path.join(self.tmp, "data"), *tokens,
             # Sections start many titles as user "bench", one after another.
             "--max-sessions-per-user", "1000", *extra],
            stdout=subprocess.DEVNULL, stderr=self.log, cwd=ROOT,
            env={**os.environ, "NO_COLOR": "1", "RUST_LOG": os.environ.get("BENCH_RUST_LOG", "hlsd=warn")})
        deadline = time.monotonic() + 60
        while not library_ready(self.base):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("hlsd did not start; see " + self.log.name)
            time.sleep(0.05)
        _, body = http(self.base + "/api/v1/media?limit=1000")
        self.ids = {m["path"]: m["id"] for m in json.loads(body)["items"]}

    def start(self, path, token=TOKEN):
        status, body = http(self.base + "/api/v1/hls/start", "POST",
                            json.dumps({"media_id": self.ids[path]}).encode(), token)
        assert status == 200, body
        return json.loads(body)

    def sessions(self, token=TOKEN):
        return json.loads(http(self.base + "/api/v1/sessions", token=token)[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

def wrk(url, header=None, seconds=10):
    """wrk (2 threads, 64 connections) on `url`: (requests/s, p99 ms)."""
    cmd = ["wrk", "-t2", "-c64", f"-d{seconds}s", "--latency", url]
    if header:
        cmd[1:1] = ["-H", header]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99_ms = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    if "Non-2xx or 3xx responses" in out:
        raise RuntimeError("wrk saw errors:\n" + out)
    return rps, p99_ms


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None

def med(xs):
    return statistics.median(xs)


def release_binary(argv):
    """The hlsd binary a standalone benchmark runs: argv[1], else a release
    build of this checkout."""
    if len(argv) > 1:
        return argv[1]
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "hlsd")
