"""The backend contract on S3, against two independent local servers: moto and rclone.

Each test gets a fresh bucket; the root is ``s3://http://127.0.0.1:PORT/BUCKET/root``, so keys
live under a prefix and the prefix handling is exercised too.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_s3 are parameters here)

from __future__ import annotations

import pytest

from tests.conftest_s3 import moto_server, rclone_server, s3_env  # noqa: F401 (fixtures)

from .backend_contract import BackendContract


class TestS3BackendOnMoto(BackendContract):
    @pytest.fixture
    def cloudpath(self, s3_env, moto_server):
        return f"s3://{moto_server.endpoint}/{moto_server.new_bucket()}/root"


class TestS3BackendOnRclone(BackendContract):
    @pytest.fixture
    def cloudpath(self, s3_env, rclone_server):
        return f"s3://{rclone_server.endpoint}/{rclone_server.new_bucket()}/root"


class TestS3BackendAtBucketRoot(BackendContract):
    """The root is the bucket itself (no key prefix), on rclone (the faster server)."""

    @pytest.fixture
    def cloudpath(self, s3_env, rclone_server):
        return f"s3://{rclone_server.endpoint}/{rclone_server.new_bucket()}/"


class TestS3BackendOnRcloneSDK(BackendContract):
    """The same contract with the lean path switched off: every call through botocore (the path
    used for credentials only botocore's default chain can find)."""

    @pytest.fixture
    def cloudpath(self, s3_env, rclone_server, monkeypatch):
        monkeypatch.setenv("CLOUD_FILES_TRANSPORT", "sdk")
        return f"s3://{rclone_server.endpoint}/{rclone_server.new_bucket()}/root"

    def test_transport_is_the_sdk(self, backend) -> None:
        assert backend._wire() is None


class TestS3TransportChoice:
    def test_lean_path_by_default(self, s3_env, rclone_server) -> None:
        from cloudfiles_dask.backends.base import BackendOptions
        from cloudfiles_dask.backends.s3 import S3Backend
        from cloudfiles_dask.paths import extract

        path = extract(f"s3://{rclone_server.endpoint}/{rclone_server.new_bucket()}/root")
        assert S3Backend(path, BackendOptions())._wire() is not None

    def test_bad_transport_name_is_named(self, s3_env, rclone_server, monkeypatch) -> None:
        from cloudfiles_dask import CloudFiles

        monkeypatch.setenv("CLOUD_FILES_TRANSPORT", "rust")
        cf = CloudFiles(f"s3://{rclone_server.endpoint}/{rclone_server.new_bucket()}/root")
        with pytest.raises(ValueError, match="CLOUD_FILES_TRANSPORT.*'rust'"):
            cf.put("x", b"1")
