"""Progress as events, so any display (a terminal bar, a log line, a Jupyter widget) can show it.

The engine only ever talks to a :class:`Progress`. It emits :class:`ProgressEvent` objects:
``start`` once (with the total, when known), ``advance`` per finished unit of work (files and
bytes, and on a Dask cluster the worker that moved them), ``error`` per file that failed (its
path and cause), ``phase`` when a call moves on (``listing``, then ``transferring`` with the
total the listing found), and ``close`` once (with the error that ended the call, if one did,
and the call's transfer record when it kept one). A *sink* is any callable taking an event.

``progress=`` arguments accepted across the public API, turned into sinks by :func:`make_progress`:

- ``False`` / ``None``: nothing (a no-op :class:`Progress`, so the hot path pays one method call);
- ``True``: the display that suits where the call runs (:func:`display_for`): a widget in a
  Jupyter kernel (the ``jupyter`` face registers it), a tqdm bar with bytes on a terminal, and
  otherwise (CI logs, a batch job) one plain line every few seconds;
- a ``str``: the same, with that label;
- a callable: called with every :class:`ProgressEvent`, on the thread that moved the file;
- an object with an ``update(n)`` method (an existing tqdm bar): advanced in place and not closed,
  which is how several calls share one bar.

The displays made here (:class:`TimedDisplay` and its kinds) never draw on the thread that
moved a file: their sink only adds to counters (:class:`Tally`), and a timer thread draws what
changed, a bounded number of times a second.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

#: ``CLOUDFILES_PROGRESS`` picks the display of ``progress=True`` instead of guessing it.
MODES = ("auto", "widget", "tqdm", "line")
#: Seconds between two lines of :class:`LineDisplay` (a log must not get a line per file).
LINE_INTERVAL = 5.0
#: How many failed files a display names (the count goes on; the names stop).
FIRST_ERRORS = 5


class ProgressEvent(NamedTuple):
    """One event (a tuple: made once per file moved, it must cost little)."""

    kind: Literal["start", "advance", "error", "phase", "close"]
    desc: str
    total: int | None = None
    files: int = 0  # files finished by this event ("advance") or in all ("close")
    nbytes: int = 0  # bytes moved by this event ("advance") or in all ("close")
    path: str | None = None  # "error": the file that failed
    cause: str | None = None  # "error": why; "close": the error that ended the call (None: success)
    phase: str | None = None  # "phase": what the call does now
    worker: str | None = None  # "advance": the Dask worker that moved the files, when known
    record: Any = None  # "close": the call's TransmissionMonitor, when it kept one
    call: int = 0  # which call (a display shared by several calls tells them apart)
    earlier: bool = False  # "advance": files done before this call (a resumed job's), no rate


Sink = Callable[[ProgressEvent], Any]
_call_ids = itertools.count(1)  # each call's own number (an id() is reused once freed)


def describe_error(error: BaseException | str) -> str:
    """One line naming an error: ``KeyError: 'x'``."""
    if isinstance(error, str):
        return error
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text and text[0] else type(error).__name__


class Progress:
    """Fan progress events out to sinks. Thread-safe; cheap when there are no sinks."""

    __slots__ = ("desc", "total", "files", "nbytes", "errors", "record", "_sinks", "_moved",
                 "_lock", "_closed", "_call")

    def __init__(self, sinks: list[Sink] | None = None, desc: str = "", total: int | None = None):
        self.desc = desc
        self.total = total
        self.files = 0
        self.nbytes = 0
        self.errors = 0
        self.record: Any = None  # the call's transfer record, handed to the sinks at close
        self._sinks = sinks or []
        self._lock = threading.Lock()
        self._closed = False
        self._call = next(_call_ids) if self._sinks else 0
        # When every sink only counts (a display: it has ``watch``), an advance is one append
        # to this queue, which they drain when they draw: no lock and no event per file. Then
        # this object's own ``files``/``nbytes`` stay 0: the displays hold the counts.
        self._moved: deque[tuple[int, int, str | None]] | None = None
        if self._sinks and all(hasattr(sink, "watch") for sink in self._sinks):
            self._moved = deque()
            for sink in self._sinks:
                sink.watch(self._call, self._moved)
        self._emit(ProgressEvent("start", desc, total, call=self._call))

    @property
    def active(self) -> bool:
        return bool(self._sinks)

    def _emit(self, event: ProgressEvent) -> None:
        for sink in self._sinks:
            sink(event)

    def advance(self, files: int = 1, nbytes: int = 0, worker: str | None = None) -> None:
        moved = self._moved
        if moved is not None:
            moved.append((files, nbytes, worker))  # atomic: safe from any thread
            return
        if not self._sinks:
            return
        with self._lock:
            self.files += files
            self.nbytes += nbytes
            self._emit(ProgressEvent("advance", self.desc, self.total, files, nbytes,
                                     worker=worker, call=self._call))

    def advance_earlier(self, files: int) -> None:
        """Count ``files`` done before this call began (a resumed job's): they fill the bar
        but are not moved now, so they count in no rate."""
        if not self._sinks or not files:
            return
        with self._lock:
            self.files += files
            self._emit(ProgressEvent("advance", self.desc, self.total, files, call=self._call,
                                     earlier=True))

    def fail(self, path: Any, error: BaseException | str) -> None:
        """File ``path`` failed with ``error`` (the call may go on, or raise it)."""
        if not self._sinks:
            return
        with self._lock:
            self.errors += 1
            self._emit(ProgressEvent("error", self.desc, self.total, path=str(path),
                                     cause=describe_error(error), call=self._call))

    def set_phase(self, phase: str, total: int | None = None) -> None:
        """The call moves on to ``phase``; ``total``, when given, is now known."""
        if not self._sinks:
            return
        with self._lock:
            if total is not None:
                self.total = total
            self._emit(ProgressEvent("phase", self.desc, self.total, phase=phase, call=self._call))

    def close(self, error: BaseException | None = None, record: Any = None) -> None:
        """The call ended: with ``error`` when it raised one, keeping ``record`` when given."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._emit(ProgressEvent("close", self.desc, self.total, self.files, self.nbytes,
                                     cause=None if error is None else describe_error(error),
                                     record=self.record if record is None else record,
                                     call=self._call))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(exc)


