"""Normalising what users pass (strings, dicts, tuples, generators) into work units."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any

from ..lib import totalfn

#: ``total`` if given, else ``len(value)`` when it has one, else None.
known_length = totalfn

_SCALARS = (str, bytes, dict)


def is_many(value: Any) -> bool:
    """CloudFiles' rule: ``str`` and ``dict`` are one item; any other iterable is many."""
    if isinstance(value, _SCALARS):
        return False
    return hasattr(value, "__iter__")


@dataclass(slots=True)
class ReadUnit:
    path: str
    start: int | None = None
    end: int | None = None
    tags: Any = None

    @property
    def ranged(self) -> bool:
        return self.start is not None or self.end is not None


def _check_offset(name: str, value: Any, path: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"{name!r} for {path!r} must be an int or None, got {value!r}")


def read_unit(item: Any) -> ReadUnit:
    """A key as ``str``, or ``{"path", "start", "end", "tags"}`` / ``{"path", "byte_range"}``."""
    if isinstance(item, str):
        return ReadUnit(item)
    if isinstance(item, dict):
        try:
            path = item["path"]
        except KeyError:
            raise ValueError(f"A read request dict needs a 'path' key; got {item!r}") from None
        start, end = item.get("start"), item.get("end")
        if item.get("byte_range") is not None:
            start, end = item["byte_range"]
        return ReadUnit(
            path,
            _check_offset("start", start, path),
            _check_offset("end", end, path),
            item.get("tags"),
        )
    raise TypeError(f"A path must be a str or a dict with a 'path' key; got {type(item).__name__}: {item!r}")


@dataclass(frozen=True, slots=True)
class PutOptions:
    """What ``puts``/``put`` take for every file (a put dict's own fields override them)."""

    content_type: str | None = None
    compress: Any = None
    compression_level: int | None = None
    cache_control: str | None = None
    storage_class: str | None = None
    raw: bool = False


_PUT_FIELDS = tuple(f.name for f in fields(PutOptions))


@dataclass(slots=True)
class PutUnit:
    """One file to write: its key, its content and how to store it."""

    path: str
    content: Any
    options: PutOptions = PutOptions()


@dataclass(frozen=True, slots=True)
class TransferOptions:
    """What a transfer takes besides its paths (see ``CloudFiles.transfer_to``)."""

    block_size: int = 64
    reencode: Any = None
    content_type: str | None = None
    allow_missing: bool = False
    resumable: bool = False


def is_single_put(files: Any) -> bool:
    """A dict, or a ``(path, content)`` pair, is one file; anything else iterable is many."""
    if isinstance(files, dict):
        return True
    return (
        isinstance(files, tuple)
        and len(files) == 2
        and isinstance(files[0], str)
        and not isinstance(files[1], (tuple, list, dict))
    )


def put_units(files: Iterable[Any], defaults: PutOptions) -> Iterator[PutUnit]:
    """Turn ``(path, content)`` tuples and dicts (mixed) into PutUnits; dict fields override."""
    for item in files:
        if isinstance(item, dict):
            try:
                path, content = item["path"], item["content"]
            except KeyError as e:
                raise ValueError(f"A put dict needs 'path' and 'content'; {e} is missing in {item!r}") from None
            options = defaults
            overrides = {k: item[k] for k in _PUT_FIELDS if k in item}
            if overrides:
                options = replace(defaults, **overrides)
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            path, content = item
            options = defaults
        else:
            raise TypeError(
                f"Each file to put must be a (path, content) pair or a dict with 'path' and "
                f"'content'; got {type(item).__name__}: {item!r:.100}"
            )
        if not isinstance(path, str):
            raise TypeError(f"A path must be a str; got {type(path).__name__}: {path!r}")
        yield PutUnit(path, content, options)


def refuse_duplicates(units: Iterable[PutUnit]) -> Iterator[PutUnit]:
    """Pass units through, raising ValueError when a path comes a second time."""
    seen: set[str] = set()
    for unit in units:
        if unit.path in seen:
            raise ValueError(
                f"Cannot write the same file twice in one call: {unit.path!r} appears more than once."
            )
        seen.add(unit.path)
        yield unit


def unique_put_units(files: Iterable[Any], defaults: PutOptions) -> Iterator[PutUnit]:
    """:func:`put_units`, refusing a path that comes a second time (:func:`refuse_duplicates`)."""
    return refuse_duplicates(put_units(files, defaults))


def transfer_pairs(paths: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """``str`` (same name), ``(src, dest)`` pairs and ``{"path", "dest_path"}`` dicts."""
    for item in paths:
        if isinstance(item, str):
            yield item, item
        elif isinstance(item, dict):
            src = item["path"]
            yield src, item.get("dest_path") or src
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            yield item[0], item[1]
        else:
            raise TypeError(
                f"Transfer paths must be str, (src, dest) pairs or {{'path', 'dest_path'}} dicts; "
                f"got {type(item).__name__}: {item!r}"
            )
