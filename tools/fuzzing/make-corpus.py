#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses: tools/fuzzing/corpus/HARNESS/NAME.

Small valid inputs (and a few invalid ones) in every format the parsers read, so that libFuzzer
starts from inputs that reach deep into them. Deterministic: running it again gives the same bytes.
Needs Python 3, GNU tar (for sparse members), numpy, and gzip, zstd, xz and bzip2.

    python3 tools/fuzzing/make-corpus.py
"""

import io
import os
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# No padding to 10 KiB records: an archive ends with its two zero blocks.
tarfile.RECORDSIZE = tarfile.BLOCKSIZE


def write(harness, name, data):
    folder = os.path.join(CORPUS, harness)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def info(name, size=0, type=tarfile.REGTYPE, **fields):
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mtime, ti.mode = size, type, 0, 0o644
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    for key, value in fields.items():
        setattr(ti, key, value)
    return ti


def archive(members, format=tarfile.USTAR_FORMAT):
    """A tar of (TarInfo, bytes) pairs."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=format, encoding="utf-8") as tar:
        for ti, data in members:
            tar.addfile(ti, io.BytesIO(data) if data else None)
    return out.getvalue()


def file(name, data, **fields):
    return info(name, len(data), **fields), data


def checksum(block):
    """The block with its checksum field recomputed (POSIX: six octal digits, NUL, space)."""
    block = bytearray(block)
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def patched(data, offset, field, value):
    """`data` with the header block at `offset` changed at `field` (a slice) and re-summed."""
    block = bytearray(data[offset : offset + 512])
    block[field] = value
    return data[:offset] + checksum(block) + data[offset + 512 :]


