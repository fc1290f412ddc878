"""s3:// — Amazon S3 and S3-compatible services (``s3://http(s)://HOST/``, ``endpoint=``, aliases).

Cost and behaviour, plainly:

- Two transports. The data path — whole-object and ranged-for-speed GETs, downloads to a file
  from the start, HEADs for exists/size, single PUTs and the parts of multipart uploads — goes
  through the lean path of :mod:`._s3wire`: SigV4-signed HTTP/1.1 requests on the calling
  thread, at a small fraction of botocore's CPU per request under the GIL (figures in
  docs/performance.md). It serves every key, gevent's green threads and
  forked children (connections are per process), explicit keys (secrets, secrets files,
  ``AWS_*`` variables) and ``no_sign_request``. botocore does the rest: ranged and resumed
  reads, ``head()``, batch deletes, copies, the create/complete/abort requests of multipart
  uploads and the sweep's requests for unfinished ones (listing pages go over the lean path
  too, parsed with ElementTree: a third of botocore's CPU per key); and everything when
  ``CLOUD_FILES_TRANSPORT=sdk`` is set or the credentials come only from botocore's default
  chain (profiles, instance roles). Every single
  PUT carries Content-MD5 on both paths, so the server refuses bytes damaged on the way; parts
  are checked by their ETags (below).
- One botocore client per (endpoint, region, credentials fingerprint, unsigned, timeouts) per
  process, shared by every backend that matches, made on first use and again after a fork. The
  connection pool holds ``max(10, num_threads) + HELPER_THREADS`` connections (grown if a later
  user needs more). botocore does not retry (``total_max_attempts=1``): the engine owns the
  retry policy.
- Every upload of bytes in memory (one PUT or multipart) stores the crc32c of the stored bytes
  as user metadata, ``x-amz-meta-cfdask-crc32c`` (:data:`CRC_METADATA`; a server-side copy
  keeps it). A full read of an object that has it is checked with it: a tenth of md5's CPU,
  and, unlike an md5 ETag, it does not need the bytes in order. Other objects (other tools'
  uploads, and file handles above the threshold, whose crc32c would cost a second read of the
  file before the upload) are checked by ETag as before. Hazard: a tool that rewrites an
  object's bytes but copies its user metadata leaves a stale crc32c, and reads of it fail with
  CRC32CIntegrityError (an error, never wrong bytes).
- A full read of an object of :data:`RANGED_READ_THRESHOLD` bytes or more that carries the
  crc32c is read as ranges of :data:`RANGE_PART` bytes, :data:`RANGES_IN_FLIGHT` at once: the
  first from the GET already open, the others by ranged GETs (a ``200`` with a Content-Range,
  as rclone answers a Range, is accepted), each required to have the first one's ETag (and
  sent ``If-Match``); if the object is replaced, shortened or deleted meanwhile the whole read
  starts again. A range still failing after its own retries is not retried by the engine
  again; a server that ignores Range makes the backend read large objects as one stream from
  then on. To memory the ranges land in place in one buffer that becomes the bytes returned
  (the object is held once); to a file they are written in order through a few part-sized
  buffers, :data:`WRITE_PIECE` bytes per write. The threads come from the engine's reusable
  pool, at most :data:`HELPER_THREADS` per process (shared with multipart uploads): a read that
  finds none free is one stream.
- A full read is one GET (no HEAD); it returns the ETag for the engine's integrity check.
  Ranged reads are one GET with a ``Range`` header; only a range that needs the size (a negative
  ``end``, or a negative ``start`` with an ``end``) costs a HEAD first, and an empty range costs a
  HEAD only (to tell "empty" from "missing"). A body shorter than its Content-Length raises a
  retryable error; short data is never returned.
- A download to a file (``stream_to``) is one GET whose body is written out
  :data:`STREAM_CHUNK` bytes at a time; a resumed one asks ``Range: bytes=N-`` and reports the
  whole object's ETag and size (a HEAD only when nothing is left past N).
- A write up to ``composite_upload_threshold`` bytes is one PUT with Content-MD5, so the server
  rejects bytes damaged on the way. Larger bytes, and file handles larger than the threshold,
  go up as a multipart upload in parts of ``max(8 MiB, ceil(size / 10000))``, each checked by
  comparing the ETag the server answers with its md5; if one differs (damaged on the way, or
  part ETags that are not md5s, as under SSE-KMS) the upload is aborted and sent again with
  Content-MD5 on every part, as are later uploads to that bucket in the process, and streams
  that cannot be rewound (pipes). At most :data:`PARTS_IN_FLIGHT` parts are in flight on the
  process's helper threads (so memory stays near ``PARTS_IN_FLIGHT * part size`` per call; one by one on the calling
  thread when no helper is free, and under gevent monkey-patching). A file
  handle is read part by part, never whole. Any failure, KeyboardInterrupt included, aborts the
  upload, so a partial object is never visible under the key. A process killed mid-upload
  leaves the upload unfinished: its parts are stored (and billed) until it is aborted.
  ``find_debris`` lists such uploads under a prefix (ListMultipartUploads, then ListParts for
  each one's size and last activity) and ``remove_debris`` aborts them (the sweep); S3 keeps
  nothing that tells whose an upload is, so only this process's own running uploads are known
  to be live: give the sweep an age longer than any upload's pause between parts.
  A stream whose size cannot be known (a pipe) is read one part at a time: if it ends within the
  first part and within the threshold it is one PUT, otherwise it is a multipart upload.
- Content-Encoding is written in canonical form (``bz2``, not ``bzip2``); on read ``aws-chunked``
  is dropped and spellings are normalised. An encoding this library does not know is passed on
  lower-cased, so decoding it fails with a clear error while ``raw=True`` still works.
- Server-side copies (``copy_to``) need the same endpoint, alias and credentials; objects above
  :data:`MULTIPART_COPY_THRESHOLD` (5 GB, the single-request limit) use UploadPartCopy.
- ``no_sign_request=True`` sends unsigned requests (public buckets). ``request_payer="requester"``
  adds ``x-amz-request-payer: requester`` to every request.

Errors name the object (``s3://bucket/key``) and the service's answer. 401/403 raise
:class:`~cloudfiles_dask.exceptions.AuthorizationError`; other failures raise :class:`S3Error`,
chained to the transport's error (botocore's, or the lean path's :class:`._s3wire.Answer`).
Secrets never appear in messages, reprs or logs.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.client
import io
import logging
import os
import re
import socket
import ssl
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from operator import itemgetter
from typing import Any, BinaryIO, NoReturn
from urllib.parse import unquote_plus

from .. import _retry, compression
from .. import secrets as _secrets
from .._checksums import (
    MD5_KERNEL,
    MD5_LANES,
    MD5_LANES_FEWEST,
    crc32c_b64,
    digest_text,
    new_digest,
    part_md5s,
    preload_crc32c,
)
from ..exceptions import (
    AuthorizationError,
    CloudFilesError,
    StorageError,
    UnsupportedCompressionType,
)
from ..paths import alias_acl, asprotocolpath
from . import _http1, _s3wire
from ._http1 import SkipWriter
from .base import Backend, BackendOptions, Blob, Debris, PutMeta

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Smallest part of a multipart upload (boto3's and the aws cli's size, so ETags are familiar).
MIN_PART_SIZE = 8 * MiB
#: S3 allows at most this many parts per multipart upload.
MAX_PARTS = 10_000
#: Parts of one upload being sent at once (memory per upload is about this many parts).
PARTS_IN_FLIGHT = 4
#: Server-side part copies of one multipart copy in flight at once (no bytes pass through here).
COPY_PARTS_IN_FLIGHT = 8
#: Objects larger than this are copied with UploadPartCopy (5 GB is S3's CopyObject limit).
MULTIPART_COPY_THRESHOLD = 5 * 1000**3
#: Target part size of a multipart copy; parts are then made equal (see ``_copy_part_size``).
COPY_PART_SIZE = 512 * MiB
#: Keys per ListObjectsV2 page.
LIST_PAGE_SIZE = 1000
#: Unfinished multipart uploads per ListMultipartUploads page (the most S3 gives).
UPLOADS_PAGE_SIZE = 1000
#: ListParts / AbortMultipartUpload requests of one sweep in flight at once (helper threads).
DEBRIS_REQUESTS_IN_FLIGHT = 8
#: Bytes read from a response body at a time when streaming a download into a file.
STREAM_CHUNK = 1 * MiB
DEFAULT_CONTENT_TYPE = "application/octet-stream"
#: The canned ACL uploads and copies carry unless an alias names its own, as in the original:
#: without it, an object written into another account's bucket that uses object ACLs belongs
#: to the writer, and the bucket's owner cannot read it.
DEFAULT_ACL = "bucket-owner-full-control"
#: User metadata (``x-amz-meta-cfdask-crc32c``) holding the base64 crc32c of the stored bytes.
#: Written with every upload of bytes in memory; a full read checks it instead of the ETag's
#: md5 (a tenth of the CPU), which also lets a large read be split into parallel ranges.
CRC_METADATA = "cfdask-crc32c"
#: Full reads of objects at least this large that carry :data:`CRC_METADATA` are fetched as
#: ranges of :data:`RANGE_PART` bytes, :data:`RANGES_IN_FLIGHT` at once.
RANGED_READ_THRESHOLD = 32 * MiB
RANGE_PART = 8 * MiB
RANGES_IN_FLIGHT = 4
#: Bytes per write when a ranged read goes to a file: part-sized writes cost the kernel several
#: times the CPU of the same bytes written in smaller pieces (docs/performance.md).
WRITE_PIECE = 256 * 1024
#: Threads one process lends to ranged reads and to the parts of multipart uploads and copies
#: at once, however many run: a read that finds none free is one stream, an upload sends its
#: parts one by one on its own thread (many calls at once are parallel already).
HELPER_THREADS = 8
_CRC_B64 = re.compile(r"^[A-Za-z0-9+/]{6}==$")

_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AccountProblem",
        "InvalidSecurity",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "RequestTimeout",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        # the bytes were damaged or cut short on the way: sending them again is the cure
        "BadDigest",
        "IncompleteBody",
        "XAmzContentSHA256Mismatch",
    }
)
_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})


#: PUT parameters (botocore names) and the headers that carry them on the lean path.
_PUT_HEADERS = {"ContentType": "Content-Type", "ContentEncoding": "Content-Encoding",
                "CacheControl": "Cache-Control", "StorageClass": "x-amz-storage-class",
                "ACL": "x-amz-acl"}
_CRC_HEADER = "x-amz-meta-" + CRC_METADATA


def _put_headers(params: dict) -> dict[str, str]:
    """The request headers of a lean-path PUT with botocore-style ``params``."""
    headers = {_PUT_HEADERS[name]: value for name, value in params.items() if name in _PUT_HEADERS}
    for name, value in params.get("Metadata", {}).items():
        headers["x-amz-meta-" + name] = value
    return headers


def _length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _crc_of(headers: dict[str, str]) -> str | None:
    """The stored crc32c in a lean-path answer's headers, if any."""
    value = headers.get(_CRC_HEADER)
    return value if value and _CRC_B64.match(value) else None


