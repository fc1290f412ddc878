"""The backend contract on the two in-process backends: mem:// and file://."""

from __future__ import annotations

from uuid import uuid4

import pytest

import cloudfiles_dask

from .backend_contract import BackendContract


class TestMemoryBackend(BackendContract):
    @pytest.fixture
    def cloudpath(self):
        yield f"mem://contract-{uuid4().hex}/root"
        cloudfiles_dask.clear_memory()


class TestLocalBackend(BackendContract):
    @pytest.fixture
    def cloudpath(self, tmp_path):
        return "file://" + str(tmp_path / "root")


class TestLocalBackendWithLocking(BackendContract):
    @pytest.fixture
    def cf(self, tmp_path):
        return cloudfiles_dask.CloudFiles("file://" + str(tmp_path / "root"), locking=True, lock_dir=str(tmp_path / "locks"))

    @pytest.fixture
    def cloudpath(self, tmp_path):
        return "file://" + str(tmp_path / "root")
