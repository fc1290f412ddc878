"""The backend contract on gs://, against fake-gcs-server (a real HTTP server on 127.0.0.1).

One server per test session; every test gets a fresh bucket, and STORAGE_EMULATOR_HOST is set
(through monkeypatch) only while a test of this file runs.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from .backend_contract import BackendContract


@pytest.fixture
def gcs_bucket(gcs_server, monkeypatch) -> str:
    """A fresh, empty bucket on the emulator, with the environment pointing at it."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    name = "contract-" + uuid4().hex[:16]
    gcs_server.create_bucket(name)
    return name


class TestGCSBackend(BackendContract):
    @pytest.fixture
    def cloudpath(self, gcs_bucket) -> str:
        return f"gs://{gcs_bucket}/root"


class TestGCSBackendAtBucketRoot(BackendContract):
    """The same contract with keys at the top of the bucket (no key prefix)."""

    @pytest.fixture
    def cloudpath(self, gcs_bucket) -> str:
        return f"gs://{gcs_bucket}/"
