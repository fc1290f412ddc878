"""Codecs for stored objects: gzip, brotli, zstd, xz and bz2, plus :func:`transcode`.

Names of encodings are normalised by :func:`normalize_encoding` to one of ``None``, ``'gzip'``,
``'br'``, ``'zstd'``, ``'xz'`` or ``'bz2'``; every other function here accepts any spelling that
function accepts (``True``, ``'GZIP'``, ``'lzma'``, ``'bzip2'``...).

The codec libraries are imported the first time they are needed, so importing this module stays
cheap. gzip uses libdeflate (the ``deflate`` package) when it is importable and the standard
library otherwise; the two produce interchangeable streams.

Correctness hazards handled here rather than left to the caller:

- libdeflate decodes a single gzip member and sizes its output from the 4-byte trailer (the size
  modulo 2**32). Streams of several concatenated members (``cat a.gz b.gz``, pigz) and members of
  4 GiB or more are detected and decoded by the standard library instead, so the answer is always
  the whole content.
- zstd frames written by a streaming compressor carry no content size; they, and streams of several
  frames, are decoded frame by frame.
- Truncated or corrupt data always raises :class:`~cloudfiles_dask.exceptions.DecompressionError`;
  partial output is never returned.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, TypeAlias

from .exceptions import (
    CompressionError,
    DecompressionError,
    UnsupportedCompressionType,
)
from .progress import make_progress

BytesLike: TypeAlias = bytes | bytearray | memoryview

COMPRESSION_TYPES: list[Any] = [
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
"""The values accepted for ``compress=`` across the API (as in the original CloudFiles)."""

ENCODING_SUFFIXES: Mapping[str, str] = MappingProxyType(
    {"gzip": ".gz", "br": ".br", "zstd": ".zstd", "xz": ".xz", "bz2": ".bz2"}
)
"""Canonical encoding -> suffix of the file a local backend (``file://``, ``mem://``) writes."""

SUFFIX_ENCODINGS: Mapping[str, str] = MappingProxyType(
    {suffix: encoding for encoding, suffix in ENCODING_SUFFIXES.items()}
)
"""Local-file suffix -> canonical encoding (the reverse of :data:`ENCODING_SUFFIXES`)."""

SUFFIX_ORDER: tuple[str, ...] = ("", ".gz", ".br", ".zstd", ".xz", ".bz2")
"""The fixed order in which a local backend probes the variants of a key ``K``: ``K`` itself
(the empty suffix), then ``K.gz``, ``K.br``, ``K.zstd``, ``K.xz``, ``K.bz2``. Unlike the
original's adaptive order, the winner never depends on what was read before."""

# Every spelling normalize_encoding accepts for a string, lower-cased.
_NAME_ALIASES: Mapping[str, str | None] = MappingProxyType(
    {
        "": None,
        "identity": None,  # the HTTP Content-Encoding for "not encoded"
        "gzip": "gzip",
        "x-gzip": "gzip",  # RFC 9110 asks recipients to treat it as gzip
        "br": "br",
        "zstd": "zstd",
        "xz": "xz",
        "lzma": "xz",
        "bz2": "bz2",
        "bzip2": "bz2",
    }
)

_GZIP_MAGIC = b"\x1f\x8b"
_UINT32 = 0xFFFFFFFF
_LIBDEFLATE_LEVELS = range(1, 13)
_MAX_DEFLATE_RATIO = 1032  # deflate cannot expand data more than this (plus a few bytes)


def normalize_encoding(enc: Any) -> str | None:
    """Return the canonical name of an encoding: ``None``, 'gzip', 'br', 'zstd', 'xz' or 'bz2'.

    Falsy values (``None``, ``False``, ``''``, ``0``) and ``'identity'`` mean "not compressed" and
    give ``None``; ``True`` and ``1`` give 'gzip'; 'lzma' gives 'xz' and 'bzip2' gives 'bz2'.
    Names are case-insensitive. Anything else raises
    :class:`~cloudfiles_dask.exceptions.UnsupportedCompressionType`.
    """
    if enc is None or enc is False:
        return None
    if enc is True:
        return "gzip"
    if isinstance(enc, str):
        try:
            return _NAME_ALIASES[enc.lower()]
        except KeyError:
            pass
    elif isinstance(enc, int) and enc in (0, 1):
        return "gzip" if enc else None
    accepted = ", ".join(repr(name) for name in [None, False, True, 0, 1, *_NAME_ALIASES])
    raise UnsupportedCompressionType(
        f"Unsupported compression type {enc!r}. Accepted (case-insensitive): {accepted}."
    )


# -- lazily imported codec libraries ------------------------------------------------------------


@functools.cache
def _libdeflate() -> ModuleType | None:
    """The ``deflate`` (libdeflate) module, or None when it is not installed."""
    try:
        import deflate
    except ImportError:
        return None
    return deflate


@functools.cache
def _brotli() -> ModuleType:
    import brotli

    return brotli


@functools.cache
def _zstandard() -> ModuleType:
    import zstandard

    return zstandard


# -- codecs: compress(data, level) -> bytes and decompress(data) -> bytes ----------------------


def _gzip_compress(data: BytesLike, level: int) -> bytes:
    lib = _libdeflate()
    if lib is not None and level in _LIBDEFLATE_LEVELS:
        return bytes(lib.gzip_compress(data, level))
    if lib is None and level in _LIBDEFLATE_LEVELS:
        level = min(level, 9)  # zlib stops at 9; libdeflate's 10-12 have no stdlib equivalent
    # mtime=0 keeps the output reproducible, as libdeflate's is.
    return gzip.compress(data, compresslevel=level, mtime=0)


def _gzip_decompress(data: BytesLike) -> bytes:
    if bytes(data[:2]) != _GZIP_MAGIC:
        raise ValueError("not gzip data: the first two bytes are not the gzip magic 1f 8b")
    lib = _libdeflate()
    if lib is not None and len(data) >= 18:  # 10-byte header + 8-byte trailer at the least
        if isinstance(data, memoryview):
            data = data.tobytes()
        direct = _libdeflate_direct(lib)
        out = direct(data) if direct is not None else _libdeflate_whole_stream(lib, data)
        if out is not None:
            return out
    # Several members, >= 4 GiB, zero padding, or corrupt: the standard library decides.
    return gzip.decompress(data)


@functools.cache
def _libdeflate_direct(lib: ModuleType) -> Callable[[bytes | bytearray], bytes | None] | None:
    """libdeflate's own gzip decoder, reached through ctypes in the ``deflate`` package's
    extension (which exports it), or None where that is not possible.

    The binding's ``gzip_decompress`` returns a bytearray and does not say how much input it
    consumed, which costs a copy to bytes plus a CRC-32 and a scan to tell one member from
    several (see :func:`_libdeflate_whole_stream`). Called directly, libdeflate writes into a new
    bytes object and reports the input it used: one pass, no copy, and the GIL is released while
    it runs. The returned function gives None ("ask zlib") unless ``data`` is exactly one member.
    """
    try:
        import ctypes

        so = ctypes.CDLL(lib._deflate.__file__)
        alloc, free = so.libdeflate_alloc_decompressor, so.libdeflate_free_decompressor
        decode = so.libdeflate_gzip_decompress_ex
        new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
        address_of = ctypes.pythonapi.PyBytes_AsString
    except (ImportError, AttributeError, OSError):
        return None
    size_t, pointer = ctypes.c_size_t, ctypes.c_void_p
    alloc.argtypes, alloc.restype = [], pointer
    free.argtypes, free.restype = [pointer], None
    decode.argtypes = [pointer, pointer, size_t, pointer, size_t, ctypes.POINTER(size_t), pointer]
    decode.restype = ctypes.c_int
    new_bytes.argtypes, new_bytes.restype = [ctypes.c_char_p, ctypes.c_ssize_t], ctypes.py_object
    address_of.argtypes, address_of.restype = [ctypes.py_object], pointer
    idle: list[int] = []  # decompressors not in use (list.pop/append are atomic): one per thread at most

    def gunzip(data: bytes | bytearray) -> bytes | None:
        size = int.from_bytes(data[-4:], "little")  # the trailer's size (of the last member)
        if size == 0 or size > _MAX_DEFLATE_RATIO * len(data):
            return None  # empty, several members, >= 4 GiB, or a damaged trailer
        source = data if isinstance(data, bytes) else (ctypes.c_char * len(data)).from_buffer(data)
        try:
            out = new_bytes(None, size)  # filled below, before anyone else sees it
        except MemoryError:  # a damaged trailer can claim up to ~1000x the input
            return None
        used_in = size_t()
        decompressor = idle.pop() if idle else alloc()
        if not decompressor:
            return None
        try:
            # No output-count pointer: libdeflate then fails unless the output fills ``out``
            # exactly. It checks the member's CRC-32 and size itself; the member is the whole
            # stream only if it used all of the input.
            result = decode(decompressor, source, len(data), address_of(out), size, ctypes.byref(used_in), None)
        finally:
            idle.append(decompressor)
        return out if result == 0 and used_in.value == len(data) else None

    return gunzip


def _libdeflate_whole_stream(lib: ModuleType, data: bytes | bytearray) -> bytes | None:
    """Decode ``data`` with the binding's ``gzip_decompress`` if it is one gzip member; None means
    "ask zlib instead". The fallback for when :func:`_libdeflate_direct` is not available.

    libdeflate decodes only the first member and checks it against that member's own trailer
    (CRC-32 and size mod 2**32). So the first member ends where that trailer occurs; if it occurs
    at the end of ``data`` and nowhere before, there is exactly one member and the output is
    complete. The extra cost is a CRC-32 of the output, one scan of the input and a copy. A
    trailer size of 0 is left to zlib too: the binding returns empty output for it without
    decoding anything.
    """
    if data[-4:] == b"\x00\x00\x00\x00":
        return None
    try:
        out = lib.gzip_decompress(data)
    except Exception:  # DeflateError, ValueError, MemoryError from a huge trailer size...
        return None
    # libdeflate's crc32 is the faster one; older bindings do not have it.
    crc32 = getattr(lib, "crc32", None) or zlib.crc32
    trailer = struct.pack("<II", crc32(out) & _UINT32, len(out) & _UINT32)
    if data[-8:] != trailer or data.rfind(trailer, 0, len(data) - 1) != -1:
        return None
    return bytes(out)  # one copy, so callers get immutable bytes whichever path decoded them


def _brotli_compress(data: BytesLike, level: int) -> bytes:
    return _brotli().compress(data, quality=level)


def _brotli_decompress(data: BytesLike) -> bytes:
    return _brotli().decompress(data)


def _zstd_compress(data: BytesLike, level: int) -> bytes:
    return _zstandard().ZstdCompressor(level=level).compress(data)


def _zstd_decompress(data: BytesLike) -> bytes:
    zstd = _zstandard()
    decompressor = zstd.ZstdDecompressor()
    try:
        # Fast path: one frame that records its content size (what ZstdCompressor.compress writes).
        return decompressor.decompress(data, allow_extra_data=False)
    except zstd.ZstdError:
        pass  # no content size, several frames, or corrupt: decode frame by frame to find out
    parts = []
    rest: BytesLike = data
    while True:
        frame = decompressor.decompressobj()
        parts.append(frame.decompress(rest))
        if not frame.eof:
            raise ValueError("zstd data ends in the middle of a frame (truncated)")
        rest = frame.unused_data
        if not rest:
            return b"".join(parts)


def _xz_compress(data: BytesLike, level: int) -> bytes:
    import lzma

    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=level)


