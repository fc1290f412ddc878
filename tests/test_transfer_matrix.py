"""Every transfer strategy for every pair of backends, with and without re-encoding, checked byte
for byte and encoding for encoding.

Sources: mem, file, S3 on moto, S3 on rclone, GCS on fake-gcs-server, HTTP (read-only, so a source
only). Destinations: the same minus HTTP. ``reencode``: None (keep the stored encoding), "br",
False (store decoded). Each source holds the same small mixed set: plain, gzip, zstd and br
objects, an empty one, one 3 MiB binary, keys in sub-directories and with a space.

Which strategy ran is checked from the outside, without mocks:

- server-side copy (s3->s3 on one server, gs->gs): the source's requests, recorded by a fault-free
  FaultProxy in front of the server, hold no GET of an object (GCS: one rewrite per object);
- streamed download (-> file://): tracemalloc's peak stays below the 3 MiB object, while the
  general path, which holds whole objects, goes above it;
- upload from file handles (file:// ->): the 3 MiB file goes up as a multipart (S3) or
  composite (GCS) upload, the threshold being 1 MiB;
- general: each source object is read exactly once.

Servers and the seeded sources are made once per module; each test writes to a fresh prefix.
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_s3 are parameters here)

from __future__ import annotations

import os
import random
import threading
import tracemalloc
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit
from uuid import uuid4

import pytest

import cloudfiles_dask
from cloudfiles_dask import CloudFiles, compression
from tests.conftest_s3 import moto_server, rclone_server, s3_env  # noqa: F401 (fixtures)
from tests.servers.fault_proxy import FaultProxy
from tests.servers.http import HTTPObjectServer

MiB = 1024 * 1024
BIG = "big.bin"
BIG_SIZE = 3 * MiB
SOURCES = ["mem", "file", "s3-moto", "s3-rclone", "gcs", "http"]
DESTS = ["mem", "file", "s3-moto", "s3-rclone", "gcs"]
REENCODE = {"keep": None, "br": "br", "decode": False}
NETWORK = ("s3-moto", "s3-rclone", "gcs")
PREFIX = "src"


def _make_seed() -> dict[str, tuple[bytes, str | None]]:
    """key -> (stored bytes, stored encoding)."""
    rng = random.Random(4)
    text = b"".join(b"line %d of a text file\n" % i for i in range(2000))
    js = b'{"values": [' + b", ".join(b"%d" % i for i in range(3000)) + b"]}"
    return {
        "plain.txt": (text, None),
        "dir/sub/data.json": (compression.compress(js, "gzip"), "gzip"),
        "dir/with space.bin": (compression.compress(rng.randbytes(1000) + text, "zstd"), "zstd"),
        "deep/a/b/c.txt": (compression.compress(text[:5000], "br"), "br"),
        "empty": (b"", None),
        BIG: (rng.randbytes(BIG_SIZE), None),
    }


SEED = _make_seed()
DECODED = {key: compression.decompress(data, enc, key) for key, (data, enc) in SEED.items()}


def expected_strategy(src: str, dest: str, reencode) -> str:
    if reencode is not None:
        return "general"
    if src == dest and src != "http":
        return "copy"
    if dest == "file":
        return "stream"
    if src == "file":
        return "handles"
    return "general"


@pytest.fixture(autouse=True)
def _env(s3_env):
    """AWS test credentials, no proxies, no user secrets, fast retries (see conftest_s3)."""


# -- servers, recording proxies and the seeded sources (once per module) ----------------------------
class Recorder:
    """A FaultProxy plan that injects nothing and records ``(method, target)`` of each request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, method: str, target: str) -> None:
        with self._lock:
            self.seen.append((method, target))
        return None

    def requests(self, method: str, contains: str = "") -> list[str]:
        """Percent-decoded targets (path and query) of ``method`` requests containing ``contains``."""
        with self._lock:
            targets = [unquote(t) for m, t in self.seen if m == method]
        return [t for t in targets if contains in t]


@dataclass
class Server:
    url: str  # the real server
    proxy: FaultProxy  # a fault-free proxy in front of it, recording requests
    recorder: Recorder
    src_bucket: str
    dest_bucket: str


