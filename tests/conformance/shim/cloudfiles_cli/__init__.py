"""Import shim: ``cloudfiles_cli`` -> ``cloudfiles_dask.cli``. Re-exports only, as the original's
``cloudfiles_cli/__init__.py`` re-exports its ``cloudfiles_cli`` module."""

from cloudfiles_dask.cli import *  # noqa: F403
