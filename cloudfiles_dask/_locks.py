"""Inter-process reader/writer locks for file:// (fasteners), kept outside the data tree.

A lock file is ``<lock_dir>/<basename(key path)>.<crc32 of the absolute key path>``. The key path is
the *bare* key (no compression suffix), so a gzip write and a plain read of the same key exclude
each other. Reads take the shared side, writes and deletes the exclusive side.

fcntl locks belong to a process, not a thread, so inside a process the same path is also guarded
by one of a fixed set of thread locks (striped by the path's hash). Together they exclude every
other reader/writer of that key in other processes and other threads. Writes are atomic renames in
any case, so even without locking a reader never sees a partial file; what locking adds is that a
reader never sees a key as missing while a writer switches its encoding (``x`` -> ``x.gz``), and
that multi-step updates by other programs sharing the lock dir are serialised. A thread never
holds two of these locks at once (copies stage the bytes first), so they cannot deadlock.
"""

from __future__ import annotations

import contextlib
import os
import threading
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


_STRIPES = tuple(threading.Lock() for _ in range(256))


@contextlib.contextmanager
def locked(lock_dir: str | None, path: str, exclusive: bool) -> Iterator[None]:
    """Hold the shared (read) or exclusive (write) lock for ``path``; no-op if lock_dir is None."""
    if lock_dir is None:
        yield
        return
    import fasteners

    lock_file = lock_file_for(lock_dir, path)
    lock = fasteners.InterProcessReaderWriterLock(lock_file)
    with _STRIPES[zlib.crc32(lock_file.encode()) & 255]:
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
