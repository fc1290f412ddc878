"""The one seam that spreads a call over other processes: spawned local processes
(``parallel=N``, the CLI's ``-p N``) or the workers of a Dask cluster (the Dask faces).

Work is configurations + an operation + batches of units. The caller cuts its units into
batches (:func:`batch_size_for`, read lazily from any iterable, a listing included) and
:func:`run_batches` submits each batch as one call of a module-level task function below to
an executor, keeping at most ``in_flight`` submitted, and gives the results back in batch
order. A task function receives its batch and the frozen, picklable configurations
(:class:`~._engine.config.CloudFilesConfig`), takes its process's backend for each
(:func:`~._engine.config.process_backend`: one per configuration per process, however many
tasks arrive) and runs the ordinary engine verbs of :mod:`.ops` on its own threads. Nothing
here calls the ``CloudFiles`` facade by method name.

Executors share one small interface: ``slots`` (batches that run at once), ``submit(fn, *args)``
(a future with ``result()``), ``wait_first(futures)`` (the finished ones), ``cancel(futures)``,
``check_boundary(configs)`` (the process-boundary check, before anything is submitted) and
``prepare(configs, threads_per_task)``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

from .. import _threads
from ..monitoring import IOEnum, TransmissionMonitor
from . import jobs, ops
from .config import CloudFilesConfig, process_backend, refuse_elsewhere
from .jobs import PutOptions, TransferOptions

#: Units per batch are kept between these (a batch must be worth a process's or a task's
#: overhead, and small enough to balance the work and move progress along).
MIN_BATCH = 20
MAX_BATCH = 1250
#: Units per batch when the number of units is not known in advance (a listing).
UNKNOWN_BATCH = 250


def batch_size_for(total: int | None, slots: int, cap: int = MAX_BATCH) -> int:
    """Units per batch: about two batches per slot, :data:`MIN_BATCH` to ``cap`` units
    (:data:`UNKNOWN_BATCH` when ``total`` is not known)."""
    if total is None:
        return max(1, min(UNKNOWN_BATCH, cap))
    return max(1, min(cap, max(MIN_BATCH, math.ceil(total / (2 * max(1, slots))))))


# -- executors ---------------------------------------------------------------------------------
class ProcessExecutor:
    """``processes`` spawned local processes, started on the first submit and shared by every
    call made while it is open (a CLI command with several sources starts them once)."""

    def __init__(self, processes: int):
        self.slots = processes
        self._pool: Any = None

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def check_boundary(self, configs: Iterable[CloudFilesConfig]) -> None:
        refuse_elsewhere(list(configs), f"the {self.slots} other processes of parallel={self.slots}")

    def prepare(self, configs: Iterable[CloudFilesConfig], threads_per_task: int) -> None:
        """Nothing to prepare: a spawned process starts its threads with its first call."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: a forked child would inherit locks that threads of this
            # process may hold at that moment
            self._pool = ProcessPoolExecutor(self.slots, mp_context=multiprocessing.get_context("spawn"))
        return self._pool.submit(fn, *args)

    @staticmethod
    def wait_first(futures: Iterable[Any]) -> set[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        return wait(futures, return_when=FIRST_COMPLETED).done

    @staticmethod
    def cancel(futures: Iterable[Any]) -> None:
        for future in futures:
            future.cancel()


class DaskExecutor:
    """The workers of a Dask cluster, through a ``distributed.Client``. ``retries``: extra
    attempts Dask gives a task that raised (a task whose worker died is rerun by Dask anyway)."""

    def __init__(self, client: Any, retries: int = 0):
        self.client = client
        self.retries = retries
        self.slots = sum(client.nthreads().values()) or 1

    def check_boundary(self, configs: Iterable[CloudFilesConfig]) -> None:
        bound = [config for config in configs if not config.crosses_processes]
        if not bound:
            return
        pids = set(self.client.run(os.getpid).values())
        if pids - {os.getpid()}:  # a cluster of threads in this process can see mem://
            refuse_elsewhere(bound, f"the Dask workers (other processes: pids {sorted(pids)})")

    def prepare(self, configs: Iterable[CloudFilesConfig], threads_per_task: int) -> None:
        """Start, on every worker and before any task runs, the engine threads its tasks will
        use (its Dask threads x ``threads_per_task``, plus the helper threads the backends
        borrow), so that no thread starts while tasks run: on CPython before 3.11.9 a thread
        started while Dask's profiler samples the tasks' frames can deadlock the worker
        (gh-106883)."""
        configs = list(configs)
        if any(config.use_green for config in configs):
            return  # greenlets, not threads
        helpers = max((config.backend_class.helper_threads for config in configs), default=0)
        self.client.run(_prestart, threads_per_task, helpers)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False, retries=self.retries)

    @staticmethod
    def wait_first(futures: Iterable[Any]) -> set[Any]:
        import distributed

        return distributed.wait(list(futures), return_when="FIRST_COMPLETED").done

    def cancel(self, futures: Iterable[Any]) -> None:
        self.client.cancel(list(futures))


