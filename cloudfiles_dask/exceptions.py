"""The exception tree of cloudfiles-dask.

Every error this library raises on its own account derives from :class:`CloudFilesError`.
Where a standard exception already says the right thing (``ValueError`` for a bad argument,
``FileNotFoundError`` for a missing transfer source, ``NotImplementedError`` for an operation a
backend cannot do) the library's exception also derives from it, so ``except ValueError`` keeps
working for code written against the original CloudFiles.

    CloudFilesError
    ├── UnsupportedProtocolError (ValueError)      a cloudpath that does not parse
    ├── PathEscapeError (ValueError)               a key that would leave the CloudFiles root
    ├── CompressionError (ValueError)              compressing failed / unknown codec
    │   └── UnsupportedCompressionType
    ├── DecompressionError (ValueError)            corrupt or empty compressed data
    ├── IntegrityError                             downloaded bytes do not match the server hash
    │   ├── MD5IntegrityError
    │   └── CRC32CIntegrityError
    ├── AuthorizationError (PermissionError)       the service refused the credentials
    ├── StorageError                               a storage service request failed; its
    │                                              ``transient`` says if repeating it may succeed
    ├── ReadOnlyBackendError (NotImplementedError) put/delete on a read-only backend
    ├── ProcessBoundaryError (ValueError)          mem:// sent to another process
    └── LedgerError (RuntimeError)                 a resumable-transfer ledger is unusable
"""

from __future__ import annotations


class CloudFilesError(Exception):
    """Base class of every error raised by cloudfiles-dask itself."""


class UnsupportedProtocolError(CloudFilesError, ValueError):
    """A cloudpath could not be parsed (unknown protocol, missing bucket, empty path...)."""


class PathEscapeError(CloudFilesError, ValueError):
    """A key would resolve outside the root of its CloudFiles (``../`` or an absolute key)."""


class CompressionError(CloudFilesError, ValueError):
    """Compressing failed, or a codec name is not known."""


class UnsupportedCompressionType(CompressionError):
    """A codec name is not one of the supported compression types."""


class DecompressionError(CloudFilesError, ValueError):
    """Stored data could not be decompressed with its recorded encoding."""


class IntegrityError(CloudFilesError):
    """The bytes received do not match the checksum the service reported."""


class MD5IntegrityError(IntegrityError):
    """An md5 (or S3 ETag) mismatch."""


class CRC32CIntegrityError(IntegrityError):
    """A crc32c mismatch."""


class AuthorizationError(CloudFilesError, PermissionError):
    """The service refused the request because of missing or wrong credentials."""


class StorageError(CloudFilesError):
    """A request to a storage service failed. ``transient`` is True for errors worth repeating
    (connection resets, timeouts, 429, 5xx); the engine's retries rely on it. The underlying
    library's exception is the ``__cause__``."""

    transient: bool = False


class ReadOnlyBackendError(CloudFilesError, NotImplementedError):
    """The backend cannot write or delete (for example plain HTTP)."""


class ProcessBoundaryError(CloudFilesError, ValueError):
    """Data that lives in one process (``mem://``) was asked to cross into another."""


class LedgerError(CloudFilesError, RuntimeError):
    """A ResumableTransfer ledger is missing, is not a ledger, holds a different job, or is in a
    state that forbids the operation (such as deleting it while files are unfinished)."""


__all__ = [
    "AuthorizationError",
    "CRC32CIntegrityError",
    "CloudFilesError",
    "CompressionError",
    "DecompressionError",
    "IntegrityError",
    "LedgerError",
    "MD5IntegrityError",
    "PathEscapeError",
    "ProcessBoundaryError",
    "ReadOnlyBackendError",
    "StorageError",
    "UnsupportedCompressionType",
    "UnsupportedProtocolError",
]