def _xz_decompress(data: BytesLike) -> bytes:
    import lzma

    return lzma.decompress(data)


def _bz2_compress(data: BytesLike, level: int) -> bytes:
    import bz2

    return bz2.compress(data, level)


def _bz2_decompress(data: BytesLike) -> bytes:
    import bz2

    return bz2.decompress(data)


@dataclass(frozen=True)
class _Codec:
    compress: Callable[[BytesLike, int], bytes]
    decompress: Callable[[BytesLike], bytes]
    default_level: int


_CODECS: Mapping[str, _Codec] = MappingProxyType(
    {
        "gzip": _Codec(_gzip_compress, _gzip_decompress, 9),
        "br": _Codec(_brotli_compress, _brotli_decompress, 5),
        "zstd": _Codec(_zstd_compress, _zstd_decompress, 3),
        "xz": _Codec(_xz_compress, _xz_decompress, 6),
        "bz2": _Codec(_bz2_compress, _bz2_decompress, 9),
    }
)


def _as_buffer(content: Any) -> BytesLike:
    """bytes/bytearray as they are, a str as UTF-8, any other buffer as a flat byte view."""
    if isinstance(content, (bytes, bytearray)):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    try:
        view = memoryview(content)
    except TypeError:
        raise TypeError(
            f"content must be bytes, bytearray, memoryview or str, not {type(content).__name__}"
        ) from None
    return view.cast("B") if view.c_contiguous else view.tobytes()


