"""Where the time of one large verified S3 GET goes, on this machine (the evidence behind
docs/performance.md's "large GETs" paragraph; not part of the side-by-side suite).

Run: ``benchmarks/.venv/bin/python benchmarks/probe_large_get.py [--mib 256] [--reps 5]``
(any venv with boto3, obstore and this package works). It starts ``rclone serve s3`` on
127.0.0.1, stores one object with a plain md5 ETag (one PUT, as rclone reports for any object),
and times reading it into memory in several ways, each the median of ``--reps``:

- md5 alone over the bytes already in memory: the floor of any verified read on one core;
- one GET streamed (obstore, botocore), with and without hashing the bytes as they arrive;
- ranged GETs of 8 MiB parts, several in flight (what boto3's transfer manager does), with and
  without an md5 over the parts in order (the md5 of a plain ETag cannot be split);
- this library's ``CloudFiles.get`` (verified).

Columns: MB/s, client CPU seconds (all threads), rclone's CPU seconds over the same call.
Writes ``results/probe_large_get.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _servers import process_cpu  # noqa: E402

from tests.servers import s3 as servers  # noqa: E402

MiB = 1024 * 1024
PART = 8 * MiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    size = args.mib * MiB
    data = os.urandom(size)
    root = tempfile.mkdtemp(prefix="probe-rclone-")
    os.makedirs(os.path.join(root, "bkt"))
    server = servers.rclone_server(root, root)
    rows: list[tuple[str, float, float, float]] = []
    with servers.running(server):
        admin = servers.admin_client(server.endpoint)
        admin.put_object(Bucket="bkt", Key="big", Body=data)
        etag = admin.head_object(Bucket="bkt", Key="big")["ETag"].strip('"')
        assert etag == hashlib.md5(data).hexdigest(), "expected a plain md5 ETag"
        del data
        pid = server.proc.pid

        def timed(name: str, fn: Callable[[], object]) -> None:
            fn()  # warm: connections, imports
            runs = []
            for _ in range(args.reps):
                s0, c0, t0 = process_cpu(pid), time.process_time(), time.perf_counter()
                fn()
                runs.append((time.perf_counter() - t0, time.process_time() - c0, process_cpu(pid) - s0))
            wall, cpu, server_cpu = sorted(runs)[len(runs) // 2]
            rows.append((name, size / MiB / wall, cpu, server_cpu))
            print(f"{name:62s} {size / MiB / wall:6.0f} MB/s  client {cpu:.2f} s  server {server_cpu:.2f} s",
                  flush=True)

        import obstore
        from obstore.store import S3Store

        store = S3Store("bkt", endpoint=server.endpoint, access_key_id=servers.ACCESS_KEY,
                        secret_access_key=servers.SECRET_KEY, region=servers.REGION,
                        client_options={"allow_http": True}, virtual_hosted_style_request=False)
        blob = admin.get_object(Bucket="bkt", Key="big")["Body"].read()

        def obstore_stream(check: bool) -> bytes:
            digest, pieces = hashlib.md5(), []
            for chunk in obstore.get(store, "big").stream(min_chunk_size=MiB):
                if check:
                    digest.update(chunk)
                pieces.append(chunk)
            return b"".join(pieces)

        def botocore_stream(check: bool) -> bytes:
            body, digest, pieces = admin.get_object(Bucket="bkt", Key="big")["Body"], hashlib.md5(), []
            while chunk := body.read(MiB):
                if check:
                    digest.update(chunk)
                pieces.append(chunk)
            return b"".join(pieces)

        def part(number: int) -> bytes:
            last = min(size, (number + 1) * PART) - 1
            return admin.get_object(Bucket="bkt", Key="big", Range=f"bytes={number * PART}-{last}")["Body"].read()

        def ranged(check: bool, in_flight: int) -> bytes:
            digest, pieces, count = hashlib.md5(), [], -(-size // PART)
            with ThreadPoolExecutor(in_flight) as pool:
                ahead = {n: pool.submit(part, n) for n in range(min(in_flight, count))}
                for n in range(count):
                    piece = ahead.pop(n).result()
                    if n + in_flight < count:
                        ahead[n + in_flight] = pool.submit(part, n + in_flight)
                    if check:
                        digest.update(piece)
                    pieces.append(piece)
            return b"".join(pieces)

        from cloudfiles_dask import CloudFiles

        cf = CloudFiles("s3://bkt/", endpoint=server.endpoint,
                        secrets={"AWS_ACCESS_KEY_ID": servers.ACCESS_KEY,
                                 "AWS_SECRET_ACCESS_KEY": servers.SECRET_KEY})

        timed("md5 of the bytes in memory (one core; the floor of a verified read)",
              lambda: hashlib.md5(blob).digest())
        timed("obstore, one GET streamed, no check", lambda: obstore_stream(False))
        timed("obstore, one GET streamed, md5 as the bytes arrive", lambda: obstore_stream(True))
        timed("botocore, one GET streamed, no check", lambda: botocore_stream(False))
        timed("botocore, one GET streamed, md5 as the bytes arrive", lambda: botocore_stream(True))
        for in_flight in (3, 4):
            timed(f"botocore, 8 MiB ranges x {in_flight} in flight, no check",
                  lambda n=in_flight: ranged(False, n))
            timed(f"botocore, 8 MiB ranges x {in_flight} in flight, md5 in order",
                  lambda n=in_flight: ranged(True, n))
        timed("cloudfiles_dask CloudFiles.get (verified)", lambda: cf.get("big"))
    out = os.path.join(HERE, "results", "probe_large_get.md")
    with open(out, "w") as f:
        f.write(f"One {args.mib} MiB GET to memory from rclone serve s3 on {os.cpu_count()} cores, "
                f"median of {args.reps} (benchmarks/probe_large_get.py, "
                f"{time.strftime('%Y-%m-%d %H:%M')}).\n\n")
        f.write("| how | MB/s | client CPU s | server CPU s |\n|---|---|---|---|\n")
        for name, rate, cpu, server_cpu in rows:
            f.write(f"| {name} | {rate:.0f} | {cpu:.2f} | {server_cpu:.2f} |\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