def listing(bar: Progress, keys: Any) -> Any:
    """``keys`` (a listing read lazily) as they come, with ``bar`` in phase ``listing`` until
    the listing ends, then in phase ``transferring`` with the number of keys as its total."""
    if not bar.active:
        yield from keys
        return
    bar.set_phase("listing")
    count = 0
    for key in keys:
        count += 1
        yield key
    bar.set_phase("transferring", count)


# -- what displays show ----------------------------------------------------------------------------
def format_bytes(num: float) -> str:
    """Decimal sizes as transfer tools print them: ``512 B``, ``1.5 MB``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(num) < 1000 or unit == "TB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1000
    raise AssertionError("unreachable")


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


@dataclass(frozen=True)
class ProgressState:
    """What a display shows at one moment (a copy: it does not change under the reader)."""

    desc: str
    phase: str | None
    total: int | None
    files: int
    nbytes: int
    errors: int
    earlier: int  # of ``files``, those done before (a resumed job's): in no rate
    first_errors: tuple[tuple[str, str], ...]  # (path, cause) of the first failed files
    workers: dict[str, tuple[int, int]]  # Dask worker -> (files, bytes) it moved
    elapsed: float
    running: bool
    failure: str | None  # the error that ended a call (None: every call ended well)
    records: tuple[Any, ...] = field(default=())  # the transfer records of the calls that ended
    version: int = 0  # the tally's count of changes when this was copied

    @property
    def files_per_s(self) -> float:
        return (self.files - self.earlier) / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.nbytes / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far (None: no total, or no rate yet)."""
        if not self.running or self.total is None or not self.files_per_s:
            return None
        return max(0, self.total - self.files) / self.files_per_s

    @property
    def fraction(self) -> float | None:
        if self.total is None:
            return None
        return 1.0 if self.total == 0 else min(1.0, self.files / self.total)

    @property
    def ok(self) -> bool:
        return self.failure is None and not self.errors

    def counts(self) -> str:
        """``120/400 files``, ``120 files`` when the total is not known."""
        done = f"{self.files:,}" if self.total is None else f"{self.files:,}/{self.total:,}"
        return f"{done} files"

    def rates(self) -> str:
        return f"{self.files_per_s:,.0f} files/s, {format_bytes(self.bytes_per_s)}/s"

    def line(self) -> str:
        """The whole state in one line of text (a log line, a terminal, a saved notebook)."""
        parts = [self.counts(), format_bytes(self.nbytes), self.rates()]
        if self.running and self.eta is not None:
            parts.append(f"ETA {format_seconds(self.eta)}")
        elif not self.running:
            parts.append(f"in {format_seconds(self.elapsed)}")
        if self.errors:
            parts.append(f"{self.errors:,} error{'s' if self.errors != 1 else ''}")
        label = self.desc + (f" ({self.phase})" if self.phase else "")
        text = f"{label}: " if label else ""
        text += ", ".join(parts)
        if self.failure is not None:
            text += f"; failed: {self.failure}"
        return text