# -- public functions ---------------------------------------------------------------------------


def compress(
    content: BytesLike | str, method: Any = "gzip", compress_level: int | None = None
) -> BytesLike | str:
    """Compress ``content`` with ``method`` and return the compressed bytes.

    ``method`` is any spelling :func:`normalize_encoding` accepts; ``None``, ``False`` and ``''``
    return ``content`` unchanged (same object). A ``str`` is encoded as UTF-8 first; bytes,
    bytearray, memoryview and other buffer objects are compressed as they are.

    Default levels: gzip 9 (libdeflate accepts 1-12; without libdeflate 10-12 become 9), brotli
    quality 5, zstd 3, xz preset 6, bz2 9. The whole input and output are held in memory; gzip
    through libdeflate and zstd are the fast choices, xz and bz2 are several times slower.

    Raises UnsupportedCompressionType for an unknown method and CompressionError when the codec
    fails (for example a level it does not accept).
    """
    encoding = normalize_encoding(method)
    if encoding is None:
        return content
    codec = _CODECS[encoding]
    data = _as_buffer(content)
    level = codec.default_level if compress_level is None else compress_level
    try:
        return codec.compress(data, level)
    except MemoryError:
        raise
    except Exception as e:
        raise CompressionError(f"Unable to compress with {encoding} at level {level!r}: {e}") from e


