"""Leases: memoryviews are read-only and keep what they point into alive."""

from __future__ import annotations

import gc

import pytest

from conftest import LOOKUPS, STRATEGIES, Expected, read_tar, run_cli, write_tar


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_views_outlive_the_sample_and_the_dataset(shardstore_module, corpus: Expected, strategy):
    ds = shardstore_module.Dataset(corpus.index, strategy=strategy)
    views = [(key, ext, view) for key in corpus.keys for ext, view in ds[key].items() if not ext.startswith("__")]
    batch_views = [(key, ext, view) for key, sample in zip(corpus.keys, ds.get_batch(range(len(corpus.keys))))
                   for ext, view in sample.items() if not ext.startswith("__")]
    batch = ds.get_batch(range(len(corpus.keys)))
    flat_views = list(zip([key for key in corpus.keys for _ in corpus.members[key]], batch.extensions, batch.views))
    del ds, batch
    gc.collect()
    # Churn the allocator so that freed memory would be reused.
    garbage = [bytearray(4096) for _ in range(2000)]
    for key, ext, view in views + batch_views + flat_views:
        assert view.tobytes() == corpus.members[key][ext], (strategy, key, ext)
    del garbage


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_views_outlive_close(shardstore_module, corpus: Expected, strategy):
    ds = shardstore_module.Dataset(corpus.index, strategy=strategy)
    key = corpus.keys[1]
    sample = ds[1]
    batch = ds.get_batch([2, 1])
    ds.close()
    reopened = shardstore_module.Dataset(corpus.index, strategy=strategy)
    reopened.close()
    for ext, data in corpus.members[key].items():
        assert sample[ext].tobytes() == data
        assert batch[1][ext].tobytes() == data
    view = batch[0]["jpg"]
    del batch, sample
    gc.collect()
    assert view.tobytes() == corpus.members[corpus.keys[2]]["jpg"]


def test_views_are_read_only(shardstore_module, corpus: Expected):
    with shardstore_module.Dataset(corpus.index) as ds:
        view = ds[0]["jpg"]
        assert view.readonly
        with pytest.raises(TypeError):
            view[0] = 0
        with pytest.raises((TypeError, BufferError)):
            memoryview(view.obj)[0:1] = b"x"
        import numpy

        array = numpy.frombuffer(view, dtype=numpy.uint8)
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0] = 1
        assert view.tobytes() == corpus.members[corpus.keys[0]]["jpg"]


def test_empty_member_is_an_empty_view(shardstore_module, corpus: Expected):
    with shardstore_module.Dataset(corpus.index) as ds:
        sample = ds[0]
        assert corpus.members[corpus.keys[0]]["empty"] == b""
        assert sample["empty"].tobytes() == b"" and len(sample["empty"]) == 0


def test_decoded_arrays_keep_the_lease(shardstore_module, corpus: Expected):
    ds = shardstore_module.Dataset(corpus.index, decode="numpy", strategy="pread")
    arrays = [ds[position]["npy"] for position in range(len(corpus.keys))]
    ds.close()
    del ds
    gc.collect()
    for position, array in enumerate(arrays):
        assert array.tolist() == [[float(position), 1.5], [-2.0, 0.25]]


def test_sibling_views_are_whole_views_of_their_own_members(shardstore_module, corpus: Expected):
    """A sample's second and later views (and batch.views) are copies of one view pointed at their
    members (shardstore._native.CLONED_VIEWS on CPython): each must behave as a view of its own bytes."""
    import sys

    import numpy

    from shardstore import _native

    if sys.implementation.name == "cpython":
        assert _native.CLONED_VIEWS == 1
    with shardstore_module.Dataset(corpus.index) as ds:
        for position, key in enumerate(corpus.keys):
            sample = ds[position]
            views = {ext: view for ext, view in sample.items() if not ext.startswith("__")}
            assert set(views) == set(corpus.members[key])
            for ext, view in views.items():
                data = corpus.members[key][ext]
                assert (len(view), view.nbytes, view.shape, view.ndim, view.format) == (
                    len(data), len(data), (len(data),), 1, "B"), (key, ext)
                assert view.readonly and view.contiguous and view.c_contiguous
                assert view.tobytes() == data and view == data and bytes(view[1:-1]) == data[1:-1]
                assert numpy.frombuffer(view, dtype=numpy.uint8).tobytes() == data
                assert hash(view) == hash(data)
                assert view.obj is views[next(iter(views))].obj  # one lease behind them all
            # Releasing one view leaves its siblings whole.
            first, *rest = views.items()
            first[1].release()
            with pytest.raises(ValueError):
                first[1].tobytes()
            for ext, view in rest:
                assert view.tobytes() == corpus.members[key][ext]
        batch = ds.get_batch(range(len(corpus.keys)))
        expected = [corpus.members[key][ext] for key, ext in
                    zip([k for k in corpus.keys for _ in corpus.members[k]], batch.extensions)]
        handed = []
        for i, view in enumerate(batch.views):
            assert view.tobytes() == expected[i] and len(view) == len(expected[i])
            handed.append(view)
            if i == 0:
                view.release()  # a caller releasing the first view does not break the next ones
        del batch
        gc.collect()
        assert [v.tobytes() for v in handed[1:]] == expected[1:]


@pytest.mark.parametrize(
    "strategy,lookup",
    # The memory strategy reads through the table only.
    [(s, lookup) for s in STRATEGIES for lookup in LOOKUPS if s != "memory" or lookup == "table"],
)
def test_samples_larger_than_the_single_read_room(shardstore_module, tmp_path, shardstore_bin: str, strategy, lookup):
    """ds[i] describes a sample in room for 32 members and 2 KiB of key and extensions
    (shardstore_get_into); a sample with more members, or a longer key, is read under a lease of
    its own. Both kinds, interleaved with ordinary samples, read back as tarfile reads them, and
    their views outlive the dataset."""
    import tarfile

    long_key = b"k" * 2100
    members = [(b"000.jpg", b"first"), (b"000.cls", b"1")]
    members += [(b"many.m%02d" % i, bytes([i]) * (i + 1)) for i in range(40)]
    members += [(b"001.jpg", b"middle")]
    members += [(long_key + b".jpg", b"long key bytes"), (long_key + b".txt", b"text")]
    members += [(b"002.jpg", b"last")]
    shard = tmp_path / "shard.tar"
    write_tar(shard, tarfile.PAX_FORMAT, members)
    index = tmp_path / "index.sqlite"
    run_cli(shardstore_bin, "ingest", str(index), str(shard))
    expected = {}
    for key, ext, data in read_tar(shard):
        expected.setdefault(key, {})[ext] = data
    keys = list(expected)
    assert keys == [b"000", b"many", b"001", long_key, b"002"]
    ds = shardstore_module.Dataset(index, strategy=strategy, lookup=lookup)
    views = []
    for _ in range(2):
        for position, key in enumerate(keys):
            for sample in (ds[position], ds[key]):
                assert sample["__key__"] == key.decode() and sample["__index__"] == position
                got = {ext: view for ext, view in sample.items() if not ext.startswith("__")}
                assert list(got) == list(expected[key]), (key[:10], list(got))
                assert {ext: view.tobytes() for ext, view in got.items()} == expected[key]
                views += [(key, ext, view) for ext, view in got.items()]
    ds.close()
    del ds
    gc.collect()
    for key, ext, view in views:
        assert view.tobytes() == expected[key][ext], (strategy, key[:10], ext)
