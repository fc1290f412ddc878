"""Behaviour tests of CloudFile (one file by its full cloudpath) and dl() on mem:// and file://."""

from __future__ import annotations

import gzip
import os
import time

import brotli
import pytest

from cloudfiles_dask import CloudFile, CloudFiles, DecompressionError, dl

DATA = b"0123456789"
COMPRESSIBLE = b"".join(str(i * i).encode() + b"," for i in range(5000))


@pytest.fixture(autouse=True)
def _private_lock_dir(tmp_path, monkeypatch):
    """CloudFile locks by default on file://; keep lock files out of the home directory."""
    monkeypatch.setenv("CLOUD_FILES_LOCK_DIR", str(tmp_path / "locks"))


def is_mem(cloudpath: str) -> bool:
    return cloudpath.startswith("mem://")


@pytest.fixture
def fpath(cloudpath):
    return cloudpath + "/dir/f.bin"


# -- CloudFile ------------------------------------------------------------------------------------


def test_put_get(fpath):
    f = CloudFile(fpath)
    assert f.get() is None
    assert f.exists() is False
    assert f.put(DATA) == 1
    assert f.get() == DATA
    assert f.exists() is True
    assert CloudFiles(fpath.rsplit("/", 1)[0]).get("f.bin") == DATA
    assert f.filename == "f.bin"
    assert f.cloudpath == fpath


def test_get_ranges_slices_and_dicts(fpath):
    f = CloudFile(fpath)
    f.put(DATA)
    results = f.get(ranges=[slice(0, 3), {"start": 2, "end": 5}])  # result dicts, as the original
    assert [(r["path"], r["byte_range"], r["content"]) for r in results] == [
        ("f.bin", (0, 3), b"012"), ("f.bin", (2, 5), b"234")]
    results = f.get(ranges=[slice(7, None), {"start": -2}, slice(None, 2)])
    assert [r["content"] for r in results] == [b"789", b"89", b"01"]
    assert f.get(ranges=[]) == []


def test_getitem_slice(fpath):
    f = CloudFile(fpath)
    f.put(DATA)
    assert f[2:5] == b"234"
    assert f[:4] == b"0123"
    assert f[6:] == b"6789"
    assert f[:] == DATA


def test_len(fpath):
    f = CloudFile(fpath)
    with pytest.raises(FileNotFoundError):
        len(f)
    f.put(DATA)
    assert len(f) == 10
    f.put(COMPRESSIBLE, compress="gzip")
    assert len(f) == f.size() == len(f.get(raw=True))
    assert len(f) < len(COMPRESSIBLE)


def test_setitem_full_slice(fpath):
    f = CloudFile(fpath)
    f[:] = b"new content"
    assert f.get() == b"new content"
    f[:] = b"replaced"
    assert f.get() == b"replaced"


def test_put_with_compress_and_raw_get(fpath):
    f = CloudFile(fpath)
    f.put(COMPRESSIBLE, compress="gzip")
    assert f.get() == COMPRESSIBLE
    assert gzip.decompress(f.get(raw=True)) == COMPRESSIBLE
    assert [r["content"] for r in f.get(ranges=[slice(0, 2)], raw=True)] == [b"\x1f\x8b"]
    with pytest.raises(DecompressionError):
        f.get(ranges=[slice(0, 2)])


def test_json(fpath):
    f = CloudFile(fpath)
    assert f.put_json({"a": [1, 2, 3], "b": None}) == 1
    assert f.get_json() == {"a": [1, 2, 3], "b": None}
    f.put_json([1, "x"], compress="br")
    assert f.get_json() == [1, "x"]


def test_head_and_size(fpath, cloudpath):
    f = CloudFile(fpath)
    assert f.head() is None
    assert f.size() is None
    f.put(DATA)
    assert f.size() == 10
    head = f.head()
    assert head["Content-Length"] == 10
    assert head["Last-Modified"] is not None


