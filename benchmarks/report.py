"""Turn the runs of one benchmark session into medians, a Markdown report and PNG plots.

    python benchmarks/report.py results/latest.json   # re-render latest.md and the plots
"""

from __future__ import annotations

import math
import os
import statistics
import sys

BEGIN = "<!-- BEGIN GENERATED RESULTS (benchmarks/run.py writes this section) -->"
END = "<!-- END GENERATED RESULTS -->"

OURS = ("ours", "ours-codec", "ours-bag")
#: (column title, the clients it stands for: the best of them is shown). The Dask Bag row's
#: peers (s3fs-bag, boto3-bag) are the s3fs and boto3 columns of that row.
PEER_COLUMNS = [
    ("cloud-files", ["cloud-files", "cloud-files-codec"]),
    ("obstore best", ["obstore-async", "obstore-sync"]),
    ("boto3 / google-cloud-storage (20 threads; Bag: per partition)", ["boto3-threads", "gcs-threads", "boto3-bag"]),
    ("s3fs / gcsfs", ["s3fs", "gcsfs", "s3fs-bag"]),
    ("plain Python loop", ["plain"]),
    ("libdeflate", ["libdeflate"]),
    ("zlib", ["zlib"]),
    ("rclone copy", ["rclone"]),
]
#: The Dask workloads whose rows report a per-task overhead (issue 19).
OVERHEAD_WORKLOADS = ("dask_bag_read", "dask_transfer_mix", "dask_transfer")
#: Issue 19's aims.
BAG_AIM = 5.0  # ours >= this many times the s3fs Bag's files/s
OVERHEAD_AIM = 5.0  # per-task overhead below this % of task time


#: The large-object workloads of each backend (``s3_put_large`` ...).
LARGE_OPS = ("put_large", "get_large", "put_file", "get_file")


def med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# -- summaries ----------------------------------------------------------------------------------------
def summarize(data: dict) -> dict:
    """{workload name: {client: summary}} with medians over the successful repetitions."""
    wls = {w["name"]: w for w in data["workloads"]}
    warn = data.get("busy_cores_warn", 0.3)
    out: dict[str, dict[str, dict]] = {name: {} for name in wls}
    by_key: dict[tuple[str, str], list[dict]] = {}
    for run in data["runs"]:
        by_key.setdefault((run["workload"], run["client"]), []).append(run)
    for (name, client), runs in by_key.items():
        wl = wls[name]
        ok = [r for r in runs if r.get("ok")]
        summary: dict = {"reps": len(runs), "ok_reps": len(ok)}
        if not ok:
            unsupported = next((r["unsupported"] for r in runs if r.get("unsupported")), None)
            summary["status"] = "unsupported" if unsupported else "failed"
            summary["why"] = unsupported or next((r.get("error") for r in runs if r.get("error")), "?")
            out[name][client] = summary
            continue
        wall = med([r["wall_s"] for r in ok])
        cpu = med([r["cpu_s"] for r in ok])
        server = med([sum(r.get("server_cpu_s", {}).values()) for r in ok])
        summary.update(
            status="ok" if len(ok) == len(runs) else "partly failed",
            wall_s=wall, cpu_s=cpu, server_cpu_s=server,
            user_s=med([r["user_s"] for r in ok]), sys_s=med([r["sys_s"] for r in ok]),
            peak_rss_mb=med([r.get("peak_rss_mb") for r in ok]),
            life_peak_rss_mb=med([r.get("life_peak_rss_mb") for r in ok]),
            timed_peak_rss_mb=med([r.get("timed_peak_rss_mb") for r in ok]),
            other_cores=med([r.get("other_cpu_s", 0) / r["wall_s"] for r in ok if r["wall_s"]]),
            busy=[r["rep"] for r in ok
                  if max(r.get("busy_cores_before", 0), r.get("other_cpu_s", 0) / max(r["wall_s"], 1e-9)) > warn],
            throughput=rate(wl, wall), walls=[r["wall_s"] for r in ok],
        )
        if wl["unit"] != "MB" or wl["op"] in ("get",):
            summary["cpu_us_per_item"] = cpu / wl["n"] * 1e6 if wl["n"] else None
        extras = [r.get("extra") for r in ok if r.get("extra")]
        if extras:
            summary["extra"] = {k: med([e.get(k) for e in extras]) for k in extras[0]}
        if summary["status"] != "ok":
            summary["why"] = next((r.get("error") for r in runs if not r.get("ok")), "?")
        out[name][client] = summary
    return out


