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

Executors share one small interface: ``slots`` (batches that run at once),
``submit(fn, *args, **kwargs)`` (a future with ``result()``), ``wait_first(futures, timeout)``
(the finished ones; none when ``timeout`` passed first), ``cancel(futures)``,
``check_boundary(configs)`` (the process-boundary check, before anything is submitted),
``prepare(configs, threads_per_task)``, ``release(future)`` (the result was taken: a Dask
task is forgotten, so a worker that dies later does not run it again), ``watch()`` (the
workers that leave meanwhile) and ``on_each_host(fn, *args)`` (``fn`` once on each machine the
work runs on: what only that machine can tell, such as which of its processes still run).

Progress across processes (:class:`BatchProgress`): a task that is given a ``progress`` key
counts its files and bytes in a sink that only adds to two counters; on a Dask worker, one
publisher thread per worker process (started by :meth:`DaskExecutor.prepare`, never by a task)
sends every :data:`PUBLISH_INTERVAL` seconds the running totals of the batches that moved since
its last message, with ``Worker.log_event`` on one topic; the driver's client receives them
(``Client.subscribe_topic``) and the driver's thread turns them into advances of the bar, and
when a batch finishes, advances by what its result adds beyond what was already shown.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from .. import _threads
from ..monitoring import IOEnum, LostWorker, TransmissionMonitor
from ..progress import Progress, ProgressEvent
from . import jobs, ops
from .config import CloudFilesConfig, process_backend, refuse_elsewhere
from .jobs import PutOptions, TransferOptions

