"""Fixtures: datasets written with Python's tarfile, ingested by the shardstore CLI.

The CLI is $SHARDSTORE_BIN, or built here with `swift build --product shardstore` at the
repository root ($SHARDSTORE_SOURCE_DIR, else two folders up from this file).

The expected contents come from reading the tars back with tarfile, never from ShardStore.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

# webdataset 1.0's base_plus_ext, on bytes.
_KEY_RULE = re.compile(rb"^((?:.*/|)[^.]+)[.]([^/]*)$", re.DOTALL)

NON_UTF8_KEY = b"caf\xe9-\xff\xfe-0001"
STRATEGIES = ("memory", "mmap", "pread")
LOOKUPS = ("table", "file", "statements")


def repository_root() -> Path:
    if os.environ.get("SHARDSTORE_SOURCE_DIR"):
        return Path(os.environ["SHARDSTORE_SOURCE_DIR"]).resolve()
    return Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shardstore_bin() -> str:
    """The shardstore CLI."""
    if os.environ.get("SHARDSTORE_BIN"):
        path = os.environ["SHARDSTORE_BIN"]
        assert os.access(path, os.X_OK), f"SHARDSTORE_BIN={path} is not an executable"
        return path
    root = repository_root()
    subprocess.run(["swift", "build", "--product", "shardstore"], cwd=root, check=True)
    bin_path = subprocess.run(
        ["swift", "build", "--show-bin-path"], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()
    return str(Path(bin_path) / "shardstore")


def run_cli(shardstore_bin: str, *arguments: str, cwd: Optional[Path] = None) -> str:
    result = subprocess.run([shardstore_bin, *arguments], cwd=cwd, capture_output=True)
    assert result.returncode == 0, f"shardstore {' '.join(arguments)}: {result.stderr.decode(errors='replace')}"
    return result.stdout.decode("utf-8", "surrogateescape")


@dataclass
class Expected:
    """What a dataset holds, from tarfile: samples in index order (shard, first member)."""

    index: Path
    folder: Path
    keys: List[bytes] = field(default_factory=list)
    members: Dict[bytes, Dict[str, bytes]] = field(default_factory=dict)
    shard_of: Dict[bytes, str] = field(default_factory=dict)
    splits: Dict[str, List[bytes]] = field(default_factory=dict)
    metadata: Dict[str, object] = field(default_factory=dict)
    shards: List[Path] = field(default_factory=list)

    def split_keys(self, split: Optional[str]) -> List[bytes]:
        return self.keys if split is None else self.splits[split]


def write_tar(path: Path, tar_format: int, members: List[Tuple[bytes, bytes]]) -> None:
    """Writes members (raw name bytes, data) with tarfile; non-UTF-8 names via surrogateescape."""
    with tarfile.open(path, "w", format=tar_format, encoding="utf-8", errors="surrogateescape") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name.decode("utf-8", "surrogateescape"))
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))


def read_tar(path: Path) -> List[Tuple[bytes, str, bytes]]:
    """(key, extension, bytes) of every member, read back by tarfile."""
    result = []
    with tarfile.open(path, "r", encoding="utf-8", errors="surrogateescape") as tar:
        for info in tar:
            if not info.isfile():
                continue
            name = info.name.encode("utf-8", "surrogateescape")
            match = _KEY_RULE.match(name)
            assert match is not None, name
            data = tar.extractfile(info).read()
            result.append((match.group(1), match.group(2).decode("utf-8").lower(), data))
    return result


def _npy(values: List[float]) -> bytes:
    import numpy

    buffer = io.BytesIO()
    numpy.save(buffer, numpy.array(values, dtype=numpy.float32).reshape(len(values) // 2, 2))
    return buffer.getvalue()


def _sample_members(rng: random.Random, key: bytes, number: int) -> List[Tuple[bytes, bytes]]:
    members = [
        (key + b".jpg", rng.randbytes(rng.randrange(1, 3000))),
        (key + b".cls", str(number % 7).encode()),
        (key + b".json", ('{"n": %d, "name": "sample %d"}' % (number, number)).encode()),
        (key + b".txt", ("text of sample %d \u00e9" % number).encode("utf-8")),
        (key + b".npy", _npy([float(number), 1.5, -2.0, 0.25])),
    ]
    if number % 5 == 0:
        members.append((key + b".seg.png", rng.randbytes(700)))
    if number % 6 == 0:
        members.append((key + b".empty", b""))
    return members


def build_dataset(folder: Path, shardstore_bin: str) -> Expected:
    """Three shards in three tar formats, ingested, with splits and metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(11)
    long_dir = b"deep/" + b"d" * 90 + b"/" + b"e" * 40 + b"/"
    shard_keys = [
        # GNU: long names (././@LongLink) and non-UTF-8 names, written as raw bytes.
        ("shard-000.tar", tarfile.GNU_FORMAT, [b"%06d" % n for n in range(0, 8)] + [long_dir + b"gnu-long-1", NON_UTF8_KEY]),
        # pax: long names and non-UTF-8 names (hdrcharset=BINARY) in pax records.
        (
            "shard-001.tar",
            tarfile.PAX_FORMAT,
            [b"%06d" % n for n in range(8, 14)] + [long_dir + b"pax-long-2", b"pax-\xc3\xa9t\xc3\xa9-\xe9"],
        ),
        # ustar: a long path split into prefix and name.
        ("shard-002.tar", tarfile.USTAR_FORMAT, [b"%06d" % n for n in range(14, 20)] + [b"u" * 120 + b"/ustar-long"]),
    ]
    expected = Expected(index=folder / "index.sqlite", folder=folder)
    number = 0
    for shard_name, tar_format, keys in shard_keys:
        members: List[Tuple[bytes, bytes]] = []
        for key in keys:
            members.extend(_sample_members(rng, key, number))
            number += 1
        if tar_format != tarfile.USTAR_FORMAT:
            # A sample whose members are not adjacent: one sample all the same.
            members.append((keys[0] + b".extra", b"came back later"))
        path = folder / shard_name
        write_tar(path, tar_format, members)
        expected.shards.append(path)
        for key, ext, data in read_tar(path):
            if key not in expected.members:
                expected.keys.append(key)
                expected.members[key] = {}
                expected.shard_of[key] = shard_name
            assert ext not in expected.members[key]
            expected.members[key][ext] = data
    index = str(expected.index)
    run_cli(shardstore_bin, "ingest", index, str(folder / "shard-*.tar"), "--quiet")
    # train: the samples of shard-000 and shard-001; val: some keys (moved out of train).
    run_cli(shardstore_bin, "split", index, "assign", "train", "--shards", str(folder / "shard-00[01].tar"))
    val_keys = [b"000003", NON_UTF8_KEY, b"000015", long_dir + b"pax-long-2"]
    (folder / "val-keys.txt").write_bytes(b"".join(key + b"\n" for key in val_keys))
    run_cli(shardstore_bin, "split", index, "assign", "val", "--keys", str(folder / "val-keys.txt"))
    expected.splits["val"] = [key for key in expected.keys if key in val_keys]
    expected.splits["train"] = [
        key for key in expected.keys if expected.shard_of[key] in ("shard-000.tar", "shard-001.tar") and key not in val_keys
    ]
    run_cli(shardstore_bin, "meta", index, "set", "license", "CC-BY-4.0")
    run_cli(shardstore_bin, "meta", index, "set", "classes", '["cat", "dog", "fish"]')
    expected.metadata = {"license": "CC-BY-4.0", "classes": ["cat", "dog", "fish"]}
    return expected


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, shardstore_bin: str) -> Expected:
    """The shared, read-only dataset (tests must not modify it)."""
    return build_dataset(tmp_path_factory.mktemp("corpus"), shardstore_bin)


