"""What killed writers leave on file://, and how it is found and removed (issue 21).

Writers here are real processes: a ``put`` streaming from its stdin (it stays mid-write, its
temporary file open, for as long as the test keeps the pipe open), a resumable download
appending to its partial file, and a ``ResumableTransfer`` downloading from a local HTTP server
that stops halfway through every body. They are SIGKILLed mid-write, or kept alive to show that
a live writer's file is never taken from it.
"""

from __future__ import annotations

import dataclasses
import http.server
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from cloudfiles_dask import CloudFiles, ReadOnlyBackendError, _owners
from cloudfiles_dask._engine import ops
from cloudfiles_dask.backends import local
from cloudfiles_dask.dask import transfer
from cloudfiles_dask.resumable import ResumableTransfer
from tests.processes import stop_all

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL and POSIX processes")

REPO = str(Path(__file__).resolve().parent.parent)
MIB = 1 << 20

WRITER = textwrap.dedent(
    """
    import os, sys
    from cloudfiles_dask import CloudFiles
    from cloudfiles_dask.resumable import ResumableTransfer

    mode, root, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "put":  # stream stdin into key `arg`: mid-write until stdin is closed
        CloudFiles(root).put(arg, sys.stdin.buffer)
    elif mode == "partial":  # a resumable download of key `arg`, appending what stdin gives
        backend = CloudFiles(root).backend

        def produce(out, offset):
            out.write(os.read(0, 1 << 16))
            out.flush()
            sys.stdout.write("appending\\n")
            sys.stdout.flush()
            sys.stdin.buffer.read()  # until the test closes stdin
            return None

        backend.receive(arg, produce, None, resumable=True)
    elif mode == "xfer":  # run the ledger `arg`
        ResumableTransfer(arg).execute(block_size=8)
    print("done", flush=True)
    """
)


# -- helpers -----------------------------------------------------------------------------------------
@pytest.fixture
def writer(tmp_path):
    """Factory: ``writer(mode, root, arg)`` starts a writer process (stdin and stdout piped)."""
    script = tmp_path / "debris_writer.py"
    script.write_text(WRITER)
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def start(mode: str, root: str, arg: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, str(script), mode, root, arg],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, cwd=str(tmp_path))
        procs.append(proc)
        return proc

    yield start
    stop_all(procs)


def wait_for(condition, proc: subprocess.Popen | None = None, what: str = "", timeout: float = 60.0):
    """Poll ``condition()`` until it returns something true (which is returned); fail if
    ``proc`` exits first (with its stderr) or nothing comes within ``timeout``: a readiness
    wait, never a measure of speed."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the writer exited ({proc.returncode}) before {what}: "
                        f"{proc.stderr.read().decode(errors='replace')}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(local.TMP_PREFIX + "*") if p.is_file())


def hidden_files(root: Path) -> list[str]:
    """Every file under ``root`` whose name starts with a dot (what listings hide)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if p.is_file())


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def mid_write(writer, root: Path, key: str, nbytes: int = 2 * MIB) -> tuple[subprocess.Popen, Path]:
    """A ``put`` of ``key`` under ``root`` that has written at least 1 MiB to its temporary
    file and waits for more: the process and its temporary file."""
    directory = root / os.path.dirname(key)
    before = set(temp_files(directory)) if directory.exists() else set()
    proc = writer("put", f"file://{root}", key)
    proc.stdin.write(b"x" * nbytes)
    proc.stdin.flush()

    def written() -> Path | None:
        fresh = [p for p in temp_files(directory) if p not in before] if directory.exists() else []
        return fresh[0] if fresh and fresh[0].stat().st_size >= MIB else None

    return proc, wait_for(written, proc, f"the temporary file of {key}")


