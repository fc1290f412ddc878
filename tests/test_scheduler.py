"""The scheduler: calling thread for one unit, thread clamping, order, fail-fast, green threads."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest

from cloudfiles_dask import _threads as scheduler


def test_single_unit_runs_on_calling_thread():
    seen = []
    scheduler.run(lambda x: seen.append(threading.get_ident()), [1], concurrency=20)
    assert seen == [threading.get_ident()]


def test_threads_clamped_to_work_and_results_in_input_order():
    idents = set()

    def job(x):
        idents.add(threading.get_ident())
        time.sleep(0.01 * (x % 3))  # finish out of order
        return x * 2

    assert scheduler.run(job, list(range(30)), concurrency=4) == [x * 2 for x in range(30)]
    assert 1 < len(idents) <= 4
    idents.clear()
    scheduler.run(job, [1, 2], concurrency=50)
    assert len(idents) <= 2


def test_generator_is_consumed_lazily_with_bounded_threads():
    produced = []

    def gen():
        for i in range(200):
            produced.append(i)
            yield i

    assert scheduler.run(lambda x: x, gen(), concurrency=8) == list(range(200))
    assert produced == list(range(200))


def _pool_threads() -> set[int]:
    """The reusable worker threads alive now, by identity."""
    return {t.ident for t in threading.enumerate() if t.name == "cfdask-worker"}


def _settle() -> None:
    """Wait until every worker thread has gone back to idle (a thread rejoins the idle set just
    after its part of a call ends, so right after ``run`` returns some may still be on the way)."""
    deadline = time.monotonic() + 5
    while len(scheduler._idle) < len(_pool_threads()) and time.monotonic() < deadline:
        time.sleep(0.005)


def test_worker_threads_are_reused_across_calls():
    """Threads outlive a call and serve the next ones: no thread starts or exits per call (on
    CPython < 3.11.9 a thread starting or exiting during ``sys._current_frames()`` can deadlock
    the process, gh-106883; Dask workers call it 100 times a second)."""

    def job(x):
        time.sleep(0.002)
        return threading.get_ident()

    first = set(scheduler.run(job, list(range(40)), concurrency=4))
    _settle()
    pool = _pool_threads()
    seen = set()
    for _ in range(30):
        seen |= set(scheduler.run(job, list(range(40)), concurrency=4))
        _settle()
    assert _pool_threads() == pool  # the same threads: none started, none exited
    assert first <= pool and seen <= pool  # every call ran on them


def test_prestart_leaves_that_many_idle_threads_and_starts_only_the_missing_ones():
    _settle()
    have = len(scheduler._idle)
    assert scheduler.prestart(have + 7) == 7
    assert len(scheduler._idle) == have + 7
    assert scheduler.prestart(have + 7) == 0
    assert scheduler.prestart(3) == 0
    pool = _pool_threads()
    scheduler.run(lambda x: x, list(range(50)), concurrency=have + 7)  # served by idle threads
    _settle()
    assert _pool_threads() == pool


def test_idle_threads_keep_nothing_of_a_finished_call_alive():
    class Result:
        pass

    results = scheduler.run(lambda x: Result(), list(range(16)), concurrency=4)
    _settle()
    refs = [weakref.ref(r) for r in results]
    del results
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_a_finished_unit_is_let_go_before_the_next_is_taken():
    """A worker keeps no finished unit alive while it takes the next (a unit may hold a whole
    part of an upload): the scheduler must not hold it, nor the iterator feeding it."""

    class Unit:
        pass

    last_done: dict[int, weakref.ref] = {}
    kept = []

    def units():
        for _ in range(40):
            ref = last_done.get(threading.get_ident())
            if ref is not None and ref() is not None:
                kept.append(ref)
            yield Unit()

    others_ran = threading.Event()
    count = [0]

    def fn(unit):
        count[0] += 1
        if count[0] == 1:  # hold one worker: the other runs several units in a row
            others_ran.wait(5)
        elif count[0] == 6:
            others_ran.set()
        last_done[threading.get_ident()] = weakref.ref(unit)

    scheduler.run(fn, units(), 2)
    assert kept == []


def test_first_error_stops_the_run_and_is_raised():
    started = []

    def job(x):
        started.append(x)
        if x == 3:
            raise KeyError("boom at 3")
        time.sleep(0.01)
        return x

    with pytest.raises(KeyError, match="boom at 3"):
        scheduler.run(job, iter(range(10_000)), concurrency=4)
    assert len(started) < 200  # workers stopped taking new units


def test_error_in_callers_generator_propagates():
    def gen():
        yield 1
        raise RuntimeError("bad input stream")

    with pytest.raises(RuntimeError, match="bad input stream"):
        scheduler.run(lambda x: x, gen(), concurrency=4)


def test_green_pool_order_and_errors():
    pytest.importorskip("gevent")
    assert scheduler.run(lambda x: x + 1, list(range(50)), concurrency=10, green=True) == list(range(1, 51))

    def job(x):
        if x == 7:
            raise ValueError(f"green {x}")
        return x

    with pytest.raises(ValueError, match="green 7"):
        scheduler.run(job, list(range(20)), concurrency=5, green=True)


def test_green_is_chosen_automatically_under_monkey_patching(tmp_path):
    pytest.importorskip("gevent")
    code = textwrap.dedent(f"""
        from gevent import monkey; monkey.patch_all()
        from cloudfiles_dask import CloudFiles
        plain = CloudFiles("file://{tmp_path}/d")
        assert plain.green is True, plain.green
        assert CloudFiles("file://{tmp_path}/d", green=False).green is False
        plain.puts([(str(i), b"x" * i) for i in range(50)], compress="gzip")
        assert [r["content"] for r in plain.get([str(i) for i in range(50)])] == [b"x" * i for i in range(50)]
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_not_green_without_monkey_patching():
    from cloudfiles_dask import CloudFiles

    assert CloudFiles("mem://sched/x").green is False