class Tally:
    """Adds up the events of one or several calls. Thread-safe; it only counts (the threads
    that move files call it), and :meth:`state` copies it for a display to draw."""

    def __init__(self, desc: str = ""):
        self._lock = threading.Lock()
        self.desc = desc
        self.version = 0  # bumped by every event: a drawer redraws only what changed
        self._totals: dict[int, int | None] = {}  # each call's total (None: not known)
        self._open: set[int] = set()
        self._phase: str | None = None
        self._files = self._nbytes = self._errors = self._earlier = 0
        self._first_errors: list[tuple[str, str]] = []
        self._workers: dict[str, list[int]] = {}
        self._started: float | None = None
        self._elapsed = 0.0  # seconds of the periods with a call open, before the current one
        self._failure: str | None = None
        self._records: list[Any] = []
        self._queues: dict[int, deque[tuple[int, int, str | None]]] = {}

    def watch(self, call: int, moved: deque[tuple[int, int, str | None]]) -> None:
        """Count the advances call ``call`` appends to ``moved`` (see :class:`Progress`)."""
        with self._lock:
            self._queues[call] = moved

    def _count(self, files: int, nbytes: int, worker: str | None) -> None:
        self._files += files
        self._nbytes += nbytes
        if worker is not None:
            moved = self._workers.setdefault(worker, [0, 0])
            moved[0] += files
            moved[1] += nbytes

    def _drain(self) -> None:
        """Count what the watched queues hold (under the lock)."""
        for queue in self._queues.values():
            if queue:
                self.version += 1
            while queue:
                self._count(*queue.popleft())

    def changed_since(self, version: int) -> bool:
        with self._lock:
            return self.version != version or any(self._queues.values())

    def add(self, event: ProgressEvent) -> None:
        with self._lock:
            self.version += 1
            kind = event.kind
            if kind == "advance":
                if event.earlier:  # files done before the call: in the counts, in no rate
                    self._files += event.files
                    self._earlier += event.files
                else:
                    self._count(event.files, event.nbytes, event.worker)
            elif kind == "error":
                self._errors += 1
                if len(self._first_errors) < FIRST_ERRORS:
                    self._first_errors.append((event.path or "?", event.cause or "?"))
            elif kind == "phase":
                self._phase = event.phase
                if event.total is not None:
                    self._totals[event.call] = event.total
            elif kind == "start":
                if not self._open:
                    self._started = time.monotonic()
                self._open.add(event.call)
                self._totals[event.call] = event.total
                if not self.desc:
                    self.desc = event.desc
            elif kind == "close":
                self._drain()  # the call's last advances came before its close
                self._queues.pop(event.call, None)
                self._open.discard(event.call)
                if event.cause is not None and self._failure is None:
                    self._failure = event.cause
                if event.record is not None:
                    self._records.append(event.record)
                if not self._open and self._started is not None:
                    self._elapsed += time.monotonic() - self._started
                    self._started = None
                    self._phase = None

    @property
    def running(self) -> bool:
        return bool(self._open)

    def state(self) -> ProgressState:
        with self._lock:
            self._drain()
            totals = list(self._totals.values())
            elapsed = self._elapsed + (time.monotonic() - self._started
                                       if self._started is not None else 0.0)
            return ProgressState(
                desc=self.desc, phase=self._phase,
                total=None if any(t is None for t in totals) or not totals else sum(totals),
                files=self._files, nbytes=self._nbytes, errors=self._errors,
                earlier=self._earlier,
                first_errors=tuple(self._first_errors),
                workers={w: (f, b) for w, (f, b) in self._workers.items()},
                elapsed=elapsed, running=bool(self._open), failure=self._failure,
                records=tuple(self._records), version=self.version)


