"""``cloudfiles sweep``: find, and with ``--delete`` remove, what interrupted writes left behind.

Built on :meth:`cloudfiles_dask.CloudFiles.sweep`: hidden temporary files and partial downloads
on file://, unfinished multipart uploads on s3://, composite-upload parts on gs://.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import click

from .._engine.ops import SWEEP_AGE
from ._common import CLIError, cloudfiles, human_bytes, parse_path, write_lines

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_WITH_UNITS = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_age(text: str) -> float | None:
    """Seconds in ``text``: a plain number of seconds (``90``), or numbers with units ``s m h d
    w`` (``30m``, ``2h``, ``1d``, ``1h30m``); None if it is neither."""
    value = text.strip().lower()
    if _NUMBER.fullmatch(value):
        return float(value)
    if _WITH_UNITS.fullmatch(value):
        return float(sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(value)))
    return None


class Age(click.ParamType):
    """An age: seconds, or a number with a unit (see :func:`parse_age`)."""

    name = "AGE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        seconds = parse_age(str(value))
        if seconds is None:
            self.fail(f"{value!r} is not an age: give SECONDS or a number with a unit, s, m, h, "
                      f"d or w (for example 90, 30m, 2h, 1d, 1h30m)", param, ctx)
        return seconds


def show_age(seconds: float | None) -> str:
    """``45s``, ``12m``, ``1h``, ``3h05m``, ``2d``, ``2d04h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    if whole < 86400:
        minutes = whole % 3600 // 60
        return f"{whole // 3600}h{minutes:02d}m" if minutes else f"{whole // 3600}h"
    hours = whole % 86400 // 3600
    return f"{whole // 86400}d{hours:02d}h" if hours else f"{whole // 86400}d"


def _state(item: dict, delete: bool) -> str:
    if item["live"]:
        return "live, kept" if delete else "live"
    if delete:
        return "removed" if item["removed"] else "gone already"
    return "orphaned" if item["orphaned"] else "stale"


def _line(item: dict, delete: bool) -> str:
    size = "-" if item["size"] is None else human_bytes(item["size"])
    where = f"{item['url']} [{item['handle']}]" if item["url"] else item["handle"]
    return (f"{item['kind']:<16}  {size:>10}  {show_age(item['age']):>6}  "
            f"{item['owner'] or '-':<24}  {_state(item, delete):<12}  {where}")


@click.command()
@click.argument("path")
@click.option("--older-than", "older_than", type=Age(), default=show_age(SWEEP_AGE),
              show_default=True,
              help="Only what was made at least this long ago: SECONDS, or a number with s, m, "
                   "h, d or w (30m, 2h, 1d). A live writer of this machine is never touched; the "
                   "age protects the writers of other machines, which cannot be seen from here.")
@click.option("--delete", is_flag=True,
              help="Remove what was found (without it, only show it).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def sweep(path: str, older_than: float, delete: bool, as_json: bool) -> None:
    """Find what interrupted writes left under PATH (a directory or prefix), and with --delete
    remove it.

    \b
    What a killed process or a lost machine can leave behind:
      file://  hidden temporary files of atomic writes (.cfdask-tmp-HOST-PID-MS-RANDOM) and
               partial files of resumable downloads (.NAME.cfdask-partial; removing one only
               loses what a later download would have continued from)
      s3://    unfinished multipart uploads (their parts are billed until aborted)
      gs://    parts of composite uploads
      mem://   nothing;  http(s)://  read-only
    Columns: kind, size, age, owner (HOST:PID when known), state (live: its writer still runs
    on this machine, never removed; orphaned: its writer is gone; stale: no owner can be told,
    only its age), and where it is.

    \b
    Examples:
      cloudfiles sweep ./dest                      # what is there, older than an hour
      cloudfiles sweep ./dest --older-than 0       # everything, live writers' files marked live
      cloudfiles sweep ./dest --delete
      cloudfiles sweep s3://bucket/data --older-than 1d --delete
      cloudfiles sweep gs://bucket/ --json
    """
    spec = parse_path(path)
    if spec.wildcard:
        raise CLIError(f"{path}: sweep takes a directory or prefix, not a wildcard")
    if spec.local and not (spec.local_path and os.path.isdir(spec.local_path)):
        what = "not a directory" if spec.local_path and os.path.exists(spec.local_path) else "no such directory"
        raise CLIError(f"{path}: {what}")
    where = spec.dirpath
    items = cloudfiles(where).sweep(older_than=older_than, delete=delete)
    found = len(items)
    removed = sum(item["removed"] for item in items)
    live = sum(item["live"] for item in items)
    nbytes = sum(item["size"] or 0 for item in items)
    if as_json:
        click.echo(json.dumps({
            "path": where, "older_than": older_than, "delete": delete, "found": found,
            "removed": removed, "live": live, "bytes": nbytes, "items": items,
        }, indent=2))
        return
    write_lines(_line(item, delete) for item in items)
    age = show_age(older_than)
    if not found:
        click.echo(f"nothing older than {age} under {where}")
    elif delete:
        kept = f"; {live} kept (live writers)" if live else ""
        click.echo(f"removed {removed} of {found} found older than {age} under {where}{kept}")
    else:
        kept = f"; {live} of them live (never removed)" if live else ""
        click.echo(f"{found} found older than {age} under {where}, {human_bytes(nbytes)}{kept}; "
                   f"--delete removes them")
