"""Dask collections of a CloudFiles: bags and delayed objects of reads, writes from bags.

Each behaviour runs on a real ``distributed.LocalCluster`` whose two workers are other
processes (two threads each) and on Dask's threaded scheduler without a client, over real
data: files on disk, mem:// (threaded scheduler only: it lives in one process) and S3 on the
local rclone and moto servers, with a recording proxy in front where requests are counted.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time

import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
import dask.bag as db  # noqa: E402
from dask.delayed import Delayed  # noqa: E402

from cloudfiles_dask import CloudFiles, ProcessBoundaryError  # noqa: E402
from cloudfiles_dask._engine import ops  # noqa: E402
from cloudfiles_dask._engine.config import process_backend  # noqa: E402
from cloudfiles_dask.dask.collections import plan  # noqa: E402
from cloudfiles_dask.exceptions import DecompressionError  # noqa: E402
from tests.servers.fault_proxy import FaultProxy  # noqa: E402
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY  # noqa: E402

S3_SECRETS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
              "AWS_DEFAULT_REGION": "us-east-1"}
KiB = 1024


# -- where the graphs run --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster_client():
    """Two worker processes, two threads each; not the default client: a test asks for it."""
    env = {"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None, env=env) as cluster:
        with distributed.Client(cluster, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
            yield client


@pytest.fixture
def on_cluster(cluster_client):
    """The cluster is the current client: compute() and the collections use it."""
    cluster_client.wait_for_workers(2, timeout=60)
    with cluster_client.as_current():
        yield cluster_client


@pytest.fixture
def on_threads():
    """No client: Dask's threaded scheduler, in this process."""
    with dask.config.set(scheduler="threads"):
        yield None


@pytest.fixture(params=["cluster", "threads"])
def where(request):
    """Each place a graph runs, in turn: the cluster's worker processes, the threaded scheduler."""
    return request.getfixturevalue(f"on_{request.param}")


def _partitions(bag) -> list[list]:
    """What each partition of ``bag`` computes to, in order."""
    return [list(part) for part in dask.compute(*bag.to_delayed())]


def _name(key) -> str:
    """The name of a task key (``(name, index)`` for a partition)."""
    return key[0] if isinstance(key, tuple) else key


def _file_root(tmp_path, name: str = "data") -> CloudFiles:
    return CloudFiles(f"file://{tmp_path}/{name}")


