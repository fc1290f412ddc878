"""The backend contract and the lazy protocol registry: nothing else lives here.

A backend speaks one storage protocol and knows nothing of the engine's threads, codecs,
retries of whole calls, integrity checks or progress: those are the engine's, written once.
Keys are always relative to the backend's root and always use ``/`` as the separator.

Required primitives: :meth:`Backend.get`, :meth:`Backend.put`, :meth:`Backend.head`,
:meth:`Backend.size`, :meth:`Backend.exists_many`, :meth:`Backend.delete_many`,
:meth:`Backend.list`. Optional capabilities are *declared* on the class (attributes and
methods with engine-usable defaults), never probed with ``hasattr``.

Retries: the engine retries a whole call (a get, a put, one exists or delete batch) under the
policy of ``_retry`` when :meth:`Backend.retryable` accepts its error. Inside a call, a backend
retries only its own sub-requests (listing pages, the parts of an upload, the ranges of a
read), with ``_retry.call_inner``, which marks the error that survives them so the engine does
not repeat the whole call around it.
"""

from __future__ import annotations

import importlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

from .._threads import ThreadRunner
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
class Debris:
    """Something an interrupted write left behind (see :meth:`Backend.find_debris`).

    ``kind``: ``"temp-file"`` (the hidden temporary file of an atomic local write),
    ``"partial-download"`` (a resumable download's partial file), ``"multipart-upload"`` (an
    unfinished S3 multipart upload) or ``"composite-part"`` (a GCS composite upload's part).
    ``key``: the key, relative to the backend's root, of the object it was becoming (None if it
    cannot be told). ``handle``: what the backend needs to remove it (a path, an upload id, a
    part's key). ``created``: Unix seconds when known. ``owner``: ``"host:pid"`` of the writer
    when known. ``live``: the owner is a process still running on this machine: never removed.
    ``orphaned``: the owner is known to have ended (a process of this machine that no longer
    runs), so removing it cannot hurt a writer whatever its age; ``live`` and ``orphaned`` both
    False means the backend cannot tell (another machine's writer, or no owner recorded)."""

    kind: str
    key: str | None
    handle: str
    size: int | None = None
    created: float | None = None
    owner: str | None = None
    live: bool = False
    orphaned: bool = False