#: Units per batch are kept between these (a batch must be worth a process's or a task's
#: overhead, and small enough to balance the work and move progress along).
MIN_BATCH = 20
MAX_BATCH = 1250
#: Units per batch when the number of units is not known in advance (a listing).
UNKNOWN_BATCH = 250
#: Bytes per batch, at most, where the sizes are known in advance (a listing): a batch of large
#: objects holds a few of them, so they spread over the workers (one larger is a batch alone).
BATCH_BYTES = 128 * 1024 * 1024
#: Seconds between two progress messages of a Dask worker (while its batches move): the
#: driver's value when it prepares the workers (every worker, and those that join later).
PUBLISH_INTERVAL = 0.5
#: Seconds between two looks of the driver at the progress received (and at the cluster).
TICK = 0.5
#: Seconds between two looks at the scheduler's event log for workers that left.
WATCH_INTERVAL = 5.0
#: The topic of the workers' progress messages (``Worker.log_event``).
PROGRESS_TOPIC = "cloudfiles-dask-progress"
#: Seconds :meth:`DaskExecutor.on_each_host` waits for its tasks (a clean-up: best effort).
HOST_TASK_TIMEOUT = 60.0
#: The name of the worker plugin :meth:`DaskExecutor.prepare` registers.
PLUGIN_NAME = "cloudfiles-dask-prepare"


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

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: a forked child would inherit locks that threads of this
            # process may hold at that moment
            self._pool = ProcessPoolExecutor(self.slots, mp_context=multiprocessing.get_context("spawn"))
        return self._pool.submit(fn, *args, **kwargs)

    @staticmethod
    def wait_first(futures: Iterable[Any], timeout: float | None = None) -> set[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        return wait(futures, timeout=timeout, return_when=FIRST_COMPLETED).done

    @staticmethod
    def cancel(futures: Iterable[Any]) -> None:
        for future in futures:
            future.cancel()

    @staticmethod
    def release(future: Any) -> None:
        """Nothing to let go of: a finished local future holds nothing elsewhere."""

    @staticmethod
    def watch() -> _NoWatch:
        """Local processes do not leave: nothing to watch."""
        return _NoWatch()

    @staticmethod
    def on_each_host(fn: Callable[..., Any], *args: Any) -> list[Any]:
        """``fn(*args)`` once on each machine the work ran on: here, the processes' machine."""
        return [fn(*args)]


class DaskExecutor:
    """The workers of a Dask cluster, through a ``distributed.Client``. ``retries``: extra
    attempts Dask gives a task that raised (a task whose worker died is rerun by Dask anyway)."""

    def __init__(self, client: Any, retries: int = 0):
        self.client = client
        self.retries = retries
        self.slots = sum(client.nthreads().values()) or 1
        self.keys: set[str] = set()  # the keys of every task submitted (to spot lost ones)

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
        borrow) and the worker's progress publisher, so that no thread starts while tasks run:
        on CPython before 3.11.9 a thread started while Dask's profiler samples the tasks'
        frames can deadlock the worker (gh-106883).

        It is a worker plugin (``PLUGIN_NAME``, replaced by each call), so a worker that joins
        later, such as the one a nanny starts in place of a worker that died, starts them too
        before it takes a task."""
        configs = list(configs)
        green = any(config.use_green for config in configs)  # greenlets, not threads
        helpers = max((config.backend_class.helper_threads for config in configs), default=0)
        plugin = _prepare_plugin()(0 if green else threads_per_task, 0 if green else helpers,
                                   PUBLISH_INTERVAL)
        self.client.register_plugin(plugin, name=PLUGIN_NAME)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        future = self.client.submit(fn, *args, pure=False, retries=self.retries, **kwargs)
        self.keys.add(future.key)
        return future

    @staticmethod
    def wait_first(futures: Iterable[Any], timeout: float | None = None) -> set[Any]:
        import distributed

        try:
            return distributed.wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return set()

    def cancel(self, futures: Iterable[Any]) -> None:
        self.client.cancel(list(futures))

    @staticmethod
    def release(future: Any) -> None:
        """Let the cluster forget a task whose result was taken: were its worker to die now,
        Dask would otherwise run it again for a result nobody needs (and, for a transfer, write
        its files again after they were counted, or marked done in a ledger)."""
        future.release()

    def watch(self) -> ClusterWatch:
        """Start noting the workers that leave the cluster (see :class:`ClusterWatch`)."""
        return ClusterWatch(self.client, self.keys)

    def on_each_host(self, fn: Callable[..., Any], *args: Any) -> list[Any]:
        """``fn(*args)`` as one task on a worker of each machine of the cluster (for what only
        that machine can tell, such as which of its processes run); the results. A task whose
        worker leaves meanwhile runs on another worker, of another machine maybe: ``fn`` must
        be harmless anywhere."""
        try:
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
        except TypeError:  # a distributed that lists every worker without being asked
            workers = self.client.scheduler_info()["workers"]
        hosts = sorted({str(info.get("host") or address) for address, info in workers.items()})
        # Restricted to a host, not to a worker address: were every worker to die while the
        # task waits or runs, the scheduler gives it to a replacement on that host; restricted
        # to a dead address it would wait, task left "no-worker", until the timeout below.
        futures = [self.client.submit(fn, *args, workers=[host], allow_other_workers=True,
                                      pure=False)
                   for host in hosts]
        import distributed

        # best effort, bounded: a worker that hangs (or a replacement stuck starting) must not
        # hold the driver; what is not done by then is left to the next run or a sweep
        with contextlib.suppress(TimeoutError):
            distributed.wait(futures, timeout=HOST_TASK_TIMEOUT)
        late = [future for future in futures if not future.done()]
        if late:
            self.client.cancel(late)
        return [future.result() for future in futures if future.status == "finished"]


def _prestart(per_task: int, helpers: int, dask_worker: Any = None) -> int:
    """Start the engine threads a worker's tasks will use, outside any task (see
    :meth:`DaskExecutor.prepare`)."""
    state = getattr(dask_worker, "state", None)
    tasks = getattr(state, "nthreads", None) or getattr(dask_worker, "nthreads", None) or 1
    if not per_task and not helpers:
        return 0
    return _threads.prestart(tasks * per_task + helpers)


def _plugin_init(self: Any, per_task: int, helpers: int, interval: float = PUBLISH_INTERVAL) -> None:
    self.per_task = per_task
    self.helpers = helpers
    self.interval = interval


def _plugin_setup(self: Any, worker: Any) -> None:
    """On the worker's event loop, before it runs a task of ours: its engine threads and its
    progress publisher."""
    _prestart(self.per_task, self.helpers, worker)
    _start_publisher(worker, self.interval)


_plugin_class: type | None = None


def __getattr__(name: str) -> Any:
    """``PreparePlugin``, found by name when a worker unpickles the plugin."""
    if name != "PreparePlugin":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _prepare_plugin()


def _prepare_plugin() -> type:
    """The class ``PreparePlugin``: a ``distributed.WorkerPlugin`` (which must be subclassed),
    made on first use so that importing this module never imports Dask."""
    global _plugin_class
    if _plugin_class is None:
        from distributed.diagnostics.plugin import WorkerPlugin

        _plugin_class = type("PreparePlugin", (WorkerPlugin,), {
            "__module__": __name__, "__qualname__": "PreparePlugin",
            "__doc__": "Starts a worker's engine threads and progress publisher (see DaskExecutor.prepare).",
            "name": PLUGIN_NAME, "__init__": _plugin_init, "setup": _plugin_setup,
        })
    return _plugin_class


# -- workers that leave --------------------------------------------------------------------------
class _NoWatch:
    def poll(self, force: bool = False) -> None:
        pass

    def lost(self) -> list[LostWorker]:
        return []


class ClusterWatch:
    """The workers that leave a Dask cluster from now on, read from the scheduler's event log
    (topic ``"all"``, action ``remove-worker``: a death, or a retirement when ``expected``),
    with how many of ``keys`` (the tasks submitted) each was running. :meth:`poll` looks at
    most every :data:`WATCH_INTERVAL` seconds (the log keeps the last thousand events of the
    cluster), and at the end with ``force``."""

    def __init__(self, client: Any, keys: set[str]):
        self._client = client
        self._keys = keys
        self._lost: dict[tuple[str, float], LostWorker] = {}
        self._last = time.monotonic()
        events = self._events()
        self._mark = events[-1][0] if events else 0.0  # the scheduler's clock

    def _events(self) -> tuple:
        try:
            return tuple(self._client.get_events("all"))
        except Exception:  # noqa: BLE001 - a scheduler that cannot say: nothing seen
            return ()

    def poll(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < WATCH_INTERVAL:
            return
        self._last = now
        for stamp, msg in self._events():
            if stamp <= self._mark or not isinstance(msg, dict):
                continue
            self._mark = stamp
            if msg.get("action") != "remove-worker" or not msg.get("worker"):
                continue
            running = set(msg.get("processing-tasks") or ()) & self._keys
            expected = msg.get("expected")
            self._lost[(msg["worker"], stamp)] = LostWorker(
                msg["worker"], stamp, None if expected is None else bool(expected), len(running))

    def lost(self) -> list[LostWorker]:
        """The workers seen leaving so far, in the order they left."""
        return sorted(self._lost.values(), key=lambda worker: worker.time)


# -- progress: the workers' side -------------------------------------------------------------------
class _Counts:
    """A progress sink that only adds: the files and bytes a running batch has moved. The
    engine calls it under its Progress's lock, so the additions never race."""

    __slots__ = ("files", "nbytes")

    def __init__(self) -> None:
        self.files = 0
        self.nbytes = 0

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "advance":
            self.files += event.files
            self.nbytes += event.nbytes


