"""``parallel=N``: spread a CloudFiles call over N spawned processes, each with its own threads.

A CloudFiles pickles by its construction arguments, so each process builds its own backend and
clients. Work is cut into blocks of ``clamp(ceil(total / N), 20, 1250)`` items (250 when the total is
unknown); at most ``2 * N`` blocks are in flight, so a generator input is read lazily.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

from ..backends.base import batched
from ..exceptions import ProcessBoundaryError
from .progress import Progress


def resolve_parallel(parallel: int | None) -> int:
    if parallel is None:
        return 1
    if not isinstance(parallel, int) or isinstance(parallel, bool):
        raise TypeError(f"parallel must be an int, got {parallel!r}")
    if parallel < 0:
        raise ValueError(f"parallel must be >= 0 (0 means one process per core), got {parallel}")
    return parallel or (os.cpu_count() or 1)


def block_size_for(total: int | None, parallel: int) -> int:
    if total is None:
        return 250
    return max(20, min(1250, math.ceil(total / parallel)))


def _invoke(cf: Any, method: str, block: list[Any], kwargs: dict[str, Any]) -> Any:
    return getattr(cf, method)(block, parallel=1, progress=False, **kwargs)


def run_in_processes(
    cf: Any,
    method: str,
    items: Iterable[Any],
    parallel: int,
    kwargs: dict[str, Any],
    progress: Progress,
    total: int | None,
) -> list[Any]:
    """Call ``cf.<method>(block, **kwargs)`` in ``parallel`` processes; results in block order."""
    if not cf._backend_cls.crosses_processes:
        raise ProcessBoundaryError(
            f"{cf.cloudpath} lives in this process's memory; parallel={parallel} would run the "
            f"work in other processes that cannot see it. Use parallel=1 (threads) for mem://."
        )
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    size = block_size_for(total, parallel)
    results: dict[int, Any] = {}
    pending: dict[Future, tuple[int, int]] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=parallel, mp_context=context) as pool:
        blocks = enumerate(batched(items, size))

        def collect(futures: set[Future]) -> None:
            for future in futures:
                index, count = pending.pop(future)
                results[index] = future.result()
                progress.advance(count)

        try:
            for index, block in blocks:
                pending[pool.submit(_invoke, cf, method, block, kwargs)] = (index, len(block))
                if len(pending) >= 2 * parallel:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return [results[i] for i in sorted(results)]
