#!/usr/bin/env python3
"""The peers of `tools/bench --suite compressed` (issue 13): one subcommand = one measurement, one JSON line.

Run with the bench venv's Python (it imports ../shared/bench/peers.py for its helpers: numpy and
ratarmountcore live there). DIR is a folder of compressed shards written by tools/bench: the
`shard-NNNNNN.tar.gz` or `.tar.zst` copies of a standard data set plus a manifest.json naming them
(its `plain` field: the data set they were made from).

  decompress DIR --jobs N      `gzip -dc` / `zstd -dc` of every shard to /dev/null, N processes at a
                               time, one shard each (N = 1: one `gzip -dc SHARD...` process over all
                               shards, in order); wall_s, and tar_mb_per_s over the uncompressed tars
  index-ratarmount DIR         ratarmountcore SQLiteIndexedTar (its defaults) builds one SQLite index
                               per shard in WORK/ratarmount-<fmt>/ (old ones removed first); records
                               the decompression backend it opened each shard with
  random-ratarmount DIR        load those indexes, group the listing into samples, then lookup() +
                               read() of every member of the K samples in --indices, crc32 chained
                               over every member (the read suite's checksum rule)

Options: --backend NAME (ratarmount: prioritizedBackends=[NAME], e.g. indexed_gzip instead of the default
rapidgzip), --parallelization N (ratarmount: SQLiteIndexedTar(parallelization=N), default 1), --work WORK
(default: the folder holding DIR's parent, i.e. work/<data set>), --indices FILE (raw little-endian int64,
from `peers.py indices`), --rep, --no-warm (by default the shards and the ratarmount index files are read
once right before the measurement, as peers.py does).
"""
import argparse
import json
import os
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED_BENCH = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench"))
sys.path.insert(0, SHARED_BENCH)
import peers  # noqa: E402  (../shared/bench/peers.py: key_of, warm_files, rss_now_mb, peak_rss_mb)

import numpy as np  # noqa: E402

REAL_STDOUT = sys.stdout
DECOMPRESSORS = {".tar.gz": ["gzip", "-dc"], ".tar.zst": ["zstd", "-dc", "-q"]}


class Compressed:
    """A folder of compressed shards with the manifest tools/bench wrote next to them."""

    def __init__(self, path):
        self.dir = os.path.abspath(path)
        with open(os.path.join(self.dir, "manifest.json")) as f:
            self.manifest = json.load(f)
        self.format = self.manifest["format"]  # gz or zst
        self.suffix = self.manifest["suffix"]  # .tar.gz or .tar.zst
        self.shards = [os.path.join(self.dir, s["path"]) for s in self.manifest["shards"]]
        self.counts = [s["nsamples"] for s in self.manifest["shards"]]
        self.nsamples = int(sum(self.counts))
        self.compressed_bytes = sum(os.path.getsize(p) for p in self.shards)
        self.tar_bytes = int(sum(s["tar_bytes"] for s in self.manifest["shards"]))
        self.dataset = self.manifest["dataset"]


def emit(args, c, peer, res, rss_base=None):
    out = {"peer": peer, "dataset": c.dataset, "format": c.format, "samples": c.nsamples, "shards": len(c.shards),
           "compressed_bytes": c.compressed_bytes, "tar_bytes": c.tar_bytes, "rep": args.rep}
    out.update(res)
    if args.warm_s is not None:
        out["warm_s"] = args.warm_s
    if rss_base is not None:
        out["rss_base_mb"] = round(rss_base, 1)
    out["peak_rss_mb"] = round(peers.peak_rss_mb(), 1)
    REAL_STDOUT.write(json.dumps(out) + "\n")
    REAL_STDOUT.flush()


def rat_dir(args, c):
    return os.path.join(args.work, f"ratarmount-{c.format}" + rat_variant(args))


