"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1, between a client and a real local server.

The client talks to the proxy as if it were the server (same Host header, so signatures stay
valid). For each request a *plan* decides the fate of the exchange:

    None        forward faithfully
    "reset"     read the request, then drop the connection with a TCP RST (nothing forwarded)
    "500" "503" "429"
                answer that status without forwarding (the server never sees the request)
    "stall"     read the request, then say nothing for ``stall_seconds`` and close
    "truncate"  forward; send the response headers with the full Content-Length but only half
                the body, then close
    "flip"      forward; flip one byte in the middle of a 2xx response body (length unchanged)
    "norange"   forward without the request's Range header (a server that ignores Range; the
                upstream must not check signatures, as moto does not)
    "damage"    flip one byte in the middle of the request body, then forward (bytes damaged on
                the way up; a signature over the body no longer matches, UNSIGNED-PAYLOAD does)

Only faults a real server cannot be asked to produce are made here; everything else is the real
server's own behaviour.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

FAULTS = ("reset", "500", "503", "429", "stall", "truncate", "flip", "norange", "damage")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}
_REASONS = {"500": "Internal Server Error", "503": "Service Unavailable", "429": "Too Many Requests"}

Plan = Callable[[str, str], "str | None"]


def random_plan(faults: tuple[str, ...], rate: float, seed: int = 0, methods: tuple[str, ...] | None = None) -> Plan:
    """Inject one of ``faults`` into a ``rate`` fraction of requests (optionally only ``methods``)."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def plan(method: str, path: str) -> str | None:
        if methods is not None and method not in methods:
            return None
        with lock:
            return rng.choice(faults) if rng.random() < rate else None

    return plan


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, plan: Plan | None = None, stall_seconds: float = 3.0):
        self.upstream = (upstream_host, upstream_port)
        self.plan: Plan = plan or (lambda method, path: None)
        self.stall_seconds = stall_seconds
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        #: every request seen: (method, target, {lower-cased header name: value})
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closing.set()
        try:
            self._listener.close()
        except OSError:
            pass

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _count(self, fault: str | None) -> None:
        with self._lock:
            if fault is None:
                self.forwarded += 1
            else:
                self.injected[fault] += 1

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        upstream: http.client.HTTPConnection | None = None
        try:
            while not self._closing.is_set():
                request = _read_request(reader, client)
                if request is None:
                    return
                method, target, headers, body = request
                with self._lock:
                    self.requests.append((method, target, {k.lower(): v for k, v in headers}))
                fault = self.plan(method, target)
                self._count(fault)
                if fault == "reset":
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if fault in _REASONS:
                    payload = f"injected {fault}".encode()
                    client.sendall(
                        f"HTTP/1.1 {fault} {_REASONS[fault]}\r\nContent-Type: text/plain\r\n"
                        f"Content-Length: {len(payload)}\r\nConnection: keep-alive\r\n\r\n".encode() + payload
                    )
                    continue
                if fault == "stall":
                    time.sleep(self.stall_seconds)
                    return
                if fault == "norange":
                    headers = [(k, v) for k, v in headers if k.lower() != "range"]
                if fault == "damage" and body:
                    body = _flip_middle(body)
                if upstream is None:
                    upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
                try:
                    status, reason, resp_headers, resp_body = _forward(upstream, method, target, headers, body)
                except (OSError, http.client.HTTPException):
                    upstream.close()
                    upstream = http.client.HTTPConnection(*self.upstream, timeout=60)
                    status, reason, resp_headers, resp_body = _forward(upstream, method, target, headers, body)
                length = len(resp_body)
                if method == "HEAD":
                    length_header = next((v for k, v in resp_headers if k.lower() == "content-length"), "0")
                    out_body = b""
                else:
                    length_header = str(length)
                    out_body = resp_body
                if fault == "flip" and 200 <= status < 300 and out_body:
                    out_body = _flip_middle(out_body)
                head = [f"HTTP/1.1 {status} {reason}"]
                head += [f"{k}: {v}" for k, v in resp_headers if k.lower() not in _HOP_BY_HOP | {"content-length"}]
                head += [f"Content-Length: {length_header}", "Connection: keep-alive"]
                wire = ("\r\n".join(head) + "\r\n\r\n").encode()
                if fault == "truncate" and out_body:
                    client.sendall(wire + out_body[: len(out_body) // 2])
                    return
                client.sendall(wire + out_body)
        except OSError:
            return
        finally:
            if upstream is not None:
                upstream.close()
            try:
                reader.close()
                client.close()
            except OSError:
                pass


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x5A]) + data[middle + 1 :]


def _read_request(reader, client: socket.socket) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    line = reader.readline(65537)
    if not line or not line.strip():
        return None
    method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers: list[tuple[str, str]] = []
    while True:
        raw = reader.readline(65537)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    lowered = {k.lower(): v for k, v in headers}
    if lowered.get("expect", "").lower() == "100-continue":
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # we always want the body
        headers = [(k, v) for k, v in headers if k.lower() != "expect"]
    if lowered.get("transfer-encoding", "").lower() == "chunked":
        body = _read_chunked(reader)
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        headers.append(("Content-Length", str(len(body))))
    else:
        body = reader.read(int(lowered.get("content-length", 0) or 0))
    return method, target, headers, body


def _read_chunked(reader) -> bytes:
    parts = []
    while True:
        size = int(reader.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while reader.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        parts.append(reader.read(size))
        reader.readline()


def _forward(conn: http.client.HTTPConnection, method: str, target: str, headers, body: bytes):
    conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    for name, value in headers:
        if name.lower() not in _HOP_BY_HOP:
            conn.putheader(name, value)
    conn.endheaders(body if body else None)
    response = conn.getresponse()
    data = response.read()
    return response.status, response.reason, response.getheaders(), data
