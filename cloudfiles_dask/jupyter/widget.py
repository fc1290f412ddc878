"""The live progress widget of ``progress=True`` in a notebook: :class:`ProgressWidget`.

It is a display of the public progress module (:class:`~cloudfiles_dask.progress.TimedDisplay`):
the threads that move files only add to its counters; a timer redraws it at most ten times a
second. It shows files done of the total, bytes, files/s and MB/s, the ETA, errors (how many,
and the first paths with their causes), the phase when a call has more than one, and for a
Dask transfer the files and bytes of each worker. When the last call ends it turns green (or
red) and stays, and leaves a static HTML summary in the cell's output, which a saved notebook
shows without a kernel. A call that kept a transfer record offers its charts.

Made by ``progress=True`` inside a kernel, or by hand and shared by several calls::

    p = ProgressWidget("copy")
    cf.puts(files, progress=p)
    cf2.get(paths, progress=p)
"""

from __future__ import annotations

import html
from typing import Any

from ..progress import ProgressState, TimedDisplay, TqdmDisplay, format_bytes, format_seconds
from ._kernel import has_ipywidgets, in_kernel, ipywidgets, show
from .charts import charts

#: Redraws a second at most.
REDRAWS_PER_SECOND = 10
#: Workers listed by name in the per-worker split (the others are added up in one row).
WORKER_ROWS = 8

_STYLE = """<style>
.cfd-progress .cfd-errors { color: #b00020; }
.cfd-progress table { border-collapse: collapse; font-size: 90%; }
.cfd-progress td, .cfd-progress th { padding: 0 0.8em 0 0; text-align: right; }
.cfd-progress td:first-child, .cfd-progress th:first-child { text-align: left; }
.cfd-progress .cfd-bar { height: 1em; margin: 0.2em 0; background: #e0e0e0;
  border-radius: 2px; overflow: hidden; }
.cfd-progress .cfd-fill { height: 100%; background: #2196f3; transition: width 0.1s; }
.cfd-progress .cfd-bar-success .cfd-fill { background: #4caf50; }
.cfd-progress .cfd-bar-danger .cfd-fill { background: #f44336; }
</style>"""
#: The bar's look: ``running`` while a call is open, then ``success`` or ``danger``.
STYLES = ("running", "success", "danger")


class ProgressWidget(TimedDisplay):
    """A progress widget: pass it as ``progress=`` to one call or several.

    ``desc`` labels it (else the first call's label). ``display=False`` leaves showing it to
    you (``display(p)`` or ``p`` as a cell's last line); otherwise it shows itself in the
    output of the cell whose call starts it first. :meth:`state` gives what it shows as data;
    :attr:`style` is ``running``, ``success`` or ``danger``.

    What moves is one HTML model (:attr:`view`: title, bar, counts, errors, workers), so a
    redraw is one message to the front end, whatever it shows.
    """

    interval = 1.0 / REDRAWS_PER_SECOND

    def __init__(self, desc: str = "", *, display: bool = True):
        super().__init__(desc)
        self._w = w = ipywidgets("ProgressWidget")
        self._auto_display = display
        self._shown = False
        self.style = "running"
        self.view = w.HTML()
        self.charts_button: Any = None  # made when a call that kept a record ends
        self.charts_output: Any = None
        self.widget = w.VBox([self.view])
        self.widget.add_class("cfd-progress")
        self._safely(self.draw, self.state(), False)

    # -- display ---------------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        self._shown = True
        show(self.widget)

    def on_start(self, state: ProgressState) -> None:
        self.style = "running"
        self.widget.remove_class("cfd-done")
        if self._auto_display and not self._shown:
            self._shown = True
            show(self.widget)

    def draw(self, state: ProgressState, final: bool) -> None:
        self.view.value = view_html(state, self.style)

    def on_end(self, state: ProgressState) -> None:
        self.style = "success" if state.ok else "danger"
        self.view.value = view_html(state, self.style)
        self.widget.add_class("cfd-done")
        if state.records and self.charts_button is None:
            w = self._w
            self.charts_button = w.Button(description="Show charts", icon="bar-chart",
                                          tooltip="The transfer's flights and throughput")
            self.charts_button.add_class("cfd-charts-button")
            self.charts_button.on_click(self._show_charts)
            self.charts_output = w.Output()
            self.widget.children = (*self.widget.children, self.charts_button,
                                    self.charts_output)
        if self._shown:  # what a saved notebook shows when no kernel restores the widget
            show(_Summary(state))

    def on_draw_error(self, error: BaseException) -> None:
        try:
            self.view.value = (f"<span class='cfd-errors'>the progress display failed: "
                               f"{html.escape(type(error).__name__)}: "
                               f"{html.escape(str(error))}</span>")
        except Exception:  # noqa: BLE001 - the widget itself is broken: nothing left to show on
            pass

    # -- charts ----------------------------------------------------------------------------------
    def _show_charts(self, _button: Any = None) -> None:
        """Draw the charts of the last record kept (inside the widget; an error shows there)."""
        records = self.state().records
        try:
            shown: Any = charts(records[-1])
        except Exception as error:  # noqa: BLE001 - shown in the widget, not raised
            shown = _Html(f"<span class='cfd-errors'>no charts: "
                          f"{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>")
        # set on the model itself (not captured from a cell's output): the same in any front
        # end, and from a click handler, which runs in no cell
        self.charts_output.outputs = ()
        self.charts_output.append_display_data(shown)


