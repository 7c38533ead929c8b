"""PyTorch datasets over a ShardStore index: map-style (ShardDataset) and batched through the
library's loader (ShardIterableDataset).

    from torch.utils.data import DataLoader
    from shardstore.torch import ShardDataset, ShardIterableDataset

    train = ShardDataset("ds/index.sqlite", split="train", decode="numpy")
    loader = DataLoader(train, batch_size=64, shuffle=True, num_workers=4)

    batches = ShardIterableDataset("ds/index.sqlite", batch_size=256, shuffle=True, seed=0)
    loader = DataLoader(batches, batch_size=None, num_workers=2)   # batches come pre-collated

Works with DataLoader workers started by fork (the default on Linux), forkserver and spawn: the
index is opened lazily, once per process, and the dataset pickles as its arguments. Importing
``shardstore`` never imports torch; this module does.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import torch.utils.data

from ._dataset import Dataset, PathLike, Sample
from ._decode import Decoder
from ._loader import CollatedBatch, Loader, _distributed_defaults


def _dataset_options(
    split: Optional[str], extensions: Union[None, str, Iterable[str]], strategy: str, lookup: str
) -> Dict[str, Any]:
    """The keyword arguments of ``shardstore.Dataset`` a torch dataset keeps (picklable)."""
    return {
        "split": split,
        "extensions": extensions if extensions is None or isinstance(extensions, str) else tuple(extensions),
        "strategy": strategy,
        "lookup": lookup,
    }


def portable(sample: Any) -> Any:
    """Makes a sample safe to leave the worker process and to collate.

    memoryviews become ``bytes`` (they cannot be pickled to the main process) and read-only
    ndarrays (``decode="numpy"`` views into the shard) become writable copies, which PyTorch
    turns into tensors without a warning. Other values are returned as they are.
    """
    if isinstance(sample, dict):
        return {name: _portable_value(value) for name, value in sample.items()}
    return _portable_value(sample)


def _portable_value(value: Any) -> Any:
    if isinstance(value, memoryview):
        return value.tobytes()
    flags = getattr(value, "flags", None)
    if flags is not None and not flags.writeable and hasattr(value, "copy"):
        return value.copy()
    return value


class ShardDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A ``torch.utils.data.Dataset`` reading samples from a ShardStore index.

    Example::

        train = ShardDataset("ds/index.sqlite", split="train", decode="numpy",
                             transform=lambda s: (torch.from_numpy(s["npy"]), s["cls"]))
        loader = DataLoader(train, batch_size=64, shuffle=True, num_workers=4)

    Args:
        index, split, extensions, strategy, lookup, memory_limit, decode, cache_dir, cache_limit: as
            ``shardstore.Dataset``.
        transform: applied to each (decoded) sample in the worker; without one, samples go
            through :func:`portable` (memoryviews -> bytes, read-only arrays -> copies).

    The index is opened on first use in each process (``len()`` in the main process opens it
    there; forked workers go on with that dataset, spawned ones open their own). A batch of
    indices from the DataLoader is read with one library call (``__getitems__``).
    """

    def __init__(
        self,
        index: PathLike,
        split: Optional[str] = None,
        extensions: Union[None, str, Iterable[str]] = None,
        strategy: str = "auto",
        lookup: str = "auto",
        memory_limit: Union[None, int, str] = None,
        decode: Decoder = None,
        transform: Optional[Callable[[Any], Any]] = None,
        *,
        cache_dir: Optional[PathLike] = None,
        cache_limit: Union[None, int, str] = None,
    ) -> None:
        self.index = os.fspath(index)
        self.options: Dict[str, Any] = _dataset_options(split, extensions, strategy, lookup)
        self.options.update(memory_limit=memory_limit, decode=decode, cache_dir=cache_dir, cache_limit=cache_limit)
        self.transform = transform
        self._dataset: Optional[Dataset] = None
        self._length: Optional[int] = None

    @property
    def dataset(self) -> Dataset:
        """The open ``shardstore.Dataset`` (opened on first use in this process)."""
        if self._dataset is None:
            self._dataset = Dataset(self.index, **self.options)
            self._length = len(self._dataset)
        return self._dataset

    def __len__(self) -> int:
        if self._length is None:
            self._length = len(self.dataset)
        return self._length

    def _finish(self, sample: Sample) -> Any:
        return self.transform(sample) if self.transform is not None else portable(sample)

    def __getitem__(self, index: int) -> Any:
        return self._finish(self.dataset[index])

    def __getitems__(self, indices: Sequence[int]) -> List[Any]:
        """The samples at ``indices`` in one library call (used by DataLoader for batches)."""
        return [self._finish(sample) for sample in self.dataset.get_batch(list(indices))]

    def close(self) -> None:
        """Closes the dataset of this process (it reopens on next use)."""
        if self._dataset is not None:
            self._dataset.close()
            self._dataset = None

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state["_dataset"] = None  # a spawned worker opens the index itself
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)


