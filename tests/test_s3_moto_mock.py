"""Code tested with moto's in-process mock (``mock_aws``): every S3 request of the library goes
where botocore's go, into the mock, and never to the network. No server runs here; every socket
connection attempt is recorded and refused."""

from __future__ import annotations

import io
import socket

import pytest

moto = pytest.importorskip("moto")

from cloudfiles_dask import CloudFiles  # noqa: E402
from cloudfiles_dask.backends import _s3wire  # noqa: E402


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError(f"this test opens no socket (to {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.fixture
def mocked(monkeypatch, no_network):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "CLOUD_FILES_RETRY_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CLOUD_FILES_TRANSPORT", raising=False)
    with moto.mock_aws():
        import boto3

        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="mocked")
        yield no_network


def test_every_call_goes_into_the_mock(mocked):
    assert _s3wire.botocore_mocked()
    cf = CloudFiles("s3://mocked/p/", composite_upload_threshold=5 * 1024 * 1024)
    cf.put("x", b"1")
    assert cf.get("x") == b"1"
    files = [(f"k{i}", f"v{i}".encode()) for i in range(30)]
    assert cf.puts(files, compress="gzip") == 30
    assert cf.get([k for k, _ in files], return_dict=True) == dict(files)
    assert cf.exists(["x", "nope"]) == {"x": True, "nope": False}
    assert cf.size("x") == 1 and cf.head("x")["Content-Length"] == 1
    big = bytes(range(256)) * (48 * 1024)  # 12 MiB: a multipart upload, read back in ranges
    cf.put("big", io.BytesIO(big))
    assert cf.get("big") == big
    assert sorted(cf.list()) == sorted(["x", "big", *(k for k, _ in files)])
    copy = CloudFiles("s3://mocked/q/")
    cf.transfer_to(copy, ["x", "big"])
    assert copy.get("big") == big
    cf.delete(["x", "big"])
    assert cf.exists("x") is False
    assert mocked == []


def test_the_mock_is_seen_by_a_backend_made_before_it_started(monkeypatch, no_network):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("CLOUD_FILES_TRANSPORT", raising=False)
    cf = CloudFiles("s3://early/p/")
    backend = cf.backend
    assert not _s3wire.botocore_mocked()
    assert backend._wire() is not None  # outside the mock: our own signed requests
    with moto.mock_aws():
        import boto3

        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="early")
        cf.put("a", b"b")
        assert cf.get("a") == b"b" and cf.backend is backend
    assert no_network == []
