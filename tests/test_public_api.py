"""The exported names are pinned, and importing the package stays light."""

from __future__ import annotations

import subprocess
import sys

import cloudfiles_dask


def test_exported_names_are_pinned():
    assert sorted(cloudfiles_dask.__all__) == sorted([
        "AuthorizationError", "CRC32CIntegrityError", "CloudFile", "CloudFiles", "CloudFilesError",
        "CompressionError", "DecompressionError", "IntegrityError", "LedgerError", "MD5IntegrityError",
        "PathEscapeError", "ProcessBoundaryError", "ReadOnlyBackendError", "ResumableFileSet",
        "ResumableTransfer", "StorageError",
        "UnsupportedCompressionType", "UnsupportedProtocolError", "__version__", "clear_memory",
        "dl", "reset_connection_pools",
    ])
    for name in cloudfiles_dask.__all__:
        assert hasattr(cloudfiles_dask, name), name


def test_exceptions_form_one_tree():
    for name in cloudfiles_dask.__all__:
        obj = getattr(cloudfiles_dask, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, cloudfiles_dask.CloudFilesError), name
    assert issubclass(cloudfiles_dask.UnsupportedProtocolError, ValueError)
    assert issubclass(cloudfiles_dask.MD5IntegrityError, cloudfiles_dask.IntegrityError)


def test_import_does_not_load_heavy_modules():
    heavy = ["boto3", "botocore", "google.cloud.storage", "dask", "distributed", "ipywidgets",
             "gevent", "tqdm", "fasteners", "deflate", "brotli", "zstandard", "requests",
             "multiprocessing", "concurrent.futures", "sqlite3"]
    code = (
        "import sys, cloudfiles_dask\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
