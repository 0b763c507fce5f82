"""Adaptation on a slow link: a 40 Mb/s 1080p H.264 MKV
(bench_h264_40mbps_1080p_60s.mkv, 60 s, 25 fps, + AAC, made here into the
bench media dir when missing) played through hls.js in Debian's chromium
(headless, web/tests/adapt-bench.mjs), the network throttled to 6 Mb/s
(Chrome DevTools Protocol) 10 s after playback starts, three ways, in one
run, interleaved:

  1. remux only: hlsd's own page with every variant but the original
     removed from hls.js right after MANIFEST_PARSED (hls.removeLevel):
     the player as it was before the ladder, the copy alone;
  2. hlsd Auto: hlsd's own page, the original beside the ladder, quality
     on Auto;
  3. the peer, Jellyfin-like: ffmpeg transcodes the whole title once to
     one H.264 rendition that fits 6 Mb/s (libx264 veryfast, 4.5 Mb/s,
     maxrate 5 Mb/s + AAC 128k, HLS VOD, 6 s segments), served by a
     Python http.server thread on loopback to a plain page with the same
     hls.js (web/static/vendor/hls.min.js, its default config, as hlsd's
     page). The peer encodes the title before playing, where Jellyfin
     encodes while playing: the CPU seconds are the same, the whole title
     once.

Reported: stalls and seconds stalled (a stall: a `waiting` event once
playback has started, until `playing`), those after the switch away from
the original (target 0) and after the throttle, the rung hls.js settles
on, and CPU seconds: hlsd's whole process from before the page opens
until it is idle after the play, against the peer's ffmpeg (its own
rusage, os.wait4), target <= 0.5 (only the watched rungs are encoded, and
only while watched). hlsd serves a media dir holding only the title.
Asserts nothing."""
import collections
import functools
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from harness import ROOT, TOKEN, Hlsd, cpu_s, http, med

FILE = "bench_h264_40mbps_1080p_60s.mkv"
DRIVER = os.path.join(ROOT, "web", "tests", "adapt-bench.mjs")
HLS_JS = os.path.join(ROOT, "web", "static", "vendor", "hls.min.js")
LIMIT_S = 240  # wall clock a play may take (remux only does not finish at 6 Mb/s)
PEER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>peer</title></head>
<body><video id="video" muted playsinline width="960"></video><button id="play">play</button>
<script src="hls.min.js"></script>
<script>
let current = null;
function isOriginal(level) { return false; } // one transcoded rendition
document.getElementById("play").addEventListener("click", () => {
  const video = document.getElementById("video");
  const hls = new Hls();
  current = { hls };
  hls.loadSource("hls/index.m3u8");
  hls.attachMedia(video);
  video.play().catch(() => {});
});
</script></body></html>
"""


def make_media(media):
    """Makes the 40 Mb/s input in `media` unless it is there; its path."""
    out = os.path.join(media, FILE)
    if os.path.exists(out):
        return out
    os.makedirs(media, exist_ok=True)
    part = out + ".part"
    print(f"  adapt: making {FILE}", flush=True)
    subprocess.run(
        ["nice", "-n", "10", "ffmpeg", "-nostdin", "-y", "-hide_banner", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=s=960x540:r=25:d=60,noise=alls=12:allf=t+u,"
                             "scale=1920:1080:flags=bicubic,format=yuv420p",
         "-f", "lavfi", "-i", "sine=f=440:d=60:sample_rate=48000",
         "-c:v", "libx264", "-preset", "superfast", "-b:v", "40M", "-maxrate", "44M", "-bufsize", "44M",
         "-g", "50", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "matroska", part],
        check=True)
    os.rename(part, out)
    return out


def drive(url, mode, path="-", token=TOKEN):
    """Runs the page driver; the JSON of its RESULT line."""
    p = subprocess.run(["node", DRIVER, url, mode, token, path, str(LIMIT_S)],
                       capture_output=True, text=True, timeout=LIMIT_S + 180)
    result = next((json.loads(l[len("RESULT "):]) for l in p.stdout.splitlines() if l.startswith("RESULT ")), None)
    if p.returncode != 0 or result is None:
        raise RuntimeError(f"adapt-bench.mjs {mode} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return result


def idle_cpu(pid, timeout=30):
    """CPU seconds of `pid` once it has used under 0.05 s in a second
    (producers still working after the play finish first)."""
    deadline = time.monotonic() + timeout
    last = cpu_s(pid)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = cpu_s(pid)
        if now - last < 0.05:
            return now
        last = now
    return last


def hlsd_round(binary, src, mode):
    """One play through hlsd's page: the driver's result with `cpu_s`, and
    the producers hlsd started."""
    media = tempfile.mkdtemp(prefix="hlsd-bench-adapt-")
    os.symlink(src, os.path.join(media, FILE))
    srv = Hlsd(binary, media, extra=("--admin", "bench"))
    try:
        time.sleep(0.3)
        cpu0 = cpu_s(srv.proc.pid)
        r = drive(srv.base, mode, FILE)
        r["cpu_s"] = idle_cpu(srv.proc.pid) - cpu0
        st = json.loads(http(srv.base + "/api/v1/admin/streaming-stats")[1])
        r["producers_started"] = st.get("producers_started", {})
        r["media_seconds_transcoded"] = st.get("media_seconds_transcoded")
        return r
    finally:
        srv.stop()
        shutil.rmtree(media, ignore_errors=True)


class Quiet(SimpleHTTPRequestHandler):
    """Serves the peer's page and segments, HTTP/1.1 keep-alive, no log."""
    protocol_version = "HTTP/1.1"
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map,
                      ".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t", ".js": "text/javascript"}

    def log_message(self, *args):
        pass