def _proxy(url: str) -> tuple[FaultProxy, Recorder]:
    recorder = Recorder()
    parts = urlsplit(url)
    return FaultProxy(parts.hostname, parts.port, recorder), recorder


@pytest.fixture(scope="module")
def servers(moto_server, rclone_server, gcs_server, tmp_path_factory):
    out: dict[str, object] = {}
    for kind, s3 in (("s3-moto", moto_server), ("s3-rclone", rclone_server)):
        src_bucket, dest_bucket = s3.new_bucket(), s3.new_bucket()
        admin = s3.admin()
        for key, (data, enc) in SEED.items():
            extra = {"ContentEncoding": enc} if enc else {}
            admin.put_object(Bucket=src_bucket, Key=f"{PREFIX}/{key}", Body=data, **extra)
        proxy, recorder = _proxy(s3.endpoint)
        out[kind] = Server(s3.endpoint, proxy, recorder, src_bucket, dest_bucket)
    src_bucket, dest_bucket = "mx-src-" + uuid4().hex[:10], "mx-dst-" + uuid4().hex[:10]
    gcs_server.create_bucket(src_bucket)
    gcs_server.create_bucket(dest_bucket)
    for key, (data, enc) in SEED.items():
        gcs_server.upload(src_bucket, f"{PREFIX}/{key}", data, content_encoding=enc)
    proxy, recorder = _proxy(gcs_server.url)
    out["gcs"] = Server(gcs_server.url, proxy, recorder, src_bucket, dest_bucket)

    file_root = "file://" + str(tmp_path_factory.mktemp("matrix-src"))
    _seed_with_library(CloudFiles(file_root))
    out["file"] = file_root

    with HTTPObjectServer(goog_hash=True) as http:
        for key, (data, enc) in SEED.items():
            http.put(f"web/{PREFIX}/{key}", data, content_encoding=enc)
        out["http"] = http
        yield out
    for kind in NETWORK:
        out[kind].proxy.close()


def _seed_with_library(cf: CloudFiles) -> None:
    cf.puts([{"path": k, "content": data, "compress": enc, "raw": True} for k, (data, enc) in SEED.items()])


@pytest.fixture
def open_root(servers, monkeypatch):
    """Factory ``open_root(kind, role, through_proxy)`` -> CloudFiles on a source or a fresh
    destination. Destinations on S3/GCS upload in parts above 1 MiB."""
    mem_buckets: list[str] = []

    def open_root(kind: str, role: str, through_proxy: bool = True) -> CloudFiles:
        threshold = {"composite_upload_threshold": MiB}
        if kind == "mem":
            bucket = f"mx-{role}-{uuid4().hex[:10]}"
            mem_buckets.append(bucket)
            cf = CloudFiles(f"mem://{bucket}/{PREFIX if role == 'src' else 'dest'}")
            if role == "src":
                _seed_with_library(cf)
            return cf
        if kind == "file":
            if role == "src":
                return CloudFiles(servers["file"])
            return CloudFiles(servers["file"] + f"-dest-{uuid4().hex[:10]}")
        if kind == "http":
            assert role == "src"
            return CloudFiles(f"{servers['http'].url}/web/{PREFIX}")
        server = servers[kind]
        url = server.proxy.url if through_proxy else server.url
        bucket = server.src_bucket if role == "src" else server.dest_bucket
        prefix = PREFIX if role == "src" else uuid4().hex[:12]
        if kind == "gcs":
            # the gs:// backend reads STORAGE_EMULATOR_HOST when it is made: make it now
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
            cf = CloudFiles(f"gs://{bucket}/{prefix}", **threshold)
            cf.backend  # noqa: B018
            return cf
        return CloudFiles(f"s3://{url}/{bucket}/{prefix}", **threshold)

    yield open_root
    for bucket in mem_buckets:
        cloudfiles_dask.clear_memory(bucket)


def _clear_records(servers) -> None:
    for kind in NETWORK:
        servers[kind].recorder.seen.clear()
    servers["http"].clear_requests()


