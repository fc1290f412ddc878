"""What a CloudFiles is: a frozen, picklable configuration, and the backend each process makes
from it.

A :class:`CloudFilesConfig` holds the construction arguments of a ``CloudFiles`` exactly as given
(what pickles and what Dask tokenizes, so equal configurations give equal task keys) and
checks them once, when it is made: a bad argument fails there, naming itself, before any
request. From it each process makes its own backend (clients and connections never cross a
process boundary):

- :meth:`CloudFilesConfig.new_backend` makes a fresh one (a ``CloudFiles`` made in this process
  keeps its own, so a test or a user poking at one backend never reaches another's);
- :func:`process_backend` keeps one per configuration per process, for work that arrives from
  elsewhere (a ``CloudFiles`` unpickled in a worker, a task of ``_engine.distribute``): a
  thousand tasks on one Dask worker share one backend instead of re-reading credentials and
  rebuilding clients a thousand times (the idea of fsspec's instance cache).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .. import paths as _paths
from .. import secrets as _secrets
from .._threads import ThreadRunner, resolve_green
from ..backends.base import Backend, BackendOptions, backend_class, loaded_backend_classes
from ..exceptions import ProcessBoundaryError
from ..monitoring import TransmissionMonitor
from ..paths import ExtractedPath
from ..progress import make_progress
from .ops import Runner

#: Backends :func:`process_backend` keeps per process (least recently used ones are dropped).
MAX_PROCESS_BACKENDS = 128


def resolve_parallel(parallel: int | None) -> int:
    """Processes for a ``parallel=`` argument: None (and a bool, which the original turned into
    an int: True is 1) is 1, 0 is one per core."""
    if parallel is None or isinstance(parallel, bool):
        return 1
    if not isinstance(parallel, int):
        raise TypeError(f"parallel must be an int, got {parallel!r}")
    if parallel < 0:
        raise ValueError(f"parallel must be >= 0 (0 means one process per core), got {parallel}")
    return parallel or (os.cpu_count() or 1)


@dataclass(frozen=True)
class CloudFilesConfig:
    """The arguments of ``CloudFiles(...)``, as given; see ``CloudFiles`` for their meaning.

    Derived values (the normalised cloudpath, the backend class, green threads resolved, ...)
    are computed once, when the configuration is made, and are not part of what pickles.
    """

    cloudpath: str
    progress: Any = False
    green: bool | None = None
    secrets: Any = field(default=None, repr=False)
    num_threads: int = 20
    use_https: bool = False
    endpoint: str | None = None
    parallel: int = 1
    request_payer: str | None = None
    locking: bool | None = None
    lock_dir: str | None = None
    composite_upload_threshold: int = int(1e8)
    no_sign_request: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.num_threads, int) or self.num_threads < 0:
            raise ValueError(f"num_threads must be an int >= 0, got {self.num_threads!r}")
        path = _paths.normalize(self.cloudpath)
        if self.use_https:
            path = _paths.to_https_protocol(path)
        root = _paths.extract(path)
        cls = backend_class(root.protocol)
        options = BackendOptions(
            secrets=self.secrets,
            request_payer=self.request_payer,
            locking=self.use_locks and root.protocol == "file",
            lock_dir=self.lock_dir,
            composite_upload_threshold=int(self.composite_upload_threshold),
            no_sign_request=bool(self.no_sign_request),
            endpoint=self.endpoint,
            num_threads=self.num_threads,
            runner=ThreadRunner(resolve_green(self.green)),
        )
        cls.check_options(root, options)
        if self.endpoint:
            root = root._replace(host=self.endpoint.rstrip("/"))
        derived = {"path": path, "root": root, "backend_class": cls, "options": options,
                   "processes": resolve_parallel(self.parallel)}
        object.__setattr__(self, "_derived", derived)

    # -- derived values -----------------------------------------------------------------------
    @property
    def path(self) -> str:
        """The normalised cloudpath (``CloudFiles.cloudpath``)."""
        return self._derived["path"]

    @property
    def root(self) -> ExtractedPath:
        """The parsed cloudpath the backend is rooted at (the endpoint as its host)."""
        return self._derived["root"]

    @property
    def protocol(self) -> str:
        return self._derived["root"].protocol

    @property
    def backend_class(self) -> type[Backend]:
        return self._derived["backend_class"]

    @property
    def use_green(self) -> bool:
        """Green threads: ``green``, or (None) whether gevent has patched this process."""
        return self._derived["options"].runner.green

    @property
    def use_locks(self) -> bool:
        """Locking asked for: ``locking``, or (None) whether a ``lock_dir`` was given."""
        return bool(self.lock_dir is not None if self.locking is None else self.locking)

    @property
    def processes(self) -> int:
        """The ``parallel`` argument resolved (0: one per core)."""
        return self._derived["processes"]

    @property
    def crosses_processes(self) -> bool:
        """False when the data lives in this process only (mem://): the one test of whether
        work on this configuration may run in another process (see :func:`refuse_elsewhere`)."""
        return self.backend_class.crosses_processes

    # -- backends -----------------------------------------------------------------------------
    def new_backend(self) -> Backend:
        """A fresh backend for this configuration, in this process."""
        return self.backend_class(self.root, self._derived["options"])

    def runner(self, progress: Any = False, total: int | None = None, desc: str = "",
               recording: TransmissionMonitor | None = None) -> Runner:
        """How the engine runs one call: this configuration's threads, progress to ``progress``,
        each unit's flight recorded in ``recording`` when one is given."""
        return Runner(self.num_threads, self.use_green, make_progress(progress, total, desc),
                      recording)

    # -- identity -----------------------------------------------------------------------------
    def shippable(self) -> CloudFilesConfig:
        """This configuration as it may travel to another process: a ``progress`` that is a
        callback or a bar belongs to this process's display and is left behind (False)."""
        if isinstance(self.progress, (bool, str)) or self.progress is None:
            return self
        return dataclasses.replace(self, progress=False)

    def cache_key(self) -> tuple:
        """What makes two configurations' backends interchangeable (credentials by a
        fingerprint, never by value; the display options left out)."""
        return (self.path, self.use_https, self.endpoint, _secrets.fingerprint(self.secrets),
                self.request_payer, self.use_locks, self.lock_dir,
                int(self.composite_upload_threshold), bool(self.no_sign_request),
                self.num_threads, self.use_green)

    def __reduce__(self) -> tuple:
        shipped = self.shippable()
        return CloudFilesConfig, tuple(getattr(shipped, f.name) for f in dataclasses.fields(self))

    def __dask_tokenize__(self) -> tuple:
        return ("cloudfiles_dask.CloudFilesConfig", self.cache_key(), self.shippable().progress,
                self.parallel)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CloudFilesConfig):
            return NotImplemented
        return self.__dask_tokenize__() == other.__dask_tokenize__()

    def __hash__(self) -> int:
        return hash(self.__dask_tokenize__())


