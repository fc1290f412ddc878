"""Retry policy, integrity checks and secrets lookup, at unit level."""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import pickle
import random
import shutil
from pathlib import Path

import pytest

import cloudfiles_dask
from cloudfiles_dask import CloudFiles, _retry, secrets
from cloudfiles_dask._engine import integrity
from cloudfiles_dask.exceptions import CRC32CIntegrityError, MD5IntegrityError
from tests.servers.gcs import service_account as service_account_info


class Flaky:
    def __init__(self, failures: int, error: type[Exception] = ConnectionError):
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self, value):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"transient {self.calls}")
        return value


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_RETRY_BASE", "0.001")
    monkeypatch.setenv("CLOUD_FILES_RETRY_MAX", "0.004")


def retry_connection_errors(e: BaseException) -> bool:
    return isinstance(e, ConnectionError)


def test_retry_recovers_from_transient_errors(fast_retries):
    fn = Flaky(4)
    assert _retry.call(fn, retry_connection_errors, "ok") == "ok"
    assert fn.calls == 5


def test_retry_gives_up_after_seven_attempts(fast_retries):
    fn = Flaky(100)
    with pytest.raises(ConnectionError, match="transient 7"):
        _retry.call(fn, retry_connection_errors, "never")
    assert fn.calls == 7


def test_non_retryable_error_surfaces_at_once(fast_retries):
    fn = Flaky(1, PermissionError)
    with pytest.raises(PermissionError):
        _retry.call(fn, retry_connection_errors, "x")
    assert fn.calls == 1


def test_backoff_window_doubles_and_is_capped(monkeypatch):
    sleeps = []
    monkeypatch.setattr(_retry.time, "sleep", sleeps.append)
    import tenacity

    monkeypatch.setattr(tenacity.nap, "sleep", sleeps.append, raising=False)
    monkeypatch.setattr(_retry.random, "uniform", lambda lo, hi: hi)  # the top of each window
    import random as stdlib_random

    monkeypatch.setattr(stdlib_random, "uniform", lambda lo, hi: hi)
    with pytest.raises(ConnectionError):
        _retry.call(Flaky(100), retry_connection_errors, "x")
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    sleeps.clear()
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "10")
    monkeypatch.setenv("CLOUD_FILES_RETRY_MAX", "5")
    with pytest.raises(ConnectionError):
        _retry.call(Flaky(100), retry_connection_errors, "x")
    assert max(sleeps) == 5 and len(sleeps) == 9


def test_md5_and_crc32c_matches():
    data = os.urandom(1000)
    assert integrity.matches(data, hashlib.md5(data).hexdigest(), "md5")
    assert not integrity.matches(data + b"x", hashlib.md5(data).hexdigest(), "md5")
    import google_crc32c

    crc = base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()
    assert integrity.matches(data, crc, "crc32c")
    assert not integrity.matches(data[:-1], crc, "crc32c")


def test_s3_etags_plain_multipart_and_synthetic():
    data = os.urandom(20 * integrity.MiB + 123)
    assert integrity.matches(data, '"' + hashlib.md5(data).hexdigest() + '"', "etag")
    for part in (8 * integrity.MiB, 15 * integrity.MiB):
        etag = integrity.multipart_etag(data, part)
        assert etag.endswith(f"-{-(-len(data) // part)}")
        assert integrity.matches(data, etag, "etag")
        assert not integrity.matches(data[:-1] + b"\0", etag, "etag")
    odd = integrity.multipart_etag(data, 5 * integrity.MiB + 7)
    assert not integrity.matches(data, odd, "etag")
    assert integrity.matches(data, odd, "etag", part_size=5 * integrity.MiB + 7)
    assert integrity.matches(data, "12345-", "etag")  # synthetic NFS ETag: not a checksum


def test_md5_computed_while_receiving_is_what_gets_compared(tmp_path):
    data = os.urandom(3000)
    good = hashlib.md5(data).hexdigest()
    path = tmp_path / "f"
    path.write_bytes(data)
    for expected, kind in [(good, "md5"), (f'"{good}"', "etag")]:
        assert integrity.matches(data, expected, kind, md5=good)
        assert not integrity.matches(data, expected, kind, md5="0" * 32)  # the bytes that arrived
        assert integrity.matches_file(str(path), expected, kind, md5=good)
        assert not integrity.matches_file(str(path), expected, kind, md5="0" * 32)
    # a crc32c or multipart ETag is still computed from the bytes
    assert integrity.matches(data, integrity.crc32c_b64(data), "crc32c", md5="0" * 32)