def source_object_reads(servers, src_kind: str) -> int:
    """GETs of the seeded objects' bytes seen at the source (listings and metadata excluded)."""
    if src_kind == "http":
        return sum(1 for r in servers["http"].requests
                   if r.method == "GET" and r.path.startswith(f"/web/{PREFIX}/") and not r.path.endswith("/"))
    server = servers[src_kind]
    if src_kind == "gcs":
        return len([t for t in server.recorder.requests("GET", f"/b/{server.src_bucket}/o/") if "alt=media" in t])
    return len([t for t in server.recorder.requests("GET", f"/{server.src_bucket}/{PREFIX}/")])


def check_destination(dest: CloudFiles, reencode, keys: dict[str, str] | None = None) -> None:
    """Each destination key holds the source's content; its stored encoding and bytes are the
    source's (keep), br, or none (decode). ``keys`` maps destination key -> source key."""
    keys = keys or {k: k for k in SEED}
    results = {r["path"]: r for r in dest.get(list(keys), raw=True)}
    for dest_key, src_key in keys.items():
        stored, encoding = SEED[src_key]
        got = results[dest_key]
        assert got["error"] is None and got["content"] is not None, dest_key
        want_encoding = encoding if reencode is None else (None if reencode is False else "br")
        if want_encoding is None and dest.protocol == "s3":
            want_encoding = ""  # S3 reports no Content-Encoding as "", as the original does
        assert got["compress"] == want_encoding, (dest_key, got["compress"])
        assert compression.decompress(got["content"], got["compress"], dest_key) == DECODED[src_key], dest_key
        if reencode is None:
            assert got["content"] == stored, dest_key
        elif reencode is False:
            assert got["content"] == DECODED[src_key], dest_key


# -- the matrix ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("reencode_id", list(REENCODE))
@pytest.mark.parametrize("dest_kind", DESTS)
@pytest.mark.parametrize("src_kind", SOURCES)
def test_transfer_matrix(servers, open_root, src_kind, dest_kind, reencode_id):
    reencode = REENCODE[reencode_id]
    strategy = expected_strategy(src_kind, dest_kind, reencode)
    # a download to file:// is measured with tracemalloc: its source must not go through the
    # in-process proxy, which holds whole answers
    src = open_root(src_kind, "src", through_proxy=dest_kind != "file")
    dest = open_root(dest_kind, "dest")
    list(src.list())  # listing (and client set-up) outside the measurement
    _clear_records(servers)

    if dest_kind == "file":
        tracemalloc.start()
        try:
            written = src.transfer_to(dest, reencode=reencode).files
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        if strategy in ("stream", "copy"):
            assert peak < BIG_SIZE, f"{strategy}: {peak / MiB:.2f} MiB traced"
        elif src_kind != "mem":  # (mem:// hands out the stored object itself: nothing to copy)
            assert peak >= BIG_SIZE, f"{strategy}: only {peak / MiB:.2f} MiB traced"
    else:
        written = src.transfer_to(dest, reencode=reencode).files

    assert written == len(SEED)
    assert sorted(dest.list()) == sorted(SEED)  # nothing else: no temporary, partial or part objects
    if src_kind in NETWORK and dest_kind != "file" or src_kind == "http":
        reads = source_object_reads(servers, src_kind)
        assert reads == (0 if strategy == "copy" else len(SEED)), (strategy, reads)
    if strategy == "copy" and src_kind == "gcs":
        assert len(servers["gcs"].recorder.requests("POST", "/rewriteTo/")) == len(SEED)
    if dest_kind in NETWORK and strategy in ("handles", "general"):
        # the 3 MiB object went up in parts (threshold 1 MiB), from the file handle or the bytes
        recorder, bucket = servers[dest_kind].recorder, servers[dest_kind].dest_bucket
        if dest_kind == "gcs":
            assert any(t.split("?")[0].endswith(f"/{BIG}/compose") for t in recorder.requests("POST", f"/b/{bucket}/o/"))
        else:
            # CreateMultipartUpload ("?uploads", through botocore)
            assert any(t.split("?")[0].endswith(f"/{BIG}") and t.split("?", 1)[1].startswith("uploads")
                       for t in recorder.requests("POST", f"/{bucket}/") if "?" in t)
    check_destination(dest, reencode)
    if dest_kind == "file":
        on_disk = {os.path.relpath(os.path.join(d, n), dest.cloudpath[len("file://"):])
                   for d, _, names in os.walk(dest.cloudpath[len("file://"):]) for n in names}
        want = {k: SEED[k][1] if reencode is None else ("br" if reencode else None) for k in SEED}
        assert on_disk == {k + compression.ENCODING_SUFFIXES[e] if e else k for k, e in want.items()}


