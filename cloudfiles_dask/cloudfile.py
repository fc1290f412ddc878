"""CloudFile: one file, by its full cloudpath. And dl(): many full cloudpaths in one call."""

from __future__ import annotations

import posixpath
from typing import Any

from . import paths as _paths
from ._engine import jobs
from .cloudfiles import CloudFiles
from .monitoring import TransmissionMonitor
from .progress import make_progress


class CloudFile:
    """One file addressed by its full cloudpath (``gs://bucket/a/b.bin``, ``/tmp/x``, ...).

    Unlike CloudFiles, ``locking`` defaults to True (file:// only), as in the original.
    With ``cache_meta=True`` the results of :meth:`head` and :meth:`size` are remembered until
    this object writes or deletes the file.
    """

    def __init__(
        self,
        path: str,
        cache_meta: bool = False,
        secrets: Any = None,
        composite_upload_threshold: int = int(1e8),
        locking: bool = True,
        lock_dir: str | None = None,
        endpoint: str | None = None,
        no_sign_request: bool = False,
        request_payer: str | None = None,
        use_https: bool = False,
    ):
        path = _paths.normalize(path)
        self.cf = CloudFiles(
            _paths.dirname(path),
            secrets=secrets,
            composite_upload_threshold=composite_upload_threshold,
            locking=locking,
            lock_dir=lock_dir,
            endpoint=endpoint,
            no_sign_request=no_sign_request,
            request_payer=request_payer,
            use_https=use_https,
        )
        self.cloudpath = path
        self.filename = _paths.basename(path)
        if not self.filename:
            raise ValueError(f"CloudFile needs a path to a file, not a directory: {path!r}")
        self.cache_meta = cache_meta
        self._head: dict | None = None
        self._size: int | None = None

    def __repr__(self) -> str:
        return f"CloudFile({self.cloudpath!r})"

    @property
    def protocol(self) -> str:
        return self.cf.protocol

    @property
    def sep(self) -> str:
        return self.cf.sep

    @property
    def lock_dir(self) -> str | None:
        return self.cf.lock_dir

    def clear_locks(self) -> int:
        return self.cf.clear_locks()

    def _forget(self) -> None:
        self._head = self._size = None

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, ranges: list[Any] | None = None, raw: bool = False) -> Any:
        """The whole file (None if missing); with ``ranges`` (``{"start", "end"}`` dicts or
        slices), a list of ``CloudFiles.get`` result dicts, one per range, in order (as the
        original; each dict's ``content`` holds that range's bytes)."""
        if ranges is None:
            return self.cf.get(self.filename, raw=raw)
        requests = []
        for r in ranges:
            if isinstance(r, slice):
                if r.step not in (None, 1):
                    raise ValueError(f"Byte ranges cannot have a step: {r!r}")
                requests.append({"path": self.filename, "start": r.start, "end": r.stop})
            else:
                requests.append({"path": self.filename, **r})
        return self.cf.get(requests, raw=raw)

    def get_acl(self) -> Any:
        """The file's access control (see :meth:`CloudFiles.get_acl`)."""
        return self.cf.get_acl(self.filename)

    def __getitem__(self, key: slice) -> bytes | None:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"CloudFile supports byte slices f[a:b]; got {key!r}")
        return self.cf.get({"path": self.filename, "start": key.start, "end": key.stop})

    def get_json(self) -> Any:
        return self.cf.get_json(self.filename)

    def head(self) -> dict | None:
        if self._head is None or not self.cache_meta:
            self._head = self.cf.head(self.filename)
        return self._head

    def size(self) -> int | None:
        if self._size is None or not self.cache_meta:
            self._size = self.cf.size(self.filename)
        return self._size

    def __len__(self) -> int:
        size = self.size()
        if size is None:
            raise FileNotFoundError(f"{self.cloudpath} does not exist")
        return size

    def exists(self) -> bool:
        return self.cf.exists(self.filename)

    # -- writes --------------------------------------------------------------------------------------------
    def put(self, content: Any, *args: Any, **kwargs: Any) -> int:
        self._forget()
        return self.cf.put(self.filename, content, *args, **kwargs)

    def __setitem__(self, key: slice, content: Any) -> None:
        if key != slice(None):
            raise TypeError("Only f[:] = content (replace the whole file) is supported.")
        self.put(content)

    def put_json(self, content: Any, *args: Any, **kwargs: Any) -> int:
        self._forget()
        return self.cf.put_json(self.filename, content, *args, **kwargs)

    def delete(self) -> int:
        self._forget()
        return self.cf.delete(self.filename)

    def touch(self) -> None:
        self._forget()
        self.cf.touch(self.filename)

    def transfer_to(self, cloudpath: str, reencode: Any = None,
                    resumable: bool = False) -> TransmissionMonitor:
        """Copy this file to the full cloudpath ``cloudpath`` (ending in ``/``: same name there).
        The stored encoding is kept unless ``reencode`` names another (False: decoded).
        ``resumable``: see :meth:`CloudFiles.transfer_to`."""
        dest_dir, dest_name = _split(cloudpath, self.filename)
        return self.cf.transfer_to(dest_dir, paths=[(self.filename, dest_name)], reencode=reencode,
                                   resumable=resumable)

    def transfer_from(self, cloudpath: str, reencode: Any = None,
                      resumable: bool = False) -> TransmissionMonitor:
        """Replace this file with a copy of the file at ``cloudpath``."""
        self._forget()
        src_dir, src_name = _split(cloudpath, self.filename)
        return self.cf.transfer_from(src_dir, paths=[(src_name, self.filename)], reencode=reencode,
                                     resumable=resumable)

    def move(self, dest: str) -> int:
        """Move this file to the full cloudpath ``dest``."""
        self._forget()
        return self.cf.move(self.filename, dest)

    def join(self, *parts: str) -> str:
        return self.cf.join(*parts)

    def dirname(self, path: str) -> str:
        return self.cf.dirname(path)

    def basename(self, path: str) -> str:
        return self.cf.basename(path)


