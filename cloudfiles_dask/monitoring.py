"""Record what a transfer did, object by object, and what the machine's network did meanwhile.

:class:`TransmissionMonitor` keeps one *flight* per object moved (start time, end time, bytes):
the engine records every object of a call in one, and ``return_recording=True`` hands it back.
From the flights it computes totals, rates, a histogram of bytes over time and two charts
(a throughput histogram and a Gantt chart of the flights).

:class:`IOSampler` samples the machine's own network counters (``psutil.net_io_counters()``) on a
background thread, to compare what the library moved with what the network interface saw.

Times are wall-clock Unix seconds (``time.time()``), so flights recorded by Dask workers on other
machines can be merged on the driver (:meth:`TransmissionMonitor.merge`) and still line up, as
far as the machines' clocks agree.

Flights are kept in one flat ``array('d')`` (24 bytes a flight, no Python object per flight), so
a monitor of tens of millions of objects stays small and pickles quickly.

Only the standard library is needed to record flights and compute totals and rates. numpy, when
installed, makes the histogram and rates of large recordings fast (and the histogram is then a
numpy array); the charts need matplotlib and the sampler psutil:
``pip install 'cloudfiles-dask[monitoring]'``.
"""

from __future__ import annotations

import enum
import math
import pickle
import threading
import time
import uuid
import weakref
from array import array
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

from .progress import format_bytes

__all__ = ["IOEnum", "TransmissionMonitor", "IOSampler", "FlightError", "WorkerTotals", "LostWorker"]

EXTRA_HINT = "pip install 'cloudfiles-dask[monitoring]'"

#: Flights ``_FIELDS`` floats each in the flat storage: start, end, bytes.
_FIELDS = 3
#: A histogram longer than this is refused (a stray timestamp years off would need gigabytes).
MAX_HISTOGRAM_BINS = 10_000_000
#: Fewer flights than this in a Gantt chart get a size label each (unless told otherwise).
GANTT_LABEL_LIMIT = 40


class IOEnum(enum.Enum):
    """The direction of a transfer: received (downloads) or transmitted (uploads)."""

    RX = 1
    TX = 2


class FlightError(NamedTuple):
    """A flight that failed: when it started and stopped, the exception if one was given, and
    the path (key) of the object when the recorder knew it."""

    start_time: float
    end_time: float
    error: BaseException | None
    path: str | None = None


class WorkerTotals(NamedTuple):
    """What the records of one origin (a Dask worker's address, or ``host:pid``) added up to."""

    files: int
    bytes: int
    errors: int


class LostWorker(NamedTuple):
    """A worker that left the cluster while a transfer ran: its address, when the scheduler
    removed it (Unix seconds, the scheduler's clock), whether the cluster expected it (a
    retirement or a scale-down) or not (a death; None when the scheduler did not say), and how
    many of the transfer's batches were running there (they ran again elsewhere)."""

    address: str
    time: float
    expected: bool | None
    batches: int


# --------------------------------------------------------------------------- optional imports

