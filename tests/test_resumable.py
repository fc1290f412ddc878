"""ResumableTransfer / ResumableFileSet: a sqlite ledger drained by one or several real processes,
killed with SIGKILL at random moments, over real file:// trees."""

from __future__ import annotations

import json
import os
import pickle
import random
import select
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.progress import Tally
from cloudfiles_dask.resumable import LedgerError, ResumableFileSet, ResumableTransfer
from tests.processes import stop_all

REPO = str(Path(__file__).resolve().parents[1])

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL and fork-free POSIX processes")

# -- helpers ---------------------------------------------------------------------------------------


def _content(rng: random.Random, words: list[bytes]) -> bytes:
    """Compressible, distinct content (so every codec really changes the stored bytes)."""
    return b" ".join(rng.choice(words) for _ in range(rng.randint(20, 300)))


def make_tree(cloudpath: str, n: int, seed: int = 0, gzip_every: int = 0) -> dict[str, bytes]:
    """Write ``n`` files under ``cloudpath`` (keys spread over sub-directories); every
    ``gzip_every``-th file is stored gzip-encoded. Returns ``{key: decoded content}``."""
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(rng.randint(3, 9))) for _ in range(300)]
    files = {f"d{i % 9}/f{i:05d}.bin": _content(rng, words) for i in range(n)}
    plain, gz = [], []
    for i, (key, data) in enumerate(files.items()):
        (gz if gzip_every and i % gzip_every == 0 else plain).append((key, data))
    cf = CloudFiles(cloudpath)
    cf.puts(plain)
    if gz:
        cf.puts(gz, compress="gzip")
    return files


def stored(cloudpath: str, keys: list[str]) -> dict[str, tuple[bytes, str | None]]:
    """``{key: (decoded content, stored encoding)}`` read back through the library."""
    cf = CloudFiles(cloudpath)
    raw = {r["path"]: r["compress"] for r in cf.get(keys, raw=True)}
    decoded = cf.get(keys, return_dict=True)
    return {k: (decoded[k], raw[k]) for k in keys}


