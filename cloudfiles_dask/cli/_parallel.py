"""``cloudfiles -p N``: spread cp / mv / rm work over N spawned processes.

Each worker builds its own CloudFiles from cloudpath strings (clients are per process) and
runs the ordinary single-process call on one chunk of keys. mem:// data lives in one process,
so work touching it always runs here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._common import Bar, NoBar, chunks


def _transfer(src: str, dest: str, pairs: list[tuple[str, str]], options: dict[str, Any]) -> int:
    from .. import CloudFiles

    source = CloudFiles(src, no_sign_request=options.get("no_sign_request", False))
    target = CloudFiles(dest, composite_upload_threshold=options["part_bytes"])
    return source.transfer_to(
        target, paths=pairs, block_size=options["block_size"], reencode=options["reencode"], progress=False
    )


def _move(src: str, dest: str, pairs: list[tuple[str, str]], options: dict[str, Any]) -> int:
    from .. import CloudFiles

    source = CloudFiles(src, no_sign_request=options.get("no_sign_request", False))
    target = CloudFiles(dest, composite_upload_threshold=options["part_bytes"])
    return source.moves(target, pairs, block_size=options["block_size"], progress=False)


def _delete(root: str, keys: list[str], options: dict[str, Any]) -> int:
    from .. import CloudFiles

    CloudFiles(root).delete(keys, progress=False)
    return len(keys)


def crosses_processes(*cloudpaths: str) -> bool:
    from .. import paths

    return all(paths.extract(p).protocol != "mem" for p in cloudpaths)


def chunk_size(total: int, parallel: int, cap: int) -> int:
    """Small enough to keep every process busy and the bar moving, at most ``cap``."""
    return max(1, min(cap, math.ceil(total / (4 * parallel))))


class Pool:
    """A lazily started spawn process pool shared by one command."""

    def __init__(self, parallel: int):
        self.parallel = parallel
        self._pool: Any = None

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def map_chunks(self, fn: Callable[..., int], head: tuple, items: list[Any], size: int,
                   options: dict[str, Any], bar: Bar | NoBar) -> int:
        """``fn(*head, chunk, options)`` for each chunk of ``items``; the sum of the results.
        The first worker error is raised here (the other chunks are cancelled)."""
        import multiprocessing
        from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.parallel, mp_context=multiprocessing.get_context("spawn")
            )
        futures = {self._pool.submit(fn, *head, chunk, options): len(chunk) for chunk in chunks(items, size)}
        done_total = 0
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for future in done:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                done_total += future.result()
                bar.add(futures[future])
        return done_total


TRANSFER = _transfer
MOVE = _move
DELETE = _delete