def test_cache_meta(fpath):
    cached = CloudFile(fpath, cache_meta=True)
    fresh = CloudFile(fpath)
    cached.put(DATA)
    assert cached.size() == 10
    assert cached.head()["Content-Length"] == 10
    fresh.put(b"longer content than before")
    # cached: the remembered answers
    assert cached.size() == 10
    assert cached.head()["Content-Length"] == 10
    # not cached: up to date
    assert fresh.size() == 26
    assert fresh.head()["Content-Length"] == 26
    # a write through the caching object forgets
    cached.put(b"abc")
    assert cached.size() == 3
    assert cached.head()["Content-Length"] == 3
    cached.delete()
    assert cached.size() is None


def test_delete_exists_touch(fpath):
    f = CloudFile(fpath)
    f.touch()
    assert f.exists() is True
    assert f.get() == b""
    f.put(DATA)
    f.touch()
    assert f.get() == DATA
    f.delete()
    assert f.exists() is False
    assert f.get() is None
    f.delete()  # missing is fine


def test_touch_refreshes_mtime(fpath):
    f = CloudFile(fpath)
    f.put(DATA)
    before = f.head()["Last-Modified"]
    time.sleep(0.05)
    if fpath.startswith("file://"):
        path = fpath[len("file://") :]
        os.utime(path, (1_000_000_000, 1_000_000_000))
        before = f.head()["Last-Modified"]
    f.touch()
    assert f.head()["Last-Modified"] > before


def test_directory_path_refused(cloudpath):
    with pytest.raises(ValueError):
        CloudFile(cloudpath + "/")


def test_path_helpers(fpath, cloudpath):
    f = CloudFile(fpath)
    assert f.protocol == ("mem" if is_mem(cloudpath) else "file")
    assert f.sep == "/"
    assert f.join("a", "b") == "a/b"
    assert f.dirname("a/b") == "a"
    assert f.basename("a/b") == "b"


def test_locking_default_on_file(make_cloudpath, tmp_path):
    f = CloudFile(make_cloudpath("file") + "/locked.bin")
    assert f.lock_dir == str(tmp_path / "locks")
    f.put(DATA)
    assert f.get() == DATA
    assert os.listdir(tmp_path / "locks")
    f.clear_locks()
    assert os.listdir(tmp_path / "locks") == []
    assert CloudFile(make_cloudpath("mem") + "/x").lock_dir is None


# -- CloudFile transfers across backends ----------------------------------------------------------

PAIRS = [("mem", "file"), ("file", "mem"), ("mem", "mem"), ("file", "file")]


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
def test_transfer_to(make_cloudpath, src_kind, dest_kind):
    src = CloudFile(make_cloudpath(src_kind) + "/a/src.bin")
    src.put(COMPRESSIBLE, compress="gzip")
    dest_root = make_cloudpath(dest_kind)
    assert src.transfer_to(dest_root + "/b/dest.bin").files == 1
    dest = CloudFile(dest_root + "/b/dest.bin")
    assert dest.get() == COMPRESSIBLE
    assert dest.get(raw=True) == src.get(raw=True)  # the encoding is kept
    assert src.exists() is True
    # a destination ending in "/" keeps the name
    src.transfer_to(dest_root + "/c/")
    assert CloudFile(dest_root + "/c/src.bin").get() == COMPRESSIBLE
    # re-encode on the way
    src.transfer_to(dest_root + "/d/br.bin", reencode="br")
    assert brotli.decompress(CloudFile(dest_root + "/d/br.bin").get(raw=True)) == COMPRESSIBLE


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
def test_transfer_from(make_cloudpath, src_kind, dest_kind):
    src_path = make_cloudpath(src_kind) + "/s/orig.bin"
    CloudFile(src_path).put(DATA)
    dest = CloudFile(make_cloudpath(dest_kind) + "/copy.bin", cache_meta=True)
    dest.put(b"old")
    assert dest.size() == 3
    assert dest.transfer_from(src_path).files == 1
    assert dest.get() == DATA
    assert dest.size() == 10  # the cache was forgotten
    assert CloudFile(src_path).exists() is True


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
def test_move(make_cloudpath, src_kind, dest_kind):
    src = CloudFile(make_cloudpath(src_kind) + "/m/file.bin")
    src.put(COMPRESSIBLE, compress="zstd")
    stored = src.get(raw=True)
    dest_path = make_cloudpath(dest_kind) + "/moved/here.bin"
    assert src.move(dest_path) == 1
    assert src.exists() is False
    dest = CloudFile(dest_path)
    assert dest.get() == COMPRESSIBLE
    assert dest.get(raw=True) == stored


