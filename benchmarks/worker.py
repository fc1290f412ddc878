"""One measured run of one client on one workload, in a process of its own.

    python worker.py SPEC_JSON RESULT_PATH

Protocol with the driver (run.py): the worker imports its client, prepares the data and makes one
warm-up request (untimed), prints ``@@READY`` and waits for a line on stdin; the driver then
samples the servers' CPU and sends ``GO``. The worker times exactly one call (wall clock with
``perf_counter``; user+system CPU of the whole process, all threads, with ``getrusage``), writes
the result JSON to RESULT_PATH and prints ``@@DONE``; the driver samples the servers again.
An adapter with ``after_timing()`` (the Dask rows: the task stream of the timed call) is asked
after ``@@DONE``, outside that window, and what it says is added to the result's ``extra``
(the driver reads the result once the worker has exited).

Peak RSS: ``timed_peak_rss_mb`` is the high-water mark (VmHWM) of the timed call, reset through
``/proc/self/clear_refs`` when timing starts (so it includes what the process already held);
``life_peak_rss_mb`` is the VmHWM over the worker's whole life. ``peak_rss_mb`` is
``ru_maxrss``, kept for reference only: Linux carries the *parent's* high-water mark into a
child across fork+exec, so it shows the driver's size whenever that was larger.
"""

from __future__ import annotations

import json
import os
import random
import resource
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path[0] != HERE:
    sys.path.insert(0, HERE)


def keys_for(spec: dict) -> list[str]:
    return [f"{spec['prefix']}/{i:06d}" for i in range(spec["n"])]


def random_bytes(size: int, seed: int) -> bytes:
    """Deterministic random bytes (in 16 MiB steps: ``randbytes`` overflows past 256 MiB)."""
    rng, step = random.Random(seed), 16 * 1024 * 1024
    return b"".join(rng.randbytes(min(step, size - i)) for i in range(0, size, step))


def random_payloads(n: int, size: int, seed: int) -> list[bytes]:
    blob = random_bytes(n * size, seed)
    return [blob[i * size : (i + 1) * size] for i in range(n)]


def mix_layout(mix: dict) -> list[int]:
    """The sizes of a mixed-size set of objects (``{size: count}``), key by key: shuffled
    with a fixed seed, so that small and large objects are spread over the listing (and over
    the batches cut from it) instead of sorted by size."""
    sizes = [int(size) for size, count in mix.items() for _ in range(int(count))]
    random.Random(3).shuffle(sizes)
    return sizes


_WORDS = [
    b"volume", b"segment", b"mesh", b"skeleton", b"chunk", b"layer", b"0.25", b"1024",
    b"{\"id\": ", b"\"scale\"", b"[4, 4, 40]", b"true", b"null", b"neuron", b"synapse", b"\n",
]


def text_payload(size: int, seed: int) -> bytes:
    """Compressible, JSON-ish bytes (gzip ratio about 3-4x)."""
    rng = random.Random(seed)
    parts, total = [], 0
    while total < size:
        word = rng.choice(_WORDS) + str(rng.randrange(100000)).encode() + b","
        parts.append(word)
        total += len(word)
    return b"".join(parts)[:size]


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def prepare(spec: dict):
    """(adapter, zero-argument callable to time, what a correct answer looks like)."""
    from clients import make

    op = spec["op"]
    adapter = make(spec["client"], spec)
    n, size, seed = spec.get("n", 0), spec.get("size", 0), spec.get("seed", 0)
    if op == "seed":
        return adapter, lambda: seed_objects(adapter, spec), None
    if op in ("get", "exists", "delete"):
        keys = keys_for(spec)
        fn = getattr(adapter, op)
        expect = spec.get("expect", n * size if op == "get" else n)
        return adapter, lambda: fn(keys), (expect if op != "delete" else n)
    if op == "put":
        keys = keys_for(spec)
        datas = random_payloads(n, size, seed)
        return adapter, lambda: adapter.put(keys, datas), n * size
    if op == "list":
        return adapter, lambda: adapter.list(spec["prefix"]), spec["expect"]
    if op == "put_large":
        data = random_bytes(size, seed)
        return adapter, lambda: adapter.put_large(spec["key"], data), size
    if op == "get_large":
        return adapter, lambda: adapter.get_large(spec["key"]), size
    if op == "put_file":
        return adapter, lambda: adapter.put_file(spec["key"], spec["local_path"]), size
    if op == "get_file":
        return adapter, lambda: adapter.get_file(spec["key"], spec["local_path"]), size
    if op == "transfer":
        return adapter, lambda: adapter.transfer(spec["src_root"], spec["mid_root"], spec["dest_root"]), None
    if op == "dask_transfer":
        keys = keys_for(spec)
        return adapter, lambda: adapter.dask_transfer(keys, spec["local_path"]), n * size
    if op == "transfer_mix":
        return adapter, lambda: adapter.transfer_mix(spec["local_path"]), spec["expect"]
    if op == "bag_read":
        return adapter, lambda: adapter.bag_read(spec["prefix"]), n * size
    if op == "codec":
        from cloudfiles_dask import compression  # the encoder only; decoding is what is timed

        raw = text_payload(size, seed)
        data = compression.compress(raw, "gzip", compress_level=6)
        rounds = spec.get("rounds", 1)
        return adapter, lambda: adapter.codec(data, rounds), size * rounds
    raise ValueError(f"unknown op {op!r}")


