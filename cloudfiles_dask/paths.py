"""The cloudpath grammar: parsing, normalising and rewriting paths, and S3 endpoint aliases.

A cloudpath is one of::

    [FORMAT://]PROTOCOL://BUCKET/KEY          gs://bucket/a/b, zarr2://s3://bucket/a
    PROTOCOL://BUCKET/KEY|FORMAT:             gs://bucket/a|zarr2:  (same as zarr2://gs://bucket/a)
    s3://http(s)://HOST[:PORT]/BUCKET/KEY     an S3-compatible endpoint
    ALIAS://BUCKET/KEY                        a named S3 endpoint (matrix://, tigerdata://, ...)
    http(s)://HOST[:PORT]/PATH                plain web server (no bucket)
    middleauth+https://HOST/PATH              CAVE-authenticated https
    file:///abs/path, file://rel/path, PATH   local disk

:func:`extract` splits a cloudpath into an :class:`ExtractedPath`; :func:`normalize` rewrites it into
the canonical spelling that :class:`~cloudfiles_dask.CloudFiles` stores. Every parse failure raises
:class:`~cloudfiles_dask.exceptions.UnsupportedProtocolError`, whose message names the bad input.

Aliases map a protocol name to an S3 endpoint. The official ones are built in; others are added in
process (:func:`add_alias`) or in ``$CLOUD_FILES_DIR/aliases.json`` (:func:`add_persistent_alias`).
That file is read only when a path uses a protocol nobody has heard of, never at import, so code
that sticks to the base protocols never touches it.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
from collections import namedtuple
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from cloudfiles_dask import _dirs
from cloudfiles_dask.exceptions import UnsupportedProtocolError

__all__ = [
    "ALIASES",
    "ALLOWED_FORMATS",
    "BASE_ALLOWED_PROTOCOLS",
    "CLOUD_PROTOCOLS",
    "OFFICIAL_ALIASES",
    "ExtractedPath",
    "add_alias",
    "add_persistent_alias",
    "ascloudpath",
    "asbucketpath",
    "asfilepath",
    "asprotocolpath",
    "basename",
    "dirname",
    "extract",
    "find_common_buckets",
    "get_protocol",
    "normalize",
    "pop_protocol",
    "remove_alias",
    "remove_persistent_alias",
    "resolve_alias",
    "service_provider",
    "to_https_protocol",
    "update_aliases_from_file",
]

ExtractedPath = namedtuple(
    "ExtractedPath", ["format", "protocol", "bucket", "path", "host", "alias"]
)
ExtractedPath.__doc__ = """A parsed cloudpath: ``(format, protocol, bucket, path, host, alias)``.

- ``format``: the data format (``"precomputed"`` unless the path names another).
- ``protocol``: ``gs``, ``s3``, ``file``, ``mem``, ``http``, ``https``, ``middleauth+https`` or
  ``ngauth+https``. Alias paths report ``s3``.
- ``bucket``: the bucket for gs/s3/mem/aliases; None for file and http(s).
- ``path``: the key inside the bucket, the path after the host for http(s), or the absolute local
  path for file.
- ``host``: ``scheme://netloc`` of a custom S3 endpoint, an alias or an http(s) server, else None.
- ``alias``: the alias name the path was written with, else None.
"""

ALLOWED_FORMATS: tuple[str, ...] = (
    "graphene",
    "precomputed",
    "boss",
    "n5",
    "zarr",
    "zarr2",
    "zarr3",
    "brainmaps",
    "deepzoom",
    "nggraph",
    "render",
    "vtk",
    "nifti",
    "dvid",
)
"""Format prefixes (neuroglancer style) that may precede the protocol."""

BASE_ALLOWED_PROTOCOLS: tuple[str, ...] = (
    "gs",
    "s3",
    "file",
    "mem",
    "http",
    "https",
    "middleauth+https",
    "ngauth+https",
)
"""The built-in protocols. Aliases add to these; they can never replace one."""

CLOUD_PROTOCOLS: tuple[str, ...] = ("gs", "s3")
"""Protocols of bucketed object stores. Alias paths extract with protocol ``s3``, so they count."""

_DEFAULT_FORMAT = "precomputed"
_NEUROGLANCER_PRECOMPUTED = "neuroglancer-precomputed"
_HTTP_LIKE = frozenset({"http", "https", "middleauth+https", "ngauth+https"})

OFFICIAL_ALIASES: Mapping[str, Mapping[str, str | None]] = MappingProxyType(
    {
        "matrix": MappingProxyType(
            {"host": "s3://https://s3-hpcrc.rc.princeton.edu/", "acl": None}
        ),
        "tigerdata": MappingProxyType({"host": "s3://https://td.princeton.edu/", "acl": "private"}),
        "nokura": MappingProxyType(
            {"host": "s3://https://c10s.pni.princeton.edu/", "acl": "public-read"}
        ),
    }
)
"""Aliases that ship with the library. They cannot be overridden or removed."""

ALIASES: dict[str, dict] = {name: dict(record) for name, record in OFFICIAL_ALIASES.items()}
"""Every alias known to this process: name -> record (``{"host": ..., "acl": ...}``).