def rat_index_path(args, c, shard):
    return os.path.join(rat_dir(args, c), os.path.basename(shard) + ".index.sqlite")


def backend_of(src):
    """The class that undid the compression for a SQLiteIndexedTar (module.Class)."""
    obj = src.tarFileObject
    return type(obj).__module__.split(".")[0] + "." + type(obj).__name__


def rat_options(args):
    """SQLiteIndexedTar's defaults, or --backend first in its prioritizedBackends, --parallelization."""
    return {**({"prioritizedBackends": [args.backend]} if args.backend else {}),
            **({"parallelization": args.parallelization} if args.parallelization else {})}


def rat_variant(args):
    return (f"-{args.backend}" if args.backend else "") + (f"-p{args.parallelization}" if args.parallelization else "")


def rat_peer(args, c, what):
    return f"{what}-ratarmount-{c.format}" + rat_variant(args)


# ----------------------------------------------------------------------------- decompress

def cmd_decompress(args, c):
    tool = DECOMPRESSORS[c.suffix]
    t0 = time.perf_counter()
    before = os.times()
    if args.jobs == 1:
        rc = subprocess.run(tool + c.shards, stdout=subprocess.DEVNULL).returncode
        if rc != 0:
            raise SystemExit(f"{' '.join(tool)} failed rc={rc}")
    else:
        pending = list(c.shards)
        running = []
        while pending or running:
            while pending and len(running) < args.jobs:
                running.append(subprocess.Popen(tool + [pending.pop(0)], stdout=subprocess.DEVNULL))
            pid, status = os.wait()
            for p in running:
                if p.pid == pid:
                    p.returncode = os.waitstatus_to_exitcode(status)
                    if p.returncode != 0:
                        raise SystemExit(f"{' '.join(tool)} {p.args[-1]} failed rc={p.returncode}")
                    running.remove(p)
                    break
    wall = time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    emit(args, c, f"{tool[0]}-dc-{args.jobs}", {
        "jobs": args.jobs, "wall_s": round(wall, 4), "children_cpu_s": round(cpu, 3),
        "tar_mb_per_s": round(c.tar_bytes / wall / 1e6, 1),
        "cmd": " ".join(tool) + (" SHARD (one process a shard, %d at a time)" % args.jobs if args.jobs > 1
                                 else " SHARDS")})


# ----------------------------------------------------------------------------- ratarmount

