"""Import shim: ``cloudfiles_cli.cloudfiles_cli`` is ``cloudfiles_dask.cli`` (the module itself)."""

import sys

import cloudfiles_dask.cli as _target

sys.modules[__name__] = _target
