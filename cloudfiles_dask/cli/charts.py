"""The charts ``cloudfiles cp`` can save, and the machine's network sampler behind them and
behind ``cloudfiles watch net``.

Chart files are written in the current directory under the original CloudFiles' names, with
one UTC timestamp (to a tenth of a second) per command:

- ``--io-rate``:         ``./cloudfiles-cp-est-io-<ts>.png``       (the rate estimated from each
  file's size and flight time: ``TransmissionMonitor.plot_histogram``)
- ``--flight-time``:     ``./cloudfiles-cp-flight-time-<ts>.png``  (one bar per file:
  ``TransmissionMonitor.plot_gantt``)
- ``--machine-io-rate``: ``./cloudfiles-cp-measured-io-<ts>.png``  (the machine's network
  counters, sampled at 4 Hz: ``IOSampler.plot_histogram``)

``<ts>`` looks like ``2026-12-07_03-46-11.6Z``. matplotlib and psutil are optional
(``pip install 'cloudfiles-dask[monitoring]'``): they are checked before anything is copied.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from typing import Any

import click

from ..monitoring import IOSampler, TransmissionMonitor
from ._common import CLIError

EXTRA_HINT = "pip install 'cloudfiles-dask[monitoring]'"
#: The machine's network counters are sampled this often during ``cp --machine-io-rate``.
MACHINE_SAMPLE_INTERVAL = 0.25


def timestamp() -> str:
    """UTC, to a tenth of a second: ``2026-12-07_03-46-11.6Z`` (the original's chart names)."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%d_%H-%M-%S.") + f"{now.microsecond // 100_000}Z"


def require(modules: tuple[str, ...], what: str) -> None:
    """CLIError naming the extra when a module a chart or the sampler needs is not installed."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise CLIError(f"{what} needs {', '.join(missing)} (an optional extra): {EXTRA_HINT}")


def say_saved(filename: str, to_stderr: bool = False) -> None:
    """``Saved chart: FILE`` as the original prints it (on stderr when stdout carries data)."""
    click.echo(f"Saved chart: {filename}", err=to_stderr)


def save_transfer_charts(recording: TransmissionMonitor, *, io_rate: bool, flight_time: bool,
                         stamp: str, to_stderr: bool = False) -> list[str]:
    """Write the charts of a transfer's record that were asked for; their file names."""
    saved = []
    if io_rate:
        filename = f"./cloudfiles-cp-est-io-{stamp}.png"
        recording.plot_histogram(filename=filename)
        say_saved(filename, to_stderr)
        saved.append(filename)
    if flight_time:
        filename = f"./cloudfiles-cp-flight-time-{stamp}.png"
        recording.plot_gantt(filename=filename)
        say_saved(filename, to_stderr)
        saved.append(filename)
    return saved


def save_machine_chart(sampler: IOSampler, stamp: str, to_stderr: bool = False) -> str:
    filename = f"./cloudfiles-cp-measured-io-{stamp}.png"
    sampler.plot_histogram(resolution=1.0, filename=filename)
    say_saved(filename, to_stderr)
    return filename


class MachineIO:
    """``with MachineIO(enabled, buffer_sec) as io:`` samples the machine's network counters at
    4 Hz for the block when enabled (``io.sampler``), and does nothing otherwise."""

    def __init__(self, enabled: bool, buffer_sec: float):
        self.sampler: IOSampler | None = None
        if enabled:
            require(("psutil", "matplotlib"), "--machine-io-rate")
            try:
                self.sampler = IOSampler(buffer_sec=buffer_sec, interval=MACHINE_SAMPLE_INTERVAL)
            except ValueError as e:
                raise CLIError(f"--machine-io-rate-buffer-sec: {e}") from None

    def __enter__(self) -> MachineIO:
        if self.sampler is not None:
            self.sampler.start_sampling()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.sampler is not None:
            self.sampler.stop_sampling()
