"""The import graph keeps the shape of docs/architecture.md: faces -> engine -> backends ->
ground, never an arrow back up; no face imports a backend; no backend imports another.

Every import statement of every module of the package is read from its source (function
bodies included), so an import hidden in a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import cloudfiles_dask

PACKAGE = pathlib.Path(cloudfiles_dask.__file__).parent

#: Each module of the package, by layer (lowest first). A new module must be placed here.
GROUND = {
    "cloudfiles_dask.exceptions", "cloudfiles_dask._dirs", "cloudfiles_dask.paths",
    "cloudfiles_dask.secrets", "cloudfiles_dask._locks", "cloudfiles_dask._retry",
    "cloudfiles_dask.progress", "cloudfiles_dask._threads", "cloudfiles_dask._checksums",
    "cloudfiles_dask._iteration", "cloudfiles_dask._suffixes", "cloudfiles_dask.compression",
    "cloudfiles_dask._md5lanes", "cloudfiles_dask.monitoring", "cloudfiles_dask._owners",
    "cloudfiles_dask.lib", "cloudfiles_dask.typing",
}
FACES = {"cloudfiles_dask", "cloudfiles_dask.cloudfiles", "cloudfiles_dask.cloudfile",
         "cloudfiles_dask.resumable", "cloudfiles_dask.resumable_tools"}
FACE_PACKAGES = ("cloudfiles_dask.cli", "cloudfiles_dask.dask", "cloudfiles_dask.jupyter")
CONTRACT = "cloudfiles_dask.backends.base"
RANKS = {"ground": 0, "backends": 1, "engine": 2, "faces": 3}
#: Backends that speak a protocol (the registry's modules); the others under backends/ are the
#: contract and the shared HTTP layer.
CONCRETE_BACKENDS = {f"cloudfiles_dask.backends.{name}" for name in ("local", "memory", "s3", "gcs", "http")}


def layer_of(module: str) -> str:
    if module in GROUND:
        return "ground"
    if module.startswith("cloudfiles_dask.backends"):
        return "backends"
    if module.startswith("cloudfiles_dask._engine"):
        return "engine"
    if module in FACES or module.startswith(FACE_PACKAGES):
        return "faces"
    raise AssertionError(f"{module} is in no layer: place it in tests/test_layers.py")


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, path: pathlib.Path) -> list[tuple[str, int, bool]]:
    """``(imported module, line, inside a function)`` for every import of the package's own
    modules; ``from X import name`` counts as importing ``X.name`` when that is a module.
    Imports under ``if TYPE_CHECKING:`` never run and are left out."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    known = modules()
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                for other in child.orelse:
                    visit(other, in_function)
                continue
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] == "cloudfiles_dask":
                    for alias in child.names:
                        sub = f"{target}.{alias.name}"
                        is_module = sub in known or sub in GROUND  # GROUND names the C module
                        found.append((sub if is_module else target, child.lineno, in_function))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.split(".")[0] == "cloudfiles_dask":
                        found.append((alias.name, child.lineno, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


def problems(module: str, path: pathlib.Path) -> list[str]:
    """Every import of ``module`` (read from ``path``) that breaks a rule of the layers."""
    found = []
    mine = layer_of(module)
    for target, line, local in imports_of(module, path):
        theirs = layer_of(target)
        where = f"{module}:{line} ({mine}) imports {target} ({theirs})"
        if RANKS[theirs] > RANKS[mine]:
            found.append(f"{where}: a layer above")
        if mine == "faces" and theirs == "backends":
            found.append(f"{where}: a face reaches past the engine")
        if mine == "engine" and theirs == "backends" and target != CONTRACT:
            found.append(f"{where}: the engine knows backends only by the contract and registry")
        if module in CONCRETE_BACKENDS and target in CONCRETE_BACKENDS and target != module:
            found.append(f"{where}: one backend imports another")
        if local:
            found.append(f"{where} inside a function: it hides the graph (only optional or heavy "
                         f"third-party modules are imported late)")
    return found


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_the_import_graph_keeps_the_layers():
    found = [problem for module, path in modules().items() for problem in problems(module, path)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module, added", [
    ("cloudfiles_dask._engine.jobs", "from ..cloudfiles import CloudFiles\n"),  # engine -> face
    ("cloudfiles_dask.backends.s3", "from .._engine import ops\n"),  # backend -> engine
    ("cloudfiles_dask.cloudfiles", "from .backends import s3\n"),  # face -> backend
    ("cloudfiles_dask.backends.gcs", "from . import http\n"),  # backend -> backend
    ("cloudfiles_dask._engine.ops", "from ..backends import local\n"),  # engine -> a backend
    ("cloudfiles_dask.progress", "def f():\n    from . import paths\n"),  # hidden import
])
def test_a_wrong_import_is_caught(tmp_path, module, added):
    """The walk really sees each arrow it forbids: a copy of a module with one bad import
    added has a problem, the module itself has none."""
    path = modules()[module]
    assert problems(module, path) == []
    copy = tmp_path / path.name
    copy.write_text(path.read_text() + "\n" + added)
    assert len(problems(module, copy)) == 1, problems(module, copy)
