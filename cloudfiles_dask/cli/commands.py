"""``cloudfiles ls | rm | du | cat | head | touch | mkdir``."""

from __future__ import annotations

import json
import os
import pprint
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

import click

from .._engine import distribute
from .._iteration import batched
from ._common import (
    _UNITS,
    CLIError,
    CommandGroup,
    PathSpec,
    cloudfiles,
    dir_exists,
    exit_failed,
    expand_brackets,
    fail_many,
    group_stdin_paths,
    human_bytes,
    join,
    library_progress,
    list_files,
    make_bar,
    parallel_of,
    parse_path,
    prune_empty_dirs,
    read_stdin_paths,
    report_error,
    require_writable,
    resolve_sources,
    warn,
    write_bytes,
    write_lines,
)
from .listing_db import list_into_sqlite

# -- ls -----------------------------------------------------------------------------------------


def listing_params(spec: PathSpec, flat: bool, **cf_kwargs: Any) -> tuple[str, str, bool, str]:
    """``(root, prefix, flat, suffix)`` to list for one ls argument.

    A directory (``dir``, ``dir/``, a bucket) lists its contents; anything else is a prefix of
    names in its parent (``ls data/run1`` shows ``run1.log``, ``run10/...``); wildcards choose
    one level (``*``) or all (``**``) and may end in a suffix filter.
    """
    if spec.wildcard:
        return spec.base, spec.prefix, spec.stars == "*", spec.suffix
    if not spec.name or dir_exists(spec, **cf_kwargs):
        return spec.dirpath, "", flat, ""
    return spec.base, spec.name, flat, ""


def _no_auth_kwargs(spec: PathSpec, no_auth: bool) -> dict[str, Any]:
    if not no_auth:
        return {}
    return {"no_sign_request": True} if spec.protocol == "s3" else {"use_https": spec.protocol == "gs"}


@click.command()
@click.argument("cloudpath")
@click.option("--shortpath", is_flag=True, help="Print paths relative to the listed directory.")
@click.option("--flat", is_flag=True, help="List one level only; sub-directories end in '/'.")
@click.option("-e", "--expr", is_flag=True,
              help="Expand [abc] in CLOUDPATH into one listing per character (several brackets: every combination).")
@click.option("--size", "with_size", is_flag=True, help="Print 'SIZE<TAB>PATH' (stored bytes; '-' for directories).")
@click.option("--no-auth", is_flag=True, help="List anonymously (public gs buckets over https, s3 unsigned).")
@click.option("--sqlite", "sqlite_db", type=click.Path(dir_okay=False),
              help="Write the listing (path, size) into this sqlite file instead of printing it. "
                   "Resumable: rerun the same command to continue.")
@click.option("--progress", is_flag=True, help="With --sqlite: show a progress bar on stderr.")
def ls(cloudpath: str, shortpath: bool, flat: bool, expr: bool, with_size: bool, no_auth: bool,
       sqlite_db: str | None, progress: bool) -> None:
    """List files under CLOUDPATH, recursively unless --flat.

    A directory lists its contents. Otherwise the last path component is a prefix:
    'ls gs://b/img/cat' lists cat.png, cats/1.png, ... Full cloudpaths are printed, ready to
    paste or to pipe into 'cloudfiles cp -' / 'cloudfiles rm -'. Local files stored compressed
    (x.gz, x.br, ...) are listed by their key, without that suffix, and wildcard suffixes
    match the key.

    \b
    Examples:
      cloudfiles ls gs://bucket/dataset/
      cloudfiles ls --flat --shortpath ./data
      cloudfiles ls 'gs://bucket/images/*.png'           # one level, names ending in .png
      cloudfiles ls 'gs://bucket/logs/2024-0**'          # recursive, names starting with 2024-0
      cloudfiles ls -e 'gs://bucket/shard_[0123][ab]'    # 8 prefix listings
      cloudfiles ls --size ./data | sort -n | tail
      cloudfiles ls --sqlite bucket.db --progress gs://bucket/   # resumable, queryable with SQL
    """
    expressions = expand_brackets(cloudpath) if expr else [cloudpath]
    if sqlite_db is not None:
        if len(expressions) > 1:
            raise CLIError("--sqlite lists one cloudpath; it cannot be combined with -e expansions")
        spec = parse_path(expressions[0])
        kwargs = _no_auth_kwargs(spec, no_auth)
        root, prefix, flat_, suffix = listing_params(spec, flat, **kwargs)
        count, nbytes = list_into_sqlite(sqlite_db, spec.cloudpath, root, prefix, flat_, suffix, progress, kwargs)
        click.echo(f"{sqlite_db}: {count} files, {human_bytes(nbytes)} listed from {spec.cloudpath}")
        return

    def lines() -> Iterator[str]:
        for expression in expressions:
            spec = parse_path(expression)
            kwargs = _no_auth_kwargs(spec, no_auth)
            root, prefix, flat_, suffix = listing_params(spec, flat, **kwargs)
            cf = cloudfiles(root, **kwargs)
            if with_size:
                for key, size in _sized(cf, cf.list(prefix=prefix, flat=flat_, size=True)):
                    if suffix and not key.endswith(suffix):
                        continue
                    shown = key if shortpath else join(root, key)
                    yield f"{'-' if size is None else size}\t{shown}"
            else:
                for key in cf.list(prefix=prefix, flat=flat_):
                    if suffix and not key.endswith(suffix):
                        continue
                    yield key if shortpath else join(root, key)

    write_lines(lines())


