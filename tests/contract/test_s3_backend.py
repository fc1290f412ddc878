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
