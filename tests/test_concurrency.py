"""Many threads and processes writing and reading one file:// tree never see a torn file.

Every payload carries the sha256 of its own body, so a reader can tell a complete version of a
file from a partial or mixed one. Writers switch keys between plain and gzip storage to exercise
the encoding-variant swap too.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
import threading

import pytest

from cloudfiles_dask import CloudFiles

KEYS = [f"shared/k{i}" for i in range(6)]


def payload(rng: random.Random) -> bytes:
    body = rng.randbytes(rng.choice((1, 1000, 64_000, 300_000)))
    return hashlib.sha256(body).digest() + body


def is_whole(data: bytes) -> bool:
    return len(data) >= 32 and hashlib.sha256(data[32:]).digest() == data[:32]


def hammer(root: str, lock_dir: str | None, seed: int, iterations: int) -> dict[str, int]:
    """Random puts (plain or gzip) and gets of the shared keys; counts what readers saw."""
    rng = random.Random(seed)
    cf = CloudFiles(root, locking=lock_dir is not None, lock_dir=lock_dir)
    seen = {"reads": 0, "torn": 0, "missing": 0, "writes": 0}
    for _ in range(iterations):
        key = rng.choice(KEYS)
        if rng.random() < 0.5:
            cf.put(key, payload(rng), compress=rng.choice((None, "gzip")), compression_level=1)
            seen["writes"] += 1
        else:
            data = cf.get(key)
            seen["reads"] += 1
            if data is None:
                seen["missing"] += 1
            elif not is_whole(data):
                seen["torn"] += 1
    return seen


def run_everywhere(root: str, lock_dir: str | None, iterations: int) -> dict[str, int]:
    """4 threads here plus 2 spawned processes, all hammering the same keys at once."""
    seed_cf = CloudFiles(root)
    rng = random.Random(1)
    seed_cf.puts([(k, payload(rng)) for k in KEYS])

    ctx = multiprocessing.get_context("spawn")
    totals = {"reads": 0, "torn": 0, "missing": 0, "writes": 0}
    lock = threading.Lock()

    def add(seen: dict[str, int]) -> None:
        with lock:
            for k, v in seen.items():
                totals[k] += v

    with ctx.Pool(2) as pool:
        remote = [pool.apply_async(hammer, (root, lock_dir, 100 + i, iterations)) for i in range(2)]
        threads = [
            threading.Thread(target=lambda s=i: add(hammer(root, lock_dir, s, iterations)))
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in remote:
            add(r.get(timeout=240))
    return totals


@pytest.mark.timeout(300)
def test_locked_threads_and_processes_never_see_torn_or_missing_files(tmp_path):
    totals = run_everywhere("file://" + str(tmp_path / "data"), str(tmp_path / "locks"), 250)
    assert totals["reads"] > 300 and totals["writes"] > 300
    assert totals["torn"] == 0
    assert totals["missing"] == 0  # locking: a reader never catches an encoding swap mid-way
    assert list((tmp_path / "locks").iterdir()), "locking was on, so lock files must exist"


@pytest.mark.timeout(300)
def test_unlocked_writes_are_still_atomic(tmp_path):
    totals = run_everywhere("file://" + str(tmp_path / "data"), None, 250)
    assert totals["reads"] > 300
    assert totals["torn"] == 0


@pytest.mark.timeout(300)
def test_parallel_processes_write_while_threads_read(tmp_path):
    """puts(parallel=2) over 400 keys while 3 threads re-read them: every read is whole."""
    root = "file://" + str(tmp_path / "data")
    rng = random.Random(7)
    first = {f"p/{i}": payload(rng) for i in range(400)}
    cf = CloudFiles(root, locking=True, lock_dir=str(tmp_path / "locks"))
    cf.puts(first.items())
    second = {k: payload(rng) for k in first}
    stop = threading.Event()
    bad: list[str] = []

    def reader() -> None:
        local = CloudFiles(root, locking=True, lock_dir=str(tmp_path / "locks"))
        while not stop.is_set():
            for res in local.get(list(first)):
                if res["content"] is None or not is_whole(res["content"]):
                    bad.append(res["path"])

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        assert cf.puts(second.items(), parallel=2, compress="gzip", compression_level=1) == 400
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert bad == []
    got = cf.get(list(second), parallel=2)
    assert {r["path"]: r["content"] for r in got} == second