def _sized(cf: Any, listing: Any, batch: int = 1000) -> Iterator[tuple[str, int | None]]:
    """Listing ``(key, size)`` pairs, asking for sizes the listing did not give (dirs stay None)."""
    pending: list[tuple[str, int | None]] = []

    def flush() -> Iterator[tuple[str, int | None]]:
        missing = [k for k, s in pending if s is None and not k.endswith("/")]
        sizes = cf.size(missing) if missing else {}
        for key, size in pending:
            yield key, sizes.get(key, size) if size is None else size

    for item in listing:
        pending.append(item)
        if len(pending) >= batch:
            yield from flush()
            pending = []
    yield from flush()


# -- rm -----------------------------------------------------------------------------------------


def remove(paths: tuple[str, ...] | list[str], *, recursive: bool = False, progress: bool = False,
           block_size: int = 128, parallel: int = 1, force: bool = False) -> int:
    """``cloudfiles rm``: how many files were deleted (or were asked to be, with ``force``)."""
    paths = tuple(paths)
    resolved = None
    if paths == ("-",):
        groups = group_stdin_paths(read_stdin_paths())
    else:
        if "-" in paths:
            raise CLIError("'-' (read paths from stdin) must be the only path")
        specs = [parse_path(p) for p in paths]
        for spec in specs:
            require_writable(spec, "nothing can be removed from it")
        resolved = resolve_sources(specs, recursive=recursive, verb="removed", missing_ok=force)
        for r in resolved:
            for skipped in r.skipped_dirs:
                warn(f"skipping directory {join(r.root, skipped)} (use -r to remove it)")
        groups = [(r.root, r.keys) for r in resolved]
    total = sum(len(keys) for _, keys in groups)
    with make_bar(progress, total, "Deleting") as bar, \
            distribute.ProcessExecutor(parallel) as executor:
        for root, keys in groups:
            if not keys:
                continue
            cf = cloudfiles(root)
            if parallel > 1 and len(keys) > 1 and cf.config.crosses_processes:
                size = distribute.batch_size_for(len(keys), parallel, cap=block_size)
                distribute.run_batches(executor, distribute.delete_batch, batched(keys, size),
                                       cf.config, on_done=lambda batch, count: bar.advance(count))
            else:
                cf.delete(keys, progress=library_progress(bar))
    for r in resolved or []:
        if not r.spec.local:
            continue
        local_root = parse_path(r.root).local_path or ""
        if r.kind == "dir":  # emptied, and kept (as the original keeps it)
            prune_empty_dirs(local_root, include_top=False)
        elif r.kind == "wild" and recursive:
            for top in sorted({k.split("/", 1)[0] for k in r.keys if "/" in k}):
                prune_empty_dirs(os.path.join(local_root, top), include_top=True)
    return total


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Remove directories and everything below them.")
@click.option("-f", "--force", is_flag=True,
              help="Ignore paths that do not exist and wildcards that match nothing (the original "
                   "CloudFiles' behaviour); the others are still removed.")
@click.option("--progress", is_flag=True, help="Show a progress bar on stderr.")
@click.option("-b", "--block-size", default=128, show_default=True, type=click.IntRange(min=1),
              help="Files per process task with the global -p N.")
