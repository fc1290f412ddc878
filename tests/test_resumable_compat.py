"""ResumableTransfer / ResumableFileSet as a drop-in for the original ``cloudfiles.resumable_tools``:
``close()`` semantics, the original's ResumableFileSet method shapes, and resuming a ledger
written by the original cloud-files (migrated once, in place, atomically).

Real sqlite files and real file:// and mem:// transfers throughout. Ledgers in the original's
layout are built from ``ORIGINAL_SCHEMA`` below. When the real original is installed in a
throwaway venv (``$CFDASK_ORIGINAL_PYTHON``, default ``/tmp/cfvenv/bin/python``, made with
``python3 -m venv /tmp/cfvenv && /tmp/cfvenv/bin/pip install cloud-files==6.4.3``), extra tests
check the snapshot against what the original really writes and resume ledgers it really wrote;
without it they are skipped.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.resumable import LedgerError, ResumableFileSet, ResumableTransfer
from tests.processes import stop_all
from tests.test_cli import ok
from tests.test_resumable import finish, kill, ledger_consistent, make_tree, read_line, stored

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")

REPO = str(Path(__file__).resolve().parents[1])

# -- the original's ledger layout -------------------------------------------------------------------

# The schema that cloud-files 6.4.3 (``cloudfiles.resumable_tools.ResumableFileSet.create``) leaves
# in a new ledger, as ``sqlite3 DB .schema`` lists it (whitespace aside), in the default rollback
# journal mode. ``test_snapshot_matches_the_real_original`` compares it with a ledger written by
# the real package. Its data, in words: xfermeta holds one row (1, source, dest, reencode,
# created epoch ms) where reencode has TEXT affinity (None stays NULL, False is stored as '0',
# True as '1'); filelist gets one row (filename, finished 0/1, lease epoch ms) per inserted name,
# duplicates included; stats holds (1, 'finished', n), a running count of finished names.
ORIGINAL_SCHEMA = (
    "CREATE TABLE xfermeta (id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, "
    "dest TEXT NOT NULL, reencode TEXT, created INTEGER NOT NULL)",
    "CREATE TABLE sqlite_sequence(name,seq)",  # made by sqlite for AUTOINCREMENT, not executed
    "CREATE TABLE filelist (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT NOT NULL, "
    "finished INTEGER NOT NULL, lease INTEGER NOT NULL)",
    "CREATE INDEX resumableidxfin ON filelist(finished,lease)",
    "CREATE INDEX resumableidxfile ON filelist(filename)",
    "CREATE TABLE stats (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value INTEGER)",
)


def original_ledger(
    db: str, source: str, dest: str, names: list[str], finished=(), reencode=None, lease: int = 0
) -> None:
    """Write a ledger in the original's layout and with its data conventions."""
    with sqlite3.connect(db) as conn:
        for statement in ORIGINAL_SCHEMA:
            if "sqlite_sequence" not in statement:
                conn.execute(statement)
        conn.execute("INSERT INTO xfermeta VALUES (1, ?, ?, ?, ?)", (source, dest, reencode, 1_700_000_000_000))
        conn.execute("INSERT INTO stats (id, key, value) VALUES (1, 'finished', ?)", (len(set(finished)),))
        conn.executemany(
            "INSERT INTO filelist (filename, finished, lease) VALUES (?, ?, ?)",
            [(name, int(name in finished), lease) for name in names],
        )
    conn.close()


