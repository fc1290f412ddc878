"""Dask collections over a CloudFiles: bags and delayed objects of reads, writes from a bag.

Reads (:func:`to_bag`, :func:`to_delayed`, ``CloudFiles.get(..., dask="bag" | "delayed")``):
the driver takes the keys (given, or listed once under a prefix with their sizes, one listing
and no request per key), cuts them into partitions by count *and* by bytes (at most
``partition_size`` keys and at most ``partition_bytes`` bytes each; an object larger than that
is a partition of its own), and makes one task per partition. A task takes its worker process's
backend for the configuration (``process_backend``) and fetches its partition with the engine's
threaded get (``num_threads`` threads of the configuration): Dask spreads the partitions over
processes and machines, our threads fan out inside each.

Task names of reads are deterministic: ``cloudfiles-get-<token>``, the token of the
configuration (``CloudFilesConfig.__dask_tokenize__``), the keys, their ranges, tags and sizes,
the partitioning and the options. The same bag built twice has the same name; other keys or
options give another. Writes are side effects: every write task has a name of its own
(``cloudfiles-puts-<uuid4>``), so two identical writes are two writes.

``mem://`` lives in one process: with a current ``distributed.Client`` whose workers are other
processes, building a collection on it raises ``ProcessBoundaryError`` before anything runs;
a task that finds itself in another process than the one that built its graph (Dask's
multiprocessing scheduler, say) raises it too instead of reading an empty store.

Dask is imported on the first call, never when this module is imported.
"""

from __future__ import annotations

import os
import sys
from array import array
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import Any
from uuid import uuid4

from .._engine import distribute, jobs, ops
from .._engine.config import CloudFilesConfig, process_backend, refuse_elsewhere
from .._engine.jobs import PutOptions
from .._iteration import batched_by
from ..lib import jsonify
from ..progress import make_progress
from .cluster import check_count, config_of

_HINT = ("Dask collections need Dask: pip install 'cloudfiles-dask[dask]' "
         "(dask.bag, and distributed for a cluster)")

#: Default partitioning of reads: about two partitions per Dask thread, at most this many keys
#: per partition ...
PARTITION_SIZE = 1000
#: ... and at most this many bytes (known sizes: a listing's, a byte range's).
PARTITION_BYTES = 64 * 1024 * 1024

OUTPUTS = ("result", "content", "json")
KINDS = ("bag", "delayed")
_JSON_TYPE = "application/json"
_LOCAL_SCHEDULERS = {"threads", "threading", "sync", "synchronous", "single-threaded"}


# -- lazy imports --------------------------------------------------------------------------------
def _dask() -> Any:
    try:
        import dask.bag
        import dask.base
        import dask.callbacks
        import dask.highlevelgraph
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError(_HINT) from error
    return dask


def _task_spec() -> tuple[Any, Any]:
    """Dask's ``Task`` and ``TaskRef`` (dask >= 2024.12), or None: then legacy tuples."""
    try:
        from dask._task_spec import Task, TaskRef
    except ImportError:  # pragma: no cover - older Dask
        return None, None
    return Task, TaskRef


def _task(key: Any, fn: Any, *args: Any) -> Any:
    Task, _ = _task_spec()
    return Task(key, fn, *args) if Task is not None else (fn, *args)


def _ref(key: Any) -> Any:
    _, TaskRef = _task_spec()
    return TaskRef(key) if TaskRef is not None else key


# -- what the faces pass -------------------------------------------------------------------------
def is_bag(value: Any) -> bool:
    """A Dask bag, by its shape (no import of Dask): what ``puts``/``put_jsons`` write from."""
    return hasattr(value, "__dask_graph__") and hasattr(value, "map_partitions")


def refuse_options(call: str, **given: Any) -> None:
    """ValueError naming the arguments of ``call`` that do not apply to a Dask collection
    (those given a true value)."""
    bad = [name for name, value in given.items() if value]
    if bad:
        raise ValueError(f"{call}: {', '.join(bad)} do not apply to a Dask collection "
                         f"(Dask spreads the work; use Dask's own progress and diagnostics)")


