"""What showing progress costs a call: 20 000 small puts on file:// with no progress, with the
notebook widget, with the terminal bar and with the log line.

    python benchmarks/probe_progress.py [--files 20000] [--reps 7] [--dir /dev/shm] [--kernel]

The modes run interleaved, rep after rep, each rep starting with another mode (so a slow
moment of the machine falls on all of them), each into a fresh directory after the disk has
caught up (sync); prints the median and best wall time of each and the overhead against no
progress. The widget is the real ProgressWidget, its model updated ten times a second: here
outside a kernel (no front end draws it, as when the browser tab is hidden), and with
``--kernel`` inside a real kernel (nbclient), where ``progress=True`` makes it and every
redraw is a comm message the client receives. The text displays write to /dev/null.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.progress import LineDisplay, TqdmDisplay


def modes(in_kernel: bool) -> dict[str, object]:
    from cloudfiles_dask.jupyter import ProgressWidget

    if in_kernel:  # what a notebook user gets: progress=True shows the widget in the cell
        return {"off": lambda: False, "widget": lambda: True}
    return {
        "off": lambda: False,
        "widget": lambda: ProgressWidget("probe", display=False),
        "tqdm": lambda: TqdmDisplay("probe"),
        "line": lambda: LineDisplay("probe"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the file:// tree goes (default: /dev/shm, a RAM disk: the "
                             "writes cost their CPU, not the disk's moods, which would hide a "
                             "few per cent); --dir /tmp for a disk")
    parser.add_argument("--kernel", action="store_true",
                        help="run the widget in a real Jupyter kernel (needs nbclient)")
    parser.add_argument("--in-kernel", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kernel:
        return in_a_kernel(args)
    files = [(f"d{i % 100:02d}/k{i:06d}", os.urandom(64)) for i in range(args.files)]
    made = modes(args.in_kernel)
    times: dict[str, list[float]] = {name: [] for name in made}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, open(os.devnull, "w") as devnull:
        names = list(made)
        for rep in range(args.reps):
            for name in names[rep % len(names):] + names[:rep % len(names)]:  # each goes first
                make = made[name]
                cf = CloudFiles(f"file://{tmp}/{name}")
                progress = make()
                os.sync()  # the previous run's dirty pages are not this one's to write back
                with contextlib.redirect_stderr(devnull):
                    start = time.perf_counter()
                    written = cf.puts(files, progress=progress)
                    times[name].append(time.perf_counter() - start)
                assert written == args.files
                shutil.rmtree(f"{tmp}/{name}")
    base = statistics.median(times["off"])
    print(f"{args.files} puts of 64 B on file:// under {args.dir or 'the temp dir'}, "
          f"{args.reps} reps interleaved (python {sys.version.split()[0]})")
    print(f"{'progress':<10}{'median (s)':>12}{'best (s)':>10}{'overhead':>10}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<10}{median:>12.3f}{min(values):>10.3f}{(median / base - 1) * 100:>9.1f}%")


def in_a_kernel(args: argparse.Namespace) -> None:
    """Run this probe's loop in a fresh python3 kernel and print what it printed."""
    import nbclient
    import nbformat

    argv = [__file__, "--in-kernel", "--files", str(args.files), "--reps", str(args.reps)]
    if args.dir:
        argv += ["--dir", args.dir]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        f"import runpy, sys\nsys.argv = {argv!r}\nrunpy.run_path({__file__!r}, run_name='__main__')")]
    nbclient.NotebookClient(nb, timeout=3600, kernel_name="python3").execute()
    for output in nb.cells[0].outputs:
        if output.get("name") == "stdout":
            print(output["text"], end="")


if __name__ == "__main__":
    main()