@click.pass_context
def rm(ctx: click.Context, paths: tuple[str, ...], recursive: bool, force: bool, progress: bool,
       block_size: int) -> None:
    """Remove files. Directories need -r; wildcards select what to remove.

    Every argument is checked before anything is removed: a directory without -r or a missing
    file stops the command with an error and nothing is deleted (-f ignores missing files, as rm -f
    does). 'rm -r DIR' on local disk removes the files below DIR and the sub-directories it
    empties, and keeps DIR itself, empty. '-' as the only PATH reads newline-separated paths
    from stdin (missing ones are ignored).

    \b
    Examples:
      cloudfiles rm gs://bucket/old.json ./tmp/scratch.bin
      cloudfiles rm -r gs://bucket/run-17/
      cloudfiles rm 'gs://bucket/logs/*.tmp'
      cloudfiles rm -f gs://bucket/maybe-there.lock
      cloudfiles -p 8 rm -r --progress s3://bucket/huge-prefix
      cloudfiles ls gs://bucket/cache | grep '\\.lock$' | cloudfiles rm -
    """
    remove(paths, recursive=recursive, progress=progress, block_size=block_size,
           parallel=parallel_of(ctx), force=force)


# -- du -----------------------------------------------------------------------------------------

_SIMPLE_EXT = re.compile(r"^[A-Za-z0-9_\-]{1,16}$")


def extension_of(key: str) -> str:
    """``.jpg`` for ``a/b.jpg``; '(none)' when the name has no simple extension."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    if dot and stem and _SIMPLE_EXT.match(ext):
        return "." + ext.lower()
    return "(none)"


def original_si(n: float) -> str:
    """The original CloudFiles' ``du -h`` sizes: ``512 bytes``, ``1.50 KiB``, ... ``2.00 EiB``."""
    if n < 1024:
        return f"{int(n)} bytes"
    value = float(n)
    for unit in _UNITS[1:]:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.2f} {unit}"
    raise AssertionError("unreachable")


def original_extension(key: str) -> str:
    """The original's ``du -e`` groups: the lower-cased extension, or '(no extension)'."""
    return os.path.splitext(key)[1].lower() or "(no extension)"


@click.command(context_settings={"help_option_names": ["--help"]})
@click.argument("paths", nargs=-1, required=True)
@click.option("-c", "--grand-total", is_flag=True, help="Print the total of all PATHS last ('SIZE<TAB>total').")
@click.option("-s", "--summarize", is_flag=True, help="One line per PATH instead of one per file.")
@click.option("-h", "--human-readable", is_flag=True, help="Sizes in B, KiB, MiB, ... (base 1024).")
@click.option("-N", "--count-files", is_flag=True, help="Also print the number of files ('N<TAB>files').")
@click.option("-e", "--group-by-ext", is_flag=True, help="A table of usage per file extension instead of per file.")
@click.option("--original-format", is_flag=True,
              help="Print as the original CloudFiles does: PATHS as given and keys relative to "
                   "their directory, 'bytes total' and 'files total' lines, '512 bytes' with -h, "
                   "and -e as per-file lines then 'Usage by file extension:' (SIZE<TAB>EXT).")