class TimedDisplay:
    """A sink that draws on a timer, never on the thread that moved a file.

    Events only go into its :class:`Tally`. While a call is open, a timer thread calls
    :meth:`draw` every :attr:`interval` seconds when something changed; when the last open
    call closes, the timer stops and :meth:`draw` runs once more with ``final=True``, on the
    closing thread, followed by :meth:`on_end`. Several calls may share one display: it adds
    them up. Subclasses override :meth:`on_start`, :meth:`draw` and :meth:`on_end`; an error
    inside them is kept in :attr:`draw_error`, never raised into the call.
    """

    interval = 0.1

    def __init__(self, desc: str = ""):
        self.tally = Tally(desc)
        self.draw_error: BaseException | None = None
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        self._drawn = -1
        self._guard = threading.Lock()  # one draw at a time (timer or closing thread)
        self._life = threading.Lock()

    def watch(self, call: int, moved: deque[tuple[int, int, str | None]]) -> None:
        """Take call ``call``'s advances from the queue ``moved`` (see :class:`Progress`)."""
        self.tally.watch(call, moved)

    def __call__(self, event: ProgressEvent) -> None:
        kind = event.kind
        if kind != "start" and kind != "close":
            self.tally.add(event)
            return
        with self._life:  # calls sharing the display may open and close it from several threads
            first = kind == "start" and not self.tally.running
            self.tally.add(event)
            if first:
                self._safely(self.on_start, self.tally.state())
                self._stop = threading.Event()
                self._timer = threading.Thread(target=self._tick, args=(self._stop,),
                                               daemon=True, name="cloudfiles-progress")
                self._timer.start()
            elif kind == "close" and not self.tally.running:
                self._stop.set()
                timer, self._timer = self._timer, None
                if timer is not None:
                    timer.join()
                state = self.tally.state()
                self._redraw(state, True)
                self._safely(self.on_end, state)

    def _tick(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            if self.tally.changed_since(self._drawn):
                self._redraw(self.tally.state(), False)

    def _redraw(self, state: ProgressState, final: bool) -> None:
        with self._guard:
            self._drawn = state.version
            self._safely(self.draw, state, final)

    def _safely(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as error:  # noqa: BLE001 - a display must never break the transfer
            self.draw_error = error
            self.on_draw_error(error)

    def state(self) -> ProgressState:
        return self.tally.state()

    def on_start(self, state: ProgressState) -> None:
        """The first call opened (on the calling thread)."""

    def draw(self, state: ProgressState, final: bool) -> None:
        """Show ``state`` (on the timer thread, or the closing thread when ``final``)."""

    def on_end(self, state: ProgressState) -> None:
        """The last open call closed (on the closing thread), after the final draw."""

    def on_draw_error(self, error: BaseException) -> None:
        """Drawing failed with ``error`` (kept in :attr:`draw_error`)."""


class LineDisplay(TimedDisplay):
    """One plain line at most every :data:`LINE_INTERVAL` seconds, and one at the end: for
    logs (CI, batch jobs, papermill), where a bar's redraws would be a line per update."""

    def __init__(self, desc: str = "", stream: Any = None, interval: float | None = None):
        super().__init__(desc)
        self.interval = LINE_INTERVAL if interval is None else interval
        self._stream = stream

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(text + "\n")
        stream.flush()

    def draw(self, state: ProgressState, final: bool) -> None:
        if final:
            return  # on_end writes the last line, with the first errors
        self._write(state.line())

    def on_end(self, state: ProgressState) -> None:
        self._write(state.line())
        for path, cause in state.first_errors:
            self._write(f"  {path}: {cause}")


class TqdmDisplay(TimedDisplay):
    """A tqdm bar on stderr: files, with bytes, the byte rate and errors after it."""

    def __init__(self, desc: str = ""):
        super().__init__(desc)
        self._bar: Any = None

    def on_start(self, state: ProgressState) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=state.total, desc=state.desc or None, unit="file", file=sys.stderr,
                         dynamic_ncols=True, mininterval=0)

    def draw(self, state: ProgressState, final: bool) -> None:
        bar = self._bar
        if bar is None:
            return
        if bar.total != state.total:
            bar.total = state.total
        postfix = f"{format_bytes(state.nbytes)}, {format_bytes(state.bytes_per_s)}/s"
        if state.errors:
            postfix += f", {state.errors} errors"
        if state.phase:
            bar.set_description_str(f"{state.desc} ({state.phase})", refresh=False)
        bar.set_postfix_str(postfix, refresh=False)
        bar.update(state.files - bar.n)
        bar.refresh()

    def on_end(self, state: ProgressState) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        for path, cause in state.first_errors:
            sys.stderr.write(f"  {path}: {cause}\n")


class TqdmSink:
    """Advances a tqdm bar the user handed in (not closed: several calls may share it)."""

    def __init__(self, bar: Any):
        self._bar = bar

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "advance":
            self._bar.update(event.files)


# -- choosing the display of progress=True -----------------------------------------------------------
Chooser = Callable[[str, str], "Sink | None"]
_choosers: list[Chooser] = []


def register_display(chooser: Chooser) -> None:
    """Let a face offer the display of ``progress=True``: ``chooser(desc, mode)`` returns a
    sink, or None to leave it to the next (``mode`` is one of :data:`MODES`). The last
    registered is asked first."""
    if chooser not in _choosers:
        _choosers.insert(0, chooser)


def progress_mode() -> str:
    mode = os.environ.get("CLOUDFILES_PROGRESS", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"CLOUDFILES_PROGRESS must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def display_for(desc: str = "") -> Sink:
    """The display ``progress=True`` gets here: what a registered face offers (a notebook
    widget in a kernel), else a tqdm bar on a terminal, else a plain line every few seconds."""
    mode = progress_mode()
    for chooser in _choosers:
        sink = chooser(desc, mode)
        if sink is not None:
            return sink
    if mode == "line" or (mode in ("auto", "widget") and not _is_terminal(sys.stderr)):
        return LineDisplay(desc)
    return TqdmDisplay(desc)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def make_progress(progress: Any, total: int | None = None, desc: str = "") -> Progress:
    """Turn a user's ``progress=`` argument into a :class:`Progress`."""
    if progress is None or progress is False:
        return Progress(None, desc, total)
    if progress is True:
        return Progress([display_for(desc)], desc, total)
    if isinstance(progress, str):
        return Progress([display_for(progress)], progress, total)
    if isinstance(progress, Progress):
        # An engine-level caller sharing its Progress: pass events through, never close it.
        return Progress([_Forward(progress)], desc, total)
    if hasattr(progress, "update"):
        return Progress([TqdmSink(progress)], desc, total)
    if callable(progress):
        return Progress([progress], desc, total)
    raise TypeError(
        f"progress must be a bool, a label string, a callable taking ProgressEvent, or an object "
        f"with an update(n) method such as a tqdm bar; got {type(progress).__name__}"
    )


class _Forward:
    """Forwards 'advance' and 'error' events into a parent Progress (start/close stay local)."""

    def __init__(self, parent: Progress):
        self._parent = parent

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "advance":
            self._parent.advance(event.files, event.nbytes, event.worker)
        elif event.kind == "error":
            self._parent.fail(event.path, event.cause or "error")