def planted(directory: Path, host: str, pid: int, created: float, age: float | None = None) -> Path:
    """A temporary file named as ``host``/``pid`` would name it at ``created``; its mtime set
    ``age`` seconds back if given."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{local.TMP_PREFIX}{host}-{pid}-{int(created * 1000)}-0123456789ab"
    path.write_bytes(b"left behind")
    if age is not None:
        os.utime(path, (time.time() - age, time.time() - age))
    return path


# -- names ------------------------------------------------------------------------------------------
def test_temporary_names_say_whose_and_when(tmp_path):
    before = time.time()
    name = os.path.basename(local._tmp_name(str(tmp_path / "some" / "key")))
    after = time.time()
    owner = local.temp_name_owner(name)
    assert owner.host == _owners.this_host() and owner.pid == os.getpid()
    assert before - 0.001 <= owner.created <= after + 0.001  # milliseconds in the name
    assert name.startswith(local.TMP_PREFIX) and "/" not in name
    assert local._hidden(name)
    assert local._tmp_name(str(tmp_path / "k")) != local._tmp_name(str(tmp_path / "k"))


def test_host_tags_stay_one_bounded_path_component():
    tag = _owners.host_tag("odd host/name:with*chars\\" + "x" * 200)
    assert set(tag) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert len(tag) == _owners.HOST_CHARS and tag.startswith("odd_host_name_with_chars_")
    assert _owners.host_tag("") == "unknown"
    longest = f"{local.TMP_PREFIX}{tag}-{2**22}-{10**13}-{'f' * 12}"
    assert len(longest.encode()) < 255
    assert local.temp_name_owner(longest) == local.TempOwner(tag, 2**22, 10**10)


def test_names_are_parsed_from_the_right_so_hosts_may_hold_dashes():
    name = local.TMP_PREFIX + "ip-10-0-0-1.ec2.internal-4321-1700000000123-00ff00ff00ff"
    assert local.temp_name_owner(name) == local.TempOwner("ip-10-0-0-1.ec2.internal", 4321, 1700000000.123)
    # the old form records no owner; other names are not temporary files at all
    assert local.temp_name_owner(local.TMP_PREFIX + "0123456789abcdef") is None
    assert local.temp_name_owner(local.TMP_PREFIX + "host-12-34-notHEX") is None
    assert local.temp_name_owner("plain-12-1700000000000-ab") is None


# -- a killed writer ---------------------------------------------------------------------------------
def test_a_killed_writer_leaves_a_temporary_file_the_sweep_finds_with_owner_and_age(tmp_path, writer):
    root = tmp_path / "dest"
    cf = CloudFiles(f"file://{root}")
    cf.put("sub/kept.bin", b"kept")
    started = time.time()
    proc, temp = mid_write(writer, root, "sub/big.bin")
    kill(proc)
    killed = time.time()

    assert temp.exists() and list(cf.list()) == ["sub/kept.bin"]  # hidden from listings
    assert cf.sweep() == []  # younger than the default hour
    [item] = cf.sweep(older_than=0)
    assert item["kind"] == "temp-file" and item["key"] is None and item["url"] is None
    assert item["handle"] == str(temp)
    assert item["owner"] == f"{_owners.this_host()}:{proc.pid}"
    assert (item["live"], item["orphaned"], item["removed"]) == (False, True, False)
    assert item["size"] == temp.stat().st_size >= MIB
    assert started - 0.001 <= item["created"] <= killed
    assert item["age"] >= 0
    assert temp.exists()  # without delete, only shown

    [gone] = cf.sweep(older_than=0, delete=True)
    assert gone["removed"] is True
    assert hidden_files(root) == [] and cf.get("sub/kept.bin") == b"kept"
    assert cf.sweep(older_than=0) == []


def test_a_live_writers_temporary_file_is_shown_live_and_never_removed(tmp_path, writer):
    root = tmp_path / "dest"
    cf = CloudFiles(f"file://{root}")
    proc, temp = mid_write(writer, root, "big.bin", 3 * MIB)

    [item] = cf.sweep(older_than=0, delete=True)
    assert item["owner"] == f"{_owners.this_host()}:{proc.pid}"
    assert (item["live"], item["orphaned"], item["removed"]) == (True, False, False)
    assert temp.exists()
    # asked to remove it as if it were not live, the backend asks the process table again
    backend = cf.backend
    [debris] = list(backend.find_debris("", 0.0))
    assert backend.remove_debris([dataclasses.replace(debris, live=False)]) == 0
    assert temp.exists()

    proc.stdin.write(b"y" * MIB)
    proc.stdin.close()
    assert proc.wait(60) == 0, proc.stderr.read().decode()
    assert cf.get("big.bin") == b"x" * (3 * MIB) + b"y" * MIB  # the writer finished intact
    assert hidden_files(root) == []  # and took its temporary file with it


def test_a_reused_pid_does_not_make_an_old_file_live(tmp_path, writer):
    root = tmp_path / "dest"
    sleeper = writer("put", f"file://{tmp_path / 'elsewhere'}", "k")  # a live process: its pid
    now = time.time()
    reused = planted(root, _owners.this_host(), sleeper.pid, now - 3600)  # made before it started
    current = planted(root / "b", _owners.this_host(), sleeper.pid, now)  # made after it started
    foreign = planted(root / "c", "another-host.example", sleeper.pid, now)
    found = {Path(d.handle): d for d in CloudFiles(f"file://{root}").backend.find_debris()}
    assert (found[reused].live, found[reused].orphaned) == (False, True)
    assert (found[current].live, found[current].orphaned) == (True, False)
    assert (found[foreign].live, found[foreign].orphaned) == (False, False)
    assert found[foreign].owner == f"another-host.example:{sleeper.pid}"


def test_old_style_names_have_no_owner_and_go_by_age(tmp_path):
    root = tmp_path / "dest"
    root.mkdir()
    old, fresh = root / (local.TMP_PREFIX + "00112233aabbccdd"), root / (local.TMP_PREFIX + "deadbeef")
    old.write_bytes(b"o")
    fresh.write_bytes(b"f")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    cf = CloudFiles(f"file://{root}")
    [item] = cf.sweep()
    assert item["handle"] == str(old) and item["owner"] is None
    assert (item["live"], item["orphaned"]) == (False, False)
    assert 7100 < item["age"] < 7300
    assert cf.sweep(delete=True)[0]["removed"]
    assert not old.exists() and fresh.exists()


def test_a_file_still_being_written_is_not_old_whatever_its_name_says(tmp_path):
    root = tmp_path / "dest"
    path = planted(root, "another-host.example", 99, time.time() - 7200)  # named 2 h ago, written now
    cf = CloudFiles(f"file://{root}")
    assert cf.sweep() == []
    os.utime(path, (time.time() - 7200, time.time() - 7200))
    assert [item["handle"] for item in cf.sweep()] == [str(path)]


# -- partial downloads --------------------------------------------------------------------------------
def test_a_partial_download_is_live_while_its_download_holds_it(tmp_path, writer):
    root = tmp_path / "dest"
    cf = CloudFiles(f"file://{root}")
    proc = writer("partial", f"file://{root}", "dl/file.bin")
    proc.stdin.write(b"p" * 5000)
    proc.stdin.flush()
    wait_for(lambda: proc.stdout.readline() == b"appending\n", proc, "the download's first bytes")
    partial = root / "dl" / ".file.bin.cfdask-partial"

    [item] = cf.sweep(older_than=0, delete=True)
    assert item["kind"] == "partial-download" and item["key"] == "dl/file.bin"
    assert item["url"] == cf.backend.url("dl/file.bin") and item["url"].endswith("/dest/dl/file.bin")
    assert item["handle"] == str(partial) and item["size"] == 5000
    assert (item["live"], item["orphaned"], item["removed"]) == (True, False, False)
    assert partial.exists()

    kill(proc)
    [item] = cf.sweep(older_than=0)
    assert (item["live"], item["orphaned"]) == (False, False)  # kept on purpose: a later run continues
    [item] = cf.sweep(older_than=0, delete=True)
    assert item["removed"] and not partial.exists()


# -- where the search looks -----------------------------------------------------------------------------
def test_find_debris_walks_hidden_names_but_not_links_and_honours_prefix_and_flat(tmp_path):
    root = tmp_path / "dest"
    outside = tmp_path / "outside"
    host = "h.example"
    top = planted(root, host, 1, time.time())
    in_a = planted(root / "a", host, 2, time.time())
    in_ab = planted(root / "a" / "b", host, 3, time.time())
    in_hidden = planted(root / ".hidden" / "deep", host, 4, time.time())
    in_ax = planted(root / "ax", host, 5, time.time())
    partial = root / "a" / ".data.bin.cfdask-partial"
    partial.write_bytes(b"12")
    planted(outside, host, 6, time.time())
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "a" / "real.bin").write_bytes(b"real")
    backend = CloudFiles(f"file://{root}").backend

    def found(prefix: str = "", flat: bool = False) -> set[Path]:
        return {Path(d.handle) for d in backend.find_debris(prefix, 0.0, flat=flat)}

    assert found() == {top, in_a, in_ab, in_hidden, in_ax, partial}  # never through the link
    assert found("a/") == {in_a, in_ab, partial}
    assert found("a") == {in_a, in_ab, partial, in_ax}
    assert found("a/", flat=True) == {in_a, partial}
    assert found("", flat=True) == {top}
    assert found("a/data") == {partial}  # a partial file goes by its key
    assert found("a/b/") == {in_ab}
    assert found("missing/") == set()
    assert found("a/b/../") == found("a/")  # handles stay plain paths (what is removed)
    assert all(".." not in str(p) for p in found("a/b/../"))
    with pytest.raises(local.PathEscapeError):
        found("../")


def test_listings_hide_the_new_names(tmp_path):
    root = tmp_path / "dest"
    cf = CloudFiles(f"file://{root}")
    cf.puts([("d/one", b"1"), ("two", b"22")])
    planted(root / "d", _owners.this_host(), os.getpid(), time.time())
    planted(root, "x-y-z", 7, time.time())
    assert sorted(cf.list()) == ["d/one", "two"]
    assert sorted(cf.list(flat=True)) == ["d/", "two"]
    assert sorted(cf.backend.list("", False, True)) == [("d/one", 1), ("two", 2)]


def test_remove_debris_removes_only_debris_under_its_root_and_tolerates_gone_files(tmp_path):
    root = tmp_path / "dest"
    cf = CloudFiles(f"file://{root}")
    cf.put("real.bin", b"real")
    backend = cf.backend
    temp = planted(root, "h.example", 1, time.time() - 10)
    [item] = list(backend.find_debris())
    for handle in (str(root / "real.bin"), str(tmp_path / "other" / temp.name),
                   str(root / "sub" / ".." / temp.name)):
        with pytest.raises(ValueError, match="not a temporary or partial file under"):
            backend.remove_debris([dataclasses.replace(item, handle=handle)])
    with pytest.raises(ValueError):  # a temporary file's name given as a partial download
        backend.remove_debris([dataclasses.replace(item, kind="partial-download")])
    assert backend.remove_debris([item]) == 1
    assert backend.remove_debris([item]) == 0  # gone already
    assert cf.get("real.bin") == b"real"


# -- writers that fail clean up after themselves ----------------------------------------------------------
class _Breaks(io.RawIOBase):
    """A stream that gives some bytes, then fails (a source read from a broken disk or socket)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self.calls += 1
        if self.calls > 2:
            raise OSError("the source broke")
        buffer[:1000] = b"z" * 1000
        return 1000


