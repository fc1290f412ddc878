"""``cloudfiles sweep``: the installed command, over what real writers killed with SIGKILL (and
live ones) left in a file:// tree."""

from __future__ import annotations

import json
import os
import sys
import time

import pytest

from cloudfiles_dask import _owners
from cloudfiles_dask.backends import local
from cloudfiles_dask.cli.sweep import parse_age, show_age
from tests.test_cli import failing, ok
from tests.test_debris_local import hidden_files, kill, mid_write, writer  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL and POSIX processes")


@pytest.fixture
def killed(tmp_path, writer):  # noqa: F811 - the fixture imported above
    """A tree ``dest`` with a file and the temporary file of a writer killed mid-write:
    ``(dest, temp file, the writer's pid)``."""
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "real.bin").write_bytes(b"real")
    proc, temp = mid_write(writer, dest, "sub/big.bin")
    kill(proc)
    return dest, temp, proc.pid


def test_sweep_shows_what_a_killed_writer_left_and_leaves_it(tmp_path, killed):
    dest, temp, pid = killed
    old = dest / (local.TMP_PREFIX + "00112233aabbccdd")  # an old-style name: no owner
    old.write_bytes(b"old")
    os.utime(old, (time.time() - 7200, time.time() - 7200))

    out = ok("sweep", "dest", cwd=tmp_path).stdout.decode()  # the default age: one hour
    [line, summary] = out.splitlines()
    assert line.split()[:2] == ["temp-file", "3"] and line.endswith(str(old))
    assert " stale " in line and " 2h " in line
    assert summary == f"1 found older than 1h under file://{dest}, 3 B; --delete removes them"

    out = ok("sweep", str(dest), "--older-than", "0", cwd=tmp_path).stdout.decode()
    lines = out.splitlines()
    [mine] = [line for line in lines if line.endswith(str(temp))]
    assert f"{_owners.this_host()}:{pid}" in mine and " orphaned " in mine and "MiB" in mine
    assert lines[-1].startswith(f"2 found older than 0s under file://{dest}")
    assert temp.exists() and old.exists()  # only shown


def test_sweep_delete_removes_and_counts(tmp_path, killed):
    dest, temp, _ = killed
    out = ok("sweep", "dest", "--older-than", "0", "--delete", cwd=tmp_path).stdout.decode()
    [line, summary] = out.splitlines()
    assert " removed " in line and line.endswith(str(temp))
    assert summary == f"removed 1 of 1 found older than 0s under file://{dest}"
    assert hidden_files(dest) == [] and (dest / "real.bin").read_bytes() == b"real"
    out = ok("sweep", "dest", "--older-than", "0", "--delete", cwd=tmp_path).stdout.decode()
    assert out == f"nothing older than 0s under file://{dest}\n"


def test_sweep_never_removes_a_live_writers_file(tmp_path, writer):  # noqa: F811
    dest = tmp_path / "dest"
    proc, temp = mid_write(writer, dest, "big.bin")
    out = ok("sweep", "dest", "--older-than", "0", "--delete", cwd=tmp_path).stdout.decode()
    [line, summary] = out.splitlines()
    assert " live, kept " in line and f"{_owners.this_host()}:{proc.pid}" in line
    assert summary.startswith("removed 0 of 1 found") and summary.endswith("1 kept (live writers)")
    assert temp.exists()
    proc.stdin.close()
    assert proc.wait(60) == 0
    assert hidden_files(dest) == [] and (dest / "big.bin").stat().st_size == 2 << 20


