"""gs:// — Google Cloud Storage through its JSON API (and emulators via ``STORAGE_EMULATOR_HOST``).

Transport
    Every request goes straight to the JSON API over :mod:`._http1`, a lean keep-alive HTTP/1.1
    client: one HTTP request per call, at a fraction of the client CPU of google-auth's urllib3
    transport or google-cloud-storage (with the GIL, CPU per request is what caps requests per
    second; docs/performance.md has the figures). google-auth only mints the bearer token, which is cached and
    renewed a few minutes before it expires (or once after a 401). Connections are made lazily,
    once per process per (credentials, endpoint), the pool sized to ``num_threads``. Nothing
    retries on its own: the engine does (``retryable`` below says which errors are transient).
    obstore is not used here: it is no faster on small GETs, its GET exposes neither
    ``x-goog-hash`` (composite objects could not be verified) nor, unless asked, the stored
    encoding (gzip objects come back transcoded), and its PUT is refused by fake-gcs-server.

Reads
    One GET per read: the stored encoding, md5 / crc32c and component count come from the
    response headers (``x-goog-stored-content-encoding``, ``x-goog-hash``,
    ``x-goog-component-count``); a full read is checked with the crc32c where the object has
    one (a tenth of md5's CPU), else with the md5.
    Bytes arrive exactly as stored (``Accept-Encoding: gzip``, no
    decoding), so gzip objects are never transcoded. A body shorter than announced raises a
    retryable error; short data is never returned. Ranges follow Python slice rules; an empty
    range costs one metadata request and no data request. A download to a file (``stream_to``)
    writes the body out :data:`STREAM_CHUNK` bytes at a time; a resumed one asks
    ``Range: bytes=N-`` and reports the whole object's hash and size.

Writes
    Objects up to ``composite_upload_threshold`` bytes are one ``uploadType=multipart`` request
    with ``md5Hash`` set, so the service rejects bytes damaged on the way; the md5 it answers is
    compared as well (for servers that store whatever arrives): a mismatch deletes the damaged
    object and raises :class:`~cloudfiles_dask.exceptions.MD5IntegrityError`, never retried.
    Larger bytes, and binary file handles that turn out larger (read part by part, never
    whole), become a *composite upload*: parts of ``composite_upload_threshold`` bytes (each
    sent with its crc32c rather than an md5: they never need one, and crc32c costs a tenth of
    the CPU) uploaded in parallel on the engine's reusable threads (at most 4 in flight, each
    read only when a thread is free to send it, which also bounds memory to about 4 parts;
    one by one under gevent's monkey-patching) as STANDARD-class objects named
    ``<key>.cfdask-part-<16 hex>.<level>.<i>``, composed 32 at a time into a tree whose root is
    the final object (with the requested content type, cache control, storage class and
    encoding). Each group of parts is deleted right after it is composed, and the composed
    object's crc32c is checked against the bytes read. On failure the parts written so far are
    deleted (best effort). A process killed mid-upload leaves parts behind (billed as objects):
    ``find_debris`` / ``remove_debris`` (the sweep), and :func:`find_composite_parts` /
    :func:`clean_composite_parts`, find and remove them. Parts and intermediate composites carry
    the custom metadata ``cfdask-owner: host:pid`` of their writer (the final object does not),
    so a sweep never removes the parts of an upload still running on the same machine.
    Composite objects have no md5; their reads are always checked with crc32c.

Batches
    ``exists_many`` / ``delete_many`` send up to 100 calls (the documented GCS limit) in one
    JSON batch request. An endpoint that refuses batches is remembered (per process) and served
    with single requests from then on; sub-requests the batch answers with anything but
    success or 404 are redone one by one, under the retry policy.

Credentials (first that applies)
    explicit ``secrets=`` (service-account dict or JSON string, or any google-auth credentials
    object); anonymous when ``STORAGE_EMULATOR_HOST`` is set; ``<bucket>-google-secret.json`` then
    ``google-secret.json``; google default credentials; else anonymous access (public buckets),
    in which case a refusal raises :class:`~cloudfiles_dask.exceptions.AuthorizationError`
    naming the bucket and the credentials in use. Secrets never appear in messages or reprs.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import heapq
import logging
import os
import re
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from itertools import chain
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

from .. import _retry, paths
from .. import secrets as _secrets
from .._checksums import crc32c_b64, crc32c_hasher, digest_text, new_digest, preload_crc32c
from .._iteration import batched
from .._owners import Owners, this_process
from ..compression import normalize_encoding
from ..exceptions import (
    AuthorizationError,
    CRC32CIntegrityError,
    MD5IntegrityError,
    StorageError,
    UnsupportedCompressionType,
    UnsupportedProtocolError,
)
from . import _http1
from ._http1 import SkipWriter
from .base import Backend, BackendOptions, Blob, Debris, PutMeta

try:
    from orjson import dumps as _dumps
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency
    import json

    _loads = json.loads

    def _dumps(value: Any) -> bytes:
        return json.dumps(value).encode()

__all__ = ["GCSBackend", "clean_composite_parts", "find_composite_parts"]

_LOG = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
SCOPES = (
    "https://www.googleapis.com/auth/devstorage.full_control",
    "https://www.googleapis.com/auth/devstorage.read_only",
    "https://www.googleapis.com/auth/devstorage.read_write",
)
DEFAULT_CONTENT_TYPE = "application/octet-stream"
BATCH_LIMIT = 100  # calls per JSON batch request (documented GCS limit)
COMPOSE_LIMIT = 32  # sources per compose request (GCS limit)
PARTS_IN_FLIGHT = 4  # composite upload: parts being uploaded at once (each holds a part in memory)
STREAM_CHUNK = 1024 * 1024  # bytes read from a response at a time when streaming into a file
PART_MARK = ".cfdask-part-"
_PART_RE = re.compile(r"\.cfdask-part-[0-9a-f]{16}\.\d+\.\d+\Z")
#: Custom metadata of composite parts: ``host:pid`` of the process that wrote them, so that a
#: sweep can tell the parts of an upload still running on this machine (never removed).
OWNER_METADATA = "cfdask-owner"

_GET_HEADERS = {"Accept-Encoding": "gzip", "User-Agent": "cloudfiles-dask"}
_HEADERS = {"User-Agent": "cloudfiles-dask"}
_JSON_HEADERS = {**_HEADERS, "Content-Type": "application/json"}
_HEAD_FIELDS = (
    "size,contentType,cacheControl,etag,updated,md5Hash,contentEncoding,contentDisposition,"
    "contentLanguage,storageClass,crc32c,componentCount"
)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(-?\d+)/(\d+|\*)")
_BATCH_STATUS = re.compile(rb"^\s*HTTP/\d(?:\.\d)?\s+(\d{3})")
_BATCH_ID = re.compile(rb"(?im)^content-id:\s*<?response-[^\r\n>]*?(\d+)>?\s*$")
_FRACTION = re.compile(r"\.(\d+)")
_EMPTY = object()  # a range that selects no bytes, whatever the object's length


# -- endpoint and credentials --------------------------------------------------------------------
def _emulator_host() -> str | None:
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if not host:
        return None
    return host.rstrip("/") if "://" in host else "http://" + host.rstrip("/")


def api_endpoint() -> str:
    """The JSON API base URL in force: the emulator's, ``API_ENDPOINT_OVERRIDE``, or Google's."""
    override = _emulator_host() or os.environ.get("API_ENDPOINT_OVERRIDE")
    return override.rstrip("/") if override else DEFAULT_ENDPOINT


class _Plan:
    """Where this backend's credentials come from: a cache key that is never the secret, words
    for error messages, and a maker run once per process for a new connection."""

    __slots__ = ("key", "source", "make")

    def __init__(self, key: str, source: str, make: Callable[[], tuple[Any, str | None, str]]):
        self.key = key
        self.source = source
        self.make = make


def _anonymous(reason: str) -> tuple[Any, None, str]:
    from google.auth.credentials import AnonymousCredentials

    return AnonymousCredentials(), None, reason


def _from_info(info: dict, source: str) -> tuple[Any, str | None, str]:
    kind = info.get("type", "service_account")
    try:
        if kind == "service_account":
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        elif kind == "authorized_user":
            from google.oauth2 import credentials as user

            credentials = user.Credentials.from_authorized_user_info(info, scopes=SCOPES)
        else:
            raise ValueError(f"unsupported credentials type {kind!r}")
    except Exception as e:  # the message could quote the key material: name the type only
        raise ValueError(
            f"Cannot load Google credentials from {source}: {type(e).__name__} (expected a "
            f"service_account or authorized_user JSON object, got type {kind!r})"
        ) from None
    return credentials, info.get("project_id") or info.get("quota_project_id"), source


def _project_of(credentials: Any) -> str | None:
    return getattr(credentials, "project_id", None) or getattr(credentials, "quota_project_id", None)


_DEFAULT_CREDENTIALS: dict[int, tuple[Any, str | None, str]] = {}
_DEFAULT_LOCK = threading.Lock()


def _default_credentials() -> tuple[Any, str | None, str]:
    """google.auth.default(), looked up once per process (it may probe a metadata server)."""
    pid = os.getpid()
    found = _DEFAULT_CREDENTIALS.get(pid)
    if found is not None:
        return found
    with _DEFAULT_LOCK:
        found = _DEFAULT_CREDENTIALS.get(pid)
        if found is None:
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError

            try:
                credentials, project = google.auth.default(scopes=SCOPES)
                found = (credentials, project, "google default credentials")
            except DefaultCredentialsError:
                found = _anonymous(
                    "anonymous access (no secrets=, no google-secret.json and no google "
                    "default credentials were found)"
                )
            _DEFAULT_CREDENTIALS.clear()
            _DEFAULT_CREDENTIALS[pid] = found
    return found


def credential_plan(secrets: Any, bucket: str | None) -> _Plan:
    """How credentials for ``bucket`` are found (explicit > emulator > files > default)."""
    explicit = _secrets.parse_explicit(secrets)
    if explicit is not None:
        if isinstance(explicit, dict):
            source = "the service account given as secrets="
            return _Plan("explicit:" + _secrets.fingerprint(explicit), source,
                         lambda: _from_info(explicit, source))
        if hasattr(explicit, "before_request"):  # any google.auth credentials object
            source = f"the {type(explicit).__name__} given as secrets="
            return _Plan("explicit:" + _secrets.fingerprint(explicit), source,
                         lambda: (explicit, _project_of(explicit), source))
        raise TypeError(
            f"secrets= for gs:// must be a service-account dict or JSON string, or a google.auth "
            f"credentials object; got {type(explicit).__name__}"
        )
    if _emulator_host():
        reason = "anonymous access (STORAGE_EMULATOR_HOST is set)"
        return _Plan("anonymous", reason, lambda: _anonymous(reason))
    info = _secrets.google_service_account(bucket)
    if info is not None:
        source = "the service account in a google-secret.json secrets file"
        return _Plan("file:" + _secrets.fingerprint(info), source, lambda: _from_info(info, source))
    return _Plan("default", "google default credentials", _default_credentials)


# -- per-process connections ---------------------------------------------------------------------
TOKEN_MARGIN = 300.0  # seconds before a bearer token expires when it is renewed


class _Connection:
    """The transport for one (credentials, endpoint) in one process: a keep-alive HTTP/1.1
    pool and the credentials' request headers (``Authorization``, maybe ``x-goog-user-project``),
    minted by google-auth and renewed :data:`TOKEN_MARGIN` seconds before they expire."""

    def __init__(self, credentials: Any, project: str | None, source: str, api_base: str, pool_size: int):
        from google.auth.credentials import AnonymousCredentials

        self.pid = os.getpid()
        self.credentials = credentials
        self.project = project
        self.source = source
        self.api_base = api_base
        self.pool_size = pool_size
        # Anonymous credentials send no header and cannot refresh: a 401 is an answer.
        self.anonymous = isinstance(credentials, AnonymousCredentials)
        self.http = _http1.pool_for(api_base, pool_size)
        self._auth: dict[str, str] = {}
        self._auth_until = float("inf") if self.anonymous else float("-inf")  # time.monotonic()
        self._auth_lock = threading.Lock()

    def auth_headers(self, renew: bool = False) -> dict[str, str]:
        """The credentials' headers; a new token when the cached one is near its end (or
        ``renew``: the service refused it)."""
        if not renew and time.monotonic() < self._auth_until:
            return self._auth
        with self._auth_lock:
            if renew or time.monotonic() >= self._auth_until:
                self._renew(renew)
        return self._auth

    def _renew(self, force: bool) -> None:
        credentials = self.credentials
        left = _seconds_left(credentials)
        if force or credentials.token is None or (left is not None and left < TOKEN_MARGIN):
            from google.auth.transport.requests import Request

            credentials.refresh(Request())
            left = _seconds_left(credentials)
        headers: dict[str, str] = {}
        credentials.apply(headers)
        self._auth = headers
        self._auth_until = (
            float("inf") if left is None else time.monotonic() + left - min(TOKEN_MARGIN, left / 2)
        )


def _seconds_left(credentials: Any) -> float | None:
    """Seconds until the credentials' token expires (None: it does not)."""
    expiry = getattr(credentials, "expiry", None)
    if expiry is None:
        return None
    if expiry.tzinfo is None:  # google-auth keeps naive UTC datetimes
        expiry = expiry.replace(tzinfo=timezone.utc)
    return (expiry - datetime.now(timezone.utc)).total_seconds()


