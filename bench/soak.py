#!/usr/bin/env python3
"""Soak and churn against a release hlsd; prints figures, asserts nothing.

  soak:  100 concurrent HTTP clients for 60 s over 8 sessions, fetching the
         media playlist and then segments in order, like players. Counts
         errors, 5xx (503 with Retry-After is documented and counted apart),
         p50/p99 latency, the server's open fds and threads before and after,
         and its RSS over time.
  churn: 1000 start/stop cycles of a remux session of a short file; then
         counts sessions, .part files left and RSS.

Usage: bench/soak.py [--clients 100] [--seconds 60] [--sessions 8] [--cycles 1000]
"""
import argparse
import json
import os
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (Hlsd, http, rss_kib)

ROOT = harness.ROOT
FIXTURES = os.path.join(ROOT, "fixtures")
TRANSCODE = "transcode_vp8_vorbis_20s.webm"
REMUX = "remux_h264_aac.mkv"


def proc_counts(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return fds, threads, harness.rss_kib(pid)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def player(srv, token, master_url, stop, out):
    """Fetches the media playlist, then every segment in order, looping."""
    lat, errors, s5xx, s503 = [], 0, 0, 0
    segments = None
    n = 0
    while not stop.is_set():
        try:
            if segments is None:
                t0 = time.monotonic()
                variant, audio = harness.playlists(srv.base, master_url, token)
                status, body = harness.http(variant, token=token)
                lat.append(time.monotonic() - t0)
                if status == 200:
                    segments = [urllib.parse.urljoin(variant, l) for l in body.decode().splitlines()
                                if l and not l.startswith("#")]
                elif status == 503:
                    s503 += 1
                    time.sleep(0.5)
                else:
                    s5xx += status >= 500
                continue
            t0 = time.monotonic()
            status, body = harness.http(segments[n % len(segments)], token=token)
            lat.append(time.monotonic() - t0)
            if status == 200:
                n += 1
            elif status == 503:
                s503 += 1
                time.sleep(0.2)
            elif status >= 500:
                s5xx += 1
            else:
                errors += 1
        except Exception:  # connection errors, timeouts
            errors += 1
    out.append((lat, errors, s5xx, s503, n))


def soak(args):
    users = [f"u{i}" for i in range(args.sessions)]
    srv = harness.Hlsd(args.hlsd, FIXTURES, users=users, extra=("--max-transcodes", str(args.sessions)))
    try:
        pid = srv.proc.pid
        # Warm up: one session of each kind, stopped, so that the baseline
        # holds the GStreamer plugins every later session loads anyway.
        for f in (TRANSCODE, REMUX):
            s = srv.start(f)
            while not any(x["session_id"] == s["session_id"] and x["state"] == "complete" for x in srv.sessions()):
                time.sleep(0.1)
            harness.http(f"{srv.base}/api/v1/hls/{s['session_id']}", "DELETE")
        time.sleep(2)
        before = proc_counts(pid)
        sessions = []
        for i, u in enumerate(users):
            f = TRANSCODE if i % 2 == 0 else REMUX
            s = srv.start(f, token=harness.user_token(u))
            sessions.append((harness.user_token(u), s))
        stop = threading.Event()
        out, threads = [], []
        rss = []
        for c in range(args.clients):
            token, s = sessions[c % len(sessions)]
            t = threading.Thread(target=player, args=(srv, token, s["master_url"], stop, out), daemon=True)
            t.start()
            threads.append(t)
        t_end = time.monotonic() + args.seconds
        peak = before
        while time.monotonic() < t_end:
            c = proc_counts(pid)
            rss.append(c[2])
            peak = tuple(max(a, b) for a, b in zip(peak, c))
            time.sleep(1)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for token, s in sessions:
            harness.http(f"{srv.base}/api/v1/hls/{s['session_id']}", "DELETE", token=token)
        # Streaming threads end as pipelines reach NULL; idle pool threads
        # (tokio's blocking pool keeps them 10 s) after that.
        settle = time.monotonic()
        while proc_counts(pid)[1] > before[1] + 2 and time.monotonic() - settle < 30:
            time.sleep(0.5)
        # hlsd trims the heap on its next reaper tick with no session left
        # (every 15 s at the default timeouts).
        time.sleep(16)
        settle = time.monotonic() - settle
        after = proc_counts(pid)
        left = [f for r, _, fs in os.walk(os.path.join(srv.tmp, "sessions")) for f in fs if f.endswith(".part")]
        lat = [x for o in out for x in o[0]]
        return {
            "clients": args.clients, "seconds": args.seconds, "sessions": args.sessions,
            "requests": len(lat), "errors": sum(o[1] for o in out), "5xx": sum(o[2] for o in out),
            "503_retry_after": sum(o[3] for o in out), "segments_fetched": sum(o[4] for o in out),
            "p50_ms": round(pct(lat, 0.5) * 1000, 1), "p99_ms": round(pct(lat, 0.99) * 1000, 1),
            "fds": [before[0], peak[0], after[0]], "threads": [before[1], peak[1], after[1]],
            "rss_mb": [round(before[2] / 1024), round(max(rss) / 1024), round(after[2] / 1024)],
            "rss_every_s_mb": [round(r / 1024) for r in rss],
            "part_files_left": len(left),
            "settle_s": round(settle, 1),
        }
    finally:
        srv.stop()


def churn(args):
    srv = harness.Hlsd(args.hlsd, FIXTURES)
    try:
        pid = srv.proc.pid
        s = srv.start(REMUX)
        harness.http(f"{srv.base}/api/v1/hls/{s['session_id']}", "DELETE")
        time.sleep(1)
        before = proc_counts(pid)
        t0 = time.monotonic()
        statuses = {}
        for i in range(args.cycles):
            s = srv.start(REMUX)
            st, _ = harness.http(f"{srv.base}/api/v1/hls/{s['session_id']}", "DELETE")
            statuses[st] = statuses.get(st, 0) + 1
        elapsed = time.monotonic() - t0
        time.sleep(2)
        after = proc_counts(pid)
        left = [f for r, _, fs in os.walk(os.path.join(srv.tmp, "sessions")) for f in fs if f.endswith(".part")]
        return {
            "cycles": args.cycles, "seconds": round(elapsed, 1),
            "ms_per_cycle": round(elapsed / args.cycles * 1000, 1),
            "delete_statuses": statuses, "sessions_left": len(srv.sessions()),
            "part_files_left": len(left),
            "fds": [before[0], after[0]], "threads": [before[1], after[1]],
            "rss_mb": [round(before[2] / 1024), round(after[2] / 1024)],
        }
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hlsd", default=os.path.join(ROOT, "target/release/hlsd"))
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--skip", default="")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results"))
    args = ap.parse_args()
    res = {}
    if "soak" not in args.skip:
        res["soak"] = soak(args)
        print("soak:", json.dumps({k: v for k, v in res["soak"].items() if k != "rss_every_s_mb"}), flush=True)
    if "churn" not in args.skip:
        res["churn"] = churn(args)
        print("churn:", json.dumps(res["churn"]), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "soak.json"), "w") as f:
        json.dump(res, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