def _etag_of(headers: dict[str, str]) -> str | None:
    return (headers.get("etag") or "").strip('"') or None


class S3Error(StorageError):
    """An S3 request failed. ``transient`` says whether repeating it may succeed; the botocore
    error is the ``__cause__``."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


# -- clients: one per process and configuration -------------------------------------------------
_CLIENTS: dict[tuple, tuple[int, Any]] = {}
_CLIENTS_LOCK = threading.Lock()
_SESSION: list[Any] = [None, -1]  # [botocore session, pid]


def _forget_clients_after_fork() -> None:
    # The child must not reuse the parent's sockets, nor wait on a lock a parent thread held.
    global _CLIENTS, _CLIENTS_LOCK
    _CLIENTS = {}
    _CLIENTS_LOCK = threading.Lock()
    _SESSION[:] = [None, -1]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_clients_after_fork)


def clear_clients() -> None:
    """Forget every cached client of this process (the next request makes new ones);
    :meth:`S3Backend.reset_process_state`."""
    with _CLIENTS_LOCK:
        _CLIENTS.clear()


def _make_client(endpoint: str | None, region: str, creds: dict, unsigned: bool, pool: int,
                 timeouts: tuple[float, float]) -> Any:
    import botocore
    import botocore.session
    from botocore.config import Config

    pid = os.getpid()
    if _SESSION[1] != pid:
        session = botocore.session.get_session()
        # dateutil's parsing of every LastModified would be most of a listing's client CPU
        session.get_component("response_parser_factory").set_parser_defaults(
            timestamp_parser=_timestamp)
        _SESSION[:] = [session, pid]
    config = {
        "max_pool_connections": pool,
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        "connect_timeout": timeouts[0],
        "read_timeout": timeouts[1],
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
        "parameter_validation": False,  # our own calls are well-formed; saves CPU per request
        "user_agent_extra": "cloudfiles-dask",
    }
    if endpoint:
        config["s3"] = {"addressing_style": "path"}
    if unsigned:
        config["signature_version"] = botocore.UNSIGNED
    kwargs: dict[str, Any] = {"region_name": region, "config": Config(**config)}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if not unsigned and creds.get("AWS_ACCESS_KEY_ID"):
        kwargs["aws_access_key_id"] = creds["AWS_ACCESS_KEY_ID"]
        kwargs["aws_secret_access_key"] = creds.get("AWS_SECRET_ACCESS_KEY")
        kwargs["aws_session_token"] = creds.get("AWS_SESSION_TOKEN")
    return _SESSION[0].create_client("s3", **kwargs)


def get_client(endpoint: str | None, region: str, creds: dict, unsigned: bool, pool: int) -> Any:
    """The shared client of this process for this configuration (made if needed).

    Clients are keyed by a fingerprint of the credentials, never the credentials themselves."""
    timeouts = _retry.timeouts()
    fingerprint = "unsigned" if unsigned else _secrets.fingerprint(
        {k: v for k, v in creds.items() if k != "AWS_DEFAULT_REGION"}
    )
    # without an endpoint, botocore resolves one from its configuration, which the environment
    # may change between two clients of one process
    configured = None if endpoint else (os.environ.get("AWS_ENDPOINT_URL_S3"),
                                        os.environ.get("AWS_ENDPOINT_URL"))
    key = (endpoint, region, fingerprint, unsigned, os.getpid(), timeouts, configured)
    with _CLIENTS_LOCK:
        found = _CLIENTS.get(key)
        if found is not None and found[0] >= pool:
            return found[1]
        pool = max(pool, found[0]) if found is not None else pool
        client = _make_client(endpoint, region, creds, unsigned, pool, timeouts)
        _CLIENTS[key] = (pool, client)
        log.debug("new S3 client for endpoint=%s region=%s credentials=%s unsigned=%s pool=%d",
                  endpoint or "aws", region, fingerprint, unsigned, pool)
        return client


# -- small helpers --------------------------------------------------------------------------------
def _timestamp(value: Any) -> datetime:
    """botocore's timestamps, parsed by the standard library where their form allows: ISO 8601
    in XML bodies (``2026-11-24T22:35:51.000Z``), RFC 7231 dates in headers; anything else goes to
    botocore's own (dateutil) parser, which costs about a hundred times more per value."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            try:
                return parsedate_to_datetime(value)
            except (TypeError, ValueError):
                pass
    from botocore.utils import parse_timestamp

    return parse_timestamp(value)


def _md5_b64(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


def _with_crc(params: dict, data: bytes | bytearray | memoryview) -> dict:
    """``params`` with the crc32c of ``data`` as user metadata (:data:`CRC_METADATA`)."""
    return {**params, "Metadata": {**params.get("Metadata", {}), CRC_METADATA: crc32c_b64(data)}}


def _stored_crc(metadata: dict | None) -> str | None:
    """The crc32c an upload stored in the object's user metadata, if any. Header names are
    case-insensitive, and servers spell them differently."""
    if not metadata:
        return None
    for name, value in metadata.items():
        if name.lower() == CRC_METADATA and isinstance(value, str) and _CRC_B64.match(value):
            return value
    return None


def _checksum(etag: str | None, metadata: dict | None) -> tuple[str | None, str | None]:
    """``(hash, hash_type)`` a full read is checked with: the stored crc32c, else the ETag."""
    crc = _stored_crc(metadata)
    if crc:
        return crc, "crc32c"
    etag = etag.strip('"') if etag else None
    return (etag, "etag") if etag else (None, None)


_helpers_lock = threading.Lock()
_helpers_free = [HELPER_THREADS]


@contextlib.contextmanager
def _helpers(wanted: int) -> Iterator[int]:
    """Borrow up to ``wanted`` of this process's free :data:`HELPER_THREADS` (the engine's
    reusable threads that large reads and multipart uploads fan out on) for the ``with``
    block; how many were granted: 0 when fewer than two are free (one helper would do no
    better than the calling thread alone, and would be kept from others meanwhile)."""
    with _helpers_lock:
        granted = min(wanted, _helpers_free[0])
        if granted < 2:
            granted = 0
        _helpers_free[0] -= granted
    try:
        yield granted
    finally:
        with _helpers_lock:
            _helpers_free[0] += granted


def _range_helpers(size: int | None, headers: dict[str, str], ranges_work: bool = True):
    """:func:`_helpers` for a full read of an object of ``size`` bytes whose GET answered
    ``headers``: up to :data:`RANGES_IN_FLIGHT` for a large object that carries a crc32c (its
    md5 could not be computed range by range), else none."""
    return _helpers(RANGES_IN_FLIGHT if ranges_work and size is not None
                    and size >= RANGED_READ_THRESHOLD and _crc_of(headers) else 0)


def _reset_helpers_after_fork() -> None:
    global _helpers_lock
    _helpers_lock = threading.Lock()
    _helpers_free[0] = HELPER_THREADS


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_helpers_after_fork)


#: ``(endpoint, bucket, upload id)`` of the multipart uploads this process is running: its own
#: ``find_debris`` reports them ``live`` (owner this process) and ``remove_debris`` leaves them.
_UPLOADS_HERE: set[tuple[str | None, str, str]] = set()


def _forget_uploads_after_fork() -> None:
    _UPLOADS_HERE.clear()  # the parent's uploads: the child is not their owner


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_uploads_after_fork)


