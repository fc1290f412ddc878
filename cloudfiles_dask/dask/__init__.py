"""Dask faces of cloudfiles-dask (``pip install 'cloudfiles-dask[dask]'``).

- :func:`transfer`: copy many files between two cloudpaths with the work spread over the workers
  of a Dask cluster, in batches of keys (each batch fans out on its worker's own threads).

Importing this package does not import Dask; the first call does.
"""

from .cluster import transfer

__all__ = ["transfer"]
