"""Import shim: ``cloudfiles`` -> ``cloudfiles_dask``. Re-exports only, no behaviour of its own.

Only the conformance run (tests/test_conformance.py) puts this directory on PYTHONPATH. Each
submodule of this package stands for the matching ``cloudfiles_dask`` module itself (it replaces
itself in ``sys.modules``), so the original's tests reach and patch our real modules.
"""

from cloudfiles_dask import *  # noqa: F403
from cloudfiles_dask import __all__, __version__  # noqa: F401
