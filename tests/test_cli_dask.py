"""``cloudfiles cp --dask`` and ``cloudfiles xfer execute --dask``: the installed executable
against a real Dask LocalCluster started here (its scheduler's address), or a local cluster the
command starts itself (``local:N``), and the errors for a bad address or without Dask."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from cloudfiles_dask import CloudFiles  # noqa: E402
from tests.test_cli import failing, ok  # noqa: E402

HINT = "pip install 'cloudfiles-dask[dask]'"


@pytest.fixture(scope="module")
def cluster_client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)
            yield client


@pytest.fixture
def address(cluster_client):
    return cluster_client.scheduler.address


def _batches(stream) -> int:
    return len([task for task in stream.data if task["key"].startswith("transfer_batch")])


def _tree(root: Path, n: int) -> dict[str, bytes]:
    data = {f"d{i % 3}/f{i:03d}.txt": (f"file {i} " * (i % 50 + 1)).encode() for i in range(n)}
    for key, value in data.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(value)
    return data


def _decoded(root: Path, keys: list[str]) -> dict[str, bytes]:
    return CloudFiles(f"file://{root}").get(keys, return_dict=True)


def test_cp_dask_address_copies_a_tree_on_the_cluster(tmp_path, address, cluster_client):
    data = _tree(tmp_path / "src", 150)
    with distributed.get_task_stream(cluster_client) as stream:
        proc = ok("cp", "--dask", address, "--progress", "-c", "gzip", "-r",
                  str(tmp_path / "src"), str(tmp_path / "dst"), cwd=tmp_path)
    assert _batches(stream) >= 2  # the cluster's workers did the copy
    assert _decoded(tmp_path / "dst", sorted(data)) == data
    stored = {p.relative_to(tmp_path / "dst").as_posix() for p in (tmp_path / "dst").rglob("*")
              if p.is_file()}
    assert stored == {k + ".gz" for k in data}  # encoded as asked, by the workers
    assert b"150/150" in proc.stderr  # the bar reached every file


def test_xfer_execute_dask_drains_the_ledger_on_the_cluster(tmp_path, address, cluster_client):
    data = _tree(tmp_path / "src", 120)
    db = str(tmp_path / "job.db")
    ok("xfer", "init", str(tmp_path / "src"), str(tmp_path / "dst"), "--db", db, cwd=tmp_path)
    with distributed.get_task_stream(cluster_client) as stream:
        proc = ok("xfer", "execute", db, "--dask", address, "-b", "25", "--lease-msec", "30000",
                  cwd=tmp_path)
    assert _batches(stream) == 5  # a task per block of 25
    assert b"120 of 120 files transferred" in proc.stdout
    assert not os.path.exists(db)  # done: the ledger is deleted
    assert _decoded(tmp_path / "dst", sorted(data)) == data


def test_cp_dask_local_starts_a_cluster_for_the_command(tmp_path):
    data = _tree(tmp_path / "src", 30)
    ok("cp", "--dask", "local:1", "-r", str(tmp_path / "src"), str(tmp_path / "dst"),
       cwd=tmp_path, timeout=120)
    assert _decoded(tmp_path / "dst", sorted(data)) == data
    # mem:// lives in the command's process, which its worker process cannot see: refused
    # (without --dask the same copy succeeds)
    proc = failing("cp", "--dask", "local:1", "-r", str(tmp_path / "src"), "mem://cli-dask/out",
                   cwd=tmp_path, timeout=120)
    assert b"mem://cli-dask/out" in proc.stderr and b"Dask workers" in proc.stderr
    ok("cp", "-r", str(tmp_path / "src"), "mem://cli-dask/out", cwd=tmp_path)


def test_bad_dask_arguments_are_clear_errors(tmp_path, address):
    _tree(tmp_path / "src", 3)
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    proc = failing("cp", "--dask", "banana", "-r", src, dst, cwd=tmp_path)
    assert b"--dask banana: not a scheduler address" in proc.stderr
    proc = failing("cp", "--dask", "local:0", "-r", src, dst, cwd=tmp_path)
    assert b"needs N >= 1" in proc.stderr
    proc = failing("-p", "2", "cp", "--dask", address, "-r", src, dst, cwd=tmp_path)
    assert b"-p and --dask cannot be combined" in proc.stderr
    proc = failing("cp", "--dask", address, str(tmp_path / "src" / "d0" / "f000.txt"), "-",
                   cwd=tmp_path)
    assert b"--dask cannot copy to stdout" in proc.stderr
    # a port nothing listens on: Dask's connect timeout (here 1 s) decides how long it tries
    proc = failing("cp", "--dask", "tcp://127.0.0.1:9", "-r", src, dst, cwd=tmp_path,
                   env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    assert b"--dask tcp://127.0.0.1:9: cannot reach a Dask scheduler there" in proc.stderr
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("args", [["cp", "--dask", "local", "SRC", "DST"],
                                  ["xfer", "execute", "DB", "--dask", "local"]])
def test_without_dask_the_error_names_the_extra_to_install(tmp_path, args):
    (tmp_path / "a.txt").write_bytes(b"a")
    (tmp_path / "job.db").write_bytes(b"")
    args = [{"SRC": str(tmp_path / "a.txt"), "DST": str(tmp_path / "b.txt"),
             "DB": str(tmp_path / "job.db")}.get(a, a) for a in args]
    code = ("import sys; sys.modules['distributed'] = None  # as if Dask were not installed\n"
            "from cloudfiles_dask.cli import main\n"
            f"sys.argv = ['cloudfiles', *{args!r}]\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert HINT in proc.stderr and "Traceback" not in proc.stderr
