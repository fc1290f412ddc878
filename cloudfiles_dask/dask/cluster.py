"""Transfers spread over a Dask cluster.

The driver (the process calling :func:`transfer`) lists the source when no paths are given, cuts
the ``(source key, destination key)`` pairs into batches and submits one Dask task per batch
through the engine's distribute seam (``_engine.distribute``), at most ``max_in_flight`` at a
time, so a listing of any length is read lazily and the scheduler never holds more than a few
batches of keys. Each task takes its worker process's backends for the two configurations and
runs the ordinary threaded transfer on its batch (``num_threads`` threads per task), so every
strategy of ``CloudFiles.transfer_to`` applies inside a batch: server-side copies, streamed
downloads to disk, uploads from file handles, no recompression unless ``reencode`` asks for it.

Before the first task, every worker starts the engine threads its tasks will use, and the
engine reuses them from then on: no thread is started while tasks run (see
``DaskExecutor.prepare`` for why).

Writes are atomic and a batch can be run twice without harm, so when a worker dies Dask simply
runs its batches again elsewhere (up to its ``distributed.scheduler.allowed-failures``
setting).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .._engine import distribute, jobs, ops
from .._engine.config import CloudFilesConfig, process_backend
from .._engine.jobs import TransferOptions
from .._iteration import batched
from ..progress import make_progress

if TYPE_CHECKING:
    from ..cloudfiles import CloudFiles

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


def config_of(value: Any) -> CloudFilesConfig:
    """The configuration of a CloudFiles, or of the default CloudFiles of a cloudpath."""
    return CloudFilesConfig(value) if isinstance(value, str) else value.config


def _check_count(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name} must be an int >= 1 or None, got {value!r}")


def transfer_on(client: Any, source: Any, destination: Any, paths: Any, options: TransferOptions,
                progress: Any) -> Any:
    """``CloudFiles.transfer_to(..., client=client)``: :func:`transfer` with the transfer's
    options as one object."""
    return transfer(source, destination, paths, client=client, block_size=options.block_size,
                    reencode=options.reencode, content_type=options.content_type,
                    allow_missing=options.allow_missing, resumable=options.resumable,
                    progress=progress)


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
    :class:`~cloudfiles_dask.progress.ProgressEvent` objects); it advances by a batch at a
    time, with the batch's files and bytes.

    The first failed batch cancels those still queued and its exception is raised here, with a
    note naming the batch's first key. ``mem://`` cannot be used with workers in other processes
    (:class:`~cloudfiles_dask.exceptions.ProcessBoundaryError`, raised before anything runs).
    """
    _check_count("batch_size", batch_size)
    _check_count("max_in_flight", max_in_flight)
    src, dest = config_of(source), config_of(destination)
    executor = distribute.DaskExecutor(_client(client), retries)
    configs = (src, dest)
    executor.check_boundary(configs)
    executor.prepare(configs, dest.num_threads)  # the batches run on the destination's runner
    if paths is None:
        paths = (key for key, _ in ops.list_keys(process_backend(src), "", False, False))
    elif not jobs.is_many(paths):
        paths = [paths]
    total = jobs.known_length(paths)
    if batch_size is None:
        batch_size = distribute.batch_size_for(total, executor.slots)
    options = TransferOptions(block_size, reencode, content_type, allow_missing, resumable)
    batches = batched(jobs.transfer_pairs(paths), batch_size)
    with make_progress(progress, total, "Transferring") as bar:
        records = distribute.run_batches(
            executor, distribute.transfer_batch, batches, *configs, options,
            in_flight=max_in_flight,
            on_done=lambda batch, record: bar.advance(record.files, record.total_bytes()),
            what="Dask transfer batch")
    return sum(record.files for record in records)
