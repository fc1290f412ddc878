"""Downloads streamed to file:// and uploads from file handles: memory bounds, resumable
downloads, and integrity checks on the streamed path, against the real local servers.

- Memory is measured with tracemalloc in this process. The S3 servers and fake-gcs-server run in
  their own processes, so what is traced is the client alone; the HTTP source here is
  fake-gcs-server's public path (``GET /BUCKET/KEY``), also out of process, which sends
  ``x-goog-hash`` so HTTP downloads are checksummed too.
- Faults come from ``tests.servers.fault_proxy.FaultProxy`` in front of a server. Its module-level
  request reader is wrapped (per test, with monkeypatch) so that every request through a proxy
  made here is recorded with its headers: that is how a test sees which byte range a resumed
  download asked for.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_s3 are parameters here)

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from urllib.parse import unquote, urlsplit
from uuid import uuid4

import pytest

from cloudfiles_dask import CloudFiles, _retry, compression
from cloudfiles_dask.backends.local import PARTIAL_SUFFIX
from cloudfiles_dask.exceptions import IntegrityError
from tests.conftest_s3 import moto_server, rclone_server, s3_env  # noqa: F401 (fixtures)
from tests.servers import fault_proxy
from tests.servers.fault_proxy import FaultProxy
from tests.servers.http import HTTPObjectServer

MiB = 1024 * 1024
KINDS = ["s3-moto", "s3-rclone", "gcs", "http"]
BIG = 64 * MiB  # the memory-bound downloads
MID = 8 * MiB  # the fault and resume tests (a truncated answer carries 4 MiB)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _env(s3_env):
    """AWS test credentials, no proxies, no user secrets, fast retries (see conftest_s3)."""


# -- sources: objects seeded once per module, read through the library ---------------------------
@dataclass
class Remote:
    """One object store with the seeded objects under ``prefix``; :meth:`cf` opens it directly or
    through a proxy URL."""

    kind: str
    server_url: str
    bucket: str
    prefix: str
    objects: dict[str, bytes] = field(default_factory=dict)

    def cloudpath(self, via: str | None = None) -> str:
        base = via or self.server_url
        if self.kind.startswith("s3"):
            return f"s3://{base}/{self.bucket}/{self.prefix}"
        if self.kind == "gcs":
            return f"gs://{self.bucket}/{self.prefix}"
        return f"{base}/{self.bucket}/{self.prefix}"  # http: fake-gcs-server's public path

    def cf(self, monkeypatch, via: str | None = None) -> CloudFiles:
        """A CloudFiles on this store. gs:// reads STORAGE_EMULATOR_HOST when its backend is made,
        so the backend is made here, while the variable points where this one should go."""
        if self.kind == "gcs":
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", via or self.server_url)
        cf = CloudFiles(self.cloudpath(via))
        cf.backend  # noqa: B018 - made now, with the environment of now
        return cf


def _seed_s3(server, objects: dict[str, bytes], prefix: str) -> str:
    bucket = server.new_bucket()
    admin = server.admin()
    for key, data in objects.items():
        extra = {"ContentEncoding": "gzip"} if key.endswith(".gz.txt") or key == "gz.txt" else {}
        admin.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data, **extra)
    return bucket


def _seed_gcs(server, objects: dict[str, bytes], prefix: str) -> str:
    bucket = "strm-" + uuid4().hex[:12]
    server.create_bucket(bucket)
    for key, data in objects.items():
        server.upload(bucket, f"{prefix}/{key}", data)
    return bucket


@pytest.fixture(scope="module")
def seeded(moto_server, rclone_server, gcs_server):
    """kind -> Remote holding ``big.bin`` (64 MiB), ``mid.bin`` (8 MiB), ``small`` and a gzip
    object ``gz.txt`` (``http`` has all but ``big.bin``; ``http-public`` reads the GCS bucket)."""
    objects = {
        "big.bin": os.urandom(BIG),
        "mid.bin": os.urandom(MID),
        "small": b"warm-up",
        "gz.txt": compression.compress(b"compressed text " * 1000, "gzip"),
    }
    prefix = "src"
    out = {
        "s3-moto": Remote("s3-moto", moto_server.endpoint, _seed_s3(moto_server, objects, prefix), prefix, objects),
        "s3-rclone": Remote("s3-rclone", rclone_server.endpoint, _seed_s3(rclone_server, objects, prefix), prefix,
                            objects),
    }
    gcs_bucket = _seed_gcs(gcs_server, {k: v for k, v in objects.items() if k != "gz.txt"}, prefix)
    gcs_server.upload(gcs_bucket, f"{prefix}/gz.txt", objects["gz.txt"], content_encoding="gzip")
    out["gcs"] = Remote("gcs", gcs_server.url, gcs_bucket, prefix, objects)
    # plain HTTP, out of process (for memory measurements): fake-gcs-server's public path; it
    # serves by Host header, so it cannot sit behind the fault proxy
    out["http-public"] = Remote("http", gcs_server.url, gcs_bucket, prefix, objects)
    # plain HTTP behind the fault proxy: the in-process object server, with x-goog-hash
    with HTTPObjectServer(goog_hash=True) as server:
        for key, data in objects.items():
            if key != "big.bin":
                server.put(f"web/{prefix}/{key}", data, content_encoding="gzip" if key == "gz.txt" else None)
        out["http"] = Remote("http", server.url, "web", prefix, objects)
        yield out


# -- a FaultProxy that records every request with its headers -------------------------------------
@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]  # names lower-cased

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


@pytest.fixture
def proxy_for(monkeypatch):
    """Factory ``proxy_for(server_url, plan=None)``: a FaultProxy in front of that server whose
    requests are recorded in ``proxy.seen`` (a list of :class:`Seen`)."""
    logs: dict[int, list[Seen]] = {}
    original = fault_proxy._read_request

    def recording(reader, client):
        request = original(reader, client)
        log = logs.get(client.getsockname()[1])
        if request is not None and log is not None:
            method, target, headers, _ = request
            log.append(Seen(method, target, {k.lower(): v for k, v in headers}))
        return request

    monkeypatch.setattr(fault_proxy, "_read_request", recording)
    made: list[FaultProxy] = []

    def make(server_url: str, plan=None) -> FaultProxy:
        parts = urlsplit(server_url)
        proxy = FaultProxy(parts.hostname, parts.port, plan)
        proxy.seen = logs.setdefault(proxy.port, [])  # type: ignore[attr-defined]
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()


def fault_on_gets(fault: str, needle: str, times: int | None = 1):
    """A plan: ``fault`` for the first ``times`` GETs whose target contains ``needle`` (every one
    if ``times`` is None); everything else is forwarded faithfully."""
    lock = threading.Lock()
    left = [times]

    def plan(method: str, target: str) -> str | None:
        if method != "GET" or needle not in target:
            return None
        with lock:
            if left[0] is None:
                return fault
            if left[0] > 0:
                left[0] -= 1
                return fault
        return None

    return plan


def object_gets(proxy: FaultProxy, key: str) -> list[Seen]:
    """GETs of ``key``'s bytes (media GETs on the GCS API; listings and metadata excluded)."""
    out = []
    for seen in proxy.seen:  # type: ignore[attr-defined]
        path, _, query = seen.target.partition("?")
        if seen.method == "GET" and unquote(path).endswith("/" + key) and "alt=json" not in query:
            if "/storage/v1/b/" in path and "alt=media" not in query:
                continue  # a GCS metadata request
            out.append(seen)
    return out