def test_a_failed_write_removes_its_temporary_file(tmp_path):
    root = tmp_path / "dest"
    cf = CloudFiles(f"file://{root}")
    cf.put("d/first", b"1")
    with pytest.raises(OSError, match="the source broke"):
        cf.put("d/broken", _Breaks())
    assert hidden_files(root) == [] and list(cf.list()) == ["d/first"]


def test_a_move_onto_a_directory_fails_keeping_the_source(tmp_path):
    src = CloudFiles(f"file://{tmp_path / 'src'}")
    src.put("a", b"the only copy")
    (tmp_path / "dst" / "b").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        src.moves(f"file://{tmp_path / 'dst'}", [("a", "b")])
    assert src.get("a") == b"the only copy"
    assert hidden_files(tmp_path) == []
    with pytest.raises(IsADirectoryError):
        src.transfer_to(f"file://{tmp_path / 'dst'}", paths=[("a", "b")])
    assert hidden_files(tmp_path) == [] and src.get("a") == b"the only copy"


def test_a_move_keeps_the_inode_and_leaves_one_name(tmp_path):
    src = CloudFiles(f"file://{tmp_path / 'src'}")
    src.put("a", b"moved")
    inode = (tmp_path / "src" / "a").stat().st_ino
    src.moves(f"file://{tmp_path / 'dst'}", [("a", "x/b")])
    moved = tmp_path / "dst" / "x" / "b"
    assert moved.read_bytes() == b"moved" and moved.stat().st_ino == inode
    assert moved.stat().st_nlink == 1 and not (tmp_path / "src" / "a").exists()
    assert hidden_files(tmp_path) == []


