"""The notebook progress widget (cloudfiles_dask.jupyter.ProgressWidget) and the charts.

Its state is read in Python after real calls that succeed, fail and partly fail; then a real
kernel (nbclient) runs calls with ``progress=True`` and the outputs and the saved widget state
are checked. The page in a real browser is tests/test_jupyter_lab.py's.
"""

from __future__ import annotations

import os

import pytest

pytest.importorskip("ipywidgets")

from cloudfiles_dask import CloudFiles  # noqa: E402
from cloudfiles_dask.jupyter import Charts, ProgressWidget, charts, widget  # noqa: E402
from cloudfiles_dask.jupyter.widget import notebook_display  # noqa: E402


def _widget(desc: str = "") -> ProgressWidget:
    return ProgressWidget(desc, display=False)


def test_a_call_that_succeeds_leaves_the_widget_full_and_green(tmp_path):
    p = _widget()
    cf = CloudFiles(f"file://{tmp_path}/ok")
    assert cf.puts([(f"f{i}", b"abcd") for i in range(300)], progress=p) == 300
    assert p.style == "success" and "cfd-bar-success" in p.view.value
    assert "width: 100.0%" in p.view.value
    assert "cfd-done" in p.widget._dom_classes and "cfd-progress" in p.widget._dom_classes
    assert "300/300 files" in p.view.value and "1.2 kB" in p.view.value
    assert "Uploading" in p.view.value and "cfd-errors'>" not in p.view.value
    assert p.charts_button is None  # no record kept: no charts offered


def test_a_call_that_partly_fails_shows_the_first_paths_and_causes(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}/part")
    cf.puts([(f"good{i}", b"fine") for i in range(5)])
    for i in range(7):
        (tmp_path / "part" / f"bad{i}.gz").write_bytes(b"not gzip")
    p = _widget("reading")
    results = cf.get([f"good{i}" for i in range(5)] + [f"bad{i}" for i in range(7)],
                     raise_errors=False, progress=p)
    assert sum(r["error"] is not None for r in results) == 7
    state = p.state()
    assert state.errors == 7 and state.failure is None and state.files == 12
    assert p.style == "danger" and "cfd-bar-danger" in p.view.value
    assert "7 errors" in p.view.value and "bad3: DecompressionError" in p.view.value
    assert "and 2 more" in p.view.value  # five named, the rest counted
    assert "reading" in p.view.value


def test_a_call_that_fails_turns_red_with_its_error(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}/fail")
    (tmp_path / "fail" / "taken").mkdir(parents=True)
    p = _widget()
    with pytest.raises(OSError):
        cf.puts([("taken", b"x")], progress=p)
    assert p.style == "danger"
    assert "failed:" in p.view.value and "taken" in p.view.value


def test_one_widget_shared_by_calls_adds_them_up(tmp_path):
    p = _widget("both")
    up = CloudFiles(f"file://{tmp_path}/a")
    down = CloudFiles(f"mem://shared-{os.getpid()}/b")
    up.puts([(f"f{i}", b"1") for i in range(10)], progress=p)
    down.puts([(f"g{i}", b"22") for i in range(5)], progress=p)
    down.get([f"g{i}" for i in range(5)], progress=p)
    state = p.state()
    assert (state.files, state.nbytes, state.total) == (20, 30, 20)
    assert "20/20 files" in p.view.value and p.style == "success"


def test_a_transfer_offers_its_charts_and_they_are_png_images(tmp_path):
    src = CloudFiles(f"file://{tmp_path}/src")
    src.puts([(f"k{i}", b"x" * (100 * i)) for i in range(40)])
    p = _widget()
    record = src.transfer_to(f"mem://charts-{os.getpid()}/dst", progress=p)
    assert p.charts_button in p.widget.children  # offered
    assert p.state().records == (record,)
    drawn = charts(record)
    assert isinstance(drawn, Charts)
    assert drawn.gantt_png.startswith(b"\x89PNG") and drawn.throughput_png.startswith(b"\x89PNG")
    p.charts_button.click()  # as a click in the page does: the charts go into the widget
    [shown] = p.charts_output.outputs
    assert "cfd-charts" in shown["data"]["text/html"]
    page = drawn._repr_html_()
    assert page.count("<img") == 2 and "40 files" in page
    with pytest.raises(TypeError, match="TransmissionMonitor"):
        charts([1, 2])


