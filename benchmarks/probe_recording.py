"""What recording a call's transfers costs: the same calls with and without a
TransmissionMonitor (``return_recording=True``; transfers always return one).

    python benchmarks/probe_recording.py [--files 20000] [--reps 5]

Prints the best of ``--reps`` wall times for each call, off and on, and the cost per object.
mem:// shows the engine's own overhead (no I/O to hide it), file:// a local disk workload.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from cloudfiles_dask import CloudFiles, clear_memory


def best(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    files = [(f"k{i:06d}", os.urandom(64)) for i in range(args.files)]
    keys = [k for k, _ in files]
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"mem": "mem://probe-recording/x", "file": f"file://{tmp}/x"}
        print(f"{args.files} objects of 64 B, best of {args.reps}")
        print(f"{'call':<34}{'off (s)':>10}{'on (s)':>10}{'µs/object':>11}")
        for kind, root in roots.items():
            cf = CloudFiles(root)
            rows = [
                ("puts", lambda on, cf=cf: cf.puts(files, return_recording=on)),
                ("get", lambda on, cf=cf: cf.get(keys, return_recording=on)),
            ]
            for name, call in rows:
                off = best(lambda call=call: call(False), args.reps)
                on = best(lambda call=call: call(True), args.reps)
                print(f"{kind + ' ' + name:<34}{off:>10.3f}{on:>10.3f}{(on - off) / args.files * 1e6:>11.2f}")
            dest = CloudFiles(root + "-copy")
            copy = best(lambda cf=cf, dest=dest: cf.transfer_to(dest), args.reps)
            print(f"{kind + ' transfer (always recorded)':<34}{'':>10}{copy:>10.3f}")
        clear_memory("probe-recording")


if __name__ == "__main__":
    main()
