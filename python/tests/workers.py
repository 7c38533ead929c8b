"""Functions run in other processes (importable by spawn and forkserver children)."""

from __future__ import annotations

import hashlib
import os
from typing import Dict, List, Sequence, Tuple

DATASET = None  # set by the parent before a fork


def digest(sample: dict) -> Tuple[str, Dict[str, str]]:
    members = {name: hashlib.sha256(value).hexdigest() for name, value in sample.items() if not name.startswith("__")}
    return sample["__key__"], members


def read_digests(dataset, positions: Sequence[int]) -> List[Tuple[int, str, Dict[str, str]]]:
    """(pid, key, member digests) for each position, read in this process."""
    return [(os.getpid(), *digest(dataset[position])) for position in positions]


def read_batch_digests(dataset, positions: Sequence[int]) -> List[Tuple[int, str, Dict[str, str]]]:
    return [(os.getpid(), *digest(sample)) for sample in dataset.get_batch(list(positions))]


def read_inherited(positions: Sequence[int], queue) -> None:
    """Reads through the dataset the parent opened before forking (not pickled)."""
    queue.put(read_digests(DATASET, positions))
