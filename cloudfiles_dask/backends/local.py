"""file:// — the local filesystem.

- A key's encoding is a name suffix (``.gz .br .zstd .xz .bz2``); see ``_suffixes``.
- Writes are atomic: the bytes go to a hidden temporary file in the destination directory
  which is then renamed over the final name, so a crash never leaves a truncated file under the
  real name. Temporary files never show in listings. Their names say whose and how old they
  are, ``.cfdask-tmp-<host>-<pid>-<unix ms>-<random hex>`` (see :func:`temp_name_owner`), so
  that what a killed writer left can be told from what a live one is writing
  (:meth:`LocalBackend.find_debris`). A writer that fails removes its own.
- Resumable downloads (``receive(..., resumable=True)``) append to a deterministic hidden
  partial file next to the destination, ``.<name>.cfdask-partial``, kept when a download is
  interrupted so that a retry or a later run continues from its size. Partial files never show
  in listings either (so a key named like one would be hidden too).
- Keys may not leave the root: absolute keys and ``..`` that climb out raise PathEscapeError.
- Optional inter-process reader/writer locks (``locking=True``), see ``_locks``.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import stat
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from itertools import chain, repeat
from typing import Any, BinaryIO, NamedTuple

from .._locks import ensure_lock_dir, locked, resolve_lock_dir
from .._owners import Owners, this_host
from .._suffixes import split_stored_name, stored_name, stored_variants
from ..exceptions import PathEscapeError
from .base import Backend, BackendOptions, Blob, Debris, PutMeta

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, partial files are not locked
    fcntl = None  # type: ignore[assignment]

TMP_PREFIX = ".cfdask-tmp-"
PARTIAL_SUFFIX = ".cfdask-partial"
TEMP_FILE = "temp-file"  # Debris kinds of this backend
PARTIAL_DOWNLOAD = "partial-download"
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
            src_name, enc, st = found
            if src_base == dest_base:
                return True
            # The staged name is a second link to the source (a copy across filesystems), never
            # the only name of its bytes: a writer killed at any step, or an install that fails
            # (the destination is a directory, say), leaves the source where it was, and a
            # staged file a sweep may remove freely.
            staged = _link_staged(src_name, dest_base)
        other._install(staged, dest_base, enc)
        with locked(self.lock_dir, src_base, exclusive=True):
            with contextlib.suppress(FileNotFoundError):
                # unless someone wrote a new file under the source's name meanwhile
                if os.path.samestat(os.stat(src_name), st):
                    os.unlink(src_name)
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
        tmp = _tmp_name(base_path)
        try:
            with open(_create(tmp), "wb") as out:
                blob = produce(out, 0)
            if blob is not None and verify is not None:
                verify(tmp, blob)
            if blob is None:
                os.unlink(tmp)
                _done(tmp)
                return None
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            _done(tmp)
            raise
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
        finally:
            _done(staged)

    def touch(self, keys: list[str]) -> None:
        for key in keys:
            base_path = self.path_of(key)
            with locked(self.lock_dir, base_path, exclusive=True):
                found = self._find(base_path)
                if found is None:
                    atomic_write(base_path, b"")
                else:
                    os.utime(found[0])

    # -- debris: what killed writers leave -------------------------------------------------------
    def find_debris(self, prefix: str = "", older_than: float = 0.0,
                    flat: bool = False) -> Iterator[Debris]:
        """The temporary files of atomic writes (kind ``"temp-file"``, ``key`` None: the name
        does not say which key it was becoming) and the partial files of resumable downloads
        (``"partial-download"``, ``key`` the key they are for) under ``prefix``, hidden names
        and hidden directories included, symbolic links not followed; ``handle`` is the file's
        absolute path. ``flat``: only in the directory ``prefix`` ends in.

        ``prefix`` is matched as a listing's: against a partial file's key, and against a
        temporary file's own relative path (``"a/"`` holds those in ``a``, ``"a/x"`` none).
        A file is older than ``older_than`` seconds when both its creation (the time in its
        name; its mtime for names without one) and its last write are: a file still being
        written is never old.

        ``live``: a temporary file whose name says this machine and a process that still runs
        and started before the file was made (a pid reused since is not its writer); a partial
        file another open file holds locked (a download appending to it). ``orphaned``: a
        temporary file of this machine whose process has ended. Names without an owner (from
        versions that did not record one) and other machines' are neither: only their age
        speaks for them. Partial files are never ``orphaned``: they are kept on purpose, for
        the next download of their key to continue."""
        rel_dir, _, fragment = prefix.rpartition("/")
        if rel_dir:
            self.path_of(rel_dir)  # refuses escapes
            rel_dir = posixpath.normpath(rel_dir)  # handles (what is removed) are plain paths
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
        return self._debris_in(rel_dir, rel_dir + fragment, older_than, flat, time.time(),
                               Owners())

    def _debris_in(self, rel: str, prefix: str, older_than: float, flat: bool, now: float,
                   owners: Owners) -> Iterator[Debris]:
        """The debris of directory ``rel`` (then of its sub-directories unless ``flat``). Only
        the few hidden names are stat'ed and sorted: a directory of a million files costs one
        scan."""
        files: list[os.DirEntry] = []
        below: list[str] = []
        try:
            with os.scandir(self._base_sep + rel) as scanner:
                for entry in scanner:
                    name = entry.name
                    try:
                        if _hidden(name) and entry.is_file(follow_symlinks=False):
                            files.append(entry)
                        elif not flat and entry.is_dir(follow_symlinks=False) \
                                and (rel + name).startswith(prefix):
                            below.append(name)
                    except OSError:  # removed meanwhile
                        continue
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in sorted(files, key=lambda entry: entry.name):
            kind, key = _debris_kind(rel, entry.name)
            if kind is None or not (key or rel + entry.name).startswith(prefix):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:  # removed meanwhile
                continue
            item = _debris_of(kind, key, entry.path, entry.name, st, owners)
            created = item.created if item.created is not None else st.st_mtime
            if now - created >= older_than and now - st.st_mtime >= older_than:
                yield item
        for name in sorted(below):
            yield from self._debris_in(rel + name + "/", prefix, older_than, flat, now, owners)

    def remove_debris(self, items: list[Debris]) -> int:
        """Remove ``items`` (from :meth:`find_debris`); returns how many were removed. Skipped:
        those ``live``, a temporary file whose writer turns out to run now (asked again here),
        a partial file locked by a download (tried under the lock, so none can start
        appending meanwhile), and files already gone. ValueError for a handle that is not a
        temporary or partial file under this backend's root."""
        owners = Owners()
        removed = 0
        for item in items:
            path = self._debris_path(item)
            if item.live:
                continue
            if item.kind == TEMP_FILE:
                owner = temp_name_owner(os.path.basename(path))
                if owner is not None and _writing_now(os.path.basename(path), owner, owners):
                    continue
                try:
                    os.unlink(path)
                except _MISSING:
                    continue
                removed += 1
            elif _remove_unlocked(path):
                removed += 1
        return removed

    def _debris_path(self, item: Debris) -> str:
        """``item.handle`` if it names debris of this backend (a temporary or partial file of
        the kind ``item`` says, under the root): nothing else is ever removed."""
        path = item.handle
        head, name = os.path.split(path or "")
        kind = _debris_kind("", name)[0] if head else None
        if kind is None or kind != item.kind or os.path.normpath(path) != path \
                or not path.startswith(self._base_sep):
            raise ValueError(f"{path!r} ({item.kind}) is not a temporary or partial file under "
                             f"{self.describe()}; only those are removed here")
        return path


