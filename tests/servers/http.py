"""A Range-capable HTTP object server on 127.0.0.1 for the HTTP backend's tests.

Objects live in a dict (``server.objects``: URL path without the leading "/" -> StoredObject),
each with its own Content-Encoding, Content-Type and extra headers. The server answers:

- ``GET``/``HEAD`` of an object, with Range support (``bytes=a-b``, ``bytes=a-``, ``bytes=-N``,
  206/416) through werkzeug's ``make_conditional``; missing objects get ``missing_status`` (404,
  or 403 like a public GCS bucket);
- a directory path (ending in "/") with an auto-index page, Apache-style (an HTML table with
  human-readable sizes like "1.2K") or nginx-style (``<pre>`` with exact byte counts), when
  ``index_pages`` is set; an empty or missing directory is a 404;
- the GCS JSON listing API ``/storage/v1/b/BUCKET/o?prefix=&delimiter=&pageToken=&maxResults=``
  (``items[{name, size}]``, ``prefixes``, ``nextPageToken``) when ``json_listing`` is set, where
  BUCKET is the first component of an object's path; pages hold ``json_page_size`` entries.

Hooks for tests: every request is recorded (``server.requests``: method, decoded path, query,
headers, client port); ``server.handlers`` is a list of callables consulted first, any of which
may answer instead of the server (``fail_next`` and ``redirect`` add the usual ones); ``basic_auth``
or ``bearer_token`` make every request without those credentials a 401.

    with HTTPObjectServer(json_listing=True) as server:
        server.put("bucket/dir/key", b"...", content_encoding="gzip")
        server.url  # http://127.0.0.1:PORT
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import ssl
import sys
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

HOST = "127.0.0.1"
_JSON_LISTING_PREFIX = "/storage/v1/b/"

Handler = Callable[[Request], "Response | None"]


@dataclass
class StoredObject:
    data: bytes
    content_encoding: str | None = None
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    last_modified: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


@dataclass
class RecordedRequest:
    method: str
    path: str  # percent-decoded, with the leading "/"
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    client_port: int


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (werkzeug's own dev server closes every connection, which would
    hide whether a client reuses its connections), bridging each request to a WSGI app."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    timeout = 30  # an idle keep-alive connection frees its thread after this
    server: _Server

    def log_message(self, format: str, *args) -> None:  # no per-request lines on stderr
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    def _bridge(self) -> None:
        raw_path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        environ = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote_to_bytes(raw_path).decode("latin-1"),
            "QUERY_STRING": query,
            "SERVER_NAME": HOST,
            "SERVER_PORT": str(self.server.server_port),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": self.server.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = value
        answer: dict = {}

        def start_response(status, headers, exc_info=None):
            answer["status"], answer["headers"] = status, headers

        chunks = self.server.app(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        code, _, reason = answer["status"].partition(" ")
        self.send_response_only(int(code), reason)
        has_length = False
        for name, value in answer["headers"]:
            has_length = has_length or name.lower() == "content-length"
            self.send_header(name, value)
        if not has_length:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _bridge


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, app, ssl_context: ssl.SSLContext | None):
        super().__init__((HOST, 0), _Handler)
        self.app = app
        self.scheme = "http"
        if ssl_context is not None:
            self.scheme = "https"
            # the handshake happens on the handler's thread, not in the accept loop
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)


class HTTPObjectServer:
    def __init__(
        self,
        *,
        index_pages: bool = True,
        index_style: str = "apache",
        json_listing: bool = False,
        json_page_size: int = 1000,
        missing_status: int = 404,
        basic_auth: tuple[str, str] | None = None,
        bearer_token: str | None = None,
        honour_range: bool = True,
        goog_hash: bool = False,
        ssl_context: ssl.SSLContext | None = None,
    ):
        if index_style not in ("apache", "nginx"):
            raise ValueError(index_style)
        self.index_pages = index_pages
        self.index_style = index_style
        self.json_listing = json_listing
        self.json_page_size = json_page_size
        self.missing_status = missing_status
        self.basic_auth = basic_auth
        self.bearer_token = bearer_token
        self.honour_range = honour_range
        self.goog_hash = goog_hash
        self.ssl_context = ssl_context
        self.objects: dict[str, StoredObject] = {}
        self.requests: list[RecordedRequest] = []
        self.handlers: list[Handler] = []
        self._lock = threading.Lock()
        self._server = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> HTTPObjectServer:
        self._server = _Server(self._app, self.ssl_context)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HTTPObjectServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_port

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{HOST}:{self.port}"

    # -- content and hooks -----------------------------------------------------------------------
    def put(self, path: str, data: bytes, *, content_encoding: str | None = None,
            content_type: str = "application/octet-stream", headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self.objects[path.lstrip("/")] = StoredObject(data, content_encoding, content_type, dict(headers or {}))

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """Recorded requests for the decoded URL path ``path`` (leading "/" optional)."""
        path = "/" + path.lstrip("/")
        with self._lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def fail_next(self, times: int, status: int, path: str | None = None) -> None:
        """Answer the next ``times`` requests (for ``path`` only, if given) with ``status``."""
        remaining = [times]
        lock = threading.Lock()

        def handler(request: Request) -> Response | None:
            if path is not None and request.path != "/" + path.lstrip("/"):
                return None
            with lock:
                if remaining[0] <= 0:
                    return None
                remaining[0] -= 1
            return Response(f"injected {status}", status=status)

        self.handlers.append(handler)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        """Answer requests for ``path`` with a redirect to ``location`` (any URL)."""
        target = "/" + path.lstrip("/")

        def handler(request: Request) -> Response | None:
            if request.path != target:
                return None
            return Response("", status=status, headers={"Location": location})

        self.handlers.append(handler)

    # -- WSGI ----------------------------------------------------------------------------------------
    def _app(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    dict(request.args),
                    {k.lower(): v for k, v in request.headers.items()},
                    int(environ.get("REMOTE_PORT") or 0),
                )
            )
        return self._respond(request)(environ, start_response)

    def _respond(self, request: Request) -> Response:
        for handler in list(self.handlers):
            answer = handler(request)
            if answer is not None:
                return answer
        if not self._authorized(request):
            return Response("authorization required", status=401,
                            headers={"WWW-Authenticate": 'Basic realm="test"'})
        path = request.path
        if self.json_listing and path.startswith(_JSON_LISTING_PREFIX):
            return self._json_listing(request)
        if path.endswith("/"):
            if not self.index_pages:
                return Response("no index", status=404)
            return self._index_page(path)
        with self._lock:
            obj = self.objects.get(path[1:])
        if obj is None:
            return Response("missing", status=self.missing_status)
        return self._object(request, obj)

    def _authorized(self, request: Request) -> bool:
        if self.basic_auth is not None:
            auth = request.authorization
            if auth is None or auth.type != "basic" or (auth.username, auth.password) != self.basic_auth:
                return False
        if self.bearer_token is not None:
            if request.headers.get("Authorization") != f"Bearer {self.bearer_token}":
                return False
        return True

    def _object(self, request: Request, obj: StoredObject) -> Response:
        response = Response(obj.data, content_type=obj.content_type)
        response.last_modified = obj.last_modified
        response.headers["ETag"] = '"' + hashlib.md5(obj.data).hexdigest() + '"'
        if obj.content_encoding:
            response.headers["Content-Encoding"] = obj.content_encoding
        if self.goog_hash:
            md5 = base64.b64encode(hashlib.md5(obj.data).digest()).decode()
            response.headers["x-goog-hash"] = f"crc32c={_crc32c_b64(obj.data)},md5={md5}"
        for name, value in obj.headers.items():
            response.headers[name] = value
        if not self.honour_range:
            return response
        try:
            return response.make_conditional(request, accept_ranges=True, complete_length=len(obj.data))
        except HTTPException as e:  # 416 Range Not Satisfiable, with Content-Range: bytes */N
            return e.get_response()

    # -- listings ---------------------------------------------------------------------------------------
    def _children(self, dir_path: str) -> tuple[dict[str, StoredObject], set[str]]:
        """Files and sub-directory names directly under ``dir_path`` ("" or "a/b/")."""
        files: dict[str, StoredObject] = {}
        dirs: set[str] = set()
        with self._lock:
            items = list(self.objects.items())
        for name, obj in items:
            if not name.startswith(dir_path):
                continue
            rest = name[len(dir_path) :]
            head, slash, _ = rest.partition("/")
            if slash:
                dirs.add(head)
            elif rest:
                files[rest] = obj
        return files, dirs

    def _index_page(self, path: str) -> Response:
        files, dirs = self._children(path[1:])
        if not files and not dirs:
            return Response("not found", status=404)
        entries = sorted([(name + "/", None) for name in dirs] + [(name, obj) for name, obj in files.items()])
        title = f"Index of {html.escape(path)}"
        if self.index_style == "nginx":
            body = _nginx_page(title, entries)
        else:
            body = _apache_page(title, path, entries, self.port)
        return Response(body, content_type="text/html;charset=UTF-8")

    def _json_listing(self, request: Request) -> Response:
        rest = request.path[len(_JSON_LISTING_PREFIX) :]
        bucket, _, tail = rest.partition("/")
        if tail != "o" or not bucket:
            return Response(json.dumps({"error": {"code": 404, "message": "Not Found"}}), status=404,
                            content_type="application/json")
        prefix = request.args.get("prefix", "")
        delimiter = request.args.get("delimiter", "")
        start = int(request.args.get("pageToken") or 0)
        page_size = min(int(request.args.get("maxResults") or self.json_page_size), self.json_page_size)
        with self._lock:
            items = sorted((k[len(bucket) + 1 :], o) for k, o in self.objects.items() if k.startswith(bucket + "/"))
        entries: list[tuple[str, StoredObject | None]] = []
        seen_prefixes: set[str] = set()
        for name, obj in items:
            if not name.startswith(prefix):
                continue
            if delimiter:
                cut = name.find(delimiter, len(prefix))
                if cut != -1:
                    folded = name[: cut + len(delimiter)]
                    if folded not in seen_prefixes:
                        seen_prefixes.add(folded)
                        entries.append((folded, None))
                    continue
            entries.append((name, obj))
        page = entries[start : start + page_size]
        out: dict = {"kind": "storage#objects"}
        objects = [{"kind": "storage#object", "bucket": bucket, "name": n, "size": str(len(o.data))}
                   for n, o in page if o is not None]
        prefixes = [n for n, o in page if o is None]
        if objects:
            out["items"] = objects
        if prefixes:
            out["prefixes"] = prefixes
        if start + page_size < len(entries):
            out["nextPageToken"] = str(start + page_size)
        return Response(json.dumps(out), content_type="application/json")


def _crc32c_b64(data: bytes) -> str:
    import google_crc32c

    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def _human_size(n: int) -> str:
    """Apache's short size format: bytes below 1000, then 1.2K / 12K / 3.4M ..."""
    if n < 1000:
        return str(n)
    value = float(n)
    for unit in "KMGT":
        value /= 1024
        if value < 999.5:
            return f"{value:.1f}{unit}" if value < 9.95 else f"{value:.0f}{unit}"
    return f"{value:.0f}P"


