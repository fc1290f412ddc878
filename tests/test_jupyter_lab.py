"""The notebook widgets in a real browser: JupyterLab, Debian's chromium, Playwright.

A JupyterLab server is started on 127.0.0.1 over a temporary directory holding a notebook written
here; chromium opens the notebook, runs all its cells, and the tests click through the bucket
browser (``CloudFiles(...).browse()``) and read the progress widget of a ``progress=True`` call
the way a user sees them: rendered by JupyterLab's widget manager from a live kernel, not as
widget state in Python (tests/test_jupyter_browser.py does that).

Needs chromium (``/usr/bin/chromium`` or ``chromium`` on PATH; ``apt-get install chromium``)
and the ``playwright`` and ``jupyterlab`` packages (the ``test`` extra). Without them the tests
are skipped with the reason, unless ``CLOUDFILES_REQUIRE_BROWSER=1`` (CI), where they fail.
``CLOUDFILES_CHROMIUM`` names another browser executable. Screenshots of each part go to
``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
NOTEBOOK = "browser-and-progress.ipynb"

A_TEXT = "hello from sub/a.txt, shown by the browser test"
B_JSON = '{"b": [1, 2, 3]}'
TOP_TEXT = "a file at the top"
PUTS = 200

# The first page load compiles JupyterLab's bundles in a cold browser profile: much slower than
# anything after it.
FIRST_LOAD_MS = 120_000
KERNEL_MS = 90_000
WIDGET_MS = 30_000
SERVER_START_S = 90
KERNEL_IDLE = re.compile(r"^Python 3.* \| Idle$")

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # Names resolve to nothing: the page can reach the local server and nowhere else.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

# JupyterLab's own settings for this run: no news or update checks (they would go to the
# internet), and every cell kept in the page so that the second cell's output can be read
# without scrolling it into view first.
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        '{"fetchNews": "false", "checkForUpdates": false}',
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": '{"windowingMode": "none"}',
}


# -- what the tests need -------------------------------------------------------------------------
def chromium_path() -> str | None:
    configured = os.environ.get("CLOUDFILES_CHROMIUM")
    if configured:  # taken as given, no fallback: so a run can also go without a browser
        return configured if os.access(configured, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def missing_requirements() -> list[str]:
    missing = []
    if chromium_path() is None:
        configured = os.environ.get("CLOUDFILES_CHROMIUM")
        where = (f"CLOUDFILES_CHROMIUM={configured} is not an executable" if configured
                 else "neither /usr/bin/chromium nor `chromium` on PATH")
        missing.append(f"chromium ({where}): install Debian's with `apt-get install -y "
                       f"--no-install-recommends chromium` (`playwright install` needs the internet)")
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright module: pip install -e '.[test]'")
    if importlib.util.find_spec("jupyterlab") is None:
        missing.append("jupyter lab (the jupyterlab package): pip install -e '.[test]'")
    return missing


@pytest.fixture(scope="module")
def requirements() -> None:
    missing = missing_requirements()
    if not missing:
        return
    reason = "browser test needs " + "; ".join(missing)
    if os.environ.get("CLOUDFILES_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CLOUDFILES_REQUIRE_BROWSER=1: not skipped)", pytrace=False)
    pytest.skip(reason)


# -- the notebook ----------------------------------------------------------------------------------
def write_notebook(path: Path, tree: Path) -> None:
    import nbformat

    setup = f"""\
from cloudfiles_dask import CloudFiles

cf = CloudFiles({tree.as_uri()!r})
cf.put("sub/a.txt", {A_TEXT.encode()!r}, content_type="text/plain")
cf.put("sub/b.json", {B_JSON.encode()!r}, content_type="application/json")
cf.put("top.txt", {TOP_TEXT.encode()!r})
cf.browse()"""
    progress = f"""\
