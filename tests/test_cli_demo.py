"""The main job, `cloudfiles demo`, run as the installed executable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest


def cloudfiles_exe() -> str:
    exe = shutil.which("cloudfiles", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.fail("the `cloudfiles` console script is not installed next to this Python")
    return exe


def test_help_lists_demo():
    out = subprocess.run([cloudfiles_exe(), "--help"], capture_output=True, text=True, check=True)
    assert "demo" in out.stdout


@pytest.mark.parametrize("codec, dask_workers", [("gzip", 2), ("zstd", 0)])
def test_demo_round_trip_verifies_every_file(tmp_path, codec, dask_workers):
    work = tmp_path / "work"
    proc = subprocess.run(
        [cloudfiles_exe(), "demo", "--files", "300", "--compression", codec, "--workdir", str(work),
         "--dask-workers", str(dask_workers)],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "verified: all 300 files identical" in proc.stdout
    route = f"file:// {codec} -> mem:// {codec} -> file:// br"
    # the demo deletes its first copy; the brotli and Dask's zstd copies stay in a given workdir
    brotli_files = [p for p in (work / "br").rglob("*") if p.is_file()]
    assert len(brotli_files) == 300 and all(p.suffix == ".br" for p in brotli_files)
    assert not [p for p in (work / codec).rglob("*") if p.is_file()]
    zstd_files = [p for p in (work / "dask-zstd").rglob("*") if p.is_file()]
    if dask_workers:
        assert f"{route} -> file:// zstd\n" in proc.stdout
        assert "Dask transfer_to file:// -> file:// (zstd, 2 workers)" in proc.stdout
        assert "-> Dask -> file://" in proc.stdout
        split = re.search(r"files per worker: (\d+), (\d+)\n", proc.stdout)
        assert split and int(split[1]) + int(split[2]) == 300, proc.stdout
        # the Bag read the Dask copy back on the workers and reduced it per kind of file
        assert "Bag: read on the workers, reduce" in proc.stdout
        kinds = re.findall(r"(blobs|meta|tables): (\d+) files", proc.stdout)
        assert sorted(kinds) == [("blobs", "100"), ("meta", "100"), ("tables", "100")], proc.stdout
        assert len(zstd_files) == 300 and all(p.suffix == ".zstd" for p in zstd_files)
    else:
        assert f"{route}\n" in proc.stdout and "Dask" not in proc.stdout
        assert zstd_files == []


def test_demo_bad_option_is_a_clear_error():
    proc = subprocess.run([cloudfiles_exe(), "demo", "--compression", "lz4"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "lz4" in proc.stderr