@dataclass(frozen=True, slots=True)
class BackendOptions:
    """Construction arguments a backend may care about; each ignores what is not its concern."""

    secrets: Any = field(default=None, repr=False)  # never in reprs or logs
    request_payer: str | None = None
    locking: bool = False
    lock_dir: str | None = None
    composite_upload_threshold: int = int(1e8)
    no_sign_request: bool = False
    endpoint: str | None = None  # the endpoint= argument (S3 only; see Backend.check_options)
    num_threads: int = 20
    #: The engine's thread runner, on which a backend fans out the parts of one call (multipart
    #: parts, ranges of a large read, composite parts, per-key fallbacks of a batch request).
    runner: ThreadRunner = field(default_factory=ThreadRunner)


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
    #: True for backends whose objects are files on this machine (file://): they implement
    #: :meth:`receive` and :meth:`open_stored`, and the engine streams to and from them.
    local_files: ClassVar[bool] = False
    #: Threads of the engine's runner one call may borrow for the parts of one object (large
    #: reads, multipart or composite uploads), beyond the threads running the call's units. A
    #: Dask worker starts these before its tasks run (see ``_engine.distribute``).
    helper_threads: ClassVar[int] = 0
    #: What ``get`` results say in ``compress`` for an object stored without an encoding
    #: (S3: ``""``, as the original reports the absent Content-Encoding there).
    unencoded_label: ClassVar[str | None] = None
    #: Options only some protocols take (see :meth:`check_options`).
    takes_endpoint: ClassVar[bool] = False
    takes_request_payer: ClassVar[bool] = False
    #: The directory of this backend's inter-process locks, or None when it takes none.
    lock_dir: str | None = None

    def __init__(self, root: ExtractedPath, options: BackendOptions):
        type(self).check_options(root, options)
        self.root = root
        self.options = options

    # -- per class ------------------------------------------------------------------------------
    @classmethod
    def check_options(cls, root: ExtractedPath, options: BackendOptions) -> None:
        """Refuse, with a ValueError naming it, an option this protocol does not take. Called
        when a CloudFiles is made (so mistakes show before any request) and by ``__init__``.
        ``endpoint=`` and ``request_payer`` are refused unless the class takes them; a class
        that does may check their values too."""
        if options.endpoint and not cls.takes_endpoint:
            raise ValueError(f"endpoint= is an S3 option; {root.protocol}:// paths do not take it "
                             f"(got {options.endpoint!r})")
        if options.request_payer is not None and not cls.takes_request_payer:
            raise ValueError(f"request_payer is only meaningful for s3:// and gs://, not "
                             f"{root.protocol}://")

    @classmethod
    def reset_process_state(cls) -> None:
        """Forget what this process keeps for every backend of this class: clients, connection
        pools, sessions (mem://: its data). The next call makes new ones. After a fork each
        backend module forgets its parent's state on its own (``os.register_at_fork``).
        The default keeps nothing, so it has nothing to forget."""
        return None

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

    def receive(self, key: str, produce: Callable[[BinaryIO, int], Blob | None],
                verify: Callable[[str, Blob], None] | None = None, resumable: bool = False,
                ) -> Blob | None:
        """Local files only (:attr:`local_files`): stream an object into place under ``key``.
        ``produce(file, offset)`` writes the stored bytes from ``offset`` on and returns their
        Blob (None: the source is missing); ``verify(path, blob)`` checks the whole file before
        it is renamed into place. ``resumable`` keeps a partial file across failures."""
        raise NotImplementedError(f"{type(self).__name__} does not store local files")

    def open_stored(self, key: str) -> tuple[BinaryIO, str | None] | None:
        """Local files only (:attr:`local_files`): the stored file of ``key`` opened for
        reading and its encoding, or None if missing. The caller closes it."""
        raise NotImplementedError(f"{type(self).__name__} does not store local files")

    def touch(self, keys: list[str]) -> None:
        """Create empty objects for missing keys. Object stores leave existing objects alone."""
        found = self.exists_many(keys)
        for key in keys:
            if not found[key]:
                self.put(key, b"", PutMeta())

    def get_acl(self, key: str) -> Any:
        """The object's access control as the service describes it, or None if it is missing.
        This default: None (mem:// has no ACLs)."""
        return None

    def find_debris(self, prefix: str = "", older_than: float = 0.0,
                    flat: bool = False) -> Iterator[Debris]:
        """What interrupted writes left under ``prefix`` and was created at least
        ``older_than`` seconds ago (debris of unknown age counts as old): temporary files,
        unfinished uploads, upload parts. This default: nothing (a backend whose writes leave
        nothing, such as mem://, or that cannot tell).

        ``flat``: only what lies directly in the directory ``prefix`` ends in (``"a/b/"``: in
        ``a/b``, not below it), so that a caller can look at a few directories of a large tree
        cheaply (the clean-up after a resumed transfer into file://)."""
        return iter(())

    def remove_debris(self, items: list[Debris]) -> int:
        """Remove ``items`` (from :meth:`find_debris` of this backend), skipping any that is
        ``live`` or already gone; returns how many were removed."""
        if items:
            raise NotImplementedError(f"{type(self).__name__} finds no debris to remove")
        return 0

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


def loaded_backend_classes() -> list[type[Backend]]:
    """The registered backend classes whose modules this process has already imported (a
    module not imported yet holds nothing to forget, and is not imported here)."""
    found: list[type[Backend]] = []
    for target in REGISTRY.values():
        module_name, _, class_name = target.partition(":")
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if cls is not None and cls not in found:
            found.append(cls)
    return found
