"""The CloudFiles facade: the public API of the original CloudFiles, over the engine."""

from __future__ import annotations

import dataclasses
import itertools
import os
import posixpath
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from . import _locks
from . import paths as _paths
from ._engine import distribute, jobs, ops
from ._engine.config import CloudFilesConfig, process_backend, refuse_elsewhere, resolve_parallel
from ._engine.jobs import PutOptions, TransferOptions
from ._engine.legacy import InterfaceAdapter
from ._iteration import batched
from .dask import cluster as _dask_cluster
from .dask import collections as _dask_collections
from .jupyter import browser as _jupyter_browser
from .lib import jsonify
from .monitoring import IOEnum, TransmissionMonitor
from .progress import listing

if TYPE_CHECKING:
    from .backends.base import Backend
    from .paths import ExtractedPath
    from .progress import Progress

_JSON_TYPE = "application/json"


def _loads(data: bytes | None) -> Any:
    if data is None:
        return None
    import orjson

    return orjson.loads(data)


class _Setting:
    """A public attribute of CloudFiles read from its configuration (``read`` gives the resolved
    value). Setting it makes a new configuration, checked as the constructor checks it, and the
    next call makes a new backend from it."""

    def __init__(self, read: Callable[[CloudFilesConfig], Any] | None = None):
        self.read = read

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, cf: CloudFiles | None, owner: type | None = None) -> Any:
        if cf is None:
            return self
        return self.read(cf._config) if self.read else getattr(cf._config, self.name)

    def __set__(self, cf: CloudFiles, value: Any) -> None:
        cf._config = dataclasses.replace(cf._config, **{self.name: value})
        cf._backend = None


