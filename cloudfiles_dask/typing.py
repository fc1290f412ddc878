"""Type aliases of the public API, under the names code written for ``cloudfiles.typing`` uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")
#: One item, or any iterable of them (``str`` and ``dict`` count as one item).
ScalarOrIterable = T | Iterable[T]
#: What ``compress=`` takes: a codec name, True (gzip), or False/None/"" (none).
CompressType = str | bool | None
#: A key, or a ``{"path", "start", "end", "tags"}`` read request; one or many.
GetPathType = ScalarOrIterable[str | dict[str, Any]]
#: One file to write: ``(path, content)`` or a dict with ``path`` and ``content``.
PutScalarType = tuple[str, BinaryIO | bytes] | dict[str, Any]
PutType = ScalarOrIterable[PutScalarType]
ParallelType = int | bool
SecretsType = str | dict[str, Any] | None
