"""A transfer record's charts in a notebook: :func:`charts`.

``charts(record)`` draws a :class:`~cloudfiles_dask.monitoring.TransmissionMonitor` (what
``transfer_to`` returns, and ``get``/``puts`` with ``return_recording=True``) as two PNG
images: each file's flight from start to end (a Gantt chart, coloured by size) and the
throughput over time. They are embedded in the cell's output as HTML, so a saved notebook
keeps them. matplotlib is optional (``pip install 'cloudfiles-dask[monitoring]'``); without
it, an ImportError says so.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from typing import Any

#: Bins of the throughput chart over the transfer's span (each at least 10 ms).
THROUGHPUT_BINS = 100


@dataclass(frozen=True)
class Charts:
    """The PNG images of one record's charts; shown as HTML in a notebook."""

    gantt_png: bytes
    throughput_png: bytes
    title: str

    def _repr_html_(self) -> str:
        images = "".join(
            f"<figure style='margin: 0.4em 0'><img alt='{alt}' class='cfd-chart' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}' "
            f"style='max-width: 100%'/><figcaption>{alt}</figcaption></figure>"
            for alt, png in (("flights (Gantt)", self.gantt_png),
                             ("throughput over time", self.throughput_png)))
        return f"<div class='cfd-charts'><b>{html.escape(self.title)}</b>{images}</div>"

    def __repr__(self) -> str:
        return (f"Charts({self.title!r}: Gantt {len(self.gantt_png):,} bytes, throughput "
                f"{len(self.throughput_png):,} bytes of PNG)")


def charts(record: Any, resolution: float | None = None) -> Charts:
    """The Gantt and throughput charts of ``record`` (a TransmissionMonitor). ``resolution``:
    seconds per bin of the throughput chart (default: the span in about 100 bins)."""
    if not (hasattr(record, "plot_gantt") and hasattr(record, "plot_histogram")):
        raise TypeError(f"charts() takes a TransmissionMonitor (what transfer_to returns); "
                        f"got {type(record).__name__}")
    if resolution is None:
        resolution = max(record.duration() / THROUGHPUT_BINS, 0.01)
    gantt, throughput = io.BytesIO(), io.BytesIO()
    record.plot_gantt(filename=gantt)
    record.plot_histogram(resolution=resolution, filename=throughput)
    return Charts(gantt.getvalue(), throughput.getvalue(),
                  f"{record.files:,} files, {record.total_MBps():.1f} MB/s on average")
