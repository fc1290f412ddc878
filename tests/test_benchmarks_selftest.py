"""The benchmark harness works end to end (our client only, tiny counts, real servers)."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_benchmark_selftest_runs_every_workload_kind():
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--selftest"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "selftest: 11 runs, 0 failed" in proc.stdout
    for title in ("S3 GET", "S3 PUT", "GCS GET", "GCS PUT", "S3 list", "file:// read", "on Dask",
                  "objects of mixed sizes", "into a Dask Bag"):
        assert title in proc.stdout
    # the Dask rows read their task stream after timing (per-task overhead, issue 19)
    assert "task overhead" in proc.stdout