def du(paths: tuple[str, ...], grand_total: bool, summarize: bool, human_readable: bool, count_files: bool,
       group_by_ext: bool, original_format: bool) -> None:
    """Disk usage: stored (compressed) bytes of files and directories.

    Lines are 'SIZE<TAB>PATH' with full cloudpaths; -c adds 'SIZE<TAB>total' and -N
    'N<TAB>files' (as coreutils du). Directories and wildcards are measured from listings (one
    request per page of names, not one per file). Wildcards select what ls shows: 'dir/*.png'
    one level (a matching sub-directory counts whole), 'dir/**.png' every level. A missing
    PATH is reported on stderr (exit status 1) after the others are printed.

    \b
    Examples:
      cloudfiles du -sh gs://bucket/dataset/
      cloudfiles du -shc ./a ./b gs://bucket/c
      cloudfiles du -sN 'gs://bucket/images/*.png'
      cloudfiles du -e -h gs://bucket/                   # usage by file extension
      cloudfiles du -sc --original-format gs://b/x      # '... bytes total', as the original
    """
    if original_format:
        fmt = original_si if human_readable else str
    else:
        fmt = human_bytes if human_readable else str
    problems: list[str] = []
    grand = files = 0
    by_ext: dict[str, list[int]] = {}
    for arg in paths:
        spec = parse_path(arg)
        entries: list[tuple[str, int]] | None = None
        shown_root: str | None = None  # --original-format: keys as listed under the argument
        if spec.wildcard:
            root = spec.base
            entries = _wildcard_sizes(cloudfiles(root), spec)
            shown_root = ""
        elif dir_exists(spec):
            root = spec.dirpath
            cf = cloudfiles(root)
            if summarize and not group_by_ext:
                tree = cf.subtree_size()
                grand += tree["num_bytes"]
                files += tree["N"]
                click.echo(f"{fmt(tree['num_bytes'])}\t{arg if original_format else spec.cloudpath}")
                continue
            entries = [(k, s or 0) for k, s in _sized(cf, cf.list(size=True))]
            shown_root = ""
        else:
            root = spec.base
            size = cloudfiles(root).size(spec.name) if spec.name else None
            if size is None:
                problems.append(f"{arg} does not exist")
                continue
            entries = [(spec.name, size)]
        subtotal = sum(s for _, s in entries)
        grand += subtotal
        files += len(entries)
        if group_by_ext:
            for key, size in entries:
                group = original_extension(key) if original_format else extension_of(key)
                slot = by_ext.setdefault(group, [0, 0])
                slot[0] += 1
                slot[1] += size
        if summarize:
            if not group_by_ext or original_format:
                click.echo(f"{fmt(subtotal)}\t{arg if original_format else spec.cloudpath}")
        elif original_format:
            write_lines(f"{fmt(size)}\t{arg if shown_root is None else key}" for key, size in entries)
        elif not group_by_ext:
            write_lines(f"{fmt(size)}\t{join(root, key)}" for key, size in entries)
    if original_format:
        if grand_total:
            click.echo(f"{fmt(grand)}\tbytes total")
        if count_files:
            click.echo(f"{files}\tfiles total")
        if group_by_ext:
            click.echo("\nUsage by file extension:")
            for ext, (_, size) in sorted(by_ext.items(), key=lambda item: -item[1][1]):
                click.echo(f"{fmt(size)}\t{ext}")
    else:
        if group_by_ext:
            click.echo("extension\tfiles\tbytes\tshare")
            for ext, (count, size) in sorted(by_ext.items(), key=lambda item: (-item[1][1], item[0])):
                share = 100.0 * size / grand if grand else 0.0
                click.echo(f"{ext}\t{count}\t{fmt(size)}\t{share:.1f}%")
        if grand_total:
            click.echo(f"{fmt(grand)}\ttotal")
        if count_files:
            click.echo(f"{files}\tfiles")
    fail_many(problems)


def _wildcard_sizes(cf: Any, spec: PathSpec) -> list[tuple[str, int]]:
    """Sizes of the files a wildcard selects, as ls lists them: ``PREFIX**SUFFIX`` every file
    below whose key matches; ``PREFIX*SUFFIX`` the entries of one level whose names match, where
    a matching directory counts with everything below it (as the shell's ``du -s dir/*``)."""
    if spec.stars == "**":
        return [(k, s or 0) for k, s in _sized(cf, cf.list(prefix=spec.prefix, size=True)) if k.endswith(spec.suffix)]
    entries: list[tuple[str, int]] = []
    for key, size in list(_sized(cf, cf.list(prefix=spec.prefix, flat=True, size=True))):
        if key.endswith("/"):
            if key[:-1].endswith(spec.suffix):
                entries.extend((k, s or 0) for k, s in _sized(cf, cf.list(prefix=key, size=True)))
        elif key.endswith(spec.suffix):
            entries.append((key, size or 0))
    return entries


# -- cat ----------------------------------------------------------------------------------------


def parse_range(text: str) -> tuple[int, int | None]:
    """``START-END`` (end exclusive): ``2-7``, ``-5`` (= ``0-5``), ``6-`` (to the end)."""
    match = re.fullmatch(r"\s*(\d*)\s*-\s*(\d*)\s*", text)
    if match is None or not (match[1] or match[2]):
        raise click.BadParameter(f"{text!r} is not START-END (for example 0-100, -100 or 100-)")
    start = int(match[1]) if match[1] else 0
    end = int(match[2]) if match[2] else None
    if end is not None and end < start:
        raise click.BadParameter(f"{text!r}: END ({end}) is before START ({start})")
    return start, end


