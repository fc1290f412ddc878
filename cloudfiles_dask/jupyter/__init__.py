"""Notebook widgets (``pip install 'cloudfiles-dask[jupyter]'``).

Built from ipywidgets in the kernel (no server extension), on the public API and the public
progress module only. Importing this package never imports ipywidgets: a widget does, when it
is made. It registers the display of ``progress=True`` inside a kernel (a
:class:`ProgressWidget`); outside one, the progress module's text displays stay.
"""

from .. import progress as _progress
from .browser import Browser, Entry
from .charts import Charts, charts
from .widget import ProgressWidget, notebook_display

_progress.register_display(notebook_display)

__all__ = ["Browser", "Charts", "Entry", "ProgressWidget", "charts"]
