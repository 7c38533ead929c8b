"""shardstore.Loader: batches in the sampler's order from the library's reader threads, collated
arrays equal to np.load of each member, ranks, resume, map/filter, fork."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from conftest import Expected, key_text

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
sampler_golden = __import__("sampler-golden")  # the independent implementation of the orders


def epoch_indices(loader) -> list:
    return [int(i) for batch in loader for i in batch.indices]


def test_sequential_batches_hold_every_member(shardstore_module, corpus: Expected):
    import numpy

    with shardstore_module.Dataset(corpus.index) as ds:
        loader = shardstore_module.Loader(ds, batch_size=4, threads=2)
        n = len(ds)
        assert len(loader) == (n + 3) // 4
        seen = []
        for number, batch in enumerate(loader):
            assert isinstance(batch, shardstore_module.CollatedBatch)
            assert batch.number == number
            assert batch.indices.dtype == numpy.int64
            positions = batch.indices.tolist()
            assert positions == list(range(number * 4, min(number * 4 + 4, n)))
            assert batch.keys == [key_text(corpus.keys[p]) for p in positions]
            assert batch.layout("npy") == "stacked" and batch.layout("cls") == "labels"
            stacked = batch["npy"]
            assert stacked.shape == (len(batch), 2, 2) and stacked.dtype == numpy.float32
            labels = batch["cls"]
            assert labels.dtype == numpy.int64
            for row, position in enumerate(positions):
                members = corpus.members[corpus.keys[position]]
                numpy.testing.assert_array_equal(stacked[row], numpy.load(io.BytesIO(members["npy"])))
                assert labels[row] == int(members["cls"])
                with pytest.raises(TypeError, match="is an array"):
                    batch.buffer("npy")
                for ext in batch.extensions:
                    if batch.layout(ext) != "bytes":
                        continue
                    data, offsets, present = batch.buffer(ext)
                    assert bool(present[row]) == (ext in members)
                    assert data[offsets[row]:offsets[row + 1]].tobytes() == members.get(ext, b"")
                    view = batch[ext][row]
                    if ext in members:
                        assert isinstance(view, memoryview) and view.readonly
                        assert view.tobytes() == members[ext], (position, ext)
                    else:
                        assert view is None, (position, ext)
            seen += positions
        assert seen == list(range(n))


def test_collate_bytes_keeps_members_raw(shardstore_module, corpus: Expected):
    loader = shardstore_module.Loader(corpus.index, batch_size=64, collate="bytes", extensions=["npy", "cls"])
    (batch,) = list(loader)
    assert batch.extensions == ["cls", "npy"] or batch.extensions == ["npy", "cls"]
    for ext in ("npy", "cls"):
        assert batch.layout(ext) == "bytes"
        assert [view.tobytes() for view in batch[ext]] == [corpus.members[key][ext] for key in corpus.keys]
    with pytest.raises(KeyError, match="the batch has no member with extension 'jpg'"):
        batch["jpg"]
    data, offsets, present = batch.buffer("npy")
    assert data.readonly and offsets.tolist()[0] == 0 and offsets.tolist()[-1] == len(data) and present.all()
    assert [data[offsets[i]:offsets[i + 1]].tobytes() for i in range(len(batch))] == [
        corpus.members[key]["npy"] for key in corpus.keys]


@pytest.mark.parametrize("threads,prefetch", [(1, 1), (3, 2), ("auto", "auto")])
def test_shuffle_order_is_the_samplers_whatever_the_threads(shardstore_module, corpus: Expected, threads, prefetch):
    n = len(corpus.keys)
    loader = shardstore_module.Loader(corpus.index, batch_size=3, shuffle=True, seed=42, threads=threads,
                                      prefetch=prefetch)
    loader.set_epoch(3)
    assert epoch_indices(loader) == sampler_golden.shuffled(n, 42, 3)
    loader.set_epoch(4)
    assert epoch_indices(loader) == sampler_golden.shuffled(n, 42, 4)
    # Iterating again reads the same epoch again.
    assert epoch_indices(loader) == sampler_golden.shuffled(n, 42, 4)
    assert "threads" in loader.report and "prefetch" in loader.report


def test_locality_sampler_and_drop_last(shardstore_module, corpus: Expected):
    n = len(corpus.keys)
    loader = shardstore_module.Loader(corpus.index, batch_size=4, sampler="locality", seed=7, block_size=4,
                                      window_blocks=2, drop_last=True)
    loader.set_epoch(1)
    got = [batch.indices.tolist() for batch in loader]
    assert len(got) == n // 4 and all(len(b) == 4 for b in got)
    assert sum(got, []) == sampler_golden.locality(n, 4, 2, 7, 1)[: n // 4 * 4]


def test_ranks_are_disjoint_and_cover_the_epoch(shardstore_module, corpus: Expected):
    n = len(corpus.keys)
    shares = [
        epoch_indices(shardstore_module.Loader(corpus.index, batch_size=2, shuffle=True, seed=1, rank=r,
                                               world_size=3, tail="drop"))
        for r in range(3)
    ]
    assert len({len(share) for share in shares}) == 1
    union = sum(shares, [])
    assert len(union) == len(set(union)) == n // 3 * 3
    assert set(union) == set(sampler_golden.shuffled(n, 1, 0)[: n // 3 * 3])


def test_resume_with_another_world_size_repeats_and_skips_nothing(shardstore_module, corpus: Expected):
    n = len(corpus.keys)
    taken = []
    state = None
    for rank in range(2):
        loader = shardstore_module.Loader(corpus.index, batch_size=2, shuffle=True, seed=5, rank=rank, world_size=2)
        loader.set_epoch(2)
        iterator = iter(loader)
        for _ in range(2):
            taken += next(iterator).indices.tolist()
        state = loader.state_dict()
    assert state == {"seed": 5, "epoch": 2, "consumed": 8, "world_size": 2}
    resumed = shardstore_module.Loader(corpus.index, batch_size=3, shuffle=True, seed=5)
    resumed.load_state_dict(state)
    assert resumed.epoch == 2
    rest = epoch_indices(resumed)
    order = sampler_golden.shuffled(n, 5, 2)
    assert sorted(taken) == sorted(order[:8])
    assert rest == order[8:]
    assert resumed.state_dict()["consumed"] == n
    with pytest.raises(shardstore_module.InvalidArgumentError, match="the saved state has seed 5 but this loader 6"):
        shardstore_module.Loader(corpus.index, seed=6).load_state_dict(state)
    with pytest.raises(KeyError, match="lacks"):
        resumed.load_state_dict({"seed": 5})


def test_map_filter_and_a_map_that_raises(shardstore_module, corpus: Expected):
    loader = shardstore_module.Loader(corpus.index, batch_size=5, map=lambda b: b.keys,
                                      filter=lambda b: b.number % 2 == 0)
    got = list(loader)
    assert got == [[key_text(k) for k in corpus.keys[i * 5:i * 5 + 5]] for i in range(0, (len(corpus.keys) + 4) // 5, 2)]

    def fails(batch):
        if batch.number == 1:
            raise ValueError("bad sample")
        return batch

    expected = ValueError if sys.version_info >= (3, 11) else RuntimeError
    with pytest.raises(expected, match="bad sample") as caught:
        list(shardstore_module.Loader(corpus.index, batch_size=5, map=fails))
    if sys.version_info >= (3, 11):
        notes = " ".join(caught.value.__notes__)
    else:  # no notes before 3.11: a RuntimeError names the batch, the ValueError is its cause
        notes = str(caught.value)
        assert isinstance(caught.value.__cause__, ValueError)
    assert "shardstore.Loader: map raised on batch 1 (5 samples, keys" in notes
    assert repr(key_text(corpus.keys[5])) in notes and repr(key_text(corpus.keys[9])) in notes


def test_bad_arguments(shardstore_module, corpus: Expected):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        shardstore_module.Loader(corpus.index, batch_size=0)
    with pytest.raises(ValueError, match="sampler must be one of"):
        shardstore_module.Loader(corpus.index, sampler="random")
    with pytest.raises(ValueError, match="threads must be a positive int or 'auto'"):
        shardstore_module.Loader(corpus.index, threads=0)
    with pytest.raises(shardstore_module.InvalidArgumentError, match="rank is 2; with a world size of 2"):
        shardstore_module.Loader(corpus.index, rank=2, world_size=2)
    with pytest.raises(TypeError, match="dataset must be a shardstore.Dataset or an index path"):
        shardstore_module.Loader(3)


def test_a_loader_made_before_a_fork_refuses_in_the_child(shardstore_module, corpus: Expected):
    loader = shardstore_module.Loader(corpus.index, batch_size=4, shuffle=True, threads=2)
    first = next(iter(loader)).indices.tolist()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        status = 1
        try:
            try:
                next(iter(loader))
                message = "no error"
            except shardstore_module.InvalidArgumentError as error:
                message = str(error)
            fresh = shardstore_module.Loader(corpus.index, batch_size=4, shuffle=True, threads=2)
            ok = "make loaders after forking" in message and len(epoch_indices(fresh)) == len(corpus.keys)
            os.write(write, (("ok " if ok else "bad ") + message).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    _, wstatus = os.waitpid(pid, 0)
    report = os.read(read, 4096).decode()
    os.close(read)
    assert os.WIFEXITED(wstatus) and os.WEXITSTATUS(wstatus) == 0
    assert report.startswith("ok "), report
    assert len(first) == 4
    loader.close()
    with pytest.raises(shardstore_module.DatasetClosedError, match="the loader is closed"):
        list(loader)


def test_to_torch_shares_memory(shardstore_module, corpus: Expected):
    torch = pytest.importorskip("torch")
    batch = next(iter(shardstore_module.Loader(corpus.index, batch_size=4)))
    tensors = batch.to_torch()
    assert tensors["npy"].data_ptr() == batch["npy"].ctypes.data
    assert tensors["cls"].dtype == torch.int64
    assert tensors["__index__"].tolist() == [0, 1, 2, 3]
    assert tensors["__key__"] == batch.keys


def test_iterable_dataset_in_dataloader_workers(shardstore_module, corpus: Expected):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from shardstore.torch import ShardIterableDataset

    data = ShardIterableDataset(corpus.index, batch_size=3, shuffle=True, seed=2)
    data.set_epoch(1)
    loader = DataLoader(data, batch_size=None, num_workers=2)
    keys = [key for batch in loader for key in batch["__key__"]]
    # The two workers read disjoint halves of the epoch; together, every sample once (pad: the
    # odd one repeats).
    assert set(keys) == {key_text(k) for k in corpus.keys}
    assert len(keys) == len(corpus.keys) + len(corpus.keys) % 2
    for batch in loader:
        assert isinstance(batch["jpg"][0], bytes)
        break


def test_rank_and_world_size_default_to_torch_distributed(shardstore_module, corpus: Expected, monkeypatch):
    import types

    fake = types.SimpleNamespace(is_available=lambda: True, is_initialized=lambda: True, get_rank=lambda: 1,
                                 get_world_size=lambda: 3)
    monkeypatch.setitem(sys.modules, "torch.distributed", fake)
    loader = shardstore_module.Loader(corpus.index, batch_size=2, shuffle=True, seed=4, tail="drop")
    assert (loader.rank, loader.world_size) == (1, 3)
    n = len(corpus.keys)
    assert epoch_indices(loader) == sampler_golden.shuffled(n, 4, 0)[1 : n // 3 * 3 : 3]
    explicit = shardstore_module.Loader(corpus.index, rank=0, world_size=1)
    assert (explicit.rank, explicit.world_size) == (0, 1)
    fake.is_initialized = lambda: False
    assert shardstore_module.Loader(corpus.index).world_size == 1


def test_iterable_dataset_with_spawned_workers(shardstore_module, corpus: Expected):
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from shardstore.torch import ShardIterableDataset

    data = ShardIterableDataset(corpus.index, batch_size=4, seed=3, shuffle=True, tail="drop")
    loader = DataLoader(data, batch_size=None, num_workers=2, multiprocessing_context="spawn")
    indices = sorted(i for batch in loader for i in batch["__index__"].tolist())
    n = len(corpus.keys)
    assert indices == sorted(sampler_golden.shuffled(n, 3, 0)[: n // 2 * 2])
