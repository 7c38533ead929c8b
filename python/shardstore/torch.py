"""PyTorch map-style dataset over a ShardStore index.

    from torch.utils.data import DataLoader
    from shardstore.torch import ShardDataset

    train = ShardDataset("ds/index.sqlite", split="train", decode="numpy")
    loader = DataLoader(train, batch_size=64, shuffle=True, num_workers=4)

Works with DataLoader workers started by fork (the default on Linux), forkserver and spawn: the
index is opened lazily, once per process, and the dataset pickles as its arguments. Importing
``shardstore`` never imports torch; this module does.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch.utils.data

from ._dataset import Dataset, PathLike, Sample
from ._decode import Decoder


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
        index, split, extensions, strategy, lookup, memory_limit, decode: as ``shardstore.Dataset``.
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
    ) -> None:
        self.index = os.fspath(index)
        self.options: Dict[str, Any] = {
            "split": split,
            "extensions": extensions if extensions is None or isinstance(extensions, str) else tuple(extensions),
            "strategy": strategy,
            "lookup": lookup,
            "memory_limit": memory_limit,
            "decode": decode,
        }
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


__all__ = ["ShardDataset", "portable"]