def test_sweep_json(tmp_path, killed):
    dest, temp, pid = killed
    shown = json.loads(ok("sweep", "dest", "--older-than", "0", "--json", cwd=tmp_path).stdout)
    assert {k: shown[k] for k in ("path", "older_than", "delete", "found", "removed", "live")} == {
        "path": f"file://{dest}", "older_than": 0.0, "delete": False, "found": 1, "removed": 0,
        "live": 0}
    [item] = shown["items"]
    assert item["kind"] == "temp-file" and item["handle"] == str(temp) and item["key"] is None
    assert item["owner"] == f"{_owners.this_host()}:{pid}" and item["orphaned"] is True
    assert item["size"] == shown["bytes"] == temp.stat().st_size
    assert item["live"] is False and item["removed"] is False and item["age"] >= 0

    done = json.loads(ok("sweep", "dest", "--older-than", "0", "--delete", "--json",
                         cwd=tmp_path).stdout)
    assert (done["found"], done["removed"], done["items"][0]["removed"]) == (1, 1, True)
    assert not temp.exists()


@pytest.mark.parametrize("given, seconds", [("90", 90), ("2.5", 2.5), ("30m", 1800), ("2h", 7200),
                                            ("1d", 86400), ("1w", 604800), ("1h30m", 5400),
                                            (" 2H ", 7200)])
def test_ages(given, seconds):
    assert parse_age(given) == seconds


def test_the_age_given_reaches_the_sweep(tmp_path):
    (tmp_path / "d").mkdir()
    shown = json.loads(ok("sweep", "d", "--older-than", "1h30m", "--json", cwd=tmp_path).stdout)
    assert shown["older_than"] == 5400 and shown["items"] == []


@pytest.mark.parametrize("bad", ["2x", "-5", "h", "1h30", "", "1.h"])
def test_a_bad_age_is_a_clear_error(tmp_path, bad):
    (tmp_path / "d").mkdir()
    assert parse_age(bad) is None
    proc = failing("sweep", "d", "--older-than", bad, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert "Invalid value for '--older-than'" in err and f"{bad!r} is not an age" in err
    assert "30m, 2h, 1d" in err


def test_paths_that_cannot_be_swept_are_named(tmp_path):
    (tmp_path / "file.bin").write_bytes(b"x")
    err = failing("sweep", "nowhere", cwd=tmp_path).stderr.decode()
    assert err == "cloudfiles sweep: nowhere: no such directory\n"
    err = failing("sweep", "file.bin", cwd=tmp_path).stderr.decode()
    assert err == "cloudfiles sweep: file.bin: not a directory\n"
    err = failing("sweep", "dir/*", cwd=tmp_path).stderr.decode()
    assert "not a wildcard" in err


def test_memory_and_help(tmp_path):
    out = ok("sweep", "mem://nothing/here", "--older-than", "0", cwd=tmp_path).stdout.decode()
    assert out == "nothing older than 0s under mem://nothing/here\n"
    help_text = ok("sweep", "--help", cwd=tmp_path).stdout.decode()
    assert "Examples" in help_text and "multipart" in help_text and "[default: 1h]" in help_text


def test_ages_are_shown_short():
    assert [show_age(s) for s in (None, 0, 59, 60, 3600, 3660, 86400, 90000)] == [
        "-", "0s", "59s", "1m", "1h", "1h01m", "1d", "1d01h"]


@pytest.mark.parametrize("processes", ["1", "2"])
def test_cp_resumable_removes_what_dead_writers_left_where_it_writes(tmp_path, processes):
    for i in range(4):
        (tmp_path / "src" / "d").mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / "d" / f"f{i}").write_bytes(b"%d" % i)
    dead = 2**22 + 1  # above Linux's largest pid: no process has it
    name = f"{local.TMP_PREFIX}{_owners.this_host()}-{dead}-{int(time.time() * 1000)}-abcdef"
    written, untouched = tmp_path / "dest" / "src" / "d", tmp_path / "dest" / "src"
    written.mkdir(parents=True)
    for directory in (written, untouched):
        (directory / name).write_bytes(b"left")
    ok("-p", processes, "cp", "--resumable", "-r", "src", "dest", cwd=tmp_path)
    assert sorted(os.listdir(written)) == ["f0", "f1", "f2", "f3"]
    assert (untouched / name).exists()  # a directory the copy did not write into
