"""The backend contract suite: one abstract test class that every backend's test class subclasses.

A subclass provides one fixture, ``cloudpath``: a fresh, empty root on its backend. Tests store
objects through :meth:`BackendContract.write`, which is ``backend.put``; a read-only backend (HTTP)
overrides it to place objects on its server some other way, and the tests that are about writing
itself skip on read-only backends. A backend is done when this whole class passes on it.
"""

from __future__ import annotations

import io
import os
from datetime import datetime, timedelta, timezone

import pytest

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.backends.base import Backend, PutMeta
from cloudfiles_dask.exceptions import ReadOnlyBackendError

KEYS_WITH_CHARACTERS = [
    "plain",
    "with space",
    "unicodé-ß-日本",
    "plus+sign",
    "percent%20encoded",
    "hash#mark",
    "a/b/c/deep.bin",
    "dotted.name.tar",
]


class BackendContract:
    @pytest.fixture
    def cloudpath(self) -> str:  # pragma: no cover - provided by subclasses
        raise NotImplementedError

    @pytest.fixture
    def cf(self, cloudpath: str) -> CloudFiles:
        return CloudFiles(cloudpath)

    @pytest.fixture
    def backend(self, cf: CloudFiles) -> Backend:
        return cf.backend

    def write(self, backend: Backend, key: str, data: bytes, meta: PutMeta | None = None) -> None:
        """Store ``data`` under ``key`` (stored bytes, already encoded as ``meta.encoding``)."""
        backend.put(key, data, meta or PutMeta())

    def needs_writes(self, backend: Backend) -> None:
        if not backend.writable:
            pytest.skip(f"{type(backend).__name__} is read-only")

    # -- get / put -------------------------------------------------------------------------------
    def test_round_trip_bytes(self, backend: Backend) -> None:
        payload = os.urandom(100_003)
        self.write(backend, "obj", payload, PutMeta())
        blob = backend.get("obj")
        assert blob is not None
        assert blob.content == payload
        assert blob.encoding is None

    def test_empty_object(self, backend: Backend) -> None:
        self.write(backend, "empty", b"", PutMeta())
        blob = backend.get("empty")
        assert blob is not None and blob.content == b""
        assert backend.size("empty") == 0
        assert backend.exists_many(["empty"]) == {"empty": True}

    def test_missing(self, backend: Backend) -> None:
        assert backend.get("nope") is None
        assert backend.get("nope", 0, 10) is None
        assert backend.head("nope") is None
        assert backend.size("nope") is None
        assert backend.exists_many(["nope"]) == {"nope": False}
        if backend.writable:
            backend.delete_many(["nope"])  # not an error
        else:
            with pytest.raises(ReadOnlyBackendError):
                backend.delete_many(["nope"])

    @pytest.mark.parametrize("key", KEYS_WITH_CHARACTERS)
    def test_key_characters(self, backend: Backend, key: str) -> None:
        self.write(backend, key, key.encode(), PutMeta())
        assert backend.get(key).content == key.encode()
        assert [k for k, _ in backend.list(key)] == [key], list(backend.list(key))

    def test_encoding_is_recorded(self, backend: Backend) -> None:
        import gzip

        stored = gzip.compress(b"hello" * 100)
        self.write(backend, "text", stored, PutMeta(encoding="gzip", content_type="text/plain"))
        blob = backend.get("text")
        assert blob.encoding == "gzip"
        assert blob.content == stored
        head = backend.head("text")
        assert head["Content-Encoding"] == "gzip"
        assert head["Content-Length"] == len(stored)
        assert backend.size("text") == len(stored)
        assert [k for k, _ in backend.list("te")] == ["text"]

    def test_overwrite_with_other_encoding_leaves_one_form(self, backend: Backend) -> None:
        self.needs_writes(backend)
        import gzip

        backend.put("k", b"old plain", PutMeta())
        backend.put("k", gzip.compress(b"new"), PutMeta(encoding="gzip"))
        blob = backend.get("k")
        assert blob.encoding == "gzip" and gzip.decompress(blob.content) == b"new"
        backend.put("k", b"newest plain", PutMeta())
        blob = backend.get("k")
        assert (blob.encoding, blob.content) == (None, b"newest plain")
        assert [k for k, _ in backend.list("")] == ["k"]
        backend.delete_many(["k"])
        assert backend.get("k") is None

    def test_binary_file_handle(self, backend: Backend) -> None:
        self.needs_writes(backend)
        payload = os.urandom(3 * 1024 * 1024 + 5)
        backend.put("handle", io.BytesIO(payload), PutMeta())
        assert backend.get("handle").content == payload

    @pytest.mark.parametrize(
        "start,end",
        [(0, 5), (5, None), (None, 7), (-3, None), (2, 2), (10, 4), (None, -2), (-6, -2), (90, 200), (0, 10**9)],
    )
    def test_byte_ranges_follow_slice_rules(self, backend: Backend, start, end) -> None:
        payload = bytes(range(100))
        self.write(backend, "r", payload, PutMeta())
        assert backend.get("r", start, end).content == payload[start:end]

    # -- metadata -------------------------------------------------------------------------------------
    def test_head_fields(self, backend: Backend) -> None:
        self.write(backend, "h", b"12345", PutMeta(content_type="application/json"))
        head = backend.head("h")
        assert head["Content-Length"] == 5
        modified = head["Last-Modified"]  # an aware datetime, of about now (a parsed date)
        assert isinstance(modified, datetime) and modified.tzinfo is not None, modified
        assert abs(datetime.now(timezone.utc) - modified) < timedelta(hours=1), modified
        assert "Content-Encoding" in head and head["Content-Encoding"] is None

    def test_exists_many_batch(self, backend: Backend) -> None:
        keys = [f"e/{i:04d}" for i in range(50)]
        for key in keys[::2]:
            self.write(backend, key, b"x", PutMeta())
        found = backend.exists_many(keys)
        assert found == {k: i % 2 == 0 for i, k in enumerate(keys)}

    def test_delete_many(self, backend: Backend) -> None:
        self.needs_writes(backend)
        keys = [f"d/{i}" for i in range(30)]
        for key in keys:
            backend.put(key, b"x", PutMeta())
        backend.delete_many(keys[:20] + ["d/missing"])
        assert sorted(k for k, _ in backend.list("d/")) == sorted(keys[20:])

    # -- listing ------------------------------------------------------------------------------------------
    @pytest.fixture
    def tree(self, backend: Backend) -> Backend:
        for key in ["info", "info.txt", "build/info3", "level1/level2/x", "level1/y", "zzz"]:
            self.write(backend, key, key.encode(), PutMeta())
        return backend

    def test_list_recursive_sorted(self, tree: Backend) -> None:
        keys = [k for k, _ in tree.list("")]
        assert keys == sorted(keys)
        assert keys == ["build/info3", "info", "info.txt", "level1/level2/x", "level1/y", "zzz"]

    def test_list_prefix_is_a_string_prefix(self, tree: Backend) -> None:
        assert [k for k, _ in tree.list("inf")] == ["info", "info.txt"]
        assert [k for k, _ in tree.list("level1/l")] == ["level1/level2/x"]
        assert [k for k, _ in tree.list("nothing")] == []

    def test_list_flat(self, tree: Backend) -> None:
        assert [k for k, _ in tree.list("", flat=True)] == ["build/", "info", "info.txt", "level1/", "zzz"]
        assert [k for k, _ in tree.list("level1/", flat=True)] == ["level1/level2/", "level1/y"]
        assert [k for k, _ in tree.list("build/inf", flat=True)] == ["build/info3"]

    def test_list_sizes(self, tree: Backend) -> None:
        sizes = dict(tree.list("", size=True))
        assert sizes["info.txt"] == len(b"info.txt")
        assert sizes["level1/level2/x"] == len(b"level1/level2/x")

    def test_cloudfiles_flat_dir_without_slash(self, tree: Backend, cf: CloudFiles) -> None:
        assert list(cf.list("build", flat=True)) == ["build/info3"]

    def test_isdir(self, tree: Backend) -> None:
        assert tree.isdir("level1")
        assert tree.isdir("level1/")
        assert not tree.isdir("info")  # a file is not a directory
        assert not tree.isdir("missing")

    # -- capabilities -----------------------------------------------------------------------------------
    def test_copy_when_declared(self, backend: Backend, cloudpath: str) -> None:
        self.needs_writes(backend)
        other = CloudFiles(cloudpath.rstrip("/") + "/copies").backend
        if not backend.can_copy_to(other):
            pytest.skip(f"{type(backend).__name__} declares no copy to {type(other).__name__}")
        backend.put("src", b"payload", PutMeta(encoding=None))
        assert backend.copy_to("src", other, "dest") == len(b"payload")
        assert other.get("dest").content == b"payload"
        assert backend.copy_to("missing", other, "dest2") is None

    def test_touch_creates_missing_only(self, backend: Backend) -> None:
        self.needs_writes(backend)
        backend.put("t1", b"keep me", PutMeta())
        backend.touch(["t1", "t2"])
        assert backend.get("t1").content == b"keep me"
        assert backend.get("t2").content == b""
