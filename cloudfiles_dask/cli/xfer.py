"""``cloudfiles xfer init | execute | status``: resumable transfers on a sqlite ledger.

Built on :class:`cloudfiles_dask.resumable.ResumableTransfer`.
"""

from __future__ import annotations

import os

import click

from .. import paths
from ..resumable import ResumableTransfer
from ._common import DASK_HELP, CLIError, CommandGroup, dask_client, parse_path
from .transfer import COMPRESSION_CHOICES, reencode_of


@click.group(cls=CommandGroup)
def xfer() -> None:
    """Resumable transfers: plan once, run (and rerun) until done, from one or many machines.

    \b
    Examples:
      cloudfiles xfer init gs://bucket/dataset s3://mirror/dataset --db job.db
      cloudfiles xfer execute job.db --progress          # interrupt and rerun at will
      cloudfiles xfer status job.db
      cloudfiles xfer execute job.db --lease-msec 60000  # several workers on one shared DB
      cloudfiles xfer execute job.db --dask local:4      # the blocks as tasks of a Dask cluster
    """


def _keys_from_txt(txt: str, source: str) -> list[str]:
    """Lines of ``txt``: keys relative to SOURCE, or full paths under it (made relative)."""
    root = source.rstrip("/") + "/"
    keys = []
    with open(txt, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            if paths.get_protocol(line) is not None or os.path.isabs(line):
                full = paths.normalize(line)
                if not full.startswith(root):
                    raise CLIError(f"{txt}: {line} is not under {source}")
                line = full[len(root):]
            keys.append(line)
    return keys


@xfer.command("init")
@click.argument("source")
@click.argument("destination")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="The sqlite file that records the plan and progress.")
@click.option("-c", "--compression", type=click.Choice(COMPRESSION_CHOICES, case_sensitive=False),
              default="same", show_default=True,
              help="Encoding of the copies: 'same' keeps the stored encoding, 'none' decodes, or a codec.")
@click.option("--txt", "txt", type=click.Path(exists=True, dir_okay=False),
              help="Transfer only the paths in this file (one per line, relative to SOURCE or full) "
                   "instead of listing SOURCE.")
def xfer_init(source: str, destination: str, db_path: str, compression: str, txt: str | None) -> None:
    """Plan a transfer of the files under SOURCE (a directory) into DESTINATION.

    \b
    Examples:
      cloudfiles xfer init gs://bucket/dataset s3://mirror/dataset --db job.db
      cloudfiles xfer init ./images gs://bucket/images --db job.db -c gzip
      cloudfiles xfer init gs://bucket/ ./local --db job.db --txt wanted.txt
    """
    src, dest = parse_path(source), parse_path(destination)
    for spec in (src, dest):
        if spec.wildcard:
            raise CLIError(f"{spec.arg}: xfer takes directories, not wildcards")
    keys = _keys_from_txt(txt, src.dirpath) if txt else None
    with ResumableTransfer(db_path) as rt:
        rt.init(src.dirpath, dest.dirpath, paths=keys, reencode=reencode_of(compression))
        status = rt.status()
    click.echo(f"{db_path}: {status.get('total', 0)} files planned from {src.dirpath} to {dest.dirpath}")


@xfer.command("execute")
@click.argument("db_path", metavar="DB", type=click.Path(exists=True, dir_okay=False))
@click.option("--progress", is_flag=True, help="Show a progress bar on stderr.")
@click.option("--lease-msec", default=0, show_default=True, type=click.IntRange(min=0),
              help="Lease each block of files for this long; > 0 lets several workers share the DB.")
@click.option("-b", "--block-size", default=200, show_default=True, type=click.IntRange(min=1),
              help="Files leased and transferred per block.")
@click.option("--keep-db", is_flag=True, help="Keep the DB when everything is done (default: delete it).")
@click.option("--dask", "dask", metavar="ADDRESS", default=None,
              help=DASK_HELP + " The DB stays with this command: blocks are leased here and "
                               "marked done when their task has finished.")
def xfer_execute(db_path: str, progress: bool, lease_msec: int, block_size: int, keep_db: bool,
                 dask: str | None) -> None:
    """Run (or resume) the transfer planned in DB.

    When every file is done the DB is deleted, unless --keep-db; never while files leased by
    other workers are unfinished: the worker that finishes last deletes it.

    \b
    Examples:
      cloudfiles xfer execute job.db --progress
      cloudfiles xfer execute job.db --lease-msec 60000 -b 500   # on each of several machines
      cloudfiles xfer execute job.db --dask tcp://10.0.0.5:8786 --progress
      cloudfiles xfer execute job.db --dask local:4
    """
    with ResumableTransfer(db_path, lease_msec=lease_msec) as rt, dask_client(dask) as client:
        rt.execute(progress=progress, block_size=block_size, client=client)
        status = rt.status()
        click.echo(f"{db_path}: {status.get('finished', 0)} of {status.get('total', 0)} files transferred")
        # Unfinished files include those other workers hold leases on, so only the worker that
        # sees nothing remaining deletes the DB (the original deleted it under the others' feet).
        if status.get("remaining", 1) == 0 and not keep_db:
            rt.cleanup()  # deletes the ledger (refused by the library while files are unfinished)


@xfer.command("status")
@click.argument("db_path", metavar="DB", type=click.Path(exists=True, dir_okay=False))
def xfer_status(db_path: str) -> None:
    """Show the plan and progress recorded in DB.

    \b
    Examples:
      cloudfiles xfer status job.db
    """
    with ResumableTransfer(db_path) as rt:
        status = rt.status()
    for key in ("source", "dest", "reencode", "total", "finished", "remaining", "leased"):
        if key in status:
            click.echo(f"{key}: {status[key]}")
