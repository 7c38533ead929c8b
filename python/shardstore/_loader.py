"""shardstore.Loader: batches read and collated by the library's reader threads."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from . import _native
from ._dataset import Dataset, PathLike

_ORDERS = {"sequential": 0, "shuffle": 1, "locality": 2}
_TAILS = {"pad": 0, "drop": 1}
_COLLATES = {"native": 0, "bytes": 1}
_STACKED, _LABELS, _BYTES = 0, 1, 2


class CollatedBatch:
    """One batch of a :class:`Loader`: the samples' keys and positions, and one entry per extension.

    ``batch.keys`` (list of ``str``), ``batch.indices`` (int64 ``ndarray``: each sample's position
    in the dataset), ``batch.number`` (the batch's number in the epoch), ``len(batch)``, and
    ``batch[ext]`` for each extension in ``batch.extensions``:

    - an ``ndarray`` of shape (len(batch), ...) where ``.npy`` members of one dtype and shape were
      stacked, an int64 ``ndarray`` for ``.cls`` members that are all integers (``collate="native"``);
    - otherwise a sequence (``len``, ``[i]``, slices, iteration; ``list(...)`` for a list) of
      read-only ``memoryview`` (``None`` for a sample without that member), zero-copy views of the
      batch's buffer, each made when it is asked for.

    The arrays are the batch's own memory (writable, no copy was made for you); ``to_torch()``
    turns them into tensors without copying.
    """

    __slots__ = ("_native", "_columns", "_cache", "_keys", "number", "count")

    def __init__(self, native: Any) -> None:
        self._native = native
        self.number: int = native.number
        self.count: int = native.count
        self._keys: Optional[List[str]] = None
        self._columns: Dict[str, Tuple[int, int, Optional[str], Tuple[int, ...]]] = {
            ext: (i, layout, dtype, shape) for i, (ext, layout, dtype, shape) in enumerate(native.columns())
        }
        self._cache: Dict[str, Any] = {}

    def __len__(self) -> int:
        return self.count

    @property
    def keys(self) -> List[str]:
        """Each sample's key (``str``; bytes that are not UTF-8 as surrogates)."""
        if self._keys is None:
            self._keys = self._native.keys()
        return self._keys

    @property
    def indices(self) -> Any:
        """Each sample's position in the dataset, as an int64 ``ndarray`` (no copy)."""
        if "__index__" not in self._cache:
            import numpy

            self._cache["__index__"] = numpy.frombuffer(self._native.positions(), dtype=numpy.int64)
        return self._cache["__index__"]

    @property
    def extensions(self) -> List[str]:
        """The extensions present in the batch, in the order they first appear."""
        return list(self._columns)

    def layout(self, ext: str) -> str:
        """``"stacked"``, ``"labels"`` or ``"bytes"``: how ``batch[ext]`` comes."""
        return ("stacked", "labels", "bytes")[self._column(ext)[1]]

    def _column(self, ext: str) -> Tuple[int, int, Optional[str], Tuple[int, ...]]:
        try:
            return self._columns[ext]
        except KeyError:
            raise KeyError(f"the batch has no member with extension {ext!r}; it has {self.extensions}") from None

    def __getitem__(self, ext: str) -> Any:
        if ext in self._cache:
            return self._cache[ext]
        i, layout, dtype, shape = self._column(ext)
        if layout == _BYTES:
            value: Any = self._native.members(i)
        else:
            import numpy

            value = numpy.frombuffer(self._native.data(i), dtype=numpy.dtype(dtype)).reshape(shape)
        self._cache[ext] = value
        return value

    def buffer(self, ext: str) -> Tuple[memoryview, Any, Any]:
        """A bytes column as the library collated it: ``(data, offsets, present)``, the members back
        to back in one read-only memoryview, int64 ``offsets`` (len(batch) + 1: sample i's member is
        ``data[offsets[i]:offsets[i + 1]]``) and bool ``present`` (False: the sample has none)."""
        import numpy

        i, layout, _, _ = self._column(ext)
        if layout != _BYTES:
            raise TypeError(f"batch[{ext!r}] is an array ({self.layout(ext)}), not a bytes column")
        offsets = numpy.frombuffer(self._native.offsets(i), dtype=numpy.int64)
        present = numpy.frombuffer(self._native.present(i), dtype=numpy.bool_)
        return self._native.data(i), offsets, present

    def __contains__(self, ext: object) -> bool:
        return ext in self._columns

    def get(self, ext: str, default: Any = None) -> Any:
        return self[ext] if ext in self._columns else default

    def items(self) -> Iterator[Tuple[str, Any]]:
        for ext in self._columns:
            yield ext, self[ext]

    def to_torch(self) -> Dict[str, Any]:
        """A dict of ``__key__`` (list of str), ``__index__`` (int64 tensor) and each extension: a
        tensor over the same memory where it is an array (no copy), else its list of memoryviews."""
        import torch

        out: Dict[str, Any] = {"__key__": list(self.keys), "__index__": torch.from_numpy(self.indices)}
        for ext, value in self.items():
            out[ext] = torch.from_numpy(value) if self.layout(ext) != "bytes" else value
        return out

    def __repr__(self) -> str:
        parts = ", ".join(f"{ext}: {self.layout(ext)}" for ext in self._columns)
        return f"<shardstore.CollatedBatch #{self.number} of {len(self)} samples ({parts})>"


def _distributed_defaults(rank: Optional[int], world_size: Optional[int]) -> Tuple[int, int]:
    """rank and world size: as given, else torch.distributed's when it is initialized (torch is
    never imported here: only when the program already did), else 0 and 1."""
    if rank is not None and world_size is not None:
        return rank, world_size
    distributed = sys.modules.get("torch.distributed")
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return (
            distributed.get_rank() if rank is None else rank,
            distributed.get_world_size() if world_size is None else world_size,
        )
    return (0 if rank is None else rank), (1 if world_size is None else world_size)


def _count_or_auto(value: Union[int, str], name: str) -> int:
    if value == "auto" or value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int or 'auto', not {value!r}")
    return value


class Loader:
    """Batches of a dataset in a sampler's order, read and collated by the library's threads.

    Example::

        loader = shardstore.Loader("ds/index.sqlite", batch_size=256, shuffle=True, seed=0,
                                   drop_last=True, threads="auto")
        for epoch in range(10):
            loader.set_epoch(epoch)
            for batch in loader:
                images = batch["npy"]            # ndarray (256, ...) stacked natively
                labels = batch["cls"]            # int64 ndarray
                jpegs = batch["jpg"]             # list of read-only memoryviews

    Args:
        dataset: a :class:`Dataset`, or an index path (opened with ``extensions``).
        batch_size: samples per batch.
        shuffle: a global shuffle (a new permutation every epoch, seeded by (seed, epoch)).
        seed: the shuffle's seed; the order is the same on every machine and for any threads.
        drop_last: leave out an epoch's short last batch.
        sampler: ``"sequential"``, ``"shuffle"`` or ``"locality"`` (blocks of ``block_size``
            consecutive samples shuffled, then samples shuffled within windows of
            ``window_blocks`` blocks: for storage where random reads cost more); None: from
            ``shuffle``.
        threads, prefetch: reader threads and batches read ahead, or ``"auto"`` (grow while the
            consumer waits; ``loader.report`` says what was chosen).
        rank, world_size: this process's share (distributed training); None: torch.distributed's
            when it is initialized, else 0 and 1. Every rank gets an equal, disjoint share of the
            same epoch permutation (``tail="pad"`` repeats a few samples to even them out,
            ``"drop"`` leaves the rest out).
        extensions: read only these members (a path given as ``dataset``, or a Dataset reopened).
        collate: ``"native"`` (stack ``.npy``, ``.cls`` to int64) or ``"bytes"`` (every member as bytes).
        map: a callable applied to each :class:`CollatedBatch` in this thread (GIL-bound); what it
            returns is what the iteration yields.
        filter: a callable ``filter(batch) -> bool``: batches it refuses are skipped (in this thread).

    Make loaders after forking (in each worker process): a loader made before a fork cannot be
    used in the child, and says so. ``state_dict()`` / ``load_state_dict()`` resume an epoch
    exactly, with the same or another world size.

    Complexity: each batch is its samples' reads plus one copy of their bytes, on the reader threads.
    """

    def __init__(
        self,
        dataset: Union[Dataset, PathLike],
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        sampler: Optional[str] = None,
        threads: Union[int, str] = "auto",
        prefetch: Union[int, str] = "auto",
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        extensions: Union[None, str, Iterable[str]] = None,
        collate: str = "native",
        map: Optional[Callable[[CollatedBatch], Any]] = None,
        filter: Optional[Callable[[CollatedBatch], bool]] = None,
        *,
        tail: str = "pad",
        block_size: int = 1024,
        window_blocks: int = 8,
    ) -> None:
        if isinstance(dataset, Dataset):
            if extensions is not None:
                dataset = Dataset(dataset.index, split=dataset.split, extensions=extensions,
                                  strategy=dataset.strategy, lookup=dataset.lookup)
        elif isinstance(dataset, (str, bytes, os.PathLike)):
            dataset = Dataset(dataset, extensions=extensions)
        else:
            raise TypeError(f"dataset must be a shardstore.Dataset or an index path, not {type(dataset).__name__}")
        order = sampler if sampler is not None else ("shuffle" if shuffle else "sequential")
        if order not in _ORDERS:
            raise ValueError(f"sampler must be one of {sorted(_ORDERS)}, not {order!r}")
        if tail not in _TAILS:
            raise ValueError(f"tail must be 'pad' or 'drop', not {tail!r}")
        if collate not in _COLLATES:
            raise ValueError(f"collate must be 'native' or 'bytes', not {collate!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, not {batch_size!r}")
        for name, value in (("map", map), ("filter", filter)):
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be callable or None, not {type(value).__name__}")
        rank, world_size = _distributed_defaults(rank, world_size)
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = int(seed)
        self.sampler = order
        self._map = map
        self._filter = filter
        self._native = _native.Loader(
            dataset, batch_size, _ORDERS[order], block_size, window_blocks, self.seed & (2**64 - 1),
            bool(drop_last), _count_or_auto(threads, "threads"), _count_or_auto(prefetch, "prefetch"),
            _TAILS[tail], _COLLATES[collate], rank, world_size,
        )
        self.rank = rank
        self.world_size = world_size
        # Iterating starts the epoch over unless it was just set or restored.
        self._fresh = True

    @property
    def epoch(self) -> int:
        return int(self._native.state()[1])

    def set_epoch(self, epoch: int) -> None:
        """Starts epoch ``epoch`` from its beginning (its own permutation)."""
        self._native.set_epoch(epoch)
        self._fresh = True

    def __len__(self) -> int:
        """The batches the current epoch yields (from where it starts)."""
        return int(self._native.count())

    def __iter__(self) -> Iterator[Any]:
        if not self._fresh:
            self._native.set_epoch(self.epoch)
        self._fresh = False
        while True:
            native = self._native.next_batch()
            if native is None:
                return
            batch = CollatedBatch(native)
            if self._filter is not None and not self._apply(self._filter, batch, "filter"):
                continue
            yield self._apply(self._map, batch, "map") if self._map is not None else batch

    @staticmethod
    def _apply(function: Callable[[CollatedBatch], Any], batch: CollatedBatch, name: str) -> Any:
        try:
            return function(batch)
        except Exception as error:
            keys = batch.keys
            where = f"keys {keys[0]!r} to {keys[-1]!r}" if keys else "no samples"
            note = f"shardstore.Loader: {name} raised on batch {batch.number} ({len(keys)} samples, {where})"
            if hasattr(error, "add_note"):
                error.add_note(note)
                raise
            raise RuntimeError(f"{note}: {type(error).__name__}: {error}") from error

    def state_dict(self) -> Dict[str, int]:
        """Where the loader is: seed, epoch, samples consumed (by all ranks), world size."""
        seed, epoch, consumed, world_size = self._native.state()
        return {"seed": seed, "epoch": epoch, "consumed": consumed, "world_size": world_size}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        """Continues from ``state_dict()``'s result: its epoch, from the position consumed."""
        missing = {"seed", "epoch", "consumed", "world_size"} - set(state)
        if missing:
            raise KeyError(f"the loader state lacks {sorted(missing)}; pass what state_dict() returned")
        self._native.restore(int(state["seed"]) & (2**64 - 1), int(state["epoch"]), int(state["consumed"]),
                             int(state["world_size"]))
        self._fresh = True

    @property
    def report(self) -> str:
        """What the loader chose: threads and prefetch (after the first batch)."""
        return str(self._native.report())

    def close(self) -> None:
        """Stops the reader threads; batches handed out stay valid."""
        self._native.close()

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"shardstore.Loader({self.dataset!r}, batch_size={self.batch_size}, sampler={self.sampler!r}, "
                f"rank={self.rank}, world_size={self.world_size})")
