"""What interrupted writes leave on object stores, found and removed (issue 21): unfinished S3
multipart uploads (moto and rclone) and GCS composite-upload parts (fake-gcs-server), through
``Backend.find_debris`` / ``Backend.remove_debris``.

Debris is made the way it happens: our own client killed with SIGKILL in a child process in the
middle of an upload (the moment chosen by the child itself, right after a part is stored, so
nothing depends on timing), or, for S3, an upload started with boto3 and left unfinished.
Ages are the servers' own times: a server object cannot be aged, so ``older_than`` is tested
with an age far beyond the objects' (nothing found) and with zero (everything found).
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_s3 are parameters here)

from __future__ import annotations

import dataclasses
import io
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from uuid import uuid4

import pytest

from cloudfiles_dask import CloudFiles, _owners
from cloudfiles_dask.backends import gcs, s3
from cloudfiles_dask.backends.base import Debris
from tests.conftest_s3 import (  # noqa: F401 (fixtures)
    bucket,
    moto_server,
    rclone_server,
    s3_env,
    s3_root,
    s3_server,
)
from tests.processes import stop_all

KiB = 1024
MiB = 1024 * KiB
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOUR = 3600.0
#: Server times and this machine's clock agree within this (they are the same machine here).
CLOCK_SLACK = 600.0


def _here(pid: int) -> str:
    return f"{_owners.this_host()}:{pid}"


class _Reader(io.RawIOBase):
    """``size`` bytes of ``fill``, calling ``at(served)`` once, on the first read after
    ``after`` bytes were served (a stream of unknown size: no seek, no fileno)."""

    def __init__(self, size: int, after: int, at, fill: bytes = b"r"):
        self.size, self.after, self.at, self.fill = size, after, at, fill
        self.served = 0
        self.called = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.served >= self.after and not self.called:
            self.called = True
            self.at(self.served)
        n = min(len(buffer), self.size - self.served)
        buffer[:n] = self.fill * n
        self.served += n
        return n


# == S3 ===========================================================================================
def _unfinished(server, bucket: str, prefix: str = "") -> list[tuple[str, str]]:
    """``(key, upload id)`` of every unfinished upload in ``bucket``, asked with boto3."""
    answer = server.admin().list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return sorted((u["Key"], u["UploadId"]) for u in answer.get("Uploads") or ())


def _leave_upload(server, bucket: str, key: str, part_sizes: list[int]) -> str:
    """Start a multipart upload of ``key`` with boto3, send parts of ``part_sizes`` bytes, and
    leave it unfinished; its UploadId."""
    admin = server.admin()
    upload_id = admin.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    for number, size in enumerate(part_sizes, start=1):
        admin.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                          Body=b"p" * size)
    return upload_id


@pytest.fixture
def s3_debris(s3_server, bucket, s3_root):
    """Unfinished uploads in and around ``s3_root`` (``.../root``), objects next to them."""
    made = {
        "root/dir/a.bin": [1000],
        "root/dir/sub/with space+plus%.bin": [700, 300],
        "root/dir/empty.bin": [],
        "root/other/c.bin": [50],
        "root2/dir/sibling.bin": [10],  # a sibling of the root's directory, not under it
        "elsewhere/d.bin": [10],
    }
    ids = {key: _leave_upload(s3_server, bucket, key, sizes) for key, sizes in made.items()}
    cf = CloudFiles(s3_root, composite_upload_threshold=MiB)
    cf.put("dir/kept.txt", b"kept")
    cf.put("dir/whole.bin", b"w" * (9 * MiB))  # a completed multipart upload: two parts
    return cf, ids, made


def test_s3_finds_unfinished_uploads_under_the_prefix_only(s3_server, bucket, s3_debris):
    cf, ids, made = s3_debris
    found = sorted(cf.backend.find_debris("dir/"), key=lambda d: d.key)
    assert [d.key for d in found] == ["dir/a.bin", "dir/empty.bin", "dir/sub/with space+plus%.bin"]
    for item in found:
        full = "root/" + item.key
        assert item.kind == "multipart-upload" and item.handle == ids[full]
        assert item.size == sum(made[full])
        assert item.owner is None and not item.live and not item.orphaned  # cannot tell whose
    timed = [d for d in found if made["root/" + d.key]]  # moto says 2010 for an upload's start
    assert all(abs(d.created - time.time()) < CLOCK_SLACK for d in timed)
    assert sorted(d.key for d in cf.backend.find_debris()) == [
        "dir/a.bin", "dir/empty.bin", "dir/sub/with space+plus%.bin", "other/c.bin"]
    assert [d.key for d in cf.backend.find_debris("other/")] == ["other/c.bin"]
    assert list(cf.backend.find_debris("nothing/")) == []
    assert sorted(d.key for d in cf.backend.find_debris("dir/", flat=True)) == [
        "dir/a.bin", "dir/empty.bin"]
    assert [d.key for d in cf.backend.find_debris("dir/e", flat=True)] == ["dir/empty.bin"]


def test_s3_older_than_uses_the_servers_times(s3_debris):
    cf, ids, made = s3_debris
    # uploads with parts: their newest part is from just now on both servers
    assert [d.key for d in cf.backend.find_debris("dir/a", older_than=HOUR)] == []
    assert [d.key for d in cf.backend.find_debris("other/", older_than=HOUR)] == []
    assert [d.key for d in cf.backend.find_debris("dir/a", older_than=0)] == ["dir/a.bin"]
    item = next(cf.backend.find_debris("other/"))
    age = time.time() - item.created
    assert [d.key for d in cf.backend.find_debris("other/", older_than=age + HOUR)] == []
    assert [d.key for d in cf.backend.find_debris("other/", older_than=max(0, age - HOUR))] == [
        "other/c.bin"]


def test_s3_removal_aborts_only_what_was_found_and_twice_is_harmless(s3_server, bucket, s3_debris):
    cf, ids, made = s3_debris
    found = list(cf.backend.find_debris("dir/"))
    assert cf.backend.remove_debris(found) == 3
    assert _unfinished(s3_server, bucket, "root/dir/") == []
    assert list(cf.backend.find_debris("dir/")) == []
    assert cf.backend.remove_debris(found) == 0  # NoSuchUpload: gone already
    left = [key for key, _ in _unfinished(s3_server, bucket)]
    assert left == ["elsewhere/d.bin", "root/other/c.bin", "root2/dir/sibling.bin"]
    assert cf.get("dir/kept.txt") == b"kept"
    assert cf.get("dir/whole.bin") == b"w" * (9 * MiB)
    assert sorted(cf.list()) == ["dir/kept.txt", "dir/whole.bin"]


def test_s3_live_debris_is_never_removed_and_foreign_kinds_are_refused(s3_server, bucket, s3_debris):
    cf, ids, made = s3_debris
    item = next(cf.backend.find_debris("other/"))
    assert cf.backend.remove_debris([dataclasses.replace(item, live=True)]) == 0
    assert _unfinished(s3_server, bucket, "root/other/") == [("root/other/c.bin", item.handle)]
    with pytest.raises(ValueError, match="composite-part"):
        cf.backend.remove_debris([Debris("composite-part", "x", "x.cfdask-part-0.0.0")])
    assert cf.backend.remove_debris([]) == 0


def test_s3_listing_pages_through_many_uploads(s3_server, bucket, s3_root, monkeypatch):
    keys = [f"root/p/{i}.bin" for i in range(5)]
    ids = {key: _leave_upload(s3_server, bucket, key, [1]) for key in keys}
    monkeypatch.setattr(s3, "UPLOADS_PAGE_SIZE", 2)  # rclone pages; moto answers in one page
    found = list(CloudFiles(s3_root).backend.find_debris("p/"))
    assert sorted((d.key, d.handle) for d in found) == sorted(
        (key[len("root/"):], upload_id) for key, upload_id in ids.items())


def test_s3_a_completed_upload_leaves_no_debris(s3_server, bucket, s3_root):
    cf = CloudFiles(s3_root, composite_upload_threshold=MiB)
    cf.put("big.bin", b"b" * (9 * MiB))
    cf.put("small.bin", b"s")
    assert list(cf.backend.find_debris()) == []
    assert _unfinished(s3_server, bucket) == []
    assert cf.get("big.bin") == b"b" * (9 * MiB)


def test_s3_this_process_running_upload_is_live_and_kept(s3_server, bucket, s3_root):
    cf = CloudFiles(s3_root, composite_upload_threshold=MiB)
    seen: list[list[Debris]] = []
    removed: list[int] = []

    def midway(_served: int) -> None:  # the upload exists: its first part was read
        found = list(cf.backend.find_debris())
        seen.append(found)
        removed.append(cf.backend.remove_debris(found))

    data_size = 17 * MiB
    cf.put("running.bin", _Reader(data_size, s3.MIN_PART_SIZE, midway))
    [found] = seen
    assert [(d.key, d.live, d.owner) for d in found] == [("running.bin", True, _here(os.getpid()))]
    assert removed == [0]
    assert cf.get("running.bin") == b"r" * data_size
    assert list(cf.backend.find_debris()) == []


def test_s3_writer_killed_mid_upload_leaves_an_upload_that_is_found_and_aborted(
        s3_server, bucket, s3_root):
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {ROOT!r})
        from cloudfiles_dask import CloudFiles
        from cloudfiles_dask.backends import _s3wire

        real = _s3wire.Wire.request

        def request(self, method, key, headers=None, body=None, query=None, stream=False):
            resp = real(self, method, key, headers, body, query, stream)
            if method == "PUT" and query and "partNumber" in query and resp.status == 200:
                os.kill(os.getpid(), signal.SIGKILL)  # a part is stored: die hard
            return resp

        _s3wire.Wire.request = request
        cf = CloudFiles({s3_root!r}, composite_upload_threshold=1024 * 1024)
        cf.put("dir/big.bin", b"k" * (17 * 1024 * 1024))
        """)
    done = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), timeout=120,
                          capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    cf = CloudFiles(s3_root)
    cf.put("dir/kept.txt", b"kept")
    # older_than=0: everything, even a part the kernel delivered after the writer died
    found = list(cf.backend.find_debris("dir/"))
    assert len(found) == 1, found
    [item] = found
    assert item.kind == "multipart-upload" and item.key == "dir/big.bin"
    # parts of 8, 8 and 1 MiB were in flight: at least one was stored, maybe more
    assert item.size in {sum(kept) for n in range(1, 4) for kept in
                         itertools.combinations([8 * MiB, 8 * MiB, MiB], n)}
    assert item.owner is None and not item.live and not item.orphaned
    assert list(cf.backend.find_debris("dir/", older_than=HOUR)) == []
    assert list(cf.backend.find_debris("other/")) == []
    assert not cf.exists("dir/big.bin")
    assert cf.backend.remove_debris([item]) == 1
    assert _unfinished(s3_server, bucket) == []
    assert cf.backend.remove_debris([item]) == 0
    assert sorted(cf.list()) == ["dir/kept.txt"]


