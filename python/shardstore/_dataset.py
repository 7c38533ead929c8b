"""shardstore.Dataset: a ShardStore index read as a sequence of samples."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence as SequenceABC
from typing import Any, Dict, Iterable, Iterator, Optional, Sequence, Tuple, Type, Union

from . import _native
from ._decode import Decoder, resolve_decoder

PathLike = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Key = Union[str, bytes]
Sample = Dict[str, Any]

# Samples read per library call when iterating (one lease covers a chunk).
_ITERATION_CHUNK = 64

#: What ``Dataset.get_batch`` (and a slice ``ds[a:b]``) returns: the samples read by one library
#: call, under one lease. A sequence of samples (``len(batch)``, ``batch[i]``, iteration; each
#: sample dict is built, and decoded, when it is asked for) with the same members flat, without a
#: dict per sample: ``batch.views`` (every member of every sample as a read-only memoryview, in
#: sample order and archive order within a sample), ``batch.extensions`` (the extension of each
#: view), ``batch.offsets`` (sample i's members are ``views[offsets[i]:offsets[i + 1]]``),
#: ``batch.keys`` and ``batch.indices``. Any view keeps the whole batch's bytes alive.
Batch = _native.Batch
SequenceABC.register(Batch)
SequenceABC.register(_native.MemberViews)
SequenceABC.register(_native.ColumnViews)


def _extensions_tuple(extensions: Union[None, str, Iterable[str]]) -> Optional[Tuple[str, ...]]:
    if extensions is None:
        return None
    if isinstance(extensions, str):
        return (extensions,)
    result = tuple(extensions)
    for ext in result:
        if not isinstance(ext, str):
            raise TypeError(f"extensions must be str, not {type(ext).__name__} ({ext!r})")
    return result


def _size_string(size: Union[None, int, str], name: str = "memory_limit") -> Optional[str]:
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, str)):
        raise TypeError(f"{name} must be an int (bytes) or a str such as '2G', not {type(size).__name__}")
    return str(size)


class Dataset(_native.Dataset):
    """A ShardStore index (``shardstore ingest``) read as a sequence of samples.

    A sample is a dict: ``__key__`` (the key as ``str``; bytes that are not valid UTF-8 appear as
    lone surrogates, so ``os.fsencode(key)`` gives the stored bytes back, as in the CLI's JSON),
    ``__index__`` (its position in this dataset: in the split when one is set) and each member's
    extension mapped to its bytes as a read-only ``memoryview``. The views point into the
    library's preload, mapping or read buffer, with no copy, and keep what they point into alive,
    even after the dataset is closed or dropped.

    Example::

        with shardstore.Dataset("ds/index.sqlite", split="train", decode="numpy") as ds:
            sample = ds[0]                 # by position; ds[-1] too
            sample = ds["000123"]          # by key (str or bytes)
            batch = ds.get_batch([3, 1, 4])  # one library call: a Batch of 3 samples
            for view in batch.views:         # or its members flat, no dict per sample
                ...
            for sample in ds:              # storage order, shard by shard
                ...

    Args:
        index: the index file.
        split: limit to this split (``ds.splits`` lists them), or None for every sample.
        extensions: read only these members (``"jpg"``, ``".JPG"``, ``["jpg", "cls"]``).
        strategy: ``"auto"``, ``"memory"`` (read the selection into RAM at open), ``"mmap"``,
            ``"pread"`` or ``"remote"`` (one range request per sample, what ``"auto"`` picks for
            shards in S3 or on a web server, reached as the ``AWS_*`` environment variables and
            ``~/.aws`` say).
        lookup: how positions are found: ``"auto"``, ``"table"``, ``"file"`` or ``"statements"``.
        memory_limit: the memory ``"auto"`` may plan with: bytes (int) or a size (``"2G"``);
            None reads it from the system.
        cache_dir: a folder (it must exist) for whole copies of shards: each remote shard is
            downloaded into it on its first read (one GET, checked against the ETag recorded at
            ingest) and read from there after, by this and later processes; compressed shards
            too large for RAM are decompressed into it. None reads ``SHARDSTORE_CACHE_DIR``
            (unset: remote shards are read by range requests).
        cache_limit: the most bytes of copies kept in ``cache_dir``, least recently used deleted
            first: bytes (int) or a size (``"50G"``); a remote shard larger than this is read by
            range requests. None reads ``SHARDSTORE_CACHE_LIMIT`` (unset: 16G).
        decode: None (memoryviews), ``"numpy"`` (``.npy`` -> read-only ndarray without a copy,
            ``.json`` -> objects, ``.txt`` -> str, ``.cls`` -> int) or a callable
            ``decode(sample) -> Any`` applied to every sample read.
        verify_headers: check each member's own tar header on every read (keep True).

    Raises:
        IndexNotFoundError, NotAnIndexError, UnknownSplitError, UnknownExtensionError,
        ShardChangedError, InvalidArgumentError (see ``shardstore`` for every class).

    Thread safety: one dataset may be read from many threads; every call into the library
    releases the GIL. After ``os.fork()`` the child may keep using it. It pickles as its
    arguments, so a spawned worker opens the index again.

    Complexity: ``ds[i]`` is one indexed lookup and one read per member; ``len(ds)`` is O(1);
    ``get_batch(positions)`` is one library call, then O(1) per sample or view asked for.
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
        *,
        verify_headers: bool = True,
        cache_dir: Optional[PathLike] = None,
        cache_limit: Union[None, int, str] = None,
    ) -> None:
        extension_tuple = _extensions_tuple(extensions)
        self._arguments = (os.fspath(index), split, extension_tuple, strategy, lookup, memory_limit, decode)
        self._verify_headers = bool(verify_headers)
        self._cache = (None if cache_dir is None else os.fspath(cache_dir), cache_limit)
        super().__init__(
            index,
            split,
            extension_tuple,
            strategy,
            lookup,
            _size_string(memory_limit),
            self._verify_headers,
            resolve_decoder(decode),
            self._cache[0],
            _size_string(cache_limit, "cache_limit"),
        )
        self._info: Dict[str, Any] = super().info()

    # ---- Facts -------------------------------------------------------------------------------

    @property
    def index(self) -> Union[str, bytes]:
        """The index path as given."""
        return self._arguments[0]

    @property
    def split(self) -> Optional[str]:
        """The split this dataset is limited to, or None."""
        return self._arguments[1]

    @property
    def strategy(self) -> str:
        """How bytes are read: ``"memory"``, ``"mmap"``, ``"pread"`` or ``"remote"`` (what ``"auto"`` chose)."""
        return str(self._info["strategy"])

    @property
    def lookup(self) -> str:
        """How positions are found: ``"table"``, ``"file"`` or ``"statements"``."""
        return str(self._info["lookup"])

    @property
    def reason(self) -> str:
        """Why the strategy was chosen, in one sentence with the figures."""
        return str(self._info["reason"])

    @property
    def selection_bytes(self) -> int:
        """The total bytes of the selected members."""
        return int(self._info["selection_bytes"])

    def info(self) -> Dict[str, Any]:
        """count, strategy, lookup, reason, selection_bytes, split and index_path, as a dict."""
        return dict(self._info)

    @property
    def splits(self) -> Dict[str, int]:
        """The index's splits: name -> number of samples, in name order."""
        return {entry["name"]: entry["count"] for entry in json.loads(self.splits_json())}

    @property
    def metadata(self) -> Dict[str, Any]:
        """The index's metadata (``shardstore meta set``), values JSON-decoded."""
        metadata: Dict[str, Any] = json.loads(self.metadata_json())
        return metadata

    # ---- Reading -----------------------------------------------------------------------------
    # ds[i], ds[key], ds[a:b] (a Batch), len(ds), get(i) and get_batch(positions) (a Batch) are
    # implemented in C (shardstore._native.Dataset) and apply `decode`.

    def __contains__(self, key: object) -> bool:
        """Whether a sample has this key (str or bytes)."""
        if not isinstance(key, (str, bytes)):
            return False
        try:
            self.position(key)
        except KeyError:
            return False
        return True

    def storage_positions(self) -> Sequence[int]:
        """The positions in storage order (shard by shard, front to back)."""
        return memoryview(self.storage_order()).cast("q")

    def __iter__(self) -> Iterator[Any]:
        """Every sample, in storage order (the order that reads each shard front to back)."""
        order = self.storage_positions()
        for start in range(0, len(order), _ITERATION_CHUNK):
            yield from self.get_batch(order[start : start + _ITERATION_CHUNK])

    # ---- Lifetime ----------------------------------------------------------------------------

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __reduce__(self) -> Tuple[Any, ...]:
        """Pickles as the arguments (a spawned worker opens the index again)."""
        return (_reopen, (type(self), self._arguments, self._verify_headers, self._cache))

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self._info['count']} samples, {self.strategy}"
        split = f", split={self.split!r}" if self.split is not None else ""
        return f"shardstore.Dataset({self.index!r}{split}) <{state}>"


def _reopen(
    cls: Type[Dataset],
    arguments: Tuple[Any, ...],
    verify_headers: bool,
    cache: Tuple[Optional[PathLike], Union[None, int, str]] = (None, None),
) -> Dataset:
    return cls(*arguments, verify_headers=verify_headers, cache_dir=cache[0], cache_limit=cache[1])


__all__ = ["Dataset", "Sample", "Key"]
