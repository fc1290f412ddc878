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
setting); the summary lists the workers that left. Into file://, once every batch is done, one
task on each machine of the cluster removes, from the directories the transfer wrote into,
the temporary files that dead processes of that machine left (a worker killed mid-write, or a
killed earlier run): see ``_engine.ops.remove_orphans``.

What a transfer returns is its summary: the ``TransmissionMonitor`` ``CloudFiles.transfer_to``
returns without Dask, merged from the batches' records (each says which worker made it), with
the workers that left the cluster meanwhile in ``lost_workers``. Progress moves while batches
run: each worker reports its batches' running totals about twice a second (see
``_engine.distribute.BatchProgress``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._engine import distribute, jobs, ops
from .._engine.config import CloudFilesConfig, process_backend
from .._engine.jobs import TransferOptions
from .._iteration import batched, batched_by
from ..monitoring import TransmissionMonitor
from ..progress import Progress, make_progress
from ..progress import listing as progress_listing

if TYPE_CHECKING:
    from ..cloudfiles import CloudFiles

#: What to install for the Dask faces (the CLI's ``--dask`` says the same).
INSTALL_HINT = "pip install 'cloudfiles-dask[dask]'"
_HINT = f"cloudfiles_dask.dask needs Dask's distributed scheduler: {INSTALL_HINT}"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(_HINT) from error
    return distributed


def client_or_current(client: Any) -> Any:
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
    """The configuration of a CloudFiles (or a CloudFilesConfig), or that of the default
    CloudFiles of a cloudpath."""
    if isinstance(value, CloudFilesConfig):
        return value
    return CloudFilesConfig(value) if isinstance(value, str) else value.config


