"""What recording a flight costs in cloudfiles_dask.monitoring.TransmissionMonitor, on this
machine (the evidence behind the docs' numbers on monitoring overhead; not part of the
side-by-side suite).

Run: ``.venv/bin/python benchmarks/probe_monitoring.py [--flights 1000000] [--reps 3]``

For each way of recording (``record()``, the engine's fast path, with two ``time.time()`` reads
a flight as the engine does and without them, and ``start_io``/``end_io``, the original's
API) it records ``--flights`` flights into one monitor from 1 thread and from 8
threads (the flights split evenly), and prints the wall time per flight in microseconds (the
best of ``--reps``), with the monitor's bytes per flight and the time of a few whole-monitor
operations on the result (histogram, pickle, merge). Prints only; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cloudfiles_dask.monitoring import IOEnum, TransmissionMonitor  # noqa: E402


def by_record(monitor: TransmissionMonitor, count: int) -> None:
    record, now = monitor.record, time.time
    for _ in range(count):
        start = now()
        record(start, now(), 4096)


def by_record_alone(monitor: TransmissionMonitor, count: int) -> None:
    record = monitor.record
    for _ in range(count):
        record(1.0, 2.0, 4096)  # the clock reads left out: the cost of the append alone


def by_start_end(monitor: TransmissionMonitor, count: int) -> None:
    start_io, end_io = monitor.start_io, monitor.end_io
    for _ in range(count):
        end_io(start_io(4096), 4096)


def run(recorder, flights: int, threads: int) -> tuple[float, TransmissionMonitor]:
    monitor = TransmissionMonitor(IOEnum.RX)
    share = flights // threads
    barrier = threading.Barrier(threads + 1)

    def work():
        barrier.wait()
        recorder(monitor, share)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    assert monitor.files == share * threads
    return elapsed / (share * threads), monitor


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flights", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.flights} flights, "
          f"best of {args.reps}")
    print(f"{'recording':<22}{'threads':>8}{'us/flight':>12}{'bytes/flight':>14}")
    monitor = None
    recorders = (("record()", by_record), ("record(), no clock", by_record_alone),
                 ("start_io/end_io", by_start_end))
    for name, recorder in recorders:
        for threads in (1, 8):
            best = float("inf")
            for _ in range(args.reps):
                per_flight, monitor = run(recorder, args.flights, threads)
                best = min(best, per_flight)
            info = monitor._flights.buffer_info()
            per = info[1] * monitor._flights.itemsize / monitor.files
            print(f"{name:<22}{threads:>8}{best * 1e6:>12.3f}{per:>14.1f}")

    data = pickle.dumps(monitor)
    monitor.histogram(1.0)  # numpy imported, caches warm
    print(f"\non the last monitor ({monitor.files} flights):")
    print(f"  histogram(1.0)   {timed(lambda: monitor.histogram(1.0)) * 1e3:8.1f} ms")
    print(f"  peak_bps()       {timed(monitor.peak_bps) * 1e3:8.1f} ms")
    print(f"  current_bps()    {timed(monitor.current_bps) * 1e3:8.1f} ms")
    print(f"  pickle.dumps     {timed(lambda: pickle.dumps(monitor)) * 1e3:8.1f} ms "
          f"({len(data) / monitor.files:.1f} bytes/flight)")
    print(f"  pickle.loads     {timed(lambda: pickle.loads(data)) * 1e3:8.1f} ms")
    print(f"  merge of 4       {timed(lambda: TransmissionMonitor.merge([monitor] * 4)) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
