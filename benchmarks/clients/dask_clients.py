"""The adapters that run on a Dask cluster: our distributed transfer (``dask-1/2/4``) and the
Bag reads of many small S3 objects (``ours-bag``, ``s3fs-bag``, ``boto3-bag``).

Every one starts a ``LocalCluster`` of worker processes (two Dask threads each, on 127.0.0.1,
no dashboard) before timing, makes every worker's clients and runs one tiny job of its own
kind on it (so the modules it needs are imported there and its connections are open), as a
long-lived cluster would have. What is timed is one call a Dask user would write, listing
included. The workers' CPU is added to the client CPU (``helper_cpu``); the scheduler runs in
the timed process itself, so its CPU is counted there.

After the timed call (outside the driver's measuring window, see worker.py) each adapter reads
the scheduler's task stream of that call (``Client.get_task_stream``: every task's
``startstops`` as its worker reported them) and gives, in the run's ``extra``:

- ``tasks``: the tasks the call ran;
- ``busiest_idle_pct``: the share of the timed call's wall time during which the busiest Dask
  thread ran none of them (listing, building the graph, dispatch, moving results back);
- for our tasks, ``task_overhead_pct`` and ``task_overhead_ms``: the task time the engine's
  work did not account for. A task's time is the sum of its ``startstops`` other than
  dependency transfers (the ``compute`` span of the task function); the engine's work is the
  wall time of the engine verb called inside the task (``ops.get_many`` for a Bag partition,
  ``ops.transfer`` for a transfer batch), measured on the worker by a wrapper installed before
  timing and filed under the running task's key. Overhead % = 100 x sum(task - engine) /
  sum(task) over our tasks; ms = the mean of (task - engine) per task.
"""

from __future__ import annotations

import contextlib
import pickle
import statistics
import threading
import time

from .base import ACCESS_KEY, REGION, SECRET_KEY, Adapter, Unsupported
from .ours import Ours, tree_bytes

#: Dask threads per worker process in every Dask row.
THREADS_PER_WORKER = 2
#: Worker processes of the Bag rows.
BAG_WORKERS = 2
#: The engine verbs timed inside our tasks (module, attribute): a read partition's get, a
#: transfer batch's transfer.
ENGINE_CALLS = (("cloudfiles_dask._engine.ops", "get_many"), ("cloudfiles_dask._engine.ops", "transfer"))


def _distributed():
    try:
        import distributed
    except ImportError as e:
        raise Unsupported(f"no Dask here ({e})") from None
    return distributed


# -- on the workers --------------------------------------------------------------------------------
_engine_times: dict[str, float] = {}
_engine_lock = threading.Lock()
_engine_depth = threading.local()


def _timed(fn):
    from distributed.worker import thread_state

    def timed(*args, **kwargs):
        depth = getattr(_engine_depth, "n", 0)
        key = getattr(thread_state, "key", None) if depth == 0 else None
        _engine_depth.n = depth + 1
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            _engine_depth.n = depth
            if key is not None:  # only the outermost engine call of a task counts
                spent = time.perf_counter() - t0
                with _engine_lock:
                    _engine_times[str(key)] = _engine_times.get(str(key), 0.0) + spent

    timed.bench_timed = True
    return timed


def install_engine_timers(calls=ENGINE_CALLS) -> list[str]:
    """On a worker: wrap the engine verbs so that their wall time inside a task is filed under
    the task's key. Returns what was wrapped (a verb the library no longer has is skipped)."""
    import importlib

    done = []
    for module_name, attr in calls:
        module = importlib.import_module(module_name)
        fn = getattr(module, attr, None)
        if fn is None:
            continue
        if not getattr(fn, "bench_timed", False):
            setattr(module, attr, _timed(fn))
        done.append(f"{module_name}.{attr}")
    return done


def collect_engine_times() -> dict[str, float]:
    """On a worker: the engine time per task key since the last call (and forget it)."""
    with _engine_lock:
        out = dict(_engine_times)
        _engine_times.clear()
    return out


