"""The thread runner: one function over many work units, on the calling thread, OS threads, or
gevent greenlets. Ground: imports nothing of the package. The engine runs every call's units
with it; backends fan the parts of one object out with the :class:`ThreadRunner` their options
carry (they never import this module), so no backend starts threads of its own.

Rules (see docs/architecture.md, "Concurrency"):
- one unit, or a concurrency of 0 or 1, runs on the calling thread: no pool cost;
- the thread count is clamped to the number of units when that number is known;
- workers pull from the shared input iterator, so a generator of any length is consumed lazily
  and no per-unit future is allocated;
- the first error stops the run (workers finish the unit in hand, take no new one) and is
  re-raised on the calling thread; later errors are attached to it as notes. Ctrl-C on the
  caller stops the run the same way: the call returns once no worker runs its units any more
  (a second Ctrl-C leaves at once). A caller may pass the ``stop`` event, to let long units
  see that the run is stopping;
- results come back in input order;
- OS threads are reused: a worker thread that finishes its part of a call waits, idle, for the
  next call in this process instead of exiting (at most :data:`MAX_IDLE_THREADS` wait). Besides
  the start-up cost saved on every call, this keeps thread creation and exit out of long runs:
  on CPython before 3.11.9 (gh-106883) a thread starting or exiting while another thread runs
  ``sys._current_frames()`` (Dask's worker profiler does, 100 times a second) can deadlock the
  whole process, so a Dask worker must not start threads per batch.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterable
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def gevent_active() -> bool:
    """True when gevent monkey-patching is in effect (without importing gevent otherwise)."""
    if "gevent" not in sys.modules:
        return False
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - half-installed gevent
        return False
    return bool(monkey.is_anything_patched())


def resolve_green(green: bool | None) -> bool:
    """``None`` means: green threads if and only if gevent has monkey-patched this process."""
    if green is None:
        return gevent_active()
    if green:
        try:
            import gevent  # noqa: F401
        except ImportError as e:
            raise ImportError(
                "green=True needs gevent: pip install 'cloudfiles-dask[green]'"
            ) from e
    return bool(green)


def run(
    fn: Callable[[T], R],
    units: Iterable[T],
    concurrency: int,
    green: bool = False,
    stop: threading.Event | None = None,
) -> list[R]:
    """``[fn(u) for u in units]`` with up to ``concurrency`` workers, results in input order.
    ``stop`` (OS threads only) is set when the run stops early: an error, or Ctrl-C."""
    size = len(units) if hasattr(units, "__len__") else None  # type: ignore[arg-type]
    if size is not None:
        concurrency = min(concurrency, size)
    if concurrency <= 1:
        return [fn(unit) for unit in units]
    if green:
        return _run_green(fn, units, concurrency)
    return _run_threads(fn, units, concurrency, stop or threading.Event())


class ThreadRunner:
    """What a backend is given (``BackendOptions.runner``) to fan the parts of one call out:
    :meth:`run` on this module's reusable threads, or on greenlets for a green CloudFiles."""

    __slots__ = ("green",)

    def __init__(self, green: bool = False):
        self.green = bool(green)

    def __repr__(self) -> str:
        return f"ThreadRunner(green={self.green})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ThreadRunner) and other.green == self.green

    def __hash__(self) -> int:
        return hash(self.green)

    def __reduce__(self) -> tuple:
        return ThreadRunner, (self.green,)

    @staticmethod
    def patched() -> bool:
        """True under gevent's monkey-patching, where parts gain nothing from more greenlets
        than the calls already running: a backend then runs them one by one."""
        return gevent_active()

    def run(self, fn: Callable[[T], R], units: Iterable[T], concurrency: int,
            stop: threading.Event | None = None) -> list[R]:
        """:func:`run` with this runner's kind of workers."""
        return run(fn, units, concurrency, self.green, stop)


def _raise_first(errors: list[BaseException]) -> None:
    first = errors[0]
    if len(errors) > 1 and hasattr(first, "add_note"):
        first.add_note(f"({len(errors) - 1} more error(s) in other workers of the same call)")
    raise first


#: Idle worker threads kept for later calls; more than this many idle ones exit.
MAX_IDLE_THREADS = 256

