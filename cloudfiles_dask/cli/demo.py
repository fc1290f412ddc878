"""``cloudfiles demo``: a real bulk workload on embedded defaults (local disk, memory and a local
Dask cluster)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import click

from .. import CloudFiles, clear_memory


def _dataset(count: int, seed: int) -> dict[str, bytes]:
    """``count`` files of mixed kinds and sizes: JSON-ish text, CSV rows and random binary."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    for i in range(count):
        kind = i % 3
        if kind == 0:
            body = (
                "{" + ",".join(f'"k{j}": {rng.randint(0, 10**6)}' for j in range(rng.randint(5, 200))) + "}"
            ).encode()
            files[f"meta/{i // 1000:03d}/{i}.json"] = body
        elif kind == 1:
            rows = rng.randint(10, 400)
            body = "".join(f"{i},{j},{rng.random():.6f}\n" for j in range(rows)).encode()
            files[f"tables/{i // 1000:03d}/{i}.csv"] = body
        else:
            files[f"blobs/{i // 1000:03d}/{i}.bin"] = rng.randbytes(rng.choice((512, 4096, 32768)))
    return files


def _step(label: str, fn: Callable[[], Any], count: int, nbytes: int) -> Any:
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    rate = count / seconds if seconds else float("inf")
    mb = f"{nbytes / seconds / 1e6:8.1f} MB/s" if nbytes and seconds else ""
    click.echo(f"  {label:<54} {count:>7} files  {seconds:7.2f} s  {rate:9.0f} files/s  {mb}")
    return result


def _on_dask(src: Any, dest: Any, workers: int, progress: bool, count: int, nbytes: int) -> bool:
    """On a local Dask cluster: copy ``src`` to ``dest`` re-encoded as zstd
    (``transfer_to(..., client=)``), then read the copy back as a Bag on the workers and reduce
    it to a count and a sum of bytes per kind of file. False without Dask."""
    try:
        import distributed
    except ImportError:
        click.echo("  (Dask steps skipped: pip install 'cloudfiles-dask[dask]')")
        return False
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=2, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        record = _step(f"Dask transfer_to file:// -> file:// (zstd, {workers} workers)",
                       lambda: src.transfer_to(dest, reencode="zstd", progress=progress,
                                               client=client),
                       count, nbytes)
        if record.files != count:
            raise click.ClickException(f"the Dask transfer wrote {record.files} files, not {count}")
        split = ", ".join(f"{totals.files}" for _, totals in sorted(record.by_worker().items()))
        lost = f"; {len(record.lost_workers)} worker(s) lost" if record.lost_workers else ""
        click.echo(f"  {'':<54} files per worker: {split}{lost}")
        bag = dest.to_bag()  # listed here once, with sizes; read on the workers
        per_kind = bag.foldby(_kind, _count, (0, 0), _add, (0, 0))
        kinds = dict(_step(f"Bag: read on the workers, reduce ({bag.npartitions} partitions)",
                           per_kind.compute, count, nbytes))
    click.echo(f"  {'':<54} " + ", ".join(f"{kind}: {files} files, {size / 1e6:.1f} MB"
                                         for kind, (files, size) in sorted(kinds.items())))
    if sum(files for files, _ in kinds.values()) != count \
            or sum(size for _, size in kinds.values()) != nbytes:
        raise click.ClickException(f"the Bag reduced to {kinds}, not {count} files of {nbytes} bytes")
    return True


def _kind(result: dict) -> str:
    """A read's top directory: meta, tables or blobs."""
    return result["path"].split("/", 1)[0]


def _count(total: tuple[int, int], result: dict) -> tuple[int, int]:
    return total[0] + 1, total[1] + len(result["content"])


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


@click.command()
@click.option("--files", "count", default=6000, show_default=True, help="Number of files to generate.")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Directory for the on-disk copies (default: a temporary directory, removed after).")
@click.option("--compression", "codec", default="gzip", show_default=True,
              type=click.Choice(["gzip", "br", "zstd", "xz", "bz2"]), help="Codec for the first write.")
