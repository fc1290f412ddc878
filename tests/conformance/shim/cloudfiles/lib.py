"""Import shim: ``cloudfiles.lib`` is ``cloudfiles_dask.lib`` (the module itself)."""

import sys

import cloudfiles_dask.lib as _target

sys.modules[__name__] = _target
