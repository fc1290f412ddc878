"""Fixtures for S3 tests: a moto server and an ``rclone serve s3`` server per test session, an
isolated AWS environment per test, and fresh buckets.

Import the fixtures into a test module (``from tests.conftest_s3 import *``). The servers are
process-wide singletons, so every module that imports these fixtures shares the same two
servers; they are stopped at the end of the session (and at interpreter exit as a fallback).
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass
from uuid import uuid4

import pytest

from tests.servers import s3 as servers

_STARTED: dict[str, servers.ServerProcess] = {}
_START_LOCK = threading.Lock()


def _stop_all() -> None:
    for server in list(_STARTED.values()):
        server.stop()
    _STARTED.clear()


atexit.register(_stop_all)


def _server(kind: str, tmp_factory) -> servers.ServerProcess:
    with _START_LOCK:
        server = _STARTED.get(kind)
        if server is None or server.proc is None or server.proc.poll() is not None:
            log_dir = str(tmp_factory.mktemp(f"{kind}-logs"))
            if kind == "moto":
                server = servers.moto_server(log_dir)
            else:
                server = servers.rclone_server(str(tmp_factory.mktemp("rclone-root")), log_dir)
            server.start()
            _STARTED[kind] = server
        return server


@dataclass
class S3Server:
    """A running local S3 server and how to reach it."""

    kind: str  # "moto" | "rclone"
    endpoint: str
    process: servers.ServerProcess

    def admin(self):
        return servers.admin_client(self.endpoint)

    def new_bucket(self) -> str:
        name = f"cfd-{uuid4().hex[:20]}"
        self.admin().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    server = _server("moto", tmp_path_factory)
    yield S3Server("moto", server.endpoint, server)
    server.stop()


@pytest.fixture(scope="session")
def rclone_server(tmp_path_factory):
    server = _server("rclone", tmp_path_factory)
    yield S3Server("rclone", server.endpoint, server)
    server.stop()


@pytest.fixture
def s3_env(monkeypatch, tmp_path):
    """Test credentials and an environment that cannot reach anything but 127.0.0.1: no
    instance-metadata lookups, no proxies, no user secrets files or ~/.aws config."""
    secrets_home = tmp_path / "cloudvolume"
    (secrets_home / "secrets").mkdir(parents=True)
    files_home = tmp_path / "cloudfiles"
    files_home.mkdir()
    settings = {
        "AWS_ACCESS_KEY_ID": servers.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": servers.SECRET_KEY,
        "AWS_DEFAULT_REGION": servers.REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "CLOUD_VOLUME_DIR": str(secrets_home),
        "CLOUD_FILES_DIR": str(files_home),
        "CLOUD_FILES_RETRY_BASE": "0.01",
        "CLOUD_FILES_RETRY_MAX": "0.05",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
                 "https_proxy", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return secrets_home / "secrets"


@pytest.fixture(params=["moto", "rclone"])
def s3_server(request, s3_env):
    """Each local S3 server in turn."""
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture
def bucket(s3_server) -> str:
    """A fresh, empty bucket on ``s3_server``."""
    return s3_server.new_bucket()


@pytest.fixture
def s3_root(s3_server, bucket) -> str:
    """A fresh cloudpath ``s3://http://127.0.0.1:PORT/BUCKET/root``."""
    return f"s3://{s3_server.endpoint}/{bucket}/root"


__all__ = ["S3Server", "bucket", "moto_server", "rclone_server", "s3_env", "s3_root", "s3_server"]


@pytest.fixture
def wire_seen(monkeypatch):
    """The S3 lean path's requests, recorded as ``METHOD`` or ``METHOD?names`` (query names
    sorted)."""
    from cloudfiles_dask.backends import _s3wire

    seen: list[str] = []
    real = _s3wire.Wire.request

    def note(self, method, key, headers=None, body=None, query=None, stream=False):
        seen.append(method + ("?" + ",".join(sorted(query)) if query else ""))
        return real(self, method, key, headers, body, query, stream)

    monkeypatch.setattr(_s3wire.Wire, "request", note)
    return seen