_CONNECTIONS: dict[tuple, _Connection] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _connection(plan: _Plan, api_base: str, pool_size: int) -> _Connection:
    """The process-wide connection for these credentials and endpoint (made on first use, and
    again after a fork, or when a caller needs a larger pool)."""
    key = (os.getpid(), plan.key, api_base)
    conn = _CONNECTIONS.get(key)
    if conn is not None and conn.pool_size >= pool_size:
        return conn
    with _CONNECTIONS_LOCK:
        conn = _CONNECTIONS.get(key)
        if conn is None or conn.pool_size < pool_size:
            pid = key[0]
            for stale in [k for k in _CONNECTIONS if k[0] != pid]:  # inherited over fork
                del _CONNECTIONS[stale]
            credentials, project, source = plan.make()
            conn = _Connection(credentials, project, source, api_base, pool_size)
            _CONNECTIONS[key] = conn
    return conn


def reset_connections() -> None:
    """Forget every cached connection of this process (tests, credential rotation)."""
    with _CONNECTIONS_LOCK:
        for conn in _CONNECTIONS.values():
            if conn.pid == os.getpid():
                conn.http.close()
        _CONNECTIONS.clear()
    with _DEFAULT_LOCK:
        _DEFAULT_CREDENTIALS.clear()
    _NO_BATCH.clear()


# -- errors --------------------------------------------------------------------------------------
class GCSError(StorageError):
    """A GCS request failed with HTTP status ``code``; ``transient`` for 408, 429 and 5xx."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code

    @property
    def transient(self) -> bool:  # type: ignore[override]
        return self.code in _TRANSIENT_CODES

    def __reduce__(self):
        return type(self), (str(self), self.code)


class GCSConnectionError(StorageError, ConnectionError):
    """No usable answer: the connection failed, went silent, or the answer was cut short or
    damaged. Transient, except when the server's TLS certificate was refused."""

    def __init__(self, message: str, transient: bool = True):
        super().__init__(message)
        self.transient = transient

    def __reduce__(self):
        return type(self), (str(self), self.transient)