class _Publisher:
    """One per Dask worker process: every :data:`PUBLISH_INTERVAL` seconds, one message with the
    running totals of the batches that moved since the last one (nothing while none runs)."""

    def __init__(self, worker: Any, interval: float):
        self._worker = weakref.ref(worker)
        self.interval = interval
        self._lock = threading.Lock()
        self._active: dict[tuple[str, int], _Counts] = {}
        self._sent: dict[tuple[str, int], tuple[int, int]] = {}
        self._wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cloudfiles-dask-progress", daemon=True)

    def add(self, key: tuple[str, int], counts: _Counts) -> None:
        with self._lock:
            self._active[key] = counts
            self._wake.set()

    def remove(self, key: tuple[str, int]) -> None:
        with self._lock:
            self._active.pop(key, None)
            self._sent.pop(key, None)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.interval)
            worker = self._worker()
            if worker is None:
                return
            with self._lock:
                moved = []
                for key, counts in self._active.items():
                    now = (counts.files, counts.nbytes)
                    if now != self._sent.get(key, (0, 0)):
                        self._sent[key] = now
                        moved.append([key[0], key[1], now[0], now[1]])
                if not self._active:
                    self._wake.clear()
            if moved:
                try:
                    worker.log_event(PROGRESS_TOPIC, {"worker": worker.address, "batches": moved})
                except Exception:  # noqa: BLE001 - a worker closing: the results still count
                    pass
            del worker