class CloudFiles:
    """Threaded bulk access to every file under one cloudpath.

    Keys passed to every method are relative to ``cloudpath``. A single key gives a single
    answer (bytes, bool, int, dict or None); an iterable of keys (list, generator, ...) gives a
    list (``get``) or a ``{key: value}`` dict (``exists``, ``size``, ``head``).

    A CloudFiles is its configuration (:attr:`config`, a frozen
    :class:`~cloudfiles_dask._engine.config.CloudFilesConfig`): it pickles as that (never its
    connections), so it can be sent to other processes and Dask workers, where CloudFiles of
    one configuration share one backend per process; equal configurations give equal Dask
    tokens. Each process makes its own clients lazily.
    """

    cloudpath = _Setting(lambda config: config.path)
    progress = _Setting()
    green = _Setting(lambda config: config.use_green)
    secrets = _Setting()
    num_threads = _Setting()
    parallel = _Setting(lambda config: config.processes)
    request_payer = _Setting()
    locking = _Setting(lambda config: config.use_locks)
    composite_upload_threshold = _Setting(lambda config: int(config.composite_upload_threshold))
    no_sign_request = _Setting(lambda config: bool(config.no_sign_request))

    def __init__(
        self,
        cloudpath: str,
        progress: Any = False,
        green: bool | None = None,
        secrets: Any = None,
        num_threads: int = 20,
        use_https: bool = False,
        endpoint: str | None = None,
        parallel: int = 1,
        request_payer: str | None = None,
        locking: bool | None = None,
        lock_dir: str | None = None,
        composite_upload_threshold: int = int(1e8),
        no_sign_request: bool = False,
    ):
        arguments = dict(locals())  # the signature above, as given: the configuration
        del arguments["self"]
        self._config = CloudFilesConfig(**arguments)
        self._backend: Backend | None = None
        self._backend_pid = -1
        self._shared = False  # True once unpickled: backends shared per configuration

    @property
    def config(self) -> CloudFilesConfig:
        """The frozen configuration of this CloudFiles (what it pickles as)."""
        return self._config

    # -- pickling and repr ------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        return {"config": self._config, "pid": os.getpid()}

    def __setstate__(self, state: dict) -> None:
        self._config = state["config"]
        self._backend = None
        self._backend_pid = -1
        self._shared = True
        if state["pid"] != os.getpid():
            refuse_elsewhere([self._config], f"process {os.getpid()} (it was sent there from "
                                             f"process {state['pid']})")

    def __dask_tokenize__(self) -> tuple:
        return ("cloudfiles_dask.CloudFiles", self._config.__dask_tokenize__())

    def __repr__(self) -> str:
        config = self._config
        shown = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
                 if f.name != "cloudpath" and getattr(config, f.name) != f.default}
        if "secrets" in shown:
            shown["secrets"] = "<hidden>"
        extra = "".join(f", {k}={v!r}" for k, v in shown.items())
        return f"CloudFiles({self.cloudpath!r}{extra})"

    # -- plumbing -------------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        """This process's backend, made on first use (and again after a fork)."""
        pid = os.getpid()
        if self._backend is None or self._backend_pid != pid:
            config = self._config
            self._backend = process_backend(config) if self._shared else config.new_backend()
            self._backend_pid = pid
        return self._backend

    @property
    def protocol(self) -> str:
        return self._config.protocol

    @property
    def _path(self) -> ExtractedPath:
        return self._config.root

    @property
    def sep(self) -> str:
        return os.sep if self.protocol == "file" else "/"

    def _runner(self, progress: Any, total: int | None, desc: str,
                recording: TransmissionMonitor | None = None) -> ops.Runner:
        return self._config.runner(self.progress if progress is None else progress, total, desc,
                                   recording)

    def _parallel(self, parallel: int | None) -> int:
        return self.parallel if parallel is None else resolve_parallel(parallel)

    def _in_processes(self, processes: int, task: Callable[..., Any], items: Any,
                      total: int | None, progress: Progress, *params: Any) -> list[Any]:
        """``task(batch, config, *params)`` over batches of ``items`` in ``processes`` spawned
        processes (the seam of ``_engine.distribute``); the results in batch order."""
        with distribute.ProcessExecutor(processes) as executor:
            executor.check_boundary([self._config])
            batches = batched(items, distribute.batch_size_for(total, processes))
            return distribute.run_batches(executor, task, batches, self._config, *params,
                                          on_done=lambda batch, _: progress.advance(len(batch)))

    # -- reads ------------------------------------------------------------------------------------------
    def get(
        self,
        paths: Any,
        total: int | None = None,
        raw: bool = False,
        progress: Any = None,
        parallel: int | None = None,
        return_dict: bool = False,
        raise_errors: bool = True,
        part_size: int | None = None,
        return_recording: bool = False,
        dask: str | None = None,
    ) -> Any:
        """Download and decode.

        A key (str, or ``{"path", "start", "end", "tags"}`` dict) gives its bytes, or None if it
        does not exist. An iterable gives a list of ``{path, content, byte_range, error, compress,
        raw, tags}`` dicts in input order; with ``return_dict=True`` a ``{path: content}`` dict
        (for one key too). ``start``/``end`` follow Python slice rules (end exclusive, negatives
        count from the end) on the *stored* bytes, so a range of a compressed object needs
        ``raw=True``. ``raise_errors=False`` stores each item's exception in ``error`` instead of
        raising. ``part_size``: the part size of objects uploaded in parts of an unusual size,
        to check their multipart ETags. ``return_recording=True`` returns ``(result,
        TransmissionMonitor)``: the record of every object's flight.

        ``dask="bag"`` or ``dask="delayed"`` returns, instead of the data, the Dask collection
        that fetches it (:meth:`to_bag`, :meth:`to_delayed`; ``pip install
        'cloudfiles-dask[dask]'``): items are always the result dicts, a single key giving a
        one-item collection. ``total`` and ``progress`` are ignored there; ``return_dict``,
        ``return_recording`` and ``parallel`` > 1 are refused (ValueError).
        """
        if dask is not None:
            _dask_collections.refuse_options(
                "get(dask=...)", return_dict=return_dict, return_recording=return_recording,
                parallel=parallel not in (None, 1))
            return _dask_collections.collection(
                self, paths if jobs.is_many(paths) else [paths], dask, raw=raw,
                raise_errors=raise_errors, part_size=part_size)
        recording = TransmissionMonitor(IOEnum.RX) if return_recording else None
        if not jobs.is_many(paths):
            unit = jobs.read_unit(paths)
            if recording is None:
                content = ops.get_one(self.backend, unit, raw, part_size)["content"]
            else:
                with self._runner(False, 1, "Downloading", recording) as runner:
                    content = ops.get_many(self.backend, [unit], raw, runner, True, part_size)[0]["content"]
            result = {unit.path: content} if return_dict else content
            return (result, recording) if recording is not None else result
        raise_errors = raise_errors or return_dict
        total = jobs.known_length(paths, total)
        with self._runner(progress, total, "Downloading", recording) as runner:
            parallel = self._parallel(parallel)
            if parallel > 1:
                batches = self._in_processes(parallel, distribute.get_batch, paths, total,
                                             runner.progress, raw, raise_errors, part_size,
                                             recording is not None)
                results = list(itertools.chain.from_iterable(found for found, _ in batches))
                recording = _merged(recording, [record for _, record in batches])
            else:
                units = map(jobs.read_unit, paths)
                units = list(units) if total is not None else units
                results = ops.get_many(self.backend, units, raw, runner, raise_errors, part_size)
        if return_dict:
            results = {r["path"]: r["content"] for r in results}
        return (results, recording) if recording is not None else results

    def to_bag(
        self,
        paths: Any = None,
        *,
        prefix: str = "",
        raw: bool = False,
        output: str = "result",
        raise_errors: bool = True,
        part_size: int | None = None,
        partition_size: int | None = None,
        partition_bytes: int = _dask_collections.PARTITION_BYTES,
    ) -> Any:
        """A ``dask.bag.Bag`` of the reads of many keys (``pip install 'cloudfiles-dask[dask]'``).

        ``paths``: keys, ``{"path", "start", "end", "tags"}`` dicts (as :meth:`get` takes) or
        ``(key, size)`` pairs (as ``list(size=True)`` gives), from a list or a generator; None
        lists every key under ``prefix`` here, once, with its size, and no request per key.
        Partitions hold at most ``partition_size`` keys (default: about two partitions per Dask
        thread of the current client, or per core without one, 20 to 1000 keys each) and at
        most ``partition_bytes`` bytes of known sizes (listed sizes, byte ranges; an object
        larger than that is a partition of its own), in input order. Each partition is fetched on its worker by the threaded
        :meth:`get` (``num_threads`` threads).

        ``output``: ``"result"`` (the result dicts of :meth:`get`: ``path``, ``content``,
        ``error``, ``byte_range``, ``compress``, ``raw``, ``tags``), ``"content"`` (the bytes,
        None when missing) or ``"json"`` (the parsed JSON, None when missing). ``raw``,
        ``raise_errors`` and ``part_size`` mean what they mean for :meth:`get` (a missing key is
        content None, not an error; with ``raise_errors=False`` an error is stored in its
        result's ``error``).

        Task names are deterministic (``cloudfiles-get-<token>`` of the configuration, the keys
        and the options). On ``mem://`` with a current ``distributed.Client`` whose workers are
        other processes: ProcessBoundaryError, before anything runs.
        """
        return _dask_collections.to_bag(
            self, paths, prefix=prefix, raw=raw, output=output, raise_errors=raise_errors,
            part_size=part_size, partition_size=partition_size, partition_bytes=partition_bytes)

    def to_delayed(self, paths: Any = None, **options: Any) -> list[Any]:
        """A list of ``dask.delayed`` objects, one per partition of :meth:`to_bag` (same
        arguments), each computing to that partition's list of results."""
        return _dask_collections.to_delayed(self, paths, **options)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            listing = self.list()
            if key != slice(None):
                listing = itertools.islice(listing, key.start, key.stop, key.step)
            return self.get(list(listing))
        if isinstance(key, tuple):
            if len(key) != 2 or not isinstance(key[1], slice) or key[1].step not in (None, 1):
                raise KeyError(f"Use cf[key] or cf[key, start:end]; got {key!r}")
            return self.get({"path": key[0], "start": key[1].start, "end": key[1].stop})
        return self.get(key)

    def get_json(self, paths: Any, total: int | None = None) -> Any:
        """Download and decode JSON; an iterable gives a list in input order (None for missing)."""
        if not jobs.is_many(paths):
            return _loads(self.get(paths))
        paths = list(paths)
        contents = self.get(paths, total=total, return_dict=True)
        return [_loads(contents[jobs.read_unit(p).path]) for p in paths]

    def exists(self, paths: Any, total: int | None = None, progress: Any = None) -> Any:
        """True/False for a key; ``{key: bool}`` for an iterable."""
        if not jobs.is_many(paths):
            return ops.call(self.backend, self.backend.exists_many, [paths])[paths]
        total = jobs.known_length(paths, total)
        with self._runner(progress, total, "Existence testing") as runner:
            return ops.exists_many(self.backend, paths, runner)

    def head(self, paths: Any, total: int | None = None, progress: Any = None) -> Any:
        """Metadata dict (or None if missing) for a key; ``{key: dict | None}`` for an iterable."""
        return self._per_key(self.backend.head, paths, total, progress, "Head")

    def size(self, paths: Any, total: int | None = None, progress: Any = None, return_sum: bool = False) -> Any:
        """Stored (encoded) size in bytes, None if missing; ``{key: size}`` for an iterable.

        ``return_sum=True`` gives the total of the sizes that exist (missing files count as 0).
        """
        sizes = self._per_key(self.backend.size, paths, total, progress, "Size")
        if not return_sum:
            return sizes
        values = sizes.values() if isinstance(sizes, dict) else [sizes]
        return sum(v for v in values if v is not None)

    def _per_key(self, fn: Any, paths: Any, total: int | None, progress: Any, desc: str) -> Any:
        if not jobs.is_many(paths):
            return ops.call(self.backend, fn, paths)
        total = jobs.known_length(paths, total)
        with self._runner(progress, total, desc) as runner:
            return ops.per_key(self.backend, fn, paths, runner)

    def get_acl(self, paths: Any, total: int | None = None, progress: Any = None,
                return_recording: bool = False) -> Any:
        """``{key: access control}`` (one key or many, as the original): S3's GetObjectAcl answer,
        GCS's ACL entries, a local file's mode bits, None on mem:// and for missing files."""
        keys = paths if jobs.is_many(paths) else [paths]
        recording = TransmissionMonitor(IOEnum.RX) if return_recording else None
        total = jobs.known_length(keys, total)
        with self._runner(progress, total, "Fetching ACLs", recording) as runner:
            acls = ops.per_key(self.backend, self.backend.get_acl, keys, runner)
        return (acls, recording) if recording is not None else acls

    def _get_connection(self) -> InterfaceAdapter:
        """The original's storage-interface object, for code that reached below the public API
        (``get_file``, ``put_file``, ``files_exist``, mem://'s ``_data``, ...)."""
        return InterfaceAdapter(self.backend)

    def subtree_size(self, prefix: str | Iterable[str] = "") -> dict[str, int]:
        """``{"N": number of files, "num_bytes": their stored size}`` under one or more prefixes."""
        prefixes = [prefix] if isinstance(prefix, str) else list(prefix)
        count = num_bytes = 0
        for one in prefixes:
            for _, nbytes in self.backend.list(one, flat=False, size=True):
                count += 1
                num_bytes += nbytes or 0
        return {"N": count, "num_bytes": num_bytes}

    def list(
        self,
        prefix: str = "",
        flat: bool = False,
        size: bool = False,
        return_resume_token: bool = False,
        resume_token: str | None = None,
    ) -> Iterator[Any]:
        """Keys starting with ``prefix`` (a string prefix, not a directory), lazily.

        ``flat=True`` lists one level, with sub-directories as ``"name/"`` entries.
        ``size=True`` yields ``(key, size)`` pairs. Compression suffixes of file:// and mem:// are
        stripped. file:// and mem:// are sorted; object stores give the service's (lexicographic)
        order. ``return_resume_token=True`` adds a token to each item (``(key, token)`` or
        ``(key, size, token)``): passing it back as ``resume_token`` restarts a recursive listing
        at the page that item came from (a page may repeat; nothing is skipped). Only S3 and GCS
        have tokens; elsewhere they are None and a listing starts over.
        """
        if return_resume_token or resume_token is not None:
            if flat:
                if resume_token is not None:
                    raise ValueError("resume_token works with recursive listings only (flat=False)")
                listing = ((k, n, None) for k, n in ops.list_keys(self.backend, prefix, flat, size))
            else:
                listing = self.backend.list_resumable(prefix, size, resume_token)
            if not return_resume_token:
                return (k if not size else (k, n) for k, n, _ in listing)
            return ((k, n, t) if size else (k, t) for k, n, t in listing)
        listing = ops.list_keys(self.backend, prefix, flat, size)
        if size:
            return iter(listing)
        return map(itemgetter(0), listing)

    def __iter__(self) -> Iterator[str]:
        return self.list()

    def isdir(self, prefix: str = "") -> bool:
        """True if ``prefix`` is a directory: on file:// a real one, elsewhere a prefix that has
        keys under ``prefix/`` (a file named exactly ``prefix`` does not count)."""
        return self.backend.isdir(prefix)

    # -- writes -------------------------------------------------------------------------------------------
    def puts(
        self,
        files: Any,
        content_type: str | None = None,
        compress: Any = None,
        compression_level: int | None = None,
        cache_control: str | None = None,
        total: int | None = None,
        raw: bool = False,
        progress: Any = None,
        parallel: int | None = None,
        storage_class: str | None = None,
        return_recording: bool = False,
        compute: bool = True,
    ) -> Any:
        """Upload many files; returns how many were written (with ``return_recording=True``,
        ``(count, TransmissionMonitor)``).

        ``files`` holds ``(path, content)`` pairs and/or dicts ``{path, content, content_type,
        compress, compression_level, cache_control, storage_class, raw}`` whose fields override the
        arguments. Content is bytes, str (utf-8) or a binary file handle. ``raw=True`` stores the
        bytes as given and labels them with ``compress`` (they must already be so encoded). A path
        may appear only once per call (ValueError otherwise, before anything is written for lists;
        as soon as it is met for generators).

        ``files`` may be a ``dask.bag.Bag`` of pairs or dicts: each partition is written on its
        worker (threaded, as here; a path twice in one partition is refused before that
        partition writes), on the current ``distributed.Client``, or without one on Dask's
        default scheduler for the bag; returns the number of files written, or with
        ``compute=False`` a ``dask.bag.Item`` of it. Its tasks are named anew at each call.
        ``progress`` advances as partitions finish (with their workers on a cluster); ``total``
        is ignored for a bag; ``parallel`` > 1 and ``return_recording`` are refused
        (ValueError).
        """
        if _dask_collections.is_bag(files):
            _dask_collections.refuse_options("puts(bag)", return_recording=return_recording,
                                             parallel=parallel not in (None, 1))
            return _dask_collections.puts(self, files, content_type, compress, compression_level,
                                          cache_control, storage_class, raw, compute=compute,
                                          progress=self.progress if progress is None else progress)
        if jobs.is_single_put(files):
            files = [files]
        options = PutOptions(content_type, compress, compression_level, cache_control,
                             storage_class, raw)
        total = jobs.known_length(files, total)
        parallel = self._parallel(parallel)
        recording = TransmissionMonitor(IOEnum.TX) if return_recording else None
        with self._runner(progress, total, "Uploading", recording) as runner:
            if parallel > 1:
                if total is not None:
                    files = list(files)
                    _ = list(jobs.unique_put_units(files, options))  # refused before any write
                batches = self._in_processes(parallel, distribute.put_batch, files, total,
                                             runner.progress, options, recording is not None)
                written = sum(count for count, _ in batches)
                recording = _merged(recording, [record for _, record in batches])
            else:
                units = jobs.unique_put_units(files, options)
                if total is not None:
                    units = list(units)  # validates every item before the first write
                written = ops.put_many(self.backend, units, runner)
        return (written, recording) if recording is not None else written

    def put(
        self,
        path: str,
        content: Any,
        content_type: str | None = None,
        compress: Any = None,
        compression_level: int | None = None,
        cache_control: str | None = None,
        raw: bool = False,
        storage_class: str | None = None,
    ) -> int:
        """Upload one file (see :meth:`puts`); returns 1."""
        options = PutOptions(content_type, compress, compression_level, cache_control,
                             storage_class, raw)
        unit = next(jobs.put_units([(path, content)], options))
        ops.require_writable(self.backend)
        ops.put_one(self.backend, unit)
        return 1

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, slice):
            if key != slice(None):
                raise KeyError("Only cf[:] = other transfers everything; other slices are not supported.")
            self.transfer_from(value)
            return
        self.put(key, value)

    def put_json(
        self,
        path: str,
        content: Any,
        compress: Any = None,
        compression_level: int | None = None,
        cache_control: str | None = None,
        storage_class: str | None = None,
    ) -> int:
        """Serialise ``content`` with orjson and upload it as application/json."""
        return self.put(
            path,
            jsonify(content),
            content_type=_JSON_TYPE,
            compress=compress,
            compression_level=compression_level,
            cache_control=cache_control,
            storage_class=storage_class,
        )

    def put_jsons(
        self,
        files: Any,
        compress: Any = None,
        compression_level: int | None = None,
        cache_control: str | None = None,
        total: int | None = None,
        raw: bool = False,
        progress: Any = None,
        parallel: int | None = None,
        storage_class: str | None = None,
        return_recording: bool = False,
        compute: bool = True,
    ) -> Any:
        """:meth:`puts` for JSON-serialisable contents (application/json; cache_control honoured).
        A ``dask.bag.Bag`` is serialised and written on the workers, as :meth:`puts` does."""
        if _dask_collections.is_bag(files):
            _dask_collections.refuse_options("put_jsons(bag)", return_recording=return_recording,
                                             parallel=parallel not in (None, 1))
            return _dask_collections.put_jsons(
                self, files, compress, compression_level, cache_control, storage_class, raw,
                compute=compute, progress=self.progress if progress is None else progress)
        if jobs.is_single_put(files):
            files = [files]

        def serialised() -> Iterator[Any]:
            for item in files:
                if isinstance(item, dict):
                    yield {**item, "content": jsonify(item["content"]), "content_type": _JSON_TYPE}
                else:
                    path, content = item
                    yield {"path": path, "content": jsonify(content), "content_type": _JSON_TYPE}

        return self.puts(
            serialised(),
            content_type=_JSON_TYPE,
            compress=compress,
            compression_level=compression_level,
            cache_control=cache_control,
            total=jobs.known_length(files, total),
            raw=raw,
            progress=progress,
            parallel=parallel,
            storage_class=storage_class,
            return_recording=return_recording,
        )

    def delete(self, paths: Any, total: int | None = None, progress: Any = None, parallel: int | None = None) -> int:
        """Delete files (missing ones are fine); returns the number of paths processed."""
        if not jobs.is_many(paths):
            paths = [paths]
        total = jobs.known_length(paths, total)
        parallel = self._parallel(parallel)
        with self._runner(progress, total, "Deleting") as runner:
            if parallel > 1:
                return sum(self._in_processes(parallel, distribute.delete_batch, paths, total,
                                              runner.progress))
            return ops.delete_many(self.backend, paths, runner)

    def __delitem__(self, key: str) -> None:
        self.delete(key)

    def touch(self, paths: Any, progress: Any = None, total: int | None = None,
              nocopy: bool = False) -> None:
        """Create missing files empty. On file:// and mem:// existing files get a new mtime; object
        stores leave existing objects untouched (refreshing them would cost a copy each, so
        ``nocopy``, which asks for exactly that, changes nothing; the original ignores it too)."""
        if not jobs.is_many(paths):
            paths = [paths]
        ops.require_writable(self.backend)
        with self._runner(progress, jobs.known_length(paths, total), "Touching") as runner:
            for batch in batched(paths, 1000):
                ops.call(self.backend, self.backend.touch, batch)
                runner.progress.advance(len(batch))

    # -- transfers ------------------------------------------------------------------------------------------
    def transfer_to(
        self,
        cf_dest: CloudFiles | str,
        paths: Any = None,
        block_size: int = 64,
        reencode: Any = None,
        content_type: str | None = None,
        allow_missing: bool = False,
        progress: Any = None,
        resumable: bool = False,
        client: Any = None,
    ) -> TransmissionMonitor:
        """Copy files from here to ``cf_dest`` (a CloudFiles or cloudpath); returns the record of
        the transfer (a TransmissionMonitor, as the original; ``.files`` is how many files were
        written, one flight each).

        ``paths`` (default: everything listed here) holds keys, ``(src, dest)`` pairs or
        ``{"path", "dest_path"}`` dicts. The stored encoding is kept when ``reencode`` is None (the
        default); a codec name re-encodes; ``False``/``""``/``"none"`` stores the data decoded. A missing source
        raises FileNotFoundError unless ``allow_missing`` (then an empty file is written).

        How the bytes move (first that applies; all but the last only when ``reencode`` is None):
        a server-side copy (s3->s3 on one endpoint with the same credentials, gs->gs; file->file
        and mem->mem copy locally); a download to file:// streamed to disk in chunks and checked
        against the service checksum; an upload from file:// read from the file handle
        (multipart / composite above ``composite_upload_threshold``); otherwise blocks of
        ``block_size`` objects read into memory, re-encoded if asked, and written.

        ``resumable=True`` makes downloads to file:// resumable: the bytes collect in a hidden
        ``.<name>.cfdask-partial`` file next to the destination, kept if the download is
        interrupted; a retry or a later run asks only for the missing bytes, then the whole file
        is verified (checksum where the service gives one, and size) and renamed into place.
        Other strategies ignore it. Into file://, a resumable transfer also removes, before it
        returns, the temporary files that killed writers left in the directories it wrote into
        (a process of this machine that no longer runs; another machine's only when untouched
        for a day), never one a live writer owns.

        ``client``: a ``distributed.Client``: the files are copied in batches by tasks of that
        Dask cluster (see :func:`cloudfiles_dask.dask.transfer`), the records of the batches
        merged into the one returned.
        """
        options = TransferOptions(block_size, reencode, content_type, allow_missing, resumable)
        return _as_cloudfiles(cf_dest)._transfer(self, paths, options, progress, client)

    def transfer_from(
        self,
        cf_src: CloudFiles | str,
        paths: Any = None,
        block_size: int = 64,
        reencode: Any = None,
        content_type: str | None = None,
        allow_missing: bool = False,
        progress: Any = None,
        resumable: bool = False,
        client: Any = None,
    ) -> TransmissionMonitor:
        """Copy files from ``cf_src`` to here; see :meth:`transfer_to`."""
        options = TransferOptions(block_size, reencode, content_type, allow_missing, resumable)
        return self._transfer(_as_cloudfiles(cf_src), paths, options, progress, client)

    def _transfer(self, src: CloudFiles, paths: Any, options: TransferOptions,
                  progress: Any, client: Any = None) -> TransmissionMonitor:
        if client is not None:  # batches of files as tasks of a Dask cluster
            return _dask_cluster.transfer_on(client, src, self, paths, options,
                                             self.progress if progress is None else progress)
        listed = paths is None
        if listed:
            paths = src.list()
        elif not jobs.is_many(paths):
            paths = [paths]
        total = jobs.known_length(paths)
        recording = TransmissionMonitor(IOEnum.TX)
        # a resumed transfer clears what killed writers left in the directories it writes into
        dirs: set[str] | None = set() if options.resumable and self.backend.local_files else None
        with self._runner(progress, total, "Transferring", recording) as runner:
            if listed:  # listed while transferring: the display tells the two phases apart
                paths = listing(runner.progress, paths)
            pairs = jobs.transfer_pairs(paths)
            if dirs is not None:
                pairs = ops.noting_dirs(pairs, dirs)
            ops.transfer(src.backend, self.backend, pairs, runner, options)
        if dirs:
            ops.remove_orphans(self.backend, dirs)
        return recording

    # -- debris ---------------------------------------------------------------------------------------
    def sweep(self, prefix: str = "", older_than: float = ops.SWEEP_AGE, delete: bool = False) -> list[dict]:
        """What interrupted writes (a process killed, a machine lost) left under ``prefix``,
        created at least ``older_than`` seconds ago (default: an hour); with ``delete=True``
        each one is removed, except those a live writer of this machine still owns.

        Found, by protocol: file:// the hidden temporary files of atomic writes
        (``.cfdask-tmp-<host>-<pid>-<ms>-<random>``) and the partial files of resumable
        downloads (``.<name>.cfdask-partial``; removing one only loses the bytes a later
        download would have continued from); s3:// unfinished multipart uploads (their parts
        are billed until aborted); gs:// the parts of composite uploads. mem:// leaves nothing;
        http(s):// is read-only. The age protects the writers nothing can see (another
        machine's): choose it longer than any one object takes to write.

        Returns one dict per item found: ``kind`` (``temp-file``, ``partial-download``,
        ``multipart-upload``, ``composite-part``), ``key`` (the key it was becoming, None when
        it cannot be told), ``url`` (that key's cloudpath), ``handle`` (the file's path, the
        upload id, the part's key), ``size`` (bytes), ``created`` (Unix seconds), ``age``
        (seconds), ``owner`` (``host:pid`` when known), ``live`` (its writer still runs here:
        never removed), ``orphaned`` (its writer is known to have ended) and ``removed``. The
        same from the command line: ``cloudfiles sweep PATH [--older-than 2h] [--delete]``.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
        if isinstance(older_than, bool) or not isinstance(older_than, (int, float)) \
                or not older_than >= 0 or older_than == float("inf"):
            raise ValueError(f"older_than must be a number of seconds >= 0, got {older_than!r}")
        with self._runner(False, None, "Sweeping") as runner:
            return ops.sweep(self.backend, prefix, float(older_than), bool(delete), runner)

    def move(self, src: str, dest: str) -> int:
        """Move key ``src`` to the full cloudpath ``dest``."""
        return self.moves(_paths.dirname(dest), [(src, _paths.basename(dest))])

    def moves(
        self,
        cf_dest: CloudFiles | str,
        paths: Any,
        block_size: int = 64,
        total: int | None = None,
        progress: Any = None,
    ) -> int:
        """Move keys (or ``(src, dest)`` pairs) to ``cf_dest``: a rename on the same local disk or
        in memory, otherwise copy then delete, block by block. Returns the number moved."""
        dest = _as_cloudfiles(cf_dest)
        if not jobs.is_many(paths) or (isinstance(paths, tuple) and len(paths) == 2 and isinstance(paths[0], str)):
            paths = [paths]
        with self._runner(progress, jobs.known_length(paths, total), "Moving") as runner:
            return ops.move(self.backend, dest.backend, jobs.transfer_pairs(paths), runner, block_size)

    # -- path helpers ---------------------------------------------------------------------------------------
    def join(self, *parts: str) -> str:
        return (os.path.join if self.protocol == "file" else posixpath.join)(*parts)

    def dirname(self, path: str) -> str:
        return (os.path.dirname if self.protocol == "file" else posixpath.dirname)(path)

    def basename(self, path: str) -> str:
        return (os.path.basename if self.protocol == "file" else posixpath.basename)(path)

    def abspath(self, path: str) -> str:
        """The full cloudpath of key ``path`` (protocol path: without a format prefix)."""
        return self.sep.join((_paths.asprotocolpath(self._config.root).rstrip(self.sep), path))

    @property
    def lock_dir(self) -> str | None:
        """The lock directory used on file:// when locking is on (created on first use)."""
        if not (self.locking and self.protocol == "file"):
            return None
        return self.backend.lock_dir

    def clear_locks(self) -> int:
        """Delete every lock file in the lock directory; returns how many were removed."""
        return _locks.clear_locks(_locks.resolve_lock_dir(self._config.lock_dir))

    def browse(self, **options: Any) -> Any:
        """A file-manager widget over this CloudFiles in a notebook (``pip install
        'cloudfiles-dask[jupyter]'``): :class:`~cloudfiles_dask.jupyter.Browser` (its keyword
        arguments: ``prefix``, ``page_size``, ``preview_bytes``, ...)."""
        return _jupyter_browser.Browser(self, **options)


def _merged(recording: TransmissionMonitor | None,
            records: list[TransmissionMonitor | None]) -> TransmissionMonitor | None:
    """The records of a call's batches as one (None when the call records nothing)."""
    if recording is None:
        return None
    return TransmissionMonitor.merge([recording, *(record for record in records if record is not None)])


def _as_cloudfiles(value: CloudFiles | str) -> CloudFiles:
    return value if isinstance(value, CloudFiles) else CloudFiles(value)

