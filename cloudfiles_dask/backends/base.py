"""The backend contract and the lazy protocol registry.

A backend speaks one storage protocol and knows nothing of threads, compression codecs, retries,
integrity checks or progress: those belong to the engine, written once. Keys are always relative to
the backend's root and always use ``/`` as the separator.

Required primitives: :meth:`Backend.get`, :meth:`Backend.put`, :meth:`Backend.head`,
:meth:`Backend.size`, :meth:`Backend.exists_many`, :meth:`Backend.delete_many`,
:meth:`Backend.list`. Optional capabilities are *declared* as class attributes, never probed.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

from ..compression import ENCODING_SUFFIXES, SUFFIX_ENCODINGS, SUFFIX_ORDER
from ..exceptions import UnsupportedProtocolError
from ..paths import ExtractedPath


@dataclass(slots=True)
class Blob:
    """What a read returns: the stored bytes and what the service says about them."""

    content: Any  # bytes, or any object mem:// was given with raw=True
    encoding: str | None = None  # stored encoding, canonical name (see compression)
    hash: str | None = None  # the service's checksum of the stored bytes, if any
    hash_type: str | None = None  # "md5" | "crc32c" | "etag" (S3) | None; see _engine.integrity
    size: int | None = None  # stored size of the whole object, when a streamed read knows it
    md5: str | None = None  # hex md5 of exactly the bytes received (returned or streamed), if known
    crc32c: str | None = None  # base64 crc32c of exactly the bytes received, if known


@dataclass(frozen=True, slots=True)
class PutMeta:
    content_type: str | None = None
    encoding: str | None = None  # canonical encoding of the bytes being stored
    cache_control: str | None = None
    storage_class: str | None = None


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Construction arguments a backend may care about; each ignores what is not its concern."""

    secrets: Any = field(default=None, repr=False)  # never in reprs or logs
    request_payer: str | None = None
    locking: bool = False
    lock_dir: str | None = None
    composite_upload_threshold: int = int(1e8)
    no_sign_request: bool = False
    endpoint: str | None = None
    num_threads: int = 20