def _problem(root: str, key: str, spec: PathSpec) -> str:
    """Why ``key`` (from argument ``spec``) gave nothing."""
    if spec.wildcard:
        return f"{spec.arg}: no files match" if not key else f"{join(root, key)} does not exist"
    return _explain_missing(spec)


def _explain_missing(spec: PathSpec) -> str:
    if dir_exists(spec):
        return f"{spec.arg} is a directory"
    return f"{spec.arg} does not exist"


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("-r", "--range", "byte_range", metavar="START-END",
              help="Only these bytes of the (decoded) content; END is exclusive. '-5' means 0-5, "
                   "'6-' runs to the end. One SOURCE only.")
@click.option("--raw", is_flag=True,
              help="Write the stored bytes, not decoded (a gzip object comes out gzip). With -r the "
                   "range is of the stored bytes and is one ranged request, even for a compressed "
                   "object.")
@click.option("--no-sign-request", is_flag=True, help="Read anonymously (public buckets).")
def cat(sources: tuple[str, ...], byte_range: str | None, raw: bool, no_sign_request: bool) -> None:
    """Write the contents of files to stdout, byte for byte, in the order given.

    Contents are decoded (gzip, br, ...) unless --raw. -r on a compressed file applies to the
    decoded content, which is downloaded whole to be decoded; '--raw -r' reads only the range
    of the stored bytes. '-' as the only SOURCE reads paths from stdin. Wildcards expand in
    listing order. A missing file is reported on stderr and the others are still written; the
    exit status is then 1.

    \b
    Examples:
      cloudfiles cat gs://bucket/info.json
      cloudfiles cat ./a.txt gs://bucket/b.txt > both.txt
      cloudfiles cat -r 0-1024 gs://bucket/big.bin | xxd | head
      cloudfiles cat -r 100- gs://bucket/log.txt          # from byte 100 to the end
      cloudfiles cat --raw -r 0-2 gs://bucket/x.json.gz | xxd   # 1f8b: the stored gzip bytes
      cloudfiles cat 'gs://bucket/parts/*.csv' > all.csv
    """
    kwargs = {"no_sign_request": no_sign_request} if no_sign_request else {}
    if byte_range is not None:
        if len(sources) != 1 or sources[0] == "-":
            raise CLIError("-r/--range works on exactly one SOURCE")
        start, end = parse_range(byte_range)
        spec = parse_path(sources[0])
        if spec.wildcard or not spec.name:
            raise CLIError(f"{spec.arg}: -r/--range needs a single file")
        data = _read_range(cloudfiles(spec.base, **kwargs), spec.name, start, end, raw)
        if data is None:
            raise CLIError(_explain_missing(spec))
        write_bytes(data)
        return
    if sources == ("-",):
        items = [(root, key, parse_path(join(root, key))) for root, keys in group_stdin_paths(read_stdin_paths())
                 for key in keys]
    else:
        if "-" in sources:
            raise CLIError("'-' (read paths from stdin) must be the only source")
        items = []
        for arg in sources:
            spec = parse_path(arg)
            if spec.wildcard:
                keys, _ = list_files(spec.base, spec.prefix, flat=spec.stars == "*", recursive_dirs=False,
                                     suffix=spec.suffix, **kwargs)
                if not keys:
                    items.append((spec.base, "", spec))  # reported in order, below
                items.extend((spec.base, key, spec) for key in keys)
            else:
                items.append((spec.base, spec.name, spec))
    failed = False
    for start in range(0, len(items), 10):
        block = items[start : start + 10]
        contents = _fetch_block(block, kwargs, raw)
        for (root, key, spec), content in zip(block, contents, strict=True):
            if content is None:
                report_error(_problem(root, key, spec))
                failed = True
                continue
            write_bytes(content)
    if failed:
        exit_failed()


def _fetch_block(block: list[tuple[str, str, PathSpec]], kwargs: dict[str, Any],
                 raw: bool = False) -> list[bytes | None]:
    """Contents of one block of ``(root, key, spec)`` items, in order (one request batch per root)."""
    by_root: dict[str, list[str]] = {}
    for root, key, _ in block:
        if key:
            by_root.setdefault(root, []).append(key)
    found: dict[tuple[str, str], bytes | None] = {}
    for root, keys in by_root.items():
        for result in cloudfiles(root, **kwargs).get(list(dict.fromkeys(keys)), raw=raw):
            found[(root, result["path"])] = result["content"]
    return [found.get((root, key)) for root, key, _ in block]


