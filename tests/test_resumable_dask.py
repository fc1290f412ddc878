"""ResumableTransfer.execute(client=...): the sqlite ledger stays with the driver, its blocks run
as tasks of a real Dask LocalCluster (two worker processes). A worker killed midway, and the
driver itself killed with SIGKILL and run again, end with a complete, byte-identical
destination, and no file the ledger had marked done is written again (its file keeps its inode
and mtime: every write of a file:// destination makes a new file and renames it into place)."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

distributed = pytest.importorskip("distributed")

from cloudfiles_dask import CloudFiles, ProcessBoundaryError  # noqa: E402
from cloudfiles_dask._engine import distribute  # noqa: E402
from cloudfiles_dask.resumable import ResumableFileSet, ResumableTransfer  # noqa: E402
from tests.processes import stop_all  # noqa: E402
from tests.test_resumable import REPO, ledger_consistent, ledger_rows, make_tree, stored  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(autouse=True)
def _two_workers(client):
    client.wait_for_workers(2, timeout=60)


@pytest.fixture
def roots(tmp_path):
    return f"file://{tmp_path}/src", f"file://{tmp_path}/dest"


def _identity(dest_dir: str, key: str, suffix: str = ".gz") -> tuple[int, int]:
    """(inode, mtime_ns) of a destination file: both change when it is written again."""
    st = os.stat(os.path.join(dest_dir, key + suffix))
    return st.st_ino, st.st_mtime_ns


def _done_files(db: str, dest_dir: str) -> dict[str, tuple[int, int]]:
    """``{dest key: (inode, mtime_ns)}`` of the files of the rows marked done."""
    with sqlite3.connect(db) as conn:
        keys = [row[0] for row in conn.execute("SELECT dest FROM filelist WHERE done = 1")]
    return {key: _identity(dest_dir, key) for key in keys}


def _rewritten(before: dict[str, tuple[int, int]], dest_dir: str) -> list[str]:
    """The keys of ``before`` whose file was written again since."""
    return sorted(key for key, ident in before.items() if _identity(dest_dir, key) != ident)


def test_a_worker_killed_midway_loses_nothing_and_done_files_stay_untouched(client, tmp_path,
                                                                            roots, monkeypatch):
    monkeypatch.setattr(distribute, "PUBLISH_INTERVAL", 0.05)
    monkeypatch.setattr(distribute, "TICK", 0.05)
    src, dest = roots
    files = make_tree(src, 1600, seed=31)
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=5000)
    rt.init(src, dest, reencode="gzip")
    victim = sorted(client.scheduler_info()["workers"])[0]
    at_kill: dict[str, tuple[int, int]] = {}
    events = []

    def kill_midway(event) -> None:
        events.append(event)
        if at_kill or event.kind != "advance" or ResumableFileSet(db).finished() < 200:
            return
        at_kill.update(_done_files(db, str(tmp_path / "dest")))
        try:
            client.run(os._exit, 1, workers=[victim])
        except Exception:  # noqa: BLE001 - the worker dies before it can answer
            pass

    assert rt.execute(client=client, block_size=50, progress=kill_midway) == 1600
    assert 200 <= len(at_kill) < 1600  # killed midway
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.scheduler_info()["workers"]
    status = rt.status()
    assert (status["total"], status["finished"], status["remaining"]) == (1600, 1600, 0)
    ledger_consistent(db)
    assert {row[4] for row in ledger_rows(db)} == {1}  # each block leased once: Dask reran it
    assert _rewritten(at_kill, str(tmp_path / "dest")) == []  # done before the kill: untouched
    got = stored(dest, sorted(files))
    assert all(got[k] == (data, "gzip") for k, data in files.items())
    assert sum(e.files for e in events if e.kind == "advance") == 1600 == events[-1].files


DRIVER = textwrap.dedent(
    """
    import sys, distributed
    from cloudfiles_dask.resumable import ResumableTransfer

    address, db, lease_msec, block_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with distributed.Client(address) as client:
        rt = ResumableTransfer(db, lease_msec=lease_msec)
        sys.stdout.write("started\\n")
        sys.stdout.flush()
        print(rt.execute(client=client, block_size=block_size))
    """
)


def test_the_driver_killed_then_run_again_completes_without_redoing_done_files(client, tmp_path,
                                                                               roots):
    src, dest = roots
    files = make_tree(src, 3000, seed=32)
    db = str(tmp_path / "job.db")
    ResumableTransfer(db, lease_msec=1500).init(src, dest, reencode="gzip")
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, str(script), client.scheduler.address, db, "1500", "40"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().decode().strip() == "started"
        fileset = ResumableFileSet(db)
        deadline = time.monotonic() + 60
        while fileset.finished() < 200 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(random.uniform(0, 0.2))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    finally:
        stop_all([proc])
    done_at_kill = ResumableFileSet(db).finished()
    assert 200 <= done_at_kill < 3000, done_at_kill  # the kill landed midway
    before = _done_files(db, str(tmp_path / "dest"))
    assert len(before) == done_at_kill

    rt = ResumableTransfer(db, lease_msec=1500)
    assert rt.execute(client=client, block_size=40) == 3000 - done_at_kill
    status = rt.status()
    assert (status["finished"], status["remaining"]) == (3000, 0)
    ledger_consistent(db)
    assert _rewritten(before, str(tmp_path / "dest")) == []  # done before the kill: untouched
    attempts = {key: a for _, key, _, _, a in ledger_rows(db)}
    assert {attempts[key] for key in before} == {1}
    got = stored(dest, sorted(files))
    assert all(got[k] == (data, "gzip") for k, data in files.items())


def test_a_failed_block_gives_its_leases_back_and_finished_blocks_stay_done(client, tmp_path,
                                                                            roots):
    src, dest = roots
    files = make_tree(src, 40, seed=33)
    keys = sorted(files)
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=60_000)
    rt.init(src, dest, paths=keys[:20] + ["nope"] + keys[20:])
    with pytest.raises(FileNotFoundError, match="nope") as info:
        rt.execute(client=client, block_size=10, max_in_flight=1)  # one block at a time
    assert info.value.recording.errors()[0].path == "nope"
    rows = {key: (done, lease) for _, key, done, lease, _ in ledger_rows(db)}
    assert all(rows[k] == (1, 0) for k in keys[:20])  # the two blocks before it
    failed_block = keys[20:29]
    assert rows["nope"] == (0, 0) and all(rows[k] == (0, 0) for k in failed_block)  # given back
    assert rt.status()["leased"] == 0
    ledger_consistent(db)


def test_leases_are_renewed_on_the_driver_while_blocks_run(client, tmp_path, roots):
    """Leases of 150 ms and blocks that take several times longer (about a second: xz on
    incompressible bytes): no row is ever seen with its lease run out while unfinished (another
    client would take it)."""
    src, dest = roots
    rng = random.Random(34)
    data = {f"f{i:03d}": rng.randbytes(200_000) for i in range(24)}
    CloudFiles(src).puts(list(data.items()))
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=150)
    rt.init(src, dest, reencode="xz")  # slow on incompressible bytes: blocks of seconds
    expired: list[int] = []
    samples = [0]
    stop = threading.Event()

    def watch() -> None:
        with sqlite3.connect(db) as conn:
            while not stop.is_set():
                now = time.time_ns() // 1_000_000
                expired.append(conn.execute(
                    "SELECT COUNT(*) FROM filelist WHERE done = 0 AND lease > 0 AND lease < ?",
                    (now - 100,)).fetchone()[0])  # run out a while ago (not a renewal due now)
                samples[0] += 1
                time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with distributed.get_task_stream(client) as stream:
            assert rt.execute(client=client, block_size=6) == 24
    finally:
        stop.set()
        watcher.join()
    longest = max(t["startstops"][0]["stop"] - t["startstops"][0]["start"] for t in stream.data
                  if t["key"].startswith("transfer_batch"))
    assert longest > 0.3  # blocks outlived their lease: without renewal it would run out
    assert samples[0] > 10 and sum(expired) == 0
    got = stored(dest, sorted(data))
    assert all(got[k] == (value, "xz") for k, value in data.items())


def test_execute_on_dask_refuses_memory_paths_before_leasing(client, tmp_path):
    mem = CloudFiles("mem://resumable-dask/src")
    mem.puts([("a", b"1"), ("b", b"2")])
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=1000)
    rt.init("mem://resumable-dask/src", f"file://{tmp_path}/dest")
    with pytest.raises(ProcessBoundaryError, match="mem://resumable-dask/src"):
        rt.execute(client=client)
    assert {row[4] for row in ledger_rows(db)} == {0}  # nothing was leased
    assert rt.status()["remaining"] == 2 and not os.path.exists(tmp_path / "dest")
