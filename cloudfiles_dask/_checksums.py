"""Checksums of bytes: crc32c (base64, as GCS and our S3 metadata hold it) and md5, including
the md5s of many multipart-upload parts at once by the optional C module ``_md5lanes``.

Ground: imports nothing of the package but the C module. The engine checks reads with these
(``_engine.integrity``); backends hash what they send and receive with them.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

try:  # built at install time where a C compiler is there; optional
    from . import _md5lanes as _kernel
except ImportError:
    _kernel = None

#: The C module that hashes :data:`MD5_LANES` parts side by side (one per vector lane), or
#: None where it was not built (no C compiler at install time, or one without vector types).
MD5_KERNEL: Any = _kernel
#: Parts hashed side by side by :data:`MD5_KERNEL` (:func:`part_md5s`, and files' parts in s3.py).
MD5_LANES = 16
#: Fewest parts worth the kernel: a few lanes alone are slower than hashlib without AVX-512.
MD5_LANES_FEWEST = 4


def preload_crc32c() -> None:
    """Import the crc32c package now: its first import reads package metadata (tens of ms),
    which a cloud backend pays when it is made rather than inside its first bulk call."""
    import crc32c  # noqa: F401


def crc32c_b64(data: Any) -> str:
    """The base64 big-endian crc32c of any bytes-like ``data`` (the crc32c package's C code,
    which uses the CPU's crc32 instruction and releases the GIL for large buffers)."""
    import crc32c

    return base64.b64encode(crc32c.crc32c(data).to_bytes(4, "big")).decode("ascii")


def crc32c_hasher() -> Any:
    """A hashlib-like crc32c (``update``, ``digest`` big-endian); see :func:`crc32c_b64`."""
    import crc32c

    return crc32c.CRC32CHash()


def md5_hex(data: Any) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def part_md5s(data: Any, part_size: int) -> list[bytes]:
    """The md5 digests of bytes-like ``data`` cut into consecutive parts of ``part_size`` bytes
    (the last may be shorter; none for empty data). With :data:`MD5_KERNEL`, if there are at
    least :data:`MD5_LANES_FEWEST` whole parts, they are hashed sixteen at a time (one md5
    cannot be split, but the parts of an upload are independent). Otherwise, and for a short
    last part, one by one with hashlib."""
    view = memoryview(data).cast("B")
    whole = len(view) - len(view) % part_size if MD5_KERNEL is not None else 0
    if whole < MD5_LANES_FEWEST * part_size:
        whole = 0
    digests = MD5_KERNEL.md5_parts(view[:whole], part_size) if whole else []
    digests += [hashlib.md5(view[start:start + part_size], usedforsecurity=False).digest()
                for start in range(whole, len(view), part_size)]
    return digests


MiB = 1024 * 1024


def multipart_etag(data: Any, part_size: int) -> str:
    """The ETag S3 gives an object uploaded in parts of ``part_size`` bytes: the md5 of the
    parts' md5s, ``-`` and the number of parts (empty data: one empty part, as S3 stores it)."""
    digests = part_md5s(data, part_size) or [hashlib.md5(b"", usedforsecurity=False).digest()]
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def candidate_part_sizes(size: int, parts: int, hint: int | None = None,
                         unrounded: bool = True) -> list[int]:
    """Part sizes that uploaders commonly use, most likely first: a hint, 8 MiB (boto3, aws cli),
    15 MiB (s3cmd), and the size split evenly into ``parts``, rounded up to a whole MiB (and,
    with ``unrounded``, not rounded)."""
    candidates = [hint] if hint else []
    candidates += [8 * MiB, 15 * MiB]
    if parts:
        even = -(-size // parts)
        candidates += [-(-even // MiB) * MiB, even] if unrounded else [-(-even // MiB) * MiB]
    return [c for i, c in enumerate(candidates) if c and c > 0 and c not in candidates[:i]]


def new_digest(crc: bool) -> Any:
    """A hasher for the bytes of a read as they arrive: crc32c, or md5 (for md5 and ETag checks)."""
    return crc32c_hasher() if crc else hashlib.md5(usedforsecurity=False)


def digest_text(digest: Any) -> str:
    """A :func:`new_digest` result as Blob fields hold it: md5 in hex, crc32c in base64."""
    if getattr(digest, "name", None) == "md5":
        return digest.hexdigest()
    return base64.b64encode(digest.digest()).decode("ascii")
