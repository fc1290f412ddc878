"""A lean HTTP/1.1 client: keep-alive connections to one origin, for many small requests.

The transport of the GCS backend and of S3's lean path (``_s3wire``). urllib3 and
``http.client`` (which parses every header block with the ``email`` package and makes a new
buffered reader per response) cost several times this client's CPU per small request, and with
the GIL that CPU is what caps requests per second (docs/performance.md has the figures). It
does only what its caller needs:

- keep-alive connections on a stack shared by threads (at most ``size`` kept idle); one the
  server closed (or wrote to) while idle is noticed before use (a zero-timeout poll) and
  replaced; a request that finds its kept connection closed anyway, in the moment between the
  poll and the send (no answer, a reset or a broken pipe), is sent once more on a new one;
- header names and values with a line break or NUL are refused (``ValueError``): they would
  forge header lines; the head is sent as UTF-8 (what SigV4 signs);
- bodies framed by Content-Length, chunked transfer coding or the end of the connection; 1xx
  answers skipped; no body for HEAD, 204 and 304;
- TLS with certificate and host name checks; a proxy (absolute request targets for ``http://``,
  a CONNECT tunnel for ``https://``);
- a connect timeout and a read timeout (per socket operation, as urllib3's).

No redirects, retries (beyond that one resend on a stale connection), cookies or
decompression: callers have their own policy. Every failure is an ``OSError``:
``TimeoutError`` for silence, :class:`ProtocolError` (a ``ConnectionError``) for an answer that
is cut short or malformed, the socket's own errors otherwise. A connection that
saw an error, or whose body was not read to its end, is closed, never reused.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import urllib.request
from base64 import b64encode
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

MAX_LINE = 65536  # bytes in a status or header line
MAX_HEADERS = 256  # header lines in one answer
ONE_SEND = 256 * 1024  # request bodies up to this size go out in one send with the head

Body = bytes | bytearray | memoryview | Sequence[bytes | bytearray | memoryview] | None


class ProtocolError(ConnectionError):
    """The answer broke HTTP/1.1: no status line, bad framing, or the connection ended early."""


class NoAnswer(ProtocolError):
    """The server closed the connection without answering."""


class IncompleteBody(ProtocolError):
    """The body ended before its announced end."""

    def __init__(self, received: int, expected: int | None):
        wanted = f"of {expected} " if expected is not None else ""
        super().__init__(f"the body ended early: received {received} {wanted}bytes")
        self.received = received
        self.expected = expected


#: What sending on a kept connection the server had already closed raises: such a request is
#: sent once more on a new connection (every request of ours is idempotent).
_STALE = (NoAnswer, ConnectionResetError, BrokenPipeError)


class Response:
    """One answer: ``status``, ``headers`` (lower-case names, repeated headers joined by ", ")
    and ``data``, the whole body. A streamed answer (``stream=True``) leaves ``data`` empty:
    :meth:`read` the body, then :meth:`release` (or :meth:`close`) it."""

    __slots__ = ("status", "headers", "data", "_pool", "_conn", "_left", "_chunked", "_received", "_keep")

    def __init__(self, status: int, headers: dict[str, str]):
        self.status = status
        self.headers = headers
        self.data = b""
        self._pool: Pool | None = None
        self._conn: _Conn | None = None
        self._left: int | None = 0  # body bytes left (None: until the connection ends)
        self._chunked = False  # chunked: _left counts what is left of the current chunk
        self._received = 0
        self._keep = False

    def read(self, amt: int | None = None) -> bytes:
        """Up to ``amt`` bytes of the body (all that is left if None); b"" at its end."""
        conn = self._conn
        if conn is None:
            return b""
        try:
            if self._chunked:
                data = self._read_chunked(conn.rfile, amt)
            elif self._left is None:
                data = conn.rfile.read(amt if amt is not None else -1)
                if not data or amt is None:
                    self._finish(False)
            else:
                want = self._left if amt is None else min(amt, self._left)
                data = conn.rfile.read(want) if want else b""
                self._left -= len(data)
                if len(data) < want:
                    raise IncompleteBody(self._received + len(data), self._received + len(data) + self._left)
                if not self._left:
                    self._finish(self._keep)
        except BaseException:
            self.close()
            raise
        self._received += len(data)
        return data

    def readinto(self, view: memoryview) -> int:
        """Read up to ``len(view)`` body bytes into ``view`` (no copy for a body framed by
        Content-Length); 0 at the body's end."""
        conn = self._conn
        if conn is None or not len(view):
            return 0
        if self._chunked or self._left is None:
            data = self.read(len(view))
            view[: len(data)] = data
            return len(data)
        want = min(len(view), self._left)
        try:
            got = conn.rfile.readinto(view[:want]) if want else 0
            self._left -= got
            if got < want:
                raise IncompleteBody(self._received + got, self._received + got + self._left)
            if not self._left:
                self._finish(self._keep)
        except BaseException:
            self.close()
            raise
        self._received += got
        return got

    def _read_chunked(self, rfile: Any, amt: int | None) -> bytes:
        pieces = []
        while amt is None or amt > 0:
            if not self._left:
                size = _chunk_size(rfile)
                if size == 0:
                    _headers(rfile)  # trailers
                    self._finish(self._keep)
                    break
                self._left = size
            want = self._left if amt is None else min(amt, self._left)
            piece = rfile.read(want)
            if len(piece) < want:
                raise IncompleteBody(self._received + sum(map(len, pieces)) + len(piece), None)
            pieces.append(piece)
            self._left -= want
            if amt is not None:
                amt -= want
            if not self._left and rfile.read(2) != b"\r\n":
                raise ProtocolError("a chunk does not end with CRLF")
        return b"".join(pieces) if len(pieces) != 1 else pieces[0]

    def _finish(self, keep: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            if keep and self._pool is not None:
                self._pool._checkin(conn)
            else:
                conn.close()

    def release(self) -> None:
        """Done with the answer: its connection goes back to the pool if the body was read to
        its end, and is closed otherwise."""
        if self._conn is not None:
            self._finish(False)

    close = release


class _Conn:
    __slots__ = ("sock", "rfile", "timeout")

    def __init__(self, sock: socket.socket, timeout: float):
        self.sock = sock
        self.rfile = sock.makefile("rb")
        self.timeout = timeout

    def dropped(self) -> bool:
        """True if the server closed (or wrote to) this idle connection."""
        try:
            poll = getattr(select, "poll", None)  # gevent's select has none
            if poll is not None:
                p = poll()
                p.register(self.sock, select.POLLIN)
                return bool(p.poll(0))
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def close(self) -> None:
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass


def pool_for(url: str, size: int, ca_file: str | None = None) -> Pool:
    """A pool for the origin of ``url`` with the environment's proxy (``HTTPS_PROXY``,
    ``NO_PROXY``, ...) and CA bundle (``ca_file``, else ``REQUESTS_CA_BUNDLE``,
    ``CURL_CA_BUNDLE`` or certifi's), as requests would use them."""
    parts = urlsplit(url)
    if parts.scheme == "https" and not ca_file:
        env = os.environ
        ca_file = env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")
        if not ca_file:
            import certifi

            ca_file = certifi.where()
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and urllib.request.proxy_bypass(parts.hostname or ""):
        proxy = None
    return Pool(f"{parts.scheme}://{parts.netloc}", size, ca_file, proxy)


class Pool:
    """Keep-alive connections to ``origin`` (``scheme://host[:port]``)."""

    def __init__(self, origin: str, size: int, ca_file: str | None = None, proxy: str | None = None):
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.size = size
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        netloc = parts.netloc.rpartition("@")[2]
        self._host_line = f"Host: {netloc}\r\n"
        self._tls = None
        if parts.scheme == "https":
            self._tls = ssl.create_default_context(cafile=ca_file)
            self._tls.set_alpn_protocols(["http/1.1"])
        self._address = (self.host, self.port)
        self._target_prefix = ""  # absolute-form targets when talking to an http proxy
        self._tunnel_head: bytes | None = None
        self._proxy_auth = ""
        if proxy:
            p = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            self._address = (p.hostname, p.port or 80)
            if p.username is not None:
                credentials = f"{unquote(p.username)}:{unquote(p.password or '')}".encode()
                self._proxy_auth = f"Proxy-Authorization: Basic {b64encode(credentials).decode()}\r\n"
            if self._tls is None:
                self._target_prefix = f"http://{netloc}"
            else:
                target = f"{self.host}:{self.port}"
                self._tunnel_head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{self._proxy_auth}\r\n".encode()
                self._proxy_auth = ""  # for the proxy only, never inside the tunnel
        self._idle: list[_Conn] = []

    def request(self, method: str, target: str, headers: dict[str, str], body: Body = None,
                timeouts: tuple[float, float] = (10.0, 60.0), stream: bool = False) -> Response:
        """Send one request (``target`` is the path and query) and read its answer: whole, or
        only its head when ``stream`` (then the caller reads and releases the body)."""
        conn = self._checkout(timeouts)
        reused = conn is not None
        while True:
            if conn is None:
                conn = self._connect(timeouts)
            try:
                self._send(conn, method, target, headers, body)
                resp = _answer(conn.rfile, method)
                break
            except BaseException as e:
                conn.close()
                if not (reused and isinstance(e, _STALE)):
                    raise
                # the server had closed this kept connection: once more, on a new one
                conn, reused = None, False
        resp._pool = self
        resp._conn = conn
        if stream:
            return resp
        if resp._chunked or resp._left is None:
            resp.data = resp.read()
        elif resp._left:
            resp.data = resp.read(resp._left)
        else:
            resp._finish(resp._keep)
        return resp

    def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            self._idle.pop().close()

    # -- plumbing --------------------------------------------------------------------------------
    def _checkout(self, timeouts: tuple[float, float]) -> _Conn | None:
        """A kept connection (with the read timeout asked for), or None: make a new one."""
        idle = self._idle
        while idle:
            try:
                conn = idle.pop()
            except IndexError:  # another thread took the last one
                break
            if conn.dropped():
                conn.close()
                continue
            if conn.timeout != timeouts[1]:
                conn.sock.settimeout(timeouts[1])
                conn.timeout = timeouts[1]
            return conn
        return None

    def _checkin(self, conn: _Conn) -> None:
        if len(self._idle) < self.size:
            self._idle.append(conn)
        else:
            conn.close()

    def _connect(self, timeouts: tuple[float, float]) -> _Conn:
        connect, read = timeouts
        sock = socket.create_connection(self._address, timeout=connect)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tunnel_head is not None:
                sock.sendall(self._tunnel_head)
                with sock.makefile("rb") as rfile:  # the proxy says nothing more before TLS
                    resp = _answer(rfile, "CONNECT")
                if resp.status != 200:
                    raise ProtocolError(f"the proxy refused the tunnel to {self.host}: HTTP {resp.status}")
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            sock.settimeout(read)
        except BaseException:
            sock.close()
            raise
        return _Conn(sock, read)

    def _send(self, conn: _Conn, method: str, target: str, headers: dict[str, str], body: Body) -> None:
        fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        if fields.count("\n") != len(headers) or fields.count("\r") != len(headers) or "\0" in fields:
            _refuse_forged(headers)
        lines = [f"{method} {self._target_prefix}{target} HTTP/1.1\r\n", self._host_line,
                 self._proxy_auth, fields]
        pieces: Sequence[Any] = ()
        length = 0
        if body is not None:
            pieces = (body,) if isinstance(body, (bytes, bytearray, memoryview)) else body
            length = sum(map(len, pieces))
            lines.append(f"Content-Length: {length}\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("utf-8")
        sock = conn.sock
        if length <= ONE_SEND:
            sock.sendall(b"".join([head, *pieces]) if pieces else head)
        else:
            sock.sendall(head)
            for piece in pieces:
                sock.sendall(piece)


def _refuse_forged(headers: dict[str, str]) -> None:
    for name, value in headers.items():
        if any(c in f"{name}{value}" for c in "\r\n\0"):
            raise ValueError(f"HTTP header {name!r} holds a line break or NUL, which would forge "
                             f"header lines: {value!r}")


def _answer(rfile: Any, method: str) -> Response:
    """Read a status line and headers (skipping 1xx answers); set up the body's framing."""
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if not line:
            raise NoAnswer("the server closed the connection without answering")
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or len(line) > MAX_LINE or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:60]!r}")
        status = int(code)
        headers = _headers(rfile)
        if status >= 200 or status == 101:
            break
    resp = Response(status, headers)
    keep = version == b"HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    if method in ("HEAD", "CONNECT") or status in (204, 304) or status < 200:
        resp._left = 0
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        resp._chunked = True
    elif "content-length" in headers:
        values = {v.strip() for v in headers["content-length"].split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise ProtocolError(f"bad Content-Length {headers['content-length']!r}")
        resp._left = int(values.pop())
    else:
        resp._left = None  # until the server closes the connection
        keep = False
    resp._keep = keep
    return resp


def _headers(rfile: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = rfile.readline(MAX_LINE + 1)
        if line == b"\r\n" or line == b"\n":
            return headers
        if not line:
            raise ProtocolError("the connection ended in the middle of the headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or len(line) > MAX_LINE or name[:1] in ("", " ", "\t"):
            raise ProtocolError(f"bad header line {line[:60]!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    raise ProtocolError("too many header lines")


def _chunk_size(rfile: Any) -> int:
    line = rfile.readline(MAX_LINE + 1)
    size = line.split(b";", 1)[0].strip()
    if not size or not all(c in b"0123456789abcdefABCDEF" for c in size):
        raise ProtocolError(f"bad chunk size line {line[:60]!r}")
    return int(size, 16)


class SkipWriter:
    """Writes everything but the first ``skip`` bytes to ``fileobj``: for a resumed download
    whose server ignored the Range header and sent the object from its start."""

    __slots__ = ("fileobj", "skip")

    def __init__(self, fileobj: Any, skip: int = 0):
        self.fileobj = fileobj
        self.skip = skip

    def write(self, chunk: bytes) -> None:
        if self.skip:
            if len(chunk) <= self.skip:
                self.skip -= len(chunk)
                return
            chunk = memoryview(chunk)[self.skip :]
            self.skip = 0
        self.fileobj.write(chunk)
