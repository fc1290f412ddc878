"""gs:// specifics, against fake-gcs-server on 127.0.0.1 (and a recording proxy in front of it).

The proxy (``tests.servers.gcs.RecordingProxy``) records every request the library sends, so tests
can count requests and read their query strings and bodies; its rules inject faults (503, 403,
truncated bodies, refused batches) or, where fake-gcs-server departs from Google Cloud Storage,
apply GCS's documented behaviour (composite objects carry no md5 and report a component count).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from uuid import uuid4

import pytest

from cloudfiles_dask import CloudFiles, _retry, compression
from cloudfiles_dask._engine import integrity
from cloudfiles_dask.backends import gcs
from cloudfiles_dask.backends.base import PutMeta
from cloudfiles_dask.exceptions import AuthorizationError, CRC32CIntegrityError, MD5IntegrityError
from tests.servers.gcs import FakeGCSServer, RecordingProxy, Reply, service_account

PART_RE = re.compile(r"\.cfdask-part-[0-9a-f]{16}\.(\d+)\.(\d+)$")
KiB = 1024
MiB = 1024 * KiB
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(gcs_server):
    return gcs_server


@pytest.fixture(scope="module")
def module_proxy(server):
    with RecordingProxy(server.url) as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_RETRY_BASE", "0.01")
    monkeypatch.setenv("CLOUD_FILES_RETRY_MAX", "0.05")


@pytest.fixture
def bucket(server, monkeypatch) -> str:
    """A fresh bucket; the library talks to the emulator directly."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    name = "gcs-" + uuid4().hex[:16]
    server.create_bucket(name)
    return name


@pytest.fixture
def proxy(module_proxy):
    module_proxy.clear()
    gcs._NO_BATCH.discard(module_proxy.url)
    yield module_proxy
    module_proxy.clear()
    gcs._NO_BATCH.discard(module_proxy.url)


