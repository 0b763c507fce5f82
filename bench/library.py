"""The library benchmark: a library of N links (default 10,000) to the media
files of ../shared/media, in folders of 100, as a release hlsd sees it.

Reports, as a client sees them:
  * first start (empty catalogue): time until /healthz answers (serving),
    and until every file is probed;
  * restart (full catalogue): time until /healthz answers, until
    GET /api/v1/media lists all N items, and the probes it made (target 0);
  * a new file copied in while the server runs: time from the copy to its
    first segment's bytes (target <= 5 s on a local disk);
  * RSS per item: RSS after the restart with N items, less RSS with an empty
    library, over N (target <= 4 KB).

Asserts nothing: it is not a test. Used by bench.py (section "library").
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from harness import ROOT, TOKEN, NoRedirect, free_port, http, library_is_ready, rss_kib

SHARED = os.path.join(ROOT, "..", "shared", "media")
NEW_FILE = "derived_h264_aac51_bbb_720p.mkv"  # remux: H.264 + AAC 5.1 in MKV
MEDIA_EXT = {".mkv", ".mp4", ".mov", ".avi", ".ts", ".mts", ".mpg", ".webm", ".ogv", ".3gp", ".flac", ".mp3"}


def make_library(root, n):
    sources = sorted(os.path.join(SHARED, f) for f in os.listdir(SHARED)
                     if os.path.splitext(f)[1].lower() in MEDIA_EXT)
    for i in range(n):
        src = sources[i % len(sources)]
        folder = os.path.join(root, f"folder{i // 100:03d}")
        os.makedirs(folder, exist_ok=True)
        os.symlink(src, os.path.join(folder, f"item{i:05d}{os.path.splitext(src)[1]}"))


class Server:
    def __init__(self, binary, media, data, tmp, extra=()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(tmp, f"hlsd-{self.port}.log"), "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [binary, "--media-dir", media, "--addr", f"127.0.0.1:{self.port}",
             "--transcode-dir", os.path.join(tmp, f"sessions-{self.port}"), "--data-dir", data,
             f"--token=bench:{TOKEN}", "--admin", "bench", *extra],
            stdout=subprocess.DEVNULL, stderr=self.log,
            env={**os.environ, "NO_COLOR": "1", "RUST_LOG": os.environ.get("BENCH_RUST_LOG", "hlsd=warn")})

    def health(self):
        try:
            status, body = http(self.base + "/healthz", timeout=2)
            return json.loads(body)["library"] if status == 200 else None
        except OSError:
            return None

    def wait(self, check, limit=3600):
        while True:
            h = self.health()
            if h is not None and check(h):
                return time.monotonic() - self.started
            if self.proc.poll() is not None or time.monotonic() - self.started > limit:
                raise RuntimeError("hlsd stopped or timed out; see " + self.log.name)
            time.sleep(0.02)

    def probes(self):
        _, body = http(self.base + "/metrics")
        return sum(float(l.rsplit(" ", 1)[1]) for l in body.decode().splitlines()
                   if l.startswith("hlsd_library_probes_total{"))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()


def settled_rss(pid):
    time.sleep(2)
    return rss_kib(pid)


def first_segment_after_copy(server, media):
    """Copies NEW_FILE in; seconds until its first segment's bytes."""
    name = "new-arrival.mkv"
    t0 = time.monotonic()
    shutil.copy(os.path.join(SHARED, NEW_FILE), os.path.join(media, name))
    item = None
    while item is None:
        _, body = http(server.base + "/api/v1/media?q=new-arrival&limit=5")
        found = [m for m in json.loads(body)["items"] if m["path"] == name and m["probed"]]
        item = found[0] if found else None
        if item is None:
            time.sleep(0.05)
    listed = time.monotonic() - t0
    status, master = http_noredirect(server.base + f"/api/v1/stream/{item['id']}")
    assert status == 302, status
    _, text = http(server.base + master)
    variant = urllib.parse.urljoin(server.base + master,
                                   [l for l in text.decode().splitlines() if l and not l.startswith("#")][0])
    segment = variant.replace("playlist.m3u8", "segment_00000.ts")
    while True:
        status, body = http(segment)
        if status == 200 and body:
            return listed, time.monotonic() - t0
        time.sleep(0.05)


def http_noredirect(url):
    req = urllib.request.Request(url)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return r.status, r.headers.get("Location")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Location")


def run(binary, n=10000):
    tmp = tempfile.mkdtemp(prefix="hlsd-bench-library-")
    try:
        media, empty = os.path.join(tmp, "media"), os.path.join(tmp, "empty")
        os.makedirs(media)
        os.makedirs(empty)
        make_library(media, n)
        r = {"files": n}

        s = Server(binary, empty, os.path.join(tmp, "data-empty"), tmp)
        s.wait(library_is_ready)
        r["rss_empty_kib"] = settled_rss(s.proc.pid)
        s.stop()

        data = os.path.join(tmp, "data")
        s = Server(binary, media, data, tmp)
        r["first_start_serving_s"] = s.wait(lambda h: True)
        r["first_start_all_probed_s"] = s.wait(lambda h: library_is_ready(h) and h["items"] == n)
        r["first_start_probes"] = s.probes()
        r["rss_after_probing_kib"] = settled_rss(s.proc.pid)
        print(f"  library first start: serving after {r['first_start_serving_s']:.2f} s, "
              f"{n} files probed after {r['first_start_all_probed_s']:.1f} s", flush=True)
        s.stop()

        s = Server(binary, media, data, tmp)
        r["restart_serving_s"] = s.wait(lambda h: True)

        def listed_all():
            try:
                status, body = http(s.base + "/api/v1/media?limit=1", timeout=2)
            except OSError:
                return False
            return status == 200 and json.loads(body)["total"] == n
        while not listed_all():
            time.sleep(0.01)
        r["restart_full_list_s"] = time.monotonic() - s.started
        s.wait(library_is_ready)
        r["restart_probes"] = s.probes()
        r["rss_restart_kib"] = settled_rss(s.proc.pid)
        r["rss_per_item_bytes"] = (r["rss_restart_kib"] - r["rss_empty_kib"]) * 1024 / n
        r["new_file_listed_s"], r["new_file_first_segment_s"] = first_segment_after_copy(s, media)
        print(f"  library restart: full list after {r['restart_full_list_s']:.2f} s with {r['restart_probes']:.0f} probes; "
              f"new file's first segment after {r['new_file_first_segment_s']:.2f} s; "
              f"RSS per item {r['rss_per_item_bytes']:.0f} bytes", flush=True)
        s.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [
        (f"library, first start of {n} files: serving / every file probed",
         f"{r['first_start_serving_s']:.2f} s / {r['first_start_all_probed_s']:.0f} s", "(no peer run)", "(reported)"),
        (f"library, restart: /api/v1/media lists all {n} (target <= 1 s), probes (target 0)",
         f"{r['restart_full_list_s']:.2f} s, {r['restart_probes']:.0f} probes", "(no peer run)", "(reported)"),
        ("library, a new file copied in: listed / first segment bytes (target <= 5 s)",
         f"{r['new_file_listed_s']:.2f} s / {r['new_file_first_segment_s']:.2f} s", "(no peer run)", "(reported)"),
        ("library, RSS per item after a restart (target <= 4 KB)",
         f"{r['rss_per_item_bytes'] / 1024:.1f} KB", "(no peer run)", "(reported)"),
    ]
    return r, rows