def _href(name: str) -> str:
    return urllib.parse.quote(name, safe="/+")  # Apache leaves "+" alone, as here


def _apache_page(title: str, path: str, entries, port: int) -> str:
    parent = path.rstrip("/").rpartition("/")[0] + "/"
    rows = [
        '<tr><td valign="top"><img src="/icons/back.gif" alt="[PARENTDIR]"></td>'
        f'<td><a href="{html.escape(parent)}">Parent Directory</a></td><td>&nbsp;</td>'
        '<td align="right">  - </td><td>&nbsp;</td></tr>'
    ]
    for name, obj in entries:
        icon = "folder.gif" if obj is None else "unknown.gif"
        date = (obj.last_modified if obj is not None else datetime(2024, 1, 1)).strftime("%Y-%m-%d %H:%M")
        size = "  - " if obj is None else _human_size(len(obj.data))
        rows.append(
            f'<tr><td valign="top"><img src="/icons/{icon}" alt="[   ]"></td>'
            f'<td><a href="{html.escape(_href(name))}">{html.escape(name)}</a></td>'
            f'<td align="right">{date}  </td><td align="right">{size}</td><td>&nbsp;</td></tr>'
        )
    return (
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
        f"  <title>{title}</title>\n </head>\n <body>\n<h1>{title}</h1>\n  <table>\n"
        '   <tr><th valign="top"><img src="/icons/blank.gif" alt="[ICO]"></th>'
        '<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
        '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>\n'
        '   <tr><th colspan="5"><hr></th></tr>\n' + "\n".join(rows) + "\n"
        '   <tr><th colspan="5"><hr></th></tr>\n</table>\n'
        f"<address>Apache/2.4.58 (Unix) Server at {HOST} Port {port}</address>\n</body></html>\n"
    )


def _nginx_page(title: str, entries) -> str:
    lines = ['<a href="../">../</a>']
    for name, obj in entries:
        date = (obj.last_modified if obj is not None else datetime(2024, 1, 1)).strftime("%d-%b-%Y %H:%M")
        size = "-" if obj is None else str(len(obj.data))
        shown = html.escape(name) if len(name) <= 50 else html.escape(name[:47]) + "..&gt;"
        pad = " " * max(1, 51 - len(name))
        lines.append(f'<a href="{html.escape(_href(name))}">{shown}</a>{pad}{date}  {size:>19}')
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<h1>{title}</h1><hr><pre>"
        + "\r\n".join(lines)
        + "\r\n</pre><hr></body>\r\n</html>\r\n"
    )


def self_signed_tls(directory: str) -> tuple[ssl.SSLContext, str]:
    """A server TLS context for 127.0.0.1 with a fresh self-signed certificate, and the path of
    that certificate (a client trusts the server by using it as its CA bundle)."""
    import datetime as dt
    import ipaddress
    import os

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "test-server-cert.pem")
    key_path = os.path.join(directory, "test-server-key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path
