"""Tests for cloudfiles_dask.compression: codecs, interop, error handling and transcode."""

from __future__ import annotations

import bz2
import copy
import gzip
import inspect
import io
import lzma
import os
import random
import subprocess
import sys

import brotli
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudfiles_dask import compression
from cloudfiles_dask.compression import (
    COMPRESSION_TYPES,
    ENCODING_SUFFIXES,
    SUFFIX_ENCODINGS,
    SUFFIX_ORDER,
    compress,
    decompress,
    normalize_encoding,
    transcode,
)
from cloudfiles_dask.exceptions import (
    CompressionError,
    DecompressionError,
    UnsupportedCompressionType,
)

CODECS = ["gzip", "br", "zstd", "xz", "bz2"]
TARGETS = [None, *CODECS]

try:
    import deflate
except ImportError:  # pragma: no cover - deflate is a declared dependency
    deflate = None

needs_libdeflate = pytest.mark.skipif(deflate is None, reason="deflate (libdeflate) not installed")

# Compressible but not trivial: words with some randomness, about 60 KB.
_rng = random.Random(1234)
TEXT = b" ".join(
    _rng.choice([b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta"]) + str(i).encode()
    for i in range(8000)
)
NOISE = _rng.randbytes(20_000)


def zstd_stream_frame(data: bytes) -> bytes:
    """A zstd frame as a streaming writer makes it: no content size in the header."""
    buf = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(buf, closefd=False) as writer:
        writer.write(data)
    return buf.getvalue()


# -- names, tables --------------------------------------------------------------------------------


def test_compression_types_and_suffix_tables():
    assert COMPRESSION_TYPES == [
        None,
        False,
        True,
        "",
        "bz2",
        "bzip2",
        "gzip",
        "br",
        "zstd",
        "xz",
        "lzma",
    ]
    assert dict(ENCODING_SUFFIXES) == {
        "gzip": ".gz",
        "br": ".br",
        "zstd": ".zstd",
        "xz": ".xz",
        "bz2": ".bz2",
    }
    assert dict(SUFFIX_ENCODINGS) == {v: k for k, v in ENCODING_SUFFIXES.items()}
    assert SUFFIX_ORDER == ("", ".gz", ".br", ".zstd", ".xz", ".bz2")
    assert set(SUFFIX_ORDER[1:]) == set(SUFFIX_ENCODINGS)
    for value in COMPRESSION_TYPES:
        assert normalize_encoding(value) in TARGETS


@pytest.mark.parametrize(
    "given_value, expected",
    [
        (None, None),
        (False, None),
        ("", None),
        (0, None),
        ("identity", None),
        ("IDENTITY", None),
        (True, "gzip"),
        (1, "gzip"),
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("GZip", "gzip"),
        ("x-gzip", "gzip"),
        ("br", "br"),
        ("BR", "br"),
        ("zstd", "zstd"),
        ("ZSTD", "zstd"),
        ("xz", "xz"),
        ("lzma", "xz"),
        ("LZMA", "xz"),
        ("bz2", "bz2"),
        ("bzip2", "bz2"),
        ("BZIP2", "bz2"),
    ],
)
def test_normalize_encoding(given_value, expected):
    assert normalize_encoding(given_value) == expected


@pytest.mark.parametrize("bad", ["lz4", "zst", "gz", "gzip ", 2, -1, 1.5, b"gzip", object()])
def test_normalize_encoding_unknown(bad):
    with pytest.raises(UnsupportedCompressionType) as info:
        normalize_encoding(bad)
    assert isinstance(info.value, CompressionError)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert repr(bad) in message
    for name in ("'gzip'", "'br'", "'zstd'", "'xz'", "'lzma'", "'bz2'", "'bzip2'"):
        assert name in message


def test_unknown_codec_in_compress_decompress_transcode():
    with pytest.raises(UnsupportedCompressionType, match="lz4"):
        compress(b"abc", "lz4")
    with pytest.raises(UnsupportedCompressionType, match="lz4"):
        decompress(b"abc", "lz4")
    with pytest.raises(UnsupportedCompressionType, match="lz4"):
        transcode([("a", b"abc")], "lz4")  # checked at call time, before iterating
    items = [{"path": "a", "content": b"abc", "raw": True, "compress": "lz4"}]
    with pytest.raises(UnsupportedCompressionType, match="lz4"):
        list(transcode(items, "gzip"))


def test_import_is_lazy():
    code = (
        "import sys, cloudfiles_dask.compression\n"
        "loaded = {'deflate', 'brotli', 'zstandard'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ})


# -- round trips and defaults -------------------------------------------------------------------

LEVELS = {
    "gzip": [1, 6, 9],
    "br": [0, 5, 11],
    "zstd": [-5, 1, 3, 19],
    "xz": [0, 6, 9],
    "bz2": [1, 9],
}


@pytest.mark.parametrize("codec, level", [(c, lv) for c, lvs in LEVELS.items() for lv in lvs])
def test_round_trip_levels(codec, level):
    packed = compress(TEXT, codec, compress_level=level)
    assert isinstance(packed, bytes)
    assert len(packed) < len(TEXT)
    assert decompress(packed, codec) == TEXT


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("data", [b"", b"x", NOISE])
def test_round_trip_edge_payloads(codec, data):
    assert decompress(compress(data, codec), codec) == data


@needs_libdeflate
def test_gzip_level_12_with_libdeflate():
    packed = compress(TEXT, "gzip", compress_level=12)
    assert gzip.decompress(packed) == TEXT
    assert decompress(packed, "gzip") == TEXT
    assert len(packed) <= len(compress(TEXT, "gzip", compress_level=1))


def test_default_levels_match_the_documented_ones():
    assert compress(TEXT) == compress(TEXT, "gzip", compress_level=9)
    assert compress(TEXT, "gzip") != compress(TEXT, "gzip", compress_level=1)
    assert compress(TEXT, "br") == brotli.compress(TEXT, quality=5)
    assert compress(TEXT, "zstd") == zstandard.ZstdCompressor(level=3).compress(TEXT)
    assert compress(TEXT, "xz") == lzma.compress(TEXT, preset=6)
    assert compress(TEXT, "bz2") == bz2.compress(TEXT, 9)


@pytest.mark.parametrize("method", [None, False, ""])
def test_compress_without_method_returns_content_unchanged(method):
    content = bytearray(b"plain")
    assert compress(content, method) is content


@pytest.mark.parametrize("encoding", [None, "", False, "identity"])
def test_decompress_without_encoding_passes_through(encoding):
    content = b"\x1f\x8bnot really gzip"
    assert decompress(content, encoding) is content


def test_decompress_none_content_is_none():
    assert decompress(None, "gzip") is None


@pytest.mark.parametrize("codec", CODECS)
def test_compress_accepts_buffers_and_str(codec):
    assert decompress(compress(bytearray(TEXT), codec), codec) == TEXT
    assert decompress(compress(memoryview(TEXT), codec), codec) == TEXT
    # a non-contiguous view is compressed as the bytes it shows
    assert decompress(compress(memoryview(b"abcdef")[::2], codec), codec) == b"ace"
    # str is encoded as UTF-8
    assert decompress(compress("héllo wörld", codec), codec) == "héllo wörld".encode()
    # decompress takes buffers too
    packed = compress(TEXT, codec)
    assert decompress(memoryview(packed), codec) == TEXT
    assert decompress(bytearray(packed), codec) == TEXT


def test_compress_rejects_non_bytes():
    with pytest.raises(TypeError, match="int"):
        compress(12345, "gzip")


@pytest.mark.parametrize(
    "codec, level", [("gzip", 13), ("br", 12), ("xz", 10), ("bz2", 0), ("bz2", 10), ("br", "hi")]
)
def test_bad_levels_raise_compression_error(codec, level):
    with pytest.raises(CompressionError, match=codec) as info:
        compress(TEXT, codec, compress_level=level)
    assert info.value.__cause__ is not None


# -- interoperability with the reference implementations -----------------------------------------


@pytest.mark.parametrize("level", [1, 6, 9, None])
def test_our_gzip_reads_with_stdlib(level):
    assert gzip.decompress(compress(TEXT, "gzip", compress_level=level)) == TEXT


@pytest.mark.parametrize("level", [0, 1, 9])
def test_stdlib_gzip_reads_with_ours(level):
    assert decompress(gzip.compress(TEXT, compresslevel=level), "gzip") == TEXT


def test_gzip_with_filename_header():
    buf = io.BytesIO()
    with gzip.GzipFile(filename="original-name.txt", mode="wb", fileobj=buf, mtime=1) as f:
        f.write(TEXT)
    packed = buf.getvalue()
    assert b"original-name.txt" in packed  # the FNAME header really is there
    assert decompress(packed, "gzip") == TEXT


def test_brotli_interop():
    assert brotli.decompress(compress(TEXT, "br")) == TEXT
    assert decompress(brotli.compress(TEXT, quality=11), "br") == TEXT


def test_zstd_interop_and_frames_without_content_size():
    assert zstandard.ZstdDecompressor().decompress(compress(TEXT, "zstd")) == TEXT
    assert decompress(zstandard.ZstdCompressor(level=10).compress(TEXT), "zstd") == TEXT

    frame = zstd_stream_frame(TEXT)
    params = zstandard.get_frame_parameters(frame)
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert decompress(frame, "zstd") == TEXT
    assert decompress(zstd_stream_frame(b""), "zstd") == b""


def test_zstd_several_frames_decode_in_full():
    first = zstandard.ZstdCompressor().compress(b"first;")
    second = zstd_stream_frame(b"second;")
    third = zstandard.ZstdCompressor().compress(NOISE)
    assert decompress(first + second + third, "zstd") == b"first;second;" + NOISE


def test_xz_interop():
    assert lzma.decompress(compress(TEXT, "xz")) == TEXT
    assert lzma.decompress(compress(TEXT, "lzma")) == TEXT
    assert decompress(lzma.compress(TEXT), "lzma") == TEXT
    assert decompress(lzma.compress(b"a") + lzma.compress(b"b"), "xz") == b"ab"


def test_bz2_interop():
    assert bz2.decompress(compress(TEXT, "bzip2")) == TEXT
    assert decompress(bz2.compress(TEXT, 1), "bz2") == TEXT
    assert decompress(bz2.compress(b"a") + bz2.compress(b"b"), "bz2") == b"ab"


# -- gzip: several members, and the libdeflate / stdlib split -------------------------------------


@pytest.mark.parametrize(
    "members",
    [
        [b"hello", b"world"],
        [b"same", b"same"],  # identical members: the last trailer matches the first's
        [b"b", TEXT],  # first member smaller than the size in the final trailer
        [TEXT, b"b"],  # first member larger than the size in the final trailer
        [b"one", b"", b"three", NOISE],
    ],
)
def test_multi_member_gzip_decodes_to_the_concatenation(members):
    stream = b"".join(gzip.compress(m) for m in members)
    assert decompress(stream, "gzip") == b"".join(members)
    mixed = b"".join(compress(m, "gzip") for m in members)  # our members, concatenated like cat
    assert decompress(mixed, "gzip") == b"".join(members)


@pytest.mark.parametrize("payload", [b"", b"abc", TEXT])
@pytest.mark.parametrize("padding", [1, 8, 16])
def test_gzip_zero_padding_after_member_reads_like_gunzip(payload, padding):
    assert decompress(gzip.compress(payload) + b"\x00" * padding, "gzip") == payload


@needs_libdeflate
def test_single_member_gzip_uses_libdeflate(monkeypatch):
    def forbidden(data):
        raise AssertionError("stdlib gzip should not be needed for one member")

    monkeypatch.setattr(compression.gzip, "decompress", forbidden)
    assert decompress(gzip.compress(TEXT), "gzip") == TEXT
    assert decompress(compress(NOISE, "gzip", compress_level=12), "gzip") == NOISE


def test_gzip_falls_back_when_libdeflate_cannot_decode(monkeypatch):
    """Stands in for a member of >= 4 GiB, whose size trailer libdeflate cannot size a buffer from."""

    class RefusingDeflate:
        @staticmethod
        def gzip_decompress(data):
            raise ValueError("Decompression failed")

        gzip_compress = staticmethod(lambda data, level: gzip.compress(data, min(level, 9)))

    monkeypatch.setattr(compression, "_libdeflate", lambda: RefusingDeflate)
    assert decompress(gzip.compress(TEXT), "gzip") == TEXT


def test_gzip_without_libdeflate(monkeypatch):
    monkeypatch.setattr(compression, "_libdeflate", lambda: None)
    packed = compress(TEXT, "gzip", compress_level=12)  # clamped to zlib's 9
    assert packed == gzip.compress(TEXT, compresslevel=9, mtime=0)
    assert decompress(packed, "gzip") == TEXT
    assert decompress(gzip.compress(b"a") + gzip.compress(b"b"), "gzip") == b"ab"
    with pytest.raises(DecompressionError, match="trunc.gz"):
        decompress(packed[:-4], "gzip", filename="trunc.gz")


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_zero_length_content_raises(codec):
    with pytest.raises(DecompressionError) as info:
        decompress(b"", codec, filename="dir/empty-file")
    assert "dir/empty-file" in str(info.value)
    assert "zero bytes" in str(info.value)


@pytest.mark.parametrize("codec", CODECS)
def test_garbage_raises_naming_file_and_encoding(codec):
    junk = b"\x1f\x8b" + bytes(range(256)) * 4 if codec == "gzip" else bytes(range(256)) * 4
    with pytest.raises(DecompressionError) as info:
        decompress(junk, codec, filename="bad/file.bin")
    assert "bad/file.bin" in str(info.value)
    assert codec in str(info.value)
    assert info.value.__cause__ is not None  # chained to the codec's own error


def test_gzip_magic_bytes_checked_first():
    with pytest.raises(DecompressionError, match="magic") as info:
        decompress(b"this is plain text", "gzip", filename="plain.txt")
    assert "plain.txt" in str(info.value)


@pytest.mark.parametrize("codec", ["gzip", "xz", "bz2"])
def test_flipped_byte_is_detected_by_checksummed_codecs(codec):
    packed = bytearray(compress(TEXT, codec))
    packed[len(packed) // 2] ^= 0xFF
    with pytest.raises(DecompressionError, match="flipped"):
        decompress(bytes(packed), codec, filename="flipped")


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("payload", [TEXT, NOISE], ids=["text", "noise"])
def test_truncated_data_raises(codec, payload):
    packed = compress(payload, codec)
    for cut in (1, 4, len(packed) // 2, len(packed) - 1):
        with pytest.raises(DecompressionError, match="cut-file"):
            decompress(packed[:cut], codec, filename="cut-file")


def test_truncated_zstd_stream_frame_raises():
    frame = zstd_stream_frame(TEXT)
    with pytest.raises(DecompressionError, match="truncated"):
        decompress(frame[:-3], "zstd", filename="stream.zstd")


def test_zstd_frame_followed_by_garbage_raises():
    frame = zstandard.ZstdCompressor().compress(TEXT)
    with pytest.raises(DecompressionError, match="tail.zstd"):
        decompress(frame + b"garbage after the frame", "zstd", filename="tail.zstd")


def test_gzip_multi_member_with_truncated_last_member_raises():
    stream = gzip.compress(b"complete") + gzip.compress(TEXT)
    with pytest.raises(DecompressionError, match="multi.gz"):
        decompress(stream[:-5], "gzip", filename="multi.gz")


# -- transcode ------------------------------------------------------------------------------------


def raw_item(path, plain, codec):
    return {
        "path": path,
        "content": compress(plain, codec),
        "raw": True,
        "compress": codec,
        "tag": 7,
    }


def test_transcode_is_a_generator():
    result = transcode([("a", b"abc")], "gzip")
    assert inspect.isgenerator(result)


def test_transcode_pass_through_does_not_touch_content(monkeypatch):
    # Not valid gzip, but labelled as such: it must come out exactly as it went in.
    fake = b"this is not gzip data at all"
    item = {"path": "a", "content": fake, "raw": True, "compress": True}

    def boom(*args, **kwargs):
        raise AssertionError("no codec should run on a pass-through")

    monkeypatch.setattr(compression, "compress", boom)
    monkeypatch.setattr(compression, "decompress", boom)
    (out,) = transcode([item], "GZIP")
    assert out["content"] is fake
    assert out["raw"] is True
    assert out["compress"] == "gzip"
    assert item == {"path": "a", "content": fake, "raw": True, "compress": True}  # untouched


def test_transcode_plain_content_to_none_is_a_pass_through(monkeypatch):
    monkeypatch.setattr(compression, "compress", None)  # would fail if called
    monkeypatch.setattr(compression, "decompress", None)
    items = [
        ("a", b"plain"),
        {"path": "b", "content": b"plain too", "raw": False, "compress": "br"},
    ]
    out = list(transcode(items, None))
    assert [o["content"] for o in out] == [b"plain", b"plain too"]
    assert all(o["raw"] is True and o["compress"] is None for o in out)


@pytest.mark.parametrize("source", CODECS)
@pytest.mark.parametrize("target", TARGETS)
def test_transcode_reencodes(source, target):
    item = raw_item("dir/file", TEXT, source)
    (out,) = transcode([item], target, level=1)
    assert out["raw"] is True
    assert out["compress"] == target
    assert out["path"] == "dir/file"
    assert out["tag"] == 7
    assert decompress(out["content"], target) == TEXT
    if target is None:
        assert out["content"] == TEXT
    if source == target:
        assert out["content"] is item["content"]


def test_transcode_level_is_used():
    (fast,) = transcode([("a", TEXT)], "gzip", level=1)
    (best,) = transcode([("a", TEXT)], "gzip", level=9)
    assert fast["content"] == compress(TEXT, "gzip", compress_level=1)
    assert best["content"] == compress(TEXT, "gzip", compress_level=9)


def test_transcode_get_style_item_not_raw_is_plain_content():
    # raw=False means get() already decoded it; the "compress" field only records the stored form.
    item = {"path": "a", "content": b"already decoded", "raw": False, "compress": "gzip"}
    (out,) = transcode([item], "gzip")
    assert decompress(out["content"], "gzip") == b"already decoded"


def test_transcode_tuple_input():
    out = list(transcode([("a", b"one"), ("b", "two")], "zstd"))
    assert [o["path"] for o in out] == ["a", "b"]
    assert [decompress(o["content"], "zstd") for o in out] == [b"one", b"two"]
    assert all(o["raw"] is True and o["compress"] == "zstd" for o in out)


def test_transcode_none_content_yielded_unchanged():
    item = {"path": "missing", "content": None, "raw": True, "compress": "br", "error": None}
    (out,) = transcode([item], "gzip")
    assert out == item
    assert out is not item
    (out,) = transcode([item], "gzip", in_place=True)
    assert out is item
    assert item == {
        "path": "missing",
        "content": None,
        "raw": True,
        "compress": "br",
        "error": None,
    }


def test_transcode_copies_without_in_place():
    items = [raw_item("a", b"x" * 100, "gzip"), raw_item("b", b"y" * 100, "br")]
    before = copy.deepcopy(items)
    out = list(transcode(items, "xz"))
    assert items == before
    assert all(o is not i for o, i in zip(out, items, strict=True))
    assert [decompress(o["content"], "xz") for o in out] == [b"x" * 100, b"y" * 100]


def test_transcode_in_place_updates_the_given_dicts():
    items = [raw_item("a", b"x" * 100, "gzip"), raw_item("b", b"y" * 100, "br")]
    out = list(transcode(items, "bz2", in_place=True))
    assert all(o is i for o, i in zip(out, items, strict=True))
    assert all(i["compress"] == "bz2" and i["raw"] is True for i in items)
    assert [bz2.decompress(i["content"]) for i in items] == [b"x" * 100, b"y" * 100]


def test_transcode_corrupt_item_names_its_path():
    items = [
        raw_item("good", b"fine", "gzip"),
        {"path": "bad/one", "content": b"\x1f\x8bjunk", "raw": True, "compress": "gzip"},
    ]
    gen = transcode(items, "br")
    assert decompress(next(gen)["content"], "br") == b"fine"
    with pytest.raises(DecompressionError, match="bad/one"):
        next(gen)


def test_transcode_rejects_other_items():
    with pytest.raises(TypeError, match="str"):
        list(transcode(["just-a-path"], "gzip"))


def test_transcode_progress_events():
    events = []
    items = [("a", b"1" * 10), ("b", b"2" * 10), {"path": "c", "content": None}]
    gen = transcode(items, "gzip", progress=events.append)
    assert events == []  # nothing happens before iteration starts
    out = list(gen)
    kinds = [e.kind for e in events]
    assert kinds == ["start", "advance", "advance", "advance", "close"]
    assert all(e.desc == "Transcoding" and e.total == 3 for e in events)
    assert events[-1].files == 3
    assert events[-1].nbytes == sum(len(o["content"]) for o in out if o["content"] is not None)


def test_transcode_progress_unknown_total_and_early_close():
    events = []
    gen = transcode(((f"k{i}", b"data") for i in range(5)), "br", progress=events.append)
    next(gen)
    gen.close()
    assert [e.kind for e in events] == ["start", "advance", "close"]
    assert events[0].total is None


# -- properties -----------------------------------------------------------------------------------

binary = st.binary(max_size=4096)


@settings(max_examples=50, deadline=None)
@given(data=binary, codec=st.sampled_from(CODECS))
def test_property_round_trip(data, codec):
    assert decompress(compress(data, codec), codec) == data


@settings(max_examples=50, deadline=None)
@given(data=binary, source=st.sampled_from(TARGETS), target=st.sampled_from(TARGETS))
def test_property_transcode_preserves_content(data, source, target):
    item = {"path": "p", "content": compress(data, source), "raw": True, "compress": source}
    (once,) = transcode([item], target)
    assert once["compress"] == target
    assert decompress(once["content"], target) == data
    (back,) = transcode([once], source)
    assert decompress(back["content"], source) == data


@settings(max_examples=50, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=2048), codec=st.sampled_from(CODECS), cut=st.floats(0, 1)
)
def test_property_strict_prefix_never_returns_partial_data(data, codec, cut):
    packed = compress(data, codec)
    prefix = packed[: int(cut * (len(packed) - 1))]  # always strictly shorter than packed
    with pytest.raises(DecompressionError):
        decompress(prefix, codec, filename="prefix")


# -- gzip through libdeflate called directly ------------------------------------------------------


@needs_libdeflate
def test_direct_libdeflate_route_is_available():
    assert compression._libdeflate_direct(deflate) is not None


@needs_libdeflate
def test_single_member_gzip_decodes_without_the_binding_or_zlib(monkeypatch):
    """One member is decoded by libdeflate straight into bytes: neither the binding's
    gzip_decompress (bytearray + copy + CRC pass) nor the standard library is used."""

    def forbidden(*args):
        raise AssertionError("should not be needed for one member")

    cases = [(gzip.compress(TEXT), TEXT), (compress(NOISE, "gzip", compress_level=12), NOISE)]
    monkeypatch.setattr(compression.gzip, "decompress", forbidden)
    monkeypatch.setattr(compression, "_libdeflate_whole_stream", forbidden)
    for packed, plain in cases:
        for buffer in (packed, bytearray(packed), memoryview(packed)):
            out = decompress(buffer, "gzip")
            assert type(out) is bytes
            assert out == plain


@needs_libdeflate
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "binding"])
@pytest.mark.parametrize(
    "damage",
    ["truncated-trailer", "half", "no-trailer", "flipped", "huge-size", "size-too-small", "extra-garbage"],
)
def test_damaged_gzip_raises_decompression_error(monkeypatch, direct, damage):
    if not direct:
        monkeypatch.setattr(compression, "_libdeflate_direct", lambda lib: None)
    packed = bytearray(gzip.compress(TEXT))
    if damage == "truncated-trailer":
        packed = packed[:-3]
    elif damage == "half":
        packed = packed[: len(packed) // 2]
    elif damage == "no-trailer":
        packed = packed[:-8]
    elif damage == "flipped":
        packed[len(packed) // 3] ^= 0x55
    elif damage == "huge-size":  # claims ~4 GiB: must not be allocated, nor surface as MemoryError
        packed[-4:] = b"\xff\xff\xff\xf0"
    elif damage == "size-too-small":
        packed[-4:] = (len(TEXT) - 1).to_bytes(4, "little")
    elif damage == "extra-garbage":
        packed += b"garbage!"
    with pytest.raises(DecompressionError, match="damaged.gz") as info:
        decompress(bytes(packed), "gzip", filename="damaged.gz")
    assert info.value.__cause__ is not None


@needs_libdeflate
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "binding"])
def test_multi_member_gzip_both_libdeflate_routes(monkeypatch, direct):
    if not direct:
        monkeypatch.setattr(compression, "_libdeflate_direct", lambda lib: None)
    members = [TEXT, b"b", NOISE, b"", TEXT[:1000]]
    stream = b"".join(compress(m, "gzip") for m in members)
    assert decompress(stream, "gzip") == b"".join(members)
    assert decompress(gzip.compress(TEXT), "gzip") == TEXT


@needs_libdeflate
def test_direct_gzip_decoding_from_many_threads():
    """Decompressors are reused across calls; concurrent calls never share one."""
    from concurrent.futures import ThreadPoolExecutor

    payloads = [_rng.randbytes(5000) + TEXT[: 1000 * i] for i in range(40)]
    packed = [compress(p, "gzip", compress_level=1 + i % 12) for i, p in enumerate(payloads)]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            assert list(pool.map(lambda b: decompress(b, "gzip"), packed)) == payloads


# ----------------------------------------------------------------------------------------------
# the original's one-codec helpers: gzip_compress, gunzip, brotli_*, zstd_*

ONE_CODEC_HELPERS = [
    # compressor, decompressor, name of the level argument, default level, codec
    (compression.gzip_compress, compression.gunzip, "compresslevel", 9, "gzip"),
    (compression.brotli_compress, compression.brotli_decompress, "quality", 5, "br"),
    (compression.zstd_compress, compression.zstd_decompress, "level", 3, "zstd"),
]


@pytest.mark.parametrize("compressor, decompressor, level_name, default, codec", ONE_CODEC_HELPERS)
def test_one_codec_helpers(compressor, decompressor, level_name, default, codec):
    assert list(inspect.signature(compressor).parameters) == ["content", level_name]
    assert inspect.signature(compressor).parameters[level_name].default is None
    assert list(inspect.signature(decompressor).parameters) == ["content"]

    packed = compressor(TEXT)
    assert isinstance(packed, bytes)
    assert packed == compress(TEXT, codec, compress_level=default)
    assert decompressor(packed) == TEXT
    assert decompressor(bytearray(packed)) == TEXT
    assert decompressor(memoryview(packed)) == TEXT
    assert compressor(TEXT, **{level_name: 1}) == compress(TEXT, codec, compress_level=1)
    assert decompressor(compressor(memoryview(NOISE))) == NOISE
    assert decompressor(compressor(b"")) == b""
    with pytest.raises(DecompressionError):
        decompressor(b"")
    with pytest.raises(DecompressionError):
        decompressor(b"certainly not " + codec.encode())


def test_one_codec_helpers_read_the_standard_formats():
    assert compression.gunzip(gzip.compress(TEXT)) == TEXT
    assert compression.gunzip(gzip.compress(b"a") + gzip.compress(b"b")) == b"ab"  # 2 members
    assert compression.brotli_decompress(brotli.compress(TEXT, quality=11)) == TEXT
    assert compression.zstd_decompress(zstandard.ZstdCompressor(level=19).compress(TEXT)) == TEXT
    assert compression.zstd_decompress(zstd_stream_frame(TEXT)) == TEXT
    assert gzip.decompress(compression.gzip_compress(TEXT, compresslevel=1)) == TEXT
    assert brotli.decompress(compression.brotli_compress(TEXT, quality=11)) == TEXT
    assert zstandard.ZstdDecompressor().decompress(compression.zstd_compress(TEXT, 19)) == TEXT
    with pytest.raises(CompressionError):
        compression.brotli_compress(TEXT, quality=99)


def test_original_names_are_exported():
    for name in ("COMPRESSION_TYPES", "compress", "decompress", "transcode", "normalize_encoding",
                 "gzip_compress", "gunzip", "brotli_compress", "brotli_decompress",
                 "zstd_compress", "zstd_decompress"):
        assert name in compression.__all__
        assert callable(getattr(compression, name)) or name == "COMPRESSION_TYPES"