def decompress(content: Any, encoding: Any, filename: str = "N/A") -> Any:
    """Decompress ``content`` that was stored with ``encoding`` and return the original bytes.

    An encoding of ``None`` or ``''`` (or ``'identity'``) returns ``content`` unchanged, and a
    ``None`` content (a missing file) is returned as ``None``. ``filename`` is only used in error
    messages.

    Raises DecompressionError, chained to the codec's own error, when the content is empty, is not
    in that encoding, or is corrupt or truncated: partial output is never returned. Raises
    UnsupportedCompressionType for an unknown encoding. Memory use is the input plus the output;
    multi-member gzip and multi-frame zstd streams are decoded in full (at standard-library speed
    for multi-member gzip).
    """
    encoding = normalize_encoding(encoding)
    if encoding is None or content is None:
        return content
    data = _as_buffer(content)
    if len(data) == 0:
        raise DecompressionError(
            f"File {filename!r} contains zero bytes, so it cannot be decompressed as {encoding}."
        )
    try:
        return _CODECS[encoding].decompress(data)
    except MemoryError:
        raise
    except Exception as e:
        raise DecompressionError(f"Unable to decompress {filename!r} as {encoding}: {e}") from e


def transcode(
    files: Iterable[Mapping[str, Any] | tuple[str, Any]],
    encoding: Any,
    level: int | None = None,
    progress: Any = False,
    in_place: bool = False,
) -> Iterator[dict[str, Any]]:
    """Re-encode files to ``encoding``, lazily: a generator yielding one dict per input item.

    Items are ``get()``-style dicts (``path``, ``content``, ``raw``, ``compress``, ...) or
    ``(path, content)`` tuples, which mean uncompressed content. Each output dict has
    ``content`` in the target encoding, ``raw=True`` and ``compress=<target encoding>``
    (``None`` for plain content), ready for ``put``.

    An item whose content is already in the target encoding (``raw`` and a matching
    ``compress``, or plain content when the target is ``None``) is passed through without being
    decoded or re-encoded, which is what makes copying compressed data cheap. Other items are
    decompressed (when raw) and compressed again, costing a full codec cycle each. A ``None``
    content is yielded unchanged.

    Without ``in_place`` each yielded dict is a shallow copy and the caller's dicts are left alone;
    with ``in_place`` the given dicts are updated and yielded. ``progress`` takes the usual
    ``progress=`` values (see :mod:`cloudfiles_dask.progress`); ``level`` is the
    compression level for re-encoded items. The target encoding is checked when ``transcode`` is
    called; errors in an item (DecompressionError naming its path) surface when it is reached.
    """
    target = normalize_encoding(encoding)
    total = len(files) if hasattr(files, "__len__") else None  # type: ignore[arg-type]
    return _transcode_items(files, target, level, progress, in_place, total)


