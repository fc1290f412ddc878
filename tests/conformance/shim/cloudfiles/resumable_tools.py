"""Import shim: ``cloudfiles.resumable_tools`` is ``cloudfiles_dask.resumable_tools`` (the module itself)."""

import sys

import cloudfiles_dask.resumable_tools as _target

sys.modules[__name__] = _target
