#!/usr/bin/env python3
"""Writes a small WebDataset-style example dataset with Python's tarfile (no download).

    tools/make-example.py OUT_DIR [--shards 4] [--per-shard 25] [--seed 0]

Each sample NNNNNN has members .jpg (random bytes standing in for an image), .json, .cls,
.seg.png and .npy (a float32 array of shape (4, 2), written as NumPy's format 1.0 without numpy); shards are OUT_DIR/train-000000.tar ... Deterministic for a given seed. Uses only the
standard library.
"""
import argparse
import io
import json
import os
import random
import struct
import sys
import tarfile


def npy_float32(values, shape):
    """The bytes of a little-endian float32 .npy file (format 1.0), as numpy.save writes them."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)
    header = header.encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * (pad % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + struct.pack(f"<{len(values)}f", *values)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--per-shard", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    labels = ["cat", "dog", "bird"]
    n = 0
    for s in range(a.shards):
        path = os.path.join(a.out, f"train-{s:06d}.tar")
        # Alternate tar formats so the example exercises more than one header style.
        fmt = [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT][s % 3]
        with tarfile.open(path + ".tmp", "w", format=fmt) as tar:
            for _ in range(a.per_shard):
                key = f"{n:06d}"
                label = rng.randrange(len(labels))
                members = {
                    "jpg": rng.randbytes(rng.randint(200, 4000)),
                    "json": json.dumps({"id": n, "label": labels[label], "width": 64, "height": 64}).encode(),
                    "cls": str(label).encode(),
                    "seg.png": rng.randbytes(rng.randint(50, 500)),
                    "npy": npy_float32([rng.uniform(-1, 1) for _ in range(8)], (4, 2)),
                }
                for ext, data in members.items():
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    info.mtime = 1700000000
                    info.mode = 0o644
                    tar.addfile(info, io.BytesIO(data))
                n += 1
        os.replace(path + ".tmp", path)
    print(f"wrote {a.shards} shards with {n} samples to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