# == GCS ==========================================================================================
@pytest.fixture
def gbucket(gcs_server, monkeypatch) -> str:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    monkeypatch.setenv("CLOUD_FILES_RETRY_BASE", "0.01")
    monkeypatch.setenv("CLOUD_FILES_RETRY_MAX", "0.05")
    name = "debris-" + uuid4().hex[:16]
    gcs_server.create_bucket(name)
    return name


def _gcs_parts(server, bucket: str) -> list[str]:
    return sorted(n for n in server.object_names(bucket) if gcs.PART_MARK in n)


PART = 64 * KiB
#: A child writing ``dir/big.bin`` as a composite upload in parts of PART bytes: it prints
#: ``stored NAME`` for each part stored and, once two parts' bytes are read, waits on stdin.
_BLOCKED_WRITER = """
import io, os, sys
sys.path.insert(0, {root!r})
from cloudfiles_dask import CloudFiles
from cloudfiles_dask.backends import gcs

real = gcs.GCSBackend._upload

def upload(self, name, *args, **kwargs):
    answer = real(self, name, *args, **kwargs)
    if gcs.PART_MARK in name:
        print("stored", name, flush=True)
    return answer

gcs.GCSBackend._upload = upload

class Blocks(io.RawIOBase):
    served = 0
    def readable(self):
        return True
    def read(self, size=-1):
        if self.served >= 2 * {part}:
            sys.stdin.read()  # until the parent lets go (it kills us first)
            os._exit(5)
        size = min(size, 2 * {part} - self.served)
        self.served += size
        return b"p" * size

CloudFiles({path!r}, composite_upload_threshold={part}).put("dir/big.bin", Blocks())
"""


