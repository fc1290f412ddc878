"""``cloudfiles alias add | ls | rm``: persistent names for cloudpath prefixes (an S3-compatible
endpoint, a bucket, a directory on any protocol)."""

from __future__ import annotations

import click

from .. import _dirs, paths
from ._common import CLIError, CommandGroup


@click.group(cls=CommandGroup)
def alias() -> None:
    """Manage aliases: NAME://rest stands for TARGET + rest (an S3-compatible endpoint such as
    s3://https://host/, or any cloudpath prefix: gs://bucket/dir/, mem://b/, file:///data/).

    Aliases are kept in $CLOUD_FILES_DIR/aliases.json (default ~/.cloudfiles/aliases.json).
    The official aliases (matrix, tigerdata, nokura) cannot be changed.

    \b
    Examples:
      cloudfiles alias add minio s3://https://minio.example.com:9000/
      cloudfiles ls minio://bucket/
      cloudfiles alias ls
      cloudfiles alias rm minio
    """


def _host(name: str) -> str:
    """The target of alias ``name`` (a cloudpath prefix)."""
    return paths.ALIASES[name]


def _load() -> None:
    try:
        paths.update_aliases_from_file()
    except ValueError as e:
        raise CLIError(str(e)) from None


@alias.command("add")
@click.argument("name")
@click.argument("host")
def alias_add(name: str, host: str) -> None:
    """Add alias NAME for the S3 endpoint HOST (s3://https://HOST[:PORT]/).

    \b
    Examples:
      cloudfiles alias add minio s3://https://minio.example.com:9000/
      cloudfiles alias add lab s3://http://10.0.0.5:9000
    """
    _load()
    if name in paths.OFFICIAL_ALIASES:
        raise CLIError(f"{name} is an official alias and cannot be replaced")
    if name in paths.ALIASES:
        raise CLIError(f"alias {name} already exists ({_host(name)}); "
                       f"remove it first with 'cloudfiles alias rm {name}'")
    try:
        paths.add_persistent_alias(name, host)
    except ValueError as e:
        raise CLIError(str(e)) from None
    click.echo(f"{name}:// -> {_host(name)} (saved in {_dirs.alias_file()})")


@alias.command("ls")
def alias_ls() -> None:
    """List the aliases: 'NAME:// -> HOST', official ones marked.

    \b
    Examples:
      cloudfiles alias ls
    """
    _load()
    if not paths.ALIASES:
        click.echo("No aliases.")
        return
    for name in sorted(paths.ALIASES):
        mark = " (official)" if name in paths.OFFICIAL_ALIASES else ""
        click.echo(f"{name}:// -> {_host(name)}{mark}")


@alias.command("rm")
@click.argument("name")
@click.option("-f", "--force", is_flag=True,
              help="Do nothing, without an error, when there is no alias NAME (the original "
                   "CloudFiles' behaviour).")
def alias_rm(name: str, force: bool) -> None:
    """Remove the alias NAME (official aliases cannot be removed). An unknown NAME is an error
    (exit status 1), unless -f.

    \b
    Examples:
      cloudfiles alias rm minio
      cloudfiles alias rm -f maybe-there
    """
    _load()
    if name in paths.OFFICIAL_ALIASES:
        raise CLIError(f"{name} is an official alias and cannot be removed")
    if name not in paths.ALIASES:
        if force:
            return
        raise CLIError(f"there is no alias {name} (see 'cloudfiles alias ls')")
    try:
        paths.remove_persistent_alias(name)
    except ValueError as e:
        raise CLIError(str(e)) from None
    click.echo(f"removed {name}:// from {_dirs.alias_file()}")
