#!/usr/bin/env python3
"""Remote shards over HTTP on loopback: ShardStore against Python range readers, in one run.

    tools/bench-remote.py --bin SHARDSTORE --python BENCH_PYTHON --root BENCH_ROOT [--datasets S M] [--reps 3]

nginx (Debian nginx-light; 2 workers, keep-alive, sendfile) serves BENCH_ROOT/data on 127.0.0.1
with an access log of each request's bytes sent. For each data set: `shardstore ingest` of its
shards over HTTP (brace range), then per repetition, every run crc32-ing every member byte of the
same K = 20,000 random samples (the bench's indices file) or one epoch:

  shardstore remote, 1 in flight        `shardstore bench --indices FILE` (one range GET at a time)
  shardstore remote, 32 in flight       `bench --indices FILE --threads 2 --in-flight 16`: 2 reader
                                        threads, each driving 16 range GETs at once (libcurl's
                                        multi interface); also 32 on 1 thread, and 32 threads with
                                        one request each
  shardstore local                      the same indices over the local tars (auto)
  python urllib3, 1 / 32 in flight      a urllib3 PoolManager, one range GET per sample over its
                                        members (offsets from our index with sqlite3), crc32 in
                                        Python; 32: a thread pool of 32
  fsspec http, 1 in flight              fsspec's HTTPFileSystem cat_file of the same ranges (when
                                        fsspec and aiohttp import)
  shardstore loader, http / local       `bench --loader --shuffle --batch-size 256 --threads 2`
                                        over the remote index and over the local one

Each row prints samples/s, the checksum (every random row of a data set must agree), and for the
remote rows the requests per sample and bytes sent per byte used, from nginx's log. Targets: 32 in
flight at least 10,000 samples/s on S and at least 10x the Python peer (urllib3, 32 in flight).
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

K = 20000
SEED = 0
HERE = os.path.dirname(os.path.abspath(__file__))

PEER = r'''
import sys, time, zlib, sqlite3, struct
index, indices, threads, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
rows = {}
for sid, path, doff, ln in db.execute(
        "SELECT m.sample_id, s.path, m.data_offset, m.length FROM members m JOIN shards s ON s.id = m.shard_id "
        "ORDER BY m.sample_id, m.data_offset"):
    rows.setdefault(sid, []).append((path, doff, ln))
raw = open(indices, "rb").read()
order = struct.unpack(f"<{len(raw) // 8}q", raw)
if kind == "urllib3":
    import urllib3
    pool = urllib3.PoolManager(maxsize=max(threads, 1))
    def fetch(url, lo, hi):
        return pool.request("GET", url, headers={"Range": f"bytes={lo}-{hi - 1}"}).data
else:
    import fsspec
    fs = fsspec.filesystem("http")
    def fetch(url, lo, hi):
        return fs.cat_file(url, start=lo, end=hi)
def get(i):
    members = rows[i]
    lo = members[0][1]
    hi = max(d + n for _, d, n in members)
    body = fetch(members[0][0], lo, hi)
    return [body[d - lo:d - lo + n] for _, d, n in members]
t = time.perf_counter()
crc = 0
total = 0
if threads == 1:
    for i in order:
        for m in get(i):
            crc = zlib.crc32(m, crc)
            total += len(m)
else:
    import concurrent.futures as cf
    with cf.ThreadPoolExecutor(threads) as ex:
        for members in ex.map(get, order):
            for m in members:
                crc = zlib.crc32(m, crc)
                total += len(m)
dt = time.perf_counter() - t
print(f'{{"samples_per_s": {len(order) / dt:.1f}, "run_s": {dt:.4f}, "checksum": {crc}, "bytes": {total}}}')
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, root):
        self.dir = tempfile.mkdtemp(prefix="shardstore-nginx-")
        self.port = free_port()
        self.log = os.path.join(self.dir, "access.log")
        temp = os.path.join(self.dir, "tmp")
        os.makedirs(temp)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes 2;
daemon on;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format sent '$bytes_sent';
    access_log {self.log} sent buffer=1m flush=1s;
    sendfile on;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp};
    uwsgi_temp_path {temp}; scgi_temp_path {temp};
    server {{ listen 127.0.0.1:{self.port}; root {root}; }}
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(nginx, os.X_OK):
            raise SystemExit("bench-remote: nginx is not installed; install it with `apt-get install nginx-light`")
        subprocess.run([nginx, "-c", conf, "-p", self.dir], check=True)
        self.nginx = nginx
        self.conf = conf
        time.sleep(0.3)

    def counts(self):
        """(requests, bytes sent) logged so far (after nginx flushes its buffer)."""
        subprocess.run([self.nginx, "-c", self.conf, "-p", self.dir, "-s", "reopen"], check=False)
        time.sleep(1.2)
        if not os.path.exists(self.log):
            return 0, 0
        with open(self.log) as f:
            values = [int(line) for line in f if line.strip().isdigit()]
        return len(values), sum(values)

    def stop(self):
        subprocess.run([self.nginx, "-c", self.conf, "-p", self.dir, "-s", "quit"], check=False)
        time.sleep(0.3)
        shutil.rmtree(self.dir, ignore_errors=True)


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    report = last_json(r.stdout)
    if r.returncode != 0 or report is None:
        return {"failed": (r.stderr or r.stdout)[-400:]}
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--datasets", nargs="+", default=["S", "M"])
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    server = Nginx(os.path.join(a.root, "data"))
    peer_script = os.path.join(server.dir, "peer.py")
    with open(peer_script, "w") as f:
        f.write(PEER)
    has_fsspec = subprocess.run([a.python, "-c", "import fsspec, aiohttp"], capture_output=True).returncode == 0
    rows = {}
    try:
        for ds in a.datasets:
            work = os.path.join(a.root, "work", ds)
            os.makedirs(work, exist_ok=True)
            shards = sorted(p for p in os.listdir(os.path.join(a.root, "data", ds)) if p.endswith(".tar"))
            pattern = f"http://127.0.0.1:{server.port}/{ds}/shard-{{{shards[0][6:12]}..{shards[-1][6:12]}}}.tar"
            remote = os.path.join(work, "shardstore-http.sqlite")
            for path in (remote, remote + "-locations"):
                if os.path.exists(path):
                    os.unlink(path)
            t = time.perf_counter()
            subprocess.run([a.bin, "ingest", remote, pattern, "--quiet"], check=True)
            print(f"{ds}: ingested {len(shards)} shards over HTTP in {time.perf_counter() - t:.2f} s", file=sys.stderr)
            local = os.path.join(work, "shardstore-read.sqlite")
            if not os.path.exists(local):
                subprocess.run([a.bin, "ingest", local, os.path.join(a.root, "data", ds, "shard-*.tar"), "--quiet"],
                               check=True)
            indices = os.path.join(work, f"indices-k{K}-s{SEED}.bin")
            if not os.path.exists(indices):
                raise SystemExit(f"{indices} is missing: run `peers.py indices --k {K} --seed {SEED} --data {ds}`")
            plan = [
                ("shardstore remote, 1 in flight", [a.bin, "bench", remote, "--indices", indices, "--json"], True),
                ("shardstore remote, 32 in flight",
                 [a.bin, "bench", remote, "--indices", indices, "--threads", "2", "--in-flight", "16", "--json"],
                 True),
                ("shardstore remote, 32 in flight on 1 thread",
                 [a.bin, "bench", remote, "--indices", indices, "--in-flight", "32", "--json"], True),
                ("shardstore remote, 32 threads",
                 [a.bin, "bench", remote, "--indices", indices, "--threads", "32", "--json"], True),
                ("shardstore local (auto)", [a.bin, "bench", local, "--indices", indices, "--json"], False),
                ("python urllib3, 1 in flight", [a.python, peer_script, remote, indices, "1", "urllib3"], True),
                ("python urllib3, 32 in flight", [a.python, peer_script, remote, indices, "32", "urllib3"], True),
                *([("fsspec http, 1 in flight", [a.python, peer_script, remote, indices, "1", "fsspec"], True)]
                  if has_fsspec else []),
                ("shardstore loader, http", [a.bin, "bench", remote, "--loader", "--shuffle", "--batch-size", "256",
                                             "--threads", "2", "--collate", "bytes", "--json"], True),
                ("shardstore loader, local", [a.bin, "bench", local, "--loader", "--shuffle", "--batch-size", "256",
                                              "--threads", "2", "--collate", "bytes", "--json"], False),
            ]
            for rep in range(a.reps):
                for name, cmd, counted in plan:
                    before = server.counts() if counted else (0, 0)
                    r = run(cmd)
                    if counted and "failed" not in r:
                        after = server.counts()
                        samples = r.get("samples") if "loader" in name else K
                        used = r.get("bytes") or 0
                        r["requests_per_sample"] = (after[0] - before[0]) / max(samples or K, 1)
                        r["sent_per_byte_used"] = (after[1] - before[1]) / used if used else None
                    r["cmd"] = " ".join(cmd)
                    rows.setdefault((ds, name), []).append(r)
                    print(f"{ds} rep {rep} {name}: {r.get('samples_per_s', r.get('failed'))}", file=sys.stderr)
    finally:
        server.stop()

    def med(runs, key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    print("\n| data | run | samples/s | requests/sample | bytes sent / byte used | checksum |")
    print("|---|---|---:|---:|---:|---|")
    for (ds, name), runs in rows.items():
        ok = [r for r in runs if "failed" not in r]
        if not ok:
            print(f"| {ds} | {name} | failed: {runs[0].get('failed', '')[:80]} | | | |")
            continue
        sps, rps, ratio = med(ok, "samples_per_s"), med(ok, "requests_per_sample"), med(ok, "sent_per_byte_used")
        checks = sorted({r.get("checksum") for r in ok})
        print(f"| {ds} | {name} | {sps:,.0f} | {'' if rps is None else f'{rps:.2f}'} "
              f"| {'' if ratio is None else f'{ratio:.3f}'} | {' '.join(map(str, checks))} |")
    print()
    for ds in a.datasets:
        ours = med([r for r in rows.get((ds, "shardstore remote, 32 in flight"), []) if "failed" not in r],
                   "samples_per_s")
        peer = med([r for r in rows.get((ds, "python urllib3, 32 in flight"), []) if "failed" not in r],
                   "samples_per_s")
        if ours and peer:
            if ds == "S":
                print(f"- {'PASS' if ours >= 10000 else 'FAIL'}: S remote, 32 in flight: {ours:,.0f} samples/s; "
                      f"target >= 10,000")
            print(f"- {'PASS' if ours >= 10 * peer else 'FAIL'}: {ds} remote, 32 in flight: {ours / peer:.2f}x of "
                  f"python urllib3 with 32 in flight ({peer:,.0f}); target >= 10x")


if __name__ == "__main__":
    main()
