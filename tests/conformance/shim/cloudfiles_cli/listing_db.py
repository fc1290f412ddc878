"""Import shim: ``cloudfiles_cli.listing_db`` is ``cloudfiles_dask.cli.listing_db`` (the module itself)."""

import sys

import cloudfiles_dask.cli.listing_db as _target

sys.modules[__name__] = _target
