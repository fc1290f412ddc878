"""http:// and https:// — read-only access to objects served over HTTP(S); middleauth+https:// (CAVE).

``https://host/some/dir`` is a root; key ``a/b`` is ``https://host/some/dir/a/b``. Keys are
percent-encoded when the URL is built (``"with space"`` -> ``with%20space``, ``"a%20b"`` ->
``a%2520b``); the root path is taken as typed in a URL (existing ``%XX`` escapes are kept).

Costs and behaviour:

- One request per read (GET), per head/size/exists (HEAD). A full read never sends a HEAD first.
  Byte ranges follow Python slice rules: ``[a:b]`` sends ``Range: bytes=a-(b-1)``, ``[a:]``
  ``bytes=a-``, ``[-n:]`` and ``[-n:-m]`` the suffix ``bytes=-n`` (trimmed here). Only the mixed
  forms ``[a:-m]`` and ``[-n:b]`` need the size first (one HEAD). Empty ranges send nothing and
  give ``b""`` (even for a missing key). A server that ignores Range is handled by slicing here.
- A download to a file (``stream_to``) writes the raw body out :data:`STREAM_CHUNK` bytes at a
  time; a resumed one asks ``Range: bytes=N-`` (a server that ignores Range is skipped through).
- Bytes are read raw (no transparent decoding): the ``Content-Encoding`` is reported and the engine
  decodes it. ``Accept-Encoding`` offers only codecs the engine can decode.
- A body shorter than its Content-Length raises :class:`TruncatedBodyError` (retried by the
  engine), never short data. 404 and 403 mean "missing" for reads (public GCS buckets answer 403
  for missing keys); 401 raises :class:`~cloudfiles_dask.exceptions.AuthorizationError`; 429 and 5xx
  raise a transient :class:`HTTPStatusError`, retried by the engine; other statuses raise at once.
- Full reads report the ``x-goog-hash`` md5 (else crc32c) when the server sends one, so the engine
  verifies the bytes; other servers' ETags are too varied to trust.
- Listing: the GCS JSON API (``/storage/v1/b/BUCKET/o``, BUCKET = first path component) on
  storage.googleapis.com, or on any server that answers it (probed once per backend); otherwise
  auto-index pages ("Index of /dir/", Apache or nginx style), one page per directory, parsed with
  the standard library. Apache shows sizes like "1.2K": with ``size=True`` those keys cost a HEAD.
  A server offering neither raises :class:`ListingUnavailableError`.
- Credentials: basic auth from ``secrets={"user", "password"}`` (dict or JSON string), from the
  URL (``https://user:pass@host/...``) or from ``HOST-http-secret.json`` / ``http-secret.json``;
  a bearer token from ``secrets={"token": ...}``. CAVE (``middleauth+https``) sends
  ``Authorization: Bearer`` with the token from ``secrets=`` or ``HOST-cave-secret.json`` /
  ``cave-secret.json``. Credentials go only to the root's own scheme, host and port: a redirect
  elsewhere drops them. They never appear in reprs, messages or logs.
- Connections: ``requests`` is imported on first use. Sessions live in a process-wide pool of
  idle sessions (rebuilt after fork); a thread takes one for a request and gives it back, so
  keep-alive connections are reused across calls and threads while no session is ever used by
  two threads at once. Sessions ignore the environment per request (``trust_env=False``: reading
  proxy variables on every request costs more CPU than the request); proxies and
  ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` are read once per backend instead. TLS is verified.
  Timeouts come from ``CLOUD_FILES_CONNECT_TIMEOUT`` / ``CLOUD_FILES_READ_TIMEOUT``. No retries
  happen inside requests: the engine retries what :meth:`HTTPBackend.retryable` accepts.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import os
import re
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.request import getproxies, proxy_bypass_environment

from .. import _retry, compression
from .. import secrets as _secrets
from ..exceptions import AuthorizationError, CloudFilesError, ReadOnlyBackendError, StorageError
from ._http1 import SkipWriter
from .base import Backend, BackendOptions, Blob, PutMeta

GCS_HOST = "storage.googleapis.com"
#: Only codecs the engine decodes ("deflate" is not one of them).
ACCEPT_ENCODING = "gzip, br, zstd"
_JSON_FIELDS = "items(name,size),prefixes,nextPageToken"
_DRAIN_LIMIT = 64 * 1024  # error bodies up to this size are read so the connection is reused
STREAM_CHUNK = 1024 * 1024  # bytes read from a response at a time when streaming into a file
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)\s*/\s*(\d+|\*)\s*$", re.IGNORECASE)
_EXACT_SIZE = re.compile(r"^\d+$")
_INDEX_TITLES = ("index of", "directory listing for")


# -- errors -------------------------------------------------------------------------------------------
class HTTPStatusError(StorageError):
    """The server answered with an error status. ``transient`` (408, 429, 5xx) errors are retried."""

    def __init__(self, method: str, url: str, status: int, reason: str = "", detail: str = ""):
        self.method, self.url, self.status, self.reason, self.detail = method, url, status, reason, detail
        message = f"{method} {url} answered HTTP {status}"
        if reason:
            message += f" {reason}"
        if detail:
            message += f": {detail}"
        super().__init__(message)

    @property
    def transient(self) -> bool:
        return self.status in (408, 429) or self.status >= 500

    def __reduce__(self):
        return type(self), (self.method, self.url, self.status, self.reason, self.detail)


class HTTPTransportError(StorageError, ConnectionError):
    """No usable answer: connection refused or reset, timeout, TLS failure, body cut short."""

    def __init__(self, message: str, url: str, transient: bool = True):
        self.url, self.transient = url, transient
        super().__init__(message)

    def __reduce__(self):
        return type(self), (str(self), self.url, self.transient)


class TruncatedBodyError(HTTPTransportError):
    """The connection ended before the whole body (per Content-Length) arrived."""


class ListingUnavailableError(CloudFilesError, NotImplementedError):
    """The server offers no way to list: neither the GCS JSON API nor index pages."""


# -- the process-wide pool of idle sessions ------------------------------------------------------------
_pool_lock = threading.Lock()
_idle_sessions: list[Any] = []
_MAX_IDLE = 64
_requests: Any = None  # the requests module, once imported


def _import_requests() -> Any:
    global _requests
    if _requests is None:
        import requests

        _requests = requests
    return _requests


_session_class: Any = None


def _origin_of(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(scheme)


def _make_session_class() -> Any:
    requests = _import_requests()

    class _Session(requests.Session):
        def should_strip_auth(self, old_url: str, new_url: str) -> bool:
            # Stricter than requests' own rule (which keeps credentials on an http -> https
            # upgrade): the Authorization header survives a redirect only within one origin.
            return _origin_of(old_url) != _origin_of(new_url)

    return _Session


def _new_session() -> Any:
    global _session_class
    if _session_class is None:
        _session_class = _make_session_class()
    from requests.adapters import HTTPAdapter

    session = _session_class()
    session.trust_env = False
    # max_retries=0: the engine retries; pool_maxsize is per host and per session, and a session
    # serves one request at a time, so a small pool suffices
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=4, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept-Encoding"] = ACCEPT_ENCODING
    session.headers["User-Agent"] = f"cloudfiles-dask {session.headers.get('User-Agent', '')}".strip()
    return session


def _acquire_session() -> Any:
    with _pool_lock:
        if _idle_sessions:
            return _idle_sessions.pop()
    return _new_session()


def _release_session(session: Any) -> None:
    with _pool_lock:
        if len(_idle_sessions) < _MAX_IDLE:
            _idle_sessions.append(session)
            return
    session.close()


def _forget_sessions_after_fork() -> None:
    # The child must not share the parent's sockets, and the lock may have been held mid-fork.
    global _pool_lock, _idle_sessions
    _pool_lock = threading.Lock()
    _idle_sessions = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_sessions_after_fork)


def reset_sessions() -> None:
    """Close every idle session of this process (their connections too);
    :meth:`HTTPBackend.reset_process_state`."""
    with _pool_lock:
        sessions = list(_idle_sessions)
        _idle_sessions.clear()
    for session in sessions:
        session.close()


# -- helpers ----------------------------------------------------------------------------------------------
class _Secret:
    """An Authorization header value that never shows itself."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("credentials are not pickled; the backend reads them again in each process")