def test_a_widget_that_cannot_draw_says_so_inside_itself_and_the_call_goes_on(tmp_path,
                                                                            monkeypatch):
    def broken(state):
        raise ValueError("no room")

    monkeypatch.setattr(widget, "_stats", broken)
    p = _widget()
    cf = CloudFiles(f"file://{tmp_path}/b")
    assert cf.puts([(f"f{i}", b"1") for i in range(20)], progress=p) == 20
    assert "the progress display failed" in p.view.value and "no room" in p.view.value


def test_outside_a_kernel_progress_true_is_not_a_widget():
    assert notebook_display("x", "auto") is None
    assert notebook_display("x", "line") is None


def test_the_summary_is_static_html_naming_what_happened():
    p = _widget("sum")
    with pytest.raises(KeyError):
        with CloudFiles(f"mem://sum-{os.getpid()}/x")._runner(p, 3, "sum") as runner:
            runner.progress.advance(2, 2000)
            runner.progress.fail("k9", KeyError("k9"))
            raise KeyError("k9")
    text = widget.summary_html(p.state())
    assert "cfd-progress-summary" in text and "✘" in text and "2/3 files" in text
    assert "k9" in text and "KeyError" in text


# -- in a real kernel ---------------------------------------------------------------------------------
NOTEBOOK_CELLS = [
    "from cloudfiles_dask import CloudFiles\n"
    "cf = CloudFiles('mem://kernel/x')\n"
    "n = cf.puts([(f'p/{i}', b'x' * 100) for i in range(200)], progress=True)",
    "try:\n"
    "    cf.get(['p/1'], progress=lambda e: 1 / 0 if e.kind == 'close' else None)\n"
    "except ZeroDivisionError:\n"
    "    pass\n"
    "from cloudfiles_dask.jupyter import ProgressWidget\n"
    "p = ProgressWidget('shared')\n"
    "cf.get([f'p/{i}' for i in range(200)], progress=p)\n"
    "cf.get([f'p/{i}' for i in range(50)], progress=p)\n"
    "print(p.state().files)",
    "t = ProgressWidget('copy')\n"
    "record = cf.transfer_to('mem://kernel/y', progress=t)\n"
    "t.charts_button.click()  # as a click in the page does\n"
    "[out] = t.charts_output.outputs\n"
    "print(record.files, 'cfd-charts' in out['data']['text/html'])",
]


def test_in_a_kernel_progress_true_shows_the_widget_and_leaves_a_summary(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    first, second = nb.cells[0].outputs, nb.cells[1].outputs
    views = [o for o in first if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    summaries = [o["data"]["text/html"] for o in first if "text/html" in o.get("data", {})]
    assert len(views) == 1, first
    assert len(summaries) == 1 and "cfd-progress-summary" in summaries[0]
    assert "✔" in summaries[0] and "200/200 files" in summaries[0]
    assert not [o for o in first if o.get("name") == "stderr"]  # no text bar besides the widget
    # the shared widget: shown once, a summary per call, counting both
    assert [o.get("text") for o in second if o.get("name") == "stdout"] == ["250\n"]
    shared = [o["data"]["text/html"] for o in second if "text/html" in o.get("data", {})]
    assert len(shared) == 2 and "250/250 files" in shared[1]
    third = nb.cells[2].outputs
    assert [o.get("text") for o in third if o.get("name") == "stdout"] == ["200 True\n"]
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    views = [m["state"]["value"] for m in state.values() if m["model_name"] == "HTMLModel"
             and "cfd-bar" in m["state"].get("value", "")]
    assert len(views) == 3 and all("cfd-bar-success" in v for v in views)
    assert "250/250 files" in views[1] and "width: 100.0%" in views[1]
