"""Small helpers that code written for the original CloudFiles imports from ``cloudfiles.lib``.

Same names, signatures and results as there, built on the package's own ground modules
(:mod:`cloudfiles_dask._checksums` for md5, crc32c and part md5s, :mod:`cloudfiles_dask._iteration`
for batching). Nothing here is used on a hot path of the library; they are for callers.

- files: :func:`toabs`, :func:`mkdir`, :func:`touch`
- iteration: :func:`nvl`, :func:`totalfn`, :func:`sip`, :func:`first`, :func:`toiter`,
  :func:`duplicates`, :func:`scatter`
- JSON: :func:`jsonify` (orjson, numpy-aware, returns bytes)
- checksums: :func:`md5`, :func:`md5_equal`, :func:`crc32c`, :func:`encode_crc32c_b64`,
  :func:`decode_crc32c_b64`, :func:`calc_s3_multipart_etag`, :func:`validate_s3_multipart_etag`
- terminal colours: :data:`COLORS`, :func:`colorize`, :func:`red`, :func:`green`, :func:`yellow`
"""

from __future__ import annotations

import base64
import binascii
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from . import _checksums
from ._iteration import batched

__all__ = [
    "COLORS",
    "calc_s3_multipart_etag",
    "colorize",
    "crc32c",
    "decode_crc32c_b64",
    "duplicates",
    "encode_crc32c_b64",
    "first",
    "green",
    "jsonify",
    "md5",
    "md5_equal",
    "mkdir",
    "nvl",
    "red",
    "scatter",
    "sip",
    "toabs",
    "toiter",
    "totalfn",
    "touch",
    "validate_s3_multipart_etag",
    "yellow",
]

MiB = 1024 * 1024

# -- terminal colours --------------------------------------------------------------------------

COLORS: dict[str, str] = {
    "RESET": "\033[m",
    "YELLOW": "\033[1;93m",
    "RED": "\033[1;91m",
    "GREEN": "\033[1;92m",
}
"""ANSI escape codes by colour name (upper case), as :func:`colorize` uses them."""


def colorize(color: str, text: str) -> str:
    """``text`` wrapped in the ANSI codes of ``color`` (any case); KeyError for an unknown colour."""
    return COLORS[color.upper()] + text + COLORS["RESET"]


def red(text: str) -> str:
    return colorize("red", text)


def green(text: str) -> str:
    return colorize("green", text)


def yellow(text: str) -> str:
    return colorize("yellow", text)


# -- files -------------------------------------------------------------------------------------


def toabs(path: str) -> str:
    """``path`` made absolute, with ``~`` expanded and ``..`` resolved (symlinks are kept)."""
    return os.path.abspath(os.path.expanduser(path))


def mkdir(path: str) -> str:
    """Create directory ``path`` and its parents if missing; returns the absolute path.

    Nothing happens (and no error is raised) if something already exists at ``path``.
    """
    path = toabs(path)
    if not os.path.exists(path):
        os.makedirs(path, exist_ok=True)
    return path


def touch(path: str) -> None:
    """Create file ``path`` (and its directories) if missing, else update its modification time.
    The content of an existing file is kept."""
    path = toabs(path)
    mkdir(os.path.dirname(path))
    with open(path, "a"):
        pass
    os.utime(path, None)


# -- iteration ---------------------------------------------------------------------------------


def nvl(*args: Any) -> Any:
    """The first argument that is not None (else None). IndexError with fewer than two arguments."""
    if len(args) < 2:
        raise IndexError("nvl takes at least two arguments.")
    for arg in args:
        if arg is not None:
            return arg
    return None


def totalfn(files: Any, total: int | None = None) -> int | None:
    """``total`` if given, else ``len(files)`` when ``files`` has a length, else None."""
    if total is not None:
        return total
    try:
        return len(files)
    except TypeError:
        return None