# -- one backend per configuration per process -------------------------------------------------
_backends: OrderedDict[tuple, Backend] = OrderedDict()
_backends_lock = threading.Lock()


def process_backend(config: CloudFilesConfig) -> Backend:
    """This process's shared backend for ``config`` (made on first use)."""
    key = config.cache_key()
    with _backends_lock:
        backend = _backends.get(key)
        if backend is not None:
            _backends.move_to_end(key)
            return backend
    backend = config.new_backend()  # outside the lock: it may read credentials files
    with _backends_lock:
        backend = _backends.setdefault(key, backend)
        while len(_backends) > MAX_PROCESS_BACKENDS:
            _backends.popitem(last=False)
    return backend


def _forget_backends_after_fork() -> None:
    global _backends_lock
    _backends.clear()  # their clients belong to the parent
    _backends_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_backends_after_fork)


def reset_process_state() -> None:
    """Forget the shared backends, and every loaded backend class's clients, pools and
    sessions (and mem:// data) in this process."""
    with _backends_lock:
        _backends.clear()
    for cls in loaded_backend_classes():
        cls.reset_process_state()


def clear_memory(bucket: str | None = None) -> None:
    """Forget every mem:// object of this process (or those of one bucket)."""
    backend_class("mem").clear(bucket)  # type: ignore[attr-defined]


def refuse_elsewhere(configs: tuple[CloudFilesConfig, ...] | list[CloudFilesConfig],
                     elsewhere: str) -> None:
    """The process-boundary check: raise ProcessBoundaryError, before anything runs, if work on
    one of ``configs`` would run ``elsewhere`` (a phrase naming the other processes) while its
    data lives in this process only."""
    for config in configs:
        if not config.crosses_processes:
            raise ProcessBoundaryError(
                f"{config.path} lives in the memory of one process (mem://), but {elsewhere} "
                f"cannot see it; use file:// or a cloud store there, or threads in the process "
                f"that holds the data."
            )
