"""Client profiles: one 1080p HEVC MKV (bench_hevc_ac3_1080p_36s.mkv, HEVC
Main + AC-3) served to the `safari` profile (HEVC and AC-3 copied into fMP4
segments: a remux) against the `generic` profile (HEVC decoded and encoded
to H.264, AC-3 to AAC, in MPEG-TS), in one run, interleaved. Each round is a fresh server and one
session played to its end as a player would (every segment of the video
and audio renditions); reported: the server's CPU seconds over the whole
file, the time to the first segment of each rendition, and the session's
mode. Asserts nothing."""
import json
import time

from harness import Hlsd, cpu_s, fetch_segment, http, med, playlists, segment_urls

FILE = "bench_hevc_ac3_1080p_36s.mkv"


def profile_round(binary, media, profile):
    """(time to first segment s, total s, CPU s, mode) for one profile."""
    srv = Hlsd(binary, media)
    try:
        time.sleep(0.3)
        cpu0 = cpu_s(srv.proc.pid)
        t0 = time.monotonic()
        status, body = http(srv.base + "/api/v1/hls/start", "POST",
                            json.dumps({"media_id": srv.ids[FILE], "profile": profile}).encode())
        assert status == 200, body
        s = json.loads(body)
        variant, audio = playlists(srv.base, s["master_url"])
        renditions = [segment_urls(p) for p in [variant, *audio]]
        for urls in renditions:
            fetch_segment(urls[0])
        ttfs = time.monotonic() - t0
        for urls in renditions:
            for u in urls[1:]:
                fetch_segment(u)
        total = time.monotonic() - t0
        return ttfs, total, cpu_s(srv.proc.pid) - cpu0, s["mode"]
    finally:
        srv.stop()


def run(binary, media, rounds):
    """Runs the rounds; returns (results, table rows)."""
    runs = {"safari": [], "generic": []}
    for i in range(rounds):
        for profile in ("safari", "generic"):  # interleaved
            runs[profile].append(profile_round(binary, media, profile))
        print("  profiles round {}: ".format(i + 1) + " | ".join(
            f"{p} ttfs {r[-1][0]:.2f}s total {r[-1][1]:.1f}s cpu {r[-1][2]:.1f}s ({r[-1][3]})"
            for p, r in runs.items()), flush=True)
    results = {p: [{"ttfs_s": t, "total_s": w, "cpu_s": c, "mode": m} for t, w, c, m in r]
               for p, r in runs.items()}
    sc, gc = med([r[2] for r in runs["safari"]]), med([r[2] for r in runs["generic"]])
    st, gt = med([r[0] for r in runs["safari"]]), med([r[0] for r in runs["generic"]])
    rows = [
        ("profiles: 36 s 1080p HEVC + AC-3 MKV, CPU seconds to serve it all, safari (copied into fMP4) vs generic (H.264/AAC transcode)",
         f"{sc:.1f} s", f"{gc:.1f} s (generic)", f"{sc / gc:.2f}"),
        ("profiles: time to first segment, safari (fMP4) vs generic (transcode)",
         f"{st:.2f} s", f"{gt:.2f} s (generic)", f"{st / gt:.2f}"),
    ]
    return results, rows