def portable_batch(batch: CollatedBatch) -> Dict[str, Any]:
    """A loader batch as tensors and ``bytes``, safe to leave a worker process: ``__key__`` (list
    of str), ``__index__`` (int64 tensor), arrays as tensors (no copy), bytes columns as lists of
    ``bytes`` (``None`` where a sample has no member)."""
    out = batch.to_torch()
    for ext in batch.extensions:
        if batch.layout(ext) == "bytes":
            out[ext] = [None if view is None else view.tobytes() for view in out[ext]]
    return out


class ShardIterableDataset(torch.utils.data.IterableDataset):  # type: ignore[type-arg]
    """Batches from ``shardstore.Loader`` inside ``torch.utils.data.DataLoader`` workers.

    Example::

        data = ShardIterableDataset("ds/index.sqlite", batch_size=256, shuffle=True, seed=0)
        loader = DataLoader(data, batch_size=None, num_workers=2)
        for epoch in range(10):
            data.set_epoch(epoch)
            for batch in loader:   # dicts of tensors (see portable_batch)
                ...

    Each DataLoader worker makes its own loader (after the fork, as loaders must be) reading a
    disjoint part of this rank's share: worker w of W on rank r of R reads rank r + R*w of R*W,
    so the workers together read exactly the rank's share. Rank and world size default to
    torch.distributed's when it is initialized. Pass ``batch_size=None`` to the DataLoader: the
    batches are collated by the library.

    Args:
        index: the index path; ``split``, ``extensions``, ``strategy``, ``lookup``: as ``Dataset``.
        transform: applied to each ``CollatedBatch`` in the worker instead of :func:`portable_batch`.
        Other keyword arguments go to ``shardstore.Loader`` (batch_size, shuffle, seed, drop_last,
        sampler, threads, prefetch, rank, world_size, collate, tail...).
    """

    def __init__(
        self,
        index: PathLike,
        split: Optional[str] = None,
        extensions: Union[None, str, Iterable[str]] = None,
        strategy: str = "auto",
        lookup: str = "auto",
        transform: Optional[Callable[[CollatedBatch], Any]] = None,
        **loader_options: Any,
    ) -> None:
        self.index = os.fspath(index)
        self.dataset_options = _dataset_options(split, extensions, strategy, lookup)
        self.transform = transform
        rank, world_size = _distributed_defaults(loader_options.pop("rank", None), loader_options.pop("world_size", None))
        self.rank = rank
        self.world_size = world_size
        self.loader_options = loader_options
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration reads (workers started afterwards see it)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[Any]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        dataset = Dataset(self.index, **self.dataset_options)
        loader = Loader(
            dataset,
            rank=self.rank + self.world_size * worker,
            world_size=self.world_size * workers,
            **self.loader_options,
        )
        try:
            loader.set_epoch(self.epoch)
            for batch in loader:
                yield self.transform(batch) if self.transform is not None else portable_batch(batch)
        finally:
            loader.close()
            dataset.close()


__all__ = ["ShardDataset", "ShardIterableDataset", "portable", "portable_batch"]
