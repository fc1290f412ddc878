"""``cloudfiles ls | rm | du | cat | head | touch | mkdir``."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

import click

from .._engine import distribute
from .._iteration import batched
from ._common import (
    CLIError,
    PathSpec,
    cloudfiles,
    dir_exists,
    expand_brackets,
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


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Remove directories and everything below them.")
@click.option("--progress", is_flag=True, help="Show a progress bar on stderr.")
@click.option("-b", "--block-size", default=128, show_default=True, type=click.IntRange(min=1),
              help="Files per process task with the global -p N.")
@click.pass_context
def rm(ctx: click.Context, paths: tuple[str, ...], recursive: bool, progress: bool, block_size: int) -> None:
    """Remove files. Directories need -r; wildcards select what to remove.

    Every argument is checked before anything is removed: a directory without -r or a missing
    file stops the command with an error and nothing is deleted. '-' as the only PATH reads
    newline-separated paths from stdin (missing ones are ignored).

    \b
    Examples:
      cloudfiles rm gs://bucket/old.json ./tmp/scratch.bin
      cloudfiles rm -r gs://bucket/run-17/
      cloudfiles rm 'gs://bucket/logs/*.tmp'
      cloudfiles -p 8 rm -r --progress s3://bucket/huge-prefix
      cloudfiles ls gs://bucket/cache | grep '\\.lock$' | cloudfiles rm -
    """
    parallel = parallel_of(ctx)
    resolved = None
    if paths == ("-",):
        groups = group_stdin_paths(read_stdin_paths())
    else:
        if "-" in paths:
            raise CLIError("'-' (read paths from stdin) must be the only path")
        specs = [parse_path(p) for p in paths]
        for spec in specs:
            require_writable(spec, "nothing can be removed from it")
        resolved = resolve_sources(specs, recursive=recursive, verb="removed")
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
                                       cf.config, on_done=lambda batch, count: bar.add(count))
            else:
                cf.delete(keys, progress=library_progress(bar))
    for r in resolved or []:
        if not r.spec.local:
            continue
        local_root = parse_path(r.root).local_path or ""
        if r.kind == "dir":
            prune_empty_dirs(local_root, include_top=True)
        elif r.kind == "wild" and recursive:
            for top in sorted({k.split("/", 1)[0] for k in r.keys if "/" in k}):
                prune_empty_dirs(os.path.join(local_root, top), include_top=True)


# -- du -----------------------------------------------------------------------------------------

_SIMPLE_EXT = re.compile(r"^[A-Za-z0-9_\-]{1,16}$")


def extension_of(key: str) -> str:
    """``.jpg`` for ``a/b.jpg``; '(none)' when the name has no simple extension."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.rpartition(".")
    if dot and stem and _SIMPLE_EXT.match(ext):
        return "." + ext.lower()
    return "(none)"


