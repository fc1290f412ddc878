"""The resumable transfers under the module name of the original (``cloudfiles.resumable_tools``);
they live in :mod:`cloudfiles_dask.resumable`."""

from .resumable import LedgerError, ResumableFileSet, ResumableTransfer

__all__ = ["LedgerError", "ResumableFileSet", "ResumableTransfer"]
