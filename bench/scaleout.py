"""Scale-out (docs/deployment.md, "Scaling out"): three release hlsd nodes behind nginx
running deploy/nginx.conf on loopback, sharing --secret and the bench media.

  1. cached segments: requests/s and p99 latency (wrk, 64 connections) for
     one 6 s segment of the 36 s transcode's 720p rung through nginx (a cache hit, its token checked by
     auth_request on a node) against the same segment from one hlsd node
     directly, in the same rounds;
  2. a node killed mid-play: a client fetches the 36 s transcode's segments
     (720p video and the audio) one after another through nginx; after
     segment 2 the item's node is SIGKILLed. The gap the viewer sees (the
     largest time between two video segments after the kill) against the
     same run's cold first segment, and its usual time between segments.

A fresh cluster per round. Asserts nothing: it is not a test."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from harness import ROOT, TOKEN, Hlsd, NoRedirect, fetch_segment, free_port, http, med, playlists, segment_urls, wrk

FILE = "bench_hevc_ac3_1080p_36s.mkv"
SECRET = "bench-secret-shared-by-every-node"


def local_site(conf, port, nodes, cache):
    """deploy/nginx.conf with its `# local` lines pointed at loopback (as
    tests/common/cluster.rs does)."""
    servers, out = iter(nodes), []
    for line in conf.splitlines():
        if not line.rstrip().endswith("# local"):
            out.append(line)
            continue
        t = line.lstrip()
        indent = line[:len(line) - len(t)]
        if t.startswith("proxy_cache_path "):
            out.append(line.replace(t.split()[1], cache, 1))
        elif t.startswith("listen "):
            out.append(f"{indent}listen 127.0.0.1:{port};")
        elif t.startswith("server 127.0.0.1:"):
            out.append(f"{indent}server 127.0.0.1:{next(servers)} {t.split(' ', 2)[2]}")
        else:
            raise ValueError(f"unknown local line {line!r}")
    return "\n".join(out)


class Cluster:
    """Three nodes and nginx in front; a node can be killed and restarted."""

    def __init__(self, binary, media, n=3):
        self.binary, self.media = binary, media
        ports = set()
        while len(ports) < n + 1:  # distinct: free_port() may hand one out twice
            ports.add(free_port())
        *self.ports, self.port = sorted(ports)
        self.nodes, self.nginx = [], None
        self.dir = tempfile.mkdtemp(prefix="hlsd-bench-nginx-")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        for i in range(len(self.ports)):
            self.nodes.append(self._node(i))
        self.base = f"http://127.0.0.1:{self.port}"
        with open(os.path.join(ROOT, "deploy/nginx.conf")) as f:
            site = local_site(f.read(), self.port, self.ports, os.path.join(self.dir, "cache"))
        with open(os.path.join(self.dir, "hlsd.conf"), "w") as f:
            f.write(site)
        d = self.dir
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(f"""worker_processes auto; pid {d}/nginx.pid; error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 100000;
  client_body_temp_path {d}; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};
  include {d}/hlsd.conf; }}
