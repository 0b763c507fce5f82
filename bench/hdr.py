"""Tone mapping in a transcode (docs/benchmarks.md, "HDR").

A 30 s 4K HEVC Main 10 HDR10 film (made here once with libx265, SDR
colour bars and a moving test pattern made PQ with white at 203 cd/m²) is
transcoded to its 1080p SDR rung, one run each:
- hlsd with `--tonemap hable`: every segment of the 1080p variant fetched
  in order; wall and CPU seconds of the server;
- the peer, ffmpeg with `zscale` (scaled to 1080p, made linear) and
  `tonemap=hable`, then x264 at hlsd's settings (veryfast, CRF 23, High,
  the 1080p rung's VBV cap), to 6 s HLS.

Target: throughput >= 1.0x the peer. Not a test: it asserts nothing.

Usage: python3 bench/hdr.py [HLSD_BINARY]
"""
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ROOT, Hlsd, cpu_s, fetch_segment, http, release_binary, segment_urls  # noqa: E402

FILM = os.path.join(ROOT, "bench-media", "hdr10_4k_30s.mkv")
SECONDS = 30
TO_PQ = ("zscale=tin=bt709:min=bt709:pin=bt709:rin=tv:t=linear:p=bt709:npl=203,format=gbrpf32le,"
         "zscale=p=bt2020:t=smpte2084:m=bt2020nc:r=tv:npl=203,format=yuv420p10le")
X265 = ("log-level=error:hdr10=1:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:"
        "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):"
        "max-cll=1000,400")


def make_film():
    if os.path.exists(FILM) and os.path.getsize(FILM) > 0:
        return
    os.makedirs(os.path.dirname(FILM), exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s=3840x2160:r=24:d={SECONDS}", "-vf", TO_PQ,
                    "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", X265,
                    "-tag:v", "hvc1", FILM], check=True)


def run_hlsd(binary):
    media = tempfile.mkdtemp(prefix="hlsd-hdr-")
    os.symlink(FILM, os.path.join(media, "film.mkv"))
    s = Hlsd(binary, media, extra=["--tonemap", "hable"])
    try:
        started = s.start("film.mkv")
        _, text = http(s.base + started["master_url"])
        lines = text.decode().splitlines()
        uri = next(lines[i + 1] for i, l in enumerate(lines)
                   if l.startswith("#EXT-X-STREAM-INF") and "RESOLUTION=1920x1080" in l)
        assert "VIDEO-RANGE=SDR" in text.decode()
        import urllib.parse
        playlist = urllib.parse.urljoin(s.base + started["master_url"], uri)
        cpu0, t0 = cpu_s(s.proc.pid), time.monotonic()
        urls = segment_urls(playlist)
        for u in urls:
            fetch_segment(u)
        return {"segments": len(urls), "wall_s": time.monotonic() - t0, "cpu_s": cpu_s(s.proc.pid) - cpu0}
    finally:
        s.stop()
        os.unlink(os.path.join(media, "film.mkv"))
        os.rmdir(media)


def run_peer():
    out = tempfile.mkdtemp(prefix="peer-hdr-")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", FILM, "-map", "0:v:0", "-vf",
                    "zscale=w=1920:h=1080:filter=bicubic:t=linear:npl=100,format=gbrpf32le,"
                    "zscale=p=bt709,tonemap=tonemap=hable:desat=0,"
                    "zscale=t=bt709:m=bt709:r=tv,format=yuv420p",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-profile:v", "high",
                    "-x264-params", "vbv-maxrate=6000:vbv-bufsize=6000",
                    "-force_key_frames", "expr:gte(t,n_forced*6)",
                    "-f", "hls", "-hls_time", "6", "-hls_playlist_type", "vod",
                    "-hls_segment_filename", os.path.join(out, "s_%03d.ts"),
                    os.path.join(out, "index.m3u8")], check=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["rm", "-rf", out])
    return {"wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}


def run(binary):
    make_film()
    h = run_hlsd(binary)
    print(f"  hdr hlsd: {json.dumps(h)}", flush=True)
    p = run_peer()
    print(f"  hdr peer: {json.dumps(p)}", flush=True)
    rows = [
        ("hdr: 30 s 4K HEVC HDR10 to the 1080p SDR rung, hable: throughput (x real time; target >= 1.0x the peer)",
         f"{SECONDS / h['wall_s']:.2f}x", f"{SECONDS / p['wall_s']:.2f}x", f"{p['wall_s'] / h['wall_s']:.2f}x"),
        ("hdr: CPU seconds", f"{h['cpu_s']:.1f} s", f"{p['cpu_s']:.1f} s", f"{h['cpu_s'] / p['cpu_s']:.2f}x"),
    ]
    return {"hlsd": h, "peer": p}, rows


if __name__ == "__main__":
    _, rows = run(release_binary(sys.argv))
    for name, ours, peer, r in rows:
        print(f"| {name} | {ours} | {peer} | {r} |")