def schema_of(db: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid").fetchall()
    conn.close()
    return [re.sub(r"\s+", " ", sql).replace("( ", "(").replace(" )", ")").strip() for (sql,) in rows]


def dump(db: str) -> list[str]:
    """Every schema statement and row of ``db`` (opening it rolls back a hot journal)."""
    with sqlite3.connect(db) as conn:
        lines = list(conn.iterdump())
    conn.close()
    return lines


def table_names(db: str) -> set[str]:
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    return names


def journal_mode(db: str) -> str:
    with sqlite3.connect(db) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    return mode


ORIGINAL_PYTHON = os.environ.get("CFDASK_ORIGINAL_PYTHON", "/tmp/cfvenv/bin/python")


def _original_available() -> bool:
    if not os.access(ORIGINAL_PYTHON, os.X_OK):
        return False
    probe = subprocess.run(
        [ORIGINAL_PYTHON, "-c", "import cloudfiles.resumable_tools"], capture_output=True, cwd="/", timeout=120
    )
    return probe.returncode == 0


needs_original = pytest.mark.skipif(
    not _original_available(), reason=f"the original cloud-files is not installed at {ORIGINAL_PYTHON}"
)


def run_original(script: str, *args: str) -> str:
    """Run ``script`` with the real original cloud-files (its own venv, outside this repo)."""
    proc = subprocess.run(
        [ORIGINAL_PYTHON, "-c", textwrap.dedent(script), *args], capture_output=True, cwd="/", timeout=300
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


@pytest.fixture
def roots(tmp_path):
    return "file://" + str(tmp_path / "src"), "file://" + str(tmp_path / "dest")


# -- close() ------------------------------------------------------------------------------------------


def test_close_deletes_the_ledger_of_a_finished_job(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 30, seed=21)
    db = str(tmp_path / "job.db")
    with ResumableTransfer(db) as rt:
        rt.init(src, dest)
        assert rt.execute(block_size=7) == 30
    assert os.path.exists(db)  # leaving the with block only closed the connection
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a finished job warns about nothing
        rt.close()
    assert not any(os.path.exists(db + s) for s in ("", "-wal", "-shm", "-journal"))
    assert sorted(CloudFiles(dest).list()) == sorted(files)
    rt.close()  # no ledger any more: nothing to do

    empty = ResumableTransfer(str(tmp_path / "empty.db"))
    assert empty.init(src, dest, paths=[]) == 0
    empty.close()  # zero files: finished
    assert not os.path.exists(str(tmp_path / "empty.db"))
    ResumableTransfer(str(tmp_path / "never.db")).close()  # never created: nothing happens
    assert not os.path.exists(str(tmp_path / "never.db"))


def test_close_keeps_an_unfinished_ledger_and_warns(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 40, seed=22)
    db = str(tmp_path / "job.db")
    rt = ResumableTransfer(db, lease_msec=60_000)
    rt.init(src, dest)
    rt.rfs.mark_finished(sorted(files)[:10])
    other = ResumableFileSet(db, lease_msec=60_000)
    held = next(other.next_blocks(block_size=5))  # another client is working on 5 files
    with pytest.warns(UserWarning, match=r"30 file\(s\) of the transfer remain unfinished"):
        rt.close()
    assert os.path.exists(db)
    assert rt.status()["finished"] == 10 and rt.status()["leased"] == 5  # reopens fine
    other.mark_finished(held)
    with pytest.warns(UserWarning, match=r"25 file\(s\)"):
        rt.close()
    assert ResumableTransfer(db).execute() == 25
    rt.close()
    assert not os.path.exists(db)
    by_hand = set(sorted(files)[:10]) | {dest_key for _, dest_key in held}
    assert sorted(CloudFiles(dest).list()) == sorted(set(files) - by_hand)


def test_close_never_deletes_a_new_ledger_at_the_same_path(tmp_path, roots):
    """A client whose finished ledger was already deleted (by another client's close) must not
    delete the next job's ledger created meanwhile at the same path."""
    src, dest = roots
    make_tree(src, 12, seed=23)
    db = str(tmp_path / "job.db")
    late = ResumableTransfer(db)
    late.init(src, dest, paths=["d0/f00000.bin"])
    assert late.execute() == 1  # finished; its connection stays open
    ResumableTransfer(db).close()  # another client deletes the finished ledger
    assert not os.path.exists(db)
    new = ResumableTransfer(db)
    new.init(src, dest + "2")  # a new job, same path
    new.execute(block_size=100)  # ... also finished
    late.close()  # sees its own (deleted) ledger finished: must leave the new file alone
    assert os.path.exists(db) and new.status()["dest"] == dest + "2"
    new.close()
    assert not os.path.exists(db)


# -- the original's ResumableFileSet surface -------------------------------------------------------


def test_fileset_has_the_original_methods_and_shapes(tmp_path):
    root = "mem://compat-" + tmp_path.name
    src, dest = root + "/src", root + "/dest"
    db = str(tmp_path / "set.db")
    fs = ResumableFileSet(db, lease_msec=60_000)
    assert fs.create(src, dest, "gzip") is None
    fs.insert([f"k{i:03d}" for i in range(10)])
    fs.insert([("k010", "renamed/k010")])  # a rename, which the original cannot express
    meta = fs.metadata()
    assert {k: meta[k] for k in ("source", "dest", "reencode")} == {"source": src, "dest": dest, "reencode": "gzip"}
    assert isinstance(meta["created"], int)
    assert (fs.total(), fs.finished(), fs.remaining(), fs.num_leased(), fs.available(), len(fs)) == (
        11, 0, 11, 0, 11, 11)

    got = fs.next(block_size=4)  # a generator of files, leased block by block
    assert next(got) == "k000"
    assert fs.num_leased() == 4 and fs.available() == 7
    items = ["k000", *got]
    assert items == [f"k{i:03d}" for i in range(10)] + [("k010", "renamed/k010")]
    assert fs.num_leased() == 11 and list(fs.next()) == [] and list(fs) == []
    fs.release()
    assert fs.num_leased() == 0 and fs.available() == 11

    fs.mark_finished(items[:3] + [items[-1]])  # names as next() yields them, the pair included
    assert (fs.finished(), fs.remaining(), len(fs)) == (4, 7, 7)
    assert list(fs.next(limit=5, block_size=2)) == [f"k{i:03d}" for i in range(3, 8)]  # exactly 5
    fs.release()
    it = iter(fs)  # __iter__ is next(): files leased as they are handed out
    assert next(it) == "k003" and fs.num_leased() == 7  # the first block (200) leased them all
    it.close()
    fs.release()
    assert list(fs.next(limit=0)) == [f"k{i:03d}" for i in range(3, 10)]  # 0: no limit, as the original

    with pytest.raises(LedgerError, match="unfinished"):
        fs.delete()  # never under unfinished files
    fs.mark_finished(f"k{i:03d}" for i in range(3, 10))
    assert fs.remaining() == 0
    fs.delete()
    assert not os.path.exists(db)


def test_fileset_next_without_leases_walks_once(tmp_path):
    root = "mem://walk-" + tmp_path.name
    fs = ResumableFileSet(str(tmp_path / "set.db"))  # lease_msec=0
    fs.create(root + "/a", root + "/b")
    fs.insert(["x", "y", "z"])
    assert list(fs.next(block_size=2)) == ["x", "y", "z"]  # the original repeats these forever
    assert list(fs) == ["x", "y", "z"]
    assert sorted(fs.pending()) == [("x", "x"), ("y", "y"), ("z", "z")]


@needs_original
def test_next_yields_what_the_original_yields(tmp_path):
    names = [f"dir{i % 3}/n{i:04d}" for i in range(450)]
    listing = tmp_path / "names.json"
    listing.write_text(json.dumps(names))
    theirs = json.loads(run_original(
        """
        import json, sys
        from cloudfiles.resumable_tools import ResumableFileSet
        names = json.load(open(sys.argv[1]))
        fs = ResumableFileSet(sys.argv[2], lease_msec=60000)
        fs.create("mem://a/src", "mem://a/dest")
        fs.insert(names)
        fs.mark_finished(names[::7])
        out = {"first": list(fs.next(block_size=100)), "leased": fs.num_leased(), "len": len(fs)}
        fs.release()
        out["iter"] = list(fs)
        print(json.dumps(out))
        """,
        str(listing), str(tmp_path / "theirs.db"),
    ))
    fs = ResumableFileSet(str(tmp_path / "ours.db"), lease_msec=60_000)
    fs.create("mem://a/src", "mem://a/dest")
    fs.insert(names)
    fs.mark_finished(names[::7])
    ours = {"first": list(fs.next(block_size=100)), "leased": fs.num_leased(), "len": len(fs)}
    fs.release()
    ours["iter"] = list(fs)
    assert ours == theirs


# -- ledgers of the original cloud-files --------------------------------------------------------------


@needs_original
def test_snapshot_matches_the_real_original(tmp_path):
    real = str(tmp_path / "real.db")
    run_original(
        """
        import sys
        from cloudfiles.resumable_tools import ResumableTransfer
        rt = ResumableTransfer(sys.argv[1])
        rt.init("mem://a/src", "mem://a/dest", paths=["x", "y"], reencode=False)
        """,
        real,
    )
    snap = str(tmp_path / "snap.db")
    original_ledger(snap, "mem://a/src", "mem://a/dest", ["x", "y"], reencode=False)
    assert schema_of(real) == schema_of(snap)
    assert journal_mode(real) == journal_mode(snap) == "delete"
    data = (
        "SELECT * FROM filelist; SELECT * FROM stats; SELECT * FROM sqlite_sequence ORDER BY rowid; "
        "SELECT id, source, dest, reencode, typeof(reencode) FROM xfermeta"
    )
    with sqlite3.connect(real) as a, sqlite3.connect(snap) as b:
        for query in data.split("; "):
            assert a.execute(query).fetchall() == b.execute(query).fetchall(), query
    a.close()
    b.close()


@pytest.mark.parametrize(
    "protocol, reencode, expect",
    [("file", None, "keep"), ("mem", False, "decode"), ("file", "gzip", "gzip"), ("mem", True, "gzip")],
)
def test_half_done_original_ledger_is_migrated_and_resumed(tmp_path, protocol, reencode, expect):
    if protocol == "file":
        src, dest = "file://" + str(tmp_path / "src"), "file://" + str(tmp_path / "dest")
    else:
        src, dest = f"mem://half-{tmp_path.name}/src", f"mem://half-{tmp_path.name}/dest"
    files = make_tree(src, 60, seed=24, gzip_every=4)
    src_enc = {k: enc for k, (_, enc) in stored(src, list(files)).items()}
    names = sorted(files)
    done = set(names[::3])  # 20 finished by the original's clients (not at dest: we can tell)
    db = str(tmp_path / "orig.db")
    # duplicates (the original allows them) and leases still running by the original's clock
    original_ledger(db, src, dest, names + names[:5], finished=done, reencode=reencode, lease=4_000_000_000_000)

    rt = ResumableTransfer(db, lease_msec=30_000)
    status = rt.status()  # opening it migrates it
    assert (status["source"], status["dest"], status["encoding"]) == (src, dest, expect)
    assert (status["total"], status["finished"], status["remaining"], status["leased"]) == (60, 20, 40, 0)
    assert status["created"] == 1_700_000_000_000
    assert table_names(db) == {"xfermeta", "filelist", "stats", "sqlite_sequence"}
    assert rt.fileset.metadata()["version"] == 1
    ledger_consistent(db)
    rows = rt.fileset.rows()
    assert [r["src"] for r in rows] == names and all(r["src"] == r["dest"] for r in rows)
    assert {r["src"] for r in rows if r["done"]} == done

    assert rt.execute(block_size=8) == 40  # only the unfinished files
    assert sorted(CloudFiles(dest).list()) == sorted(set(names) - done)
    got = stored(dest, sorted(set(names) - done))
    for key, (content, enc) in got.items():
        assert content == files[key], key
        assert enc == {"keep": src_enc[key], "decode": None}.get(expect, expect), key
    rt.close()
    assert not os.path.exists(db)


def test_migration_keeps_the_same_job_and_refuses_another(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 20, seed=25)
    names = sorted(files)
    db = str(tmp_path / "orig.db")
    original_ledger(db, src, dest, names[:10], finished=names[:4], reencode="br")
    rt = ResumableTransfer(db)
    with pytest.raises(LedgerError, match="different transfer job"):
        rt.init(src, dest, paths=names, reencode="gzip")
    assert rt.status()["encoding"] == "br" and rt.status()["total"] == 10  # migrated, nothing added
    assert rt.init(src, dest, paths=names, reencode="br") == 10  # the same job: the rest is added
    assert rt.status()["finished"] == 4
    assert rt.execute() == 16
    assert sorted(CloudFiles(dest).list()) == names[4:]


def test_unreadable_original_ledgers_are_left_as_they_were(tmp_path, roots):
    src, dest = roots
    unknown = str(tmp_path / "lz4.db")
    original_ledger(unknown, src, dest, ["a", "b"], finished=["a"], reencode="lz4")
    before = dump(unknown)
    with pytest.raises(LedgerError, match="not understood"):
        ResumableTransfer(unknown).status()
    assert dump(unknown) == before and journal_mode(unknown) == "delete"

    nojob = str(tmp_path / "nojob.db")
    original_ledger(nojob, src, dest, ["a"])
    with sqlite3.connect(nojob) as conn:
        conn.execute("DELETE FROM xfermeta")
    conn.close()
    before = dump(nojob)
    with pytest.raises(LedgerError, match="init never completed"):
        ResumableTransfer(nojob).init(src, dest, paths=["a"])
    assert dump(nojob) == before


MIGRATION_WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from cloudfiles_dask.resumable import ResumableFileSet, ResumableTransfer

    mode, db = sys.argv[1], sys.argv[2]

    def say(msg):
        sys.stdout.write(msg + "\\n")
        sys.stdout.flush()

    if mode == "pause_in_migration":
        real = ResumableFileSet._copy_original_rows

        def paused(self, conn):
            real(self, conn)
            say("copied")  # new tables written, old ones renamed, nothing committed
            time.sleep(600)

        ResumableFileSet._copy_original_rows = paused
        ResumableTransfer(db).status()
    elif mode == "execute":
        barrier = sys.argv[3]
        say("started")
        while not os.path.exists(barrier):
            time.sleep(0.002)
        say(json.dumps({"transferred": ResumableTransfer(db, lease_msec=10_000).execute(block_size=4)}))
    """
)


@pytest.fixture
def migration_worker(tmp_path):
    script = tmp_path / "migration_worker.py"
    script.write_text(MIGRATION_WORKER)
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        procs.append(proc)
        return proc

    yield start
    stop_all(procs)


def test_sigkill_during_migration_leaves_the_original_ledger(tmp_path, roots, migration_worker):
    src, dest = roots
    files = make_tree(src, 30, seed=26)
    names = sorted(files)
    db = str(tmp_path / "orig.db")
    original_ledger(db, src, dest, names, finished=names[:12], reencode=False)
    before = dump(db)
    proc = migration_worker("pause_in_migration", db)
    assert read_line(proc) == "copied"
    assert kill(proc)
    assert os.path.exists(db + "-journal")  # the rollback journal of the unfinished migration
    assert dump(db) == before  # rolled back: the original's tables and rows, exactly
    assert journal_mode(db) == "delete"  # not even switched to WAL
    assert not any(name.startswith("cfdask_migrating_") for name in table_names(db))

    rt = ResumableTransfer(db)  # migrated for real now
    assert rt.status()["finished"] == 12 and rt.status()["encoding"] == "decode"
    assert rt.execute() == 18
    assert sorted(CloudFiles(dest).list()) == names[12:]


def test_clients_opening_an_original_ledger_together_migrate_it_once(tmp_path, roots, migration_worker):
    src, dest = roots
    files = make_tree(src, 120, seed=27)
    names = sorted(files)
    db = str(tmp_path / "orig.db")
    original_ledger(db, src, dest, names, finished=names[:20], reencode="gzip")
    barrier = str(tmp_path / "go")
    procs = [migration_worker("execute", db, barrier) for _ in range(3)]
    for proc in procs:
        assert read_line(proc) == "started"
    Path(barrier).touch()
    counts = [json.loads(finish(proc).splitlines()[-1])["transferred"] for proc in procs]
    assert sum(counts) == 100, counts
    rows = ResumableFileSet(db).rows()
    assert len(rows) == 120 and all(r["done"] for r in rows)
    assert {r["attempts"] for r in rows[20:]} == {1}  # each file handed out once
    ledger_consistent(db)
    got = stored(dest, names[20:])
    assert all(got[k] == (files[k], "gzip") for k in names[20:])


def test_cli_xfer_execute_resumes_an_original_ledger(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 25, seed=28)
    names = sorted(files)
    db = tmp_path / "orig.db"
    original_ledger(str(db), src, dest, names, finished=names[:5])
    proc = ok("xfer", "execute", str(db), cwd=tmp_path)
    assert b"25 of 25 files transferred" in proc.stdout
    assert not db.exists()  # finished: deleted, as the original's xfer execute
    assert sorted(CloudFiles(dest).list()) == names[5:]


@needs_original
def test_a_ledger_written_by_the_real_original_is_resumed(tmp_path, roots):
    src, dest = roots
    files = make_tree(src, 50, seed=29, gzip_every=5)
    names = sorted(files)
    db = str(tmp_path / "real.db")
    out = run_original(
        """
        import json, sys
        from cloudfiles.resumable_tools import ResumableTransfer
        db, src, dest = sys.argv[1:4]
        rt = ResumableTransfer(db, lease_msec=60000)
        rt.init(src, dest, reencode="gzip")           # lists the source itself
        taken = []
        for name in rt.rfs.next(block_size=7):        # some work done ...
            taken.append(name)
            if len(taken) == 21:
                break
        rt.rfs.mark_finished(taken[:14])              # ... 14 finished, 7 left leased: then killed
        print(json.dumps(taken))
        """,
        db, src, dest,
    )
    taken = json.loads(out)
    assert len(taken) == 21
    assert schema_of(db)[0].startswith("CREATE TABLE xfermeta (id INTEGER PRIMARY KEY AUTOINCREMENT, source")

    rt = ResumableTransfer(db, lease_msec=60_000)
    status = rt.status()
    assert (status["total"], status["finished"], status["leased"], status["encoding"]) == (50, 14, 0, "gzip")
    assert rt.execute(block_size=9) == 36
    remaining = sorted(set(names) - set(taken[:14]))
    assert sorted(CloudFiles(dest).list()) == remaining
    got = stored(dest, remaining)
    assert all(got[k] == (files[k], "gzip") for k in remaining)