@pytest.fixture
def pbucket(server, proxy, monkeypatch) -> str:
    """A fresh bucket; the library talks to the emulator through the recording proxy."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
    name = "gcsp-" + uuid4().hex[:16]
    server.create_bucket(name)
    proxy.clear()
    return name


def parts_left(server: FakeGCSServer, bucket: str) -> list[str]:
    return [n for n in server.object_names(bucket) if ".cfdask-part-" in n]


def compose_requests(proxy: RecordingProxy) -> list[tuple[str, list[str], dict]]:
    """(destination name, source names, destination metadata) of each compose request seen."""
    out = []
    for seen in proxy.requests("POST", "/compose"):
        dest = seen.path.split("/o/", 1)[1].rsplit("/compose", 1)[0]
        body = json.loads(seen.body)
        out.append((dest, [s["name"] for s in body["sourceObjects"]], body.get("destination", {})))
    return out


def media_gets(proxy: RecordingProxy) -> list:
    return [s for s in proxy.requests("GET", "/download/") if s.query.get("alt") == "media"]


# -- codecs and Content-Encoding ---------------------------------------------------------------------
@pytest.mark.parametrize("codec", [None, "gzip", "br", "zstd", "xz", "bz2"])
def test_cloudfiles_round_trip_with_every_codec(server, bucket, codec):
    cf = CloudFiles(f"gs://{bucket}/codecs")
    payload = b"cloudfiles-dask " * 3000
    cf.put("obj", payload, compress=codec, content_type="text/plain", cache_control="no-cache")
    assert cf.get("obj") == payload
    head = cf.head("obj")
    assert head["Content-Encoding"] == codec
    assert head["Content-Type"] == "text/plain"
    assert head["Cache-Control"] == "no-cache"
    stored = server.download(bucket, "codecs/obj")  # behind the library's back
    assert server.metadata(bucket, "codecs/obj").get("contentEncoding") == codec
    raw = cf.get("obj", raw=True)
    assert raw == stored  # raw reads are the stored bytes: never transcoded
    if codec:
        assert raw != payload and compression.decompress(raw, codec) == payload


def test_foreign_bzip2_spelling_is_read_as_bz2(server, bucket):
    import bz2

    payload = b"written by another tool " * 100
    server.upload(bucket, "x/legacy", bz2.compress(payload), content_encoding="bzip2")
    cf = CloudFiles(f"gs://{bucket}/x")
    assert cf.get("legacy") == payload
    assert cf.head("legacy")["Content-Encoding"] == "bz2"


def test_gzip_object_without_cloudfiles_is_not_transcoded(server, bucket):
    payload = b"abc" * 1000
    stored = gzip.compress(payload)
    server.upload(bucket, "g/obj", stored, content_type="text/plain", content_encoding="gzip")
    blob = CloudFiles(f"gs://{bucket}/g").backend.get("obj")
    assert (blob.content, blob.encoding, blob.hash_type) == (stored, "gzip", "crc32c")
    assert blob.hash == integrity.crc32c_b64(stored)  # the checksum of the stored bytes


def test_reads_are_checked_with_crc32c_where_there_is_one(server, bucket):
    """crc32c is the cheaper check and is preferred to the md5; an object with only an md5 is
    checked with it; a composite one has only crc32c."""
    payload = b"checksums" * 1000
    server.upload(bucket, "c/obj", payload)
    backend = CloudFiles(f"gs://{bucket}/c").backend
    blob = backend.get("obj")
    assert (blob.hash_type, blob.hash) == ("crc32c", integrity.crc32c_b64(payload))
    assert gcs._pick_checksum("1B2M2Y8AsgTpgAmY7PhCfg==", "AAAAAA==", composite=False) == (
        "AAAAAA==", "crc32c")
    assert gcs._pick_checksum("AAAA", "AAAAAA==", composite=True) == ("AAAAAA==", "crc32c")
    assert gcs._pick_checksum("1B2M2Y8AsgTpgAmY7PhCfg==", None, composite=False) == (
        "d41d8cd98f00b204e9800998ecf8427e", "md5")


# -- requests: one per GET, the right headers and parameters ----------------------------------------
def test_one_request_per_get(pbucket, proxy):
    cf = CloudFiles(f"gs://{pbucket}/one")
    cf.put("plain", b"x" * 1000)
    cf.put("zipped", b"y" * 1000, compress="gzip")
    for key, expected in [("plain", b"x" * 1000), ("zipped", b"y" * 1000)]:
        proxy.clear()
        assert cf.get(key) == expected
        assert len(proxy.seen) == 1, proxy.seen
    proxy.clear()
    blob = cf.backend.get("plain", -5)
    assert blob.content == b"x" * 5
    assert len(proxy.seen) == 1 and proxy.seen[0].headers.get("Range") == "bytes=-5"
    proxy.clear()
    assert cf.backend.get("plain", 10, 20).content == b"x" * 10
    assert proxy.seen[0].headers.get("Range") == "bytes=10-19"
    proxy.clear()
    assert cf.backend.get("plain", 7, 7).content == b""
    assert len(proxy.seen) == 1 and media_gets(proxy) == []  # metadata only, no data request
    proxy.clear()
    assert cf.get("missing") is None and cf.head("missing") is None
    assert len(proxy.seen) == 2  # not retried


def test_put_sends_md5_and_content_type(pbucket, proxy):
    cf = CloudFiles(f"gs://{pbucket}/md5")
    cf.put("a", b"payload")
    cf.put("b", b"payload", content_type="application/json")
    uploads = proxy.requests("POST", "/upload/")
    assert len(uploads) == 2
    expected = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    for seen, content_type in zip(uploads, ["application/octet-stream", "application/json"], strict=True):
        assert seen.query.get("uploadType") == "multipart"
        metadata = json.loads(re.search(rb"\{.*?\}\r?\n", seen.body, re.S).group(0))
        assert metadata["md5Hash"] == expected
        assert metadata["contentType"] == content_type
        assert f"Content-Type: {content_type}\r\n\r\npayload\r\n".encode() in seen.body  # the media part
        assert "crc32c" not in metadata  # the library computed no checksum of its own


def test_request_payer_is_sent_as_user_project(server, pbucket, proxy):
    payer = "payer-project-1"
    cf = CloudFiles(f"gs://{pbucket}/rp", request_payer=payer, composite_upload_threshold=256 * KiB)
    dest_bucket = "gcsp-" + uuid4().hex[:16]
    server.create_bucket(dest_bucket)
    proxy.clear()
    cf.put("small", b"s" * 100, compress="gzip")
    cf.put("big", os.urandom(600 * KiB))  # composite: parts, compose, deletes
    cf.puts([(f"k{i}", b"v") for i in range(5)])
    assert cf.get("small") is not None and cf.get("big") is not None
    cf.get([{"path": "big", "start": 5, "end": 50}])
    cf.head("small")
    cf.size("small")
    cf.exists([f"k{i}" for i in range(5)] + ["nope"])
    list(cf.list(""))
    list(cf.list("", flat=True))
    cf.isdir("")
    cf.transfer_to(CloudFiles(f"gs://{dest_bucket}/copy", request_payer=payer), ["small"])
    cf.delete([f"k{i}" for i in range(5)])
    kinds = set()
    for seen in proxy.seen:
        if seen.path.startswith("/batch/"):
            inner = re.findall(rb"^(GET|DELETE) (\S+) HTTP/1.1", seen.body, re.M)
            assert inner and all(b"userProject=" + payer.encode() in target for _, target in inner)
            kinds.add("batch")
            continue
        assert seen.query.get("userProject") == payer, seen
        kinds.add((seen.method, seen.path.split("/")[1]))
    assert kinds >= {"batch", ("GET", "download"), ("GET", "storage"), ("POST", "upload"), ("POST", "storage")}
    assert proxy.requests("POST", "/rewriteTo/")  # the copy stayed on the server


# -- composite uploads -----------------------------------------------------------------------------------
def test_composite_upload_of_bytes(server, pbucket, proxy):
    cf = CloudFiles(f"gs://{pbucket}/comp", composite_upload_threshold=1 * MiB)
    payload = os.urandom(3 * MiB + MiB // 2)
    cf.put("big.bin", payload, content_type="application/x-test", cache_control="no-store", storage_class="NEARLINE")
    uploads = proxy.requests("POST", "/upload/")
    assert len(uploads) == 4
    crcs = {integrity.crc32c_b64(payload[i : i + MiB]) for i in range(0, len(payload), MiB)}
    for seen in uploads:  # parts are STANDARD class, sent with their crc32c (no md5 needed)
        metadata = json.loads(re.search(rb"\{.*?\}\r?\n", seen.body, re.S).group(0))
        assert PART_RE.search(metadata["name"]) and metadata["storageClass"] == "STANDARD"
        assert "md5Hash" not in metadata
        crcs.discard(metadata["crc32c"])
    assert not crcs  # each part's own crc32c
    (dest, sources, meta), = compose_requests(proxy)
    assert dest == "comp/big.bin"
    assert [PART_RE.search(s).groups() for s in sources] == [("0", str(i)) for i in range(4)]
    assert meta["contentType"] == "application/x-test"
    assert meta["cacheControl"] == "no-store"
    assert meta["storageClass"] == "NEARLINE"
    assert cf.get("big.bin") == payload
    assert parts_left(server, pbucket) == []
    assert server.object_names(pbucket) == ["comp/big.bin"]
    head = cf.head("big.bin")
    assert head["Content-Length"] == len(payload)
    assert (head["Content-Type"], head["Cache-Control"]) == ("application/x-test", "no-store")


class ReadCounter(io.RawIOBase):
    """A binary file handle over a real file that remembers the sizes asked of read()."""

    def __init__(self, path: str, fail_after: int | None = None):
        self._f = open(path, "rb")  # noqa: SIM115 - closed in close()
        self.sizes: list[int] = []
        self.fail_after = fail_after
        self.error: type[BaseException] | None = None  # raised instead of OSError when failing

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def read(self, size: int = -1) -> bytes:
        self.sizes.append(size)
        if self.fail_after is not None and len(self.sizes) > self.fail_after:
            raise self.error() if self.error else OSError("disk went away")
        return self._f.read(size)

    def close(self) -> None:
        self._f.close()
        super().close()


def test_composite_upload_of_file_handle_builds_a_two_level_tree(server, pbucket, proxy, tmp_path):
    part = 256 * KiB
    payload = os.urandom(39 * part + 1000)  # 40 parts
    path = tmp_path / "big.bin"
    path.write_bytes(payload)
    cf = CloudFiles(f"gs://{pbucket}/tree", composite_upload_threshold=part)
    handle = ReadCounter(str(path))
    with handle:
        cf.put("big.bin", handle, compress=None, content_type="application/x-tree")
    assert max(handle.sizes) <= part  # read part by part, never whole
    composes = compose_requests(proxy)
    assert len(composes) == 3
    intermediate = sorted(c for c in composes if c[0] != "tree/big.bin")
    assert [PART_RE.search(d).groups() for d, _, _ in intermediate] == [("1", "0"), ("1", "1")]
    assert [len(s) for _, s, _ in intermediate] == [32, 8]
    assert all(m["storageClass"] == "STANDARD" for _, _, m in intermediate)
    (final,) = [c for c in composes if c[0] == "tree/big.bin"]
    assert final[1] == [d for d, _, _ in intermediate]
    assert cf.get("big.bin") == payload
    assert parts_left(server, pbucket) == []


def test_zero_byte_file_handle_is_a_plain_upload(pbucket, proxy):
    cf = CloudFiles(f"gs://{pbucket}/z", composite_upload_threshold=1 * MiB)
    cf.put("empty", io.BytesIO(b""))
    cf.put("exact", io.BytesIO(b"e" * MiB))  # exactly the threshold: one part's worth
    assert cf.get("empty") == b"" and cf.get("exact") == b"e" * MiB
    assert compose_requests(proxy) == []


def gcs_composite_semantics(proxy: RecordingProxy, crc_override: dict | None = None):
    """After-rule: what Google Cloud Storage does and fake-gcs-server does not: objects made by
    compose have no md5 (only crc32c) and report their component count."""
    composed: dict[str, int] = {}

    def rule(seen, reply):
        if seen.method == "POST" and seen.path.endswith("/compose") and reply.status == 200:
            name = seen.path.split("/o/", 1)[1].rsplit("/compose", 1)[0]
            composed[name] = len(json.loads(seen.body)["sourceObjects"])
            return reply
        if seen.method != "GET" or "/o/" not in seen.path:
            return reply
        name = seen.path.split("/o/", 1)[1]
        if name not in composed or reply.status not in (200, 206):
            return reply
        if seen.query.get("alt") == "media":
            hashes = dict(p.split("=", 1) for p in reply.header("X-Goog-Hash").split(","))
            crc = (crc_override or {}).get(name, hashes["crc32c"])
            reply.set_header("X-Goog-Hash", f"crc32c={crc}")
            reply.set_header("X-Goog-Component-Count", str(composed[name]))
        else:
            meta = json.loads(reply.body)
            meta.pop("md5Hash", None)
            meta["componentCount"] = composed[name]
            reply.body = json.dumps(meta).encode()
        return reply

    proxy.after.append(rule)
    return composed


def test_composite_object_is_checked_with_crc32c(server, pbucket, proxy):
    crc_override: dict[str, str] = {}
    gcs_composite_semantics(proxy, crc_override)
    cf = CloudFiles(f"gs://{pbucket}/crc", composite_upload_threshold=1 * MiB)
    payload = os.urandom(3 * MiB + MiB // 2)
    cf.put("big", payload)
    blob = cf.backend.get("big")
    assert blob.hash_type == "crc32c"
    assert blob.hash == integrity.crc32c_b64(payload)
    assert integrity.matches(blob.content, blob.hash, blob.hash_type)
    assert cf.get("big") == payload
    head = cf.head("big")
    assert head["Component-Count"] == 4 and head["Content-Md5"] is None
    assert head["Content-Crc32c"] == integrity.crc32c_b64(payload)
    # the checksum is really compared: a wrong one is caught
    wrong = integrity.crc32c_b64(payload[:-1] + bytes([payload[-1] ^ 1]))
    assert not integrity.matches(payload, wrong, "crc32c")
    crc_override["crc/big"] = wrong
    with pytest.raises(CRC32CIntegrityError):
        cf.get("big")


@pytest.mark.parametrize("size, field, error", [
    (100 * KiB, "md5Hash", MD5IntegrityError),  # one request, sent with its md5
    (2 * MiB + 1, "crc32c", CRC32CIntegrityError),  # a part of a composite upload, with its crc32c
])
def test_an_upload_the_service_stored_differently_is_an_error(server, pbucket, proxy, size, field, error):
    """A server that stores whatever arrives (fake-gcs-server does) answers with the hash of
    what it stored: when that is not the hash of the bytes sent, the write fails loudly and no
    object is left under the key (nor any part)."""

    def damaged(seen, reply):
        if seen.method == "POST" and "/upload/" in seen.path and reply.status == 200:
            meta = json.loads(reply.body)
            meta[field] = integrity.crc32c_b64(b"other") if field == "crc32c" else "1B2M2Y8AsgTpgAmY7PhCfg=="
            reply.body = json.dumps(meta).encode()
        return reply

    proxy.after.append(damaged)
    cf = CloudFiles(f"gs://{pbucket}/dmg", composite_upload_threshold=1 * MiB)
    with pytest.raises(error, match="dmg/obj.*the damaged object was deleted"):
        cf.put("obj", os.urandom(size))
    proxy.after.remove(damaged)
    assert not cf.exists("obj")
    assert parts_left(server, pbucket) == []


def test_composite_failure_removes_parts_and_writes_nothing(server, bucket, tmp_path):
    part = 256 * KiB
    path = tmp_path / "src.bin"
    path.write_bytes(os.urandom(10 * part))
    cf = CloudFiles(f"gs://{bucket}/fail", composite_upload_threshold=part)
    handle = ReadCounter(str(path), fail_after=4)
    with handle, pytest.raises(OSError, match="disk went away"):
        cf.put("big", handle)
    assert server.object_names(bucket) == []


def test_composite_part_refused_by_server_cleans_up(server, pbucket, proxy):
    def refuse_third_part(seen):
        if seen.path.startswith("/upload/") and b".cfdask-part-" in seen.body and re.search(rb'\.0\.2"', seen.body):
            return Reply(400, [("Content-Type", "application/json")],
                         b'{"error": {"code": 400, "message": "bad part"}}')
        return None

    proxy.before.append(refuse_third_part)
    cf = CloudFiles(f"gs://{pbucket}/refused", composite_upload_threshold=256 * KiB)
    with pytest.raises(Exception, match="bad part") as raised:
        cf.put("big", os.urandom(5 * 256 * KiB))
    assert f"gs://{pbucket}/refused/big.cfdask-part-" in str(raised.value)
    assert server.object_names(pbucket) == []
    assert compose_requests(proxy) == []


def test_interrupted_upload_parts_are_found_and_cleaned(server, bucket, tmp_path):
    script = textwrap.dedent(
        f"""
        import io, os, sys, time
        sys.path.insert(0, {ROOT!r})
        from cloudfiles_dask import CloudFiles

        class Dies(io.RawIOBase):
            calls = 0
            def readable(self): return True
            def read(self, size=-1):
                Dies.calls += 1
                if Dies.calls > 4:      # three parts are on their way: wait, then die hard
                    time.sleep(1.5)
                    os._exit(3)
                return b"p" * size

        cf = CloudFiles("gs://{bucket}/dir", composite_upload_threshold=64 * 1024)
        cf.put("big.bin", Dies())
        """
    )
    env = {**os.environ, "STORAGE_EMULATOR_HOST": server.url}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, capture_output=True)
    assert done.returncode == 3, done.stderr.decode()
    CloudFiles(f"gs://{bucket}/dir").put("keep.bin", b"unrelated")
    found = gcs.find_composite_parts(f"gs://{bucket}/dir")
    assert len(found) == 3 and all(PART_RE.search(k) and k.startswith("big.bin.") for k in found)
    cf = CloudFiles(f"gs://{bucket}")
    assert gcs.find_composite_parts(cf, "dir/") == ["dir/" + k for k in found]
    assert gcs.find_composite_parts(cf, "other/") == []
    assert gcs.clean_composite_parts(cf, "dir/") == 3
    assert gcs.find_composite_parts(cf) == []
    assert server.object_names(bucket) == ["dir/keep.bin"]


# -- copy ----------------------------------------------------------------------------------------------------
def test_server_side_copy(server, pbucket, proxy):
    other = "gcsp-" + uuid4().hex[:16]
    server.create_bucket(other)
    src = CloudFiles(f"gs://{pbucket}/src")
    dest = CloudFiles(f"gs://{other}/dest")
    src.put("a.txt", b"alpha" * 100, compress="gzip", content_type="text/plain")
    src.put("b.bin", b"beta")
    proxy.clear()
    assert src.transfer_to(dest, ["a.txt", "b.bin"]).files == 2
    assert len(proxy.requests("POST", "/rewriteTo/")) == 2 and media_gets(proxy) == []
    assert dest.get("a.txt") == b"alpha" * 100 and dest.get("b.bin") == b"beta"
    assert dest.head("a.txt")["Content-Encoding"] == "gzip"
    assert src.backend.copy_to("missing", dest.backend, "x") is None
    nowhere = CloudFiles("gs://no-such-bucket-" + uuid4().hex[:8] + "/d").backend
    with pytest.raises(Exception, match="no-such-bucket") as raised:  # not "missing source"
        src.backend.copy_to("b.bin", nowhere, "x")
    assert not src.backend.retryable(raised.value)
    assert src.backend.can_copy_to(dest.backend)
    assert not src.backend.can_copy_to(CloudFiles(f"mem://{other}/x").backend)
    explicit = CloudFiles(f"gs://{other}/dest", secrets='{"type": "service_account"}')
    assert not src.backend.can_copy_to(explicit.backend)  # other credentials: copy via this process


# -- exists / delete batches ---------------------------------------------------------------------------
def test_batches_are_used_where_the_server_takes_them(pbucket, proxy):
    cf = CloudFiles(f"gs://{pbucket}/b")
    keys = [f"k{i:03d}" for i in range(150)]
    cf.puts([(k, b"1") for k in keys[::2]])
    proxy.clear()
    found = cf.exists(keys + ["no such"])
    assert found == {**{k: i % 2 == 0 for i, k in enumerate(keys)}, "no such": False}
    assert [s.path for s in proxy.seen] == ["/batch/storage/v1"] * 2  # 151 keys: 100 + 51
    proxy.clear()
    cf.delete(keys)
    assert [s.path for s in proxy.seen] == ["/batch/storage/v1"] * 2
    assert list(cf.list()) == []


def test_batch_refusal_falls_back_to_single_requests_and_is_remembered(pbucket, proxy):
    proxy.before.append(
        lambda seen: Reply(400, [("Content-Type", "text/plain")], b"batch? no") if seen.path.startswith("/batch/") else None
    )
    cf = CloudFiles(f"gs://{pbucket}/f", num_threads=8)
    keys = [f"k{i:02d}" for i in range(40)]
    cf.puts([(k, b"1") for k in keys[:20]])
    proxy.seen.clear()
    assert cf.exists(keys) == {k: i < 20 for i, k in enumerate(keys)}
    assert len(proxy.requests("POST", "/batch/")) == 1
    assert len(proxy.requests("GET", "/storage/v1/b/")) == 40
    assert cf.backend.exists_batch_size == 1 and cf.backend.delete_batch_size == 1
    assert CloudFiles(f"gs://{pbucket}/other").backend.exists_batch_size == 1  # remembered
    proxy.seen.clear()
    cf.delete(keys)  # half of them missing: not an error
    assert proxy.requests("POST", "/batch/") == []
    assert len(proxy.requests("DELETE")) == 40
    assert list(cf.list()) == []


def test_batch_sub_requests_that_fail_are_redone_one_by_one(pbucket, proxy):
    def busy(seen, reply):  # the batch answers 503 for every call in it
        if seen.path.startswith("/batch/"):
            reply.body = re.sub(rb"HTTP/1.1 \d{3} [^\r\n]*", b"HTTP/1.1 503 Service Unavailable", reply.body)
        return reply

    proxy.after.append(busy)
    cf = CloudFiles(f"gs://{pbucket}/s")
    cf.puts([("a", b"1"), ("b", b"2")])
    proxy.seen.clear()
    assert cf.exists(["a", "b", "c"]) == {"a": True, "b": True, "c": False}
    assert len(proxy.requests("POST", "/batch/")) == 1
    assert len(proxy.requests("GET", "/storage/v1/b/")) == 3
    assert cf.backend.exists_batch_size == 100  # a busy batch is not a refused one


# -- listing -------------------------------------------------------------------------------------------------
def test_listing_pages_and_flat_merge(server, bucket):
    names = ["a/1", "a/2", "a.txt", "b", "c/x/y", "c0", "d/", "e", "f/g", "zz"]
    for name in names:
        server.upload(bucket, "L/" + name, b"12345")
    backend = CloudFiles(f"gs://{bucket}/L").backend
    backend.list_page_size = 3
    assert [k for k, _ in backend.list("")] == sorted(n for n in names if not n.endswith("/"))
    assert dict(backend.list(""))["c/x/y"] == 5
    assert list(backend.list("", flat=True)) == [
        ("a.txt", 5), ("a/", None), ("b", 5), ("c/", None), ("c0", 5), ("d/", None),
        ("e", 5), ("f/", None), ("zz", 5),
    ]
    assert [k for k, _ in backend.list("c", flat=True)] == ["c/", "c0"]
    assert backend.isdir("a") and backend.isdir("d") and not backend.isdir("b") and not backend.isdir("q")


# -- errors and retries ----------------------------------------------------------------------------------------
def test_refusal_raises_authorization_error_naming_the_bucket(pbucket, proxy):
    cf = CloudFiles(f"gs://{pbucket}/auth")
    cf.put("x", b"1")
    for status in (403, 401):
        proxy.before[:] = [lambda seen, status=status: Reply(
            status, [("Content-Type", "application/json")],
            b'{"error": {"code": %d, "message": "caller does not have storage.objects.get access"}}' % status)]
        proxy.seen.clear()
        for action in (lambda: cf.get("x"), lambda: cf.head("x"), lambda: list(cf.list()),
                       lambda: cf.put("y", b"2"), lambda: cf.exists(["x", "y"])):
            with pytest.raises(AuthorizationError) as raised:
                action()
            message = str(raised.value)
            assert f"gs://{pbucket}" in message and str(status) in message
            assert "anonymous" in message  # the credentials in use
        assert len(proxy.seen) == 5  # no retries


def test_transient_errors_and_truncated_bodies_are_retried(pbucket, proxy, monkeypatch):
    cf = CloudFiles(f"gs://{pbucket}/t")
    payload = os.urandom(50_000)
    cf.put("x", payload)
    faults = [Reply(503, [("Content-Type", "text/plain")], b"busy")]

    def first_get_fails(seen):
        if seen.query.get("alt") == "media" and faults:
            return faults.pop()
        return None

    def truncate_once(seen, reply):
        if seen.query.get("alt") == "media" and truncations:
            truncations.pop()
            reply.truncate_to = len(reply.body) // 2
        return reply

    proxy.before.append(first_get_fails)
    proxy.seen.clear()
    assert cf.get("x") == payload
    assert len(media_gets(proxy)) == 2
    truncations = [1]
    proxy.after.append(truncate_once)
    proxy.seen.clear()
    assert cf.get("x") == payload
    assert len(media_gets(proxy)) == 2
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "1")
    truncations.append(1)
    with pytest.raises(Exception) as raised:
        cf.backend.get("x")
    assert cf.backend.retryable(raised.value)  # transient, never short data
    assert f"gs://{pbucket}/t/x" in "".join([str(raised.value), *getattr(raised.value, "__notes__", [])])
    faults.append(Reply(503, [("Content-Type", "text/plain")], b"busy"))
    with pytest.raises(Exception, match=f"gs://{pbucket}/t/x") as raised:
        cf.get("x")
    assert cf.backend.retryable(raised.value)


def test_retryable_classification():
    import pickle
    import ssl

    from google.auth import exceptions as auth

    from cloudfiles_dask import StorageError
    from cloudfiles_dask.backends import _http1
    from cloudfiles_dask.exceptions import MD5IntegrityError

    backend = CloudFiles("gs://some-bucket/x").backend
    for error in [gcs.GCSError("x", 429), gcs.GCSError("x", 503), gcs.GCSError("x", 408),
                  gcs.GCSConnectionError("x"), gcs.TruncatedBodyError("x"), ConnectionResetError(),
                  TimeoutError()]:
        assert backend.retryable(error), error
    for error in [gcs.GCSError("x", 404), gcs.GCSError("x", 403), gcs.GCSError("x", 400),
                  gcs.GCSConnectionError("x", transient=False), AuthorizationError("x"), ValueError("x"),
                  CRC32CIntegrityError("x"), MD5IntegrityError("x")]:
        assert not backend.retryable(error), error
    # what transport and token failures become: library errors naming the object
    for error, transient in [
        (ConnectionResetError("reset by peer"), True), (TimeoutError("timed out"), True),
        (_http1.ProtocolError("not an HTTP/1.x status line"), True), (_http1.IncompleteBody(5, 10), True),
        (ssl.SSLCertVerificationError("certificate verify failed"), False),
        (auth.TransportError("no route"), True), (auth.RefreshError("busy", retryable=True), True),
    ]:
        new = backend._translate(error, "k", "read")
        assert isinstance(new, StorageError) and new.transient is transient, (error, new)
        assert "gs://some-bucket/k" in str(new) and backend.retryable(new) is transient
        clone = pickle.loads(pickle.dumps(new))
        assert type(clone) is type(new) and clone.transient is transient
    refused = backend._translate(auth.RefreshError("invalid_grant"), "k", "read")
    assert isinstance(refused, AuthorizationError) and not backend.retryable(refused)
    assert backend._translate(KeyError("x"), "k", "read") is None  # not ours to explain


# -- credentials, clients, imports -------------------------------------------------------------------------------
def test_explicit_anonymous_credentials(bucket):
    from google.auth.credentials import AnonymousCredentials

    cf = CloudFiles(f"gs://{bucket}/anon", secrets=AnonymousCredentials())
    cf.put("x", b"hello")
    assert cf.get("x") == b"hello"
    assert "AnonymousCredentials" in cf.backend._c().source


def test_credentials_resolution_order(tmp_path, monkeypatch):
    """Explicit > emulator (anonymous) > <bucket>-google-secret.json > google-secret.json > default
    > anonymous. Nothing here sends a request."""
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError
    from google.oauth2 import service_account as sa

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("API_ENDPOINT_OVERRIDE", raising=False)
    secrets_dir = tmp_path / "cv" / "secrets"
    secrets_dir.mkdir(parents=True)
    monkeypatch.setenv("CLOUD_VOLUME_DIR", str(tmp_path / "cv"))
    monkeypatch.setenv("CLOUD_FILES_DIR", str(tmp_path / "cf"))
    gcs.reset_connections()
    defaults = []

    def no_default(*args, **kwargs):
        defaults.append(1)
        raise DefaultCredentialsError("none here")

    monkeypatch.setattr(google.auth, "default", no_default)

    def made(path: str, **kwargs):
        backend = CloudFiles(path, **kwargs).backend
        return backend, backend._c()

    # nothing at all: anonymous, no crash, and google.auth.default asked once per process
    backend, conn = made("gs://public-bucket/x")
    assert isinstance(conn.credentials, AnonymousCredentials) and conn.project is None
    assert "no google-secret.json" in conn.source
    made("gs://another-public-bucket/x")
    assert len(defaults) == 1

    generic, specific, explicit = service_account("p-generic"), service_account("p-bucket"), service_account("p-explicit")
    (secrets_dir / "google-secret.json").write_text(json.dumps(generic))
    (secrets_dir / "mybucket-google-secret.json").write_text(json.dumps(specific))
    _, conn = made("gs://mybucket/x")
    assert isinstance(conn.credentials, sa.Credentials) and conn.project == "p-bucket"
    _, conn = made("gs://otherbucket/x")
    assert conn.project == "p-generic"
    _, conn = made("gs://mybucket/x", secrets=json.dumps(explicit))  # a JSON string
    assert conn.project == "p-explicit"
    backend, conn = made("gs://mybucket/x", secrets=explicit)  # a dict: the same client
    assert conn is made("gs://mybucket/y", secrets=dict(explicit))[1]
    for text in (repr(backend), repr(CloudFiles("gs://mybucket/x", secrets=explicit)), conn.source):
        assert "PRIVATE KEY" not in text and explicit["private_key_id"] not in text
    with pytest.raises(ValueError) as raised:
        made("gs://mybucket/x", secrets={"type": "service_account", "private_key": "SECRET-MATERIAL"})
    assert "SECRET-MATERIAL" not in str(raised.value)

    # an emulator means anonymous unless credentials are explicit
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    _, conn = made("gs://mybucket/x")
    assert isinstance(conn.credentials, AnonymousCredentials)
    _, conn = made("gs://mybucket/x", secrets=explicit)
    assert conn.project == "p-explicit"
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")

    # default credentials when there are no files
    (secrets_dir / "google-secret.json").unlink()
    (secrets_dir / "mybucket-google-secret.json").unlink()
    gcs.reset_connections()
    fake = AnonymousCredentials()
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (fake, "p-default"))
    _, conn = made("gs://otherbucket/x")
    assert conn.credentials is fake and conn.project == "p-default"
    gcs.reset_connections()


def test_clients_are_cached_per_process_and_endpoint(bucket, server, monkeypatch):
    a = CloudFiles(f"gs://{bucket}/a").backend
    b = CloudFiles(f"gs://{bucket}/b").backend
    assert a._c() is b._c()
    bigger = CloudFiles(f"gs://{bucket}/c", num_threads=64).backend._c()
    assert bigger.pool_size >= 68 and bigger is not a._c()
    monkeypatch.setattr(gcs.os, "getpid", lambda: -12345)  # as if in a forked child
    assert CloudFiles(f"gs://{bucket}/d").backend._c().pid == -12345


def test_many_threads_share_one_pool_without_warnings(bucket, caplog):
    cf = CloudFiles(f"gs://{bucket}/threads", num_threads=16)
    items = {f"k{i}": os.urandom(100 + i) for i in range(200)}
    cf.puts(list(items.items()))
    results = cf.get(list(items))
    assert {r["path"]: r["content"] for r in results} == items
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_import_is_lazy_and_reads_need_no_storage_library(server):
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {ROOT!r})
        os.environ["STORAGE_EMULATOR_HOST"] = {server.url!r}
        import cloudfiles_dask
        cf = cloudfiles_dask.CloudFiles("gs://lazy-bucket/x")
        cf.backend
        assert "google.auth" not in sys.modules and "google.cloud.storage" not in sys.modules
        assert cf.get("missing") is None and cf.exists("missing") is False
        assert "google.cloud.storage" not in sys.modules
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert done.stdout.strip() == b"ok", done.stderr.decode()


def test_backend_pickles_without_its_connections(bucket):
    import pickle

    backend = CloudFiles(f"gs://{bucket}/p").backend
    backend.put("x", b"1", PutMeta())
    clone = pickle.loads(pickle.dumps(backend))
    assert clone.get("x").content == b"1"


def test_errors_are_storage_errors_and_a_missing_bucket_says_so(server, monkeypatch):
    from cloudfiles_dask import CloudFiles, StorageError

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    cf = CloudFiles("gs://no-such-bucket-" + uuid4().hex[:8] + "/a")
    with pytest.raises(StorageError, match="does not exist") as info:
        list(cf.list())
    assert info.value.transient is False and "gs://no-such-bucket" in str(info.value)
    with pytest.raises(StorageError):
        cf.put("x", b"data")  # writing into a missing bucket fails with a library error


# -- the engine's threads and retries -------------------------------------------------------------
class ThreadWatch:
    """Rules for the recording proxy: for the requests ``wanted`` picks, how many were in flight
    at most at once and every thread of this process alive meanwhile (among them the threads
    that sent them). Each such request is held ``hold`` seconds, so that requests overlap."""

    def __init__(self, wanted, hold: float = 0.1):
        self.wanted = wanted
        self.hold = hold
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.count = 0
        self.finished = 0
        self.alive: set[threading.Thread] = set()
        self.proxy_threads: set[threading.Thread] = set()
        self.at_start = set(threading.enumerate())

    def install(self, proxy: RecordingProxy) -> ThreadWatch:
        self.at_start = set(threading.enumerate())
        proxy.before.append(self.before)
        proxy.after.append(self.after)
        return self

    def before(self, seen):
        with self.lock:
            self.proxy_threads.add(threading.current_thread())
        if not self.wanted(seen):
            return None
        with self.lock:
            self.count += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.alive.update(threading.enumerate())
        time.sleep(self.hold)
        with self.lock:
            self.alive.update(threading.enumerate())
        return None

    def after(self, seen, reply):
        if self.wanted(seen):
            with self.lock:
                self.running -= 1
                self.finished += 1
        return reply

    def started(self) -> set[str]:
        """Names of the threads started since :meth:`install`, the proxy's own aside."""
        new = (self.alive | set(threading.enumerate())) - self.at_start - self.proxy_threads
        return {t.name for t in new if not t.name.endswith("(process_request_thread)")}