# -- importing ------------------------------------------------------------------------------------
def test_importing_the_package_and_its_dask_faces_does_not_import_dask():
    code = (
        "import sys, cloudfiles_dask, cloudfiles_dask.dask\n"
        "from cloudfiles_dask import CloudFiles\n"
        "cf = CloudFiles('mem://b/x'); cf.puts([('a', b'1')]); cf.get(['a']); cf.get('a')\n"
        "print(','.join(m for m in ('dask', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- reads ----------------------------------------------------------------------------------------
def test_a_listed_bag_holds_every_item_and_byte(where, tmp_path):
    cf = _file_root(tmp_path)
    data = {f"d{i % 3}/k{i:04d}": os.urandom(100 + i) for i in range(250)}
    cf.puts([(k, v) for k, v in data.items() if k < "d1"], compress="gzip")
    cf.puts([(k, v) for k, v in data.items() if k >= "d1"])
    cf.put("elsewhere", b"not listed")
    bag = cf.to_bag(prefix="d", partition_size=40)
    assert bag.npartitions == 7  # 250 keys, 40 at most a partition
    results = bag.compute()
    assert [r["path"] for r in results] == sorted(data)  # the listing's order
    assert results == cf.get(sorted(data))  # the dicts of get, field by field
    assert {r["path"]: r["content"] for r in results} == data
    assert {r["compress"] for r in results if r["path"] < "d1"} == {"gzip"}
    assert {r["compress"] for r in results if r["path"] >= "d1"} == {None}
    if where is not None:  # the partitions ran on the workers, both of them
        with distributed.get_task_stream(where) as stream:
            assert cf.to_bag(prefix="d", partition_size=10).count().compute() == 250
        ran = [t for t in stream.data if "cloudfiles-get" in _name(t["key"])]
        assert len(ran) == 25, [t["key"] for t in stream.data]
        assert len({t["worker"] for t in ran}) == 2


def test_given_keys_as_a_list_a_generator_or_listing_pairs(where, tmp_path):
    cf = _file_root(tmp_path)
    data = {f"k{i:03d}": str(i).encode() * 3 for i in range(60)}
    cf.puts(data.items())
    keys = sorted(data)[::-1] + ["missing"]
    expected = [data.get(k) for k in keys]
    assert cf.to_bag(keys, output="content", partition_size=7).compute() == expected
    assert cf.to_bag((k for k in keys), output="content", partition_size=7).compute() == expected
    pairs = list(cf.list(size=True))
    assert cf.to_bag(pairs, output="content").compute() == [data[k] for k, _ in pairs]
    # (key, size) pairs are what the listing gives: the same partitions, the same graph
    assert cf.to_bag(pairs, partition_size=9).name == cf.to_bag(partition_size=9).name
    with pytest.raises(ValueError, match="paths or prefix"):
        cf.to_bag(keys, prefix="k")


def test_mem_on_the_threaded_scheduler(on_threads):
    cf = CloudFiles("mem://dask-collections/mem")
    data = {f"j{i:03d}": {"i": i, "s": "x" * i} for i in range(120)}
    assert cf.put_jsons(db.from_sequence(list(data.items()), npartitions=4), compress="br") == 120
    assert cf.get_json(sorted(data)) == [data[k] for k in sorted(data)]
    bag = cf.to_bag(prefix="j", output="json", partition_size=50)
    assert bag.npartitions == 3
    assert bag.compute() == [data[k] for k in sorted(data)]
    assert cf.to_bag(prefix="j", raw=True).pluck("compress").distinct().compute() == ["br"]


def test_partitions_are_bounded_by_count(on_threads, tmp_path):
    cf = _file_root(tmp_path)
    cf.puts((f"k{i:05d}", b"x") for i in range(2500))
    bag = cf.to_bag(prefix="", partition_size=1000)
    assert bag.npartitions == 3
    parts = _partitions(bag)
    assert [len(p) for p in parts] == [1000, 1000, 500]
    assert [r["path"] for p in parts for r in p] == [f"k{i:05d}" for i in range(2500)]
    assert [len(p) for p in _partitions(cf.to_bag(prefix="k0000", partition_size=3))] == [3, 3, 3, 1]


def test_by_default_each_dask_thread_gets_about_two_partitions(cluster_client, tmp_path):
    cf = _file_root(tmp_path)
    cf.puts((f"k{i:05d}", b"x") for i in range(2500))
    with cluster_client.as_current():  # 4 Dask threads: 2500 keys in 8 partitions of <= 313
        bag = cf.to_bag(prefix="")
        assert bag.map_partitions(lambda p: [len(p)]).compute() == [313] * 7 + [309]
    with dask.config.set(scheduler="threads"):  # no client: this machine's cores
        per = min(1000, max(20, -(-2500 // (2 * (os.cpu_count() or 1)))))
        assert _partitions(cf.to_bag(prefix=""))[0].__len__() == per
    keys = [f"k{i:05d}" for i in range(2500)]  # 20 to 1000 keys a partition, whatever the threads
    assert [len(p) for p in plan(cf.config, keys, slots=1)[0]] == [1000, 1000, 500]
    assert [len(p) for p in plan(cf.config, keys[:30], slots=64)[0]] == [20, 10]


def test_large_objects_spread_over_more_partitions(where, tmp_path):
    cf = _file_root(tmp_path)
    small = {f"a{i}": os.urandom(KiB) for i in range(6)} | {f"c{i}": os.urandom(KiB) for i in range(6)}
    big = {f"b{i}": os.urandom(300 * KiB) for i in range(2)}
    cf.puts({**small, **big}.items())
    bag = cf.to_bag(prefix="", partition_size=4, partition_bytes=256 * KiB)
    assert bag.npartitions == 6
    parts = _partitions(bag)
    assert [[r["path"] for r in p] for p in parts] == [
        ["a0", "a1", "a2", "a3"], ["a4", "a5"], ["b0"], ["b1"], ["c0", "c1", "c2", "c3"], ["c4", "c5"]]
    assert {r["path"]: r["content"] for p in parts for r in p} == {**small, **big}
    # by bytes alone: the small ones share a partition, each big one has its own
    bag = cf.to_bag(prefix="", partition_bytes=256 * KiB)
    assert [len(p) for p in _partitions(bag)] == [6, 1, 1, 6]
    # the default bounds put all of this in one partition
    assert cf.to_bag(prefix="").npartitions == 1


def test_byte_ranges_read_their_bytes_and_size_their_partitions(where, tmp_path):
    cf = _file_root(tmp_path)
    blob = os.urandom(300 * KiB)
    cf.put("big", blob)
    cf.put("small", b"0123456789abcdef")
    ranges = [
        {"path": "big", "start": 0, "end": 200 * KiB},
        {"path": "big", "start": 200 * KiB, "end": 300 * KiB, "tags": {"part": 2}},
        {"path": "big", "start": -50 * KiB},
        {"path": "small", "end": 10},
        {"path": "small", "byte_range": (4, 6)},
    ]
    bag = cf.to_bag(ranges, partition_bytes=256 * KiB)
    assert bag.npartitions == 2  # 200 KiB | 100 + 50 KiB + 10 + 2 bytes
    parts = _partitions(bag)
    assert [len(p) for p in parts] == [1, 4]
    results = [r for p in parts for r in p]
    assert [r["content"] for r in results] == [
        blob[: 200 * KiB], blob[200 * KiB:], blob[-50 * KiB:], b"0123456789", b"45"]
    assert [r["byte_range"] for r in results] == [
        (0, 200 * KiB), (200 * KiB, 300 * KiB), (-50 * KiB, None), (None, 10), (4, 6)]
    assert results[1]["tags"] == {"part": 2}
    assert results == cf.get(ranges)


def test_output_modes(where, tmp_path):
    cf = _file_root(tmp_path)
    docs = {f"doc{i}": {"n": i, "tags": ["a"] * i} for i in range(5)}
    cf.put_jsons(docs.items(), compress="gzip")
    keys = sorted(docs) + ["absent"]
    assert cf.to_bag(keys, output="json").compute() == [docs[k] for k in sorted(docs)] + [None]
    contents = cf.to_bag(keys, output="content").compute()
    assert [json.loads(c) for c in contents[:-1]] == [docs[k] for k in sorted(docs)]
    assert contents[-1] is None
    stored = cf.to_bag(keys, output="content", raw=True).compute()
    assert [json.loads(gzip.decompress(c)) for c in stored[:-1]] == [docs[k] for k in sorted(docs)]
    results = cf.to_bag(keys).compute()
    assert [sorted(r) for r in results] == [sorted(
        ["path", "content", "error", "byte_range", "compress", "raw", "tags"])] * len(keys)
    with pytest.raises(ValueError, match="output"):
        cf.to_bag(keys, output="bytes")


def test_errors_and_missing_keys(where, tmp_path):
    cf = _file_root(tmp_path)
    cf.puts([(f"ok{i}", b"fine") for i in range(10)])
    with open(tmp_path / "data" / "bad.gz", "wb") as f:  # not gzip at all
        f.write(b"this is not gzip")
    keys = ["ok0", "missing", "bad", "ok9"]
    with pytest.raises(DecompressionError) as raised:
        cf.to_bag(keys).compute()
    assert "partition starting with 'ok0'" in "".join(getattr(raised.value, "__notes__", []))
    results = cf.to_bag(keys, raise_errors=False).compute()
    assert [r["content"] for r in results] == [b"fine", None, None, b"fine"]
    assert results[1]["error"] is None  # a missing key is not an error
    assert isinstance(results[2]["error"], DecompressionError)
    assert [r["error"] for r in results[::3]] == [None, None]
    # a missing key alone never raises
    assert cf.to_bag(["missing", "ok1"]).compute()[0]["content"] is None
    assert cf.to_bag(["missing"], output="json").compute() == [None]


# -- S3: one listing on the driver, one GET per key on the workers ------------------------------
def _listings(requests) -> list[str]:
    return [target for method, target, _ in requests if method == "GET" and "list-type=2" in target]


@pytest.mark.parametrize("kind", ["rclone", "moto"])
def test_s3_the_listing_is_made_once_and_each_key_read_once(kind, where, request, s3_env):
    server = request.getfixturevalue(f"{kind}_server")
    bucket = server.new_bucket()
    admin = server.admin()
    data = {f"in/k{i:03d}": os.urandom(2000 + i) for i in range(90)}
    for key, value in data.items():
        admin.put_object(Bucket=bucket, Key=key, Body=value)
    admin.put_object(Bucket=bucket, Key="out/other", Body=b"not listed")
    host, port = server.endpoint.removeprefix("http://").split(":")
    with FaultProxy(host, int(port)) as proxy:
        cf = CloudFiles(f"s3://{proxy.url}/{bucket}", secrets=S3_SECRETS, num_threads=8)
        bag = cf.to_bag(prefix="in/", partition_size=25)
        before = list(proxy.requests)
        assert len(_listings(before)) == 1 and len(before) == 1, before  # no HEAD, no GET
        assert bag.npartitions == 4
        results = bag.compute()
        after = proxy.requests[len(before):]
    assert {r["path"]: r["content"] for r in results} == data
    gets = [target.split("?")[0] for method, target, _ in after if method == "GET"]
    assert sorted(gets) == sorted(f"/{bucket}/{key}" for key in data), after
    assert [method for method, _, _ in after] == ["GET"] * len(data)


def test_a_partition_fans_out_on_the_engine_threads(on_threads, moto_server, s3_env, monkeypatch):
    bucket = moto_server.new_bucket()
    cf = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/t", secrets=S3_SECRETS, num_threads=6)
    cf.puts((f"k{i:02d}", b"v" * i) for i in range(24))
    backend = process_backend(cf.config)  # the backend the partition's task takes
    real, lock, state = backend.get, threading.Lock(), {"now": 0, "most": 0, "threads": set()}

    def slow_get(*args, **kwargs):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
            state["threads"].add(threading.get_ident())
        try:
            time.sleep(0.05)
            return real(*args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(backend, "get", slow_get)
    bag = cf.to_bag(prefix="", partition_size=100)
    assert bag.npartitions == 1
    assert len(bag.compute(scheduler="sync")) == 24  # one task on one Dask thread
    assert state["most"] > 1 and len(state["threads"]) > 1, state


def _idle_engine_threads() -> int:
    from cloudfiles_dask import _threads

    return len(_threads._idle)


def test_the_workers_start_their_engine_threads_before_the_tasks_run(on_cluster, tmp_path):
    """Threads started while tasks run can deadlock a worker on CPython < 3.11.9 (gh-106883,
    with Dask's profiler): building a collection on a client starts, on every worker, its Dask
    threads x num_threads engine threads up front, which the partitions then reuse."""
    nthreads = on_cluster.nthreads()
    reader = CloudFiles(f"file://{tmp_path}/r", num_threads=43)  # otherwise unused counts
    reader.puts([("a", b"1")])
    bag = reader.to_bag(prefix="")
    idle = on_cluster.run(_idle_engine_threads)
    assert len(idle) == 2 and all(idle[w] >= nthreads[w] * 43 for w in idle), (idle, nthreads)
    assert bag.compute()[0]["content"] == b"1"
    writer = CloudFiles(f"file://{tmp_path}/w", num_threads=47)
    item = writer.puts(db.from_sequence([("b", b"2")]), compute=False)
    idle = on_cluster.run(_idle_engine_threads)
    assert all(idle[w] >= nthreads[w] * 47 for w in idle), (idle, nthreads)
    assert item.compute() == 1


# -- names ----------------------------------------------------------------------------------------
def test_read_names_are_deterministic(on_threads, tmp_path):
    cf = _file_root(tmp_path)
    cf.puts((f"k{i}", b"x" * i) for i in range(30))
    keys = [f"k{i}" for i in range(30)]
    name = cf.to_bag(keys).name
    assert name.startswith("cloudfiles-get-")
    assert cf.to_bag(list(keys)).name == name  # the same call twice
    assert _file_root(tmp_path).to_bag(keys).name == name  # an equal CloudFiles
    assert cf.get(keys, dask="bag").name == name
    assert cf.to_bag(prefix="").name == cf.to_bag(prefix="").name
    assert [d.key for d in cf.to_delayed(keys)] == [d.key for d in cf.to_delayed(keys)]
    others = [
        cf.to_bag(keys[:-1]),
        cf.to_bag(keys[::-1]),
        cf.to_bag([*keys[:-1], {"path": keys[-1], "start": 1}]),
        cf.to_bag([*keys[:-1], {"path": keys[-1], "tags": "t"}]),
        cf.to_bag(keys, raw=True),
        cf.to_bag(keys, output="content"),
        cf.to_bag(keys, raise_errors=False),
        cf.to_bag(keys, part_size=8 * 2**20),
        cf.to_bag(keys, partition_size=7),
        CloudFiles(cf.cloudpath, num_threads=3).to_bag(keys),
        _file_root(tmp_path, "elsewhere").to_bag(keys),
    ]
    names = {bag.name for bag in others}
    assert name not in names and len(names) == len(others)
    # a listing whose sizes changed is another graph
    cf.put("k3", b"longer now")
    assert cf.to_bag(prefix="").name != cf.to_bag(keys).name


def test_building_the_graph_of_100_000_keys(on_threads):
    """Graph building stays proportional and cheap (no request, no per-key task): checked by
    shape here; the figure is measured and reported in docs, not asserted."""
    cf = CloudFiles("mem://dask-collections/many")
    keys = [f"d{i % 100}/k{i:07d}" for i in range(100_000)]
    started = time.perf_counter()
    bag = cf.to_bag(keys)
    print(f"to_bag of 100 000 keys: {time.perf_counter() - started:.3f} s")
    assert bag.npartitions == 100
    graph = dict(bag.__dask_graph__())
    assert sorted(graph) == [(bag.name, i) for i in range(100)]  # a task per partition
    assert cf.to_bag(keys).name == bag.name


# -- get(dask=...) --------------------------------------------------------------------------------
def test_get_returns_a_collection_only_when_asked(where, tmp_path):
    cf = _file_root(tmp_path)
    cf.puts((f"k{i}", str(i).encode()) for i in range(12))
    keys = [f"k{i}" for i in range(12)]
    assert cf.get(keys) == cf.get(keys, dask=None)  # data, as always
    assert isinstance(cf.get(keys), list) and cf.get("k1") == b"1"
    bag = cf.get(keys, dask="bag", raw=True)
    assert isinstance(bag, db.Bag)
    assert bag.compute() == cf.get(keys, raw=True)
    delayed = cf.get(keys, dask="delayed")
    assert all(isinstance(d, Delayed) for d in delayed)
    assert [r for batch in dask.compute(*delayed) for r in batch] == cf.get(keys)
    batches = cf.to_delayed(keys, partition_size=5)
    assert [[r["path"] for r in batch] for batch in dask.compute(*batches)] == [
        keys[:5], keys[5:10], keys[10:]]
    one = cf.get("k3", dask="bag")  # a single key: a one-item collection of its result dict
    assert one.npartitions == 1 and one.compute() == cf.get(["k3"])
    assert [r["content"] for r in dask.compute(*cf.get("k4", dask="delayed"))[0]] == [b"4"]
    with pytest.raises(ValueError, match="dask must be one of"):
        cf.get(keys, dask="frame")
    with pytest.raises(ValueError, match="return_dict"):
        cf.get(keys, dask="bag", return_dict=True)
    with pytest.raises(ValueError, match="parallel"):
        cf.get(keys, dask="bag", parallel=2)


# -- writes ---------------------------------------------------------------------------------------
def test_writes_from_a_bag_with_compression_and_the_count(where, tmp_path):
    cf = _file_root(tmp_path)
    data = {f"w/{i:03d}": os.urandom(50) * (i % 5 + 1) for i in range(200)}
    bag = db.from_sequence(sorted(data), npartitions=5).map(lambda key: (key, data[key]))
    if where is None:
        assert cf.puts(bag, compress="gzip", compression_level=9) == 200
    else:  # written by tasks on the workers
        with distributed.get_task_stream(where) as stream:
            assert cf.puts(bag, compress="gzip", compression_level=9) == 200
        ran = [t for t in stream.data if "cloudfiles-puts" in _name(t["key"])]
        assert len(ran) == 5, [t["key"] for t in stream.data]
    for key in list(data)[:10]:
        with open(tmp_path / "data" / (key + ".gz"), "rb") as f:
            assert gzip.decompress(f.read()) == data[key]
    assert {r["path"]: r["content"] for r in cf.get(sorted(data))} == data
    # dicts with their own options, and raw bytes already encoded
    items = [{"path": "d/plain", "content": b"plain", "compress": None},
             {"path": "d/pre", "content": gzip.compress(b"pre"), "raw": True, "compress": "gzip"},
             ("d/pair", "text")]
    assert cf.puts(db.from_sequence(items, npartitions=2), compress="br") == 3
    assert os.path.exists(tmp_path / "data" / "d" / "plain")
    assert os.path.exists(tmp_path / "data" / "d" / "pre.gz")
    assert os.path.exists(tmp_path / "data" / "d" / "pair.br")
    assert cf.get(["d/plain", "d/pre", "d/pair"], return_dict=True) == {
        "d/plain": b"plain", "d/pre": b"pre", "d/pair": b"text"}
    docs = db.from_sequence([(f"j{i}", {"i": i}) for i in range(30)], npartitions=3)
    assert cf.put_jsons(docs, compress="zstd") == 30
    assert cf.get_json([f"j{i}" for i in range(30)]) == [{"i": i} for i in range(30)]
    assert os.path.exists(tmp_path / "data" / "j7.zstd")


def test_a_watched_write_from_a_bag_advances_per_partition_and_worker(where, tmp_path):
    cf = _file_root(tmp_path)
    bag = db.from_sequence([(f"w{i}", b"v" * i) for i in range(60)], npartitions=6)
    events = []
    assert cf.puts(bag, progress=events.append) == 60
    advances = [e for e in events if e.kind == "advance"]
    assert len(advances) == 6  # one per partition, as it finished
    assert sum(e.files for e in advances) == 60 and sum(e.nbytes for e in advances) == sum(range(60))
    workers = {e.worker for e in advances}
    if where is None:
        assert workers == {None}
    else:  # the cluster's workers, by address
        assert workers <= set(where.scheduler_info()["workers"]) and workers
    assert events[-1].kind == "close" and events[-1].cause is None
    assert sorted(cf.list()) == sorted(f"w{i}" for i in range(60))


def test_s3_writes_from_a_bag_carry_every_option(where, moto_server, s3_env):
    bucket = moto_server.new_bucket()
    cf = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/w", secrets=S3_SECRETS)
    bag = db.from_sequence([(f"f{i}", b"payload %d" % i) for i in range(20)], npartitions=4)
    assert cf.puts(bag, content_type="text/x-test", compress="gzip", cache_control="no-store",
                   storage_class="STANDARD_IA") == 20
    head = moto_server.admin().head_object(Bucket=bucket, Key="w/f7")
    assert head["ContentType"] == "text/x-test"
    assert head["ContentEncoding"] == "gzip"
    assert head["CacheControl"] == "no-store"
    assert head["StorageClass"] == "STANDARD_IA"
    assert cf.get("f7") == b"payload 7"
    docs = db.from_sequence([(f"j{i}", [i]) for i in range(6)], npartitions=2)
    assert cf.put_jsons(docs, cache_control="max-age=5") == 6
    head = moto_server.admin().head_object(Bucket=bucket, Key="w/j5")
    assert (head["ContentType"], head["CacheControl"]) == ("application/json", "max-age=5")
    assert cf.to_bag(prefix="j", output="json").compute() == [[i] for i in range(6)]


def test_writes_are_impure_and_lazy_on_request(where, tmp_path):
    cf = _file_root(tmp_path)
    bag = db.from_sequence([(f"p{i}", b"%d" % i) for i in range(40)], npartitions=4)
    first, second = cf.puts(bag, compute=False), cf.puts(bag, compute=False)
    assert first.key != second.key
    layers = [{name for name in item.dask.layers if name.startswith("cloudfiles-puts-")}
              for item in (first, second)]
    assert len(layers[0]) == len(layers[1]) == 1 and layers[0] != layers[1]
    jsons = [cf.put_jsons(bag.map(lambda p: (p[0] + ".json", p[1].decode())), compute=False)
             for _ in range(2)]
    assert jsons[0].key != jsons[1].key
    assert list(cf.list()) == []  # nothing written yet
    assert first.compute() == 40
    assert sorted(cf.list()) == sorted(f"p{i}" for i in range(40))
    assert second.compute() == 40  # a second write of the same files: written again
    assert dask.compute(*jsons) == (40, 40)
    assert cf.get_json("p7.json") == "7"


def test_duplicate_paths_in_a_partition_are_refused(where, tmp_path):
    cf = _file_root(tmp_path)
    bag = db.from_sequence([("a", b"1"), ("b", b"2"), ("a", b"3")], npartitions=1)
    with pytest.raises(ValueError, match="same file twice"):
        cf.puts(bag)
    assert list(cf.list()) == []  # refused before that partition wrote anything
    with pytest.raises(ValueError, match="same file twice"):
        cf.put_jsons(db.from_sequence([("j", 1), {"path": "j", "content": 2}], npartitions=1))
    assert list(cf.list()) == []
    with pytest.raises(ValueError, match="return_recording"):
        cf.puts(bag, return_recording=True)
    with pytest.raises(TypeError, match="dask.bag.Bag"):
        cf.puts(_NotABag())


class _NotABag:
    """Shaped like a Dask collection with partitions, but not a bag."""

    def __dask_graph__(self):
        return {}

    def map_partitions(self, *args):
        raise AssertionError("never called")


# -- mem:// and the process boundary -------------------------------------------------------------
def test_mem_is_refused_on_a_cluster_of_processes_before_anything_runs(on_cluster, monkeypatch):
    cf = CloudFiles("mem://dask-collections/boundary")
    cf.puts([(f"m{i}", b"x") for i in range(10)])
    listed = []
    real = ops.list_keys
    monkeypatch.setattr(ops, "list_keys", lambda *a: listed.append(a) or real(*a))
    with distributed.get_task_stream(on_cluster) as stream:
        with pytest.raises(ProcessBoundaryError, match="mem://"):
            cf.to_bag(prefix="")
        with pytest.raises(ProcessBoundaryError, match="mem://"):
            cf.to_bag([f"m{i}" for i in range(10)])
        with pytest.raises(ProcessBoundaryError, match="mem://"):
            cf.get(["m1"], dask="delayed")
        with pytest.raises(ProcessBoundaryError, match="mem://"):
            cf.puts(db.from_sequence([("n", b"1")]))
        with pytest.raises(ProcessBoundaryError, match="mem://"):
            cf.put_jsons(db.from_sequence([("n", 1)]), compute=False)
    assert listed == []  # not even the listing
    assert [t for t in stream.data if "cloudfiles" in _name(t["key"])] == []
    assert list(cf.list(prefix="n")) == []


def test_a_mem_graph_built_elsewhere_refuses_to_run_in_a_worker_process(cluster_client):
    cf = CloudFiles("mem://dask-collections/late")
    cf.puts([(f"m{i}", b"x") for i in range(10)])
    with dask.config.set(scheduler="threads"):  # built with no client in sight
        bag = cf.to_bag(prefix="")
        writes = cf.puts(db.from_sequence([("n", b"1")]), compute=False)
    assert bag.compute(scheduler="threads")[0]["content"] == b"x"  # fine in this process
    with pytest.raises(ProcessBoundaryError, match="mem://"):
        bag.compute(scheduler=cluster_client)  # never an empty read in another process
    with pytest.raises(ProcessBoundaryError, match="mem://"):
        writes.compute(scheduler=cluster_client)
    assert list(cf.list(prefix="n")) == []


# -- secrets in the pickled graph ------------------------------------------------------------------
def test_secrets_travel_in_the_graph_only_when_passed_explicitly(on_threads, moto_server, s3_env):
    """With credentials found in the environment, the pickled tasks hold none; with
    ``secrets=`` passed, they do (that is how the workers get them)."""
    import cloudpickle

    bucket = moto_server.new_bucket()
    found = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/s")  # credentials from the env
    found.puts([("a", b"1"), ("b", b"22")])
    assert found.to_bag(prefix="", output="content").compute() == [b"1", b"22"]
    explicit = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/s", secrets=S3_SECRETS)
    for cf, travels in ((found, False), (explicit, True)):
        reads = cloudpickle.dumps(dict(cf.to_bag(["a", "b"]).__dask_graph__()))
        writes = cloudpickle.dumps(dict(cf.puts(db.from_sequence([("c", b"3")]),
                                                compute=False).__dask_graph__()))
        for graph in (reads, writes):
            assert (SECRET_KEY.encode() in graph) is travels
            assert (ACCESS_KEY.encode() in graph) is travels
