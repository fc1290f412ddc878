"""Shared fixtures: fresh roots on the two local backends (mem:// and file://)."""

from __future__ import annotations

import os
from types import SimpleNamespace
from uuid import uuid4

import pytest

import cloudfiles_dask
from tests.conftest_s3 import moto_server, rclone_server, s3_env  # noqa: F401 (shared servers)
from tests.servers.gcs import FakeGCSServer
from tests.servers.s3 import SERVER_LOGS

BACKENDS = ["mem", "file"]

#: What a failing test shows of each server's log: what it logged during the test, at most this.
LOG_SHOWN = 6000
_LOGS_AT_START = pytest.StashKey[dict]()


def _log_sizes() -> dict[str, int]:
    sizes = {}
    for name, path in SERVER_LOGS.items():
        try:
            sizes[name] = os.path.getsize(path)
        except OSError:
            pass
    return sizes


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item.stash[_LOGS_AT_START] = _log_sizes()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report carries what each server logged while it ran (rclone logs its
    internal errors there, and nowhere else)."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    at_start = item.stash.get(_LOGS_AT_START, {})
    for name, path in SERVER_LOGS.items():
        start = at_start.get(name, 0)
        try:
            with open(path, "rb") as log:
                end = log.seek(0, os.SEEK_END)
                log.seek(max(start, end - LOG_SHOWN))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            continue
        if text.strip():
            report.sections.append((f"{name} logged during {report.when}", text))


@pytest.fixture
def make_cloudpath(tmp_path):
    """Factory: ``make_cloudpath("mem" | "file")`` gives a fresh, empty root cloudpath.

    mem:// roots live in their own uuid bucket; file:// roots are directories under tmp_path
    (not created: the first write makes them). mem:// data is cleared at teardown.
    """
    used_mem = []

    def make(kind: str) -> str:
        name = uuid4().hex
        if kind == "mem":
            used_mem.append(name)
            return f"mem://{name}/root"
        if kind == "file":
            return "file://" + str(tmp_path / "roots" / name)
        raise ValueError(kind)

    yield make
    if used_mem:
        cloudfiles_dask.clear_memory()


@pytest.fixture(params=BACKENDS)
def cloudpath(request, make_cloudpath):
    """A fresh root cloudpath string on each backend in turn."""
    return make_cloudpath(request.param)


def _local_dir(cloudpath: str) -> str:
    """The directory on disk of a file:// cloudpath."""
    assert cloudpath.startswith("file://"), cloudpath
    return cloudpath[len("file://") :]


def _write_on_disk(cloudpath: str, name: str, data: bytes) -> str:
    """Write ``data`` to ``<root>/<name>`` directly, bypassing the library."""
    full = os.path.join(_local_dir(cloudpath), name)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)
    return full


def _files_on_disk(cloudpath: str) -> list[str]:
    """Every file under a file:// root, relative, sorted (temporary files included)."""
    base = _local_dir(cloudpath)
    out = []
    for dirpath, _, filenames in os.walk(base):
        for name in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, name), base))
    return sorted(out)


@pytest.fixture
def disk():
    """Helpers for looking at / writing into file:// roots behind the library's back.

    (A fixture rather than importable functions: ``from conftest import ...`` is ambiguous once
    sub-directories bring their own conftest.py.)
    """
    return SimpleNamespace(dir=_local_dir, write=_write_on_disk, files=_files_on_disk)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """One fake-gcs-server for the whole test session (127.0.0.1, free port)."""
    server = FakeGCSServer(log_path=str(tmp_path_factory.mktemp("fake-gcs") / "server.log"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