def _epoch(value: Any) -> float | None:
    """Unix seconds of a botocore timestamp (a datetime; one without a zone is UTC)."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def _decoded(value: str | None, page: dict) -> str | None:
    """A name from the listing answer ``page``, URL-decoded (as form data: a space may come as
    ``+``) if the server says it encoded its names (``EncodingType``)."""
    if value is None or page.get("EncodingType") != "url":
        return value
    return unquote_plus(value)


_ENCODINGS: dict[str | None, str | None] = {}
_UNSEEN = object()


def canonical_encoding(header: str | None) -> str | None:
    """The canonical encoding named by a Content-Encoding header (``aws-chunked`` dropped);
    unknown names come back lower-cased, so decoding them fails with a clear error."""
    found = _ENCODINGS.get(header, _UNSEEN)
    if found is not _UNSEEN:
        return found  # type: ignore[return-value]
    tokens = [t.strip().lower() for t in (header or "").split(",")]
    tokens = [t for t in tokens if t and t not in ("aws-chunked", "identity")]
    if not tokens:
        result = None
    elif len(tokens) == 1:
        try:
            result = compression.normalize_encoding(tokens[0])
        except UnsupportedCompressionType:
            result = tokens[0]
    else:
        result = ", ".join(tokens)
    if len(_ENCODINGS) < 256:
        _ENCODINGS[header] = result
    return result


def _remaining_size(handle: Any) -> int | None:
    """Bytes from the current position to the end of a file handle, or None if unknowable."""
    try:
        fileno = handle.fileno()
    except (AttributeError, OSError, ValueError):
        fileno = None
    if fileno is not None:
        try:
            st = os.fstat(fileno)
            if stat.S_ISREG(st.st_mode):
                return max(0, st.st_size - handle.tell())
        except (OSError, ValueError):
            pass
    try:
        if not handle.seekable():
            return None
        here = handle.tell()
        end = handle.seek(0, os.SEEK_END)
        handle.seek(here)
        return max(0, end - here)
    except (AttributeError, OSError, ValueError):
        return None


def _read_exactly(handle: Any, n: int) -> bytearray | bytes:
    """Up to ``n`` bytes, fewer only at the end of the stream (short reads are continued)."""
    readinto = getattr(handle, "readinto", None)
    if readinto is not None:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        try:
            while got < n:
                count = readinto(view[got:])
                if not count:
                    break
                got += count
        finally:
            view.release()
        if got < n:
            del buf[got:]
        return buf
    pieces = []
    got = 0
    while got < n:
        piece = handle.read(n - got)
        if not piece:
            break
        pieces.append(piece)
        got += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def upload_part_size(size: int) -> int:
    """Part size of a multipart upload of ``size`` bytes: 8 MiB, or more to stay in 10000 parts."""
    return max(MIN_PART_SIZE, -(-size // MAX_PARTS))


def _copy_part_size(size: int) -> int:
    """Equal parts near COPY_PART_SIZE: ``ceil(size / N)`` is what the integrity check tries for
    a multipart ETag with N parts, so a copied object still verifies on download."""
    parts = min(MAX_PARTS, max(1, -(-size // COPY_PART_SIZE)))
    return -(-size // parts)


def _status_and_code(error: BaseException) -> tuple[int | None, str]:
    if isinstance(error, _s3wire.Answer):
        return error.status, error.code
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None, ""
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(response.get("Error", {}).get("Code", "") or "")
    return status, code


def _is_client_error(error: BaseException) -> bool:
    return type(error).__name__ == "ClientError" or any(
        cls.__name__ == "ClientError" and cls.__module__ == "botocore.exceptions"
        for cls in type(error).__mro__
    )


def _is_missing(error: BaseException) -> bool:
    """A 404 for the object itself (a missing *bucket* is not "missing", except on HEAD, whose
    404 has no body to tell them apart)."""
    if not isinstance(error, _s3wire.Answer) and not _is_client_error(error):
        return False
    status, code = _status_and_code(error)
    return code in _MISSING_CODES or (status == 404 and code != "NoSuchBucket")


def is_transient(error: BaseException) -> bool:
    """True for errors worth repeating: connection trouble, timeouts, cut-off bodies, 429, 5xx
    and S3's slow-down / internal-error codes. Never for 4xx such as 400, 403 or 404."""
    if isinstance(error, S3Error):
        return error.transient
    if isinstance(error, _s3wire.Answer):
        return error.code in _TRANSIENT_CODES or error.status == 429 or error.status >= 500
    if isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)):
        return True  # _http1's cut-short or malformed answers are ConnectionErrors too
    if isinstance(error, ssl.SSLError):
        return not isinstance(error, ssl.SSLCertVerificationError)
    if isinstance(error, (http.client.IncompleteRead, http.client.RemoteDisconnected)):
        return True
    if "urllib3" in sys.modules:
        from urllib3 import exceptions as u3

        if isinstance(error, (u3.ProtocolError, u3.TimeoutError, u3.NewConnectionError)):
            return True
    if "botocore" not in sys.modules:
        return False
    from botocore import exceptions as bce

    if isinstance(error, bce.SSLError):
        return "CERTIFICATE_VERIFY_FAILED" not in str(error)
    if isinstance(error, (bce.HTTPClientError, bce.ConnectionError, bce.IncompleteReadError)):
        return True
    if isinstance(error, bce.ClientError):
        status, code = _status_and_code(error)
        if code in _TRANSIENT_CODES:
            return True
        return status is not None and (status == 429 or status >= 500)
    return False


def _refused(op: str, where: str, answer: str) -> AuthorizationError:
    return AuthorizationError(
        f"S3 refused {op} of {where} ({answer}). Check the credentials used for this "
        f"bucket (secrets=, BUCKET-aws-secret.json / aws-secret.json, or the AWS_* "
        f"environment variables) and their permissions; S3 also answers 403 for a "
        f"missing key when the credentials may not list the bucket."
    )


def _translate(error: BaseException, op: str, where: str) -> BaseException:
    """A clear error naming ``where`` for a failure of ``op``; unknown errors pass unchanged.
    The mark of an error retried already (``_retry.mark_retried``) passes to its translation."""
    translated = _explain(error, op, where)
    if translated is not error and _retry.retried(error):
        _retry.mark_retried(translated)
    return translated


def _explain(error: BaseException, op: str, where: str) -> BaseException:
    if isinstance(error, CloudFilesError):
        return error
    answered = isinstance(error, _s3wire.Answer)
    if answered or _is_client_error(error):
        status, code = _status_and_code(error)
        message = (error.message if answered  # type: ignore[attr-defined]
                   else error.response.get("Error", {}).get("Message") or "")  # type: ignore[attr-defined]
        answer = f"HTTP {status} {code}".strip() + (f": {message}" if message else "")
        if status in (401, 403) or code in _AUTH_CODES:
            return _refused(op, where, answer)
        if code == "NoSuchBucket":
            return S3Error(f"S3 {op} of {where} failed: the bucket does not exist ({answer}).")
        region = getattr(error, "region", "")
        if region and status in (301, 307, 400):
            answer += (f"; the bucket is in region {region}: set AWS_DEFAULT_REGION (or the "
                       f"secrets' region) to it")
        return S3Error(f"S3 {op} of {where} failed ({answer}).", is_transient(error))
    name = type(error).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return AuthorizationError(
            f"No usable AWS credentials for {op} of {where}: pass secrets=, put "
            f"aws-secret.json in the secrets directory, or set AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY. Public buckets can be read with no_sign_request=True."
        )
    if (is_transient(error) or isinstance(error, ssl.SSLError)
            or type(error).__module__.startswith(("botocore", "urllib3"))):
        return S3Error(f"S3 {op} of {where} failed: {name}: {error}", is_transient(error))
    return error


#: Sends one part of a multipart upload or copy, given the upload's id and the event set when
#: the upload stops early (its retries end then); returns the part's ETag.
PartJob = Callable[[str, threading.Event], str]


def _unless(cancelled: threading.Event) -> Callable[[BaseException], bool]:
    """The retry predicate of a part: transient errors, until its upload stops."""
    return lambda error: is_transient(error) and not cancelled.is_set()


#: (endpoint, bucket) where a part's ETag was not its md5: parts carry Content-MD5 there.
_PARTS_NEED_MD5: set[tuple[str | None, str]] = set()


class _PartMismatch(S3Error):
    """A part's ETag is not the md5 of the bytes sent: its upload must start again."""


class _Replaced(S3Error):
    """The object changed between the ranges of one read: the read must start again."""

    def __init__(self, message: str):
        super().__init__(message, transient=True)


