"""Reading: bytes equal to tarfile's for every member, every strategy and lookup, by position,
key, batch and iteration; splits, metadata, decode."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from conftest import LOOKUPS, NON_UTF8_KEY, STRATEGIES, Expected, assert_sample, key_text


def combinations():
    for strategy in STRATEGIES:
        for lookup in LOOKUPS:
            if strategy == "memory" and lookup != "table":
                continue  # refused: see test_memory_strategy_needs_the_location_table
            yield strategy, lookup


@pytest.mark.parametrize("split", [None, "train", "val"])
@pytest.mark.parametrize("strategy,lookup", list(combinations()))
def test_every_member_equals_tarfile(shardstore_module, corpus: Expected, strategy, lookup, split):
    keys = corpus.split_keys(split)
    with shardstore_module.Dataset(corpus.index, split=split, strategy=strategy, lookup=lookup) as ds:
        assert ds.strategy == strategy
        assert ds.lookup == lookup
        assert isinstance(ds.reason, str) and ds.reason
        assert len(ds) == len(keys)
        for position, key in enumerate(keys):
            assert_sample(ds[position], corpus, key, position)
            assert_sample(ds[position - len(keys)], corpus, key, position)
            assert_sample(ds[key], corpus, key, position)
            assert_sample(ds[key_text(key)], corpus, key, position)
            assert ds.position(key) == position
        batch_positions = [len(keys) - 1, 0, -1, 2, 2]
        batch = ds.get_batch(batch_positions)
        assert len(batch) == len(batch_positions)
        for wanted, sample in zip(batch_positions, batch):
            position = wanted % len(keys)
            assert_sample(sample, corpus, keys[position], position)


@pytest.mark.parametrize("lookup", ["file", "statements"])
def test_memory_strategy_needs_the_location_table(shardstore_module, corpus: Expected, lookup):
    with pytest.raises(shardstore_module.InvalidArgumentError) as caught:
        shardstore_module.Dataset(corpus.index, strategy="memory", lookup=lookup)
    error = caught.value
    assert error.code == shardstore_module.ErrorCode.INVALID_ARGUMENT
    assert isinstance(error, ValueError)
    assert "memory" in error.message
    # Messages speak the API's terms, not the CLI's flags (issue 11).
    assert "--" not in error.message, error.message


def test_non_utf8_key_is_str_with_surrogates(shardstore_module, corpus: Expected):
    with shardstore_module.Dataset(corpus.index) as ds:
        sample = ds[NON_UTF8_KEY]
        key = sample["__key__"]
        assert isinstance(key, str)
        assert key.encode("utf-8", "surrogateescape") == NON_UTF8_KEY
        assert os.fsencode(key) == NON_UTF8_KEY
        assert ds[key]["__index__"] == sample["__index__"]
        assert NON_UTF8_KEY in ds and key in ds and b"no such key" not in ds and 3 not in ds


def test_long_names_in_gnu_pax_and_ustar(shardstore_module, corpus: Expected):
    long_keys = [key for key in corpus.keys if len(key) > 100]
    assert {corpus.shard_of[key] for key in long_keys} == {"shard-000.tar", "shard-001.tar", "shard-002.tar"}
    with shardstore_module.Dataset(corpus.index) as ds:
        for key in long_keys:
            assert_sample(ds[key], corpus, key, corpus.keys.index(key))


def test_iteration_is_storage_order(shardstore_module, corpus: Expected):
    with shardstore_module.Dataset(corpus.index) as ds:
        order = list(ds.storage_positions())
        assert sorted(order) == list(range(len(corpus.keys)))
        # Shard by shard, front to back: the shards' samples come in shard order.
        shards = [corpus.shard_of[corpus.keys[position]] for position in order]
        assert shards == sorted(shards)
        samples = list(ds)
        assert [sample["__index__"] for sample in samples] == order
        for sample in samples:
            position = sample["__index__"]
            assert_sample(sample, corpus, corpus.keys[position], position)


def test_iteration_of_a_split(shardstore_module, corpus: Expected):
    with shardstore_module.Dataset(corpus.index, split="train") as ds:
        samples = list(ds)
        assert sorted(sample["__index__"] for sample in samples) == list(range(len(corpus.splits["train"])))
        for sample in samples:
            position = sample["__index__"]
            assert_sample(sample, corpus, corpus.splits["train"][position], position)


def test_get_batch_accepts_int64_buffers(shardstore_module, corpus: Expected):
    import array

    import numpy

    with shardstore_module.Dataset(corpus.index) as ds:
        for positions in (array.array("q", [5, 1, -2]), numpy.array([5, 1, -2], dtype=numpy.int64), range(5, 0, -2)):
            batch = ds.get_batch(positions)
            wanted = [position % len(ds) for position in positions]
            assert [sample["__index__"] for sample in batch] == wanted
            for sample, position in zip(batch, wanted):
                assert_sample(sample, corpus, corpus.keys[position], position)
        empty = ds.get_batch([])
        assert len(empty) == 0 and list(empty) == [] and len(empty.views) == 0 and empty.offsets == [0]


def test_slices_read_a_batch(shardstore_module, corpus: Expected):
    with shardstore_module.Dataset(corpus.index) as ds:
        for selection in (slice(2, 9, 3), slice(None, None, -4), slice(-3, None)):
            positions = list(range(len(ds)))[selection]
            samples = ds[selection]
            assert [sample["__index__"] for sample in samples] == positions
            for sample, position in zip(samples, positions):
                assert_sample(sample, corpus, corpus.keys[position], position)


def test_splits_and_metadata(shardstore_module, corpus: Expected, shardstore_bin):
    from conftest import run_cli

    with shardstore_module.Dataset(corpus.index) as ds:
        assert ds.splits == {"train": len(corpus.splits["train"]), "val": len(corpus.splits["val"])}
        metadata = ds.metadata
        for key, value in corpus.metadata.items():
            assert metadata[key] == value
        assert metadata == json.loads(run_cli(shardstore_bin, "meta", str(corpus.index), "list", "--json"))
        info = ds.info()
        assert info["count"] == len(corpus.keys)
        assert info["split"] is None
        assert info["selection_bytes"] == sum(len(data) for members in corpus.members.values() for data in members.values())
    with shardstore_module.Dataset(corpus.index, split="val") as ds:
        assert ds.split == "val"
        assert ds.info()["split"] == "val"
        assert ds.splits == {"train": len(corpus.splits["train"]), "val": len(corpus.splits["val"])}


def test_extensions_limit_the_members(shardstore_module, corpus: Expected):
    with shardstore_module.Dataset(corpus.index, extensions=["JPG", ".cls"]) as ds:
        for position, key in enumerate(corpus.keys):
            sample = ds[position]
            assert sorted(name for name in sample if not name.startswith("__")) == ["cls", "jpg"]
            assert sample["jpg"] == corpus.members[key]["jpg"]
            assert sample["cls"] == corpus.members[key]["cls"]
    with shardstore_module.Dataset(corpus.index, extensions="seg.png") as ds:
        assert ds[0]["seg.png"] == corpus.members[corpus.keys[0]]["seg.png"]


def test_decode_numpy(shardstore_module, corpus: Expected):
    import numpy

    with shardstore_module.Dataset(corpus.index, decode="numpy") as ds:
        for position, key in enumerate(corpus.keys):
            sample = ds[position]
            number = corpus.keys.index(key)
            array = sample["npy"]
            assert isinstance(array, numpy.ndarray)
            assert array.dtype == numpy.float32 and array.shape == (2, 2)
            assert array.tolist() == [[float(number), 1.5], [-2.0, 0.25]]
            assert not array.flags.writeable
            assert sample["cls"] == number % 7
            assert sample["json"] == {"n": number, "name": f"sample {number}"}
            assert sample["txt"] == f"text of sample {number} \u00e9"
            assert sample["jpg"] == corpus.members[key]["jpg"]
            assert isinstance(sample["jpg"], memoryview)
        batch = ds.get_batch([1, 0])
        assert [sample["cls"] for sample in batch] == [1, 0]


def test_decode_callable(shardstore_module, corpus: Expected):
    def decode(sample):
        return sample["__key__"], bytes(sample["cls"])

    with shardstore_module.Dataset(corpus.index, decode=decode) as ds:
        assert ds[4] == (key_text(corpus.keys[4]), corpus.members[corpus.keys[4]]["cls"])
        assert list(ds.get_batch([4])) == [ds[4]]
        assert ds.get_batch([4, 2])[-1] == ds[2]
        assert list(ds)[0][0] == key_text(corpus.keys[ds.storage_positions()[0]])


def test_decode_is_checked(shardstore_module, corpus: Expected):
    with pytest.raises(ValueError, match="unknown decode 'pil'"):
        shardstore_module.Dataset(corpus.index, decode="pil")
    with pytest.raises(TypeError):
        shardstore_module.Dataset(corpus.index, decode=3)


@pytest.mark.parametrize("memory_limit", [1 << 40, "64G", "1G"])
def test_memory_limit(shardstore_module, corpus: Expected, memory_limit):
    with shardstore_module.Dataset(corpus.index, memory_limit=memory_limit) as ds:
        assert_sample(ds[0], corpus, corpus.keys[0], 0)
    with pytest.raises(TypeError):
        shardstore_module.Dataset(corpus.index, memory_limit=1.5)


def test_pickle_reopens_with_the_same_arguments(shardstore_module, corpus: Expected):
    ds = shardstore_module.Dataset(corpus.index, split="train", extensions=["cls"], strategy="pread", decode="numpy")
    copy = pickle.loads(pickle.dumps(ds))
    assert copy is not ds
    assert (copy.split, copy.strategy, len(copy)) == ("train", "pread", len(corpus.splits["train"]))
    assert copy[0] == ds[0]
    ds.close()
    assert pickle.loads(pickle.dumps(ds))[1] == copy[1]
    copy.close()


def test_close_is_idempotent_and_closes(shardstore_module, corpus: Expected):
    ds = shardstore_module.Dataset(corpus.index)
    assert not ds.closed
    ds.close()
    ds.close()
    assert ds.closed
    for action in (lambda: ds[0], lambda: len(ds), lambda: ds.get_batch([0]), lambda: ds.position(b"000001")):
        with pytest.raises(shardstore_module.DatasetClosedError, match="is closed"):
            action()
    assert "closed" in repr(ds)


def test_versions(shardstore_module):
    assert shardstore_module.abi_version == 3
    assert isinstance(shardstore_module.library_version, str) and shardstore_module.library_version


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_batch_is_a_sequence_of_samples_and_flat_views(shardstore_module, corpus: Expected, strategy):
    from collections.abc import Sequence

    with shardstore_module.Dataset(corpus.index, strategy=strategy) as ds:
        positions = [3, 0, len(ds) - 1, 3]
        batch = ds.get_batch(positions)
        assert isinstance(batch, shardstore_module.Batch) and isinstance(batch, Sequence)
        assert len(batch) == 4
        assert repr(batch).startswith("<shardstore.Batch of 4 samples")
        assert batch.indices == positions
        assert batch.keys == [key_text(corpus.keys[p]) for p in positions]
        for i, position in enumerate(positions):
            assert_sample(batch[i], corpus, corpus.keys[position], position)
            assert_sample(batch[i - 4], corpus, corpus.keys[position], position)
        assert [sample["__index__"] for sample in batch[1:3]] == positions[1:3]
        assert [sample["__index__"] for sample in batch[::-1]] == positions[::-1]
        with pytest.raises(IndexError, match="batch index 4 out of range: the batch has 4 samples"):
            batch[4]
        with pytest.raises(IndexError):
            batch[-5]
        with pytest.raises(TypeError, match="a batch is indexed by int or slice, not str"):
            batch["jpg"]

        # The same members, flat: sample i's are views[offsets[i]:offsets[i + 1]], in archive order.
        views, extensions, offsets = batch.views, batch.extensions, batch.offsets
        assert len(offsets) == 5 and offsets[0] == 0 and offsets[-1] == len(views) == len(extensions)
        for i, position in enumerate(positions):
            members = corpus.members[corpus.keys[position]]
            assert extensions[offsets[i]:offsets[i + 1]] == list(members)
            for j, ext in zip(range(offsets[i], offsets[i + 1]), members):
                view = views[j]
                assert isinstance(view, memoryview) and view.readonly
                assert view.tobytes() == members[ext]
        flat = [view.tobytes() for view in views]
        assert flat == [corpus.members[corpus.keys[p]][ext] for p in positions for ext in corpus.members[corpus.keys[p]]]
        assert views[-1].tobytes() == flat[-1]
        assert [view.tobytes() for view in views[1:4]] == flat[1:4]
        with pytest.raises(IndexError, match=f"member index {len(views)} out of range"):
            views[len(views)]


def test_batch_decodes_on_access(shardstore_module, corpus: Expected):
    seen = []

    def decode(sample):
        seen.append(sample["__index__"])
        return sample["__key__"]

    with shardstore_module.Dataset(corpus.index, decode=decode) as ds:
        batch = ds.get_batch([2, 1])
        assert seen == []
        assert batch.views[0].tobytes() == next(iter(corpus.members[corpus.keys[2]].values()))
        assert seen == []  # the flat views are never decoded
        assert list(batch) == [key_text(corpus.keys[2]), key_text(corpus.keys[1])]
        assert seen == [2, 1]
