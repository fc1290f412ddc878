"""Inter-process reader/writer locks for file:// (fasteners), kept outside the data tree.

A lock file is ``<lock_dir>/<basename(key path)>.<crc32 of the absolute key path>``. The key path is
the *bare* key (no compression suffix), so a gzip write and a plain read of the same key exclude
each other. Reads take the shared side, writes and deletes the exclusive side.

Locks exclude other processes. Inside one process the writes are atomic renames, so a reader never
sees a partial file whatever the threads do.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Iterator

from ._dirs import default_lock_dir


def resolve_lock_dir(lock_dir: str | None) -> str:
    return os.path.abspath(os.path.expanduser(lock_dir)) if lock_dir else default_lock_dir()


def ensure_lock_dir(lock_dir: str) -> str:
    try:
        os.makedirs(lock_dir, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"Cannot create the lock directory {lock_dir!r}: {e}") from e
    if not os.access(lock_dir, os.W_OK):
        raise PermissionError(f"The lock directory {lock_dir!r} is not writable.")
    return lock_dir


def lock_file_for(lock_dir: str, path: str) -> str:
    abspath = os.path.abspath(path)
    return os.path.join(lock_dir, f"{os.path.basename(abspath)}.{zlib.crc32(abspath.encode())}")


@contextlib.contextmanager
def locked(lock_dir: str | None, path: str, exclusive: bool) -> Iterator[None]:
    """Hold the shared (read) or exclusive (write) lock for ``path``; no-op if lock_dir is None."""
    if lock_dir is None:
        yield
        return
    import fasteners

    lock = fasteners.InterProcessReaderWriterLock(lock_file_for(lock_dir, path))
    with lock.write_lock() if exclusive else lock.read_lock():
        yield


def clear_locks(lock_dir: str) -> int:
    """Delete every lock file in ``lock_dir``; returns how many were removed."""
    removed = 0
    try:
        entries = list(os.scandir(lock_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed
