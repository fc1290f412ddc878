"""Import shim: ``cloudfiles.typing`` is ``cloudfiles_dask.typing`` (the module itself)."""

import sys

import cloudfiles_dask.typing as _target

sys.modules[__name__] = _target