def _basic(user: Any, password: Any) -> _Secret:
    raw = f"{'' if user is None else user}:{'' if password is None else password}".encode()
    return _Secret("Basic " + base64.b64encode(raw).decode("ascii"))


def _quote_key(key: str) -> str:
    return urllib.parse.quote(key, safe="/")


def _requote_path(path: str) -> str:
    """A URL path as typed: escape what must be escaped, keep existing ``%XX`` escapes."""
    return urllib.parse.quote(path, safe="/%:@!$&'()*+,;=~")


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None] | None:
    """``(first, last, total)`` of a Content-Range header (None for ``*`` parts), or None."""
    if not value:
        return None
    match = _CONTENT_RANGE.match(value)
    if match is None:
        return None
    first, last, total = match.groups()
    return (
        int(first) if first is not None else None,
        int(last) if last is not None else None,
        int(total) if total != "*" else None,
    )


def _goog_hash(value: str | None) -> tuple[str | None, str | None]:
    """``(hash, hash_type)`` from an ``x-goog-hash`` header: md5 (hex) preferred, else crc32c."""
    if not value:
        return None, None
    found = {}
    for part in value.split(","):
        name, sep, encoded = part.strip().partition("=")
        if sep:
            found[name.strip().lower()] = encoded.strip()
    if "md5" in found:
        try:
            return base64.b64decode(found["md5"], validate=True).hex(), "md5"
        except (binascii.Error, ValueError):
            pass
    if "crc32c" in found:
        return found["crc32c"], "crc32c"
    return None, None


