"""Time to the first page of the notebook browser on a large prefix of the local S3 server.

Run: ``.venv/bin/python benchmarks/probe_browser.py [--keys 100000] [--page-size 50] [--reps 3]``
(the project's venv with the ``jupyter`` extra: ipywidgets; no kernel is needed). It writes
``--keys`` one-byte files straight into a directory, starts ``rclone serve s3`` over it on
127.0.0.1 (so the files are the objects of one prefix, without a PUT each), and times, per
repetition:

- the browser (``cloudfiles_dask.jupyter.Browser``): from making it to its first page shown
  (``wait_for_page``) and to the folder listed to its end (``wait``);
- the plain flat listing it runs (``CloudFiles.list(prefix, flat=True, size=True)``): the
  first entry, and all of them: the floor under the browser's numbers.

The first repetition is the cold one (rclone has not read the directory yet); the others are
warm. The same two are then timed on the directory itself (file://), where listing costs
little: what is left is the browser's own cost per entry. Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from cloudfiles_dask import CloudFiles  # noqa: E402
from cloudfiles_dask.jupyter import Browser  # noqa: E402
from tests.servers import s3 as servers  # noqa: E402

BUCKET = "bkt"
FOLDER = "many"
LIMIT = 600.0  # seconds: a guard against a hang


def seed(root: str, keys: int) -> float:
    """One-byte files ``key000000``... in ``root/bkt/many``; returns the seconds it took."""
    start = time.perf_counter()
    folder = os.path.join(root, BUCKET, FOLDER)
    os.makedirs(folder)
    for i in range(keys):
        fd = os.open(os.path.join(folder, f"key{i:06d}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"x")
        os.close(fd)
    return time.perf_counter() - start


def time_browser(cf: CloudFiles, page_size: int, keys: int) -> tuple[float, float]:
    start = time.perf_counter()
    browser = Browser(cf, page_size=page_size)
    made = time.perf_counter() - start
    assert browser.wait_for_page(LIMIT), "no first page"
    first = time.perf_counter() - start
    assert browser.wait(LIMIT), "the listing never ended"
    full = time.perf_counter() - start
    assert browser.error_message is None, browser.error_message
    assert len(browser.entries) == page_size and len(browser.listed) == keys, len(browser.listed)
    if made > first / 2:
        print(f"  (making the browser took {made:.3f}s)")
    return first, full


def time_listing(cf: CloudFiles, keys: int) -> tuple[float, float]:
    start = time.perf_counter()
    listing = cf.list("", flat=True, size=True)
    next(listing)
    first = time.perf_counter() - start
    count = 1 + sum(1 for _ in listing)
    full = time.perf_counter() - start
    assert count == keys, count
    return first, full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    root = tempfile.mkdtemp(prefix="probe-browser-")
    try:
        seconds = seed(root, args.keys)
        print(f"{args.keys:,} files written into rclone's directory in {seconds:.1f}s")
        server = servers.rclone_server(root, root)
        with servers.running(server):
            cf = CloudFiles(f"s3://{server.endpoint}/{BUCKET}/{FOLDER}",
                            secrets={"AWS_ACCESS_KEY_ID": servers.ACCESS_KEY,
                                     "AWS_SECRET_ACCESS_KEY": servers.SECRET_KEY})
            rows: dict[str, list[tuple[float, float]]] = {"browser": [], "list": []}
            for rep in range(args.reps):
                rows["browser"].append(time_browser(cf, args.page_size, args.keys))
                rows["list"].append(time_listing(cf, args.keys))
                print(f"rep {rep + 1}{' (cold)' if rep == 0 else ''}: "
                      f"browser first page {rows['browser'][-1][0]:.3f}s, all {rows['browser'][-1][1]:.2f}s; "
                      f"plain list first entry {rows['list'][-1][0]:.3f}s, all {rows['list'][-1][1]:.2f}s")
        local = CloudFiles("file://" + os.path.join(root, BUCKET, FOLDER))
        rows["browser, file://"] = [time_browser(local, args.page_size, args.keys)
                                    for _ in range(args.reps)]
        rows["list, file://"] = [time_listing(local, args.keys) for _ in range(args.reps)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"{args.keys:,} keys in one prefix, rclone serve s3 on 127.0.0.1, {os.cpu_count()} cores, "
          f"page size {args.page_size}; seconds (cold = first repetition, warm = median of the rest)")
    print("| what | first page / entry, cold | all, cold | first, warm | all, warm |")
    print("|---|---|---|---|---|")
    for name, label in (("browser", "S3: Browser, first page shown / whole folder listed"),
                        ("list", "S3: CloudFiles.list(flat=True, size=True), first entry / all"),
                        ("browser, file://", "file://: Browser, first page / all"),
                        ("list, file://", "file://: CloudFiles.list, first entry / all")):
        cold, warm = rows[name][0], rows[name][1:] or rows[name][:1]
        print(f"| {label} | {cold[0]:.3f} | {cold[1]:.2f} | "
              f"{statistics.median(t[0] for t in warm):.3f} | {statistics.median(t[1] for t in warm):.2f} |")


if __name__ == "__main__":
    main()
