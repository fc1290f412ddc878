"""``cloudfiles cp`` and ``cloudfiles mv``: gsutil-like naming over CloudFiles.transfer_to/moves.

Naming rules (one table for both commands):

=======================  ===================================  ====================================
source                   destination exists as a directory    destination does not exist
=======================  ===================================  ====================================
file                     DEST/file                            DEST (the file takes that name)
file, DEST ends in /     DEST/file                            DEST/file
dir or dir/ (cp -r, mv)  DEST/dir/...  (nested)               DEST/...  (the copy is named DEST)
dir/*                    DEST/<one level>  (never nested)     same
dir/**                   DEST/<everything>  (never nested)    same
dir/*.jpg, dir/**.jpg    only names ending in .jpg            same
several sources          DEST is a directory: each source as if DEST existed
- (stdin)                newline-separated paths; each group is rooted at the deepest
                         directory its paths share, which keeps their relative layout
=======================  ===================================  ====================================

``dir/*`` copies the files of one level; with ``-r`` its sub-directories come along too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import click

from .. import paths
from .._engine import distribute, ops
from .._engine.jobs import TransferOptions
from .._iteration import batched
from ..dask import cluster
from ..monitoring import TransmissionMonitor
from . import charts
from ._common import (
    DASK_HELP,
    CLIError,
    Resolved,
    cloudfiles,
    dask_client,
    dir_exists,
    group_stdin_paths,
    join,
    library_progress,
    make_bar,
    parallel_of,
    parse_path,
    prune_empty_dirs,
    read_stdin_paths,
    report_lost_workers,
    require_writable,
    resolve_sources,
    warn,
    write_bytes,
)

COMPRESSION_CHOICES = ["same", "none", "gzip", "br", "zstd", "xz", "bz2"]


def reencode_of(choice: str) -> Any:
    """``same`` keeps the stored encoding (None), ``none`` stores decoded (False), else a codec."""
    choice = choice.lower()
    return {"same": None, "none": False}.get(choice, choice)


@dataclass
class Job:
    src: str
    dest: str
    pairs: list[tuple[str, str]]
    resolved: Resolved | None = None
    whole_dir_target: str | None = None  # set when a whole directory goes to a new name
    extra: dict = field(default_factory=dict)


def plan(sources: tuple[str, ...], destination: str, *, recursive: bool, verb: str,
         no_sign_request: bool = False) -> list[Job]:
    """Where every source file goes, per the naming rules; CLIError before anything is written."""
    dest = parse_path(destination)
    if dest.wildcard:
        raise CLIError(f"{destination}: the destination cannot contain wildcards")
    require_writable(dest, "it cannot be a destination")
    stdin = sources == ("-",)
    if "-" in sources and not stdin:
        raise CLIError("'-' (read paths from stdin) must be the only source")
    many = stdin or len(sources) > 1
    dest_is_dir = dir_exists(dest)
    dest_is_file = dest.local and dest.local_path is not None and os.path.isfile(dest.local_path)
    if many and dest_is_file:
        raise CLIError(f"{destination} is not a directory (several sources need a directory destination)")
    if stdin:
        groups = group_stdin_paths(read_stdin_paths())
        if verb == "moved":
            for root, _ in groups:
                require_writable(parse_path(root + "/"), "files cannot be moved from it (use cp)")
        return [Job(root, dest.dirpath, [(k, k) for k in keys]) for root, keys in groups]
    specs = [parse_path(s) for s in sources]
    if verb == "moved":
        for spec in specs:
            require_writable(spec, "files cannot be moved from it (use cp)")
    resolved = resolve_sources(specs, recursive=recursive, verb=verb, no_sign_request=no_sign_request)
    jobs = []
    for r in resolved:
        for skipped in r.skipped_dirs:
            warn(f"skipping directory {join(r.root, skipped)} (use -r to include it)")
        identity = [(k, k) for k in r.keys]
        if r.kind in ("dir", "wild") and dest_is_file:
            raise CLIError(f"cannot put the files of {r.spec.arg} into {destination}: it is a file")
        if r.kind == "wild":
            jobs.append(Job(r.root, dest.dirpath, identity, r))
        elif r.kind == "dir":
            nest = dest_is_dir or many
            target = join(dest.dirpath, r.spec.dirname) if nest else dest.dirpath
            jobs.append(Job(r.root, target, identity, r))
        elif dest_is_dir or many or not dest.name:
            jobs.append(Job(r.root, dest.dirpath, identity, r))
        else:
            jobs.append(Job(r.root, dest.base, [(r.spec.name, dest.name)], r))
    return jobs


def refuse_moves_onto_themselves(jobs: list[Job]) -> None:
    """A file moved onto itself would be copied onto itself and then deleted: refuse (before
    anything moves) as mv(1) does."""
    same = [join(job.src, s) for job in jobs for s, d in job.pairs if join(job.src, s) == join(job.dest, d)]
    if not same:
        return
    more = f" (and {len(same) - 1} more)" if len(same) > 1 else ""
    raise CLIError(f"{same[0]}{more}: source and destination are the same file; nothing was moved")


def execute(jobs: list[Job], *, move: bool, parallel: int, progress: bool, options: TransferOptions,
            part_bytes: int, no_sign_request: bool,
            recordings: list[TransmissionMonitor] | None = None, client: Any = None) -> int:
    """Run the planned jobs; with ``parallel > 1`` a job's pairs are spread over that many
    processes (the engine's distribute seam), unless one side lives in this process (mem://);
    with a Dask ``client`` (copies only) they run as tasks of its cluster. The record of each
    copy is appended to ``recordings`` if given."""
    total = sum(len(job.pairs) for job in jobs)
    done = 0
    with make_bar(progress, total, "Moving" if move else "Copying") as bar, \
            distribute.ProcessExecutor(parallel) as executor:
        for job in jobs:
            if not job.pairs:
                continue
            if move and _rename_whole_dir(job):
                bar.advance(len(job.pairs))
                done += len(job.pairs)
                continue
            src = cloudfiles(job.src, no_sign_request=no_sign_request)
            dst = cloudfiles(job.dest, composite_upload_threshold=part_bytes)
            if client is not None and not move:
                recording = cluster.transfer_on(client, src, dst, job.pairs, options,
                                                library_progress(bar))
                report_lost_workers(recording)
                done += recording.files
                if recordings is not None:
                    recordings.append(recording)
            elif parallel > 1 and len(job.pairs) > 1 and src.config.crosses_processes \
                    and dst.config.crosses_processes:
                done += _spread(executor, job.pairs, src.config, dst.config, move, options, bar,
                                recordings)
            elif move:
                done += src.moves(dst, job.pairs, block_size=options.block_size,
                                  progress=library_progress(bar))
            else:
                recording = src.transfer_to(dst, paths=job.pairs, block_size=options.block_size,
                                            reencode=options.reencode, resumable=options.resumable,
                                            progress=library_progress(bar))
                done += recording.files
                if recordings is not None:
                    recordings.append(recording)
            if move:
                _prune_sources(job)
    return done


def _spread(executor: distribute.ProcessExecutor, pairs: list[tuple[str, str]], src: Any, dst: Any,
            move: bool, options: TransferOptions, bar: Any,
            recordings: list[TransmissionMonitor] | None) -> int:
    """One job's pairs in batches over the command's processes; how many files were written.
    The records of the batches of a copy are appended to ``recordings`` if given."""
    batches = batched(pairs, distribute.batch_size_for(len(pairs), executor.slots))
    if move:
        moved = distribute.run_batches(executor, distribute.move_batch, batches, src, dst,
                                       options.block_size,
                                       on_done=lambda batch, count: bar.advance(count))
        return sum(moved)
    records = distribute.run_batches(
        executor, distribute.transfer_batch, batches, src, dst, options,
        on_done=lambda batch, record: bar.advance(record.files, record.total_bytes()))
    if options.resumable and dst.backend_class.local_files:
        # as transfer_to(resumable=True): what killed writers left where this one wrote
        executor.on_each_host(distribute.remove_orphans_batch,
                              sorted({ops.key_dir(dest_key) for _, dest_key in pairs}), dst)
    if recordings is not None:
        recordings.extend(records)
    return sum(record.files for record in records)


def _local_path(cloudpath: str) -> str | None:
    extracted = paths.extract(cloudpath)
    return extracted.path if extracted.protocol == "file" else None


def _rename_whole_dir(job: Job) -> bool:
    """A local directory moving to a new local name: one rename instead of one per file."""
    if job.resolved is None or job.resolved.kind != "dir":
        return False
    src, dest = _local_path(job.src), _local_path(job.dest)
    if src is None or dest is None or os.path.lexists(dest):
        return False
    if os.path.commonpath([src, dest]) == src:  # into itself
        return False
    try:
        os.makedirs(os.path.dirname(dest) or "/", exist_ok=True)
        os.rename(src, dest)
    except OSError:
        return False  # other filesystem, permissions...: fall back to per-file moves
    return True


def _prune_sources(job: Job) -> None:
    """After a move, remove the local directories it emptied."""
    r = job.resolved
    root = _local_path(job.src)
    if r is None or root is None:
        return
    if r.kind == "dir":
        prune_empty_dirs(root, include_top=True)
    elif r.kind == "wild":
        tops = {key.split("/", 1)[0] for key in r.keys if "/" in key}
        for top in sorted(tops):
            prune_empty_dirs(os.path.join(root, top), include_top=True)


def _to_stdout(sources: tuple[str, ...], recursive: bool, no_sign_request: bool,
               recordings: list[TransmissionMonitor] | None = None) -> None:
    if sources == ("-",):
        groups = group_stdin_paths(read_stdin_paths())
    else:
        if "-" in sources:
            raise CLIError("'-' (read paths from stdin) must be the only source")
        resolved = resolve_sources([parse_path(s) for s in sources], recursive=recursive, verb="copied",
                                   no_sign_request=no_sign_request)
        groups = [(r.root, r.keys) for r in resolved]
    for root, keys in groups:
        cf = cloudfiles(root, no_sign_request=no_sign_request)
        for start in range(0, len(keys), 16):
            block = keys[start : start + 16]
            if recordings is None:
                results = cf.get(block)
            else:
                results, recording = cf.get(block, return_recording=True)
                recordings.append(recording)
            for result in results:
                if result["content"] is None:
                    raise CLIError(f"{join(root, result['path'])} does not exist")
                write_bytes(result["content"])


def copy(sources: tuple[str, ...] | list[str], destination: str, *, recursive: bool = False,
         compression: str = "same", progress: bool = False, block_size: int = 128,
         part_bytes: int = int(1e8), no_sign_request: bool = False, resumable: bool = False,
         flight_time: bool = False, io_rate: bool = False, machine_io_rate: bool = False,
         machine_io_rate_buffer_sec: float = 600, parallel: int = 1, dask: str | None = None) -> int:
    """``cloudfiles cp``: how many files were written (0 for a copy to stdout). ``dask``: a
    scheduler address, or ``local[:N]`` (see ``--dask``)."""
    sources = tuple(sources)
    to_stdout = destination == "-"
    if dask is not None and parallel > 1:
        raise CLIError("-p and --dask cannot be combined: --dask spreads the copy over the cluster")
    if dask is not None and to_stdout:
        raise CLIError("--dask cannot copy to stdout ('-'): the workers cannot write there")
    if flight_time or io_rate:
        charts.require(("matplotlib", "numpy"), "--flight-time and --io-rate")
    recordings: list[TransmissionMonitor] | None = [] if (flight_time or io_rate) else None
    with charts.MachineIO(machine_io_rate, machine_io_rate_buffer_sec) as machine:
        if to_stdout:
            _to_stdout(sources, recursive, no_sign_request, recordings)
            done = 0
        else:
            jobs = plan(sources, destination, recursive=recursive, verb="copied",
                        no_sign_request=no_sign_request)
            options = TransferOptions(block_size=block_size, reencode=reencode_of(compression),
                                      resumable=resumable)
            with dask_client(dask) as client:
                done = execute(jobs, move=False, parallel=parallel, progress=progress,
                               options=options, part_bytes=part_bytes,
                               no_sign_request=no_sign_request, recordings=recordings,
                               client=client)
    stamp = charts.timestamp()
    if recordings is not None:
        charts.save_transfer_charts(TransmissionMonitor.merge(recordings), io_rate=io_rate,
                                    flight_time=flight_time, stamp=stamp, to_stderr=to_stdout)
    if machine.sampler is not None:
        charts.save_machine_chart(machine.sampler, stamp, to_stderr=to_stdout)
    return done


def move(sources: tuple[str, ...] | list[str], destination: str, *, progress: bool = False,
         block_size: int = 128, part_bytes: int = int(1e8), no_sign_request: bool = False,
         parallel: int = 1) -> int:
    """``cloudfiles mv``: how many files were moved."""
    jobs = plan(tuple(sources), destination, recursive=True, verb="moved",
                no_sign_request=no_sign_request)
    refuse_moves_onto_themselves(jobs)
    return execute(jobs, move=True, parallel=parallel, progress=progress,
                   options=TransferOptions(block_size=block_size), part_bytes=part_bytes,
                   no_sign_request=no_sign_request)


_COMMON_EPILOG = """
\b
Naming (gsutil-like):
  cp FILE DEST          DEST is a directory: DEST/FILE; otherwise the copy is named DEST
  cp -r DIR DEST        DEST exists: DEST/DIR/...; otherwise DEST/... ("DIR/" is the same)
  cp DIR/* DEST         the files of one level, never nested (-r: with sub-directories)
  cp DIR/** DEST        everything below DIR, never nested
  cp DIR/*.jpg DEST     only names ending in .jpg (DIR/**.jpg: at any depth)

\b
Charts (written in the current directory; one UTC timestamp per command):
  --io-rate             ./cloudfiles-cp-est-io-<ts>.png        rate from each file's size and time
  --flight-time         ./cloudfiles-cp-flight-time-<ts>.png   one bar per file, start to end
  --machine-io-rate     ./cloudfiles-cp-measured-io-<ts>.png   the machine's network counters, 4 Hz
  <ts> is like 2026-12-07_03-46-11.6Z. They need 'pip install cloudfiles-dask[monitoring]'.
  With -p N, --io-rate and --flight-time make the copy run in this process (on its threads);
  with --dask they chart the files the workers moved (their clocks, merged).

\b
On a Dask cluster (--dask):
  --dask tcp://host:8786   batches of files run as tasks of that cluster's workers
  --dask local:4           a local cluster of 4 worker processes, for this command only
  A worker that dies is replaced by Dask and its batches run again elsewhere (noted on stderr).
"""


@click.command(epilog=_COMMON_EPILOG)
@click.argument("sources", nargs=-1, required=True)
@click.argument("destination")
@click.option("-r", "--recursive", is_flag=True, help="Copy directories and their contents.")
@click.option("-c", "--compression", type=click.Choice(COMPRESSION_CHOICES, case_sensitive=False),
              default="same", show_default=True,
              help="Encoding of the copies: 'same' keeps each file's stored encoding (no recompression), "
                   "'none' stores them decoded, or a codec.")
@click.option("--progress", is_flag=True, help="Show a progress bar (files, bytes, rate) on stderr.")
@click.option("-b", "--block-size", default=128, show_default=True, type=click.IntRange(min=1),
              help="Files per read/write block (bounds memory use).")
@click.option("--part-bytes", default=int(1e8), show_default=True, type=click.IntRange(min=1),
              help="Objects larger than this are uploaded in parts (S3 multipart, GCS composite).")
@click.option("--no-sign-request", is_flag=True, help="Read the sources anonymously (public buckets).")
@click.option("--resumable", is_flag=True,
              help="Downloads to local disk collect in a hidden partial file next to each "
                   "destination (.NAME.cfdask-partial), kept if interrupted; rerunning the same "
                   "command asks only for the missing bytes, then verifies the whole file.")
@click.option("--flight-time", is_flag=True,
              help="Save a Gantt chart of the files' transfers (./cloudfiles-cp-flight-time-<ts>.png).")
@click.option("--io-rate", is_flag=True,
              help="Save a chart of the rate estimated from file sizes and transfer times "
                   "(./cloudfiles-cp-est-io-<ts>.png).")
@click.option("--machine-io-rate", is_flag=True,
              help="Sample the machine's network counters at 4 Hz during the copy and save a chart "
                   "(./cloudfiles-cp-measured-io-<ts>.png).")
@click.option("--machine-io-rate-buffer-sec", default=600, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds of samples --machine-io-rate keeps (the oldest are dropped; 1 s = 96 bytes).")
@click.option("--dask", "dask", metavar="ADDRESS", default=None, help=DASK_HELP)
@click.pass_context
def cp(ctx: click.Context, sources: tuple[str, ...], destination: str, recursive: bool, compression: str,
       progress: bool, block_size: int, part_bytes: int, no_sign_request: bool, resumable: bool,
       flight_time: bool, io_rate: bool, machine_io_rate: bool, machine_io_rate_buffer_sec: float,
       dask: str | None) -> None:
    """Copy files from SOURCE(s) to DESTINATION (any mix of local paths and cloudpaths).

    '-' as the only SOURCE reads newline-separated paths from stdin. '-' as DESTINATION writes
    the (decoded) contents to stdout, byte for byte. The global -p N spreads the copy over N
    processes.

    \b
    Examples:
      cloudfiles cp report.csv gs://bucket/reports/
      cloudfiles cp -r ./images s3://bucket/dataset          # -> dataset/... or dataset/images/...
      cloudfiles cp 'gs://bucket/images/*.jpg' ./jpgs/
      cloudfiles cp -c gzip -r ./json gs://bucket/json      # store gzip-compressed
      cloudfiles cp -c none -r gs://bucket/json ./plain      # store decoded
      cloudfiles -p 8 cp --progress -r gs://bucket/big /data/big
      cloudfiles cp --dask tcp://10.0.0.5:8786 --progress -r gs://bucket/big s3://mirror/big
      cloudfiles cp --dask local:4 -c zstd -r ./data gs://bucket/data
      cloudfiles cp --resumable https://host/huge.tar .      # rerun after an interruption
      cloudfiles cp --flight-time --io-rate -r gs://bucket/data ./data   # + two PNG charts
      cloudfiles ls gs://bucket/logs | grep 2024 | cloudfiles cp - ./logs2024
      cloudfiles cp gs://bucket/image.png - > image.png
    """
    copy(sources, destination, recursive=recursive, compression=compression, progress=progress,
         block_size=block_size, part_bytes=part_bytes, no_sign_request=no_sign_request,
         resumable=resumable, flight_time=flight_time, io_rate=io_rate,
         machine_io_rate=machine_io_rate, machine_io_rate_buffer_sec=machine_io_rate_buffer_sec,
         parallel=parallel_of(ctx), dask=dask)


_MV_EPILOG = """
\b
Naming (as cp):
  mv FILE DEST          DEST is a directory: DEST/FILE; otherwise the file is renamed DEST
  mv DIR DEST           DEST exists: DEST/DIR/...; otherwise DIR becomes DEST ("DIR/" is the same)
  mv DIR/* DEST         the entries of one level (files and directories), never nested
  mv DIR/** DEST        everything below DIR, never nested
  mv DIR/*.jpg DEST     only names ending in .jpg
"""


@click.command(epilog=_MV_EPILOG)
@click.argument("sources", nargs=-1, required=True)
@click.argument("destination")
@click.option("--progress", is_flag=True, help="Show a progress bar (files, bytes, rate) on stderr.")
@click.option("-b", "--block-size", default=128, show_default=True, type=click.IntRange(min=1),
              help="Files per copy-then-delete block.")
@click.option("--part-bytes", default=int(1e8), show_default=True, type=click.IntRange(min=1),
              help="Objects larger than this are uploaded in parts (S3 multipart, GCS composite).")
@click.option("--no-sign-request", is_flag=True, help="Read the sources anonymously.")
@click.pass_context
def mv(ctx: click.Context, sources: tuple[str, ...], destination: str, progress: bool, block_size: int,
       part_bytes: int, no_sign_request: bool) -> None:
    """Move files from SOURCE(s) to DESTINATION, with the naming rules of cp.

    Directories move with their contents (no -r needed). On one local disk a move is a rename;
    elsewhere each block of files is copied, then its sources are deleted (not atomic: an
    interruption can leave a file in both places, never in neither). Stored encodings are kept.
    '-' as the only SOURCE reads paths from stdin.

    \b
    Examples:
      cloudfiles mv old.txt new.txt
      cloudfiles mv ./results gs://bucket/archive/       # -> archive/results/... if archive exists
      cloudfiles mv 'gs://bucket/tmp/**' gs://bucket/final/
      cloudfiles -p 4 mv --progress ./shards s3://bucket/shards
    """
    move(sources, destination, progress=progress, block_size=block_size, part_bytes=part_bytes,
         no_sign_request=no_sign_request, parallel=parallel_of(ctx))