def _worker_cpu() -> tuple[float, float]:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


# -- on the driver ---------------------------------------------------------------------------------
def task_stats(records: list[dict], engine: dict[str, float], wall: float | None) -> dict:
    """What the task stream of one timed call says (see the module's docstring)."""
    busy: dict[tuple, float] = {}
    task_total = engine_total = 0.0
    overheads = []
    for record in records:
        span = sum(ss["stop"] - ss["start"] for ss in record.get("startstops", ())
                   if ss.get("action") != "transfer")
        thread = (record.get("worker"), record.get("thread"))
        busy[thread] = busy.get(thread, 0.0) + span
        spent = engine.get(str(record.get("key")))
        if spent is not None:
            task_total += span
            engine_total += spent
            overheads.append(span - spent)
    out: dict = {"tasks": len(records)}
    if busy and wall:
        out["busiest_idle_pct"] = 100 * max(0.0, wall - max(busy.values())) / wall
    if overheads and task_total > 0:
        out["task_overhead_pct"] = 100 * (task_total - engine_total) / task_total
        out["task_overhead_ms"] = 1000 * statistics.mean(overheads)
    return out


class OnCluster:
    """A mixin: the LocalCluster, the workers' CPU, the task stream of the timed call."""

    engine_timers = False  # our tasks: time the engine's verbs inside them
    cluster = client = None
    timed_wall: float | None = None

    def start_cluster(self, workers: int) -> None:
        distributed = _distributed()
        self.cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=THREADS_PER_WORKER, processes=True,
            host="127.0.0.1", dashboard_address=None)
        self.client = distributed.Client(self.cluster)
        self.stats: dict = {}

    @property
    def dask_threads(self) -> int:
        return sum(self.client.nthreads().values())

    def ready_for_timing(self) -> None:
        """The last step of warm(): the engine timers on every worker, the scheduler's task
        stream started (and what the warm-up ran in it skipped)."""
        if self.engine_timers:
            self.client.run(install_engine_timers)
            self.client.run(collect_engine_times)
        self._skip = len(self.client.get_task_stream())

    def helper_cpu(self) -> tuple[float, float]:
        """(user, system) CPU seconds the workers have used so far, summed."""
        times = list(self.client.run(_worker_cpu).values())
        return sum(u for u, _ in times), sum(s for _, s in times)

    def after_timing(self) -> dict:
        records = self.client.get_task_stream()[self._skip:]
        engine: dict[str, float] = {}
        if self.engine_timers:
            for times in self.client.run(collect_engine_times).values():
                engine.update(times)
        return {**self.stats, **task_stats(records, engine, self.timed_wall)}

    def close_cluster(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            self.cluster.close()


def _shared_twin(cf):
    """The same CloudFiles as it is in a task: unpickled, so its backend is this process's
    shared one for its configuration (what our Dask faces list with on the driver)."""
    return pickle.loads(pickle.dumps(cf))


# -- our distributed transfer ---------------------------------------------------------------------
class OursDask(OnCluster, Ours):
    """``cloudfiles_dask.dask.transfer`` / ``CloudFiles.transfer_to(..., client=)`` on a
    LocalCluster of ``workers`` processes (two Dask threads each, so a worker overlaps two
    batches; every batch fans out on the CloudFiles' 20 threads inside its worker; the default
    batch size)."""

    engine_timers = True

    def __init__(self, spec: dict):
        Ours.__init__(self, spec)
        _distributed()
        from cloudfiles_dask.dask import transfer

        self._transfer = transfer
        self.start_cluster(spec["workers"])

    def warm(self) -> None:
        cfs = [self.cf] + ([self.mix_src] if self.spec.get("op") == "transfer_mix" else [])

        def warm_worker() -> None:  # makes the worker's S3 clients (both transports)
            for cf in cfs:
                cf.get("warm-up/missing")
                cf.head("warm-up/missing")

        self.client.run(warm_worker)
        for cf in cfs:  # the driver's shared backend, which lists the source when paths is None
            twin = _shared_twin(cf)
            twin.get("warm-up/missing")
            sum(1 for _ in twin.list("warm-up/"))
        Ours.warm(self)  # this process's clients, and the mixed transfer's warm-up (on Dask)
        self.ready_for_timing()

    def warm_mix(self, scratch: str, **kwargs) -> None:
        Ours.warm_mix(self, scratch, client=self.client)

    def dask_transfer(self, keys: list[str], dest_dir: str) -> int:
        t0 = time.perf_counter()
        self._transfer(self.cf, "file://" + dest_dir, keys, client=self.client)
        self.timed_wall = time.perf_counter() - t0
        return tree_bytes(dest_dir)

    def transfer_mix(self, dest_dir: str) -> int:
        """``transfer_to(dest, client=client)``: listed on the driver (timed), copied in batches
        by the workers. Whatever it returns (a TransmissionMonitor, or an int in older code),
        what arrived is counted on disk."""
        t0 = time.perf_counter()
        self.mix_src.transfer_to("file://" + dest_dir, client=self.client)
        self.timed_wall = time.perf_counter() - t0
        return tree_bytes(dest_dir)

    def close(self) -> None:
        self.close_cluster()
        Ours.close(self)


# -- Bag reads of many small objects ----------------------------------------------------------------
class _BagReader(OnCluster, Adapter):
    """A Bag read: build the collection (listing included), compute it, count the bytes on the
    driver. ``build(prefix)`` gives what ``compute(collection)`` turns into a list of bytes."""

    def __init__(self, spec: dict):
        Adapter.__init__(self, spec)
        if self.backend != "s3":
            raise Unsupported(f"the Bag rows read S3, not {self.backend}")
        _distributed()
        self.check()
        self.start_cluster(BAG_WORKERS)

    def check(self) -> None:
        """Unsupported when the peer is not installed."""

    def build(self, prefix: str):
        raise NotImplementedError

    def compute(self, collection) -> list[bytes]:
        return collection.compute()

    def warm_one(self, key: str) -> None:
        """A tiny job of this client's kind on the cluster (one object)."""
        raise NotImplementedError

    def warm(self) -> None:
        self.warm_one(f"{self.spec['prefix']}/{0:06d}")
        self.ready_for_timing()

    def bag_read(self, prefix: str) -> int:
        t0 = time.perf_counter()
        collection = self.build(prefix)
        t1 = time.perf_counter()
        contents = self.compute(collection)
        t2 = time.perf_counter()
        nbytes = sum(len(c) for c in contents if c is not None)
        self.timed_wall = time.perf_counter() - t0
        self.stats = {"graph_s": t1 - t0, "compute_s": t2 - t1, "files": len(contents)}
        return nbytes

    def close(self) -> None:
        self.close_cluster()
        Adapter.close(self)


class OursBag(_BagReader, Ours):
    """``CloudFiles(s3 root).to_bag(prefix=..., output="content")`` with its defaults (one
    listing with sizes on the driver; partitions of at most 1000 keys and 64 MiB, each fetched
    by its worker on the CloudFiles' 20 threads), computed."""

    engine_timers = True

    def __init__(self, spec: dict):
        Ours.__init__(self, spec)
        _BagReader.__init__(self, spec)

    def check(self) -> None:
        try:
            import dask.bag  # noqa: F401
        except ImportError as e:
            raise Unsupported(f"no dask.bag here ({e})") from None

    def warm_one(self, key: str) -> None:
        cf = self.cf

        def warm_worker() -> None:
            cf.get("warm-up/missing")
            cf.head("warm-up/missing")

        self.client.run(warm_worker)
        twin = _shared_twin(cf)  # the driver lists with its process's shared backend
        twin.get("warm-up/missing")
        sum(1 for _ in twin.list("warm-up/"))
        Ours.warm(self)
        self.cf.to_bag([key], output="content").compute()

    def build(self, prefix: str):
        return self.cf.to_bag(prefix=prefix + "/", output="content")

    def close(self) -> None:
        _BagReader.close(self)


def _s3fs_options(endpoint: str) -> dict:
    return {"key": ACCESS_KEY, "secret": SECRET_KEY, "endpoint_url": endpoint,
            "client_kwargs": {"region_name": REGION}}


class S3FSBag(_BagReader):
    """What a Dask user writes today with s3fs: ``dask.bytes.read_bytes("s3://bucket/prefix/*",
    blocksize=None, sample=False, **storage_options)`` (a glob on the driver; one delayed per
    file, each opening and reading its file through s3fs on a worker), the delayed objects
    computed. (``dask.bag.read_text`` is no fit for binary objects: it decodes text and splits
    lines, so random 4 KiB objects would fail to decode or come back cut at newlines.)"""

    def check(self) -> None:
        try:
            import dask.bytes  # noqa: F401
            import s3fs  # noqa: F401
        except ImportError as e:
            raise Unsupported(f"s3fs is not installed ({e})") from None

    def warm_one(self, key: str) -> None:
        options, path = _s3fs_options(self.s3_url), f"{self.s3_bucket}/warm-up/missing"

        def warm_fs() -> None:  # fsspec keeps the instance: tasks with these options reuse it
            import s3fs

            s3fs.S3FileSystem(**options).exists(path)

        warm_fs()
        self.client.run(warm_fs)
        self.compute(self.build(key, glob=False))

    def build(self, prefix: str, glob: bool = True):
        from dask.bytes import read_bytes

        url = f"s3://{self.s3_bucket}/{prefix}" + ("/*" if glob else "")
        _, blocks = read_bytes(url, blocksize=None, sample=False, **_s3fs_options(self.s3_url))
        return [block for per_file in blocks for block in per_file]

    def compute(self, collection) -> list[bytes]:
        import dask

        return list(dask.compute(*collection))


def boto3_get_partition(keys, endpoint: str, bucket: str) -> list[bytes]:
    """One Bag partition as a Dask user writes it with boto3: one client for the partition,
    then one GET after the other."""
    import boto3
    from botocore.config import Config

    s3 = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )
    return [s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys]


