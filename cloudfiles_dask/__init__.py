"""cloudfiles-dask: fast, threaded, compressed, integrity-checked bulk access to object storage
and local disk, from a script, a notebook or a Dask cluster.

    >>> from cloudfiles_dask import CloudFiles
    >>> cf = CloudFiles("mem://bucket/dataset")
    >>> cf.puts([("a", b"1"), ("b", b"2")], compress="gzip")
    2
    >>> cf.get("a")
    b'1'
"""

from .cloudfile import CloudFile, dl
from .cloudfiles import CloudFiles
from .exceptions import (
    AuthorizationError,
    CloudFilesError,
    CompressionError,
    CRC32CIntegrityError,
    DecompressionError,
    IntegrityError,
    LedgerError,
    MD5IntegrityError,
    PathEscapeError,
    ProcessBoundaryError,
    ReadOnlyBackendError,
    StorageError,
    UnsupportedCompressionType,
    UnsupportedProtocolError,
)

__version__ = "0.1.0"


def __getattr__(name: str):
    # ResumableTransfer pulls in sqlite3: imported on first use, not with the package.
    if name in ("ResumableTransfer", "ResumableFileSet"):
        from . import resumable

        return getattr(resumable, name)
    raise AttributeError(f"module 'cloudfiles_dask' has no attribute {name!r}")


def clear_memory(bucket: str | None = None) -> None:
    """Forget every mem:// object of this process (or those of one bucket)."""
    from .backends.memory import clear_memory as clear

    clear(bucket)


def reset_connection_pools() -> None:
    """Forget the pooled clients and sessions of this process (and, as in the original, all
    mem:// data). Backends not yet imported have nothing to forget and are not imported."""
    import sys

    clear_memory()
    for module, reset in (("s3", "clear_clients"), ("gcs", "reset_connections"), ("http", "reset_sessions")):
        loaded = sys.modules.get(f"cloudfiles_dask.backends.{module}")
        if loaded is not None:
            getattr(loaded, reset)()


__all__ = [
    "AuthorizationError",
    "CRC32CIntegrityError",
    "CloudFile",
    "CloudFiles",
    "CloudFilesError",
    "CompressionError",
    "DecompressionError",
    "IntegrityError",
    "LedgerError",
    "MD5IntegrityError",
    "PathEscapeError",
    "ProcessBoundaryError",
    "ReadOnlyBackendError",
    "ResumableFileSet",
    "ResumableTransfer",
    "StorageError",
    "UnsupportedCompressionType",
    "UnsupportedProtocolError",
    "__version__",
    "clear_memory",
    "dl",
    "reset_connection_pools",
]
