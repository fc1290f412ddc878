"""Cutting iterables into batches. Ground: imports nothing of the package."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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


def batched_by(items: Iterable[Any], size: int, max_weight: int,
               weigh: Callable[[Any], int]) -> Iterator[list[Any]]:
    """:func:`batched`, and a batch also closes before the item that would take the sum of
    ``weigh(item)`` past ``max_weight`` (an item heavier than that is a batch of its own): lists
    cut by count and by bytes."""
    batch: list[Any] = []
    weight = 0
    for item in items:
        this = weigh(item)
        if batch and (len(batch) >= size or weight + this > max_weight):
            yield batch
            batch, weight = [], 0
        batch.append(item)
        weight += this
    if batch:
        yield batch
