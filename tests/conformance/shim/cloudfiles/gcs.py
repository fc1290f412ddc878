"""Import shim: ``cloudfiles.gcs`` is ``cloudfiles_dask.backends.gcs`` (the module itself)."""

import sys

import cloudfiles_dask.backends.gcs as _target

sys.modules[__name__] = _target