class TruncatedBodyError(GCSConnectionError):
    """The service sent fewer bytes than it announced (retryable)."""


_TRANSIENT_CODES = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """True for connection failures, timeouts, truncated or damaged answers, 408, 429 and 5xx.
    (Whether an error was retried already is not its kind: see ``_retry.retried``.)"""
    if isinstance(error, StorageError):
        return bool(error.transient)
    return isinstance(error, (ConnectionError, TimeoutError))


def _server_message(data: bytes) -> str:
    if not data:
        return "(no message)"
    try:
        message = _loads(data)["error"]["message"]
        if isinstance(message, str):
            return message
    except Exception:  # noqa: BLE001 - not the JSON error shape
        pass
    return data[:300].decode("utf-8", "replace").strip()


# -- the backend ---------------------------------------------------------------------------------
class GCSBackend(Backend):
    """``gs://bucket/prefix``: keys are object names below ``prefix/``."""

    exists_batch_size = BATCH_LIMIT
    delete_batch_size = BATCH_LIMIT
    takes_request_payer = True
    helper_threads = PARTS_IN_FLIGHT
    #: Entries per listing page; None sends no ``maxResults`` and takes the service's page: 1000
    #: on Google (its cap), while emulators such as fake-gcs-server answer with every match in
    #: one page, where each page of 1000 cost the server a pass over the whole prefix.
    list_page_size: int | None = None

    @classmethod
    def reset_process_state(cls) -> None:
        reset_connections()

    def __init__(self, root, options: BackendOptions):
        super().__init__(root, options)
        preload_crc32c()
        if not root.bucket:
            raise UnsupportedProtocolError(f"gs:// paths need a bucket: {root!r}")
        path = root.path or ""
        self.bucket_name = root.bucket
        self.base = path if not path or path.endswith("/") else path + "/"
        self.user_project = options.request_payer or None
        self.api_base = api_endpoint()
        # request targets (path and query) on the API host
        root_path = urlsplit(self.api_base).path.rstrip("/")
        bucket_q = quote(self.bucket_name, safe="")
        self._up = "userProject=" + quote(self.user_project, safe="") if self.user_project else ""
        self._media_path = f"{root_path}/download/storage/v1/b/{bucket_q}/o/"
        self._media_query = "?alt=media" + ("&" + self._up if self._up else "")
        self._meta_path = f"{root_path}/storage/v1/b/{bucket_q}/o/"
        self._list_path = f"{root_path}/storage/v1/b/{bucket_q}/o"
        self._batch_target = f"{root_path}/batch/storage/v1"
        self._upload_target = (f"{root_path}/upload/storage/v1/b/{bucket_q}/o?uploadType=multipart"
                               + ("&" + self._up if self._up else ""))
        self._plan_cache: _Plan | None = None
        self._conn: _Connection | None = None
        self._active = 0
        self._active_lock = threading.Lock()
        if self.api_base in _NO_BATCH:
            self._batches_refused()

    # -- plumbing --------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"GCSBackend({self.describe()!r})"

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_conn=None, _plan_cache=None, _active_lock=None, _active=0)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._active_lock = threading.Lock()

    def describe(self) -> str:
        return f"gs://{self.bucket_name}/{self.base}"

    def url(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self.base}{key}"

    def _where(self, name: str | None) -> str:
        return f"gs://{self.bucket_name}/{name}" if name is not None else f"gs://{self.bucket_name}"

    def _plan(self) -> _Plan:
        plan = self._plan_cache
        if plan is None:
            plan = self._plan_cache = credential_plan(self.options.secrets, self.bucket_name)
        return plan

    def _c(self) -> _Connection:
        conn = self._conn
        if conn is None or conn.pid != os.getpid():
            pool = max(10, (self.options.num_threads or 1) + 4)
            conn = self._conn = _connection(self._plan(), self.api_base, pool)
        return conn

    def retryable(self, error: BaseException) -> bool:
        return is_transient(error)

    def _translate(self, error: BaseException, name: str | None, action: str) -> BaseException | None:
        """A library error for a transport or token failure (naming gs://bucket/key), or None
        to re-raise ``error`` as it is."""
        where = self._where(name)
        if isinstance(error, _http1.IncompleteBody):
            return TruncatedBodyError(f"{action} {where}: {error}")
        if isinstance(error, OSError):
            refused = isinstance(error, ssl.SSLCertVerificationError)
            detail = str(error) or "no answer"
            return GCSConnectionError(f"{action} {where}: {type(error).__name__}: {detail}", not refused)
        auth = sys.modules.get("google.auth.exceptions")
        if auth is not None and isinstance(error, auth.GoogleAuthError):
            if isinstance(error, auth.TransportError) or getattr(error, "retryable", False) is True:
                return GCSConnectionError(f"{action} {where}: could not get a token: {error}")
            return AuthorizationError(
                f"Could not authenticate to {self._where(None)} while trying to {action} {where}: "
                f"{type(error).__name__}: {error}. Credentials: {self._plan().source}."
            )
        return None

    def _refused(self, status: Any, message: str, where: str, action: str) -> AuthorizationError:
        return AuthorizationError(
            f"Access to bucket gs://{self.bucket_name} was refused (HTTP {status}) while trying to "
            f"{action} {where}: {message}. Credentials: {self._plan().source}."
        )

    def _status_error(self, resp: Any, name: str | None, action: str) -> BaseException:
        status = resp.status
        message = _server_message(resp.data)
        where = self._where(name)
        if status in (401, 403):
            return self._refused(status, message, where, action)
        if status == 404 and action == "list":
            return GCSError(
                f"{action} {where}: the bucket gs://{self.bucket_name} does not exist "
                f"(HTTP 404: {message})", status,
            )
        return GCSError(f"{action} {where}: HTTP {status}: {message}", status)

    def _send(self, method: str, target: str, name: str | None, action: str,
              headers: dict = _HEADERS, body: _http1.Body = None, stream: bool = False) -> _http1.Response:
        """One request (``target``: path and query on the API host); a refused token is renewed
        and the request sent once more. Transport and token failures become library errors."""
        conn = self._conn
        if conn is None or conn.pid != os.getpid():
            conn = self._c()
        renew = False
        while True:
            try:
                auth = conn.auth_headers(renew)
                resp = conn.http.request(method, target, {**headers, **auth} if auth else headers,
                                         body, _retry.timeouts(), stream)
            except Exception as e:
                new = self._translate(e, name, action)
                if new is None:
                    raise
                raise new from e
            if resp.status != 401 or conn.anonymous or renew:
                return resp
            resp.release()
            renew = True

    def _json(self, resp: _http1.Response, name: str | None, action: str) -> dict:
        """The JSON body of a successful answer; a damaged one is a transient error."""
        try:
            return _loads(resp.data)
        except ValueError as e:
            raise GCSConnectionError(f"{action} {self._where(name)}: the answer is not valid JSON ({e})") from e

    # -- reads -----------------------------------------------------------------------------------
    def get(self, key: str, start: int | None = None, end: int | None = None) -> Blob | None:
        name = self.base + key
        ranged = start is not None or end is not None
        headers = _GET_HEADERS
        if ranged:
            header = _range_header(start, end)
            if header is _EMPTY:
                return self._empty_read(name)
            if header is not None:
                headers = {**_GET_HEADERS, "Range": header}
        resp = self._send("GET", self._media_path + quote(name, safe="") + self._media_query, name, "read", headers)
        status = resp.status
        if status == 200 or status == 206:
            data = resp.data
            h = resp.headers
            encoding, transcoded = self._served_encoding(h, name)
            if ranged:
                offset, total = _received_range(h, status, len(data), self._where(name))
                return Blob(_cut(data, offset, total, start, end), encoding)
            if status == 206:  # a full read answered partially: never hand back a fragment
                raise TruncatedBodyError(f"read {self._where(name)}: the service answered 206 to a full read")
            if transcoded:
                return Blob(data, encoding)
            digest, kind = _hash_from_headers(h)
            return Blob(data, encoding, digest, kind)
        if status == 404:
            return None
        if status == 416:  # the range starts past the end: the object exists, the slice is empty
            return Blob(b"", self._served_encoding(resp.headers, name)[0])
        raise self._status_error(resp, name, "read")

    def stream_to(self, key: str, fileobj: BinaryIO, start: int = 0) -> Blob | None:
        """One media GET (``Range: bytes=start-`` when resuming) whose body is copied into
        ``fileobj`` :data:`STREAM_CHUNK` bytes at a time, so memory stays near one chunk. The
        md5 / crc32c and size reported are the whole object's (the engine checks the finished
        file against them); a resumed read whose answer lacks them costs one metadata request.
        A body cut short raises a retryable error after writing what arrived."""
        name = self.base + key
        headers = {**_GET_HEADERS, "Range": f"bytes={start}-"} if start > 0 else _GET_HEADERS
        target = self._media_path + quote(name, safe="") + self._media_query
        resp = self._send("GET", target, name, "read", headers, stream=True)
        try:
            status = resp.status
            if status == 200 or status == 206:
                return self._stream_body(resp, name, fileobj, start)
            if status == 416 and start > 0:  # nothing at or past ``start``: the size says if right
                # some servers (fake-gcs-server) hang up after a 416 without saying so: this
                # connection must not be reused
                resp.close()
                return self._streamed_from_metadata(name)
            resp.data = self._read_body(resp, name, None)
            if status == 404:
                return None
            raise self._status_error(resp, name, "read")
        finally:
            resp.release()  # back to the pool if the body was read to its end, else closed

    def _read_body(self, resp: _http1.Response, name: str, amt: int | None) -> bytes:
        try:
            return resp.read(amt)
        except Exception as e:
            new = self._translate(e, name, "read")
            if new is None:
                raise
            raise new from e

    def _stream_body(self, resp: _http1.Response, name: str, fileobj: BinaryIO, start: int) -> Blob:
        h = resp.headers
        where = self._where(name)
        encoding, transcoded = self._served_encoding(h, name)
        skip = 0
        length = h.get("content-length")
        total = int(length) if length is not None else None  # the transport delivers all of it
        if resp.status == 206:
            match = _CONTENT_RANGE.match(h.get("content-range", ""))
            if match is None or int(match.group(1)) != start:
                raise StorageError(f"read {where}: asked for bytes {start}- and got Content-Range "
                                   f"{h.get('content-range')!r}")
            total = None if match.group(3) == "*" else int(match.group(3))
        else:
            skip = start  # the whole object (Range not asked for, or ignored)
        digest, kind = _hash_from_headers(h)
        # a whole object is hashed as it arrives (the engine's check then reads no file back)
        hasher = None
        if start == 0 and skip == 0 and not transcoded and kind is not None:
            hasher = new_digest(kind == "crc32c")
        received = 0
        out = SkipWriter(fileobj, skip)
        while chunk := self._read_body(resp, name, STREAM_CHUNK):
            received += len(chunk)
            out.write(chunk)
            if hasher is not None:
                hasher.update(chunk)
        if resp.status == 206 and total is not None and start + received != total:
            raise TruncatedBodyError(f"read {where}: received bytes {start}-{start + received - 1} "
                                     f"of {total}")
        if transcoded:  # decoded on the way: the stored checksum and size do not apply
            return Blob(None, encoding)
        if digest is None and start > 0:
            return self._streamed_from_metadata(name, encoding, total)
        blob = Blob(None, encoding, digest, kind, total)
        if hasher is not None:
            setattr(blob, "crc32c" if kind == "crc32c" else "md5", digest_text(hasher))
        return blob

    def _streamed_from_metadata(self, name: str, encoding: Any = _EMPTY, size: int | None = None) -> Blob | None:
        """The Blob of a streamed read from the object's metadata (checksum, size, encoding)."""
        meta = self._metadata(name, "size,md5Hash,crc32c,componentCount,contentEncoding", "read")
        if meta is None:
            return None
        if encoding is _EMPTY:
            encoding = self._encoding(meta.get("contentEncoding"), name)
        if size is None and meta.get("size") is not None:
            size = int(meta["size"])
        digest, kind = _pick_checksum(meta.get("md5Hash"), meta.get("crc32c"),
                                      meta.get("componentCount") is not None)
        return Blob(None, encoding, digest, kind, size)

    def _empty_read(self, name: str) -> Blob | None:
        meta = self._metadata(name, "contentEncoding", "read")
        if meta is None:
            return None
        return Blob(b"", self._encoding(meta.get("contentEncoding"), name))

    def _encoding(self, value: str | None, name: str) -> str | None:
        if not value:
            return None
        try:
            return normalize_encoding(value)
        except UnsupportedCompressionType:
            raise UnsupportedCompressionType(
                f"{self._where(name)} is stored with Content-Encoding {value!r}, which this "
                f"library cannot decode"
            ) from None

    def _served_encoding(self, h: Any, name: str) -> tuple[str | None, bool]:
        """(encoding of the bytes received, True if the service decoded them on the way)."""
        stored = h.get("x-goog-stored-content-encoding")
        served = h.get("content-encoding")
        if stored is None:
            return self._encoding(served, name), False
        if stored == "gzip" and served != "gzip":
            return None, True  # decompressive transcoding: the md5 is of the stored bytes
        return self._encoding(stored, name), False

    def _metadata(self, name: str, fields: str, action: str) -> dict | None:
        target = f"{self._meta_path}{quote(name, safe='')}?fields={fields}" + ("&" + self._up if self._up else "")
        resp = self._send("GET", target, name, action)
        if resp.status == 200:
            return self._json(resp, name, action)
        if resp.status == 404:
            return None
        raise self._status_error(resp, name, action)

    def head(self, key: str) -> dict | None:
        name = self.base + key
        meta = self._metadata(name, _HEAD_FIELDS, "read metadata of")
        if meta is None:
            return None
        encoding = meta.get("contentEncoding")
        try:
            encoding = normalize_encoding(encoding)
        except UnsupportedCompressionType:
            pass  # reported as stored
        size = meta.get("size")
        count = meta.get("componentCount")
        return {
            "Cache-Control": meta.get("cacheControl"),
            "Content-Length": int(size) if size is not None else None,
            "Content-Type": meta.get("contentType"),
            "ETag": meta.get("etag"),
            "Last-Modified": _parse_time(meta.get("updated")),
            "Content-Md5": meta.get("md5Hash"),
            "Content-Encoding": encoding,
            "Content-Disposition": meta.get("contentDisposition"),
            "Content-Language": meta.get("contentLanguage"),
            "Storage-Class": meta.get("storageClass"),
            "Content-Crc32c": meta.get("crc32c"),
            "Component-Count": int(count) if count is not None else None,
        }

    def get_acl(self, key: str) -> list[dict] | None:
        """The object's ACL entries (the JSON API's ``acl``), or None if it is missing."""
        meta = self._metadata(self.base + key, "acl&projection=full", "read the ACL of")
        return None if meta is None else list(meta.get("acl") or [])

    def size(self, key: str) -> int | None:
        meta = self._metadata(self.base + key, "size", "read the size of")
        if meta is None:
            return None
        return int(meta.get("size", 0))

    # -- exists / delete (batched) -----------------------------------------------------------------
    def exists_many(self, keys: list[str]) -> dict[str, bool]:
        names = [self.base + key for key in keys]
        found = self._for_names(names, "GET", "?fields=name", self._exists_one, _exists_status)
        return dict(zip(keys, found, strict=True))

    def delete_many(self, keys: list[str]) -> None:
        self._delete_names([self.base + key for key in keys])

    def _delete_names(self, names: list[str]) -> None:
        self._for_names(names, "DELETE", "", self._delete_one, _deleted_status)

    def _exists_one(self, name: str) -> bool:
        return self._metadata(name, "name", "check the existence of") is not None

    def _delete_one(self, name: str) -> bool:
        target = self._meta_path + quote(name, safe="") + ("?" + self._up if self._up else "")
        resp = self._send("DELETE", target, name, "delete")
        if resp.status < 300 or resp.status == 404:
            return True
        raise self._status_error(resp, name, "delete")

    def _for_names(self, names: list[str], method: str, query: str,
                   single: Callable[[str], bool], judge: Callable[[int], bool | None]) -> list[bool]:
        """``single(name)`` for each name, through batch requests where the endpoint takes them.
        Sub-requests the batch answers with anything but success / 404 are redone singly."""
        if not names:
            return []
        with self._active_lock:
            self._active += 1
        try:
            results: list[bool | None] = [None] * len(names)
            if len(names) > 1 and self.api_base not in _NO_BATCH:
                for offset, chunk in _offsets(names, BATCH_LIMIT):
                    statuses = self._batch(method, chunk, query)
                    if statuses is None:
                        break
                    for i, status in enumerate(statuses):
                        results[offset + i] = None if status is None else judge(status)
            redo = [i for i, found in enumerate(results) if found is None]
            if redo:
                outcomes = self._each(single, [names[i] for i in redo])
                for i, found in zip(redo, outcomes, strict=True):
                    results[i] = found
            return results  # type: ignore[return-value]
        finally:
            with self._active_lock:
                self._active -= 1

    def _each(self, fn: Callable[[str], bool], names: list[str]) -> list[bool]:
        """``fn`` over names, each under the retry policy; in parallel on the engine's runner
        when there are many (greenlets for a green CloudFiles), with this backend's thread budget
        shared among the batch calls running at the same time."""
        runner = self.options.runner
        workers = max(1, (self.options.num_threads or 1) // max(1, self._active))
        return runner.run(lambda name: _retry.call_inner(fn, is_transient, name), names, workers)

    def _batch(self, method: str, names: list[str], query: str) -> list[int | None] | None:
        """Statuses of ``method`` on each name in one JSON batch request (None where a part is
        missing from the answer); None if the endpoint does not take batch requests."""
        if self._up:
            query = (query + "&" if query else "?") + self._up
        boundary = "cfdask" + os.urandom(12).hex()
        prefix = self._meta_path
        parts = [
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <cfdask+{i}>\r\n\r\n"
            f"{method} {prefix}{quote(name, safe='')}{query} HTTP/1.1\r\n\r\n\r\n"
            for i, name in enumerate(names)
        ]
        parts.append(f"--{boundary}--\r\n")
        headers = {**_HEADERS, "Content-Type": f"multipart/mixed; boundary={boundary}"}
        action = "check or delete objects in" if method == "GET" else "delete objects in"
        resp = self._send("POST", self._batch_target, None, action, headers, "".join(parts).encode())
        status = resp.status
        if status == 200:
            statuses = _parse_batch(resp.data, resp.headers.get("content-type", ""), len(names))
            if statuses is not None:
                return statuses
        elif status in (401, 403):
            raise self._status_error(resp, None, action)
        elif status in _TRANSIENT_CODES:
            raise self._status_error(resp, None, action)
        _NO_BATCH.add(self.api_base)
        _LOG.info("%s does not take JSON batch requests (HTTP %s); using single requests",
                  self.api_base, status)
        self._batches_refused()
        return None

    def _batches_refused(self) -> None:
        # One key per engine job from now on: the engine's threads then give the parallelism.
        self.exists_batch_size = 1
        self.delete_batch_size = 1

    # -- listing ---------------------------------------------------------------------------------
    def list(self, prefix: str = "", flat: bool = False, size: bool = False) -> Iterator[tuple[str, int | None]]:
        return self._list(self.base + prefix, flat)

    def list_resumable(
        self, prefix: str = "", size: bool = False, token: str | None = None
    ) -> Iterator[tuple[str, int | None, str | None]]:
        cut = len(self.base)
        params = {"prefix": self.base + prefix, **self._page_size(),
                  "fields": "items(name,size),nextPageToken"}
        if self.user_project:
            params["userProject"] = self.user_project
        while True:
            page = _retry.call_inner(self._list_page, is_transient, params, token)
            files = sorted(
                (name[cut:], int(item.get("size", 0)))
                for item in page.get("items", ())
                if not (name := item["name"]).endswith("/")
            )
            for key, nbytes in files:
                yield key, nbytes, token
            token = page.get("nextPageToken")
            if not token:
                return

    def _page_size(self) -> dict[str, str]:
        return {"maxResults": str(self.list_page_size)} if self.list_page_size else {}

    def _list_page(self, params: dict, token: str | None) -> dict:
        query = urlencode({**params, "pageToken": token} if token else params)
        resp = self._send("GET", f"{self._list_path}?{query}", params["prefix"], "list")
        if resp.status == 200:
            return self._json(resp, params["prefix"], "list")
        raise self._status_error(resp, params["prefix"] or None, "list")

    def _list(self, full_prefix: str, flat: bool) -> Iterator[tuple[str, int | None]]:
        cut = len(self.base)
        params = {"prefix": full_prefix, **self._page_size()}
        if flat:
            params["delimiter"] = "/"
            params["fields"] = "items(name,size),prefixes,nextPageToken"
        else:
            params["fields"] = "items(name,size),nextPageToken"
        if self.user_project:
            params["userProject"] = self.user_project
        seen_dirs: set[str] = set()
        held: list[str] = []  # directories that sort after the last file of the page so far
        token = None
        while True:
            page = _retry.call_inner(self._list_page, is_transient, params, token)
            files = [
                (name[cut:], int(item.get("size", 0)))
                for item in page.get("items", ())
                if not (name := item["name"]).endswith("/")
            ]
            files.sort()
            token = page.get("nextPageToken")
            fresh = [d for d in page.get("prefixes", ()) if d not in seen_dirs]
            if fresh or held:
                seen_dirs.update(fresh)
                dirs = sorted(held + [d[cut:] for d in fresh])
                held = []
                if token and files:
                    # Google pages over files and directories together; some emulators page
                    # over files only and send directories from beyond the page: keep those
                    # until a later page passes them, so the merged order stays sorted.
                    split = bisect.bisect_right(dirs, files[-1][0])
                    dirs, held = dirs[:split], dirs[split:]
                yield from heapq.merge(files, [(d, None) for d in dirs], key=_first)
            else:
                yield from files
            if not token:
                return

    def isdir(self, prefix: str) -> bool:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        params = {"prefix": self.base + prefix, "maxResults": "1", "delimiter": "/",
                  "fields": "items(name),prefixes"}
        if self.user_project:
            params["userProject"] = self.user_project
        page = _retry.call_inner(self._list_page, is_transient, params, None)
        return bool(page.get("items") or page.get("prefixes"))

    # -- writes ----------------------------------------------------------------------------------
    def put(self, key: str, data: bytes | BinaryIO | Any, meta: PutMeta) -> None:
        name = self.base + key
        threshold = self.options.composite_upload_threshold
        if hasattr(data, "read"):
            self._put_stream(name, data, meta, threshold)
            return
        if not isinstance(data, bytes):
            data = bytes(data)
        if 0 < threshold < len(data):
            view = memoryview(data)
            self._composite(name, (view[i : i + threshold] for i in range(0, len(data), threshold)), meta)
            return
        self._upload(name, data, meta)

    def _upload(self, name: str, data: bytes, meta: PutMeta, storage_class: str | None = None,
                crc32c: str | None = None, metadata: dict[str, str] | None = None) -> dict:
        """One ``uploadType=multipart`` request; returns the stored object's resource. The md5
        sent lets GCS refuse damaged bytes; the md5 it answers is checked as well, for servers
        that store whatever arrives (fake-gcs-server). Composite parts send their ``crc32c``
        (base64) instead: they never need an md5, the crc32c is computed anyway for the
        composed object's check, and it costs a tenth of md5's CPU."""
        if crc32c is None:
            field, sent = "md5Hash", base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        else:
            field, sent = "crc32c", crc32c
        content_type = meta.content_type or DEFAULT_CONTENT_TYPE
        resource = {"name": name, "contentType": content_type, field: sent}
        if meta.cache_control:
            resource["cacheControl"] = meta.cache_control
        if meta.encoding:
            resource["contentEncoding"] = meta.encoding
        storage_class = storage_class or meta.storage_class
        if storage_class:
            resource["storageClass"] = storage_class
        if metadata:
            resource["metadata"] = metadata
        boundary = os.urandom(16).hex()
        head = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode()
                + _dumps(resource)
                + f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("latin-1"))
        tail = f"\r\n--{boundary}--\r\n".encode()
        headers = {**_HEADERS, "Content-Type": f'multipart/related; boundary="{boundary}"'}
        resp = self._send("POST", self._upload_target, name, "upload", headers, (head, data, tail))
        if resp.status != 200:
            raise self._status_error(resp, name, "upload")
        stored = self._json(resp, name, "upload")
        answered = stored.get(field)
        if answered and _canonical_b64(answered) != sent:
            kind, error = ("md5", MD5IntegrityError) if crc32c is None else ("crc32c", CRC32CIntegrityError)
            # no reader could tell: the damaged bytes would match the hash stored with them
            deleted = self._remove_quietly([name], name)
            raise error(
                f"{self._where(name)}: the service stored bytes with {kind} {answered}, the bytes "
                f"sent have {kind} {sent}; the damaged object "
                f"{'was deleted' if deleted else 'could not be deleted: delete it'} (write it again)"
            )
        return stored

    def _put_stream(self, name: str, handle: BinaryIO, meta: PutMeta, threshold: int) -> None:
        if threshold <= 0:
            self._upload(name, _as_bytes(handle.read(), name), meta)
            return
        first = _read_full(handle, threshold, name)
        if len(first) < threshold:
            self._upload(name, first, meta)
            return
        peek = _read_full(handle, 1, name)
        if not peek:  # exactly one part's worth
            self._upload(name, first, meta)
            return

        def rest() -> Iterator[bytes]:
            chunk = peek + _read_full(handle, threshold - 1, name)
            while chunk:
                yield chunk
                del chunk  # not held while the next part is read
                chunk = _read_full(handle, threshold, name)

        chunks = chain([first], rest())
        del first  # held by ``chunks`` only, until its upload takes it
        self._composite(name, chunks, meta)

    # -- composite upload --------------------------------------------------------------------------
    def _composite(self, name: str, chunks: Iterable[Any], meta: PutMeta) -> None:
        _CompositeUpload(self, name, meta).run(chunks)

    def _compose(self, target: str, body: bytes) -> dict:
        query = "?" + self._up if self._up else ""
        resp = self._send("POST", f"{self._meta_path}{quote(target, safe='')}/compose{query}",
                          target, "compose", _JSON_HEADERS, body)
        if resp.status != 200:
            raise self._status_error(resp, target, "compose")
        return self._json(resp, target, "compose")

    def _remove_quietly(self, names: list[str], for_name: str) -> bool:
        """Delete ``names`` (written while writing ``for_name``), best effort: False, and a
        warning naming what was left behind, when that fails."""
        if not names:
            return True
        try:
            _retry.call_inner(self._delete_names, is_transient, list(names))
            return True
        except Exception as e:  # noqa: BLE001 - best effort; say what was left behind
            parts = sum(PART_MARK in n for n in names)
            _LOG.warning(
                "Could not delete %d object(s) written for %s (%s: %s): %s%s",
                len(names), self._where(for_name), type(e).__name__, e, ", ".join(names[:3]),
                "; the sweep (find_debris/remove_debris, clean_composite_parts()) removes "
                "leftover parts" if parts else "",
            )
            return False

    # -- debris: parts of interrupted composite uploads -------------------------------------------
    def find_debris(self, prefix: str = "", older_than: float = 0.0,
                    flat: bool = False) -> Iterator[Debris]:
        """The composite-upload parts under ``prefix`` (kind ``"composite-part"``): ``key`` the
        object the part was for, ``handle`` the part's own key, ``size`` its bytes. One listing
        of ``prefix`` (all of it: GCS cannot list by suffix), which also gives each part's
        ``timeCreated`` and its ``cfdask-owner`` metadata (``host:pid`` of the writer; parts
        written before it existed have none). A part's ``created`` is that of the newest part
        of its upload, so the parts of an upload still writing others are not stale however
        early they came. ``live``: its writer is a process still running on this machine;
        ``orphaned``: a process of this machine that has ended. ``flat``: only parts of objects
        directly in the directory ``prefix`` ends in (the same one listing)."""
        cutoff = time.time() - older_than if older_than > 0 else float("inf")  # 0: every part
        directory = prefix[: prefix.rfind("/") + 1]
        found = list(self._parts(self.base + prefix))
        owners = Owners()
        newest: dict[str, float] = {}
        for name, _, created, _ in found:
            stem = _part_stem(name)
            if created is not None and created > newest.get(stem, float("-inf")):
                newest[stem] = created
        cut = len(self.base)
        for name, size, _, owner in found:
            created = newest.get(_part_stem(name))
            if created is not None and created > cutoff:
                continue
            key = name[cut: _PART_RE.search(name).start()]  # type: ignore[union-attr]
            if flat and "/" in key[len(directory):]:
                continue
            live, orphaned = owners.state(owner, created)
            yield Debris("composite-part", key, name[cut:], size, created, owner, live, orphaned)

    def _parts(self, full_prefix: str) -> Iterator[tuple[str, int, float | None, str | None]]:
        """``(name, size, created, owner)`` of each composite part whose name starts with
        ``full_prefix``, in listing order."""
        params = {"prefix": full_prefix, **self._page_size(),
                  "fields": "items(name,size,timeCreated,metadata),nextPageToken"}
        if self.user_project:
            params["userProject"] = self.user_project
        token = None
        while True:
            page = _retry.call_inner(self._list_page, is_transient, params, token)
            for item in page.get("items", ()):
                name = item.get("name") or ""
                if _PART_RE.search(name):
                    created = _parse_time(item.get("timeCreated"))
                    owner = (item.get("metadata") or {}).get(OWNER_METADATA)
                    yield (name, int(item.get("size") or 0),
                           None if created is None else created.timestamp(),
                           owner if isinstance(owner, str) else None)
            token = page.get("nextPageToken")
            if not token:
                return

    def remove_debris(self, items: list[Debris]) -> int:
        """Delete the parts ``items`` (from :meth:`find_debris`), in batch requests where the
        endpoint takes them, skipping the ``live`` ones; returns how many were deleted (a part
        gone already is not counted)."""
        names = []
        for item in items:
            if item.kind != "composite-part" or not _PART_RE.search(item.handle or ""):
                raise ValueError(f"{self.describe()}: {item.handle!r} ({item.kind}) is not a "
                                 f"composite upload part; only those are removed here")
            if not item.live:
                names.append(self.base + item.handle)
        return sum(self._for_names(names, "DELETE", "", self._remove_one, _removed_status))

    def _remove_one(self, name: str) -> bool:
        target = self._meta_path + quote(name, safe="") + ("?" + self._up if self._up else "")
        resp = self._send("DELETE", target, name, "delete")
        if resp.status < 300:
            return True
        if resp.status == 404:
            return False
        raise self._status_error(resp, name, "delete")

    # -- capabilities ----------------------------------------------------------------------------
    def can_copy_to(self, other: Backend) -> bool:
        """Server-side copy to another gs:// location on the same endpoint with the same
        credentials (different credentials copy through this process, each side using its own)."""
        return (
            isinstance(other, GCSBackend)
            and other.api_base == self.api_base
            and other._plan().key == self._plan().key
        )

    def copy_to(self, key: str, other: Backend, dest_key: str) -> int | None:
        assert isinstance(other, GCSBackend)
        src_name = self.base + key
        dest_name = other.base + dest_key
        action = f"copy {self._where(src_name)} to"
        target = (f"{self._meta_path}{quote(src_name, safe='')}/rewriteTo/b/"
                  f"{quote(other.bucket_name, safe='')}/o/{quote(dest_name, safe='')}")
        params = {}
        user_project = other.user_project or self.user_project
        if user_project:
            params["userProject"] = user_project
        while True:  # large or cross-location copies take several rewrite calls
            query = "?" + urlencode(params) if params else ""
            resp = other._send("POST", target + query, dest_name, action, _JSON_HEADERS, b"{}")
            if resp.status == 404 and self._metadata(src_name, "name", "copy") is None:
                return None  # the source is missing (not the destination bucket)
            if resp.status != 200:
                raise other._status_error(resp, dest_name, action)
            answer = other._json(resp, dest_name, action)
            if answer.get("done"):
                return int(answer.get("objectSize") or answer.get("totalBytesRewritten") or 0)
            params["rewriteToken"] = answer["rewriteToken"]


