"""Transfers spread over a Dask cluster.

The driver (the process calling :func:`transfer`) lists the source when no paths are given, cuts
the ``(source key, destination key)`` pairs into batches and submits one Dask task per batch, at
most ``max_in_flight`` at a time, so a listing of any length is read lazily and the scheduler
never holds more than a few batches of keys. Each task rebuilds the two ``CloudFiles`` from their
construction arguments in its worker process and runs the ordinary threaded transfer on its
batch (``num_threads`` threads per task), so every strategy of ``CloudFiles.transfer_to`` applies
inside a batch: server-side copies, streamed downloads to disk, uploads from file handles,
no recompression unless ``reencode`` asks for it.

Before the first task, every worker starts the engine threads its tasks will use (its Dask
threads x the destination's ``num_threads``, plus the helpers S3's large reads and uploads
borrow), and the engine reuses them from then on: no thread is started while tasks run. On
CPython before 3.11.9 a thread started while Dask's profiler samples the running tasks' frames
can deadlock the worker process (gh-106883); this was seen here with 4 workers.

Writes are atomic and a batch can be run twice without harm, so when a worker dies Dask simply
runs its batches again elsewhere (up to its ``distributed.scheduler.allowed-failures``
setting).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from .._engine import jobs, scheduler
from .._engine.processes import block_size_for
from .._engine.progress import ProgressEvent, make_progress
from ..backends.base import batched
from ..cloudfiles import CloudFiles
from ..exceptions import ProcessBoundaryError

_HINT = "cloudfiles_dask.dask needs Dask's distributed scheduler: pip install 'cloudfiles-dask[dask]'"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(_HINT) from error
    return distributed


def _client(client: Any) -> Any:
    if client is not None:
        return client
    distributed = _distributed()
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError(
            "no Dask client: pass client=, or create one first, e.g. "
            "distributed.Client(distributed.LocalCluster())"
        ) from None


def _refuse_memory(client: Any, *cfs: CloudFiles) -> None:
    """mem:// data lives in this process: refuse before any task runs on a worker elsewhere."""
    bound = [cf for cf in cfs if not cf._backend_cls.crosses_processes]
    if not bound:
        return
    pids = set(client.run(os.getpid).values())
    if pids - {os.getpid()}:
        raise ProcessBoundaryError(
            f"{bound[0].cloudpath} lives in this process's memory, but the Dask workers run in "
            f"other processes (pids {sorted(pids)}); use file:// or a cloud store, or a cluster "
            f"with processes=False"
        )


def _prestart_threads(per_task: int, dask_worker: Any = None) -> int:
    """Run by ``client.run`` on every worker, outside any task: start the engine threads that
    its tasks will use (see the module docstring)."""
    from ..backends.s3 import HELPER_THREADS  # threads S3's large reads and uploads borrow

    state = getattr(dask_worker, "state", None)
    tasks = getattr(state, "nthreads", None) or getattr(dask_worker, "nthreads", None) or 1
    return scheduler.prestart(tasks * per_task + HELPER_THREADS)


class _Tally:
    """A progress sink inside a task: counts the bytes the batch moved."""

    def __init__(self) -> None:
        self.nbytes = 0

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "advance":
            self.nbytes += event.nbytes


def _transfer_batch(source: CloudFiles, destination: CloudFiles, pairs: list[tuple[str, str]],
                    options: dict[str, Any]) -> tuple[int, int]:
    tally = _Tally()
    written = destination.transfer_from(source, pairs, progress=tally, **options)
    return written, tally.nbytes