def _start_blocked_writer(path: str) -> subprocess.Popen:
    script = _BLOCKED_WRITER.format(root=ROOT, part=PART, path=path)
    return subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _await_parts(proc: subprocess.Popen, count: int) -> list[str]:
    names = []
    while len(names) < count:
        line = proc.stdout.readline().decode()
        if not line:
            proc.wait()
            raise AssertionError(f"the writer ended ({proc.returncode}) before storing "
                                 f"{count} parts: {proc.stderr.read().decode()}")
        if line.startswith("stored "):
            names.append(line.split(" ", 1)[1].strip())
    return names


def test_gcs_parts_of_a_live_writer_are_live_then_removable_once_it_is_killed(gcs_server, gbucket):
    cf = CloudFiles(f"gs://{gbucket}/root")
    cf.put("dir/kept.txt", b"kept")
    CloudFiles(f"gs://{gbucket}/root", composite_upload_threshold=PART).put(
        "dir/whole.bin", b"w" * (3 * PART))  # a completed composite upload
    proc = _start_blocked_writer(f"gs://{gbucket}/root")
    try:
        names = _await_parts(proc, 2)
        assert sorted(names) == _gcs_parts(gcs_server, gbucket)
        found = sorted(cf.backend.find_debris("dir/"), key=lambda d: d.handle)
        assert [("root/" + d.handle) for d in found] == sorted(names)
        for item in found:
            assert item.kind == "composite-part" and item.key == "dir/big.bin"
            assert item.size == PART
            assert item.owner == _here(proc.pid) and item.live and not item.orphaned
        newest = max(gcs._parse_time(gcs_server.metadata(gbucket, n)["timeCreated"]).timestamp()
                     for n in names)
        assert [d.created for d in found] == [newest, newest]  # the upload's newest part
        assert abs(newest - time.time()) < CLOCK_SLACK
        assert cf.backend.remove_debris(found) == 0  # its writer runs: kept
        assert gcs.clean_composite_parts(cf, "dir/") == 0
        assert _gcs_parts(gcs_server, gbucket) == sorted(names)
        proc.kill()
        proc.wait()
    finally:
        stop_all([proc])
    found = list(cf.backend.find_debris("dir/"))
    assert len(found) == 2 and all(d.orphaned and not d.live for d in found)
    assert list(cf.backend.find_debris("other/")) == []
    assert list(cf.backend.find_debris("dir/", older_than=HOUR)) == []
    assert len(list(cf.backend.find_debris("dir/big", older_than=0))) == 2
    assert cf.backend.remove_debris(found) == 2
    assert _gcs_parts(gcs_server, gbucket) == []
    assert cf.backend.remove_debris(found) == 0  # gone already
    assert list(cf.backend.find_debris()) == []
    assert sorted(cf.list()) == ["dir/kept.txt", "dir/whole.bin"]
    assert cf.get("dir/whole.bin") == b"w" * (3 * PART) and cf.get("dir/kept.txt") == b"kept"