_NO_BATCH: set[str] = set()  # API endpoints (this process) that refused a JSON batch request


class _CompositeUpload:
    """One composite upload: parts uploaded in parallel, then composed 32 at a time.

    Part names are ``<name>.cfdask-part-<upload id>.<level>.<index>``: level 0 holds the uploaded
    parts, higher levels the intermediate composites; the root of the tree is ``name`` itself.
    Parts and composes run on the engine's thread runner (``backend.options.runner``: threads,
    or greenlets for a green CloudFiles), at most ``workers`` at once.
    """

    def __init__(self, backend: GCSBackend, name: str, meta: PutMeta):
        self.backend = backend
        self.name = name
        self.meta = meta
        self.stem = f"{name}{PART_MARK}{os.urandom(8).hex()}"
        self.owner = {OWNER_METADATA: this_process()}  # on every part and intermediate
        self.written: list[str] = []  # every part name that may exist on the service
        self.leftovers: list[str] = []  # parts composed but not yet deleted
        self.runner = backend.options.runner
        self.workers = max(1, min(backend.options.num_threads or 1, PARTS_IN_FLIGHT))

    def run(self, chunks: Iterable[Any]) -> None:
        checksum = crc32c_hasher()
        try:
            # the runner returns only once no part or compose of this upload runs any more, even
            # on a failure or Ctrl-C: nothing lands after the parts are removed below
            nodes = self._upload_parts(chunks, checksum)
            final = self._compose_tree(nodes)
        except BaseException:
            self.backend._remove_quietly(self.written, self.name)
            raise
        if self.leftovers:
            self.backend._remove_quietly(self.leftovers, self.name)
        expected = base64.b64encode(checksum.digest()).decode()
        got = final.get("crc32c")
        if got and _canonical_b64(got) != expected:
            deleted = self.backend._remove_quietly([self.name], self.name)
            raise CRC32CIntegrityError(
                f"{self.backend._where(self.name)}: the composed object's crc32c is {got}, the "
                f"bytes uploaded have {expected}; the object "
                f"{'was deleted' if deleted else 'could not be deleted: delete it'}"
            )

    def _upload_parts(self, chunks: Iterable[Any], checksum: Any) -> list[str]:
        """Upload chunks as level-0 parts, at most ``workers`` in flight; returns their names in
        order. The runner's workers take the next part only when free, so at most that many
        chunks are held in memory; each part is made (read, hashed, named) by the worker that
        takes it, one at a time and in order, so the whole object's crc32c is taken over the
        parts in order and every name is in ``written`` before its upload starts."""
        backend = self.backend
        part_meta = PutMeta(content_type=DEFAULT_CONTENT_TYPE)

        def parts() -> Iterator[tuple[str, bytes, str]]:
            index = 0
            for chunk in chunks:
                data = bytes(chunk)
                del chunk  # hold no part beyond the ones in flight (nor while the next is read)
                name = f"{self.stem}.0.{index}"
                self.written.append(name)
                checksum.update(data)
                yield name, data, crc32c_b64(data)
                del data
                index += 1

        def upload(part: tuple[str, bytes, str]) -> str:
            name, data, crc = part
            _retry.call_inner(backend._upload, is_transient, name, data, part_meta, "STANDARD", crc,
                              self.owner)
            return name

        return self.runner.run(upload, parts(), self.workers)

    def _compose_tree(self, nodes: list[str]) -> dict:
        level = 0
        while len(nodes) > COMPOSE_LIMIT:
            level += 1
            groups = [nodes[i : i + COMPOSE_LIMIT] for i in range(0, len(nodes), COMPOSE_LIMIT)]
            nodes = []
            jobs = []
            for j, group in enumerate(groups):
                if len(group) == 1:  # nothing to compose: carry it up a level
                    nodes.append(group[0])
                    continue
                target = f"{self.stem}.{level}.{j}"
                self.written.append(target)
                nodes.append(target)
                jobs.append((target, group))
            # up to ``workers`` at once; a failure is raised once the running ones have ended
            self.runner.run(self._compose_group, jobs, self.workers)
        return self._compose(self.name, nodes, False)

    def _compose_group(self, job: tuple[str, list[str]]) -> dict:
        target, sources = job
        return self._compose(target, sources, True)

    def _compose(self, target: str, sources: list[str], intermediate: bool) -> dict:
        """Compose ``sources`` into ``target``, then delete the sources; returns the resource."""
        backend = self.backend
        meta = self.meta
        if intermediate:
            destination = {"contentType": DEFAULT_CONTENT_TYPE, "storageClass": "STANDARD",
                           "metadata": self.owner}
        else:
            destination = {"contentType": meta.content_type or DEFAULT_CONTENT_TYPE}
            if meta.cache_control:
                destination["cacheControl"] = meta.cache_control
            if meta.encoding:
                destination["contentEncoding"] = meta.encoding
            if meta.storage_class:
                destination["storageClass"] = meta.storage_class
        body = _dumps({"sourceObjects": [{"name": name} for name in sources], "destination": destination})
        composed = _retry.call_inner(backend._compose, is_transient, target, body)
        try:
            _retry.call_inner(backend._delete_names, is_transient, sources)
        except Exception:  # noqa: BLE001 - the object is whole; the parts are retried at the end
            self.leftovers.extend(sources)
        return composed


