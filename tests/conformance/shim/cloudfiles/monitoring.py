"""Import shim: ``cloudfiles.monitoring`` is ``cloudfiles_dask.monitoring`` (the module itself)."""

import sys

import cloudfiles_dask.monitoring as _target

sys.modules[__name__] = _target
