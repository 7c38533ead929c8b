"""Errors raise the shardstore.Error subclass of their status code, with the library's message."""

from __future__ import annotations

import os
import pickle

import pytest

from conftest import Expected


def test_missing_index(shardstore_module, tmp_path):
    path = tmp_path / "nothing-here.sqlite"
    with pytest.raises(shardstore_module.IndexNotFoundError) as caught:
        shardstore_module.Dataset(path)
    error = caught.value
    assert isinstance(error, FileNotFoundError) and isinstance(error, shardstore_module.Error)
    assert error.code == shardstore_module.ErrorCode.INDEX_NOT_FOUND == 2
    assert str(path) in error.message
    assert str(error) == error.message
    assert "\n" not in error.message


def test_not_an_index(shardstore_module, tmp_path):
    path = tmp_path / "text.sqlite"
    path.write_text("this is not SQLite\n" * 100)
    with pytest.raises(shardstore_module.NotAnIndexError) as caught:
        shardstore_module.Dataset(path)
    assert caught.value.code == shardstore_module.ErrorCode.NOT_AN_INDEX
    assert str(path) in caught.value.message


def test_unknown_key(shardstore_module, corpus: Expected):
    with shardstore_module.Dataset(corpus.index) as ds:
        for key in ("no-such-key", b"no-such-\xffkey"):
            with pytest.raises(shardstore_module.UnknownKeyError) as caught:
                ds[key]
            error = caught.value
            assert isinstance(error, KeyError)
            assert error.code == shardstore_module.ErrorCode.UNKNOWN_KEY
            assert "no-such-" in error.message
            assert str(error) == error.message
        with pytest.raises(KeyError):
            ds.position("no-such-key")


def test_index_out_of_range(shardstore_module, corpus: Expected):
    with shardstore_module.Dataset(corpus.index) as ds:
        count = len(ds)
        for position in (count, count + 5, -count - 1, 2**70):
            with pytest.raises(shardstore_module.OutOfRangeError) as caught:
                ds[position]
            error = caught.value
            assert isinstance(error, IndexError)
            assert error.code == shardstore_module.ErrorCode.OUT_OF_RANGE
            assert str(count) in error.message
        with pytest.raises(shardstore_module.OutOfRangeError) as caught:
            ds.get_batch([0, 1, count])
        assert str(count) in caught.value.message


def test_unknown_split_and_extension(shardstore_module, corpus: Expected):
    with pytest.raises(shardstore_module.UnknownSplitError) as caught:
        shardstore_module.Dataset(corpus.index, split="holdout")
    assert caught.value.code == shardstore_module.ErrorCode.UNKNOWN_SPLIT
    assert "holdout" in caught.value.message
    with pytest.raises(shardstore_module.UnknownExtensionError) as caught:
        shardstore_module.Dataset(corpus.index, extensions=["wav"])
    assert caught.value.code == shardstore_module.ErrorCode.UNKNOWN_EXTENSION
    assert "wav" in caught.value.message


def test_invalid_arguments(shardstore_module, corpus: Expected):
    for options in ({"strategy": "fastest"}, {"lookup": "guess"}, {"memory_limit": "lots"}):
        with pytest.raises(shardstore_module.InvalidArgumentError) as caught:
            shardstore_module.Dataset(corpus.index, **options)
        assert caught.value.code == shardstore_module.ErrorCode.INVALID_ARGUMENT
        assert str(next(iter(options.values()))) in caught.value.message
    with pytest.raises(TypeError):
        shardstore_module.Dataset(corpus.index)[1.5]


def test_rewritten_shard_after_ingest(shardstore_module, private_corpus: Expected):
    shard = private_corpus.shards[1]
    ds = shardstore_module.Dataset(private_corpus.index, strategy="pread")
    with open(shard, "ab") as file:
        file.write(b"\0" * 10240)
    # Open checks every shard: a new open refuses.
    with pytest.raises(shardstore_module.ShardChangedError) as caught:
        shardstore_module.Dataset(private_corpus.index)
    error = caught.value
    assert error.code == shardstore_module.ErrorCode.SHARD_CHANGED
    assert shard.name in error.message
    assert "ingest" in error.message
    ds.close()


def test_touched_shard_after_ingest(shardstore_module, private_corpus: Expected):
    shard = private_corpus.shards[0]
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    with pytest.raises(shardstore_module.ShardChangedError) as caught:
        shardstore_module.Dataset(private_corpus.index, split="train")
    assert shard.name in caught.value.message


def test_shard_truncated_after_open(shardstore_module, private_corpus: Expected):
    ds = shardstore_module.Dataset(private_corpus.index, strategy="pread")
    shard = private_corpus.shards[2]
    last = max(position for position, key in enumerate(private_corpus.keys) if private_corpus.shard_of[key] == shard.name)
    os.truncate(shard, 1024)
    with pytest.raises(shardstore_module.Error) as caught:
        ds[last]
    # shardstore.h: SHARDSTORE_SHARD_CHANGED covers a shard "truncated since ingest".
    assert isinstance(caught.value, shardstore_module.ShardChangedError), repr(caught.value)
    assert caught.value.code == shardstore_module.ErrorCode.SHARD_CHANGED
    assert shard.name in caught.value.message and "ingest" in caught.value.message
    ds.close()


def test_errors_pickle(shardstore_module):
    error = shardstore_module.UnknownKeyError("no sample has key 'x' in /a/index.sqlite", 5)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is shardstore_module.UnknownKeyError
    assert (copy.code, copy.message) == (error.code, error.message)