# -- helpers -------------------------------------------------------------------------------------
def _first(item: tuple[str, Any]) -> str:
    return item[0]


def _offsets(items: list[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    for offset in range(0, len(items), size):
        yield offset, items[offset : offset + size]


def _exists_status(status: int) -> bool | None:
    if status == 200:
        return True
    if status == 404:
        return False
    return None


def _deleted_status(status: int) -> bool | None:
    return True if status < 300 or status == 404 else None


def _removed_status(status: int) -> bool | None:
    """Deleted (True), missing already (False), or to be redone singly (None)."""
    return True if status < 300 else False if status == 404 else None


def _part_stem(name: str) -> str:
    """What the parts of one composite upload share: ``<name>.cfdask-part-<upload id>``."""
    return name[: _PART_RE.search(name).start() + len(PART_MARK) + 16]  # type: ignore[union-attr]


def _parse_batch(data: bytes, content_type: str, count: int) -> list[int | None] | None:
    """Sub-response statuses in request order, from a multipart/mixed batch answer."""
    match = re.search(r'boundary="?([^";,\s]+)"?', content_type)
    if "multipart/" not in content_type or match is None:
        return None
    statuses: list[int | None] = [None] * count
    seen = 0
    for index, part in enumerate(data.split(b"--" + match.group(1).encode())[1:]):
        if part.startswith(b"--"):
            break
        head, sep, rest = part.partition(b"\r\n\r\n")
        if not sep:
            head, sep, rest = part.partition(b"\n\n")
        status = _BATCH_STATUS.match(rest)
        if status is None:
            continue
        ident = _BATCH_ID.search(head)
        position = int(ident.group(1)) if ident else index
        if 0 <= position < count:
            statuses[position] = int(status.group(1))
            seen += 1
    return statuses if seen else None


def _range_header(start: int | None, end: int | None) -> str | None | object:
    """The Range header for ``[start:end]``: None for the whole object, ``_EMPTY`` when the slice
    is empty whatever the length. Negative ends are trimmed locally after the request."""
    s = 0 if start is None else start
    if s >= 0:
        if end is None or end < 0:
            return f"bytes={s}-" if s else None
        return f"bytes={s}-{end - 1}" if end > s else _EMPTY
    if end is not None and (end == 0 or (end < 0 and end <= s)):
        return _EMPTY
    return f"bytes={s}"  # a suffix range: the last -s bytes


def _received_range(h: Any, status: int, received: int, where: str) -> tuple[int, int | None]:
    """``(offset of the first byte received, total length or None)`` of a ranged read; raises
    if a partial answer holds other bytes than its Content-Range says."""
    if status != 206:
        return 0, received
    match = _CONTENT_RANGE.match(h.get("content-range", ""))
    if match is None:
        raise TruncatedBodyError(f"read {where}: a partial answer without a usable Content-Range")
    first, last, total = int(match.group(1)), int(match.group(2)), match.group(3)
    if last >= first and last - first + 1 != received:
        raise TruncatedBodyError(f"read {where}: received {received} of {last - first + 1} bytes")
    return first, None if total == "*" else int(total)


def _cut(data: bytes, offset: int, total: int | None, start: int | None, end: int | None) -> bytes:
    """``object[start:end]`` from ``data``, which holds the object's bytes from ``offset``."""
    if total is None:
        total = offset + len(data)
    i, j, _ = slice(start, end).indices(total)
    if j <= i:
        return b""
    if i == offset and j == offset + len(data):
        return data
    return data[max(0, i - offset) : max(0, j - offset)]


def _canonical_b64(value: str) -> str:
    """A base64 value with its padding repaired, in canonical form."""
    try:
        return base64.b64encode(base64.b64decode(value + "=" * (-len(value) % 4))).decode()
    except (ValueError, TypeError):
        return value


def _pick_checksum(md5_b64: str | None, crc_b64: str | None, composite: bool) -> tuple[str | None, str | None]:
    """The checksum a full read is verified with: ``(base64 crc32c, "crc32c")`` where there is
    one (always, for composite objects, which have no md5), else
    ``(hex md5, "md5")``. Both detect bytes damaged on the way; crc32c costs a tenth of md5's
    CPU, which was most of the cost of a large read (google-cloud-storage prefers it as well)."""
    if crc_b64:
        return _canonical_b64(crc_b64), "crc32c"
    if md5_b64 and not composite:
        try:
            return base64.b64decode(md5_b64 + "=" * (-len(md5_b64) % 4)).hex(), "md5"
        except ValueError:
            pass
    return None, None


def _hash_from_headers(h: Any) -> tuple[str | None, str | None]:
    """The checksum of ``x-goog-hash`` a full read is verified with (see ``_pick_checksum``)."""
    value = h.get("x-goog-hash")
    if not value:
        return None, None
    md5 = crc = None
    for item in value.split(","):
        kind, _, digest = item.strip().partition("=")
        if kind == "md5":
            md5 = digest
        elif kind == "crc32c":
            crc = digest
    return _pick_checksum(md5, crc, h.get("x-goog-component-count") is not None)


def _parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp (``2024-05-01T12:00:00.123Z``) as an aware datetime."""
    if not value:
        return None
    # fromisoformat before Python 3.11 takes neither "Z" nor fractions other than 3 or 6 digits
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _as_bytes(chunk: Any, name: str) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(
        f"uploading {name!r}: the file handle returned {type(chunk).__name__}; open it in binary mode"
    )


def _read_full(handle: BinaryIO, size: int, name: str) -> bytes:
    """Up to ``size`` bytes from ``handle``: fewer only at the end of the stream."""
    chunk = _as_bytes(handle.read(size), name)
    if len(chunk) >= size or not chunk:
        return chunk
    pieces = [chunk]
    got = len(chunk)
    while got < size:
        more = _as_bytes(handle.read(size - got), name)
        if not more:
            break
        pieces.append(more)
        got += len(more)
    return b"".join(pieces)


# -- interrupted composite uploads ------------------------------------------------------------------
def _backend_of(target: Any) -> Backend:
    if isinstance(target, Backend):
        return target
    backend = getattr(target, "backend", None)  # a CloudFiles
    if isinstance(backend, Backend):
        return backend
    if isinstance(target, (str, os.PathLike)):
        extracted = paths.extract(paths.normalize(os.fspath(target)))
        if extracted.protocol != "gs":
            raise ValueError(f"composite upload parts exist only on gs://, not {target!r}")
        return GCSBackend(extracted, BackendOptions())
    raise TypeError(f"expected a CloudFiles or a gs:// cloudpath, got {type(target).__name__}")


def find_composite_parts(cf_or_cloudpath: Any, prefix: str = "") -> list[str]:
    """Keys (relative to the root) of composite-upload parts under ``prefix``: what an upload
    that was killed before finishing left behind. One listing of ``prefix``; parts of uploads
    still running are included (:meth:`GCSBackend.find_debris` tells which, and their age)."""
    backend = _backend_of(cf_or_cloudpath)
    if isinstance(backend, GCSBackend):
        return [item.handle for item in backend.find_debris(prefix)]
    return [key for key, _ in backend.list(prefix) if _PART_RE.search(key)]


def clean_composite_parts(cf_or_cloudpath: Any, prefix: str = "") -> int:
    """Delete the parts :func:`find_composite_parts` finds, except those of uploads still
    running on this machine; returns how many were deleted."""
    backend = _backend_of(cf_or_cloudpath)
    if isinstance(backend, GCSBackend):
        return backend.remove_debris(list(backend.find_debris(prefix)))
    keys = find_composite_parts(backend, prefix)
    for batch in batched(keys, max(1, backend.delete_batch_size)):
        _retry.call(backend.delete_many, backend.retryable, batch)
    return len(keys)
