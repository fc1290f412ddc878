"""The clients compared by the benchmark, one adapter class each, imported lazily by name.

An adapter is made from the run's spec (servers, bucket, backend) and offers the operations it
supports as methods; the worker times exactly one call of one of them. What an adapter does is
what a user of that tool would naturally write (its bulk call where it has one, else a pool of
20 threads); the comments in each module say where a choice was needed.
"""

from __future__ import annotations

import importlib

#: name -> (module, class). The order is the order of rows in the report.
REGISTRY: dict[str, tuple[str, str]] = {
    "ours": ("clients.ours", "Ours"),
    "cloud-files": ("clients.orig", "OriginalCloudFiles"),
    "obstore-async": ("clients.obstore_client", "ObstoreAsync"),
    "obstore-sync": ("clients.obstore_client", "ObstoreThreads"),
    "boto3-threads": ("clients.sdk_threads", "Boto3Threads"),
    "gcs-threads": ("clients.sdk_threads", "GCSThreads"),
    "s3fs": ("clients.fsspec_clients", "S3FS"),
    "gcsfs": ("clients.fsspec_clients", "GCSFS"),
    "dask-1": ("clients.ours", "OursDask"),
    "dask-2": ("clients.ours", "OursDask"),
    "dask-4": ("clients.ours", "OursDask"),
    "plain": ("clients.plain", "Plain"),
    "zlib": ("clients.gzip_codecs", "Zlib"),
    "libdeflate": ("clients.gzip_codecs", "Libdeflate"),
    "ours-codec": ("clients.gzip_codecs", "OursCodec"),
    "cloud-files-codec": ("clients.gzip_codecs", "OriginalCodec"),
}

#: A short description of each client, for the report.
DESCRIPTIONS: dict[str, str] = {
    "ours": "cloudfiles_dask.CloudFiles(num_threads=20)",
    "cloud-files": "the original CloudFiles (PyPI cloud-files), num_threads=20",
    "obstore-async": "obstore async calls, 64 in flight (asyncio.gather + semaphore)",
    "obstore-sync": "obstore sync calls from a ThreadPoolExecutor of 20 threads",
    "boto3-threads": "plain boto3 client, ThreadPoolExecutor of 20 threads (pool 20)",
    "gcs-threads": "plain google-cloud-storage, ThreadPoolExecutor of 20 threads (pool 20)",
    "s3fs": "s3fs bulk calls (cat/pipe/rm, fsspec's batched gather for exists)",
    "gcsfs": "gcsfs bulk calls (cat/pipe/rm, fsspec's batched gather for exists)",
    "dask-1": "cloudfiles_dask.dask.transfer on a LocalCluster of 1 worker process (2 Dask threads, 20 CloudFiles threads per batch)",
    "dask-2": "the same with 2 worker processes",
    "dask-4": "the same with 4 worker processes",
    "plain": "plain Python loop: open().read() / open().write() / os.scandir",
    "zlib": "zlib.decompress(data, wbits=31)",
    "libdeflate": "deflate.gzip_decompress (libdeflate)",
    "ours-codec": "cloudfiles_dask.compression.decompress(data, 'gzip')",
    "cloud-files-codec": "cloudfiles.compression.decompress(data, 'gzip')",
}


def make(name: str, spec: dict):
    module, cls = REGISTRY[name]
    if name.startswith("dask-"):
        spec = {**spec, "workers": int(name.split("-")[1])}
    return getattr(importlib.import_module(module), cls)(spec)