written = cf.puts([(f"p/{{i}}", b"x" * 100) for i in range({PUTS})], progress=True)"""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    transfer = """\
record = cf.transfer_to("mem://lab/copy", progress=True)"""
    nb.cells = [nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(progress),
                nbformat.v4.new_code_cell(transfer)]
    nbformat.write(nb, path)


# -- the server --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module")
def lab(requirements, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """``jupyter lab`` on 127.0.0.1 over a temporary directory with the notebook in it, with this
    interpreter (so its ``python3`` kernel has this package), isolated from the user's Jupyter
    configuration and data."""
    home = tmp_path_factory.mktemp("lab")
    root, tree = home / "root", home / "tree"
    root.mkdir()
    write_notebook(root / NOTEBOOK, tree)
    settings = home / "user-settings"
    for name, text in USER_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(text)
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               IPYTHONDIR=str(home / "ipython"), JUPYTER_PLATFORM_DIRS="1")
    log = home / "jupyter-lab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--allow-root",
        f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly", f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ]
    with open(log, "wb") as out:
        # its own process group: the kernels it starts go with it if it has to be killed
        proc = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in {SERVER_START_S} s:\n{log_tail(log)}")
            time.sleep(0.2)
        yield SimpleNamespace(base=base, token=token, home=home, tree=tree, log=log)
    finally:
        proc.terminate()  # SIGTERM: the server shuts its kernels down, then exits
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- the browser -------------------------------------------------------------------------------------
def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"jupyter-lab-{name}.png"
    try:
        page.screenshot(path=str(path))
    except Exception as e:  # a failed screenshot must not hide the failure it documents
        return Path(f"{path} (not taken: {e})")
    return path


def cell_outputs(page) -> str:
    """Every output of the notebook as text: what a failure message shows of the kernel side."""
    try:
        texts = page.locator(".jp-NotebookPanel .jp-CodeCell").evaluate_all(
            "cells => cells.map((c, i) => `cell ${i + 1}: ` + "
            "(c.querySelector('.jp-OutputArea')?.innerText ?? '').slice(0, 3000))")
    except Exception as e:
        return f"(outputs not read: {e})"
    return "\n".join(texts)


@contextlib.contextmanager
def part(notebook: SimpleNamespace, name: str, what: str) -> Iterator[None]:
    """One part of a test: a screenshot when it ends, either way; a failure names it and shows
    the notebook's outputs (and any request the page was kept from making)."""
    from playwright.sync_api import Error as PlaywrightError

    page = notebook.page
    try:
        yield
    except (AssertionError, PlaywrightError) as e:
        shot = screenshot(page, f"{name}-FAILED")
        blocked = f"\n-- blocked requests --\n{notebook.blocked}" if notebook.blocked else ""
        pytest.fail(f"{what}: failed (screenshot {shot})\n{e}\n-- notebook outputs --\n"
                    f"{cell_outputs(page)}{blocked}")
    shot = screenshot(page, name)
    print(f"{what}: screenshot {shot}")