def ledger_rows(db: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT src, dest, done, lease, attempts FROM filelist ORDER BY id").fetchall()


def ledger_consistent(db: str) -> None:
    """The stats row agrees with the rows it counts."""
    with sqlite3.connect(db) as conn:
        total, done = conn.execute("SELECT COUNT(*), COALESCE(SUM(done), 0) FROM filelist").fetchone()
        stats = dict(conn.execute("SELECT key, value FROM stats").fetchall())
    assert stats == {"total": total, "finished": done}


def finished_so_far(db: str) -> int:
    """Rows done in a ledger that may not even hold a job yet (a kill before init committed)."""
    try:
        fileset = ResumableFileSet(db)
        done = fileset.finished()
    except LedgerError:
        return 0
    fileset.close()
    ledger_consistent(db)
    return done


@pytest.fixture
def roots(tmp_path):
    return "file://" + str(tmp_path / "src"), "file://" + str(tmp_path / "dest")


# A worker process: every mode prints "started" once it is about to do the interesting part.
WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from cloudfiles_dask.resumable import ResumableFileSet, ResumableTransfer

    mode, db, args = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

    def say(msg):
        sys.stdout.write(msg + "\\n")
        sys.stdout.flush()

    if mode == "init_execute":
        rt = ResumableTransfer(db, lease_msec=args["lease_msec"])
        say("started")
        rt.init(args["src"], args["dest"], reencode=args["reencode"])
        n = rt.execute(block_size=args["block_size"])
        say(json.dumps({"transferred": n}))
    elif mode == "execute":
        rt = ResumableTransfer(db, lease_msec=args["lease_msec"])
        barrier = args.get("barrier")
        say("started")
        while barrier and not os.path.exists(barrier):
            time.sleep(0.005)
        n = rt.execute(block_size=args["block_size"])
        say(json.dumps({"transferred": n}))
    elif mode == "init_big":
        rt = ResumableTransfer(db)
        if args.get("pause_before_commit"):
            # a test seam: stop inside the publishing transaction, rows inserted, not committed
            real = ResumableFileSet._insert_staged

            def paused(self, conn):
                added = real(self, conn)
                say("inserted")
                time.sleep(600)
                return added

            ResumableFileSet._insert_staged = paused
        say("started")
        n = rt.init(args["src"], args["dest"], paths=(f"k{i:07d}" for i in range(args["n"])))
        say(json.dumps({"added": n}))
    elif mode == "hold":
        fs = ResumableFileSet(db, lease_msec=args["lease_msec"])
        block = next(fs.next_blocks(block_size=args["n"]))
        say(json.dumps({"held": [dest for _, dest in block]}))
        time.sleep(600)
    """
)


@pytest.fixture
def worker(tmp_path):
    """Factory: ``worker(mode, db, **args)`` starts a worker process (stdout piped)."""
    script = tmp_path / "resumable_worker.py"
    script.write_text(WORKER)
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def start(mode: str, db: str, **args) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, str(script), mode, db, json.dumps(args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(tmp_path),
        )
        procs.append(proc)
        return proc

    yield start
    stop_all(procs)


def read_line(proc: subprocess.Popen, timeout: float = 30.0) -> str:
    """The next stdout line of ``proc`` ("" at EOF), failing after ``timeout`` seconds."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "worker printed nothing in time"
    return proc.stdout.readline().decode().strip()


def finish(proc: subprocess.Popen, timeout: float = 60.0) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def kill(proc: subprocess.Popen) -> bool:
    """SIGKILL ``proc``; False if it had exited cleanly before the signal landed (a race
    after ``poll()``: the worker may finish in between)."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.returncode == 0:
        return False
    assert proc.returncode == -signal.SIGKILL
    return True


# -- one client, in process ------------------------------------------------------------------------


@pytest.mark.parametrize("reencode, expect", [(None, "keep"), ("gzip", "gzip"), ("br", "br"), (False, None)])
def test_transfer_with_renames_and_reencode(tmp_path, roots, reencode, expect):
    src, dest = roots
    files = make_tree(src, 300, seed=1, gzip_every=3)
    src_enc = {k: enc for k, (_, enc) in stored(src, list(files)).items()}
    renamed = {key: "renamed/" + key.replace("/", "_") for key in files}
    pairs = [(k, renamed[k]) if i % 2 else k for i, k in enumerate(files)]  # half renamed
    dest_of = {k: (renamed[k] if i % 2 else k) for i, k in enumerate(files)}
    db = str(tmp_path / "job.db")

    with ResumableTransfer(db) as rt:
        assert rt.init(src, dest, paths=pairs, reencode=reencode) == 300
        assert len(rt) == 300
        assert rt.execute(block_size=64) == 300
        status = rt.status()
    assert status["total"] == 300 and status["finished"] == 300
    assert status["remaining"] == 0 and status["leased"] == 0
    assert status["encoding"] == (expect or "decode")
    assert status["reencode"] == (reencode if reencode is not False else False)

    got = stored(dest, list(dest_of.values()))
    for key, data in files.items():
        content, enc = got[dest_of[key]]
        assert content == data, key
        assert enc == (src_enc[key] if expect == "keep" else expect), key
    assert sorted(CloudFiles(dest).list()) == sorted(dest_of.values())  # nothing else written
    assert all(row[4] == 1 for row in ledger_rows(db))
    ledger_consistent(db)


def test_status_len_idempotent_and_ledger_survives(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 120, seed=2)
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db)
    assert rt.init(src, dest) == 120  # paths=None lists the source
    fs = rt.fileset
    assert (fs.total(), fs.finished(), fs.remaining(), fs.num_leased(), fs.available()) == (120, 0, 120, 0, 120)
    assert sorted(dest for _, dest in fs.pending()) == sorted(files)

    # Finish a part by hand (chunked statements: more keys than sqlite's 999 parameters are fine).
    first = sorted(files)[:50]
    assert fs.mark_finished(first + [f"unknown{i}" for i in range(2000)]) == 50
    assert fs.mark_finished(first) == 0
    assert len(rt) == 70 and rt.status()["finished"] == 50

    assert rt.execute() == 70  # only the unfinished ones
    assert rt.execute() == 0  # idempotent
    assert len(rt) == 0
    with rt:
        pass
    assert os.path.exists(db)  # finishing (and leaving a with block) never deletes the ledger
    assert ResumableTransfer(db).status()["finished"] == 120
    assert pickle.loads(pickle.dumps(rt)).status()["finished"] == 120  # pickles by path
    assert sorted(CloudFiles(dest).list()) == sorted(files)[50:]  # marked by hand: not copied
    got = stored(dest, sorted(files)[50:])
    assert {k: v[0] for k, v in got.items()} == {k: files[k] for k in sorted(files)[50:]}
    ledger_consistent(db)
    rt.close()  # the job is finished: close() deletes the ledger, as the original's does
    assert not any(os.path.exists(db + s) for s in ("", "-wal", "-shm"))


def test_a_transaction_an_interrupt_left_open_is_undone_before_the_next_call(tmp_path, roots):
    """A Ctrl-C landing between BEGIN and the statement after it runs no handler: the
    connection stays in a transaction, which the next call rolls back (SQLite has no nested
    ones) instead of failing, and its half-done change never lands."""
    src, dest = roots
    files = make_tree(src, 30, seed=5)
    rt = ResumableTransfer(str(tmp_path / "job.db"))
    rt.init(src, dest)
    conn = rt.fileset._connect()
    conn.execute("BEGIN IMMEDIATE")  # as a write cut by the interrupt leaves it
    conn.execute("UPDATE stats SET value = 999 WHERE key = 'finished'")
    rt.init(src, dest)  # the job again, as a notebook user would after the interrupt
    assert rt.status()["finished"] == 0
    assert rt.execute() == 30
    assert sorted(CloudFiles(dest).list()) == sorted(files)
    ledger_consistent(str(tmp_path / "job.db"))


def test_init_twice_refuses_other_jobs_and_adds_paths(tmp_path, roots):
    src, dest = roots
    make_tree(src, 30, seed=3)
    keys = sorted(CloudFiles(src).list())
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db)
    assert rt.init(src, dest, paths=keys[:10], reencode="gzip") == 10

    with pytest.raises(LedgerError, match="different transfer job"):
        rt.init(src, dest + "-other", paths=keys)
    with pytest.raises(LedgerError, match="different transfer job"):
        rt.init(src, dest, paths=keys, reencode="br")
    with pytest.raises(LedgerError, match="different transfer job"):
        rt.init(src, dest, paths=keys, reencode=None)  # "keep" is not "gzip"
    assert rt.status()["total"] == 10

    # The same job: new paths are added, present ones are never duplicated.
    assert rt.init(CloudFiles(src), dest, paths=keys[5:20] + keys[5:8], reencode="gzip") == 10
    assert rt.status()["total"] == 20
    # Same destination from another source: refused, nothing added (atomic).
    with pytest.raises(ValueError, match="two sources"):
        rt.init(src, dest, paths=keys[20:25] + [(keys[0], keys[1])], reencode="gzip")
    with pytest.raises(ValueError, match="two sources"):
        rt.init(src, dest, paths=[keys[25], (keys[26], keys[25])], reencode="gzip")
    assert rt.status()["total"] == 20
    assert rt.execute() == 20
    assert rt.init(src, dest, paths=keys, reencode="gzip") == 10  # the rest of them
    assert rt.execute() == 10
    assert sorted(CloudFiles(dest).list()) == keys
    assert all(row[4] == 1 for row in ledger_rows(db))
    ledger_consistent(db)


def test_decode_is_stored_distinctly_from_keep(tmp_path, roots):
    src, dest = roots
    make_tree(src, 5, seed=4)
    keep = ResumableTransfer(str(tmp_path / "keep.db"))
    keep.init(src, dest)
    decode = ResumableTransfer(str(tmp_path / "decode.db"))
    decode.init(src, dest, reencode="none")
    assert keep.fileset.metadata()["encoding"] == "keep" and keep.status()["reencode"] is None
    assert decode.fileset.metadata()["encoding"] == "decode" and decode.status()["reencode"] is False
    for value in (False, ""):
        decode.init(src, dest, reencode=value)  # the same job


def test_paths_as_cloudpath_inside_source(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 45, seed=5)
    rt = ResumableTransfer(str(tmp_path / "job.db"))
    assert rt.init(src, dest, paths=src + "/d3") == 5
    assert rt.execute() == 5
    assert sorted(CloudFiles(dest).list()) == sorted(k for k in files if k.startswith("d3/"))
    with pytest.raises(ValueError, match="neither the transfer source"):
        rt.init(src, dest, paths="file://" + str(tmp_path / "elsewhere"))
    with pytest.raises(TypeError):
        rt.init(src, dest, paths=[42])
    with pytest.raises(TypeError):
        rt.init(src, dest, paths={"path": "a"})


def test_progress_covers_the_whole_ledger(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 90, seed=6)
    rt = ResumableTransfer(str(tmp_path / "job.db"))
    rt.init(src, dest)
    rt.fileset.mark_finished(sorted(files)[:40])
    events = []
    assert rt.execute(progress=events.append, block_size=20) == 50
    assert events[0].kind == "start" and events[0].total == 90
    advances = [e for e in events if e.kind == "advance"]
    assert advances[0].files == 40 and advances[0].earlier  # starts from the finished count
    assert sum(e.files for e in advances) == 90 and not any(e.earlier for e in advances[1:])
    assert sum(e.nbytes for e in advances) == sum(len(files[k]) for k in sorted(files)[40:])
    assert events[-1].kind == "close"
    tally = Tally()
    for event in events:
        tally.add(event)
    state = tally.state()  # the rate counts the 50 moved now, not the 40 done before
    assert state.files == 90 and state.earlier == 40
    assert state.files_per_s == pytest.approx(50 / state.elapsed)


def test_missing_source_raises_and_rows_stay_unfinished(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 20, seed=7)
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=60_000)
    rt.init(src, dest, paths=sorted(files) + ["nope/missing.bin"], reencode="gzip")
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        rt.execute(block_size=100)
    status = rt.status()
    assert status["finished"] == 0 and status["remaining"] == 21
    assert status["leased"] == 0  # the failed block's leases were given back
    CloudFiles(src).put("nope/missing.bin", b"late")
    assert rt.execute() == 21
    assert CloudFiles(dest).get("nope/missing.bin") == b"late"
    ledger_consistent(db)


def test_clear_errors(tmp_path, roots):
    src, dest = roots
    missing = str(tmp_path / "missing.db")
    with pytest.raises(LedgerError, match="No ResumableTransfer ledger"):
        ResumableTransfer(missing).execute()
    with pytest.raises(LedgerError, match="No ResumableTransfer ledger"):
        ResumableTransfer(missing).status()
    assert not os.path.exists(missing)

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="not a ResumableTransfer ledger"):
        ResumableTransfer(str(garbage)).status()

    empty = str(tmp_path / "empty.db")
    sqlite3.connect(empty).close()
    with pytest.raises(LedgerError, match=f"not a ResumableTransfer ledger: {empty}"):
        ResumableTransfer(empty).execute()

    other = str(tmp_path / "other.db")
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE listing (key TEXT)")
    with pytest.raises(LedgerError, match="not a ResumableTransfer ledger"):
        ResumableTransfer(other).init(src, dest, paths=[])
    with sqlite3.connect(other) as conn:  # untouched
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["listing"]

    original = str(tmp_path / "original.db")
    with sqlite3.connect(original) as conn:  # the original cloud-files layout
        conn.execute("CREATE TABLE xfermeta (id INTEGER PRIMARY KEY, source TEXT, dest TEXT, reencode TEXT, created INTEGER)")
        conn.execute("CREATE TABLE filelist (id INTEGER PRIMARY KEY, filename TEXT, finished INTEGER, lease INTEGER)")
        conn.execute("CREATE TABLE stats (id INTEGER PRIMARY KEY, key TEXT, value INTEGER)")
    with pytest.raises(LedgerError, match="original cloud-files whose init never completed"):
        ResumableTransfer(original).status()  # no job row: nothing to migrate
    with sqlite3.connect(original) as conn:  # untouched
        assert sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")) == [
            "filelist", "stats", "xfermeta"]

    with pytest.raises(ValueError):
        ResumableTransfer(str(tmp_path / "x.db"), lease_msec=-1)
    with pytest.raises(ValueError):
        ResumableTransfer(str(tmp_path / "x.db")).init(src, dest, reencode="lz4")


def test_cleanup_refuses_while_unfinished(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 25, seed=8)
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=60_000)
    rt.init(src, dest)
    next(rt.fileset.next_blocks(block_size=5))  # someone holds 5 leases
    with pytest.raises(LedgerError, match=r"25 file\(s\) are unfinished \(5 leased"):
        rt.cleanup()
    assert os.path.exists(db)
    assert rt.release() == 5
    assert rt.execute() == 25
    rt.cleanup()
    assert not any(os.path.exists(db + s) for s in ("", "-wal", "-shm"))
    assert sorted(CloudFiles(dest).list()) == sorted(files)

    abandoned = ResumableTransfer(str(tmp_path / "abandoned.db"))
    abandoned.init(src, dest)
    abandoned.cleanup(force=True)
    assert not os.path.exists(str(tmp_path / "abandoned.db"))


def test_zero_lease_retakes_rows_leased_by_others(tmp_path, roots):
    src, dest = roots
    make_tree(src, 30, seed=9)
    db = str(tmp_path / "job.db")
    ResumableTransfer(db, lease_msec=60_000).init(src, dest)
    held = next(ResumableFileSet(db, lease_msec=60_000).next_blocks(block_size=30))
    assert len(held) == 30
    start = time.monotonic()
    assert ResumableTransfer(db, lease_msec=0).execute() == 30  # leases mean nothing at 0
    assert time.monotonic() - start < 5
    assert {row[4] for row in ledger_rows(db)} == {2}


def test_fileset_next_limit_and_blocks(tmp_path, roots):
    src, dest = roots
    db = str(tmp_path / "job.db")
    fs = ResumableFileSet(db, lease_msec=60_000)
    fs.create(src, dest, "gzip")
    assert fs.insert(f"k{i}" for i in range(2500)) == 2500
    assert fs.metadata()["encoding"] == "gzip"
    blocks = list(fs.next_blocks(limit=450, block_size=200))
    assert [len(b) for b in blocks] == [200, 200, 50]
    assert fs.num_leased() == 450 and fs.available() == 2050
    again = [pair for block in fs.next_blocks(block_size=1000) for pair in block]
    assert len(again) == 2050  # never a row that is leased
    assert not set(again) & {pair for block in blocks for pair in block}
    assert list(fs.next_blocks()) == [] and list(fs.next()) == []
    assert fs.mark_finished(again) == 2050
    assert fs.release() == 450 and fs.available() == 450
    fs.close()


def test_init_staging_does_not_lock_the_ledger(tmp_path, roots):
    """Consuming a slow listing/generator holds no lock: other clients keep leasing meanwhile."""
    src, dest = roots
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=60_000)
    rt.init(src, dest, paths=["a"])
    seen = []

    def slow_paths():
        for i in range(3000):
            if i == 1500:
                other = sqlite3.connect(db, timeout=0.5, isolation_level=None)
                other.execute("BEGIN IMMEDIATE")  # would time out if init held the write lock
                other.execute("UPDATE filelist SET lease = 1 WHERE dest = 'a'")
                other.execute("COMMIT")
                other.close()
                seen.append(ResumableTransfer(db).status()["total"])
            yield f"b{i}"

    assert rt.init(src, dest, paths=slow_paths()) == 3000
    assert seen == [1]  # not visible before the whole init is published
    assert rt.status()["total"] == 3001


def test_leases_of_a_slow_block_are_renewed(tmp_path, roots, monkeypatch):
    src, dest = roots
    make_tree(src, 10, seed=10)
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=600)
    rt.init(src, dest)
    real = CloudFiles.transfer_to
    entered = threading.Event()

    def slow(self, *args, **kwargs):
        entered.set()
        time.sleep(2.0)  # over three lease lengths
        return real(self, *args, **kwargs)

    monkeypatch.setattr(CloudFiles, "transfer_to", slow)
    result = []
    thread = threading.Thread(target=lambda: result.append(rt.execute(block_size=10)))
    thread.start()
    assert entered.wait(10)
    watcher = ResumableFileSet(db, lease_msec=600)
    for _ in range(4):
        time.sleep(0.4)
        assert watcher.num_leased() == 10 and list(watcher.next()) == []  # still held
    thread.join(20)
    assert result == [10]
    assert {row[4] for row in ledger_rows(db)} == {1}


# -- real processes and SIGKILL ---------------------------------------------------------------------


def test_sigkill_during_execute_then_resume(tmp_path, roots, worker):
    src, dest = roots
    files = make_tree(src, 1500, seed=11)
    db = str(tmp_path / "job.db")
    rng = random.Random(20240611)
    args = {"src": src, "dest": dest, "reencode": "gzip", "lease_msec": 0, "block_size": 25}
    progress = []
    for _ in range(5):
        proc = worker("init_execute", db, **args)
        assert read_line(proc) == "started"
        # the whole transfer takes ~0.2 s on a 2-core machine (file:// writes on one thread)
        time.sleep(rng.uniform(0.02, 0.15))
        if proc.poll() is not None or not kill(proc):
            break  # finished before the kill
        progress.append(finished_so_far(db))
    assert any(0 < done < 1500 for done in progress), progress  # some kills landed mid-transfer
    before = finished_so_far(db)
    last = finish(worker("init_execute", db, **args)).splitlines()[-1]
    assert json.loads(last)["transferred"] == 1500 - before

    rt = ResumableTransfer(db)
    status = rt.status()
    assert (status["total"], status["finished"], status["remaining"]) == (1500, 1500, 0)
    ledger_consistent(db)
    assert sorted(CloudFiles(dest).list()) == sorted(files)
    got = stored(dest, sorted(files))
    assert all(got[k] == (data, "gzip") for k, data in files.items())


def test_sigkill_during_init_is_atomic(tmp_path, roots, worker):
    """init is one transaction over staged rows: a kill leaves no job or the whole job."""
    src, dest = roots
    db = str(tmp_path / "big.db")
    n = 300_000
    rng = random.Random(7)
    # Staging 300k keys takes about half a second and publishing them as much again. Kill 1
    # lands in staging; kill 2 inside the publishing transaction after every row was inserted
    # (through a test seam); the others at random times (staging, publishing, or after).
    delays = [0.1, "inserted"] + [rng.uniform(0.3, 1.3) for _ in range(3)]
    outcomes = []
    for delay in delays:
        pause = delay == "inserted"
        proc = worker("init_big", db, src=src, dest=dest, n=n, pause_before_commit=pause)
        assert read_line(proc) == "started"
        if pause:
            assert read_line(proc) == "inserted"
        else:
            time.sleep(delay)
        if proc.poll() is None:
            kill(proc)
        try:
            total = ResumableFileSet(db).total()
        except LedgerError:
            total = None  # killed before the job was published: no ledger tables at all
        outcomes.append(total)
        assert total in (None, n)
        if total is not None:
            ledger_consistent(db)
            assert len(ledger_rows(db)) == n
    assert outcomes[:2] == [None, None]  # nothing of a killed init is visible
    expect = 0 if n in outcomes else n
    assert json.loads(finish(worker("init_big", db, src=src, dest=dest, n=n)).splitlines()[-1]) == {"added": expect}
    assert ResumableFileSet(db).total() == n
    ledger_consistent(db)


def test_three_clients_drain_one_ledger(tmp_path, roots, worker):
    src, dest = roots
    files = make_tree(src, 900, seed=12)
    db = str(tmp_path / "job.db")
    ResumableTransfer(db, lease_msec=3000).init(src, dest, reencode="gzip")
    barrier = str(tmp_path / "go")
    procs = [worker("execute", db, lease_msec=3000, block_size=5, barrier=barrier) for _ in range(3)]
    for proc in procs:
        assert read_line(proc) == "started"
    Path(barrier).touch()
    counts = [json.loads(finish(proc).splitlines()[-1])["transferred"] for proc in procs]
    assert sum(counts) == 900, counts
    assert sum(1 for c in counts if c) >= 2, counts  # really concurrent
    rows = ledger_rows(db)
    assert len(rows) == 900
    assert all(done == 1 for _, _, done, _, _ in rows)
    assert all(attempts == 1 for *_, attempts in rows)  # no file was handed out twice
    ledger_consistent(db)
    got = stored(dest, sorted(files))
    assert all(got[k] == (data, "gzip") for k, data in files.items())


def test_client_killed_holding_leases_is_waited_for(tmp_path, roots, worker):
    src, dest = roots
    files = make_tree(src, 200, seed=13)
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=1000)
    rt.init(src, dest)
    holder = worker("hold", db, lease_msec=2500, n=40)
    held = json.loads(read_line(holder))["held"]
    assert len(held) == 40
    kill(holder)  # dies with 40 unexpired leases
    status = rt.status()
    assert status["leased"] == 40 and status["available"] == 160
    expiry = rt.fileset.next_expiry()
    start_ms = time.time() * 1000
    assert rt.execute(block_size=30) == 200  # waited for the dead client's leases to run out
    assert time.time() * 1000 >= expiry - 5 and expiry > start_ms
    attempts = {dest_key: a for _, dest_key, _, _, a in ledger_rows(db)}
    assert {attempts[k] for k in held} == {2}
    assert {a for k, a in attempts.items() if k not in held} == {1}
    assert rt.status()["remaining"] == 0
    got = stored(dest, sorted(files))
    assert {k: v[0] for k, v in got.items()} == files
