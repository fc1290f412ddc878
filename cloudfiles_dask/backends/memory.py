"""mem:// — a process-global in-memory object store.

``mem://bucket/prefix`` stores objects in a dict per bucket shared by every CloudFiles of this
process. Like file://, an encoding is a name suffix (``x.gz``), stripped in listings. With
``raw=True`` any Python object can be stored as is (no serialisation cost).

The data lives in this process only: sending a mem:// CloudFiles to another process (``parallel=``,
a Dask worker) is refused with :class:`~cloudfiles_dask.exceptions.ProcessBoundaryError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._suffixes import split_stored_name, stored_name, stored_variants
from .base import Backend, BackendOptions, Blob, PutMeta


@dataclass(slots=True)
class _Entry:
    content: Any
    mtime: float
    content_type: str | None = None
    cache_control: str | None = None
    storage_class: str | None = None


_STORE: dict[str, dict[str, _Entry]] = {}
_LOCK = threading.RLock()


def clear_memory(bucket: str | None = None) -> None:
    """Forget every mem:// object (or those of one bucket); :meth:`MemoryBackend.clear`."""
    with _LOCK:
        for name, objects in _STORE.items():
            if bucket is None or name == bucket:
                objects.clear()


def _bucket(name: str) -> dict[str, _Entry]:
    with _LOCK:
        return _STORE.setdefault(name, {})


class MemoryBackend(Backend):
    exists_batch_size = 1000
    delete_batch_size = 1000
    read_threads = 0
    write_threads = 0
    crosses_processes = False
    stores_objects = True

    @classmethod
    def reset_process_state(cls) -> None:
        """Forget every mem:// object of this process."""
        clear_memory()

    @classmethod
    def clear(cls, bucket: str | None = None) -> None:
        """Forget every mem:// object of this process, or those of ``bucket``."""
        clear_memory(bucket)

    def __init__(self, root, options: BackendOptions):
        super().__init__(root, options)
        path = root.path or ""
        self.base = path if not path or path.endswith("/") else path + "/"
        self._objects = _bucket(root.bucket)

    def describe(self) -> str:
        return f"mem://{self.root.bucket}/{self.base}"

    @property
    def data(self) -> dict[str, Any]:
        """This bucket's stored objects by stored name (key with its encoding suffix)."""
        return self._objects

    def _find(self, key: str) -> tuple[str, str | None, _Entry] | None:
        objects = self._objects
        for name, enc in stored_variants(self.base + key):
            entry = objects.get(name)
            if entry is not None:
                return name, enc, entry
        return None

    def get(self, key: str, start: int | None = None, end: int | None = None) -> Blob | None:
        found = self._find(key)
        if found is None:
            return None
        _, enc, entry = found
        content = entry.content
        if start is not None or end is not None:
            content = content[start:end]
        return Blob(content, enc)

    def put(self, key: str, data: Any, meta: PutMeta) -> None:
        if hasattr(data, "read"):
            data = data.read()
        elif isinstance(data, (bytearray, memoryview)):
            data = bytes(data)  # never alias the caller's mutable buffer
        full = self.base + key
        final = stored_name(full, meta.encoding)
        entry = _Entry(data, time.time(), meta.content_type, meta.cache_control, meta.storage_class)
        with _LOCK:
            self._objects[final] = entry
            for name, _ in stored_variants(full):
                if name != final:
                    self._objects.pop(name, None)

    def head(self, key: str) -> dict | None:
        found = self._find(key)
        if found is None:
            return None
        _, enc, entry = found
        return {
            "Cache-Control": entry.cache_control,
            "Content-Length": len(entry.content) if hasattr(entry.content, "__len__") else None,
            "Content-Type": entry.content_type,
            "ETag": None,
            "Last-Modified": datetime.fromtimestamp(entry.mtime, tz=timezone.utc),
            "Content-Md5": None,
            "Content-Encoding": enc,
            "Content-Disposition": None,
            "Content-Language": None,
            "Storage-Class": entry.storage_class,
            "Request-Charged": None,
            "Parts-Count": None,
        }

    def size(self, key: str) -> int | None:
        found = self._find(key)
        if found is None:
            return None
        content = found[2].content
        return len(content) if hasattr(content, "__len__") else None

    def exists_many(self, keys: list[str]) -> dict[str, bool]:
        return {key: self._find(key) is not None for key in keys}

    def delete_many(self, keys: list[str]) -> None:
        with _LOCK:
            for key in keys:
                for name, _ in stored_variants(self.base + key):
                    self._objects.pop(name, None)

    def list(self, prefix: str = "", flat: bool = False, size: bool = False) -> Iterator[tuple[str, int | None]]:
        full_prefix = self.base + prefix
        cut = len(self.base)
        with _LOCK:
            names = [(n, e) for n, e in self._objects.items() if n.startswith(self.base)]
        found: dict[str, int | None] = {}
        for name, entry in names:
            key, _ = split_stored_name(name[cut:])
            if not (self.base + key).startswith(full_prefix) or key in found:
                continue
            if flat:
                slash = key.find("/", len(prefix))
                if slash != -1:
                    found[key[: slash + 1]] = None
                    continue
            content = entry.content
            found[key] = len(content) if hasattr(content, "__len__") else None
        for key in sorted(found):
            yield key, found[key]

    def can_copy_to(self, other: Backend) -> bool:
        return isinstance(other, MemoryBackend)

    def copy_to(self, key: str, other: Backend, dest_key: str) -> int | None:
        found = self._find(key)
        if found is None:
            return None
        _, enc, entry = found
        meta = PutMeta(entry.content_type, enc, entry.cache_control, entry.storage_class)
        other.put(dest_key, entry.content, meta)
        return len(entry.content) if hasattr(entry.content, "__len__") else 0

    def can_rename_to(self, other: Backend) -> bool:
        return isinstance(other, MemoryBackend)

    def rename_to(self, key: str, other: Backend, dest_key: str) -> bool:
        with _LOCK:
            if self.copy_to(key, other, dest_key) is None:
                return False
            if (other.base + dest_key, other._objects) != (self.base + key, self._objects):
                self.delete_many([key])
        return True

    def touch(self, keys: list[str]) -> None:
        with _LOCK:
            for key in keys:
                found = self._find(key)
                if found is None:
                    self.put(key, b"", PutMeta())
                else:
                    found[2].mtime = time.time()
