"""Remote shards: ingest and reads from S3 (moto, with signature checking on) and a plain web
server, on 127.0.0.1 only, through the CLI and the Python package.

The servers are tools/remote-test-server.py, started here and stopped when the module's tests end
(they also exit when their standard input closes, should this process die).
"""

from __future__ import annotations

import json
import os
import subprocess
import zlib
from pathlib import Path
from typing import Iterator, List

import pytest
from conftest import Expected, Server, assert_sample, build_dataset, key_text, run_cli

@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, shardstore_bin: str) -> Expected:
    """The three-shard dataset, ingested from local files: what remote ingests must equal."""
    return build_dataset(tmp_path_factory.mktemp("local"), shardstore_bin)


@pytest.fixture(scope="module")
def s3(local: Expected) -> Iterator[Server]:
    server = Server("s3")
    try:
        server.command(op="bucket", bucket="data")
        for shard in local.shards:
            server.command(op="put", bucket="data", key=f"train/{shard.name}", file=str(shard))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def web(local: Expected) -> Iterator[Server]:
    server = Server("http", str(local.folder))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def aws(s3: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """This process's (and its children's) AWS settings for the s3 server; no AWS files."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.info["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.info["secret_access_key"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.info["endpoint"])
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    return s3


def checksum(expected: Expected, keys: List[bytes]) -> int:
    """What `shardstore bench` prints for these samples: crc32 over every member, in order."""
    crc = 0
    for key in keys:
        for data in expected.members[key].values():
            crc = zlib.crc32(data, crc)
    return crc


def test_s3_ingest_equals_a_local_ingest(shardstore_bin: str, shardstore_module, local: Expected, aws: Server, tmp_path: Path):
    index = tmp_path / "remote.sqlite"
    # A wildcard lists the bucket under train/shard-.
    report = json.loads(run_cli(shardstore_bin, "ingest", str(index), "s3://data/train/shard-*.tar", "--json"))
    assert report["shards_added"] == [f"s3://data/train/{shard.name}" for shard in local.shards]
    info = json.loads(run_cli(shardstore_bin, "info", str(index), "--json"))
    assert info["samples"] == len(local.keys)
    with shardstore_module.Dataset(index) as ds, shardstore_module.Dataset(local.index) as here:
        assert ds.strategy == "remote"
        assert "each sample is one range request" in ds.reason
        assert len(ds) == len(here) == len(local.keys)
        for position, key in enumerate(local.keys):
            assert_sample(ds[position], local, key, position)
        assert_sample(ds[key_text(local.keys[-1])], local, local.keys[-1], len(local.keys) - 1)
        batch = ds.get_batch([3, 0, len(local.keys) - 1])
        assert [sample["__key__"] for sample in batch] == [key_text(local.keys[p]) for p in (3, 0, len(local.keys) - 1)]
    # Splits assigned on the remote index select the same samples as on the local one.
    run_cli(shardstore_bin, "split", str(index), "assign", "val", "--keys", str(local.folder / "val-keys.txt"))
    with shardstore_module.Dataset(index, split="val") as val:
        assert [val[p]["__key__"] for p in range(len(val))] == [key_text(k) for k in local.splits["val"]]
    # The CLI's reads: get, cat, bench (checksums as over the local files), verify, export.
    key = local.keys[5]
    for ext, data in local.members[key].items():
        got = subprocess.run(
            [shardstore_bin, "get", str(index), key_text(key), "--ext", ext], capture_output=True, check=True
        ).stdout
        assert got == data
    texts = subprocess.run([shardstore_bin, "cat", str(index), "--ext", "txt"], capture_output=True, check=True).stdout
    assert texts == b"".join(local.members[k]["txt"] for k in local.keys if "txt" in local.members[k])
    bench = json.loads(run_cli(shardstore_bin, "bench", str(index), "--sequential", "--json"))
    assert bench["checksum"] == checksum(local, local.keys) and bench["strategy"] == "remote"
    verified = subprocess.run([shardstore_bin, "verify", str(index)], capture_output=True, text=True)
    assert verified.returncode == 0 and " 0 problems" in verified.stdout, verified
    out = tmp_path / "raw"
    run_cli(shardstore_bin, "export", str(index), "--format", "raw", "--out", str(out), "--split", "val")
    written = sorted(path.read_bytes() for path in out.rglob("*") if path.is_file())
    assert written == sorted(data for k in local.splits["val"] for data in local.members[k].values())


def test_s3_reingest_skips_unchanged_objects_and_refuses_replaced_ones(
    shardstore_bin: str, shardstore_module, local: Expected, aws: Server, tmp_path: Path
):
    aws.command(op="put", bucket="data", key="mutable/shard-000.tar", file=str(local.shards[0]))
    aws.command(op="put", bucket="data", key="mutable/shard-001.tar", file=str(local.shards[1]))
    index = tmp_path / "remote.sqlite"
    pattern = "s3://data/mutable/shard-{000..001}.tar"  # brace ranges: one HEAD each, no listing
    first = json.loads(run_cli(shardstore_bin, "ingest", str(index), pattern, "--json"))
    assert len(first["shards_added"]) == 2
    again = json.loads(run_cli(shardstore_bin, "ingest", str(index), pattern, "--json"))
    assert (again["shards_added"], again["shards_changed"]) == ([], [])
    assert len(again["shards_unchanged"]) == 2

    # Replaced after ingest (the same size, other bytes): reads are refused, never wrong.
    replaced = tmp_path / "replaced.tar"
    data = bytearray(local.shards[1].read_bytes())
    position = data.index(local.members[local.keys[10]]["txt"][:40])
    data[position] ^= 0xFF
    replaced.write_bytes(bytes(data))
    aws.command(op="put", bucket="data", key="mutable/shard-001.tar", file=str(replaced))
    count0 = sum(1 for k in local.keys if local.shard_of[k] == "shard-000.tar")
    with shardstore_module.Dataset(index) as ds:
        assert_sample(ds[0], local, local.keys[0], 0)  # shard-000 is as ingested
        with pytest.raises(shardstore_module.ShardChangedError) as refused:
            ds[count0]
    message = str(refused.value)
    assert "shard 's3://data/mutable/shard-001.tar' changed since ingest" in message
    assert "the object was replaced" in message and "run ingest again" in message
    got = subprocess.run(
        [shardstore_bin, "get", str(index), key_text(local.keys[count0]), "--ext", "txt"], capture_output=True, text=True
    )
    assert got.returncode != 0 and "changed since ingest" in got.stderr
    checked = subprocess.run([shardstore_bin, "verify", str(index)], capture_output=True, text=True)
    assert checked.returncode != 0 and "the object was replaced since ingest" in checked.stdout
    # Ingest again: the changed object is read again, the other skipped.
    third = json.loads(run_cli(shardstore_bin, "ingest", str(index), pattern, "--json"))
    assert third["shards_changed"] == ["s3://data/mutable/shard-001.tar"]
    assert third["shards_unchanged"] == ["s3://data/mutable/shard-000.tar"]
    with shardstore_module.Dataset(index) as ds:
        assert ds[count0]["__key__"] == key_text(local.keys[count0])


def test_s3_errors_name_the_object_and_never_the_secret(
    shardstore_bin: str, local: Expected, aws: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    index = tmp_path / "remote.sqlite"
    secret = "wrong-secret-" + "x" * 20
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    refused = subprocess.run(
        [shardstore_bin, "ingest", str(index), "s3://data/train/shard-000.tar"], capture_output=True, text=True
    )
    assert refused.returncode != 0 and not index.exists()
    assert "s3://data/train/shard-000.tar" in refused.stderr
    assert "access denied (HTTP 403" in refused.stderr and "check the credentials" in refused.stderr
    assert secret not in refused.stderr and aws.info["access_key_id"] not in refused.stderr
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws.info["secret_access_key"])
    missing = subprocess.run(
        [shardstore_bin, "ingest", str(index), "s3://data/train/shard-{000..009}.tar"], capture_output=True, text=True
    )
    assert missing.returncode != 0 and "s3://data/train/shard-003.tar" in missing.stderr and "404" in missing.stderr
    nothing = subprocess.run(
        [shardstore_bin, "ingest", str(index), "s3://data/train/nothing-*.tar"], capture_output=True, text=True
    )
    assert nothing.returncode != 0
    assert "no object in bucket 'data' matches 'train/nothing-*.tar'" in nothing.stderr
    # Unsigned requests to a bucket that needs signing: 403, saying so.
    anonymous = subprocess.run(
        [shardstore_bin, "ingest", str(index), "s3://data/train/shard-000.tar", "--no-sign-request"],
        capture_output=True,
        text=True,
    )
    assert anonymous.returncode != 0 and "403" in anonymous.stderr


def test_http_shards_by_brace_range(shardstore_bin: str, shardstore_module, local: Expected, web: Server, tmp_path: Path):
    index = tmp_path / "web.sqlite"
    run_cli(shardstore_bin, "ingest", str(index), f"{web.url}/shard-{{000..002}}.tar", "--quiet")
    with shardstore_module.Dataset(index) as ds:
        assert ds.strategy == "remote"
        for position, key in enumerate(local.keys):
            assert_sample(ds[position], local, key, position)
        for position, sample in enumerate(ds):
            assert_sample(sample, local, local.keys[position], position)
    bench = json.loads(run_cli(shardstore_bin, "bench", str(index), "--random", "50", "--json"))
    here = json.loads(run_cli(shardstore_bin, "bench", str(local.index), "--random", "50", "--json"))
    assert bench["checksum"] == here["checksum"]
    # Many requests in flight from each thread (libcurl's multi interface): the same checksum.
    batched = json.loads(
        run_cli(shardstore_bin, "bench", str(index), "--random", "50", "--threads", "2", "--in-flight", "8", "--json")
    )
    assert (batched["checksum"], batched["in_flight"], batched["threads"]) == (here["checksum"], 8, 2)
    with shardstore_module.Dataset(index) as ds:
        batch = ds.get_batch(list(range(len(local.keys) - 1, -1, -1)))
        for offset, sample in enumerate(batch):
            position = len(local.keys) - 1 - offset
            assert_sample(sample, local, local.keys[position], position)
    # A web server cannot be listed: a wildcard is refused, saying what to use.
    refused = subprocess.run(
        [shardstore_bin, "ingest", str(tmp_path / "other.sqlite"), f"{web.url}/shard-*.tar"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "a wildcard in an http(s) URL cannot be expanded" in refused.stderr


def _read_all_in_child(ds, queue) -> None:
    queue.put([(sample["__key__"], {k: bytes(v) for k, v in sample.items() if not k.startswith("__")}) for sample in ds])


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_remote_reads_in_child_processes(
    shardstore_bin: str, shardstore_module, local: Expected, web: Server, tmp_path: Path, method: str
):
    import multiprocessing

    index = tmp_path / "web.sqlite"
    run_cli(shardstore_bin, "ingest", str(index), f"{web.url}/shard-{{000..002}}.tar", "--quiet")
    context = multiprocessing.get_context(method)
    with shardstore_module.Dataset(index) as ds:
        assert_sample(ds[0], local, local.keys[0], 0)  # the parent's connections exist before the fork
        queue = context.Queue()
        child = context.Process(target=_read_all_in_child, args=(ds, queue))
        child.start()
        got = queue.get(timeout=60)
        child.join(timeout=60)
    assert child.exitcode == 0
    assert got == [(key_text(k), local.members[k]) for k in local.keys]


def test_retries_and_a_dead_server(shardstore_bin: str, local: Expected, tmp_path: Path):
    faults = Server("faults")
    try:
        # The faults server's objects are synthetic bytes, not tars: ingest fails on the tar, not
        # on the 503s before it, which the retries absorb.
        flaky = subprocess.run(
            [shardstore_bin, "ingest", str(tmp_path / "f.sqlite"), f"{faults.url}/503/2/4096/a.tar"],
            capture_output=True,
            text=True,
        )
        assert "HTTP 503" not in flaky.stderr, flaky.stderr
        assert "a.tar': not a tar archive: no valid tar header at offset 0" in flaky.stderr, flaky.stderr
        # A budget of 2 attempts does not outlast 3 failures: the 503 is reported, with the count.
        budget = subprocess.run(
            [shardstore_bin, "ingest", str(tmp_path / "g.sqlite"), f"{faults.url}/503/3/4096/b.tar", "--attempts", "2"],
            capture_output=True,
            text=True,
        )
        assert budget.returncode != 0 and "503" in budget.stderr and "after 2 attempts" in budget.stderr, budget.stderr
        # The same budget from the environment, as the AWS tools take it.
        from_environment = subprocess.run(
            [shardstore_bin, "ingest", str(tmp_path / "h.sqlite"), f"{faults.url}/503/3/4096/c.tar"],
            capture_output=True,
            text=True,
            env={**os.environ, "AWS_MAX_ATTEMPTS": "2"},
        )
        assert from_environment.returncode != 0 and "after 2 attempts" in from_environment.stderr
    finally:
        faults.stop()
    port = faults.info["port"]
    dead = subprocess.run(
        [shardstore_bin, "ingest", str(tmp_path / "d.sqlite"), f"http://127.0.0.1:{port}/shard-000.tar"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dead.returncode != 0 and f"http://127.0.0.1:{port}/shard-000.tar" in dead.stderr
    assert "stat failed" in dead.stderr


def test_cache_folder_downloads_each_shard_once_and_reads_like_tarfile(
    shardstore_bin: str, shardstore_module, local: Expected, web: Server, tmp_path: Path
):
    import pickle
    import tarfile

    index = tmp_path / "web.sqlite"
    run_cli(shardstore_bin, "ingest", str(index), f"{web.url}/shard-{{000..002}}.tar", "--quiet")
    cache = tmp_path / "cache"
    cache.mkdir()
    with shardstore_module.Dataset(index, cache_dir=cache, cache_limit="1G") as ds:
        assert ds.strategy == "remote"
        assert f"cached whole in the cache folder '{cache}' (limit 1.1 GB" in ds.reason
        for position, key in enumerate(local.keys):
            assert_sample(ds[position], local, key, position)
        # The bytes tarfile reads from the shard itself, member by member.
        last = local.keys[-1]
        with tarfile.open(local.folder / local.shard_of[last]) as tar:
            for member in tar.getmembers():
                if member.name.encode("utf-8", "surrogateescape").startswith(last + b"."):
                    ext = member.name.rsplit("/", 1)[-1].split(".", 1)[1].lower()
                    assert bytes(ds[-1][ext]) == tar.extractfile(member).read()  # type: ignore[union-attr]
        # Pickled (a spawned worker), the dataset keeps its cache folder.
        again = pickle.loads(pickle.dumps(ds))
        assert f"cache folder '{cache}'" in again.reason
        again.close()
    copies = sorted(path.name for path in cache.iterdir())
    assert [name.split("-")[0] + "-" + name.split("-")[1] for name in copies] == [shard.name for shard in local.shards]
    for shard in local.shards:
        [copy] = [path for path in cache.iterdir() if path.name.startswith(shard.name + "-")]
        assert copy.read_bytes() == shard.read_bytes()
    with pytest.raises(TypeError, match="cache_limit must be an int"):
        shardstore_module.Dataset(index, cache_dir=cache, cache_limit=1.5)
    with pytest.raises(shardstore_module.InvalidArgumentError, match="does not exist or is not a folder"):
        shardstore_module.Dataset(index, cache_dir=tmp_path / "missing")


def test_cli_reads_remote_shards_through_a_cache_folder(
    shardstore_bin: str, local: Expected, tmp_path: Path
):
    # A server of its own, stopped half-way: reads after that come from the folder alone.
    served = tmp_path / "served"
    served.mkdir()
    for shard in local.shards:
        (served / shard.name).write_bytes(shard.read_bytes())
    server = Server("http", str(served))
    index = tmp_path / "web.sqlite"
    cache = tmp_path / "cache"
    cache.mkdir()
    try:
        run_cli(shardstore_bin, "ingest", str(index), f"{server.url}/shard-{{000..002}}.tar", "--quiet")
        info = run_cli(shardstore_bin, "info", str(index), "--strategy", "--cache", str(cache))
        assert f"reason     remote: 3 shards are remote (object storage or a web server), cached whole in the cache folder '{cache}'" in info
        key = local.keys[5]
        for ext, data in local.members[key].items():
            got = subprocess.run(
                [shardstore_bin, "get", str(index), key_text(key), "--ext", ext, "--cache", str(cache)],
                capture_output=True,
                check=True,
            ).stdout
            assert got == data
        assert [path.name.startswith(local.shard_of[key] + "-") for path in cache.iterdir()] == [True]
        texts = subprocess.run(
            [shardstore_bin, "cat", str(index), "--ext", "txt", "--cache", str(cache), "--verbose"],
            capture_output=True,
            check=True,
        )
        assert texts.stdout == b"".join(local.members[k]["txt"] for k in local.keys if "txt" in local.members[k])
        assert b"cached whole in the cache folder" in texts.stderr
        assert len(list(cache.iterdir())) == 3
    finally:
        server.stop()
    # The server is gone: with the folder, get and bench still read; without it they fail.
    offline = subprocess.run(
        [shardstore_bin, "get", str(index), key_text(local.keys[0]), "--ext", "txt", "--cache", str(cache)],
        capture_output=True,
    )
    assert offline.returncode == 0 and offline.stdout == local.members[local.keys[0]]["txt"], offline.stderr
    bench = json.loads(run_cli(shardstore_bin, "bench", str(index), "--sequential", "--json", "--cache", str(cache)))
    assert bench["checksum"] == checksum(local, local.keys)
    refused = subprocess.run(
        [shardstore_bin, "get", str(index), key_text(local.keys[0]), "--ext", "txt", "--attempts", "1"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and server.url in refused.stderr
    # A limit below a shard's size: range requests, and the reason says so.
    small = run_cli(shardstore_bin, "info", str(index), "--strategy", "--cache", str(cache), "--cache-limit", "1K")
    assert "all are larger than the 1.0 kB limit of the cache folder" in small


@pytest.mark.parametrize("name", ["gzip", "xz-blocks", "zstd"])
def test_s3_compressed_shards_equal_a_local_ingest(
    shardstore_bin: str, shardstore_module, local: Expected, aws: Server, tmp_path: Path, name: str
):
    from test_compressed import COMPRESSORS

    suffix, compress = COMPRESSORS[name]
    for shard in local.shards:
        packed = tmp_path / (shard.name + suffix[len(".tar") :])
        packed.write_bytes(compress(shard.read_bytes()))
        aws.command(op="put", bucket="data", key=f"packed-{name}/{packed.name}", file=str(packed))
    index = tmp_path / "remote.sqlite"
    run_cli(shardstore_bin, "ingest", str(index), f"s3://data/packed-{name}/shard-*{suffix}", "--seek-span", "64K", "--quiet")
    info = json.loads(run_cli(shardstore_bin, "info", str(index), "--json"))
    assert info["samples"] == len(local.keys)
    with shardstore_module.Dataset(index) as ds:
        assert ds.strategy == "remote"
        for position in [len(local.keys) - 1, 0, *range(len(local.keys))]:
            assert_sample(ds[position], local, local.keys[position], position)
    bench = json.loads(run_cli(shardstore_bin, "bench", str(index), "--random", "40", "--json"))
    here = json.loads(run_cli(shardstore_bin, "bench", str(local.index), "--random", "40", "--json"))
    assert bench["checksum"] == here["checksum"]


def test_retry_settings_from_the_environment_reach_python(
    shardstore_module, local: Expected, web: Server, tmp_path: Path, shardstore_bin: str, monkeypatch: pytest.MonkeyPatch
):
    index = tmp_path / "web.sqlite"
    run_cli(shardstore_bin, "ingest", str(index), f"{web.url}/shard-{{000..002}}.tar", "--quiet")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "none")
    with pytest.raises(shardstore_module.InvalidArgumentError) as refused:
        shardstore_module.Dataset(index)
    assert "max_attempts (AWS_MAX_ATTEMPTS or the profile's max_attempts) is 'none'" in str(refused.value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("SHARDSTORE_RETRY_SECONDS", "20")
    with shardstore_module.Dataset(index) as ds:
        assert_sample(ds[0], local, local.keys[0], 0)
