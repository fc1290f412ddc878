"""The cloudpath grammar: parsing, normalising and rewriting paths, and aliases.

A cloudpath is one of::

    [FORMAT://]PROTOCOL://BUCKET/KEY          gs://bucket/a/b, zarr2://s3://bucket/a
    PROTOCOL://BUCKET/KEY|FORMAT:             gs://bucket/a|zarr2:  (same as zarr2://gs://bucket/a)
    s3://http(s)://HOST[:PORT]/BUCKET/KEY     an S3-compatible endpoint
    ALIAS://REST                              an alias: its target followed by REST
    http(s)://HOST[:PORT]/PATH                plain web server (no bucket)
    middleauth+https://HOST/PATH              CAVE-authenticated https
    file:///abs/path, file://rel/path         local disk

:func:`extract` splits a cloudpath into an :class:`ExtractedPath`; it needs a ``PROTOCOL://``, as
in the original, so a bare local path (``/tmp/x``, ``data/x``) goes through :func:`normalize`
first, which turns it into ``file://`` plus the absolute path (``CloudFiles`` does this). Every
parse failure raises :class:`~cloudfiles_dask.exceptions.UnsupportedProtocolError`, whose message
names the bad input.

An alias names the start of a cloudpath of any protocol: ``ALIAS://REST`` means the alias's
target followed by ``REST``. The official ones (``matrix``, ``tigerdata``, ``nokura``) point at
S3 endpoints (``s3://https://HOST/``); others are added in process (:func:`add_alias`) or in
``$CLOUD_FILES_DIR/aliases.json`` (:func:`add_persistent_alias`), and may point at
``mem://bucket/``, ``gs://bucket/prefix/``, ``file:///dir/``, an S3 endpoint and so on. An alias
path extracts with the target's protocol and the alias name in ``.alias``. The alias file is read
only when a path uses a protocol nobody has heard of, never at import, so code that sticks to the
base protocols never touches it.
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
from typing import Any

from cloudfiles_dask import _dirs
from cloudfiles_dask.exceptions import UnsupportedProtocolError

__all__ = [
    "ALIASES",
    "ALIAS_FILE",  # noqa: F822 (module __getattr__)
    "ALLOWED_FORMATS",
    "ALLOWED_PROTOCOLS",  # noqa: F822 (module __getattr__)
    "BASE_ALLOWED_PROTOCOLS",
    "CLOUD_PROTOCOLS",
    "OFFICIAL_ALIASES",
    "PRECOMPUTED_SUFFIX",
    "ExtractedPath",
    "add_alias",
    "add_persistent_alias",
    "alias_acl",
    "ascloudpath",
    "asbucketpath",
    "asfilepath",
    "asprotocolpath",
    "basename",
    "dirname",
    "extract",
    "extract_format_protocol",
    "find_common_buckets",
    "get_any_protocol",
    "get_protocol",
    "normalize",
    "pop_protocol",
    "remove_alias",
    "remove_persistent_alias",
    "resolve_alias",
    "service_provider",
    "to_https_protocol",
    "update_aliases_from_file",
    "update_persistent_aliases",
]

ExtractedPath = namedtuple(
    "ExtractedPath", ["format", "protocol", "bucket", "path", "host", "alias"]
)
ExtractedPath.__doc__ = """A parsed cloudpath: ``(format, protocol, bucket, path, host, alias)``.

- ``format``: the data format (``"precomputed"`` unless the path names another).
- ``protocol``: ``gs``, ``s3``, ``file``, ``mem``, ``http``, ``https``, ``middleauth+https`` or
  ``ngauth+https``. An alias path reports the protocol of the alias's target.
- ``bucket``: the bucket for gs/s3/mem; None for file and http(s).
- ``path``: the key inside the bucket, the path after the host for http(s), or the absolute local
  path for file.
