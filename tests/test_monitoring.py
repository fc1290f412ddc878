"""cloudfiles_dask.monitoring: flights, totals, rates, histograms, merging, pickling, thread
safety, charts and the network sampler. Real threads, real clock, real psutil and matplotlib."""

from __future__ import annotations

import concurrent.futures
import gc
import math
import multiprocessing
import pickle
import random
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import uuid
from array import array

import numpy as np
import pytest

from cloudfiles_dask.monitoring import (
    EXTRA_HINT,
    FlightError,
    IOEnum,
    IOSampler,
    LostWorker,
    TransmissionMonitor,
    _histogram_np,
    _histogram_py,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = 1_700_000_000.0  # a plausible Unix time, exactly representable with room for fractions


@pytest.fixture
def tx():
    return TransmissionMonitor(IOEnum.TX)


def flights_of(monitor):
    return sorted(monitor._intervaltree)


# --------------------------------------------------------------------------- start_io / end_io

def test_a_new_monitor_is_empty(tx):
    assert tx._direction is IOEnum.TX
    assert tx._total_bytes_landed == 0
    assert len(tx._in_flight) == 0
    assert len(tx._errors) == 0
    assert tx._in_flight_bytes == 0
    assert len(tx._intervaltree) == 0
    assert tx.files == 0 and tx.num_errors == 0 and tx.errors() == []
    assert tx.total_bytes() == 0 and tx.total_bps() == 0.0 and tx.current_bps() == 0.0
    assert tx.peak_bps() == 0.0 and len(tx.histogram()) == 0
    assert tx.start_unix_time() == 0.0 and tx.end_unix_time() == 0.0


def test_direction_must_be_an_ioenum():
    with pytest.raises(TypeError):
        TransmissionMonitor("tx")


def test_start_io_and_end_io_record_a_flight_in_wall_clock_time(tx):
    before = time.time()
    flight_id = tx.start_io(100)
    assert isinstance(flight_id, uuid.UUID)
    assert len(tx._in_flight) == 1 and flight_id in tx._in_flight
    assert tx._in_flight_bytes == 100
    time.sleep(0.01)
    tx.end_io(flight_id, 100)
    after = time.time()

    assert len(tx._in_flight) == 0
    assert tx._in_flight_bytes == 0
    assert tx._total_bytes_landed == 100
    assert len(tx._intervaltree) == 1
    [(start, end, size)] = flights_of(tx)
    assert before <= start < end <= after and end - start >= 0.01
    assert size == 100 and tx.files == 1


def test_start_io_takes_a_start_time_and_the_bytes_landed_may_differ(tx):
    flight_id = tx.start_io(0, start_time=T0)  # a download of an unknown size
    tx.end_io(flight_id, 5000)
    [(start, end, size)] = flights_of(tx)
    assert start == T0 and end > T0 and size == 5000
    assert tx._in_flight_bytes == 0  # what start_io added is what end_io takes away
    assert tx.total_bytes() == 5000


def test_ending_an_unknown_flight_is_a_key_error(tx):
    with pytest.raises(KeyError):
        tx.end_io(uuid.uuid4(), 1)
    flight_id = tx.start_io(1)
    tx.end_io(flight_id, 1)
    with pytest.raises(KeyError):
        tx.end_io(flight_id, 1)  # twice
    assert tx.files == 1


def test_end_error_keeps_the_flight_in_flight_and_notes_its_id(tx):
    flight_id = tx.start_io(100)
    error = OSError("connection reset")
    tx.end_error(flight_id, error)

    assert flight_id in tx._errors
    assert len(tx._in_flight) == 1  # still in flight, as in the original
    assert tx._in_flight_bytes == 100
    assert tx._total_bytes_landed == 0 and len(tx._intervaltree) == 0 and tx.files == 0
    [failure] = tx.errors()
    assert isinstance(failure, FlightError) and failure.error is error
    assert failure.start_time == tx._in_flight[flight_id][0] <= failure.end_time
    tx.end_error(flight_id)  # a second call counts it once
    assert tx.num_errors == 1
    other = tx.start_io(1)
    tx.end_error(other)
    assert tx.num_errors == 2 and tx.errors()[1].error is None


def test_a_frozen_monotonic_clock_does_not_stop_a_flight_landing(tx, monkeypatch):
    """The original's test pins time.monotonic to a constant; flights use the wall clock."""
    monkeypatch.setattr(time, "monotonic", lambda: 1)
    flight_id = tx.start_io(100)
    time.sleep(0.01)
    tx.end_io(flight_id, 100)
    assert len(tx._in_flight) == 0 and tx._in_flight_bytes == 0
    assert tx._total_bytes_landed == 100 and len(tx._intervaltree) == 1


def test_end_io_records_a_real_duration(tx):
    flight_id = tx.start_io(100)
    time.sleep(0.3)
    tx.end_io(flight_id, 100)
    assert 0.3 <= tx.duration() < 30
    assert tx.total_bps() == pytest.approx(800 / tx.duration())


# --------------------------------------------------------------------------- record and rates

def test_record_totals_and_rates(tx):
    tx.record(T0, T0 + 2, 1000)
    assert tx.files == 1 and tx.total_bytes() == 1000 and tx._total_bytes_landed == 1000
    assert tx.start_unix_time() == T0 and tx.end_unix_time() == T0 + 2
    assert tx.total_bps() == 4000
    assert tx.total_Mbps() == pytest.approx(4000 / 1e6)
    assert tx.total_Gbps() == pytest.approx(4000 / 1e9)
    assert tx.total_MBps() == pytest.approx(500 / 1e6)
    assert tx.total_GBps() == pytest.approx(500 / 1e9)
    assert tx.current_bps(2.0) == 4000
    assert tx.current_bps(1.0) == 4000  # half the flight in half the time
    assert tx.current_Mbps() == pytest.approx(4000 / 1e6)
    assert tx.current_Gbps() == pytest.approx(4000 / 1e9)
    assert tx.current_MBps() == pytest.approx(500 / 1e6)
    assert tx.current_GBps() == pytest.approx(500 / 1e9)
    assert tx._in_flight == {} and tx._in_flight_bytes == 0


def test_rates_over_two_flights(tx):
    tx.record(T0, T0 + 1, 1000)
    tx.record(T0 + 1, T0 + 2, 3000)
    assert tx.total_bps() == 16000  # 4000 bytes in 2 s
    assert tx.current_bps(1.0) == 24000  # the last second: the 3000-byte flight
    assert tx.current_bps(2.0) == 16000
    assert tx.current_bps(100.0) == 16000  # the window never reaches before the first start
    assert tx.current_bps(0.5) == 24000
    assert tx.peak_bps() == 24000


def test_current_rate_runs_up_to_now_while_a_flight_is_open(tx):
    tx.record(T0, T0 + 1, 1000)  # long ago
    assert tx.current_bps() == 8000
    flight_id = tx.start_io(10)
    assert tx.current_bps() == 0.0  # nothing landed in the last 2 s up to now
    tx.end_error(flight_id)  # a failed flight stays in _in_flight but is not open any more
    assert tx.current_bps() == 8000


def test_an_end_before_the_start_is_taken_as_the_start(tx):
    tx.record(T0 + 5, T0 + 4, 10)
    tx.record_error(T0 + 9, T0 + 8)
    assert flights_of(tx) == [(T0 + 5, T0 + 5, 10)]
    assert tx.errors() == [FlightError(T0 + 9, T0 + 9, None)]


def test_record_error_keeps_the_exception(tx):
    error = TimeoutError("slow")
    tx.record_error(T0, T0 + 1, error)
    tx.record_error(T0 + 1, T0 + 3)
    tx.record(T0, T0 + 1, 7)
    assert tx.errors() == [FlightError(T0, T0 + 1, error), FlightError(T0 + 1, T0 + 3, None)]
    assert tx.num_errors == 2 and tx.files == 1 and tx.total_bytes() == 7
    assert len(tx._errors) == 0  # only end_error's flight ids go there


def test_rate_arguments_must_be_positive(tx):
    tx.record(T0, T0 + 1, 1)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            tx.histogram(bad)
        with pytest.raises(ValueError):
            tx.current_bps(bad)


# --------------------------------------------------------------------------- histogram

def test_a_flight_across_two_bins_splits_its_bytes_by_time(tx):
    tx.record(T0 + 0.5, T0 + 1.5, 1000)
    assert list(tx.histogram(1.0)) == [1000.0]  # bins run from the first start
    tx.record(T0, T0, 0)  # an empty instant moves the first start to T0
    assert list(tx.histogram(1.0)) == [500.0, 500.0]
    tx.record(T0, T0 + 0.25, 100)  # the first start moves to T0: bins shift
    assert list(tx.histogram(1.0)) == [600.0, 500.0]
    assert list(tx.histogram(0.5)) == [100.0, 500.0, 500.0]


def test_a_long_flight_spreads_over_its_bins(tx):
    tx.record(T0, T0, 0)
    tx.record(T0 + 0.5, T0 + 4.5, 4000)  # 1000 bytes a second
    assert list(tx.histogram(1.0)) == [500.0, 1000.0, 1000.0, 1000.0, 500.0]
    assert list(tx.histogram(2.0)) == [1500.0, 2000.0, 500.0]
    assert np.sum(tx.histogram(0.1)) == pytest.approx(4000)
    assert len(tx.histogram(0.1)) == math.ceil(4.5 / 0.1)
    assert len(tx.histogram(10.0)) == 1
    assert tx.peak_bps() == 8000


def test_a_flight_ending_on_a_bin_edge_does_not_open_a_bin(tx):
    tx.record(T0, T0 + 2, 2000)
    assert list(tx.histogram(1.0)) == [1000.0, 1000.0]


def test_a_histogram_of_too_many_bins_is_refused(tx):
    tx.record(T0, T0 + 1, 10)
    tx.record(T0 + 86400 * 365, T0 + 86400 * 365, 10)  # a stray timestamp a year later
    with pytest.raises(ValueError, match="coarser resolution"):
        tx.histogram(1.0)
    with pytest.raises(ValueError, match="coarser resolution"):
        _histogram_py(tx._snapshot(), 1.0)
    assert np.sum(tx.histogram(3600.0)) == 20


def test_zero_length_flights_put_their_bytes_in_one_bin(tx):
    tx.record(T0, T0, 10)
    assert list(tx.histogram(1.0)) == [10.0]
    assert tx.total_bps() == 0.0  # no time passed: no rate
    assert tx.files == 1 and tx.total_bytes() == 10
    tx.record(T0 + 2.5, T0 + 2.5, 20)
    tx.record(T0 + 3.0, T0 + 3.0, 40)  # on the last edge: the last bin
    tx.record(T0 + 1.0, T0 + 1.0, 80)  # on an inner edge: the bin it opens
    assert list(tx.histogram(1.0)) == [10.0, 80.0, 60.0]
    assert tx.current_bps(1.0) == (20 + 40) * 8  # instants inside the window count whole
    assert tx.total_bps() == 150 * 8 / 3


def test_one_flight_sums_exactly(tx):
    tx.record(T0 + 0.3, T0 + 1.6, 100)
    hist = tx.histogram(1.0)
    assert len(hist) == 2 and np.sum(hist) == 100
    assert hist[0] == pytest.approx(100 / 1.3)  # bins run from the first start


def test_the_histogram_sums_to_the_total_and_both_paths_agree(tx):
    rng = random.Random(7)
    for _ in range(2000):
        start = T0 + rng.uniform(0, 50)
        length = rng.choice([0.0, rng.uniform(0, 0.1), rng.uniform(0, 10)])
        tx.record(start, start + length, rng.randrange(0, 10**7))
    flights = tx._snapshot()
    for resolution in (0.05, 0.5, 1.0, 7.0, 100.0):
        fast = _histogram_np(np, flights, resolution)
        slow = _histogram_py(flights, resolution)
        assert len(fast) == len(slow) == max(1, math.ceil(tx.duration() / resolution))
        assert np.allclose(fast, slow, rtol=1e-9, atol=1e-3)
        assert np.sum(fast) == pytest.approx(tx.total_bytes(), rel=1e-12)
        assert sum(slow) == pytest.approx(tx.total_bytes(), rel=1e-12)
        assert (fast > -1e-3).all()
    assert _histogram_py(array("d"), 1.0) == [] and len(_histogram_np(np, array("d"), 1.0)) == 0


# --------------------------------------------------------------------------- merge and pickle

def test_merge_monitors_recorded_on_several_threads():
    monitors = [TransmissionMonitor(IOEnum.RX) for _ in range(4)]

    def work(k, monitor):
        for i in range(1000):
            monitor.record(T0 + i, T0 + i + 1, k + 1)
        flight_id = monitor.start_io(3)
        monitor.end_io(flight_id, 3)

    threads = [threading.Thread(target=work, args=(k, m)) for k, m in enumerate(monitors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged = TransmissionMonitor.merge(monitors)
    assert merged._direction is IOEnum.RX
    assert merged.files == len(merged._intervaltree) == 4 * 1001
    assert merged.total_bytes() == 1000 * (1 + 2 + 3 + 4) + 4 * 3
    assert sorted(merged._intervaltree) == sorted(f for m in monitors for f in m._intervaltree)
    assert merged.start_unix_time() == T0
    assert all(m.files == 1001 for m in monitors)  # the sources are unchanged


def _monitor_in_a_process(k: int) -> TransmissionMonitor:
    monitor = TransmissionMonitor(IOEnum.TX)
    for i in range(100):
        monitor.record(T0 + k + i, T0 + k + i + 0.5, 10 * (k + 1))
    monitor.record_error(T0, T0 + 1, ValueError(f"worker {k}"))
    return monitor


def test_merge_monitors_pickled_by_other_processes():
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as pool:
        monitors = list(pool.map(_monitor_in_a_process, range(3)))
    merged = TransmissionMonitor.merge(monitors)
    assert merged.files == 300 and merged.total_bytes() == 100 * (10 + 20 + 30)
    assert sorted(str(failure.error) for failure in merged.errors()) == [
        "worker 0", "worker 1", "worker 2"]
    assert merged.start_unix_time() == T0 and merged.end_unix_time() == T0 + 2 + 99.5
    merged.record(T0, T0, 1)  # the merged monitor records like any other
    assert merged.files == 301


def test_merge_keeps_failures_in_flight_and_indexes_exceptions():
    one, two = TransmissionMonitor(IOEnum.TX), TransmissionMonitor(IOEnum.TX)
    one.record_error(T0, T0 + 1)
    one.record_error(T0, T0 + 2, KeyError("a"))
    two.record_error(T0, T0 + 3, KeyError("b"))
    open_id = two.start_io(50)
    failed_id = two.start_io(60)
    two.end_error(failed_id)
    merged = TransmissionMonitor.merge([one, two])
    assert [(f.end_time - T0, f.error and f.error.args[0]) for f in merged.errors()[:3]] == [
        (1, None), (2, "a"), (3, "b")]
    assert merged.num_errors == 4
    assert set(merged._in_flight) == {open_id, failed_id} and merged._in_flight_bytes == 110
    assert failed_id in merged._errors and open_id not in merged._errors
    merged.end_io(open_id, 50)
    assert merged.total_bytes() == 50


def test_merge_refuses_a_mix_of_directions():
    with pytest.raises(ValueError, match="direction"):
        TransmissionMonitor.merge([TransmissionMonitor(IOEnum.TX), TransmissionMonitor(IOEnum.RX)])


def test_merging_nothing_gives_an_empty_monitor():
    merged = TransmissionMonitor.merge([])
    assert merged._direction is IOEnum.TX and merged.files == 0
    assert TransmissionMonitor.merge(iter([TransmissionMonitor(IOEnum.RX)]))._direction is IOEnum.RX


class _Unpicklable(Exception):
    def __init__(self, code, detail):  # cannot be rebuilt from its args, and holds a lock:
        super().__init__(f"{code}: {detail}")  # unpicklable even where tblib (which distributed
        self.held = threading.Lock()  # installs) pickles exceptions with their attributes


def test_pickling_keeps_everything_and_restores_the_lock(tx):
    now = time.time()
    tx.record(now - 2, now, 1000)
    done = tx.start_io(5)
    tx.end_io(done, 5)
    open_id = tx.start_io(7)
    failed_id = tx.start_io(9)
    tx.end_error(failed_id, ConnectionError("reset"))
    tx.record_error(T0, T0 + 1, _Unpicklable(503, "busy"))

    copy = pickle.loads(pickle.dumps(tx))
    assert copy._direction is IOEnum.TX
    assert flights_of(copy) == flights_of(tx)
    assert copy.total_bytes() == copy._total_bytes_landed == 1005
    assert set(copy._in_flight) == {open_id, failed_id} and copy._in_flight_bytes == 16
    assert failed_id in copy._errors
    errors = copy.errors()
    assert [type(failure.error) for failure in errors] == [ConnectionError, RuntimeError]
    assert "_Unpicklable: 503: busy" in str(errors[1].error)  # described, not lost
    assert type(tx.errors()[1].error) is _Unpicklable  # the original keeps its own
    assert list(copy.histogram()) == list(tx.histogram())
    assert hasattr(copy, "_lock") and copy._lock.acquire(blocking=False)
    copy._lock.release()
    copy.end_io(open_id, 7)  # the copy is live
    assert copy.total_bytes() == 1012 and tx.total_bytes() == 1005


# --------------------------------------------------------------------------- threads and memory

def test_eight_threads_recording_at_once_lose_nothing(tx):
    threads_count, per_thread = 8, 10_000
    barrier = threading.Barrier(threads_count)

    def work(k):
        barrier.wait()
        for i in range(per_thread):
            if i % 10 == 0:
                flight_id = tx.start_io(k)
                tx.end_io(flight_id, k)
            else:
                tx.record(T0 + i, T0 + i + 1, k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert tx.files == len(tx._intervaltree) == threads_count * per_thread
    assert tx.total_bytes() == per_thread * sum(range(threads_count))
    assert sum(size for _, _, size in tx._intervaltree) == tx.total_bytes()
    assert tx._in_flight == {} and tx._in_flight_bytes == 0


def test_a_flight_costs_a_few_dozen_bytes(tx):
    count = 100_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            tx.record(T0 + i, T0 + i + 0.5, 1 << 20)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown / count < 40, f"{grown / count:.1f} bytes a flight"
    assert len(pickle.dumps(tx)) < 40 * count


# --------------------------------------------------------------------------- charts

def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 300 and height >= 200
    assert len(data) > 5000
    return data


def test_charts_write_png_files(tmp_path, tx):
    rng = random.Random(3)
    for _ in range(30):
        start = T0 + rng.uniform(0, 5)
        tx.record(start, start + rng.uniform(0, 2), rng.randrange(1, 10**6))
    tx.plot_histogram(resolution=0.5, filename=str(tmp_path / "hist.png"))
    tx.plot_gantt(filename=str(tmp_path / "gantt.png"), title="thirty flights")
    tx.plot_gantt(filename=str(tmp_path / "bare.png"), title="thirty flights",
                  show_size_labels=False)
    assert_png(tmp_path / "hist.png")
    labelled, bare = assert_png(tmp_path / "gantt.png"), assert_png(tmp_path / "bare.png")
    assert labelled != bare  # the labels are drawn


def test_charts_of_many_or_no_flights(tmp_path, tx):
    empty = TransmissionMonitor(IOEnum.RX)
    empty.plot_gantt(filename=str(tmp_path / "empty_gantt.png"))
    empty.plot_histogram(filename=str(tmp_path / "empty_hist.png"))
    for i in range(20_000):
        tx.record(T0 + i / 1000, T0 + i / 1000 + (i % 7) / 100, i % 5000)
    tx.plot_gantt(filename=str(tmp_path / "many.png"))
    for name in ("empty_gantt.png", "empty_hist.png", "many.png"):
        assert_png(tmp_path / name)


def test_charts_do_not_change_the_pyplot_backend(tmp_path, tx):
    code = textwrap.dedent(f"""
        import matplotlib
        matplotlib.use("svg")
        from cloudfiles_dask.monitoring import IOEnum, TransmissionMonitor
        tm = TransmissionMonitor(IOEnum.TX)
        tm.record(1.0, 2.0, 10)
        tm.plot_gantt({str(tmp_path / "g.png")!r})
        print(matplotlib.get_backend())
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "svg"
    assert_png(tmp_path / "g.png")


def run_without(modules, body):
    blocked = "".join(f"sys.modules[{name!r}] = None\n" for name in modules)
    code = "import sys\n" + blocked + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_without_matplotlib_the_charts_name_the_extra(tmp_path):
    out = run_without(["matplotlib"], f"""
        from cloudfiles_dask.monitoring import IOEnum, IOSampler, TransmissionMonitor
        tm = TransmissionMonitor(IOEnum.TX)
        tm.record(1.0, 2.0, 10)
        print(tm.total_bps(), tm.peak_bps())  # everything but the charts still works
        charts = [lambda: tm.plot_gantt({str(tmp_path / "a.png")!r}),
                  lambda: tm.plot_histogram(filename={str(tmp_path / "b.png")!r}),
                  lambda: IOSampler().plot_histogram(filename={str(tmp_path / "c.png")!r})]
        for chart in charts:
            try:
                chart()
            except ImportError as err:
                print("ImportError:", err)
    """)
    lines = out.splitlines()
    assert lines[0] == "80.0 80.0"
    assert len(lines) == 4
    for line in lines[1:]:
        assert line.startswith("ImportError:") and EXTRA_HINT in line and "matplotlib" in line
    assert not list(tmp_path.iterdir())


def test_without_numpy_everything_but_the_charts_works_in_pure_python():
    out = run_without(["numpy"], """
        from cloudfiles_dask.monitoring import IOEnum, TransmissionMonitor
        tm = TransmissionMonitor(IOEnum.TX)
        tm.record(10.5, 11.5, 1000)
        tm.record(10.0, 10.0, 24)
        hist = tm.histogram(1.0)
        print(type(hist).__name__, hist, tm.peak_bps(), tm.current_bps(1.0))
    """)
    assert out.split() == ["list", "[524.0,", "500.0]", "4192.0", "8000.0"]


def test_without_psutil_the_sampler_names_the_extra():
    out = run_without(["psutil"], """
        from cloudfiles_dask.monitoring import IOSampler
        sampler = IOSampler()
        try:
            sampler.start_sampling()
        except ImportError as err:
            print(err)
        print(sampler.is_sampling(), sampler.num_samples())
    """)
    message, state = out.splitlines()
    assert EXTRA_HINT in message and "psutil" in message
    assert state == "False 0"


def test_importing_the_module_loads_no_optional_extra():
    code = ("import sys, cloudfiles_dask.monitoring\n"
            "print(sorted({'psutil', 'matplotlib', 'numpy'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- IOSampler

def sampler_threads():
    return [t for t in threading.enumerate() if t.name == "cloudfiles-dask-IOSampler"]


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


def test_the_sampler_samples_on_a_thread_and_stops_it():
    sampler = IOSampler(interval=0.02)
    assert not sampler.is_sampling() and sampler.num_samples() == 0
    before = sampler_threads()
    sampler.start_sampling()
    assert sampler.is_sampling() and sampler.num_samples() >= 1
    [thread] = [t for t in sampler_threads() if t not in before]
    assert thread.daemon
    wait_for(lambda: sampler.num_samples() >= 5)
    sampler.stop_sampling()
    assert not thread.is_alive() and not sampler.is_sampling()
    count = sampler.num_samples()
    rx, tx, times = sampler.samples()
    assert len(rx) == len(tx) == len(times) == count >= 6  # 5 and one more on stop
    assert all(np.diff(times) > 0) and all(np.diff(rx) >= 0) and all(np.diff(tx) >= 0)
    assert times[-1] <= time.time()
    time.sleep(0.1)
    assert sampler.num_samples() == count  # really stopped
    sampler.stop_sampling()  # twice is harmless


def test_the_sampler_sees_loopback_traffic():
    payload = 4 << 20
    server = socket.create_server(("127.0.0.1", 0))
    received = []

    def serve():
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(1 << 20):
                received.append(len(chunk))

    with IOSampler(interval=0.05) as sampler:
        reader = threading.Thread(target=serve)
        reader.start()
        with socket.create_connection(server.getsockname()) as client:
            client.sendall(b"x" * payload)
        reader.join()
        server.close()
        wait_for(lambda: sampler.num_samples() >= 3)
    assert sum(received) == payload
    assert np.sum(sampler.histogram_rx(0.1)) >= payload
    assert np.sum(sampler.histogram_tx(0.1)) >= payload
    rx_peak, tx_peak = sampler.peak_bps(0.1)
    assert rx_peak > 0 and tx_peak > 0
    rx, tx, _ = sampler.samples()
    assert rx[-1] - rx[0] >= payload


def test_the_sampler_is_a_context_manager():
    with IOSampler(interval=0.02) as sampler:
        assert sampler.is_sampling()
        [thread] = [t for t in sampler_threads() if t is sampler._thread]
        wait_for(lambda: sampler.num_samples() >= 3)
    assert not sampler.is_sampling() and not thread.is_alive()


def test_the_circular_buffer_keeps_the_latest_samples_in_order():
    sampler = IOSampler(buffer_sec=0.1, interval=0.02)
    assert sampler.capacity == 5
    with sampler:
        first = sampler.samples()[2][0]
        wait_for(lambda: sampler.num_samples() == 5)
        oldest = sampler.samples()[2][0]
        assert oldest == first
        wait_for(lambda: sampler.samples()[2][0] > oldest + 0.1)  # wrapped round more than once
    stopped = time.time()
    assert sampler.num_samples() == 5
    rx, tx, times = sampler.samples()
    assert len(times) == 5 and all(np.diff(times) > 0)
    assert times[0] > first + 0.1 and times[-1] <= stopped
    copy = pickle.loads(pickle.dumps(sampler))
    assert not copy.is_sampling() and copy.num_samples() == 5
    assert [list(a) for a in copy.samples()] == [list(a) for a in (rx, tx, times)]


def test_a_restored_sampler_computes_rates_from_its_samples():
    sampler = IOSampler(buffer_sec=1.0, interval=0.25)
    sampler.__setstate__({  # the state a pickle carries: 4 known samples
        "buffer_sec": 1.0, "interval": 0.25, "capacity": 4,
        "rx": array("Q", [1000, 1000, 3000, 7000]), "tx": array("Q", [0, 500, 500, 500]),
        "times": array("d", [T0, T0 + 1, T0 + 2, T0 + 3]),
    })
    assert sampler.current_bps(1.0) == (4000 * 8, 0.0)
    assert sampler.current_bps(2.0) == (6000 * 8 / 2, 0.0)
    assert sampler.current_bps(0.1) == (4000 * 8, 0.0)  # at least the last two samples
    assert list(sampler.histogram_rx(1.0)) == [0.0, 2000.0, 4000.0]
    assert list(sampler.histogram_tx(1.0)) == [500.0, 0.0, 0.0]
    assert list(sampler.histogram_rx(2.0)) == [2000.0, 4000.0]
    assert sampler.peak_bps(1.0) == (32000.0, 4000.0)
    sampler._take_sample()  # a real sample overwrites the oldest
    rx, _, times = sampler.samples()
    assert list(rx[:3]) == [1000, 3000, 7000] and times[-1] > T0 + 3


def test_starting_twice_keeps_the_thread_unless_forced():
    with IOSampler(interval=0.02) as sampler:
        first = sampler._thread
        sampler.start_sampling()
        assert sampler._thread is first
        sampler.start_sampling(force=True)
        assert sampler._thread is not first and not first.is_alive()
        assert sampler.is_sampling()


def test_a_forgotten_sampler_ends_its_thread():
    sampler = IOSampler(interval=0.02)
    sampler.start_sampling()
    thread = sampler._thread
    del sampler
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_sampler_chart_writes_a_png(tmp_path):
    with IOSampler(interval=0.02) as sampler:
        wait_for(lambda: sampler.num_samples() >= 5)
    sampler.plot_histogram(filename=str(tmp_path / "io.png"))
    sampler.plot_histogram(resolution=0.05, filename=str(tmp_path / "io2.png"))
    assert_png(tmp_path / "io.png")
    assert_png(tmp_path / "io2.png")


def test_sampler_arguments_must_be_positive():
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            IOSampler(interval=bad)
        with pytest.raises(ValueError):
            IOSampler(buffer_sec=bad)


# --------------------------------------------------------------------------- summaries

def test_failures_keep_their_paths_through_merge_and_pickling():
    one, two = TransmissionMonitor(IOEnum.TX), TransmissionMonitor(IOEnum.TX)
    one.record_error(T0, T0 + 1, FileNotFoundError("gone"), path="a/b.bin")
    one.record_error(T0, T0 + 2)  # neither error nor path
    two.record_error(T0, T0 + 3, KeyError("k"), path="c")
    failed = two.start_io(5)
    two.end_error(failed, OSError("reset"), path="d")
    merged = pickle.loads(pickle.dumps(TransmissionMonitor.merge([one, two])))
    assert [(f.path, type(f.error).__name__ if f.error else None) for f in merged.errors()] == [
        ("a/b.bin", "FileNotFoundError"), (None, None), ("c", "KeyError"), ("d", "OSError")]
    assert merged.errors()[0] == FlightError(T0, T0 + 1, merged.errors()[0].error, "a/b.bin")
    assert FlightError(T0, T0, None) == (T0, T0, None, None)  # the path defaults to None


def test_by_worker_keeps_each_origins_totals_through_merges():
    a1 = TransmissionMonitor(IOEnum.TX, origin="tcp://a:1")
    a2 = TransmissionMonitor(IOEnum.TX, origin="tcp://a:1")
    b = TransmissionMonitor(IOEnum.TX, origin="tcp://b:2")
    nowhere = TransmissionMonitor(IOEnum.TX)  # no origin: counted in the totals only
    a1.record(T0, T0 + 1, 100)
    a2.record(T0 + 1, T0 + 2, 50)
    a2.record_error(T0, T0 + 1, ValueError("x"), path="p")
    b.record(T0, T0 + 4, 7)
    nowhere.record(T0, T0 + 1, 1)
    assert a1.by_worker() == {"tcp://a:1": (1, 100, 0)} and nowhere.by_worker() == {}
    first = TransmissionMonitor.merge([a1, b])
    second = TransmissionMonitor.merge([first, a2, nowhere])  # a merge of merges
    assert second.by_worker() == {"tcp://a:1": (2, 150, 1), "tcp://b:2": (1, 7, 0)}
    assert second.files == 4 and second.total_bytes() == 158 and second.num_errors == 1
    assert pickle.loads(pickle.dumps(second)).by_worker() == second.by_worker()


def test_lost_workers_are_kept_once_through_merges():
    one, two = TransmissionMonitor(IOEnum.TX), TransmissionMonitor(IOEnum.TX)
    gone = LostWorker("tcp://a:1", T0 + 5, False, 3)
    one.lost_workers = [gone]
    two.lost_workers = [LostWorker("tcp://b:2", T0 + 1, True, 0), gone]
    merged = TransmissionMonitor.merge([one, two])
    assert [w.address for w in merged.lost_workers] == ["tcp://b:2", "tcp://a:1"]  # by time
    assert "2 workers lost" in repr(merged)
    assert pickle.loads(pickle.dumps(merged)).lost_workers == merged.lost_workers


def test_summary_is_plain_data():
    import json

    tx = TransmissionMonitor(IOEnum.TX, origin="host:1")
    tx.record(T0, T0 + 2, 1000)
    tx.record(T0 + 1, T0 + 4, 3000)
    tx.record_error(T0, T0 + 1, OSError("disk full"), path="x/y")
    tx.lost_workers = [LostWorker("tcp://a:1", T0 + 3, None, 1)]
    summary = tx.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary == {
        "direction": "TX", "files": 2, "bytes": 4000,
        "errors": [{"path": "x/y", "start": T0, "end": T0 + 1, "error": "OSError: disk full"}],
        "start": T0, "end": T0 + 4, "seconds": 4.0, "bytes_per_second": 1000.0,
        "files_per_second": 0.5,
        "by_worker": {"host:1": {"files": 2, "bytes": 4000, "errors": 1}},
        "lost_workers": [{"address": "tcp://a:1", "time": T0 + 3, "expected": None, "batches": 1}],
    }
    empty = TransmissionMonitor(IOEnum.RX).summary()
    assert (empty["files"], empty["seconds"], empty["bytes_per_second"]) == (0, 0.0, 0.0)


def test_a_record_pickled_before_origins_existed_unpickles():
    tx = TransmissionMonitor(IOEnum.TX)
    tx.record(T0, T0 + 1, 10)
    tx.record_error(T0, T0 + 1, ValueError("v"))
    state = tx.__getstate__()
    for key in ("origin", "lost_workers", "_by_origin", "_failure_paths"):
        del state[key]  # as an older version pickled it
    old = TransmissionMonitor.__new__(TransmissionMonitor)
    old.__setstate__(state)
    assert old.files == 1 and old.by_worker() == {} and old.lost_workers == []
    assert old.errors()[0].path is None and str(old.errors()[0].error) == "v"
