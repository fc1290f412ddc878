"""Import shim: ``cloudfiles.secrets`` is ``cloudfiles_dask.secrets`` (the module itself)."""

import sys

import cloudfiles_dask.secrets as _target

sys.modules[__name__] = _target
