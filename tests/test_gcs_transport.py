"""The GCS backend's transport: the lean HTTP/1.1 client (``backends._http1``) against a scripted
raw-socket server on 127.0.0.1, and the bearer-token handling against fake-gcs-server.

The scripted server answers each request with the next reply of its script, byte for byte, so
the framing cases a real server rarely produces (chunked bodies with extensions and trailers, 1xx
answers, bodies ended by closing, bodies cut short, garbage) can each be pinned down.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import socket
import threading
import time
from uuid import uuid4

import pytest

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.backends import _http1, gcs
from cloudfiles_dask.backends.base import PutMeta
from cloudfiles_dask.exceptions import MD5IntegrityError
from tests.servers.gcs import RecordingProxy, Reply

CLOSE = object()  # script item: close the connection (after the previous reply)


class RawServer:
    """Reads one request at a time per connection; answers with the next script item: bytes
    (sent as is), ``CLOSE``, ``("stall", seconds)``, or ``("pieces", [bytes, ...])`` (sent 50 ms
    apart, so the client reads them separately). Records every request (head, body)."""

    def __init__(self, script: list):
        self.script = list(script)
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        rfile = sock.makefile("rb")
        try:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = rfile.readline()
                    if not line:
                        return
                    head += line
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = rfile.read(length) if length else b""
                with self._lock:
                    self.requests.append((head, body))
                    item = self.script.pop(0) if self.script else CLOSE
                if item is CLOSE:
                    return
                if isinstance(item, tuple) and item[0] == "pieces":
                    for piece in item[1]:
                        sock.sendall(piece)
                        time.sleep(0.05)
                    continue
                if isinstance(item, tuple):
                    time.sleep(item[1])
                    return
                sock.sendall(item)
                if self.script and self.script[0] is CLOSE:
                    with self._lock:
                        self.script.pop(0)
                    return
        except OSError:
            return
        finally:
            rfile.close()
            sock.close()

    def close(self) -> None:
        self._listener.close()


def ok(body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


@pytest.fixture
def serve():
    servers = []

    def make(*script):
        server = RawServer(list(script))
        servers.append(server)
        return server, _http1.Pool(server.url, 4)

    yield make
    for server in servers:
        server.close()


TIMEOUTS = (2.0, 2.0)


def test_content_length_keep_alive_and_repeated_headers(serve):
    server, pool = serve(ok(b"hello", "X-Goog-Hash: crc32c=AAAAAA==\r\nx-goog-hash: md5=BBBB\r\n"), ok(b"again"))
    resp = pool.request("GET", "/a?x=1", {"Accept-Encoding": "gzip"}, timeouts=TIMEOUTS)
    assert (resp.status, resp.data) == (200, b"hello")
    assert resp.headers["x-goog-hash"] == "crc32c=AAAAAA==, md5=BBBB"
    assert pool.request("GET", "/b", {}, timeouts=TIMEOUTS).data == b"again"
    assert server.connections == 1  # kept alive
    head = server.requests[0][0].decode()
    assert head.startswith("GET /a?x=1 HTTP/1.1\r\n") and f"Host: 127.0.0.1:{server.port}\r\n" in head
    assert "Accept-Encoding: gzip\r\n" in head and "Content-Length" not in head


def test_chunked_body_after_a_1xx_answer(serve):
    chunked = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
    server, pool = serve(chunked, ok(b"next"))
    assert pool.request("GET", "/", {}, timeouts=TIMEOUTS).data == b"hello world"
    assert pool.request("GET", "/", {}, timeouts=TIMEOUTS).data == b"next"
    assert server.connections == 1


def test_body_until_close_and_bodiless_answers(serve):
    server, pool = serve(
        b"HTTP/1.1 200 OK\r\n\r\nuntil the end", CLOSE,
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",  # HEAD: a length, no body
        ok(b"after"),
    )
    assert pool.request("GET", "/", {}, timeouts=TIMEOUTS).data == b"until the end"
    assert pool.request("DELETE", "/", {}, timeouts=TIMEOUTS).status == 204
    head = pool.request("HEAD", "/", {}, timeouts=TIMEOUTS)
    assert (head.status, head.data, head.headers["content-length"]) == (200, b"", "99")
    assert pool.request("GET", "/", {}, timeouts=TIMEOUTS).data == b"after"
    assert server.connections == 2  # the body that ended with the connection used it up


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhalf",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhalf\r\n",
])
def test_bodies_cut_short_are_errors_and_the_connection_is_dropped(serve, reply):
    server, pool = serve(reply, CLOSE, ok(b"fine"))
    with pytest.raises(_http1.ProtocolError):
        pool.request("GET", "/", {}, timeouts=TIMEOUTS)
    assert pool.request("GET", "/", {}, timeouts=TIMEOUTS).data == b"fine"
    assert server.connections == 2


def test_content_length_cut_short_says_how_much(serve):
    _, pool = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", CLOSE)
    with pytest.raises(_http1.IncompleteBody) as raised:
        pool.request("GET", "/", {}, timeouts=TIMEOUTS)
    assert (raised.value.received, raised.value.expected) == (4, 10)


@pytest.mark.parametrize("reply", [
    b"SSH-2.0-OpenSSH\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    CLOSE,  # no answer at all
])
def test_garbage_and_silence_are_protocol_errors(serve, reply):
    _, pool = serve(reply, CLOSE)
    with pytest.raises(_http1.ProtocolError):
        pool.request("GET", "/", {}, timeouts=TIMEOUTS)


def test_a_connection_the_server_closed_while_idle_is_not_used(serve):
    server, pool = serve(ok(b"one"), CLOSE, ok(b"two"))
    assert pool.request("GET", "/", {}, timeouts=TIMEOUTS).data == b"one"
    time.sleep(0.2)  # the server hangs up the idle connection
    assert pool.request("GET", "/", {}, timeouts=TIMEOUTS).data == b"two"
    assert server.connections == 2
    assert len(server.requests) == 2  # the poll saw it: nothing was sent on the dead one


def test_a_kept_connection_closed_as_the_request_arrives_is_tried_once_more(serve):
    """The server hangs up in the moment between the poll and the request: the request goes
    again, whole, on a new connection (once: every request of ours can be repeated)."""
    server, pool = serve(ok(b"one"), ("stall", 0), ok(b"two"))
    assert pool.request("GET", "/", {}, timeouts=TIMEOUTS).data == b"one"
    assert pool.request("PUT", "/", {}, b"body", timeouts=TIMEOUTS).data == b"two"
    assert server.connections == 2
    assert [body for _, body in server.requests] == [b"", b"body", b"body"]


def test_headers_that_would_forge_lines_are_refused(serve):
    server, pool = serve(ok(b"never"))
    for name, value in [("X-Bad", "a\r\nInjected: 1"), ("X-Bad", "a\nb"), ("X\r\nBad", "v"),
                        ("X-Bad", "nul\0")]:
        with pytest.raises(ValueError, match="line break or NUL"):
            pool.request("GET", "/", {name: value}, timeouts=TIMEOUTS)
    assert server.requests == []


def test_no_answer_on_a_new_connection_is_not_sent_again(serve):
    server, pool = serve(CLOSE)
    with pytest.raises(_http1.NoAnswer, match="without answering"):
        pool.request("GET", "/", {}, timeouts=TIMEOUTS)
    assert server.connections == 1 and len(server.requests) == 1


def test_a_head_split_across_reads(serve):
    head = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Goog-Hash: crc32c=AAAAAA==\r\n"
            b"x-goog-hash: md5=BBBB\r\nSpaced :  value with  spaces \t\r\n\r\nhello")
    _, pool = serve(("pieces", [head[:20], head[20:61], head[61:]]))
    resp = pool.request("GET", "/", {}, timeouts=TIMEOUTS)
    assert resp.data == b"hello"
    assert resp.headers == {"content-length": "5", "x-goog-hash": "crc32c=AAAAAA==, md5=BBBB",
                            "spaced": "value with  spaces"}


@pytest.mark.parametrize("bad", [" folded: line", "no colon here", "\tx: y", ": no name"])
def test_malformed_header_lines_are_refused(serve, bad):
    _, pool = serve(f"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n{bad}\r\n\r\n".encode())
    with pytest.raises(_http1.ProtocolError, match="bad header line"):
        pool.request("GET", "/", {}, timeouts=TIMEOUTS)


def test_read_timeout(serve):
    _, pool = serve(("stall", 2.0))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        pool.request("GET", "/", {}, timeouts=(1.0, 0.3))
    assert time.monotonic() - started < 1.5


def test_request_bodies_in_pieces(serve):
    big = bytes(range(256)) * 4096  # 1 MiB: sent piece by piece
    server, pool = serve(ok(b""), ok(b""), ok(b""))
    pool.request("POST", "/up", {"Content-Type": "x/y"}, [b"head|", memoryview(big), b"|tail"], timeouts=TIMEOUTS)
    pool.request("POST", "/small", {}, (b"a", b"b"), timeouts=TIMEOUTS)
    pool.request("POST", "/empty", {}, b"", timeouts=TIMEOUTS)
    (head1, body1), (head2, body2), (head3, body3) = server.requests
    assert body1 == b"head|" + big + b"|tail" and f"Content-Length: {len(body1)}\r\n".encode() in head1
    assert body2 == b"ab" and b"Content-Length: 2\r\n" in head2
    assert body3 == b"" and b"Content-Length: 0\r\n" in head3


def test_streamed_body_and_release(serve):
    server, pool = serve(ok(b"0123456789"), ok(b"abcdef"), ok(b"x"))
    resp = pool.request("GET", "/", {}, timeouts=TIMEOUTS, stream=True)
    assert [resp.read(4), resp.read(4), resp.read(4), resp.read(4)] == [b"0123", b"4567", b"89", b""]
    resp.release()
    resp = pool.request("GET", "/", {}, timeouts=TIMEOUTS, stream=True)
    assert resp.read(2) == b"ab"
    resp.release()  # not read to its end: closed, never reused
    assert pool.request("GET", "/", {}, timeouts=TIMEOUTS).data == b"x"
    assert server.connections == 2


def test_through_an_http_proxy_and_a_connect_tunnel(serve):
    proxy, _ = serve(ok(b"via proxy"), b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    plain = _http1.Pool("http://example.invalid:8080", 2, proxy=f"http://user:p%40ss@127.0.0.1:{proxy.port}")
    assert plain.request("GET", "/o?x=1", {}, timeouts=TIMEOUTS).data == b"via proxy"
    head = proxy.requests[0][0].decode()
    assert head.startswith("GET http://example.invalid:8080/o?x=1 HTTP/1.1\r\n")
    assert "Proxy-Authorization: Basic " + base64.b64encode(b"user:p@ss").decode() in head
    tls = _http1.Pool("https://example.invalid", 2, proxy=f"127.0.0.1:{proxy.port}")
    with pytest.raises(_http1.ProtocolError, match="refused the tunnel"):
        tls.request("GET", "/", {}, timeouts=TIMEOUTS)
    assert proxy.requests[1][0].decode().startswith("CONNECT example.invalid:443 HTTP/1.1\r\n")


# -- bearer tokens, against fake-gcs-server through the recording proxy -------------------------
@pytest.fixture
def pbucket(gcs_server, monkeypatch):
    with RecordingProxy(gcs_server.url) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        monkeypatch.setenv("CLOUD_FILES_RETRY_BASE", "0.01")
        monkeypatch.setenv("CLOUD_FILES_RETRY_MAX", "0.05")
        name = "tok-" + uuid4().hex[:16]
        gcs_server.create_bucket(name)
        yield name, proxy


def make_credentials(lifetime: float):
    from google.auth import credentials

    class Minted(credentials.Credentials):
        """Mints ``tok1``, ``tok2``, ... each valid for ``lifetime`` seconds."""

        def __init__(self):
            super().__init__()
            self.minted = 0

        def refresh(self, request):
            self.minted += 1
            self.token = f"tok{self.minted}"
            self.expiry = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(seconds=lifetime)

    return Minted()


def bearers(proxy) -> list[str]:
    return [{k.lower(): v for k, v in seen.headers.items()}.get("authorization") for seen in proxy.seen]


def test_token_is_minted_once_and_renewed_before_it_expires(pbucket):
    bucket, proxy = pbucket
    creds = make_credentials(3600)
    cf = CloudFiles(f"gs://{bucket}/t", secrets=creds, num_threads=4)
    cf.puts([(f"k{i}", b"v") for i in range(20)])
    assert cf.get([f"k{i}" for i in range(20)])[0]["content"] == b"v"
    assert creds.minted == 1 and set(bearers(proxy)) == {"Bearer tok1"}
    short = make_credentials(2.0)  # renewed when half of its life is left
    cf = CloudFiles(f"gs://{bucket}/t", secrets=short)
    cf.get("k0")
    time.sleep(1.1)
    proxy.seen.clear()
    cf.get("k0")
    assert short.minted == 2 and bearers(proxy) == ["Bearer tok2"]


def test_a_refused_token_is_renewed_once(pbucket):
    bucket, proxy = pbucket
    creds = make_credentials(3600)
    cf = CloudFiles(f"gs://{bucket}/t", secrets=creds)
    cf.put("x", b"data")
    refusals = [Reply(401, [("Content-Type", "application/json")], b'{"error": {"message": "expired"}}')]
    proxy.before.append(lambda seen: refusals.pop() if refusals else None)
    proxy.seen.clear()
    assert cf.get("x") == b"data"
    assert bearers(proxy) == ["Bearer tok1", "Bearer tok2"] and creds.minted == 2
    proxy.before[:] = [lambda seen: Reply(401, [], b"no")]
    proxy.seen.clear()
    with pytest.raises(Exception, match="401"):
        cf.get("x")
    assert len(proxy.seen) == 2  # renewed once, then the refusal stands


def test_an_upload_the_server_stored_damaged_is_an_error(pbucket):
    bucket, proxy = pbucket

    def damage(seen, reply):  # as a server that stores whatever arrives would answer damaged bytes
        if seen.path.startswith("/upload/") and reply.status == 200:
            resource = json.loads(reply.body)
            resource["md5Hash"] = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
            reply.body = json.dumps(resource).encode()
        return reply

    proxy.after.append(damage)
    backend = CloudFiles(f"gs://{bucket}/d").backend
    with pytest.raises(MD5IntegrityError, match=f"gs://{bucket}/d/x"):
        backend.put("x", b"payload", PutMeta())
    assert not backend.retryable(MD5IntegrityError("x"))
    assert len(proxy.requests("POST", "/upload/")) == 1


def test_connection_failures_are_transient_library_errors(monkeypatch):
    from cloudfiles_dask import StorageError

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "1")
    backend = CloudFiles("gs://nowhere/x").backend
    with pytest.raises(StorageError, match="gs://nowhere/x/k") as raised:
        backend.get("k")
    assert isinstance(raised.value, gcs.GCSConnectionError) and raised.value.transient
