"""``cloudfiles watch net print | histogram`` (the machine's network rates, from its counters)
and ``cloudfiles license``."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import click

from ..monitoring import IOSampler
from . import charts
from ._common import CLIError, CommandGroup

DIST_NAME = "cloudfiles-dask"


@click.group(cls=CommandGroup)
def watch() -> None:
    """Watch the machine's I/O: print rates, or chart them.

    The rates are the machine's own (every interface, every process: psutil's network
    counters), not only what cloudfiles moves. Needs 'pip install cloudfiles-dask[monitoring]'.

    \b
    Examples:
      cloudfiles watch net print
      cloudfiles watch net histogram --duration 30 --filename net.png
    """


@watch.group("net", cls=CommandGroup)
def net() -> None:
    """The machine's network: received (RX) and transmitted (TX) bytes per second.

    \b
    Examples:
      cloudfiles watch net print --interval 0.5 --one-line
      cloudfiles watch net histogram --duration 10 --filename net.png
    """


def rate_line(elapsed: float, rx_bps: float, tx_bps: float) -> str:
    """One reading, in the original CloudFiles' format:
    ``t=2.0s | RX: 1.25 MB/sec (0.01 Gbps) | TX: 0.03 MB/sec (0.00 Gbps)``."""
    return (f"t={elapsed:.1f}s | RX: {rx_bps / 8e6:.2f} MB/sec ({rx_bps / 1e9:.2f} Gbps) | "
            f"TX: {tx_bps / 8e6:.2f} MB/sec ({tx_bps / 1e9:.2f} Gbps)")


@net.command("print")
@click.option("--duration", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Seconds to watch; 0 watches until Ctrl-C.")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=1, show_default=True,
              help="Seconds between readings (each is the rate over the last interval).")
@click.option("--one-line", is_flag=True, help="Rewrite one line (carriage return) instead of a line per reading.")
def net_print(duration: float, interval: float, one_line: bool) -> None:
    """Print the machine's network receive and transmit rates every INTERVAL seconds.

    Each line reads 't=2.0s | RX: 1.25 MB/sec (0.01 Gbps) | TX: 0.03 MB/sec (0.00 Gbps)'
    (MB = 10^6 bytes, Gbps = 10^9 bits per second). Ctrl-C stops, after a last reading.

    \b
    Examples:
      cloudfiles watch net print
      cloudfiles watch net print --duration 60 --interval 5 > net.log
      cloudfiles watch net print --one-line
    """
    charts.require(("psutil",), "watch net print")
    sampler = IOSampler(buffer_sec=max(interval * 4, 2.0), interval=interval)
    ending = "\r" if one_line else "\n"
    started = time.monotonic()
    sampler.start_sampling()
    try:
        with _ctrl_c_sets() as interrupted:
            while not interrupted.wait(interval):
                elapsed = time.monotonic() - started
                click.echo(rate_line(elapsed, *sampler.current_bps(interval)), nl=False)
                click.echo(ending, nl=False)
                click.get_text_stream("stdout").flush()
                if duration and elapsed >= duration:
                    if one_line:
                        click.echo("")
                    return
        sampler.stop_sampling()
        elapsed = time.monotonic() - started
        click.echo(rate_line(elapsed, *sampler.current_bps(interval)))
    finally:
        sampler.stop_sampling()


@contextlib.contextmanager
def _ctrl_c_sets() -> Iterator[threading.Event]:
    """An event Ctrl-C (SIGINT) sets, instead of raising KeyboardInterrupt wherever the main
    thread happens to be: one raised between a lock's acquire and its block would leave the
    lock held, and the sampler thread, then its join, would wait for it forever."""
    interrupted = threading.Event()
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
    except ValueError:  # not the main thread: Ctrl-C cannot reach this command anyway
        yield interrupted
        return
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


@net.command("histogram")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=5, show_default=True,
              help="Seconds to sample.")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=1, show_default=True,
              help="Seconds between samples (and the width of the histogram's bins).")
@click.option("--filename", default="", metavar="FILE",
              help="Write the chart to FILE (PNG unless its extension says otherwise). Without it the "
                   "chart is shown in a window, or where there is no display written to "
                   "./cloudfiles-net-histogram-<ts>.png.")
def net_histogram(duration: float, interval: float, filename: str) -> None:
    """Sample the machine's network counters for DURATION seconds, then chart the receive and
    transmit rates (Mbps per INTERVAL).

    \b
    Examples:
      cloudfiles watch net histogram
      cloudfiles watch net histogram --duration 60 --interval 0.5 --filename net.png
    """
    charts.require(("psutil", "matplotlib", "numpy"), "watch net histogram")
    sampler = IOSampler(buffer_sec=max(duration * 2, 1.0), interval=interval)
    with sampler, _ctrl_c_sets() as interrupted:
        interrupted.wait(duration + 0.1)  # Ctrl-C: chart what was sampled so far
    if not filename and _can_show():
        sampler.plot_histogram()
        return
    if not filename:
        filename = f"./cloudfiles-net-histogram-{charts.timestamp()}.png"
    sampler.plot_histogram(filename=filename)
    charts.say_saved(filename)


def _can_show() -> bool:
    """Whether matplotlib would open a window (an interactive backend and, on Linux, a display)."""
    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
            and not _is_macos():
        return False
    import matplotlib

    backend = matplotlib.get_backend().lower()
    return backend not in {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"} \
        and not backend.startswith("module://matplotlib_inline")


def _is_macos() -> bool:
    return os.uname().sysname == "Darwin"


# -- license ----------------------------------------------------------------------------------


def license_text() -> str | None:
    """The LICENSE shipped with the installed distribution (its ``.dist-info/licenses/``), or
    in a source checkout the one at the top of the repository."""
    try:
        dist = metadata.distribution(DIST_NAME)
    except metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for file in dist.files or ():
            if file.name in ("LICENSE", "LICENSE.txt") and "licenses" in file.parts[:-1]:
                try:
                    return file.read_text(encoding="utf-8")
                except OSError:
                    pass
        for relative in ("licenses/LICENSE", "LICENSE"):
            text = dist.read_text(relative)
            if text:
                return text
    top = Path(__file__).resolve().parents[2]  # the repository, in a source checkout
    try:
        ours = f'name = "{DIST_NAME}"' in (top / "pyproject.toml").read_text(encoding="utf-8")
        return (top / "LICENSE").read_text(encoding="utf-8") if ours else None
    except OSError:
        return None


@click.command("license")
def license_() -> None:
    """Print the license of cloudfiles-dask (BSD 3-Clause).

    \b
    Examples:
      cloudfiles license
    """
    text = license_text()
    if text is None:
        raise CLIError("the LICENSE file is not installed with this copy of cloudfiles-dask "
                       "(it is BSD-3-Clause: https://opensource.org/license/bsd-3-clause)")
    click.echo(text.rstrip("\n"))