# -- the process boundary and the workers' threads ----------------------------------------------
def _current_client() -> Any:
    """The ``distributed.Client`` a compute started now would use, or None (no client, or the
    ``scheduler`` setting names a local one). distributed is not imported for this: without it
    imported there is no client."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    import dask

    scheduler = dask.config.get("scheduler", None)
    if scheduler is not None and not (isinstance(scheduler, str)
                                      and scheduler.lower() in ("dask.distributed", "distributed")):
        return None
    try:
        return distributed.get_client()
    except ValueError:
        return None


def _ready(config: CloudFilesConfig) -> tuple[int | None, int]:
    """Before a graph is handed out: with a current client, refuse mem:// on workers in other
    processes (ProcessBoundaryError, nothing has run) and start the engine threads the tasks
    will use on every worker (see ``DaskExecutor.prepare``). Returns the pid the tasks of a
    configuration that lives in one process must run in (None for the others), and the Dask
    threads that will run them (the cluster's, else this machine's cores)."""
    client = _current_client()
    slots = os.cpu_count() or 1
    if client is not None:
        executor = distribute.DaskExecutor(client)
        executor.check_boundary([config])
        executor.prepare([config], config.num_threads)
        slots = executor.slots
    return (None if config.crosses_processes else os.getpid()), slots


def _check_origin(config: CloudFilesConfig, origin: int | None) -> None:
    if origin is not None and origin != os.getpid():
        refuse_elsewhere([config], f"a Dask task in process {os.getpid()} (the graph was built "
                                   f"in process {origin}; compute it with scheduler='threads')")


# -- reads ---------------------------------------------------------------------------------------
def _entries(config: CloudFilesConfig, paths: Any, prefix: str) -> Iterable[tuple[Any, int | None]]:
    """``(item, size or None)`` for each key: listed once under ``prefix`` (with sizes), or the
    given keys: str, ``{"path", "start", "end", "tags"}`` dicts, ``(key, size)`` pairs as
    ``CloudFiles.list(size=True)`` yields them."""
    if paths is None:
        return ops.list_keys(process_backend(config), prefix, False, True)
    if prefix:
        raise ValueError("pass paths or prefix, not both")
    if not jobs.is_many(paths):
        paths = [paths]
    return ((item, None) for item in paths)


def _range_size(start: int | None, end: int | None) -> int | None:
    if start is None:
        return end if end is not None and end >= 0 else None
    if start < 0:
        return -start if end is None else (max(0, end - start) if end < 0 else None)
    return max(0, end - start) if end is not None and end >= 0 else None


def plan(config: CloudFilesConfig, paths: Any = None, prefix: str = "",
         partition_size: int | None = None, partition_bytes: int = PARTITION_BYTES,
         slots: int = 1) -> tuple[list[list[Any]], tuple]:
    """The partitions of a read (lists of keys and range dicts, in input order) and what
    identifies them (for the token). A partition closes when it holds ``partition_size`` keys
    or when the next key would take it past ``partition_bytes`` bytes (an object larger than
    that is a partition of its own); a key of unknown size counts 0 bytes (its count still
    bounds its partition). ``partition_size`` None: about two partitions per Dask thread
    (``slots``), 20 to :data:`PARTITION_SIZE` keys each (``distribute.batch_size_for``)."""
    check_count("partition_size", partition_size)
    check_count("partition_bytes", partition_bytes, optional=False)
    keys: list[str] = []
    ranges: list[str] = []
    tags: list[tuple[int, Any]] = []
    sizes = array("q")

    def entries() -> Iterator[tuple[Any, int]]:
        for index, (item, size) in enumerate(_entries(config, paths, prefix)):
            if isinstance(item, str):
                path = item
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                path, size = item  # (key, size), as CloudFiles.list(size=True) gives
                item = path
                if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
                    raise TypeError(f"the size of {path!r} must be an int or None, got {size!r}")
            else:
                unit = jobs.read_unit(item)  # checks it here, before anything runs
                path = unit.path
                if unit.ranged or unit.tags is not None:
                    item = {"path": path, "start": unit.start, "end": unit.end, "tags": unit.tags}
                    if unit.ranged:
                        ranges.append(f"{index}:{unit.start!r}:{unit.end!r}")
                        size = _range_size(unit.start, unit.end)
                    if unit.tags is not None:
                        tags.append((index, unit.tags))
                else:
                    item = path
            keys.append(path)
            sizes.append(size or 0)
            yield item, size or 0

    listed = list(entries())
    if partition_size is None:
        partition_size = distribute.batch_size_for(len(listed), slots, cap=PARTITION_SIZE)
    parts = [[item for item, _ in part]
             for part in batched_by(listed, partition_size, partition_bytes, itemgetter(1))]
    if not parts:
        parts.append([])
    identity = (keys, ",".join(ranges), tags, sizes.tobytes(), [len(part) for part in parts])
    return parts, identity


def get_partition(items: list[Any], config: CloudFilesConfig, raw: bool, raise_errors: bool,
                  part_size: int | None, output: str, origin: int | None) -> list[Any]:
    """The task of one partition of a read: the engine's threaded get of its keys on this
    worker (``distribute.get_batch``: this process's backend, ``num_threads`` threads), as
    result dicts, contents or parsed JSON, in input order."""
    _check_origin(config, origin)
    try:
        results, _ = distribute.get_batch(items, config, raw, raise_errors, part_size)
    except Exception as error:
        if items and hasattr(error, "add_note"):
            first = items[0] if isinstance(items[0], str) else items[0]["path"]
            error.add_note(f"(in the cloudfiles-get partition starting with {first!r})")
        raise
    if output == "result":
        return results
    if output == "content":
        return [result["content"] for result in results]
    import orjson

    return [None if r["content"] is None else orjson.loads(r["content"]) for r in results]


def to_bag(
    source: Any,
    paths: Any = None,
    *,
    prefix: str = "",
    raw: bool = False,
    output: str = "result",
    raise_errors: bool = True,
    part_size: int | None = None,
    partition_size: int | None = None,
    partition_bytes: int = PARTITION_BYTES,
) -> Any:
    """A ``dask.bag.Bag`` of what ``CloudFiles.get`` gives for each key (see
    ``CloudFiles.to_bag``); ``source`` is a CloudFiles or a cloudpath."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    dask = _dask()
    config = config_of(source).shippable()
    origin, slots = _ready(config)
    parts, identity = plan(config, paths, prefix, partition_size, partition_bytes, slots)
    options = (bool(raw), bool(raise_errors), part_size, output)
    token = dask.base.tokenize("cloudfiles_dask.get", config, identity, options, origin)
    name = f"cloudfiles-get-{token}"
    layer = {(name, i): _task((name, i), get_partition, part, config, *options, origin)
             for i, part in enumerate(parts)}
    graph = dask.highlevelgraph.HighLevelGraph.from_collections(name, layer, dependencies=())
    return dask.bag.Bag(graph, name, len(parts))


def to_delayed(source: Any, paths: Any = None, **options: Any) -> list[Any]:
    """One ``dask.delayed`` object per partition of :func:`to_bag` (same arguments), each
    computing to its partition's list."""
    return to_bag(source, paths, **options).to_delayed(optimize_graph=False)


def collection(source: Any, paths: Any, kind: str, **options: Any) -> Any:
    """``CloudFiles.get(paths, dask=kind)``: :func:`to_bag` or :func:`to_delayed`."""
    if kind not in KINDS:
        raise ValueError(f"dask must be one of {KINDS} (or None for the data), got {kind!r}")
    return (to_bag if kind == "bag" else to_delayed)(source, paths, **options)


# -- writes --------------------------------------------------------------------------------------
def _as_json(item: Any) -> dict:
    if isinstance(item, dict):
        return {**item, "content": jsonify(item["content"]), "content_type": _JSON_TYPE}
    path, content = item
    return {"path": path, "content": jsonify(content), "content_type": _JSON_TYPE}


def put_partition(files: Iterable[Any], config: CloudFilesConfig, options: PutOptions, json: bool,
                  origin: int | None, measured: bool = False) -> list[Any]:
    """The task writing one partition of a bag: the engine's threaded puts on this worker
    (``distribute.put_batch``); a path twice in the partition is refused before any write.
    Returns ``[files written]`` (a bag partition is a list), or for a write someone watches
    (``measured``) ``[(files written, bytes, the worker's address)]``."""
    _check_origin(config, origin)
    files = list(files)
    if json:
        files = [_as_json(item) for item in files]
    _ = list(jobs.unique_put_units(files, options))  # refused before the first write
    written, record = distribute.put_batch(files, config, options, record=measured)
    return [(written, record.total_bytes(), record.origin)] if record is not None else [written]


def put_bag(target: Any, bag: Any, options: PutOptions, *, json: bool = False,
            compute: bool = True, progress: Any = False) -> Any:
    """Write every partition of ``bag`` (``(path, content)`` pairs or put dicts) on the workers;
    the number of files written, or with ``compute=False`` a ``dask.bag.Item`` of it. Each
    call's tasks are named anew (``cloudfiles-puts-<uuid4>``): a write is never mistaken for
    another. ``progress`` (when computed here) advances as partitions finish, with their
    bytes and, on a distributed cluster, their workers."""
    dask = _dask()
    if not isinstance(bag, dask.bag.Bag):
        raise TypeError(f"puts takes a dask.bag.Bag of (path, content) pairs or dicts; got "
                        f"{type(bag).__name__} (a DataFrame: .to_bag(); delayed: "
                        f"dask.bag.from_delayed)")
    config = config_of(target).shippable()
    origin, _ = _ready(config)
    name = f"cloudfiles-{'put_jsons' if json else 'puts'}-{uuid4().hex}"
    watched = compute and progress is not None and progress is not False
    layer = {(name, i): _task((name, i), put_partition, _ref(key), config, options, json, origin,
                              watched)
             for i, key in enumerate(bag.__dask_keys__())}
    graph = dask.highlevelgraph.HighLevelGraph.from_collections(name, layer, dependencies=[bag])
    parts = dask.bag.Bag(graph, name, bag.npartitions)
    if watched:
        return _watched_write(dask, parts, name, progress)
    count = parts.sum()
    return int(count.compute()) if compute else count


def _watched_write(dask: Any, parts: Any, name: str, progress: Any) -> int:
    """Compute the partitions of a write (``put_partition``, measured), advancing a bar as each
    finishes: on the current distributed client as their futures complete, else through the
    local scheduler's callback (on its scheduling thread)."""
    written = 0
    with make_progress(progress, None, "Uploading") as bar:
        client = _current_client()
        if client is not None:
            import distributed

            futures = client.compute(parts.to_delayed())
            for _, result in distributed.as_completed(futures, with_results=True):
                for count, nbytes, where in result:
                    bar.advance(count, nbytes, where)
                    written += count
            return written

        def finished(key: Any, result: Any, *_: Any) -> None:
            if isinstance(key, tuple) and key[0] == name:
                for count, nbytes, _where in result:
                    bar.advance(count, nbytes)

        with dask.callbacks.Callback(posttask=finished):
            results = parts.compute()
        return sum(count for count, _, _ in results)


def puts(target: Any, bag: Any, content_type: str | None = None, compress: Any = None,
         compression_level: int | None = None, cache_control: str | None = None,
         storage_class: str | None = None, raw: bool = False, compute: bool = True,
         progress: Any = False) -> Any:
    """``CloudFiles(target).puts(bag)``: write a bag of ``(path, content)`` pairs or put dicts
    on the Dask workers; returns the number of files written (``compute=False``: a
    ``dask.bag.Item`` of it)."""
    options = PutOptions(content_type, compress, compression_level, cache_control,
                         storage_class, raw)
    return put_bag(target, bag, options, compute=compute, progress=progress)


def put_jsons(target: Any, bag: Any, compress: Any = None, compression_level: int | None = None,
              cache_control: str | None = None, storage_class: str | None = None,
              raw: bool = False, compute: bool = True, progress: Any = False) -> Any:
    """``CloudFiles(target).put_jsons(bag)``: :func:`puts` of JSON-serialisable contents,
    serialised on the workers and stored as application/json."""
    options = PutOptions(_JSON_TYPE, compress, compression_level, cache_control,
                         storage_class, raw)
    return put_bag(target, bag, options, json=True, compute=compute, progress=progress)
