"""Where our client's CPU goes on small requests: py-spy over one bulk call, all threads.

    benchmarks/.venv/bin/pip install py-spy        # once (not part of the suite's requirements)
    benchmarks/.venv/bin/python benchmarks/profile_small.py [--backend s3|gcs] [--op get|put] [-n 2000]

Starts its own servers (as run.py does), seeds the objects, then runs
``CloudFiles.get(keys)`` (or ``puts``) under ``py-spy record --threads --gil`` (samples of the thread holding the GIL: Python on-CPU time) and prints
the share of on-CPU samples by package (inclusive: a sample counts for every package on its
stack) and the functions with the most samples of their own. The collapsed stacks are kept in
``benchmarks/results/profile-BACKEND-OP.txt`` (feed them to any flame graph tool).
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _servers  # noqa: E402

TARGET = r"""
import os, sys, time
from cloudfiles_dask import CloudFiles
backend, op, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
secrets = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
root = {"s3": f"s3://{os.environ['S3_URL']}/bench/", "gcs": "gs://bench/",
        "file": "file://" + os.environ.get("FILE_ROOT", "")}[backend]
cf = CloudFiles(root, secrets=secrets if backend == "s3" else None, num_threads=20)
keys = [f"prof/{i:06d}" for i in range(n)]
data = [os.urandom(4096) for _ in range(n)]
if op == "seed":
    cf.puts(list(zip(keys, data)))
    sys.exit(0)
cf.get("warm-up/missing")
for rep in range(3):
    t0 = time.perf_counter(); c0 = time.process_time()
    if op == "get":
        cf.get(keys)
    else:
        cf.puts(list(zip(keys, data)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"{op} {n}: {n / wall:.0f} ops/s, {cpu / n * 1e6:.0f} us CPU/op", flush=True)
"""

PACKAGES = [
    ("cloudfiles_dask/backends", "cloudfiles_dask backends"),
    ("cloudfiles_dask/backends/local.py", "  cloudfiles_dask local backend"),
    ("cloudfiles_dask/_locks.py", "  cloudfiles_dask locks"),
    ("fasteners/", "fasteners"),
    ("tempfile.py", "tempfile"),
    ("cloudfiles_dask/_engine", "cloudfiles_dask engine"),
    ("cloudfiles_dask/", "cloudfiles_dask (other)"),
    ("botocore/", "botocore"),
    ("botocore/serialize.py", "  botocore: serialize request"),
    ("botocore/auth.py", "  botocore: SigV4 signing"),
    ("botocore/hooks.py", "  botocore: event hooks"),
    ("botocore/regions.py", "  botocore: endpoint rules"),
    ("botocore/endpoint_provider.py", "  botocore: endpoint rules"),
    ("botocore/parsers.py", "  botocore: parse response"),
    ("botocore/useragent.py", "  botocore: user agent"),
    ("botocore/awsrequest.py", "  botocore: AWSRequest/AWSConnection"),
    ("botocore/httpsession.py", "  botocore: http session"),
    ("botocore/retries", "  botocore: retry handlers"),
    ("botocore/handlers.py", "  botocore: handlers"),
    ("boto3/", "boto3"),
    ("google/cloud/storage", "google-cloud-storage"),
    ("google/auth", "google-auth"),
    ("google/resumable_media", "google-resumable-media"),
    ("requests/", "requests"),
    ("cloudfiles_dask/backends/gcs.py", "  cloudfiles_dask gcs backend"),
    ("cloudfiles_dask/backends/_http1.py", "  cloudfiles_dask HTTP/1.1 client"),
    ("cloudfiles_dask/backends/s3.py", "  cloudfiles_dask s3 backend"),
    ("obstore/", "obstore"),
    ("urllib3/", "urllib3"),
    ("http/client.py", "http.client"),
    ("email/", "email (header parsing)"),
    ("concurrent/futures", "concurrent.futures"),
    ("threading.py", "threading"),
    ("socket.py", "socket"),
    ("ssl.py", "ssl"),
    ("hashlib", "hashlib"),
    ("xml/", "xml"),
    ("logging/", "logging"),
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["s3", "gcs", "file"], default="s3")
    parser.add_argument("--op", choices=["get", "put"], default="get")
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(pyspy):
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="profile-")
    s3 = _servers.rclone_s3(os.path.join(tmp, "root"), tmp, ["bench"]).start()
    gcs = _servers.fake_gcs(tmp).start()
    _servers.gcs_create_bucket(gcs.url, "bench")
    out = os.path.join(HERE, "results", f"profile-{args.backend}-{args.op}.txt")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(S3_URL=s3.url, FILE_ROOT=os.path.join(tmp, "files"), STORAGE_EMULATOR_HOST=gcs.url, NO_GCE_CHECK="True",
               GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9",
               AWS_EC2_METADATA_DISABLED="true")
    try:
        subprocess.run([sys.executable, "-c", TARGET, args.backend, "seed", str(args.n)], env=env, check=True)
        subprocess.run([pyspy, "record", "--format", "raw", "--threads", "--gil", "--rate", "200", "-o", out,
                        "--", sys.executable, "-c", TARGET, args.backend, args.op, str(args.n)],
                       env=env, check=True)
    finally:
        s3.stop()
        gcs.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    summarize(out)
    return 0


_OURS = {"cloudfiles_dask backends", "cloudfiles_dask engine"}


def summarize(path: str) -> None:
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = [fr for fr in stack.split(";") if not fr.startswith("thread")]
            # skip import work (the rest is the three timed calls and the client's setup)
            if any("_find_and_load" in fr for fr in frames):
                continue
            total += n
            seen = set()
            for fr in frames:
                for needle, label in PACKAGES:
                    if needle in fr and not (label.endswith("(other)") and seen & _OURS):
                        seen.add(label)
            for label in seen:
                inclusive[label] += n
            if frames:
                own[frames[-1]] += n
    print(f"\n{total} on-CPU samples (all threads)\nshare of samples by package (inclusive):")
    for label, n in inclusive.most_common():
        print(f"  {100 * n / total:5.1f}%  {label}")
    print("functions with the most samples of their own:")
    for frame, n in own.most_common(15):
        print(f"  {100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    sys.exit(main())
