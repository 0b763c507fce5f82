#!/usr/bin/env python3
"""hlsd against the ffmpeg peer, in one run, interleaved (A B A B ...).

Measures, as a client sees it over HTTP against a running release build:
  1. time to first segment (cold: a fresh server per round), transcode and remux;
  2. throughput: media seconds per wall second for the whole file;
  3. peak memory: the server's RSS growth with one session vs ffmpeg's peak RSS;
  4. concurrency: the most simultaneous transcode sessions that all keep
     speed >= 1.0, vs the same count of ffmpeg processes;
  5. segment serving: requests/s and p99 latency with 64 connections (wrk),
     vs nginx serving the same files;
  6. cold seek: a fresh session whose first request is a segment near the
     end, next to the first segment of a fresh session, in the same rounds;
  7. sharing: four users start the same transcode title 2 s apart and play
     it to the end: hlsd's whole-process CPU seconds against four runs of
     the peer (what a server that spawns ffmpeg per viewer spends), and
     each user's wait for segment 0; and the disk the segment store holds
     with one paused remux viewer;
  8. the library (bench/library.py): a 10,000-file library of links to
     ../shared/media: first start, restart, a new file's first segment, RSS
     per item;
  9. client profiles (bench/profiles.py): the 1080p HEVC file served to
     `safari` (HEVC copied into fMP4) and to `generic` (transcode): CPU
     seconds and time to first segment;
 10. the quality ladder (bench/ladder.py): a rung switch's wait, and CPU
     for one rung against every rung encoded eagerly;
 11. scale-out (bench/scaleout.py): three nodes behind nginx: cached
     segments through nginx against one node, and the gap a viewer sees
     when its node is killed against the cold first segment;
 12. adaptation (bench/adapt.py): a 40 Mb/s 1080p H.264 MKV played by
     hls.js in chromium, throttled to 6 Mb/s after 10 s: stalls, the rung
     it settles on and CPU seconds, remux only and the original beside the
     ladder (Auto) against a peer transcoding the whole title to fit.

Prints a Markdown table and writes JSON. Asserts nothing: it is not a test.
Usage: bench/bench.py --hlsd target/release/hlsd --media bench-media --out bench-results
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from harness import (
    ROOT, TOKEN, Hlsd, NoRedirect, RssSampler, cpu_s, fetch_segment, free_port, http, med,
    playlists, rss_kib, segment_urls, user_token, wrk)

PEER = os.path.join(ROOT, "..", "shared", "bench", "ffmpeg-reference.sh")
TRANSCODE = "bench_hevc_ac3_1080p_36s.mkv"
REMUX = "bench_h264_aac_1080p_120s.mkv"
SEEK_SEGMENT = 5  # [30 s, 36 s) of the 36 s transcode input: its last segment


def hlsd_round(binary, media, path, extra=(), rss=True):
    """Cold: a fresh server, one session. Returns (ttfs, total, rss growth
    KiB, bytes of every segment made). `rss=False` leaves out the RSS
    sampler (it reads /proc 100 times a second: not free on 2 cores) and
    gives 0 for the growth."""
    srv = Hlsd(binary, media, extra=extra)
    try:
        time.sleep(0.3)  # let start-up allocations settle
        base_rss = rss_kib(srv.proc.pid)
        sampler = RssSampler(srv.proc.pid) if rss else None
        if sampler:
            sampler.start()
        t0 = time.monotonic()
        s = srv.start(path)
        variant, audio = playlists(srv.base, s["master_url"])
        # A player needs segment 0 of the video and of the audio rendition.
        for playlist in [variant, *audio]:
            fetch_segment(segment_urls(playlist)[0])
        ttfs = time.monotonic() - t0
        while True:
            st = [x for x in srv.sessions() if x["session_id"] == s["session_id"]][0]
            if st["state"] in ("complete", "failed"):
                assert st["state"] == "complete", st
                total = time.monotonic() - t0
                break
            # Ten polls a second: at 50 the harness's own HTTP requests took
            # about 1.5 % of the 2 cores from the job it times (perf), while
            # the peer's loop only looks at files.
            time.sleep(0.1)
        peak = sampler.stop() if sampler else base_rss
        made = sum(os.path.getsize(os.path.join(d, f))
                   for d, _, fs in os.walk(os.path.join(srv.tmp, "sessions", "store"))
                   for f in fs if f.endswith((".ts", ".m4s")))
        return ttfs, total, peak - base_rss, made
    finally:
        srv.stop()


def seek_round(binary, media, path, index):
    """Cold seek: a fresh server, a new session, and the first request is for
    segment `index`. Returns seconds from POST /hls/start to its bytes."""
    srv = Hlsd(binary, media)
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        s = srv.start(path)
        variant, audio = playlists(srv.base, s["master_url"])
        for playlist in [variant, *audio]:
            fetch_segment(segment_urls(playlist)[index])
        return time.monotonic() - t0
    finally:
        srv.stop()


def preload_round(binary, media, path):
    """Pre-warm: a fresh server, POST /hls/preload, wait until the first
    segment is on disk, then time GET /stream/{id} -> master -> media
    playlist -> first segment bytes, as a player does on pressing play."""
    srv = Hlsd(binary, media)
    try:
        time.sleep(0.3)
        mid = srv.ids[path]
        status, body = http(f"{srv.base}/api/v1/hls/preload/{mid}", "POST", b"")
        assert status == 202, body
        sid = json.loads(body)["session_id"]
        deadline = time.monotonic() + 60
        while not any(s["session_id"] == sid and s["segments_ready"] >= 1 for s in srv.sessions()):
            assert time.monotonic() < deadline, "preload never made a segment"
            time.sleep(0.05)
        time.sleep(0.5)
        t0 = time.monotonic()
        req = urllib.request.Request(f"{srv.base}/api/v1/stream/{mid}", headers={"Authorization": f"Bearer {TOKEN}"})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(req, timeout=30)
            raise AssertionError("expected a redirect")
        except urllib.error.HTTPError as e:
            assert e.code == 302, e.code
            master_url = e.headers["Location"]
        variant, audio = playlists(srv.base, master_url)
        for playlist in [variant, *audio]:
            fetch_segment(segment_urls(playlist)[0])
        elapsed = time.monotonic() - t0
        assert [s["session_id"] for s in srv.sessions()] == [sid], "the preload's session was not reused"
        return elapsed
    finally:
        srv.stop()


def ffmpeg_round(mode, src):
    """The peer: ffmpeg-reference.sh. Returns (ttfs, total, peak RSS KiB)."""
    out = tempfile.mkdtemp(prefix="ffmpeg-bench-")
    pl = os.path.join(out, "index.m3u8")
    t0 = time.monotonic()
    p = subprocess.Popen([PEER, mode, src, out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ttfs = None
    while True:
        if ttfs is None and os.path.exists(pl):
            try:
                text = open(pl).read()
            except OSError:
                text = ""
            if "#EXTINF" in text:
                seg = [l for l in text.splitlines() if l and not l.startswith("#")][0]
                with open(os.path.join(out, seg), "rb") as f:
                    f.read()
                ttfs = time.monotonic() - t0
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.005)
    total = time.monotonic() - t0
    if ttfs is None:
        ttfs = total
    shutil.rmtree(out, ignore_errors=True)
    assert os.waitstatus_to_exitcode(status) == 0, f"ffmpeg {mode} failed"
    return ttfs, total, usage.ru_maxrss


def titles_dir(src, n):
    """A media dir with `n` names for one file: `n` titles, which hlsd does
    not share (each is its own file identity)."""
    d = tempfile.mkdtemp(prefix="hlsd-titles-")
    for i in range(n):
        os.symlink(src, os.path.join(d, f"title_{i}.mkv"))
    return d


def concurrency(binary, media, src, duration, max_n):
    """Largest N for which N simultaneous transcodes of N different titles
    all reach speed >= 1.0."""
    best_h = best_f = 0
    rows = []
    for n in range(1, max_n + 1):
        users = [f"u{i}" for i in range(n)]
        titles = titles_dir(src, n)
        srv = Hlsd(binary, titles, users=users, extra=("--max-transcodes", "64"))  # measure past the default cap
        try:
            t0 = time.monotonic()
            started = [srv.start(f"title_{i}.mkv", user_token(u)) for i, u in enumerate(users)]
            ends = {}
            while len(ends) < n:
                for u, s in zip(users, started):
                    if u in ends:
                        continue
                    st = srv.sessions(user_token(u))[0]
                    if st["state"] in ("complete", "failed"):
                        ends[u] = time.monotonic() - t0
                time.sleep(0.05)
        finally:
            srv.stop()
            shutil.rmtree(titles, ignore_errors=True)
        h_speed = min(duration / t for t in ends.values())
        outs = [tempfile.mkdtemp(prefix="ffmpeg-conc-") for _ in range(n)]
        t0 = time.monotonic()
        procs = [subprocess.Popen([PEER, "transcode", src, o], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for o in outs]
        f_times = []
        for p in procs:
            p.wait()
            f_times.append(time.monotonic() - t0)
        for o in outs:
            shutil.rmtree(o, ignore_errors=True)
        f_speed = min(duration / t for t in f_times)
        rows.append({"n": n, "hlsd_min_speed": round(h_speed, 2), "ffmpeg_min_speed": round(f_speed, 2)})
        print(f"  concurrency {n}: hlsd min speed {h_speed:.2f}, ffmpeg min speed {f_speed:.2f}", flush=True)
        if h_speed >= 1.0:
            best_h = n
        if f_speed >= 1.0:
            best_f = n
        if h_speed < 1.0 and f_speed < 1.0:
            break
    return best_h, best_f, rows


def serving(binary, media, rounds):
    """Finished segments: hlsd vs nginx serving the very same files."""
    srv = Hlsd(binary, media)
    ngx_dir = tempfile.mkdtemp(prefix="nginx-bench-")
    try:
        s = srv.start(TRANSCODE)
        while srv.sessions()[0]["state"] not in ("complete", "failed"):
            time.sleep(0.1)
        variant, _ = playlists(srv.base, s["master_url"])
        url_h = segment_urls(variant)[1]
        seg = "segment_00001.ts"
        size = len(fetch_segment(url_h))
        # The same file in the store, for nginx to serve.
        store = os.path.join(srv.tmp, "sessions", "store")
        seg_dir = next(root for root, _, files in os.walk(store)
                       if seg in files and os.path.getsize(os.path.join(root, seg)) == size)
        port = free_port()
        conf = os.path.join(ngx_dir, "nginx.conf")
        with open(conf, "w") as f:
            # Workers must read the session folder (mode 0700 under a temp dir).
            f.write("user root;\n" if os.geteuid() == 0 else "")
            f.write(f"""worker_processes auto; pid {ngx_dir}/nginx.pid; error_log {ngx_dir}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  types {{ video/mp2t ts; }}
  client_body_temp_path {ngx_dir}; proxy_temp_path {ngx_dir}; fastcgi_temp_path {ngx_dir};
  uwsgi_temp_path {ngx_dir}; scgi_temp_path {ngx_dir};
  server {{ listen 127.0.0.1:{port}; root {seg_dir}; }} }}
