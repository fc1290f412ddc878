"""Import shim: ``cloudfiles.cloudfiles`` is ``cloudfiles_dask.cloudfiles`` (the module itself)."""

import sys

import cloudfiles_dask.cloudfiles as _target

sys.modules[__name__] = _target