def _numpy():
    """numpy if it is installed, else None (everything has a pure-Python path)."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def _require(module: str, what: str):
    try:
        return __import__(module)
    except ImportError as err:
        raise ImportError(f"{what} needs {module}, an optional extra: {EXTRA_HINT}") from err


def _require_matplotlib(what: str):
    """``(numpy, matplotlib)`` for a chart, or an ImportError naming the extra."""
    try:
        import matplotlib
        import matplotlib.collections  # noqa: F401 (submodules the charts use)
        import matplotlib.colors  # noqa: F401
        import matplotlib.ticker  # noqa: F401
        import numpy
        from matplotlib.backends import backend_agg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as err:
        raise ImportError(f"{what} needs matplotlib, an optional extra: {EXTRA_HINT}") from err
    return numpy, matplotlib


def _new_figure(filename, figsize):
    """A figure drawn by Agg when it goes to a file (no display, no change to the global pyplot
    backend, safe off the main thread), or a pyplot figure to show."""
    if filename is not None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        FigureCanvasAgg(fig)
        return fig
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize)


def _finish_figure(fig, filename) -> None:
    fig.tight_layout()
    if filename is not None:
        fig.savefig(filename, dpi=100)
        return
    import matplotlib.pyplot as plt

    plt.show()


def _as_sequence(values: array, np, dtype: str):
    return np.array(values, dtype=dtype) if np is not None else values.tolist()


def _bin_count(span: float, resolution: float) -> int:
    nbins = max(1, math.ceil(span / resolution))
    if nbins > MAX_HISTOGRAM_BINS:
        raise ValueError(
            f"the flights span {span:.6g} s: {nbins} bins of {resolution:g} s is more than "
            f"{MAX_HISTOGRAM_BINS}; choose a coarser resolution (or look for a stray timestamp)"
        )
    return nbins


def _check_positive(name: str, value: float) -> float:
    value = float(value)
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return value


# --------------------------------------------------------------------------- flight arithmetic
# ``flights`` below is always a private copy of the flat storage: start, end, bytes, start, ...

def _histogram_py(flights: array, resolution: float) -> list[float]:
    """Bytes per bin of ``resolution`` seconds from the first start. A flight's bytes are spread
    evenly over its duration; a zero-length flight puts them all in the bin of its instant."""
    if not flights:
        return []
    starts, ends, sizes = flights[0::3], flights[1::3], flights[2::3]
    t0 = min(starts)
    nbins = _bin_count(max(ends) - t0, resolution)
    top = nbins - 1
    hist = [0.0] * nbins
    rates = [0.0] * (nbins + 1)  # difference array of the bytes per whole bin
    for start, end, size in zip(starts, ends, sizes, strict=True):
        first_pos = (start - t0) / resolution
        last_pos = (end - t0) / resolution
        first = min(int(first_pos), top)
        last = min(max(first, math.ceil(last_pos) - 1), top)
        if last == first:
            hist[first] += size
            continue
        rate = size / (last_pos - first_pos)  # bytes per whole bin
        head = rate * (first + 1 - first_pos)
        whole = last - first - 1
        hist[first] += head
        if whole:
            rates[first + 1] += rate
            rates[last] -= rate
        hist[last] += size - head - rate * whole  # the rest, so a flight's pieces sum to its size
    running = 0.0
    for k in range(nbins):
        running += rates[k]
        hist[k] += running
    return hist


def _histogram_np(np, flights: array, resolution: float):
    """:func:`_histogram_py`, vectorised."""
    if not flights:
        return np.zeros(0)
    data = np.frombuffer(flights, dtype=np.float64).reshape(-1, _FIELDS)
    starts, ends, sizes = data[:, 0], data[:, 1], data[:, 2]
    t0 = starts.min()
    nbins = _bin_count(float(ends.max() - t0), resolution)
    top = nbins - 1
    first_pos = (starts - t0) / resolution
    last_pos = (ends - t0) / resolution
    first = np.minimum(first_pos.astype(np.int64), top)
    last = np.minimum(np.maximum(first, np.ceil(last_pos).astype(np.int64) - 1), top)

    one = last == first
    hist = np.bincount(first[one], weights=sizes[one], minlength=nbins).astype(np.float64)
    many = ~one
    first, last, size = first[many], last[many], sizes[many]
    first_pos, last_pos = first_pos[many], last_pos[many]
    rate = size / (last_pos - first_pos)
    head = rate * (first + 1 - first_pos)
    whole = last - first - 1
    hist += np.bincount(first, weights=head, minlength=nbins)
    hist += np.bincount(last, weights=size - head - rate * whole, minlength=nbins)
    spans = whole > 0
    if spans.any():
        rates = np.bincount(first[spans] + 1, weights=rate[spans], minlength=nbins + 1)
        rates -= np.bincount(last[spans], weights=rate[spans], minlength=nbins + 1)
        hist += np.cumsum(rates)[:nbins]
    return hist


def _histogram(flights: array, resolution: float):
    np = _numpy()
    if np is None:
        return _histogram_py(flights, resolution)
    return _histogram_np(np, flights, resolution)


def _span(flights: array) -> tuple[float, float]:
    """``(first start, last end)`` of the flights ((0.0, 0.0) when there is none)."""
    if not flights:
        return 0.0, 0.0
    np = _numpy()
    if np is None:
        return min(flights[0::3]), max(flights[1::3])
    data = np.frombuffer(flights, dtype=np.float64).reshape(-1, _FIELDS)
    return float(data[:, 0].min()), float(data[:, 1].max())


def _bytes_between_py(flights: array, lo: float, hi: float) -> float:
    """Bytes of the flights that landed in ``[lo, hi]``, spread evenly over each flight."""
    total = 0.0
    for start, end, size in zip(flights[0::3], flights[1::3], flights[2::3], strict=True):
        if end <= start:
            if lo <= start <= hi:
                total += size
            continue
        overlap = min(end, hi) - max(start, lo)
        if overlap > 0:
            total += size * overlap / (end - start)
    return total


def _bytes_between_np(np, flights: array, lo: float, hi: float) -> float:
    data = np.frombuffer(flights, dtype=np.float64).reshape(-1, _FIELDS)
    starts, ends, sizes = data[:, 0], data[:, 1], data[:, 2]
    instant = ends <= starts
    total = sizes[instant & (starts >= lo) & (starts <= hi)].sum()
    timed = ~instant
    starts, ends, sizes = starts[timed], ends[timed], sizes[timed]
    overlap = np.minimum(ends, hi) - np.maximum(starts, lo)
    inside = overlap > 0
    total += (sizes[inside] * overlap[inside] / (ends[inside] - starts[inside])).sum()
    return float(total)


def _bytes_between(flights: array, lo: float, hi: float) -> float:
    np = _numpy()
    if np is None or not flights:
        return _bytes_between_py(flights, lo, hi)
    return _bytes_between_np(np, flights, lo, hi)


def _portable_error(error: BaseException | None) -> BaseException | None:
    """``error`` if it survives a pickle round trip, else a RuntimeError describing it, so one odd
    exception class never stops a monitor from travelling between processes."""
    if error is None:
        return None
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__module__}.{type(error).__qualname__}: {error}")
    return error


# --------------------------------------------------------------------------- TransmissionMonitor

class _FlightsView:
    """A read-only, sized, iterable view of a monitor's finished flights as
    ``(start_time, end_time, num_bytes)`` tuples (the original kept them in an interval tree)."""

    __slots__ = ("_monitor",)

    def __init__(self, monitor: TransmissionMonitor):
        self._monitor = monitor

    def __len__(self) -> int:
        return len(self._monitor._flights) // _FIELDS

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[tuple[float, float, int]]:
        flights = self._monitor._snapshot()
        for start, end, size in zip(flights[0::3], flights[1::3], flights[2::3], strict=True):
            yield start, end, int(size)

    def __repr__(self) -> str:
        return f"<{len(self)} flights of {self._monitor!r}>"


class TransmissionMonitor:
    """The flights of one call's transfers in one direction: when each object started and
    finished moving, and how many bytes it was.

    Two ways to record:

    - ``record(start, end, num_bytes)`` / ``record_error(start, end, error)`` after the fact:
      one short locked append, meant for the engine's millions of small objects;
    - ``fid = start_io(num_bytes)`` then ``end_io(fid, num_bytes)`` or ``end_error(fid)``: the
      original CloudFiles API, which keeps the flight in ``_in_flight`` while it is open.

    Thread-safe and picklable; monitors from several threads or processes combine with
    :meth:`merge`. A flight's bytes are the count given when it ends.

    A record can say where it was made: ``origin`` (a Dask worker's address, or ``host:pid``).
    :meth:`merge` keeps the totals of each origin (:meth:`by_worker`), and a transfer spread
    over a cluster lists in :attr:`lost_workers` the workers that left while it ran.
    :meth:`summary` gives all of it as plain data.
    """

    def __init__(self, direction: IOEnum, origin: str | None = None):
        if not isinstance(direction, IOEnum):
            raise TypeError(f"direction must be IOEnum.RX or IOEnum.TX, not {direction!r}")
        self._direction = direction
        self.origin = origin  # where these flights were recorded (None: not said)
        #: Workers that left the cluster while the transfer ran (filled by the Dask faces).
        self.lost_workers: list[LostWorker] = []
        self._by_origin: dict[str, WorkerTotals] = {}  # the merged records' totals per origin
        self._failure_paths: dict[int, str] = {}  # index in _failed -> path of the object
        self._lock = threading.Lock()
        self._flights = array("d")  # finished flights: start, end, bytes, start, end, bytes...
        self._total_bytes_landed = 0
        self._in_flight: dict[uuid.UUID, tuple[float, int]] = {}  # id -> (start time, bytes)
        self._in_flight_bytes = 0
        self._errors: set[uuid.UUID] = set()  # ids of flights ended by end_error
        self._failed = array("d")  # failed flights: start, end, start, end...
        self._failure_errors: dict[int, BaseException] = {}  # index in _failed -> exception

    # ----------------------------------------------------------------- recording

    def record(self, start_time: float, end_time: float, num_bytes: int) -> None:
        """Add one finished flight (Unix seconds, as from ``time.time()``). An end before the
        start (the wall clock stepped back) is taken as the start."""
        if end_time < start_time:
            end_time = start_time
        with self._lock:
            self._flights.extend((start_time, end_time, num_bytes))
            self._total_bytes_landed += num_bytes

    def record_error(
        self, start_time: float, end_time: float, error: BaseException | None = None,
        path: str | None = None,
    ) -> None:
        """Add one failed flight, with its exception if given (a reference to it is kept) and
        the path (key) of the object if known."""
        if end_time < start_time:
            end_time = start_time
        with self._lock:
            index = len(self._failed) // 2
            if error is not None:
                self._failure_errors[index] = error
            if path is not None:
                self._failure_paths[index] = path
            self._failed.extend((start_time, end_time))

    def start_io(self, num_bytes: int, start_time: float | None = None) -> uuid.UUID:
        """Open a flight of ``num_bytes`` (0 when not known yet) and return its id."""
        flight_id = uuid.uuid4()
        if start_time is None:
            start_time = time.time()
        with self._lock:
            self._in_flight[flight_id] = (start_time, num_bytes)
            self._in_flight_bytes += num_bytes
        return flight_id

    def end_io(self, flight_id: uuid.UUID, num_bytes: int) -> None:
        """Close a flight opened by :meth:`start_io`; it landed ``num_bytes``."""
        end_time = time.time()
        with self._lock:
            try:
                start_time, started_bytes = self._in_flight.pop(flight_id)
            except KeyError:
                raise KeyError(f"no flight {flight_id} in progress") from None
            self._in_flight_bytes -= started_bytes
            self._flights.extend((start_time, max(start_time, end_time), num_bytes))
            self._total_bytes_landed += num_bytes

    def end_error(self, flight_id: uuid.UUID, error: BaseException | None = None,
                  path: str | None = None) -> None:
        """Mark a flight opened by :meth:`start_io` as failed. As in the original, it stays in
        ``_in_flight`` (its bytes in ``_in_flight_bytes``) and its id goes into ``_errors``; it
        is also counted once among :meth:`errors` (with ``path`` if given)."""
        end_time = time.time()
        with self._lock:
            if flight_id in self._errors:
                return
            self._errors.add(flight_id)
            start_time = self._in_flight.get(flight_id, (end_time, 0))[0]
            index = len(self._failed) // 2
            if error is not None:
                self._failure_errors[index] = error
            if path is not None:
                self._failure_paths[index] = path
            self._failed.extend((start_time, max(start_time, end_time)))

    @classmethod
    def merge(cls, monitors: Iterable[TransmissionMonitor]) -> TransmissionMonitor:
        """One monitor holding every flight (and failure with its path, and open flight) of
        ``monitors``, which must share a direction; the totals of each origin
        (:meth:`by_worker`) and the lost workers of all of them are kept. An empty list gives
        an empty TX monitor, as the original does."""
        monitors = list(monitors)
        directions = {monitor._direction for monitor in monitors}
        if len(directions) > 1:
            names = ", ".join(sorted(direction.name for direction in directions))
            raise ValueError(f"cannot merge monitors of different directions ({names})")
        merged = cls(directions.pop() if directions else IOEnum.TX)
        by_origin: dict[str, list[int]] = {}
        lost: dict[tuple[str, float], LostWorker] = {}
        for monitor in monitors:
            state = monitor.__getstate__(portable=False)
            offset = len(merged._failed) // 2
            merged._flights.extend(state["_flights"])
            merged._total_bytes_landed += state["_total_bytes_landed"]
            merged._in_flight.update(state["_in_flight"])
            merged._in_flight_bytes += state["_in_flight_bytes"]
            merged._errors.update(state["_errors"])
            merged._failed.extend(state["_failed"])
            for index, error in state["_failure_errors"].items():
                merged._failure_errors[offset + index] = error
            for index, path in state["_failure_paths"].items():
                merged._failure_paths[offset + index] = path
            for origin, totals in monitor.by_worker().items():
                sums = by_origin.setdefault(origin, [0, 0, 0])
                for k, value in enumerate(totals):
                    sums[k] += value
            for worker in state["lost_workers"]:
                lost.setdefault((worker.address, worker.time), worker)
        merged._by_origin = {origin: WorkerTotals(*sums) for origin, sums in by_origin.items()}
        merged.lost_workers = sorted(lost.values(), key=lambda worker: worker.time)
        return merged

    def by_worker(self) -> dict[str, WorkerTotals]:
        """``{origin: WorkerTotals(files, bytes, errors)}``: for a merged record, the totals of
        the records merged into it, by the origin each carried (a Dask worker's address); for a
        record with an ``origin`` of its own, its own totals; otherwise empty."""
        with self._lock:
            if self._by_origin:
                return dict(self._by_origin)
            if self.origin is None:
                return {}
            return {self.origin: WorkerTotals(len(self._flights) // _FIELDS,
                                              self._total_bytes_landed, len(self._failed) // 2)}

    def summary(self) -> dict[str, Any]:
        """The record as plain data (JSON-ready: numbers, strings, lists, dicts), to print or
        keep: ``direction, files, bytes, errors`` (a list of ``{"path", "error", "start",
        "end"}``, the error as ``"Type: message"``), ``start, end, seconds`` (first start to
        last end of the finished flights), ``bytes_per_second`` and ``files_per_second`` over
        that span, ``by_worker`` (``{origin: {"files", "bytes", "errors"}}``) and
        ``lost_workers`` (``[{"address", "time", "expected", "batches"}]``)."""
        start, end = _span(self._snapshot())
        seconds = end - start
        failures = [
            {"path": failure.path, "start": failure.start_time, "end": failure.end_time,
             "error": None if failure.error is None
             else f"{type(failure.error).__name__}: {failure.error}"}
            for failure in self.errors()
        ]
        return {
            "direction": self._direction.name,
            "files": self.files,
            "bytes": self.total_bytes(),
            "errors": failures,
            "start": start,
            "end": end,
            "seconds": seconds,
            "bytes_per_second": self.total_bytes() / seconds if seconds > 0 else 0.0,
            "files_per_second": self.files / seconds if seconds > 0 else 0.0,
            "by_worker": {origin: totals._asdict() for origin, totals in self.by_worker().items()},
            "lost_workers": [worker._asdict() for worker in self.lost_workers],
        }

    # ----------------------------------------------------------------- counts and times

    @property
    def direction(self) -> IOEnum:
        return self._direction

    @property
    def files(self) -> int:
        """How many flights ended successfully."""
        return len(self._flights) // _FIELDS

    @property
    def num_errors(self) -> int:
        """How many flights failed (``record_error`` and ``end_error``)."""
        return len(self._failed) // 2

    @property
    def _intervaltree(self) -> _FlightsView:
        return _FlightsView(self)

    def flights(self) -> list[tuple[float, float, int]]:
        """Every finished flight as ``(start_time, end_time, num_bytes)``, in recording order."""
        return list(_FlightsView(self))

    def errors(self) -> list[FlightError]:
        """Every failed flight, in recording order, with its exception where one was given and
        its path where the recorder knew it."""
        with self._lock:
            failed = self._failed[:]
            errors = dict(self._failure_errors)
            paths = dict(self._failure_paths)
        return [
            FlightError(failed[2 * k], failed[2 * k + 1], errors.get(k), paths.get(k))
            for k in range(len(failed) // 2)
        ]

    def total_bytes(self) -> int:
        """Bytes of the flights that ended successfully."""
        return self._total_bytes_landed

    def start_unix_time(self) -> float:
        """The earliest start of a finished flight (0.0 when there is none)."""
        return _span(self._snapshot())[0]

    def end_unix_time(self) -> float:
        """The latest end of a finished flight (0.0 when there is none)."""
        return _span(self._snapshot())[1]

    def duration(self) -> float:
        """Seconds from the first start to the last end of the finished flights."""
        first_start, last_end = _span(self._snapshot())
        return last_end - first_start

    # ----------------------------------------------------------------- rates

    def total_bps(self) -> float:
        """Bits per second over the whole span, first start to last end (0.0 when no time
        passed: nothing recorded, or only zero-length flights at one instant)."""
        span = self.duration()
        return self._total_bytes_landed * 8 / span if span > 0 else 0.0

    def total_Mbps(self) -> float:
        return self.total_bps() / 1e6

    def total_Gbps(self) -> float:
        return self.total_bps() / 1e9

    def total_MBps(self) -> float:
        return self.total_bps() / 8e6

    def total_GBps(self) -> float:
        return self.total_bps() / 8e9

    def current_bps(self, look_back_sec: float = 2.0) -> float:
        """Bits per second over the last ``look_back_sec`` seconds: up to now while a flight is
        open, else up to the last end (so a finished transfer keeps its final rate). The window
        never reaches before the first start; bytes of flights that straddle its edge count in
        proportion to their time inside."""
        look_back_sec = _check_positive("look_back_sec", look_back_sec)
        with self._lock:
            flights = self._flights[:]
            open_flight = any(fid not in self._errors for fid in self._in_flight)
        if not flights:
            return 0.0
        first_start, last_end = _span(flights)
        hi = time.time() if open_flight else last_end
        lo = max(hi - look_back_sec, first_start)
        if hi <= lo:
            return 0.0
        return _bytes_between(flights, lo, hi) * 8 / (hi - lo)

    def current_Mbps(self, look_back_sec: float = 2.0) -> float:
        return self.current_bps(look_back_sec) / 1e6

    def current_Gbps(self, look_back_sec: float = 2.0) -> float:
        return self.current_bps(look_back_sec) / 1e9

    def current_MBps(self, look_back_sec: float = 2.0) -> float:
        return self.current_bps(look_back_sec) / 8e6

    def current_GBps(self, look_back_sec: float = 2.0) -> float:
        return self.current_bps(look_back_sec) / 8e9

    def peak_bps(self) -> float:
        """The busiest second: the maximum of the 1-second histogram, in bits per second."""
        hist = self.histogram(1.0)
        return float(max(hist)) * 8 if len(hist) else 0.0

    def histogram(self, resolution: float = 1.0):
        """Bytes per bin of ``resolution`` seconds, from the first start to the last end; each
        flight's bytes are spread evenly over its duration (a zero-length flight's fall in one
        bin), so the bins sum to :meth:`total_bytes`. A numpy array when numpy is installed,
        else a list of floats; empty when nothing was recorded."""
        resolution = _check_positive("resolution", resolution)
        return _histogram(self._snapshot(), resolution)

    # ----------------------------------------------------------------- charts

    def plot_histogram(self, resolution: float = 1.0, filename: str | None = None) -> None:
        """Chart the throughput (Mbps per bin of ``resolution`` seconds). With ``filename``,
        write the image (PNG unless its extension says otherwise); without, ``plt.show()``."""
        resolution = _check_positive("resolution", resolution)
        np, _ = _require_matplotlib("TransmissionMonitor.plot_histogram")
        hist = np.asarray(self.histogram(resolution), dtype=np.float64)
        mbps = hist * 8 / resolution / 1e6
        fig = _new_figure(filename, (10, 5))
        ax = fig.add_subplot()
        if len(mbps):
            ax.stairs(mbps, np.arange(len(mbps) + 1) * resolution, fill=True, alpha=0.8)
        ax.set_xlabel("seconds since the first start")
        ax.set_ylabel("Mbps")
        ax.set_title(
            f"{self._direction.name}: {format_bytes(self.total_bytes())} in {self.files} "
            f"files, {self.total_Mbps():.2f} Mbps on average, peak {self.peak_bps() / 1e6:.2f} "
            f"Mbps (bins of {resolution:g} s)"
        )
        _finish_figure(fig, filename)

    def plot_gantt(
        self,
        filename: str | None = None,
        title: str | None = None,
        show_size_labels: bool | None = None,
    ) -> None:
        """Chart one bar per finished flight, from its start to its end, coloured by its size,
        in order of start. Size labels are drawn when there are fewer than 40 flights, unless
        ``show_size_labels`` says otherwise. With ``filename``, write the image (PNG unless its
        extension says otherwise); without, ``plt.show()``."""
        np, matplotlib = _require_matplotlib("TransmissionMonitor.plot_gantt")
        from matplotlib.collections import PolyCollection
        from matplotlib.colors import LogNorm, Normalize
        from matplotlib.ticker import MaxNLocator

        data = np.frombuffer(self._snapshot(), dtype=np.float64).reshape(-1, _FIELDS)
        data = data[np.argsort(data[:, 0], kind="stable")]
        count = len(data)
        if show_size_labels is None:
            show_size_labels = count < GANTT_LABEL_LIMIT
        fig = _new_figure(filename, (12, min(3 + 0.25 * count, 12)))
        ax = fig.add_subplot()
        ax.set_xlabel("seconds since the first start")
        ax.set_ylabel("flight (in order of start)")
        if title is None:
            title = (f"{self._direction.name} flights: {count} files, "
                     f"{format_bytes(self.total_bytes())}, {self.total_Mbps():.2f} Mbps")
        ax.set_title(title)
        if count:
            t0 = data[:, 0].min()
            left = data[:, 0] - t0
            span = float((data[:, 1] - t0).max()) or 1.0
            width = np.maximum(data[:, 1] - data[:, 0], span / 1000)  # a zero-length flight shows
            sizes = data[:, 2]
            low, high = max(float(sizes.min()), 1.0), max(float(sizes.max()), 1.0)
            norm = LogNorm(low, high) if high > 10 * low else Normalize(0.0, high)
            cmap = matplotlib.colormaps["viridis"]
            rows = np.arange(count, dtype=np.float64)
            bottom, top = rows - 0.4, rows + 0.4
            corners = np.stack([
                np.column_stack([left, bottom]), np.column_stack([left + width, bottom]),
                np.column_stack([left + width, top]), np.column_stack([left, top]),
            ], axis=1)
            bars = PolyCollection(corners, array=np.maximum(sizes, low), cmap=cmap, norm=norm,
                                  edgecolors="none")
            ax.add_collection(bars)
            ax.set_xlim(0, span * (1.15 if show_size_labels else 1.02))
            ax.set_ylim(count - 0.5, -0.5)  # first flight at the top
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            fig.colorbar(bars, ax=ax, label="bytes")
            if show_size_labels:
                for row, (end, size) in enumerate(zip(left + width, sizes, strict=True)):
                    ax.text(end, row, " " + format_bytes(size), va="center", fontsize=7)
        _finish_figure(fig, filename)

    # ----------------------------------------------------------------- pickling, display

    def _snapshot(self) -> array:
        with self._lock:
            return self._flights[:]

    def __getstate__(self, portable: bool = True) -> dict[str, Any]:
        with self._lock:
            state = {key: value for key, value in self.__dict__.items() if key != "_lock"}
            state["_flights"] = self._flights[:]
            state["_failed"] = self._failed[:]
            state["_in_flight"] = dict(self._in_flight)
            state["_errors"] = set(self._errors)
            state["_failure_errors"] = dict(self._failure_errors)
            state["_failure_paths"] = dict(self._failure_paths)
            state["_by_origin"] = dict(self._by_origin)
            state["lost_workers"] = list(self.lost_workers)
        if portable:
            state["_failure_errors"] = {
                index: _portable_error(error) for index, error in state["_failure_errors"].items()
            }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # records pickled before origins, paths and lost workers existed lack them
        self.__dict__.update({"origin": None, "lost_workers": [], "_by_origin": {},
                              "_failure_paths": {}})
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        lost = f", {len(self.lost_workers)} workers lost" if self.lost_workers else ""
        return (f"TransmissionMonitor({self._direction}: {self.files} files, "
                f"{self._total_bytes_landed} bytes, {self.num_errors} errors, "
                f"{len(self._in_flight)} in flight{lost})")


# --------------------------------------------------------------------------- IOSampler

def _sampling_loop(sampler_ref: weakref.ref, stop: threading.Event, interval: float) -> None:
    """The sampler thread: one sample per ``interval`` until ``stop`` is set (and one last
    sample then), or until the sampler is garbage collected."""
    while not stop.wait(interval):
        sampler = sampler_ref()
        if sampler is None:
            return
        sampler._take_sample()
        del sampler
    sampler = sampler_ref()
    if sampler is not None:
        sampler._take_sample()


class IOSampler:
    """Sample the machine's network counters (``psutil.net_io_counters()``, all interfaces) every
    ``interval`` seconds on a daemon thread, into circular buffers holding the last
    ``buffer_sec`` seconds (``buffer_sec / interval`` samples).

    ``with IOSampler() as sampler:`` samples for the duration of the block. A pickled sampler
    unpickles stopped, with its samples.
    """

    def __init__(self, buffer_sec: float = 600.0, interval: float = 0.25):
        self._buffer_sec = _check_positive("buffer_sec", buffer_sec)
        self._interval = _check_positive("interval", interval)
        self._capacity = max(1, int(self._buffer_sec / self._interval + 1e-9))
        self._lock = threading.Lock()  # guards the buffers
        self._control = threading.Lock()  # serialises start and stop
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._reset_buffers()

    def _reset_buffers(self) -> None:
        self._rx = array("Q", bytes(8 * self._capacity))  # counters outgrow a double's integers
        self._tx = array("Q", bytes(8 * self._capacity))
        self._times = array("d", bytes(8 * self._capacity))
        self._next = 0  # where the next sample goes
        self._count = 0

    @property
    def capacity(self) -> int:
        """The most samples kept (the oldest are overwritten)."""
        return self._capacity

    @property
    def interval(self) -> float:
        return self._interval

    # ----------------------------------------------------------------- sampling

    def _take_sample(self) -> None:
        import psutil

        counters = psutil.net_io_counters()
        now = time.time()
        with self._lock:
            k = self._next
            self._rx[k] = counters.bytes_recv
            self._tx[k] = counters.bytes_sent
            self._times[k] = now
            self._next = (k + 1) % self._capacity
            self._count = min(self._count + 1, self._capacity)

    def start_sampling(self, force: bool = False) -> None:
        """Start the sampling thread (one sample is taken at once). If it is already running,
        do nothing, or with ``force`` restart it; the samples so far are kept."""
        _require("psutil", "IOSampler")
        with self._control:
            if self._running():
                if not force:
                    return
                self._stop_thread()
            self._take_sample()
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=_sampling_loop,
                args=(weakref.ref(self), self._stop, self._interval),
                name="cloudfiles-dask-IOSampler",
                daemon=True,
            )
            self._thread.start()

    def stop_sampling(self) -> None:
        """Stop the thread (it takes one last sample) and wait for it to end."""
        with self._control:
            self._stop_thread()

    def _running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def _stop_thread(self) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def is_sampling(self) -> bool:
        return self._running()

    def num_samples(self) -> int:
        return self._count

    def _ordered(self) -> tuple[array, array, array]:
        """The samples, oldest first, copied."""
        with self._lock:
            if self._count < self._capacity:
                end = self._count
                return self._rx[:end], self._tx[:end], self._times[:end]
            k = self._next
            return (self._rx[k:] + self._rx[:k], self._tx[k:] + self._tx[:k],
                    self._times[k:] + self._times[:k])

    def samples(self):
        """``(rx_bytes, tx_bytes, timestamps)``, oldest first: the counters (bytes since boot)
        and the Unix time of each sample. numpy arrays when numpy is installed, else lists."""
        rx, tx, times = self._ordered()
        np = _numpy()
        return (_as_sequence(rx, np, "int64"), _as_sequence(tx, np, "int64"),
                _as_sequence(times, np, "float64"))

    # ----------------------------------------------------------------- rates

    def current_bps(self, look_back_sec: float = 2.0) -> tuple[float, float]:
        """``(rx_bps, tx_bps)`` between the latest sample and the earliest one at most
        ``look_back_sec`` before it (or the one just before the latest, if none is that
        recent). ``(0.0, 0.0)`` with fewer than two samples."""
        look_back_sec = _check_positive("look_back_sec", look_back_sec)
        rx, tx, times = self._ordered()
        n = len(times)
        if n < 2:
            return 0.0, 0.0
        last = n - 1
        ref = next(k for k in range(n) if times[k] >= times[last] - look_back_sec)
        ref = min(ref, last - 1)
        elapsed = times[last] - times[ref]
        if elapsed <= 0:
            return 0.0, 0.0
        return (max(rx[last] - rx[ref], 0) * 8 / elapsed,
                max(tx[last] - tx[ref], 0) * 8 / elapsed)

    def _intervals(self, counters: array, times: array) -> array:
        """Consecutive samples as flights (start, end, bytes) for the histogram arithmetic."""
        flights = array("d")
        for k in range(1, len(times)):
            flights.extend((times[k - 1], times[k], max(counters[k] - counters[k - 1], 0)))
        return flights

    def histogram_rx(self, resolution: float = 1.0):
        """Bytes received per bin of ``resolution`` seconds from the first sample (each gap
        between two samples spread evenly over its bins); as :meth:`TransmissionMonitor.histogram`."""
        resolution = _check_positive("resolution", resolution)
        rx, _, times = self._ordered()
        return _histogram(self._intervals(rx, times), resolution)

    def histogram_tx(self, resolution: float = 1.0):
        """Bytes sent per bin; see :meth:`histogram_rx`."""
        resolution = _check_positive("resolution", resolution)
        _, tx, times = self._ordered()
        return _histogram(self._intervals(tx, times), resolution)

    def peak_bps(self, window: float = 1.0) -> tuple[float, float]:
        """``(rx_bps, tx_bps)`` of the busiest bin of ``window`` seconds."""
        window = _check_positive("window", window)
        peaks = []
        for hist in (self.histogram_rx(window), self.histogram_tx(window)):
            peaks.append(float(max(hist)) * 8 / window if len(hist) else 0.0)
        return peaks[0], peaks[1]

    def plot_histogram(self, resolution: float | None = None, filename: str | None = None) -> None:
        """Chart RX and TX Mbps per bin of ``resolution`` seconds (the sampling interval when
        not given). With ``filename``, write the image; without, ``plt.show()``."""
        resolution = self._interval if resolution is None else resolution
        resolution = _check_positive("resolution", resolution)
        np, _ = _require_matplotlib("IOSampler.plot_histogram")
        fig = _new_figure(filename, (10, 5))
        ax = fig.add_subplot()
        for label, hist in (("RX", self.histogram_rx(resolution)),
                            ("TX", self.histogram_tx(resolution))):
            mbps = np.asarray(hist, dtype=np.float64) * 8 / resolution / 1e6
            if len(mbps):
                ax.stairs(mbps, np.arange(len(mbps) + 1) * resolution, label=label)
        ax.set_xlabel("seconds since the first sample")
        ax.set_ylabel("Mbps")
        rx_peak, tx_peak = self.peak_bps(resolution)
        ax.set_title(f"Machine network I/O: peak RX {rx_peak / 1e6:.2f} Mbps, "
                     f"peak TX {tx_peak / 1e6:.2f} Mbps (bins of {resolution:g} s)")
        if self._count > 1:
            ax.legend()
        _finish_figure(fig, filename)

    # ----------------------------------------------------------------- protocol

    def __enter__(self) -> IOSampler:
        self.start_sampling()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_sampling()

    def __getstate__(self) -> dict[str, Any]:
        rx, tx, times = self._ordered()
        return {"buffer_sec": self._buffer_sec, "interval": self._interval,
                "capacity": self._capacity, "rx": rx, "tx": tx, "times": times}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._buffer_sec = state["buffer_sec"]
        self._interval = state["interval"]
        self._capacity = state["capacity"]
        self._lock = threading.Lock()
        self._control = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        self._reset_buffers()
        count = len(state["times"])
        self._rx[:count] = state["rx"]
        self._tx[:count] = state["tx"]
        self._times[:count] = state["times"]
        self._count = count
        self._next = count % self._capacity

    def __repr__(self) -> str:
        state = "sampling" if self.is_sampling() else "stopped"
        return (f"IOSampler({state}, {self._count}/{self._capacity} samples every "
                f"{self._interval:g} s)")
