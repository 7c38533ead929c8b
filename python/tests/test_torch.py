"""shardstore.torch.ShardDataset under a DataLoader with 2 workers (fork and spawn)."""

from __future__ import annotations

import pickle

import pytest

from conftest import Expected, key_text

torch = pytest.importorskip("torch")

# A worker that delivers nothing for this long is deadlocked: DataLoader raises instead of hanging.
DEADLOCK_SECONDS = 120


def to_tensors(sample):
    """A transform at module level, so that spawned workers can unpickle it."""
    return torch.from_numpy(sample["npy"].copy()), sample["cls"]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_dataloader_with_two_workers(corpus: Expected, method):
    from torch.utils.data import DataLoader

    from shardstore.torch import ShardDataset

    dataset = ShardDataset(corpus.index, split="train", extensions=["jpg", "cls", "npy"])
    assert len(dataset) == len(corpus.splits["train"])  # opens the index in the parent (fork inherits it)
    loader = DataLoader(
        dataset, batch_size=3, shuffle=True, num_workers=2, multiprocessing_context=method, timeout=DEADLOCK_SECONDS
    )
    seen = {}
    for batch in loader:
        assert isinstance(batch["__index__"], torch.Tensor)
        for key, index, jpg, cls, npy in zip(batch["__key__"], batch["__index__"].tolist(), batch["jpg"], batch["cls"],
                                             batch["npy"]):
            assert isinstance(jpg, bytes)
            seen[index] = (key, {"jpg": jpg, "cls": cls, "npy": npy})
    assert sorted(seen) == list(range(len(corpus.splits["train"])))
    for index, (key, members) in seen.items():
        wanted_key = corpus.splits["train"][index]
        assert key == key_text(wanted_key)
        for ext, data in members.items():
            assert data == corpus.members[wanted_key][ext]


def test_dataloader_decoded_tensors(corpus: Expected):
    from torch.utils.data import DataLoader

    from shardstore.torch import ShardDataset

    dataset = ShardDataset(corpus.index, decode="numpy", transform=to_tensors)
    loader = DataLoader(
        dataset, batch_size=4, shuffle=False, num_workers=2, multiprocessing_context="spawn", timeout=DEADLOCK_SECONDS
    )
    arrays, classes = [], []
    with _no_warning():
        for npy, cls in loader:
            arrays.extend(npy.tolist())
            classes.extend(cls.tolist())
    assert classes == [number % 7 for number in range(len(corpus.keys))]
    assert arrays == [[[float(number), 1.5], [-2.0, 0.25]] for number in range(len(corpus.keys))]


def test_default_samples_cross_processes(corpus: Expected):
    from shardstore.torch import ShardDataset

    dataset = ShardDataset(corpus.index, decode="numpy")
    sample = dataset[0]
    assert sample["npy"].flags.writeable  # a copy: collates to a tensor without a warning
    assert isinstance(sample["jpg"], bytes) and sample["jpg"] == corpus.members[corpus.keys[0]]["jpg"]
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy._dataset is None
    assert copy[1]["__key__"] == key_text(corpus.keys[1])
    dataset.close()


class _no_warning:
    def __enter__(self):
        import warnings

        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc_info):
        self._catcher.__exit__(*exc_info)
