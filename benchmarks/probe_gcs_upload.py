"""Where the time and fake-gcs-server's CPU go when one large object is uploaded to GCS from
memory, and which upload strategy is cheapest here (evidence for the GCS PUT-large numbers; not
part of the side-by-side suite, and it changes nothing in the library).

Run: ``.venv/bin/python benchmarks/probe_gcs_upload.py [--mib 256] [--reps 3] [--perf]``
(any venv with this package; google-cloud-storage is optional, for row (e)). It starts its own
fake-gcs-server (as the benchmarks start it, 127.0.0.1 only), one per strategy, and uploads a random
payload into a fresh bucket per repetition. Strategies:

(a) ``CloudFiles.put`` as it is: a composite upload (parts of ``composite_upload_threshold``
    bytes, each one ``uploadType=multipart`` request with md5Hash, 4 in flight), then compose,
    then a delete of the parts. The backend's ``_upload`` / ``_compose`` / ``_delete_names`` are
    wrapped (on the instance, in this process only) to time the phases.
(b) the same parts sent as ``uploadType=media`` (raw body, name in the query), then the same
    compose and delete (the backend's own ``_compose`` / ``_delete_names``).
(c) one resumable session: ``POST uploadType=resumable``, then ``PUT`` chunks with
    ``Content-Range`` (16 MiB, 64 MiB, the whole object in one PUT).
(d) one ``uploadType=multipart`` request with the whole object (``backend._upload``).
(e) google-cloud-storage ``blob.upload_from_string`` (a resumable upload in 100 MiB chunks).
(f) one ``uploadType=media`` request with the whole object.

Columns: wall seconds, MB/s (1e6 bytes), this process's CPU seconds (all threads), the server's
CPU seconds over the same call and its average cores (server CPU / wall); each the median of
``--reps`` runs (by wall time). Each stored object is checked (size and crc32c) afterwards.

``--perf`` instead runs each strategy once with ``perf record`` attached to the server and sorts
its CPU samples by function (the Go binary is stripped: its functions are read from the
``.gopclntab`` section here). The tables land between markers in
``results/probe_gcs_upload.md``; text outside the markers is kept.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import collections
import http.client
import json
import os
import queue
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import _servers  # noqa: E402

MiB = 1024 * 1024
NAME = "x/obj"  # the object every strategy writes: CloudFiles("gs://BUCKET/x").put("obj", ...)
OUT = os.path.join(HERE, "results", "probe_gcs_upload.md")

# No proxies, no cloud metadata server, no credentials from the environment (as run.py's Harness).
for _k in list(os.environ):
    if _k.lower() in ("http_proxy", "https_proxy", "all_proxy", "google_application_credentials"):
        del os.environ[_k]
os.environ.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", GOOGLE_CLOUD_PROJECT="test",
                  NO_GCE_CHECK="True", GCE_METADATA_HOST="127.0.0.1:9", GCE_METADATA_IP="127.0.0.1:9")

import google_crc32c  # noqa: E402

from cloudfiles_dask import CloudFiles  # noqa: E402
from cloudfiles_dask.backends.base import PutMeta  # noqa: E402


def b64crc(data) -> str:
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode()


# -- raw HTTP to the emulator (http.client, keep-alive, 127.0.0.1 only) -----------------------------
class Conns:
    """A few keep-alive connections to the server, shared by threads."""

    def __init__(self, port: int):
        self.port = port
        self.free: queue.SimpleQueue = queue.SimpleQueue()

    def request(self, method: str, target: str, body=None, headers: dict | None = None) -> tuple[int, dict, bytes]:
        try:
            conn = self.free.get_nowait()
        except queue.Empty:
            conn = http.client.HTTPConnection(_servers.HOST, self.port, timeout=600)
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        self.free.put(conn)
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


# -- the strategies -----------------------------------------------------------------------------------
class Ctx:
    def __init__(self, server, data: bytes):
        self.server = server
        self.port = server.port
        self.url = server.url
        self.data = data
        self.conns = Conns(server.port)
        self.gcs_client = None


class Phases:
    """Wall and server-CPU spans of the backend calls of one put (parallel calls merge)."""

    def __init__(self, server):
        self.server = server
        self.spans: dict[str, list] = collections.defaultdict(list)
        self.lock = threading.Lock()

    def wrap(self, obj, attr: str, phase: str) -> None:
        original = getattr(obj, attr)

        def wrapped(*args, **kwargs):
            t0, s0 = time.perf_counter(), self.server.cpu()
            try:
                return original(*args, **kwargs)
            finally:
                t1, s1 = time.perf_counter(), self.server.cpu()
                with self.lock:
                    self.spans[phase].append((t0, t1, s0, s1))

        setattr(obj, attr, wrapped)

    def summary(self, t_start: float, t_end: float, s_start: float, s_end: float) -> dict:
        out = {}
        covered_wall = covered_cpu = 0.0
        for phase, spans in self.spans.items():
            first = min(spans, key=lambda s: s[0])
            last = max(spans, key=lambda s: s[1])
            wall, cpu = last[1] - first[0], last[3] - first[2]
            out[phase] = (wall, cpu, len(spans))
            covered_wall += wall
            covered_cpu += cpu
        out["rest (client prep, between calls)"] = (t_end - t_start - covered_wall, s_end - s_start - covered_cpu, 0)
        return out


def cloudfiles_put(threshold: int) -> Callable:
    def run(ctx: Ctx, bucket: str, phases: Phases | None):
        cf = CloudFiles(f"gs://{bucket}/x", composite_upload_threshold=threshold)
        if phases is not None:
            backend = cf.backend
            phases.wrap(backend, "_upload", "part uploads (multipart)")
            phases.wrap(backend, "_compose", "compose")
            phases.wrap(backend, "_delete_names", "delete parts")
        cf.put("obj", ctx.data, compress=None)

    return run


def media_parts_then_compose(part: int) -> Callable:
    def run(ctx: Ctx, bucket: str, phases: Phases | None):
        backend = CloudFiles(f"gs://{bucket}/x").backend
        if phases is not None:
            phases.wrap(backend, "_compose", "compose")
            phases.wrap(backend, "_delete_names", "delete parts")
        view = memoryview(ctx.data)
        stem = f"{NAME}.probe-part-{os.urandom(4).hex()}"
        names = [f"{stem}.{i}" for i in range(-(-len(view) // part))]

        def upload(i: int) -> None:
            chunk = view[i * part : (i + 1) * part]
            crc = base64.b64encode(_crc_of(chunk)).decode()
            target = f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(names[i], safe='')}"
            status, _, body = ctx.conns.request("POST", target, chunk, {"Content-Type": "application/octet-stream"})
            assert status == 200, (status, body[:200])
            assert json.loads(body)["crc32c"] == crc, "part damaged"

        t0, s0 = time.perf_counter(), ctx.server.cpu()
        with ThreadPoolExecutor(4) as pool:  # as many in flight as the library's composite upload
            list(pool.map(upload, range(len(names))))
        if phases is not None:
            phases.spans["part uploads (media)"].append((t0, time.perf_counter(), s0, ctx.server.cpu()))
        body = json.dumps({"sourceObjects": [{"name": n} for n in names],
                           "destination": {"contentType": "application/octet-stream"}}).encode()
        backend._compose(NAME, body)
        backend._delete_names(names)

    return run


def _crc_of(chunk: memoryview) -> bytes:
    c = google_crc32c.Checksum()
    for i in range(0, len(chunk), 16 * MiB):  # google_crc32c takes bytes only: small copies
        c.update(bytes(chunk[i : i + 16 * MiB]))
    return c.digest()


def resumable(chunk: int | None) -> Callable:
    def run(ctx: Ctx, bucket: str, phases: Phases | None):
        view = memoryview(ctx.data)
        size = len(view)
        step = chunk or size
        meta = json.dumps({"name": NAME, "contentType": "application/octet-stream"}).encode()
        status, headers, body = ctx.conns.request(
            "POST", f"/upload/storage/v1/b/{bucket}/o?uploadType=resumable&name={quote(NAME, safe='')}",
            meta, {"Content-Type": "application/json; charset=UTF-8"})
        assert status == 200 and "location" in headers, (status, body[:200])
        loc = urlsplit(headers["location"])
        target = f"{loc.path}?{loc.query}"
        for start in range(0, size, step):
            end = min(size, start + step)
            t0, s0 = time.perf_counter(), ctx.server.cpu()
            status, _, body = ctx.conns.request(
                "PUT", target, view[start:end], {"Content-Range": f"bytes {start}-{end - 1}/{size}"})
            if phases is not None:
                phases.spans[f"PUT {start // step + 1}"].append((t0, time.perf_counter(), s0, ctx.server.cpu()))
            assert status == (200 if end == size else 308), (status, body[:200])

    return run


def one_multipart(ctx: Ctx, bucket: str, phases: Phases | None):
    CloudFiles(f"gs://{bucket}/x").backend._upload(NAME, ctx.data, PutMeta())


def one_media(ctx: Ctx, bucket: str, phases: Phases | None):
    target = f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={quote(NAME, safe='')}"
    status, _, body = ctx.conns.request("POST", target, ctx.data, {"Content-Type": "application/octet-stream"})
    assert status == 200, (status, body[:200])


def google_cloud_storage(ctx: Ctx, bucket: str, phases: Phases | None):
    if ctx.gcs_client is None:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        ctx.gcs_client = storage.Client(project="test", credentials=AnonymousCredentials())
    blob = ctx.gcs_client.bucket(bucket).blob(NAME)
    blob.upload_from_string(ctx.data, content_type="application/octet-stream")


def have_google_cloud_storage() -> bool:
    try:
        import google.cloud.storage  # noqa: F401
    except ImportError:
        return False
    return True


def strategies(size: int) -> list[tuple[str, str, Callable]]:
    """(key, description, run)"""
    big = int(1e8)
    n_big, n_32 = -(-size // big), -(-size // (32 * MiB))
    rows = [
        ("a", f"(a) CloudFiles.put: {n_big} multipart parts of 1e8 B (4 in flight) + compose + delete",
         cloudfiles_put(big)),
        ("a32", f"(a) CloudFiles.put, composite_upload_threshold=32 MiB: {n_32} multipart parts + compose + delete",
         cloudfiles_put(32 * MiB)),
        ("b", f"(b) {n_big} media parts of 1e8 B (4 in flight) + compose + delete", media_parts_then_compose(big)),
        ("b32", f"(b) {n_32} media parts of 32 MiB (4 in flight) + compose + delete",
         media_parts_then_compose(32 * MiB)),
        ("c16", f"(c) one resumable session, {-(-size // (16 * MiB))} PUTs of 16 MiB", resumable(16 * MiB)),
        ("c64", f"(c) one resumable session, {-(-size // (64 * MiB))} PUTs of 64 MiB", resumable(64 * MiB)),
        ("c1", "(c) one resumable session, the whole object in one PUT", resumable(None)),
        ("d", "(d) one uploadType=multipart request (backend._upload)", one_multipart),
        ("e", "(e) google-cloud-storage blob.upload_from_string (resumable, 100 MiB chunks)", google_cloud_storage),
        ("f", "(f) one uploadType=media request", one_media),
    ]
    if not have_google_cloud_storage():
        print("google-cloud-storage is not importable here: row (e) skipped", flush=True)
        rows = [r for r in rows if r[0] != "e"]
    return rows


# -- running ------------------------------------------------------------------------------------------
_bucket_seq = [0]


def fresh_bucket(ctx: Ctx) -> str:
    _bucket_seq[0] += 1
    name = f"probe-{_bucket_seq[0]:03d}-{os.urandom(3).hex()}"
    _servers.gcs_create_bucket(ctx.url, name)
    return name


def check_stored(ctx: Ctx, bucket: str, crc: str) -> None:
    status, _, body = ctx.conns.request("GET", f"/storage/v1/b/{bucket}/o/{quote(NAME, safe='')}")
    assert status == 200, (status, body[:200])
    meta = json.loads(body)
    assert int(meta["size"]) == len(ctx.data), meta.get("size")
    assert meta["crc32c"] == crc, (meta["crc32c"], crc)
    status, _, body = ctx.conns.request("GET", f"/storage/v1/b/{bucket}/o?prefix=x/")
    left = [item["name"] for item in json.loads(body).get("items", [])]
    assert left == [NAME], f"objects left in the bucket: {left}"
    _servers.gcs_delete_object(ctx.url, bucket, NAME)  # frees the server's memory


def machine_times() -> tuple[float, float]:
    """(idle incl. iowait, steal) CPU seconds of the whole machine since boot, summed over cores."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (values[3] + values[4]) / ticks, (values[7] if len(values) > 7 else 0) / ticks