def test_transfer_missing_source(make_cloudpath):
    src = CloudFile(make_cloudpath("mem") + "/ghost.bin")
    with pytest.raises(FileNotFoundError, match="ghost"):
        src.transfer_to(make_cloudpath("file") + "/x")


# -- dl -------------------------------------------------------------------------------------------


def test_dl_scalar_returns_bytes(cloudpath):
    CloudFiles(cloudpath).put("d/x", DATA)
    assert dl(cloudpath + "/d/x") == DATA
    assert dl(cloudpath + "/d/missing") is None
    assert dl({"path": cloudpath + "/d/x", "start": 2, "end": 4}) == b"23"


def test_dl_scalar_compressed(cloudpath):
    CloudFiles(cloudpath).put("z", COMPRESSIBLE, compress="gzip")
    assert dl(cloudpath + "/z") == COMPRESSIBLE
    assert gzip.decompress(dl(cloudpath + "/z", raw=True)) == COMPRESSIBLE


def test_dl_many_across_buckets_in_input_order(make_cloudpath):
    mem1, mem2, disk = make_cloudpath("mem"), make_cloudpath("mem"), make_cloudpath("file")
    CloudFiles(mem1).puts([("a", b"mem1-a"), ("sub/b", b"mem1-b")])
    CloudFiles(mem2).puts([("a", b"mem2-a")], compress="gzip")
    CloudFiles(disk).puts([("a", b"disk-a"), ("deep/er/c", b"disk-c")])
    order = [
        disk + "/deep/er/c",
        mem1 + "/a",
        mem2 + "/a",
        mem1 + "/missing",
        disk + "/a",
        mem1 + "/sub/b",
    ]
    results = dl(order, num_threads=2)
    assert isinstance(results, list)
    assert [r["fullpath"] for r in results] == order
    assert [r["content"] for r in results] == [b"disk-c", b"mem1-a", b"mem2-a", None, b"disk-a", b"mem1-b"]
    assert results[2]["compress"] == "gzip"
    assert all(r["error"] is None for r in results)
    # "path" is relative to each group's bucket
    assert results[1]["path"].endswith("a")
    assert results[5]["path"].endswith("sub/b")


def test_dl_many_with_ranges_and_generator(make_cloudpath):
    mem, disk = make_cloudpath("mem"), make_cloudpath("file")
    CloudFiles(mem).put("r", DATA)
    CloudFiles(disk).put("r", DATA)
    results = dl(
        iter(
            [
                {"path": mem + "/r", "start": 1, "end": 3},
                {"path": disk + "/r", "byte_range": (5, 8)},
                {"path": disk + "/r", "start": -2},
            ]
        )
    )
    assert [r["content"] for r in results] == [b"12", b"567", b"89"]
    assert [r["fullpath"] for r in results] == [mem + "/r", disk + "/r", disk + "/r"]


def test_dl_raw_and_progress_callable(make_cloudpath):
    mem = make_cloudpath("mem")
    CloudFiles(mem).puts([("a", COMPRESSIBLE), ("b", b"bb")], compress="gzip")
    events = []
    results = dl([mem + "/a", mem + "/b"], raw=True, progress=events.append)
    assert gzip.decompress(results[0]["content"]) == COMPRESSIBLE
    assert [r["compress"] for r in results] == ["gzip", "gzip"]
    assert sum(e.files for e in events if e.kind == "advance") == 2
    assert events[0].kind == "start" and events[-1].kind == "close"
