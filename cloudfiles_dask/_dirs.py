"""Where cloudfiles-dask keeps its own files. Read from the environment at call time."""

from __future__ import annotations

import os


def cloud_files_dir() -> str:
    """``$CLOUD_FILES_DIR`` or ``~/.cloudfiles``: aliases.json, secrets/, locks/."""
    return os.path.expanduser(os.environ.get("CLOUD_FILES_DIR", "~/.cloudfiles"))


def cloud_volume_dir() -> str:
    """``$CLOUD_VOLUME_DIR`` or ``~/.cloudvolume``: the historical secrets location."""
    return os.path.expanduser(os.environ.get("CLOUD_VOLUME_DIR", "~/.cloudvolume"))


def default_lock_dir() -> str:
    """``$CLOUD_FILES_LOCK_DIR``, else ``$CLOUD_FILES_DIR/locks``."""
    explicit = os.environ.get("CLOUD_FILES_LOCK_DIR")
    if explicit:
        return os.path.expanduser(explicit)
    return os.path.join(cloud_files_dir(), "locks")


def alias_file() -> str:
    return os.path.join(cloud_files_dir(), "aliases.json")
