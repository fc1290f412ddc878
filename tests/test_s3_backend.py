"""S3-specific behaviour of the s3:// backend, on real local servers (moto, rclone), a header
capturing fake endpoint (pytest-httpserver) and the fault-injecting proxy.

The generic behaviour every backend shares is in tests/contract/test_s3_backend.py.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_s3 are parameters here)

from __future__ import annotations

import _thread
import base64
import bz2
import gzip
import hashlib
import io
import json
import lzma
import multiprocessing
import os
import pickle
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from uuid import uuid4

import brotli
import google_crc32c
import pytest
import zstandard
from werkzeug import Response

from cloudfiles_dask import CloudFiles, _retry, paths
from cloudfiles_dask import _threads as scheduler
from cloudfiles_dask._engine import integrity, ops
from cloudfiles_dask._engine.jobs import ReadUnit
from cloudfiles_dask.backends import _http1, _s3wire, s3
from cloudfiles_dask.backends.base import PutMeta
from cloudfiles_dask.exceptions import (
    AuthorizationError,
    CRC32CIntegrityError,
    MD5IntegrityError,
    UnsupportedCompressionType,
)
from tests.conftest_s3 import (  # noqa: F401 (fixtures)
    bucket,
    moto_server,
    rclone_server,
    s3_env,
    s3_root,
    s3_server,
    wire_seen,
)
from tests.servers.fault_proxy import FaultProxy

MiB = 1024 * 1024
CODECS = [None, "gzip", "br", "zstd", "xz", "bz2"]
DECODERS = {
    None: lambda b: b,
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda b: zstandard.ZstdDecompressor().decompress(b),
    "xz": lzma.decompress,
    "bz2": bz2.decompress,
}
COMPRESSIBLE = b"".join(str(i * i).encode() + b"," for i in range(5000))
WRONG = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "not-the-secret-0123456789"}


@pytest.fixture
def sdk_transport(monkeypatch):
    """The lean path off: every call through botocore (tests of the SDK path's requests)."""
    monkeypatch.setenv("CLOUD_FILES_TRANSPORT", "sdk")


@pytest.fixture(params=["auto", "sdk"])
def transport(request, monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_TRANSPORT", request.param)
    return request.param


@pytest.fixture
def ops_seen():
    """Factory: start recording a backend's operations; the hooks are removed afterwards."""
    hooks = []

    def start(backend):
        seen: list[str] = []

        def note(model, **_):
            seen.append(model.name)

        client = backend._client()
        client.meta.events.register("before-call.s3", note)
        hooks.append((client, note))
        return seen

    yield start
    for client, note in hooks:
        client.meta.events.unregister("before-call.s3", note)


def make_file(path, size: int, seed: int = 0) -> bytes | None:
    """Write ``size`` pseudo-random bytes to ``path`` without holding them all; their md5."""
    md5 = hashlib.md5()
    block = hashlib.sha256(str(seed).encode()).digest() * (MiB // 32)
    with open(path, "wb") as f:
        written = 0
        counter = 0
        while written < size:
            piece = (counter.to_bytes(8, "big") + block)[: min(MiB, size - written)]
            f.write(piece)
            md5.update(piece)
            written += len(piece)
            counter += 1
    return md5.hexdigest()


# -- CloudFiles round trips ----------------------------------------------------------------------
def test_every_codec_round_trips_with_canonical_content_encoding(s3_server, bucket, s3_root):
    cf = CloudFiles(s3_root)
    cf.puts([{"path": f"f-{c}", "content": COMPRESSIBLE, "compress": c} for c in CODECS])
    results = {r["path"]: r for r in cf.get([f"f-{c}" for c in CODECS])}
    admin = s3_server.admin()
    for codec in CODECS:
        key = f"f-{codec}"
        assert results[key]["content"] == COMPRESSIBLE
        assert results[key]["compress"] == (codec or "")  # no encoding: "", as the original
        assert cf.head(key)["Content-Encoding"] == codec
        direct = admin.get_object(Bucket=bucket, Key=f"root/{key}")
        stored = direct["Body"].read()
        header = direct.get("ContentEncoding")
        assert header == codec  # "bz2", never "bzip2"; absent when not encoded
        assert "aws-chunked" not in (header or "")
        assert DECODERS[codec](stored) == COMPRESSIBLE
        if codec:
            assert len(stored) < len(COMPRESSIBLE)
    raw = cf.get("f-gzip", raw=True)
    assert gzip.decompress(raw) == COMPRESSIBLE


def test_put_metadata_reaches_the_server(moto_server, s3_env):
    bucket = moto_server.new_bucket()
    cf = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/")
    cf.put("meta", b"{}", content_type="application/json", cache_control="no-cache",
           storage_class="STANDARD_IA")
    cf.put("plain", b"x")
    head = cf.head("meta")
    assert head["Content-Type"] == "application/json"
    assert head["Cache-Control"] == "no-cache"
    assert head["Storage-Class"] == "STANDARD_IA"
    assert head["ETag"].strip('"') == hashlib.md5(b"{}").hexdigest()
    assert set(head) == {
        "Cache-Control", "Content-Length", "Content-Type", "ETag", "Last-Modified", "Content-Md5",
        "Content-Encoding", "Content-Disposition", "Content-Language", "Storage-Class",
        "Request-Charged", "Parts-Count",
    }
    assert cf.head("plain")["Content-Type"] == "application/octet-stream"


def test_stored_encoding_spellings_are_normalised(s3_server, bucket, s3_root):
    admin = s3_server.admin()
    payload = bz2.compress(b"spelled")
    admin.put_object(Bucket=bucket, Key="root/bzip2", Body=payload, ContentEncoding="bzip2")
    admin.put_object(Bucket=bucket, Key="root/upper", Body=gzip.compress(b"up"), ContentEncoding="GZIP")
    admin.put_object(Bucket=bucket, Key="root/odd", Body=b"opaque", ContentEncoding="x-custom")
    cf = CloudFiles(s3_root)
    assert cf.backend.get("bzip2").encoding == "bz2"
    assert cf.get("bzip2") == b"spelled"
    assert cf.head("bzip2")["Content-Encoding"] == "bz2"
    assert cf.get("upper") == b"up"
    assert cf.backend.get("odd").encoding == "x-custom"
    assert cf.get("odd", raw=True) == b"opaque"
    with pytest.raises(UnsupportedCompressionType, match="x-custom"):
        cf.get("odd")


def test_canonical_encoding_strips_aws_chunked():
    assert s3.canonical_encoding(None) is None
    assert s3.canonical_encoding("") is None
    assert s3.canonical_encoding("aws-chunked") is None
    assert s3.canonical_encoding("aws-chunked,gzip") == "gzip"
    assert s3.canonical_encoding("gzip, aws-chunked") == "gzip"
    assert s3.canonical_encoding("bzip2") == "bz2"
    assert s3.canonical_encoding("identity") is None
    assert s3.canonical_encoding("Snappy") == "snappy"


# -- request counts (no hidden HEADs) ------------------------------------------------------------
def test_reads_make_only_the_requests_they_need(sdk_transport, rclone_server, s3_env, ops_seen):
    bucket = rclone_server.new_bucket()
    backend = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/").backend
    backend.put("r", bytes(range(100)), PutMeta())
    seen = ops_seen(backend)
    cases = [
        ((None, None), ["GetObject"]),
        ((5, None), ["GetObject"]),
        ((-3, None), ["GetObject"]),
        ((10, 20), ["GetObject"]),
        ((None, -2), ["HeadObject", "GetObject"]),
        ((-6, -2), ["HeadObject", "GetObject"]),
        ((2, 2), ["HeadObject"]),
        ((-200, None), None),  # suffix longer than the object: servers differ, bytes must not
    ]
    for (start, end), expected in cases:
        seen.clear()
        assert backend.get("r", start, end).content == bytes(range(100))[start:end]
        if expected is not None:
            assert seen == expected, (start, end)
    seen.clear()
    assert backend.get("missing", 2, 2) is None
    assert backend.get("missing", None, -2) is None
    assert backend.get("missing", -2, None) is None


@pytest.mark.parametrize("start,end", [(0, None), (-3, None), (0, 10), (5, 9)])
def test_ranges_of_an_empty_object(s3_server, bucket, s3_root, start, end):
    cf = CloudFiles(s3_root)
    cf.put("empty", b"")
    assert cf.backend.get("empty", start, end).content == b""
    assert cf.get({"path": "empty", "start": start, "end": end}) == b""


def test_ranged_read_of_an_encoded_object_reports_its_encoding(rclone_server, s3_env):
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/")
    cf.put("z", COMPRESSIBLE, compress="gzip")
    for start, end in [(0, 4), (2, 2), (10**6, None), (None, -3)]:
        assert cf.backend.get("z", start, end).encoding == "gzip"


# -- multipart uploads ----------------------------------------------------------------------------
def test_multipart_upload_of_a_file_handle(s3_server, bucket, s3_root, tmp_path, ops_seen,
                                           wire_seen, transport):
    path = tmp_path / "big.bin"
    md5 = make_file(path, 20 * MiB + 123)
    cf = CloudFiles(s3_root, composite_upload_threshold=6 * MiB)
    seen = ops_seen(cf.backend)  # botocore's requests only
    with open(path, "rb") as f:
        cf.put("big", f)
    if transport == "sdk":
        assert seen.count("UploadPart") == 3 and "CompleteMultipartUpload" in seen
        assert "PutObject" not in seen and wire_seen == []
    else:  # the parts' bytes go through the lean path, the rest through botocore
        assert seen == ["CreateMultipartUpload", "CompleteMultipartUpload"]
        assert wire_seen == ["PUT?partNumber,uploadId"] * 3
    head = cf.head("big")
    assert head["Content-Length"] == 20 * MiB + 123
    if s3_server.kind == "moto":  # rclone reports the md5 of the whole object instead
        assert re.fullmatch(r"[0-9a-f]{32}-3", head["ETag"].strip('"'))
    else:
        assert head["ETag"].strip('"') == md5
    data = cf.get("big")  # the engine checks the (multipart) ETag on this full read
    assert hashlib.md5(data).hexdigest() == md5
    assert integrity.matches(data, head["ETag"].strip('"'), "etag")
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 1
    assert not integrity.matches(bytes(damaged), head["ETag"].strip('"'), "etag")


def test_multipart_upload_of_bytes_above_the_threshold(sdk_transport, moto_server, s3_env, ops_seen):
    bucket = moto_server.new_bucket()
    cf = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/", composite_upload_threshold=6 * MiB)
    payload = os.urandom(9 * MiB)
    seen = ops_seen(cf.backend)
    cf.put("bytes", payload, compress="gzip", raw=True)  # stored as given, labelled gzip
    assert seen.count("UploadPart") == 2
    assert cf.head("bytes")["ETag"].strip('"').endswith("-2")
    assert cf.head("bytes")["Content-Encoding"] == "gzip"
    assert cf.get("bytes", raw=True) == payload
    seen.clear()
    cf.put("small", payload[: 6 * MiB])  # exactly the threshold: one PUT
    assert seen == ["PutObject"]


def test_small_file_handles_and_unsized_streams(sdk_transport, rclone_server, s3_env, tmp_path, ops_seen):
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/", composite_upload_threshold=6 * MiB)
    seen = ops_seen(cf.backend)
    path = tmp_path / "small.bin"
    path.write_bytes(b"0123456789")
    with open(path, "rb") as f:
        f.seek(3)  # the rest of the handle is what gets stored
        cf.put("small", f)
    assert seen == ["PutObject"] and cf.get("small") == b"3456789"

    class Pipe(io.RawIOBase):  # not seekable, no fileno, short reads: like a socket or pipe
        def __init__(self, data):
            self.data = memoryview(data)

        def readable(self):
            return True

        def readinto(self, buf):
            n = min(len(buf), len(self.data), 100_000)
            buf[:n] = self.data[:n]
            self.data = self.data[n:]
            return n

    seen.clear()
    cf.backend.put("pipe-small", Pipe(b"abc" * 1000), PutMeta())
    assert seen == ["PutObject"] and cf.get("pipe-small") == b"abc" * 1000
    seen.clear()
    payload = os.urandom(17 * MiB)
    cf.backend.put("pipe-big", Pipe(payload), PutMeta())
    assert seen.count("UploadPart") == 3  # 8 + 8 + 1 MiB
    assert cf.get("pipe-big") == payload


def test_multipart_upload_memory_stays_bounded(rclone_server, s3_env, tmp_path):
    path = tmp_path / "huge.bin"
    md5 = make_file(path, 64 * MiB)
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/", composite_upload_threshold=8 * MiB)
    cf.backend._client()  # client creation is not part of the upload's footprint
    tracemalloc.start()
    try:
        with open(path, "rb") as f:
            cf.put("huge", f)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * MiB, f"peak {peak / MiB:.1f} MiB for a 64 MiB upload"
    assert cf.head("huge")["ETag"].strip('"') == md5  # rclone: md5 of the whole object


_PEAK_OF_A_GET = """
import sys
from cloudfiles_dask import CloudFiles

def hwm():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))

cf = CloudFiles(sys.argv[1])
cf.get("warm-up/missing")  # connections and imports are not part of the read
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the high-water mark starts again from what the process holds now
before = hwm()
data = cf.get("big")
print(len(data), hwm() - before)
"""


@pytest.fixture
def small_ranges(monkeypatch):
    """Ranged reads from 1 MiB on, in 256 KiB ranges (the real sizes need 32 MiB objects)."""
    monkeypatch.setattr(s3, "RANGED_READ_THRESHOLD", MiB)
    monkeypatch.setattr(s3, "RANGE_PART", 256 * 1024)


def _count_ranges(monkeypatch) -> list[int]:
    """The start of every ranged GET a large read sends, recorded as it is sent."""
    starts: list[int] = []
    real = s3.S3Backend._fill_range

    def counted(self, full, view, start, size, etag):
        starts.append(start)
        return real(self, full, view, start, size, etag)

    monkeypatch.setattr(s3.S3Backend, "_fill_range", counted)
    return starts


@pytest.mark.parametrize("server", ["rclone", "moto"])  # rclone answers a Range with 200, moto 206
def test_uploads_store_a_crc32c_and_large_reads_use_ranges(server, rclone_server, moto_server,
                                                           s3_env, small_ranges, monkeypatch,
                                                           tmp_path):
    """Bytes uploaded (one PUT or multipart, compressed or not) carry the crc32c of the stored
    bytes as user metadata; a full read is checked with it and, for a large object, fetched as
    parallel ranges, to memory and to a file, with every byte in place."""
    srv = rclone_server if server == "rclone" else moto_server
    bucket = srv.new_bucket()
    cf = CloudFiles(f"s3://{srv.endpoint}/{bucket}/", composite_upload_threshold=2 * MiB)
    payload = os.urandom(3 * MiB + 12345)  # not a whole number of ranges
    cf.puts([("one", payload[: MiB // 2]), ("multi", payload), ("edge", payload[: MiB + 1])],
            compress=None)
    cf.put("gz", payload[:100_000], compress="gzip")
    admin = srv.admin()
    for key, stored in [("one", payload[: MiB // 2]), ("multi", payload),
                        ("gz", admin.get_object(Bucket=bucket, Key="gz")["Body"].read())]:
        meta = admin.head_object(Bucket=bucket, Key=key)["Metadata"]
        assert {k.lower(): v for k, v in meta.items()} == {
            s3.CRC_METADATA: base64.b64encode(google_crc32c.value(stored).to_bytes(4, "big")).decode()}
    assert cf.backend.get("multi").hash_type == "crc32c"
    starts = _count_ranges(monkeypatch)
    assert cf.get("multi") == payload
    assert sorted(starts) == list(range(256 * 1024, len(payload), 256 * 1024))  # 0 came with the GET
    del starts[:]
    cf.transfer_to(f"file://{tmp_path}", paths=["multi"])
    assert (tmp_path / "multi").read_bytes() == payload
    assert len(starts) == 12
    assert s3._helpers_free[0] == s3.HELPER_THREADS  # all given back
    del starts[:]
    assert cf.get("edge") == payload[: MiB + 1]  # just past the threshold: ranges too
    assert len(starts) == 4
    del starts[:]
    assert cf.get("one") == payload[: MiB // 2] and cf.get("gz") == payload[:100_000]
    assert starts == []  # small: one GET


def test_large_reads_without_a_crc32c_are_one_stream_checked_by_etag(rclone_server, s3_env,
                                                                     small_ranges, monkeypatch,
                                                                     tmp_path):
    """No stored crc32c (another tool's upload, or a file handle too large to read twice): one
    GET, hashed with md5 as it arrives; and so when another read holds every range helper."""
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/", composite_upload_threshold=2 * MiB)
    payload = os.urandom(3 * MiB)
    rclone_server.admin().put_object(Bucket=bucket, Key="theirs", Body=payload)
    src = tmp_path / "src"
    src.write_bytes(payload)
    with open(src, "rb") as f:
        cf.put("handle", f, compress=None)
    cf.put("ours", payload, compress=None)
    starts = _count_ranges(monkeypatch)
    for key in ["theirs", "handle"]:
        assert cf.backend.get(key).hash_type == "etag"
        assert cf.get(key) == payload
    monkeypatch.setattr(s3, "_helpers_free", [1])  # the others are lent out
    assert cf.get("ours") == payload
    assert starts == []


def test_ranges_survive_faults_and_damage_is_caught(proxied, small_ranges, monkeypatch):
    """A range cut short is fetched again on its own; a damaged range fails the crc32c, and
    the whole read is made once more before CRC32CIntegrityError; never wrong bytes."""
    proxy, cf, plan = proxied
    payload = os.urandom(2 * MiB)
    cf.put("big", payload, compress=None)
    starts = _count_ranges(monkeypatch)
    plan[:] = [None, "truncate"]  # the first GET is whole, the next one a range
    assert cf.get("big") == payload
    assert proxy.injected["truncate"] == 1 and len(starts) == 7  # that range retried within
    plan[:] = [None, "flip"]  # damaged once: the second read is right
    assert cf.get("big") == payload
    assert proxy.injected["flip"] == 1
    plan[:] = ["flip"] * 100
    with pytest.raises(CRC32CIntegrityError, match="/big"):
        cf.get("big")
    assert s3._helpers_free[0] == s3.HELPER_THREADS


def test_a_range_that_keeps_failing_is_not_repeated_by_the_engine(proxied, small_ranges,
                                                                   monkeypatch):
    """Each range is retried on its own; what still fails is raised marked as retried already,
    so the engine does not read the whole object again and retry every range once more."""
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "2")
    proxy, cf, plan = proxied
    cf.put("big", os.urandom(2 * MiB), compress=None)
    plan[:] = [None] + ["503"] * 100  # the whole GET answers; every range then fails
    with pytest.raises(s3.S3Error, match="/big") as info:
        cf.get("big")
    assert _retry.retried(info.value)
    assert proxy.injected["503"] <= 2 * s3.RANGES_IN_FLIGHT  # one wave of ranges, 2 tries each
    assert s3._helpers_free[0] == s3.HELPER_THREADS


def test_a_server_that_ignores_range_gets_one_stream(proxied, small_ranges, monkeypatch):
    """A ranged GET answered with the whole object: the read starts again as one stream, and
    so do this backend's later large reads (no whole object downloaded per range)."""
    proxy, cf, plan = proxied
    payload = os.urandom(2 * MiB)
    cf.put("big", payload, compress=None)
    starts = _count_ranges(monkeypatch)
    plan[:] = [None, "norange"]
    assert cf.get("big") == payload
    assert proxy.injected["norange"] == 1 and cf.backend._ranges_ignored
    del starts[:]
    assert cf.get("big") == payload
    assert starts == []


def test_an_object_deleted_during_a_ranged_read_is_missing(rclone_server, s3_env, small_ranges,
                                                           monkeypatch):
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/")
    cf.put("obj", os.urandom(2 * MiB), compress=None)
    real = s3.S3Backend._fill_range
    calls = []

    def deleting(self, full, view, start, size, etag):
        calls.append(start)
        if len(calls) == 1:
            rclone_server.admin().delete_object(Bucket=bucket, Key=full)
        return real(self, full, view, start, size, etag)

    monkeypatch.setattr(s3.S3Backend, "_fill_range", deleting)
    assert cf.get("obj") is None  # read again: the object is gone


def test_an_object_replaced_during_a_ranged_read_is_read_again(rclone_server, s3_env,
                                                               small_ranges, monkeypatch):
    """Ranges must all come from one object: when its ETag changes mid-read the read starts
    again (rclone ignores If-Match, so the ETag of every range is compared too)."""
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/")
    old, new = os.urandom(2 * MiB), os.urandom(2 * MiB)
    cf.put("obj", old, compress=None)
    real = s3.S3Backend._fill_range
    calls = []

    def replacing(self, full, view, start, size, etag):
        calls.append(etag)
        if len(calls) == 1:
            crc = base64.b64encode(google_crc32c.value(new).to_bytes(4, "big")).decode()
            rclone_server.admin().put_object(Bucket=bucket, Key=full, Body=new,
                                             Metadata={s3.CRC_METADATA: crc})
        return real(self, full, view, start, size, etag)

    monkeypatch.setattr(s3.S3Backend, "_fill_range", replacing)
    assert cf.get("obj") == new
    assert len(set(calls)) == 2  # ranges of the old object, then all of the new one
    with pytest.raises(s3._Replaced, match="replaced while it was read"):
        etag = cf.backend.head("obj")["ETag"].strip('"')
        cf.backend._fill_range("obj", memoryview(bytearray(10)), 0, 2 * MiB, etag[::-1])


def test_large_get_holds_the_object_about_once(rclone_server, s3_env):
    """A 64 MiB GET to memory (read in parallel ranges into one buffer, which becomes the bytes
    returned) costs about the object in memory, not the object twice (pieces plus their join).
    Measured as the process's high-water mark."""
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs")
    bucket = rclone_server.new_bucket()
    url = f"s3://{rclone_server.endpoint}/{bucket}/"
    size = 64 * MiB
    CloudFiles(url).put("big", os.urandom(size), compress=None)
    out = subprocess.run([sys.executable, "-c", _PEAK_OF_A_GET, url], capture_output=True,
                         text=True, timeout=120, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    got, peak = map(int, out.stdout.split())
    assert got == size
    assert peak < 1.4 * size, f"peak {peak / MiB:.0f} MiB for a {size // MiB} MiB read"


class FailingReader(io.RawIOBase):
    """A binary file handle that raises ``error`` once ``fail_after`` bytes were read."""

    def __init__(self, size: int, fail_after: int, error: BaseException):
        self.size = size
        self.pos = 0
        self.fail_after = fail_after
        self.error = error

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=0):
        self.pos = {0: offset, 1: self.pos + offset, 2: self.size + offset}[whence]
        return self.pos

    def readinto(self, buf):
        if self.pos >= self.fail_after:
            raise self.error
        n = min(len(buf), self.size - self.pos, 1 * MiB)
        buf[:n] = b"x" * n
        self.pos += n
        return n


def no_uploads_left(admin, bucket: str) -> bool:
    return not admin.list_multipart_uploads(Bucket=bucket).get("Uploads")


@pytest.mark.parametrize("error", [OSError("disk on fire"), KeyboardInterrupt()], ids=["oserror", "interrupt"])
def test_failed_multipart_upload_is_aborted(s3_server, bucket, s3_root, error):
    cf = CloudFiles(s3_root, composite_upload_threshold=6 * MiB)
    reader = FailingReader(40 * MiB, fail_after=20 * MiB, error=error)
    with pytest.raises(type(error)):
        cf.backend.put("partial", reader, PutMeta())
    admin = s3_server.admin()
    assert cf.exists("partial") is False
    assert no_uploads_left(admin, bucket)
    assert [k for k in cf.list()] == []


def test_part_rejected_by_the_server_aborts_the_upload(sdk_transport, rclone_server, s3_env, monkeypatch):
    """rclone checks Content-MD5: a part whose md5 is wrong (its ETag does not match, and it
    is refused, BadDigest, once the upload starts again with Content-MD5) aborts the upload."""
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "2")
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/", composite_upload_threshold=6 * MiB)
    payload = os.urandom(20 * MiB)
    second = payload[8 * MiB:16 * MiB]
    real = s3._md5_b64
    monkeypatch.setattr(s3, "_md5_b64",
                        lambda data: real(b"not the part") if data == second else real(data))
    real_parts = s3.part_md5s  # where parts are hashed side by side, before their jobs

    def wrong_second(data, part):
        return [hashlib.md5(b"not the part").digest() if bytes(data[i * part:(i + 1) * part]) == second
                else digest for i, digest in enumerate(real_parts(data, part))]

    monkeypatch.setattr(s3, "part_md5s", wrong_second)
    with pytest.raises(s3.S3Error, match="BadDigest") as info:
        cf.put("parts", payload)
    assert f"/{bucket}/parts" in str(info.value)
    assert _retry.retried(info.value)  # its parts were retried already; the engine must not redo it
    assert cf.exists("parts") is False
    assert no_uploads_left(rclone_server.admin(), bucket)


@pytest.mark.parametrize("fault_count", [1, 99])
def test_multipart_retries_a_part_and_aborts_on_failure(moto_server, s3_env, monkeypatch, fault_count,
                                                        transport):
    """Bytes above the threshold go up as a multipart upload: a part that fails once is sent
    again on its own; a part that keeps failing aborts the upload (nothing left)."""
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "3")
    bucket = moto_server.new_bucket()
    left = {"faults": fault_count}

    def plan(method, path):
        if method == "PUT" and "partNumber=2" in path and left["faults"] > 0:
            left["faults"] -= 1
            return "500"
        return None

    port = int(moto_server.endpoint.rsplit(":", 1)[1])
    with FaultProxy("127.0.0.1", port, plan=plan) as proxy:
        cf = CloudFiles(f"s3://{proxy.url}/{bucket}/", composite_upload_threshold=6 * MiB)
        assert (cf.backend._wire() is None) == (transport == "sdk")
        payload = os.urandom(20 * MiB)
        if fault_count == 1:
            cf.put("parts", payload)
            assert proxy.injected["500"] == 1
            assert re.fullmatch(r"[0-9a-f]{32}-3", cf.head("parts")["ETag"].strip('"'))  # 8 MiB parts
            assert cf.get("parts") == payload  # the multipart ETag verifies
        else:
            with pytest.raises(s3.S3Error, match="multipart upload") as info:
                cf.put("parts", payload)
            assert _retry.retried(info.value)  # its parts were retried already
            assert proxy.injected["500"] == 3  # one attempt and two retries of that part
            assert cf.exists("parts") is False
            assert no_uploads_left(moto_server.admin(), bucket)


def _parts_need_md5(backend) -> bool:
    return (backend.endpoint, backend.bucket) in s3._PARTS_NEED_MD5


def _upload_through(proxy_plan, rclone_server, data, payload):
    """Upload ``data`` (``payload`` or a handle to it) in 8 MiB parts through a fault proxy in
    front of rclone (which checks Content-MD5 but stores a body whatever its signed SHA-256):
    the backend, each part PUT's path in order, and the proxy."""
    bucket = rclone_server.new_bucket()
    parts: list[str] = []

    def plan(method, path):
        if method == "PUT" and "partNumber=" in path:
            parts.append(path)
            return proxy_plan(path, parts)
        return None

    port = int(rclone_server.endpoint.rsplit(":", 1)[1])
    with FaultProxy("127.0.0.1", port, plan=plan) as proxy:
        cf = CloudFiles(f"s3://{proxy.url}/{bucket}/", composite_upload_threshold=6 * MiB)
        cf.put("parts", data)
        assert cf.get("parts") == payload
    return cf.backend, parts, proxy


def test_parts_are_checked_by_their_etags(rclone_server, s3_env, transport):
    """Parts go without Content-MD5 and the ETag rclone answers is compared with their md5:
    nothing is sent twice when the bytes arrive whole."""
    payload = os.urandom(20 * MiB)
    backend, parts, proxy = _upload_through(lambda path, seen: None, rclone_server, payload,
                                            payload)
    assert len(parts) == 3 and not _parts_need_md5(backend)


@pytest.mark.parametrize("source", ["bytes", "file"])
def test_parts_are_hashed_side_by_side(rclone_server, s3_env, transport, source, tmp_path,
                                       monkeypatch):
    """Where the md5 lanes kernel runs, the whole parts of bytes in memory or of a plain file
    are hashed sixteen at a time (a file's with a second read of it, from where the handle
    stands), a group of fewer than four and the short last part by hashlib on their own
    threads; the ETags rclone answers match those digests, so nothing is sent twice."""
    if s3.MD5_KERNEL is None:
        pytest.skip("the md5 lanes kernel is not available here")
    given = []
    real = s3.S3Backend._part_job

    def spy(self, full, number, chunk, content_md5, digest=None):
        given.append((number, digest))
        return real(self, full, number, chunk, content_md5, digest)

    monkeypatch.setattr(s3.S3Backend, "_part_job", spy)
    part = 8 * MiB
    payload = os.urandom(17 * part + 5)  # a group of sixteen, one of a single part, a tail
    (tmp_path / "src").write_bytes(b"skip" + payload)
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{rclone_server.new_bucket()}/",
                    composite_upload_threshold=6 * MiB)
    with open(tmp_path / "src", "rb") as handle:
        handle.read(4)
        cf.put("lanes", handle if source == "file" else payload)
    assert [n for n, _ in given] == list(range(1, 19))
    expected = [hashlib.md5(payload[o:o + part]).digest() if o < 16 * part else None
                for o in range(0, len(payload), part)]
    assert [digest() for _, digest in given] == expected
    assert cf.get("lanes") == payload and not _parts_need_md5(cf.backend)


def test_file_parts_are_hashed_by_the_kernel_only_from_plain_files(tmp_path, monkeypatch):
    """A second read of the file must see the bytes the handle gives: not through a wrapper
    whose fileno() is the file beneath it (gzip), and a file that shrank since hashes what
    its parts send (no digest) rather than fail."""
    if s3.MD5_KERNEL is None:
        pytest.skip("the md5 lanes kernel is not available here")
    part = 64 * 1024
    data = os.urandom(5 * part + 100)
    path = tmp_path / "src"
    path.write_bytes(data)
    with gzip.open(tmp_path / "src.gz", "wb") as out:
        out.write(data)
    with gzip.open(tmp_path / "src.gz", "rb") as wrapped:
        assert s3._PartDigests.of_file(wrapped, 0, part) is None
    with open(path, "rb") as plain, open(path, "rb", buffering=0) as raw:
        for handle in (plain, raw):
            digests = s3._PartDigests.of_file(handle, part, part)  # four whole parts on
            assert [digests(n) for n in range(1, 6)] == [
                hashlib.md5(data[i:i + part]).digest() for i in range(part, 5 * part, part)
            ] + [None]
        shrinking = s3._PartDigests.of_file(plain, 0, part)
        os.truncate(path, 3 * part)
        assert shrinking(1) is None and shrinking(5) is None
    monkeypatch.setattr(s3, "MD5_KERNEL", None)
    with open(path, "rb") as plain:
        assert s3._PartDigests.of_file(plain, 0, part) is None
    assert s3._PartDigests.of_buffer(memoryview(data), part) is None


@pytest.mark.parametrize("source", ["bytes", "file"])
def test_a_part_damaged_on_the_way_restarts_the_upload_with_content_md5(
        rclone_server, s3_env, transport, source, tmp_path, monkeypatch):
    """A part damaged on the way is stored damaged by a server that checks nothing but
    Content-MD5 (rclone, which also cannot replace a part it received); its ETag gives it
    away, the upload is aborted and sent again from the start with Content-MD5 on every part,
    as later uploads to that bucket are: the object read back is the one sent."""
    payload = os.urandom(20 * MiB)
    (tmp_path / "src").write_bytes(b"head" + payload)
    md5_sent = []
    real_sender = s3.S3Backend._part_sender

    def sender(self, full, number, chunk):
        send = real_sender(self, full, number, chunk)
        return lambda upload_id, md5: md5_sent.append((number, md5 is not None)) or send(upload_id, md5)

    monkeypatch.setattr(s3.S3Backend, "_part_sender", sender)

    def damage_first_second(path, seen):
        return "damage" if re.search(r"partNumber=2(&|$)", path) and len(seen) <= 3 else None

    with open(tmp_path / "src", "rb") as handle:
        handle.read(4)  # uploads start where the handle stands, and start there again
        data = handle if source == "file" else payload
        backend, parts, proxy = _upload_through(damage_first_second, rclone_server, data, payload)
    assert proxy.injected["damage"] == 1
    numbers = [int(re.search(r"partNumber=(\d+)", p)[1]) for p in parts]
    assert {1, 2} <= set(numbers[:-3]) <= {1, 2, 3} and sorted(numbers[-3:]) == [1, 2, 3]
    assert _parts_need_md5(backend)
    # the first pass went without Content-MD5 (part 3 may not have started before the
    # mismatch stopped it), the second with it on every part
    first = [n for n, md5 in md5_sent if not md5]
    assert [md5 for _, md5 in md5_sent] == [False] * len(first) + [True] * 3
    assert {1, 2} <= set(first) <= {1, 2, 3}
    assert sorted(n for n, md5 in md5_sent if md5) == [1, 2, 3]
    assert no_uploads_left(rclone_server.admin(), backend.bucket)


def test_a_stream_that_cannot_be_rewound_sends_content_md5(rclone_server, s3_env, monkeypatch):
    """A pipe cannot be sent again, so its parts carry Content-MD5 from the start (the server
    checks each one as it comes)."""
    sent = []
    real = s3.S3Backend._part_job
    monkeypatch.setattr(s3.S3Backend, "_part_job",
                        lambda self, *args, **kw: sent.append(args[-1]) or real(self, *args, **kw))
    payload = os.urandom(20 * MiB)
    read, write = os.pipe()
    threading.Thread(target=lambda: (os.write(write, payload), os.close(write)), daemon=True).start()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{rclone_server.new_bucket()}/",
                    composite_upload_threshold=6 * MiB)
    with open(read, "rb", buffering=0) as pipe:
        cf.put("piped", pipe)
    assert sent == [True, True, True] and cf.get("piped") == payload
    cf.put("bytes", payload)
    assert sent[3:] == [False, False, False] and not _parts_need_md5(cf.backend)


def test_corrupted_single_put_is_rejected(sdk_transport, rclone_server, s3_env, monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "2")
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/")
    monkeypatch.setattr(s3, "_md5_b64", lambda data: s3.base64.b64encode(b"\0" * 16).decode())
    with pytest.raises(s3.S3Error, match="BadDigest"):
        cf.put("k", b"hello")
    monkeypatch.undo()
    assert cf.exists("k") is False


def _part_threads(monkeypatch) -> list[str]:
    """The name of the thread each part of an upload is sent from, recorded as it is sent."""
    names: list[str] = []
    real_job = s3.S3Backend._part_job

    def spy(self, full, number, *args, **kw):
        job = real_job(self, full, number, *args, **kw)

        def wrapped(upload_id, cancelled):
            names.append(threading.current_thread().name)
            return job(upload_id, cancelled)

        return wrapped

    monkeypatch.setattr(s3.S3Backend, "_part_job", spy)
    return names


@pytest.mark.parametrize("case", ["helpers", "none free", "gevent"])
def test_where_the_parts_of_an_upload_run(moto_server, s3_env, monkeypatch, transport, case):
    """Parts go out on the engine's reusable helper threads, borrowed and given back; one by one
    on the calling thread when no helper is free, and under gevent's monkey-patching."""
    if case == "gevent":
        monkeypatch.setattr(scheduler, "gevent_active", lambda: True)
    if case == "none free":
        monkeypatch.setattr(s3, "_helpers_free", [0])  # lent out to other calls
    free = s3._helpers_free[0]
    bucket = moto_server.new_bucket()
    cf = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/", composite_upload_threshold=6 * MiB)
    names = _part_threads(monkeypatch)
    payload = os.urandom(17 * MiB)
    cf.put("g", payload)
    assert len(names) == 3
    if case == "helpers":
        assert set(names) <= {"cfdask-worker"}
    else:
        assert set(names) == {threading.current_thread().name}
    assert s3._helpers_free[0] == free  # every helper given back
    assert cf.get("g") == payload


def test_lean_path_serves_green_threads(rclone_server, s3_env):
    """Under gevent's monkey-patching the lean path's plain sockets are cooperative: green
    threads read and write through it, many requests at once."""
    bucket = rclone_server.new_bucket()
    code = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import sys, time, socket\n"
        "from cloudfiles_dask import CloudFiles\n"
        "cf = CloudFiles(sys.argv[1], green=True, num_threads=20)\n"
        "files = [(f'g/{i}', bytes([i]) * 1000) for i in range(200)]\n"
        "cf.puts(files, compress=None)\n"
        "got = cf.get([name for name, _ in files])\n"
        "assert [r['content'] for r in got] == [data for _, data in files]\n"
        "assert all(cf.exists([name for name, _ in files]).values())\n"
        "print(cf.backend._wire() is not None, socket.socket.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, f"s3://{rclone_server.endpoint}/{bucket}/"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "gevent._socket3"]


def test_ctrl_c_during_an_upload_waits_for_the_parts_in_flight_then_aborts(moto_server, s3_env,
                                                                         monkeypatch, transport):
    """Ctrl-C on the caller stops a multipart upload: no new part starts, the parts in flight
    finish (no retries once stopped), and only then is the upload aborted and the helper
    threads given back; nothing is left under the key or as an unfinished upload."""
    bucket = moto_server.new_bucket()
    cf = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/", composite_upload_threshold=6 * MiB)
    events: list[str] = []
    running = [0]
    peak = [0]
    lock = threading.Lock()
    real_job = s3.S3Backend._part_job

    def slow(self, full, number, *args, **kw):
        job = real_job(self, full, number, *args, **kw)

        def wrapped(upload_id, cancelled):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
                if running[0] == 4:  # every helper busy: the user presses Ctrl-C now
                    _thread.interrupt_main()
            try:
                time.sleep(1.0)
                return job(upload_id, cancelled)
            finally:
                with lock:
                    running[0] -= 1
                    events.append(f"part {number} done")

        return wrapped

    monkeypatch.setattr(s3.S3Backend, "_part_job", slow)
    client = cf.backend._client()
    real_abort = client.abort_multipart_upload

    def abort(**kwargs):
        events.append(f"abort with {running[0]} parts running")
        return real_abort(**kwargs)

    monkeypatch.setattr(client, "abort_multipart_upload", abort)
    # the interrupt needs all four parts in flight: a read of an earlier test that is still
    # ending on its own threads (a stalled server's timeout) may hold helpers for a while
    deadline = time.monotonic() + 30
    while s3._helpers_free[0] < s3.PARTS_IN_FLIGHT and time.monotonic() < deadline:
        time.sleep(0.05)
    free = s3._helpers_free[0]
    assert free >= s3.PARTS_IN_FLIGHT, f"only {free} helper threads were given back"
    # interrupt_main() does nothing unless Python's own SIGINT handler is installed, and an
    # earlier test's library (a Dask cluster, a subprocess helper) may have replaced it
    handler = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cf.put("big", os.urandom(40 * MiB), compress=None)
    except KeyboardInterrupt:
        pass
    else:
        pytest.fail(f"no KeyboardInterrupt: at most {peak[0]} parts in flight at once; "
                    f"SIGINT handler before the test: {handler!r}")
    finally:
        signal.signal(signal.SIGINT, handler)
    assert running[0] == 0 and s3._helpers_free[0] == free
    assert events[-1] == "abort with 0 parts running", events
    assert len([e for e in events if e.startswith("part")]) == 4  # the four in flight, no more
    assert cf.exists("big") is False
    assert no_uploads_left(moto_server.admin(), bucket)


@pytest.mark.parametrize("field,value", [("content_type", "text/plain\r\nx-amz-acl: public-read"),
                                         ("cache_control", "no-cache\nx-amz-meta-evil: 1"),
                                         ("content_type", "a\0b")])
def test_metadata_that_would_forge_headers_is_refused(s3_server, bucket, s3_root, transport,
                                                      field, value):
    cf = CloudFiles(s3_root)
    with pytest.raises(ValueError, match=f"{field} for 'k' holds a line break or NUL"):
        cf.put("k", b"x", compress=None, **{field: value})
    assert cf.exists("k") is False


def test_non_ascii_metadata_is_signed_as_sent(rclone_server, s3_env, transport):
    """rclone checks every signature: a header value outside ASCII must be signed exactly as it
    goes on the wire (UTF-8)."""
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{rclone_server.new_bucket()}/")
    cf.put("k", b"data", compress=None, content_type="text/plain; x=é€")
    assert cf.get("k") == b"data"


# -- server-side copies ---------------------------------------------------------------------------
def test_copy_between_buckets_on_one_endpoint_stays_on_the_server(s3_server, bucket, s3_root, monkeypatch):
    src = CloudFiles(s3_root)
    dest = CloudFiles(f"s3://{s3_server.endpoint}/{s3_server.new_bucket()}/copied")
    src.put("a/one", COMPRESSIBLE, compress="gzip", content_type="text/csv")
    src.put("two", b"plain")
    assert src.backend.can_copy_to(dest.backend)

    def no_download(*args, **kwargs):
        raise AssertionError("bytes were downloaded for a server-side copy")

    monkeypatch.setattr(src.backend, "get", no_download)
    src.transfer_to(dest, paths=["a/one", "two"])
    head = dest.head("a/one")
    assert head["Content-Encoding"] == "gzip"
    assert head["Content-Type"] == "text/csv"
    assert dest.get("a/one") == COMPRESSIBLE
    assert dest.get("two") == b"plain"
    assert src.backend.copy_to("two", dest.backend, "again") == len(b"plain")
    assert src.backend.copy_to("missing", dest.backend, "never") is None
    assert src.backend.copy_to("two", src.backend, "two") == len(b"plain")  # onto itself


def test_copy_needs_same_endpoint_alias_and_credentials(moto_server, rclone_server, s3_env):
    a = CloudFiles(f"s3://{moto_server.endpoint}/bucket-a/").backend
    assert a.can_copy_to(CloudFiles(f"s3://{moto_server.endpoint}/bucket-b/x").backend)
    assert not a.can_copy_to(CloudFiles(f"s3://{rclone_server.endpoint}/bucket-a/").backend)
    assert not a.can_copy_to(CloudFiles(f"s3://{moto_server.endpoint}/bucket-b/", secrets=WRONG).backend)
    assert not a.can_copy_to(CloudFiles(f"s3://{moto_server.endpoint}/bucket-b/", no_sign_request=True).backend)
    assert not a.can_copy_to(CloudFiles("mem://bucket-b/").backend)


def test_multipart_copy_above_the_threshold(moto_server, s3_env, monkeypatch, ops_seen):
    monkeypatch.setattr(s3, "MULTIPART_COPY_THRESHOLD", 1 * MiB)
    monkeypatch.setattr(s3, "COPY_PART_SIZE", 6 * MiB)
    bucket = moto_server.new_bucket()
    src = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/src")
    dest = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/dest")
    payload = os.urandom(16 * MiB + 7)
    src.put("big", payload, compress="br", raw=True, content_type="application/x-test")
    seen = ops_seen(src.backend)
    assert src.backend.copy_to("big", dest.backend, "big") == len(payload)
    assert seen.count("UploadPartCopy") == 3 and "CopyObject" not in seen
    head = dest.head("big")
    assert head["ETag"].strip('"').endswith("-3")
    assert head["Content-Encoding"] == "br"
    assert head["Content-Type"] == "application/x-test"
    assert dest.get("big", raw=True) == payload  # engine verifies the multipart ETag


def test_multipart_copy_without_server_support_leaves_nothing(rclone_server, s3_env, monkeypatch):
    """rclone answers UploadPartCopy without copying anything: that must fail, not store junk."""
    monkeypatch.setattr(s3, "MULTIPART_COPY_THRESHOLD", 1 * MiB)
    monkeypatch.setattr(s3, "COPY_PART_SIZE", 6 * MiB)
    bucket = rclone_server.new_bucket()
    src = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/src")
    dest = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/dest")
    src.put("big", os.urandom(13 * MiB))
    with pytest.raises(s3.S3Error, match="UploadPartCopy"):
        src.backend.copy_to("big", dest.backend, "big")
    assert dest.exists("big") is False
    assert no_uploads_left(rclone_server.admin(), bucket)


def test_a_part_copy_that_keeps_failing_is_not_repeated_by_the_engine(moto_server, s3_env,
                                                                      monkeypatch):
    """Each part of a multipart copy is retried on its own; the error that survives is marked
    as retried already, so the engine does not copy the whole object again (the policy's
    attempts for that part, not their square), and no unfinished upload is left."""
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "3")
    monkeypatch.setattr(s3, "MULTIPART_COPY_THRESHOLD", 1 * MiB)
    monkeypatch.setattr(s3, "COPY_PART_SIZE", 6 * MiB)
    bucket = moto_server.new_bucket()

    def plan(method, path):
        return "503" if method == "PUT" and "partNumber=2" in path else None

    port = int(moto_server.endpoint.rsplit(":", 1)[1])
    with FaultProxy("127.0.0.1", port, plan=plan) as proxy:
        src = CloudFiles(f"s3://{proxy.url}/{bucket}/src")
        dest = CloudFiles(f"s3://{proxy.url}/{bucket}/dest")
        src.put("big", os.urandom(13 * MiB), compress=None)  # one PUT: below the threshold
        with pytest.raises(s3.S3Error, match="copy") as info:
            src.transfer_to(dest, ["big"])
        assert proxy.injected["503"] == 3
        assert _retry.retried(info.value)
        assert dest.exists("big") is False
    assert no_uploads_left(moto_server.admin(), bucket)


# -- endpoints, aliases, credentials --------------------------------------------------------------
def test_endpoint_argument(s3_server, bucket):
    cf = CloudFiles(f"s3://{bucket}/via-arg", endpoint=s3_server.endpoint)
    cf.put("k", b"v")
    assert cf.backend.endpoint == s3_server.endpoint
    assert CloudFiles(f"s3://{s3_server.endpoint}/{bucket}/via-arg").get("k") == b"v"
    assert s3_server.admin().get_object(Bucket=bucket, Key="via-arg/k")["Body"].read() == b"v"


def test_alias_with_its_own_secrets_file(rclone_server, s3_env, monkeypatch):
    name = f"cfdtest{uuid4().hex[:8]}"
    bucket = rclone_server.new_bucket()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (s3_env / "aws-secret.json").write_text(json.dumps(WRONG))
    (s3_env / f"{name}-secret.json").write_text(
        json.dumps({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    )
    paths.add_alias(name, f"s3://{rclone_server.endpoint}/", acl="private")
    try:
        cf = CloudFiles(f"{name}://{bucket}/x")
        assert cf.backend.endpoint == rclone_server.endpoint
        assert cf.backend.acl == "private"
        cf.put("k", b"aliased")
        assert cf.get("k") == b"aliased"
        assert cf.backend.url("k") == f"{name}://{bucket}/x/k"
        # plain s3:// to the same endpoint uses aws-secret.json, which is wrong here
        plain = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/x")
        with pytest.raises(AuthorizationError):
            plain.get("k")
        assert not cf.backend.can_copy_to(plain.backend)
    finally:
        paths.remove_alias(name)


def test_credentials_from_secrets_files(rclone_server, s3_env, monkeypatch):
    bucket = rclone_server.new_bucket()
    rclone_server.admin().put_object(Bucket=bucket, Key="k", Body=b"secret stuff")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (s3_env / "aws-secret.json").write_text(json.dumps(WRONG))
    (s3_env / f"{bucket}-aws-secret.json").write_text(
        json.dumps({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    )
    assert CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/").get("k") == b"secret stuff"
    (s3_env / f"{bucket}-aws-secret.json").unlink()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/")
    with pytest.raises(AuthorizationError) as info:
        cf.get("k")
    message = str(info.value)
    assert f"/{bucket}/k" in message and "403" in message
    assert WRONG["AWS_SECRET_ACCESS_KEY"] not in message


def test_explicit_secrets_win_and_never_show(rclone_server, s3_env):
    bucket = rclone_server.new_bucket()
    root = f"s3://{rclone_server.endpoint}/{bucket}/"
    CloudFiles(root).put("k", b"v")
    lower = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    assert CloudFiles(root, secrets=lower).get("k") == b"v"
    assert CloudFiles(root, secrets=json.dumps(lower)).get("k") == b"v"
    bad = CloudFiles(root, secrets=WRONG)  # env has the right keys: explicit still wins
    for action in (lambda: bad.get("k"), lambda: bad.exists("k"), lambda: bad.put("n", b"x"),
                   lambda: list(bad.list())):
        with pytest.raises(AuthorizationError) as info:
            action()
        assert WRONG["AWS_SECRET_ACCESS_KEY"] not in str(info.value)
    assert WRONG["AWS_SECRET_ACCESS_KEY"] not in repr(bad)
    assert WRONG["AWS_SECRET_ACCESS_KEY"] not in repr(bad.backend)
    assert WRONG["AWS_SECRET_ACCESS_KEY"] not in repr(list(s3._CLIENTS))
    with pytest.raises(TypeError, match="dict"):
        CloudFiles(root, secrets=["not", "a", "dict"]).get("k")


def test_two_credentials_never_share_a_client(rclone_server, s3_env):
    bucket = rclone_server.new_bucket()
    root = f"s3://{rclone_server.endpoint}/{bucket}/"
    CloudFiles(root).put("k", b"v")
    good = CloudFiles(root, secrets={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    bad = CloudFiles(root, secrets=WRONG)
    for _ in range(2):  # in either order, each keeps its own identity
        assert good.get("k") == b"v"
        with pytest.raises(AuthorizationError):
            bad.get("k")
    assert good.backend._client() is not bad.backend._client()
    # the same configuration shares one client
    again = CloudFiles(root + "other/", secrets={"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
    assert again.backend._client() is good.backend._client()


def test_client_configuration(moto_server, s3_env, monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_CONNECT_TIMEOUT", "3.5")
    monkeypatch.setenv("CLOUD_FILES_READ_TIMEOUT", "17")
    root = f"s3://{moto_server.endpoint}/whatever/"
    config = CloudFiles(root, num_threads=4).backend._client().meta.config
    assert config.max_pool_connections == 10 + s3.HELPER_THREADS  # threads, and large reads' helpers
    assert config.retries["total_max_attempts"] == 1
    assert (config.connect_timeout, config.read_timeout) == (3.5, 17)
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    assert config.s3["addressing_style"] == "path"
    assert config.signature_version == "s3v4"
    big = CloudFiles(root, num_threads=48).backend._client()
    assert big.meta.config.max_pool_connections == 48 + s3.HELPER_THREADS
    assert CloudFiles(root, num_threads=4).backend._client() is big  # grown, then shared
    unsigned = CloudFiles(root, no_sign_request=True).backend._client()
    import botocore

    assert unsigned.meta.config.signature_version is botocore.UNSIGNED


def test_importing_the_backend_does_not_import_boto():
    code = (
        "import sys, cloudfiles_dask\n"
        "from cloudfiles_dask.backends import s3\n"
        "cf = cloudfiles_dask.CloudFiles('s3://bucket/prefix')\n"
        "cf.backend\n"
        "print(sorted(m for m in ('boto3', 'botocore') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "AWS_EC2_METADATA_DISABLED": "true"})
    assert out.stdout.strip() == "[]", out.stderr


def test_bad_arguments_are_named(s3_env):
    with pytest.raises(ValueError, match="bucket-owner"):
        CloudFiles("s3://bucket/", request_payer="bucket-owner").backend  # noqa: B018
    with pytest.raises(ValueError, match="ftp://nowhere"):
        s3.S3Backend(paths.extract("s3://bucket/"), s3.BackendOptions(endpoint="ftp://nowhere"))


def test_errors_name_the_object_and_the_cause(moto_server, s3_env):
    cf = CloudFiles(f"s3://{moto_server.endpoint}/no-such-bucket-here/pre")
    with pytest.raises(s3.S3Error) as info:
        cf.get("key")
    assert f"s3://{moto_server.endpoint}/no-such-bucket-here/pre/key" in str(info.value)
    assert "NoSuchBucket" in str(info.value)
    assert not cf.backend.retryable(info.value)
    with pytest.raises(s3.S3Error, match="NoSuchBucket"):
        list(cf.list())


# -- what reaches the wire: a header-capturing fake endpoint --------------------------------------
@pytest.fixture
def fake_s3(s3_env):
    """A local HTTP server that answers like a tiny S3 and records every request."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    body = b"hello"
    etag = f'"{hashlib.md5(body).hexdigest()}"'
    listing = (
        '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult>'
        "<Name>bkt</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>"
        "<IsTruncated>false</IsTruncated><Contents><Key>k</Key><Size>5</Size></Contents>"
        "</ListBucketResult>"
    )
    delete_result = (
        '<?xml version="1.0" encoding="UTF-8"?><DeleteResult>'
        "<Error><Key>pre/locked</Key><Code>InternalError</Code><Message>try later</Message></Error>"
        "</DeleteResult>"
    )

    def handler(request):
        if request.method == "POST" and "delete" in request.args:
            if b"locked" in request.get_data():
                return Response(delete_result, content_type="application/xml")
            return Response('<?xml version="1.0"?><DeleteResult></DeleteResult>', content_type="application/xml")
        if request.method == "GET" and request.args.get("list-type") == "2":
            return Response(listing, content_type="application/xml")
        if request.method == "PUT":
            return Response(b"", headers={"ETag": etag})
        headers = {"ETag": etag, "Content-Type": "application/octet-stream"}
        if request.method == "HEAD":
            return Response(b"", headers={**headers, "Content-Length": "5"})
        return Response(body, headers=headers)

    server.expect_request(re.compile(".*")).respond_with_handler(handler)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


def requests_seen(server):
    return [request for request, _ in server.log]


def test_no_sign_request_sends_unsigned_requests(fake_s3, transport):
    endpoint = f"http://127.0.0.1:{fake_s3.port}"
    CloudFiles(f"s3://{endpoint}/bkt/").get("k")
    assert "Authorization" in requests_seen(fake_s3)[-1].headers  # signed by default
    fake_s3.clear_log()
    anonymous = CloudFiles(f"s3://{endpoint}/bkt/", no_sign_request=True)
    assert anonymous.get("k") == b"hello"
    anonymous.put("p", b"data")
    assert anonymous.exists("k") is True
    assert list(anonymous.list()) == ["k"]
    seen = requests_seen(fake_s3)
    assert len(seen) == 4
    for request in seen:
        assert "Authorization" not in request.headers
        assert not any(name.lower().startswith("x-amz-security") for name in request.headers.keys())


def test_request_payer_and_acl_headers(fake_s3, transport):
    endpoint = f"http://127.0.0.1:{fake_s3.port}"
    plain = CloudFiles(f"s3://{endpoint}/bkt/")
    plain.put("p", b"data")
    put = requests_seen(fake_s3)[-1]
    # the original's default canned ACL, so a bucket owner in another account can read the object
    assert put.headers["x-amz-acl"] == "bucket-owner-full-control"
    assert "x-amz-request-payer" not in put.headers
    assert put.headers["Content-MD5"] == s3._md5_b64(b"data")  # the server checks the bytes
    if transport == "auto":  # the lean path does not hash the body a second time for SigV4
        assert put.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert put.headers["Content-Type"] == "application/octet-stream"
    fake_s3.clear_log()

    payer = CloudFiles(f"s3://{endpoint}/bkt/", request_payer="requester")
    payer.get("k")
    payer.get({"path": "k", "start": 1, "end": 3})
    payer.head("k")
    payer.exists("k")
    payer.put("p", b"data", compress="bz2")
    payer.delete(["a", "b"])
    list(payer.list())
    seen = requests_seen(fake_s3)
    assert len(seen) == 7
    for request in seen:
        assert request.headers.get("x-amz-request-payer") == "requester", request.url
    assert seen[1].headers["Range"] == "bytes=1-2"
    assert seen[4].headers["Content-Encoding"] == "bz2"
    fake_s3.clear_log()

    name = f"cfdacl{uuid4().hex[:8]}"
    paths.add_alias(name, f"s3://{endpoint}/", acl="public-read")
    try:
        CloudFiles(f"{name}://bkt/").put("p", b"data")
    finally:
        paths.remove_alias(name)
    assert requests_seen(fake_s3)[-1].headers["x-amz-acl"] == "public-read"


def test_delete_errors_are_raised(fake_s3):
    cf = CloudFiles(f"s3://http://127.0.0.1:{fake_s3.port}/bkt/pre")
    cf.delete(["a", "b"])
    with pytest.raises(s3.S3Error, match="pre/locked: InternalError") as info:
        cf.backend.delete_many(["locked", "other"])
    assert info.value.transient


# -- faults on the wire: the fault-injecting proxy in front of moto -------------------------------
@pytest.fixture
def proxied(moto_server, s3_env):
    """``(proxy, CloudFiles through the proxy)`` for a fresh bucket on moto."""
    bucket = moto_server.new_bucket()
    upstream = moto_server.endpoint.rsplit(":", 1)
    faults = {"plan": []}

    def plan(method, path):
        queue = faults["plan"]
        return queue.pop(0) if queue and method == "GET" and "list-type" not in path else None

    with FaultProxy("127.0.0.1", int(upstream[1]), plan=plan, stall_seconds=1) as proxy:
        cf = CloudFiles(f"s3://{proxy.url}/{bucket}/")
        yield proxy, cf, faults["plan"]


def test_transient_faults_are_retried(proxied):
    proxy, cf, plan = proxied
    payload = os.urandom(200_000)
    cf.put("obj", payload)
    for fault in ["truncate", "reset", "503", "429", "500"]:
        plan[:] = [fault]
        assert cf.get("obj") == payload, fault
        assert proxy.injected[fault] == 1


def test_truncated_bodies_never_come_back_short(proxied, monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "3")
    proxy, cf, plan = proxied
    payload = os.urandom(100_000)
    cf.put("obj", payload)
    plan[:] = ["truncate"] * 3
    with pytest.raises(s3.S3Error) as info:
        cf.get("obj")
    assert info.value.transient and "/obj" in str(info.value)
    assert proxy.injected["truncate"] == 3
    plan[:] = ["truncate"] * 3
    with pytest.raises(s3.S3Error):
        cf.get({"path": "obj", "start": 10, "end": 90_000})


def _without_crc(monkeypatch) -> None:
    """Uploads from now on store no crc32c (like any other tool's): reads check the ETag."""
    monkeypatch.setattr(s3, "_with_crc", lambda params, data: params)


@pytest.mark.parametrize("stored", ["crc32c", "etag"])
@pytest.mark.parametrize("size", [50_000, 3 * MiB])  # 3 MiB: hashed while streaming in
def test_damaged_bytes_fail_the_check(proxied, transport, size, stored, tmp_path, monkeypatch):
    """Our uploads store a crc32c, which reads check; other objects are checked by ETag."""
    if stored == "etag":
        _without_crc(monkeypatch)
    error = CRC32CIntegrityError if stored == "crc32c" else MD5IntegrityError
    proxy, cf, plan = proxied
    payload = os.urandom(size)
    cf.put("obj", payload)
    assert cf.backend.get("obj").hash_type == stored
    plan[:] = ["flip", "flip"]  # a download to disk is checked the same way
    with pytest.raises(error):
        cf.transfer_to(f"file://{tmp_path}", paths=["obj"])
    assert not (tmp_path / "obj").exists()
    plan[:] = ["flip"]  # damaged once: read again, and the second read is right
    assert cf.get("obj") == payload
    plan[:] = ["flip", "flip"]
    with pytest.raises(error, match="/obj"):
        cf.get("obj")
    assert proxy.injected["flip"] == 5


def test_multipart_etag_and_bad_md5_through_the_engine(moto_server, s3_env, monkeypatch):
    _without_crc(monkeypatch)
    bucket = moto_server.new_bucket()
    cf = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/", composite_upload_threshold=6 * MiB)
    payload = os.urandom(10 * MiB)
    cf.put("mp", payload)
    backend = cf.backend
    blob = backend.get("mp")
    assert blob.hash_type == "etag" and re.fullmatch(r"[0-9a-f]{32}-2", blob.hash)
    assert ops.fetch(backend, ReadUnit("mp")).content == payload
    real_get = backend.get
    reads = []

    def damaged(key, start=None, end=None):
        reads.append(key)
        blob = real_get(key, start, end)
        blob.content = blob.content[:-1] + bytes([blob.content[-1] ^ 1])
        return blob

    monkeypatch.setattr(backend, "get", damaged)
    with pytest.raises(MD5IntegrityError, match="mp"):
        ops.fetch(backend, ReadUnit("mp"))
    assert len(reads) == 2  # read once more before giving up
    cf.put("plain", b"small")
    with pytest.raises(MD5IntegrityError, match=hashlib.md5(b"small").hexdigest()):
        ops.fetch(backend, ReadUnit("plain"))
    assert ops.fetch(backend, ReadUnit("plain", 0, 3)).content[:2] == b"sm"  # ranges: no check


# -- listing --------------------------------------------------------------------------------------
def test_listing_across_many_pages(s3_server, bucket, s3_root, monkeypatch):
    monkeypatch.setattr(s3, "LIST_PAGE_SIZE", 3)
    cf = CloudFiles(s3_root)
    keys = [f"f{i:02d}" for i in range(8)] + [f"d{i}/x" for i in range(5)] + ["d0/y/z", "e/1"]
    cf.puts([(k, k.encode()) for k in keys])
    assert list(cf.list()) == sorted(keys)
    flat = list(cf.list(flat=True))
    assert flat == sorted([f"f{i:02d}" for i in range(8)] + [f"d{i}/" for i in range(5)] + ["e/"])
    assert list(cf.list("d0/", flat=True)) == ["d0/x", "d0/y/"]
    sizes = dict(cf.backend.list("", size=True))
    assert sizes["d0/y/z"] == len(b"d0/y/z")


# -- processes ------------------------------------------------------------------------------------
def _read_in_child(blob: bytes, key: str):
    cf = pickle.loads(blob)
    return cf.get(key), os.getpid()


def test_pickled_cloudfiles_works_in_a_spawned_process(rclone_server, s3_env):
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/p", secrets={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    cf.put("k", b"crossed")
    blob = pickle.dumps(cf)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        content, pid = pool.submit(_read_in_child, blob, "k").result(timeout=120)
    assert content == b"crossed" and pid != os.getpid()


def test_forked_child_makes_its_own_client(rclone_server, s3_env):
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/")
    cf.put("k", b"forked")
    parent_wire = cf.backend._wire()
    assert parent_wire is not None  # the parent's requests went through the lean path
    parent_client = cf.backend._client()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child():
        import faulthandler

        faulthandler.dump_traceback_later(20, exit=True)  # a hang shows where, then ends
        try:
            client = cf.backend._client()
            pids = {key[4] for key in s3._CLIENTS}
            content = cf.get("k")  # through a connection of the child's own
            wire = cf.backend._wire()
            pids |= {pid for pid, _ in _s3wire._POOLS}
            fresh = wire is not parent_wire and wire.pool is not parent_wire.pool
            queue.put((content, client is parent_client or not fresh, pids == {os.getpid()}, None))
        except BaseException as e:  # report, never hang the parent
            queue.put((None, None, None, repr(e)))

    process = ctx.Process(target=child)
    process.start()
    try:
        try:
            content, same_client, own_pid_keys, error = queue.get(timeout=30)
        except Exception:
            process.join(1)
            raise AssertionError(f"no answer from the forked child (alive={process.is_alive()}, "
                                 f"exit code {process.exitcode})") from None
        process.join(30)
    finally:
        if process.is_alive():
            process.kill()
            process.join(10)
    assert error is None
    assert content == b"forked"
    assert same_client is False and own_pid_keys is True
    assert cf.backend._client() is parent_client  # the parent keeps its own


# -- retry classification -------------------------------------------------------------------------
def client_error(status: int, code: str):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


def test_retryable_classification():
    from botocore import exceptions as bce
    from urllib3.exceptions import ProtocolError

    backend = CloudFiles("s3://bucket/").backend
    transient = [
        bce.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        bce.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
        bce.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        bce.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
        bce.ResponseStreamingError(error="cut"),
        bce.IncompleteReadError(actual_bytes=1, expected_bytes=2),
        ProtocolError("Connection broken"),
        ConnectionResetError(),
        client_error(500, "InternalError"),
        client_error(503, "SlowDown"),
        client_error(429, "TooManyRequests"),
        client_error(400, "RequestTimeout"),
        s3.S3Error("x", transient=True),
        _s3wire.Answer(500, "InternalError"),
        _s3wire.Answer(503, "SlowDown"),
        _s3wire.Answer(429),
        _s3wire.Answer(400, "RequestTimeout"),
        _s3wire.Answer(400, "BadDigest"),
        TimeoutError(),
        _http1.IncompleteBody(1, 2),
        _http1.ProtocolError("not HTTP"),
        ssl.SSLEOFError(),
        socket.gaierror(-3, "Temporary failure in name resolution"),
    ]
    permanent = [
        client_error(403, "AccessDenied"),
        client_error(404, "NoSuchKey"),
        client_error(400, "InvalidArgument"),
        client_error(416, "InvalidRange"),
        bce.NoCredentialsError(),
        s3.S3Error("x", transient=False),
        AuthorizationError("no"),
        ValueError("no"),
        MD5IntegrityError("no"),
        _s3wire.Answer(403, "AccessDenied"),
        _s3wire.Answer(404, "NoSuchKey"),
        _s3wire.Answer(404),
        _s3wire.Answer(400, "InvalidArgument"),
        ssl.SSLCertVerificationError(),
        FileNotFoundError(),  # e.g. a caller's file handle: not the network's doing
    ]
    assert [backend.retryable(e) for e in transient] == [True] * len(transient)
    assert [backend.retryable(e) for e in permanent] == [False] * len(permanent)


def test_part_sizes():
    assert s3.upload_part_size(20 * MiB) == 8 * MiB
    assert s3.upload_part_size(200 * 1024 * MiB) == -(-200 * 1024 * MiB // 10_000)
    for size in [5 * 1000**3 + 1, 100 * 1024**3 + 17, 5 * 1024**4]:
        part = s3._copy_part_size(size)
        parts = -(-size // part)
        assert parts <= 10_000 and 5 * MiB <= part <= 5 * 1024**3
        # the engine's multipart-ETag check tries exactly this part size
        assert part in integrity.candidate_part_sizes(size, parts)


# -- keys are stored exactly as given, on both transports -----------------------------------------
AWKWARD_KEYS = ["x/", "/lead", "a//b", "a/./b", "a/../b", "tab\tkey", "ctl\x01", "dot.", "é ü+%2F?#&="]


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_awkward_keys_are_stored_exactly(moto_server, s3_env, key, transport):
    bucket = moto_server.new_bucket()
    cf = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/root")
    cf.put(key, key.encode())
    assert cf.get(key) == key.encode()
    assert cf.exists(key) is True and cf.size(key) == len(key.encode())
    stored = moto_server.admin().get_object(Bucket=bucket, Key="root/" + key)["Body"].read()
    assert stored == key.encode()


@pytest.mark.parametrize("value", [
    "2026-11-24T22:35:51.000Z",  # XML bodies (listings, CopyObject)
    "2026-11-24T22:35:51Z",
    "Tue, 24 Nov 2026 22:35:51 GMT",  # headers (HEAD, GET)
    "1795646151",  # epoch seconds: left to botocore's own parser
    1795646151,
])
def test_timestamps_parse_as_botocore_parses_them(value):
    from botocore.utils import parse_timestamp

    ours = s3._timestamp(value)
    assert ours == parse_timestamp(value)
    assert ours.utcoffset() is not None and ours.utcoffset().total_seconds() == 0