_publisher: _Publisher | None = None
_publisher_lock = threading.Lock()


def _start_publisher(worker: Any, interval: float) -> None:
    global _publisher
    with _publisher_lock:
        current = _publisher
        if current is not None and current._worker() is worker and current.thread.is_alive():
            current.interval = interval
            return
        _publisher = _Publisher(worker, interval)
        _publisher.thread.start()


# -- progress: the driver's side -------------------------------------------------------------------
class _Router:
    """One subscription per client to :data:`PROGRESS_TOPIC`, shared by the transfers the
    client runs at once; hands each message's batches to their transfer's BatchProgress. Runs
    on the client's event loop: it only stores numbers."""

    def __init__(self) -> None:
        self.listeners: dict[str, BatchProgress] = {}

    def __call__(self, event: Any) -> None:
        try:
            _, msg = event
            worker = msg.get("worker")
            for transfer_id, index, files, nbytes in msg["batches"]:
                listener = self.listeners.get(transfer_id)
                if listener is not None:
                    listener.report(int(index), int(files), int(nbytes), worker)
        except Exception:  # noqa: BLE001 - a malformed message must not break the client
            pass


_routers: dict[str, _Router] = {}
_routers_lock = threading.Lock()


def _listen(client: Any, listener: BatchProgress) -> None:
    with _routers_lock:
        router = _routers.get(client.id)
        if router is None:
            router = _routers[client.id] = _Router()
            client.subscribe_topic(PROGRESS_TOPIC, router)
        router.listeners[listener.id] = listener


def _unlisten(client: Any, listener: BatchProgress) -> None:
    with _routers_lock:
        router = _routers.get(client.id)
        if router is None:
            return
        router.listeners.pop(listener.id, None)
        if not router.listeners:
            del _routers[client.id]
            try:
                client.unsubscribe_topic(PROGRESS_TOPIC)
            except Exception:  # noqa: BLE001 - a client already closed
                pass


