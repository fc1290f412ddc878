"""What every ``cloudfiles`` command shares: errors, the path grammar, listings, progress, output.

Path grammar (cp, mv, rm, ls, du, head, cat):

- a path without a protocol is local (``file://`` + its absolute path);
- ``dir/`` (trailing separator) and a bucket root (``gs://b``) are directories;
- the last component may carry a wildcard: ``PREFIX*`` lists one level, ``PREFIX**`` lists
  recursively, and anything after the stars is a suffix filter (``dir/*.jpg``, ``dir/**.json``).
  Stars anywhere else are refused with an explanation.

Heavy third-party imports (tqdm, sqlite3) happen inside functions, so ``cloudfiles --help``
stays quick.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from .. import paths
from ..cloudfiles import CloudFiles
from ..dask.cluster import INSTALL_HINT
from ..exceptions import CloudFilesError
from ..progress import Progress, display_for

# -- errors -------------------------------------------------------------------------------------

#: The environment variable that chooses where errors go: ``stderr`` (the default: one line
#: ``cloudfiles <command>: <message>`` on stderr, exit status 1) or ``stdout`` (the original
#: CloudFiles' form: ``cloudfiles: <message>`` on stdout, exit status 0), for scripts written
#: for the original that read its errors from stdout.
ERRORS_ENV = "CLOUDFILES_ERRORS"
ERROR_MODES = ("stderr", "stdout")


def errors_to_stdout() -> bool:
    """True when CLOUDFILES_ERRORS=stdout (case and spaces ignored)."""
    return os.environ.get(ERRORS_ENV, "").strip().lower() == "stdout"


def error_mode_problem() -> str | None:
    """A note when CLOUDFILES_ERRORS holds something other than stdout or stderr."""
    value = os.environ.get(ERRORS_ENV, "").strip().lower()
    if value and value not in ERROR_MODES:
        return f"{ERRORS_ENV}={value!r} is neither 'stderr' nor 'stdout'; errors go to stderr"
    return None


def failure_status() -> int:
    """The exit status of a failed command: 1, or 0 with CLOUDFILES_ERRORS=stdout."""
    return 0 if errors_to_stdout() else 1


def _prefix_of_context() -> str:
    ctx = click.get_current_context(silent=True)
    return ctx.command_path if ctx is not None else "cloudfiles"


def report_error(message: str, prefix: str | None = None) -> None:
    """One error line: ``<prefix>: <message>`` on stderr (prefix: the command, ``cloudfiles cp``),
    or with CLOUDFILES_ERRORS=stdout ``cloudfiles: <message>`` on stdout."""
    if errors_to_stdout():
        click.echo(f"cloudfiles: {message}")
    else:
        click.echo(f"{prefix or _prefix_of_context()}: {message}", err=True)


class CLIError(click.ClickException):
    """A user-facing failure: ``cloudfiles <command>: <message>`` on stderr, exit status 1
    (``cloudfiles: <message>`` on stdout and exit status 0 with CLOUDFILES_ERRORS=stdout)."""

    exit_code = 1

    def __init__(self, message: str, prefix: str | None = None):
        if prefix is None:
            prefix = _prefix_of_context()
        super().__init__(message)
        self.prefix = prefix
        self.exit_code = failure_status()

    def show(self, file: Any = None) -> None:
        report_error(self.format_message(), self.prefix)


class CommandGroup(click.Group):
    """Turns library errors into one line on stderr (``cloudfiles cp: ...``) and exit status 1
    (see CLIError for CLOUDFILES_ERRORS=stdout).

    Set CLOUDFILES_DEBUG=1 to get the full traceback instead.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            raise  # click handles a closed stdout (`cloudfiles ls ... | head`)
        except KeyboardInterrupt:
            raise click.exceptions.Abort() from None
        except Exception as e:
            if os.environ.get("CLOUDFILES_DEBUG"):
                raise
            name = ctx.invoked_subcommand
            prefix = f"{ctx.command_path} {name}" if name else ctx.command_path
            raise CLIError(describe_error(e), prefix=prefix) from None


