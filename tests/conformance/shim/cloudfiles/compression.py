"""Import shim: ``cloudfiles.compression`` is ``cloudfiles_dask.compression`` (the module itself)."""

import sys

import cloudfiles_dask.compression as _target

sys.modules[__name__] = _target
