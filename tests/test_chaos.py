"""Chaos: crash anywhere, lose nothing, leave nothing (issue 21).

For every source/destination pair among file://, mem://, S3 on rclone, S3 on moto and GCS on
fake-gcs-server, a resumable transfer (``ResumableTransfer`` init + execute) of mixed-size
objects is interrupted several times at seeded random moments, then run to the end. Then,
behind the library's back:

- every object is present, its stored bytes and encoding are the source's and its decoded
  content is the source's (read with boto3, the emulator's JSON API, ``open()``, or the mem://
  store's dict, decoded with the standard library);
- nothing else is under the destination: ``os.walk`` including hidden files (file://), every key
  of the bucket and every unfinished multipart upload (``list_multipart_uploads``, S3), every
  object of the bucket (GCS: composite parts are objects), every stored name of the bucket
  (mem://). Each destination is a fresh bucket or directory. The library's own listing, and its
  own debris finder, are never asked;
- the ledger is finished (every row done, the counts agree with the rows, the keys are the
  job's) and ``close()`` deletes it (with its -wal and -shm files).

(``test_the_checks_see_loss_corruption_and_debris`` plants a lost object, a flipped byte, an
object stored decoded, a temporary file or composite part and an unfinished multipart upload on
each kind of store, and checks that each is reported: the checks are not vacuous.)

How a writer is interrupted:

- Pairs without mem:// (16, and 3 more through the proxy): ``tests/chaos_child.py`` (init +
  execute, one client, ``lease_msec=0``) runs in a child process and is SIGKILLed. Each kill
  picks, seeded, how to choose its moment: ``blocks`` (once the child has finished k more
  blocks, then a seeded share of the quickest block's time), ``inflight`` (once k
  blocks are done, at the first sight of a new write in flight in the destination: a hidden
  temporary file, an unfinished multipart upload, a composite part; if none is seen, when a
  block ends with one block left) or ``init`` (up to 50 ms after the child started: mostly
  inside init). k is a seeded share of the blocks left, spread so that later kills still find
  work. Then one last run goes to the end.
- Pairs with mem:// (9) cannot be killed (a SIGKILL would take mem:// with it): the transfer runs
  in this process and is interrupted, seeded, either by ``KeyboardInterrupt`` raised from the
  progress callback once k blocks are done (``callback``; always the first one) or by a real
  Ctrl-C (``_thread.interrupt_main``) a seeded share of a block's time after that (``ctrl-c``:
  lands mid-block, often mid-write), then resumed on the same ``ResumableTransfer`` object, as
  at a notebook prompt. After each interruption the ledger must not be left write-locked (a
  probe that does not wait), or every other client of the ledger would be stuck.
- The same SIGKILLs with a fault-injecting proxy (tests/servers/fault_proxy.py, 4 % of requests:
  TCP resets, 500, 503, 429, truncated answers) between the child and the remote side:
  file->S3 (rclone), S3 (rclone)->file, file->GCS. The test looks at the real server directly.
- Dask (a fresh ``LocalCluster`` of two worker processes per test): ``transfer_to(..., client=)``
  (S3->file, file->GCS) and ``ResumableTransfer.execute(client=)`` (file->S3, GCS->file). A
  worker process is SIGKILLed twice, each time once the progress shows a seeded share of the
  files, at the first sight of a new write in flight; the victim is a worker holding a file of
  the file:// side open (mid-read or mid-write) if one does, and never one killed before (the
  nanny restarts it); Dask runs its batches again elsewhere.

Objects: 80 per pair (40 where moto is one side: it serves ~300 requests/s), ~8 % above the
multipart/composite threshold (lowered to 256 KiB, so 0.3-2.5 MiB objects go up as S3 multipart
uploads and as GCS composite uploads of up to 10 parts; ``ResumableTransfer`` has no way to set
the threshold, see ``chaos_child.use_threshold``), a quarter 8-200 KiB, the rest 0-6 KiB (one
empty), ~30 % of the small and medium ones stored gzip-encoded (kept as stored, ``reencode=None``),
a few keys with spaces. Blocks of ``n // max(8, 3 * kills)`` files (at least 4). Three kills per
pair, two per Dask run. About a minute on two cores.

Reproducible: everything random comes from ``CHAOS_SEED`` (objects, kill plans, proxy faults);
the moments are given in blocks, shares of a block and sightings, so a rerun lands near the same
place, not on the same instruction. A failure prints the seed, the pair and every kill (its plan, when it
landed, what was in flight, the ledger's count after it), and what was found.

Scale: the CI run is the default; a longer one by hand, for instance

    CHAOS_SCALE=10 .venv/bin/python -m pytest -q -p no:cacheprovider --timeout=1800 -m chaos tests/test_chaos.py

``CHAOS_SCALE`` multiplies the objects (and moto's) and the kills by its square root (10: 800
objects, 400 on moto, 9 kills per pair, 6 per Dask run). ``CHAOS_OBJECTS``,
``CHAOS_MOTO_OBJECTS``, ``CHAOS_KILLS`` and ``CHAOS_SEED`` set each directly;
``CHAOS_REPORT=path`` appends one JSON line per run (pair, objects, kills, what was found).
"""

# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_s3 are parameters here)

from __future__ import annotations

import _thread
import contextlib
import gzip
import json
import math
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

import cloudfiles_dask
from cloudfiles_dask import CloudFiles, resumable
from cloudfiles_dask.backends import memory
from cloudfiles_dask.resumable import ResumableTransfer
from tests.chaos_child import threshold_cloudfiles
from tests.conftest_s3 import moto_server, rclone_server, s3_env  # noqa: F401 (fixtures)
from tests.servers import s3 as s3_servers
from tests.servers.fault_proxy import FaultProxy
from tests.servers.gcs import _OPENER

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and POSIX processes"),
]

REPO = str(Path(__file__).resolve().parents[1])
CHILD = str(Path(__file__).resolve().parent / "chaos_child.py")
KiB, MiB = 1024, 1024 * 1024
THRESHOLD = 256 * KiB


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


SCALE = float(os.environ.get("CHAOS_SCALE") or 1)
SEED = _env_int("CHAOS_SEED", 2121)
N_OBJECTS = _env_int("CHAOS_OBJECTS", round(80 * SCALE))
N_MOTO = min(N_OBJECTS, _env_int("CHAOS_MOTO_OBJECTS", round(40 * SCALE)))
KILLS = _env_int("CHAOS_KILLS", max(1, round(3 * math.sqrt(SCALE))))
DASK_KILLS = max(1, min(KILLS, round(2 * math.sqrt(SCALE))))
REPORT = os.environ.get("CHAOS_REPORT")
KINDS = ["file", "mem", "s3-rclone", "s3-moto", "gcs"]
PAIRS = [(s, d) for s in KINDS for d in KINDS]
LANDED_MAX_WAIT = 240.0  # seconds: a child that takes longer than this is stuck, not slow