def peer_round(src):
    """The peer: encode the whole title once (its CPU seconds, by rusage),
    then play it from a loopback http.server. The driver's result with
    `cpu_s`, `encode_s` and the rendition's measured `bps`."""
    d = tempfile.mkdtemp(prefix="peer-bench-adapt-")
    out = os.path.join(d, "hls")
    os.makedirs(out)
    try:
        log = open(os.path.join(d, "ffmpeg.log"), "w")
        t0 = time.monotonic()
        p = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", src, "-map", "0:v:0", "-map", "0:a:0",
             "-c:v", "libx264", "-preset", "veryfast", "-b:v", "4.5M", "-maxrate", "5M", "-bufsize", "5M",
             "-pix_fmt", "yuv420p", "-profile:v", "high", "-force_key_frames", "expr:gte(t,n_forced*6)",
             "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
             "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod",
             "-hls_segment_filename", os.path.join(out, "seg_%03d.ts"), os.path.join(out, "index.m3u8")],
            stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(p.pid, 0)  # its own rusage, not node's or chromium's
        p.returncode = os.waitstatus_to_exitcode(status)
        log.close()
        if p.returncode != 0:
            raise RuntimeError("the peer's ffmpeg failed: " + open(log.name).read()[-2000:])
        encode_s = time.monotonic() - t0
        size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out) if f.endswith(".ts"))
        with open(os.path.join(d, "index.html"), "w") as f:
            f.write(PEER_PAGE)
        shutil.copy(HLS_JS, os.path.join(d, "hls.min.js"))
        server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=d))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            r = drive(f"http://127.0.0.1:{server.server_address[1]}/index.html", "peer")
        finally:
            server.shutdown()
            server.server_close()
        r.update(cpu_s=usage.ru_utime + usage.ru_stime, encode_s=encode_s, bps=size * 8 / 60.0)  # video + audio in MPEG-TS
        return r
    finally:
        shutil.rmtree(d, ignore_errors=True)


