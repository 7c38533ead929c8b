#!/usr/bin/env python3
"""One measurement of the `shardstore` Python package, printed as one JSON line (tools/bench runs it).

    bench-python.py random     --index INDEX --indices FILE [--strategy auto]
    bench-python.py batch      --index INDEX --indices FILE [--batch 256] [--strategy auto]
    bench-python.py batch-dicts --index INDEX --indices FILE [--batch 256] [--strategy auto]
    bench-python.py sequential --index INDEX [--strategy auto]
    bench-python.py loader     --index INDEX [--batch 256] [--threads auto] [--strategy auto]
    bench-python.py rss        --index INDEX [--strategy pread]

The work per sample is the peers' (../shared/bench/README.md): one running zlib crc32, fed every
member's bytes in archive order, so `checksum` equals random-c's (random, batch) or seq-c's
(sequential) in the same run. `random` reads ds[i] for each of the K indices (raw little-endian
int64, from `peers.py indices`); `batch` calls ds.get_batch on 256 of them at a time and reads
the batch's members flat (`batch.views`: no dict per sample), `batch-dicts` iterates the same
batches as sample dicts; `sequential` iterates the dataset (storage order: shard by shard);
`loader` reads one shuffled epoch (seed 0, epoch 0) through shardstore.Loader with
collate="bytes" (every member a memoryview, as the peers' loaders hand raw bytes to their collate
function), crc32 over every member in this Python thread, timed from making the loader (its
threads start there) to the epoch's end, as peers.py loader-* times a DataLoader epoch. `rss` reports VmRSS of this interpreter
with numpy imported, then after `import shardstore` and opening the dataset (and reading one
sample): `rss_above_bare_mb` is the difference.
"""
import argparse
import array
import json
import resource
import sys
import time
import zlib


def vm_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_indices(path):
    """The indices file (little-endian int64) as a list, read with the standard library.

    Not with numpy: importing numpy starts OpenBLAS's worker threads, which spin for a while
    after the import. Imported here, just before the timed loop, they took one of a 2-core
    machine's cores from the loop (medians of 9 runs on S: 133k samples/s with them spinning,
    182k with OPENBLAS_NUM_THREADS=1), a cost of this script, not of the library: `import
    shardstore` does not import numpy, and peers.py imports it long before its timed loops.
    """
    values = array.array("q")
    with open(path, "rb") as f:
        values.frombytes(f.read())
    if sys.byteorder != "little":
        values.byteswap()
    return values.tolist()


def members(sample):
    """The member values of a sample dict, in archive order (the `__` entries left out)."""
    return [v for k, v in sample.items() if not k.startswith("__")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["random", "batch", "batch-dicts", "sequential", "loader", "rss"])
    ap.add_argument("--threads", default="auto")
    ap.add_argument("--index", required=True)
    ap.add_argument("--indices")
    ap.add_argument("--strategy", default=None)
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()
    strategy = a.strategy or ("pread" if a.mode == "rss" else "auto")

    if a.mode == "rss":
        import numpy  # noqa: F401  (the bare interpreter the target is measured against has numpy)

        bare = vm_rss_mb()
        t = time.perf_counter()
        import shardstore

        ds = shardstore.Dataset(a.index, strategy=strategy)
        open_s = time.perf_counter() - t
        sample = ds[0]
        checksum = 0
        for m in members(sample):
            checksum = zlib.crc32(m, checksum)
        after = vm_rss_mb()
        print(json.dumps({"peer": "shardstore-python", "mode": "rss", "strategy": ds.strategy,
                          "rss_bare_mb": round(bare, 1), "rss_open_mb": round(after, 1),
                          "rss_above_bare_mb": round(after - bare, 1), "open_s": round(open_s, 4),
                          "samples": len(ds), "checksum": checksum}))
        return

    t = time.perf_counter()
    import shardstore

    ds = shardstore.Dataset(a.index, strategy=strategy)
    open_s = time.perf_counter() - t
    acc = 0
    total = 0
    crc32 = zlib.crc32
    if a.mode == "loader":
        threads = a.threads if a.threads == "auto" else int(a.threads)
        t = time.perf_counter()
        loader = shardstore.Loader(ds, batch_size=a.batch, shuffle=True, seed=0, collate="bytes", threads=threads)
        n = 0
        first = None
        for batch in loader:
            for ext in batch.extensions:
                for v in batch[ext]:
                    if v is not None:
                        acc = crc32(v, acc)
                        total += len(v)
            n += len(batch)
            if first is None:
                first = time.perf_counter() - t
        run_s = time.perf_counter() - t
        print(json.dumps({"peer": "shardstore-python", "mode": "loader", "strategy": ds.strategy,
                          "samples_per_s": round(n / run_s, 1), "wall_s": round(run_s, 4),
                          "first_batch_s": round(first or 0.0, 4), "batch_size": a.batch, "samples_seen": n,
                          "loader": loader.report, "open_s": round(open_s, 4), "bytes": total, "touch": "crc32",
                          "checksum": acc,
                          "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
        loader.close()
        return
    if a.mode == "sequential":
        n = len(ds)
        t = time.perf_counter()
        for sample in ds:
            for k, v in sample.items():
                if k[0] != "_":
                    acc = crc32(v, acc)
                    total += len(v)
        run_s = time.perf_counter() - t
    else:
        indices = load_indices(a.indices)
        n = len(indices)
        if a.mode == "random":
            t = time.perf_counter()
            for i in indices:
                for k, v in ds[i].items():
                    if k[0] != "_":
                        acc = crc32(v, acc)
                        total += len(v)
            run_s = time.perf_counter() - t
        elif a.mode == "batch":
            size = a.batch
            t = time.perf_counter()
            for start in range(0, n, size):
                for v in ds.get_batch(indices[start:start + size]).views:
                    acc = crc32(v, acc)
                    total += len(v)
            run_s = time.perf_counter() - t
        else:
            size = a.batch
            t = time.perf_counter()
            for start in range(0, n, size):
                for sample in ds.get_batch(indices[start:start + size]):
                    for k, v in sample.items():
                        if k[0] != "_":
                            acc = crc32(v, acc)
                            total += len(v)
            run_s = time.perf_counter() - t
    record = {"peer": "shardstore-python", "mode": a.mode, "strategy": ds.strategy, "lookup": ds.lookup,
              "samples_per_s": round(n / run_s, 1), "run_s" if a.mode != "sequential" else "wall_s": round(run_s, 4),
              "open_s": round(open_s, 4), "k": n, "bytes": total, "touch": "crc32", "checksum": acc,
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if a.mode in ("batch", "batch-dicts"):
        record["batch"] = a.batch
    print(json.dumps(record))


if __name__ == "__main__":
    sys.exit(main())