""")
        ngx = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        hl, ng = [], []
        for _ in range(rounds):
            hl.append(wrk(url_h))
            ng.append(wrk(f"http://127.0.0.1:{port}/{seg}"))
        ngx.terminate()
        ngx.wait()
        return size, hl, ng
    finally:
        srv.stop()
        shutil.rmtree(ngx_dir, ignore_errors=True)


def sharing_round(binary, media, path, users=4, gap=2.0):
    """`users` users start one title `gap` s apart, each fetching every
    segment of the video and audio renditions in order, as fast as it
    comes. Returns (hlsd CPU seconds from the first start until every
    producer has ended, each user's wait for segment 0)."""
    names = [f"s{i}" for i in range(users)]
    srv = Hlsd(binary, media, users=names, extra=("--admin", "bench"))
    try:
        time.sleep(0.3)
        cpu0 = cpu_s(srv.proc.pid)
        waits = [None] * users
        errors = []

        def viewer(i):
            try:
                token = user_token(names[i])
                time.sleep(i * gap)
                t0 = time.monotonic()
                s = srv.start(path, token)
                variant, audio = playlists(srv.base, s["master_url"], token)
                lists = [segment_urls(p, token) for p in [variant, *audio]]
                for urls in lists:
                    fetch_segment(urls[0], token)
                waits[i] = time.monotonic() - t0
                for urls in lists:
                    for u in urls[1:]:
                        fetch_segment(u, token)
            except Exception as e:  # reported, not hidden
                errors.append(repr(e))

        threads = [threading.Thread(target=viewer, args=(i,)) for i in range(users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        while True:
            _, body = http(srv.base + "/api/v1/admin/streaming-stats")
            st = json.loads(body)
            if not st["producers"]:
                break
            time.sleep(0.05)
        return cpu_s(srv.proc.pid) - cpu0, waits, st["media_seconds_transcoded"]
    finally:
        srv.stop()


def ffmpeg_sharing(src, users=4, gap=2.0):
    """The peer per viewer: `users` ffmpeg transcodes started `gap` s apart.
    Returns (their CPU seconds, each one's wait for its first segment)."""
    outs = [tempfile.mkdtemp(prefix="ffmpeg-share-") for _ in range(users)]
    procs, starts, waits, cpu = [], [], [None] * users, 0.0
    t0 = time.monotonic()
    done = set()
    while len(done) < users:
        now = time.monotonic()
        if len(procs) < users and now >= t0 + len(procs) * gap:
            starts.append(now)
            procs.append(subprocess.Popen([PEER, "transcode", src, outs[len(procs)]],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for i, p in enumerate(procs):
            if waits[i] is None:
                try:
                    if "#EXTINF" in open(os.path.join(outs[i], "index.m3u8")).read():
                        waits[i] = time.monotonic() - starts[i]
                except OSError:
                    pass
            if i not in done:
                pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    done.add(i)
                    cpu += usage.ru_utime + usage.ru_stime
                    assert os.waitstatus_to_exitcode(status) == 0
        time.sleep(0.005)
    for o in outs:
        shutil.rmtree(o, ignore_errors=True)
    return cpu, [w if w is not None else 0.0 for w in waits]


def paused_remux(binary, media, path, margin):
    """One remux viewer fetches segment 0 (video and audio) and pauses.
    Returns (bytes the segment store holds 5 s later, the file's size)."""
    srv = Hlsd(binary, media, extra=("--throttle-margin", str(margin)))
    try:
        s = srv.start(path)
        variant, audio = playlists(srv.base, s["master_url"])
        for playlist in [variant, *audio]:
            fetch_segment(segment_urls(playlist)[0])
        time.sleep(5)
        store = os.path.join(srv.tmp, "sessions", "store")
        held = sum(os.path.getsize(os.path.join(root, f))
                   for root, _, files in os.walk(store) for f in files if f.endswith(".ts"))
        return held, os.path.getsize(os.path.join(media, path))
    finally:
        srv.stop()


def two_audio_title(src, out_dir):
    """The transcode input with its audio track twice (the second tagged
    French), by stream copy: a title to switch audio in."""
    out = os.path.join(out_dir, "switch_2audio.mkv")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-map", "0:v", "-map", "0:a", "-map", "0:a",
                    "-c", "copy", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fre", out],
                   check=True)
    return os.path.basename(out)


def audio_switch_round(binary, media, path, held):
    """A fresh server, one session of a transcode with two audio tracks:
    the cold first segment (video and default audio), then, while it
    plays, a switch: the other audio rendition's playlist and the segment
    at the player's place. With `held`, the switch waits until the video
    producer is held by its throttle (--throttle-margin 12), as it is most
    of the time in real-time playback; else it comes while the encoder
    races ahead on every core. Returns (cold s, switch s, video producers
    the switch started)."""
    extra = ("--admin", "bench", *(("--throttle-margin", "12") if held else ()))
    srv = Hlsd(binary, media, extra=extra)
    try:
        time.sleep(0.3)
        video_producers = lambda: sum(n for r, n in json.loads(http(srv.base + "/api/v1/admin/streaming-stats")[1])
                                      .get("producers_started", {}).items() if r.startswith("video"))
        t0 = time.monotonic()
        s = srv.start(path)
        variant, audio = playlists(srv.base, s["master_url"])
        video = segment_urls(variant)
        fetch_segment(video[0])
        fetch_segment(segment_urls(audio[0])[0])
        cold = time.monotonic() - t0
        fetch_segment(video[1])  # the player plays on
        deadline = time.monotonic() + 60
        while held and not any(x["state"] == "throttled" for x in srv.sessions()):
            assert time.monotonic() < deadline, "the producer was never held"
            time.sleep(0.05)
        before = video_producers()
        t1 = time.monotonic()
        fetch_segment(segment_urls(audio[1])[1])
        switch = time.monotonic() - t1
        return cold, switch, video_producers() - before
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hlsd", default=os.path.join(ROOT, "target/release/hlsd"))
    ap.add_argument("--media", default=os.path.join(ROOT, "bench-media"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-concurrency", type=int, default=6)
    ap.add_argument("--skip", default="", help="comma list: transcode,remux,sharing,switch,paused,concurrency,library,serving,profiles,ladder,adapt,scaleout")
    ap.add_argument("--library-files", type=int, default=10000, help="links in the library benchmark")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    media = os.path.abspath(args.media)
    os.makedirs(args.out, exist_ok=True)
    results = {"rounds": args.rounds, "machine": os.uname().nodename, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    rows = []

    for mode, path, dur in [("transcode", TRANSCODE, 36.0), ("remux", REMUX, 120.0)]:
        if mode in skip:
            continue
        src = os.path.join(media, path)
        h, f, fast, seek, warm = [], [], [], [], []
        for i in range(args.rounds):  # interleaved: A B A B ...
            h.append(hlsd_round(args.hlsd, media, path))
            f.append(ffmpeg_round(mode, src))
            if mode == "transcode":  # fast start off, and a cold seek, same rounds
                fast.append(hlsd_round(args.hlsd, media, path, ("--first-segment", "6"), rss=False))
                seek.append(seek_round(args.hlsd, media, path, SEEK_SEGMENT))
                warm.append(preload_round(args.hlsd, media, path))
            print(f"  {mode} round {i + 1}: hlsd ttfs {h[-1][0]:.2f}s total {h[-1][1]:.2f}s rss+{h[-1][2] / 1024:.0f}MB | "
                  f"ffmpeg ttfs {f[-1][0]:.2f}s total {f[-1][1]:.2f}s rss {f[-1][2] / 1024:.0f}MB", flush=True)
        r = {
            "hlsd": {"ttfs_s": [x[0] for x in h], "total_s": [x[1] for x in h], "rss_growth_kib": [x[2] for x in h]},
            "ffmpeg": {"ttfs_s": [x[0] for x in f], "total_s": [x[1] for x in f], "peak_rss_kib": [x[2] for x in f]},
        }
        if fast:
            r["hlsd"]["bytes"] = [x[3] for x in h]
            r["hlsd_no_fast_start"] = {"ttfs_s": [x[0] for x in fast], "total_s": [x[1] for x in fast],
                                       "bytes": [x[3] for x in fast]}
        if seek:
            r["hlsd_cold_seek"] = {"segment": SEEK_SEGMENT, "seconds": seek}
        if warm:
            r["hlsd_preloaded_play"] = {"seconds": warm}
        results[mode] = r
        ht, ft = med(r["hlsd"]["ttfs_s"]), med(r["ffmpeg"]["ttfs_s"])
        hx, fx = dur / med(r["hlsd"]["total_s"]), dur / med(r["ffmpeg"]["total_s"])
        hm, fm = med(r["hlsd"]["rss_growth_kib"]) / 1024, med(r["ffmpeg"]["peak_rss_kib"]) / 1024
        rows.append((f"time to first segment, {mode} (defaults)", f"{ht:.2f} s", f"{ft:.2f} s", f"{ht / ft:.2f}"))
        if fast:
            hf = med(r["hlsd_no_fast_start"]["ttfs_s"])
            rows.append((f"time to first segment, {mode}, fast start off (--first-segment 6)", f"{hf:.2f} s", f"{ft:.2f} s", f"{hf / ft:.2f}"))
            hb, nb = med(r["hlsd"]["bytes"]), med(r["hlsd_no_fast_start"]["bytes"])
            rows.append((f"bytes of every segment, {mode}: fast start (2 s first segment) vs off",
                         f"{hb / 1e6:.2f} MB", f"{nb / 1e6:.2f} MB (--first-segment 6)", f"{hb / nb:.3f}"))
        if warm:
            hw = med(warm)
            rows.append((f"preloaded play: GET /stream -> first segment bytes, {mode}",
                         f"{hw * 1000:.0f} ms", f"{ht:.2f} s (hlsd, cold first segment)", f"{hw / ht:.3f}"))
        if seek:
            hs, ftot = med(seek), med(r["ffmpeg"]["total_s"])
            rows.append((f"cold seek: first request is segment {SEEK_SEGMENT} ({SEEK_SEGMENT * 6}-{SEEK_SEGMENT * 6 + 6} s), time to its bytes",
                         f"{hs:.2f} s", f"{ht:.2f} s (hlsd, segment 0 of a fresh session)", f"{hs / ht:.2f}"))
            rows.append((f"time until segment {SEEK_SEGMENT} exists: hlsd seek vs ffmpeg (encodes through to it)",
                         f"{hs:.2f} s", f"{ftot:.2f} s", f"{hs / ftot:.2f}"))
        rows.append((f"throughput, {mode} (media s / wall s)", f"{hx:.1f}x", f"{fx:.1f}x", f"{hx / fx:.2f}"))
        if fast:
            # Equal settings (6 s segments from the first on), each hlsd
            # round against the peer round beside it: the machine's speed
            # drifts by more than the difference between them.
            paired = sorted(p[1] / e[1] for e, p in zip(fast, f))
            he = dur / med(r["hlsd_no_fast_start"]["total_s"])
            rows.append((f"throughput, {mode} at equal settings (--first-segment 6; median of the rounds' ratios, range {paired[0]:.2f}-{paired[-1]:.2f})",
                         f"{he:.1f}x", f"{fx:.1f}x", f"{paired[len(paired) // 2]:.2f}"))
        rows.append((f"memory, {mode} (hlsd RSS growth vs ffmpeg peak RSS)", f"{hm:.0f} MB", f"{fm:.0f} MB", f"{hm / fm:.2f}"))

    if "sharing" not in skip:
        src = os.path.join(media, TRANSCODE)
        hs, fs = [], []
        for i in range(args.rounds):  # interleaved
            hs.append(sharing_round(args.hlsd, media, TRANSCODE))
            fs.append(ffmpeg_sharing(src))
            print(f"  sharing round {i + 1}: hlsd {hs[-1][0]:.1f} CPU s, waits {[round(w, 2) for w in hs[-1][1]]}, "
                  f"{hs[-1][2]} media s transcoded | 4 x ffmpeg {fs[-1][0]:.1f} CPU s, waits {[round(w, 2) for w in fs[-1][1]]}",
                  flush=True)
        results["sharing"] = {
            "hlsd": [{"cpu_s": c, "waits_s": w, "media_seconds_transcoded": m} for c, w, m in hs],
            "ffmpeg": [{"cpu_s": c, "waits_s": w} for c, w in fs],
        }
        hc, fc = med([x[0] for x in hs]), med([x[0] for x in fs])
        waits = lambda runs: " / ".join(f"{med([r[1][i] for r in runs]):.2f}" for i in range(4))
        rows.append(("sharing: 4 users start one 36 s transcode 2 s apart, CPU seconds (target <= 0.35)",
                     f"{hc:.1f} s", f"{fc:.1f} s (4 ffmpeg runs)", f"{hc / fc:.2f}"))
        rows.append(("sharing: each user's wait for segment 0 (s, users 1 / 2 / 3 / 4)",
                     waits(hs), waits(fs), "(reported)"))
    if "switch" not in skip:
        switch_dir = tempfile.mkdtemp(prefix="hlsd-bench-switch-")
        try:
            title = two_audio_title(os.path.join(media, TRANSCODE), switch_dir)
            busy, held = [], []
            for _ in range(args.rounds):
                busy.append(audio_switch_round(args.hlsd, switch_dir, title, held=False))
                held.append(audio_switch_round(args.hlsd, switch_dir, title, held=True))
        finally:
            shutil.rmtree(switch_dir, ignore_errors=True)
        for i, ((c, w, v), (hc_, hw_, hv)) in enumerate(zip(busy, held)):
            print(f"  audio switch round {i + 1}: cold first segment {c:.2f}s, switch while encoding {w:.2f}s (video producers {v}), "
                  f"cold {hc_:.2f}s, switch while held {hw_:.2f}s (video producers {hv})", flush=True)
        results["audio_switch"] = {
            name: [{"cold_first_segment_s": c, "switch_s": w, "video_producers_started": v} for c, w, v in runs]
            for name, runs in (("while_encoding", busy), ("while_held", held))}
        for label, runs in (("while the video encoder runs on every core", busy),
                            ("once the video producer is held by its throttle", held)):
            hc, hw = med([r[0] for r in runs]), med([r[1] for r in runs])
            rows.append((f"audio switch {label}: other track's segment vs a cold transcode start, same server (target <= 0.25)",
                         f"{hw:.2f} s", f"{hc:.2f} s (hlsd, cold first segment)", f"{hw / hc:.2f}"))
        rows.append(("video producers started by an audio switch (target 0)",
                     str(max(r[2] for r in busy + held)), "1 new transcode per switch (a peer that re-encodes)", "(reported)"))

    if "paused" not in skip:
        margin = 30
        held, size = paused_remux(args.hlsd, media, REMUX, margin)
        results["paused_remux"] = {"margin_s": margin, "store_bytes": held, "file_bytes": size}
        rows.append((f"disk held by one paused remux viewer after segment 0 (--throttle-margin {margin}, 120 s file)",
                     f"{held / 1e6:.1f} MB", f"{size / 1e6:.1f} MB (whole file)", f"{held / size:.2f}"))

    if "concurrency" not in skip:
        bh, bf, crow = concurrency(args.hlsd, media, os.path.join(media, TRANSCODE), 36.0, args.max_concurrency)
        results["concurrency"] = {"hlsd": bh, "ffmpeg": bf, "steps": crow}
        rows.append(("concurrent transcodes at speed >= 1.0", str(bh), str(bf), f"{bh / bf:.2f}" if bf else "n/a"))

    if "library" not in skip:
        import library
        results["library"], lib_rows = library.run(args.hlsd, args.library_files)
        rows.extend(lib_rows)

    if "profiles" not in skip:
        import profiles
        results["profiles"], profile_rows = profiles.run(args.hlsd, media, args.rounds)
        rows.extend(profile_rows)

    if "ladder" not in skip:
        import ladder
        results["ladder"], ladder_rows = ladder.run(args.hlsd, media, args.rounds)
        rows.extend(ladder_rows)

    if "adapt" not in skip:
        import adapt
        results["adapt"], adapt_rows = adapt.run(args.hlsd, media, args.rounds)
        rows.extend(adapt_rows)

    if "scaleout" not in skip:
        import scaleout
        results["scaleout"], scaleout_rows = scaleout.run(args.hlsd, media, args.rounds)
        rows.extend(scaleout_rows)

    if "serving" not in skip:
        size, hl, ng = serving(args.hlsd, media, max(2, args.rounds - 1))
        results["serving"] = {"segment_bytes": size, "hlsd": hl, "nginx": ng}
        hr, nr = med([x[0] for x in hl]), med([x[0] for x in ng])
        hp, np_ = med([x[1] for x in hl]), med([x[1] for x in ng])
        rows.append((f"segment serving, req/s ({size / 1e6:.1f} MB, 64 conns)", f"{hr:.0f}", f"{nr:.0f} (nginx)", f"{hr / nr:.2f}"))
        rows.append(("segment serving, p99 latency", f"{hp:.1f} ms", f"{np_:.1f} ms (nginx)", f"{hp / np_:.2f}"))

    table = ["| figure | hlsd | peer | hlsd/peer |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    md = "\n".join(table)
    print()
    print(md)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md + "\n")


if __name__ == "__main__":
    sys.exit(main())