- ``host``: ``scheme://netloc`` of a custom S3 endpoint or an http(s) server, else None.
- ``alias``: the alias name the path was written with, else None.
"""

ALLOWED_FORMATS: list[str] = [
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
]
"""Format prefixes (neuroglancer style) that may precede the protocol."""

BASE_ALLOWED_PROTOCOLS: list[str] = [
    "gs",
    "s3",
    "file",
    "mem",
    "http",
    "https",
    "middleauth+https",
    "ngauth+https",
]
"""The built-in protocols. Aliases add to these (:data:`ALLOWED_PROTOCOLS`); they can never
replace one."""

PRECOMPUTED_SUFFIX = "|neuroglancer-precomputed:"
"""The tail neuroglancer writes after precomputed paths; :func:`normalize` drops it."""

OFFICIAL_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "nokura": "s3://https://c10s.pni.princeton.edu/",
        "matrix": "s3://https://s3-hpcrc.rc.princeton.edu/",
        "tigerdata": "s3://https://td.princeton.edu/",
    }
)
"""Aliases that ship with the library: name -> target. They cannot be overridden or removed."""

_OFFICIAL_ACLS: Mapping[str, str] = MappingProxyType(
    {"tigerdata": "private", "nokura": "public-read"}
)

CLOUD_PROTOCOLS: list[str] = ["gs", "s3", *OFFICIAL_ALIASES]
"""Protocols of bucketed object stores, with the official aliases (as in the original)."""

ALIASES: dict[str, str] = dict(OFFICIAL_ALIASES)
"""Every alias known to this process: name -> target (a cloudpath prefix ending in "/").

