"""Processes and threads: reads after fork, in multiprocessing workers (fork, forkserver, spawn),
from several threads, and while another thread forks."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import signal
import threading
import time

import pytest

import workers
from conftest import Expected, key_text


def expected_digests(corpus: Expected, positions):
    result = []
    for position in positions:
        key = corpus.keys[position]
        members = {ext: hashlib.sha256(data).hexdigest() for ext, data in corpus.members[key].items()}
        result.append((key_text(key), members))
    return result


def child_reads_everything(ds, corpus: Expected) -> int:
    """In a forked child: 0 when every sample is right, else 1 (never raises)."""
    try:
        got = [workers.digest(ds[position]) for position in range(len(ds))]
        got += [workers.digest(sample) for sample in ds.get_batch(list(range(len(ds))))]
        got += [workers.digest(ds[corpus.keys[position]]) for position in range(len(ds))]
        wanted = expected_digests(corpus, range(len(ds))) * 3
        return 0 if got == wanted else 1
    except BaseException:
        return 2


# A child that has not ended after this long is deadlocked (it reads a few dozen samples): it is
# killed and the test fails, instead of hanging the suite. Not a timing assertion.
DEADLOCK_SECONDS = 120


def wait_exit_status(pid: int):
    """The child's exit status, or "deadlocked" (after killing it) when it never ends."""
    deadline = time.monotonic() + DEADLOCK_SECONDS
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "deadlocked"
        time.sleep(0.01)


FORK_COMBINATIONS = [("memory", "table")] + [(strategy, lookup) for strategy in ("mmap", "pread")
                                            for lookup in ("table", "file", "statements")]


@pytest.mark.parametrize("strategy,lookup", FORK_COMBINATIONS)
def test_fork_child_reads_a_dataset_its_parent_opened(shardstore_module, corpus: Expected, strategy, lookup):
    ds = shardstore_module.Dataset(corpus.index, strategy=strategy, lookup=lookup)
    before = ds[3]  # the parent has used its connection before the fork
    pid = os.fork()
    if pid == 0:
        status = child_reads_everything(ds, corpus)
        if status == 0 and before["jpg"].tobytes() != corpus.members[corpus.keys[3]]["jpg"]:
            status = 3  # a lease taken before the fork stays valid in the child
        os._exit(status)
    assert wait_exit_status(pid) == 0
    # And the parent goes on reading.
    assert [workers.digest(ds[position]) for position in range(len(ds))] == expected_digests(corpus, range(len(ds)))
    ds.close()


def test_fork_child_may_close_and_reopen(shardstore_module, corpus: Expected):
    ds = shardstore_module.Dataset(corpus.index)
    ds[0]
    pid = os.fork()
    if pid == 0:
        try:
            ds.close()
            again = shardstore_module.Dataset(corpus.index)
            os._exit(child_reads_everything(again, corpus))
        except BaseException:
            os._exit(4)
    assert wait_exit_status(pid) == 0
    assert workers.digest(ds[1]) == expected_digests(corpus, [1])[0]
    ds.close()


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_multiprocessing_pool_reads(shardstore_module, corpus: Expected, method):
    context = multiprocessing.get_context(method)
    ds = shardstore_module.Dataset(corpus.index, split="train", strategy="mmap")
    ds[0]
    count = len(ds)
    chunks = [list(range(start, count, 3)) for start in range(3)]
    with context.Pool(2) as pool:
        results = pool.starmap_async(workers.read_digests, [(ds, chunk) for chunk in chunks]).get(DEADLOCK_SECONDS)
        batch_results = pool.starmap_async(workers.read_batch_digests, [(ds, chunk[::-1]) for chunk in chunks]).get(
            DEADLOCK_SECONDS
        )
    pids = {pid for result in results + batch_results for pid, _, _ in result}
    assert os.getpid() not in pids
    train = [corpus.keys.index(key) for key in corpus.splits["train"]]
    for chunk, result, batch in zip(chunks, results, batch_results):
        wanted = expected_digests(corpus, [train[position] for position in chunk])
        assert [(key, members) for _, key, members in result] == wanted
        assert [(key, members) for _, key, members in batch] == wanted[::-1]
    ds.close()


