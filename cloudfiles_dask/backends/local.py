"""file:// — the local filesystem.

- A key's encoding is a name suffix (``.gz .br .zstd .xz .bz2``); see ``base.stored_variants``.
- Writes are atomic: the bytes go to a hidden temporary file in the destination directory
  (``.cfdask-tmp-*``) which is then renamed over the final name, so a crash never leaves a
  truncated file under the real name. Temporary files never show in listings.
- Resumable downloads (``receive(..., resumable=True)``) append to a deterministic hidden
  partial file next to the destination, ``.<name>.cfdask-partial``, kept when a download is
  interrupted so that a retry or a later run continues from its size. Partial files never show
  in listings either (so a key named like one would be hidden too).
- Keys may not leave the root: absolute keys and ``..`` that climb out raise PathEscapeError.
- Optional inter-process reader/writer locks (``locking=True``), see ``_locks``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, BinaryIO

from .._locks import ensure_lock_dir, locked, resolve_lock_dir
from ..exceptions import PathEscapeError
from .base import (
    Backend,
    BackendOptions,
    Blob,
    PutMeta,
    split_stored_name,
    stored_name,
    stored_variants,
)

TMP_PREFIX = ".cfdask-tmp-"
PARTIAL_SUFFIX = ".cfdask-partial"
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class LocalBackend(Backend):
    exists_batch_size = 1000
    delete_batch_size = 1000
    local_files = True
    read_threads = 0  # a local read is one syscall or two: threads cost more than they give

    def __init__(self, root, options: BackendOptions):
        super().__init__(root, options)
        self.base = os.path.abspath(root.path)
        self._base_sep = self.base.rstrip(os.sep) + os.sep
        self.lock_dir = (
            ensure_lock_dir(resolve_lock_dir(options.lock_dir)) if options.locking else None
        )

    def describe(self) -> str:
        return "file://" + self.base

    # -- key -> path ---------------------------------------------------------------------------
    def path_of(self, key: str) -> str:
        """The absolute path of ``key`` without any encoding suffix."""
        if key.startswith(("/", "\\")) or os.path.isabs(key):
            raise PathEscapeError(
                f"Key {key!r} is absolute; keys must be relative to {self.describe()}"
            )
        full = os.path.join(self.base, key)
        if ".." in key:
            full = os.path.normpath(full)
            if full != self.base and not full.startswith(self._base_sep):
                raise PathEscapeError(f"Key {key!r} resolves outside {self.describe()}")
        return full

    def _find(self, base_path: str) -> tuple[str, str | None, os.stat_result] | None:
        for name, enc in stored_variants(base_path):
            try:
                st = os.stat(name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISREG(st.st_mode):
                return name, enc, st
        return None

    # -- contract --------------------------------------------------------------------------------
    def get(self, key: str, start: int | None = None, end: int | None = None) -> Blob | None:
        base_path = self.path_of(key)
        with locked(self.lock_dir, base_path, exclusive=False):
            for name, enc in stored_variants(base_path):
                try:
                    f = open(name, "rb")  # noqa: SIM115
                except _MISSING:
                    continue
                with f:
                    if start is None and end is None:
                        return Blob(f.read(), enc)
                    return Blob(_read_range(f, start, end), enc)
        return None

    def put(self, key: str, data: bytes | BinaryIO | Any, meta: PutMeta) -> None:
        base_path = self.path_of(key)
        final = stored_name(base_path, meta.encoding)
        with locked(self.lock_dir, base_path, exclusive=True):
            atomic_write(final, data)
            _remove_other_variants(base_path, final)

    def head(self, key: str) -> dict | None:
        base_path = self.path_of(key)
        with locked(self.lock_dir, base_path, exclusive=False):
            found = self._find(base_path)
        if found is None:
            return None
        _, enc, st = found
        return {
            "Cache-Control": None,
            "Content-Length": st.st_size,
            "Content-Type": None,
            "ETag": None,
            "Last-Modified": datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
            "Content-Md5": None,
            "Content-Encoding": enc,
            "Content-Disposition": None,
            "Content-Language": None,
            "Storage-Class": None,
            "Request-Charged": None,
            "Parts-Count": None,
        }

    def size(self, key: str) -> int | None:
        base_path = self.path_of(key)
        with locked(self.lock_dir, base_path, exclusive=False):
            found = self._find(base_path)
        return None if found is None else found[2].st_size

    def exists_many(self, keys: list[str]) -> dict[str, bool]:
        out = {}
        for key in keys:
            base_path = self.path_of(key)
            with locked(self.lock_dir, base_path, exclusive=False):
                out[key] = self._find(base_path) is not None
        return out

    def delete_many(self, keys: list[str]) -> None:
        for key in keys:
            base_path = self.path_of(key)
            with locked(self.lock_dir, base_path, exclusive=True):
                _remove_other_variants(base_path, None)

    def list(self, prefix: str = "", flat: bool = False, size: bool = False) -> Iterator[tuple[str, int | None]]:
        rel_dir, _, fragment = prefix.rpartition("/")
        if rel_dir:
            self.path_of(rel_dir)  # refuses escapes
        return self._walk(rel_dir + "/" if rel_dir else "", fragment, flat, size)

    def _walk(self, rel: str, fragment: str, flat: bool, want_size: bool) -> Iterator[tuple[str, int | None]]:
        try:
            scanner = os.scandir(os.path.join(self.base, rel) if rel else self.base)
        except (FileNotFoundError, NotADirectoryError):
            return
        entries: list[tuple[str, bool, os.DirEntry]] = []
        with scanner:
            for entry in scanner:
                name = entry.name
                if name.startswith(TMP_PREFIX) or (name.startswith(".") and name.endswith(PARTIAL_SUFFIX)):
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    continue
                if is_dir:
                    if name.startswith(fragment):
                        entries.append((name + "/", True, entry))
                else:
                    key = split_stored_name(name)[0]
                    if key.startswith(fragment):
                        entries.append((key, False, entry))
        entries.sort(key=lambda item: item[0])  # dirs sort as "name/": global key order
        last = None
        for sort_key, is_dir, entry in entries:
            if is_dir:
                if flat:
                    yield rel + sort_key, None
                else:
                    yield from self._walk(rel + sort_key, "", flat, want_size)
                continue
            if sort_key == last:  # x and x.gz both on disk: list the key once
                continue
            last = sort_key
            nbytes = None
            if want_size:
                try:
                    nbytes = entry.stat().st_size
                except FileNotFoundError:
                    continue
            yield rel + sort_key, nbytes

    def isdir(self, prefix: str) -> bool:
        return os.path.isdir(self.path_of(prefix.rstrip("/")) if prefix.strip("/") else self.base)

    # -- capabilities ------------------------------------------------------------------------------
    def can_copy_to(self, other: Backend) -> bool:
        return isinstance(other, LocalBackend)

    def copy_to(self, key: str, other: Backend, dest_key: str) -> int | None:
        """Kernel copy (copy_file_range/sendfile through shutil). The bytes are staged next to the
        destination under the source's read lock, then renamed into place under the destination's
        write lock: the two locks are never held together, so opposite copies cannot deadlock."""
        assert isinstance(other, LocalBackend)
        src_base = self.path_of(key)
        dest_base = other.path_of(dest_key)
        with locked(self.lock_dir, src_base, exclusive=False):
            found = self._find(src_base)
            if found is None:
                return None
            src_name, enc, st = found
            if src_base == dest_base:
                return st.st_size
            staged = _stage_copy(src_name, dest_base)
        other._install(staged, dest_base, enc)
        return st.st_size

    def can_rename_to(self, other: Backend) -> bool:
        return isinstance(other, LocalBackend)

    def rename_to(self, key: str, other: Backend, dest_key: str) -> bool:
        assert isinstance(other, LocalBackend)
        src_base = self.path_of(key)
        dest_base = other.path_of(dest_key)
        with locked(self.lock_dir, src_base, exclusive=True):
            found = self._find(src_base)
            if found is None:
                return False
            src_name, enc, _ = found
            if src_base == dest_base:
                return True
            staged = _tmp_name(dest_base)
            try:
                try:
                    os.replace(src_name, staged)
                except FileNotFoundError:
                    os.makedirs(os.path.dirname(staged), exist_ok=True)
                    os.replace(src_name, staged)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                staged = _stage_copy(src_name, dest_base)
                os.unlink(src_name)
        other._install(staged, dest_base, enc)
        return True

    def receive(
        self,
        key: str,
        produce: Callable[[BinaryIO, int], Blob | None],
        verify: Callable[[str, Blob], None] | None = None,
        resumable: bool = False,
    ) -> Blob | None:
        """Stream an object into place: ``produce(file, offset)`` writes the stored bytes from
        ``offset`` on and returns their Blob (content None) or None if the source is missing;
        ``verify(path, blob)`` may check the whole file before the atomic rename to ``key`` plus
        the encoding suffix.

        Without ``resumable`` the bytes go to a fresh temporary file (offset 0), removed on any
        failure. With ``resumable`` they are appended to :meth:`partial_path` (offset = its size),
        under an exclusive lock (POSIX ``flock``) so that two writers never interleave. A failure
        in ``produce`` keeps the partial file for the next attempt; a failure in ``verify`` or a
        missing source removes it (its bytes are not to be trusted, or not wanted)."""
        base_path = self.path_of(key)
        if resumable:
            return self._receive_resumable(base_path, produce, verify)
        fd, tmp = _open_tmp(base_path)
        try:
            with open(fd, "wb") as out:
                blob = produce(out, 0)
            if blob is not None and verify is not None:
                verify(tmp, blob)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if blob is None:
            os.unlink(tmp)
            return None
        self._install(tmp, base_path, blob.encoding)
        return blob

    def partial_path(self, key: str) -> str:
        """Where a resumable download of ``key`` collects its bytes: ``.<name>.cfdask-partial``
        in the destination directory (never listed)."""
        return _partial_name(self.path_of(key))

    def _receive_resumable(
        self,
        base_path: str,
        produce: Callable[[BinaryIO, int], Blob | None],
        verify: Callable[[str, Blob], None] | None,
    ) -> Blob | None:
        partial = _partial_name(base_path)
        out = _open_partial(partial)
        try:
            blob = produce(out, os.fstat(out.fileno()).st_size)
            out.flush()
            try:
                if blob is not None and verify is not None:
                    verify(partial, blob)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
                raise
            if blob is None:
                os.unlink(partial)
                return None
            # renamed while still open and locked: no other writer can append in between
            self._install(partial, base_path, blob.encoding)
            return blob
        finally:
            out.close()

    def open_stored(self, key: str) -> tuple[BinaryIO, str | None] | None:
        """The stored file of ``key`` opened for reading, and its encoding (None if missing).
        The caller closes it. (Locks are not held while the handle is open.)"""
        base_path = self.path_of(key)
        with locked(self.lock_dir, base_path, exclusive=False):
            for name, enc in stored_variants(base_path):
                try:
                    return open(name, "rb"), enc  # noqa: SIM115
                except _MISSING:
                    continue
        return None

    def _install(self, staged: str, base_path: str, encoding: str | None) -> None:
        """Rename a staged temporary file into place as ``base_path`` stored with ``encoding``."""
        final = stored_name(base_path, encoding)
        try:
            with locked(self.lock_dir, base_path, exclusive=True):
                os.replace(staged, final)
                _remove_other_variants(base_path, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(staged)
            raise

    def touch(self, keys: list[str]) -> None:
        for key in keys:
            base_path = self.path_of(key)
            with locked(self.lock_dir, base_path, exclusive=True):
                found = self._find(base_path)
                if found is None:
                    atomic_write(base_path, b"")
                else:
                    os.utime(found[0])


# -- helpers ------------------------------------------------------------------------------------
def _read_range(f: BinaryIO, start: int | None, end: int | None) -> bytes:
    if (start is not None and start < 0) or (end is not None and end < 0):
        length = os.fstat(f.fileno()).st_size
        start, end, _ = slice(start, end).indices(length)
    start = start or 0
    if end is not None and end <= start:
        return b""
    f.seek(start)
    return f.read() if end is None else f.read(end - start)


def _partial_name(base_path: str) -> str:
    head, tail = os.path.split(base_path)
    return os.path.join(head, "." + tail + PARTIAL_SUFFIX)


def _open_partial(path: str) -> BinaryIO:
    """``path`` opened for appending (made if needed) and exclusively locked where POSIX
    ``flock`` exists. If the file was renamed or removed while this waited for the lock (its
    holder finished), the new file at ``path`` is opened instead."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock
        fcntl = None
    while True:
        try:
            out = open(path, "ab")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            out = open(path, "ab")  # noqa: SIM115
        if fcntl is None:
            return out
        try:
            _lock_exclusive(fcntl, out.fileno())
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
        except BaseException:
            out.close()
            raise
        if current is not None and os.path.samestat(current, os.fstat(out.fileno())):
            return out
        out.close()


