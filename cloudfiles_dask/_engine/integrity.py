"""Checking downloaded bytes against the checksum the service reported (full reads only).

``Blob.hash_type`` says what ``Blob.hash`` holds:

- ``"md5"``: the hex md5 of the stored bytes;
- ``"crc32c"``: the base64 big-endian crc32c of the stored bytes (GCS's native form);
- ``"etag"``: an S3 ETag: plain ``<hex md5>``, multipart ``<hex>-<parts>`` (recomputed for the
  likely part sizes), anything else (``"123-"`` synthetic NFS ETags, opaque values) is not a
  checksum and is skipped.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

from .._checksums import (
    MiB,
    candidate_part_sizes,
    crc32c_b64,
    crc32c_hasher,
    md5_hex,
    multipart_etag,
)
from ..exceptions import CRC32CIntegrityError, IntegrityError, MD5IntegrityError

__all__ = ["IntegrityError", "crc32c_b64", "matches", "matches_file", "md5_hex", "mismatch", "mismatch_file"]

_PLAIN_ETAG = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART_ETAG = re.compile(r"^([0-9a-f]{32})-(\d+)$")


def _whole_md5(expected: str, hash_type: str) -> str | None:
    """The hex md5 that ``expected`` stands for, if it is one (an md5 or a plain S3 ETag)."""
    if hash_type == "md5":
        return expected.lower()
    if hash_type == "etag":
        etag = expected.strip('"').lower()
        return etag if _PLAIN_ETAG.match(etag) else None
    return None


def matches(data: bytes, expected: str, hash_type: str, part_size: int | None = None,
            md5: str | None = None, crc32c: str | None = None) -> bool:
    """Whether ``data`` has the checksum ``expected``. ``md5`` / ``crc32c``: the hex md5 /
    base64 crc32c of ``data`` if the backend computed it while the bytes arrived (spares a
    second pass over large objects)."""
    if md5 is not None and (whole := _whole_md5(expected, hash_type)) is not None:
        return md5 == whole
    if crc32c is not None and hash_type == "crc32c":
        return crc32c == expected
    if hash_type == "md5":
        return md5_hex(data) == expected.lower()
    if hash_type == "crc32c":
        return crc32c_b64(data) == expected
    if hash_type == "etag":
        etag = expected.strip('"').lower()
        if _PLAIN_ETAG.match(etag):
            return md5_hex(data) == etag
        multipart = _MULTIPART_ETAG.match(etag)
        if multipart:
            parts = int(multipart.group(2))
            return any(
                multipart_etag(data, size) == etag
                for size in candidate_part_sizes(len(data), parts, part_size)
                if -(-len(data) // size) == parts or (len(data) == 0 and parts == 1)
            )
        return True  # not a checksum (synthetic or opaque ETag): nothing to compare
    raise ValueError(f"unknown hash type {hash_type!r}")


def _file_chunks(path: str, size: int = MiB):
    """The file's bytes in pieces of ``size``, read into one reused buffer: each memoryview is
    valid until the next one is produced (memory stays at one buffer whatever the file size)."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(max(1, min(size, os.fstat(f.fileno()).st_size)))  # small files, small buffer
        view = memoryview(buf)
        while count := f.readinto(buf):
            yield view[:count]


def _file_multipart_etag(path: str, part_size: int) -> str:
    digests = []
    digest = hashlib.md5(usedforsecurity=False)
    filled = 0
    for chunk in _file_chunks(path):
        while chunk:
            take = chunk[: part_size - filled]
            digest.update(take)
            filled += len(take)
            chunk = chunk[len(take):]
            if filled == part_size:
                digests.append(digest.digest())
                digest = hashlib.md5(usedforsecurity=False)
                filled = 0
    if filled or not digests:
        digests.append(digest.digest())
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def matches_file(path: str, expected: str, hash_type: str, part_size: int | None = None,
                 md5: str | None = None, crc32c: str | None = None) -> bool:
    """:func:`matches` for a file on disk, read in chunks (memory stays small)."""
    if md5 is not None and (whole := _whole_md5(expected, hash_type)) is not None:
        return md5 == whole
    if crc32c is not None and hash_type == "crc32c":
        return crc32c == expected
    if hash_type == "md5" or (hash_type == "etag" and _PLAIN_ETAG.match(expected.strip('"').lower())):
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in _file_chunks(path):
            digest.update(chunk)
        return digest.hexdigest() == expected.strip('"').lower()
    if hash_type == "crc32c":
        checksum = crc32c_hasher()
        for chunk in _file_chunks(path):
            checksum.update(chunk)
        return base64.b64encode(checksum.digest()).decode() == expected
    if hash_type == "etag":
        etag = expected.strip('"').lower()
        multipart = _MULTIPART_ETAG.match(etag)
        if not multipart:
            return True
        size, parts = os.path.getsize(path), int(multipart.group(2))
        return any(
            _file_multipart_etag(path, part) == etag
            for part in candidate_part_sizes(size, parts, part_size)
            if -(-size // part) == parts or (size == 0 and parts == 1)
        )
    raise ValueError(f"unknown hash type {hash_type!r}")


def mismatch_file(path: str, shown_as: str, expected: str, hash_type: str) -> IntegrityError:
    cls = CRC32CIntegrityError if hash_type == "crc32c" else MD5IntegrityError
    return cls(f"{shown_as}: the downloaded bytes do not match the service's {hash_type} {expected}")


def mismatch(path: str, expected: str, hash_type: str, data: bytes) -> IntegrityError:
    if hash_type == "crc32c":
        return CRC32CIntegrityError(
            f"{path}: crc32c of the {len(data)} bytes received is {crc32c_b64(data)}, "
            f"the service says {expected}"
        )
    return MD5IntegrityError(
        f"{path}: md5 of the {len(data)} bytes received is {md5_hex(data)}, "
        f"the service says {expected} ({hash_type})"
    )
