"""Compressed shards (gzip, zstd, xz, bzip2), ingested as they are: every member's bytes equal
tarfile's, for every strategy and lookup, through every way the real tools write them.

The tars are written with tarfile (GNU, pax and ustar formats; long and non-UTF-8 names), each
with members large enough to span several 64 KiB gzip seek points, then compressed by the
command-line tools (gzip, pigz, zstd, pzstd, xz, bzip2) or Python's own gzip/bz2/lzma modules,
in one piece or in several (concatenated gzip members, zstd frames with a skippable frame
between them, xz blocks and streams).
"""

from __future__ import annotations

import bz2
import json
import gzip
import lzma
import random
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import pytest

from conftest import LOOKUPS, NON_UTF8_KEY, STRATEGIES, Expected, Server, assert_sample, read_tar, run_cli, write_tar

SPAN = 64 << 10  # the smallest --seek-span: several seek points per shard and inside members


def _tool(*command: str) -> Callable[[bytes], bytes]:
    def compress(data: bytes) -> bytes:
        if shutil.which(command[0]) is None:
            pytest.fail(f"{command[0]} is not installed: run tools/setup-system (or .ci/run)")
        return subprocess.run(list(command), input=data, capture_output=True, check=True).stdout

    return compress


def _pieces(data: bytes, count: int) -> List[bytes]:
    step = -(-len(data) // count)
    return [data[i : i + step] for i in range(0, len(data), step)]


def _zstd_frames(data: bytes) -> bytes:
    """Three zstd frames, with a skippable frame (magic 0x184D2A5A, 5 bytes) between the first two."""
    frames = [_tool("zstd", "-3", "-c", "-q")(piece) for piece in _pieces(data, 3)]
    skippable = struct.pack("<II", 0x184D2A5A, 5) + b"skip!"
    return frames[0] + skippable + b"".join(frames[1:])


COMPRESSORS: Dict[str, Tuple[str, Callable[[bytes], bytes]]] = {
    # name: (file suffix, compress)
    "gzip": (".tar.gz", _tool("gzip", "-6", "-c", "-n")),
    "gzip-1": (".tgz", _tool("gzip", "-1", "-c")),
    "pigz": (".tar.gz", _tool("pigz", "-c")),
    "gzip-members": (".tar.gz", lambda data: b"".join(gzip.compress(p) for p in _pieces(data, 3))),
    "gzip-zero-padding": (".tar.gz", lambda data: gzip.compress(data) + bytes(1000)),
    "python-gzip": (".tar.gz", lambda data: gzip.compress(data, compresslevel=9)),
    "zstd": (".tar.zst", _tool("zstd", "-3", "-c", "-q")),
    "zstd-frames": (".tar.zst", _zstd_frames),
    "xz": (".tar.xz", _tool("xz", "-6", "-c")),
    "xz-blocks": (".tar.xz", _tool("xz", "--block-size=32KiB", "-c")),
    "xz-streams": (".tar.xz", lambda data: b"".join(lzma.compress(p) for p in _pieces(data, 2))),
    "bzip2": (".tar.bz2", _tool("bzip2", "-9", "-c")),
    "python-bz2": (".tar.bz2", lambda data: b"".join(bz2.compress(p) for p in _pieces(data, 2))),
}


def _members(rng: random.Random, key: bytes, number: int) -> List[Tuple[bytes, bytes]]:
    text = (b"line %d of a long text member\n" % number) * rng.randrange(2000, 9000)
    members = [
        (key + b".jpg", rng.randbytes(rng.randrange(1, 90_000))),
        (key + b".txt", text),
        (key + b".cls", str(number % 7).encode()),
    ]
    if number % 3 == 0:
        members.append((key + b".empty", b""))
    return members


@pytest.fixture(scope="module")
def plain_tars(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, List[Path]]:
    folder = tmp_path_factory.mktemp("plain")
    rng = random.Random(13)
    long_dir = b"deep/" + b"d" * 90 + b"/" + b"e" * 40 + b"/"
    layout = [
        ("shard-000", tarfile.GNU_FORMAT, [b"%06d" % n for n in range(0, 5)] + [long_dir + b"gnu-long", NON_UTF8_KEY]),
        ("shard-001", tarfile.PAX_FORMAT, [b"%06d" % n for n in range(5, 10)] + [long_dir + b"pax-long"]),
        ("shard-002", tarfile.USTAR_FORMAT, [b"%06d" % n for n in range(10, 14)] + [b"u" * 120 + b"/ustar-long"]),
    ]
    paths = []
    number = 0
    for name, tar_format, keys in layout:
        members: List[Tuple[bytes, bytes]] = []
        for key in keys:
            members.extend(_members(rng, key, number))
            number += 1
        path = folder / f"{name}.tar"
        write_tar(path, tar_format, members)
        paths.append(path)
    return folder, paths


def _expected(folder: Path, tars: List[Path]) -> Expected:
    expected = Expected(index=folder / "index.sqlite", folder=folder)
    for tar in tars:
        for key, ext, data in read_tar(tar):
            if key not in expected.members:
                expected.keys.append(key)
                expected.members[key] = {}
            expected.members[key][ext] = data
    return expected


def _compressed_dataset(
    root: Path, shardstore_bin: str, plain: List[Path], name: str, *extra: str
) -> Tuple[Expected, List[Path]]:
    suffix, compress = COMPRESSORS[name]
    folder = root / name
    folder.mkdir()
    shards = []
    for tar in plain:
        shard = folder / (tar.name[: -len(".tar")] + suffix)
        shard.write_bytes(compress(tar.read_bytes()))
        shards.append(shard)
    expected = _expected(folder, plain)
    run_cli(shardstore_bin, "ingest", str(expected.index), *map(str, shards), "--seek-span", "64K", "--quiet", *extra)
    return expected, shards


def _combinations():
    for strategy in STRATEGIES:
        for lookup in LOOKUPS:
            if strategy == "memory" and lookup != "table":
                continue
            yield strategy, lookup


@pytest.mark.parametrize("name", sorted(COMPRESSORS))
def test_every_member_equals_tarfile(shardstore_module, shardstore_bin, plain_tars, tmp_path: Path, name: str):
    _, plain = plain_tars
    expected, shards = _compressed_dataset(tmp_path, shardstore_bin, plain, name)
    # tarfile reads gzip, bzip2 and xz itself: the compressed files hold the same members.
    if not name.startswith("zstd"):
        assert [read_tar(shard) for shard in shards] == [read_tar(tar) for tar in plain]
    for strategy, lookup in _combinations():
        with shardstore_module.Dataset(expected.index, strategy=strategy, lookup=lookup) as ds:
            assert (ds.strategy, ds.lookup) == (strategy, lookup)
            assert len(ds) == len(expected.keys)
            _assert_reads(ds, expected)


def test_info_shows_compression_and_seek_points(shardstore_bin, plain_tars, tmp_path: Path):
    _, plain = plain_tars
    expected, shards = _compressed_dataset(tmp_path, shardstore_bin, plain, "gzip")
    import json

    info = json.loads(run_cli(shardstore_bin, "info", str(expected.index), "--json"))
    listed = info["shard_list"]
    assert [entry["path"] for entry in listed] == [shard.name for shard in shards]
    for entry, shard, tar in zip(listed, shards, plain):
        assert entry["compression"] == "gzip"
        assert entry["size"] == shard.stat().st_size
        assert entry["uncompressed_size"] == tar.stat().st_size
        # At least the point at the start; points are thinned so that they take at most 5% of
        # the compressed shard.
        assert entry["seek_points"] >= 1
        assert 0 < entry["seek_table_bytes"] <= 0.05 * shard.stat().st_size
    text = run_cli(shardstore_bin, "info", str(expected.index))
    assert "compressed shards" in text and "gzip" in text and "seek points" in text
    strategy = run_cli(shardstore_bin, "info", str(expected.index), "--strategy")
    assert "compressed" in strategy


def _assert_reads(ds, expected: Expected) -> None:
    """Every sample by position, then backwards and scattered by key (so that reads restart from
    seek points as well as continue), then in storage order."""
    for position, key in enumerate(expected.keys):
        assert_sample(ds[position], expected, key, position)
    for position in [len(expected.keys) - 1, 0, len(expected.keys) // 2, 1, len(expected.keys) - 2]:
        assert_sample(ds[expected.keys[position]], expected, expected.keys[position], position)
    for position, sample in enumerate(ds):
        assert_sample(sample, expected, expected.keys[position], position)


def _assert_cli_gets(shardstore_bin: str, expected: Expected, name: str) -> None:
    """`shardstore get` of every member of the first and last samples and the non-UTF-8 key."""
    for key in (expected.keys[0], expected.keys[-1], NON_UTF8_KEY):
        for ext, data in expected.members[key].items():
            got = subprocess.run(
                [shardstore_bin, "get", str(expected.index), key.decode("utf-8", "surrogateescape"), "--ext", ext],
                capture_output=True,
                check=True,
            ).stdout
            assert got == data, (name, key, ext)


def test_cli_get_and_cat_read_compressed_members(shardstore_bin, plain_tars, tmp_path: Path):
    _, plain = plain_tars
    for name in ("gzip", "zstd", "bzip2"):
        expected, _ = _compressed_dataset(tmp_path, shardstore_bin, plain, name)
        _assert_cli_gets(shardstore_bin, expected, name)
        for strategy in STRATEGIES:
            texts = subprocess.run(
                [shardstore_bin, "cat", str(expected.index), "--ext", "txt", "--strategy", strategy],
                capture_output=True,
                check=True,
            ).stdout
            assert texts == b"".join(expected.members[key]["txt"] for key in expected.keys), (name, strategy)
        checked = subprocess.run([shardstore_bin, "verify", str(expected.index)], capture_output=True)
        assert checked.returncode == 0, checked.stderr
        # Checksums of unchanged compressed shards, read through their decompressors, then checked.
        shards = sorted(str(path) for path in expected.folder.iterdir() if ".tar." in path.name)
        run_cli(shardstore_bin, "ingest", "--checksums", str(expected.index), *shards, "--quiet")
        checked = subprocess.run([shardstore_bin, "verify", str(expected.index), "--data"], capture_output=True)
        assert checked.returncode == 0, checked.stderr
        assert b"headers and data" in checked.stdout and b"0 problems" in checked.stdout
    # A fresh ingest with --checksums computes them in the same streaming pass.
    folder = tmp_path / "fresh"
    folder.mkdir()
    suffix, compress = COMPRESSORS["xz-blocks"]
    for tar in plain:
        (folder / (tar.name + suffix[len(".tar"):])).write_bytes(compress(tar.read_bytes()))
    run_cli(shardstore_bin, "ingest", "--checksums", str(folder / "index.sqlite"), str(folder / "*.tar.xz"), "--quiet")
    checked = subprocess.run([shardstore_bin, "verify", str(folder / "index.sqlite"), "--data"], capture_output=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("name", ["zstd", "xz", "bzip2"])
def test_shards_read_whole_go_to_the_cache_folder_when_ram_is_short(
    shardstore_module, shardstore_bin, plain_tars, tmp_path: Path, monkeypatch, name: str
):
    _, plain = plain_tars
    expected, shards = _compressed_dataset(tmp_path, shardstore_bin, plain, name)
    largest = max(tar.stat().st_size for tar in plain)
    limit = str(largest)  # less than twice the largest shard: no RAM cache
    monkeypatch.delenv("SHARDSTORE_CACHE_DIR", raising=False)
    with pytest.raises(shardstore_module.ShardStoreMemoryError) as refused:
        shardstore_module.Dataset(expected.index, strategy="pread", memory_limit=limit)
    assert "cannot be read in the middle" in str(refused.value)
    assert "set SHARDSTORE_CACHE_DIR to a folder with room for it" in str(refused.value)

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("SHARDSTORE_CACHE_DIR", str(cache))
    with shardstore_module.Dataset(expected.index, strategy="pread", memory_limit=limit) as ds:
        assert "cache folder" in ds.reason and str(cache) in ds.reason
        for position in reversed(range(len(expected.keys))):
            assert_sample(ds[position], expected, expected.keys[position], position)
    copies = sorted(cache.iterdir())
    assert len(copies) == len(plain)
    assert sorted(copy.read_bytes() for copy in copies) == sorted(tar.read_bytes() for tar in plain)

    # A limit of one shard: copies are deleted, least recently used first, and reads stay right.
    for copy in copies:
        copy.unlink()
    monkeypatch.setenv("SHARDSTORE_CACHE_LIMIT", str(largest))
    with shardstore_module.Dataset(expected.index, strategy="pread", memory_limit=limit) as ds:
        for position, key in enumerate(expected.keys):
            assert_sample(ds[position], expected, key, position)
    assert len(list(cache.iterdir())) == 1


@pytest.mark.parametrize("name", ["gzip", "zstd", "xz", "bzip2"])
def test_a_sequential_pass_decompresses_ahead_without_a_preload(
    shardstore_bin, plain_tars, tmp_path: Path, monkeypatch, name: str
):
    import json
    import zlib

    _, plain = plain_tars
    expected, _ = _compressed_dataset(tmp_path, shardstore_bin, plain, name)
    crc = 0
    for key in expected.keys:  # samples in storage order, members in archive order
        for data in expected.members[key].values():
            crc = zlib.crc32(data, crc)
    monkeypatch.delenv("SHARDSTORE_CACHE_DIR", raising=False)
    monkeypatch.delenv("SHARDSTORE_MEMORY_LIMIT", raising=False)
    report = json.loads(run_cli(shardstore_bin, "bench", str(expected.index), "--sequential", "--json"))
    assert (report["strategy"], report["lookup"]) == ("pread", "file")
    assert report["reason"] == (
        "pread: a sequential pass reads each byte once and keeps nothing, so nothing is preloaded (every shard is "
        "compressed: none can be mapped); a pass decompresses each compressed shard front to back, a few MiB ahead "
        "of the reads on a thread of its own"
    )
    assert report["checksum"] == crc
    # Memory for less than two of the largest shard and no cache folder: a random reader of a shard
    # that cannot be entered in the middle is refused, a pass is not (it never holds a whole shard).
    monkeypatch.setenv("SHARDSTORE_MEMORY_LIMIT", str(max(tar.stat().st_size for tar in plain)))
    random_reader = subprocess.run(
        [shardstore_bin, "bench", str(expected.index), "--random", "5", "--strategy", "pread"], capture_output=True
    )
    if name != "gzip":  # one zstd frame, one xz block, bzip2: no seek points
        assert random_reader.returncode != 0
        assert b"cannot be read in the middle" in random_reader.stderr
    else:
        assert random_reader.returncode == 0, random_reader.stderr
    report = json.loads(run_cli(shardstore_bin, "bench", str(expected.index), "--sequential", "--json"))
    assert report["checksum"] == crc and report["strategy"] == "pread"


def test_damaged_seek_table_is_refused_never_wrong_bytes(shardstore_module, shardstore_bin, plain_tars, tmp_path: Path):
    import sqlite3

    _, plain = plain_tars
    expected, _ = _compressed_dataset(tmp_path, shardstore_bin, plain, "gzip")
    with sqlite3.connect(expected.index) as db:
        (shard_id, data), *_ = db.execute("SELECT shard_id, data FROM seek_tables ORDER BY shard_id").fetchall()
        damaged = bytearray(data)
        damaged[len(damaged) // 2] ^= 0x01
        db.execute("UPDATE seek_tables SET data = ? WHERE shard_id = ?", (bytes(damaged), shard_id))
    keys_of_first_shard = [key for key in expected.keys if key in {k for k, _, _ in read_tar(plain[0])}]
    with shardstore_module.Dataset(expected.index, strategy="pread") as ds:
        with pytest.raises(shardstore_module.CorruptDataError) as refused:
            ds[keys_of_first_shard[0]]
        assert "seek table is invalid" in str(refused.value)
        assert "shard 'shard-000.tar.gz'" in str(refused.value)
        # The other shards' tables are intact: their samples read right.
        position = expected.keys.index(expected.keys[-1])
        assert_sample(ds[position], expected, expected.keys[-1], position)


def test_export_of_a_compressed_index_writes_the_members(shardstore_bin, plain_tars, tmp_path: Path):
    _, plain = plain_tars
    expected, _ = _compressed_dataset(tmp_path, shardstore_bin, plain, "zstd-frames")
    out = tmp_path / "files"
    run_cli(shardstore_bin, "export", str(expected.index), "--format", "raw", "--layout", "files", "--out", str(out))
    written = sorted(path.read_bytes() for path in out.rglob("*") if path.is_file())
    assert written == sorted(data for members in expected.members.values() for data in members.values())


@pytest.mark.parametrize("cut", ["inside a header", "inside a member"])
def test_a_tar_cut_short_inside_a_whole_stream_is_refused(shardstore_bin, plain_tars, tmp_path: Path, cut: str):
    _, plain = plain_tars
    data = plain[2].read_bytes()  # ustar: the second member's header is at 512 + its first member, rounded up
    first_size = len(read_tar(plain[2])[0][2])
    second_header = 512 + -(-first_size // 512) * 512
    end = second_header + 100 if cut == "inside a header" else second_header + 512 + 10
    (tmp_path / "cut.tar.gz").write_bytes(gzip.compress(data[:end]))
    result = subprocess.run(
        [shardstore_bin, "ingest", str(tmp_path / "index.sqlite"), str(tmp_path / "cut.tar.gz")], capture_output=True
    )
    assert result.returncode == 1
    if cut == "inside a header":
        detail = f"truncated tar header at offset {second_header} (file ends at {end})"
    else:
        second_size = len(read_tar(plain[2])[1][2])
        detail = (
            f"truncated member at offset {second_header}: its data ends at {second_header + 512 + second_size}"
            f" but the file ends at {end}"
        )
    assert result.stderr.decode() == (
        f"shardstore: error: shard 'cut.tar.gz': {detail}; re-fetch the shard or leave it out of the"
        " ingest (no index was created)\n"
    )
    assert not (tmp_path / "index.sqlite").exists()


def _remote_copy(root: Path, plain: List[Path], name: str) -> Tuple[Path, str]:
    """The plain tars compressed as `name` into a folder of their own; returns it and the suffix."""
    suffix, compress = COMPRESSORS[name]
    folder = root / f"served-{name}"
    folder.mkdir()
    for tar in plain:
        (folder / (tar.name[: -len(".tar")] + suffix)).write_bytes(compress(tar.read_bytes()))
    return folder, suffix


# Seek points (gzip, one member and several), frames (zstd), blocks (xz), and shards that are
# decompressed whole (one zstd frame, one xz block, bzip2).
REMOTE_COMPRESSORS = ["gzip", "pigz", "gzip-members", "zstd", "zstd-frames", "xz", "xz-blocks", "bzip2"]


@pytest.mark.parametrize("name", REMOTE_COMPRESSORS)
def test_compressed_shards_over_http_equal_tarfile(
    shardstore_module, shardstore_bin, plain_tars, tmp_path: Path, name: str
):
    _, plain = plain_tars
    folder, suffix = _remote_copy(tmp_path, plain, name)
    expected = _expected(tmp_path, plain)
    server = Server("http", str(folder))
    try:
        url = f"{server.url}/shard-{{000..002}}{suffix}"
        # --checksums: the data is checksummed in the same streaming pass, for verify --data below.
        run_cli(shardstore_bin, "ingest", str(expected.index), url, "--seek-span", "64K", "--checksums", "--quiet")
        info = json.loads(run_cli(shardstore_bin, "info", str(expected.index), "--json"))
        assert info["samples"] == len(expected.keys)
        with shardstore_module.Dataset(expected.index) as ds:
            assert ds.strategy == "remote"
            assert "compressed, and read in range requests of 1 MiB or more" in ds.reason, ds.reason
            _assert_reads(ds, expected)
        _assert_cli_gets(shardstore_bin, expected, name)
        texts = subprocess.run(
            [shardstore_bin, "cat", str(expected.index), "--ext", "txt"], capture_output=True, check=True
        ).stdout
        assert texts == b"".join(expected.members[key]["txt"] for key in expected.keys)
        checked = subprocess.run([shardstore_bin, "verify", str(expected.index), "--data"], capture_output=True)
        assert checked.returncode == 0 and b"0 problems" in checked.stdout, checked

        # With a cache folder: each compressed object is downloaded once and read from its copy.
        cache = tmp_path / "cache"
        cache.mkdir()
        with shardstore_module.Dataset(expected.index, cache_dir=str(cache)) as ds:
            assert "cached whole in the cache folder" in ds.reason, ds.reason
            _assert_reads(ds, expected)
        copies = sorted(path.stat().st_size for path in cache.iterdir())
        assert copies == sorted((folder / f"shard-00{n}{suffix}").stat().st_size for n in range(3))

        # Replaced after ingest (other bytes, so another ETag): refused, never other bytes.
        victim = folder / f"shard-001{suffix}"
        victim.write_bytes(victim.read_bytes() + b"changed")
        first = len({key for key, _, _ in read_tar(plain[0])})  # shard-001's first sample
        with shardstore_module.Dataset(expected.index) as ds:
            assert_sample(ds[0], expected, expected.keys[0], 0)
            with pytest.raises(shardstore_module.ShardChangedError) as refused:
                ds[first]
        assert f"shard '{server.url}/shard-001{suffix}' changed since ingest" in str(refused.value)
        assert "run ingest again" in str(refused.value)
        got = subprocess.run(
            [shardstore_bin, "get", str(expected.index), expected.keys[first].decode(), "--ext", "txt"],
            capture_output=True,
            text=True,
        )
        assert got.returncode != 0 and "changed since ingest" in got.stderr, got.stderr
    finally:
        server.stop()