class Backend(ABC):
    """One storage protocol, rooted at a directory-like prefix."""

    #: How many keys one exists_many / delete_many call should be given (an instance may lower
    #: them, e.g. GCS after a server refused batch requests).
    exists_batch_size: int = 1
    delete_batch_size: int = 1
    #: Thread caps for reads and writes: None means the CloudFiles' num_threads, 0 means the
    #: calling thread only (for backends whose calls never block on a network).
    read_threads: ClassVar[int | None] = None
    write_threads: ClassVar[int | None] = None
    #: False for backends whose data lives in this process only (mem://).
    crosses_processes: ClassVar[bool] = True
    #: False for read-only backends (plain HTTP).
    writable: ClassVar[bool] = True
    #: True if put(raw=True) may be given any Python object, stored as is (mem://).
    stores_objects: ClassVar[bool] = False
    #: True for backends that can take a download streamed into a local file (file://):
    #: they implement receive() and open_stored().
    local_files: ClassVar[bool] = False

    def __init__(self, root: ExtractedPath, options: BackendOptions):
        self.root = root
        self.options = options

    # -- required primitives ------------------------------------------------------------------
    @abstractmethod
    def get(self, key: str, start: int | None = None, end: int | None = None) -> Blob | None:
        """Stored bytes of ``key`` (``[start:end]`` with Python slice rules), None if missing."""

    @abstractmethod
    def put(self, key: str, data: bytes | BinaryIO | Any, meta: PutMeta) -> None:
        """Store ``data`` (already encoded as ``meta.encoding``) under ``key``, atomically."""

    @abstractmethod
    def head(self, key: str) -> dict | None:
        """Metadata dict (CloudFiles header names), None if missing."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """Stored (encoded) size in bytes, None if missing."""

    @abstractmethod
    def exists_many(self, keys: list[str]) -> dict[str, bool]: ...

    @abstractmethod
    def delete_many(self, keys: list[str]) -> None:
        """Delete every stored form of each key; missing keys are not an error."""

    @abstractmethod
    def list(self, prefix: str = "", flat: bool = False, size: bool = False) -> Iterator[tuple[str, int | None]]:
        """``(key, size or None)`` for keys starting with ``prefix``.

        ``flat`` lists one level: deeper keys are folded into ``"dir/"`` entries (size None).
        ``size`` asks for sizes where they cost extra; a backend may give them anyway.
        """

    def retryable(self, error: BaseException) -> bool:
        """True if ``error`` is transient (connection reset, timeout, 429, 5xx) and the call may
        be repeated. Local backends retry nothing."""
        return False

    # -- optional capabilities, with engine-usable defaults ------------------------------------
    def list_resumable(
        self, prefix: str = "", size: bool = False, token: str | None = None
    ) -> Iterator[tuple[str, int | None, str | None]]:
        """A recursive listing that can be picked up again: each ``(key, size, token)`` carries
        the token that restarts the listing at the start of that key's page (None: from the
        beginning). Resuming may repeat up to one page, never skips. Backends without page
        tokens (file://, mem://, http://) always give None and start over."""
        if token is not None:
            raise ValueError(f"{type(self).__name__} listings cannot be resumed from a token")
        for key, nbytes in self.list(prefix, False, size):
            yield key, nbytes, None

    def stream_to(self, key: str, fileobj: BinaryIO, start: int = 0) -> Blob | None:
        """Write the stored bytes of ``key`` from offset ``start`` on into ``fileobj``.

        Returns a Blob with ``content=None``, the stored encoding, the service's checksum of the
        *whole* stored object (or None) and, where known, its whole stored ``size``; None if
        the object is missing. The engine checks the finished file against ``size`` and the
        checksum, so a resumed download (``start > 0``) is verified end to end. A ``start`` at
        or past the end writes nothing (the object's size then tells whether the bytes already
        on disk are complete). A stream that ends early raises the backend's retryable error.

        This default reads the object whole with :meth:`get`; network backends override it to
        stream in chunks, so a download to disk never holds the whole object in memory."""
        if start:
            blob = self.get(key, start)
            if blob is None:
                return None
            fileobj.write(blob.content)
            return Blob(None, blob.encoding)
        blob = self.get(key)
        if blob is None:
            return None
        fileobj.write(blob.content)
        size = len(blob.content) if isinstance(blob.content, (bytes, bytearray, memoryview)) else None
        return Blob(None, blob.encoding, blob.hash, blob.hash_type, size)

    def can_copy_to(self, other: Backend) -> bool:
        """True if :meth:`copy_to` can move bytes to ``other`` without passing through here."""
        return False

    def copy_to(self, key: str, other: Backend, dest_key: str) -> int | None:
        """Server-side / kernel copy of the stored object; returns bytes copied, None if missing."""
        raise NotImplementedError(f"{type(self).__name__} has no server-side copy")

    def can_rename_to(self, other: Backend) -> bool:
        """True if :meth:`rename_to` can move an object without copying its bytes."""
        return False

    def rename_to(self, key: str, other: Backend, dest_key: str) -> bool:
        raise NotImplementedError(f"{type(self).__name__} has no rename")

    def touch(self, keys: list[str]) -> None:
        """Create empty objects for missing keys. Object stores leave existing objects alone."""
        found = self.exists_many(keys)
        for key in keys:
            if not found[key]:
                self.put(key, b"", PutMeta())

    def describe(self) -> str:
        """A human-readable location of the root, used in error messages."""
        return f"{self.root.protocol}://{self.root.bucket or ''}/{self.root.path}"

    def url(self, key: str) -> str:
        """A human-readable location of ``key``, used in error messages."""
        return self.describe().rstrip("/") + "/" + key

    def isdir(self, prefix: str) -> bool:
        """True if any key lives under ``prefix/`` (object stores have no empty directories)."""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return next(iter(self.list(prefix, flat=True)), None) is not None


# Protocol -> "module:Class". Modules are imported on first use, so importing the package never
# pays for boto3 or google-auth.
REGISTRY: dict[str, str] = {
    "file": "cloudfiles_dask.backends.local:LocalBackend",
    "mem": "cloudfiles_dask.backends.memory:MemoryBackend",
    "s3": "cloudfiles_dask.backends.s3:S3Backend",
    "gs": "cloudfiles_dask.backends.gcs:GCSBackend",
    "http": "cloudfiles_dask.backends.http:HTTPBackend",
    "https": "cloudfiles_dask.backends.http:HTTPBackend",
    "middleauth+https": "cloudfiles_dask.backends.http:CAVEBackend",
}

_loaded: dict[str, type[Backend]] = {}


def backend_class(protocol: str) -> type[Backend]:
    """The backend class for ``protocol``, importing its module on first use."""
    cls = _loaded.get(protocol)
    if cls is not None:
        return cls
    target = REGISTRY.get(protocol)
    if target is None:
        raise UnsupportedProtocolError(
            f"No storage backend is available for protocol {protocol!r}. "
            f"Available: {', '.join(sorted(REGISTRY))}."
        )
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    _loaded[protocol] = cls
    return cls


def preload_crc32c() -> None:
    """Import the crc32c package now: its first import costs ~50 ms (``importlib.metadata``),
    which a cloud backend pays when it is made rather than inside its first bulk call."""
    import crc32c  # noqa: F401


def crc32c_b64(data: Any) -> str:
    """The base64 big-endian crc32c of any bytes-like ``data``: C code (~10 GB/s here with the
    CPU's crc32 instruction, against md5's ~0.6 GB/s), the GIL released for large buffers."""
    import crc32c

    return base64.b64encode(crc32c.crc32c(data).to_bytes(4, "big")).decode("ascii")


def crc32c_hasher() -> Any:
    """A hashlib-like crc32c (``update``, ``digest`` big-endian); see :func:`crc32c_b64`."""
    import crc32c

    return crc32c.CRC32CHash()


#: Parts hashed side by side by :data:`MD5_KERNEL` (:func:`part_md5s`, and files' parts in s3.py).
MD5_LANES = 16
#: Fewest parts worth the kernel: a few lanes alone are slower than hashlib without AVX-512.
MD5_LANES_FEWEST = 4


def _md5_kernel() -> Any:
    """The optional C module that hashes :data:`MD5_LANES` parts at once, or None where it was
    not built (no C compiler at install time, or a compiler without vector types)."""
    try:
        from .. import _md5lanes
    except ImportError:
        return None
    return _md5lanes


MD5_KERNEL = _md5_kernel()


def part_md5s(data: Any, part_size: int) -> list[bytes]:
    """The md5 digests of bytes-like ``data`` cut into consecutive parts of ``part_size`` bytes
    (the last may be shorter; none for empty data). With :data:`MD5_KERNEL`, if there are at
    least :data:`MD5_LANES_FEWEST` whole parts, they are hashed sixteen at a time: 7.8 GB/s here
    with AVX-512, 5.0 with AVX2, 3.5 with SSE2, against hashlib's 0.67 (one md5 cannot be
    split). Otherwise, and for a short last part, one by one with hashlib."""
    view = memoryview(data).cast("B")
    whole = len(view) - len(view) % part_size if MD5_KERNEL is not None else 0
    if whole < MD5_LANES_FEWEST * part_size:
        whole = 0
    digests = MD5_KERNEL.md5_parts(view[:whole], part_size) if whole else []
    digests += [hashlib.md5(view[start:start + part_size], usedforsecurity=False).digest()
                for start in range(whole, len(view), part_size)]
    return digests


def new_digest(crc: bool) -> Any:
    """A hasher for the bytes of a read as they arrive: crc32c, or md5 (for md5 and ETag checks)."""
    return crc32c_hasher() if crc else hashlib.md5(usedforsecurity=False)


def digest_text(digest: Any) -> str:
    """A :func:`new_digest` result as Blob fields hold it: md5 in hex, crc32c in base64."""
    if getattr(digest, "name", None) == "md5":
        return digest.hexdigest()
    return base64.b64encode(digest.digest()).decode("ascii")


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of at most ``size`` items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class SkipWriter:
    """Writes everything but the first ``skip`` bytes to ``fileobj``: for a resumed stream whose
    server ignored the Range header and sent the object from its start."""

    __slots__ = ("fileobj", "skip")

    def __init__(self, fileobj: BinaryIO, skip: int = 0):
        self.fileobj = fileobj
        self.skip = skip

    def write(self, chunk: bytes) -> None:
        if self.skip:
            if len(chunk) <= self.skip:
                self.skip -= len(chunk)
                return
            chunk = memoryview(chunk)[self.skip :]
            self.skip = 0
        self.fileobj.write(chunk)


# -- encoding as a name suffix (file:// and mem://) ---------------------------------------------
# A key K stored with encoding E is kept under the name K + suffix(E). Reads probe K first, then
# K.gz, K.br, K.zstd, K.xz, K.bz2, in that fixed order, so the answer never depends on history.
# Writes remove the other forms of K, so through this library a key has exactly one stored form.

_SUFFIXES: tuple[tuple[str, str | None], ...] = tuple(
    (sfx, SUFFIX_ENCODINGS.get(sfx)) for sfx in SUFFIX_ORDER
)


def stored_variants(key: str) -> tuple[tuple[str, str | None], ...]:
    """``(stored name, encoding)`` candidates for ``key`` in probing order."""
    return tuple((key + sfx, enc) for sfx, enc in _SUFFIXES)


def stored_name(key: str, encoding: str | None) -> str:
    """The name ``key`` is stored under with ``encoding`` (always suffixed, even if ``key``
    already ends with that suffix: ``x.gz`` gzipped is ``x.gz.gz`` and reads back decoded)."""
    return key + (ENCODING_SUFFIXES[encoding] if encoding else "")


def split_stored_name(name: str) -> tuple[str, str | None]:
    """``(key, encoding)`` for a stored name: one known suffix is stripped."""
    for sfx, enc in _SUFFIXES[1:]:
        if name.endswith(sfx):
            return name[: -len(sfx)], enc
    return name, None
