"""Dask faces of cloudfiles-dask (``pip install 'cloudfiles-dask[dask]'``).

- :func:`transfer`: copy many files between two cloudpaths with the work spread over the workers
  of a Dask cluster, in batches of keys (each batch fans out on its worker's own threads).
- :func:`to_bag` / :func:`to_delayed`: a ``dask.bag.Bag`` (or ``dask.delayed`` objects, one per
  partition) of the reads of many keys, listed once under a prefix or given; partitions bounded
  by count and by bytes, each fetched on its worker's own threads (also ``CloudFiles.to_bag``,
  ``CloudFiles.to_delayed``, ``CloudFiles.get(..., dask="bag")``).
- :func:`puts` / :func:`put_jsons`: write a bag of ``(path, content)`` pairs or put dicts from
  the workers (also ``CloudFiles.puts(bag)``, ``CloudFiles.put_jsons(bag)``).

Importing this package does not import Dask; the first call does.
"""

from .cluster import transfer
from .collections import put_jsons, puts, to_bag, to_delayed

__all__ = ["put_jsons", "puts", "to_bag", "to_delayed", "transfer"]
