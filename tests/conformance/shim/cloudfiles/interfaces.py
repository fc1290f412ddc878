"""Import shim: ``cloudfiles.interfaces`` is ``cloudfiles_dask.backends`` (the module itself)."""

import sys

import cloudfiles_dask.backends as _target

sys.modules[__name__] = _target