@pytest.fixture(scope="module")
def notebook(lab, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The notebook open in chromium, its kernel idle, and all its cells run."""
    from playwright.sync_api import expect, sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    blocked: list[str] = []

    def only_local(route) -> None:
        blocked.append(route.request.url)
        route.abort()

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1500, "height": 1100})
        try:
            context.route(lambda url: not url.startswith(lab.base), only_local)
            page = context.pages[0] if context.pages else context.new_page()
            cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-CodeCell")
            nb = SimpleNamespace(page=page, cells=cells, blocked=blocked, lab=lab)
            with part(nb, "0-notebook-run", "open the notebook, wait for the kernel, run all"):
                page.goto(f"{lab.base}/lab/tree/{NOTEBOOK}?token={lab.token}",
                          timeout=FIRST_LOAD_MS)
                expect(cells).to_have_count(3, timeout=FIRST_LOAD_MS)
                # The status bar names the kernel once one is connected ("No Kernel |
                # Initializing" before); the toolbar's indicator says "idle" even then.
                expect(page.locator(".jp-StatusBar-TextItem", has_text=KERNEL_IDLE)
                       ).to_be_visible(timeout=KERNEL_MS)
                page.locator(".lm-MenuBar-item", has_text=re.compile(r"^\s*Run\s*$")).click()
                page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
                # a number in the first prompt: the cell ran ("[*]" while it runs)
                expect(cells.nth(0).locator(".jp-InputPrompt")).to_have_text(
                    re.compile(r"\[\d+\]"), timeout=KERNEL_MS)
            yield nb
        finally:
            context.close()


# -- the tests -------------------------------------------------------------------------------------
def test_bucket_browser_in_jupyterlab(notebook):
    from playwright.sync_api import expect

    page = notebook.page
    browser = notebook.cells.nth(0).locator(".cfd-browser")
    names = browser.locator(".cfd-name:visible")

    with part(notebook, "1-browser-shown", "the browser widget renders the root's entries"):
        expect(browser).to_be_visible(timeout=WIDGET_MS)
        expect(names).to_have_text(["sub/", "top.txt"], timeout=WIDGET_MS)
        browser.scroll_into_view_if_needed()

    with part(notebook, "2-folder-opened", "clicking the folder sub/ shows its files"):
        names.filter(has_text="sub/").click()
        expect(names).to_have_text(["a.txt", "b.json"], timeout=WIDGET_MS)
        # the breadcrumb now ends at the folder (its buttons are not entries: no cfd-name)
        expect(browser.locator("button:not(.cfd-name)[title='sub/']")).to_have_text(
            "sub", timeout=WIDGET_MS)

    with part(notebook, "3-file-previewed", "clicking sub/a.txt shows its text and metadata"):
        names.filter(has_text="a.txt").click()
        expect(browser.locator("pre")).to_have_text(A_TEXT, timeout=WIDGET_MS)
        metadata = browser.locator("table", has_text="Content-Length")
        expect(metadata).to_contain_text(f"{len(A_TEXT)} ({len(A_TEXT)} B)", timeout=WIDGET_MS)
        expect(metadata).to_contain_text("Last-Modified")
        path_box = browser.locator(".widget-text", has=page.locator("label", has_text="Path"))
        expect(path_box.locator("input")).to_have_value(
            (notebook.lab.tree / "sub" / "a.txt").as_uri())


def test_progress_widget_in_jupyterlab(notebook):
    """``progress=True`` in a notebook: an ipywidgets box (class ``cfd-progress``) that ends
    showing the files done and a success style, and a static HTML summary
    (``cfd-progress-summary``) left in the output for views without a kernel."""
    from playwright.sync_api import expect

    cell = notebook.cells.nth(1)
    with part(notebook, "4-progress", f"the progress widget of {PUTS} puts"):
        expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"),
                                                            timeout=KERNEL_MS)
        cell.scroll_into_view_if_needed()
        expect(cell.locator(".cfd-progress-summary").first).to_be_attached(timeout=WIDGET_MS)
        box = cell.locator(".cfd-progress").first
        expect(box).to_be_visible(timeout=WIDGET_MS)
        expect(box).to_contain_text(re.compile(rf"\b{PUTS}\b"), timeout=WIDGET_MS)
        # ipywidgets marks a success style with a class: progress-bar-success, mod-success, ...
        success = cell.locator(".cfd-progress[class*='success'], .cfd-progress [class*='success']")
        expect(success.first).to_be_attached(timeout=WIDGET_MS)
        expect(cell.locator(".cfd-progress [class*='danger']")).to_have_count(0)


def test_a_transfer_offers_its_charts_in_jupyterlab(notebook):
    """A transfer's widget ends with a *Show charts* button; a click draws the record's Gantt
    and throughput charts as images inside the widget."""
    from playwright.sync_api import expect

    cell = notebook.cells.nth(2)
    with part(notebook, "5-charts", "clicking Show charts under a transfer's widget"):
        expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"),
                                                            timeout=KERNEL_MS)
        cell.scroll_into_view_if_needed()
        button = cell.locator(".cfd-progress button", has_text="Show charts")
        expect(button).to_be_visible(timeout=WIDGET_MS)
        button.click()
        charts = cell.locator(".cfd-progress img.cfd-chart")
        expect(charts).to_have_count(2, timeout=WIDGET_MS)
        expect(cell.locator(".cfd-progress .cfd-charts")).to_contain_text("files")
