"""What the widgets need to know of the kernel they run in; ipywidgets imported on demand."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

EXTRA_HINT = "pip install 'cloudfiles-dask[jupyter]'"


def ipywidgets(what: str) -> Any:
    """The ipywidgets module, or an ImportError saying ``what`` needs it and how to get it."""
    try:
        import ipywidgets as module
    except ImportError as e:
        raise ImportError(f"{what} needs ipywidgets: {EXTRA_HINT}") from e
    return module


def has_ipywidgets() -> bool:
    return "ipywidgets" in sys.modules or importlib.util.find_spec("ipywidgets") is not None


def in_kernel() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab): where widgets show.
    A plain IPython terminal is not one; nothing is imported to tell."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def show(obj: Any) -> None:
    """Display ``obj`` in the output of the cell that runs now."""
    from IPython.display import display

    display(obj)