def _read_range(cf: Any, key: str, start: int, end: int | None, raw: bool = False) -> bytes | None:
    """Bytes ``[start:end]``: of the stored bytes with ``raw`` (one ranged read); otherwise of the
    decoded content: a ranged read when the file is stored unencoded, else the whole object is
    downloaded, decoded and sliced."""
    (result,) = cf.get([{"path": key, "start": start, "end": end}], raw=True)
    if result["content"] is None:
        return None
    if raw or not result["compress"]:
        return result["content"]
    content = cf.get(key)
    return None if content is None else content[start:end]


# -- head ---------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def dumps(value: Any) -> str:
    if isinstance(value, Mapping):
        value = {k: dict(v) if isinstance(v, Mapping) else v for k, v in value.items()}
    return json.dumps(value, indent=2, default=_json_default)


def _plain(meta: Any) -> Any:
    return dict(meta) if isinstance(meta, Mapping) else meta


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--original-format", is_flag=True,
              help="Print as the original CloudFiles does: Python reprs, not JSON (one file: its "
                   "dict; several: a pretty-printed {PATH as given: dict}, wildcard matches by "
                   "their name in the listed directory).")
def head(paths: tuple[str, ...], original_format: bool) -> None:
    """Print the metadata of files as JSON (sizes, content type, encoding, checksums, dates).

    One PATH prints its metadata object; several PATHS (or a wildcard) print
    {cloudpath: metadata}. Dates are ISO 8601 strings. Missing files are reported on stderr
    (exit status 1); in the several-path form they appear as null.

    \b
    Examples:
      cloudfiles head gs://bucket/info.json
      cloudfiles head ./a.bin ./b.bin
      cloudfiles head 'gs://bucket/images/*.png' | jq 'map_values(."Content-Length")'
      cloudfiles head --original-format gs://bucket/info.json   # {'Cache-Control': None, ...}
    """
    items: list[tuple[str, str, PathSpec]] = []
    for arg in paths:
        spec = parse_path(arg)
        if spec.wildcard:
            keys, _ = list_files(spec.base, spec.prefix, flat=spec.stars == "*", recursive_dirs=False,
                                 suffix=spec.suffix)
            if not keys:
                items.append((spec.base, "", spec))
            items.extend((spec.base, key, spec) for key in keys)
        else:
            items.append((spec.base, spec.name, spec))
    by_root: dict[str, list[str]] = {}
    for root, key, _ in items:
        if key:
            by_root.setdefault(root, []).append(key)
    heads: dict[tuple[str, str], Any] = {}
    for root, keys in by_root.items():
        for key, meta in cloudfiles(root).head(list(dict.fromkeys(keys))).items():
            heads[(root, key)] = meta
    problems = [_problem(root, key, spec) for root, key, spec in items if heads.get((root, key)) is None]
    items = [item for item in items if item[1] or not item[2].wildcard]  # drop "no match" markers
    if original_format:
        _print_heads_as_the_original(paths, items, heads)
        fail_many(problems)
        return
    single = len(paths) == 1 and len(items) == 1 and not items[0][2].wildcard
    if single:
        root, key, _ = items[0]
        if heads.get((root, key)) is None:
            raise CLIError(problems[0])
        click.echo(dumps(heads[(root, key)]))
        return
    if items:
        click.echo(dumps({join(root, key): heads.get((root, key)) for root, key, _ in items}))
    fail_many(problems)


def _print_heads_as_the_original(paths: tuple[str, ...], items: list[tuple[str, str, PathSpec]],
                                 heads: dict[tuple[str, str], Any]) -> None:
    """One PATH with one result: the repr of its dict (nothing when it is missing: the error
    says so). Otherwise ``pprint`` (indent 2) of {name: dict or None}, named as the original
    names them: the argument as given, or for a wildcard the key in its directory."""
    shown = {(spec.arg if not spec.wildcard else key): _plain(heads.get((root, key)))
             for root, key, spec in items}
    if len(paths) == 1 and len(shown) == 1:
        (meta,) = shown.values()
        if meta is not None:
            click.echo(repr(meta))
        return
    if shown:
        click.echo(pprint.pformat(shown, indent=2))


