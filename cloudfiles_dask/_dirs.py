"""Where cloudfiles-dask keeps its own files. Read from the environment at call time."""

from __future__ import annotations

import os


def cloud_files_dir() -> str:
    """``$CLOUD_FILES_DIR`` or ``~/.cloudfiles``: aliases.json, secrets/, locks/."""
    return os.path.expanduser(os.environ.get("CLOUD_FILES_DIR", "~/.cloudfiles"))


def cloud_volume_dir() -> str:
    """``$CLOUD_VOLUME_DIR`` or ``~/.cloudvolume``: the historical secrets location."""
    return os.path.expanduser(os.environ.get("CLOUD_VOLUME_DIR", "~/.cloudvolume"))


def lock_dir_from_env() -> str | None:
    """``$CLOUD_FILES_LOCK_DIR`` (``~`` expanded), or None when it is unset or empty."""
    explicit = os.environ.get("CLOUD_FILES_LOCK_DIR")
    return os.path.expanduser(explicit) if explicit else None


def default_lock_dir() -> str:
    """``$CLOUD_FILES_LOCK_DIR``, else ``$CLOUD_FILES_DIR/locks``."""
    return lock_dir_from_env() or os.path.join(cloud_files_dir(), "locks")


def alias_file() -> str:
    """``$CLOUD_FILES_DIR/aliases.json``: the persistent aliases."""
    return os.path.join(cloud_files_dir(), "aliases.json")