# -- helpers ------------------------------------------------------------------------------------
def _hidden(name: str) -> bool:
    """Temporary and partial files of this backend: never listed."""
    return name.startswith(TMP_PREFIX) or (name.startswith(".") and name.endswith(PARTIAL_SUFFIX))


# -- temporary files: whose, and how old ---------------------------------------------------------
class TempOwner(NamedTuple):
    """What a temporary file's name says of its writer: its host (as :func:`.._owners.host_tag` wrote
    it), its pid, and when it made the file (Unix seconds)."""

    host: str
    pid: int
    created: float


# the host may hold "-": the last three fields are anchored at the end
_TEMP_FIELDS = re.compile(r"(?P<host>[A-Za-z0-9._-]+)-(?P<pid>[0-9]{1,10})-(?P<ms>[0-9]{1,15})"
                          r"-[0-9a-f]{1,32}\Z")


def temp_name_owner(name: str) -> TempOwner | None:
    """The writer a temporary file's name (its last path component) records, or None: not a
    temporary file's name, or one of the old form ``.cfdask-tmp-<random hex>``, which records
    none (its age is all that can be told, from its mtime)."""
    if not name.startswith(TMP_PREFIX):
        return None
    match = _TEMP_FIELDS.match(name, len(TMP_PREFIX))
    if match is None:
        return None
    return TempOwner(match["host"], int(match["pid"]), int(match["ms"]) / 1000.0)


_head_of = {"pid": -1, "head": ""}


def _temp_head() -> str:
    """``.cfdask-tmp-<host>-<pid>-`` for this process (made again in a forked child)."""
    pid = os.getpid()
    if _head_of["pid"] != pid:
        _head_of["head"] = f"{TMP_PREFIX}{this_host()}-{pid}-"
        _head_of["pid"] = pid
    return _head_of["head"]