def _lock_exclusive(fcntl: Any, fd: int) -> None:
    """``flock(LOCK_EX)``, waited for in short sleeps rather than one blocking call, so that under
    gevent the holder (another greenlet of this thread) gets to run and release it."""
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            time.sleep(0.02)


def _tmp_name(final: str) -> str:
    return os.path.join(os.path.dirname(final), TMP_PREFIX + os.urandom(8).hex())


def _open_tmp(final: str) -> tuple[int, str]:
    tmp = _tmp_name(final)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(tmp, flags, 0o666), tmp
    except FileNotFoundError:
        os.makedirs(os.path.dirname(final), exist_ok=True)
        return os.open(tmp, flags, 0o666), tmp


def atomic_write(final: str, data: Any) -> None:
    """Write bytes, bytearray, memoryview or a binary file handle to ``final`` atomically."""
    fd, tmp = _open_tmp(final)
    try:
        with open(fd, "wb", buffering=0, closefd=True) as out:
            if isinstance(data, (bytes, bytearray, memoryview)):
                view = memoryview(data)
                while view:
                    view = view[out.write(view) :]
            else:
                shutil.copyfileobj(data, out, 1 << 20)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _stage_copy(src: str, near: str) -> str:
    """Kernel-copy ``src`` to a new temporary file in the directory of ``near``; its path."""
    fd, tmp = _open_tmp(near)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _remove_other_variants(base_path: str, keep: str | None) -> None:
    for name, _ in stored_variants(base_path):
        if name != keep:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                os.unlink(name)