# -- renames, missing sources and cf[:] = other, on every pair ------------------------------------
@pytest.mark.parametrize("dest_kind", DESTS)
@pytest.mark.parametrize("src_kind", SOURCES)
def test_renames_missing_and_full_slice(servers, open_root, src_kind, dest_kind):
    src = open_root(src_kind, "src")
    dest = open_root(dest_kind, "dest")

    paths = [
        ("plain.txt", "renamed/one.txt"),
        {"path": "dir/sub/data.json", "dest_path": "two.json"},
        {"path": "deep/a/b/c.txt"},
        "dir/with space.bin",
    ]
    assert src.transfer_to(dest, paths=paths).files == 4
    renames = {"renamed/one.txt": "plain.txt", "two.json": "dir/sub/data.json",
               "deep/a/b/c.txt": "deep/a/b/c.txt", "dir/with space.bin": "dir/with space.bin"}
    check_destination(dest, None, renames)
    assert sorted(dest.list()) == sorted(renames)

    with pytest.raises(FileNotFoundError, match="ghost"):
        src.transfer_to(dest, paths=["empty", "ghost"])
    assert dest.transfer_from(src, paths=[("ghost", "x/ghost"), "empty"], allow_missing=True).files == 2
    assert dest.get("x/ghost") == b"" and dest.get("empty") == b""

    everything = open_root(dest_kind, "dest")
    everything[:] = src
    assert sorted(everything.list()) == sorted(SEED)
    check_destination(everything, None)


# -- when a server-side copy must not be used ---------------------------------------------------------
def test_s3_copy_needs_the_same_credentials_and_no_new_content_type(servers, open_root):
    """s3->s3 on one endpoint copies server-side only with the same credentials (the source's
    may not be readable with the destination's) and without a content type to set; otherwise
    the bytes pass through here (moto accepts any credentials, so both ways work)."""
    server = servers["s3-moto"]
    src_path = f"s3://{server.proxy.url}/{server.src_bucket}/{PREFIX}"
    keys = ["plain.txt", "dir/sub/data.json"]

    dest = open_root("s3-moto", "dest")
    _clear_records(servers)
    CloudFiles(src_path).transfer_to(dest, paths=keys)
    assert source_object_reads(servers, "s3-moto") == 0  # copied server-side

    other = {"AWS_ACCESS_KEY_ID": "another", "AWS_SECRET_ACCESS_KEY": "key"}
    for src, content_type in ((CloudFiles(src_path, secrets=other), None), (CloudFiles(src_path), "text/x-test")):
        dest = open_root("s3-moto", "dest")
        _clear_records(servers)
        assert src.transfer_to(dest, paths=keys, content_type=content_type).files == 2
        assert source_object_reads(servers, "s3-moto") == 2  # read here, then written
        check_destination(dest, None, {k: k for k in keys})
        if content_type:
            assert dest.head("plain.txt")["Content-Type"] == content_type


def test_resumable_changes_nothing_but_downloads_to_file(servers, open_root):
    """resumable=True on strategies other than the streamed download is accepted and ignored."""
    for src_kind, dest_kind in (("file", "s3-rclone"), ("s3-rclone", "s3-rclone"), ("s3-rclone", "gcs"),
                                ("file", "file"), ("mem", "mem")):
        dest = open_root(dest_kind, "dest")
        assert open_root(src_kind, "src").transfer_to(dest, resumable=True).files == len(SEED)
        check_destination(dest, None)