# -- the objects ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Obj:
    stored: bytes  # the bytes as stored (gzip-compressed where encoding is "gzip")
    encoding: str | None
    decoded: bytes


def _text(rng: random.Random, size: int) -> bytes:
    words = [b"alpha", b"beta", b"gamma", b"delta", b"chaos", b"ledger", b"kill", b"%d"]
    out = bytearray()
    while len(out) < size:
        word = rng.choice(words)
        out += (word % rng.randrange(10**6) if b"%" in word else word) + b" "
    return bytes(out[:size])


def make_objects(n: int, seed: int) -> dict[str, Obj]:
    rng = random.Random(f"objects:{seed}")
    n_large = max(3, round(n * 0.08))
    n_medium = round(n * 0.25)
    sizes = ["large"] * n_large + ["medium"] * n_medium + ["small"] * (n - n_large - n_medium)
    rng.shuffle(sizes)
    objects = {}
    for i, kind in enumerate(sizes):
        key = f"d{i % 6}/{'with space ' if i % 17 == 3 else ''}k{i:05d}.bin"
        if kind == "large":
            data = rng.randbytes(rng.randrange(THRESHOLD + 40 * KiB, 5 * MiB // 2))
            objects[key] = Obj(data, None, data)
            continue
        size = 0 if i == 1 else rng.randrange(8 * KiB, 200 * KiB) if kind == "medium" else rng.randrange(6 * KiB)
        data = _text(rng, size) if rng.random() < 0.7 else rng.randbytes(size)
        if size and rng.random() < 0.3:
            objects[key] = Obj(gzip.compress(data, mtime=0), "gzip", data)
        else:
            objects[key] = Obj(data, None, data)
    return objects


OBJECTS = make_objects(N_OBJECTS, SEED)


def _moto_keys() -> list[str]:
    """The keys used where moto is a side: all the large ones up to 8 % (at least 2), then the
    others in key order."""
    keys = sorted(OBJECTS)
    large = [k for k in keys if len(OBJECTS[k].stored) > THRESHOLD][: max(2, round(N_MOTO * 0.08))]
    rest = [k for k in keys if k not in large]
    return sorted(large + rest[: max(0, N_MOTO - len(large))])


MOTO_KEYS = _moto_keys()


def keys_for(src: str, dest: str) -> list[str]:
    return MOTO_KEYS if "s3-moto" in (src, dest) else sorted(OBJECTS)


def lists_source(src: str, dest: str) -> bool:
    """True when the job is everything the source holds (``init`` lists it), False when the
    keys are given (moto's subset of a larger source)."""
    return not (dest == "s3-moto" and src != "s3-moto")


def _suffix(encoding: str | None) -> str:
    return ".gz" if encoding == "gzip" else ""


def _decode(data: bytes, encoding: str | None) -> bytes:
    if not encoding:
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    raise AssertionError(f"unexpected stored encoding {encoding!r}")


# -- the stores, seen from outside the library --------------------------------------------------------
class Store:
    """One destination (or source) as the test sees it, without the library."""

    kind: str
    cloudpath: str

    def names(self) -> set[str]:
        """Every stored name (the whole bucket or directory, hidden files included)."""
        raise NotImplementedError

    def name_of(self, key: str, encoding: str | None) -> str:
        raise NotImplementedError

    def read(self, name: str) -> tuple[bytes, str | None]:
        """(stored bytes, stored encoding) of one stored name."""
        raise NotImplementedError

    def unfinished_uploads(self) -> list[str]:
        return []

    def partial_writes(self) -> set[str]:
        """Writes in flight or left unfinished, as seen right now: hidden temporary files,
        unfinished multipart uploads, composite parts (what the ``inflight`` kills wait for)."""
        return set()

    def in_flight(self, known: set[str]) -> str | None:
        """A partial write not among ``known`` (those left by earlier kills), if one is seen."""
        new = self.partial_writes() - known
        return min(new) if new else None

    def wipe(self) -> None:
        """Empty a destination bucket after its test (the servers keep objects in memory)."""


class FileStore(Store):
    kind = "file"

    def __init__(self, directory: str):
        self.dir = directory
        self.cloudpath = "file://" + directory

    def names(self) -> set[str]:
        out = set()
        for dirpath, _, files in os.walk(self.dir):
            for name in files:
                out.add(os.path.relpath(os.path.join(dirpath, name), self.dir).replace(os.sep, "/"))
        return out

    def name_of(self, key: str, encoding: str | None) -> str:
        return key + _suffix(encoding)

    def read(self, name: str) -> tuple[bytes, str | None]:
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read(), "gzip" if name.endswith(".gz") else None

    def partial_writes(self) -> set[str]:
        return {"file " + name for name in self.names()
                if os.path.basename(name).startswith(".cfdask-") or name.endswith(".cfdask-partial")}


class MemStore(Store):
    kind = "mem"

    def __init__(self, bucket: str, prefix: str):
        self.bucket, self.prefix = bucket, prefix
        self.cloudpath = f"mem://{bucket}/{prefix}"

    def _objects(self) -> dict:
        return memory._STORE.get(self.bucket, {})

    def names(self) -> set[str]:
        return set(self._objects())

    def name_of(self, key: str, encoding: str | None) -> str:
        return f"{self.prefix}/{key}{_suffix(encoding)}"

    def read(self, name: str) -> tuple[bytes, str | None]:
        return bytes(self._objects()[name].content), "gzip" if name.endswith(".gz") else None


class S3Store(Store):
    def __init__(self, kind: str, endpoint: str, bucket: str, prefix: str, via: str | None = None):
        self.kind, self.endpoint, self.bucket, self.prefix = kind, endpoint, bucket, prefix
        self.cloudpath = f"s3://{via or endpoint}/{bucket}/{prefix}"
        self.admin = s3_servers.admin_client(endpoint)

    def names(self) -> set[str]:
        out: set[str] = set()
        token = None
        while True:
            page = self.admin.list_objects_v2(Bucket=self.bucket, **({"ContinuationToken": token} if token else {}))
            out.update(item["Key"] for item in page.get("Contents", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return out

    def name_of(self, key: str, encoding: str | None) -> str:
        return f"{self.prefix}/{key}"

    def read(self, name: str) -> tuple[bytes, str | None]:
        answer = self.admin.get_object(Bucket=self.bucket, Key=name)
        return answer["Body"].read(), answer.get("ContentEncoding") or None

    def _uploads_page(self, **markers) -> dict:
        """One page of ListMultipartUploads. rclone answers NoSuchUpload on a bucket that never
        had a multipart upload (rclone serve s3 quirk): that means none."""
        from botocore.exceptions import ClientError

        try:
            return self.admin.list_multipart_uploads(Bucket=self.bucket, **markers)
        except ClientError as e:
            if self.kind == "s3-rclone" and e.response.get("Error", {}).get("Code") == "NoSuchUpload":
                return {}
            raise

    def unfinished_uploads(self) -> list[str]:
        out, markers = [], {}
        while True:
            page = self._uploads_page(**markers)
            out += [f"{u['Key']} (upload {u['UploadId'][:16]}...)" for u in page.get("Uploads", [])]
            if not page.get("IsTruncated"):
                return out
            markers = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}

    def partial_writes(self) -> set[str]:
        uploads = self._uploads_page().get("Uploads", [])
        return {f"multipart upload of {u['Key']} ({u['UploadId'][:12]})" for u in uploads}

    def wipe(self) -> None:
        for upload in self._uploads_page().get("Uploads", []):
            self.admin.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        names = sorted(self.names())
        for start in range(0, len(names), 1000):
            self.admin.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": n} for n in names[start:start + 1000]], "Quiet": True})


class GCSStore(Store):
    kind = "gcs"

    def __init__(self, server, bucket: str, prefix: str):
        self.server, self.bucket, self.prefix = server, bucket, prefix
        self.cloudpath = f"gs://{bucket}/{prefix}"

    def items(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        token = ""
        while True:
            query = urllib.parse.urlencode({"maxResults": 1000, **({"pageToken": token} if token else {})})
            with _OPENER.open(f"{self.server.url}/storage/v1/b/{self.bucket}/o?{query}", timeout=30) as resp:
                page = json.loads(resp.read())
            out.update((item["name"], item) for item in page.get("items", []))
            token = page.get("nextPageToken")
            if not token:
                return out

    def names(self) -> set[str]:
        return set(self.items())

    def name_of(self, key: str, encoding: str | None) -> str:
        return f"{self.prefix}/{key}"

    def read(self, name: str) -> tuple[bytes, str | None]:
        encoding = self.server.metadata(self.bucket, name).get("contentEncoding") or None
        return self.server.download(self.bucket, name), encoding

    def partial_writes(self) -> set[str]:
        return {f"composite part {n}" for n in self.items() if ".cfdask-part-" in n}

    def wipe(self) -> None:
        for name in self.items():
            quoted = urllib.parse.quote(name, safe="")
            request = urllib.request.Request(f"{self.server.url}/storage/v1/b/{self.bucket}/o/{quoted}",
                                             method="DELETE")
            with contextlib.suppress(urllib.error.HTTPError), _OPENER.open(request, timeout=30) as resp:
                resp.read()


# -- servers, sources, fresh destinations ---------------------------------------------------------------
@pytest.fixture(autouse=True)
def _env(s3_env, gcs_server, monkeypatch):
    """AWS test credentials, no proxies, no user secrets, fast retries (see conftest_s3), and
    gs:// on the emulator in this process too (never Google's address)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)


@pytest.fixture(scope="module")
def sources(moto_server, rclone_server, gcs_server, tmp_path_factory):
    """One source of each kind, seeded once behind the library's back (mem:// through it)."""
    out: dict[str, Store] = {}
    root = str(tmp_path_factory.mktemp("chaos-src"))
    for key, obj in OBJECTS.items():
        path = os.path.join(root, key + _suffix(obj.encoding))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(obj.stored)
    out["file"] = FileStore(root)
    for kind, server in (("s3-rclone", rclone_server), ("s3-moto", moto_server)):
        store = S3Store(kind, server.endpoint, server.new_bucket(), "src")
        for key in (MOTO_KEYS if kind == "s3-moto" else sorted(OBJECTS)):
            obj = OBJECTS[key]
            store.admin.put_object(Bucket=store.bucket, Key=f"src/{key}", Body=obj.stored,
                                   **({"ContentEncoding": obj.encoding} if obj.encoding else {}))
        out[kind] = store
    bucket = "chaos-src-" + uuid4().hex[:10]
    gcs_server.create_bucket(bucket)
    for key, obj in OBJECTS.items():
        gcs_server.upload(bucket, f"src/{key}", obj.stored, content_encoding=obj.encoding)
    out["gcs"] = GCSStore(gcs_server, bucket, "src")
    mem = MemStore("chaos-src-" + uuid4().hex[:10], "src")
    CloudFiles(mem.cloudpath).puts([{"path": k, "content": o.stored, "compress": o.encoding, "raw": True}
                                    for k, o in OBJECTS.items()])
    out["mem"] = mem
    yield out
    cloudfiles_dask.clear_memory(mem.bucket)


@pytest.fixture
def fresh(moto_server, rclone_server, gcs_server, tmp_path):
    """Factory: ``fresh(kind, via=None)`` -> an empty destination Store (a new bucket), emptied
    again after the test."""
    made: list[Store] = []

    def fresh(kind: str, via: str | None = None) -> Store:
        if kind == "file":
            return FileStore(str(tmp_path / "dest"))
        if kind == "mem":
            store = MemStore("chaos-dst-" + uuid4().hex[:10], "out")
            made.append(store)
            return store
        if kind == "gcs":
            bucket = "chaos-dst-" + uuid4().hex[:10]
            gcs_server.create_bucket(bucket)
            made.append(GCSStore(gcs_server, bucket, "out"))
            return made[-1]
        server = rclone_server if kind == "s3-rclone" else moto_server
        made.append(S3Store(kind, server.endpoint, server.new_bucket(), "out", via=via))
        return made[-1]

    yield fresh
    for store in made:
        if isinstance(store, MemStore):
            cloudfiles_dask.clear_memory(store.bucket)
        else:
            store.wipe()


def _via(store: Store, proxy: FaultProxy) -> Store:
    """The same S3 store reached through ``proxy`` (the test still looks at the real server)."""
    assert isinstance(store, S3Store)
    return S3Store(store.kind, store.endpoint, store.bucket, store.prefix, via=proxy.url)


# -- what is found at the end -------------------------------------------------------------------------
@dataclass
class Run:
    """The record of one chaos run, printed when it fails."""

    pair: str
    seed: int
    objects: int
    kills: list[dict] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        lines = [f"chaos run {self.pair}: CHAOS_SEED={self.seed}, {self.objects} objects, "
                 f"threshold {THRESHOLD} bytes"]
        lines += [f"  interruption {i + 1}: {json.dumps(k, sort_keys=True)}" for i, k in enumerate(self.kills)]
        lines += [f"  {name}: {value}" for name, value in self.notes.items()]
        return "\n".join(lines)


def inspect_destination(dest: Store, keys: list[str]) -> dict[str, Any]:
    """What is wrong under ``dest`` for a job of ``keys`` (empty when nothing is)."""
    expected = {dest.name_of(k, OBJECTS[k].encoding): k for k in keys}
    names = dest.names()
    problems: dict[str, Any] = {}
    missing = sorted(k for name, k in expected.items() if name not in names)
    if missing:
        problems["missing"] = missing
    extra = sorted(names - set(expected))
    if extra:
        problems["extra (debris)"] = extra
    uploads = dest.unfinished_uploads()
    if uploads:
        problems["unfinished multipart uploads"] = uploads
    wrong = []
    for name, key in sorted(expected.items()):
        if name not in names:
            continue
        obj = OBJECTS[key]
        data, encoding = dest.read(name)
        try:
            decoded = _decode(data, encoding)
        except Exception as e:  # noqa: BLE001 - reported, not raised
            decoded = f"<undecodable: {e}>"
        if decoded != obj.decoded:
            wrong.append(f"{key}: decoded content differs ({len(data)} stored bytes, {encoding}; "
                         f"expected {len(obj.decoded)} decoded bytes)")
        elif data != obj.stored or encoding != obj.encoding:
            wrong.append(f"{key}: stored as {encoding} ({len(data)} bytes), the source as {obj.encoding} "
                         f"({len(obj.stored)} bytes)")
    if wrong:
        problems["wrong content"] = wrong
    return problems


def inspect_ledger(db: str, keys: list[str]) -> dict[str, Any]:
    problems: dict[str, Any] = {}
    if not os.path.exists(db):
        return {"ledger": f"{db} is missing"}
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT dest, done FROM filelist").fetchall()
        stats = dict(conn.execute("SELECT key, value FROM stats").fetchall())
    if sorted(d for d, _ in rows) != sorted(keys):
        problems["ledger keys"] = f"{len(rows)} rows, not the job's {len(keys)} keys"
    undone = sorted(d for d, done in rows if not done)
    if undone:
        problems["ledger unfinished"] = undone
    if stats != {"total": len(rows), "finished": sum(done for _, done in rows)}:
        problems["ledger stats"] = f"{stats} for {len(rows)} rows, {sum(d for _, d in rows)} done"
    if problems:
        return problems
    rt = ResumableTransfer(db)
    status = rt.status()
    if (status["total"], status["finished"], status["remaining"]) != (len(keys), len(keys), 0):
        problems["ledger status"] = status
    rt.close()  # a finished job's ledger is deleted
    left = [p for p in (db, db + "-wal", db + "-shm") if os.path.exists(p)]
    if left:
        problems["ledger files left after close()"] = left
    return problems


def conclude(run: Run, dest: Store, keys: list[str], db: str | None, extra: dict | None = None) -> None:
    problems = inspect_destination(dest, keys)
    if db is not None:
        problems.update(inspect_ledger(db, keys))
    if extra:
        problems.update(extra)
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps({"pair": run.pair, "seed": run.seed, "objects": run.objects,
                                "kills": run.kills, "notes": {k: str(v) for k, v in run.notes.items()},
                                "problems": problems}, default=str) + "\n")
    if problems:
        found = "\n".join(f"  {name} ({len(v) if isinstance(v, list) else 1}): {v}" for name, v in problems.items())
        pytest.fail(f"{run.text()}\nfound:\n{found}", pytrace=False)


def ledger_write_locked(db: str) -> bool:
    """True if some connection holds the ledger's write lock right now (asked without waiting:
    another client would wait, then fail with "database is locked")."""
    if not os.path.exists(db):
        return False
    probe = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as e:
        if "locked" in str(e):
            return True
        raise
    finally:
        probe.close()


def ledger_done(db: str) -> int | None:
    """Rows done in a ledger no process writes right now (None: no job recorded yet)."""
    if not os.path.exists(db):
        return None
    try:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            row = conn.execute("SELECT value FROM stats WHERE key = 'finished'").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else int(row[0])


# -- a child process that writes -------------------------------------------------------------------------
class Child:
    """``tests/chaos_child.py`` running one job; its stdout read without blocking."""

    def __init__(self, job: str, env: dict[str, str], log: str):
        self.started_at = time.monotonic()
        self.log = log
        with open(log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, CHILD, job], stdout=subprocess.PIPE,
                                         stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=REPO)
        self._buf = b""
        self.lines: list[str] = []
        self.ready: tuple[int, int] | None = None  # (done before this run, total)
        self.done = 0  # the ledger's finished count, as last reported
        self._last_at: float | None = None  # when "ready" or the last "done" was read
        self.block_s: float | None = None  # how long the quickest block took

    def pump(self, timeout: float) -> bool:
        """Read what the child printed within ``timeout`` seconds; False at end of output."""
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return True
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return False
        self._buf += chunk
        *complete, self._buf = self._buf.split(b"\n")
        for raw in complete:
            line = raw.decode()
            if not line.strip():
                continue
            self.lines.append(line)
            word, *rest = line.split()
            now = time.monotonic()
            if word == "ready":
                self.ready = (int(rest[0]), int(rest[1]))
                self.done = self.ready[0]
                self._last_at = now
            elif word == "done":
                if int(rest[0]) > self.done and self._last_at is not None:
                    took = now - self._last_at
                    self.block_s = took if self.block_s is None else min(self.block_s, took)
                self.done = int(rest[0])
                self._last_at = now
        return True

    def wait_for(self, predicate, what: str) -> bool:
        """Read until ``predicate()``; False if the child's output ended first."""
        deadline = time.monotonic() + LANDED_MAX_WAIT
        while not predicate():
            if not self.pump(0.05):
                return predicate()
            if time.monotonic() > deadline:
                raise AssertionError(f"the child did not get to {what} in {LANDED_MAX_WAIT} s: {self.err()}")
        return True

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started_at, 3)

    def kill(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.close()
        return self.proc.returncode

    def finish(self) -> int:
        try:
            while self.pump(1.0):
                if self.proc.poll() is not None and not select.select([self.proc.stdout], [], [], 0)[0]:
                    break
            self.proc.wait(timeout=LANDED_MAX_WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.close()
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.stdout:
            self.proc.stdout.close()

    def err(self) -> str:
        try:
            with open(self.log, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""


def block_size_for(n: int) -> int:
    """Files per block: about three blocks per kill, at least eight blocks."""
    return max(4, n // max(8, 3 * KILLS))


def blocks_to_wait(frac: float, blocks_left: int, kills_left: int) -> int:
    """How many more blocks a kill lets finish: a seeded share of the blocks left, spread so
    that the kills still to come find work left too."""
    return math.floor(frac * max(1, blocks_left - 1) / max(1, kills_left))


def kill_plans(rng: random.Random, n: int, can_see_writes: bool) -> list[dict]:
    """Seeded plans: how each kill chooses its moment (see the module doc)."""
    plans = []
    for i in range(n):
        roll = rng.random()
        mode = "init" if roll < 0.1 else ("inflight" if roll < 0.65 and can_see_writes else "blocks")
        plans.append({"mode": mode, "frac": round(rng.random(), 3), "within": round(rng.random(), 3),
                      "kills_left": n - i})
    return plans


def kill_child_at(child: Child, plan: dict, block: int, dest: Store, known: set[str], block_s: float) -> dict:
    """Run ``child`` until the moment ``plan`` picks, SIGKILL it; what happened. ``known``: the
    partial writes in ``dest`` before the child started; ``block_s``: the quickest block seen
    so far (the first blocks, which set up connections, are the slow ones)."""
    out = dict(plan)
    if plan["mode"] == "init":
        child.wait_for(lambda: bool(child.lines), "start")
        out["delay_s"] = round(plan["within"] * 0.05, 4)
        time.sleep(out["delay_s"])
    else:
        if not child.wait_for(lambda: child.ready is not None, "the end of init"):
            out.update(outcome=f"ended before init finished: {child.err()[-500:]}")
            return out
        pre, total = child.ready
        k = blocks_to_wait(plan["frac"], math.ceil((total - pre) / block), plan["kills_left"])
        out.update(pre=pre, target=pre + k * block)
        child.wait_for(lambda: child.done >= pre + k * block, f"{k} blocks")
        if plan["mode"] == "blocks":  # a seeded share of a block's time into the next block
            out["delay_s"] = round(plan["within"] * min(child.block_s or block_s, block_s), 4)
            time.sleep(out["delay_s"])
        else:
            # watch until a write is seen in flight; at the latest, kill when the block under way
            # ended, or later ones while more than one block is left
            stop_at = max(child.done + 1, total - block)
            while child.proc.poll() is None and child.done < stop_at:
                seen = dest.in_flight(known)
                if seen:
                    out["seen"] = seen
                    break
                child.pump(0.001)
            else:
                out["seen"] = None  # none seen: killed at the end of a block
    out["at_s"] = child.elapsed()
    out["done_seen"] = child.done
    out["block_s"] = round(min(child.block_s or block_s, block_s), 4)
    rc = child.kill()
    out["rc"] = rc
    if rc != -signal.SIGKILL:
        out["outcome"] = "finished before the kill" if rc == 0 else f"failed (status {rc}): {child.err()[-800:]}"
    return out


def child_env(gcs_url: str) -> dict[str, str]:
    return {**os.environ, "STORAGE_EMULATOR_HOST": gcs_url,
            "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run_killed(run: Run, src: Store, dest: Store, keys: list[str], tmp_path, gcs_url: str,
               seed_text: str) -> str:
    """The job ``src -> dest`` in child processes SIGKILLed ``KILLS`` times, then run to the end;
    returns the ledger's path."""
    db = str(tmp_path / "job.db")
    block = block_size_for(len(keys))
    job = tmp_path / "job.json"
    listing = lists_source(src.kind, dest.kind)
    job.write_text(json.dumps({"db": db, "src": src.cloudpath, "dest": dest.cloudpath,
                               "keys": None if listing else keys, "threshold": THRESHOLD,
                               "block_size": block, "lease_msec": 0}))
    env = child_env(gcs_url)
    rng = random.Random(seed_text)
    log = str(tmp_path / "child.err")
    # a copy within one service (S3 on one server, GCS) is server-side: nothing to see in flight
    block_s = 0.05  # the quickest block seen (an upper bound until a child has measured one)
    for plan in kill_plans(rng, KILLS, dest.kind == "file" or dest.kind != src.kind):
        known = dest.partial_writes() if plan["mode"] == "inflight" else set()
        child = Child(str(job), env, log)
        record = kill_child_at(child, plan, block, dest, known, block_s)
        block_s = record.get("block_s", block_s)
        record["ledger_done_after"] = ledger_done(db)
        run.kills.append(record)
        if record.get("rc") not in (-signal.SIGKILL, 0):
            pytest.fail(f"{run.text()}\nthe child failed before it was killed", pytrace=False)
    child = Child(str(job), env, log)
    rc = child.finish()
    run.notes["final run"] = child.lines[-1:] if child.lines else []
    if rc != 0 or not child.lines or not child.lines[-1].startswith("finished"):
        pytest.fail(f"{run.text()}\nthe last run failed (status {rc}):\n{child.err()}", pytrace=False)
    landed = [k for k in run.kills if k.get("rc") == -signal.SIGKILL and (k["ledger_done_after"] or 0) < len(keys)]
    run.notes["kills that landed mid-job"] = len(landed)
    return db


# -- the checks themselves ----------------------------------------------------------------------------------
def _plant(store: Store, key: str, data: bytes, encoding: str | None) -> None:
    """Store ``data`` under ``key`` behind the library's back."""
    if isinstance(store, FileStore):
        path = os.path.join(store.dir, store.name_of(key, encoding))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    elif isinstance(store, MemStore):
        memory._STORE.setdefault(store.bucket, {})[store.name_of(key, encoding)] = memory._Entry(data, time.time())
    elif isinstance(store, S3Store):
        store.admin.put_object(Bucket=store.bucket, Key=store.name_of(key, encoding), Body=data,
                               **({"ContentEncoding": encoding} if encoding else {}))
    else:
        store.server.upload(store.bucket, store.name_of(key, encoding), data, content_encoding=encoding)


@pytest.mark.parametrize("kind", ["file", "mem", "s3-rclone", "s3-moto", "gcs"])
def test_the_checks_see_loss_corruption_and_debris(fresh, kind):
    """The inspection of a destination is not vacuous: planted problems are all reported."""
    dest = fresh(kind)
    gz = next(k for k in MOTO_KEYS if OBJECTS[k].encoding == "gzip")
    large = next(k for k in MOTO_KEYS if len(OBJECTS[k].stored) > THRESHOLD)
    plain = [k for k in MOTO_KEYS if OBJECTS[k].encoding is None and k != large][:3]
    keys = sorted([gz, large, *plain])
    lost, flipped, decoded_only = plain[0], large, gz
    for key in keys:
        obj = OBJECTS[key]
        if key == lost:
            continue
        if key == flipped:
            data = bytearray(obj.stored)
            data[len(data) // 2] ^= 1
            _plant(dest, key, bytes(data), obj.encoding)
        elif key == decoded_only:  # the right content, stored decoded instead of gzip
            _plant(dest, key, obj.decoded, None)
        else:
            _plant(dest, key, obj.stored, obj.encoding)
    debris = {"file": "d0/.cfdask-tmp-0123456789abcdef", "mem": "d0/x.cfdask-part-0123456789abcdef.0.0",
              "gcs": "d0/x.cfdask-part-0123456789abcdef.0.0"}.get(kind)
    if debris is not None:
        _plant(dest, debris, b"partial", None)
    if isinstance(dest, S3Store):
        dest.admin.create_multipart_upload(Bucket=dest.bucket, Key=f"out/{large}")

    problems = inspect_destination(dest, keys)
    suffixed = isinstance(dest, (FileStore, MemStore))  # the encoding is in the stored name
    extra = [dest.name_of(debris, None)] if debris else []
    if suffixed:  # stored decoded: under another name, so the key is missing and the name extra
        assert problems.pop("missing") == sorted([lost, decoded_only])
        extra.append(dest.name_of(decoded_only, None))
    else:  # under the same name, with another encoding
        assert problems.pop("missing") == [lost]
    if extra:
        assert problems.pop("extra (debris)") == sorted(extra)
    wrong = [w.split(":")[0] for w in problems.pop("wrong content")]
    assert wrong == ([flipped] if suffixed else sorted([flipped, decoded_only]))
    if isinstance(dest, S3Store):
        assert [u.split(" ")[0] for u in problems.pop("unfinished multipart uploads")] == [f"out/{large}"]
    assert problems == {}


# -- the pairs: child processes, SIGKILL -----------------------------------------------------------------
KILLED_PAIRS = [(s, d) for s, d in PAIRS if "mem" not in (s, d)]


@pytest.mark.parametrize(("src_kind", "dest_kind"), KILLED_PAIRS, ids=[f"{s}->{d}" for s, d in KILLED_PAIRS])
def test_sigkilled_resumable_transfer_loses_nothing_and_leaves_nothing(sources, fresh, tmp_path, gcs_server,
                                                                       src_kind, dest_kind):
    src, dest = sources[src_kind], fresh(dest_kind)
    keys = keys_for(src_kind, dest_kind)
    run = Run(f"{src_kind}->{dest_kind}", SEED, len(keys))
    db = run_killed(run, src, dest, keys, tmp_path, gcs_server.url, f"kills:{SEED}:{run.pair}")
    assert run.notes["kills that landed mid-job"] >= 1, run.text()  # else nothing was tested
    conclude(run, dest, keys, db)


# -- the same through a fault-injecting proxy --------------------------------------------------------------
PROXY_PAIRS = [("file", "s3-rclone", ("reset", "500", "503", "429")),
               ("s3-rclone", "file", ("reset", "500", "503", "truncate")),
               ("file", "gcs", ("reset", "500", "503", "429"))]


def fault_plan(faults: tuple[str, ...], rate: float, seed_text: str):
    """A FaultProxy plan: one of ``faults`` (seeded) for a ``rate`` share of the requests, and
    for one request among the 5th to the 30th whatever the draw, so some fault always lands."""
    rng = random.Random(seed_text)
    first = rng.randrange(5, 30)
    lock = threading.Lock()
    seen = [0]

    def plan(method: str, target: str) -> str | None:
        with lock:
            seen[0] += 1
            roll, fault = rng.random(), rng.choice(faults)
            return fault if roll < rate or seen[0] == first else None

    return plan


@pytest.mark.parametrize(("src_kind", "dest_kind", "faults"), PROXY_PAIRS,
                         ids=[f"{s}->{d}" for s, d, _ in PROXY_PAIRS])
def test_sigkilled_through_a_faulty_proxy(sources, fresh, tmp_path, gcs_server, rclone_server,
                                          src_kind, dest_kind, faults):
    remote = dest_kind if dest_kind != "file" else src_kind
    upstream = urllib.parse.urlsplit(gcs_server.url if remote == "gcs" else rclone_server.endpoint)
    plan = fault_plan(faults, 0.04, f"proxy:{SEED}:{src_kind}->{dest_kind}")
    with FaultProxy(upstream.hostname, upstream.port, plan) as proxy:
        src, dest = sources[src_kind], fresh(dest_kind)
        if src_kind == "s3-rclone":
            src = _via(src, proxy)
        if dest_kind == "s3-rclone":
            dest = _via(dest, proxy)
        gcs_url = proxy.url if remote == "gcs" else gcs_server.url
        keys = keys_for(src_kind, dest_kind)
        run = Run(f"proxy {src_kind}->{dest_kind} ({', '.join(faults)} at 4 %)", SEED, len(keys))
        db = run_killed(run, src, dest, keys, tmp_path, gcs_url, f"proxy-kills:{SEED}:{run.pair}")
        run.notes["faults injected"] = dict(proxy.injected)
        run.notes["requests forwarded"] = proxy.forwarded
    assert run.notes["kills that landed mid-job"] >= 1, run.text()
    assert sum(proxy.injected.values()) > 0, run.text()  # the proxy really was in the way
    conclude(run, dest, keys, db)


# -- pairs with mem://: interrupted in this process ----------------------------------------------------------
class CtrlC:
    """A real Ctrl-C (``_thread.interrupt_main``) ``delay`` seconds after ``arm``; ``disarm``
    makes sure none arrives later (one already sent is delivered inside the caller's ``try``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed = False
        self._timer: threading.Timer | None = None
        self.sent = False

    def arm(self, delay: float) -> None:
        with self._lock:
            self._armed = True
        self._timer = threading.Timer(delay, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._armed:
                self._armed = False
                self.sent = True
                _thread.interrupt_main()

    def disarm(self) -> None:
        with self._lock:
            self._armed = False
        if self._timer is not None:
            self._timer.cancel()
        for _ in range(100):  # a Ctrl-C sent just before is delivered here, inside the try
            time.sleep(0)


MEM_PAIRS = [(s, d) for s, d in PAIRS if "mem" in (s, d)]


@pytest.mark.parametrize(("src_kind", "dest_kind"), MEM_PAIRS, ids=[f"{s}->{d}" for s, d in MEM_PAIRS])
def test_interrupted_in_process_then_resumed(sources, fresh, tmp_path, gcs_server, monkeypatch,
                                            src_kind, dest_kind):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    monkeypatch.setattr(resumable, "CloudFiles", threshold_cloudfiles(THRESHOLD))  # see chaos_child
    src, dest = sources[src_kind], fresh(dest_kind)
    keys = keys_for(src_kind, dest_kind)
    listing = lists_source(src_kind, dest_kind)
    run = Run(f"{src_kind}->{dest_kind} (in process)", SEED, len(keys))
    block = block_size_for(len(keys))
    db = str(tmp_path / "job.db")
    rng = random.Random(f"interrupts:{SEED}:{run.pair}")
    rt = ResumableTransfer(db)
    block_s = 0.005  # the quickest block seen (an upper bound until one is measured)
    for i in range(KILLS):
        # the first from the callback (it always lands: some pairs take a few ms in all)
        plan = {"mode": rng.choice(("callback", "ctrl-c")) if i else "callback", "frac": round(rng.random(), 3),
                "within": round(rng.random(), 3), "kills_left": KILLS - i}
        record = dict(plan)
        ctrl_c = CtrlC()
        state = {"files": 0, "target": None, "at": time.monotonic(), "block_s": block_s}
        t0 = time.monotonic()

        def progress(event, plan=plan, state=state, ctrl_c=ctrl_c, record=record) -> None:
            if event.kind != "advance":
                return
            now = time.monotonic()
            if state["files"]:  # not the first advance (it counts the files done before)
                state["block_s"] = min(state["block_s"], now - state["at"])
            state["at"] = now
            state["files"] += event.files
            if state["target"] is None or state["files"] < state["target"]:
                return
            state["target"] = None  # once
            if plan["mode"] == "callback":
                raise KeyboardInterrupt("chaos: interrupted from the progress callback")
            record["delay_s"] = round(plan["within"] * state["block_s"], 5)
            ctrl_c.arm(record["delay_s"])

        try:
            rt.init(src.cloudpath, dest.cloudpath, paths=None if listing else keys)
            pre = rt.fileset.finished()
            k = blocks_to_wait(plan["frac"], math.ceil((len(keys) - pre) / block), plan["kills_left"])
            record.update(pre=pre, target=pre + k * block)
            state["target"] = pre + max(k, 1) * block if plan["mode"] == "callback" else pre + k * block
            if plan["mode"] == "ctrl-c" and k == 0:
                state["target"] = None
                record["delay_s"] = round(plan["within"] * block_s, 5)
                ctrl_c.arm(record["delay_s"])
            rt.execute(block_size=block, progress=progress)
            ctrl_c.disarm()
            record["outcome"] = "finished before the interruption"
        except KeyboardInterrupt as e:
            ctrl_c.disarm()
            record["outcome"] = f"interrupted ({'Ctrl-C' if ctrl_c.sent else e})"
        except Exception as e:  # noqa: BLE001 - the interruption broke something: report it
            ctrl_c.disarm()
            record["outcome"] = f"{type(e).__name__}: {e}"
            run.kills.append(record)
            pytest.fail(f"{run.text()}\nan interruption left the transfer unable to go on", pytrace=False)
        record["at_s"] = round(time.monotonic() - t0, 3)
        record["files_seen"] = state["files"]
        block_s = record["block_s"] = round(state["block_s"], 5)
        record["ledger_done_after"] = ledger_done(db)
        # the interrupted client must not keep the ledger's write lock: the other clients of the
        # ledger would wait for it, then fail, for as long as this process lives
        record["ledger_write_locked"] = ledger_write_locked(db)
        run.kills.append(record)
    try:
        rt.init(src.cloudpath, dest.cloudpath, paths=None if listing else keys)
        rt.execute(block_size=block)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"{run.text()}\nresuming after the interruptions failed: {type(e).__name__}: {e}",
                    pytrace=False)
    rt.fileset.close()
    interrupted = [k for k in run.kills if k["outcome"].startswith("interrupted")]
    run.notes["interruptions that landed"] = len(interrupted)
    assert interrupted, run.text()  # else nothing was tested
    locked = [i + 1 for i, k in enumerate(run.kills) if k["ledger_write_locked"]]
    conclude(run, dest, keys, db,
             {"ledger left write-locked after interruption(s)": locked} if locked else None)


# -- Dask: worker processes SIGKILLed mid-transfer -------------------------------------------------------------
def _until_a_kill(run: Run, seed_text: str, killer_for: Any, job: Any) -> int:
    """``job(attempt, killer)`` with a WorkerKiller (``killer_for(plans)``) running beside it,
    again with earlier kill moments while a run ends before its first kill (see
    :func:`_dask_attempts`); the attempt that was interrupted. A job that fails, a killer that
    fails, or no attempt interrupted fails the test with the run's record."""
    for attempt, plans in enumerate(_dask_attempts(seed_text), 1):
        killer = killer_for(plans)
        killer.start()
        try:
            job(attempt, killer)
        except Exception as e:  # noqa: BLE001 - reported with the run
            run.notes["failed"] = f"{type(e).__name__}: {e}"
        finally:
            killer.stop.set()
            killer.join(60)
            run.kills = killer.kills
        assert killer.error is None, f"{run.text()}\n{killer.error!r}"
        assert "failed" not in run.notes, run.text()
        if killer.kills:
            return attempt
        run.notes[f"attempt {attempt}"] = "finished before its first kill: run again, earlier"
    raise AssertionError(f"{run.text()}\nno attempt was interrupted: nothing was tested")


@pytest.fixture
def dask_client(gcs_server):
    """A fresh LocalCluster of two worker processes per test (a cluster whose workers were
    killed is not handed to the next test)."""
    distributed = pytest.importorskip("distributed")
    env = {"STORAGE_EMULATOR_HOST": gcs_server.url, "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost", "AWS_ACCESS_KEY_ID": s3_servers.ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": s3_servers.SECRET_KEY, "AWS_DEFAULT_REGION": s3_servers.REGION,
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "CLOUD_FILES_RETRY_BASE": "0.01",
           "CLOUD_FILES_RETRY_MAX": "0.05"}
    import dask

    # Dask gives a task up (KilledWorker) once this many workers died running it; each kill here
    # takes a worker never killed before, so a batch can meet at most DASK_KILLS deaths.
    with dask.config.set({"distributed.scheduler.allowed-failures": DASK_KILLS + 1}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                                     dashboard_address="127.0.0.1:0", env=env) as cluster, \
            distributed.Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        yield client


def _holds_open(pid: int, directory: str) -> bool:
    """True if process ``pid`` has a file under ``directory`` open (Linux /proc)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(directory + os.sep):
                return True
    return False


class WorkerKiller(threading.Thread):
    """SIGKILLs one worker process of ``client``, ``len(plans)`` times: each time once the
    driver's progress shows ``frac`` of ``n`` files, at the first sight of a new write in flight
    in ``dest`` (or once the progress moved on by a tenth of ``n``). The victim: a worker that
    holds a file of the transfer's file:// side (``local_dir``) open, so one in the middle of
    reading or writing an object, if one does; else one chosen by the plan's seed. Each kill
    takes a worker not killed before (the nanny restarts a killed one), so no batch can be run
    on more than ``len(plans)`` workers that die (Dask gives up after 3)."""

    def __init__(self, client, dest: Store, n: int, plans: list[dict], local_dir: str | None):
        super().__init__(daemon=True)
        self.client, self.dest, self.n, self.plans = client, dest, n, plans
        self.local_dir = local_dir
        self.shown = 0
        self.stop = threading.Event()
        self.kills: list[dict] = []
        self.error: BaseException | None = None

    def progress(self, event) -> None:
        if event.kind == "advance":
            self.shown += event.files

    def _live_pids(self, killed: set[int]) -> list[int] | None:
        """The pids of the live workers not killed yet (None if stopped first)."""
        deadline = time.monotonic() + 60
        while not self.stop.is_set():
            pids = sorted(pid for pid in self.client.run(os.getpid, on_error="ignore").values()
                          if isinstance(pid, int) and pid not in killed)
            if pids:
                return pids
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster has had no live worker for 60 s")
            time.sleep(0.05)
        return None

    def run(self) -> None:
        killed: set[int] = set()
        try:
            for plan in self.plans:
                pids = self._live_pids(killed)
                if pids is None:
                    return
                known = self.dest.partial_writes()
                while self.shown < plan["frac"] * self.n and not self.stop.is_set():
                    time.sleep(0.005)
                start = self.shown
                seen = None
                while not self.stop.is_set() and self.shown < start + self.n / 10:
                    seen = self.dest.in_flight(known)
                    if seen:
                        break
                    time.sleep(0.005)
                if self.stop.is_set():
                    return
                pids = [p for p in pids if os.path.exists(f"/proc/{p}")] or self._live_pids(killed) or []
                if not pids:
                    return
                busy = [p for p in pids if self.local_dir and _holds_open(p, self.local_dir)]
                candidates = busy or pids
                victim = candidates[math.floor(plan["pick"] * len(candidates))]
                os.kill(victim, signal.SIGKILL)
                killed.add(victim)
                self.kills.append({**plan, "shown": self.shown, "seen": seen, "victim": victim,
                                   "busy": victim in busy, "workers": pids})
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e
            with contextlib.suppress(Exception):
                self.client.close()  # the transfer waiting on this cluster fails instead of hanging


def _local_side(src: Store, dest: Store) -> str | None:
    return next((s.dir for s in (dest, src) if isinstance(s, FileStore)), None)


def _dask_plans(seed_text: str) -> list[dict]:
    rng = random.Random(seed_text)
    fracs = sorted(round(rng.uniform(0.0, 0.6), 3) for _ in range(DASK_KILLS))
    return [{"frac": f, "pick": round(rng.random(), 3)} for f in fracs]


def _dask_attempts(seed_text: str) -> Iterator[list[dict]]:
    """The kill plans of up to three runs: the seeded ones, then the same with earlier moments.
    A run the cluster finished before its first kill's moment tested nothing: it is run again
    (the last time the first kill waits only for a write in flight)."""
    plans = _dask_plans(seed_text)
    for scale in (1.0, 0.25, 0.0):
        yield [{**plan, "frac": round(plan["frac"] * scale, 3)} for plan in plans]


@pytest.fixture
def fast_reports(monkeypatch):
    """Workers report their running batches every 20 ms, the driver looks every 20 ms."""
    from cloudfiles_dask._engine import distribute

    monkeypatch.setattr(distribute, "PUBLISH_INTERVAL", 0.02)
    monkeypatch.setattr(distribute, "TICK", 0.02)


DASK_TRANSFER_PAIRS = [("s3-rclone", "file"), ("file", "gcs")]


@pytest.mark.parametrize(("src_kind", "dest_kind"), DASK_TRANSFER_PAIRS,
                         ids=[f"{s}->{d}" for s, d in DASK_TRANSFER_PAIRS])
def test_dask_transfer_with_workers_sigkilled(sources, fresh, dask_client, fast_reports, src_kind, dest_kind):
    src, dest = sources[src_kind], fresh(dest_kind)
    keys = keys_for(src_kind, dest_kind)
    run = Run(f"dask transfer_to {src_kind}->{dest_kind}", SEED, len(keys))

    def transfer(attempt: int, killer: WorkerKiller) -> None:
        record = CloudFiles(src.cloudpath).transfer_to(
            CloudFiles(dest.cloudpath, composite_upload_threshold=THRESHOLD), paths=keys,
            block_size=8, client=dask_client, progress=killer.progress)
        run.notes["files in the record"] = record.files
        run.notes["lost workers"] = len(record.lost_workers)

    _until_a_kill(run, f"dask:{SEED}:{run.pair}",
                  lambda plans: WorkerKiller(dask_client, dest, len(keys), plans,
                                             _local_side(src, dest)), transfer)
    conclude(run, dest, keys, None)


DASK_RESUMABLE_PAIRS = [("file", "s3-rclone"), ("gcs", "file")]


@pytest.mark.parametrize(("src_kind", "dest_kind"), DASK_RESUMABLE_PAIRS,
                         ids=[f"{s}->{d}" for s, d in DASK_RESUMABLE_PAIRS])
def test_dask_resumable_with_workers_sigkilled(sources, fresh, dask_client, fast_reports, tmp_path,
                                              monkeypatch, src_kind, dest_kind):
    monkeypatch.setattr(resumable, "CloudFiles", threshold_cloudfiles(THRESHOLD))  # see chaos_child
    src, dest = sources[src_kind], fresh(dest_kind)
    keys = keys_for(src_kind, dest_kind)
    run = Run(f"dask ResumableTransfer.execute {src_kind}->{dest_kind}", SEED, len(keys))

    def execute(attempt: int, killer: WorkerKiller) -> None:
        rt = ResumableTransfer(str(tmp_path / f"job-{attempt}.db"), lease_msec=10_000)
        rt.init(src.cloudpath, dest.cloudpath)  # a fresh ledger: an earlier one is all done
        try:
            run.notes["transferred"] = rt.execute(client=dask_client,
                                                  block_size=max(4, len(keys) // 10),
                                                  progress=killer.progress)
        finally:
            rt.fileset.close()

    attempt = _until_a_kill(run, f"dask-rt:{SEED}:{run.pair}",
                            lambda plans: WorkerKiller(dask_client, dest, len(keys), plans,
                                                       _local_side(src, dest)), execute)
    db = str(tmp_path / f"job-{attempt}.db")
    conclude(run, dest, keys, db)
