"""The original's storage-interface calls over one of our backends.

Code written for ``cloudfiles`` sometimes reaches below the public API, through the private
``CloudFiles._get_connection()``, to the interface object of the original and calls its methods
(``get_file``, ``put_file``, ``files_exist``, ...), or reads mem:// data from its ``_data``.
:class:`InterfaceAdapter` answers those calls with the engine's verbs, so that code keeps
working; everything goes through the same checks, retries and codecs as the public API.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..backends.base import Backend
from . import ops
from .jobs import PutOptions, PutUnit, ReadUnit


class InterfaceAdapter:
    """What ``CloudFiles._get_connection()`` returned in the original, over ``backend``.
    A context manager, as the original's interfaces were (leaving it releases nothing here)."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def __enter__(self) -> InterfaceAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def release_connection(self) -> None:
        return None

    def get_file(self, key: str, start: int | None = None, end: int | None = None,
                 part_size: int | None = None) -> tuple[Any, str | None, str | None, str | None]:
        """``(stored bytes, encoding, service checksum, its kind)``; ``(None,) * 4`` if missing."""
        blob = ops.fetch(self.backend, ReadUnit(key, start, end), part_size)
        if blob is None:
            return None, None, None, None
        return blob.content, blob.encoding, blob.hash, blob.hash_type

    def put_file(self, key: str, content: Any, content_type: str | None, compress: Any,
                 cache_control: str | None = None, storage_class: str | None = None) -> None:
        """Store ``content``, already encoded as ``compress``, under ``key``."""
        ops.require_writable(self.backend)
        options = PutOptions(content_type=content_type, compress=compress, raw=True,
                             cache_control=cache_control, storage_class=storage_class)
        ops.put_one(self.backend, PutUnit(key, content, options))

    def head(self, key: str) -> dict | None:
        return ops.call(self.backend, self.backend.head, key)

    def size(self, key: str) -> int | None:
        return ops.call(self.backend, self.backend.size, key)

    def exists(self, key: str) -> bool:
        return self.files_exist([key])[key]

    def files_exist(self, keys: Iterable[str]) -> dict[str, bool]:
        return ops.call(self.backend, self.backend.exists_many, list(keys))

    def delete_file(self, key: str) -> None:
        self.delete_files([key])

    def delete_files(self, keys: Iterable[str]) -> None:
        ops.require_writable(self.backend)
        ops.call(self.backend, self.backend.delete_many, list(keys))

    def list_files(self, prefix: str = "", flat: bool = False) -> Iterator[str]:
        return (key for key, _ in ops.list_keys(self.backend, prefix, flat, False))

    def get_file_acl(self, key: str) -> Any:
        return ops.call(self.backend, self.backend.get_acl, key)

    @property
    def _data(self) -> dict[str, Any]:
        """mem:// only: the bucket's stored objects by stored name, as the original's ``_data``."""
        data = getattr(self.backend, "data", None)
        if data is None:
            raise AttributeError(f"{self.backend.describe()} keeps no data in this process")
        return data
