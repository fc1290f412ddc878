"""file:// — the local filesystem.

- A key's encoding is a name suffix (``.gz .br .zstd .xz .bz2``); see ``_suffixes``.
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
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from itertools import chain, repeat
from typing import Any, BinaryIO

from .._locks import ensure_lock_dir, locked, resolve_lock_dir
from .._suffixes import split_stored_name, stored_name, stored_variants
from ..exceptions import PathEscapeError
from .base import Backend, BackendOptions, Blob, PutMeta

TMP_PREFIX = ".cfdask-tmp-"
PARTIAL_SUFFIX = ".cfdask-partial"
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_ONE_READ = 1 << 30  # Linux returns at most ~2 GiB per read(): larger reads go in steps
_NOT_POSIX = os.name != "posix"
_SUFFIXES = stored_variants("")  # ((suffix, encoding), ...) in probing order
_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_SCANDIR_FD = os.scandir in os.supports_fd
_RANK = {enc: rank for rank, (_, enc) in enumerate(_SUFFIXES)}


class LocalBackend(Backend):
    exists_batch_size = 1000
    delete_batch_size = 1000
    local_files = True
    # A local read is a few syscalls: threads cost more than they give. Writes (and deletes)
    # change the directory, which the kernel serialises: more threads only spin on its lock
    # (docs/performance.md).
    read_threads = 0
    write_threads = 0

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
        if key.startswith(("/", "\\")) or (_NOT_POSIX and os.path.isabs(key)):
            raise PathEscapeError(
                f"Key {key!r} is absolute; keys must be relative to {self.describe()}"
            )
        full = self._base_sep + key  # os.path.join for a relative key, without its cost
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
        if self.lock_dir is None:
            return _read_stored(base_path, start, end)
        with locked(self.lock_dir, base_path, exclusive=False):
            return _read_stored(base_path, start, end)

    def put(self, key: str, data: bytes | BinaryIO | Any, meta: PutMeta) -> None:
        base_path = self.path_of(key)
        final = stored_name(base_path, meta.encoding)
        with locked(self.lock_dir, base_path, exclusive=True):
            atomic_write(final, data)
            _remove_other_variants(base_path, final)

    def get_acl(self, key: str) -> int | None:
        """The stored file's mode bits (``os.stat().st_mode``), as the original gives; None if
        missing."""
        base_path = self.path_of(key)
        with locked(self.lock_dir, base_path, exclusive=False):
            found = self._find(base_path)
        return None if found is None else found[2].st_mode

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
        return chain.from_iterable(self._walk(rel_dir + "/" if rel_dir else "", fragment, flat, size))

    def _walk(self, rel: str, fragment: str, flat: bool, want_size: bool) -> Iterator[Iterable[tuple[str, int | None]]]:
        """The listing of directory ``rel`` (recursively unless ``flat``) in key order, as pieces:
        one per run of keys between sub-directories. Each directory is read with one scandir and
        its keys sorted at once; unless names carry encoding suffixes or are hidden, the rest of
        the per-key work is done by C iterators (no Python code runs per key)."""
        path = self._base_sep + rel
        names, dirs = _scan(path)
        if _plain_names(names):
            stored = None  # every name is its key
        else:
            stored = _stored_names(names)
            names = list(stored)
        if fragment:
            names = [key for key in names if key.startswith(fragment)]
            dirs = [name for name in dirs if name.startswith(fragment)]
        dirs = [name + "/" for name in dirs if not _hidden(name)]
        keys = names + dirs if dirs else names  # a directory sorts as "name/": global key order
        keys.sort()

        def piece(part: list[str]) -> Iterable[tuple[str, int | None]]:
            if want_size:
                return _with_sizes(rel, path, part, stored)
            return zip(map(rel.__add__, part), repeat(None)) if rel else zip(part, repeat(None))

        if flat or not dirs:
            yield piece(keys)
            return
        start = 0
        for sub in sorted(dirs):
            at = bisect_left(keys, sub, start)
            if at > start:
                yield piece(keys[start:at])
            yield from self._walk(rel + sub, "", flat, want_size)
            start = at + 1
        if start < len(keys):
            yield piece(keys[start:])

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
def _hidden(name: str) -> bool:
    """Temporary and partial files of this backend: never listed."""
    return name.startswith(TMP_PREFIX) or (name.startswith(".") and name.endswith(PARTIAL_SUFFIX))


def _scan(path: str) -> tuple[list[str], list[str]]:
    """``(names of files, names of sub-directories)`` in directory ``path``, in no order.

    Scanned through a directory descriptor where the platform allows: entries then do not each
    build their full path, a sixth of the cost of a listing."""
    files: list[str] = []
    dirs: list[str] = []
    try:
        fd = os.open(path, _O_DIR) if _SCANDIR_FD else -1
        try:
            with os.scandir(path if fd < 0 else fd) as scanner:
                for entry in scanner:
                    try:
                        (dirs if entry.is_dir() else files).append(entry.name)
                    except OSError:  # removed meanwhile
                        continue
        finally:
            if fd >= 0:
                os.close(fd)
    except (FileNotFoundError, NotADirectoryError):
        pass
    return files, dirs


def _plain_names(names: list[str]) -> bool:
    """True if every name is its own key: no encoding suffix, nothing hidden. Checked on the names
    joined into one string (a few C scans), so a directory of plain names costs nothing more."""
    joined = "\0".join(names)
    if "." not in joined:
        return True
    joined = "\0" + joined + "\0"
    return "\0." not in joined and not any(suffix + "\0" in joined for suffix, _ in _SUFFIXES[1:])


def _stored_names(names: list[str]) -> dict[str, str]:
    """``{key: stored name}`` for the files of one directory: hidden files left out, encoding
    suffixes stripped; where a key has several stored forms, the one a read picks (see
    ``_suffixes``)."""
    found: dict[str, str] = {}
    for name in names:
        if _hidden(name):
            continue
        key, enc = split_stored_name(name)
        other = found.get(key)
        if other is None or _RANK[enc] < _RANK[split_stored_name(other)[1]]:
            found[key] = name
    return found


def _with_sizes(rel: str, path: str, keys: list[str], stored: dict[str, str] | None) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for key in keys:
        if key.endswith("/"):
            out.append((rel + key, None))
            continue
        try:
            nbytes = os.stat(path + (stored[key] if stored else key)).st_size
        except FileNotFoundError:  # removed meanwhile
            continue
        out.append((rel + key, nbytes))
    return out


def _read_stored(base_path: str, start: int | None, end: int | None) -> Blob | None:
    """Read the first stored form of a key: one ``open`` on the bare name when it is there (the
    usual case), one more per encoding suffix tried otherwise."""
    for suffix, enc in _SUFFIXES:
        try:
            fd = os.open(base_path + suffix, _O_READ)
        except _MISSING:
            continue
        try:
            if start is None and end is None:
                # a whole small file: one fstat and one pread, asking one byte more than its
                # size to tell that nothing was appended meanwhile (else _read_fd reads on)
                want = os.fstat(fd).st_size
                data = _pread(fd, want + 1, 0) if want < _ONE_READ else None
                if data is None or len(data) != want:
                    data = _read_fd(fd, 0, None)
            else:
                data = _read_fd_range(fd, start, end)
        except IsADirectoryError:  # os.open opens directories; reading them fails
            continue
        finally:
            os.close(fd)
        return Blob(data, enc)
    return None


if hasattr(os, "pread"):
    _pread = os.pread
else:  # pragma: no cover - Windows

    def _pread(fd: int, length: int, offset: int) -> bytes:
        os.lseek(fd, offset, os.SEEK_SET)
        return os.read(fd, length)


def _read_fd_range(fd: int, start: int | None, end: int | None) -> bytes:
    """``[start:end]`` with Python slice rules (negative offsets count from the end)."""
    if (start is not None and start < 0) or (end is not None and end < 0):
        start, end, _ = slice(start, end).indices(os.fstat(fd).st_size)
    return _read_fd(fd, start or 0, end)


def _read_fd(fd: int, start: int, end: int | None) -> bytes:
    """Bytes ``start`` (>= 0) to ``end`` (exclusive; None: the end of the file) of an open file.

    A whole small file is one ``fstat`` and one ``pread`` (asking one byte more than its size
    tells that nothing was appended meanwhile); anything else reads on to the end."""
    if end is None:
        want = os.fstat(fd).st_size - start
        if 0 <= want < _ONE_READ:
            data = _pread(fd, want + 1, start)
            if len(data) == want:
                return data
        else:
            data = b""
        os.lseek(fd, start + len(data), os.SEEK_SET)
        with open(fd, "rb", buffering=0, closefd=False) as f:
            rest = f.readall()
        return data + rest if data else rest
    parts = []
    while end > start:
        chunk = _pread(fd, min(end - start, _ONE_READ), start)
        if not chunk:
            break
        parts.append(chunk)
        start += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


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
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                _write_all(fd, data)
            else:
                with open(fd, "wb", buffering=0, closefd=False) as out:
                    shutil.copyfileobj(data, out, 1 << 20)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


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
    for suffix, _ in _SUFFIXES:
        name = base_path + suffix
        if name != keep:
            try:
                os.unlink(name)
            except _MISSING:
                pass
