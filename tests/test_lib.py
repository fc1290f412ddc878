"""cloudfiles_dask.lib: the helpers code written for the original imports from cloudfiles.lib.

Expected values were taken from the original CloudFiles 6.4.3 (run as a black box)."""

from __future__ import annotations

import hashlib
import itertools
import os
import time

import google_crc32c
import numpy as np
import pytest

from cloudfiles_dask import _checksums, lib

ORIGINAL_NAMES = [
    "mkdir", "touch", "toabs", "nvl", "totalfn", "sip", "jsonify", "first", "toiter", "duplicates",
    "scatter", "md5", "md5_equal", "crc32c", "encode_crc32c_b64", "decode_crc32c_b64",
    "calc_s3_multipart_etag", "validate_s3_multipart_etag", "colorize", "red", "green", "yellow",
    "COLORS",
]  # fmt: skip
MiB = 1024 * 1024
HELLO_MD5_HEX = "5d41402abc4b2a76b9719d911017c592"
HELLO_MD5_B64 = "XUFAKrxLKna5cZ2REBfFkg=="


def test_every_name_of_the_original_is_there():
    missing = [name for name in ORIGINAL_NAMES if not hasattr(lib, name)]
    assert missing == []
    assert set(ORIGINAL_NAMES) <= set(lib.__all__)


# -- colours -----------------------------------------------------------------------------------


def test_colours():
    assert lib.red("x") == "\x1b[1;91mx\x1b[m"
    assert lib.green("x") == "\x1b[1;92mx\x1b[m"
    assert lib.yellow("x") == "\x1b[1;93mx\x1b[m"
    assert lib.colorize("red", "x") == lib.colorize("RED", "x") == lib.red("x")
    with pytest.raises(KeyError):
        lib.colorize("blue", "x")


# -- files -------------------------------------------------------------------------------------


def test_toabs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert lib.toabs("~/a") == str(tmp_path / "home" / "a")
    assert lib.toabs("rel/../b") == str(tmp_path / "b")
    assert lib.toabs("/x/y/") == "/x/y"