def describe_error(error: BaseException) -> str:
    """One line naming the path and the cause."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    text = str(error) or type(error).__name__
    if isinstance(error, (CloudFilesError, FileNotFoundError, ValueError, PermissionError)):
        return text
    return f"{type(error).__name__}: {text}"


def warn(message: str) -> None:
    """A note on stderr that does not change the exit status (not an error: it stays on stderr
    whatever CLOUDFILES_ERRORS says)."""
    click.echo(f"{_prefix_of_context()}: {message}", err=True)


def exit_failed() -> None:
    """End a command whose errors were already reported (``report_error``): exit status 1, or 0
    with CLOUDFILES_ERRORS=stdout."""
    click.get_current_context().exit(failure_status())


def fail_many(problems: list[str]) -> None:
    """Report every problem found while planning, then stop before doing anything."""
    if not problems:
        return
    for problem in problems[:-1]:
        report_error(problem)
    raise CLIError(problems[-1])


def parallel_of(ctx: click.Context) -> int:
    obj = ctx.find_root().obj or {}
    return int(obj.get("parallel", 1))


# -- Dask ---------------------------------------------------------------------------------------

DASK_HELP = ("Run the transfer as tasks of a Dask cluster: a scheduler address "
             "(tcp://host:8786), or 'local' / 'local:N' to start a local cluster of N worker "
             "processes (default: one per core) for this command.")
_LOCAL = re.compile(r"^local(?::(?P<workers>\d+))?$")


@contextlib.contextmanager
def dask_client(address: str | None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``--dask ADDRESS`` (None: no Dask, yields None). ``local`` or
    ``local:N`` starts a LocalCluster of N worker processes, shut down on leaving; otherwise
    ADDRESS is a scheduler's, connected to within Dask's connect timeout
    (``distributed.comm.timeouts.connect``). CLIError for a bad address or without Dask."""
    if address is None:
        yield None
        return
    address = address.strip()
    local = _LOCAL.match(address)
    if local is None and not address:
        raise CLIError("--dask needs a scheduler address (tcp://host:8786) or 'local[:N]'")
    try:
        import distributed
    except ImportError:
        raise CLIError(f"--dask needs Dask's distributed scheduler: {INSTALL_HINT}") from None
    if local is not None:
        workers = int(local["workers"]) if local["workers"] else None
        if workers == 0:
            raise CLIError("--dask local:N needs N >= 1 worker processes")
        with distributed.LocalCluster(n_workers=workers, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            yield client
        return
    if "://" not in address and address.count(":") != 1:
        raise CLIError(f"--dask {address}: not a scheduler address (like tcp://127.0.0.1:8786) "
                       f"nor 'local' / 'local:N'")
    try:
        client = distributed.Client(address)
    except (OSError, ValueError, TypeError) as error:
        raise CLIError(f"--dask {address}: cannot reach a Dask scheduler there ({error})") from None
    with client:
        yield client


def report_lost_workers(recording: Any) -> None:
    """A note on stderr for each worker that left the cluster during a transfer."""
    for worker in getattr(recording, "lost_workers", ()):
        how = {True: "was retired", False: "died"}.get(worker.expected, "left the cluster")
        batches = f" while running {worker.batches} batch(es), which ran again elsewhere" \
            if worker.batches else ""
        warn(f"the Dask worker {worker.address} {how}{batches}")


# -- paths --------------------------------------------------------------------------------------

_WILDCARD = re.compile(r"^(?P<prefix>[^*]*)(?P<stars>\*\*?)(?P<suffix>[^*]*)$")


def join(base: str, name: str) -> str:
    """``base`` + ``/`` + ``name`` for cloudpaths (keys always use ``/``)."""
    if not name:
        return base
    return (base if base.endswith("/") else base + "/") + name


@dataclass
class PathSpec:
    """One path argument, parsed.

    ``base`` is the directory cloudpath the last component lives in, ``name`` that component
    ('' for ``dir/`` and bucket roots); for wildcards ``prefix``/``stars``/``suffix`` split it.
    """

    arg: str
    cloudpath: str
    protocol: str
    base: str
    name: str
    local_path: str | None = None  # the OS path for file:// (without wildcards)
    stars: str = ""
    prefix: str = ""
    suffix: str = ""
    is_root: bool = False

    @property
    def local(self) -> bool:
        return self.protocol == "file"

    @property
    def wildcard(self) -> bool:
        return bool(self.stars)

    @property
    def dirpath(self) -> str:
        """The cloudpath of this path taken as a directory."""
        return join(self.base, self.name)

    @property
    def dirname(self) -> str:
        """The name a directory source gets when it is nested into a destination directory."""
        if self.name:
            return self.name
        if self.local:
            return os.path.basename(self.local_path.rstrip(os.sep)) if self.local_path else ""
        return posixpath.basename(self.base.rstrip("/"))


def parse_path(arg: str) -> PathSpec:
    """Parse a path argument; CLIError (naming it) if it does not parse."""
    try:
        cloudpath = paths.normalize(arg)
        extracted = paths.extract(cloudpath)
    except ValueError as e:
        raise CLIError(f"{arg}: {e}") from None
    protocol = extracted.protocol
    if protocol != "file" and not extracted.path.strip("/"):
        base = cloudpath if cloudpath.endswith("/") else cloudpath + "/"
        return PathSpec(arg, cloudpath, protocol, base, "", is_root=True)
    base, name = paths.dirname(cloudpath), paths.basename(cloudpath)
    local_path = extracted.path if protocol == "file" else None
    if protocol == "file" and base in ("file://", ""):
        base = "file:///"
    spec = PathSpec(arg, cloudpath, protocol, base, name, local_path, is_root=protocol == "file" and local_path == "/")
    if "*" in base:
        raise CLIError(
            f"{arg}: wildcards are only allowed in the last path component "
            f"(for example dir/*, dir/** or dir/*.jpg)"
        )
    if "*" in name:
        match = _WILDCARD.match(name)
        if match is None:
            raise CLIError(
                f"{arg}: unsupported wildcard {name!r}; use PREFIX* (one level), PREFIX** "
                f"(recursive), optionally followed by a suffix such as *.jpg"
            )
        spec.stars, spec.prefix, spec.suffix = match["stars"], match["prefix"], match["suffix"]
        spec.local_path = None
    return spec


def cloudfiles(cloudpath: str, **kwargs: Any) -> CloudFiles:
    return CloudFiles(cloudpath, **kwargs)


def require_writable(spec: PathSpec, consequence: str) -> None:
    """CLIError, before any request, when ``spec`` lives on a read-only protocol (http, https):
    otherwise a destination would first be probed (and fail with a listing error) or a move
    would fail only after copying."""
    cf = cloudfiles(spec.dirpath if not spec.name else spec.base)
    if not getattr(cf.backend, "writable", True):
        raise CLIError(f"{spec.arg} is read-only ({spec.protocol}:// paths cannot be written or deleted); {consequence}")


def dir_exists(spec: PathSpec, **kwargs: Any) -> bool:
    """True if ``spec`` names an existing directory (for object stores: a prefix with keys)."""
    if spec.local:
        return spec.local_path is not None and os.path.isdir(spec.local_path)
    if spec.is_root:
        return True
    return bool(cloudfiles(spec.base, **kwargs).isdir(spec.name))


def file_exists(spec: PathSpec, **kwargs: Any) -> bool:
    if not spec.name:
        return False
    return bool(cloudfiles(spec.base, **kwargs).exists(spec.name))


@dataclass
class Resolved:
    """A source argument resolved into keys under one root cloudpath."""

    spec: PathSpec
    kind: str  # "file" | "dir" | "wild" | "stdin"
    root: str
    keys: list[str] = field(default_factory=list)
    skipped_dirs: list[str] = field(default_factory=list)


def list_files(root: str, prefix: str = "", *, flat: bool = False, recursive_dirs: bool = True,
               suffix: str = "", **kwargs: Any) -> tuple[list[str], list[str]]:
    """Keys under ``root`` starting with ``prefix``; a flat listing expands its sub-directories
    when ``recursive_dirs`` (else returns them as skipped). The suffix filter applies to files,
    and to the names of skipped directories: ``dir/*.jpg`` does not skip (or mention) ``dir/sub/``,
    which the pattern does not name, so a pattern that names nothing is "no files match"."""
    cf = cloudfiles(root, **kwargs)
    keys: list[str] = []
    skipped: list[str] = []
    for entry in cf.list(prefix=prefix, flat=flat):
        if entry.endswith("/"):
            if recursive_dirs:
                keys.extend(cf.list(prefix=entry))
            elif entry[:-1].endswith(suffix):
                skipped.append(entry)
        else:
            keys.append(entry)
    if suffix:
        keys = [k for k in keys if k.endswith(suffix)]
    return keys, skipped


def resolve_sources(specs: Iterable[PathSpec], *, recursive: bool, verb: str,
                    allow_dirs: bool = True, missing_ok: bool = False,
                    **cf_kwargs: Any) -> list[Resolved]:
    """Turn source arguments into keys, or raise a CLIError listing every problem.

    ``verb`` completes "X is a directory (not <verb>); use -r". ``missing_ok`` drops, without a
    word, a path that does not exist and a wildcard that matches nothing (``rm -f``).
    """
    resolved: list[Resolved] = []
    problems: list[str] = []
    for spec in specs:
        if spec.wildcard:
            keys, skipped = list_files(
                spec.base, spec.prefix, flat=spec.stars == "*", recursive_dirs=recursive,
                suffix=spec.suffix, **cf_kwargs,
            )
            if not keys and not skipped:
                if not missing_ok:
                    problems.append(f"{spec.arg}: no files match")
                continue
            resolved.append(Resolved(spec, "wild", spec.base, keys, skipped))
            continue
        is_file = False
        if not spec.local and spec.name and not recursive:
            is_file = file_exists(spec, **cf_kwargs)  # an object named exactly so wins over the prefix
        if not is_file and dir_exists(spec, **cf_kwargs):
            if not allow_dirs:
                problems.append(f"{spec.arg} is a directory")
                continue
            if not recursive:
                problems.append(f"{spec.arg} is a directory (not {verb}); use -r")
                continue
            keys, _ = list_files(spec.dirpath, **cf_kwargs)
            resolved.append(Resolved(spec, "dir", spec.dirpath, keys))
            continue
        if is_file or file_exists(spec, **cf_kwargs):
            resolved.append(Resolved(spec, "file", spec.base, [spec.name]))
            continue
        if not missing_ok:
            problems.append(f"{spec.arg} does not exist")
    fail_many(problems)
    return resolved


def read_stdin_paths() -> list[str]:
    """Newline-separated paths from stdin (blank lines skipped)."""
    stream = click.get_text_stream("stdin")
    return [line.strip() for line in stream if line.strip()]


def group_stdin_paths(lines: list[str]) -> list[tuple[str, list[str]]]:
    """Full cloudpaths -> ``[(root, keys)]``: one group per bucket (or local disk), rooted at the
    deepest directory the group's paths share, so relative structure is kept."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        try:
            cloudpath = paths.normalize(line)
            extracted = paths.extract(cloudpath)
        except ValueError as e:
            raise CLIError(f"{line}: {e}") from None
        if extracted.protocol == "file":
            bucket, key = "file://", extracted.path.replace(os.sep, "/")
        else:
            bucket, key = paths.asbucketpath(extracted), extracted.path
        if not key or key.endswith("/"):
            raise CLIError(f"{line}: a path read from stdin must name a file")
        groups.setdefault(bucket, []).append(key)
    out = []
    for bucket, keys in groups.items():
        common = posixpath.commonpath([posixpath.dirname(k) for k in keys]) if keys else ""
        if bucket == "file://":
            root = "file://" + (common or "/")
            rel = [posixpath.relpath(k, common or "/") for k in keys]
        else:
            root = join(bucket, common) if common else bucket
            rel = [k[len(common) + 1:] if common else k for k in keys]
        out.append((root, rel))
    return out


def expand_brackets(text: str) -> list[str]:
    """``a[bc]d[12]`` -> ``abd1, abd2, acd1, acd2`` (each character in brackets, in order)."""
    parts = re.split(r"(\[[^\]]*\])", text)
    results = [""]
    for part in parts:
        if part.startswith("[") and part.endswith("]") and len(part) >= 2:
            choices = part[1:-1]
            if not choices:
                raise CLIError(f"{text}: empty [] in an expression")
            results = [r + c for r in results for c in choices]
        else:
            if "[" in part or "]" in part:
                raise CLIError(f"{text}: unbalanced [ ] in an expression")
            results = [r + part for r in results]
    return results


# -- sizes and output ---------------------------------------------------------------------------

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_bytes(n: float) -> str:
    """Base-1024 sizes: ``512 B``, ``1.50 KiB``, ``3.00 GiB``."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def write_lines(lines: Iterable[str], chunk: int = 1000) -> int:
    """Print lines to stdout in chunks (fast for millions of lines); returns how many."""
    out = click.get_text_stream("stdout")
    count = 0
    buffer: list[str] = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= chunk:
            out.write("\n".join(buffer) + "\n")
            count += len(buffer)
            buffer = []
    if buffer:
        out.write("\n".join(buffer) + "\n")
        count += len(buffer)
    out.flush()
    return count


def write_bytes(data: bytes) -> None:
    out = click.get_binary_stream("stdout")
    out.write(data)
    out.flush()


# -- progress -----------------------------------------------------------------------------------


def make_bar(show: bool, total: int | None, desc: str) -> Progress:
    """The progress of one command, shared by its library calls (:func:`library_progress`)
    and its own steps (``bar.advance(files, nbytes)``): the progress module's display for
    where it runs (a tqdm bar with bytes on a terminal, a line every few seconds in a log),
    or nothing when ``show`` is false."""
    return Progress([display_for(desc)] if show else None, desc, total)


def library_progress(bar: Progress) -> Any:
    """The ``progress=`` argument to hand the library for ``bar``."""
    return bar if bar.active else False


def prune_empty_dirs(path: str, include_top: bool = True) -> None:
    """Remove empty directories under ``path`` (bottom-up), and ``path`` itself if asked."""
    if not os.path.isdir(path):
        return
    for dirpath, _, _ in os.walk(path, topdown=False):
        if dirpath == path and not include_top:
            continue
        try:
            os.rmdir(dirpath)
        except OSError:
            pass