def rung(r):
    """The rung a play ended on: "Original (1080p)", "720p", or "?"."""
    if r["final_height"] is None:
        return "?"
    return f"Original ({r['final_height']}p)" if r["final_original"] else f"{r['final_height']}p"


def stalls(runs, n="stalls", s="stalled_s"):
    """"N (X s)" over the rounds (medians), or "no switch" when a round had none."""
    if any(r[n] is None for r in runs):
        return "no switch"
    return f"{med([r[n] for r in runs]):g} ({med([r[s] for r in runs]):.1f} s)"


def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"


def run(binary, media, rounds):
    """Runs the rounds; returns (results, table rows)."""
    src = make_media(media)
    ways = {"remux_only": [], "auto": [], "peer": []}
    for i in range(rounds):  # interleaved
        ways["remux_only"].append(hlsd_round(binary, src, "hlsd-remux-only"))
        ways["auto"].append(hlsd_round(binary, src, "hlsd-auto"))
        ways["peer"].append(peer_round(src))
        print(f"  adapt round {i + 1}: " + " | ".join(
            f"{w} {r[-1]['stalls']} stalls {r[-1]['stalled_s']:.1f}s, {rung(r[-1])}, "
            f"{r[-1]['played_s']:.0f}s played in {r[-1]['wall_s']:.0f}s, cpu {r[-1]['cpu_s']:.1f}s"
            for w, r in ways.items()), flush=True)
    results = {"file": FILE, "source_bps": round(os.path.getsize(src) * 8 / 60.0),
               "throttle_bps": 6000000, "throttle_after_s": 10, "limit_s": LIMIT_S, **ways}
    ro, au, pe = ways["remux_only"], ways["auto"], ways["peer"]
    played = lambda runs: f"{med([r['played_s'] for r in runs]):.0f} of 60 s played in {med([r['wall_s'] for r in runs]):.0f} s"
    settled = lambda runs: collections.Counter(rung(r) for r in runs).most_common(1)[0][0]
    hc, rc, pc = med([r["cpu_s"] for r in au]), med([r["cpu_s"] for r in ro]), med([r["cpu_s"] for r in pe])
    hs, rs, ps = (med([r["stalled_s"] for r in x]) for x in (au, ro, pe))
    # The peer's master lists no RESOLUTION: its one rendition is the
    # source's 1080p.
    peer_label = f"1080p (its one rendition) at {med([r['bps'] for r in pe]) / 1e6:.1f} Mb/s"
    rows = [
        ("adapt: 40 Mb/s 1080p H.264, hls.js, 6 Mb/s from 10 s: stalls (seconds stalled), hlsd Auto (original + ladder) "
         "vs the peer (whole title transcoded to 4.5 Mb/s)",
         f"{stalls(au)}, {played(au)}", f"{stalls(pe)}, {played(pe)}", ratio(hs, ps) if ps else "(reported)"),
        ("adapt: stalls after the switch away from the original (target 0), hlsd Auto vs the peer's after the throttle",
         stalls(au, "stalls_after_switch", "stalled_after_switch_s"),
         stalls(pe, "stalls_after_throttle", "stalled_after_throttle_s"), "(reported)"),
        ("adapt: stalls (seconds stalled), remux only (the original alone) vs the peer",
         f"{stalls(ro)}, {played(ro)}", f"{stalls(pe)}", ratio(rs, ps) if ps else "(reported)"),
        ("adapt: the rung hls.js settles on, hlsd Auto (remux only stays on the original) vs the peer's one rendition",
         settled(au), peer_label, "(reported)"),
        ("adapt: CPU seconds, hlsd Auto (the original copied, only the watched rungs encoded) vs the peer "
         "encoding the whole title once (target <= 0.5)",
         f"{hc:.1f} s", f"{pc:.1f} s", ratio(hc, pc)),
        ("adapt: CPU seconds, remux only vs the peer", f"{rc:.1f} s", f"{pc:.1f} s", ratio(rc, pc)),
    ]
    return results, rows
