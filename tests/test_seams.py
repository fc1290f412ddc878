"""The engine's seams under the faces: the CloudFiles configuration, one backend per
configuration per process, and the one way work is spread over processes."""

from __future__ import annotations

import os
import pickle
import threading

import pytest

from cloudfiles_dask import CloudFiles, ProcessBoundaryError
from cloudfiles_dask._engine import config as engine_config
from cloudfiles_dask._engine import distribute
from cloudfiles_dask._engine.config import CloudFilesConfig, process_backend
from cloudfiles_dask._engine.jobs import PutOptions, TransferOptions
from cloudfiles_dask._iteration import batched_by

# -- the configuration --------------------------------------------------------------------------


def test_a_cloudfiles_is_its_configuration(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}/a", num_threads=7, secrets={"token": "s3cr3t"})
    config = cf.config
    assert isinstance(config, CloudFilesConfig)
    assert (config.cloudpath, config.num_threads) == (f"file://{tmp_path}/a", 7)
    assert cf.cloudpath == config.path and cf.protocol == "file" == config.protocol
    with pytest.raises(AttributeError):
        config.num_threads = 3  # frozen
    assert "s3cr3t" not in repr(config) and "s3cr3t" not in repr(cf)
    again = pickle.loads(pickle.dumps(cf))
    assert again.config == config and again.num_threads == 7
    assert again.secrets == {"token": "s3cr3t"}  # passed explicitly: it travels


def test_bad_arguments_fail_when_the_configuration_is_made():
    with pytest.raises(ValueError, match="num_threads"):
        CloudFilesConfig("mem://b/x", num_threads=-1)
    with pytest.raises(ValueError, match="endpoint"):
        CloudFilesConfig("gs://b/x", endpoint="https://example.invalid")
    with pytest.raises(ValueError, match="request_payer"):
        CloudFilesConfig("https://example.invalid/x", request_payer="me")
    with pytest.raises(ValueError, match="bucket-owner"):
        CloudFilesConfig("s3://b/x", request_payer="bucket-owner")
    with pytest.raises(ValueError, match="ftp://nowhere"):
        CloudFilesConfig("s3://b/x", endpoint="ftp://nowhere")
    with pytest.raises(ValueError, match="parallel"):
        CloudFilesConfig("mem://b/x", parallel=-2)


def test_a_progress_callback_stays_behind_when_the_configuration_travels(tmp_path):
    events = []
    cf = CloudFiles(f"file://{tmp_path}", progress=events.append)
    shipped = pickle.loads(pickle.dumps(cf.config))
    assert shipped.progress is False and cf.config.progress is not False
    assert pickle.loads(pickle.dumps(CloudFiles(f"file://{tmp_path}", progress="label"))).progress == "label"