def view_html(state: ProgressState, style: str = "running") -> str:
    """The live view of ``state``: title (and phase), bar, counts, errors, workers."""
    label = html.escape(state.desc or "Progress")
    if state.phase:
        label += f" <i>({html.escape(state.phase)})</i>"
    fraction = state.fraction
    if fraction is None:  # no total yet: an empty bar, the counts say how far it got
        fraction = 1.0 if style == "success" else 0.0
    return (f"{_STYLE}<div class='cfd-title'><b>{label}</b></div>"
            f"<div class='cfd-bar cfd-bar-{style}'><div class='cfd-fill' "
            f"style='width: {100 * fraction:.1f}%'></div></div>"
            f"<div class='cfd-stats'>{html.escape(_stats(state))}</div>"
            f"{_errors_html(state)}{_workers_html(state)}")


def _stats(state: ProgressState) -> str:
    parts = [state.counts(), format_bytes(state.nbytes), state.rates()]
    if state.running and state.eta is not None:
        parts.append(f"ETA {format_seconds(state.eta)}")
    elif not state.running and state.elapsed:
        parts.append(f"in {format_seconds(state.elapsed)}")
    return " · ".join(parts)


def _errors_html(state: ProgressState) -> str:
    if not state.errors and state.failure is None:
        return ""
    rows = [f"<b>{state.errors:,} error{'s' if state.errors != 1 else ''}</b>"]
    rows += [f"{html.escape(path)}: {html.escape(cause)}" for path, cause in state.first_errors]
    if state.errors > len(state.first_errors):
        rows.append(f"… and {state.errors - len(state.first_errors):,} more")
    if state.failure is not None:
        rows.append(f"<b>failed:</b> {html.escape(state.failure)}")
    return "<div class='cfd-errors'>" + "<br>".join(rows) + "</div>"


def _workers_html(state: ProgressState) -> str:
    if not state.workers:
        return ""
    ranked = sorted(state.workers.items(), key=lambda item: (-item[1][1], item[0]))
    shown, rest = ranked[:WORKER_ROWS], ranked[WORKER_ROWS:]
    if rest:
        shown.append((f"{len(rest)} more workers", (sum(f for _, (f, _) in rest),
                                                     sum(b for _, (_, b) in rest))))
    total = sum(b for _, (_, b) in ranked) or 1
    rows = "".join(
        f"<tr><td>{html.escape(worker)}</td><td>{files:,}</td><td>{format_bytes(nbytes)}</td>"
        f"<td>{100 * nbytes / total:.0f} %</td></tr>" for worker, (files, nbytes) in shown)
    return ("<table class='cfd-workers'><tr><th>worker</th><th>files</th><th>bytes</th>"
            f"<th>share</th></tr>{rows}</table>")


def summary_html(state: ProgressState) -> str:
    """A static account of ``state`` (what stays in a saved notebook)."""
    mark, colour = ("✔", "#2e7d32") if state.ok else ("✘", "#b00020")
    label = html.escape(state.desc or "Progress")
    return (f"<div class='cfd-progress-summary' style='border-left: 4px solid {colour}; "
            f"padding-left: 0.6em'><b style='color: {colour}'>{mark} {label}</b>: "
            f"{html.escape(_stats(state))}{_errors_html(state)}{_workers_html(state)}</div>")


class _Html:
    def __init__(self, text: str):
        self.text = text

    def _repr_html_(self) -> str:
        return self.text


class _Summary(_Html):
    """The summary, as HTML and, for a front end without HTML, as its one line of text."""

    def __init__(self, state: ProgressState):
        super().__init__(summary_html(state))
        self.line = state.line()

    def __repr__(self) -> str:
        return self.line


def notebook_display(desc: str, mode: str) -> Any:
    """The display of ``progress=True`` inside a kernel (see ``progress.register_display``):
    this widget, or with no ipywidgets a tqdm bar (Jupyter renders its text)."""
    if mode not in ("auto", "widget") or not in_kernel():
        return None
    return ProgressWidget(desc) if has_ipywidgets() else TqdmDisplay(desc)
