"""The ``cloudfiles`` command line tool."""

from __future__ import annotations

import os

import click

from ._common import CommandGroup
from .alias import alias
from .commands import cat, du, head, ls, mkdir, rm, touch
from .demo import demo
from .transfer import cp, mv
from .verify import verify
from .xfer import xfer


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cloudfiles-dask", prog_name="cloudfiles")
@click.option("-p", "--parallel", default=1, show_default=True, type=int,
              help="Processes for cp, mv and rm (<= 0: one per CPU core).")
@click.pass_context
def main(ctx: click.Context, parallel: int) -> None:
    """Fast bulk access to cloud storage and local disk (cloudfiles-dask).

    Paths are cloudpaths (gs://bucket/key, s3://bucket/key, s3://https://host/bucket/key,
    mem://, https://...) or local paths. Errors go to stderr, with exit status 1.

    \b
    Examples:
      cloudfiles ls gs://bucket/dataset/
      cloudfiles cp -r ./images gs://bucket/images
      cloudfiles -p 8 cp --progress -r gs://bucket/big ./big
      cloudfiles cat gs://bucket/info.json
      cloudfiles du -sh gs://bucket/dataset
      cloudfiles verify --md5 ./images gs://bucket/images
      cloudfiles demo                  build, compress, move and verify a sample dataset
    """
    ctx.ensure_object(dict)
    ctx.obj["parallel"] = parallel if parallel > 0 else (os.cpu_count() or 1)


for _command in (ls, cp, mv, rm, du, cat, head, touch, mkdir, verify, xfer, alias, demo):
    main.add_command(_command)