Change it only through :func:`add_alias` / :func:`remove_alias` (which also clear parse caches).
"""

_FORMAT_PREFIX_RE = re.compile(
    r"^(" + "|".join(sorted(ALLOWED_FORMATS, key=len, reverse=True)) + r")://"
)
_FORMAT_TAIL_RE = re.compile(r"\|([A-Za-z0-9][A-Za-z0-9_\-]*):$")
_PROTOCOL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_ENDPOINT_RE = re.compile(r"^(https?)://([^/?#]*)/?")
_BUCKET_RE = re.compile(r"[~\w.\-]+(:\d+)?")
_DRIVE_RE = re.compile(r"^[A-Za-z]:[\\/]")
_SLASH_DRIVE_RE = re.compile(r"^/[A-Za-z]:[\\/]")
_ALIAS_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_ALIAS_HOST_RE = re.compile(r"^s3://(https?://[^/?#\s]+)/$")

_HELP = """\
Accepted cloudpaths:
  [FORMAT://]PROTOCOL://BUCKET/KEY         gs://bucket/a/b, zarr2://s3://bucket/a
  PROTOCOL://BUCKET/KEY|FORMAT:            gs://bucket/a|zarr2:
  s3://http(s)://HOST[:PORT]/BUCKET/KEY    an S3-compatible endpoint
  ALIAS://BUCKET/KEY                       a named S3 endpoint
  http(s)://HOST[:PORT]/PATH               middleauth+https://HOST/PATH
  file:///abs/path, file://relative/path, or a bare local path
FORMAT: {formats}
PROTOCOL: {protocols}
ALIAS: {aliases}"""


# --------------------------------------------------------------------------------------------
# errors


def _help_text() -> str:
    return _HELP.format(
        formats=", ".join(ALLOWED_FORMATS),
        protocols=", ".join(BASE_ALLOWED_PROTOCOLS),
        aliases=", ".join(sorted(ALIASES)) or "(none)",
    )


def _error(cloudpath: object, reason: str) -> UnsupportedProtocolError:
    return UnsupportedProtocolError(
        f"Cannot parse cloudpath {cloudpath!r}: {reason}.\n{_help_text()}"
    )


class _UnknownProtocol(Exception):
    """Internal: the protocol is neither a base protocol nor a known alias (yet)."""

    def __init__(self, protocol: str) -> None:
        super().__init__(protocol)
        self.protocol = protocol


def _as_text(cloudpath: object) -> str:
    if isinstance(cloudpath, os.PathLike):
        cloudpath = os.fspath(cloudpath)
    if not isinstance(cloudpath, str):
        raise _error(cloudpath, f"expected a str, got {type(cloudpath).__name__}")
    if cloudpath == "":
        raise _error(cloudpath, "the path is empty")
    return cloudpath


def _use_windows(windows: bool | None) -> bool:
    return os.name == "nt" if windows is None else bool(windows)


# --------------------------------------------------------------------------------------------
# parsing


def _split_format(text: str) -> tuple[str | None, str, bool]:
    """Peel the format off ``text``: ``(format or None, body, format came as a prefix)``.

    The returned format is the one to write as a prefix when normalising: a
    ``|neuroglancer-precomputed:`` tail is dropped, any other tail becomes the format.
    """
    original = text
    tail_format = None
    tail = _FORMAT_TAIL_RE.search(text)
    if tail is not None:
        name = tail.group(1)
        if name != _NEUROGLANCER_PRECOMPUTED and name not in ALLOWED_FORMATS:
            raise _error(original, f"unknown format tail '|{name}:'")
        tail_format = name
        text = text[: tail.start()]

    prefix = _FORMAT_PREFIX_RE.match(text)
    prefix_format = None
    if prefix is not None:
        prefix_format = prefix.group(1)
        text = text[prefix.end() :]

    if prefix_format and tail_format:
        effective_tail = (
            _DEFAULT_FORMAT if tail_format == _NEUROGLANCER_PRECOMPUTED else tail_format
        )
        if effective_tail != prefix_format:
            raise _error(
                original, f"format prefix {prefix_format!r} conflicts with tail {tail_format!r}"
            )
    if not text:
        raise _error(original, "nothing follows the format")

    if prefix_format:
        return prefix_format, text, True
    if tail_format and tail_format != _NEUROGLANCER_PRECOMPUTED:
        return tail_format, text, False
    return None, text, False


def _expanduser(path: str) -> str:
    try:
        return os.path.expanduser(path)
    except ValueError:  # e.g. "~name" with characters the password database cannot encode
        return path


def _local_path(original: str, raw: str, windows: bool) -> str:
    """The absolute local path named by ``raw`` (the part after ``file://``, or a bare path)."""
    if "\x00" in raw:
        raise _error(original, "a local path cannot contain a NUL character")
    if windows:
        candidate = raw[1:] if _SLASH_DRIVE_RE.match(raw) else raw
        if _DRIVE_RE.match(candidate):
            stripped = candidate.rstrip("\\/")
            return stripped + candidate[2] if len(stripped) == 2 else stripped
    return os.path.abspath(_expanduser(raw))


def _check_no_nested_protocol(original: str, rest: str) -> None:
    if "://" in rest:
        raise _error(original, "a second protocol is nested inside the path")


def _split_bucket(original: str, rest: str) -> tuple[str, str]:
    _check_no_nested_protocol(original, rest)
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise _error(original, "the bucket name is missing")
    if not _BUCKET_RE.fullmatch(bucket):
        raise _error(original, f"invalid bucket name {bucket!r}")
    return bucket, key


def _split_netloc(original: str, rest: str) -> tuple[str, str]:
    match = re.match(r"([^/?#]*)", rest)
    netloc = match.group(1) if match else ""
    if not netloc:
        raise _error(original, "the host name is missing")
    remainder = rest[len(netloc) :]
    path = remainder[1:] if remainder.startswith("/") else remainder
    _check_no_nested_protocol(original, re.split(r"[?#]", path, maxsplit=1)[0])
    return netloc, path


def _alias_endpoint(host: str) -> str:
    """``s3://https://example.com/`` -> ``https://example.com``."""
    match = _ALIAS_HOST_RE.match(host)
    if match is None:  # records are validated on the way in; this guards hand-edited ALIASES
        raise UnsupportedProtocolError(f"Alias host {host!r} is not of the form s3://https://HOST/")
    return match.group(1)


@functools.lru_cache(maxsize=1024)
def _extract_remote(original: str, fmt: str, protocol: str, rest: str) -> ExtractedPath:
    """Parse a non-file path. Pure in its arguments and ALIASES, hence cached."""
    if protocol in ALLOWED_FORMATS:
        raise _error(original, f"format {protocol!r} appears where a protocol belongs")
    if protocol in _HTTP_LIKE:
        scheme = "http" if protocol == "http" else "https"
        netloc, path = _split_netloc(original, rest)
        return ExtractedPath(fmt, protocol, None, path, f"{scheme}://{netloc}", None)
    if protocol == "s3":
        host = None
        endpoint = _ENDPOINT_RE.match(rest)
        if endpoint is not None:
            if not endpoint.group(2):
                raise _error(original, "the S3 endpoint host name is missing")
            host = f"{endpoint.group(1)}://{endpoint.group(2)}"
            rest = rest[endpoint.end() :]
        bucket, key = _split_bucket(original, rest)
        return ExtractedPath(fmt, "s3", bucket, key, host, None)
    if protocol in ("gs", "mem"):
        bucket, key = _split_bucket(original, rest)
        return ExtractedPath(fmt, protocol, bucket, key, None, None)
    record = ALIASES.get(protocol)
    if record is not None:
        bucket, key = _split_bucket(original, rest)
        return ExtractedPath(fmt, "s3", bucket, key, _alias_endpoint(record["host"]), protocol)
    raise _UnknownProtocol(protocol)


def _extract_once(text: str, windows: bool) -> ExtractedPath:
    fmt, body, prefixed = _split_format(text)
    fmt_or_default = fmt or _DEFAULT_FORMAT
    if windows and _DRIVE_RE.match(body):
        return ExtractedPath(
            fmt_or_default, "file", None, _local_path(text, body, True), None, None
        )

    match = _PROTOCOL_RE.match(body)
    if match is None:
        if prefixed:
            raise _error(text, f"the format {fmt!r} must be followed by PROTOCOL://")
        if "://" in body:
            raise _error(text, "it contains '://' but does not start with a valid PROTOCOL://")
        return ExtractedPath(
            fmt_or_default, "file", None, _local_path(text, body, windows), None, None
        )

    protocol, rest = match.group(1), body[match.end() :]
    if protocol == "file":
        _check_no_nested_protocol(text, rest)
        return ExtractedPath(
            fmt_or_default, "file", None, _local_path(text, rest, windows), None, None
        )
    return _extract_remote(text, fmt_or_default, protocol, rest)


def _load_aliases_for_unknown() -> str:
    """Read the alias file after meeting an unknown protocol; returns a note if that failed."""
    try:
        update_aliases_from_file()
    except (OSError, ValueError) as err:
        return f" (the alias file could not be read: {err})"
    return ""


def _with_lazy_aliases(text: str, parse, *args):
    """Run ``parse``; on an unknown protocol, load the alias file and retry once."""
    try:
        return parse(*args)
    except _UnknownProtocol:
        pass
    note = _load_aliases_for_unknown()
    try:
        return parse(*args)
    except _UnknownProtocol as err:
        raise _error(text, f"unknown protocol {err.protocol!r}{note}") from None


def extract(cloudpath: str, windows: bool | None = None) -> ExtractedPath:
    """Parse a cloudpath into an :class:`ExtractedPath`.

    Bare local paths and ``file://`` paths come back absolute (``~`` expanded), without a trailing
    slash; gs/s3/mem keys keep theirs. ``windows`` forces (True) or forbids (False) treating
    ``C:\\...`` drive paths as local; None follows the running OS.

    Raises :class:`UnsupportedProtocolError` for anything it cannot parse: an empty path, an
    unknown protocol (after one look at the alias file), a missing or invalid bucket, or a
    protocol nested inside the path.
    """
    text = _as_text(cloudpath)
    return _with_lazy_aliases(text, _extract_once, text, _use_windows(windows))


def normalize(path: str) -> str:
    """Rewrite a cloudpath into canonical spelling.

    ``|FORMAT:`` tails become ``FORMAT://`` prefixes (``|neuroglancer-precomputed:`` is dropped),
    bare local paths and ``file://`` paths become ``file://`` plus the absolute path (``~`` expanded,
    a trailing separator kept). Other paths are returned as written. Raises
    :class:`UnsupportedProtocolError` for anything :func:`extract` rejects. Idempotent.
    """
    text = _as_text(path)
    extracted = extract(text)  # validates, and names the caller's input in any error
    fmt, body, _ = _split_format(text)
    prefix = f"{fmt}://" if fmt else ""
    if extracted.protocol != "file":
        return prefix + body

    match = _PROTOCOL_RE.match(body)
    raw = body[match.end() :] if match is not None and match.group(1) == "file" else body
    separators = ("/", "\\") if _use_windows(None) else ("/",)
    local = extracted.path
    if raw.endswith(separators) and not local.endswith(separators):
        local += raw[-1]
    return f"{prefix}file://{local}"


def get_protocol(path: str) -> str | None:
    """The protocol ``path`` is written with (an alias name stays an alias name).

    Returns None for a bare local path. Format prefixes and tails are skipped. An unknown
    protocol triggers one read of the alias file, then :class:`UnsupportedProtocolError`.
    """
    return pop_protocol(path)[0]


def pop_protocol(path: str) -> tuple[str | None, str]:
    """Split ``path`` into ``(protocol, rest)``; ``(None, path)`` for a bare local path.

    Any format prefix or tail is dropped. Unknown protocols raise like :func:`get_protocol`.
    """
    text = _as_text(path)
    _, body, _ = _split_format(text)
    if _use_windows(None) and _DRIVE_RE.match(body):
        return None, body
    match = _PROTOCOL_RE.match(body)
    if match is None:
        return None, body

    protocol = match.group(1)

    def known() -> str:
        if protocol in BASE_ALLOWED_PROTOCOLS or protocol in ALIASES:
            return protocol
        raise _UnknownProtocol(protocol)

    return _with_lazy_aliases(text, known), body[match.end() :]


# --------------------------------------------------------------------------------------------
# rendering


def _as_extracted(value: object) -> ExtractedPath:
    if isinstance(value, ExtractedPath):
        return value
    if isinstance(value, (str, os.PathLike)):
        return extract(value)
    raise TypeError(f"expected an ExtractedPath or a cloudpath str, got {type(value).__name__}")


def _netloc(host: str) -> str:
    return host.split("://", 1)[1] if "://" in host else host


def _protocol_root(ep: ExtractedPath) -> str:
    """Everything before the bucket: ``gs://``, ``s3://https://host/``, ``matrix://``."""
    if ep.alias:
        return f"{ep.alias}://"
    if ep.protocol == "s3" and ep.host:
        return f"s3://{ep.host}/"
    return f"{ep.protocol}://"


def _split_local(path: str) -> tuple[str, str]:
    """``/tmp/x/y`` -> ``("/tmp", "x/y")``; ``C:\\tmp\\x`` -> ``("C:\\tmp", "x")``."""
    if _DRIVE_RE.match(path):
        root, rest = path[:3], path[3:].replace("\\", "/")
    else:
        root, rest = "/", path.lstrip("/")
    first, _, key = rest.partition("/")
    return root + first, key


def asprotocolpath(ep: ExtractedPath | str) -> str:
    """The path without its format: ``PROTOCOL://[HOST/]BUCKET/KEY``.

    Aliases are written as ``ALIAS://BUCKET/KEY``, http(s) as the full URL, file as
    ``file://`` plus the absolute path. The result extracts back to the same fields.
    """
    ep = _as_extracted(ep)
    if ep.protocol == "file":
        return f"file://{ep.path}"
    if ep.protocol in _HTTP_LIKE:
        return f"{ep.protocol}://{_netloc(ep.host or '')}/{ep.path}"
    return f"{_protocol_root(ep)}{ep.bucket}/{ep.path}"


def ascloudpath(ep: ExtractedPath | str) -> str:
    """:func:`asprotocolpath` with a ``FORMAT://`` prefix when the format is not the default."""
    ep = _as_extracted(ep)
    prefix = f"{ep.format}://" if ep.format and ep.format != _DEFAULT_FORMAT else ""
    return prefix + asprotocolpath(ep)


def asbucketpath(ep: ExtractedPath | str) -> str:
    """The path of the bucket only: ``gs://bucket/``, ``s3://https://host/bucket/``, ``https://host/``.

    For file paths the first directory stands in for the bucket: ``file:///tmp`` for ``/tmp/x/y``.
    """
    ep = _as_extracted(ep)
    if ep.protocol == "file":
        return "file://" + _split_local(ep.path)[0]
    if ep.protocol in _HTTP_LIKE:
        return f"{ep.protocol}://{_netloc(ep.host or '')}/"
    return f"{_protocol_root(ep)}{ep.bucket}/"


def asfilepath(ep: ExtractedPath | str) -> str:
    """The local OS path of a file path; ValueError for any other protocol."""
    ep = _as_extracted(ep)
    if ep.protocol != "file":
        raise ValueError(f"{asprotocolpath(ep)!r} is not a local path (protocol {ep.protocol!r})")
    return ep.path


def to_https_protocol(cloudpath: ExtractedPath | str) -> str:
    """Rewrite a gs/s3/alias path as the equivalent public https URL (for anonymous reads).

    ``gs://b/k`` -> ``https://storage.googleapis.com/b/k``, ``s3://b/k`` ->
    ``https://s3.amazonaws.com/b/k``, ``s3://https://host/b/k`` and aliases -> ``https://host/b/k``.
    A non-default format prefix is kept. Other paths are returned unchanged (an ExtractedPath
    comes back as its :func:`ascloudpath`).
    """
    if isinstance(cloudpath, ExtractedPath):
        ep, unchanged = cloudpath, None
    else:
        text = _as_text(cloudpath)
        ep, unchanged = extract(text), text

    if ep.protocol == "gs":
        base = "https://storage.googleapis.com"
    elif ep.protocol == "s3":
        base = ep.host
        if base is None and ep.alias:
            base = _alias_endpoint(resolve_alias(ep.alias)["host"])
        base = base or "https://s3.amazonaws.com"
    else:
        return unchanged if unchanged is not None else ascloudpath(ep)

    prefix = f"{ep.format}://" if ep.format and ep.format != _DEFAULT_FORMAT else ""
    return f"{prefix}{base}/{ep.bucket}/{ep.path}"


def service_provider(ep: ExtractedPath | str) -> str:
    """The alias name for alias paths, else the protocol (``gs``, ``s3``, ``file``...)."""
    ep = _as_extracted(ep)
    return ep.alias or ep.protocol


def _split_for_dirname(path: str) -> tuple[str, str, bool]:
    """``(prefix kept verbatim, rest, rest is a local path)``."""
    head = ""
    fmt = _FORMAT_PREFIX_RE.match(path)
    if fmt is not None:
        head, path = fmt.group(0), path[fmt.end() :]
    match = _PROTOCOL_RE.match(path)
    if match is None:
        return head, path, True
    protocol, rest = match.group(1), path[match.end() :]
    head += match.group(0)
    if protocol == "file":
        return head, rest, True
    if protocol == "s3":
        endpoint = _ENDPOINT_RE.match(rest)
        if endpoint is not None:
            head, rest = head + endpoint.group(0), rest[endpoint.end() :]
    elif protocol in _HTTP_LIKE:
        netloc = re.match(r"[^/?#]*/?", rest)
        assert netloc is not None  # the pattern matches the empty string
        head, rest = head + netloc.group(0), rest[netloc.end() :]
    return head, rest, False


def dirname(path: str) -> str:
    """The parent of a cloudpath, keeping its protocol: ``gs://b/a/c`` -> ``gs://b/a``.

    POSIX rules for URLs, the OS's rules for local paths. Like ``posixpath.dirname``,
    ``gs://b/a/`` gives ``gs://b/a`` and a bucket root gives the bare ``gs://``.
    """
    head, rest, local = _split_for_dirname(path)
    return head + (os.path.dirname(rest) if local else posixpath.dirname(rest))


def basename(path: str) -> str:
    """The last component of a cloudpath (empty when it ends in a separator)."""
    _, rest, local = _split_for_dirname(path)
    return os.path.basename(rest) if local else posixpath.basename(rest)


def find_common_buckets(paths: Iterable[str | Mapping] | str | Mapping) -> dict[str, list[dict]]:
    """Group cloudpaths by bucket: ``{bucketpath: [{"path": key, "start": s, "end": e}, ...]}``.

    Items are cloudpath strings or dicts ``{"path", "start", "end"}`` (or ``"byte_range":
    (start, end)``); other dict keys (such as ``tags``) are carried along. Bucket paths are those
    of :func:`asbucketpath`, so for local files the first directory is the bucket:
    ``file:///tmp/x/y`` -> ``file:///tmp`` with key ``x/y``. Order is preserved.
    """
    items = [paths] if isinstance(paths, (str, Mapping, os.PathLike)) else paths
    groups: dict[str, list[dict]] = {}
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            record: dict = {"path": item}
        elif isinstance(item, Mapping):
            if "path" not in item:
                raise ValueError(f"a path dict needs a 'path' entry: {item!r}")
            record = dict(item)
        else:
            raise TypeError(f"expected a cloudpath str or dict, got {type(item).__name__}")

        byte_range = record.pop("byte_range", None)
        if byte_range is not None:
            record["start"], record["end"] = byte_range
        record.setdefault("start", None)
        record.setdefault("end", None)

        ep = extract(record["path"])
        if ep.protocol == "file":
            bucket, key = _split_local(ep.path)
            bucket = "file://" + bucket
        else:
            bucket, key = asbucketpath(ep), ep.path
        record["path"] = key
        groups.setdefault(bucket, []).append(record)
    return groups


# --------------------------------------------------------------------------------------------
# aliases


def _clear_caches() -> None:
    _extract_remote.cache_clear()


def _validated_record(
    name: object, host: object, acl: str | None = None, extra: Mapping | None = None
) -> dict:
    if not isinstance(name, str) or not _ALIAS_NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a valid alias name (letters, digits, '+', '.', '-')")
    if name in BASE_ALLOWED_PROTOCOLS:
        raise ValueError(f"{name!r} is a base protocol and cannot be an alias")
    if name in ALLOWED_FORMATS:
        raise ValueError(f"{name!r} is a format name and cannot be an alias")
    if name in OFFICIAL_ALIASES:
        raise ValueError(f"{name!r} is an official alias and cannot be overridden")
    if not isinstance(host, str):
        raise ValueError(f"the host of alias {name!r} must be a str, got {type(host).__name__}")
    if not host.endswith("/"):
        host += "/"
    if not _ALIAS_HOST_RE.match(host):
        raise ValueError(
            f"the host of alias {name!r} must look like s3://https://HOST[:PORT]/, got {host!r}"
        )
    if acl is not None and not isinstance(acl, str):
        raise ValueError(f"the acl of alias {name!r} must be a str or None")
    record = dict(extra or {})
    record["host"] = host
    record["acl"] = acl
    return record


def resolve_alias(name: str) -> dict:
    """A copy of the record of alias ``name`` (``{"host": "s3://https://.../", "acl": ...}``).

    An unknown name triggers one read of the alias file, then :class:`UnsupportedProtocolError`.
    """

    def lookup() -> dict:
        record = ALIASES.get(name)
        if record is None:
            raise _UnknownProtocol(name)
        return dict(record)

    return _with_lazy_aliases(name, lookup)


def add_alias(name: str, host: str, acl: str | None = None) -> None:
    """Register alias ``name`` for S3 endpoint ``host`` (``s3://https://HOST[:PORT]/``) in this process.

    A trailing "/" is appended to ``host`` if missing. ``acl`` is the default canned ACL for
    writes through the alias. ValueError for base protocol names, format names, official aliases,
    or a malformed host. Re-adding a non-official alias replaces it.
    """
    ALIASES[name] = _validated_record(name, host, acl)
    _clear_caches()


def remove_alias(name: str) -> None:
    """Forget alias ``name`` in this process (no-op if unknown). ValueError for official aliases."""
    if name in OFFICIAL_ALIASES:
        raise ValueError(f"{name!r} is an official alias and cannot be removed")
    ALIASES.pop(name, None)
    _clear_caches()


def _read_alias_file(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"the alias file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"the alias file {path} must hold a JSON object")
    return data


def _write_alias_file(path: str, data: Mapping) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


def update_aliases_from_file() -> dict[str, dict]:
    """Load ``$CLOUD_FILES_DIR/aliases.json`` into :data:`ALIASES`; returns the records it held.

    A missing file means no aliases. Entries named like an official alias are ignored (the
    official one wins). ValueError (naming the file) if the file or an entry is malformed, in
    which case nothing is loaded.
    """
    path = _dirs.alias_file()
    loaded: dict[str, dict] = {}
    for name, entry in _read_alias_file(path).items():
        if name in OFFICIAL_ALIASES:
            continue
        if isinstance(entry, str):
            entry = {"host": entry}
        if not isinstance(entry, dict) or "host" not in entry:
            raise ValueError(f"the alias file {path}: entry {name!r} needs a 'host'")
        extra = {key: value for key, value in entry.items() if key not in ("host", "acl")}
        try:
            loaded[name] = _validated_record(name, entry["host"], entry.get("acl"), extra)
        except ValueError as err:
            raise ValueError(f"the alias file {path}: {err}") from err
    ALIASES.update(loaded)
    _clear_caches()
    return {name: dict(record) for name, record in loaded.items()}


def add_persistent_alias(name: str, host: str, acl: str | None = None) -> None:
    """Like :func:`add_alias`, and also record the alias in ``$CLOUD_FILES_DIR/aliases.json``.

    The file is rewritten atomically (temporary file, then rename). Concurrent writers from
    several processes may lose each other's updates.
    """
    record = _validated_record(name, host, acl)
    path = _dirs.alias_file()
    data = _read_alias_file(path)
    stored: dict = {"host": record["host"]}
    if acl is not None:
        stored["acl"] = acl
    data[name] = stored
    _write_alias_file(path, data)
    ALIASES[name] = record
    _clear_caches()


def remove_persistent_alias(name: str) -> None:
    """Remove alias ``name`` from the alias file and from this process (no-op if absent).

    ValueError for official aliases, or if the alias file is malformed (it is not overwritten).
    """
    if name in OFFICIAL_ALIASES:
        raise ValueError(f"{name!r} is an official alias and cannot be removed")
    path = _dirs.alias_file()
    data = _read_alias_file(path)
    if name in data:
        del data[name]
        _write_alias_file(path, data)
    remove_alias(name)
