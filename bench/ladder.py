"""The quality ladder, on bench_hevc_ac3_1080p_36s.mkv (1080p HEVC + AC-3:
a transcode, rungs 1080p, 720p, 480p and 360p), in one run, interleaved:

  1. rung switch: a player plays the 720p rung (where players start) to
     segment 2, then switches to 360p as hls.js does (the new rung's
     media playlist, then its segment 3): the time from that playlist
     request to the segment, next to the same session's first segment;
  2. CPU: the server's CPU seconds for one viewer on one rung (720p video
     and the audio, the whole file) against every rung encoded for that
     viewer (the four video rungs and the audio: Dim's eager ladder, with
     hlsd's own encoder so only the model differs).

Also reads each rung's declared BANDWIDTH and AVERAGE-BANDWIDTH and the
bit rate it measured. Asserts nothing."""
import json
import re
import time
import urllib.parse

from harness import Hlsd, cpu_s, fetch_segment, http, med, segment_urls

FILE = "bench_hevc_ac3_1080p_36s.mkv"


def master(srv):
    """Starts a session; ({height: (url, bandwidth, average)}, [audio urls])."""
    status, body = http(srv.base + "/api/v1/hls/start", "POST",
                        json.dumps({"media_id": srv.ids[FILE]}).encode())
    assert status == 200, body
    url = srv.base + json.loads(body)["master_url"]
    _, text = http(url)
    lines = text.decode().splitlines()
    rungs = {}
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            height = int(re.search(r"RESOLUTION=\d+x(\d+)", line).group(1))
            bw = int(re.search(r"[:,]BANDWIDTH=(\d+)", line).group(1))
            avg = int(re.search(r"AVERAGE-BANDWIDTH=(\d+)", line).group(1))
            rungs[height] = (urllib.parse.urljoin(url, lines[i + 1]), bw, avg)
    audio = [urllib.parse.urljoin(url, re.search(r'URI="([^"]+)"', l).group(1))
             for l in lines if l.startswith("#EXT-X-MEDIA:TYPE=AUDIO")]
    return rungs, audio


def switch_round(binary, media):
    """(first segment s, switch s): 720p to segment 2, then 360p segment 3."""
    srv = Hlsd(binary, media)
    try:
        time.sleep(0.3)
        t0 = time.monotonic()
        rungs, audio = master(srv)
        v720, a = segment_urls(rungs[720][0]), segment_urls(audio[0])
        fetch_segment(v720[0])
        fetch_segment(a[0])
        first = time.monotonic() - t0
        for n in (1, 2):
            fetch_segment(v720[n])
            fetch_segment(a[n])
        t1 = time.monotonic()
        v360 = segment_urls(rungs[360][0])
        fetch_segment(v360[3])
        return first, time.monotonic() - t1
    finally:
        srv.stop()


def cpu_round(binary, media, heights):
    """(CPU s, {height: measured b/s}, rungs) to serve the whole file on `heights`."""
    srv = Hlsd(binary, media)
    try:
        time.sleep(0.3)
        cpu0 = cpu_s(srv.proc.pid)
        rungs, audio = master(srv)
        measured = {}
        for h in heights:
            urls = segment_urls(rungs[h][0])
            total = sum(len(fetch_segment(u)) for u in urls)
            measured[h] = total * 8 / 36.0
        for u in segment_urls(audio[0]):
            fetch_segment(u)
        return cpu_s(srv.proc.pid) - cpu0, measured, rungs
    finally:
        srv.stop()


def run(binary, media, rounds):
    """Runs the rounds; returns (results, table rows)."""
    switches, one, eager, measured, declared = [], [], [], {}, {}
    for i in range(rounds):  # interleaved
        switches.append(switch_round(binary, media))
        one.append(cpu_round(binary, media, [720])[0])
        cpu, m, rungs = cpu_round(binary, media, [1080, 720, 480, 360])
        eager.append(cpu)
        measured = m
        declared = {h: (bw, avg) for h, (_, bw, avg) in rungs.items()}
        print(f"  ladder round {i + 1}: first segment {switches[-1][0]:.2f}s, switch to 360p "
              f"{switches[-1][1]:.2f}s | cpu one rung {one[-1]:.1f}s, every rung {eager[-1]:.1f}s", flush=True)
    results = {
        "switch": [{"first_segment_s": f, "switch_s": s} for f, s in switches],
        "cpu_one_rung_s": one,
        "cpu_every_rung_s": eager,
        "rungs": {str(h): {"bandwidth": declared[h][0], "average_bandwidth": declared[h][1],
                           "measured_video_bps": round(measured[h])} for h in measured},
    }
    fs, sw = med([s[0] for s in switches]), med([s[1] for s in switches])
    o, e = med(one), med(eager)
    rows = [
        ("ladder: rung switch 720p → 360p, time to the new rung's segment vs the session's first segment",
         f"{sw:.2f} s", f"{fs:.2f} s (first segment)", f"{sw / fs:.2f}"),
        ("ladder: CPU seconds, one viewer on one rung (720p) vs every rung encoded eagerly (Dim's model)",
         f"{o:.1f} s", f"{e:.1f} s (every rung)", f"{o / e:.2f}"),
    ]
    for h in sorted(measured, reverse=True):
        bw, avg = declared[h]
        rows.append((f"ladder: {h}p rung, measured video bit rate vs declared AVERAGE-BANDWIDTH (BANDWIDTH {bw / 1e6:.2f} Mb/s)",
                     f"{measured[h] / 1e6:.2f} Mb/s", f"{avg / 1e6:.2f} Mb/s", f"{measured[h] / avg:.2f}"))
    return results, rows
