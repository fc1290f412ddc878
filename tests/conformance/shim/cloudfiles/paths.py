"""Import shim: ``cloudfiles.paths`` is ``cloudfiles_dask.paths`` (the module itself)."""

import sys

import cloudfiles_dask.paths as _target

sys.modules[__name__] = _target