def rate(wl: dict, wall: float | None) -> float | None:
    if not wall:
        return None
    if wl["unit"] == "MB":
        return wl["bytes"] / wall / 1e6
    return wl["n"] / wall


def ours_of(row: dict) -> dict | None:
    for name in OURS:
        if row.get(name, {}).get("throughput"):
            return row[name]
    return None


def best_of(row: dict, clients: list[str]) -> tuple[str, dict] | None:
    found = [(c, row[c]) for c in clients if row.get(c, {}).get("throughput")]
    return max(found, key=lambda x: x[1]["throughput"]) if found else None


def fmt_rate(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(ours: float | None, peer: float | None) -> str:
    if not ours or not peer:
        return ""
    return f"{ours / peer:.2f}x"


# -- markdown -----------------------------------------------------------------------------------------
def render(data: dict, plots_prefix: str = "latest_", image_dir: str = "") -> str:
    s = summarize(data)
    wls = data["workloads"]
    m = data["machine"]
    lines: list[str] = []
    add = lines.append
    mode = data["mode"]
    add(f"Run {data['started']} ({mode} mode, median of {data['reps']} repetition(s), "
        f"{data['duration_s'] / 60:.1f} min) on {m.get('cpu_count')} cores "
        f"({m.get('cpu_model', '?')}), {m.get('mem_total_gb', '?')} GB RAM, Python {m.get('python')}, "
        f"load average at start {m.get('loadavg_at_start', [0])[0]:.2f}.")
    if mode != "full":
        add("")
        add("**Quick mode: counts are scaled down and each figure is a single run; use a full run "
            "for numbers to quote.**")
    versions = m.get("versions", {})
    if versions:
        add("")
        add("Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".")
    add("")
    add("Ratios are **ours ÷ peer** throughput: above 1.00x we are faster, below we are slower.")
    add("")
    add("### Summary (throughput; ours vs each peer)")
    add("")
    used = [(title, clients) for title, clients in PEER_COLUMNS
            if any(c in s[w["name"]] for w in wls for c in clients)]
    add("| workload | ours | " + " | ".join(title for title, _ in used) + " |")
    add("|---" * (2 + len(used)) + "|")
    for w in wls:
        row = s[w["name"]]
        if not row:
            continue
        mine = ours_of(row)
        cells = [f"{w['title']} ({w['unit_label']})", fmt_rate(mine["throughput"]) if mine else _why(row, OURS)]
        for _, clients in used:
            best = best_of(row, clients)
            if best is None:
                cells.append(_why(row, clients))
                continue
            name, peer = best
            ratio = fmt_ratio(mine["throughput"] if mine else None, peer["throughput"])
            tag = f" ({name.split('-')[1]})" if name.startswith("obstore") else ""
            cells.append(f"{fmt_rate(peer['throughput'])}{tag}" + (f" · **{ratio}**" if ratio else ""))
        add("| " + " | ".join(cells) + " |")
    scaling = dask_scaling(data, s)
    if scaling:
        add("")
        add("Dask distributed transfer (the same job on a LocalCluster of 1, 2 and 4 worker "
            "processes): " + scaling["text"] + ".")
    mixed = dask_scaling(data, s, "dask_transfer_mix")
    if mixed:
        add("")
        add("Dask transfer of mixed sizes, listed (1, 2 and 4 worker processes): " + mixed["text"] + ".")
    imports = data.get("imports") or {}
    if imports:
        ours_ms = (imports.get("cloudfiles_dask") or {}).get("import_ms")
        theirs = (imports.get("cloudfiles") or {}).get("import_ms")
        parts = [f"`import {k}` {v['import_ms']:.0f} ms" for k, v in imports.items() if v.get("import_ms")]
        add("")
        add("Import time (median of fresh interpreters, the import statement alone): " + ", ".join(parts)
            + (f"; ours is {ours_ms / theirs:.2f} of `import cloudfiles`." if ours_ms and theirs else "."))

    add("")
    add("### Targets of issue 5")
    add("")
    add("| target | measured | met? |")
    add("|---|---|---|")
    for line in targets(data, s):
        add(line)

    issue19 = targets_19(data, s)
    if issue19:
        add("")
        add("### Targets of issue 19 (Dask)")
        add("")
        add("Per-task overhead = the part of our tasks' time (the scheduler's task stream: each "
            "task's compute span on its worker) that the engine's work inside them (`ops.get_many` "
            "for a Bag partition, `ops.transfer` for a transfer batch, timed on the worker) does "
            "not account for, summed over the tasks of the run.")
        add("")
        add("| target | measured | met? |")
        add("|---|---|---|")
        for line in issue19:
            add(line)

    add("")
    add("### Details per workload")
    add("")
    add("wall = median seconds of the timed call; client CPU = user+sys of the worker process (all "
        "threads) per item, or in seconds; cores = CPU seconds ÷ wall seconds (1.00 = one core busy "
        "for the whole run; the machine has "
        f"{m.get('cpu_count')}); server = the server process's CPU over the same window; peak RSS = the "
        "worker's resident-memory high-water mark during the timed call (VmHWM, reset when timing "
        "starts, so it includes the imports and the payload the worker holds; in brackets, over "
        "the worker's whole life where recorded); other procs' cores = "
        "CPU used by every other process on the machine during the timed call (it competes for the "
        "same cores). A client near 1.00 "
        "cores is CPU-bound on the GIL; client + server cores near the core count means the machine "
        "itself is the limit.")
    for group in dict.fromkeys(w["group"] for w in wls):
        add("")
        add(f"#### {group}")
        for w in [w for w in wls if w["group"] == group]:
            row = s[w["name"]]
            if not row:
                continue
            add("")
            add(f"**{w['title']}**")
            add("")
            per_item = w["unit"] != "MB"
            add(f"| client | wall s | {w['unit_label']} | client CPU {'µs/item' if per_item else 's'} "
                "| client cores | server cores | other procs' cores | peak RSS MB | ours ÷ this |")
            add("|---|---|---|---|---|---|---|---|---|")
            mine = ours_of(row)
            for client in w["clients"]:
                r = row.get(client)
                if r is None:
                    continue
                if "throughput" not in r:
                    add(f"| {client} | {r['status']}: {_short(r.get('why'))} | | | | | | | |")
                    continue
                cpu = (f"{r['cpu_us_per_item']:,.0f}" if per_item and r.get("cpu_us_per_item") is not None
                       else f"{r['cpu_s']:.2f}")
                server = r["server_cpu_s"] / r["wall_s"] if r["wall_s"] else 0
                rss = f"{r['timed_peak_rss_mb']:.0f}" if r.get("timed_peak_rss_mb") else "?"
                if r.get("life_peak_rss_mb"):
                    rss += f" ({r['life_peak_rss_mb']:.0f})"
                flag = " ⚠" if r.get("busy") else ""
                ratio = "—" if client in OURS else fmt_ratio(mine["throughput"] if mine else None, r["throughput"])
                note = "" if r["status"] == "ok" else f" ({r['status']})"
                add(f"| {client}{note}{flag} | {r['wall_s']:.3f} | {fmt_rate(r['throughput'])} | {cpu} | "
                    f"{r['cpu_s'] / r['wall_s']:.2f} | {server:.2f} | {r.get('other_cores') or 0:.2f} | {rss} | {ratio} |")
                if r.get("extra") or w["op"] == "bag_read":
                    label = "legs" if "file_to_s3_s" in (r.get("extra") or {}) else "on Dask"
                    add(f"| ↳ {client} {label} | {extra_text(w, r)} | | | | | | | |")
    flagged = [(w, c) for w in s for c, r in s[w].items() if r.get("busy")]
    add("")
    if flagged:
        add(f"⚠ {len(flagged)} figure(s) include repetitions during which other processes used more "
            f"than {data.get('busy_cores_warn', 0.3)} cores (before or during the run): "
            + ", ".join(f"{w}/{c}" for w, c in flagged) + ". Treat those with care.")
    else:
        add(f"No repetition saw other processes using more than {data.get('busy_cores_warn', 0.3)} cores.")
    add("")
    add("### Plots")
    add("")
    for name, title in (("small", "small objects: throughput"), ("cpu", "small objects: CPU per request"),
                        ("large", "large objects"), ("other", "listing, local disk, gzip, transfers, import"),
                        ("dask", "Dask: Bag reads, transfers of mixed sizes, per-task overhead")):
        if name == "dask" and not any(s.get(n) for n in ("dask_bag_read", "dask_transfer_mix")):
            continue
        add(f"![{title}]({image_dir}{plots_prefix}{name}.png)")
    return "\n".join(lines) + "\n"


#: How the figures a run adds (``extra``) read in the details (None: not shown).
EXTRA_FORMATS = {
    "file_to_s3_s": "file_to_s3_s {:.2f}", "s3_to_gcs_s": "s3_to_gcs_s {:.2f}",
    "graph_s": "graph built in {:.3f} s (listing included)", "compute_s": "computed in {:.3f} s",
    "files": None, "tasks": "{:.0f} tasks", "task_overhead_pct": "per-task overhead {:.1f} %",
    "task_overhead_ms": "({:.1f} ms per task)",
    "busiest_idle_pct": "busiest Dask thread idle {:.0f} % of the wall",
}


def extra_text(w: dict, r: dict) -> str:
    parts = []
    if w["op"] == "bag_read" and r.get("wall_s"):
        parts.append(f"{w['bytes'] / r['wall_s'] / 1e6:.1f} MB/s")
    for key, value in (r.get("extra") or {}).items():
        fmt = EXTRA_FORMATS.get(key, key + " {:.2f}")
        if fmt is not None and value is not None:
            parts.append(fmt.format(value))
    return ", ".join(parts) if parts else "—"


def _short(text: str | None, n: int = 110) -> str:
    text = (text or "").replace("|", "/").replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def _why(row: dict, clients) -> str:
    for c in clients:
        if c in row:
            r = row[c]
            return "n/a (unsupported)" if r.get("status") == "unsupported" else f"failed: {_short(r.get('why'), 60)}"
    return "—"


def targets(data: dict, s: dict) -> list[str]:
    out: list[str] = []

    def status(ok: bool | None) -> str:
        return "—" if ok is None else ("yes" if ok else "**no**")

    for name in ("s3_get", "s3_put", "gcs_get", "gcs_put"):
        row = s.get(name) or {}
        mine = row.get("ours")
        if not mine or "throughput" not in mine:
            continue
        cf = row.get("cloud-files", {}).get("throughput")
        ob = best_of(row, ["obstore-async", "obstore-sync"])
        label = name.replace("_", " ").upper().replace("GCS", "GCS").replace(" GET", " GET").replace(" PUT", " PUT")
        if cf:
            r = mine["throughput"] / cf
            out.append(f"| {label}: ≥ 4x cloud-files | {r:.2f}x | {status(r >= 4)} |")
        if ob:
            r = mine["throughput"] / ob[1]["throughput"]
            out.append(f"| {label}: ≥ 0.8x obstore best ({ob[0]}) | {r:.2f}x | {status(r >= 0.8)} |")
        else:
            why = _why(row, ["obstore-async", "obstore-sync"])
            out.append(f"| {label}: ≥ 0.8x obstore best | obstore {why} | — |")
        cpu = mine.get("cpu_us_per_item")
        out.append(f"| {label}: ≤ 250 µs client CPU per request | {cpu:,.0f} µs | {status(cpu <= 250)} |")
    for name in (f"{b}_{op}" for b in ("s3", "gcs") for op in LARGE_OPS):
        row = s.get(name) or {}
        mine = row.get("ours")
        peers = best_of(row, [c for c in row if c not in OURS])
        if mine and "throughput" in mine and peers:
            r = mine["throughput"] / peers[1]["throughput"]
            out.append(f"| {name}: ≥ best peer's MB/s ({peers[0]} {fmt_rate(peers[1]['throughput'])}) | "
                       f"{fmt_rate(mine['throughput'])} MB/s = {r:.2f}x | {status(r >= 1)} |")
    row = s.get("s3_put_file") or {}
    mine = row.get("ours")
    if mine and mine.get("timed_peak_rss_mb"):
        out.append(f"| large upload from a file: memory bounded (~2 parts in flight per thread) | "
                   f"peak RSS {mine['timed_peak_rss_mb']:.0f} MB while sending "
                   f"{data_size(data, 's3_put_file')} | see text |")
    for name, limit, what in (("file_read", 1.5, "reads within 1.5x of plain open().read()"),
                              ("file_list", 1.5, "listing within 1.5x of os.scandir"),
                              ("file_write", 2.0, "writes (atomic) within 2x of a plain write loop")):
        row = s.get(name) or {}
        mine, plain = row.get("ours"), row.get("plain")
        if mine and plain and "throughput" in mine and "throughput" in plain:
            r = plain["throughput"] / mine["throughput"]
            out.append(f"| file:// {what} | {r:.2f}x the plain loop's time | {status(r <= limit)} |")
    row = s.get("gzip_decode") or {}
    mine, lib = row.get("ours-codec"), row.get("libdeflate")
    if mine and lib and "throughput" in mine and "throughput" in lib:
        r = mine["throughput"] / lib["throughput"]
        out.append(f"| gzip through libdeflate | ours {fmt_rate(mine['throughput'])} MB/s = {r:.2f}x "
                   f"libdeflate | {status(r >= 0.8)} |")
    imports = data.get("imports") or {}
    a = (imports.get("cloudfiles_dask") or {}).get("import_ms")
    b = (imports.get("cloudfiles") or {}).get("import_ms")
    if a and b:
        out.append(f"| `import cloudfiles_dask` ≤ 1/3 of `import cloudfiles` | {a:.0f} ms vs {b:.0f} ms "
                   f"= {a / b:.2f} | {status(a / b <= 1 / 3)} |")
    scaling = dask_scaling(data, s)
    if scaling:
        out.append(f"| Dask transfers scale with workers (until the server or the machine is the "
                   f"limit) | {scaling['text']} | {scaling['verdict']} |")
    return out


def targets_19(data: dict, s: dict) -> list[str]:
    """Issue 19's aims: the Bag read >= 5x the s3fs Bag's files/s, per-task overhead < 5 %;
    and, with no aim, the mixed transfer against rclone copy."""
    out: list[str] = []

    def status(ok: bool | None) -> str:
        return "—" if ok is None else ("yes" if ok else "**no**")

    row = s.get("dask_bag_read") or {}
    mine, peer = row.get("ours-bag") or {}, row.get("s3fs-bag") or {}
    if mine.get("throughput") and peer.get("throughput"):
        r = mine["throughput"] / peer["throughput"]
        out.append(f"| Bag of small S3 objects: ≥ {BAG_AIM:.0f}x the files/s of the s3fs Bag "
                   f"(`read_bytes`) | {fmt_rate(mine['throughput'])} vs {fmt_rate(peer['throughput'])} "
                   f"files/s = {r:.2f}x | {status(r >= BAG_AIM)} |")
    elif mine.get("throughput"):
        out.append(f"| Bag of small S3 objects: ≥ {BAG_AIM:.0f}x the s3fs Bag | s3fs Bag "
                   f"{_why(row, ['s3fs-bag'])} | — |")
    for name in OVERHEAD_WORKLOADS:
        row = s.get(name) or {}
        found = [(c, r["extra"]) for c, r in row.items()
                 if (r.get("extra") or {}).get("task_overhead_pct") is not None]
        if not found:
            continue
        title = next((w["title"] for w in data["workloads"] if w["name"] == name), name)
        worst = max(e["task_overhead_pct"] for _, e in found)
        text = ", ".join(f"{c} {e['task_overhead_pct']:.1f} % ({e['task_overhead_ms']:.1f} ms of "
                         f"{e.get('tasks', 0):.0f} tasks)" for c, e in sorted(found))
        out.append(f"| per-task overhead < {OVERHEAD_AIM:.0f} % of task time: {title} | {text} | "
                   f"{status(worst < OVERHEAD_AIM)} |")
    row = s.get("dask_transfer_mix") or {}
    rclone = (row.get("rclone") or {}).get("throughput")
    if rclone:
        ours = {c: r["throughput"] for c, r in row.items() if c != "rclone" and r.get("throughput")}
        text = ", ".join(f"{'one process' if c == 'ours' else c} {ours[c] / rclone:.2f}x"
                         for c in sorted(ours, key=lambda c: (c != "ours", c)))
        out.append(f"| mixed transfer against `rclone copy` ({fmt_rate(rclone)} MB/s; no aim) | "
                   f"{text} | — |")
    return out


def dask_scaling(data: dict, s: dict, name: str = "dask_transfer") -> dict | None:
    """The Dask rows in words: MB/s per worker count, ratios to one worker, and how busy the
    machine was (client incl. workers + servers + other processes, in cores)."""
    row = s.get(name) or {}
    runs = {int(c.split("-")[1]): r for c, r in row.items() if c.startswith("dask-") and r.get("throughput")}
    if 1 not in runs:
        return None
    cores = data["machine"].get("cpu_count") or 1

    def busy(r: dict) -> float:
        return (r["cpu_s"] + r["server_cpu_s"]) / r["wall_s"] + (r.get("other_cores") or 0)

    one = runs[1]["throughput"]
    parts = [f"{k} worker{'s' if k > 1 else ''} {fmt_rate(r['throughput'])} MB/s"
             + (f" ({r['throughput'] / one:.2f}x)" if k > 1 else "")
             + f", machine {busy(r):.2f} of {cores} cores busy" for k, r in sorted(runs.items())]
    inproc = row.get("ours", {}).get("throughput")
    text = "; ".join(parts) + (f"; in one process without Dask {fmt_rate(inproc)} MB/s" if inproc else "")
    rclone = row.get("rclone", {}).get("throughput")
    if rclone:
        text += f"; rclone copy {fmt_rate(rclone)} MB/s"
    two = runs.get(2)
    if two and two["throughput"] >= 1.1 * one:
        verdict = "yes"
    elif busy(runs[1]) >= 0.9 * cores:
        verdict = "saturated at 1 worker"
    else:
        verdict = "**no**"
    return {"text": text, "verdict": verdict}


def data_size(data: dict, name: str) -> str:
    for w in data["workloads"]:
        if w["name"] == name:
            return f"{w['bytes'] / 1024 / 1024:.0f} MiB"
    return "?"


def update_docs(path: str, md: str) -> None:
    """Replace the generated section of docs/performance.md (appended if the markers are missing)."""
    md = md.replace("](latest_", "](../benchmarks/results/latest_").replace("](quick_", "](../benchmarks/results/quick_")
    block = f"{BEGIN}\n{md}{END}\n"
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail.lstrip("\n")
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "# Performance\n\n") + block
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


# -- plots --------------------------------------------------------------------------------------------
COLORS = {"ours": "#d62728", "ours-codec": "#d62728", "cloud-files": "#1f77b4", "cloud-files-codec": "#1f77b4",
          "obstore-async": "#2ca02c", "obstore-sync": "#98df8a", "boto3-threads": "#9467bd",
          "gcs-threads": "#9467bd", "s3fs": "#ff7f0e", "gcsfs": "#ff7f0e", "plain": "#7f7f7f",
          "libdeflate": "#17becf", "zlib": "#bcbd22", "ours-bag": "#d62728", "s3fs-bag": "#ff7f0e",
          "boto3-bag": "#9467bd", "dask-1": "#e377c2", "dask-2": "#e377c2", "dask-4": "#e377c2",
          "rclone": "#8c564b"}


def plots(data: dict, out_dir: str, prefix: str = "latest_") -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots", file=sys.stderr)
        return []
    s = summarize(data)
    wls = {w["name"]: w for w in data["workloads"]}
    written = []

    def bars(ax, name: str, value=lambda r: r["throughput"], xlabel=None, title=None, label=fmt_rate):
        w = wls.get(name)
        row = s.get(name) or {}
        if w is None or not row:
            ax.set_axis_off()
            return
        clients = [c for c in w["clients"] if c in row]
        vals = [(value(row[c]) or 0) if "throughput" in row[c] else 0 for c in clients]
        ys = range(len(clients))
        ax.barh(list(ys), vals, color=[COLORS.get(c, "#333") for c in clients])
        ax.set_yticks(list(ys), [c if "throughput" in row[c] else f"{c} (n/a)" for c in clients], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title or w["title"], fontsize=9, wrap=True)
        ax.set_xlabel(xlabel or w["unit_label"], fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        top = max(vals) if vals and max(vals) > 0 else 1
        for y, v in zip(ys, vals, strict=False):
            if v:
                ax.text(v + top * 0.01, y, label(v), va="center", fontsize=7)
        ax.set_xlim(0, top * 1.25)

    small = [f"{b}_{op}" for b in ("s3", "gcs") for op in ("get", "put", "exists", "delete")]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, name in zip(axes.flat, small, strict=False):
        bars(ax, name)
    fig.suptitle(f"Small objects, 4 KiB: throughput ({data['mode']} run {data['started']})")
    fig.tight_layout()
    written.append(_save(fig, out_dir, f"{prefix}small.png", plt))

    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, name in zip(axes.flat, small, strict=False):
        w, row = wls.get(name), s.get(name) or {}
        if w is None or not row:
            ax.set_axis_off()
            continue
        clients = [c for c in w["clients"] if "throughput" in row.get(c, {})]
        client_us = [row[c]["cpu_s"] / w["n"] * 1e6 for c in clients]
        server_us = [row[c]["server_cpu_s"] / w["n"] * 1e6 for c in clients]
        ys = list(range(len(clients)))
        ax.barh(ys, client_us, color=[COLORS.get(c, "#333") for c in clients], label="client CPU")
        ax.barh(ys, server_us, left=client_us, color="#cccccc", label="server CPU")
        ax.set_yticks(ys, clients, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(w["title"], fontsize=9)
        ax.set_xlabel("CPU µs per request (client + server)", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        for y, a, b in zip(ys, client_us, server_us, strict=False):
            ax.text(a + b, y, f" {a:,.0f} + {b:,.0f}", va="center", fontsize=7)
        ax.set_xlim(0, max((a + b for a, b in zip(client_us, server_us, strict=False)), default=1) * 1.35)
    if axes.flat[0].get_legend_handles_labels()[0]:
        axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Small objects: CPU per request, client (colour) + server (grey)")
    fig.tight_layout()
    written.append(_save(fig, out_dir, f"{prefix}cpu.png", plt))

    fig, axes = plt.subplots(2, 4, figsize=(16, 7.6))
    for ax, name in zip(axes.flat, [f"{b}_{op}" for b in ("s3", "gcs") for op in LARGE_OPS], strict=False):
        bars(ax, name)
    fig.suptitle("One large object: S3 on rclone serve s3 (top), GCS on fake-gcs-server (bottom)")
    fig.tight_layout()
    written.append(_save(fig, out_dir, f"{prefix}large.png", plt))

    fig, axes = plt.subplots(2, 5, figsize=(22, 7.6))
    for ax, name in zip(axes.flat, ["s3_list", "gcs_list", "file_list", "file_read", "file_write",
                                    "s3_get_gzip", "gzip_decode", "transfer", "dask_transfer"],
                        strict=False):
        bars(ax, name)
    ax = axes.flat[9]
    imports = {k: v["import_ms"] for k, v in (data.get("imports") or {}).items() if v.get("import_ms")}
    if imports:
        names = list(imports)
        ax.barh(range(len(names)), [imports[n] for n in names],
                color=["#d62728" if n == "cloudfiles_dask" else "#1f77b4" for n in names])
        ax.set_yticks(range(len(names)), [f"import {n}" for n in names], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("ms (median, fresh interpreter)", fontsize=8)
        ax.set_title("import time", fontsize=9)
    else:
        ax.set_axis_off()
    fig.suptitle("Listing, local disk, gzip, transfers (in one process and on Dask), import")
    fig.tight_layout()
    written.append(_save(fig, out_dir, f"{prefix}other.png", plt))

    if any(s.get(n) for n in ("dask_bag_read", "dask_transfer_mix")):
        fig, axes = plt.subplots(1, 4, figsize=(22, 4.2))
        bars(axes[0], "dask_bag_read", title="Bag of small S3 objects: files/s")
        bars(axes[1], "dask_bag_read", value=lambda r: (r.get("extra") or {}).get("graph_s"),
             xlabel="seconds until the graph exists (listing included)",
             title="Bag: time to build the graph", label=lambda v: f"{v:.3f}")
        bars(axes[2], "dask_transfer_mix", title="S3 -> file://, mixed sizes: MB/s")
        ax = axes[3]
        entries = [(f"{n.replace('dask_', '')} {c}", r["extra"]["task_overhead_pct"])
                   for n in OVERHEAD_WORKLOADS for c, r in (s.get(n) or {}).items()
                   if (r.get("extra") or {}).get("task_overhead_pct") is not None]
        if entries:
            ys = list(range(len(entries)))
            ax.barh(ys, [v for _, v in entries], color="#d62728")
            ax.set_yticks(ys, [t for t, _ in entries], fontsize=8)
            ax.invert_yaxis()
            ax.axvline(OVERHEAD_AIM, color="#333", linestyle="--", linewidth=1)
            ax.set_xlabel("% of task time outside the engine's work (aim < 5 %)", fontsize=8)
            ax.set_title("Per-task overhead of our tasks", fontsize=9)
            for y, (_, v) in zip(ys, entries, strict=False):
                ax.text(v, y, f" {v:.1f} %", va="center", fontsize=7)
            ax.set_xlim(0, max(OVERHEAD_AIM, max(v for _, v in entries)) * 1.3)
        else:
            ax.set_axis_off()
        fig.suptitle("Dask: a Bag of many small objects (LocalCluster 2 x 2), transfers of mixed sizes")
        fig.tight_layout()
        written.append(_save(fig, out_dir, f"{prefix}dask.png", plt))
    return written


def _save(fig, out_dir: str, name: str, plt) -> str:
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


if __name__ == "__main__":
    import json

    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results", "latest.json")
    with open(path) as f:
        loaded = json.load(f)
    stem = os.path.basename(path).rsplit(".", 1)[0]
    out = os.path.dirname(os.path.abspath(path))
    with open(os.path.join(out, f"{stem}.md"), "w") as f:
        f.write(render(loaded, plots_prefix=f"{stem}_"))
    print(plots(loaded, out, prefix=f"{stem}_"))