def check_count(name: str, value: Any, optional: bool = True) -> None:
    """ValueError unless ``value`` is an int >= 1 (or None when ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        allowed = " or None" if optional else ""
        raise ValueError(f"{name} must be an int >= 1{allowed}, got {value!r}")


def executor_for(client: Any, configs: Iterable[CloudFilesConfig], threads_per_task: int,
                 retries: int = 0) -> distribute.DaskExecutor:
    """The seam's executor on ``client`` (default: the current client), the process boundary
    checked for ``configs`` before anything runs and every worker prepared."""
    executor = distribute.DaskExecutor(client_or_current(client), retries)
    configs = list(configs)
    executor.check_boundary(configs)
    executor.prepare(configs, threads_per_task)
    return executor


def _size(entry: tuple[str, int | None]) -> int:
    return entry[1] or 0


def _measure(record: TransmissionMonitor) -> tuple[int, int, str | None]:
    return record.files, record.total_bytes(), record.origin


def run_transfer(executor: Any, src: CloudFilesConfig, dest: CloudFilesConfig,
                 batches: Iterable[list[tuple[str, str]]], options: TransferOptions,
                 bar: Progress, *, max_in_flight: int | None = None,
                 on_done: Any = None,
                 cleanup: Callable[[bool], tuple[list[str], Callable[[str], bool]]] | None = None,
                 ) -> TransmissionMonitor:
    """Run ``batches`` of ``(source key, destination key)`` pairs as ``transfer_batch`` tasks
    on ``executor``; returns the merged record with the workers that left meanwhile.
    ``on_done(batch, record)`` runs on this thread when a batch has finished. Into file://,
    once all have, the temporary files dead processes left in the directories written into
    are removed, by a task on each machine of the cluster (see the module doc); into an object
    store, when workers died meanwhile, the parts they left (where their owner is known).
    ``cleanup(workers_died)``: a resumed job's ``(directories, owns)`` (see
    ``ResumableFileSet.debris_scope``), cleaned here as well, on the driver.

    On a failure the error is raised with the summary so far as its ``recording`` attribute:
    the batches that finished and the failed batch's record (its failed files with their keys
    and errors)."""
    watch = executor.watch()
    finished: list[TransmissionMonitor] = []
    dirs: set[str] = set()
    batches = _noting_dirs(batches, dirs)

    def done(batch: list[tuple[str, str]], record: TransmissionMonitor) -> None:
        finished.append(record)
        if on_done is not None:
            on_done(batch, record)

    with distribute.BatchProgress(bar, _measure, executor) as stream:
        try:
            records = distribute.run_batches(
                executor, distribute.transfer_batch, batches, src, dest, options,
                in_flight=max_in_flight, on_done=done, what="Dask transfer batch",
                stream=stream, on_tick=watch.poll)
        except Exception as error:
            failed = getattr(error, "recording", None)
            parts = finished + ([failed] if isinstance(failed, TransmissionMonitor) else [])
            summary = TransmissionMonitor.merge(parts)
            watch.poll(force=True)
            summary.lost_workers = watch.lost()
            for failure in summary.errors():
                bar.fail(failure.path or "(a file of the failed batch)", failure.error or error)
            bar.record = summary
            try:
                error.recording = summary
            except (AttributeError, TypeError):  # an error that takes no attribute: as it is
                pass
            else:
                if hasattr(error, "add_note"):
                    error.add_note(f"(the summary until then, {summary.files} files written and "
                                   f"{summary.num_errors} failed, is this error's .recording)")
            raise
    watch.poll(force=True)
    died = bool(watch.lost())
    if died or dest.backend_class.local_files:  # an object store holds nothing else of ours
        if dirs:
            executor.on_each_host(distribute.remove_orphans_batch, sorted(dirs), dest)
    if cleanup is not None:
        scope, owns = cleanup(died)
        ops.remove_orphans(process_backend(dest), scope, owns)
    summary = TransmissionMonitor.merge(records)
    summary.lost_workers = watch.lost()
    bar.record = summary
    return summary


def _noting_dirs(batches: Iterable[list[tuple[str, str]]],
                 into: set[str]) -> Iterable[list[tuple[str, str]]]:
    """``batches`` as they are, the directory of each destination key added to ``into``."""
    for batch in batches:
        into.update(ops.key_dir(dest_key) for _, dest_key in batch)
        yield batch


def transfer_on(client: Any, source: Any, destination: Any, paths: Any, options: TransferOptions,
                progress: Any, *, batch_size: int | None = None,
                max_in_flight: int | None = None, retries: int = 0) -> TransmissionMonitor:
    """:func:`transfer` with the transfer's options as one object: what
    ``CloudFiles.transfer_to(..., client=client)``, :func:`transfer` and the CLI's ``--dask``
    run."""
    check_count("batch_size", batch_size)
    check_count("max_in_flight", max_in_flight)
    src, dest = config_of(source), config_of(destination)
    # the batches run on the destination's runner
    executor = executor_for(client, (src, dest), dest.num_threads, retries)
    if paths is None:
        # listed with sizes: a batch also closes at BATCH_BYTES, so large objects spread out
        listing = ops.list_keys(process_backend(src), "", False, True)
        total = None
        bar = make_progress(progress, total, "Transferring")
        listing = progress_listing(bar, listing)
        batches = ([(key, key) for key, _ in batch] for batch in batched_by(
            listing, batch_size or distribute.UNKNOWN_BATCH, distribute.BATCH_BYTES, _size))
    else:
        if not jobs.is_many(paths):
            paths = [paths]
        total = jobs.known_length(paths)
        if batch_size is None:
            batch_size = distribute.batch_size_for(total, executor.slots)
        batches = batched(jobs.transfer_pairs(paths), batch_size)
        bar = make_progress(progress, total, "Transferring")
    with bar:
        return run_transfer(executor, src, dest, batches, options, bar,
                            max_in_flight=max_in_flight)


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
) -> TransmissionMonitor:
    """Copy files from ``source`` to ``destination`` on a Dask cluster; returns the transfer's
    summary, the ``TransmissionMonitor`` ``CloudFiles.transfer_to`` returns (``.files`` written,
    ``.total_bytes()``, ``.duration()``, ``.total_bps()``, ...), merged from the batches'
    records, plus ``.by_worker()`` (files, bytes and errors per worker) and ``.lost_workers``
    (the workers that left the cluster while it ran; their batches ran again elsewhere).
    ``.summary()`` gives all of it as plain data.

    ``source`` and ``destination`` are CloudFiles or cloudpaths (a cloudpath gets the default
    options; pass a CloudFiles for secrets, ``num_threads`` and the rest). ``paths`` is what
    ``CloudFiles.transfer_to`` takes (keys, ``(src, dest)`` pairs, ``{"path", "dest_path"}``
    dicts); None transfers everything listed under ``source``, listed here, on the driver.
    ``block_size``, ``reencode``, ``content_type``, ``allow_missing`` and ``resumable`` mean what
    they mean there.

    ``client``: a ``distributed.Client`` (default: the current one). Each task handles
    ``batch_size`` files on ``destination.num_threads`` threads of its worker (default: the
    files cut into about two batches per worker thread, 20 to 1250 files each; when listing,
    where the number is not known in advance, 250 files and at most 128 MiB of listed sizes,
    a larger object being a batch of its own). At most ``max_in_flight`` tasks
    are queued at once (default: twice the cluster's worker threads, at least 4). ``retries``:
    extra attempts Dask gives a batch that raised (default none: each request is already
    retried with backoff inside the batch, and Dask reruns the batches of a worker that died).

    ``progress`` is what the rest of the API takes (True for a bar, a callable for
    :class:`~cloudfiles_dask.progress.ProgressEvent` objects); its events carry the files and
    bytes moved across the cluster, about twice a second while batches run (each worker reports
    its running batches), and are called on this thread. A batch that runs twice (its worker
    died) is never counted twice.

    The first failed batch cancels those still queued and its exception is raised here, with a
    note naming the batch's first key; its ``recording`` attribute is the summary until then
    (the batches that finished, and the failed files with their keys and errors). ``mem://``
    cannot be used with workers in other processes
    (:class:`~cloudfiles_dask.exceptions.ProcessBoundaryError`, raised before anything runs).
    """
    options = TransferOptions(block_size, reencode, content_type, allow_missing, resumable)
    return transfer_on(client, source, destination, paths, options, progress,
                       batch_size=batch_size, max_in_flight=max_in_flight, retries=retries)