def _prestart(per_task: int, helpers: int, dask_worker: Any = None) -> int:
    """Run by ``client.run`` on every worker, outside any task (see :meth:`DaskExecutor.prepare`)."""
    state = getattr(dask_worker, "state", None)
    tasks = getattr(state, "nthreads", None) or getattr(dask_worker, "nthreads", None) or 1
    return _threads.prestart(tasks * per_task + helpers)


def run_batches(
    executor: Any,
    task: Callable[..., Any],
    batches: Iterable[list[Any]],
    *params: Any,
    in_flight: int | None = None,
    on_done: Callable[[list[Any], Any], None] | None = None,
    what: str = "batch",
) -> list[Any]:
    """``[task(batch, *params) for batch in batches]`` on ``executor``, at most ``in_flight``
    submitted at once (default: twice its slots, at least 4), so ``batches`` is read lazily.
    ``on_done(batch, result)`` runs on this thread as each batch finishes (progress). The first
    failed batch cancels those still submitted and its error is raised here, with a note
    naming the batch's first unit (``what`` names a batch in that note)."""
    limit = in_flight or max(4, 2 * executor.slots)
    pending: dict[Any, tuple[int, list[Any]]] = {}
    results: dict[int, Any] = {}

    def collect(future: Any) -> None:
        index, batch = pending.pop(future)
        try:
            result = future.result()
        except BaseException as error:
            if hasattr(error, "add_note"):
                error.add_note(f"(in the {what} starting with {_first_key(batch)!r})")
            raise
        results[index] = result
        if on_done is not None:
            on_done(batch, result)

    try:
        for index, batch in enumerate(batches):
            pending[executor.submit(task, batch, *params)] = (index, batch)
            while len(pending) >= limit:
                for future in executor.wait_first(pending):
                    collect(future)
        while pending:
            for future in executor.wait_first(pending):
                collect(future)
    except BaseException:
        executor.cancel(list(pending))
        raise
    return [results[i] for i in range(len(results))]


def _first_key(batch: list[Any]) -> Any:
    first = batch[0] if batch else None
    if isinstance(first, dict):
        return first.get("path")
    if isinstance(first, (tuple, list)):
        return first[0]
    return first


# -- task functions: module-level, so they pickle by reference ---------------------------------
def get_batch(items: list[Any], config: CloudFilesConfig, raw: bool, raise_errors: bool,
              part_size: int | None = None, record: bool = False,
              ) -> tuple[list[dict], TransmissionMonitor | None]:
    """``CloudFiles.get`` of many keys: the result dicts, in input order, and the batch's
    transfer record when ``record``."""
    recording = TransmissionMonitor(IOEnum.RX) if record else None
    with config.runner(recording=recording) as runner:
        results = ops.get_many(process_backend(config), list(map(jobs.read_unit, items)), raw,
                               runner, raise_errors, part_size)
    return results, recording


def put_batch(files: list[Any], config: CloudFilesConfig, options: PutOptions,
              record: bool = False) -> tuple[int, TransmissionMonitor | None]:
    """``CloudFiles.puts``: how many files were written, and the batch's transfer record when
    ``record``."""
    recording = TransmissionMonitor(IOEnum.TX) if record else None
    with config.runner(recording=recording) as runner:
        written = ops.put_many(process_backend(config), jobs.unique_put_units(files, options),
                               runner)
    return written, recording


def delete_batch(keys: list[str], config: CloudFilesConfig) -> int:
    """``CloudFiles.delete``: how many keys were processed."""
    with config.runner() as runner:
        return ops.delete_many(process_backend(config), keys, runner)


def transfer_batch(pairs: list[tuple[str, str]], src: CloudFilesConfig, dest: CloudFilesConfig,
                   options: TransferOptions) -> TransmissionMonitor:
    """A transfer of ``(source key, destination key)`` pairs: its record (``.files`` written,
    ``.total_bytes()`` moved), which the driver merges with the other batches'."""
    recording = TransmissionMonitor(IOEnum.TX)
    with dest.runner(recording=recording) as runner:
        ops.transfer(process_backend(src), process_backend(dest), pairs, runner, options)
    return recording


def move_batch(pairs: list[tuple[str, str]], src: CloudFilesConfig, dest: CloudFilesConfig,
               block_size: int) -> int:
    """``CloudFiles.moves`` of ``(source key, destination key)`` pairs: how many moved."""
    with src.runner() as runner:
        return ops.move(process_backend(src), process_backend(dest), pairs, runner, block_size)
