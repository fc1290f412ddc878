"""Behaviour tests of the CloudFiles public API on mem:// and file://."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import time

import brotli
import orjson
import pytest
import zstandard

import cloudfiles_dask
from cloudfiles_dask import (
    CloudFiles,
    DecompressionError,
    PathEscapeError,
    ProcessBoundaryError,
    UnsupportedProtocolError,
)

RESULT_KEYS = {"path", "content", "byte_range", "error", "compress", "raw", "tags"}

DECODERS = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda b: zstandard.ZstdDecompressor().decompress(b),
    "xz": lzma.decompress,
    "bz2": bz2.decompress,
}
SUFFIX = {"gzip": ".gz", "br": ".br", "zstd": ".zstd", "xz": ".xz", "bz2": ".bz2"}

COMPRESSIBLE = b"".join(str(i * i).encode() + b"," for i in range(20000))


def is_mem(cloudpath: str) -> bool:
    return cloudpath.startswith("mem://")


@pytest.fixture
def cf(cloudpath):
    return CloudFiles(cloudpath)


# -- get ------------------------------------------------------------------------------------------


def test_get_scalar_returns_bytes_or_none(cf):
    cf.put("a", b"hello")
    assert cf.get("a") == b"hello"
    assert cf.get("missing") is None


def test_get_list_returns_result_dicts_in_input_order(cf):
    cf.puts([(f"k{i}", f"v{i}".encode()) for i in range(30)])
    order = [f"k{i}" for i in reversed(range(30))] + ["missing"]
    results = cf.get(order)
    assert isinstance(results, list)
    assert [r["path"] for r in results] == order
    for r in results:
        assert set(r) == RESULT_KEYS
        assert r["error"] is None
        assert r["raw"] is False
        assert r["tags"] is None
        assert r["byte_range"] == (None, None)
        assert r["compress"] is None
    assert [r["content"] for r in results[:-1]] == [f"v{i}".encode() for i in reversed(range(30))]
    assert results[-1]["content"] is None


def test_get_generator_with_total(cf):
    cf.puts([("a", b"1"), ("b", b"2"), ("c", b"3")])
    gen = (k for k in ["c", "a", "b"])
    results = cf.get(gen, total=3)
    assert [(r["path"], r["content"]) for r in results] == [("c", b"3"), ("a", b"1"), ("b", b"2")]


def test_get_generator_without_total(cf):
    cf.puts([("a", b"1"), ("b", b"2")])
    results = cf.get(k for k in ["b", "a"])
    assert [r["content"] for r in results] == [b"2", b"1"]


def test_get_dict_ranges_and_tags(cf):
    cf.put("a", b"0123456789")
    requests = [
        {"path": "a", "start": 2, "end": 5, "tags": {"id": 1}},
        {"path": "a", "start": -3, "tags": "neg"},
        {"path": "a", "start": 7},
        {"path": "a", "end": 2},
        {"path": "a", "start": -4, "end": -1},
        {"path": "a"},
    ]
    results = cf.get(requests)
    assert [r["content"] for r in results] == [b"234", b"789", b"789", b"01", b"678", b"0123456789"]
    assert [r["tags"] for r in results] == [{"id": 1}, "neg", None, None, None, None]
    assert results[0]["byte_range"] == (2, 5)
    assert results[1]["byte_range"] == (-3, None)
    # Scalar dict input gives just the bytes.
    assert cf.get({"path": "a", "start": 1, "end": 4}) == b"123"
    assert cf.get({"path": "a", "start": -2}) == b"89"


def test_get_ranges_outside_the_file(cf):
    cf.put("a", b"0123456789")
    assert cf.get({"path": "a", "start": 5, "end": 2}) == b""
    assert cf.get({"path": "a", "start": 20}) == b""
    assert cf.get({"path": "a", "start": -20, "end": 3}) == b"012"
    assert cf.get({"path": "a", "start": 8, "end": 100}) == b"89"
    assert cf.get({"path": "missing", "start": 1, "end": 2}) is None


def test_get_missing_raw_and_directory_names(cf):
    cf.put("dir/x", b"1")
    (res,) = cf.get(["missing"], raw=True)
    assert res["content"] is None and res["error"] is None and res["compress"] is None
    # a "directory" is not a file
    assert cf.get("dir") is None
    assert cf.get("dir/x/deeper") is None  # a file used as a directory
    assert cf.exists("dir/x/deeper") is False
    assert cf.exists("dir") is False
    assert cf.size("dir") is None
    assert cf.head("dir") is None


def test_get_raw_returns_stored_bytes_with_compress(cf):
    cf.put("z", COMPRESSIBLE, compress="gzip")
    stored = cf.get("z", raw=True)
    assert stored != COMPRESSIBLE
    assert stored[:2] == b"\x1f\x8b"
    assert gzip.decompress(stored) == COMPRESSIBLE
    (res,) = cf.get(["z"], raw=True)
    assert res["content"] == stored
    assert res["compress"] == "gzip"
    assert res["raw"] is True
    (res,) = cf.get(["z"])
    assert res["content"] == COMPRESSIBLE
    assert res["compress"] == "gzip"
    assert res["raw"] is False


def test_get_return_dict(cf):
    cf.puts([("a", b"1"), ("b", b"2")])
    assert cf.get(["a", "b", "missing"], return_dict=True) == {"a": b"1", "b": b"2", "missing": None}


def test_get_raise_errors_false_puts_exception_in_error(cf):
    cf.put("good", b"fine")
    cf.put("bad", b"this is not gzip data", raw=True, compress="gzip")
    results = cf.get(["bad", "good"], raise_errors=False)
    assert [r["path"] for r in results] == ["bad", "good"]
    assert isinstance(results[0]["error"], DecompressionError)
    assert results[0]["content"] is None
    assert results[1]["error"] is None
    assert results[1]["content"] == b"fine"

    with pytest.raises(DecompressionError, match="bad"):
        cf.get(["good", "bad"])
    with pytest.raises(DecompressionError, match="bad"):
        cf.get(["good", "bad"], raise_errors=True)
    with pytest.raises(DecompressionError, match="bad"):
        cf.get("bad")
    # return_dict always raises
    with pytest.raises(DecompressionError):
        cf.get(["bad"], return_dict=True, raise_errors=False)
    # raw=True does not decode, so it does not fail
    assert cf.get("bad", raw=True) == b"this is not gzip data"


def test_get_corrupt_gz_written_on_disk(make_cloudpath, disk):
    cloudpath = make_cloudpath("file")
    disk.write(cloudpath, "corrupt.gz", b"\x1f\x8bgarbage that is not deflate")
    disk.write(cloudpath, "ok", b"ok")
    cf = CloudFiles(cloudpath)
    results = cf.get(["corrupt", "ok"], raise_errors=False)
    assert isinstance(results[0]["error"], DecompressionError)
    assert results[0]["content"] is None
    assert results[1]["content"] == b"ok"
    with pytest.raises(DecompressionError, match="corrupt"):
        cf.get(["corrupt", "ok"])


def test_ranged_read_of_compressed_needs_raw(cf):
    cf.put("z", COMPRESSIBLE, compress="gzip")
    stored = cf.get("z", raw=True)
    with pytest.raises(DecompressionError, match="z"):
        cf.get({"path": "z", "start": 0, "end": 10})
    with pytest.raises(DecompressionError):
        cf.get([{"path": "z", "start": 0, "end": 10}])
    assert cf.get({"path": "z", "start": 0, "end": 10}, raw=True) == stored[:10]
    (res,) = cf.get([{"path": "z", "start": 5, "end": 12}], raw=True)
    assert res["content"] == stored[5:12]
    assert res["compress"] == "gzip"


# -- JSON -----------------------------------------------------------------------------------------


def test_get_json_keeps_order_with_none(cf):
    cf.put_json("a", {"x": 1})
    cf.put_json("b", [1, 2, 3])
    cf.put_json("c", "str")
    assert cf.get_json("a") == {"x": 1}
    assert cf.get_json("missing") is None
    assert cf.get_json(["c", "missing", "a", "b"]) == ["str", None, {"x": 1}, [1, 2, 3]]
    assert cf.get_json(iter(["b", "a"])) == [[1, 2, 3], {"x": 1}]


def test_get_json_duplicates(cf):
    cf.put_json("a", {"v": 1})
    assert cf.get_json(["a", "missing", "a"]) == [{"v": 1}, None, {"v": 1}]


def test_put_json_roundtrip_and_content_type(cf, cloudpath):
    assert cf.put_json("j", {"a": [1, 2], "b": None}, compress="gzip") == 1
    assert cf.get_json("j") == {"a": [1, 2], "b": None}
    assert orjson.loads(cf.get("j")) == {"a": [1, 2], "b": None}
    if is_mem(cloudpath):
        assert cf.head("j")["Content-Type"] == "application/json"


def test_put_jsons(cf, cloudpath):
    n = cf.put_jsons(
        [("a", {"x": 1}), {"path": "b", "content": [1, 2]}, ("c", 3)],
        cache_control="no-cache",
    )
    assert n == 3
    assert cf.get_json(["a", "b", "c"]) == [{"x": 1}, [1, 2], 3]
    if is_mem(cloudpath):
        for key in "abc":
            head = cf.head(key)
            assert head["Content-Type"] == "application/json"
            assert head["Cache-Control"] == "no-cache"


def test_put_jsons_generator_and_compress(cf):
    n = cf.put_jsons(((f"j{i}", {"i": i}) for i in range(5)), compress="br")
    assert n == 5
    assert cf.get_json([f"j{i}" for i in range(5)]) == [{"i": i} for i in range(5)]
    assert cf.get(["j0"], raw=True)[0]["compress"] == "br"


# -- puts -----------------------------------------------------------------------------------------


def test_puts_tuples_and_dicts_mixed(cf):
    n = cf.puts(
        [
            ("a", b"1"),
            {"path": "b", "content": b"2"},
            ("c", b"3"),
            {"path": "d/e", "content": b"4", "compress": "gzip"},
        ]
    )
    assert n == 4
    assert cf.get(["a", "b", "c", "d/e"], return_dict=True) == {
        "a": b"1",
        "b": b"2",
        "c": b"3",
        "d/e": b"4",
    }


def test_puts_per_item_overrides(cf):
    cf.puts(
        [
            ("plain_default", COMPRESSIBLE),
            {"path": "override_none", "content": COMPRESSIBLE, "compress": None},
            {"path": "override_zstd", "content": COMPRESSIBLE, "compress": "zstd"},
        ],
        compress="br",
    )
    results = {r["path"]: r for r in cf.get(["plain_default", "override_none", "override_zstd"], raw=True)}
    assert results["plain_default"]["compress"] == "br"
    assert results["override_none"]["compress"] is None
    assert results["override_zstd"]["compress"] == "zstd"
    assert brotli.decompress(results["plain_default"]["content"]) == COMPRESSIBLE
    assert results["override_none"]["content"] == COMPRESSIBLE
    for key in results:
        assert cf.get(key) == COMPRESSIBLE


def test_puts_generator(cf):
    n = cf.puts((f"g{i}", bytes([i])) for i in range(10))
    assert n == 10
    assert sorted(cf.list()) == sorted(f"g{i}" for i in range(10))
    assert cf.get("g7") == b"\x07"


def test_puts_duplicates_refused_before_writing(cf):
    with pytest.raises(ValueError, match="dup"):
        cf.puts([("a", b"1"), ("dup", b"2"), ("b", b"3"), ("dup", b"4")])
    assert cf.exists(["a", "dup", "b"]) == {"a": False, "dup": False, "b": False}
    assert list(cf.list()) == []


def test_puts_duplicates_refused_with_parallel(make_cloudpath):
    cf = CloudFiles(make_cloudpath("file"), parallel=2)
    with pytest.raises(ValueError, match="dup"):
        cf.puts([("dup", b"1"), ("other", b"2"), ("dup", b"3")])
    assert list(cf.list()) == []


@pytest.mark.parametrize("method", ["gzip", "br", "zstd", "xz", "bz2"])
def test_compress_roundtrip(cf, cloudpath, disk, method):
    assert cf.puts([("c", COMPRESSIBLE)], compress=method) == 1
    assert cf.get("c") == COMPRESSIBLE
    (res,) = cf.get(["c"], raw=True)
    assert res["compress"] == method
    assert len(res["content"]) < len(COMPRESSIBLE)
    assert DECODERS[method](res["content"]) == COMPRESSIBLE
    assert cf.size("c") == len(res["content"])
    assert list(cf.list()) == ["c"]
    if not is_mem(cloudpath):
        assert disk.files(cloudpath) == ["c" + SUFFIX[method]]


@pytest.mark.parametrize(
    "method,low,high", [("gzip", 1, 9), ("br", 0, 11), ("zstd", 1, 19), ("xz", 0, 9), ("bz2", 1, 9)]
)
def test_compression_level(cf, method, low, high):
    cf.puts([("lo", COMPRESSIBLE)], compress=method, compression_level=low)
    cf.put("hi", COMPRESSIBLE, compress=method, compression_level=high)
    assert cf.get(["lo", "hi"], return_dict=True) == {"lo": COMPRESSIBLE, "hi": COMPRESSIBLE}
    lo_raw, hi_raw = cf.get("lo", raw=True), cf.get("hi", raw=True)
    assert DECODERS[method](lo_raw) == COMPRESSIBLE
    assert DECODERS[method](hi_raw) == COMPRESSIBLE
    if method != "bz2":  # bz2 levels only change the block size, irrelevant for this size
        assert len(hi_raw) < len(lo_raw)


def test_compress_aliases_normalised(cf):
    cf.put("t", COMPRESSIBLE, compress=True)
    cf.put("bz", COMPRESSIBLE, compress="bzip2")
    cf.put("lz", COMPRESSIBLE, compress="lzma")
    got = {r["path"]: r["compress"] for r in cf.get(["t", "bz", "lz"], raw=True)}
    assert got == {"t": "gzip", "bz": "bz2", "lz": "xz"}
    assert cf.get("bz") == COMPRESSIBLE


def test_str_content_is_utf8(cf):
    cf.put("s", "héllo wörld ✓")
    assert cf.get("s") == "héllo wörld ✓".encode()
    cf.puts([("s2", "ünïcode")], compress="gzip")
    assert cf.get("s2") == "ünïcode".encode()
    cf.puts([{"path": "s3", "content": "plain", "content_type": "application/octet-stream"}])
    assert cf.get("s3") == b"plain"


@pytest.mark.parametrize("compress", [None, "gzip"])
def test_binary_file_handle_content(cf, tmp_path, compress):
    src = tmp_path / "src.bin"
    data = os.urandom(3000) + COMPRESSIBLE
    src.write_bytes(data)
    with open(src, "rb") as f:
        assert cf.put("from_file", f, compress=compress) == 1
    assert cf.puts([("from_bytesio", io.BytesIO(data))], compress=compress) == 1
    with open(src, "rb") as f1:
        cf.puts([{"path": "dict_handle", "content": f1}, ("tuple_handle", io.BytesIO(b"small"))], compress=compress)
    assert cf.get("from_file") == data
    assert cf.get("from_bytesio") == data
    assert cf.get("dict_handle") == data
    assert cf.get("tuple_handle") == b"small"
    assert cf.get(["from_file"], raw=True)[0]["compress"] == compress


def test_buffer_contents(cf):
    buf = bytearray(b"abc")
    cf.put("ba", buf)
    buf[0] = ord("z")  # the stored object does not alias the caller's buffer
    assert cf.get("ba") == b"abc"
    cf.put("mv", memoryview(b"hello")[1:3])
    assert cf.get("mv") == b"el"
    cf.puts([("bac", bytearray(COMPRESSIBLE))], compress="gzip")
    assert cf.get("bac") == COMPRESSIBLE


def test_non_bytes_content_refused(cf):
    """Objects that are not bytes are refused, except by mem://, which stores them as they are
    unless asked to compress them (as the original)."""
    with pytest.raises(TypeError):
        cf.puts([("n", {"a": 1})], compress="gzip")
    assert cf.exists("n") is False
    if cf.protocol == "mem":
        cf.put("n", 12345)
        cf["s"] = {1, 2}
        assert cf.get("n") == 12345 and cf["s"] == {1, 2}
        return
    with pytest.raises(TypeError):
        cf.put("n", 12345)
    with pytest.raises(TypeError):
        cf.puts([("n", {"a": 1})])
    assert cf.exists("n") is False


def test_raw_python_objects_on_mem(make_cloudpath):
    cf = CloudFiles(make_cloudpath("mem"))
    obj = {"a": [1, 2]}
    cf.put("obj", obj, raw=True)
    assert cf.get("obj") is obj


def test_raw_python_objects_on_file_refused_with_type_error(make_cloudpath, disk):
    cloudpath = make_cloudpath("file")
    cf = CloudFiles(cloudpath)
    cf.put("keep", b"k")
    with pytest.raises(TypeError):
        cf.put("obj", {"a": 1}, raw=True)
    assert disk.files(cloudpath) == ["keep"]


def test_raw_put_with_compress_label(cf):
    payload = gzip.compress(b"precompressed payload")
    assert cf.puts([("g", payload)], raw=True, compress="gzip") == 1
    assert cf.get("g") == b"precompressed payload"
    assert cf.get("g", raw=True) == payload
    (res,) = cf.get(["g"], raw=True)
    assert res["compress"] == "gzip"
    br = brotli.compress(b"brotli payload")
    cf.put("b", br, raw=True, compress="br")
    assert cf.get("b") == b"brotli payload"
    cf.puts([{"path": "z", "content": zstandard.ZstdCompressor().compress(b"zz"), "raw": True, "compress": "zstd"}])
    assert cf.get("z") == b"zz"


@pytest.mark.parametrize("how", ["puts", "put", "item"])
def test_bad_compress_name(cf, how):
    with pytest.raises(ValueError, match="snappy"):
        if how == "puts":
            cf.puts([("a", b"1"), ("b", b"2")], compress="snappy")
        elif how == "put":
            cf.put("a", b"1", compress="snappy")
        else:
            cf.puts([{"path": "a", "content": b"1", "compress": "snappy"}])
    assert cf.get("a") is None


def test_puts_returns_count(cf):
    assert cf.puts([]) == 0
    assert cf.puts([("a", b"")]) == 1
    assert cf.puts([(f"n{i}", b"x") for i in range(57)]) == 57
    assert cf.put("single", b"x") == 1
    assert cf.puts(("tuple_single", b"x")) == 1
    assert cf.puts({"path": "dict_single", "content": b"x"}) == 1
    assert cf.get("tuple_single") == b"x"
    assert cf.get("dict_single") == b"x"


def test_empty_content_roundtrip(cf):
    cf.put("empty", b"")
    assert cf.get("empty") == b""
    assert cf.exists("empty") is True
    cf.put("empty_gz", b"", compress="gzip")
    assert cf.get("empty_gz") == b""


# -- exists / size / head / subtree_size -----------------------------------------------------------


def test_exists(cf):
    cf.puts([("a", b"1"), ("d/b", b"2")], compress="gzip")
    assert cf.exists("a") is True
    assert cf.exists("d/b") is True
    assert cf.exists("missing") is False
    assert cf.exists(["a", "missing", "d/b"]) == {"a": True, "missing": False, "d/b": True}
    assert cf.exists(k for k in ["a"]) == {"a": True}


def test_size(cf):
    cf.puts([("a", b"12345"), ("b", b"123")])
    cf.put("z", COMPRESSIBLE, compress="gzip")
    zsize = len(cf.get("z", raw=True))
    assert cf.size("a") == 5
    assert cf.size("missing") is None
    assert cf.size("z") == zsize
    assert cf.size(["a", "b", "missing", "z"]) == {"a": 5, "b": 3, "missing": None, "z": zsize}
    assert cf.size(["a", "b", "missing"], return_sum=True) == 8
    assert cf.size(["missing"], return_sum=True) == 0
    assert cf.size("a", return_sum=True) == 5
    assert cf.size("missing", return_sum=True) == 0
    assert cf.size((k for k in ["a", "missing", "b"]), return_sum=True) == 8


def test_head(cf, cloudpath):
    cf.put("a", b"12345", content_type="text/plain", cache_control="max-age=1")
    cf.put("z", COMPRESSIBLE, compress="gzip")
    assert cf.head("missing") is None
    head = cf.head("a")
    assert head["Content-Length"] == 5
    assert head["Content-Encoding"] is None
    assert head["Last-Modified"] is not None
    zhead = cf.head("z")
    assert zhead["Content-Encoding"] == "gzip"
    assert zhead["Content-Length"] == len(cf.get("z", raw=True))
    many = cf.head(["a", "missing", "z"])
    assert set(many) == {"a", "missing", "z"}
    assert many["missing"] is None
    assert many["a"]["Content-Length"] == 5
    if is_mem(cloudpath):
        assert head["Content-Type"] == "text/plain"
        assert head["Cache-Control"] == "max-age=1"


def test_subtree_size(cf):
    cf.puts([("a", b"1"), ("d/b", b"22"), ("d/e/c", b"333"), ("dx", b"4444")])
    cf.put("d/z", COMPRESSIBLE, compress="gzip")
    zsize = cf.size("d/z")
    assert cf.subtree_size() == {"N": 5, "num_bytes": 1 + 2 + 3 + 4 + zsize}
    assert cf.subtree_size("d/") == {"N": 3, "num_bytes": 2 + 3 + zsize}
    assert cf.subtree_size("d") == {"N": 4, "num_bytes": 2 + 3 + 4 + zsize}
    assert cf.subtree_size(["a", "d/e/"]) == {"N": 2, "num_bytes": 4}
    assert cf.subtree_size("nothing") == {"N": 0, "num_bytes": 0}


# -- delete / touch -------------------------------------------------------------------------------


def test_delete_returns_file_count(cf):
    keys = [f"many/{i:04d}" for i in range(2500)]
    assert cf.puts((k, b"x") for k in keys) == 2500
    assert cf.delete(keys) == 2500
    assert list(cf.list()) == []


def test_delete_scalar_missing_and_compressed(cf, cloudpath, disk):
    cf.put("a", b"1")
    cf.put("z", b"2", compress="gzip")
    assert cf.delete("a") == 1
    assert cf.exists("a") is False
    assert cf.delete("missing") == 1
    assert cf.delete(["missing1", "missing2", "z"]) == 3
    assert cf.exists("z") is False
    assert cf.get("z") is None
    if not is_mem(cloudpath):
        assert disk.files(cloudpath) == []
    assert cf.delete(iter(["nothing"])) == 1


def test_touch_creates_empty(cf):
    cf.touch("t1")
    cf.touch(["t2", "sub/t3"])
    assert cf.get(["t1", "t2", "sub/t3"], return_dict=True) == {"t1": b"", "t2": b"", "sub/t3": b""}


def test_touch_refreshes_mtime_and_keeps_content(cf, cloudpath, disk):
    cf.put("old", b"content")
    cf.put("oldz", b"zcontent", compress="gzip")
    if is_mem(cloudpath):
        before = cf.head("old")["Last-Modified"]
        time.sleep(0.05)
    else:
        for name in ("old", "oldz.gz"):
            os.utime(os.path.join(disk.dir(cloudpath), name), (1_000_000_000, 1_000_000_000))
        before = cf.head("old")["Last-Modified"]
        assert before.year == 2001
    cf.touch(["old", "oldz"])
    assert cf.head("old")["Last-Modified"] > before
    assert cf.head("oldz")["Last-Modified"] > before
    assert cf.get("old") == b"content"
    assert cf.get("oldz") == b"zcontent"
    assert cf.get(["oldz"], raw=True)[0]["compress"] == "gzip"


# -- list / isdir ---------------------------------------------------------------------------------


@pytest.fixture
def listing_cf(cf):
    cf.puts(
        [
            ("info1", b"1"),
            ("info2", b"22"),
            ("info.txt", b"333"),
            ("other", b"4444"),
            ("build/info3", b"55555"),
            ("level1/level2/info4", b"666666"),
        ]
    )
    cf.put("info5", COMPRESSIBLE, compress="gzip")
    return cf


def test_list_everything(listing_cf):
    expected = sorted(
        ["info1", "info2", "info.txt", "info5", "other", "build/info3", "level1/level2/info4"]
    )
    assert list(listing_cf.list()) == expected
    assert list(listing_cf) == expected
    assert list(iter(listing_cf)) == expected


def test_list_prefix_is_a_string_prefix(listing_cf):
    assert list(listing_cf.list("inf")) == ["info.txt", "info1", "info2", "info5"]
    assert list(listing_cf.list("info.")) == ["info.txt"]
    assert list(listing_cf.list("level1")) == ["level1/level2/info4"]
    assert list(listing_cf.list("build/")) == ["build/info3"]
    assert list(listing_cf.list("zzz")) == []


@pytest.mark.parametrize(
    "prefix,expected",
    [
        ("", ["build/", "info.txt", "info1", "info2", "info5", "level1/", "other"]),
        ("inf", ["info.txt", "info1", "info2", "info5"]),
        ("build", ["build/info3"]),
        ("level1/", ["level1/level2/"]),
        ("build/inf", ["build/info3"]),
        ("level1", ["level1/level2/"]),
        ("lev", ["level1/"]),
        ("build/", ["build/info3"]),
        ("info1", ["info1"]),
        ("info1/", []),
        ("nothing", []),
    ],
)
def test_list_flat_contract(listing_cf, prefix, expected):
    assert list(listing_cf.list(prefix, flat=True)) == expected


def test_list_strips_compression_suffixes(cf):
    for method in ["gzip", "br", "zstd", "xz", "bz2"]:
        cf.put(f"f_{method}", b"data", compress=method)
    assert list(cf.list()) == sorted(f"f_{m}" for m in ["gzip", "br", "zstd", "xz", "bz2"])


def test_list_size(listing_cf):
    sizes = dict(listing_cf.list(size=True))
    assert sizes["info1"] == 1
    assert sizes["level1/level2/info4"] == 6
    assert sizes["info5"] == listing_cf.size("info5")
    assert set(sizes) == set(listing_cf.list())
    assert list(listing_cf.list("build", size=True)) == [("build/info3", 5)]


def test_list_size_on_file_with_other_cwd(make_cloudpath, tmp_path, monkeypatch):
    cf = CloudFiles(make_cloudpath("file"))
    cf.puts([("a", b"1"), ("d/b", b"22")])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert list(cf.list(size=True)) == [("a", 1), ("d/b", 2)]
    assert cf.subtree_size() == {"N": 2, "num_bytes": 3}


def test_list_hides_temporary_files(make_cloudpath, disk):
    cloudpath = make_cloudpath("file")
    disk.write(cloudpath, ".cfdask-tmp-deadbeef", b"partial")
    disk.write(cloudpath, "real", b"r")
    assert list(CloudFiles(cloudpath).list()) == ["real"]


def test_isdir(listing_cf):
    assert listing_cf.isdir() is True
    assert listing_cf.isdir("build") is True
    assert listing_cf.isdir("build/") is True
    assert listing_cf.isdir("level1/level2") is True
    assert listing_cf.isdir("info1") is False
    assert listing_cf.isdir("nothing") is False
    assert listing_cf.isdir("bui") is False


# -- dunders --------------------------------------------------------------------------------------


def test_getitem_forms(cf):
    cf.puts([("a", b"0123456789"), ("b", b"bb"), ("c", b"cc")])
    assert cf["a"] == b"0123456789"
    assert cf["missing"] is None
    assert cf["a", 2:5] == b"234"
    assert cf["a", :3] == b"012"
    assert cf["a", 7:] == b"789"
    everything = cf[:]
    assert [(r["path"], r["content"]) for r in everything] == [("a", b"0123456789"), ("b", b"bb"), ("c", b"cc")]
    assert [r["path"] for r in cf[0:2]] == ["a", "b"]
    assert [r["path"] for r in cf[1:]] == ["b", "c"]


def test_ranged_getitem_fetches_only_those_bytes(cf, monkeypatch):
    cf.put("a", b"0123456789")
    backend = cf.backend
    calls = []
    original = type(backend).get

    def spy(self, key, start=None, end=None):
        calls.append((key, start, end))
        blob = original(self, key, start, end)
        assert len(blob.content) == 3
        return blob

    monkeypatch.setattr(type(backend), "get", spy)
    assert cf["a", 4:7] == b"456"
    assert calls == [("a", 4, 7)]


def test_setitem_delitem_iter(cf):
    cf["k"] = b"value"
    assert cf.get("k") == b"value"
    cf["k2"] = b"v2"
    assert list(iter(cf)) == ["k", "k2"]
    del cf["k"]
    assert cf.get("k") is None
    assert list(cf) == ["k2"]


def test_setitem_full_slice_transfers(make_cloudpath):
    src = CloudFiles(make_cloudpath("mem"))
    dest = CloudFiles(make_cloudpath("file"))
    src.puts([("a", b"1"), ("d/b", b"2")])
    src.put("z", COMPRESSIBLE, compress="gzip")
    dest[:] = src
    assert list(dest) == ["a", "d/b", "z"]
    assert dest.get(["a", "d/b", "z"], return_dict=True) == {"a": b"1", "d/b": b"2", "z": COMPRESSIBLE}
    assert dest.get(["z"], raw=True)[0]["compress"] == "gzip"
    with pytest.raises(KeyError):
        dest[0:1] = src


# -- move / moves ---------------------------------------------------------------------------------


@pytest.mark.parametrize("src_kind,dest_kind", [("file", "file"), ("mem", "file"), ("file", "mem"), ("mem", "mem")])
def test_move_keeps_encoding(make_cloudpath, src_kind, dest_kind):
    src = CloudFiles(make_cloudpath(src_kind))
    dest_path = make_cloudpath(dest_kind)
    dest = CloudFiles(dest_path)
    src.put("z", COMPRESSIBLE, compress="gzip")
    stored = src.get("z", raw=True)
    assert src.move("z", dest_path + "/sub/renamed") == 1
    assert src.exists("z") is False
    (res,) = dest.get(["sub/renamed"], raw=True)
    assert res["compress"] == "gzip"
    assert res["content"] == stored
    assert dest.get("sub/renamed") == COMPRESSIBLE


def test_file_to_file_move_is_a_rename_keeping_suffix(make_cloudpath, disk):
    src_path, dest_path = make_cloudpath("file"), make_cloudpath("file")
    src = CloudFiles(src_path)
    src.put("z", b"zzz", compress="br")
    src.put("p", b"ppp")
    inode = os.stat(os.path.join(disk.dir(src_path), "z.br")).st_ino
    assert src.moves(dest_path, ["z", ("p", "q/p2")]) == 2
    assert disk.files(src_path) == []
    assert disk.files(dest_path) == ["q/p2", "z.br"]
    assert os.stat(os.path.join(disk.dir(dest_path), "z.br")).st_ino == inode
    assert CloudFiles(dest_path).get(["z", "q/p2"], return_dict=True) == {"z": b"zzz", "q/p2": b"ppp"}


@pytest.mark.parametrize("src_kind,dest_kind", [("mem", "file"), ("file", "mem"), ("mem", "mem"), ("file", "file")])
def test_moves_pairs(make_cloudpath, src_kind, dest_kind):
    src = CloudFiles(make_cloudpath(src_kind))
    dest = CloudFiles(make_cloudpath(dest_kind))
    src.puts([("a", b"1"), ("b", b"2"), ("c", b"3"), ("keep", b"k")])
    assert src.moves(dest, ["a", ("b", "renamed/b"), ("c", "c2")]) == 3
    assert list(src) == ["keep"]
    assert dest.get(["a", "renamed/b", "c2"], return_dict=True) == {"a": b"1", "renamed/b": b"2", "c2": b"3"}
    assert sorted(dest.list()) == ["a", "c2", "renamed/b"]


@pytest.mark.parametrize("src_kind,dest_kind", [("mem", "file"), ("file", "file"), ("mem", "mem"), ("file", "mem")])
def test_moves_single_pair_and_missing(make_cloudpath, src_kind, dest_kind):
    src = CloudFiles(make_cloudpath(src_kind))
    dest = CloudFiles(make_cloudpath(dest_kind))
    src.put("a", b"1")
    assert src.moves(dest, ("a", "b")) == 1
    assert dest.get("b") == b"1"
    with pytest.raises(FileNotFoundError, match="ghost"):
        src.moves(dest, ["ghost"])


# -- transfers ------------------------------------------------------------------------------------

PAIRS = [("mem", "file"), ("file", "mem"), ("file", "file"), ("mem", "mem")]


@pytest.fixture
def populate():
    def fill(cf):
        cf.put("plain", b"plain data")
        cf.put("gz", COMPRESSIBLE, compress="gzip")
        cf.put("dir/zs", COMPRESSIBLE, compress="zstd")
        return cf

    return fill


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
@pytest.mark.parametrize("direction", ["to", "from"])
def test_transfer_everything_keeps_encoding(make_cloudpath, populate, src_kind, dest_kind, direction):
    src = populate(CloudFiles(make_cloudpath(src_kind)))
    dest = CloudFiles(make_cloudpath(dest_kind))
    if direction == "to":
        n = src.transfer_to(dest).files
    else:
        n = dest.transfer_from(src).files
    assert n == 3
    keys = ["dir/zs", "gz", "plain"]
    assert list(dest) == keys
    src_raw = src.get(keys, raw=True)
    dest_raw = dest.get(keys, raw=True)
    for s, d in zip(src_raw, dest_raw, strict=True):
        assert d["content"] == s["content"]
        assert d["compress"] == s["compress"]
    assert [r["compress"] for r in dest_raw] == ["zstd", "gzip", None]
    # the source is untouched
    assert list(src) == keys


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
def test_transfer_with_cloudpath_strings(make_cloudpath, populate, src_kind, dest_kind):
    src_path, dest_path = make_cloudpath(src_kind), make_cloudpath(dest_kind)
    src = populate(CloudFiles(src_path))
    src.transfer_to(dest_path, paths=["plain"])
    assert CloudFiles(dest_path).get("plain") == b"plain data"
    CloudFiles(dest_path).transfer_from(src_path, paths=["gz"])
    assert CloudFiles(dest_path).get("gz") == COMPRESSIBLE


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
def test_transfer_reencode(make_cloudpath, populate, src_kind, dest_kind):
    src = populate(CloudFiles(make_cloudpath(src_kind)))
    dest = CloudFiles(make_cloudpath(dest_kind))
    src.transfer_to(dest, reencode="br")
    results = dest.get(["plain", "gz", "dir/zs"], raw=True)
    assert [r["compress"] for r in results] == ["br", "br", "br"]
    assert brotli.decompress(results[1]["content"]) == COMPRESSIBLE
    assert dest.get(["plain", "gz", "dir/zs"], return_dict=True) == {
        "plain": b"plain data",
        "gz": COMPRESSIBLE,
        "dir/zs": COMPRESSIBLE,
    }
    assert list(dest) == ["dir/zs", "gz", "plain"]



@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
@pytest.mark.parametrize("decode", [False, "", "none"])
def test_transfer_reencode_falsy_decodes(make_cloudpath, populate, src_kind, dest_kind, decode):
    # The code follows the original here: reencode=None (the default) keeps the stored
    # encoding; False / "" / "none" store the data decoded.
    src = populate(CloudFiles(make_cloudpath(src_kind)))
    dest = CloudFiles(make_cloudpath(dest_kind))
    assert src.transfer_to(dest, reencode=decode).files == 3
    results = dest.get(["plain", "gz", "dir/zs"], raw=True)
    assert [r["compress"] for r in results] == [None, None, None]
    assert [r["content"] for r in results] == [b"plain data", COMPRESSIBLE, COMPRESSIBLE]


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
def test_transfer_reencode_none_keeps(make_cloudpath, populate, src_kind, dest_kind):
    src = populate(CloudFiles(make_cloudpath(src_kind)))
    dest = CloudFiles(make_cloudpath(dest_kind))
    assert src.transfer_to(dest, reencode=None).files == 3
    keys = ["plain", "gz", "dir/zs"]
    assert dest.get(keys, raw=True) == src.get(keys, raw=True)


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
def test_transfer_paths_pairs_and_dicts(make_cloudpath, populate, src_kind, dest_kind):
    src = populate(CloudFiles(make_cloudpath(src_kind)))
    dest = CloudFiles(make_cloudpath(dest_kind))
    n = src.transfer_to(
        dest,
        paths=[("plain", "renamed/p"), {"path": "gz", "dest_path": "g2"}, {"path": "dir/zs"}, "plain"],
    ).files
    assert n == 4
    assert sorted(dest.list()) == ["dir/zs", "g2", "plain", "renamed/p"]
    assert dest.get("renamed/p") == b"plain data"
    assert dest.get("g2") == COMPRESSIBLE
    assert dest.get(["g2"], raw=True)[0]["compress"] == "gzip"


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
def test_transfer_missing_source(make_cloudpath, populate, src_kind, dest_kind):
    src = populate(CloudFiles(make_cloudpath(src_kind)))
    dest = CloudFiles(make_cloudpath(dest_kind))
    with pytest.raises(FileNotFoundError, match="ghost"):
        src.transfer_to(dest, paths=["plain", "ghost"])
    with pytest.raises(FileNotFoundError, match="ghost"):
        src.transfer_to(dest, paths=["ghost"], reencode="gzip")
    n = src.transfer_to(dest, paths=["ghost", "plain"], allow_missing=True).files
    assert n == 2
    assert dest.get("ghost") == b""
    assert dest.exists("ghost") is True
    assert dest.get("plain") == b"plain data"


@pytest.mark.parametrize("src_kind,dest_kind", PAIRS)
@pytest.mark.parametrize("reencode", [None, "br"])
def test_transfer_replaces_other_stored_form_at_dest(make_cloudpath, src_kind, dest_kind, disk, reencode):
    src = CloudFiles(make_cloudpath(src_kind))
    dest_path = make_cloudpath(dest_kind)
    dest = CloudFiles(dest_path)
    src.put("x", b"new", compress="gzip")
    dest.put("x", b"old")
    dest.put("y", b"old y", compress="zstd")
    src.put("y", b"new y")
    src.transfer_to(dest, reencode=reencode)
    assert dest.get(["x", "y"], return_dict=True) == {"x": b"new", "y": b"new y"}
    assert list(dest) == ["x", "y"]
    if dest_kind == "file":
        assert len(disk.files(dest_path)) == 2


def test_transfer_content_type(make_cloudpath):
    src = CloudFiles(make_cloudpath("file"))
    src.put("x", b"data", compress="gzip")
    dest = CloudFiles(make_cloudpath("mem"))
    src.transfer_to(dest, content_type="text/plain")
    head = dest.head("x")
    assert head["Content-Type"] == "text/plain"
    assert head["Content-Encoding"] == "gzip"
    assert dest.get("x") == b"data"


@pytest.mark.parametrize("src_kind", ["mem", "file"])
def test_transfer_and_move_cannot_escape_file_root(make_cloudpath, tmp_path, src_kind):
    src = CloudFiles(make_cloudpath(src_kind))
    src.put("x", b"data")
    dest = CloudFiles(make_cloudpath("file"))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(PathEscapeError):
        src.transfer_to(dest, paths=[("x", "../../escaped")])
    with pytest.raises(PathEscapeError):
        src.moves(dest, [("x", "../escaped")])
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before
    assert src.get("x") == b"data"


def test_moves_over_existing_other_form(make_cloudpath, disk):
    src = CloudFiles(make_cloudpath("file"))
    dest_path = make_cloudpath("file")
    dest = CloudFiles(dest_path)
    dest.put("x", b"old", compress="gzip")
    src.put("y", b"new")
    src.moves(dest, [("y", "x")])
    assert dest.get("x") == b"new"
    assert disk.files(dest_path) == ["x"]


# -- path helpers ---------------------------------------------------------------------------------


def test_path_helpers(cf, cloudpath):
    assert cf.sep == "/"  # os.sep on file:// (POSIX here), "/" elsewhere
    if not is_mem(cloudpath):
        assert cf.sep == os.sep
    assert cf.join("a", "b", "c") == "a/b/c"
    assert cf.dirname("a/b/c") == "a/b"
    assert cf.basename("a/b/c") == "c"
    assert cf.abspath("x/y") == cloudpath + "/x/y"
    assert cf.protocol == ("mem" if is_mem(cloudpath) else "file")
    assert cf.cloudpath == cloudpath


# -- constructor ----------------------------------------------------------------------------------


def test_endpoint_on_non_s3_is_value_error(cloudpath):
    with pytest.raises(ValueError, match="endpoint"):
        CloudFiles(cloudpath, endpoint="https://example.invalid")


def test_request_payer_refused_on_file_and_mem(cloudpath):
    with pytest.raises(ValueError, match="request_payer"):
        CloudFiles(cloudpath, request_payer="requester")


def test_parallel_negative(cloudpath):
    with pytest.raises(ValueError):
        CloudFiles(cloudpath, parallel=-1)
    cf = CloudFiles(cloudpath)
    with pytest.raises(ValueError):
        cf.get(["a", "b"], parallel=-2)


def test_bare_and_relative_local_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rel = CloudFiles("rel/dir")
    assert rel.cloudpath == "file://" + str(tmp_path / "rel" / "dir")
    rel.put("a", b"1")
    assert (tmp_path / "rel" / "dir" / "a").read_bytes() == b"1"
    bare = CloudFiles(str(tmp_path / "bare"))
    assert bare.cloudpath == "file://" + str(tmp_path / "bare")
    assert bare.protocol == "file"


@pytest.mark.parametrize("suffix", ["", "/"])
def test_bucket_only_and_trailing_slash_roots(make_cloudpath, suffix):
    root = make_cloudpath("mem").rsplit("/", 1)[0] + suffix  # mem://<bucket> or mem://<bucket>/
    cf = CloudFiles(root)
    cf.puts([("a", b"1"), ("d/b", b"2")])
    assert list(cf) == ["a", "d/b"]
    assert list(cf.list("d", flat=True)) == ["d/b"]
    assert cf.abspath("a") == root.rstrip("/") + "/a"
    assert CloudFiles(root.rstrip("/") + "/d").get("b") == b"2"


@pytest.mark.parametrize("path", ["foo://bucket/x", "ngauth+https://example.invalid/x"])
def test_unknown_protocol(path):
    with pytest.raises(UnsupportedProtocolError):
        CloudFiles(path)


def test_repr_hides_secrets(cloudpath):
    cf = CloudFiles(cloudpath, secrets={"token": "s3cr3t-value"}, num_threads=3)
    text = repr(cf)
    assert "s3cr3t-value" not in text
    assert "<hidden>" in text
    assert cloudpath in text
    assert "s3cr3t-value" not in str(cf)


def test_pickle_roundtrip_file(make_cloudpath):
    cf = CloudFiles(make_cloudpath("file"), num_threads=4)
    cf.put("a", b"pickled")
    clone = pickle.loads(pickle.dumps(cf))
    assert clone.cloudpath == cf.cloudpath
    assert clone.num_threads == 4
    assert clone.get("a") == b"pickled"
    clone.put("b", b"from clone")
    assert cf.get("b") == b"from clone"


def test_pickle_roundtrip_mem_same_process(make_cloudpath):
    cf = CloudFiles(make_cloudpath("mem"))
    cf.put("a", b"x")
    assert pickle.loads(pickle.dumps(cf)).get("a") == b"x"


@pytest.mark.parametrize("key", ["../escape", "a/../../escape", "sub/../../../escape", "/abs/escape"])
def test_path_escape_refused_on_file(make_cloudpath, tmp_path, key):
    cloudpath = make_cloudpath("file")
    cf = CloudFiles(cloudpath)
    cf.put("inside", b"ok")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with pytest.raises(PathEscapeError):
        cf.put(key, b"evil")
    with pytest.raises(PathEscapeError):
        cf.puts([("fine", b"1"), (key, b"evil")])
    with pytest.raises(PathEscapeError):
        cf.get(key)
    with pytest.raises(PathEscapeError):
        cf.delete(key)
    with pytest.raises(PathEscapeError):
        cf.touch(key)
    after = sorted(str(p) for p in tmp_path.rglob("*") if not p.name.startswith("fine"))
    assert after == before
    assert not os.path.exists("/abs/escape")


def test_dotdot_that_stays_inside_is_fine(make_cloudpath):
    cf = CloudFiles(make_cloudpath("file"))
    cf.put("a/../b", b"1")
    assert cf.get("b") == b"1"


# -- atomic writes on file:// ---------------------------------------------------------------------


def test_no_temp_files_after_puts(make_cloudpath, disk):
    cloudpath = make_cloudpath("file")
    cf = CloudFiles(cloudpath)
    cf.puts([(f"d{i % 3}/f{i}", os.urandom(100)) for i in range(50)])
    cf.puts([(f"z{i}", COMPRESSIBLE) for i in range(5)], compress="gzip")
    cf.put("h", io.BytesIO(b"handle"))
    cf.transfer_to(make_cloudpath("file"))
    files = disk.files(cloudpath)
    assert len(files) == 56
    assert not [f for f in files if ".cfdask-tmp-" in f]


class FailingReader(io.RawIOBase):
    """A binary handle that yields some bytes, then fails."""

    def __init__(self):
        self.calls = 0

    def readable(self):
        return True

    def read(self, n=-1):
        self.calls += 1
        if self.calls == 1 and n is not None and n > 0:  # a chunked reader gets a first chunk
            return b"partial new content"
        raise OSError("disk on fire")

    def readinto(self, b):
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seek(self, *args):
        return 0


@pytest.mark.parametrize("compress", [None, "gzip"])
def test_failed_write_keeps_previous_version(make_cloudpath, disk, compress):
    cloudpath = make_cloudpath("file")
    cf = CloudFiles(cloudpath)
    cf.put("f", b"previous version")
    with pytest.raises(OSError, match="disk on fire"):
        cf.put("f", FailingReader(), compress=compress)
    assert cf.get("f") == b"previous version"
    assert disk.files(cloudpath) == ["f"]
    with pytest.raises(OSError, match="disk on fire"):
        cf.puts([("f", FailingReader()), ("g", FailingReader())], compress=compress)
    assert cf.get("f") == b"previous version"
    assert disk.files(cloudpath) == ["f"]


# -- one stored form per key ----------------------------------------------------------------------


@pytest.mark.parametrize("first,second", [(None, "gzip"), ("gzip", None), ("gzip", "br"), ("zstd", "gzip")])
def test_rewrite_with_other_encoding_replaces(cf, cloudpath, disk, first, second):
    cf.put("x", b"first", compress=first)
    cf.put("x", b"second", compress=second)
    assert cf.get("x") == b"second"
    assert cf.get(["x"], raw=True)[0]["compress"] == second
    assert list(cf.list()) == ["x"]
    if not is_mem(cloudpath):
        assert disk.files(cloudpath) == ["x" + (SUFFIX[second] if second else "")]
    cf.delete("x")
    assert cf.get("x") is None


def test_bare_name_wins_over_suffixes(make_cloudpath, disk):
    cloudpath = make_cloudpath("file")
    disk.write(cloudpath, "x", b"bare")
    disk.write(cloudpath, "x.gz", gzip.compress(b"gzipped"))
    disk.write(cloudpath, "y.br", brotli.compress(b"brotli"))
    disk.write(cloudpath, "y.gz", gzip.compress(b"gzipped y"))
    disk.write(cloudpath, "w.bz2", bz2.compress(b"bz2 w"))
    disk.write(cloudpath, "w.xz", lzma.compress(b"xz w"))
    cf = CloudFiles(cloudpath)
    for _ in range(2):  # the answer does not depend on history
        assert cf.get("x") == b"bare"
        assert cf.get("y") == b"gzipped y"
        assert cf.get("w") == b"xz w"
    assert [r["compress"] for r in cf.get(["x", "y", "w"], raw=True)] == [None, "gzip", "xz"]
    assert list(cf.list()) == ["w", "x", "y"]


def test_put_key_with_suffix_and_matching_compress(cf):
    cf.put("x.gz", b"data", compress="gzip")
    assert cf.get("x.gz") == b"data"
    cf.puts([("y.br", b"ydata")], compress="br")
    assert cf.get("y.br") == b"ydata"


# -- progress -------------------------------------------------------------------------------------


def test_progress_true_runs(cf):
    cf.puts([(f"p{i}", b"x") for i in range(5)], progress=True)
    assert len(cf.get([f"p{i}" for i in range(5)], progress=True)) == 5
    assert cf.exists([f"p{i}" for i in range(5)], progress=True) == {f"p{i}": True for i in range(5)}
    assert cf.delete([f"p{i}" for i in range(5)], progress=True) == 5
    assert CloudFiles(cf.cloudpath, progress=True).puts([("q", b"1"), ("r", b"2")]) == 2


def test_progress_label(cf, capsys):
    cf.puts([(f"p{i}", b"x") for i in range(3)], progress="my-upload-label")
    cf.get([f"p{i}" for i in range(3)], progress="my-download-label")
    err = capsys.readouterr().err
    assert "my-upload-label" in err
    assert "my-download-label" in err


def test_progress_callable_receives_events(cf):
    events = []
    n = cf.puts([(f"p{i}", b"x" * i) for i in range(7)], progress=events.append)
    assert n == 7
    kinds = [e.kind for e in events]
    assert kinds[0] == "start"
    assert kinds[-1] == "close"
    assert set(kinds[1:-1]) == {"advance"}
    assert events[0].total == 7
    assert sum(e.files for e in events if e.kind == "advance") == 7
    assert events[-1].files == 7

    events.clear()
    cf.get([f"p{i}" for i in range(7)], progress=events.append)
    assert [e.kind for e in events][0] == "start" and events[-1].kind == "close"
    assert sum(e.files for e in events if e.kind == "advance") == 7
    assert sum(e.nbytes for e in events if e.kind == "advance") == sum(range(7))

    events.clear()
    cf.delete((f"p{i}" for i in range(7)), progress=events.append)
    assert sum(e.files for e in events if e.kind == "advance") == 7


@pytest.mark.parametrize("src_kind,dest_kind", [("mem", "file"), ("file", "file"), ("file", "mem")])
def test_transfer_progress_events(make_cloudpath, src_kind, dest_kind):
    src = CloudFiles(make_cloudpath(src_kind))
    src.puts([(f"t{i}", b"x") for i in range(9)])
    events = []
    assert src.transfer_to(make_cloudpath(dest_kind), block_size=4, progress=events.append).files == 9
    assert events[0].kind == "start" and events[-1].kind == "close"
    assert sum(e.files for e in events if e.kind == "advance") == 9


# -- parallel / green -----------------------------------------------------------------------------


def test_parallel_processes_on_file(make_cloudpath, monkeypatch):
    from cloudfiles_dask._engine import distribute

    spawned = []
    real = distribute.run_batches

    def spy(executor, task, *args, **kwargs):
        assert isinstance(executor, distribute.ProcessExecutor)
        spawned.append(task.__name__.removesuffix("_batch"))
        return real(executor, task, *args, **kwargs)

    monkeypatch.setattr(distribute, "run_batches", spy)
    cloudpath = make_cloudpath("file")
    files = [(f"p/{i:03d}", f"content {i}".encode()) for i in range(60)]
    cf1 = CloudFiles(cloudpath)
    cf2 = CloudFiles(cloudpath, parallel=2)
    assert cf2.puts(files, compress="gzip") == 60
    keys = [k for k, _ in files]
    reference = CloudFiles(make_cloudpath("file"))
    reference.puts(files, compress="gzip")
    expected = reference.get(keys)
    got = cf1.get(keys, parallel=2)
    assert got == expected
    assert cf1.get(keys) == expected
    cf1.put("p/bad", b"not gzip", raw=True, compress="gzip")
    mixed = cf1.get(["p/000", "p/bad", "p/001"], parallel=2, raise_errors=False)
    assert [r["path"] for r in mixed] == ["p/000", "p/bad", "p/001"]
    assert isinstance(mixed[1]["error"], DecompressionError)
    assert mixed[2]["content"] == b"content 1"
    assert cf1.delete(keys + ["p/bad"], parallel=2) == 61
    assert list(cf1) == []
    assert spawned == ["put", "get", "get", "delete"]


def test_parallel_with_callable_progress_in_constructor(make_cloudpath):
    events = []

    def sink(event):  # a local function: not picklable, but the workers never report to it
        events.append(event)

    cf = CloudFiles(make_cloudpath("file"), parallel=2, progress=sink)
    assert cf.puts([(f"k{i:02d}", b"x") for i in range(30)]) == 30
    assert sum(e.files for e in events if e.kind == "advance") == 30
    assert CloudFiles(cf.cloudpath).get("k29") == b"x"


def test_parallel_on_mem_refused(make_cloudpath):
    cf = CloudFiles(make_cloudpath("mem"))
    cf.puts([("a", b"1"), ("b", b"2")])
    with pytest.raises(ProcessBoundaryError):
        cf.get(["a", "b"], parallel=2)
    with pytest.raises(ProcessBoundaryError):
        cf.puts([("c", b"1"), ("d", b"2")], parallel=2)
    with pytest.raises(ProcessBoundaryError):
        cf.delete(["a", "b"], parallel=2)
    with pytest.raises(ProcessBoundaryError):
        CloudFiles(cf.cloudpath, parallel=2).get(["a", "b"])
    assert cf.get(["a", "b"], return_dict=True) == {"a": b"1", "b": b"2"}


def test_green_matches_threads(make_cloudpath, cloudpath):
    kind = "mem" if is_mem(cloudpath) else "file"
    files = [(f"g/{i:03d}", f"content {i}".encode()) for i in range(40)]
    keys = [k for k, _ in files]
    results = {}
    for green in (False, True):
        cf = CloudFiles(make_cloudpath(kind), green=green, num_threads=8)
        assert cf.green is green
        assert cf.puts(files, compress="gzip") == 40
        got = cf.get(keys + ["missing"])
        results[green] = (
            got,
            cf.exists(keys + ["missing"]),
            cf.size(keys),
            list(cf.list("g/")),
            cf.delete(keys),
            list(cf),
        )
    assert results[True] == results[False]
    assert results[True][0][-1]["content"] is None
    assert results[True][-1] == []


def test_green_error_propagates(cloudpath):
    cf = CloudFiles(cloudpath, green=True)
    cf.put("bad", b"not gzip", raw=True, compress="gzip")
    cf.puts([(f"ok{i}", b"x") for i in range(5)])
    with pytest.raises(DecompressionError, match="bad"):
        cf.get([f"ok{i}" for i in range(5)] + ["bad"])


def test_clear_memory(make_cloudpath):
    cf = CloudFiles(make_cloudpath("mem"))
    cf.put("a", b"1")
    cloudfiles_dask.clear_memory()
    assert cf.get("a") is None