def test_mismatch_errors_name_the_path():
    err = integrity.mismatch("s3://b/k", "abc", "etag", b"data")
    assert isinstance(err, MD5IntegrityError) and "s3://b/k" in str(err)
    err = integrity.mismatch("gs://b/k", "AAAAAA==", "crc32c", b"data")
    assert isinstance(err, CRC32CIntegrityError) and "gs://b/k" in str(err)


@pytest.fixture
def secret_dirs(tmp_path, monkeypatch):
    volume, files = tmp_path / "cv", tmp_path / "cf"
    (volume / "secrets").mkdir(parents=True)
    (files / "secrets").mkdir(parents=True)
    monkeypatch.setenv("CLOUD_VOLUME_DIR", str(volume))
    monkeypatch.setenv("CLOUD_FILES_DIR", str(files))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    return volume / "secrets", files / "secrets"


def test_secretpath_order(secret_dirs):
    volume, files = secret_dirs
    (files / "x.json").write_text("{}")
    assert secrets.secretpath("x.json") == str(files / "x.json")
    (volume / "x.json").write_text("{}")
    assert secrets.secretpath("x.json") == str(volume / "x.json")
    assert secrets.secretpath("missing.json") == str(volume / "missing.json")


def test_aws_credentials_files_env_and_bucket_prefix(secret_dirs, monkeypatch):
    volume, _ = secret_dirs
    assert secrets.aws_credentials("b") == {"AWS_DEFAULT_REGION": "us-east-1"}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    creds = secrets.aws_credentials("b")
    assert creds["AWS_ACCESS_KEY_ID"] == "env-id" and "AWS_SESSION_TOKEN" not in creds  # no KeyError
    (volume / "aws-secret.json").write_text(json.dumps({"AWS_ACCESS_KEY_ID": "file-id", "AWS_SECRET_ACCESS_KEY": "s"}))
    assert secrets.aws_credentials("b")["AWS_ACCESS_KEY_ID"] == "file-id"
    (volume / "b-aws-secret.json").write_text(json.dumps({"aws_access_key_id": "bucket-id", "aws_secret_access_key": "s"}))
    assert secrets.aws_credentials("b")["AWS_ACCESS_KEY_ID"] == "bucket-id"
    assert secrets.aws_credentials("other")["AWS_ACCESS_KEY_ID"] == "file-id"
    (volume / "matrix-secret.json").write_text(json.dumps({"AWS_ACCESS_KEY_ID": "alias-id", "AWS_SECRET_ACCESS_KEY": "s"}))
    assert secrets.aws_credentials("b", service="matrix")["AWS_ACCESS_KEY_ID"] == "alias-id"


def test_bad_secret_file_error_does_not_leak_content(secret_dirs):
    volume, _ = secret_dirs
    (volume / "aws-secret.json").write_text('{"AWS_SECRET_ACCESS_KEY": "hunter2"')
    with pytest.raises(ValueError) as info:
        secrets.aws_credentials("b")
    assert "hunter2" not in str(info.value) and "aws-secret.json" in str(info.value)


def test_fingerprint_distinguishes_credentials_without_revealing_them():
    a = secrets.fingerprint({"AWS_SECRET_ACCESS_KEY": "one"})
    b = secrets.fingerprint({"AWS_SECRET_ACCESS_KEY": "two"})
    assert a != b and a == secrets.fingerprint({"AWS_SECRET_ACCESS_KEY": "one"})
    assert "one" not in a


def test_secrets_hidden_in_repr(tmp_path):
    cf = CloudFiles("file://" + str(tmp_path), secrets={"token": "hunter2"})
    assert "hunter2" not in repr(cf) and "<hidden>" in repr(cf)
    assert pickle.loads(pickle.dumps(cf)).secrets == {"token": "hunter2"}  # given explicitly: kept


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="no C compiler: the optional md5 lanes module cannot be built")
def test_the_md5_lanes_kernel_is_built_where_there_is_a_compiler():
    """The optional C module is built at install time: where a compiler is there, a missing
    build (a broken source, a packaging slip) must fail here rather than silently cost ten
    times the CPU of a large upload's md5s."""
    from cloudfiles_dask import _checksums as base

    assert base.MD5_KERNEL is not None


@pytest.mark.parametrize("kernel", ["lanes", "hashlib"])
def test_part_md5s_are_hashlibs(kernel, monkeypatch):
    """Every part's md5, whatever the part size around md5's 64-byte blocks and its 56-byte
    padding limit, however many parts (groups of sixteen lanes and a partial one), for bytes,
    bytearrays and memoryviews, with the kernel and without it."""
    from cloudfiles_dask import _checksums as base

    if kernel == "lanes" and base.MD5_KERNEL is None:
        pytest.skip("the md5 lanes kernel is not available here")
    if kernel == "hashlib":
        monkeypatch.setattr(base, "MD5_KERNEL", None)
    rng = random.Random(5)
    for part in (1, 7, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 4096 + 3):
        for parts in (0, 1, 2, 3, 15, 16, 17, 33):
            for tail in (0, 1, part - 1):
                size = parts * part + (tail if tail < part else 0)
                data = rng.randbytes(size)
                expected = [hashlib.md5(data[i:i + part]).digest() for i in range(0, size, part)]
                shape = [bytes, bytearray, memoryview][(part + parts + tail) % 3]
                assert base.part_md5s(shape(data), part) == expected, (part, parts, tail)


