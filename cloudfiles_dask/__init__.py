"""cloudfiles-dask: fast, threaded, compressed, integrity-checked bulk access to object storage
and local disk, from a script, a notebook or a Dask cluster.

    >>> from cloudfiles_dask import CloudFiles
    >>> cf = CloudFiles("mem://bucket/dataset")
    >>> cf.puts([("a", b"1"), ("b", b"2")], compress="gzip")
    2
    >>> cf.get("a")
    b'1'
"""

from ._engine import config as _config
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
from .resumable import ResumableFileSet, ResumableTransfer

__version__ = "0.1.0"


def clear_memory(bucket: str | None = None) -> None:
    """Forget every mem:// object of this process (or those of one bucket)."""
    _config.clear_memory(bucket)


def reset_connection_pools() -> None:
    """Forget the pooled clients, connections and sessions of this process (and, as in the
    original, all mem:// data). Backends not yet imported have nothing to forget and are not
    imported."""
    _config.reset_process_state()


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