class BatchProgress:
    """Advances ``bar`` (a :class:`~cloudfiles_dask.progress.Progress`) as batches move,
    counting each file once, and saying which worker moved it.

    Where the executor is a Dask cluster and the bar shows something, each task is told its
    ``progress`` key, its worker reports the batch's running totals about every
    :data:`PUBLISH_INTERVAL` seconds, and :meth:`tick` (on the driver's thread) advances the
    bar by what they add. When a batch finishes, :meth:`done` advances by what its result
    (``measure(result) -> (files, bytes, worker)``) adds beyond what was shown. A batch's
    reports are running totals, so a report that arrives late, twice, or from a second attempt
    of the batch (Dask reruns the batches of a worker that died) counts only where it goes
    beyond the most already shown for that batch, and once the batch is done only its result
    counts."""

    def __init__(self, bar: Progress,
                 measure: Callable[[Any], tuple[int, int, str | None]],
                 executor: Any = None):
        self.bar = bar
        self.measure = measure
        self.id = uuid.uuid4().hex
        self._lock = threading.Lock()
        # the most each running batch reported, and from which worker
        self._reported: dict[int, tuple[int, int, str | None]] = {}
        self._shown: dict[int, tuple[int, int]] = {}  # what the bar shows of each running batch
        self._finished: set[int] = set()
        self._client = executor.client if bar.active and isinstance(executor, DaskExecutor) else None
        self.interval = TICK if self._client is not None else None
        if self._client is not None:
            _listen(self._client, self)

    def kwargs(self, index: int) -> dict[str, Any]:
        """The keyword arguments of batch ``index``'s task."""
        return {"progress": (self.id, index)} if self._client is not None else {}

    def report(self, index: int, files: int, nbytes: int, worker: str | None = None) -> None:
        """A worker's running totals of batch ``index`` (on the client's event loop)."""
        with self._lock:
            if index in self._finished:
                return
            old = self._reported.get(index, (0, 0, None))
            self._reported[index] = (max(old[0], files), max(old[1], nbytes), worker or old[2])

    def tick(self) -> None:
        """Advance the bar by what the reports add (on the driver's thread)."""
        moved: dict[str | None, list[int]] = {}
        with self._lock:
            for index, (reported_files, reported_bytes, worker) in self._reported.items():
                shown_files, shown_bytes = self._shown.get(index, (0, 0))
                if reported_files > shown_files or reported_bytes > shown_bytes:
                    sums = moved.setdefault(worker, [0, 0])
                    sums[0] += max(0, reported_files - shown_files)
                    sums[1] += max(0, reported_bytes - shown_bytes)
                    self._shown[index] = (max(shown_files, reported_files),
                                          max(shown_bytes, reported_bytes))
        for worker, (files, nbytes) in moved.items():
            self.bar.advance(files, nbytes, worker)

    def done(self, index: int, result: Any) -> None:
        """Batch ``index`` finished with ``result``: advance by what it adds to what was shown."""
        files, nbytes, worker = self.measure(result)
        with self._lock:
            self._finished.add(index)
            self._reported.pop(index, None)
            shown_files, shown_bytes = self._shown.pop(index, (0, 0))
        if files - shown_files > 0 or nbytes - shown_bytes > 0:
            self.bar.advance(max(0, files - shown_files), max(0, nbytes - shown_bytes), worker)

    def close(self) -> None:
        if self._client is not None:
            _unlisten(self._client, self)
            self._client = None

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_batches(
    executor: Any,
    task: Callable[..., Any],
    batches: Iterable[list[Any]],
    *params: Any,
    in_flight: int | None = None,
    on_done: Callable[[list[Any], Any], None] | None = None,
    what: str = "batch",
    stream: BatchProgress | None = None,
    on_tick: Callable[[], None] | None = None,
) -> list[Any]:
    """``[task(batch, *params) for batch in batches]`` on ``executor``, at most ``in_flight``
    submitted at once (default: twice its slots, at least 4), so ``batches`` is read lazily.
    ``on_done(batch, result)`` runs on this thread as each batch finishes (progress). The first
    failed batch cancels those still submitted and its error is raised here, with a note
    naming the batch's first unit (``what`` names a batch in that note).

    ``stream``: a :class:`BatchProgress`, whose task keywords each batch's task gets and which
    is told of each finished batch; it and ``on_tick`` are called on this thread about every
    :data:`TICK` seconds while batches run."""
    limit = in_flight or max(4, 2 * executor.slots)
    pending: dict[Any, tuple[int, list[Any]]] = {}
    results: dict[int, Any] = {}
    ticking = on_tick is not None or (stream is not None and stream.interval is not None)
    timeout = TICK if ticking else None
    last_tick = time.monotonic()

    def tick() -> None:
        nonlocal last_tick
        if not ticking or time.monotonic() - last_tick < TICK:
            return
        last_tick = time.monotonic()
        if stream is not None:
            stream.tick()
        if on_tick is not None:
            on_tick()

    release = getattr(executor, "release", None)

    def collect(future: Any) -> None:
        index, batch = pending.pop(future)
        try:
            result = future.result()
        except BaseException as error:
            if hasattr(error, "add_note"):
                error.add_note(f"(in the {what} starting with {_first_key(batch)!r})")
            raise
        finally:
            if release is not None:
                release(future)  # before anything counts the batch as done
        results[index] = result
        if stream is not None:
            stream.tick()  # reports first: the result then adds only what they did not show
            stream.done(index, result)
        if on_done is not None:
            on_done(batch, result)

    def wait() -> None:
        for future in executor.wait_first(pending, timeout):
            collect(future)
        tick()

    try:
        for index, batch in enumerate(batches):
            kwargs = stream.kwargs(index) if stream is not None else {}
            pending[executor.submit(task, batch, *params, **kwargs)] = (index, batch)
            tick()
            while len(pending) >= limit:
                wait()
        while pending:
            wait()
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
def origin() -> str:
    """Where a task runs: its Dask worker's address, else ``host:pid``."""
    distributed = sys.modules.get("distributed")  # never imported for this
    if distributed is not None:
        try:
            return distributed.get_worker().address
        except ValueError:  # not in a Dask task
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def get_batch(items: list[Any], config: CloudFilesConfig, raw: bool, raise_errors: bool,
              part_size: int | None = None, record: bool = False,
              ) -> tuple[list[dict], TransmissionMonitor | None]:
    """``CloudFiles.get`` of many keys: the result dicts, in input order, and the batch's
    transfer record when ``record``."""
    recording = TransmissionMonitor(IOEnum.RX, origin()) if record else None
    with config.runner(recording=recording) as runner:
        results = ops.get_many(process_backend(config), list(map(jobs.read_unit, items)), raw,
                               runner, raise_errors, part_size)
    return results, recording