def test_md5_lanes_kernel_direct_calls():
    """The C function alone: a short last part, a lone part, and clear errors for bad input."""
    from cloudfiles_dask import _checksums as base

    if base.MD5_KERNEL is None:
        pytest.skip("the md5 lanes kernel is not available here")
    md5_parts = base.MD5_KERNEL.md5_parts
    data = os.urandom(5 * integrity.MiB + 3)
    assert md5_parts(data, integrity.MiB) == [hashlib.md5(data[i:i + integrity.MiB]).digest()
                                    for i in range(0, len(data), integrity.MiB)]
    assert md5_parts(b"abc", 10) == [hashlib.md5(b"abc").digest()]
    assert md5_parts(b"", 10) == []
    with pytest.raises(ValueError, match="part_size must be positive, not 0"):
        md5_parts(b"abc", 0)
    with pytest.raises(TypeError):
        md5_parts("text", 4)
    with pytest.raises(BufferError):
        md5_parts(memoryview(data)[::2], 4)  # not contiguous


def test_md5_lanes_kernel_reads_file_parts(tmp_path):
    """The parts of a file hashed by the kernel reading it (pread, 64 KiB of each lane per
    round): every part size around the round and block sizes, from any offset, in groups of
    sixteen and fewer; the file's position is left alone; a file that ends too soon, a descriptor
    that cannot be read and bad sizes are clear errors."""
    from cloudfiles_dask import _checksums as base

    if base.MD5_KERNEL is None:
        pytest.skip("the md5 lanes kernel is not available here")
    md5_file_parts = base.MD5_KERNEL.md5_file_parts
    data = random.Random(7).randbytes(3 * integrity.MiB + 777)
    (tmp_path / "f").write_bytes(data)
    with open(tmp_path / "f", "rb") as f:
        fd = f.fileno()
        f.read(10)
        for part in (1, 55, 56, 64, 65, 65535, 65536, 65537, 2 * 65536 + 63, 100_000):
            for offset in (0, 3, 1000):
                for count in (0, 1, 4, 16, 17):
                    if offset + part * count > len(data):
                        continue
                    expected = [hashlib.md5(data[offset + i * part:offset + (i + 1) * part]).digest()
                                for i in range(count)]
                    assert md5_file_parts(fd, offset, part, count) == expected, (part, offset, count)
        assert f.tell() == 10 and f.read(5) == data[10:15]
        with pytest.raises(EOFError, match=r"ends within parts 1 to 4 \(of 1048576 bytes"):
            md5_file_parts(fd, 0, integrity.MiB, 4)
        with pytest.raises(ValueError, match="part_size must be positive"):
            md5_file_parts(fd, 0, 0, 1)
        with pytest.raises(ValueError, match="offset=-1"):
            md5_file_parts(fd, -1, 10, 1)
    directory = os.open(tmp_path, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            md5_file_parts(directory, 0, 10, 1)
        assert info.value.errno == errno.EISDIR
    finally:
        os.close(directory)


@pytest.mark.parametrize("target", ["-mavx512f", "-mavx2", "-mno-avx2"])
def test_md5_lanes_kernel_each_cpu_variant(target, tmp_path):
    """The installed module runs the variant this CPU picks; the others (AVX2, plain SSE2) are
    what other machines run, so each is built here for its target alone and checked too."""
    import importlib.util
    import subprocess
    import sysconfig

    compiler = shutil.which("gcc")
    flag = target.removeprefix("-m")
    if compiler is None or sysconfig.get_platform() != "linux-x86_64":
        pytest.skip("the CPU variants are built with GCC on x86-64 Linux")
    with open("/proc/cpuinfo") as info:
        cpu_flags = set(info.read().split())
    if not flag.startswith("no-") and flag not in cpu_flags:
        pytest.skip(f"this CPU cannot run {flag}")
    source = Path(cloudfiles_dask.__file__).parent / "_md5lanes.c"
    if not source.exists():
        pytest.skip("the module's source is not installed here")
    built = tmp_path / ("_md5lanes" + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run([compiler, "-O3", "-shared", "-fPIC", "-DMD5LANES_ONE_TARGET", target,
                    "-I" + sysconfig.get_paths()["include"], str(source), "-o", str(built),
                    "-lm"], check=True, capture_output=True)
    spec = importlib.util.spec_from_file_location("_md5lanes", built)
    kernel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kernel)
    data = random.Random(9).randbytes(16 * 70_001 + 999)
    for part in (70_001, 64, 119):
        size = len(data) - len(data) % part
        expected = [hashlib.md5(data[i:i + part]).digest() for i in range(0, size, part)]
        assert kernel.md5_parts(data[:size], part) == expected, part
    (tmp_path / "f").write_bytes(data)
    with open(tmp_path / "f", "rb") as f:
        assert kernel.md5_file_parts(f.fileno(), 5, 70_000, 16) == [
            hashlib.md5(data[5 + i * 70_000:5 + (i + 1) * 70_000]).digest() for i in range(16)]


# -- the original's secrets surface: directory constants, google/cave/http credentials ---------


def test_directory_constants_follow_the_environment(secret_dirs, monkeypatch, tmp_path):
    volume, files = secret_dirs
    assert secrets.CLOUD_VOLUME_DIR == str(volume.parent)
    assert secrets.CLOUD_FILES_DIR == str(files.parent)
    assert secrets.CLOUD_VOLUME_SECRETS_DIR == str(volume)
    assert secrets.CLOUD_FILES_SECRETS_DIR == str(files)
    monkeypatch.delenv("CLOUD_FILES_LOCK_DIR", raising=False)
    assert secrets.CLOUD_FILES_LOCK_DIR is None  # the original's default: no override
    monkeypatch.setenv("CLOUD_FILES_LOCK_DIR", str(tmp_path / "locks"))
    assert secrets.CLOUD_FILES_LOCK_DIR == str(tmp_path / "locks")
    monkeypatch.setenv("CLOUD_FILES_DIR", str(tmp_path / "elsewhere"))
    assert secrets.CLOUD_FILES_DIR == str(tmp_path / "elsewhere")
    namespace: dict = {}
    exec("from cloudfiles_dask.secrets import *", namespace)
    assert namespace["CLOUD_FILES_DIR"] == str(tmp_path / "elsewhere")
    assert {"CLOUD_VOLUME_DIR", "CLOUD_FILES_LOCK_DIR", "google_credentials"} <= set(dir(secrets))
    with pytest.raises(AttributeError):
        secrets.NO_SUCH_DIR  # noqa: B018


def test_cave_credentials(secret_dirs):
    volume, files = secret_dirs
    assert secrets.cave_credentials() is None
    assert secrets.cave_credentials("example.org") is None
    (files / "cave-secret.json").write_text(json.dumps({"token": "general"}))
    assert secrets.cave_credentials() == {"token": "general"}
    (volume / "example.org-cave-secret.json").write_text(json.dumps({"token": "specific"}))
    assert secrets.cave_credentials("example.org") == {"token": "specific"}
    assert secrets.cave_credentials("other.org") == {"token": "general"}
    assert secrets.cave_token("example.org") == "specific"
    assert secrets.cave_token() == "general"


def test_http_credentials(secret_dirs):
    volume, _ = secret_dirs
    assert secrets.http_credentials() is None
    (volume / "http-secret.json").write_text(json.dumps({"user": "u", "password": "p"}))
    assert secrets.http_credentials() == {"user": "u", "password": "p"}


def test_google_credentials(secret_dirs):
    from google.oauth2 import service_account

    volume, _ = secret_dirs
    assert secrets.google_credentials() == (None, None)
    assert secrets.google_credentials("bkt") == (None, None)
    assert secrets.default_google_project_name() is None

    (volume / "google-secret.json").write_text(json.dumps(service_account_info("general-project")))
    project, credentials = secrets.google_credentials()
    assert project == "general-project" and secrets.default_google_project_name() == project
    assert isinstance(credentials, service_account.Credentials)
    assert credentials.service_account_email == "robot@general-project.iam.gserviceaccount.com"

    (volume / "bkt-google-secret.json").write_text(json.dumps(service_account_info("bucket-project")))
    assert secrets.google_credentials("bkt")[0] == "bucket-project"
    assert secrets.google_credentials("other")[0] == "general-project"
    assert secrets.default_google_project_name() == "general-project"


def test_google_credentials_error_does_not_leak_the_key(secret_dirs):
    volume, _ = secret_dirs
    (volume / "google-secret.json").write_text(json.dumps(
        {"type": "service_account", "project_id": "p", "private_key": "SECRET-MATERIAL"}))
    with pytest.raises(ValueError) as info:
        secrets.google_credentials()
    assert "SECRET-MATERIAL" not in str(info.value)