def _content_length(headers: Any) -> int | None:
    value = headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cert_failure(error: BaseException) -> bool:
    return "certificate verify failed" in str(error).lower()


# -- the backend ----------------------------------------------------------------------------------------------
class HTTPBackend(Backend):
    """Read-only objects over plain HTTP(S); see the module docstring for costs and rules."""

    writable = False
    #: A HEAD per key; the engine spreads keys over its threads.
    exists_batch_size = 1

    @classmethod
    def reset_process_state(cls) -> None:
        reset_sessions()

    def get_acl(self, key: str) -> Any:
        raise NotImplementedError(f"{self.describe()}: plain HTTP servers publish no ACLs")

    def __init__(self, root, options: BackendOptions):
        super().__init__(root, options)
        parts = urllib.parse.urlsplit(root.host or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{type(self).__name__} needs an http(s) host, got {parts.scheme or '?'}://")
        netloc = parts.netloc.rpartition("@")[2]  # user:password@ never reaches a URL or message
        self.scheme = parts.scheme
        self.hostname = parts.hostname
        self.origin = f"{parts.scheme}://{netloc}"
        path = root.path or ""
        self._base_path = path if not path or path.endswith("/") else path + "/"  # as typed
        self._base_url = self.origin + "/" + _requote_path(self._base_path)
        self._base_key = urllib.parse.unquote(self._base_path)  # decoded: listings compare this
        url_user = urllib.parse.unquote(parts.username) if parts.username is not None else None
        url_password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        self._auth = self._resolve_auth(options.secrets, url_user, url_password)
        self._verify: Any = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._proxies = self._resolve_proxies()
        # None (not known yet), "json", "no-json" (probed: no JSON API), "index" (index pages seen)
        self._listing_mode: str | None = "json" if self.hostname == GCS_HOST else None

    # -- identity ----------------------------------------------------------------------------------------
    def describe(self) -> str:
        return self._base_url

    def url(self, key: str) -> str:
        return self._base_url + _quote_key(key)

    def __repr__(self) -> str:
        auth = "None" if self._auth is None else "<hidden>"
        return f"{type(self).__name__}({self._base_url!r}, auth={auth})"

    # -- credentials and environment ------------------------------------------------------------------------
    def _resolve_auth(self, secrets: Any, url_user: str | None, url_password: str | None) -> _Secret | None:
        if secrets is not None:
            return self._explicit_auth(secrets)
        if url_user is not None:
            return _basic(url_user, url_password)
        found = _secrets.http_credentials(self.hostname)
        if found is None:
            return None
        if "user" not in found:
            raise ValueError("http-secret.json must hold {\"user\": ..., \"password\": ...}")
        return _basic(found.get("user"), found.get("password"))

    def _explicit_auth(self, secrets: Any) -> _Secret:
        parsed = _secrets.parse_explicit(secrets)
        if isinstance(parsed, (tuple, list)) and len(parsed) == 2:
            return _basic(parsed[0], parsed[1])
        if isinstance(parsed, dict):
            if "user" in parsed:
                return _basic(parsed["user"], parsed.get("password"))
            if parsed.get("token"):
                return _Secret(f"Bearer {parsed['token']}")
        raise ValueError(
            "secrets= for http(s) must be {'user': ..., 'password': ...} (basic auth), "
            "a (user, password) pair, or {'token': ...} (bearer), as a dict or a JSON string"
        )

    def _resolve_proxies(self) -> dict:
        """Proxy settings from the environment for this origin, read once (not per request)."""
        if not any(k.lower().endswith("_proxy") for k in os.environ):
            return {}
        if proxy_bypass_environment(self.hostname):
            return {}
        proxies = getproxies()
        return {k: v for k, v in proxies.items() if k in ("http", "https", "all")}

    # -- transport ------------------------------------------------------------------------------------------
    def _headers(self, extra: dict | None = None) -> dict:
        headers = {} if extra is None else dict(extra)
        if self._auth is not None:
            # removed by the session if a redirect leaves this origin (_Session.should_strip_auth)
            headers["Authorization"] = self._auth.value
        return headers

    def _send(self, session: Any, method: str, url: str, headers: dict | None = None,
              params: dict | None = None, stream: bool = False) -> Any:
        try:
            return session.request(
                method,
                url,
                headers=self._headers(headers),
                params=params,
                stream=stream,
                timeout=_retry.timeouts(),
                verify=self._verify,
                proxies=self._proxies,
                allow_redirects=True,
            )
        except _transport_exceptions() as e:
            raise self._transport_error(method, url, e) from e

    def _transport_error(self, method: str, url: str, error: BaseException) -> HTTPTransportError:
        transient = self._transient_library_error(error)
        cause = f"{type(error).__name__}: {error}"
        return HTTPTransportError(f"{method} {url} failed: {cause}", url, transient)

    @staticmethod
    def _transient_library_error(error: BaseException) -> bool:
        if _cert_failure(error):
            return False
        requests = sys.modules.get("requests")
        if requests is not None:
            exc = requests.exceptions
            if isinstance(error, (exc.ConnectionError, exc.Timeout, exc.ChunkedEncodingError)):
                return True
            if isinstance(error, exc.RequestException):
                return False  # invalid URL, too many redirects, ...
        urllib3 = sys.modules.get("urllib3")
        if urllib3 is not None:
            exc3 = urllib3.exceptions
            if isinstance(error, (exc3.ProtocolError, exc3.TimeoutError, exc3.SSLError,
                                  exc3.NewConnectionError)):
                return True
        return isinstance(error, (http.client.IncompleteRead, ConnectionError, TimeoutError))

    def _status_error(self, method: str, url: str, response: Any, detail: str = "") -> HTTPStatusError:
        return HTTPStatusError(method, url, response.status_code, response.reason or "", detail)

    def _drain(self, response: Any) -> str:
        """Read a small error body (so the connection can be reused) and close the response."""
        try:
            if getattr(response, "_content", False) is not False:  # already read (stream=False)
                return _one_line(response.text)
            data = response.raw.read(_DRAIN_LIMIT, decode_content=True) if response.raw else b""
            return _one_line(data.decode("utf-8", "replace"))
        except Exception:
            return ""
        finally:
            response.close()

    def _read_body(self, response: Any, url: str) -> bytes:
        try:
            data = response.raw.read(decode_content=False)
        except _transport_exceptions() as e:
            raise self._read_error(url, response, e) from e
        finally:
            response.close()
        expected = _content_length(response.headers)
        chunked = "chunked" in response.headers.get("Transfer-Encoding", "").lower()
        if expected is not None and not chunked and len(data) != expected:
            raise TruncatedBodyError(
                f"GET {url}: the body has {len(data)} bytes but Content-Length says {expected}; "
                f"the connection ended early", url
            )
        return data

    def _read_error(self, url: str, response: Any, error: BaseException) -> Exception:
        partial = getattr(error, "partial", None)
        for arg in getattr(error, "args", ()):  # urllib3 wraps IncompleteRead in ProtocolError
            if partial is None and isinstance(arg, http.client.IncompleteRead):
                partial = arg.partial
        if partial is not None:
            got = partial if isinstance(partial, int) else len(partial)
            expected = _content_length(response.headers)
            return TruncatedBodyError(
                f"GET {url}: the connection ended after {got} of {expected} bytes "
                f"({type(error).__name__})", url
            )
        return self._transport_error("GET", url, error)

    def _auth_refused(self, method: str, url: str, response: Any) -> AuthorizationError:
        detail = self._drain(response)
        how = "the credentials were refused" if self._auth is not None else "no credentials were sent"
        message = f"{method} {url} answered HTTP {response.status_code}: {how}"
        if self._auth is None:
            message += f" (see secrets= or {self._secret_hint()})"
        if detail:
            message += f" — {detail}"
        return AuthorizationError(message)

    def _secret_hint(self) -> str:
        return f"{self.hostname}-http-secret.json / http-secret.json"

    # -- reads ---------------------------------------------------------------------------------------------
    def get(self, key: str, start: int | None = None, end: int | None = None) -> Blob | None:
        url = self.url(key)
        if start is None:
            start = 0
        if end is not None and (start >= 0) == (end >= 0) and end <= start:
            return Blob(b"")  # an empty slice whatever the size: nothing to ask
        if start >= 0 and end is None:
            if start == 0:
                return self._fetch(url, None, 0, None)
            return self._fetch(url, f"bytes={start}-", start, None)
        if start >= 0 and end >= 0:
            return self._fetch(url, f"bytes={start}-{end - 1}", start, end)
        if start < 0 and (end is None or end < 0):
            return self._fetch(url, f"bytes={start}", start, end)  # suffix: bytes=-N
        # [a:-m] or [-n:b]: the absolute range needs the size
        response = self._head_response(url)
        if response is None:
            return None
        size = _content_length(response.headers)
        if size is None:
            return self._fetch(url, None, start, end)  # unknown size: read it all, slice here
        first, stop, _ = slice(start, end).indices(size)
        if stop <= first:
            encoding = self._encoding(url, response.headers.get("Content-Encoding"))
            return Blob(b"", encoding)
        return self._fetch(url, f"bytes={first}-{stop - 1}", first, stop)

    def _fetch(self, url: str, range_header: str | None, start: int, end: int | None,
               retry_416: bool = True) -> Blob | None:
        """GET ``url`` (with ``Range: range_header``) and cut the slice ``[start:end]`` out of the
        answer, whatever part of the object the server chose to send."""
        answer = self._get_raw(url, range_header)
        if answer is None:
            return None
        status, headers, body = answer
        encoding = self._encoding(url, headers.get("Content-Encoding"))
        if status == 416:
            return self._unsatisfiable(url, headers, encoding, start, end, retry_416)
        content_range = _parse_content_range(headers.get("Content-Range"))
        if range_header is None and status == 200 and content_range is None:
            if start == 0 and end is None:  # a full read: the server's checksum applies
                digest, kind = _goog_hash(headers.get("x-goog-hash"))
                return Blob(body, encoding, digest, kind)
            return Blob(body[start:end], encoding)
        return Blob(self._cut(url, body, status, content_range, start, end), encoding)

    def _get_raw(self, url: str, range_header: str | None) -> tuple[int, Any, bytes] | None:
        """``(status, headers, raw body)`` of a GET (200, 206, or 416 with an empty body), None
        for a missing object; other statuses raise."""
        session = _acquire_session()
        try:
            response = self._send(session, "GET", url, {"Range": range_header} if range_header else None,
                                  stream=True)
            status = response.status_code
            if status in (200, 206):
                return status, response.headers, self._read_body(response, url)
            if status in (404, 403):
                self._drain(response)
                return None
            if status == 416:
                self._drain(response)
                return status, response.headers, b""
            if status == 401:
                raise self._auth_refused("GET", url, response)
            raise self._status_error("GET", url, response, self._drain(response))
        finally:
            _release_session(session)

    def stream_to(self, key: str, fileobj: Any, start: int = 0) -> Blob | None:
        """One streamed GET (``Range: bytes=start-`` when resuming), raw bytes copied into
        ``fileobj`` :data:`STREAM_CHUNK` at a time, so memory stays near one chunk. Reports the
        ``x-goog-hash`` checksum when the server sends one (GCS sends the whole object's, also
        for ranges) and the object's size. A body cut short raises TruncatedBodyError (retried)
        after writing what arrived. A server that ignores Range is handled by skipping."""
        url = self.url(key)
        session = _acquire_session()
        try:
            response = self._send(session, "GET", url, {"Range": f"bytes={start}-"} if start > 0 else None,
                                  stream=True)
            status = response.status_code
            if status in (200, 206):
                return self._stream_body(url, response, fileobj, start)
            if status in (404, 403):
                self._drain(response)
                return None
            if status == 416 and start > 0:  # nothing at or past ``start``: the size says if right
                self._drain(response)
                head = self._head_response(url)
                if head is None:
                    return None
                headers = head.headers
                digest, kind = _goog_hash(headers.get("x-goog-hash"))
                return Blob(None, self._encoding(url, headers.get("Content-Encoding")), digest, kind,
                            _content_length(headers))
            if status == 401:
                raise self._auth_refused("GET", url, response)
            raise self._status_error("GET", url, response, self._drain(response))
        finally:
            _release_session(session)

    def _stream_body(self, url: str, response: Any, fileobj: Any, start: int) -> Blob:
        try:
            headers = response.headers
            encoding = self._encoding(url, headers.get("Content-Encoding"))
            expected = _content_length(headers)
            if "chunked" in headers.get("Transfer-Encoding", "").lower():
                expected = None
            content_range = _parse_content_range(headers.get("Content-Range"))
            skip = 0
            total = expected
            whole = response.status_code != 206 and content_range is None
            if not whole:
                first, total = (content_range[0], content_range[2]) if content_range else (start, None)
                if first != start:
                    raise HTTPStatusError("GET", url, response.status_code, "",
                                          f"asked for bytes {start}- and got {headers.get('Content-Range')!r}")
            else:
                skip = start  # the whole object (Range not asked for, or ignored)
            received = 0
            raw = response.raw
            out = SkipWriter(fileobj, skip)
            while True:
                try:
                    chunk = raw.read(STREAM_CHUNK, decode_content=False)
                except _transport_exceptions() as e:
                    raise self._read_error(url, response, e) from e
                if not chunk:
                    break
                received += len(chunk)
                out.write(chunk)
        finally:
            response.close()
        if expected is not None and received != expected:
            raise TruncatedBodyError(
                f"GET {url}: the body has {received} bytes but Content-Length says {expected}; "
                f"the connection ended early", url
            )
        if whole and total is None:
            total = received  # a whole object of unannounced length
        elif not whole and total is not None and start + received != total:
            raise TruncatedBodyError(f"GET {url}: received bytes {start}-{start + received - 1} of {total}", url)
        digest, kind = _goog_hash(headers.get("x-goog-hash"))
        return Blob(None, encoding, digest, kind, total)

    def _cut(self, url: str, body: bytes, status: int, content_range, start: int, end: int | None) -> bytes:
        """The slice ``[start:end]`` of the object, from the part of it the server sent."""
        if content_range is None:
            if status == 200:
                return body[start:end]  # Range ignored: this is the whole object
            # a 206 without Content-Range (invalid): trust that it is exactly what was asked
            if start < 0:
                return body if end is None else body[:end]
            return body if end is None else body[: end - start]
        first, _last, total = content_range
        if total is not None and first is not None:
            lo, hi, _ = slice(start, end).indices(total)
            hi = max(hi, lo)
            if lo < first or hi > first + len(body):
                raise HTTPStatusError(
                    "GET", url, status, "", f"sent bytes {first}-{first + len(body) - 1}/{total} "
                    f"for the slice [{start}:{end}] ({lo}-{hi - 1})"
                )
            return body[lo - first : hi - first]
        # total length unknown ("bytes a-b/*"): the window is what was asked for
        if start < 0:
            return body if end is None else body[:end]
        offset = start - first if first is not None else 0
        return body[offset:] if end is None else body[offset : offset + end - start]

    def _unsatisfiable(self, url: str, headers: Any, encoding: str | None, start: int,
                       end: int | None, retry: bool) -> Blob:
        """A 416: the range starts past the end. Some servers also refuse a suffix longer than the
        object (``bytes=-200`` of 100 bytes); Content-Range ``*/total`` says how long it is."""
        parsed = _parse_content_range(headers.get("Content-Range"))
        total = parsed[2] if parsed else None
        if total is not None:
            lo, hi, _ = slice(start, end).indices(total)
            if hi > lo and retry:
                blob = self._fetch(url, f"bytes={lo}-{hi - 1}", lo, hi, retry_416=False)
                return blob if blob is not None else Blob(b"", encoding)
            return Blob(b"", encoding)
        if start < 0 and retry:  # a refused suffix of unknown length: read it all
            blob = self._fetch(url, None, start, end, retry_416=False)
            return blob if blob is not None else Blob(b"", encoding)
        return Blob(b"", encoding)

    def _encoding(self, url: str, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return compression.normalize_encoding(value.strip())
        except compression.UnsupportedCompressionType as e:
            raise compression.UnsupportedCompressionType(
                f"{url} is served with Content-Encoding {value!r}, which cannot be decoded"
            ) from e

    # -- metadata ---------------------------------------------------------------------------------------------
    def _head_response(self, url: str) -> Any:
        session = _acquire_session()
        try:
            response = self._send(session, "HEAD", url)
        finally:
            _release_session(session)
        status = response.status_code
        if status in (404, 403):
            return None
        if status == 401:
            raise self._auth_refused("HEAD", url, response)
        if not 200 <= status < 300:
            raise self._status_error("HEAD", url, response)
        return response

    def head(self, key: str) -> dict | None:
        url = self.url(key)
        response = self._head_response(url)
        if response is None:
            return None
        from requests.structures import CaseInsensitiveDict

        headers = response.headers
        out: Any = CaseInsensitiveDict(headers)
        out["Content-Length"] = _content_length(headers)
        encoding = headers.get("Content-Encoding")
        try:
            out["Content-Encoding"] = compression.normalize_encoding(encoding) if encoding else None
        except compression.UnsupportedCompressionType:
            out["Content-Encoding"] = encoding
        modified = headers.get("Last-Modified")
        if modified:
            out["Last-Modified"] = _http_date(modified)
        etag = headers.get("ETag")
        if etag:  # unquoted, as s3:// and gs:// report it (a weak W/ prefix is kept)
            out["ETag"] = etag.replace('"', "")
        for name in ("Cache-Control", "Content-Type", "ETag", "Last-Modified", "Content-Md5",
                     "Content-Disposition", "Content-Language", "Storage-Class"):
            if name not in out:
                out[name] = None
        return out

    def size(self, key: str) -> int | None:
        response = self._head_response(self.url(key))
        return None if response is None else _content_length(response.headers)

    def exists_many(self, keys: list[str]) -> dict[str, bool]:
        return {key: self._head_response(self.url(key)) is not None for key in keys}

    # -- refused writes -------------------------------------------------------------------------------------
    def _read_only(self, what: str, key: str) -> ReadOnlyBackendError:
        return ReadOnlyBackendError(
            f"Cannot {what} {self.url(key)}: {self.root.protocol}:// is read-only in cloudfiles-dask"
        )

    def put(self, key: str, data: Any, meta: PutMeta) -> None:
        raise self._read_only("write", key)

    def delete_many(self, keys: list[str]) -> None:
        raise self._read_only("delete", keys[0] if keys else "")

    def touch(self, keys: list[str]) -> None:
        raise self._read_only("touch", keys[0] if keys else "")

    # -- retries ---------------------------------------------------------------------------------------------
    def retryable(self, error: BaseException) -> bool:
        if isinstance(error, (HTTPStatusError, HTTPTransportError)):
            return error.transient
        if isinstance(error, CloudFilesError):
            return False
        return self._transient_library_error(error)

    # -- listing ---------------------------------------------------------------------------------------------
    def list(self, prefix: str = "", flat: bool = False, size: bool = False) -> Iterator[tuple[str, int | None]]:
        return self._list(prefix, flat, size)

    def _list(self, prefix: str, flat: bool, size: bool) -> Iterator[tuple[str, int | None]]:
        if self._listing_mode in (None, "json"):
            pages = self._json_pages(prefix, flat)
            first = next(pages, None)  # while the mode is unknown, this is the probe
            if first is not None:
                self._listing_mode = "json"
                yield from self._json_entries(first, prefix, flat)
                for page in pages:
                    yield from self._json_entries(page, prefix, flat)
                return
            self._listing_mode = "no-json"  # index pages, if the server has them
        dir_part, _, fragment = prefix.rpartition("/")
        yield from self._walk_index(dir_part + "/" if dir_part else "", fragment, flat, size)

    # GCS JSON API
    def _json_location(self) -> tuple[str, str] | None:
        bucket, _, object_base = self._base_key.partition("/")
        if not bucket:
            return None
        return bucket, object_base

    def _json_pages(self, prefix: str, flat: bool) -> Iterator[dict]:
        location = self._json_location()
        if location is None:
            if self._listing_mode == "json":
                raise ListingUnavailableError(
                    f"Cannot list {self.describe()}: the GCS JSON API needs a bucket in the path"
                )
            return
        bucket, object_base = location
        url = f"{self.origin}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o"
        params = {"prefix": object_base + prefix, "fields": _JSON_FIELDS}
        if flat:
            params["delimiter"] = "/"
        while True:
            page = _retry.call_inner(self._json_page, self.retryable, url, params)
            if page is None:
                return
            yield page
            token = page.get("nextPageToken")
            if not token:
                return
            params = {**params, "pageToken": token}

    def _json_page(self, url: str, params: dict) -> dict | None:
        """One page of the JSON listing; None if this server does not speak the API (probe)."""
        probing = self._listing_mode is None
        session = _acquire_session()
        try:
            response = self._send(session, "GET", url, params=params)
        finally:
            _release_session(session)
        status = response.status_code
        if probing and status != 200:
            return None  # not the JSON API (404, 405, 401/403 or 5xx of a path it does not know)
        if status in (401, 403):
            raise self._listing_refused(url, response)
        if status != 200:
            raise self._status_error("GET", url, response, _one_line(response.text))
        try:
            page = response.json()
        except ValueError:
            page = None
        if not _looks_like_json_listing(page):
            if probing:
                return None
            raise HTTPStatusError("GET", url, status, "", "the answer is not a GCS JSON object listing")
        return page

    def _json_entries(self, page: dict, prefix: str, flat: bool) -> Iterator[tuple[str, int | None]]:
        location = self._json_location()
        assert location is not None
        cut = len(location[1])
        entries: list[tuple[str, int | None]] = []
        for item in page.get("items") or ():
            name = item.get("name", "")
            if name.endswith("/"):
                continue  # a "directory placeholder" object, not a key
            raw_size = item.get("size")
            entries.append((name[cut:], int(raw_size) if raw_size is not None else None))
        for folded in page.get("prefixes") or ():
            entries.append((folded[cut:], None))
        entries.sort(key=lambda entry: entry[0])
        yield from entries

    def _listing_refused(self, url: str, response: Any) -> AuthorizationError:
        detail = self._drain(response)
        message = (
            f"Listing {url} was refused (HTTP {response.status_code}): the server needs "
            f"credentials{' other than those sent' if self._auth is not None else ''} or does not "
            f"allow listing this location"
        )
        return AuthorizationError(message + (f" — {detail}" if detail else ""))

    # index pages
    def _walk_index(self, rel: str, fragment: str, flat: bool, want_size: bool) -> Iterator[tuple[str, int | None]]:
        entries = self._index_entries(rel)
        for name, is_dir, nbytes in entries:
            if not name.startswith(fragment):
                continue
            if is_dir:
                if flat:
                    yield rel + name + "/", None
                else:
                    yield from self._walk_index(rel + name + "/", "", flat, want_size)
                continue
            if want_size and nbytes is None:
                nbytes = _retry.call_inner(self.size, self.retryable, rel + name)
            yield rel + name, nbytes

    def _index_entries(self, rel: str) -> list[tuple[str, bool, int | None]]:
        """``(name, is_dir, exact size or None)`` of the index page of directory ``rel``,
        sorted as keys sort (directories as "name/"); [] for a directory that does not exist."""
        url = self._base_url + _quote_key(rel)
        found = _retry.call_inner(self._index_page, self.retryable, url)
        if found is None:  # 404: no such directory, or no index pages at all?
            if self._listing_mode != "index" and rel:
                self._index_entries("")  # the root's page decides (raises if there is none)
            if self._listing_mode != "index":
                raise self._no_listing(url, "404 Not Found")
            return []
        self._listing_mode = "index"
        return found

    def _index_page(self, url: str) -> list[tuple[str, bool, int | None]] | None:
        session = _acquire_session()
        try:
            response = self._send(session, "GET", url)
        finally:
            _release_session(session)
        status = response.status_code
        if status == 404:
            return None
        if status in (401, 403):
            raise self._listing_refused(url, response)
        if status != 200:
            raise self._status_error("GET", url, response, _one_line(response.text))
        parser = _IndexParser()
        try:
            parser.feed(response.text)
            parser.close()
        except Exception as e:  # html.parser is lenient; this is a guard, not a path
            raise self._no_listing(url, f"its answer could not be parsed ({type(e).__name__})") from e
        if not parser.is_index:
            raise self._no_listing(url, "it answered a page that is not a directory index")
        return parser.entries(response.url or url)

    def _no_listing(self, url: str, why: str) -> ListingUnavailableError:
        return ListingUnavailableError(
            f"Listing is not available for {self.describe()}: the server offers neither the GCS "
            f"JSON listing API (/storage/v1/b/BUCKET/o) nor directory index pages "
            f"(GET {url}: {why})."
        )


def _transport_exceptions() -> tuple[type[BaseException], ...]:
    """What requests, urllib3 and the socket layer raise for a failed exchange (not bugs)."""
    requests = _import_requests()
    import urllib3

    return (requests.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


def _http_date(value: str) -> datetime | str:
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return value


def _looks_like_json_listing(page: Any) -> bool:
    if not isinstance(page, dict):
        return False
    if page.get("kind", "storage#objects") != "storage#objects":
        return False
    return set(page) <= {"kind", "items", "prefixes", "nextPageToken"}


class _IndexParser(HTMLParser):
    """Entries of an auto-index page: Apache ("Index of /d/", a table or <pre>), nginx
    ("Index of /d/", <pre> with exact sizes), Python's http.server ("Directory listing for")."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._heading: list[str] = []
        self._in_heading = False
        self._links: list[list[Any]] = []  # [href, tail text parts, in a table row]
        self._current: list[Any] | None = None
        self._in_anchor = False
        self._in_row = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("title", "h1"):
            self._in_heading = True
        elif tag == "tr":
            self._in_row = True
            self._current = None
        elif tag == "a":
            href = dict(attrs).get("href")
            self._current = [href, [], self._in_row] if href is not None else None
            if self._current is not None:
                self._links.append(self._current)
            self._in_anchor = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "h1"):
            self._in_heading = False
        elif tag == "tr":
            self._in_row = False
            self._current = None
        elif tag == "a":
            self._in_anchor = False

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self._heading.append(data)
        if self._current is not None and not self._in_anchor:
            self._current[1].append(data)

    @property
    def is_index(self) -> bool:
        heading = " ".join("".join(self._heading).split()).lower()
        return any(title in heading for title in _INDEX_TITLES)

    def entries(self, page_url: str) -> list[tuple[str, bool, int | None]]:
        page = urllib.parse.urlsplit(page_url)
        page_path = urllib.parse.unquote(page.path)
        if not page_path.endswith("/"):
            page_path += "/"
        seen: dict[str, tuple[str, bool, int | None]] = {}
        for href, tail, in_row in self._links:
            target = urllib.parse.urlsplit(urllib.parse.urljoin(page_url, href))
            if target.query or (target.scheme, target.netloc) != (page.scheme, page.netloc):
                continue  # sort links, other sites
            path = urllib.parse.unquote(target.path)
            if not path.startswith(page_path):
                continue  # parent directory and other absolute links
            rest = path[len(page_path) :]
            is_dir = rest.endswith("/")
            name = rest[:-1] if is_dir else rest
            if not name or "/" in name or name in (".", "..") or name in seen:
                continue
            text = "".join(tail)
            if not in_row:
                text = text.split("\n", 1)[0]  # <pre> listings: one line per entry
            seen[name] = (name, is_dir, None if is_dir else _exact_size(text))
        return sorted(seen.values(), key=lambda e: e[0] + "/" if e[1] else e[0])


def _exact_size(text: str) -> int | None:
    """The byte count shown after a link, when it is exact ("1234"); None for "1.2K" or "-"."""
    tokens = text.split()
    for token in reversed(tokens):
        if _EXACT_SIZE.match(token):
            return int(token)
        if token == "-" or re.match(r"^\d+(\.\d+)?[KMGTP]i?B?$", token, re.IGNORECASE):
            return None
    return None


class CAVEBackend(HTTPBackend):
    """``middleauth+https://`` — HTTPS with ``Authorization: Bearer <CAVE token>``.

    The token comes from ``secrets={"token": ...}`` (a dict, a JSON string or the bare token
    string), else ``HOST-cave-secret.json``, else ``cave-secret.json``. Without one, requests go
    out anonymous and a 401 says where the token should be.
    """

    def _resolve_auth(self, secrets: Any, url_user: str | None, url_password: str | None) -> _Secret | None:
        token = None
        if secrets is not None:
            if isinstance(secrets, str):
                try:
                    parsed = _secrets.parse_explicit(secrets)
                except ValueError:
                    parsed = {"token": secrets}  # a bare token string
            else:
                parsed = secrets
            if not isinstance(parsed, dict) or not parsed.get("token"):
                raise ValueError("secrets= for middleauth+https must be {'token': ...} or the token string")
            token = parsed["token"]
        else:
            token = _secrets.cave_token(self.hostname)
        return None if token is None else _Secret(f"Bearer {token}")

    def _secret_hint(self) -> str:
        return f"{self.hostname}-cave-secret.json / cave-secret.json"
