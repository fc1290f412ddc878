"""Which fake-gcs-server storage backend measures the clients rather than itself (the evidence
behind the benchmarks' choice of ``-backend filesystem`` on tmpfs; not part of the side-by-side
suite, and it changes nothing in the library).

Run: ``.venv/bin/python benchmarks/probe_gcs_backend.py [--n 2000] [--rounds 3]`` (any venv with
this package). For each backend (``memory``; ``filesystem`` on tmpfs; ``filesystem`` on the
disk under the system temp directory) it starts its own fake-gcs-server on 127.0.0.1, then
uploads ``--n`` 4 KiB objects with ``CloudFiles.puts`` (20 threads) ``--rounds`` times into the
same bucket (so each round starts with the earlier rounds' objects in it), reads each round's
objects back with ``CloudFiles.get``, and lists the bucket. Columns: operations per second and
the server's CPU per operation over the same call. Writes ``results/probe_gcs_backend.md``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import _servers  # noqa: E402

BUCKET = "probe"


def start(backend: str, root: str | None, log_dir: str) -> _servers.Server:
    port = _servers.free_port()
    host = _servers.HOST
    argv = [_servers.fake_gcs_binary(), "-scheme", "http", "-backend", backend, "-host", host,
            "-port", str(port), "-external-url", f"http://{host}:{port}",
            "-public-host", f"{host}:{port}", "-log-level", "error"]
    if root is not None:
        argv += ["-filesystem-root", root]
    log = os.path.join(log_dir, f"fake-gcs-{backend}.log")
    return _servers.Server("fake-gcs-server", argv, port, log, "/storage/v1/b", storage=root).start()


def measure(label: str, server: _servers.Server, n: int, rounds: int) -> list[str]:
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    from cloudfiles_dask import CloudFiles

    _servers.gcs_create_bucket(server.url, BUCKET)
    cf = CloudFiles(f"gs://{BUCKET}/", num_threads=20)
    cf.exists("warm-up")
    datas = [os.urandom(4096) for _ in range(n)]
    rows = []

    def timed(what: str, call, count: int, unit: str) -> None:
        c0, t0 = server.cpu(), time.perf_counter()
        call()
        wall, cpu = time.perf_counter() - t0, server.cpu() - c0
        rows.append(f"| {label} | {what} | {count / wall:,.0f} {unit}/s | {1e6 * cpu / count:,.0f} µs |")
        print(rows[-1], flush=True)

    for r in range(rounds):
        pairs = [(f"r{r}/{i:06d}", d) for i, d in enumerate(datas)]
        timed(f"PUT {n} x 4 KiB, {r * n} objects already in the bucket",
              lambda pairs=pairs: cf.puts(pairs, compress=None), n, "ops")
    for r in range(rounds):
        keys = [f"r{r}/{i:06d}" for i in range(n)]

        def read(keys=keys) -> None:
            got = {x["path"]: x["content"] for x in cf.get(keys)}
            assert all(got[k] == datas[i] for i, k in enumerate(keys)), "a read returned other bytes"

        timed(f"GET {n} x 4 KiB (round {r}'s objects)", read, n, "ops")
    timed(f"list {rounds * n} keys", lambda: sum(1 for _ in cf.list("")), rounds * n, "keys")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="probe-gcs-backend-")
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    setups = [("memory", "memory", None),
              ("filesystem on tmpfs" if shm else "filesystem on tmpfs (no /dev/shm: skipped)", "filesystem", shm),
              ("filesystem on disk", "filesystem", tempfile.gettempdir())]
    rows = []
    try:
        for label, backend, parent in setups:
            if backend == "filesystem" and parent is None:
                continue
            root = tempfile.mkdtemp(prefix="probe-gcs-", dir=parent) if parent else None
            server = start(backend, root, work)
            try:
                rows += measure(label, server, args.n, args.rounds)
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join([
        f"fake-gcs-server storage backends, {args.n} x 4 KiB objects per round through CloudFiles "
        f"(20 threads), on {os.cpu_count()} cores, 127.0.0.1 (benchmarks/probe_gcs_backend.py, "
        f"{time.strftime('%Y-%m-%d %H:%M')}). One run each; server CPU is fake-gcs-server's own.",
        "", "| backend | call | throughput | server CPU per op |", "|---|---|---|---|", *rows, ""])
    out = os.path.join(HERE, "results", "probe_gcs_backend.md")
    with open(out, "w") as f:
        f.write(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