class _PartDigests:
    """The md5s of the whole parts of one upload, sixteen at a time by the md5 lanes kernel:
    called with a part's number, the digest, or None where the part must hash its own bytes
    (no kernel, a short last part, a group of fewer than :data:`MD5_LANES_FEWEST`, a file
    that shrank). A group is hashed when the first of its parts asks: after that part was
    sent (before, if it carries Content-MD5), while the others are still being sent."""

    def __init__(self, hash_group: Callable[[int, int], list[bytes] | None], parts: int):
        self._hash_group = hash_group  # (index of the first part, count) -> digests or None
        self._parts = parts
        self._groups: dict[int, list[bytes] | None] = {}
        self._lock = threading.Lock()

    def __call__(self, number: int) -> bytes | None:
        index = number - 1
        if index >= self._parts:
            return None
        group, lane = divmod(index, MD5_LANES)
        with self._lock:
            if group not in self._groups:
                count = min(MD5_LANES, self._parts - group * MD5_LANES)
                self._groups[group] = (self._hash_group(group * MD5_LANES, count)
                                       if count >= MD5_LANES_FEWEST else None)
            digests = self._groups[group]
        return None if digests is None else digests[lane]

    @classmethod
    def of_buffer(cls, view: memoryview, part: int) -> _PartDigests | None:
        if MD5_KERNEL is None:
            return None
        return cls(lambda first, count: part_md5s(view[first * part:(first + count) * part], part),
                   len(view) // part)

    @classmethod
    def of_file(cls, handle: Any, start: int, part: int) -> _PartDigests | None:
        """For a plain file opened for reading: what it reads is what the file holds (not a
        decompressing or text wrapper, whose fileno() is of the file beneath)."""
        if MD5_KERNEL is None or type(handle) not in (io.BufferedReader, io.FileIO):
            return None
        try:
            fd = handle.fileno()
            parts = max(0, os.fstat(fd).st_size - start) // part
        except (OSError, ValueError):
            return None

        def hash_group(first: int, count: int) -> list[bytes] | None:
            try:
                return MD5_KERNEL.md5_file_parts(fd, start + first * part, part, count)
            except (OSError, EOFError):  # the file shrank or went: parts hash what they send
                return None

        return cls(hash_group, parts)


class _Multipart:
    """Runs the parts of one multipart upload or copy, a bounded number at a time, and aborts
    the upload on any failure (so no partial object ever appears)."""

    def __init__(self, backend: S3Backend, key: str, create_params: dict, in_flight: int):
        self.backend = backend
        self.key = key
        self.create_params = create_params
        self.in_flight = max(1, in_flight)

    def run(self, jobs: Iterator[tuple[int, PartJob]]) -> dict:
        backend = self.backend
        client = backend._client()
        target = {"Bucket": backend.bucket, "Key": self.key, **backend._payer}
        created = _retry.call(client.create_multipart_upload, is_transient,
                              **target, **self.create_params)
        upload_id = created["UploadId"]
        running = (backend.endpoint, backend.bucket, upload_id)
        _UPLOADS_HERE.add(running)  # never debris to this process's own sweeps
        try:
            etags = self._run_parts(jobs, upload_id)
            parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
            return _retry.call(client.complete_multipart_upload, is_transient, **target,
                               UploadId=upload_id, MultipartUpload={"Parts": parts})
        except BaseException:
            try:
                _retry.call(client.abort_multipart_upload, is_transient, **target,
                            UploadId=upload_id)
            except Exception as abort_error:  # report the original failure, not this one
                log.warning("could not abort the multipart upload of %s: %s (S3Backend."
                            "find_debris and the sweep find what is left)",
                            backend._where(self.key), type(abort_error).__name__)
            raise
        finally:
            _UPLOADS_HERE.discard(running)

    def _run_parts(self, jobs: Iterator[tuple[int, PartJob]], upload_id: str) -> dict[int, str]:
        """Each part's ETag. Parts run on up to ``in_flight`` of the process's free helper
        threads (the engine's reusable ones: none is started per upload), each taking the next
        job from ``jobs`` only when free, so at most that many parts are in memory; on the
        calling thread, one by one, when no helper is free or under gevent's monkey-patching."""
        runner = self.backend.options.runner
        cancelled = threading.Event()  # set by the runner on a failure or Ctrl-C
        wanted = 0 if runner.patched() else self.in_flight
        with _helpers(wanted) as granted:
            return dict(runner.run(lambda pair: (pair[0], pair[1](upload_id, cancelled)), jobs,
                                   max(1, granted), stop=cancelled))


class S3Backend(Backend):
    """An S3 bucket (or a key prefix in it), on AWS or any S3-compatible endpoint."""

    exists_batch_size = 1
    delete_batch_size = 1000
    takes_endpoint = True
    takes_request_payer = True
    unencoded_label = ""
    helper_threads = HELPER_THREADS
    #: Set once a ranged GET came back whole: large reads are one stream from then on.
    _ranges_ignored = False

    @classmethod
    def reset_process_state(cls) -> None:
        clear_clients()

    @classmethod
    def check_options(cls, root, options: BackendOptions) -> None:
        super().check_options(root, options)
        payer = options.request_payer
        if payer not in (None, "requester"):
            raise ValueError(f"request_payer for s3:// must be None or 'requester', got {payer!r}")
        endpoint = options.endpoint or root.host
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise ValueError(f"An S3 endpoint must start with http:// or https://, got {endpoint!r}")

    def __init__(self, root, options: BackendOptions):
        super().__init__(root, options)
        preload_crc32c()
        if not root.bucket:
            raise ValueError(f"An S3 path needs a bucket: {root!r}")
        self.bucket: str = root.bucket
        path = root.path or ""
        self.base = path if not path or path.endswith("/") else path + "/"
        endpoint = options.endpoint or root.host
        self.endpoint: str | None = endpoint.rstrip("/") if endpoint else None
        self._payer: dict[str, str] = {"RequestPayer": "requester"} if options.request_payer else {}
        # the canned ACL of every upload and copy: an alias's own, else the original's default
        self.acl: str = DEFAULT_ACL
        if root.alias:
            self.acl = alias_acl(root.alias) or DEFAULT_ACL
        self.unsigned = bool(options.no_sign_request)
        # every engine thread, plus the range helpers a large read borrows
        self.pool_size = max(10, int(options.num_threads or 0)) + HELPER_THREADS
        self._creds: dict | None = None
        self._cached: tuple[int, Any] | None = None  # (pid, client)
        self._fast: tuple[int, Any] | None = None  # (pid, lean transport or None)

    # -- identity, credentials, client ----------------------------------------------------------
    def describe(self) -> str:
        if self.root.alias:  # the alias's own form (its target may hold the bucket already)
            where = asprotocolpath(self.root._replace(path=self.base))
            return where if where.endswith("/") else where + "/"
        if self.endpoint:
            return f"s3://{self.endpoint}/{self.bucket}/{self.base}"
        return f"s3://{self.bucket}/{self.base}"

    def __repr__(self) -> str:
        return f"S3Backend({self.describe()!r})"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cached"] = None  # clients never cross processes
        state["_fast"] = None
        state["_creds"] = None  # nor do credentials read from files or the environment
        return state

    def _where(self, full_key: str) -> str:
        return self.describe()[: -len(self.base) or None] + full_key

    def credentials(self) -> dict:
        """The AWS credentials in force (explicit ``secrets=`` first, then the secrets files and
        the environment); ``{AWS_DEFAULT_REGION}`` alone means boto's default chain."""
        creds = self._creds
        if creds is None:
            explicit = _secrets.parse_explicit(self.options.secrets)
            if explicit is None:
                creds = _secrets.aws_credentials(self.bucket, self.root.alias or "aws")
            elif isinstance(explicit, dict):
                creds = _secrets.normalize_aws(explicit)
            else:
                raise TypeError(
                    f"secrets= for {self.describe()} must be a dict (or JSON object string) of "
                    f"AWS keys, got {type(explicit).__name__}"
                )
            if bool(creds.get("AWS_ACCESS_KEY_ID")) != bool(creds.get("AWS_SECRET_ACCESS_KEY")):
                raise ValueError(
                    f"The credentials for {self.describe()} need both AWS_ACCESS_KEY_ID and "
                    f"AWS_SECRET_ACCESS_KEY (one of them is missing)."
                )
            self._creds = creds
        return creds

    def credentials_fingerprint(self) -> str:
        if self.unsigned:
            return "unsigned"
        return _secrets.fingerprint(self.credentials())

    def _request_credentials(self) -> dict:
        if self.unsigned and self.options.secrets is None:
            return _secrets.normalize_aws({})  # anonymous: no secrets files to read, region only
        return self.credentials()

    def _client(self) -> Any:
        cached = self._cached
        pid = os.getpid()
        if cached is not None and cached[0] == pid:
            if _s3wire.botocore_mocked():
                _s3wire.mock_botocore_client(cached[1])
            return cached[1]
        if cached is not None:  # forked: files and environment may differ in the child
            self._creds = None
        creds = self._request_credentials()
        client = get_client(self.endpoint, creds.get("AWS_DEFAULT_REGION") or "us-east-1",
                            creds, self.unsigned, self.pool_size)
        self._cached = (pid, client)
        if _s3wire.botocore_mocked():
            _s3wire.mock_botocore_client(client)
        return client

    def _wire(self) -> _s3wire.Wire | None:
        """The lean transport (``_s3wire``) of this backend in this process, or None when
        botocore serves every call: ``CLOUD_FILES_TRANSPORT=sdk``, credentials only botocore's
        default chain can find (profiles, instance roles), or, without an explicit endpoint, an
        AWS endpoint configured other than the plain regional one (``AWS_ENDPOINT_URL_S3``,
        FIPS, dual-stack); and while moto's in-process mock is active (checked on every call:
        a test may start and stop it around any call)."""
        if _s3wire.botocore_mocked():
            return None
        fast = self._fast
        pid = os.getpid()
        if fast is not None and fast[0] == pid:
            return fast[1]
        wire = self._make_wire()
        self._fast = (pid, wire)
        return wire

    def _make_wire(self) -> _s3wire.Wire | None:
        if _s3wire.mode() == "sdk":
            return None
        creds = self._request_credentials()
        if not self.unsigned and not creds.get("AWS_ACCESS_KEY_ID"):
            return None
        region = creds.get("AWS_DEFAULT_REGION") or "us-east-1"
        if self.endpoint:
            origin, prefix = _s3wire.address(self.endpoint, self.bucket)
        else:  # AWS: wherever botocore's configuration sends this bucket, or botocore only
            found = _s3wire.aws_address(self._client().meta.endpoint_url, self.bucket, region)
            if found is None:
                return None
            origin, prefix = found
        return _s3wire.Wire(origin, prefix, region, None if self.unsigned else creds,
                            bool(self._payer), self.pool_size)

    def _fail(self, error: BaseException, op: str, full_key: str) -> NoReturn:
        translated = _translate(error, op, self._where(full_key))
        if translated is error:
            raise error
        raise translated from error

    def retryable(self, error: BaseException) -> bool:
        return is_transient(error)

    # -- reads ----------------------------------------------------------------------------------
    def get(self, key: str, start: int | None = None, end: int | None = None) -> Blob | None:
        full = self.base + key
        try:
            if start is None and end is None:
                return self._get_full(full)
            return self._get_range(full, start, end)
        except Exception as e:
            self._fail(e, "get", full)

    def _get_object(self, full: str, **extra: Any) -> dict | None:
        try:
            return self._client().get_object(Bucket=self.bucket, Key=full, **self._payer, **extra)
        except Exception as e:
            if _is_missing(e):
                return None
            raise

    @staticmethod
    def _read_body(response: dict) -> bytes:
        body = response["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        expected = response.get("ContentLength")
        if expected is not None and len(data) != expected:
            from botocore.exceptions import IncompleteReadError

            raise IncompleteReadError(actual_bytes=len(data), expected_bytes=expected)
        return data

    def _get_full(self, full: str) -> Blob | None:
        wire = self._wire()
        if wire is not None:
            return self._fast_get(wire, full)
        response = self._get_object(full)
        if response is None:
            return None
        data = self._read_body(response)
        return Blob(data, canonical_encoding(response.get("ContentEncoding")),
                    *_checksum(response.get("ETag"), response.get("Metadata")))

    def _fast_get(self, wire: _s3wire.Wire, full: str) -> Blob | None:
        resp = self._fast_open(wire, full)
        if resp is None:
            return None
        try:
            size = _length(resp.headers)
            if size is not None and size <= STREAM_CHUNK:
                data = resp.read()
                return self._fast_blob(full, resp, data, len(data), None)
            with _range_helpers(size, resp.headers, not self._ranges_ignored) as helpers:
                if helpers > 1:
                    # filled in place, range by range; the engine checks the crc32c afterwards
                    buffer = io.BytesIO(bytes(size))  # its own buffer: becomes the result, no copy
                    with buffer.getbuffer() as view:
                        self._read_ranges(full, resp, helpers, lambda start, end: view[start:end])
                    return self._fast_blob(full, resp, buffer.getvalue(), size, None)
            # hashed as they arrive, not in a second pass; collected in a BytesIO, whose buffer
            # grows in place and becomes the bytes returned (no copy): peak memory is the
            # object once, where a list of pieces joined at the end held it twice
            buffer = io.BytesIO()
            received, digest = self._fast_drain(resp, buffer.write)
            return self._fast_blob(full, resp, buffer.getvalue(), received, digest)
        finally:
            resp.release()  # back to the pool if the body was read to its end, else closed

    def _fast_open(self, wire: _s3wire.Wire, full: str) -> _http1.Response | None:
        """The lean-path GET of ``full`` with its head read and its body not yet, or None if
        the object is missing (a missing bucket is an error)."""
        resp = wire.request("GET", full, stream=True)
        if resp.status == 200:
            return resp
        error = _s3wire.answer_error(resp)
        resp.release()
        if _is_missing(error):
            return None
        raise error

    def _get_range(self, full: str, start: int | None, end: int | None) -> Blob | None:
        suffix = start is not None and start < 0 and end is None
        if suffix:
            header = f"bytes={start}"  # "bytes=-N": the last N bytes
            local = slice(start, None)
        elif (start is None or start >= 0) and (end is None or end >= 0):
            first = start or 0
            if end is not None and end <= first:
                return self._empty(full)
            header = f"bytes={first}-" if end is None else f"bytes={first}-{end - 1}"
            local = slice(first, end)
        else:  # negative end, or negative start with an end: Python's rules need the size
            head = self._head(full)
            if head is None:
                return None
            first, stop, _ = slice(start, end).indices(head["ContentLength"])
            if stop <= first:
                return Blob(b"", canonical_encoding(head.get("ContentEncoding")))
            header = f"bytes={first}-{stop - 1}"
            local = slice(first, stop)
        try:
            response = self._get_object(full, Range=header)
        except Exception as e:
            status, code = _status_and_code(e)
            if status != 416 and code != "InvalidRange":
                raise
            if not suffix:  # starts at or past the end: nothing there
                return self._empty(full)
            # some servers refuse a suffix longer than the object: it means the whole object
            response = self._get_object(full)
            if response is None:
                return None
            return Blob(self._read_body(response)[local],
                        canonical_encoding(response.get("ContentEncoding")))
        if response is None:
            return None
        data = self._read_body(response)
        if not response.get("ContentRange") and response.get("ResponseMetadata", {}).get(
                "HTTPStatusCode") == 200:
            data = data[local]  # the server ignored Range and sent everything
        return Blob(data, canonical_encoding(response.get("ContentEncoding")))

    def stream_to(self, key: str, fileobj: BinaryIO, start: int = 0) -> Blob | None:
        """One GET (``Range: bytes=start-`` when resuming) whose body is copied into ``fileobj``
        :data:`STREAM_CHUNK` bytes at a time, so memory stays near one chunk whatever the size.
        The ETag and size reported are the whole object's (the engine checks the finished file
        against them). A body cut short raises a retryable error after writing what arrived."""
        full = self.base + key
        try:
            return self._stream(full, fileobj, start)
        except Exception as e:
            self._fail(e, "get", full)

    def _stream(self, full: str, fileobj: BinaryIO, start: int) -> Blob | None:
        wire = self._wire() if start <= 0 else None
        if wire is not None:
            return self._fast_stream(wire, full, fileobj)
        try:
            response = self._get_object(full, **({"Range": f"bytes={start}-"} if start > 0 else {}))
        except Exception as e:
            status, code = _status_and_code(e)
            if start <= 0 or (status != 416 and code != "InvalidRange"):
                raise
            head = self._head(full)  # nothing at or past ``start``: the size says if that is right
            if head is None:
                return None
            return self._streamed(head, head.get("ContentLength"))
        if response is None:
            return None
        skip = 0
        total = expected = response.get("ContentLength")
        content_range = response.get("ContentRange")
        if start > 0:
            if content_range:  # "bytes first-last/total" (rclone sends it with a 200)
                first, _, rest = content_range.partition(" ")[2].partition("-")
                total_text = rest.partition("/")[2]
                if not first.isdigit() or int(first) != start:
                    response["Body"].close()
                    raise S3Error(f"{self._where(full)}: asked for bytes {start}- and got "
                                  f"{content_range!r}")
                total = int(total_text) if total_text.isdigit() else None
            else:
                skip = start  # the server ignored Range and sent the whole object
        body = response["Body"]
        received = 0
        try:
            out = SkipWriter(fileobj, skip)
            while chunk := body.read(STREAM_CHUNK):
                received += len(chunk)
                out.write(chunk)
        finally:
            body.close()
        if expected is not None and received != expected:
            from botocore.exceptions import IncompleteReadError

            raise IncompleteReadError(actual_bytes=received, expected_bytes=expected)
        return self._streamed(response, total)

    def _fast_stream(self, wire: _s3wire.Wire, full: str, fileobj: BinaryIO) -> Blob | None:
        resp = self._fast_open(wire, full)
        if resp is None:
            return None
        try:
            size = _length(resp.headers)
            with _range_helpers(size, resp.headers, not self._ranges_ignored) as helpers:
                if helpers > 1:
                    digest = self._ranges_in_order(full, resp, helpers, fileobj.write)
                    return self._fast_blob(full, resp, None, size, digest)
            received, digest = self._fast_drain(resp, fileobj.write)
            return self._fast_blob(full, resp, None, received, digest)
        finally:
            resp.release()

    @staticmethod
    def _fast_drain(resp: _http1.Response, write: Callable[[Any], Any]) -> tuple[int, str]:
        """Pass the body to ``write`` piece by piece: ``(bytes received, their checksum)``, of
        the kind the read is checked with (base64 crc32c where the object carries one, else hex
        md5)."""
        digest = new_digest(_crc_of(resp.headers) is not None)
        received = 0
        while chunk := resp.read(STREAM_CHUNK):
            received += len(chunk)
            digest.update(chunk)
            write(chunk)
        return received, digest_text(digest)

    def _ranges_in_order(self, full: str, resp: _http1.Response, helpers: int,
                         write: Callable[[Any], Any]) -> str:
        """:meth:`_read_ranges` into part-sized buffers passed to ``write`` in order (so memory
        holds at most ``helpers`` parts, in buffers used again and again); returns the base64
        crc32c of the whole."""
        digest = new_digest(True)
        turn = threading.Condition()
        state = {"next": 0, "stop": False}
        spare: list[bytearray] = []  # list.pop and append are atomic: no wait behind a write

        def buffer(start: int, end: int) -> memoryview:
            try:
                free = spare.pop()
            except IndexError:
                free = bytearray(RANGE_PART)
            return memoryview(free)[: end - start]

        def written(index: int, part: memoryview) -> None:
            with turn:
                turn.wait_for(lambda: state["next"] == index or state["stop"])
                if state["stop"]:
                    return
                for offset in range(0, len(part), WRITE_PIECE):
                    write(part[offset : offset + WRITE_PIECE])
                digest.update(part)
                state["next"] = index + 1
                spare.append(part.obj)
                turn.notify_all()

        def stop() -> None:
            with turn:
                state["stop"] = True
                turn.notify_all()

        self._read_ranges(full, resp, helpers, buffer, written, stop)
        return digest_text(digest)

    def _read_ranges(self, full: str, resp: _http1.Response, helpers: int,
                     target: Callable[[int, int], memoryview],
                     filled: Callable[[int, memoryview], None] | None = None,
                     stop: Callable[[], None] | None = None) -> None:
        """Read the object of the open GET ``resp`` as ranges of :data:`RANGE_PART` bytes,
        ``helpers`` at once on the engine's reusable threads: range ``i`` (bytes ``start:end``)
        goes into ``target(start, end)``, then ``filled(i, that view)`` runs. The first range
        is read from the open response (the rest of its body is dropped), the others by ranged
        GETs, each from the same object (same ETag; ``If-Match`` where servers honour it). On
        any failure ``stop()`` runs before the error is raised, so that no part waits for one
        that will never come."""
        size = _length(resp.headers) or 0
        etag = _etag_of(resp.headers)

        def part(index: int) -> None:
            start = index * RANGE_PART
            end = min(start + RANGE_PART, size)
            try:
                with target(start, end) as view:
                    if index == 0:
                        self._fill_from_stream(full, resp, view, size)
                    else:
                        self._fill_range(full, view, start, size, etag)
                    if filled is not None:
                        filled(index, view)
            except BaseException:
                if stop is not None:
                    stop()
                raise

        try:
            self.options.runner.run(part, range(-(-size // RANGE_PART)), helpers)
        except BaseException:
            if stop is not None:
                stop()  # Ctrl-C on the caller: parts still in flight write nothing more
            raise

    def _fill_from_stream(self, full: str, resp: _http1.Response, view: memoryview, size: int) -> None:
        """Fill ``view`` with the first bytes of the open GET ``resp``, then close it (the
        rest of its body is read by ranges)."""
        have = 0
        try:
            while have < len(view) and (count := resp.readinto(view[have:])):
                have += count
        finally:
            resp.close()
        if have < len(view):
            raise S3Error(f"{self._where(full)}: the body ended after {have} of {size} bytes",
                          transient=True)

    def _fill_range(self, full: str, view: memoryview, start: int, size: int,
                    etag: str | None) -> None:
        """Fill ``view`` with the object's bytes from ``start`` on, from a ranged GET retried on
        its own for transient failures. Errors that repeating the whole read may cure are
        transient for the engine: the object replaced, shortened or deleted meanwhile
        (:class:`_Replaced`), or a server that ignores Range (the backend then reads large
        objects as one stream). Any other failure left after this range's own retries is not:
        the engine must not repeat every range again."""
        wire = self._wire()
        assert wire is not None  # ranges are read only for reads on the lean path
        where = self._where(full)
        end = start + len(view)
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if etag and not etag.startswith("W/"):
            headers["If-Match"] = f'"{etag}"'

        def once() -> None:
            resp = wire.request("GET", full, headers, stream=True)
            try:
                if resp.status not in (200, 206):
                    error = _s3wire.answer_error(resp)
                    if error.status in (404, 412, 416) or error.code in ("NoSuchKey", "InvalidRange"):
                        raise _Replaced(f"{where} was replaced, shortened or deleted while it was "
                                        f"read in ranges ({error.code or error.status})") from error
                    raise error
                got = _etag_of(resp.headers)
                if etag and got != etag:
                    raise _Replaced(f"{where} was replaced while it was read in ranges (ETag "
                                    f"{etag} became {got})")
                if "content-range" not in resp.headers and _length(resp.headers) == size:
                    self._ranges_ignored = True  # from now on: one stream per large read
                    raise _Replaced(f"{where}: the server ignored Range; reading it whole")
                have = 0
                while have < len(view) and (count := resp.readinto(view[have:])):
                    have += count
                if have != len(view) or resp.read(1):
                    raise S3Error(f"{where}: asked for bytes {start}-{end - 1}, the answer held "
                                  f"{'more' if have == len(view) else have}", transient=True)
            finally:
                resp.release()

        try:
            _retry.call(once, lambda e: is_transient(e) and not isinstance(e, _Replaced))
        except _Replaced:
            raise
        except Exception as e:
            _retry.mark_retried(e)  # this range was retried on its own already
            translated = _translate(e, "ranged get", where)
            if translated is e:
                raise
            raise translated from e

    def _fast_blob(self, full: str, resp: _http1.Response, content: bytes | None, received: int,
                   digest: str | None) -> Blob:
        """The Blob of a lean-path read (``content`` None: streamed into a file), after checking
        that the whole body arrived. ``digest``: the checksum of the bytes received, of the kind
        the Blob's hash is (see :meth:`_fast_drain`)."""
        headers = resp.headers
        size = _length(headers)
        if size is not None and received != size:
            raise S3Error(f"{self._where(full)}: the body ended after {received} of "
                          f"{size} bytes", transient=True)
        crc = _crc_of(headers)
        checksum, kind = (crc, "crc32c") if crc else _checksum(headers.get("etag"), None)
        return Blob(content, canonical_encoding(headers.get("content-encoding")),
                    checksum, kind, received if content is None else None,
                    None if crc else digest, digest if crc else None)

    @staticmethod
    def _streamed(meta: dict, size: int | None) -> Blob:
        return Blob(None, canonical_encoding(meta.get("ContentEncoding")),
                    *_checksum(meta.get("ETag"), meta.get("Metadata")), size)

    def _empty(self, full: str) -> Blob | None:
        head = self._head(full)
        return None if head is None else Blob(b"", canonical_encoding(head.get("ContentEncoding")))

    def _head(self, full: str) -> dict | None:
        try:
            return self._client().head_object(Bucket=self.bucket, Key=full, **self._payer)
        except Exception as e:
            if _is_missing(e):
                return None
            raise

    def get_acl(self, key: str) -> dict | None:
        """The object's ACL as S3 answers GetObjectAcl (``Owner``, ``Grants``), None if missing."""
        full = self.base + key
        try:
            return self._client().get_object_acl(Bucket=self.bucket, Key=full, **self._payer)
        except Exception as e:
            if _is_missing(e):
                return None
            self._fail(e, "get the ACL of", full)

    def head(self, key: str) -> dict | None:
        full = self.base + key
        try:
            r = self._head(full)
        except Exception as e:
            self._fail(e, "head", full)
        if r is None:
            return None
        etag = r.get("ETag")
        headers = r.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        return {
            "Cache-Control": r.get("CacheControl"),
            "Content-Length": r.get("ContentLength"),
            "Content-Type": r.get("ContentType"),
            "ETag": etag,  # as S3 sends it, in quotes (as the original gives it)
            "Last-Modified": r.get("LastModified"),
            "Content-Md5": headers.get("content-md5"),
            "Content-Encoding": canonical_encoding(r.get("ContentEncoding")),
            "Content-Disposition": r.get("ContentDisposition"),
            "Content-Language": r.get("ContentLanguage"),
            "Storage-Class": r.get("StorageClass"),
            "Request-Charged": r.get("RequestCharged"),
            "Parts-Count": r.get("PartsCount"),
        }

    def _size(self, full: str) -> int | None:
        wire = self._wire()
        if wire is None:
            r = self._head(full)
            return None if r is None else r.get("ContentLength")
        resp = wire.request("HEAD", full)
        if resp.status == 200:
            return _length(resp.headers)
        error = _s3wire.answer_error(resp)
        if _is_missing(error):  # a HEAD's 404 has no body to tell a missing bucket apart
            return None
        raise error

    def size(self, key: str) -> int | None:
        full = self.base + key
        try:
            return self._size(full)
        except Exception as e:
            self._fail(e, "size", full)

    def exists_many(self, keys: list[str]) -> dict[str, bool]:
        out = {}
        for key in keys:
            full = self.base + key
            try:
                out[key] = self._size(full) is not None
            except Exception as e:
                self._fail(e, "exists", full)
        return out

    # -- writes ---------------------------------------------------------------------------------
    def _object_params(self, meta: PutMeta) -> dict:
        params = {"ContentType": meta.content_type or DEFAULT_CONTENT_TYPE}
        if meta.encoding:
            params["ContentEncoding"] = meta.encoding
        if meta.cache_control:
            params["CacheControl"] = meta.cache_control
        if meta.storage_class:
            params["StorageClass"] = meta.storage_class
        if self.acl:
            params["ACL"] = self.acl
        return params

    def put(self, key: str, data: bytes | BinaryIO | Any, meta: PutMeta) -> None:
        full = self.base + key
        try:
            self._put(full, data, self._object_params(meta))
        except Exception as e:
            self._fail(e, "put", full)

    def _put(self, full: str, data: Any, params: dict) -> None:
        threshold = self.options.composite_upload_threshold
        if isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) > threshold:
                params = _with_crc(params, data)  # a file handle's is unknown until it is read
                self._upload_buffer(full, memoryview(data).cast("B"), params)
            else:
                self._put_object(full, data if isinstance(data, bytes) else bytes(data), params)
            return
        if not hasattr(data, "read"):
            raise TypeError(
                f"S3 stores bytes or binary file handles, not {type(data).__name__} "
                f"({self._where(full)})"
            )
        size = _remaining_size(data)
        if size is None:
            self._upload_stream(full, data, params)
        elif size > threshold:
            self._upload_handle(full, data, upload_part_size(size), [], params)
        else:
            content = data.read()
            if isinstance(content, str):
                raise TypeError(f"{self._where(full)}: the file handle must be opened in binary mode")
            self._put_object(full, content, params)

    def _put_object(self, full: str, content: bytes | bytearray, params: dict) -> None:
        params = _with_crc(params, content)
        md5 = _md5_b64(content)  # the server refuses bytes damaged on the way
        wire = self._wire()
        if wire is None:
            if not isinstance(content, bytes) and _s3wire.botocore_mocked():
                content = bytes(content)  # moto's in-process mock takes only bytes bodies
            self._client().put_object(Bucket=self.bucket, Key=full, Body=content, ContentMD5=md5,
                                      **self._payer, **params)
            return
        resp = wire.request("PUT", full, {**_put_headers(params), "Content-MD5": md5}, content)
        if resp.status != 200:
            raise _s3wire.answer_error(resp)

    def _part_job(self, full: str, number: int, chunk: bytes | bytearray | memoryview,
                  content_md5: bool, digest: Callable[[], bytes | None] | None = None) -> PartJob:
        """Sends part ``number`` of an upload (given its id), retried on its own; its ETag.
        ``digest``: gives the chunk's md5 if the caller can (see :class:`_PartDigests`), else
        None; without it, or given None, the part's thread hashes the chunk itself.

        With ``content_md5`` the part carries Content-MD5, which the server checks. Without, the
        ETag the server answers (the md5 of the bytes it received) must be the md5 of ours, or
        :class:`_PartMismatch` is raised: damaged bytes, or a service whose part ETags are not
        md5s (SSE-KMS), and the caller starts the upload again with Content-MD5 (some servers,
        rclone among them, cannot replace a part already received)."""
        send = self._part_sender(full, number, chunk)
        known: list[str] = []

        def md5() -> str:  # asked for after sending, unless the part carries it
            if not known:
                given = digest() if digest is not None else None
                known.append(_md5_b64(chunk) if given is None
                             else base64.b64encode(given).decode("ascii"))
            return known[0]

        def attempt(upload_id: str) -> str:
            if content_md5:
                return send(upload_id, md5())
            etag = send(upload_id, None)
            if etag.strip('"').lower() != base64.b64decode(md5()).hex():
                raise _PartMismatch(f"{self._where(full)}: part {number} came back with ETag "
                                    f"{etag}, not the md5 of the bytes sent")
            return etag

        def job(upload_id: str, cancelled: threading.Event) -> str:
            return _retry.call(attempt, _unless(cancelled), upload_id)

        return job

    def _part_sender(self, full: str, number: int,
                     chunk: bytes | bytearray | memoryview) -> Callable[[str, str | None], str]:
        """One attempt at sending a part, with Content-MD5 if given one; its ETag."""
        wire = self._wire()
        if wire is None:
            client = self._client()
            # moto's in-process mock takes only bytes bodies
            plain = isinstance(chunk, bytes) or (isinstance(chunk, bytearray)
                                                  and not _s3wire.botocore_mocked())
            body = chunk if plain else bytes(chunk)

            def send_sdk(upload_id: str, md5: str | None) -> str:
                checked = {"ContentMD5": md5} if md5 else {}
                etag = client.upload_part(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                          PartNumber=number, Body=body, **checked,
                                          **self._payer).get("ETag")
                if not etag:
                    raise S3Error(f"{self._where(full)}: the server answered part {number} "
                                  f"without an ETag")
                return etag

            return send_sdk

        def send(upload_id: str, md5: str | None) -> str:
            resp = wire.request("PUT", full, {"Content-MD5": md5} if md5 else {}, chunk,
                                {"partNumber": number, "uploadId": upload_id})
            if resp.status != 200:
                raise _s3wire.answer_error(resp)
            etag = resp.headers.get("etag")
            if not etag:
                raise S3Error(f"{self._where(full)}: the server answered part {number} without "
                              f"an ETag")
            return etag

        return send

    def _upload_buffer(self, full: str, view: memoryview, params: dict) -> None:
        size = len(view)
        part = upload_part_size(size)
        digests = _PartDigests.of_buffer(view, part)

        def upload(content_md5: bool) -> None:
            jobs = ((number, self._part_job(full, number, view[offset:offset + part], content_md5,
                                            digest=digests and functools.partial(digests, number)))
                    for number, offset in enumerate(range(0, size, part), start=1))
            self._finish_upload(full, jobs, params)

        self._checked_upload(full, upload, lambda: None)

    def _upload_handle(self, full: str, handle: Any, part: int, first: list, params: dict) -> None:
        """Upload the rest of ``handle`` in parts of ``part`` bytes. ``first`` holds the first
        part if it was read already (a stream that cannot be rewound); it is emptied so that
        no frame keeps the bytes alive."""
        try:
            start = None if first or not handle.seekable() else handle.tell()
        except (AttributeError, OSError, ValueError):
            start = None
        digests = None if start is None else _PartDigests.of_file(handle, start, part)

        def upload(content_md5: bool) -> None:
            # parts checked by their ETags may take their md5s from a second read of the file
            # (a file changed meanwhile fails the check); Content-MD5 is of the bytes sent
            hashed = None if content_md5 else digests

            def jobs() -> Iterator[tuple[int, PartJob]]:
                chunk = first.pop() if first else _read_exactly(handle, part)
                number = 1
                while True:
                    if isinstance(chunk, str):
                        raise TypeError(f"{self._where(full)}: the file handle must be opened "
                                        f"in binary mode")
                    if number > MAX_PARTS:
                        raise ValueError(
                            f"{self._where(full)}: the stream is longer than {MAX_PARTS} parts "
                            f"of {part} bytes, the most one S3 upload can hold"
                        )
                    last = len(chunk) < part
                    yield number, self._part_job(
                        full, number, chunk, content_md5,
                        digest=hashed and functools.partial(hashed, number))
                    del chunk
                    if last:
                        return
                    chunk = _read_exactly(handle, part)
                    if not chunk:
                        return
                    number += 1

            self._finish_upload(full, jobs(), params)

        if start is None:  # cannot be sent again: the server checks each part as it comes
            upload(True)
            return
        self._checked_upload(full, upload, lambda: handle.seek(start))

    def _checked_upload(self, full: str, upload: Callable[[bool], None],
                        rewind: Callable[[], Any]) -> None:
        """Run ``upload(content_md5)``. Parts are first checked by their ETags (no second pass
        over the bytes on the server: rclone's costs a tenth of an upload's speed on 2 cores);
        if one does not match, the upload, aborted already, starts again from ``rewind()``
        with Content-MD5 on every part, as every later upload to this bucket in this process
        does (services whose part ETags are not md5s, as under SSE-KMS, pay the resend once)."""
        where = (self.endpoint, self.bucket)
        if where in _PARTS_NEED_MD5:
            upload(True)
            return
        try:
            upload(False)
            return
        except _PartMismatch as e:
            log.warning("%s; uploading again with Content-MD5 on every part", e)
        # out of the except block: its traceback would keep the first pass's parts alive
        _PARTS_NEED_MD5.add(where)
        rewind()
        upload(True)

    def _upload_stream(self, full: str, handle: Any, params: dict) -> None:
        threshold = self.options.composite_upload_threshold
        part = MIN_PART_SIZE
        first = [_read_exactly(handle, part)]
        if len(first[0]) < part and len(first[0]) <= threshold:
            self._put_object(full, first.pop(), params)
            return
        self._upload_handle(full, handle, part, first, params)

    def _finish_upload(self, full: str, jobs: Iterator[tuple[int, PartJob]], params: dict) -> None:
        try:
            _Multipart(self, full, params, PARTS_IN_FLIGHT).run(jobs)
        except Exception as e:
            # the parts were retried one by one already: do not send the whole upload again
            _retry.mark_retried(e)
            translated = _translate(e, "multipart upload", self._where(full))
            if translated is e:
                raise
            raise translated from e

    # -- delete, list ---------------------------------------------------------------------------
    def delete_many(self, keys: list[str]) -> None:
        if not keys:
            return
        if len(keys) > 1000:
            for start in range(0, len(keys), 1000):
                self.delete_many(keys[start:start + 1000])
            return
        try:
            response = self._client().delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self.base + k} for k in keys], "Quiet": True},
                **self._payer,
            )
        except Exception as e:
            self._fail(e, "delete", self.base + keys[0] if len(keys) == 1 else self.base)
        errors = response.get("Errors") or []
        if errors:
            shown = "; ".join(
                f"{self._where(err.get('Key', '?'))}: {err.get('Code', '?')} {err.get('Message', '')}".rstrip()
                for err in errors[:5]
            )
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            codes = {err.get("Code") for err in errors}
            if codes & _AUTH_CODES:
                raise AuthorizationError(f"S3 refused to delete {len(errors)} object(s): {shown}{more}")
            raise S3Error(f"S3 failed to delete {len(errors)} object(s): {shown}{more}",
                          transient=bool(codes & _TRANSIENT_CODES))

    def list(self, prefix: str = "", flat: bool = False, size: bool = False) -> Iterator[tuple[str, int | None]]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.base + prefix,
                                  "MaxKeys": LIST_PAGE_SIZE, **self._payer}
        if flat:
            params["Delimiter"] = "/"
        return self._pages(params, len(self.base))

    def _list_page(self, params: dict) -> dict:
        """One ListObjectsV2 page, in botocore's shape (the keys ``_page_entries`` reads)."""
        try:
            wire = self._wire()
            if wire is None:
                return self._client().list_objects_v2(**params)
            query = {"list-type": 2, "encoding-type": "url", "prefix": params["Prefix"],
                     "max-keys": params["MaxKeys"]}
            for name, field in (("delimiter", "Delimiter"),
                                ("continuation-token", "ContinuationToken")):
                if params.get(field):
                    query[name] = params[field]
            resp = wire.request("GET", "", None, None, query)
            if resp.status != 200:
                raise _s3wire.answer_error(resp)
            try:
                return _s3wire.list_page(resp.data)
            except ValueError as e:
                raise S3Error(f"S3 list of {self._where(params['Prefix'])} failed: {e}") from e
        except Exception as e:
            self._fail(e, "list", params["Prefix"])

    def list_resumable(
        self, prefix: str = "", size: bool = False, token: str | None = None
    ) -> Iterator[tuple[str, int | None, str | None]]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.base + prefix,
                                  "MaxKeys": LIST_PAGE_SIZE, **self._payer}
        if token:
            params["ContinuationToken"] = token
        for page_token, entries in self._page_entries(params, len(self.base)):
            for key, nbytes in entries:
                yield key, nbytes, page_token

    def _pages(self, params: dict, cut: int) -> Iterator[tuple[str, int | None]]:
        for _, entries in self._page_entries(params, cut):
            yield from entries

    def _page_entries(self, params: dict, cut: int) -> Iterator[tuple[str | None, list]]:
        """``(token that fetched the page, sorted entries)`` for each page."""
        while True:
            page = _retry.call_inner(self._list_page, self.retryable, params)
            entries = [(obj["Key"][cut:], obj.get("Size")) for obj in page.get("Contents") or ()]
            dirs = page.get("CommonPrefixes")
            if dirs:
                entries += [(d["Prefix"][cut:], None) for d in dirs]
                entries.sort(key=itemgetter(0))
            yield params.get("ContinuationToken"), entries
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            params = {**params, "ContinuationToken": token}

    # -- debris: unfinished multipart uploads ---------------------------------------------------
    def find_debris(self, prefix: str = "", older_than: float = 0.0,
                    flat: bool = False) -> Iterator[Debris]:
        """The unfinished multipart uploads of keys under ``prefix`` (kind
        ``"multipart-upload"``, ``handle`` the UploadId), whoever started them (S3 cannot tell
        a killed writer's from another tool's), whose last sign of activity is at least
        ``older_than`` seconds old (every one for 0). Their parts are stored, and billed, until
        they are aborted.

        One ListMultipartUploads request per 1000 uploads, then one ListParts per upload (per
        1000 parts), :data:`DEBRIS_REQUESTS_IN_FLIGHT` at once: ``size`` is the sum of the parts
        received, and ``created`` the later of the upload's ``Initiated`` and its newest part's
        ``LastModified``, so an upload still receiving parts is not stale however long ago it
        started. Where ListParts is refused, ``size`` is None and ``created`` the initiation.
        The uploads this process is running are ``live`` (owner: this process); no other
        owner can be told (S3 keeps nothing of a writer's but the account that started it), so
        none is ``orphaned``. ``flat``: only uploads of keys directly in the directory
        ``prefix`` ends in (the same requests)."""
        # no age given: everything, whatever the server's clock says (a part a killed writer
        # had sent may land after its death, stamped later than this call began)
        cutoff = time.time() - older_than if older_than > 0 else float("inf")
        directory = self.base + prefix[: prefix.rfind("/") + 1]
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.base + prefix,
                                  "MaxUploads": UPLOADS_PAGE_SIZE, "EncodingType": "url",
                                  **self._payer}
        runner = self.options.runner
        while True:
            page = _retry.call_inner(self._uploads_page, self.retryable, params)
            uploads = [(key, upload) for upload in page.get("Uploads") or ()
                       if (key := _decoded(upload.get("Key"), page))
                       and key.startswith(self.base) and upload.get("UploadId")
                       and not (flat and "/" in key[len(directory):])]
            wanted = 0 if runner.patched() else DEBRIS_REQUESTS_IN_FLIGHT
            with _helpers(wanted) as granted:
                found = runner.run(self._upload_debris, uploads, max(1, granted))
            for item in found:
                if item is not None and (item.created is None or item.created <= cutoff):
                    yield item
            key_marker = _decoded(page.get("NextKeyMarker"), page)
            id_marker = page.get("NextUploadIdMarker")
            if not page.get("IsTruncated") or not key_marker or (
                    key_marker, id_marker) == (params.get("KeyMarker"), params.get("UploadIdMarker")):
                return
            params = {**params, "KeyMarker": key_marker}
            if id_marker:
                params["UploadIdMarker"] = id_marker
            else:
                params.pop("UploadIdMarker", None)

    def _uploads_page(self, params: dict) -> dict:
        try:
            return self._client().list_multipart_uploads(**params)
        except Exception as e:
            if _status_and_code(e)[1] == "NoSuchUpload":
                # rclone serve s3 answers a prefix holding no upload so: an empty page
                return {"Uploads": [], "IsTruncated": False}
            self._fail(e, "listing of unfinished multipart uploads", params["Prefix"])

    def _upload_debris(self, found: tuple[str, dict]) -> Debris | None:
        """The Debris of one listed upload; None if it finished or was aborted meanwhile."""
        full, upload = found
        upload_id = upload["UploadId"]
        parts = self._upload_parts(full, upload_id)
        if parts is None:
            return None
        size, newest = parts
        times = [t for t in (_epoch(upload.get("Initiated")), newest) if t is not None]
        here = (self.endpoint, self.bucket, upload_id) in _UPLOADS_HERE
        return Debris("multipart-upload", full[len(self.base):], upload_id, size,
                      max(times) if times else None,
                      f"{socket.gethostname()}:{os.getpid()}" if here else None, here)

    def _upload_parts(self, full: str, upload_id: str) -> tuple[int | None, float | None] | None:
        """``(bytes in the parts received, newest part's time)`` of an unfinished upload, both
        None if the server will not list its parts (a permission of its own); None if there is
        no such upload (any more)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": full, "UploadId": upload_id,
                                  **self._payer}
        size = 0
        newest: float | None = None
        client = self._client()
        while True:
            try:
                page = _retry.call_inner(functools.partial(client.list_parts, **params),
                                         is_transient)
            except Exception as e:
                status, code = _status_and_code(e)
                if code == "NoSuchUpload":
                    return None
                if status is not None and not is_transient(e):
                    log.debug("S3 would not list the parts of the upload %s of %s (%s %s): "
                              "its size is unknown", upload_id, self._where(full), status, code)
                    return None, None
                self._fail(e, "listing of the parts of an unfinished multipart upload", full)
            for part in page.get("Parts") or ():
                size += int(part.get("Size") or 0)
                when = _epoch(part.get("LastModified"))
                if when is not None and (newest is None or when > newest):
                    newest = when
            marker = page.get("NextPartNumberMarker")
            if not page.get("IsTruncated") or not marker or marker == params.get("PartNumberMarker"):
                return size, newest
            params["PartNumberMarker"] = marker

    def remove_debris(self, items: list[Debris]) -> int:
        """Abort the unfinished uploads ``items`` (from :meth:`find_debris`), skipping those
        that are ``live``, this process's own, or gone already (``NoSuchUpload``); returns how
        many were aborted. A part still arriving for an aborted upload is refused by S3."""
        todo = []
        for item in items:
            if item.kind != "multipart-upload" or not item.key or not item.handle:
                raise ValueError(f"{self.describe()} has no debris of kind {item.kind!r} "
                                 f"({item.key!r}): only unfinished multipart uploads")
            if not item.live and (self.endpoint, self.bucket, item.handle) not in _UPLOADS_HERE:
                todo.append(item)
        runner = self.options.runner
        wanted = 0 if runner.patched() else DEBRIS_REQUESTS_IN_FLIGHT
        with _helpers(wanted) as granted:
            return sum(runner.run(self._abort_upload, todo, max(1, granted)))

    def _abort_upload(self, item: Debris) -> bool:
        full = self.base + item.key  # type: ignore[operator]
        abort = functools.partial(self._client().abort_multipart_upload, Bucket=self.bucket,
                                  Key=full, UploadId=item.handle, **self._payer)
        try:
            _retry.call_inner(abort, is_transient)
            return True
        except Exception as e:
            if _status_and_code(e)[1] == "NoSuchUpload":
                return False  # finished or aborted meanwhile
            self._fail(e, "abort of an unfinished multipart upload", full)

    # -- server-side copy -----------------------------------------------------------------------
    def can_copy_to(self, other: Backend) -> bool:
        return (
            isinstance(other, S3Backend)
            and other.endpoint == self.endpoint
            and other.root.alias == self.root.alias
            and other.unsigned == self.unsigned
            and other.credentials_fingerprint() == self.credentials_fingerprint()
        )

    def copy_to(self, key: str, other: Backend, dest_key: str) -> int | None:
        if not self.can_copy_to(other):
            raise ValueError(f"{self.describe()} cannot copy server-side to {other.describe()}")
        assert isinstance(other, S3Backend)
        src = self.base + key
        dest = other.base + dest_key
        try:
            head = self._head(src)
            if head is None:
                return None
            nbytes = head["ContentLength"]
            if other.bucket == self.bucket and dest == src:
                return nbytes  # S3 refuses copying an object onto itself unchanged
            source = {"Bucket": self.bucket, "Key": src}
            if nbytes <= MULTIPART_COPY_THRESHOLD:
                params: dict[str, Any] = {"MetadataDirective": "COPY"}
                if self.acl:
                    params["ACL"] = self.acl
                if head.get("StorageClass"):
                    params["StorageClass"] = head["StorageClass"]
                self._client().copy_object(Bucket=other.bucket, Key=dest, CopySource=source,
                                           **params, **self._payer)
            else:
                other._multipart_copy(dest, source, head, nbytes, self.acl)
            return nbytes
        except Exception as e:
            self._fail(e, "copy", src)

    def _multipart_copy(self, dest: str, source: dict, head: dict, nbytes: int, acl: str | None) -> None:
        params = {
            name: head[name]
            for name in ("ContentType", "ContentEncoding", "CacheControl", "ContentDisposition",
                         "ContentLanguage", "Metadata", "StorageClass", "Expires")
            if head.get(name)
        }
        if acl:
            params["ACL"] = acl
        part = _copy_part_size(nbytes)
        client = self._client()

        def job_for(number: int, first: int, last: int) -> PartJob:
            def job(upload_id: str, cancelled: threading.Event) -> str:
                response = _retry.call(
                    client.upload_part_copy, _unless(cancelled), Bucket=self.bucket, Key=dest,
                    UploadId=upload_id, PartNumber=number, CopySource=source,
                    CopySourceRange=f"bytes={first}-{last}", **self._payer,
                )
                etag = (response.get("CopyPartResult") or {}).get("ETag")
                if not etag:
                    raise S3Error(f"{self._where(dest)}: the server answered UploadPartCopy without "
                                  f"an ETag (it may not support multipart copies)")
                return etag

            return job

        jobs = (
            (number, job_for(number, offset, min(offset + part, nbytes) - 1))
            for number, offset in enumerate(range(0, nbytes, part), start=1)
        )
        try:
            _Multipart(self, dest, params, COPY_PARTS_IN_FLIGHT).run(jobs)
        except Exception as e:
            # the parts were retried one by one already: the engine must not copy them all again
            _retry.mark_retried(e)
            raise