def test_gcs_debris_under_a_prefix_only_and_in_pages(gcs_server, gbucket, monkeypatch):
    top = CloudFiles(f"gs://{gbucket}")
    names = ["root/a/x.bin", "root/a/y/z.bin", "root/b/w.bin", "root2/a/v.bin", "rootless.bin"]
    for name in names:  # parts as a killed writer of an older version left them: no owner
        gcs_server.upload(gbucket, f"{name}{gcs.PART_MARK}{'0' * 16}.0.0", b"abc")
    gcs_server.upload(gbucket, "root/a/x.bin.cfdask-part-notours.0.0", b"not a part of ours")
    monkeypatch.setattr(gcs.GCSBackend, "list_page_size", 2)
    cf = CloudFiles(f"gs://{gbucket}/root")
    found = list(cf.backend.find_debris("a/"))
    assert sorted(d.key for d in found) == ["a/x.bin", "a/y/z.bin"]
    assert all(d.owner is None and not d.live and not d.orphaned and d.size == 3 for d in found)
    assert sorted(d.key for d in cf.backend.find_debris()) == ["a/x.bin", "a/y/z.bin", "b/w.bin"]
    assert [d.key for d in cf.backend.find_debris("a/", flat=True)] == ["a/x.bin"]
    assert [d.key for d in cf.backend.find_debris("", flat=True)] == []
    assert sorted(d.key for d in top.backend.find_debris("root")) == [
        "root/a/x.bin", "root/a/y/z.bin", "root/b/w.bin", "root2/a/v.bin", "rootless.bin"]
    assert sorted(d.key for d in top.backend.find_debris("root/")) == [
        "root/a/x.bin", "root/a/y/z.bin", "root/b/w.bin"]
    assert cf.backend.remove_debris(found) == 2
    assert sorted(d.key for d in top.backend.find_debris()) == [
        "root/b/w.bin", "root2/a/v.bin", "rootless.bin"]
    assert "root/a/x.bin.cfdask-part-notours.0.0" in gcs_server.object_names(gbucket)
    with pytest.raises(ValueError, match="not a composite upload part"):
        cf.backend.remove_debris([Debris("composite-part", "a", "a/x.bin.cfdask-part-notours.0.0")])
    with pytest.raises(ValueError, match="not a composite upload part"):
        cf.backend.remove_debris([Debris("multipart-upload", "b/w.bin", "upload-id")])


