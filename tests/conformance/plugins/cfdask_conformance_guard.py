"""pytest plugin of the conformance run (loaded with ``-p cfdask_conformance_guard`` in the child
pytest only): no test of the original suite may reach the network.

Through an audit hook, every name lookup and every socket connection other than to this
machine (loopback, Unix sockets) raises ``NetworkBlocked`` at once, so a test that goes around
moto's in-process mock fails fast instead of reaching AWS or hanging in retries. A test during
which such an attempt was made is reported failed even if it swallowed the error (a swallowed
network error could otherwise read as "file missing" and pass). Each attempt is appended to the
file named by ``CFDASK_CONFORMANCE_NET_LOG`` (test node id, tab, address).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading

import pytest

_LOG = os.environ.get("CFDASK_CONFORMANCE_NET_LOG")
_lock = threading.Lock()
_current = {"nodeid": "(no test)"}
_attempts: dict[str, list[str]] = {}
_failed: set[str] = set()


class NetworkBlocked(RuntimeError):
    """Raised instead of a name lookup or a connection that would leave this machine."""


def _local_host(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]")
    if host in ("", "localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _blocked(what: str, address) -> None:
    shown = f"{what} {address!r}"
    with _lock:
        _attempts.setdefault(_current["nodeid"], []).append(shown)
        if _LOG:
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(f"{_current['nodeid']}\t{shown}\n")
    raise NetworkBlocked(f"conformance guard: the network is off limits ({shown})")


def _audit(event: str, args) -> None:
    if event == "socket.getaddrinfo":
        if not _local_host(args[0]):
            _blocked("name lookup of", (args[0], args[1]))
    elif event in ("socket.gethostbyname", "socket.gethostbyname_ex"):
        if not _local_host(args[0]):
            _blocked("name lookup of", args[0])
    elif event == "socket.connect":
        sock, address = args[0], args[1]
        family = getattr(sock, "family", None)
        if family not in (socket.AF_INET, socket.AF_INET6):
            return
        host = address[0] if isinstance(address, tuple) and address else address
        if not _local_host(host):
            _blocked("connection to", address)


sys.addaudithook(_audit)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logstart(nodeid, location):
    _current["nodeid"] = nodeid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        _failed.add(item.nodeid)
    if call.when != "teardown":
        return report
    attempts = _attempts.pop(item.nodeid, [])
    if attempts and item.nodeid not in _failed:
        report.outcome = "failed"
        report.longrepr = (
            "NetworkBlocked: the test tried to reach the network (caught and swallowed): "
            + "; ".join(attempts[:5])
        )
    return report


def pytest_runtest_logfinish(nodeid, location):
    _current["nodeid"] = "(between tests)"