class Boto3Bag(_BagReader):
    """What a Dask user writes today with boto3: the keys listed on the driver (a boto3
    paginator), ``dask.bag.from_sequence(keys, npartitions=2 x the cluster's Dask threads)
    .map_partitions(get_with_boto3)``, one boto3 client (a new Session) per partition and one
    GET after another in it, computed."""

    def check(self) -> None:
        try:
            import boto3  # noqa: F401
            import dask.bag  # noqa: F401
        except ImportError as e:
            raise Unsupported(f"boto3 is not installed ({e})") from None

    def __init__(self, spec: dict):
        super().__init__(spec)
        import boto3
        from botocore.config import Config

        self.lister = boto3.session.Session().client(
            "s3", endpoint_url=self.s3_url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name=REGION,
            config=Config(s3={"addressing_style": "path"}))

    def warm_one(self, key: str) -> None:
        self.lister.list_objects_v2(Bucket=self.s3_bucket, Prefix="warm-up/", MaxKeys=1)
        endpoint, bucket = self.s3_url, self.s3_bucket

        def warm_worker() -> None:
            boto3_get_partition([], endpoint, bucket)

        self.client.run(warm_worker)
        self._bag([key]).compute()

    def _bag(self, keys: list[str]):
        import dask.bag as db

        parts = max(1, min(len(keys), 2 * self.dask_threads))
        return db.from_sequence(keys, npartitions=parts).map_partitions(
            boto3_get_partition, self.s3_url, self.s3_bucket)

    def build(self, prefix: str):
        pages = self.lister.get_paginator("list_objects_v2").paginate(
            Bucket=self.s3_bucket, Prefix=prefix + "/")
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return self._bag(keys)