def _split(cloudpath: str, default_name: str) -> tuple[str, str]:
    path = _paths.normalize(cloudpath)
    if cloudpath.endswith("/"):
        return path, default_name
    return _paths.dirname(path), _paths.basename(path)


def dl(cloudpaths: Any, raw: bool = False, progress: Any = False, **kwargs: Any) -> Any:
    """Download full cloudpaths that may span buckets and services, in one call.

    A single path (str or ``{"path", "start", "end"}`` dict) gives its bytes (None if missing).
    Many give a list of ``CloudFiles.get`` result dicts in input order, each with a ``fullpath``
    key; ``kwargs`` go to each CloudFiles (secrets, num_threads, ...).
    """
    if not jobs.is_many(cloudpaths):
        unit = jobs.read_unit(cloudpaths)
        ((bucket, entries),) = _paths.find_common_buckets([unit.path]).items()
        request = {"path": entries[0]["path"], "start": unit.start, "end": unit.end}
        return CloudFiles(bucket, **kwargs).get(request, raw=raw)
    groups: dict[str, list[dict]] = {}
    for index, item in enumerate(cloudpaths):
        unit = jobs.read_unit(item)
        ((bucket, entries),) = _paths.find_common_buckets([unit.path]).items()
        groups.setdefault(bucket, []).append(
            {"path": entries[0]["path"], "start": unit.start, "end": unit.end, "tags": (index, unit)}
        )
    results: list[Any] = [None] * sum(len(v) for v in groups.values())
    with make_progress(progress, len(results), "Downloading") as bar:
        for bucket, requests in groups.items():
            for res in CloudFiles(bucket, **kwargs).get(requests, raw=raw, progress=bar):
                index, unit = res["tags"]
                res["tags"] = unit.tags
                res["fullpath"] = posixpath.join(bucket, res["path"])
                results[index] = res
    return results
