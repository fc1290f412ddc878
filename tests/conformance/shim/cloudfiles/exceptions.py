"""Import shim: ``cloudfiles.exceptions`` is ``cloudfiles_dask.exceptions`` (the module itself)."""

import sys

import cloudfiles_dask.exceptions as _target

sys.modules[__name__] = _target