def test_multiprocessing_fork_process_inherits_the_dataset(shardstore_module, corpus: Expected):
    context = multiprocessing.get_context("fork")
    workers.DATASET = shardstore_module.Dataset(corpus.index, strategy="pread")
    try:
        workers.DATASET[2]
        queue = context.Queue()
        processes = [
            context.Process(target=workers.read_inherited, args=(range(start, len(corpus.keys), 2), queue))
            for start in range(2)
        ]
        for process in processes:
            process.start()
        results = [queue.get(timeout=DEADLOCK_SECONDS) for _ in processes]
        for process in processes:
            process.join(timeout=DEADLOCK_SECONDS)
            assert process.exitcode == 0
        got = sorted((key, members) for result in results for _, key, members in result)
        assert got == sorted(expected_digests(corpus, range(len(corpus.keys))))
    finally:
        workers.DATASET.close()
        workers.DATASET = None


@pytest.mark.parametrize("strategy", ["memory", "mmap", "pread"])
def test_threads_read_one_dataset(shardstore_module, corpus: Expected, strategy):
    ds = shardstore_module.Dataset(corpus.index, strategy=strategy)
    wanted = expected_digests(corpus, range(len(ds)))
    failures = []

    def read(seed: int) -> None:
        try:
            for round_ in range(30):
                positions = [(seed * 7 + round_ * 5 + step) % len(ds) for step in range(len(ds))]
                for position in positions:
                    if workers.digest(ds[position]) != wanted[position]:
                        failures.append((seed, position))
                batch = ds.get_batch(positions)
                if [workers.digest(sample) for sample in batch] != [wanted[position] for position in positions]:
                    failures.append((seed, "batch"))
        except BaseException as error:  # reported below
            failures.append((seed, repr(error)))

    threads = [threading.Thread(target=read, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    ds.close()


@pytest.mark.parametrize("strategy,lookup", FORK_COMBINATIONS)
def test_threads_read_while_another_thread_forks(shardstore_module, corpus: Expected, strategy, lookup):
    ds = shardstore_module.Dataset(corpus.index, strategy=strategy, lookup=lookup)
    wanted = expected_digests(corpus, range(len(ds)))
    stop = threading.Event()
    failures = []
    reads = [0]

    def read(seed: int) -> None:
        try:
            position = seed
            while not stop.is_set():
                position = (position + 7) % len(ds)
                if workers.digest(ds[position]) != wanted[position]:
                    failures.append(position)
                reads[0] += 1
        except BaseException as error:
            failures.append(repr(error))

    threads = [threading.Thread(target=read, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    try:
        statuses = []
        for _ in range(8):
            pid = os.fork()
            if pid == 0:
                os._exit(child_reads_everything(ds, corpus))
            statuses.append(wait_exit_status(pid))
            if statuses[-1] != 0:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert statuses == [0] * 8
    assert failures == []
    assert reads[0] > 0
    ds.close()


def test_close_waits_for_reads_in_flight(shardstore_module, corpus: Expected):
    ds = shardstore_module.Dataset(corpus.index, strategy="pread")
    errors = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                try:
                    ds[1]
                except shardstore_module.DatasetClosedError:
                    return
        except BaseException as error:
            errors.append(repr(error))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    ds[0]
    ds.close()
    done.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ds.closed


def test_pickled_dataset_is_small(shardstore_module, corpus: Expected):
    ds = shardstore_module.Dataset(corpus.index, split="train")
    assert len(pickle.dumps(ds)) < 1000
    ds.close()


def test_relative_index_after_chdir(corpus: Expected):
    """A dataset opened by a relative path keeps reading after the process changes directory: in
    new SQLite connections of its own (a second thread with SQL lookups), of a forked child, and
    for splits and metadata. Runs in a fresh interpreter: the test process keeps its directory."""
    import subprocess
    import sys

    key = corpus.keys[0]
    wanted = {ext: hashlib.sha256(data).hexdigest() for ext, data in corpus.members[key].items()}
    code = f"""
import hashlib, os, sys, threading
import shardstore
os.chdir({str(corpus.index.parent)!r})
ds = shardstore.Dataset({corpus.index.name!r}, strategy="pread", lookup="statements")
def digest():
    return {{k: hashlib.sha256(v).hexdigest() for k, v in ds[0].items() if not k.startswith("__")}}
first = digest()
os.chdir("/")
seen = []
def reader():
    seen.append(digest())
# The main thread's connection is busy inside a read while another thread needs its own.
threads = [threading.Thread(target=reader) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
assert all(s == first for s in seen) and len(seen) == 4, seen
assert isinstance(ds.splits, dict) and isinstance(ds.metadata, dict)
pid = os.fork()
if pid == 0:
    os._exit(0 if digest() == first else 1)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
print(repr(first))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(wanted)