""")
        self.nginx = subprocess.Popen(["nginx", "-p", d, "-e", f"{d}/error.log", "-c", f"{d}/nginx.conf", "-g", "daemon off;"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                http(self.base + "/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start")
                time.sleep(0.05)
        _, body = http(self.base + "/api/v1/media?limit=1000")
        self.ids = {m["path"]: m["id"] for m in json.loads(body)["items"]}

    def _node(self, i):
        return Hlsd(self.binary, self.media, port=self.ports[i],
                    extra=("--secret", SECRET, "--node-name", f"node-{i + 1}", "--metrics-public"))

    def node_of(self, media_id):
        """The index of the node nginx sends item `media_id` to."""
        req = urllib.request.Request(f"{self.base}/api/v1/media/{media_id}", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return int(r.headers["X-Hlsd-Node"].rsplit("-", 1)[1]) - 1

    def kill(self, i):
        self.nodes[i].proc.kill()
        self.nodes[i].proc.wait()

    def stop(self):
        if self.nginx:
            self.nginx.terminate()
            self.nginx.wait()
        for n in self.nodes:
            try:
                n.stop()
            except Exception:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def master_url(base, media_id):
    """GET /api/v1/stream/{id} through `base`: the signed master URL it redirects to."""
    req = urllib.request.Request(f"{base}/api/v1/stream/{media_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        urllib.request.build_opener(NoRedirect).open(req, timeout=60)
    except urllib.error.HTTPError as e:
        assert e.code == 302, e.code
        return e.headers["Location"]
    raise AssertionError("expected a redirect")


def serving_round(binary, media):
    """(nginx cached (rps, p99 ms), one node directly (rps, p99 ms), bytes)."""
    c = Cluster(binary, media)
    try:
        mid = c.ids[FILE]
        variant, _ = playlists(c.base, master_url(c.base, mid))
        url = segment_urls(variant)[1]  # a whole 6 s segment
        size = len(fetch_segment(url))
        fetch_segment(url)  # now cached
        node = c.nodes[c.node_of(mid)]
        direct = url.replace(c.base, node.base)
        return wrk(url), wrk(direct), size
    finally:
        c.stop()


def kill_round(binary, media, after=2):
    """(cold first segment s, usual s between segments before the kill,
    largest s between two video segments after it)."""
    c = Cluster(binary, media)
    try:
        mid = c.ids[FILE]
        victim = c.node_of(mid)
        t0 = time.monotonic()
        variant, audio = playlists(c.base, master_url(c.base, mid))
        videos = segment_urls(variant)
        audios = segment_urls(audio[0]) if audio else []
        arrivals = []
        for n, url in enumerate(videos):
            fetch_segment(url)
            arrivals.append(time.monotonic())
            if n < len(audios):
                fetch_segment(audios[n])
            if n == after:
                c.kill(victim)
        first = arrivals[0] - t0
        steps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        return first, med(steps[:after]), max(steps[after:])
    finally:
        c.stop()


def run(binary, media, rounds):
    """Runs the rounds; returns (results, table rows)."""
    served, kills = [], []
    for i in range(rounds):  # interleaved
        served.append(serving_round(binary, media))
        kills.append(kill_round(binary, media))
        (nr, np_), (dr, dp), _ = served[-1]
        print(f"  scale-out round {i + 1}: cached via nginx {nr:.0f} req/s p99 {np_:.1f} ms | node {dr:.0f} req/s p99 {dp:.1f} ms | "
              f"first segment {kills[-1][0]:.2f}s, usual {kills[-1][1]:.2f}s, gap after kill {kills[-1][2]:.2f}s", flush=True)
    results = {
        "cached": [{"nginx_rps": n[0], "nginx_p99_ms": n[1], "node_rps": d[0], "node_p99_ms": d[1], "bytes": b}
                   for n, d, b in served],
        "node_killed": [{"cold_first_segment_s": f, "usual_s": u, "gap_s": g} for f, u, g in kills],
    }
    nr, np_ = med([s[0][0] for s in served]), med([s[0][1] for s in served])
    dr, dp = med([s[1][0] for s in served]), med([s[1][1] for s in served])
    f, u, g = (med([k[i] for k in kills]) for i in range(3))
    size = served[-1][2]
    rows = [
        (f"scale-out: cached segment ({size / 1e6:.1f} MB) requests/s, via nginx (cache hit + auth_request) vs one node",
         f"{nr:.0f}/s", f"{dr:.0f}/s (one node)", f"{nr / dr:.2f}"),
        ("scale-out: cached segment p99 latency, via nginx vs one node",
         f"{np_:.1f} ms", f"{dp:.1f} ms (one node)", f"{np_ / dp:.2f}"),
        ("scale-out: node SIGKILLed mid-play, largest time between two segments after it vs the cold first segment",
         f"{g:.2f} s", f"{f:.2f} s (cold first segment)", f"{g / f:.2f}"),
        ("scale-out: the same gap vs the usual time between two segments before the kill",
         f"{g:.2f} s", f"{u:.2f} s", f"{g / u:.2f}"),
    ]
    return results, rows