def transfer(
    source: CloudFiles | str,
    destination: CloudFiles | str,
    paths: Iterable[Any] | None = None,
    *,
    client: Any = None,
    batch_size: int | None = None,
    max_in_flight: int | None = None,
    block_size: int = 64,
    reencode: Any = None,
    content_type: str | None = None,
    allow_missing: bool = False,
    resumable: bool = False,
    retries: int = 0,
    progress: Any = None,
) -> int:
    """Copy files from ``source`` to ``destination`` on a Dask cluster; returns files written.

    ``source`` and ``destination`` are CloudFiles or cloudpaths (a cloudpath gets the default
    options; pass a CloudFiles for secrets, ``num_threads`` and the rest). ``paths`` is what
    ``CloudFiles.transfer_to`` takes (keys, ``(src, dest)`` pairs, ``{"path", "dest_path"}``
    dicts); None transfers everything listed under ``source``, listed here, on the driver.
    ``block_size``, ``reencode``, ``content_type``, ``allow_missing`` and ``resumable`` mean what
    they mean there.

    ``client``: a ``distributed.Client`` (default: the current one). Each task handles
    ``batch_size`` files on ``destination.num_threads`` threads of its worker (default: the
    files cut into about two batches per worker thread, 20 to 1250 files each; 250 when the
    number of files is not known in advance, as when listing). At most ``max_in_flight`` tasks
    are queued at once (default: twice the cluster's worker threads, at least 4). ``retries``:
    extra attempts Dask gives a batch that raised (default none: each request is already
    retried with backoff inside the batch, and Dask reruns the batches of a worker that died).

    ``progress`` is what the rest of the API takes (True for a bar, a callable for
    :class:`~cloudfiles_dask._engine.progress.ProgressEvent` objects); it advances by a batch
    at a time, with the batch's files and bytes.

    The first failed batch cancels those still queued and its exception is raised here, with a
    note naming the batch's first key. ``mem://`` cannot be used with workers in other processes
    (:class:`~cloudfiles_dask.exceptions.ProcessBoundaryError`, raised before anything runs).
    """
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be an int >= 1 or None, got {batch_size!r}")
    if max_in_flight is not None and (not isinstance(max_in_flight, int)
                                      or isinstance(max_in_flight, bool) or max_in_flight < 1):
        raise ValueError(f"max_in_flight must be an int >= 1 or None, got {max_in_flight!r}")
    src = source if isinstance(source, CloudFiles) else CloudFiles(source)
    dest = destination if isinstance(destination, CloudFiles) else CloudFiles(destination)
    client = _client(client)
    distributed = _distributed()
    _refuse_memory(client, src, dest)
    if not dest.green:  # the batches run on the destination's runner
        client.run(_prestart_threads, dest.num_threads)
    if paths is None:
        paths = src.list()
    elif not jobs.is_many(paths):
        paths = [paths]
    total = jobs.known_length(paths)
    threads = sum(client.nthreads().values()) or 1
    if max_in_flight is None:
        max_in_flight = max(4, 2 * threads)
    if batch_size is None:
        batch_size = block_size_for(total, 2 * threads)
    options = {"block_size": block_size, "reencode": reencode, "content_type": content_type,
               "allow_missing": allow_missing, "resumable": resumable}
    batches: Iterator[list[tuple[str, str]]] = batched(jobs.transfer_pairs(paths), batch_size)
    pending: dict[str, tuple[Any, str]] = {}  # future key -> (future, the batch's first key)
    queue = distributed.as_completed()
    written = 0
    with make_progress(progress, total, "Transferring") as bar:

        def collect(future: Any) -> int:
            _, first = pending.pop(future.key)
            try:
                files, nbytes = future.result()
            except BaseException as error:
                if hasattr(error, "add_note"):
                    error.add_note(f"(in the Dask transfer batch starting with {first!r})")
                raise
            bar.advance(files, nbytes)
            return files

        try:
            for batch in batches:
                future = client.submit(_transfer_batch, src, dest, batch, options, pure=False,
                                       retries=retries)
                pending[future.key] = (future, batch[0][0])
                queue.add(future)
                if len(pending) >= max_in_flight:
                    written += collect(next(queue))
            for future in queue:
                written += collect(future)
        except BaseException:
            client.cancel([future for future, _ in pending.values()])
            raise
    return written
