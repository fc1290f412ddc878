"""Progress as events, so any display (tqdm, a Jupyter widget, a Dask dashboard) can show it.

The engine only ever talks to a :class:`Progress`. It emits three kinds of
:class:`ProgressEvent`: ``start`` once (with the total, when known), ``advance`` per finished unit
of work (files and bytes), and ``close`` once. A *sink* is any callable taking an event.

``progress=`` arguments accepted across the public API, turned into sinks by :func:`make_progress`:

- ``False`` / ``None``: nothing (a no-op :class:`Progress`, so the hot path pays one method call);
- ``True``: a tqdm bar (``tqdm.auto``, which is a widget inside Jupyter);
- a ``str``: a tqdm bar with that label;
- a callable: called with every :class:`ProgressEvent`;
- an object with an ``update(n)`` method (an existing tqdm bar): advanced in place and not closed,
  which is how several calls share one bar.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class ProgressEvent:
    kind: Literal["start", "advance", "close"]
    desc: str
    total: int | None = None
    files: int = 0  # files finished by this event ("advance") or in all ("close")
    nbytes: int = 0  # bytes moved by this event ("advance") or in all ("close")


Sink = Callable[[ProgressEvent], Any]


class Progress:
    """Fan progress events out to sinks. Thread-safe; cheap when there are no sinks."""

    __slots__ = ("desc", "total", "files", "nbytes", "_sinks", "_lock", "_closed")

    def __init__(self, sinks: list[Sink] | None = None, desc: str = "", total: int | None = None):
        self.desc = desc
        self.total = total
        self.files = 0
        self.nbytes = 0
        self._sinks = sinks or []
        self._lock = threading.Lock()
        self._closed = False
        self._emit(ProgressEvent("start", desc, total))

    @property
    def active(self) -> bool:
        return bool(self._sinks)

    def _emit(self, event: ProgressEvent) -> None:
        for sink in self._sinks:
            sink(event)

    def advance(self, files: int = 1, nbytes: int = 0) -> None:
        if not self._sinks:
            return
        with self._lock:
            self.files += files
            self.nbytes += nbytes
            self._emit(ProgressEvent("advance", self.desc, self.total, files, nbytes))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._emit(ProgressEvent("close", self.desc, self.total, self.files, self.nbytes))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TqdmSink:
    """Shows events on a tqdm bar; owns (and closes) the bar unless it was handed one."""

    def __init__(self, bar: Any = None, desc: str | None = None):
        self._bar = bar
        self._owned = bar is None
        self._desc = desc

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "start":
            if self._bar is None:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=event.total, desc=self._desc or event.desc or None)
            elif event.total is not None and self._owned:
                self._bar.total = event.total
        elif event.kind == "advance":
            self._bar.update(event.files)
        elif event.kind == "close" and self._owned and self._bar is not None:
            self._bar.close()


def make_progress(progress: Any, total: int | None = None, desc: str = "") -> Progress:
    """Turn a user's ``progress=`` argument into a :class:`Progress`."""
    if progress is None or progress is False:
        return Progress(None, desc, total)
    if progress is True:
        return Progress([TqdmSink(desc=desc)], desc, total)
    if isinstance(progress, str):
        return Progress([TqdmSink(desc=progress)], progress, total)
    if isinstance(progress, Progress):
        # An engine-level caller sharing its Progress: pass events through, never close it.
        return Progress([_Forward(progress)], desc, total)
    if hasattr(progress, "update"):
        return Progress([TqdmSink(bar=progress)], desc, total)
    if callable(progress):
        return Progress([progress], desc, total)
    raise TypeError(
        f"progress must be a bool, a label string, a callable taking ProgressEvent, or an object "
        f"with an update(n) method such as a tqdm bar; got {type(progress).__name__}"
    )


class _Forward:
    """Forwards 'advance' events into a parent Progress (start/close stay local)."""

    def __init__(self, parent: Progress):
        self._parent = parent

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "advance":
            self._parent.advance(event.files, event.nbytes)
