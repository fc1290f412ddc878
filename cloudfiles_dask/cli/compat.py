"""The original CloudFiles CLI's Python-callable helpers, with its signatures, on this CLI's logic.

Code (and the original's own tests) import them from ``cloudfiles_cli.cloudfiles_cli``; here
they are ``cloudfiles_dask.cli._rm_many`` and friends. Each runs in this process (with
``parallel=1`` no process is started, so they work under moto's in-process ``mock_aws``), does
what the matching command does, and reports a user error (a directory without ``recursive``, a
missing source...) as the command would, one line on stderr (on stdout with
CLOUDFILES_ERRORS=stdout), then returns None, as the original's print-and-return. Errors of the
library itself (credentials refused, a service failing) are raised.

As in the original, ``_rm_many`` and ``_rm_singles`` ignore paths that do not exist
(``cloudfiles rm -f``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ._common import CLIError
from .commands import remove
from .transfer import copy, move


@contextmanager
def _reported() -> Iterator[None]:
    try:
        yield
    except CLIError as e:
        e.show()


def _processes(parallel: Any) -> int:
    parallel = int(parallel)
    return parallel if parallel > 0 else (os.cpu_count() or 1)


def _compression_choice(compression: Any) -> str:
    """The original's values for ``-c``: 'same'/None keep the encoding, 'none'/False decode."""
    if compression is None:
        return "same"
    if compression is False:
        return "none"
    return str(compression)


def _rm_many(path: str, recursive: bool, progress: bool, parallel: int, block_size: int) -> None:
    """``cloudfiles -p PARALLEL rm -f [-r] PATH``: a file, a directory (with ``recursive``) or a
    wildcard (``dir/*``, ``dir/**``, ``dir/*.jpg``)."""
    with _reported():
        remove((path,), recursive=bool(recursive), progress=bool(progress), block_size=int(block_size),
               parallel=_processes(parallel), force=True)


def _rm_singles(paths: Iterable[str], progress: bool, parallel: int, block_size: int) -> None:
    """``cloudfiles -p PARALLEL rm -f PATHS...`` (files; a directory is refused)."""
    paths = tuple(paths)
    if not paths:
        return
    with _reported():
        remove(paths, recursive=False, progress=bool(progress), block_size=int(block_size),
               parallel=_processes(parallel), force=True)


def _mv_single(source: str, destination: str, progress: bool, block_size: int, part_bytes: int,
               no_sign_request: bool, parallel: int) -> None:
    """``cloudfiles -p PARALLEL mv SOURCE DESTINATION`` (the naming rules of ``cloudfiles mv``)."""
    with _reported():
        move((source,), destination, progress=bool(progress), block_size=int(block_size),
             part_bytes=int(part_bytes), no_sign_request=bool(no_sign_request),
             parallel=_processes(parallel))


def _cp_single(ctx: Any, source: str, destination: str, recursive: bool, compression: Any,
               progress: bool, block_size: int, part_bytes: int, no_sign_request: bool,
               resumable: bool, gantt: bool, io_rate: bool) -> None:
    """``cloudfiles cp SOURCE DESTINATION`` with the given flags (``gantt`` is --flight-time).
    ``ctx`` is a click context whose ``obj["parallel"]`` is the process count (as in the
    original), or None for 1."""
    obj = getattr(ctx, "obj", None) or {}
    with _reported():
        copy((source,), destination, recursive=bool(recursive),
             compression=_compression_choice(compression), progress=bool(progress),
             block_size=int(block_size), part_bytes=int(part_bytes),
             no_sign_request=bool(no_sign_request), resumable=bool(resumable),
             flight_time=bool(gantt), io_rate=bool(io_rate),
             parallel=_processes(obj.get("parallel", 1)))
