"""Transfers spread over a real Dask LocalCluster (two worker processes, two threads each).

The servers are the real local ones (rclone serve s3, fake-gcs-server); files are checked on
disk or through a fresh client, behind the library's back where it matters.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import subprocess
import sys
import threading

import pytest

distributed = pytest.importorskip("distributed")

from cloudfiles_dask import CloudFiles, ProcessBoundaryError  # noqa: E402
from cloudfiles_dask._engine import distribute  # noqa: E402
from cloudfiles_dask.backends import s3  # noqa: E402
from cloudfiles_dask.dask import transfer  # noqa: E402
from cloudfiles_dask.monitoring import IOEnum, TransmissionMonitor  # noqa: E402
from tests.conftest_s3 import rclone_server  # noqa: E402,F401 (fixture)
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY  # noqa: E402

S3_SECRETS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
              "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def client(gcs_server):
    env = {"STORAGE_EMULATOR_HOST": gcs_server.url, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None, env=env) as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(autouse=True)
def _two_workers(client):
    client.wait_for_workers(2, timeout=60)


def _payloads(n: int, size: int = 700) -> dict[str, bytes]:
    return {f"d{i % 7}/k{i:05d}": os.urandom(size) + str(i).encode() for i in range(n)}


def _local_source(tmp_path, n: int, compress=None) -> tuple[CloudFiles, dict[str, bytes]]:
    data = _payloads(n)
    src = CloudFiles(f"file://{tmp_path}/src")
    src.puts(list(data.items()), compress=compress)
    return src, data


def test_every_file_arrives_reencoded_and_the_work_is_spread_over_the_workers(client, tmp_path):
    src, data = _local_source(tmp_path, 600, compress="gzip")
    events = []
    with distributed.get_task_stream(client) as stream:
        record = transfer(src, f"file://{tmp_path}/dst", client=client, batch_size=25,
                          reencode="br", progress=events.append)
    assert record.files == len(data)
    dst = CloudFiles(f"file://{tmp_path}/dst")
    for key in data:  # stored as brotli on disk, decoded by the library
        assert os.path.exists(os.path.join(tmp_path, "dst", key + ".br"))
    assert {r["path"]: r["content"] for r in dst.get(list(data))} == data
    workers = {task["worker"] for task in stream.data if task["key"].startswith("transfer_batch")}
    assert len(workers) == 2, workers
    assert len([task for task in stream.data if task["key"].startswith("transfer_batch")]) == 24
    assert [e.kind for e in (events[0], events[-1])] == ["start", "close"]
    advances = [e for e in events if e.kind == "advance"]
    assert sum(e.files for e in advances) == len(data) == events[-1].files
    assert events[-1].nbytes == sum(e.nbytes for e in advances) == record.total_bytes() > 0


def test_by_default_each_worker_thread_gets_about_two_batches(client, tmp_path):
    src, data = _local_source(tmp_path, 400)
    with distributed.get_task_stream(client) as stream:
        assert transfer(src, f"file://{tmp_path}/dst", list(data), client=client).files == 400
    assert sum(client.nthreads().values()) == 4
    assert len([task for task in stream.data if task["key"].startswith("transfer_batch")]) == 8


def test_a_listed_transfer_cuts_batches_by_bytes_so_large_objects_spread(client, tmp_path,
                                                                          monkeypatch):
    big = {f"big/{i}": os.urandom(300_000) for i in range(6)}
    small = {f"small/{i:03d}": b"x" * 10 for i in range(30)}
    src = CloudFiles(f"file://{tmp_path}/src")
    src.puts(list({**big, **small}.items()))
    # listed: the driver knows every size, and a batch closes before 600 000 bytes
    monkeypatch.setattr(distribute, "BATCH_BYTES", 600_000)
    with distributed.get_task_stream(client) as stream:
        record = transfer(src, f"file://{tmp_path}/dst", client=client)
    assert record.files == 36
    assert CloudFiles(f"file://{tmp_path}/dst").get(sorted(big))[0]["content"] == big["big/0"]
    batches = [task for task in stream.data if task["key"].startswith("transfer_batch")]
    assert len(batches) == 4, batches  # 2+2+2 large ones, then the 30 small ones together


def test_keys_pairs_and_the_default_client(client, tmp_path):
    src, data = _local_source(tmp_path, 40)
    keys = sorted(data)
    pairs = [(k, "renamed/" + k) for k in keys[:10]] + [{"path": keys[10], "dest_path": "one"}]
    # client=None: the current client (the one this module made) is used
    assert transfer(src, f"file://{tmp_path}/dst", pairs, batch_size=3).files == 11
    dst = CloudFiles(f"file://{tmp_path}/dst")
    assert sorted(dst.list()) == sorted(["one"] + ["renamed/" + k for k in keys[:10]])
    assert dst.get("one") == data[keys[10]]
    assert transfer(src, f"file://{tmp_path}/dst2", keys[5], client=client).files == 1  # one key


def test_s3_to_disk_and_disk_to_gcs(client, tmp_path, rclone_server, gcs_server):  # noqa: F811
    data = _payloads(300, size=5000)
    bucket = rclone_server.new_bucket()
    admin = rclone_server.admin()
    for key, value in data.items():
        admin.put_object(Bucket=bucket, Key=f"in/{key}", Body=value)
    s3 = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/in", secrets=S3_SECRETS)
    assert transfer(s3, f"file://{tmp_path}/dl", client=client, batch_size=40).files == len(data)
    for key, value in data.items():
        with open(os.path.join(tmp_path, "dl", key), "rb") as f:
            assert f.read() == value

    gcs_bucket = "dask-" + os.urandom(5).hex()
    gcs_server.create_bucket(gcs_bucket)
    written = transfer(f"file://{tmp_path}/dl", f"gs://{gcs_bucket}/out", client=client,
                       batch_size=40, reencode="gzip")
    assert written.files == len(data)
    for key in list(data)[:20]:  # what the emulator holds, read without the library
        stored = gcs_server.download(gcs_bucket, f"out/{key}")
        assert gzip.decompress(stored) == data[key]


def _idle_engine_threads() -> int:
    from cloudfiles_dask import _threads as scheduler

    return len(scheduler._idle)


def test_every_worker_starts_its_engine_threads_before_the_tasks_run(client, tmp_path,
                                                                     rclone_server):  # noqa: F811
    """Threads started while tasks run can deadlock a worker on CPython < 3.11.9 (gh-106883,
    with Dask's profiler): every worker starts its Dask threads x num_threads engine threads up
    front (plus the helper threads the backends declare they borrow: S3's large reads and
    uploads), even a worker given no batch, and the tasks reuse them."""
    src, data = _local_source(tmp_path, 3)
    dest = CloudFiles(f"file://{tmp_path}/out", num_threads=37)  # an otherwise unused count
    assert transfer(src, dest, client=client).files == 3  # one batch of 3: at most 3 threads needed
    idle = client.run(_idle_engine_threads)
    nthreads = client.nthreads()
    assert len(idle) == 2
    assert all(idle[w] >= nthreads[w] * 37 for w in idle), (idle, nthreads)
    bucket = rclone_server.new_bucket()
    admin = rclone_server.admin()
    for key, value in data.items():
        admin.put_object(Bucket=bucket, Key=key, Body=value)
    s3_src = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}", secrets=S3_SECRETS)
    dest = CloudFiles(f"file://{tmp_path}/out2", num_threads=41)  # more than before
    assert transfer(s3_src, dest, client=client).files == 3
    idle = client.run(_idle_engine_threads)
    assert s3.S3Backend.helper_threads == s3.HELPER_THREADS > 0
    assert all(idle[w] >= nthreads[w] * 41 + s3.HELPER_THREADS for w in idle), (idle, nthreads)


@pytest.fixture
def fast_reports(monkeypatch):
    """Workers report their running batches every 20 ms (the driver's setting, which it hands
    every worker, and those that join later) and the driver looks every 20 ms, not every half
    second, so batches of a tenth of a second are seen midway."""
    monkeypatch.setattr(distribute, "PUBLISH_INTERVAL", 0.02)
    monkeypatch.setattr(distribute, "TICK", 0.02)


def test_a_worker_killed_mid_transfer_costs_nothing_counts_nothing_twice_and_is_reported(
        client, tmp_path, fast_reports):
    """The victim dies once the bar shows about half of the four batches running: its batches
    had reported files the bar already shows. Dask runs them again elsewhere, where they report
    from zero again: the bar must still end at the number of files exactly (a batch shows the
    most any of its runs reported, then its result)."""
    src, data = _local_source(tmp_path, 3200)
    n = len(data)
    before = set(client.scheduler_info()["workers"])
    killed: list[str] = []
    events = []
    driver = threading.get_ident()

    def kill_midway(event) -> None:
        assert threading.get_ident() == driver  # events arrive on the calling thread
        events.append(event)
        shown = sum(e.files for e in events if e.kind == "advance")
        if event.kind != "advance" or killed or shown < 800:
            return
        victim = sorted(before)[0]
        killed.append(victim)
        try:
            client.run(os._exit, 1, workers=[victim])
        except Exception:  # noqa: BLE001 - the worker dies before it can answer
            pass

    # blocks of 16 files: a batch of 400 reports every 16 files it writes
    record = transfer(src, f"file://{tmp_path}/dst", client=client, batch_size=400,
                      block_size=16, max_in_flight=8, reencode="gzip", progress=kill_midway)
    assert killed and killed[0] in before
    client.wait_for_workers(2, timeout=60)
    assert killed[0] not in client.scheduler_info()["workers"]  # it really died
    assert record.files == n
    advances = [e for e in events if e.kind == "advance"]
    assert sum(e.files for e in advances) == n == events[-1].files
    assert sum(e.nbytes for e in advances) == record.total_bytes() == events[-1].nbytes
    [lost] = [w for w in record.lost_workers if w.address == killed[0]]
    assert lost.expected is False and lost.batches >= 1
    by_worker = record.by_worker()
    assert sum(t.files for t in by_worker.values()) == n
    assert sum(t.bytes for t in by_worker.values()) == record.total_bytes()
    dst = CloudFiles(f"file://{tmp_path}/dst")
    assert sorted(dst.list()) == sorted(data)
    assert {r["path"]: r["content"] for r in dst.get(list(data))} == data
    # a write cut short by the kill may leave its hidden temporary file, never a final name
    names = [name for _, _, files in os.walk(tmp_path / "dst") for name in files]
    finals = {k.split("/")[1] + ".gz" for k in data}
    assert all(name.startswith(".cfdask-tmp-") for name in names if name not in finals)
    assert len([name for name in names if name in finals]) == n


def test_a_task_on_each_host_runs_on_a_replacement_when_every_worker_of_the_host_died(
        tmp_path, monkeypatch):
    """The orphan sweep after a transfer runs once per machine. Found by a chaos run: the last
    worker was killed while that task ran, and the task, tied to the dead worker's address,
    waited for the timeout instead of running on the worker the nanny started in its place."""
    monkeypatch.setattr(distribute, "HOST_TASK_TIMEOUT", 40.0)
    marker = str(tmp_path / "died-once")

    def die_the_first_time(path: str) -> int:
        if not os.path.exists(path):
            with open(path, "w"):
                pass
            os._exit(1)
        return os.getpid()

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster) as c:
        c.wait_for_workers(1, timeout=60)
        [first] = c.run(os.getpid).values()
        assert distribute.DaskExecutor(c).on_each_host(die_the_first_time, marker) == [
            *c.run(os.getpid).values()]
        assert os.path.exists(marker) and first not in c.run(os.getpid).values()


def test_progress_moves_while_batches_run_on_the_calling_thread(client, tmp_path, fast_reports):
    src, data = _local_source(tmp_path, 1200)
    events, threads = [], set()

    def sink(event) -> None:
        events.append(event)
        threads.add(threading.get_ident())

    record = transfer(src, f"file://{tmp_path}/dst", client=client, batch_size=600,
                      reencode="gzip", progress=sink)
    assert threads == {threading.get_ident()}
    advances = [e for e in events if e.kind == "advance"]
    assert len(advances) > 2  # two batches, yet the bar moved while they ran
    assert any(0 < e.files < 600 for e in advances)
    assert sum(e.files for e in advances) == len(data) == record.files
    assert sum(e.nbytes for e in advances) == record.total_bytes()


def test_a_transfer_shows_the_whole_cluster_and_each_worker_in_a_progress_widget(
        client, tmp_path, fast_reports):
    pytest.importorskip("ipywidgets")
    from cloudfiles_dask.jupyter import ProgressWidget

    src, data = _local_source(tmp_path, 800)
    p = ProgressWidget(display=False)
    record = transfer(src, f"file://{tmp_path}/dst", client=client, batch_size=100, progress=p)
    state = p.state()
    assert state.files == 800 == record.files and state.nbytes == record.total_bytes()
    assert set(state.workers) <= set(client.scheduler_info()["workers"])
    assert sum(f for f, _ in state.workers.values()) == 800
    assert {w: t.files for w, t in record.by_worker().items()} == {
        w: f for w, (f, _) in state.workers.items()}  # the bar's split is the record's
    assert all(w in p.view.value for w in state.workers)  # the split, by worker
    assert p.style == "success" and state.records == (record,)


def test_the_summary_is_the_merged_record_per_worker_and_plain_data(client, tmp_path):
    src, data = _local_source(tmp_path, 300)
    record = transfer(src, f"file://{tmp_path}/dst", client=client, batch_size=20)
    assert isinstance(record, TransmissionMonitor) and record.direction is IOEnum.TX
    assert record.files == 300 and record.total_bytes() == sum(map(len, data.values()))
    assert record.num_errors == 0 and record.errors() == [] and record.lost_workers == []
    assert record.duration() > 0 and record.total_bps() > 0
    by_worker = record.by_worker()
    assert set(by_worker) == set(client.scheduler_info()["workers"])  # both ran batches
    assert sum(t.files for t in by_worker.values()) == 300
    assert sum(t.bytes for t in by_worker.values()) == record.total_bytes()
    summary = record.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["files"] == 300 and summary["errors"] == [] and summary["lost_workers"] == []
    assert summary["by_worker"] == {w: t._asdict() for w, t in by_worker.items()}
    again = pickle.loads(pickle.dumps(record))
    assert again.by_worker() == by_worker and again.files == 300
    twice = TransmissionMonitor.merge([record, again])  # summaries merge like any record
    assert {w: t.files for w, t in twice.by_worker().items()} == {
        w: 2 * t.files for w, t in by_worker.items()}


def test_transfer_to_and_from_with_a_client_return_the_merged_record(client, tmp_path):
    src, data = _local_source(tmp_path, 120)
    dest = CloudFiles(f"file://{tmp_path}/to")
    to = src.transfer_to(dest, client=client, reencode="gzip")
    back = CloudFiles(f"file://{tmp_path}/from").transfer_from(dest, client=client, reencode="none")
    for record in (to, back):
        assert isinstance(record, TransmissionMonitor) and record.files == 120
        assert set(record.by_worker()) <= set(client.scheduler_info()["workers"])
        assert sum(t.files for t in record.by_worker().values()) == 120
    assert {r["path"]: r["content"] for r in dest.get(list(data))} == data
    assert {r["compress"] for r in dest.get(list(data)[:5], raw=True)} == {"gzip"}
    again = CloudFiles(f"file://{tmp_path}/from")
    assert {r["path"]: r["content"] for r in again.get(list(data))} == data
    assert {r["compress"] for r in again.get(list(data)[:5], raw=True)} == {None}
    local = src.transfer_to(f"file://{tmp_path}/plain")  # without Dask: the same kind of record
    assert type(local) is type(to) and local.files == to.files and local.by_worker() == {}


def test_a_failure_carries_the_summary_with_the_failed_key_and_cause(client, tmp_path):
    src, data = _local_source(tmp_path, 60)
    keys = sorted(data)
    # one batch at a time: the first (31 files) finishes, the second writes 29 files and fails
    with pytest.raises(FileNotFoundError, match="nope") as info:
        transfer(src, f"file://{tmp_path}/dst", keys + ["nope"], client=client, batch_size=31,
                 max_in_flight=1)
    error = info.value
    summary = error.recording
    assert isinstance(summary, TransmissionMonitor)
    assert summary.files == 60 and summary.total_bytes() == sum(map(len, data.values()))
    [failure] = summary.errors()
    assert failure.path == "nope" and isinstance(failure.error, FileNotFoundError)
    assert "nope" in str(failure.error)
    [failed_on] = [t for t in summary.by_worker().values() if t.errors]
    assert failed_on.errors == 1 and sum(t.files for t in summary.by_worker().values()) == 60
    assert any(".recording" in note for note in error.__notes__)
    assert summary.summary()["errors"][0]["path"] == "nope"
    kept = pickle.loads(pickle.dumps(error))  # the error and its summary travel together
    assert kept.recording.errors()[0].path == "nope" and kept.recording.files == 60


def test_a_missing_source_fails_naming_its_batch_and_allow_missing_writes_empty(client, tmp_path):
    src, data = _local_source(tmp_path, 5)
    keys = sorted(data)
    with pytest.raises(FileNotFoundError, match="nope") as info:
        transfer(src, f"file://{tmp_path}/dst", keys + ["nope"], client=client, batch_size=3)
    assert any("nope" in note or keys[3] in note for note in getattr(info.value, "__notes__", []))
    assert transfer(src, f"file://{tmp_path}/dst2", keys + ["nope"], client=client,
                    allow_missing=True).files == 6
    assert CloudFiles(f"file://{tmp_path}/dst2").get("nope") == b""


def test_memory_paths_are_refused_before_anything_runs(client, tmp_path):
    mem = CloudFiles("mem://dask-test/src")
    mem.puts([("a", b"1"), ("b", b"2")])
    with pytest.raises(ProcessBoundaryError, match="mem://dask-test/src"):
        transfer(mem, f"file://{tmp_path}/dst", client=client)
    with pytest.raises(ProcessBoundaryError, match="mem://dask-test/out"):
        transfer(f"file://{tmp_path}", "mem://dask-test/out", client=client)
    assert not os.path.exists(tmp_path / "dst")


@pytest.mark.parametrize("option", ["batch_size", "max_in_flight"])
@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_bad_batch_options_are_refused(client, tmp_path, option, bad):
    with pytest.raises(ValueError, match=option):
        transfer(f"file://{tmp_path}/a", f"file://{tmp_path}/b", client=client, **{option: bad})


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_importing_the_face_does_not_import_dask_and_no_client_is_a_clear_error(tmp_path):
    out = _python("import sys, cloudfiles_dask.dask; "
                  "print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    out = _python(f"from cloudfiles_dask.dask import transfer; transfer('file://{tmp_path}/a', "
                  f"'file://{tmp_path}/b')")
    assert out.returncode != 0
    assert "ValueError: no Dask client: pass client=" in out.stderr


_MADE: list[str] = []  # in a worker: the roots of the backends made there


def _count_backends_made() -> None:
    from cloudfiles_dask._engine.config import CloudFilesConfig

    real = CloudFilesConfig.new_backend

    def counted(self):
        _MADE.append(self.path)
        return real(self)

    _MADE.clear()
    CloudFilesConfig.new_backend = counted


def _backends_made(prefix: str) -> int:
    return sum(path.startswith(prefix) for path in _MADE)


def test_a_worker_makes_one_backend_per_configuration_however_many_batches(client, tmp_path):
    src, data = _local_source(tmp_path, 400)
    client.run(_count_backends_made)
    with distributed.get_task_stream(client) as stream:
        assert transfer(src, f"file://{tmp_path}/dst", client=client, batch_size=20).files == 400
    assert len([task for task in stream.data if task["key"].startswith("transfer_batch")]) == 20
    made = client.run(_backends_made, f"file://{tmp_path}")
    assert sum(made.values()) >= 2, made  # each worker that ran a batch made its two
    assert all(count <= 2 for count in made.values()), made  # and no more: one per configuration