def md5_file(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def files_under(directory: str) -> list[str]:
    """Every file on disk under ``directory`` (hidden temporary and partial files included)."""
    out = []
    for dirpath, _, names in os.walk(directory):
        out += [os.path.relpath(os.path.join(dirpath, n), directory) for n in names]
    return sorted(out)


# -- memory bounds ------------------------------------------------------------------------------
def traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("resumable", [False, True], ids=["plain", "resumable"])
@pytest.mark.parametrize("kind", KINDS)
def test_download_to_file_streams_in_bounded_memory(seeded, kind, resumable, tmp_path, monkeypatch):
    kind = "http-public" if kind == "http" else kind  # out of process, so not traced
    src = seeded[kind].cf(monkeypatch)
    dest = CloudFiles("file://" + str(tmp_path / "dest"))
    dest.transfer_from(src, ["small"], resumable=resumable)  # clients and pools made outside the trace

    peak = traced_peak(lambda: dest.transfer_from(src, ["big.bin"], resumable=resumable))

    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB traced while streaming a {BIG // MiB} MiB object"
    assert md5_file(str(tmp_path / "dest" / "big.bin")) == hashlib.md5(seeded[kind].objects["big.bin"]).hexdigest()
    assert files_under(str(tmp_path / "dest")) == ["big.bin", "small"]


def test_streamed_download_keeps_the_stored_encoding(seeded, tmp_path, monkeypatch):
    for kind in KINDS:
        dest = CloudFiles("file://" + str(tmp_path / kind))
        dest.transfer_from(seeded[kind].cf(monkeypatch), ["gz.txt"])
        with open(tmp_path / kind / "gz.txt.gz", "rb") as f:
            assert f.read() == seeded[kind].objects["gz.txt"], kind
        assert dest.get("gz.txt") == b"compressed text " * 1000


@pytest.mark.parametrize("kind", ["gcs", "s3-moto"])
def test_upload_from_file_reads_the_handle_in_parts(kind, tmp_path, monkeypatch, moto_server, gcs_server):
    """file -> object store sends the file handle: memory follows the part size and the parts in
    flight, not the file size (GCS: ~11 parts of 1 MiB; S3: 4 parts of 8 MiB in flight)."""
    size, bound, threshold = (32 * MiB, 16 * MiB, MiB) if kind == "gcs" else (80 * MiB, 48 * MiB, 8 * MiB)
    data = os.urandom(size)
    src = CloudFiles("file://" + str(tmp_path / "src"))
    src.put("file.bin", data, raw=True)
    src.put("small", b"warm-up", raw=True)
    if kind == "gcs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
        bucket = "up-" + uuid4().hex[:12]
        gcs_server.create_bucket(bucket)
        dest = CloudFiles(f"gs://{bucket}/up", composite_upload_threshold=threshold)
    else:
        dest = CloudFiles(f"s3://{moto_server.endpoint}/{moto_server.new_bucket()}/up",
                          composite_upload_threshold=threshold)
    src.transfer_to(dest, ["small"])
    del data

    peak = traced_peak(lambda: src.transfer_to(dest, ["file.bin"]))

    assert peak < bound, f"{peak / MiB:.1f} MiB traced while uploading a {size // MiB} MiB file"
    if kind == "s3-moto":  # (fake-gcs-server does not mark composite objects as such)
        assert dest.head("file.bin")["ETag"].strip('"').endswith(f"-{size // threshold}")  # a multipart upload
    assert hashlib.md5(dest.get("file.bin")).digest() == hashlib.md5(src.get("file.bin")).digest()


# -- stream_to itself -----------------------------------------------------------------------------
def stream(backend, key: str, start: int = 0):
    """``(blob, bytes written)`` of ``backend.stream_to``, under the retry policy as the engine
    calls it (each attempt into a fresh file). Servers may hang up on a keep-alive connection
    (fake-gcs-server does after a 416): a retry is the cure for the resulting reset."""

    def attempt():
        out = BytesIO()
        return backend.stream_to(key, out, start), out.getvalue()

    return _retry.call(attempt, backend.retryable)


@pytest.mark.parametrize("kind", KINDS)
def test_stream_to_from_an_offset(seeded, kind, monkeypatch):
    backend = seeded[kind].cf(monkeypatch).backend
    data = seeded[kind].objects["mid.bin"]
    for start in (0, 5, MID - 1, MID, MID + 10):
        blob, written = stream(backend, "mid.bin", start)
        assert written == data[start:], start
        assert blob.content is None and blob.encoding is None
        assert blob.size == MID, start  # the whole object's size, also for ranges
        assert blob.hash is not None, start  # the whole object's checksum, also for ranges
    assert stream(backend, "missing") == (None, b"")
    assert stream(backend, "missing", 10) == (None, b"")
    blob, written = stream(backend, "gz.txt", 3)
    assert (blob.encoding, written) == ("gzip", seeded[kind].objects["gz.txt"][3:])


def test_http_stream_to_a_server_that_ignores_range():
    data = os.urandom(3 * MiB + 5)
    with HTTPObjectServer(honour_range=False, goog_hash=True) as server:
        server.put("d/obj", data)
        backend = CloudFiles(server.url + "/d").backend
        for start in (0, 7, 2 * MiB + 3, len(data), len(data) + 1):
            blob, written = stream(backend, "obj", start)
            assert written == data[start:], start
            assert blob.size == len(data) and blob.hash_type == "md5"


# -- resumable downloads ------------------------------------------------------------------------
@pytest.mark.parametrize("resumable", [True, False], ids=["resumable", "plain"])
@pytest.mark.parametrize("kind", KINDS)
def test_truncated_download_is_retried_from_where_it_stopped(seeded, kind, resumable, proxy_for, tmp_path,
                                                             monkeypatch):
    """The first answer is cut after half the body. Resumable: the retry asks only for the
    missing bytes (``Range: bytes=N-``, N = what reached the disk). Not resumable: the retry
    downloads the whole object again."""
    remote = seeded[kind]
    proxy = proxy_for(remote.server_url, fault_on_gets("truncate", "mid.bin"))
    dest_dir = str(tmp_path / "dest")

    CloudFiles("file://" + dest_dir).transfer_from(remote.cf(monkeypatch, proxy.url), ["mid.bin"],
                                                   resumable=resumable)

    gets = object_gets(proxy, "mid.bin")
    assert proxy.injected["truncate"] == 1 and len(gets) == 2, gets
    assert gets[0].range is None
    if resumable:
        first = int(gets[1].range.removeprefix("bytes=").removesuffix("-"))
        assert 0 < first <= MID // 2 and gets[1].range == f"bytes={first}-"
    else:
        assert gets[1].range is None
    with open(os.path.join(dest_dir, "mid.bin"), "rb") as f:
        assert f.read() == remote.objects["mid.bin"]
    assert files_under(dest_dir) == ["mid.bin"]  # no partial or temporary file left


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_run_leaves_a_partial_file_that_the_next_run_resumes(seeded, kind, proxy_for, tmp_path,
                                                                      monkeypatch):
    remote = seeded[kind]
    proxy = proxy_for(remote.server_url, fault_on_gets("truncate", "mid.bin"))
    src = remote.cf(monkeypatch, proxy.url)
    dest_dir = tmp_path / "dest"
    dest = CloudFiles("file://" + str(dest_dir))
    partial = dest_dir / ("." + "mid.bin" + PARTIAL_SUFFIX)

    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "1")  # the run gives up at the first fault
    with pytest.raises(Exception) as failure:
        dest.transfer_from(src, ["mid.bin"], resumable=True)
    assert src.backend.retryable(failure.value), repr(failure.value)
    kept = partial.stat().st_size
    assert 0 < kept <= MID // 2
    assert files_under(str(dest_dir)) == [partial.name]
    assert list(dest.list()) == [] and not dest.exists("mid.bin")  # the partial file is not listed

    monkeypatch.delenv("CLOUD_FILES_RETRY_ATTEMPTS")
    proxy.seen.clear()  # type: ignore[attr-defined]
    assert dest.transfer_from(src, ["mid.bin"], resumable=True).files == 1

    assert [g.range for g in object_gets(proxy, "mid.bin")] == [f"bytes={kept}-"]
    assert dest.get("mid.bin") == remote.objects["mid.bin"]
    assert files_under(str(dest_dir)) == ["mid.bin"]


@pytest.mark.parametrize("kind", ["s3-moto", "s3-rclone", "gcs", "http"])
def test_partial_files_that_do_not_fit_are_discarded(seeded, kind, proxy_for, tmp_path, monkeypatch):
    """What a partial file holds is checked with the whole object's checksum and size:
    wrong bytes or too many bytes are thrown away and the object is downloaded again; a partial
    file that already holds the whole object (a crash before the rename) is installed as is."""
    remote = seeded[kind]
    data = remote.objects["mid.bin"]
    proxy = proxy_for(remote.server_url)
    src = remote.cf(monkeypatch, proxy.url)
    dest_dir = tmp_path / "dest"
    dest = CloudFiles("file://" + str(dest_dir))
    partial = dest_dir / ("." + "mid.bin" + PARTIAL_SUFFIX)
    dest_dir.mkdir()

    cases = [
        ("wrong bytes", b"\0" * MiB, [f"bytes={MiB}-", None]),
        ("too long", data + b"extra", [f"bytes={MID + 5}-", None]),
        ("complete", data, [f"bytes={MID}-"]),
    ]
    for name, content, ranges in cases:
        partial.write_bytes(content)
        proxy.seen.clear()  # type: ignore[attr-defined]
        assert dest.transfer_from(src, ["mid.bin"], resumable=True).files == 1, name
        assert [g.range for g in object_gets(proxy, "mid.bin")] == ranges, name
        assert dest.get("mid.bin") == data, name
        assert files_under(str(dest_dir)) == ["mid.bin"], name


def test_two_downloads_of_one_destination_do_not_mix(seeded, tmp_path, monkeypatch):
    remote = seeded["s3-rclone"]
    dest = CloudFiles("file://" + str(tmp_path / "dest"), num_threads=4)
    pairs = [("mid.bin", "same.bin")] * 4  # four threads, one partial file: taken in turn
    assert dest.transfer_from(remote.cf(monkeypatch), pairs, resumable=True).files == 4
    assert dest.get("same.bin") == remote.objects["mid.bin"]
    assert files_under(str(tmp_path / "dest")) == ["same.bin"]


class _StallingServer:
    """An HTTP server that answers a GET without Range with the full Content-Length but only the
    first ``cut`` bytes, then goes silent (the client waits, as on a dead network); ranged GETs
    (``bytes=N-``) are answered properly. Every GET's Range header is recorded."""

    def __init__(self, data: bytes, cut: int):
        self.data, self.cut = data, cut
        self.ranges: list[str | None] = []
        self.release = threading.Event()
        server = self
        md5 = __import__("base64").b64encode(hashlib.md5(data).digest()).decode()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                wanted = self.headers.get("Range")
                server.ranges.append(wanted)
                if wanted is None:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("x-goog-hash", f"md5={md5}")
                    self.end_headers()
                    self.wfile.write(data[: server.cut])
                    self.wfile.flush()
                    server.release.wait(30)
                    self.close_connection = True
                    return
                first = int(wanted.removeprefix("bytes=").removesuffix("-"))
                self.send_response(206)
                self.send_header("Content-Length", str(len(data) - first))
                self.send_header("Content-Range", f"bytes {first}-{len(data) - 1}/{len(data)}")
                self.send_header("x-goog-hash", f"md5={md5}")
                self.end_headers()
                self.wfile.write(data[first:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_killed_download_is_resumed_by_the_next_run(tmp_path):
    """A process downloading with resumable=True is killed mid-object; the next run asks only
    for the bytes that are not on disk yet, verifies the whole file and installs it."""
    data = os.urandom(MID)
    server = _StallingServer(data, cut=MID // 2)
    dest_dir = tmp_path / "dest"
    partial = dest_dir / ("." + "obj.bin" + PARTIAL_SUFFIX)
    script = textwrap.dedent(f"""
        from cloudfiles_dask import CloudFiles
        CloudFiles({"file://" + str(dest_dir)!r}).transfer_from({server.url + "/d"!r}, ["obj.bin"], resumable=True)
    """)
    env = {**os.environ, "PYTHONPATH": ROOT, "CLOUD_FILES_READ_TIMEOUT": "60"}
    child = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not (partial.exists() and partial.stat().st_size == MID // 2):
            assert child.poll() is None, "the download ended instead of hanging"
            assert time.monotonic() < deadline, "the partial file never reached the cut"
            time.sleep(0.02)
        child.kill()
        child.wait(10)
        assert files_under(str(dest_dir)) == [partial.name]

        assert CloudFiles("file://" + str(dest_dir)).transfer_from(server.url + "/d", ["obj.bin"], resumable=True).files == 1
        assert server.ranges == [None, f"bytes={MID // 2}-"]
        assert (dest_dir / "obj.bin").read_bytes() == data
        assert files_under(str(dest_dir)) == ["obj.bin"]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        server.close()


# -- integrity on the streamed path -----------------------------------------------------------------
@pytest.mark.parametrize("resumable", [False, True], ids=["plain", "resumable"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_flipped_byte_is_caught_and_downloaded_again(seeded, kind, resumable, proxy_for, tmp_path, monkeypatch):
    remote = seeded[kind]
    proxy = proxy_for(remote.server_url, fault_on_gets("flip", "mid.bin"))
    dest_dir = str(tmp_path / "dest")

    CloudFiles("file://" + dest_dir).transfer_from(remote.cf(monkeypatch, proxy.url), ["mid.bin"],
                                                   resumable=resumable)

    assert proxy.injected["flip"] == 1
    assert [g.range for g in object_gets(proxy, "mid.bin")] == [None, None]  # the bad bytes were not kept
    with open(os.path.join(dest_dir, "mid.bin"), "rb") as f:
        assert f.read() == remote.objects["mid.bin"]
    assert files_under(dest_dir) == ["mid.bin"]


@pytest.mark.parametrize("resumable", [False, True], ids=["plain", "resumable"])
@pytest.mark.parametrize("kind", KINDS)
def test_bytes_flipped_every_time_raise_and_leave_nothing(seeded, kind, resumable, proxy_for, tmp_path,
                                                          monkeypatch):
    remote = seeded[kind]
    proxy = proxy_for(remote.server_url, fault_on_gets("flip", "mid.bin", times=None))
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    dest = CloudFiles("file://" + str(dest_dir))

    with pytest.raises(IntegrityError, match="mid.bin"):
        dest.transfer_from(remote.cf(monkeypatch, proxy.url), ["mid.bin"], resumable=resumable)

    assert len(object_gets(proxy, "mid.bin")) == 2  # one more try, then the error
    assert files_under(str(dest_dir)) == []  # no file at the name, no temporary or partial file
    assert not dest.exists("mid.bin")


def test_cloudfile_transfer_from_resumes_too(seeded, tmp_path, monkeypatch, proxy_for):
    """CloudFile passes ``resumable`` on: a partial file holding the whole object (a crash
    before the rename) is checked and installed without downloading the bytes again."""
    from cloudfiles_dask import CloudFile

    remote = seeded["s3-moto"]
    proxy = proxy_for(remote.server_url)
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    (dest_dir / ("." + "copy.bin" + PARTIAL_SUFFIX)).write_bytes(remote.objects["mid.bin"])

    CloudFile(str(dest_dir / "copy.bin")).transfer_from(remote.cloudpath(proxy.url) + "/mid.bin", resumable=True)

    assert [g.range for g in object_gets(proxy, "mid.bin")] == [f"bytes={MID}-"]
    assert (dest_dir / "copy.bin").read_bytes() == remote.objects["mid.bin"]
    assert files_under(str(dest_dir)) == ["copy.bin"]


def test_multipart_etag_of_a_file_is_computed_in_small_pieces(tmp_path):
    from cloudfiles_dask._engine import integrity

    for size in (0, 1, MiB - 1, MiB, 8 * MiB + 5, 17 * MiB + 3):
        data = os.urandom(size)
        path = tmp_path / f"f{size}"
        path.write_bytes(data)
        for part in (MiB, 5 * MiB, 8 * MiB):
            assert integrity._file_multipart_etag(str(path), part) == integrity.multipart_etag(data, part)
        assert integrity.matches_file(str(path), integrity.multipart_etag(data, 8 * MiB), "etag")
        assert integrity.matches_file(str(path), integrity.crc32c_b64(data), "crc32c")
        assert not integrity.matches_file(str(path), integrity.md5_hex(data + b"!"), "md5")


@pytest.mark.parametrize("resumable", [False, True], ids=["plain", "resumable"])
def test_a_multipart_object_is_verified_by_its_etag(moto_server, proxy_for, tmp_path, resumable):
    """A multipart upload's ETag (``<md5 of md5s>-N``) is recomputed over the file on disk: a
    clean download passes, a damaged one is refused."""
    root = f"s3://{moto_server.endpoint}/{moto_server.new_bucket()}/mp"
    data = os.urandom(20 * MiB)
    CloudFiles(root, composite_upload_threshold=8 * MiB).put("multi.bin", data, raw=True)
    assert CloudFiles(root).head("multi.bin")["ETag"].strip('"').endswith("-3")
    proxy = proxy_for(moto_server.endpoint, fault_on_gets("flip", "multi.bin", times=None))
    via_proxy = root.replace(moto_server.endpoint, proxy.url)

    dest = CloudFiles("file://" + str(tmp_path / "ok"))
    dest.transfer_from(root, ["multi.bin"], resumable=resumable)
    assert md5_file(str(tmp_path / "ok" / "multi.bin")) == hashlib.md5(data).hexdigest()
    with pytest.raises(IntegrityError):
        CloudFiles("file://" + str(tmp_path / "bad")).transfer_from(via_proxy, ["multi.bin"], resumable=resumable)
    assert files_under(str(tmp_path / "bad")) == []
