"""Exceptions raised by shardstore: one class per status code of the C ABI (shardstore.h).

Every exception is a :class:`Error` with ``.code`` (the ``SHARDSTORE_*`` status number) and
``.message`` (the library's one-line message: what failed, where, what to do). Where a builtin
exception means the same thing, the class derives from it too, so ``except KeyError`` catches an
unknown key and ``except FileNotFoundError`` a missing index.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Tuple, Type


class ErrorCode(enum.IntEnum):
    """The status codes of shardstore.h ; stable numbers in every ABI version."""

    OK = 0
    INVALID_ARGUMENT = 1
    INDEX_NOT_FOUND = 2
    NOT_AN_INDEX = 3
    OUT_OF_RANGE = 4
    UNKNOWN_KEY = 5
    AMBIGUOUS_KEY = 6
    UNKNOWN_SPLIT = 7
    UNKNOWN_EXTENSION = 8
    SHARD_CHANGED = 9
    CORRUPT = 10
    IO = 11
    BUSY = 12
    OUT_OF_MEMORY = 13
    SQLITE = 14
    BUFFER_TOO_SMALL = 15
    INTERNAL = 99


class Error(Exception):
    """A failure reported by ShardStore.

    Attributes:
        code: the status code (an :class:`ErrorCode` when known, else the raw int).
        message: the library's message, one line.
    """

    code: int
    message: str

    def __init__(self, message: str, code: int = ErrorCode.INTERNAL) -> None:
        # One positional argument, so that str(error) is the message for OSError subclasses too
        # (OSError parses two arguments as errno and strerror).
        super().__init__(message)
        try:
            self.code = ErrorCode(code)
        except ValueError:
            self.code = int(code)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> Tuple[Any, ...]:  # picklable across worker processes
        return (type(self), (self.message, int(self.code)))


class InvalidArgumentError(Error, ValueError):
    """An argument is not valid (an unknown strategy or lookup, a bad memory limit, ...)."""


class DatasetClosedError(InvalidArgumentError):
    """The dataset was closed; open a new one."""

    def __init__(self, message: str, code: int = ErrorCode.INVALID_ARGUMENT) -> None:
        super().__init__(message, code)


class IndexNotFoundError(Error, FileNotFoundError):
    """No index file at the path."""


class NotAnIndexError(Error):
    """The path is not a readable ShardStore index."""


class OutOfRangeError(Error, IndexError):
    """A position outside 0..<count."""


class UnknownKeyError(Error, KeyError):
    """No sample has this key."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class AmbiguousKeyError(Error, KeyError):
    """Several samples share this key; read them by position."""

    def __str__(self) -> str:
        return self.message


class UnknownSplitError(Error):
    """No split with this name."""


class UnknownExtensionError(Error):
    """No member has this extension."""


class ShardChangedError(Error):
    """A shard changed, vanished or was truncated since ingest: ingest again."""


class CorruptDataError(Error):
    """Stored data does not match the index; no bytes were returned."""


class ShardStoreIOError(Error, OSError):
    """An operating-system error reading a file."""


class BusyError(Error):
    """Another process is writing the index; retry when it is done."""


class ShardStoreMemoryError(Error, MemoryError):
    """Not enough memory for what was asked."""


class SQLiteError(Error):
    """A SQLite error not covered by another class."""


class BufferTooSmallError(Error):
    """A caller-provided array was too small (a bug in the binding: please report it)."""


class InternalError(Error):
    """A bug in ShardStore: please report it with the message."""


# Read by shardstore._native at import: status code -> class.
_BY_CODE: Dict[int, Type[Error]] = {
    ErrorCode.INVALID_ARGUMENT: InvalidArgumentError,
    ErrorCode.INDEX_NOT_FOUND: IndexNotFoundError,
    ErrorCode.NOT_AN_INDEX: NotAnIndexError,
    ErrorCode.OUT_OF_RANGE: OutOfRangeError,
    ErrorCode.UNKNOWN_KEY: UnknownKeyError,
    ErrorCode.AMBIGUOUS_KEY: AmbiguousKeyError,
    ErrorCode.UNKNOWN_SPLIT: UnknownSplitError,
    ErrorCode.UNKNOWN_EXTENSION: UnknownExtensionError,
    ErrorCode.SHARD_CHANGED: ShardChangedError,
    ErrorCode.CORRUPT: CorruptDataError,
    ErrorCode.IO: ShardStoreIOError,
    ErrorCode.BUSY: BusyError,
    ErrorCode.OUT_OF_MEMORY: ShardStoreMemoryError,
    ErrorCode.SQLITE: SQLiteError,
    ErrorCode.BUFFER_TOO_SMALL: BufferTooSmallError,
    ErrorCode.INTERNAL: InternalError,
}
_BY_CODE = {int(code): cls for code, cls in _BY_CODE.items()}
