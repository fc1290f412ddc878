"""The ``cloudfiles`` command line tool."""

from __future__ import annotations

import click

from .demo import demo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cloudfiles-dask", prog_name="cloudfiles")
def main() -> None:
    """Fast bulk access to cloud storage and local disk (cloudfiles-dask).

    \b
    Examples:
      cloudfiles demo                  build, compress, move and verify a sample dataset
      cloudfiles demo --files 20000    the same with more files
    """


main.add_command(demo)
