"""Cutting iterables into batches. Ground: imports nothing of the package."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` items, read lazily from ``items``."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