def _debris_kind(rel: str, name: str) -> tuple[str | None, str | None]:
    """``(kind, key)`` of a file named ``name`` in directory ``rel``: a temporary file (no key)
    or a partial download (the key it is for); ``(None, None)`` for anything else."""
    if name.startswith(TMP_PREFIX):
        return TEMP_FILE, None
    if name.startswith(".") and name.endswith(PARTIAL_SUFFIX) and len(name) > len(PARTIAL_SUFFIX) + 1:
        return PARTIAL_DOWNLOAD, rel + name[1 : -len(PARTIAL_SUFFIX)]
    return None, None


def _debris_of(kind: str, key: str | None, path: str, name: str, st: os.stat_result,
               owners: Owners) -> Debris:
    if kind == PARTIAL_DOWNLOAD:
        return Debris(kind, key, path, st.st_size, st.st_mtime, None, _locked_elsewhere(path))
    owner = temp_name_owner(name)
    if owner is None:
        return Debris(kind, None, path, st.st_size, st.st_mtime)
    mine = owner.host == owners.host
    live = mine and _writing_now(name, owner, owners)
    return Debris(kind, None, path, st.st_size, owner.created, f"{owner.host}:{owner.pid}",
                  live, mine and not live)


def _locked_elsewhere(path: str) -> bool:
    """True if another open file holds ``path`` locked: a resumable download appending to it."""
    if fcntl is None:  # pragma: no cover - Windows
        return False
    try:
        fd = os.open(path, _O_READ)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing releases the lock this took
    return False


def _remove_unlocked(path: str) -> bool:
    """Remove a partial file unless a download holds it locked; True if removed. Removed while
    this holds the lock: a download starting meanwhile waits, then sees the file gone and
    starts a new one (see ``_open_partial``)."""
    try:
        fd = os.open(path, _O_READ)
    except _MISSING:
        return False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
        try:
            if not os.path.samestat(os.stat(path), os.fstat(fd)):
                return False  # replaced meanwhile: a new download's, not the one looked at
            os.unlink(path)
        except _MISSING:
            return False
        return True
    finally:
        os.close(fd)


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


#: The names of the temporary files this process is writing now. Its own files that are not
#: here were left by a write interrupted where no handler ran (a Ctrl-C landing between two
#: statements): debris, although their writer runs. A name is added before its file exists.
_WRITING: set[str] = set()


def _tmp_name(final: str) -> str:
    """A new temporary name next to ``final``: ``.cfdask-tmp-<host>-<pid>-<unix ms>-<random>``
    (48 random bits: two threads of one process naming a file in the same millisecond do not
    meet), noted in :data:`_WRITING` until :func:`_done`."""
    name = f"{_temp_head()}{time.time_ns() // 1_000_000}-{os.urandom(6).hex()}"
    _WRITING.add(name)
    return os.path.join(os.path.dirname(final), name)


def _done(tmp: str) -> None:
    """The temporary file ``tmp`` was renamed into place or removed."""
    _WRITING.discard(os.path.basename(tmp))


def _writing_now(name: str, owner: TempOwner, owners: Owners) -> bool:
    """True if the writer of the temporary file ``name`` runs and still writes it: a process
    of this machine that runs, and for this very process, a file it is writing now."""
    if owner.pid == os.getpid() and owner.host == owners.host:
        return name in _WRITING
    return owners.runs(owner.host, owner.pid, owner.created)


def _create(tmp: str) -> int:
    """Create the temporary file ``tmp`` (named by :func:`_tmp_name`; its directory made if
    missing) for writing. Callers call it inside the ``try`` that removes ``tmp`` on failure,
    so that an interrupt landing as it returns still removes the file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(tmp, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        return os.open(tmp, flags, 0o666)


def atomic_write(final: str, data: Any) -> None:
    """Write bytes, bytearray, memoryview or a binary file handle to ``final`` atomically."""
    tmp = _tmp_name(final)
    try:
        fd = _create(tmp)
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
    finally:
        _done(tmp)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


def _stage_copy(src: str, near: str) -> str:
    """Kernel-copy ``src`` to a new temporary file in the directory of ``near``; its path."""
    tmp = _tmp_name(near)
    try:
        os.close(_create(tmp))
        shutil.copyfile(src, tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _done(tmp)
        raise
    return tmp


def _link_staged(src: str, near: str) -> str:
    """A new temporary name in the directory of ``near`` for the file ``src``: a hard link
    where the filesystem allows, else a copy (another filesystem, or one without links)."""
    staged = _tmp_name(near)
    try:
        try:
            os.link(src, staged)
        except FileNotFoundError:  # the destination directory does not exist yet
            os.makedirs(os.path.dirname(staged), exist_ok=True)
            os.link(src, staged)
    except FileNotFoundError:
        _done(staged)
        raise  # the source is gone
    except OSError:  # another filesystem, or one without hard links: a copy
        _done(staged)
        return _stage_copy(src, near)
    return staged


def _remove_other_variants(base_path: str, keep: str | None) -> None:
    for suffix, _ in _SUFFIXES:
        name = base_path + suffix
        if name != keep:
            try:
                os.unlink(name)
            except _MISSING:
                pass