def ratarmount_versions():
    import importlib.metadata as md
    out = {}
    for p in ("ratarmountcore", "rapidgzip", "indexed_gzip", "indexed_zstd"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


def cmd_index_ratarmount(args, c):
    from ratarmountcore.mountsource.formats.tar import SQLiteIndexedTar
    os.makedirs(rat_dir(args, c), exist_ok=True)
    for s in c.shards:
        p = rat_index_path(args, c, s)
        if os.path.exists(p):
            os.unlink(p)
    backends = set()
    base = peers.rss_now_mb()
    t0 = time.perf_counter()
    for s in c.shards:
        src = SQLiteIndexedTar(s, indexFilePath=rat_index_path(args, c, s), writeIndex=True, clearIndexCache=True,
                               **rat_options(args))
        backends.add(backend_of(src))
        src.close()
    t = time.perf_counter() - t0
    size = sum(os.path.getsize(rat_index_path(args, c, s)) for s in c.shards)
    emit(args, c, rat_peer(args, c, "index"), {
        "wall_s": round(t, 4), "index_bytes": size, "samples_per_s": round(c.nsamples / t, 1),
        "tar_mb_per_s": round(c.tar_bytes / t / 1e6, 1), "backend": sorted(backends),
        "versions": ratarmount_versions()}, base)


def cmd_random_ratarmount(args, c):
    from ratarmountcore.mountsource.formats.tar import SQLiteIndexedTar
    if not args.indices:
        raise SystemExit("random-ratarmount needs --indices FILE")
    ind = np.fromfile(args.indices, dtype="<i8").tolist()
    paths = [rat_index_path(args, c, s) for s in c.shards]
    for p in paths:
        if not os.path.exists(p):
            raise SystemExit(f"{p} missing: run index-ratarmount first")
    mt = [os.path.getmtime(p) for p in paths]
    base = peers.rss_now_mb()
    t0 = time.perf_counter()
    srcs = [SQLiteIndexedTar(s, indexFilePath=p, writeIndex=False, **rat_options(args))
            for s, p in zip(c.shards, paths)]
    t_open = time.perf_counter() - t0
    assert mt == [os.path.getmtime(p) for p in paths], "ratarmount rebuilt an index instead of loading it"
    backends = sorted({backend_of(s) for s in srcs})
    t0 = time.perf_counter()
    samples = []  # global index -> (shard, [member paths]), archive order
    for si, src in enumerate(srcs):
        cur_key, cur = None, None
        for name in src.list_mode("/"):
            k = peers.key_of(name)
            if k != cur_key:
                cur = []
                samples.append((si, cur))
                cur_key = k
            cur.append("/" + name)
    t_list = time.perf_counter() - t0
    assert len(samples) == c.nsamples, (len(samples), c.nsamples)
    crc32 = zlib.crc32
    acc = 0
    nb = 0
    t1 = time.perf_counter()
    for i in ind:
        si, members = samples[i]
        src = srcs[si]
        for m in members:
            fi = src.lookup(m)
            b = src.read(fi, fi.size, 0)
            acc = crc32(b, acc)
            nb += len(b)
    t = time.perf_counter() - t1
    emit(args, c, rat_peer(args, c, "random"), {
        "k": len(ind), "run_s": round(t, 4), "samples_per_s": round(len(ind) / t, 1), "open_s": round(t_open, 4),
        "list_s": round(t_list, 4), "bytes": nb, "touch": "crc32", "checksum": acc, "backend": backends,
        "versions": ratarmount_versions()}, base)


COMMANDS = {"decompress": cmd_decompress, "index-ratarmount": cmd_index_ratarmount,
            "random-ratarmount": cmd_random_ratarmount}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=sorted(COMMANDS))
    p.add_argument("dir", help="a folder of compressed shards with tools/bench's manifest.json")
    p.add_argument("--work", help="where the ratarmount indexes go (default: DIR/../..)")
    p.add_argument("--jobs", type=int, default=2, help="decompress: processes at a time, one shard each")
    p.add_argument("--indices", help="random-ratarmount: the K sample indices (raw little-endian int64)")
    p.add_argument("--backend", help="ratarmount: put this compression backend first (e.g. indexed_gzip; "
                   "default: SQLiteIndexedTar's own order, rapidgzip when installed); its indexes go to "
                   "WORK/ratarmount-<fmt>-<backend>/")
    p.add_argument("--parallelization", type=int, help="ratarmount: SQLiteIndexedTar(parallelization=N) (default: "
                   "its default, 1); its indexes go to WORK/ratarmount-<fmt>[-<backend>]-p<N>/")
    p.add_argument("--rep", type=int, default=0)
    p.add_argument("--no-warm", action="store_true")
    args = p.parse_args()
    c = Compressed(args.dir)
    args.work = args.work or os.path.dirname(os.path.dirname(c.dir))
    sys.stdout = sys.stderr  # libraries' chatter; the JSON line goes to REAL_STDOUT
    args.warm_s = None
    if not args.no_warm:
        files = list(c.shards)
        d = rat_dir(args, c)
        if args.command == "random-ratarmount" and os.path.isdir(d):
            files += [os.path.join(d, f) for f in sorted(os.listdir(d))]
        t0 = time.perf_counter()
        peers.warm_files(files)
        args.warm_s = round(time.perf_counter() - t0, 3)
    COMMANDS[args.command](args, c)


if __name__ == "__main__":
    main()