def test_equal_configurations_give_equal_dask_tokens(tmp_path):
    tokenize = pytest.importorskip("dask.base").tokenize
    path = f"file://{tmp_path}/t"
    a, b = CloudFiles(path, num_threads=5), CloudFiles(path, num_threads=5)
    assert a is not b and tokenize(a) == tokenize(b) and a.config == b.config
    assert hash(a.config) == hash(b.config)
    assert tokenize(a) == tokenize(pickle.loads(pickle.dumps(a)))
    assert tokenize(a) != tokenize(CloudFiles(path, num_threads=6))
    assert tokenize(a) != tokenize(CloudFiles(f"file://{tmp_path}/u", num_threads=5))
    secret_a = CloudFiles("s3://b/x", secrets={"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "1"})
    secret_b = CloudFiles("s3://b/x", secrets={"AWS_ACCESS_KEY_ID": "b", "AWS_SECRET_ACCESS_KEY": "1"})
    assert tokenize(secret_a) != tokenize(secret_b)


def test_setting_an_attribute_makes_a_new_configuration_and_backend(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}", num_threads=4)
    before = cf.backend
    cf.num_threads = 9
    assert cf.num_threads == 9 == cf.config.num_threads
    assert pickle.loads(pickle.dumps(cf)).num_threads == 9
    assert cf.backend is not before and cf.backend.options.num_threads == 9
    with pytest.raises(ValueError, match="num_threads"):
        cf.num_threads = -3
    assert cf.num_threads == 9  # a refused value changes nothing


# -- one backend per configuration per process ---------------------------------------------------


def test_cloudfiles_made_here_keep_their_own_backend_and_unpickled_ones_share(tmp_path):
    path = f"file://{tmp_path}/shared"
    made = [CloudFiles(path), CloudFiles(path)]
    assert made[0].backend is not made[1].backend
    arrived = [pickle.loads(pickle.dumps(cf)) for cf in made]
    assert arrived[0].backend is arrived[1].backend is process_backend(made[0].config)
    other = pickle.loads(pickle.dumps(CloudFiles(path, num_threads=3)))
    assert other.backend is not arrived[0].backend


def test_the_process_cache_is_bounded_and_reset(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_config, "MAX_PROCESS_BACKENDS", 3)
    configs = [CloudFilesConfig(f"file://{tmp_path}/{i}") for i in range(5)]
    first = process_backend(configs[0])
    for config in configs[1:]:
        process_backend(config)
    assert len(engine_config._backends) == 3
    assert process_backend(configs[0]) is not first  # the least recently used went
    engine_config.reset_process_state()
    assert len(engine_config._backends) == 0


def test_a_forked_child_makes_its_own_backend(tmp_path):
    config = CloudFilesConfig(f"file://{tmp_path}")
    parent = id(process_backend(config))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's backends were forgotten at the fork
        try:
            os.write(write, b"1" if not engine_config._backends and id(process_backend(config)) else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert id(process_backend(config)) == parent


# -- spreading work over processes ---------------------------------------------------------------


@pytest.mark.parametrize("total, slots, expected", [
    (None, 4, 250), (10, 4, 20), (400, 4, 50), (10_000_000, 4, 1250), (100, 1, 50), (0, 2, 20),
])
def test_one_rule_for_batch_sizes(total, slots, expected):
    assert distribute.batch_size_for(total, slots) == expected


def test_batch_sizes_respect_a_cap():
    assert distribute.batch_size_for(400, 1, cap=64) == 64
    assert distribute.batch_size_for(None, 1, cap=10) == 10


def test_batches_by_count_and_bytes_read_lazily_and_keep_a_heavy_item_alone():
    seen = []

    def items():
        for size in (5, 5, 5, 30, 1, 1, 1, 1, 1):
            seen.append(size)
            yield size

    batches = batched_by(items(), 3, 10, int)
    assert next(batches) == [5, 5] and seen == [5, 5, 5]  # the third 5 would pass 10 bytes
    assert list(batches) == [[5], [30], [1, 1, 1], [1, 1]]  # 30 alone; then 3 at most
    assert list(batched_by([], 3, 10, int)) == []


def test_batches_run_in_other_processes_in_order_and_read_lazily(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}")
    files = [(f"k{i:03d}", f"v{i}".encode()) for i in range(90)]
    taken = []
    seen_when_done = []

    def batches():
        for start in range(0, 90, 10):
            taken.append(start)
            yield files[start:start + 10]

    with distribute.ProcessExecutor(2) as executor:
        counts = distribute.run_batches(executor, distribute.put_batch, batches(), cf.config,
                                        PutOptions(compress="gzip"), in_flight=2,
                                        on_done=lambda batch, count: seen_when_done.append(len(taken)))
        assert [count for count, _ in counts] == [10] * 9
        assert seen_when_done[0] <= 3  # the generator was not drained up front
        got = distribute.run_batches(executor, distribute.get_batch, [["k005", "k050"], ["k089"]],
                                     cf.config, False, True)
        pids = distribute.run_batches(executor, _pid_of, [[1], [2], [3]])
    assert [[r["content"] for r in batch] for batch, _ in got] == [[b"v5", b"v50"], [b"v89"]]
    assert os.getpid() not in {pid for batch in pids for pid in batch}
    assert (tmp_path / "k000.gz").exists()


def _pid_of(batch: list) -> list[int]:
    return [os.getpid() for _ in batch]


def test_a_failed_batch_names_its_first_key_and_cancels_the_rest(tmp_path):
    src = CloudFiles(f"file://{tmp_path}/src")
    src.puts([("a", b"1"), ("b", b"2")])
    dest = CloudFiles(f"file://{tmp_path}/dst")
    pairs = [[("a", "a")], [("missing", "missing")], [("b", "b")]]
    with distribute.ProcessExecutor(1) as executor, \
            pytest.raises(FileNotFoundError, match="missing") as info:
        distribute.run_batches(executor, distribute.transfer_batch, pairs, src.config,
                               dest.config, TransferOptions(), in_flight=1)
    assert "(in the batch starting with 'missing')" in info.value.__notes__


def test_the_one_boundary_check_refuses_memory_before_anything_runs(monkeypatch):
    mem = CloudFiles("mem://seams/x")
    submitted = []
    monkeypatch.setattr(distribute.ProcessExecutor, "submit",
                        lambda self, fn, *args: submitted.append(fn))
    with distribute.ProcessExecutor(2) as executor, \
            pytest.raises(ProcessBoundaryError, match="mem://seams/x.*parallel=2"):
        executor.check_boundary([mem.config])
    for call in (lambda: mem.puts([("a", b"1"), ("b", b"2")], parallel=2),
                 lambda: mem.get(["a", "b"], parallel=2), lambda: mem.delete(["a"], parallel=2)):
        with pytest.raises(ProcessBoundaryError, match="mem://seams/x"):
            call()
    assert submitted == [] and mem.get("a") is None
    state = mem.__getstate__()  # as another process would have pickled it
    state["pid"] += 1
    with pytest.raises(ProcessBoundaryError, match="sent there from process"):
        CloudFiles.__new__(CloudFiles).__setstate__(state)


def test_backends_fan_parts_out_on_the_runner_their_options_carry(tmp_path):
    green = CloudFiles(f"file://{tmp_path}", green=False)
    runner = green.backend.options.runner
    assert runner.green is False
    seen = set()
    assert runner.run(lambda x: seen.add(threading.current_thread().name) or x * 2,
                      list(range(8)), 4) == [x * 2 for x in range(8)]
    assert seen <= {"cfdask-worker", threading.current_thread().name}
    assert pickle.loads(pickle.dumps(runner)) == runner
