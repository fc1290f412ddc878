"""The main job, `cloudfiles demo`, run as the installed executable."""

from __future__ import annotations

import os
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


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_demo_round_trip_verifies_every_file(tmp_path, codec):
    work = tmp_path / "work"
    proc = subprocess.run(
        [cloudfiles_exe(), "demo", "--files", "300", "--compression", codec, "--workdir", str(work)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "verified: all 300 files identical" in proc.stdout
    assert f"file:// {codec} -> mem:// {codec} -> file:// br" in proc.stdout
    # the demo deletes its first copy; the brotli copy stays in a user-given workdir
    brotli_files = [p for p in (work / "br").rglob("*") if p.is_file()]
    assert len(brotli_files) == 300 and all(p.suffix == ".br" for p in brotli_files)
    assert not [p for p in (work / codec).rglob("*") if p.is_file()]


def test_demo_bad_option_is_a_clear_error():
    proc = subprocess.run([cloudfiles_exe(), "demo", "--compression", "lz4"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "lz4" in proc.stderr