Change it through :func:`add_alias` / :func:`remove_alias`, which also keep the aliases' ACLs.
"""

_ACLS: dict[str, str | None] = {}  # canned ACL for S3 writes through a non-official alias

_FORMATS = frozenset(ALLOWED_FORMATS)
_BASE = frozenset(BASE_ALLOWED_PROTOCOLS)
_DEFAULT_FORMAT = "precomputed"
_NEUROGLANCER_PRECOMPUTED = "neuroglancer-precomputed"
_HTTP_LIKE = frozenset({"http", "https", "middleauth+https", "ngauth+https"})

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
_S3_ENDPOINT_TARGET_RE = re.compile(r"^s3://(https?://[^/?#\s]+)/$")

_COMPUTED = {
    "ALLOWED_PROTOCOLS": lambda: [*BASE_ALLOWED_PROTOCOLS, *ALIASES],
    "ALIAS_FILE": lambda: _dirs.alias_file(),
}


def __getattr__(name: str) -> Any:
    """``ALLOWED_PROTOCOLS`` (base protocols, then every alias) and ``ALIAS_FILE``
    (``$CLOUD_FILES_DIR/aliases.json``), computed at each lookup so they are never stale."""
    try:
        return _COMPUTED[name]()
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_COMPUTED))

_HELP = """\
Accepted cloudpaths:
  [FORMAT://]PROTOCOL://BUCKET/KEY         gs://bucket/a/b, zarr2://s3://bucket/a
  PROTOCOL://BUCKET/KEY|FORMAT:            gs://bucket/a|zarr2:
  s3://http(s)://HOST[:PORT]/BUCKET/KEY    an S3-compatible endpoint
  ALIAS://REST                             the alias's target followed by REST
  http(s)://HOST[:PORT]/PATH               middleauth+https://HOST/PATH
  file:///abs/path, file://relative/path   (normalize() also takes a bare local path)
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


def _as_text(cloudpath: object, allow_empty: bool = False) -> str:
    if isinstance(cloudpath, os.PathLike):
        cloudpath = os.fspath(cloudpath)
    if not isinstance(cloudpath, str):
        raise _error(cloudpath, f"expected a str, got {type(cloudpath).__name__}")
    if cloudpath == "" and not allow_empty:
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
        if name != _NEUROGLANCER_PRECOMPUTED and name not in _FORMATS:
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
    if windows:  # a drive path is kept as written (a trailing separator too, as in the original)
        candidate = raw[1:] if _SLASH_DRIVE_RE.match(raw) else raw
        if _DRIVE_RE.match(candidate):
            return candidate
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


@functools.lru_cache(maxsize=1024)
def _extract_remote(original: str, fmt: str, protocol: str, rest: str) -> ExtractedPath:
    """Parse a path of a base protocol other than file. Pure in its arguments, hence cached."""
    if protocol in _FORMATS:
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
    bucket, key = _split_bucket(original, rest)  # gs, mem
    return ExtractedPath(fmt, protocol, bucket, key, None, None)


def _alias_target(name: str) -> str:
    """The target of alias ``name``; :class:`_UnknownProtocol` if there is no such alias."""
    target = ALIASES.get(name)
    if target is None:
        raise _UnknownProtocol(name)
    return target


def _parse(text: str, windows: bool, local_ok: bool) -> ExtractedPath:
    """The grammar. ``local_ok``: a path without ``PROTOCOL://`` is a local path (normalize's
    reading) rather than an error (extract's)."""
    fmt, body, prefixed = _split_format(text)
    fmt_or_default = fmt or _DEFAULT_FORMAT
    match = _PROTOCOL_RE.match(body)
    if match is None or (windows and _DRIVE_RE.match(body)):
        if "://" in body and not (windows and _DRIVE_RE.match(body)):
            raise _error(text, "it contains '://' but does not start with a valid PROTOCOL://")
        if not local_ok:
            if prefixed:
                raise _error(text, f"the format {fmt!r} must be followed by PROTOCOL://")
            raise _error(
                text,
                "it has no PROTOCOL:// (write a local path as file://PATH, or pass it through "
                "normalize())",
            )
        return ExtractedPath(
            fmt_or_default, "file", None, _local_path(text, body, windows), None, None
        )

    protocol, rest = match.group(1), body[match.end() :]
    alias = None
    if protocol not in _BASE and protocol not in _FORMATS:
        target = _alias_target(protocol)
        alias, body = protocol, target + rest
        match = _PROTOCOL_RE.match(body)
        if match is None or match.group(1) not in _BASE:
            raise _error(text, f"alias {alias!r} points at {target!r}, not at PROTOCOL://...")
        protocol, rest = match.group(1), body[match.end() :]

    if protocol == "file":
        _check_no_nested_protocol(text, rest)
        extracted = ExtractedPath(
            fmt_or_default, "file", None, _local_path(text, rest, windows), None, None
        )
    else:
        extracted = _extract_remote(text, fmt_or_default, protocol, rest)
    return extracted._replace(alias=alias) if alias else extracted


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


def _known_alias(name: str) -> str | None:
    """The target of alias ``name``, reading the alias file once if it is not known; else None."""
    target = ALIASES.get(name)
    if target is None and name not in _BASE and name not in _FORMATS:
        _load_aliases_for_unknown()
        target = ALIASES.get(name)
    return target


def extract(cloudpath: str, windows: bool | None = None) -> ExtractedPath:
    """Parse a cloudpath into an :class:`ExtractedPath`.

    The path must start with ``[FORMAT://]PROTOCOL://`` (or end in ``|FORMAT:``), as in the
    original: a bare local path raises, so pass it through :func:`normalize` first (an
    ``os.PathLike`` is taken as a local path). ``file://`` paths come back absolute (``~``
    expanded), without a trailing slash; gs/s3/mem keys keep theirs. An alias path extracts with
    the protocol, bucket and host of the alias's target and the alias name in ``.alias``.
    ``windows`` forces (True) or forbids (False) reading ``file://C:\\...`` drive paths; None
    follows the running OS.

    Raises :class:`UnsupportedProtocolError` for anything it cannot parse: an empty path, no
    protocol, an unknown protocol (after one look at the alias file), a missing or invalid
    bucket, or a protocol nested inside the path.
    """
    local_ok = isinstance(cloudpath, os.PathLike)
    text = _as_text(cloudpath)
    return _with_lazy_aliases(text, _parse, text, _use_windows(windows), local_ok)


def normalize(path: str) -> str:
    """Rewrite a cloudpath into canonical spelling.

    ``|FORMAT:`` tails become ``FORMAT://`` prefixes (``|neuroglancer-precomputed:`` is dropped),
    bare local paths and ``file://`` paths become ``file://`` plus the absolute path (``~`` expanded,
    a trailing separator kept). Other paths, alias paths included, are returned as written. Raises
    :class:`UnsupportedProtocolError` for anything :func:`extract` rejects (other than having no
    protocol). Idempotent.
    """
    text = _as_text(path)
    windows = _use_windows(None)
    extracted = _with_lazy_aliases(text, _parse, text, windows, True)  # names the input in errors
    fmt, body, _ = _split_format(text)
    prefix = f"{fmt}://" if fmt else ""
    if extracted.protocol != "file" or extracted.alias:
        return prefix + body

    match = _PROTOCOL_RE.match(body)
    raw = body[match.end() :] if match is not None and match.group(1) == "file" else body
    separators = ("/", "\\") if windows else ("/",)
    local = extracted.path
    if raw.endswith(separators) and not local.endswith(separators):
        local += raw[-1]
    return f"{prefix}file://{local}"


def get_any_protocol(cloudpath: str) -> str | None:
    """The first ``NAME://`` of ``cloudpath``, whatever it is: a format (``zarr2``), a protocol,
    an alias or an unknown name. None if the path does not start with one. Reads no alias file."""
    match = _PROTOCOL_RE.match(_as_text(cloudpath, allow_empty=True))
    return match.group(1) if match else None


def pop_protocol(cloudpath: str) -> tuple[str | None, str]:
    """``(get_any_protocol(cloudpath), the rest after its "://")``, or ``(None, cloudpath)``."""
    text = _as_text(cloudpath, allow_empty=True)
    match = _PROTOCOL_RE.match(text)
    if match is None:
        return None, text
    return match.group(1), text[match.end() :]


def get_protocol(cloudpath: str) -> str | None:
    """The protocol ``cloudpath`` is written with, after any format prefix: a base protocol or an
    alias name (which stays an alias name).

    None for a path without a protocol (a bare local path) and for an unknown protocol, once the
    alias file has been read to look for it.
    """
    text = _as_text(cloudpath, allow_empty=True)
    prefix = _FORMAT_PREFIX_RE.match(text)
    body = text[prefix.end() :] if prefix is not None else text
    match = _PROTOCOL_RE.match(body)
    if match is None:
        return None
    protocol = match.group(1)
    if protocol in _BASE:
        return protocol
    return protocol if _known_alias(protocol) is not None else None


def extract_format_protocol(cloudpath: str, allow_defaults: bool = True) -> tuple:
    """The lenient first step of parsing: ``(format, protocol, host, path, alias)``.

    Nothing is validated and nothing raises for an odd path. The format comes from a prefix or a
    ``|FORMAT:`` tail (``precomputed`` if neither, unless ``allow_defaults`` is False: then None).
    Aliases are resolved (``protocol`` is the target's, ``alias`` the name). ``host`` is
    ``scheme://netloc`` for http(s) and S3 endpoints. ``path`` is the rest, bucket included
    (``gs://b/k`` gives ``b/k``), unresolved for local paths. For a path without a known
    protocol, ``protocol`` is None and ``path`` is the whole path after the format.
    """
    text = _as_text(cloudpath, allow_empty=True)
    fmt = None
    tail = _FORMAT_TAIL_RE.search(text)
    if tail is not None:
        text = text[: tail.start()]
        if tail.group(1) != _NEUROGLANCER_PRECOMPUTED:
            text = f"{tail.group(1)}://{text}"
    prefix = _FORMAT_PREFIX_RE.match(text)
    if prefix is not None:
        fmt, text = prefix.group(1), text[prefix.end() :]
    if fmt is None and allow_defaults:
        fmt = _DEFAULT_FORMAT

    match = _PROTOCOL_RE.match(text)
    if match is None:
        return fmt, None, None, text, None
    protocol, rest = match.group(1), text[match.end() :]
    alias = None
    if protocol not in _BASE:
        target = _known_alias(protocol)
        if target is None:
            return fmt, None, None, text, None
        retarget = _PROTOCOL_RE.match(target + rest)
        if retarget is None or retarget.group(1) not in _BASE:
            return fmt, None, None, text, None
        alias, protocol, rest = protocol, retarget.group(1), (target + rest)[retarget.end() :]

    host = None
    if protocol == "s3":
        endpoint = _ENDPOINT_RE.match(rest)
        if endpoint is not None:
            host, rest = f"{endpoint.group(1)}://{endpoint.group(2)}", rest[endpoint.end() :]
    elif protocol in _HTTP_LIKE:
        netloc = re.match(r"[^/?#]*", rest).group(0)  # type: ignore[union-attr]
        scheme = "http" if protocol == "http" else "https"
        host, rest = f"{scheme}://{netloc}", rest[len(netloc) :].removeprefix("/")
    return fmt, protocol, host, rest, alias


# --------------------------------------------------------------------------------------------
# rendering


def _as_extracted(value: object) -> ExtractedPath:
    if isinstance(value, ExtractedPath):
        return value
    if isinstance(value, (str, os.PathLike)):
        return extract(normalize(value))
    raise TypeError(f"expected an ExtractedPath or a cloudpath str, got {type(value).__name__}")


def _netloc(host: str) -> str:
    return host.split("://", 1)[1] if "://" in host else host


def _renders_as_alias_root(ep: ExtractedPath) -> bool:
    """S3 paths through an alias of an endpoint (matrix://) are written ``ALIAS://BUCKET/KEY``."""
    if not ep.alias or ep.protocol != "s3":
        return False
    target = ALIASES.get(ep.alias)
    return target is None or _S3_ENDPOINT_TARGET_RE.match(target) is not None


def _protocol_root(ep: ExtractedPath) -> str:
    """Everything before the bucket: ``gs://``, ``s3://https://host/``, ``matrix://``."""
    if _renders_as_alias_root(ep):
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


def _plain_protocolpath(ep: ExtractedPath) -> str:
    """The protocol path of ``ep`` ignoring its alias."""
    if ep.protocol == "file":
        return f"file://{ep.bucket}/{ep.path}" if ep.bucket else f"file://{ep.path}"
    if ep.protocol in _HTTP_LIKE:
        rest = f"{ep.bucket}/{ep.path}" if ep.bucket else ep.path
        return f"{ep.protocol}://{_netloc(ep.host or '')}/{rest}"
    if ep.protocol == "s3" and ep.host:
        return f"s3://{ep.host}/{ep.bucket}/{ep.path}"
    return f"{ep.protocol}://{ep.bucket}/{ep.path}"


def asprotocolpath(ep: ExtractedPath | str) -> str:
    """The path without its format: ``PROTOCOL://[HOST/]BUCKET/KEY``.

    Alias paths are written ``ALIAS://REST`` so that they read back to the same place
    (``matrix://bucket/key``; for an alias of ``mem://b/``, ``ALIAS://key``); a path no longer
    under its alias's target is written without the alias. http(s) keeps the full URL, file is
    ``file://`` plus the absolute path. The result extracts back to the same fields.
    """
    ep = _as_extracted(ep)
    if _renders_as_alias_root(ep):
        return f"{ep.alias}://{ep.bucket}/{ep.path}"
    plain = _plain_protocolpath(ep)
    target = ALIASES.get(ep.alias) if ep.alias else None
    if target is not None:
        if plain.startswith(target):
            return f"{ep.alias}://{plain[len(target):]}"
        if plain + "/" == target:
            return f"{ep.alias}://"
    return plain


def ascloudpath(ep: ExtractedPath | str) -> str:
    """:func:`asprotocolpath` with its ``FORMAT://`` prefix whenever there is a format
    (``precomputed://gs://b/k`` for ``gs://b/k``, as in the original)."""
    ep = _as_extracted(ep)
    prefix = f"{ep.format}://" if ep.format else ""
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
    return f"{ep.bucket}/{ep.path}" if ep.bucket else ep.path


_GCS_HTTPS = "https://storage.googleapis.com"
_S3_HTTPS = "https://s3.amazonaws.com"


def _https_base(ep: ExtractedPath) -> str | None:
    """The https server of a gs/s3 path (None for other protocols)."""
    if ep.protocol == "gs":
        return _GCS_HTTPS
    if ep.protocol == "s3":
        if ep.host:
            return ep.host
        endpoint = _S3_ENDPOINT_TARGET_RE.match(ALIASES.get(ep.alias, "")) if ep.alias else None
        return endpoint.group(1) if endpoint else _S3_HTTPS
    return None


def to_https_protocol(cloudpath: ExtractedPath | str) -> ExtractedPath | str:
    """Rewrite a gs/s3 path (aliases included) as the equivalent public https URL, for
    anonymous reads: ``gs://b/k`` -> ``https://storage.googleapis.com/b/k``, ``s3://b/k`` ->
    ``https://s3.amazonaws.com/b/k``, ``s3://https://host/b/k`` and ``matrix://b/k`` ->
    ``https://host/b/k``.

    A str gives a str: the format prefix and tail are kept as written, an alias is replaced by
    its target, other paths come back as they are. An :class:`ExtractedPath` gives an
    ExtractedPath (that of the URL, or the same one for other protocols).
    """
    if isinstance(cloudpath, ExtractedPath):
        base = _https_base(cloudpath)
        if base is None:
            return cloudpath
        rest = f"{cloudpath.bucket}/{cloudpath.path}" if cloudpath.path else cloudpath.bucket
        prefix = f"{cloudpath.format}://" if cloudpath.format else ""
        return extract(f"{prefix}{base}/{rest}")

    alias, text = resolve_alias(cloudpath)
    prefix = _FORMAT_PREFIX_RE.match(text)
    head, body = (prefix.group(0), text[prefix.end() :]) if prefix else ("", text)
    protocol, rest = pop_protocol(body)
    if protocol == "gs":
        return f"{head}{_GCS_HTTPS}/{rest}"
    if protocol == "s3":
        return head + (rest if _ENDPOINT_RE.match(rest) else f"{_S3_HTTPS}/{rest}")
    return text


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

    Items are cloudpath strings (bare local paths too) or dicts ``{"path", "start", "end"}`` (or
    ``"byte_range": (start, end)``); other dict keys (such as ``tags``) are carried along. Bucket
    paths are those of :func:`asbucketpath`, so for local files the first directory is the
    bucket: ``file:///tmp/x/y`` -> ``file:///tmp`` with key ``x/y``. Order is preserved.
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

        ep = _as_extracted(record["path"])
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


def _validated_alias(name: object, host: object, acl: object = None) -> str:
    """``host`` with a trailing "/" if ``name`` may be an alias of it; ValueError otherwise."""
    if not isinstance(name, str) or not _ALIAS_NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a valid alias name (letters, digits, '+', '.', '-')")
    if name in _BASE:
        raise ValueError(f"{name!r} is a base protocol and cannot be an alias")
    if name in _FORMATS:
        raise ValueError(f"{name!r} is a format name and cannot be an alias")
    if name in OFFICIAL_ALIASES:
        raise ValueError(f"{name!r} is an official alias and cannot be overridden")
    if not isinstance(host, str) or not host:
        raise ValueError(f"the target of alias {name!r} must be a cloudpath str, got {host!r}")
    if not host.endswith("/"):
        host += "/"
    match = _PROTOCOL_RE.match(host)
    if match is None or match.group(1) not in _BASE:
        raise ValueError(
            f"the target of alias {name!r} must start with a base protocol "
            f"({', '.join(BASE_ALLOWED_PROTOCOLS)}), e.g. s3://https://HOST[:PORT]/, "
            f"mem://bucket/ or gs://bucket/prefix/; got {host!r}"
        )
    try:
        _parse(host + "x", _use_windows(None), False)
    except UnsupportedProtocolError as err:
        raise ValueError(f"the target of alias {name!r} is not a usable cloudpath: {err}") from None
    if acl is not None and not isinstance(acl, str):
        raise ValueError(f"the acl of alias {name!r} must be a str or None")
    return host


def _set_alias(name: str, host: str, acl: str | None) -> None:
    ALIASES[name] = host
    if acl is None:
        _ACLS.pop(name, None)
    else:
        _ACLS[name] = acl


def resolve_alias(cloudpath: str) -> tuple[str | None, str]:
    """``(alias, cloudpath with the alias replaced by its target)``, or ``(None, cloudpath)``
    when it does not use an alias: ``matrix://b/k`` -> ``("matrix",
    "s3://https://s3-hpcrc.rc.princeton.edu/b/k")``. A format prefix or tail is kept. An unknown
    protocol triggers one read of the alias file."""
    text = _as_text(cloudpath, allow_empty=True)
    prefix = _FORMAT_PREFIX_RE.match(text)
    head, body = (prefix.group(0), text[prefix.end() :]) if prefix else ("", text)
    protocol, rest = pop_protocol(body)
    if protocol is None or protocol in _BASE or protocol in _FORMATS:
        return None, text
    target = _known_alias(protocol)
    if target is None:
        return None, text
    return protocol, head + target + rest


def alias_acl(name: str) -> str | None:
    """The canned ACL for S3 writes through alias ``name`` (``tigerdata``: private, ``nokura``:
    public-read, others: what :func:`add_alias` or the alias file gave), or None for the
    backend's default. Reads the alias file once if ``name`` is not known."""
    if name in _OFFICIAL_ACLS:
        return _OFFICIAL_ACLS[name]
    if _known_alias(name) is None:
        return None
    return _ACLS.get(name)


def add_alias(alias: str, host: str, acl: str | None = None) -> None:
    """Make ``alias://REST`` mean ``host`` followed by ``REST``, in this process.

    ``host`` is a cloudpath prefix of any base protocol: an S3 endpoint
    (``s3://https://HOST[:PORT]/``), a bucket or a directory (``mem://bucket/``,
    ``gs://bucket/prefix/``, ``file:///data/``)... A trailing "/" is appended if missing.
    ``acl`` is the canned ACL for S3 writes through the alias. ValueError for base protocol
    names, format names, official aliases, or a target that is not a cloudpath. Re-adding a
    non-official alias replaces it.
    """
    _set_alias(alias, _validated_alias(alias, host, acl), acl)
    _clear_caches()


def remove_alias(alias: str) -> None:
    """Forget ``alias`` in this process (no-op if unknown). ValueError for official aliases."""
    if alias in OFFICIAL_ALIASES:
        raise ValueError(f"{alias!r} is an official alias and cannot be removed")
    ALIASES.pop(alias, None)
    _ACLS.pop(alias, None)
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
    """Load ``$CLOUD_FILES_DIR/aliases.json`` into :data:`ALIASES`; returns the entries it held
    (``{name: {"host": target, "acl": acl, ...}}``).

    The file holds ``{name: {"host": target[, "acl": acl]}}`` (a bare target string is accepted
    too). A missing file means no aliases. Entries named like an official alias are ignored (the
    official one wins). ValueError (naming the file) if the file or an entry is malformed, in
    which case nothing is loaded. The file is read again at each call, so aliases that another
    process saved are seen.
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
        try:
            host = _validated_alias(name, entry["host"], entry.get("acl"))
        except ValueError as err:
            raise ValueError(f"the alias file {path}: {err}") from err
        loaded[name] = {**entry, "host": host, "acl": entry.get("acl")}
    for name, record in loaded.items():
        _set_alias(name, record["host"], record["acl"])
    _clear_caches()
    return {name: dict(record) for name, record in loaded.items()}


def update_persistent_aliases() -> dict[str, dict]:
    """The original's other name for :func:`update_aliases_from_file`."""
    return update_aliases_from_file()


def add_persistent_alias(alias: str, host: str, acl: str | None = None) -> None:
    """Like :func:`add_alias`, and also record the alias in ``$CLOUD_FILES_DIR/aliases.json``.

    The file is rewritten atomically (temporary file, then rename). Concurrent writers from
    several processes may lose each other's updates.
    """
    host = _validated_alias(alias, host, acl)
    path = _dirs.alias_file()
    data = _read_alias_file(path)
    stored: dict = {"host": host}
    if acl is not None:
        stored["acl"] = acl
    data[alias] = stored
    _write_alias_file(path, data)
    _set_alias(alias, host, acl)
    _clear_caches()


def remove_persistent_alias(alias: str) -> None:
    """Remove ``alias`` from the alias file and from this process (no-op if absent).

    ValueError for official aliases, or if the alias file is malformed (it is not overwritten).
    """
    if alias in OFFICIAL_ALIASES:
        raise ValueError(f"{alias!r} is an official alias and cannot be removed")
    path = _dirs.alias_file()
    data = _read_alias_file(path)
    if alias in data:
        del data[alias]
        _write_alias_file(path, data)
    remove_alias(alias)