def sip(iterable: Iterable[Any], block_size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``block_size`` items from ``iterable`` (the last may be shorter),
    read lazily. A ``block_size`` that is not a positive whole number gives one list of all."""
    if isinstance(block_size, int) and block_size > 0:
        yield from batched(iterable, block_size)
        return
    everything = list(iterable)
    if everything:
        yield everything


def jsonify(obj: Any, **kwargs: Any) -> bytes:
    """``obj`` as compact JSON bytes (orjson), with numpy arrays and scalars and non-string dict
    keys allowed. ``kwargs`` go to ``orjson.dumps`` (``default=``)."""
    import orjson

    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, **kwargs)


def first(lst: Any) -> Any:
    """The first item of a sequence or iterable, or None if it is empty.

    Sequences are indexed (``lst[0]``, so a dict raises KeyError); other iterables are advanced
    by one item.
    """
    if hasattr(lst, "__getitem__"):
        try:
            return lst[0]
        except IndexError:
            return None
    return next(iter(lst), None)


def toiter(obj: Any, is_iter: bool = False) -> Any:
    """``obj`` if it is an iterable other than a str or dict, else ``[obj]``.

    With ``is_iter=True`` returns ``(result, whether obj was such an iterable)``.
    """
    iterable = not isinstance(obj, (str, dict)) and hasattr(obj, "__iter__")
    result = obj if iterable else [obj]
    return (result, iterable) if is_iter else result


def duplicates(lst: Iterable[Any]) -> set[Any]:
    """The set of items that occur more than once in ``lst``."""
    return {item for item, count in Counter(lst).items() if count > 1}


def scatter(sequence: Iterable[Any], n: int) -> Iterator[list[Any]]:
    """``n`` lists dealing the items of ``sequence`` round robin: item ``i`` goes to list
    ``i % n``. ValueError (when iterated) if ``n`` is less than one."""
    if n < 1:
        raise ValueError(f"n cannot be less than one. Got: {n}")
    items = list(sequence)
    for start in range(n):
        yield items[start::n]


# -- checksums ---------------------------------------------------------------------------------


def _as_bytes(binary: Any) -> Any:
    return binary.encode("utf-8") if isinstance(binary, str) else binary


def md5(binary: Any, base: int = 64) -> str:
    """The md5 of ``binary`` (a str is hashed as UTF-8): base64 text (``base=64``, the
    Content-MD5 form) or hex (``base=16``, the ETag form). ValueError for another base."""
    if base not in (16, 64):
        raise ValueError(f"base {base} must be 16 or 64.")
    digest_hex = _checksums.md5_hex(_as_bytes(binary))
    if base == 16:
        return digest_hex
    return base64.b64encode(bytes.fromhex(digest_hex)).decode("ascii")


def _md5_form(value: str | bytes) -> str | bytes:
    """The 16 digest bytes that ``value`` (hex or base64 md5, maybe quoted) spells, else the
    text itself (multipart ETags and other opaque values compare as text)."""
    if isinstance(value, bytes):
        value = value.decode("ascii")
    text = value.strip('"')
    if len(text) == 32:
        try:
            return bytes.fromhex(text)
        except ValueError:
            return text
    if len(text) == 24:
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error:
            return text
        if len(raw) == 16:
            return raw
    return text


def md5_equal(hash_a: str, hash_b: str) -> bool:
    """Whether two md5s are the same, whichever of hex (ETag, any case, maybe quoted) and base64
    (Content-MD5) each is written in. Other values (multipart ETags) must match exactly."""
    return _md5_form(hash_a) == _md5_form(hash_b)


def crc32c(binary: Any) -> int:
    """The crc32c of ``binary`` as an unsigned int (a str is hashed as UTF-8)."""
    hasher = _checksums.crc32c_hasher()
    hasher.update(_as_bytes(binary))
    return int.from_bytes(hasher.digest(), "big")


def encode_crc32c_b64(binary: Any) -> bytes:
    """The crc32c of ``binary`` as base64 of its 4 big-endian bytes (as GCS writes it), in
    bytes: ``b'mnG7TA=='`` for ``b'hello'``."""
    return _checksums.crc32c_b64(_as_bytes(binary)).encode("ascii")


def decode_crc32c_b64(b64digest: str | bytes) -> int:
    """The int that a base64 crc32c (:func:`encode_crc32c_b64`, GCS's ``crc32c``) stands for.
    Missing ``=`` padding is tolerated. ValueError if it is not 4 bytes of base64."""
    text = b64digest.decode("ascii") if isinstance(b64digest, bytes) else b64digest
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text)
    except binascii.Error as e:
        raise ValueError(f"{b64digest!r} is not a base64 crc32c: {e}") from None
    if len(raw) != 4:
        raise ValueError(f"{b64digest!r} is not a base64 crc32c (it decodes to {len(raw)} bytes, not 4)")
    return int.from_bytes(raw, "big")


def calc_s3_multipart_etag(content: Any, partsize: int) -> str:
    """The ETag S3 gives ``content`` uploaded in parts of ``partsize`` bytes: the hex md5 of the
    parts' md5 digests, then ``-`` and the number of parts (``d41d8...-0`` for no content)."""
    if partsize <= 0:
        raise ValueError(f"partsize must be a positive number of bytes, got {partsize!r}")
    if not len(memoryview(content).cast("B")):
        return f"{_checksums.md5_hex(b'')}-0"  # no parts, as the original computes it
    return _checksums.multipart_etag(content, int(partsize))


def validate_s3_multipart_etag(content: bytes, etag: str, part_size: int | None) -> bool:
    """Whether the multipart ETag ``etag`` (``<hex md5>-<parts>``, quotes allowed) fits
    ``content``: it is recomputed for ``part_size`` and the part sizes common uploaders use
    (8 MiB, 15 MiB, the size over the parts rounded up to a MiB). A plain ETag (no ``-``) is
    compared with the md5 of ``content``."""
    text = etag.strip('"').lower()
    digest, dash, count = text.partition("-")
    if not dash:
        return _checksums.md5_hex(content) == text
    if not count.isdigit():
        return False
    parts, size = int(count), len(memoryview(content).cast("B"))
    # the original's candidates: without the unrounded even split the engine also tries
    for candidate in _checksums.candidate_part_sizes(size, parts, part_size, unrounded=False):
        if -(-size // candidate) == parts and calc_s3_multipart_etag(content, candidate) == text:
            return True
    return False