def gnu_tar(*args, files):
    """An archive GNU tar writes of `files` ({name: (size, [(offset, bytes)])}), sparse-aware."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, (size, chunks) in files.items():
            with open(os.path.join(tmp, name), "wb") as f:
                f.truncate(size)
                for offset, chunk in chunks:
                    f.seek(offset)
                    f.write(chunk)
        return subprocess.run(
            ["tar", "-c", "-b", "1", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner",
             "--mode=644", "-C", tmp, *args, *sorted(files)],
            check=True, capture_output=True).stdout


def tar_seeds():
    h = "tar-scanner"
    sample = [file("000001.jpg", b"\xff\xd8jpeg"), file("000001.cls", b"7"), file("000001.json", b'{"a": 1}')]
    ustar = archive(sample)
    write(h, "ustar.tar", ustar)
    write(h, "ustar-prefix.tar", archive([file("d" * 90 + "/" + "e" * 60 + "/000002.seg.PNG", b"png")]))
    write(h, "ustar-kinds.tar", archive([
        (info("dir/", type=tarfile.DIRTYPE), b""),
        (info("dir/link.txt", type=tarfile.SYMTYPE, linkname="dir/a.txt"), b""),
        (info("dir/hard.txt", type=tarfile.LNKTYPE, linkname="dir/a.txt"), b""),
        (info("dir/fifo", type=tarfile.FIFOTYPE), b""),
        file("dir/a.txt", b"a"),
        file("__meta__", b"m"),
        file("noext", b"n"),
        file("dir/.hidden.txt", b"h"),
        file("x..png", b"x"),
    ]))
    write(h, "pax-path-size.tar", archive([
        (info("caf\u00e9/\u00fcber.txt", 3, pax_headers={"size": "3", "path": "caf\u00e9/\u00fcber.txt"}), b"abc"),
        file("p" * 120 + ".bin", b"long"),
    ], format=tarfile.PAX_FORMAT))
    write(h, "pax-global.tar", archive([
        (info("pax_global_header", type=tarfile.XGLTYPE, pax_headers={"path": "g/global.txt"}), b""),
        file("local.txt", b"l"),
    ], format=tarfile.PAX_FORMAT))
    write(h, "gnu-longname.tar", archive([
        file("l" * 150 + ".txt", b"gnu"),
        (info("s" * 120, type=tarfile.SYMTYPE, linkname="t" * 120), b""),
    ], format=tarfile.GNU_FORMAT))
    # The size field in GNU base-256 (high bit set, big-endian), which GNU tar writes for 8 GiB and up.
    write(h, "base256-size.tar", patched(ustar, 0, slice(124, 136), b"\x80" + (6).to_bytes(11, "big")))
    # A v7 header: no magic.
    write(h, "v7.tar", patched(ustar, 0, slice(257, 265), b"\0" * 8))
    # star: "tar\0" at byte 508, a shorter prefix.
    write(h, "star.tar", patched(ustar, 0, slice(508, 512), b"tar\0"))
    sparse = {"sparse.bin": (1 << 20, [(4096, b"data"), (700000, b"more")])}
    write(h, "gnu-sparse.tar", gnu_tar("--format=gnu", "-S", files=sparse))
    pax_sparse = gnu_tar("--format=pax", "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                         "-S", files=sparse)
    # GNU tar names the member's own header ./GNUSparseFile.PID/sparse.bin: drop the PID.
    at = pax_sparse.index(b"GNUSparseFile.") // 512 * 512
    name = re.sub(rb"GNUSparseFile\.[0-9]+", b"GNUSparseFile.0", pax_sparse[at : at + 100].rstrip(b"\0"))
    write(h, "pax-sparse.tar", patched(pax_sparse, at, slice(0, 100), name.ljust(100, b"\0")))
    write(h, "empty-archive.tar", b"\0" * 1024)
    write(h, "no-end-blocks.tar", ustar[: 3 * 1024])
    write(h, "truncated-member.tar", ustar[: 512 + 3])
    write(h, "truncated-header.tar", ustar[: 512 + 512 + 200])
    write(h, "bad-checksum.tar", ustar[:148] + b"0000000\0" + ustar[156:])
    write(h, "gzip.tar.gz", b"\x1f\x8b\x08\x00" + b"\0" * 20)


def npy(array, version=None, fortran=False):
    out = io.BytesIO()
    if fortran:
        array = np.asfortranarray(array)
    np.lib.format.write_array(out, array, version=version, allow_pickle=False)
    return out.getvalue()


def npy_seeds():
    h = "npy"
    grid = np.arange(12).reshape(3, 4)
    write(h, "v1-f4.npy", npy(grid.astype("<f4"), (1, 0)))
    write(h, "v2-i8.npy", npy(grid.astype("<i8"), (2, 0)))
    write(h, "v3-u2.npy", npy(grid.astype("<u2"), (3, 0)))
    write(h, "bool.npy", npy(np.array([True, False, True])))
    write(h, "i1.npy", npy(np.array([-1, 2, -3], dtype="i1")))
    write(h, "u1-scalar.npy", npy(np.array(7, dtype="u1")))
    write(h, "f2.npy", npy(np.array([0.5, 1.5], dtype="<f2")))
    write(h, "big-endian-i4.npy", npy(grid.astype(">i4")))
    write(h, "big-endian-f8.npy", npy(np.arange(5).astype(">f8")))
    write(h, "fortran-f4.npy", npy(grid.astype("<f4"), fortran=True))
    write(h, "fortran-3d-big-endian-u4.npy", npy(np.arange(24).reshape(2, 3, 4).astype(">u4"), fortran=True))
    write(h, "empty-shape.npy", npy(np.zeros((0, 3), dtype="<i2")))
    write(h, "complex-unsupported.npy", npy(np.zeros(2, dtype="<c8")))
    write(h, "structured-unsupported.npy", npy(np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")])))
    # Found by the fuzzer: header text with a newline made a two-line error.
    for name, text in [("key-with-newline.npy", b"{'a\nb': 1}"), ("descr-with-newline.npy",
                       b"{'descr': '<i\n4', 'fortran_order': False, 'shape': (1,), }")]:
        write(h, name, b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text)
    write(h, "python2-long-shape.npy", npy(grid.astype("<i4"), (1, 0)).replace(b"(3, 4)", b"(3L,4L)"))


def header_check_seed(name, block, length, key, ext, flags=0):
    write("member-header-check", name,
          bytes([flags]) + struct.pack("<q", length) + bytes([len(key), len(ext)]) + key + ext + block)


def header_check_seeds():
    plain = archive([file("000001.jpg", b"jpeg")])
    header_check_seed("plain.bin", plain[:512], 4, b"000001", b"jpg")
    header_check_seed("plain-derived.bin", plain[:512], 0, b"", b"", flags=0b1110)
    upper = archive([file("a/b.c/x.seg.PNG", b"png")])
    header_check_seed("upper-case-ext.bin", upper[:512], 3, b"a/b.c/x", b"seg.png")
    long_dir = "d" * 90 + "/" + "e" * 60 + "/000002"
    prefixed = archive([file(long_dir + ".png", b"png")])
    header_check_seed("ustar-prefix.bin", prefixed[:512], 3, long_dir.encode(), b"png")
    # pax: the member's own header follows the pax block and its data; tarfile writes "?" for
    # non-ASCII characters in the header's name.
    key = "caf\u00e9/\u00fcber"
    pax = archive([file(key + ".txt", b"abc")], format=tarfile.PAX_FORMAT)
    own = pax[1024:1536]
    header_check_seed("pax-own-header.bin", own, 3, key.encode(), b"txt", flags=1)
    long_key = "l" * 150
    gnu = archive([file(long_key + ".txt", b"gnu")], format=tarfile.GNU_FORMAT)
    header_check_seed("gnu-long-own-header.bin", gnu[1024:1536], 3, long_key.encode(), b"txt", flags=1)
    header_check_seed("size-mismatch.bin", plain[:512], 5, b"000001", b"jpg")
    header_check_seed("name-mismatch.bin", plain[:512], 4, b"000002", b"jpg")
    header_check_seed("zero-block.bin", b"\0" * 512, 0, b"a", b"b")
    symlink = archive([(info("x.txt", type=tarfile.SYMTYPE, linkname="y"), b"")])
    header_check_seed("symlink.bin", symlink[:512], 0, b"x", b"txt")


def location_slot_seed(name, slot, flags=1, index=7, shard_sizes=(4096, 4096), extensions=3):
    """An input of the location-slot harness: flags, index, shards, extensions, then the slot."""
    head = bytes([flags]) + struct.pack("<H", index) + bytes([len(shard_sizes) - 1])
    head += b"".join(struct.pack("<I", s) for s in shard_sizes) + bytes([extensions])
    write("location-slot", name, head + slot)


def location_slot_seeds():
    # A record: CRC (resealed by the harness), member count, key length, members (offset with the
    # extended flag in bit 0, length, shard, extension), key, zeros to the slot's size.
    members = struct.pack("<QqII", 1024, 100, 0, 1) + struct.pack("<QqII", 2048 | 1, 5, 1, 2)
    record = b"\0" * 4 + struct.pack("<II", 2, 6) + members + b"000007"
    location_slot_seed("record.bin", record.ljust(72, b"\0"))
    location_slot_seed("record-bad-crc.bin", record.ljust(72, b"\0"), flags=0)
    location_slot_seed("overflow-record.bin", record, flags=3)
    pointer = b"\0" * 4 + struct.pack("<IIQQ", 0xFFFFFFFF, 0, 5000, len(record))
    location_slot_seed("overflow-pointer.bin", pointer)
    empty = b"\0" * 4 + struct.pack("<II", 0, 0)
    location_slot_seed("no-members.bin", empty.ljust(24, b"\0"))


def index_row_seeds():
    """Inputs of the index-row harness: shard id, header offset, data offset, length, shard size, flags."""
    def row(name, shard, header, data, length, size, flags=0):
        write("index-row", name, struct.pack("<qqqqqB", shard, header, data, length, size, flags))
    row("valid.bin", 1, 1024, 1536, 100, 1 << 20)
    row("pax-header.bin", 1, 0, 1536, 0, 2048)
    row("negative-length.bin", 1, 0, 512, -5, 1 << 20)
    row("off-grid.bin", 1, 0, 513, 5, 1 << 20)
    row("header-after-data.bin", 1, 1024, 1024, 5, 1 << 20)
    row("past-end.bin", 1, 0, 512, 1 << 20, 1 << 20)
    row("unknown-shard.bin", 9, 0, 512, 5, 1 << 20, flags=1)
    row("negative-size.bin", 1, 0, 512, 5, -(1 << 63))


def decompression_seeds():
    """Inputs of the decompression harness: a format byte (0 gzip, 1 zstd, 2 xz, 3 bzip2), then a
    shard written by the real tool: several gzip members, zstd frames with a skippable frame
    between, xz in 8 KiB blocks, bzip2."""
    words = [b"shard", b"tar", b"key", b"index", b"the", b"sample"]
    text = b" ".join(words[(i * 7 + i // 3) % len(words)] for i in range(4000))

    def tool(*command, data):
        return subprocess.run(command, input=data, stdout=subprocess.PIPE, check=True).stdout

    state = 1
    noise = bytearray()
    for _ in range(600):  # incompressible bytes from an LCG, the same on every machine
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        noise.append(state >> 56)
    noise = bytes(noise)
    write("decompression", "gzip.bin", b"\x00" + tool("gzip", "-n", "-c", data=text))
    # The second member is a seek point (64 KiB out and enough compressed bytes since the first).
    write("decompression", "gzip-members.bin",
          b"\x00" + tool("gzip", "-n", "-c", data=bytes(65536) + noise) + tool("gzip", "-n", "-c", data=text[:3000]))
    skippable = bytes([0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 9, 9])
    write("decompression", "zstd-frames.bin",
          b"\x01" + tool("zstd", "-c", "-q", data=noise) + skippable + tool("zstd", "-c", "-q", "--check", data=text[:900]))
    write("decompression", "xz-blocks.bin", b"\x02" + tool("xz", "-c", "-0", "--block-size=8KiB", data=text))
    write("decompression", "bzip2.bin", b"\x03" + tool("bzip2", "-c", data=text[:5000]))


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    tar_seeds()
    npy_seeds()
    header_check_seeds()
    location_slot_seeds()
    index_row_seeds()
    decompression_seeds()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(CORPUS) for f in fs)
    print(f"make-corpus: {total} bytes in {CORPUS}")


if __name__ == "__main__":
    main()