def is_part_upload(seen) -> bool:
    return seen.method == "POST" and seen.path.startswith("/upload/") and b".cfdask-part-" in seen.body


def test_composite_parts_run_on_the_engines_threads(server, pbucket, proxy, tmp_path):
    """A composite upload starts no thread of its own: its parts go out on the engine's reusable
    threads (``cfdask-worker``), at most PARTS_IN_FLIGHT at once, each read from the file only
    when a thread is free to send it."""
    part = 256 * KiB
    payload = os.urandom(11 * part + 100)  # 12 parts
    path = tmp_path / "big.bin"
    path.write_bytes(payload)
    cf = CloudFiles(f"gs://{pbucket}/seams", composite_upload_threshold=part)
    handle = ReadCounter(str(path))
    watch = ThreadWatch(is_part_upload)
    held: list[int] = []  # parts read from the file and not uploaded yet, as each upload arrives
    proxy.before.append(lambda seen: held.append(len(handle.sizes) - watch.finished)
                        if is_part_upload(seen) else None)
    watch.install(proxy)
    with handle:
        cf.put("big.bin", handle, compress=None)
    assert watch.count == 12
    assert watch.started() <= {"cfdask-worker"}, watch.started()
    assert 1 < watch.peak <= gcs.PARTS_IN_FLIGHT
    # the file's reads: one per part, a one-byte peek, and the last part's short read
    assert max(held) <= gcs.PARTS_IN_FLIGHT + 2, held
    assert cf.get("big.bin") == payload
    assert parts_left(server, pbucket) == []