def one_run(ctx: Ctx, run: Callable, crc: str, phases: bool) -> dict:
    bucket = fresh_bucket(ctx)
    ph = Phases(ctx.server) if phases else None
    (i0, st0), s0, c0, t0 = machine_times(), ctx.server.cpu(), time.process_time(), time.perf_counter()
    run(ctx, bucket, ph)
    t1, c1, s1, (i1, st1) = time.perf_counter(), time.process_time(), ctx.server.cpu(), machine_times()
    check_stored(ctx, bucket, crc)
    result = {"wall": t1 - t0, "client": c1 - c0, "server": s1 - s0, "idle": i1 - i0, "steal": st1 - st0}
    if ph is not None:
        result["phases"] = ph.summary(t0, t1, s0, s1)
    return result


def start_server(log_dir: str):
    server = _servers.fake_gcs(log_dir).start(timeout=60)
    os.environ["STORAGE_EMULATOR_HOST"] = server.url  # read by each new backend / gcs Client
    return server


def warm_up(ctx: Ctx, key: str, run: Callable) -> None:
    """A small object through the same path: connections, imports, the gcs Client."""
    small = Ctx.__new__(Ctx)
    small.__dict__.update(ctx.__dict__)
    small.data = os.urandom(MiB)
    if key in ("a", "a32"):
        run = cloudfiles_put(int(1e8))
    elif key.startswith("b"):
        run = media_parts_then_compose(MiB // 2)
    run(small, fresh_bucket(small), None)
    ctx.gcs_client = small.gcs_client


def timings(args, data: bytes, crc: str, log_dir: str, only: set[str]) -> list[dict]:
    rows = []
    for key, label, run in strategies(len(data)):
        if only and key not in only:
            continue
        server = start_server(log_dir)
        try:
            ctx = Ctx(server, data)
            warm_up(ctx, key, run)
            for _ in range(args.full_warmups):  # the server's heap grows to its working size
                one_run(ctx, run, crc, phases=False)
            runs = [one_run(ctx, run, crc, phases=True) for _ in range(args.reps)]
        finally:
            server.stop()
        best = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
        row = {"key": key, "label": label, **best, "walls": [r["wall"] for r in runs],
               "server_all": [r["server"] for r in runs]}
        rows.append(row)
        print(f"{label:95s} {best['wall']:6.2f} s {len(data) / best['wall'] / 1e6:6.0f} MB/s  "
              f"client {best['client']:.2f} s  server {best['server']:.2f} s "
              f"({best['server'] / best['wall']:.2f} cores)  idle {best['idle']:.2f} s  steal {best['steal']:.2f} s  "
              f"walls {[f'{w:.2f}' for w in row['walls']]}",
              flush=True)
        for phase, (wall, cpu, n) in best.get("phases", {}).items():
            print(f"    {phase:40s} {wall:6.2f} s  server {cpu:5.2f} s  calls {n}", flush=True)
    return rows


# -- perf: the server's CPU by function -----------------------------------------------------------------
class GoSymbols:
    """Function names of a (stripped) Go binary from its .gopclntab (Go 1.20+ layout)."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            elf = f.read()
        assert elf[:4] == b"\x7fELF" and elf[4] == 2, "64-bit ELF expected"
        shoff, = struct.unpack_from("<Q", elf, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
        sections = []
        for i in range(shnum):
            name, _, _, addr, off, size = struct.unpack_from("<IIQQQQ", elf, shoff + i * shentsize)
            sections.append((name, addr, off, size))
        strtab_off = sections[shstrndx][2]

        def sname(n: int) -> str:
            return elf[strtab_off + n : elf.index(b"\0", strtab_off + n)].decode()

        text_addr, text_off = next((addr, off) for n, addr, off, _ in sections if sname(n) == ".text")
        self.load_base = text_addr - text_off  # 0x400000 for a static, non-PIE Go binary
        _, _, off, size = next(s for s in sections if sname(s[0]) == ".gopclntab")
        tab = elf[off : off + size]
        magic, = struct.unpack_from("<I", tab, 0)
        assert magic in (0xFFFFFFF1, 0xFFFFFFF0), hex(magic)  # go1.20+ / go1.18-1.19
        nfunc, _nfiles, text_start, funcname_off, _cu, _file, _pc, pcln_off = struct.unpack_from("<8Q", tab, 8)
        text_start = text_start or text_addr
        self.starts: list[int] = []
        self.names: list[str] = []
        for i in range(nfunc):
            entry, funcoff = struct.unpack_from("<II", tab, pcln_off + 8 * i)
            _entry2, name_off = struct.unpack_from("<Ii", tab, pcln_off + funcoff)
            start = funcname_off + name_off
            self.starts.append(text_start + entry)
            self.names.append(tab[start : tab.index(b"\0", start)].decode("utf-8", "replace"))
        order = sorted(range(nfunc), key=self.starts.__getitem__)
        self.starts = [self.starts[i] for i in order]
        self.names = [self.names[i] for i in order]

    def name(self, ip: int) -> str:
        i = bisect.bisect_right(self.starts, ip) - 1
        return self.names[i] if i >= 0 else hex(ip)


CATEGORIES = [
    "md5", "crc32c", "memmove (copies)", "memclr (zeroing)", "page faults on fresh memory (kernel)",
    "GC waiting on busy goroutines (spin, yield, tgkill)", "other GC and allocator", "kernel: socket reads",
    "kernel: other", "other Go code (HTTP, JSON, multipart, ...)",
]


def classify(stack: list[str]) -> str:
    """One CPU sample's category from its call stack (leaf first; kernel frames start "[k]")."""
    leaf = stack[0]
    if any(f in ("[k]asm_exc_page_fault", "[k]exc_page_fault") for f in stack):
        return "page faults on fresh memory (kernel)"
    if "crypto/md5" in leaf:
        return "md5"
    if "hash/crc32" in leaf:
        return "crc32c"
    if any(f.startswith(("runtime.suspendG", "runtime.preemptM", "runtime.markroot")) for f in stack):
        return "GC waiting on busy goroutines (spin, yield, tgkill)"
    if any(f.startswith(("runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.bgsweep", "runtime.bgscavenge",
                         "runtime.mallocgc", "runtime.gcStart", "runtime.gcMarkDone", "runtime.gcMarkTermination",
                         "runtime.stopTheWorld", "runtime.sweepone", "runtime.(*mheap)")) for f in stack):
        return "other GC and allocator"
    if leaf == "runtime.memmove":
        return "memmove (copies)"
    if leaf.startswith("runtime.memclr"):
        return "memclr (zeroing)"
    if leaf.startswith("[k]"):
        if any(k in f for f in stack for k in ("tcp_recvmsg", "sock_recvmsg", "_copy_to_iter", "sock_read")):
            return "kernel: socket reads"
        return "kernel: other"
    return "other Go code (HTTP, JSON, multipart, ...)"


HANDLERS = [  # (frame name contains, label); searched leaf first, the first hit wins
    (".multipartUpload", "multipart uploads"), (".simpleUpload", "media uploads"),
    (".uploadFileContent", "resumable PUTs"), (".resumableUpload", "resumable PUTs"),
    (".composeObject", "compose"), (".deleteObject", "deletes"), (".handleBatchCall", "deletes"),
    ("runtime.gcBgMarkWorker", "GC workers"), ("runtime.bgsweep", "GC workers"), ("runtime.bgscavenge", "GC workers"),
]
HANDLER_LABELS = ["multipart uploads", "media uploads", "resumable PUTs", "compose", "deletes",
                  "md5 (handler unknown)", "GC workers", "other"]


def handler_of(stack: list[str]) -> str:
    """Which request handler (or background GC worker) a CPU sample was spent in. md5's assembly
    uses the frame pointer as a register, so its samples have no callers."""
    if "crypto/md5" in stack[0] and len(stack) <= 2:
        return "md5 (handler unknown)"
    for frame in stack:
        for needle, label in HANDLERS:
            if needle in frame:
                return label
    return "other"


def perf_stacks(perf_data: str, binary: str, symbols: GoSymbols) -> list[list[str]]:
    """The samples' call stacks (leaf first) from ``perf script``, Go frames named via .gopclntab."""
    text = subprocess.run(["perf", "script", "-i", perf_data, "-F", "ip,sym,dso"],
                          capture_output=True, text=True, check=True).stdout
    base = os.path.basename(binary)
    stacks, current = [], []
    for line in text.splitlines() + [""]:
        if not line.strip():
            if current:
                stacks.append(current)
                current = []
            continue
        m = re.match(r"\s*([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$", line)
        if not m:
            continue
        ip, sym, dso = int(m.group(1), 16), m.group(2), m.group(3)
        if "kernel" in dso:
            current.append("[k]" + sym.split("+")[0])
        elif dso.endswith(base):
            # perf script prints callchain addresses relative to the mapping of the binary
            current.append(symbols.name(ip + symbols.load_base))
        else:
            current.append(f"{sym} ({os.path.basename(dso)})")
    return stacks


def perf_profile(args, data: bytes, crc: str, log_dir: str, only: set[str]) -> list[dict]:
    binary = _servers.fake_gcs_binary()
    symbols = GoSymbols(binary)
    out = []
    for key, label, run in strategies(len(data)):
        if only and key not in only:
            continue
        server = start_server(log_dir)
        perf_data = os.path.join(log_dir, f"perf-{key}.data")
        try:
            ctx = Ctx(server, data)
            warm_up(ctx, key, run)
            for _ in range(args.full_warmups):
                one_run(ctx, run, crc, phases=False)
            bucket = fresh_bucket(ctx)
            perf = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-p", str(server.pid), "-o", perf_data],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # perf attaches
            s0, t0 = server.cpu(), time.perf_counter()
            run(ctx, bucket, None)
            wall, server_cpu = time.perf_counter() - t0, server.cpu() - s0
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
            check_stored(ctx, bucket, crc)
        finally:
            server.stop()
        stacks = perf_stacks(perf_data, binary, symbols)
        total = len(stacks) or 1
        groups = collections.Counter(classify(st) for st in stacks)
        funcs = collections.Counter(st[0] for st in stacks)
        handlers = collections.Counter(handler_of(st) for st in stacks)
        out.append({"key": key, "label": label, "wall": wall, "server": server_cpu, "samples": total,
                    "groups": [(g, n / total) for g, n in groups.most_common()],
                    "handlers": [(h, n / total) for h, n in handlers.most_common()],
                    "top": [(f, n / total) for f, n in funcs.most_common(8)]})
        print(f"{label}: {wall:.2f} s, server {server_cpu:.2f} s, {total} samples", flush=True)
        for g, share in out[-1]["groups"]:
            print(f"    {share:6.1%}  {g}  (~{share * server_cpu:.2f} s)", flush=True)
        print("    by handler: " + ", ".join(f"{h} {share:.0%} (~{share * server_cpu:.2f} s)"
                                          for h, share in out[-1]["handlers"]), flush=True)
        for f, share in out[-1]["top"]:
            print(f"        {share:6.1%}  {f}", flush=True)
    return out


# -- the report -----------------------------------------------------------------------------------------
def replace_section(text: str, tag: str, body: str) -> str:
    begin, end = f"<!-- probe:{tag} -->", f"<!-- /probe:{tag} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text and end in text:
        return text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    return text.rstrip() + ("\n\n" if text.strip() else "") + block + "\n"


def timings_md(rows: list[dict], args, size: int) -> str:
    lines = [f"One {size // MiB} MiB object from memory to fake-gcs-server (as the benchmarks start it, 127.0.0.1) on "
             f"{os.cpu_count()} cores; median of {args.reps} by wall time, each into a fresh bucket "
             f"(benchmarks/probe_gcs_upload.py, {time.strftime('%Y-%m-%d %H:%M')}), after "
             f"{args.full_warmups} untimed full-size upload(s) per strategy. MB/s = 1e6 bytes/s; CPU in "
             f"seconds; server cores = server CPU / wall.", "",
             "| strategy | wall s | MB/s | client CPU s | server CPU s | server cores | wall s, all runs |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['wall']:.2f} | {size / r['wall'] / 1e6:.0f} | {r['client']:.2f} | "
                     f"{r['server']:.2f} | {r['server'] / r['wall']:.2f} | "
                     f"{' / '.join(f'{w:.2f}' for w in r['walls'])} |")
    lines += ["", "Phases of the median run (wall s / server CPU s; parallel calls merged into one span):", "",
              "| strategy | phase | wall s | server CPU s | calls |", "|---|---|---|---|---|"]
    for r in rows:
        phases = r.get("phases", {})
        if len(phases) <= 1:  # one request: nothing to split
            continue
        puts = [(wall, cpu) for phase, (wall, cpu, _) in phases.items() if phase.startswith("PUT ")]
        if puts:  # a resumable session: one row, each PUT's figures in order
            lines.append(f"| {r['key']} | each PUT in order | {', '.join(f'{w:.2f}' for w, _ in puts)} | "
                         f"{', '.join(f'{c:.2f}' for _, c in puts)} | {len(puts)} |")
            continue
        for phase, (wall, cpu, n) in phases.items():
            lines.append(f"| {r['key']} | {phase} | {wall:.2f} | {cpu:.2f} | {n or ''} |")
    return "\n".join(lines)


def perf_md(rows: list[dict]) -> str:
    short = ["md5", "crc32c", "memmove", "memclr", "page faults", "GC waits on busy goroutines", "other GC",
             "kernel socket reads", "kernel other", "other Go"]
    lines = ["fake-gcs-server's CPU by what it was doing (`perf record -g -F 999` on the server, one run of "
             "each strategy; share of its samples, in brackets about that many CPU seconds):", "",
             "| strategy | wall s | server CPU s | " + " | ".join(short) + " |",
             "|---|---|---|" + "---|" * len(short)]
    for r in rows:
        g = dict(r["groups"])
        cells = [f"{g.get(c, 0):.0%} ({g.get(c, 0) * r['server']:.2f})" for c in CATEGORIES]
        lines.append(f"| {r['key']} | {r['wall']:.2f} | {r['server']:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "The same samples by the request handler they were spent in (GC workers: Go's background "
              "collector, which the big allocations of the handlers set to work):", "",
              "| strategy | " + " | ".join(HANDLER_LABELS) + " |", "|---|" + "---|" * len(HANDLER_LABELS)]
    for r in rows:
        h = dict(r["handlers"])
        cells = [f"{h.get(c, 0):.0%} ({h.get(c, 0) * r['server']:.2f})" if h.get(c) else "" for c in HANDLER_LABELS]
        lines.append(f"| {r['key']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated keys: a,a32,b,b32,c16,c64,c1,d,e,f")
    parser.add_argument("--full-warmups", type=int, default=1,
                        help="untimed full-size uploads per strategy before the timed ones")
    parser.add_argument("--perf", action="store_true", help="profile the server instead of timing")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    only = {k for k in args.only.split(",") if k}
    data = os.urandom(args.mib * MiB)
    crc = b64crc(data)
    log_dir = tempfile.mkdtemp(prefix="probe-gcs-upload-")
    t0 = time.perf_counter()
    if args.perf:
        rows = perf_profile(args, data, crc, log_dir, only)
        section, body = "perf", perf_md(rows)
    else:
        rows = timings(args, data, crc, log_dir, only)
        section, body = "timings", timings_md(rows, args, len(data))
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)
    if not args.no_write:
        text = open(OUT).read() if os.path.exists(OUT) else ""
        with open(OUT, "w") as f:
            f.write(replace_section(text, section, body))
        print("wrote", OUT)


if __name__ == "__main__":
    main()