@click.command(context_settings={"help_option_names": ["--help"]})
@click.argument("paths", nargs=-1, required=True)
@click.option("-c", "--grand-total", is_flag=True, help="Print the total of all PATHS last ('SIZE<TAB>total').")
@click.option("-s", "--summarize", is_flag=True, help="One line per PATH instead of one per file.")
@click.option("-h", "--human-readable", is_flag=True, help="Sizes in B, KiB, MiB, ... (base 1024).")
@click.option("-N", "--count-files", is_flag=True, help="Also print the number of files ('N<TAB>files').")
@click.option("-e", "--group-by-ext", is_flag=True, help="A table of usage per file extension instead of per file.")
def du(paths: tuple[str, ...], grand_total: bool, summarize: bool, human_readable: bool, count_files: bool,
       group_by_ext: bool) -> None:
    """Disk usage: stored (compressed) bytes of files and directories.

    Lines are 'SIZE<TAB>PATH'. Directories and wildcards are measured from listings (one
    request per page of names, not one per file). Wildcards select what ls shows: 'dir/*.png'
    one level (a matching sub-directory counts whole), 'dir/**.png' every level. A missing
    PATH is reported on stderr (exit status 1) after the others are printed.

    \b
    Examples:
      cloudfiles du -sh gs://bucket/dataset/
      cloudfiles du -shc ./a ./b gs://bucket/c
      cloudfiles du -sN 'gs://bucket/images/*.png'
      cloudfiles du -e -h gs://bucket/                   # usage by file extension
    """
    fmt = human_bytes if human_readable else str
    problems: list[str] = []
    grand = files = 0
    by_ext: dict[str, list[int]] = {}
    for arg in paths:
        spec = parse_path(arg)
        entries: list[tuple[str, int]] | None = None
        if spec.wildcard:
            root = spec.base
            entries = _wildcard_sizes(cloudfiles(root), spec)
        elif dir_exists(spec):
            root = spec.dirpath
            cf = cloudfiles(root)
            if summarize and not group_by_ext:
                tree = cf.subtree_size()
                grand += tree["num_bytes"]
                files += tree["N"]
                click.echo(f"{fmt(tree['num_bytes'])}\t{spec.cloudpath}")
                continue
            entries = [(k, s or 0) for k, s in _sized(cf, cf.list(size=True))]
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
                slot = by_ext.setdefault(extension_of(key), [0, 0])
                slot[0] += 1
                slot[1] += size
        elif summarize:
            click.echo(f"{fmt(subtotal)}\t{spec.cloudpath}")
        else:
            write_lines(f"{fmt(size)}\t{join(root, key)}" for key, size in entries)
    if group_by_ext:
        click.echo("extension\tfiles\tbytes\tshare")
        for ext, (count, size) in sorted(by_ext.items(), key=lambda item: (-item[1][1], item[0])):
            share = 100.0 * size / grand if grand else 0.0
            click.echo(f"{ext}\t{count}\t{fmt(size)}\t{share:.1f}%")
    if grand_total:
        click.echo(f"{fmt(grand)}\ttotal")
    if count_files:
        click.echo(f"{files}\tfiles")
    if problems:
        for problem in problems[:-1]:
            warn(problem)
        raise CLIError(problems[-1])


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
@click.option("--no-sign-request", is_flag=True, help="Read anonymously (public buckets).")
def cat(sources: tuple[str, ...], byte_range: str | None, no_sign_request: bool) -> None:
    """Write the contents of files to stdout, byte for byte, in the order given.

    Contents are decoded (gzip, br, ...). '-' as the only SOURCE reads paths from stdin.
    Wildcards expand in listing order. A missing file is reported on stderr and the others are
    still written; the exit status is then 1.

    \b
    Examples:
      cloudfiles cat gs://bucket/info.json
      cloudfiles cat ./a.txt gs://bucket/b.txt > both.txt
      cloudfiles cat -r 0-1024 gs://bucket/big.bin | xxd | head
      cloudfiles cat -r 100- gs://bucket/log.txt          # from byte 100 to the end
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
        data = _read_range(cloudfiles(spec.base, **kwargs), spec.name, start, end)
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
    problems = []
    for start in range(0, len(items), 10):
        block = items[start : start + 10]
        contents = _fetch_block(block, kwargs)
        for (root, key, spec), content in zip(block, contents, strict=True):
            if content is None:
                problem = _problem(root, key, spec)
                warn(problem)
                problems.append(problem)
                continue
            write_bytes(content)
    if problems:
        click.get_current_context().exit(1)


def _fetch_block(block: list[tuple[str, str, PathSpec]], kwargs: dict[str, Any]) -> list[bytes | None]:
    """Contents of one block of ``(root, key, spec)`` items, in order (one request batch per root)."""
    by_root: dict[str, list[str]] = {}
    for root, key, _ in block:
        if key:
            by_root.setdefault(root, []).append(key)
    found: dict[tuple[str, str], bytes | None] = {}
    for root, keys in by_root.items():
        for result in cloudfiles(root, **kwargs).get(list(dict.fromkeys(keys))):
            found[(root, result["path"])] = result["content"]
    return [found.get((root, key)) for root, key, _ in block]


def _read_range(cf: Any, key: str, start: int, end: int | None) -> bytes | None:
    """Bytes ``[start:end]`` of the decoded content: a ranged read when the file is stored
    unencoded, otherwise the whole object is downloaded, decoded and sliced."""
    (result,) = cf.get([{"path": key, "start": start, "end": end}], raw=True)
    if result["content"] is None:
        return None
    if not result["compress"]:
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


@click.command()
@click.argument("paths", nargs=-1, required=True)
def head(paths: tuple[str, ...]) -> None:
    """Print the metadata of files as JSON (sizes, content type, encoding, checksums, dates).

    One PATH prints its metadata object; several PATHS (or a wildcard) print
    {cloudpath: metadata}. Dates are ISO 8601 strings. Missing files are reported on stderr
    (exit status 1); in the several-path form they appear as null.

    \b
    Examples:
      cloudfiles head gs://bucket/info.json
      cloudfiles head ./a.bin ./b.bin
      cloudfiles head 'gs://bucket/images/*.png' | jq 'map_values(."Content-Length")'
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
    single = len(paths) == 1 and len(items) == 1 and not items[0][2].wildcard
    if single:
        root, key, _ = items[0]
        if heads.get((root, key)) is None:
            raise CLIError(problems[0])
        click.echo(dumps(heads[(root, key)]))
        return
    if items:
        click.echo(dumps({join(root, key): heads.get((root, key)) for root, key, _ in items}))
    if problems:
        for problem in problems[:-1]:
            warn(problem)
        raise CLIError(problems[-1])


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