def refuse_batches(seen):
    if seen.path.startswith("/batch/"):
        return Reply(400, [("Content-Type", "text/plain")], b"batch? no")
    return None


def test_batch_fallback_runs_on_the_engines_threads(server, pbucket, proxy):
    """The per-name fallback of a refused batch starts no thread of its own either: the names go
    out on the engine's reusable threads, at most num_threads at once."""
    keys = [f"k{i:02d}" for i in range(24)]
    for key in keys[:12]:
        server.upload(pbucket, f"fb/{key}", b"1")
    proxy.before.append(refuse_batches)
    cf = CloudFiles(f"gs://{pbucket}/fb", num_threads=8)
    watch = ThreadWatch(lambda seen: seen.method == "GET" and "/o/fb/" in seen.path, hold=0.05)
    watch.install(proxy)
    assert cf.exists(keys) == {k: i < 12 for i, k in enumerate(keys)}
    assert len(proxy.requests("POST", "/batch/")) == 1 and watch.count == 24
    assert watch.started() <= {"cfdask-worker"}, watch.started()
    assert 1 < watch.peak <= 8


def test_under_gevent_parts_and_fallback_names_run_side_by_side(server, pbucket, proxy, tmp_path):
    """Under gevent's monkey-patching (a real one, in a child process) the parts of a composite
    upload and the names of a batch fallback still go out side by side, on greenlets of the
    engine's runner, within their bounds (parts in flight, the thread budget)."""
    part = 256 * KiB
    payload = os.urandom(7 * part + 100)  # 8 parts
    path = tmp_path / "big.bin"
    path.write_bytes(payload)
    keys = [f"k{i:02d}" for i in range(16)]
    for key in keys[:4]:
        server.upload(pbucket, f"g/{key}", b"1")
    proxy.before.append(refuse_batches)
    parts = ThreadWatch(is_part_upload).install(proxy)
    names = ThreadWatch(lambda seen: seen.method == "GET" and "/o/g/k" in seen.path, hold=0.05).install(proxy)
    script = textwrap.dedent(
        f"""
        from gevent import monkey; monkey.patch_all()
        import sys
        sys.path.insert(0, {ROOT!r})
        from cloudfiles_dask import CloudFiles
        cf = CloudFiles("gs://{pbucket}/g", composite_upload_threshold={part}, num_threads=8)
        print(sum(cf.exists({keys!r}).values()))  # first: the batch is refused then
        with open({str(path)!r}, "rb") as f:
            cf.put("big.bin", f, compress=None)
        """
    )
    env = {**os.environ, "STORAGE_EMULATOR_HOST": proxy.url}
    done = subprocess.run([sys.executable, "-c", script], env=env, timeout=120, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.split() == [b"4"]
    assert (parts.count, names.count) == (8, 16)
    assert 1 < parts.peak <= gcs.PARTS_IN_FLIGHT and 1 < names.peak <= 8, (parts.peak, names.peak)
    assert CloudFiles(f"gs://{pbucket}/g").get("big.bin") == payload


def test_a_composite_part_that_keeps_failing_is_not_retried_again_by_the_engine(server, pbucket, proxy,
                                                                                monkeypatch):
    """A part is retried on its own; the error that survives is marked as retried already, so
    the engine does not send the whole upload again: the policy's attempts, not their square."""
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "3")
    tries = []

    def busy_second_part(seen):
        if is_part_upload(seen) and re.search(rb'\.cfdask-part-[0-9a-f]{16}\.0\.1"', seen.body):
            tries.append(seen)
            return Reply(503, [("Content-Type", "application/json")],
                         b'{"error": {"code": 503, "message": "busy"}}')
        return None

    proxy.before.append(busy_second_part)
    cf = CloudFiles(f"gs://{pbucket}/busy", composite_upload_threshold=256 * KiB)
    with pytest.raises(gcs.GCSError, match="HTTP 503: busy") as raised:
        cf.put("big", os.urandom(5 * 256 * KiB))
    assert len(tries) == 3
    # a 503 is transient by kind; the mark, not the kind, says it was retried already
    assert _retry.retried(raised.value) and cf.backend.retryable(raised.value)
    assert server.object_names(pbucket) == []