def seed_objects(adapter, spec: dict) -> int:
    """Write ``n`` objects (random or compressible) under ``prefix``: with our CloudFiles, or for
    plain objects with whichever client the driver chose (the fastest writer it has)."""
    n, size, seed = spec["n"], spec["size"], spec.get("seed", 0)
    keys = keys_for(spec)
    compress = spec.get("compress")
    sizes = mix_layout(spec["mix"]) if spec.get("mix") else [size] * n
    batch = 5000 if not spec.get("mix") else max(1, (64 << 20) // max(sizes))
    for start in range(0, n, batch):
        chunk = keys[start : start + batch]
        if spec.get("kind") == "text":
            datas = [text_payload(size, seed + start + i) for i in range(len(chunk))]
        elif spec.get("mix"):
            datas = [random_bytes(s, seed + start + i) for i, s in enumerate(sizes[start : start + batch])]
        else:
            datas = random_payloads(len(chunk), size, seed + start)
        if hasattr(adapter, "cf"):
            adapter.cf.puts(list(zip(chunk, datas, strict=False)), compress=compress)
        else:  # a faster peer writing plain objects
            adapter.put(chunk, datas)
    return n


def main() -> int:
    spec = json.loads(sys.argv[1])
    out_path = sys.argv[2]
    result: dict = {"client": spec["client"], "op": spec["op"], "ok": False}
    try:
        adapter, fn, expect = prepare(spec)
        adapter.warm()
    except Exception as e:
        from clients.base import Unsupported

        result["unsupported" if isinstance(e, Unsupported) else "error"] = f"{type(e).__name__}: {e}"
        if not isinstance(e, Unsupported):
            result["traceback"] = traceback.format_exc()
        _write(out_path, result)
        print("@@DONE", flush=True)
        return 0
    print("@@READY", flush=True)
    sys.stdin.readline()
    setup_peak = _hwm_mb()  # imports, client, payload (VmHWM is per process, unlike ru_maxrss)
    hwm_reset = _reset_hwm()
    helper_cpu = getattr(adapter, "helper_cpu", None)  # (user, sys) of processes it started
    h0 = helper_cpu() if helper_cpu else (0.0, 0.0)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    calls = 0
    try:
        answer = fn()
        calls = 1
        # a call of a few ms is at the mercy of the scheduler: an idempotent one is repeated
        # until ``repeat_for`` seconds have passed and reported per call
        while time.perf_counter() - t0 < spec.get("repeat_for", 0):
            fn()
            calls += 1
        error = None
    except Exception as e:
        from clients.base import Unsupported

        answer = None
        if isinstance(e, Unsupported):
            result["unsupported"] = str(e)
        error = f"{type(e).__name__}: {e}"
        result["traceback"] = traceback.format_exc()
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    h1 = helper_cpu() if helper_cpu else (0.0, 0.0)
    helper_user, helper_sys = h1[0] - h0[0], h1[1] - h0[1]
    per = max(calls, 1)
    result.update(
        calls=calls,
        wall_s=(t1 - t0) / per,
        user_s=(r1.ru_utime - r0.ru_utime + helper_user) / per,
        sys_s=(r1.ru_stime - r0.ru_stime + helper_sys) / per,
        peak_rss_mb=r1.ru_maxrss / 1024,
        timed_peak_rss_mb=_hwm_mb() if hwm_reset else None,
    )
    if helper_cpu:
        result["helper_cpu_s"] = (helper_user + helper_sys) / per
    if setup_peak is not None and result["timed_peak_rss_mb"] is not None:
        result["life_peak_rss_mb"] = max(setup_peak, result["timed_peak_rss_mb"])
    result["cpu_s"] = result["user_s"] + result["sys_s"]
    if isinstance(answer, dict):
        result["extra"] = answer
    if error is None and expect is not None and answer != expect:
        error = f"wrong answer: got {answer!r}, expected {expect!r}"
    if error is None:
        result["ok"] = True
    elif "unsupported" not in result:
        result["error"] = error
    _write(out_path, result)
    print("@@DONE", flush=True)
    # after the driver's measuring window (it reads the result once this process has exited):
    # what the adapter can tell about the timed call, such as a Dask task stream
    after = getattr(adapter, "after_timing", None)
    if after is not None and result["ok"]:
        try:
            result.setdefault("extra", {}).update(after() or {})
        except Exception as e:
            result["after_timing_error"] = f"{type(e).__name__}: {e}"
        _write(out_path, result)
    try:
        adapter.close()
    except Exception:
        pass
    return 0


def _write(path: str, result: dict) -> None:
    with open(path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    sys.exit(main())