def test_gcs_a_completed_composite_upload_leaves_no_debris_nor_owner(gcs_server, gbucket):
    cf = CloudFiles(f"gs://{gbucket}/root", composite_upload_threshold=PART)
    data = os.urandom(40 * PART)  # two levels: 40 parts, composed 32 at a time
    cf.put("big.bin", data)
    assert list(cf.backend.find_debris()) == []
    assert _gcs_parts(gcs_server, gbucket) == []
    assert cf.get("big.bin") == data
    assert "cfdask-owner" not in (gcs_server.metadata(gbucket, "root/big.bin").get("metadata") or {})


def test_gcs_this_process_running_upload_is_live_and_kept(gcs_server, gbucket):
    # one thread: the second part is read only once the first is stored
    cf = CloudFiles(f"gs://{gbucket}/root", composite_upload_threshold=PART, num_threads=1)
    seen: list[list[Debris]] = []
    removed: list[int] = []

    def midway(_served: int) -> None:
        found = list(cf.backend.find_debris())
        seen.append(found)
        removed.append(cf.backend.remove_debris(found))

    # the first part and one byte are read before the upload starts
    cf.put("running.bin", _Reader(3 * PART, PART + 1, midway))
    [found] = seen
    assert [(d.key, d.live, d.owner) for d in found] == [("running.bin", True, _here(os.getpid()))]
    assert removed == [0]
    assert cf.get("running.bin") == b"r" * (3 * PART)
    assert list(cf.backend.find_debris()) == []


def test_owner_states():
    assert _owners.Owners().state(_here(os.getpid())) == (True, False)
    assert _owners.Owners().state(_here(os.getppid())) == (True, False)
    assert _owners.Owners().state(_here(_ended_pid())) == (False, True)
    assert _owners.Owners().state("another-machine.example:" + str(os.getpid())) == (False, False)
    for unknown in (None, "", "no-pid", _here(0), _owners.this_host() + ":x"):
        assert _owners.Owners().state(unknown) == (False, False)


def _ended_pid() -> int:
    """The pid of a process that ran and was reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
