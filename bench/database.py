"""The cluster database benchmark: 3 release hlsd nodes over one library of
N links (default 2,000) to ../shared/media, started together, each with
its own SQLite catalogue, then all on one PostgreSQL (Debian's server,
made with initdb in a temp dir on loopback, as bench/harness does for
nothing else: PostgreSQL runs as the `postgres` user when run as root).

Reports, for each back end:
  * probes summed over the nodes, and the wall time until every node lists
    every item probed (target with PostgreSQL: probes 1x the files);
  * a restart of every node: time until every node lists all N items
    (target <= 1 s, as on SQLite);
  * GET /api/v1/media?limit=50 p99 under 64 concurrent clients (wrk) on
    one node (target: PostgreSQL <= 1.5x SQLite).

Asserts nothing: it is not a test. Run: python3 bench/database.py [HLSD].
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import TOKEN, free_port, http, library_is_ready, release_binary, wrk  # noqa: E402
from library import Server, make_library  # noqa: E402


class Postgres:
    """One throwaway PostgreSQL server on a free loopback port."""

    def __init__(self, tmp):
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.dir = os.path.join(tmp, "pg")
        os.makedirs(self.dir)
        os.chmod(tmp, 0o711)  # the postgres user reaches its dir inside
        self.port = free_port()
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        self.run("initdb", "-D", data, "-U", "hlsd", "-A", "trust", "-E", "UTF8", "--no-sync")
        self.run("pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log.txt"), "-w", "-o",
                 f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir}", "start")
        self.url = f"postgres://hlsd@127.0.0.1:{self.port}/postgres"

    def run(self, program, *args):
        subprocess.run(self.as_user + [os.path.join(self.bin, program), *args],
                       check=True, capture_output=True, cwd=self.dir)

    def stop(self):
        self.run("pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "fast", "-w", "stop")


def start_nodes(binary, media, tmp, database, label):
    """Three nodes over `media`, each with its own data dir, on `database`
    (None: each its own SQLite catalogue), started at once."""
    nodes = []
    for i in range(3):
        extra = ["--node-name", f"{label}{i}"] + (["--database", database] if database else [])
        nodes.append(Server(binary, media, os.path.join(tmp, f"{label}-data-{i}"), tmp, extra))
    return nodes


def lists_all(node, n):
    try:
        status, body = http(node.base + "/api/v1/media?limit=1", timeout=2)
    except OSError:
        return False
    return status == 200 and json.loads(body)["total"] == n


def one_back_end(binary, media, tmp, n, database, label):
    r = {}
    t0 = time.monotonic()
    nodes = start_nodes(binary, media, tmp, database, label)
    for node in nodes:
        node.wait(lambda h: library_is_ready(h) and h["items"] == n)
    r["all_probed_s"] = time.monotonic() - t0
    r["probes"] = sum(node.probes() for node in nodes)
    print(f"  {label}: every node lists {n} probed items after {r['all_probed_s']:.1f} s, "
          f"{r['probes']:.0f} probes in all", flush=True)
    for node in nodes:
        node.stop()
    t0 = time.monotonic()
    nodes = start_nodes(binary, media, tmp, database, label)
    for node in nodes:
        while not lists_all(node, n):
            time.sleep(0.01)
    r["restart_full_list_s"] = time.monotonic() - t0
    for node in nodes:
        node.wait(library_is_ready)
    r["restart_probes"] = sum(node.probes() for node in nodes)
    r["list_rps"], r["list_p99_ms"] = wrk(nodes[0].base + "/api/v1/media?limit=50",
                                          header=f"Authorization: Bearer {TOKEN}", seconds=10)
    print(f"  {label}: restart lists all on every node after {r['restart_full_list_s']:.2f} s "
          f"({r['restart_probes']:.0f} probes); list p99 {r['list_p99_ms']:.1f} ms", flush=True)
    for node in nodes:
        node.stop()
    return r


def run(binary, n=2000):
    tmp = tempfile.mkdtemp(prefix="hlsd-bench-database-")
    pg = None
    try:
        media = os.path.join(tmp, "media")
        os.makedirs(media)
        make_library(media, n)
        sqlite = one_back_end(binary, media, tmp, n, None, "sqlite")
        pg = Postgres(tmp)
        postgres = one_back_end(binary, media, tmp, n, pg.url, "postgres")
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    ratio = lambda a, b: f"{a / b:.2f}x" if b else "(reported)"
    rows = [
        (f"3 nodes, {n} files: probes in all (target 1x the files with PostgreSQL)",
         f"{postgres['probes']:.0f}", f"{sqlite['probes']:.0f}", ratio(postgres["probes"], sqlite["probes"])),
        (f"3 nodes, {n} files: until every node lists every item probed",
         f"{postgres['all_probed_s']:.1f} s", f"{sqlite['all_probed_s']:.1f} s",
         ratio(postgres["all_probed_s"], sqlite["all_probed_s"])),
        ("restart of every node: until each lists all (target <= 1 s)",
         f"{postgres['restart_full_list_s']:.2f} s", f"{sqlite['restart_full_list_s']:.2f} s",
         ratio(postgres["restart_full_list_s"], sqlite["restart_full_list_s"])),
        ("GET /api/v1/media?limit=50 p99, 64 clients (target <= 1.5x)",
         f"{postgres['list_p99_ms']:.1f} ms", f"{sqlite['list_p99_ms']:.1f} ms",
         ratio(postgres["list_p99_ms"], sqlite["list_p99_ms"])),
    ]
    return {"sqlite": sqlite, "postgres": postgres}, rows


if __name__ == "__main__":
    _, rows = run(release_binary(sys.argv), int(os.environ.get("BENCH_FILES", "2000")))
    print("| | PostgreSQL | per-node SQLite | ratio |")
    print("|---|---|---|---|")
    for name, ours, peer, r in rows:
        print(f"| {name} | {ours} | {peer} | {r} |")
