"""Thumbnail sheets of a 2-hour film (docs/benchmarks.md, "Thumbnails").

On the 2-hour 1080p H.264 film `bench/index.sh` makes (key frames about
2 s apart), one run of each:
- hlsd: a viewer asks for the sheet at 1 h 05 (sheet 6 of 8) first; the
  time until that sheet exists, until every sheet exists (the rest are
  made in the background, outward from it), and hlsd's CPU seconds;
- the peer, Jellyfin's trickplay command: `ffmpeg -skip_frame nokey -i
  FILM -vf fps=1/10,scale=320:-1,tile=10x10 -f image2 ...` (every key frame
  decoded, one in five kept), its wall and CPU seconds.

Targets: the viewer's sheet within 1 s; every sheet in <= 0.25x the
peer's wall time. Not a test: it asserts nothing.

Usage: python3 bench/thumbnails.py [HLSD_BINARY]
"""
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Hlsd, cpu_s, http, release_binary  # noqa: E402

FILM = os.path.join(ROOT, "bench-media", "long", "film_2h.mkv")
SOURCE = os.path.join(ROOT, "bench-media", "bench_h264_aac_1080p_120s.mkv")
VIEWER_AT_S = 3900  # 1 h 05: sheet 3 (each sheet covers 1,000 s)


def make_film():
    if os.path.getsize(FILM) if os.path.exists(FILM) else 0:
        return
    if not os.path.exists(SOURCE):
        subprocess.run([os.path.join(ROOT, "..", "shared", "bench", "make-bench-media.sh"),
                        os.path.join(ROOT, "bench-media")], check=True, stdout=subprocess.DEVNULL)
    os.makedirs(os.path.dirname(FILM), exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "59", "-i", SOURCE,
                    "-map", "0", "-c", "copy", FILM], check=True)


def sheet(base, media_id, n):
    """GET a sheet until it is made (503 while it is); its bytes' length."""
    while True:
        status, body = http(f"{base}/api/v1/media/{media_id}/thumbnails/sheet_{n:05}.jpg", timeout=120)
        if status == 200:
            return len(body)
        assert status == 503, (status, body[:200])
        time.sleep(0.02)


def run_hlsd(binary):
    media = tempfile.mkdtemp(prefix="hlsd-thumbs-")
    os.symlink(FILM, os.path.join(media, "film_2h.mkv"))
    s = Hlsd(binary, media)
    try:
        media_id = s.ids["film_2h.mkv"]
        _, vtt = http(f"{s.base}/api/v1/media/{media_id}/thumbnails.vtt")
        cues = vtt.decode().count(" --> ")
        sheets = -(-cues // 100)
        cpu0, t0 = cpu_s(s.proc.pid), time.monotonic()
        first = VIEWER_AT_S // 1000
        sheet(s.base, media_id, first)
        viewer_s = time.monotonic() - t0
        for n in range(sheets):
            sheet(s.base, media_id, n)
        all_s = time.monotonic() - t0
        cpu = cpu_s(s.proc.pid) - cpu0
        # Asked again: from disk.
        t1 = time.monotonic()
        sheet(s.base, media_id, first)
        again_ms = (time.monotonic() - t1) * 1000
        return {"tiles": cues, "sheets": sheets, "viewer_sheet": first, "viewer_sheet_s": viewer_s,
                "all_sheets_s": all_s, "cpu_s": cpu, "kept_sheet_ms": again_ms}
    finally:
        s.stop()
        os.unlink(os.path.join(media, "film_2h.mkv"))
        os.rmdir(media)


def run_peer():
    out = tempfile.mkdtemp(prefix="peer-thumbs-")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-skip_frame", "nokey", "-i", FILM,
                    "-an", "-sn", "-vf", "fps=1/10,scale=320:-1,tile=10x10", "-f", "image2",
                    os.path.join(out, "sheet_%03d.jpg")], check=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sheets = len(os.listdir(out))
    subprocess.run(["rm", "-rf", out])
    return {"sheets": sheets, "all_sheets_s": wall,
            "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def run(binary):
    make_film()
    h = run_hlsd(binary)
    print(f"  thumbnails hlsd: {json.dumps(h)}", flush=True)
    p = run_peer()
    print(f"  thumbnails peer: {json.dumps(p)}", flush=True)
    ratio = lambda a, b: f"{a / b:.2f}x" if b else "(reported)"
    rows = [
        (f"thumbnails, 2 h 1080p H.264: the sheet at the viewer's position (sheet {h['viewer_sheet']}) "
         "exists after (target <= 1 s)", f"{h['viewer_sheet_s']:.2f} s", "(the peer makes all or none)", "(reported)"),
        (f"thumbnails: every sheet ({h['sheets']}; {h['tiles']} tiles), wall (target <= 0.25x)",
         f"{h['all_sheets_s']:.1f} s", f"{p['all_sheets_s']:.1f} s", ratio(h["all_sheets_s"], p["all_sheets_s"])),
        ("thumbnails: CPU seconds for every sheet", f"{h['cpu_s']:.1f} s", f"{p['cpu_s']:.1f} s",
         ratio(h["cpu_s"], p["cpu_s"])),
        ("thumbnails: a kept sheet asked again", f"{h['kept_sheet_ms']:.1f} ms", "(no peer)", "(reported)"),
    ]
    return {"hlsd": h, "peer": p}, rows


if __name__ == "__main__":
    _, rows = run(release_binary(sys.argv))
    for name, ours, peer, r in rows:
        print(f"| {name} | {ours} | {peer} | {r} |")