_idle: list[SimpleQueue] = []  # the inboxes of idle worker threads
_idle_lock = threading.Lock()


def _worker_main(inbox: SimpleQueue) -> None:
    """A reusable worker thread: run each task put in ``inbox``, then wait idle for the next."""
    while True:
        task = inbox.get()
        task()  # never raises: the task records its own errors
        task = None  # an idle thread must not keep the finished call's results or inputs alive
        with _idle_lock:
            if len(_idle) >= MAX_IDLE_THREADS:
                return
            _idle.append(inbox)


def _new_worker() -> SimpleQueue:
    """Start a reusable worker thread; returns its inbox (``Thread.start`` returns once the
    thread runs)."""
    inbox: SimpleQueue = SimpleQueue()
    threading.Thread(target=_worker_main, args=(inbox,), name="cfdask-worker", daemon=True).start()
    return inbox


def _hand_out(task: Callable[[], None]) -> None:
    """Run ``task`` on an idle worker thread, or on a new one when none is idle."""
    with _idle_lock:
        inbox = _idle.pop() if _idle else None
    if inbox is None:
        inbox = _new_worker()
    inbox.put(task)


def prestart(count: int) -> int:
    """Make sure at least ``count`` reusable worker threads (at most :data:`MAX_IDLE_THREADS`)
    are idle, starting the missing ones now; returns how many were started. For Dask workers:
    threads started before any task runs are not started while Dask's profiler samples the
    running tasks' frames (see the module docstring)."""
    with _idle_lock:
        missing = min(count, MAX_IDLE_THREADS) - len(_idle)
    fresh = [_new_worker() for _ in range(missing)]
    with _idle_lock:
        _idle.extend(fresh)
    return len(fresh)


def _forget_idle_after_fork() -> None:
    global _idle_lock
    _idle.clear()  # their threads do not exist in the child
    _idle_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_idle_after_fork)


def _run_threads(fn: Callable[[T], R], units: Iterable[T], concurrency: int,
                 stop: threading.Event) -> list[R]:
    # not enumerate(): it keeps its last tuple, and so the last unit (a whole part), alive
    source = iter(units)
    numbers = itertools.count()
    take = threading.Lock()
    done: list[tuple[int, R]] = []
    errors: list[BaseException] = []
    finished = threading.Event()
    running = [concurrency]

    def work() -> None:
        while not stop.is_set():
            with take:
                try:
                    unit = next(source)
                    index = next(numbers)
                except StopIteration:
                    return
                except BaseException as e:  # the caller's generator failed
                    errors.append(e)
                    stop.set()
                    return
            try:
                result = fn(unit)
            except BaseException as e:
                errors.append(e)
                stop.set()
                return
            unit = None  # let the unit go before taking the next (it may hold a whole part)
            done.append((index, result))

    def task() -> None:
        try:
            work()
        finally:
            with take:
                running[0] -= 1
                if not running[0]:
                    finished.set()

    for _ in range(concurrency):
        _hand_out(task)
    try:
        while not finished.wait(0.25):  # a timed wait keeps Ctrl-C working
            pass
    except BaseException:
        stop.set()
        # the workers finish the unit in hand (network calls are bounded by their timeouts):
        # nothing of this call goes on behind the caller's back once it has returned
        while not finished.wait(0.25):
            pass
        raise
    if errors:
        _raise_first(errors)
    done.sort(key=lambda pair: pair[0])
    return [result for _, result in done]


def _run_green(fn: Callable[[T], R], units: Iterable[T], concurrency: int) -> list[R]:
    import gevent.pool

    pool = gevent.pool.Pool(concurrency)
    greenlets = []
    errors: list[BaseException] = []

    def collect(greenlet: Any) -> None:
        if greenlet.exception is not None:
            errors.append(greenlet.exception)

    for unit in units:
        if errors:
            break
        greenlet = pool.spawn(fn, unit)  # blocks while the pool is full
        greenlet.link_exception(collect)
        greenlets.append(greenlet)
    pool.join()
    errors = [g.exception for g in greenlets if g.exception is not None]
    if errors:
        _raise_first(errors)
    return [greenlet.value for greenlet in greenlets]
