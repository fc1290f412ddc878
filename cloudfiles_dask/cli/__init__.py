"""The ``cloudfiles`` command line tool.

``main`` is the click group (the console script). The original CloudFiles CLI's Python-callable
helpers (``_rm_many``, ``_rm_singles``, ``_mv_single``, ``_cp_single``) are here too, with its
signatures; see :mod:`cloudfiles_dask.cli.compat`.
"""

from __future__ import annotations

import os

import click

from ._common import CommandGroup, error_mode_problem
from .alias import alias
from .commands import acl, cat, du, head, ls, mkdir, rm, touch
from .compat import _cp_single, _mv_single, _rm_many, _rm_singles
from .demo import demo
from .sweep import sweep
from .transfer import cp, mv
from .verify import verify
from .watch import license_, watch
from .xfer import xfer

#: The original's names: the group, its commands, and its Python-callable helpers.
__all__ = [
    "main", "ls", "cp", "mv", "rm", "du", "cat", "head", "touch", "verify", "license",
    "_rm_many", "_rm_singles", "_mv_single", "_cp_single",
]

license = license_  # the original's name of the command's function


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cloudfiles-dask", prog_name="cloudfiles")
@click.option("-p", "--parallel", default=1, show_default=True, type=int,
              help="Processes for cp, mv and rm (<= 0: one per CPU core).")
@click.pass_context
def main(ctx: click.Context, parallel: int) -> None:
    """Fast bulk access to cloud storage and local disk (cloudfiles-dask).

    Paths are cloudpaths (gs://bucket/key, s3://bucket/key, s3://https://host/bucket/key,
    mem://, https://...) or local paths. Errors go to stderr, with exit status 1; with the
    environment variable CLOUDFILES_ERRORS=stdout they go to stdout as 'cloudfiles: ...' with
    exit status 0, as in the original CloudFiles (for scripts that read them there).

    \b
    Examples:
      cloudfiles ls gs://bucket/dataset/
      cloudfiles cp -r ./images gs://bucket/images
      cloudfiles -p 8 cp --progress -r gs://bucket/big ./big
      cloudfiles cat gs://bucket/info.json
      cloudfiles du -sh gs://bucket/dataset
      cloudfiles verify --md5 ./images gs://bucket/images
      cloudfiles sweep --delete ./images   what killed writers left (temporary files, uploads)
      cloudfiles watch net print       the machine's network rates, every second
      cloudfiles demo                  build, compress, move and verify a sample dataset
    """
    ctx.ensure_object(dict)
    ctx.obj["parallel"] = parallel if parallel > 0 else (os.cpu_count() or 1)
    problem = error_mode_problem()
    if problem:
        click.echo(f"cloudfiles: {problem}", err=True)


for _command in (ls, cp, mv, rm, du, cat, head, touch, mkdir, verify, xfer, sweep, alias, acl,
                 watch, license_, demo):
    main.add_command(_command)