def put_batch(files: list[Any], config: CloudFilesConfig, options: PutOptions,
              record: bool = False) -> tuple[int, TransmissionMonitor | None]:
    """``CloudFiles.puts``: how many files were written, and the batch's transfer record when
    ``record``."""
    recording = TransmissionMonitor(IOEnum.TX, origin()) if record else None
    with config.runner(recording=recording) as runner:
        written = ops.put_many(process_backend(config), jobs.unique_put_units(files, options),
                               runner)
    return written, recording


def delete_batch(keys: list[str], config: CloudFilesConfig) -> int:
    """``CloudFiles.delete``: how many keys were processed."""
    with config.runner() as runner:
        return ops.delete_many(process_backend(config), keys, runner)


class _NamingRunner(ops.Runner):
    """A Runner that records each unit that fails, with its key, in the call's record (the
    transfers that run their pairs as units: copies and streamed downloads)."""

    __slots__ = ()

    def run(self, fn: Callable[[Any], Any], units: Iterable[Any], cap: int | None) -> list[Any]:
        recording = self.recording

        def named(unit: Any) -> Any:
            start = time.time()
            try:
                return fn(unit)
            except Exception as error:
                recording.record_error(start, time.time(), error, path=_unit_key(unit))
                raise

        return super().run(named, units, cap)


def _unit_key(unit: Any) -> str | None:
    if isinstance(unit, str):
        return unit
    if isinstance(unit, (tuple, list)) and unit and isinstance(unit[0], str):
        return unit[0]
    path = getattr(unit, "path", None)
    return path if isinstance(path, str) else None


def transfer_batch(pairs: list[tuple[str, str]], src: CloudFilesConfig, dest: CloudFilesConfig,
                   options: TransferOptions, progress: tuple[str, int] | None = None,
                   ) -> TransmissionMonitor:
    """A transfer of ``(source key, destination key)`` pairs: its record (``.files`` written,
    ``.total_bytes()`` moved, ``origin`` the worker), which the driver merges with the other
    batches'. ``progress``: the batch's key for the worker's progress publisher (see
    :class:`BatchProgress`).

    A failure is raised with the batch's record as its ``recording`` attribute (the files that
    failed, with their source keys where the engine runs them one by one, and their errors):
    the driver merges it into the summary it attaches to the error it raises."""
    recording = TransmissionMonitor(IOEnum.TX, origin())
    publisher = _publisher if progress is not None else None
    counts = _Counts() if publisher is not None else None
    runner = _NamingRunner(dest.num_threads, dest.use_green,
                           Progress([counts] if counts is not None else None), recording)
    if publisher is not None:
        publisher.add(progress, counts)
    started = time.time()
    try:
        with runner:
            ops.transfer(process_backend(src), process_backend(dest), pairs, runner, options)
    except Exception as error:
        if not any(failure.error is error for failure in recording.errors()):
            recording.record_error(started, time.time(), error)
        # a copy: its failures hold copies of the errors, so the error does not hold itself
        with contextlib.suppress(AttributeError, TypeError):  # an error that takes no attribute
            error.recording = pickle.loads(pickle.dumps(recording))
        raise
    finally:
        if publisher is not None:
            publisher.remove(progress)
    return recording


def remove_orphans_batch(dirs: list[str], config: CloudFilesConfig) -> int:
    """``ops.remove_orphans`` over the directories ``dirs`` of ``config``, in this process (on
    each machine of a cluster after a transfer: see ``DaskExecutor.on_each_host``)."""
    return ops.remove_orphans(process_backend(config), dirs)


def move_batch(pairs: list[tuple[str, str]], src: CloudFilesConfig, dest: CloudFilesConfig,
               block_size: int) -> int:
    """``CloudFiles.moves`` of ``(source key, destination key)`` pairs: how many moved."""
    with src.runner() as runner:
        return ops.move(process_backend(src), process_backend(dest), pairs, runner, block_size)