def test_mkdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert lib.mkdir("a/b") == str(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    assert lib.mkdir(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b")  # exists: fine
    (tmp_path / "file").write_text("x")
    assert lib.mkdir(str(tmp_path / "file")) == str(tmp_path / "file")  # a file there: no error
    assert lib.mkdir("") == str(tmp_path)


def test_touch(tmp_path):
    target = tmp_path / "t" / "u" / "v.txt"
    assert lib.touch(str(target)) is None
    assert target.read_bytes() == b""
    target.write_text("kept")
    os.utime(target, (1, 1))
    lib.touch(str(target))
    assert target.read_text() == "kept"
    assert target.stat().st_mtime > time.time() - 60


# -- iteration ---------------------------------------------------------------------------------


def test_nvl():
    assert lib.nvl(None, 0, 1) == 0
    assert lib.nvl(None, False) is False
    assert lib.nvl(None, None, 3) == 3
    assert lib.nvl(None, None) is None
    with pytest.raises(IndexError):
        lib.nvl(5)
    with pytest.raises(IndexError):
        lib.nvl()


def test_totalfn():
    assert lib.totalfn([1, 2, 3], None) == 3
    assert lib.totalfn({"a": 1}, None) == 1
    assert lib.totalfn(iter([1, 2]), None) is None
    assert lib.totalfn(5, None) is None
    assert lib.totalfn([1, 2, 3], 10) == 10
    assert lib.totalfn([1], 0) == 0


def test_sip():
    assert list(lib.sip([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(lib.sip(range(4), 2)) == [[0, 1], [2, 3]]
    assert list(lib.sip("abcde", 2)) == [["a", "b"], ["c", "d"], ["e"]]
    assert list(lib.sip([], 2)) == []
    first = next(lib.sip(itertools.count(), 3))  # lazy: an endless iterable is fine
    assert first == [0, 1, 2]
    for size in (0, -1, 1.5):  # not a positive whole number: everything in one block
        assert list(lib.sip([1, 2, 3], size)) == [[1, 2, 3]]


def test_jsonify():
    assert lib.jsonify({"a": 1, "b": [1, 2]}) == b'{"a":1,"b":[1,2]}'
    assert lib.jsonify({"b": 1, "a": 2}) == b'{"b":1,"a":2}'  # order kept
    assert lib.jsonify({"a": np.int64(3), "b": np.array([1.5])}) == b'{"a":3,"b":[1.5]}'
    assert lib.jsonify({1: 2}) == b'{"1":2}'
    assert lib.jsonify({"a": float("nan")}) == b'{"a":null}'
    assert lib.jsonify("é") == '"é"'.encode()
    with pytest.raises(TypeError):
        lib.jsonify({1, 2})


def test_first():
    assert lib.first([1, 2]) == 1
    assert lib.first([]) is None
    assert lib.first("ab") == "a"
    assert lib.first({5}) == 5
    generator = (x for x in [7, 8])
    assert lib.first(generator) == 7
    assert list(generator) == [8]  # one item taken
    assert lib.first(iter([])) is None
    assert lib.first(np.array([4, 5])) == 4
    with pytest.raises(KeyError):  # a dict is indexed, as in the original
        lib.first({"a": 1})


@pytest.mark.parametrize(
    "value, wrapped",
    [
        (1, True),
        ("ab", True),
        ({"a": 1}, True),
        (None, True),
        (1.5, True),
        ([1], False),
        ((1, 2), False),
        ({1, 2}, False),
        (b"ab", False),  # bytes are iterable, as in the original
        (range(3), False),
    ],
)
def test_toiter(value, wrapped):
    expected = [value] if wrapped else value
    assert lib.toiter(value) == expected
    assert lib.toiter(value, True) == (expected, not wrapped)


def test_toiter_keeps_the_same_iterator():
    generator = (x for x in [1])
    assert lib.toiter(generator) is generator
    assert lib.toiter(generator, is_iter=True) == (generator, True)


def test_duplicates():
    assert lib.duplicates([1, 2, 2, 3, 3, 3]) == {2, 3}
    assert lib.duplicates([]) == set()
    assert lib.duplicates("abca") == {"a"}
    assert lib.duplicates(iter([1, 1])) == {1}


def test_scatter():
    assert list(lib.scatter([1, 2, 3, 4, 5], 2)) == [[1, 3, 5], [2, 4]]
    assert list(lib.scatter([1, 2, 3], 5)) == [[1], [2], [3], [], []]
    assert list(lib.scatter(range(7), 3)) == [[0, 3, 6], [1, 4], [2, 5]]
    assert list(lib.scatter(iter([1, 2, 3]), 2)) == [[1, 3], [2]]
    assert list(lib.scatter([], 2)) == [[], []]
    with pytest.raises(ValueError, match="less than one"):
        list(lib.scatter([1], 0))


# -- checksums ---------------------------------------------------------------------------------


def test_md5():
    assert lib.md5(b"hello") == HELLO_MD5_B64
    assert lib.md5(b"hello", base=64) == HELLO_MD5_B64
    assert lib.md5(b"hello", base=16) == HELLO_MD5_HEX
    assert lib.md5("hello", 16) == HELLO_MD5_HEX
    assert lib.md5(memoryview(b"hello"), 16) == HELLO_MD5_HEX
    assert lib.md5(b"", 16) == "d41d8cd98f00b204e9800998ecf8427e"
    with pytest.raises(ValueError, match="16 or 64"):
        lib.md5(b"hello", base=10)


@pytest.mark.parametrize(
    "a, b, equal",
    [
        (HELLO_MD5_HEX, HELLO_MD5_B64, True),
        (HELLO_MD5_B64, HELLO_MD5_HEX, True),
        (HELLO_MD5_HEX.upper(), HELLO_MD5_B64, True),
        (f'"{HELLO_MD5_HEX}"', HELLO_MD5_HEX, True),  # a quoted ETag
        (HELLO_MD5_B64, HELLO_MD5_B64, True),
        (HELLO_MD5_HEX, HELLO_MD5_HEX[:-1] + "0", False),
        (HELLO_MD5_HEX, lib.md5(b"other"), False),
        (f"{HELLO_MD5_HEX}-2", f"{HELLO_MD5_HEX}-2", True),  # multipart ETags: as text
        (f"{HELLO_MD5_HEX}-2", f"{HELLO_MD5_HEX}-3", False),
        ("XUFAKrxLKna5cZ2REBfFkg", HELLO_MD5_B64, False),  # unpadded base64 is not an md5
    ],
)
def test_md5_equal(a, b, equal):
    assert lib.md5_equal(a, b) is equal


def test_crc32c():
    assert lib.crc32c(b"hello") == 2591144780
    assert lib.crc32c("hello") == 2591144780
    assert lib.crc32c(b"") == 0
    data = os.urandom(10_000)
    assert lib.crc32c(data) == int.from_bytes(google_crc32c.Checksum(data).digest(), "big")


def test_crc32c_base64():
    assert lib.encode_crc32c_b64(b"hello") == b"mnG7TA=="
    assert lib.encode_crc32c_b64(b"") == b"AAAAAA=="
    assert lib.decode_crc32c_b64("mnG7TA==") == 2591144780
    assert lib.decode_crc32c_b64("mnG7TA") == 2591144780  # padding may be missing
    data = os.urandom(999)
    assert lib.decode_crc32c_b64(lib.encode_crc32c_b64(data).decode()) == lib.crc32c(data)
    for bad in ("AAAA", "AAAAAAAA", "!!"):
        with pytest.raises(ValueError):
            lib.decode_crc32c_b64(bad)


def _reference_etag(data: bytes, part_size: int) -> str:
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f"{hashlib.md5(digests).hexdigest()}-{len(parts)}"


def test_calc_s3_multipart_etag():
    assert lib.calc_s3_multipart_etag(b"hello", 2) == "75994d598838ab475c86e3140adc14c7-3"
    assert lib.calc_s3_multipart_etag(b"hello", 5) == "62109206880d38a4010a98e11243924a-1"
    assert lib.calc_s3_multipart_etag(b"hello", 10) == "62109206880d38a4010a98e11243924a-1"
    assert lib.calc_s3_multipart_etag(b"", 10) == "d41d8cd98f00b204e9800998ecf8427e-0"
    data = os.urandom(40 * 1024 + 7)  # 40 whole parts and a short one (the md5 lanes' path)
    assert lib.calc_s3_multipart_etag(data, 1024) == _reference_etag(data, 1024)
    assert lib.calc_s3_multipart_etag(bytearray(data), 1024) == _reference_etag(data, 1024)
    with pytest.raises(ValueError):
        lib.calc_s3_multipart_etag(b"hello", 0)
    with pytest.raises(TypeError):
        lib.calc_s3_multipart_etag("hello", 2)


def test_calc_s3_multipart_etag_without_the_md5_kernel(monkeypatch):
    data = os.urandom(20 * 1024)
    monkeypatch.setattr(_checksums, "MD5_KERNEL", None)
    assert lib.calc_s3_multipart_etag(data, 1024) == _reference_etag(data, 1024)


def test_validate_s3_multipart_etag():
    etag = lib.calc_s3_multipart_etag(b"hello", 2)
    assert lib.validate_s3_multipart_etag(b"hello", etag, 2)
    assert lib.validate_s3_multipart_etag(b"hello", f'"{etag}"', 2)  # quoted, as S3 sends it
    assert not lib.validate_s3_multipart_etag(b"hello", etag, None)  # 2 bytes: no common size
    assert not lib.validate_s3_multipart_etag(b"hellp", etag, 2)
    assert not lib.validate_s3_multipart_etag(b"hello", "abc-3", None)
    assert not lib.validate_s3_multipart_etag(b"hello", "abc-x", None)
    # a plain ETag is the md5 of the content
    assert lib.validate_s3_multipart_etag(b"hello", HELLO_MD5_HEX, None)
    assert not lib.validate_s3_multipart_etag(b"hellp", HELLO_MD5_HEX, None)


@pytest.mark.parametrize(
    "size, part_size, found",
    [
        (8 * MiB + 1, 8 * MiB, True),  # boto3 / aws cli
        (15 * MiB + 1, 15 * MiB, True),  # s3cmd
        (3 * MiB - 5, MiB, True),  # the size over the parts, rounded up to a whole MiB
        (2 * MiB + 1, 2 * MiB, True),  # 2 parts: 1 MiB + 1 byte each, rounded up: 2 MiB
        (5 * MiB + 1, 5 * MiB, False),  # 2 parts of 2.5 MiB round up to 3 MiB, not 5
    ],
)
def test_validate_guesses_common_part_sizes(size, part_size, found):
    data = os.urandom(size)
    etag = _reference_etag(data, part_size)
    assert lib.validate_s3_multipart_etag(data, etag, None) is found
    assert lib.validate_s3_multipart_etag(data, etag, part_size)  # the hint always counts
