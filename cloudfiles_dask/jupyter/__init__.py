"""Notebook widgets (``pip install 'cloudfiles-dask[jupyter]'``).

Built from ipywidgets in the kernel (no server extension), on the public API only. Importing
this package never imports ipywidgets: a widget does, when it is made.
"""

from .browser import Browser, Entry

__all__ = ["Browser", "Entry"]
