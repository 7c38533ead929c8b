#!/usr/bin/env python3
"""Two builds of `shardstore`, one ingest each in turn, into a fresh index every time.

    tools/ab-ingest.py BASE_BIN NEW_BIN 'SHARDS' [--reps 7] [--index /tmp/ab-ingest.sqlite]

Runs `BIN ingest INDEX SHARDS --json` alternately with each binary (BASE, NEW, BASE, NEW, ...),
removing the index and its location file before each run, and prints for each binary the median
and minimum wall time of the process (as `subprocess` sees it) and its median peak RSS (GNU
`time -f %M`), then NEW's median over BASE's. For before/after figures of a change to ingest: build
the commit before it in a worktree, e.g.

    git worktree add /tmp/base HEAD~1 && (cd /tmp/base && swift build -c release --product shardstore --scratch-path .build-rel)
    tools/ab-ingest.py /tmp/base/.build-rel/release/shardstore .build-rel/release/shardstore '/work/bench-root/data/M/*.tar'

Nothing else should run meanwhile; the shards should fit in the page cache.
"""
import argparse
import glob
import os
import statistics
import subprocess
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("shards", help="the shard pattern, quoted (shardstore expands it)")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--index", default="/tmp/ab-ingest.sqlite")
    a = ap.parse_args()
    binaries = {"base": a.base, "new": a.new}
    walls: dict[str, list[float]] = {k: [] for k in binaries}
    rss: dict[str, list[float]] = {k: [] for k in binaries}
    for _ in range(a.reps):
        for name, binary in binaries.items():
            for f in glob.glob(glob.escape(a.index) + "*"):
                os.unlink(f)
            t = time.perf_counter()
            p = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "ingest", a.index, a.shards, "--json"],
                               capture_output=True, text=True)
            wall = time.perf_counter() - t
            if p.returncode != 0:
                sys.stderr.write(f"ab-ingest: {name} failed ({p.returncode}):\n{p.stderr}")
                return 1
            walls[name].append(wall)
            rss[name].append(int(p.stderr.strip().splitlines()[-1]) / 1024)
    for name in binaries:
        runs = " ".join(f"{w:.3f}" for w in walls[name])
        print(f"{name}: median {statistics.median(walls[name]):.3f} s, min {min(walls[name]):.3f} s, "
              f"peak RSS median {statistics.median(rss[name]):.1f} MB  (runs: {runs})")
    print(f"new / base (medians): {statistics.median(walls['new']) / statistics.median(walls['base']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