@click.option("--threads", default=20, show_default=True, help="Threads per CloudFiles.")
@click.option("--progress/--no-progress", default=False, help="Show progress bars.")
@click.option("--seed", default=0, show_default=True, help="Random seed of the dataset.")
@click.option("--dask-workers", default=2, show_default=True, type=click.IntRange(min=0),
              help="Worker processes of the local Dask cluster (0 skips the Dask step).")
def demo(count: int, workdir: str | None, codec: str, threads: int, progress: bool, seed: int,
         dask_workers: int) -> None:
    """Build a sample dataset, write it compressed, move it between backends and verify it.

    \b
    Steps: generate COUNT files (JSON, CSV, binary) -> write them to file:// with --compression
    -> list -> transfer file:// -> mem:// (encoding kept, no recompression) -> transfer
    mem:// -> file:// re-encoded as brotli -> transfer that on a local Dask cluster to
    file:// re-encoded as zstd -> read that copy as a Dask Bag on the workers and reduce it to
    files and bytes per kind -> read both copies back -> verify every byte (sha256) -> delete.
    Prints what it did and how fast.

    \b
    Examples:
      cloudfiles demo
      cloudfiles demo --files 20000 --compression zstd --progress
      cloudfiles demo --workdir /tmp/cfdemo
      cloudfiles demo --dask-workers 4
    """
    own_dir = workdir is None
    root = tempfile.mkdtemp(prefix="cloudfiles-demo-") if own_dir else os.path.abspath(workdir)
    try:
        files = _dataset(count, seed)
        total_bytes = sum(map(len, files.values()))
        digests = {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}
        click.echo(f"cloudfiles demo: {count} files, {total_bytes / 1e6:.1f} MB uncompressed, in {root}")

        first = CloudFiles(f"file://{root}/{codec}", num_threads=threads, progress=progress)
        memory = CloudFiles(f"mem://cloudfiles-demo-{os.getpid()}/copy", num_threads=threads, progress=progress)
        second = CloudFiles(f"file://{root}/br", num_threads=threads, progress=progress)
        third = CloudFiles(f"file://{root}/dask-zstd", num_threads=threads, progress=progress)

        _step(f"write to file:// ({codec})", lambda: first.puts(files.items(), compress=codec), count, total_bytes)
        stored = first.subtree_size()
        click.echo(f"  {'':<54} stored {stored['num_bytes'] / 1e6:.1f} MB "
                   f"({stored['num_bytes'] / total_bytes:.0%} of the original)")
        listed = _step("list file:// (recursive)", lambda: list(first.list()), count, 0)
        if sorted(listed) != sorted(files):
            raise click.ClickException("the listing does not match what was written")
        _step("transfer file:// -> mem:// (encoding kept)", lambda: first.transfer_to(memory), count,
              stored["num_bytes"])
        kept = memory.get(sorted(files)[:1], raw=True)[0]["compress"]
        _step("transfer mem:// -> file:// (re-encode br)", lambda: memory.transfer_to(second, reencode="br"),
              count, total_bytes)
        copies = [(second, "br")]
        if dask_workers and _on_dask(second, third, dask_workers, progress, count, total_bytes):
            copies.append((third, "zstd"))
        bad = []
        for copy, label in copies:
            results = _step(f"read back from file:// (decode {label})", lambda c=copy: c.get(list(files)),
                            count, total_bytes)
            bad += [r["path"] for r in results if r["content"] is None
                    or hashlib.sha256(r["content"]).hexdigest() != digests[r["path"]]]
        encodings = [sorted({r["compress"] for r in c.get(list(files)[:50], raw=True)}) for c, _ in copies]
        _step("delete from file:// and mem://", lambda: (first.delete(list(files)), memory.delete(list(files))),
              count, 0)
        clear_memory()
        route = " -> ".join(f"file:// {', '.join(e)}" for e in encodings)
        click.echo(f"  encodings: file:// {codec} -> mem:// {kept} -> {route}")
        if bad:
            raise click.ClickException(f"{len(bad)} files differ after the round trip, e.g. {bad[:3]}")
        via = " -> Dask -> file://" if len(copies) > 1 else ""
        click.echo(f"verified: all {count} files identical (sha256) after file:// -> mem:// -> file://{via}")
    finally:
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)
