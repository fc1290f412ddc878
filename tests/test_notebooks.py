"""The example notebooks (notebooks/*.ipynb) and what mybinder needs to launch them (binder/).

Every notebook is executed headless with nbclient on the ``python3`` kernel of this interpreter,
in a temporary working directory, and must run top to bottom without credentials or internet.
The binder files must exist, postBuild must install the package with its ``jupyter``, ``dask``
and ``monitoring`` (the transfer charts' matplotlib) extras, and every import in every notebook must come from the standard library or from the
package's core, ``jupyter`` and ``dask`` dependencies (or be one of the few distributions those
require, named in ``VIA_DEPENDENCY``). Every notebook is named in README.md.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BINDER = ROOT / "binder"
CELL_TIMEOUT = 120  # seconds per cell

# Provided by the Jupyter server image mybinder builds (repo2docker), not by our dependencies.
JUPYTER_RUNTIME = {"ipykernel", "ipython"}
# Distributions that one of our dependencies requires unconditionally, which a notebook may
# import by name: {distribution: the dependency that brings it}. fsspec is Dask's own file layer
# (dask.bytes, dask.bag.read_text), which notebooks/05-comparison.ipynb times against. Allowed
# only while the dependency still requires it.
VIA_DEPENDENCY = {"fsspec": "dask"}
# The example notebooks, in their reading order.
EXPECTED = [
    "01-quickstart.ipynb",
    "02-dask-bags.ipynb",
    "03-distributed-resumable-transfer.ipynb",
    "04-browser-tour.ipynb",
    "05-comparison.ipynb",
]


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _code_cells(nb: dict) -> list[tuple[int, str]]:
    out = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            src = cell["source"]
            out.append((i, "".join(src) if isinstance(src, list) else src))
    return out


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks in notebooks/"
    names = [path.name for path in NOTEBOOKS]
    missing = [name for name in EXPECTED if name not in names]
    assert not missing, f"notebooks missing from notebooks/: {missing}"


def test_the_readme_names_every_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unnamed = [path.name for path in NOTEBOOKS if f"notebooks/{path.name}" not in readme]
    assert not unnamed, f"README.md does not name {unnamed}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = _read(path)
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"{path.name}: cell {i} has outputs; clear them"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} execution_count"


# ---------------------------------------------------------------------------------------------
# Execution


def _nbclient():
    nbclient = pytest.importorskip(
        "nbclient", reason="nbclient is not installed (pip install -e '.[test]')"
    )
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[test]')")
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    return nbclient, nbformat


def test_python3_kernel_is_this_interpreter():
    _nbclient()
    from jupyter_client.kernelspec import KernelSpecManager

    argv = KernelSpecManager().get_kernel_spec("python3").argv
    # jupyter_client replaces a bare "python"/"python3"/"python3.X" with sys.executable.
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    assert argv[0] in bare or os.path.realpath(argv[0]) == os.path.realpath(sys.executable), (
        f"the python3 kernelspec runs {argv[0]!r}, not this interpreter ({sys.executable})"
    )


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    nbclient, nbformat = _nbclient()
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as exc:
        failed = None
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and any(
                o.get("output_type") == "error" for o in cell.get("outputs", [])
            ):
                failed = (i, cell)
                break
        if failed is None:  # a timeout leaves no error output: the last cell that started
            started = [
                (i, c)
                for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and c.get("execution_count") is not None
            ]
            failed = started[-1] if started else (None, None)
        index, cell = failed
        source = (cell.source if cell is not None else "").strip()
        pytest.fail(f"{path.name}: cell {index} failed:\n{source}\n---\n{exc}", pytrace=False)


# ---------------------------------------------------------------------------------------------
# Binder


def test_binder_files_exist():
    env = BINDER / "environment.yml"
    post = BINDER / "postBuild"
    assert env.is_file(), "binder/environment.yml is missing"
    assert post.is_file(), "binder/postBuild is missing"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    text = env.read_text()
    assert re.search(r"^\s*-\s*python\s*=\s*3\.11\b", text, re.M), "environment.yml: python=3.11"
    assert re.search(r"^\s*-\s*pip\s*$", text, re.M), "environment.yml: pip"
    # Every file or folder a binder file names, relative to the repository root, exists.
    for f in (env, post):
        for name in re.findall(r"(?<![\w.:/-])((?:binder|notebooks)/[\w./-]+)", f.read_text()):
            assert (ROOT / name).exists(), f"{f.name} names {name}, which does not exist"


BINDER_EXTRAS = ("jupyter", "dask", "monitoring")


def test_postbuild_installs_the_jupyter_dask_and_monitoring_extras():
    lines = [
        ln.strip()
        for ln in (BINDER / "postBuild").read_text().splitlines()
        if ln.strip() and not ln.strip().startswith("#")
    ]
    installs = [ln for ln in lines if re.search(r"\bpip\b.*\binstall\b", ln)]
    assert installs, "postBuild installs nothing with pip"
    ok = False
    for ln in installs:
        m = re.search(r"""["']?\.\[([\w,\s-]+)\]["']?""", ln)  # the repository root, ".[...]"
        if m and set(BINDER_EXTRAS) <= {e.strip() for e in m.group(1).split(",")}:
            ok = True
    assert ok, (f"postBuild must pip install the package from '.' with "
                f"[{','.join(BINDER_EXTRAS)}]: {installs}")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _binder_distributions() -> set[str]:
    """The package, its core dependencies and the extras binder installs (extras of those
    requirements expanded one level, as pip installs them)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="tomllib/tomli needed to read pyproject")
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in BINDER_EXTRAS:
        reqs += project["optional-dependencies"][extra]
    names = {_norm(project["name"])}
    for text in reqs:
        req = Requirement(text)
        names.add(_norm(req.name))
        for extra in req.extras:
            for sub in importlib.metadata.requires(req.name) or []:
                subreq = Requirement(sub)
                if subreq.marker is not None and subreq.marker.evaluate({"extra": extra}):
                    names.add(_norm(subreq.name))
    for name, parent in VIA_DEPENDENCY.items():
        unconditional = {
            _norm(sub.name)
            for sub in map(Requirement, importlib.metadata.requires(parent) or [])
            if sub.marker is None
        }
        if _norm(parent) in names and _norm(name) in unconditional:
            names.add(_norm(name))
    return names


def _top_level_imports(source: str) -> set[str]:
    # IPython magics and shell escapes are not Python: drop them before parsing.
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
    tree = ast.parse("\n".join(lines))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_are_in_the_binder_environment(path):
    allowed = _binder_distributions() | JUPYTER_RUNTIME
    module_dists = importlib.metadata.packages_distributions()
    problems = []
    for index, source in _code_cells(_read(path)):
        for mod in sorted(_top_level_imports(source)):
            if mod in sys.stdlib_module_names:
                continue
            dists = {_norm(d) for d in module_dists.get(mod, [])}
            if not dists:
                problems.append(
                    f"cell {index}: import {mod}: no installed distribution provides it"
                )
            elif not dists & allowed:
                problems.append(
                    f"cell {index}: import {mod} comes from {sorted(dists)}, which is not a core, "
                    "jupyter or dask dependency of the package"
                )
    assert not problems, f"{path.name}:\n" + "\n".join(problems)
