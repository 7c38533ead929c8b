"""ShardStore for Python: WebDataset tar shards indexed in SQLite, read by position or key.

    import shardstore

    ds = shardstore.Dataset("ds/index.sqlite", split="train", decode="numpy")
    len(ds), ds[0], ds[-1], ds["000123"], ds.get_batch([5, 2, 9])

    loader = shardstore.Loader(ds, batch_size=256, shuffle=True, seed=0)   # reader threads
    for batch in loader: batch["npy"], batch["cls"], batch.keys

The reading is done by the Swift core (libShardStoreC, shipped inside this package) through a
small C extension; members are read-only memoryviews, without copies. For PyTorch, see
``shardstore.torch.ShardDataset`` (importing ``shardstore`` never imports torch).
"""

from __future__ import annotations

from ._errors import (
    AmbiguousKeyError,
    BufferTooSmallError,
    BusyError,
    CorruptDataError,
    DatasetClosedError,
    Error,
    ErrorCode,
    IndexNotFoundError,
    InternalError,
    InvalidArgumentError,
    NotAnIndexError,
    OutOfRangeError,
    ShardChangedError,
    ShardStoreIOError,
    ShardStoreMemoryError,
    SQLiteError,
    UnknownExtensionError,
    UnknownKeyError,
    UnknownSplitError,
)
from . import _native
from ._dataset import Batch, Dataset, Key, Sample
from ._decode import decode_numpy
from ._loader import CollatedBatch, Loader

__version__ = "0.1.0"

#: The version of the bundled libShardStoreC ("0.5.0").
library_version: str = _native.version()

#: The C ABI version of the bundled libShardStoreC.
abi_version: int = _native.abi_version()

__all__ = [
    "AmbiguousKeyError",
    "Batch",
    "BufferTooSmallError",
    "CollatedBatch",
    "BusyError",
    "CorruptDataError",
    "Dataset",
    "DatasetClosedError",
    "Error",
    "ErrorCode",
    "IndexNotFoundError",
    "InternalError",
    "InvalidArgumentError",
    "Key",
    "Loader",
    "NotAnIndexError",
    "OutOfRangeError",
    "SQLiteError",
    "Sample",
    "ShardChangedError",
    "ShardStoreIOError",
    "ShardStoreMemoryError",
    "UnknownExtensionError",
    "UnknownKeyError",
    "UnknownSplitError",
    "abi_version",
    "decode_numpy",
    "library_version",
]