# -- resumed transfers remove what their predecessors left ------------------------------------------------
class _HalfwayServer(http.server.ThreadingHTTPServer):
    """Objects over HTTP on 127.0.0.1; while ``stall`` is set, every GET sends its headers and
    half its body, then nothing more until the test ends (a download hangs mid-file)."""

    daemon_threads = True

    def __init__(self, objects: dict[str, bytes]):
        super().__init__(("127.0.0.1", 0), _Halfway)
        self.objects = objects
        self.stall = threading.Event()
        self.release = threading.Event()


class _Halfway(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HalfwayServer

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = self.server.objects.get(self.path.lstrip("/").split("?")[0])
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.stall.is_set():
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.server.release.wait(120)
            self.close_connection = True
            return
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        body = self.server.objects.get(self.path.lstrip("/").split("?")[0])
        self.send_response(404 if body is None else 200)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()


@pytest.fixture
def halfway():
    objects = {f"data/d{i % 3}/f{i:03d}.bin": os.urandom(1000 + 97 * i) for i in range(24)}
    server = _HalfwayServer(objects)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def test_a_resumed_transfer_leaves_nothing_hidden_and_spares_live_writers(tmp_path, writer, halfway):
    dest = tmp_path / "dest"
    keys = sorted(key[len("data/"):] for key in halfway.objects)
    db = str(tmp_path / "job.db")
    source = f"http://127.0.0.1:{halfway.server_address[1]}/data"
    ResumableTransfer(db).init(source, f"file://{dest}", paths=keys)

    halfway.stall.set()  # the first run hangs mid-download, then is killed
    first = writer("xfer", "-", db)
    left = wait_for(lambda: temp_files(dest), first, "the first run's temporary files")
    kill(first)
    assert all(local.temp_name_owner(p.name).pid == first.pid for p in left)

    live, live_temp = mid_write(writer, dest, "d0/live.bin")  # a live writer where it writes
    now = time.time()
    stranger = planted(dest / "d1", "another-host.example", 77, now)  # cannot be told: kept
    abandoned = planted(dest / "d2", "another-host.example", 78, now - 3 * 86400, age=2 * 86400)
    elsewhere = planted(dest / "unrelated", _owners.this_host(), first.pid, now)  # not written to

    halfway.stall.clear()
    assert ResumableTransfer(db).execute(block_size=8) == len(keys)

    got = CloudFiles(f"file://{dest}").get(keys, return_dict=True)
    assert got == {key: halfway.objects["data/" + key] for key in keys}
    assert not any(p.exists() for p in left) and not abandoned.exists()
    assert live_temp.exists() and stranger.exists() and elsewhere.exists()
    assert sorted(hidden_files(dest)) == sorted(
        str(p.relative_to(dest)) for p in (live_temp, stranger, elsewhere))

    live.stdin.close()
    assert live.wait(60) == 0, live.stderr.read().decode()
    assert not live_temp.exists() and (dest / "d0" / "live.bin").stat().st_size == 2 * MIB


def test_transfer_to_resumable_cleans_only_the_directories_it_wrote_into(tmp_path, writer):
    src = CloudFiles(f"file://{tmp_path / 'src'}")
    src.puts([("d1/a", b"a"), ("d1/b", b"b")])
    dest = tmp_path / "dest"
    dead, temp_d1 = mid_write(writer, dest, "d1/x")
    kill(dead)
    temp_d2 = planted(dest / "d2", _owners.this_host(), dead.pid, time.time())
    temp_below = planted(dest / "d1" / "below", _owners.this_host(), dead.pid, time.time())

    src.transfer_to(f"file://{dest}", resumable=False)  # not resumed: nothing is cleaned
    assert temp_d1.exists()
    src.transfer_to(f"file://{dest}", resumable=True)
    assert not temp_d1.exists()
    assert temp_d2.exists() and temp_below.exists()  # directories it did not write into
    assert CloudFiles(f"file://{dest}").get(["d1/a", "d1/b"], return_dict=True) == {"d1/a": b"a", "d1/b": b"b"}


# -- the sweep elsewhere ------------------------------------------------------------------------------------
def test_sweep_on_memory_finds_nothing_and_refuses_bad_ages(tmp_path):
    cf = CloudFiles("mem://sweep-test")
    cf.put("a", b"1")
    assert cf.sweep(older_than=0, delete=True) == []
    for bad in (-1, "1h", True, float("nan"), float("inf"), None):
        with pytest.raises(ValueError, match="older_than must be a number of seconds >= 0"):
            CloudFiles(f"file://{tmp_path}").sweep(older_than=bad)


def test_sweep_with_delete_refuses_a_read_only_protocol():
    with pytest.raises(ReadOnlyBackendError):
        CloudFiles("https://127.0.0.1:9/x").sweep(delete=True)
    assert CloudFiles("https://127.0.0.1:9/x").sweep() == []  # finding needs no request


# -- on a Dask cluster ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        with distributed.Client(cluster) as c:
            c.wait_for_workers(2, timeout=60)
            yield c


def test_dask_transfers_remove_dead_writers_files_and_spare_live_ones(tmp_path, writer, client):
    src = CloudFiles(f"file://{tmp_path / 'src'}")
    data = {f"d{i % 2}/k{i:02d}": b"%d" % i for i in range(20)}
    src.puts(list(data.items()))
    dest = tmp_path / "dest"
    dead, dead_temp = mid_write(writer, dest, "d0/x")
    kill(dead)
    live, live_temp = mid_write(writer, dest, "d1/y")

    assert transfer(src, f"file://{dest}", client=client, batch_size=5).files == 20
    assert CloudFiles(f"file://{dest}").get(list(data), return_dict=True) == data
    assert not dead_temp.exists() and live_temp.exists()

    again = tmp_path / "again"
    dead, dead_temp = mid_write(writer, again, "d1/z")
    kill(dead)
    rt = ResumableTransfer(str(tmp_path / "job.db"))
    rt.init(src, f"file://{again}")
    assert rt.execute(client=client, block_size=4) == 20
    assert hidden_files(again) == []
    assert CloudFiles(f"file://{again}").get(list(data), return_dict=True) == data

    live.stdin.close()
    assert live.wait(60) == 0, live.stderr.read().decode()
    assert hidden_files(dest) == []


def test_this_process_own_leftover_is_orphaned_but_a_file_it_writes_now_is_live(tmp_path):
    """A Ctrl-C landing between two statements of a write can leave this very process's temp
    file without any handler running: it is debris although its writer runs. A file this
    process is writing right now is live."""
    cf = CloudFiles(f"file://{tmp_path}")
    leftover = planted(tmp_path / "d", _owners.this_host(), os.getpid(), time.time())
    writing = local._tmp_name(str(tmp_path / "d" / "x"))  # noted before the file exists
    try:
        Path(writing).write_bytes(b"half")
        found = {os.path.basename(d.handle): d for d in cf.backend.find_debris(older_than=0)}
        assert found[leftover.name].orphaned and not found[leftover.name].live
        assert found[os.path.basename(writing)].live
        assert ops.remove_orphans(cf.backend, ["d/"]) == 1
        assert not leftover.exists() and Path(writing).exists()
    finally:
        local._done(writing)
    assert cf.backend.find_debris(older_than=0).__next__().orphaned  # done, yet still there