# -- acl --------------------------------------------------------------------------------------------


@click.group(cls=CommandGroup)
def acl() -> None:
    """Access control of files: S3 ACLs, GCS ACL entries, local files' permission bits."""


@acl.command("get")
@click.argument("paths", nargs=-1, required=True)
@click.option("--progress", is_flag=True, help="Show a progress bar on stderr.")
@click.option("--original-format", is_flag=True,
              help="Print as the original CloudFiles does: Python reprs, not JSON.")
def acl_get(paths: tuple[str, ...], progress: bool, original_format: bool) -> None:
    """Print the access control of files as JSON.

    One local file prints its permission bits in octal (0o100644); one remote object prints
    its ACL (S3: the GetObjectAcl answer, GCS: the ACL entries). Several PATHS print
    {cloudpath: ACL}, grouped by bucket. mem:// objects have none (null); plain HTTP servers
    publish none (an error).

    \b
    Examples:
      cloudfiles acl get s3://bucket/report.csv
      cloudfiles acl get ./a.bin ./b.bin
    """
    groups: dict[str, list[str]] = {}
    for arg in paths:
        spec = parse_path(arg)
        if spec.wildcard or not spec.name:
            raise CLIError(f"{arg}: acl get takes files (no wildcards or directories)")
        groups.setdefault(spec.base, []).append(spec.name)
    found: dict[str, Any] = {}
    with make_bar(progress, len(paths), "Fetching ACLs") as bar:
        for root, keys in groups.items():
            acls = cloudfiles(root).get_acl(list(dict.fromkeys(keys)), progress=library_progress(bar))
            found.update({join(root, key): value for key, value in acls.items()})
    problems = [f"{path} does not exist" for path, value in found.items()
                if value is None and parse_path(path).protocol != "mem"]
    if len(found) == 1:
        ((path, value),) = found.items()
        if value is None and problems:
            raise CLIError(problems[0])
        if isinstance(value, int):  # a local file's mode bits
            click.echo(oct(value))
        else:
            click.echo(repr(value) if original_format else dumps(value))
        return
    shown = {path: (oct(value) if isinstance(value, int) else value) for path, value in found.items()}
    click.echo(pprint.pformat(shown, indent=2) if original_format else dumps(shown))
    fail_many(problems)


# -- touch, mkdir -------------------------------------------------------------------------------


@click.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--progress", is_flag=True, help="Show a progress bar on stderr.")
@click.option("--no-sign-request", is_flag=True, help="Use anonymous requests.")
def touch(sources: tuple[str, ...], progress: bool, no_sign_request: bool) -> None:
    """Create empty files where none exist.

    Local files that exist get a new modification time (missing parent directories are
    created). Objects that exist in a bucket are left as they are.

    \b
    Examples:
      cloudfiles touch gs://bucket/flags/done
      cloudfiles touch ./out/a ./out/b gs://bucket/x/_SUCCESS
    """
    groups: dict[str, list[str]] = {}
    for arg in sources:
        spec = parse_path(arg)
        if spec.wildcard:
            raise CLIError(f"{arg}: touch does not take wildcards")
        require_writable(spec, "files cannot be created there")
        if spec.local and spec.local_path and os.path.isdir(spec.local_path):
            os.utime(spec.local_path)
            continue
        if not spec.name:
            raise CLIError(f"{arg} is a directory; touch needs file paths")
        groups.setdefault(spec.base, []).append(spec.name)
    total = sum(len(v) for v in groups.values())
    kwargs = {"no_sign_request": True} if no_sign_request else {}
    with make_bar(progress, total, "Touching") as bar:
        for base, names in groups.items():
            cloudfiles(base, **kwargs).touch(list(dict.fromkeys(names)), progress=library_progress(bar))


@click.command()
@click.argument("paths", nargs=-1, required=True)
def mkdir(paths: tuple[str, ...]) -> None:
    """Create local directories (with their parents). Object stores have no directories, so
    cloudpaths are accepted and nothing is done for them.

    \b
    Examples:
      cloudfiles mkdir ./out/run1 ./out/run2
    """
    for arg in paths:
        spec = parse_path(arg)
        if spec.local and spec.local_path:
            try:
                os.makedirs(spec.local_path, exist_ok=True)
            except OSError as e:
                raise CLIError(f"{arg}: {e.strerror or e}") from None