def test_a_name_that_keeps_failing_after_a_batch_is_not_retried_again_by_the_engine(server, pbucket,
                                                                                    proxy, monkeypatch):
    """A sub-request the batch answered with a 503 is redone on its own, under the policy; what
    still fails is not retried again with the whole batch by the engine."""
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "3")

    def busy(seen, reply):  # the batch answers 503 for every call in it
        if seen.path.startswith("/batch/"):
            reply.body = re.sub(rb"HTTP/1.1 \d{3} [^\r\n]*", b"HTTP/1.1 503 Service Unavailable", reply.body)
        return reply

    tries = []

    def b_is_busy(seen):
        if seen.method == "GET" and seen.path.endswith("/o/s/b"):
            tries.append(seen)
            return Reply(503, [("Content-Type", "application/json")],
                         b'{"error": {"code": 503, "message": "busy"}}')
        return None

    proxy.after.append(busy)
    proxy.before.append(b_is_busy)
    cf = CloudFiles(f"gs://{pbucket}/s")
    with pytest.raises(gcs.GCSError, match="HTTP 503: busy") as raised:
        cf.exists(["a", "b", "c"])
    assert len(proxy.requests("POST", "/batch/")) == 1
    assert len(tries) == 3
    assert _retry.retried(raised.value)


def test_parts_in_flight_land_before_a_failed_upload_is_cleaned(server, pbucket, proxy, tmp_path):
    """A failure while parts are on their way (Ctrl-C included: here KeyboardInterrupt from
    the file) removes the parts only once every upload in flight has ended: none is left."""
    part = 256 * KiB
    path = tmp_path / "src.bin"
    path.write_bytes(os.urandom(10 * part))
    watch = ThreadWatch(is_part_upload, hold=0.3).install(proxy)
    handle = ReadCounter(str(path), fail_after=4)  # the file, a peek, two more parts: then fails
    handle.error = KeyboardInterrupt
    cf = CloudFiles(f"gs://{pbucket}/ki", composite_upload_threshold=part)
    with handle, pytest.raises(KeyboardInterrupt):
        cf.put("big", handle)
    assert watch.count == 3 and watch.running == 0
    assert server.object_names(pbucket) == []