def _transcode_items(
    files: Iterable[Mapping[str, Any] | tuple[str, Any]],
    target: str | None,
    level: int | None,
    progress: Any,
    in_place: bool,
    total: int | None,
) -> Iterator[dict[str, Any]]:
    bar = make_progress(progress, total=total, desc="Transcoding")
    try:
        for item in files:
            if isinstance(item, tuple):
                path, content = item
                file: dict[str, Any] = {
                    "path": path,
                    "content": content,
                    "raw": False,
                    "compress": None,
                }
            elif isinstance(item, dict) and in_place:
                file = item
            elif isinstance(item, Mapping):
                file = dict(item)
            else:
                raise TypeError(
                    f"transcode takes dicts like get() returns or (path, content) tuples, "
                    f"not {type(item).__name__}"
                )

            content = file.get("content")
            if content is not None:
                source = normalize_encoding(file.get("compress")) if file.get("raw") else None
                if source != target:
                    path = file.get("path", "N/A")
                    plain = decompress(content, source, filename=path)
                    content = compress(plain, target, compress_level=level)
                file["content"] = content
                file["raw"] = True
                file["compress"] = target

            nbytes = len(content) if isinstance(content, (bytes, bytearray, memoryview)) else 0
            bar.advance(1, nbytes)
            yield file
    finally:
        bar.close()


# -- one codec by name (the original's helpers) -------------------------------------------------


def gzip_compress(content: BytesLike | str, compresslevel: int | None = None) -> bytes:
    """gzip ``content`` (level 9 unless given; libdeflate when installed): ``compress(content,
    "gzip", compresslevel)``."""
    return compress(content, "gzip", compresslevel)  # type: ignore[return-value]


def gunzip(content: BytesLike) -> bytes:
    """Decode a gzip stream (all its members): ``decompress(content, "gzip")``.
    DecompressionError if it is empty, not gzip, corrupt or truncated."""
    return decompress(content, "gzip")


def brotli_compress(content: BytesLike | str, quality: int | None = None) -> bytes:
    """Brotli-compress ``content`` (quality 5 unless given): ``compress(content, "br", quality)``."""
    return compress(content, "br", quality)  # type: ignore[return-value]


def brotli_decompress(content: BytesLike) -> bytes:
    """Decode brotli data: ``decompress(content, "br")``; DecompressionError if it is not."""
    return decompress(content, "br")


def zstd_compress(content: BytesLike | str, level: int | None = None) -> bytes:
    """zstd-compress ``content`` (level 3 unless given): ``compress(content, "zstd", level)``."""
    return compress(content, "zstd", level)  # type: ignore[return-value]


def zstd_decompress(content: BytesLike) -> bytes:
    """Decode zstd data (all frames): ``decompress(content, "zstd")``; DecompressionError if
    it is empty, not zstd, corrupt or truncated."""
    return decompress(content, "zstd")


__all__ = [
    "COMPRESSION_TYPES",
    "ENCODING_SUFFIXES",
    "SUFFIX_ENCODINGS",
    "SUFFIX_ORDER",
    "brotli_compress",
    "brotli_decompress",
    "compress",
    "decompress",
    "gunzip",
    "gzip_compress",
    "normalize_encoding",
    "transcode",
    "zstd_compress",
    "zstd_decompress",
]