@pytest.fixture
def private_corpus(tmp_path: Path, shardstore_bin: str) -> Expected:
    """A dataset of this test's own, which it may change."""
    return build_dataset(tmp_path / "private", shardstore_bin)


def key_text(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def assert_sample(sample: dict, expected: Expected, key: bytes, position: int) -> None:
    """The sample holds exactly the key's members, byte for byte, as read-only memoryviews."""
    assert sample["__key__"] == key_text(key)
    assert sample["__index__"] == position
    members = {name: value for name, value in sample.items() if not name.startswith("__")}
    assert sorted(members) == sorted(expected.members[key])
    for ext, view in members.items():
        assert isinstance(view, memoryview), (key, ext, type(view))
        assert view.readonly
        assert view.tobytes() == expected.members[key][ext], (key, ext)


@pytest.fixture(scope="session")
def shardstore_module():
    import shardstore

    return shardstore


def copy_dataset(expected: Expected, destination: Path) -> Expected:
    """A copy of a dataset's folder (shards are stored relative to the index)."""
    shutil.copytree(expected.folder, destination)
    copied = Expected(**{**expected.__dict__})
    copied.folder = destination
    copied.index = destination / expected.index.name
    copied.shards = [destination / path.name for path in expected.shards]
    return copied


REMOTE_TEST_SERVER = repository_root() / "tools" / "remote-test-server.py"


class Server:
    """One tools/remote-test-server.py process: its announcement, and commands for the s3 one."""

    def __init__(self, *arguments: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(REMOTE_TEST_SERVER), *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            self.process.kill()
            raise RuntimeError(f"remote-test-server.py {' '.join(arguments)} did not start (is moto[server] installed?)")
        self.info: Dict[str, str] = json.loads(line)
        self.url = f"http://127.0.0.1:{self.info['port']}"

    def command(self, **fields: str) -> Dict[str, str]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(fields) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        assert reply.get("ok"), reply
        return reply

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
