"""The fault-injecting proxy itself does what it says (so the fault tests mean something)."""

from __future__ import annotations

import pytest
import requests
from werkzeug import Response

from tests.servers.fault_proxy import FaultProxy

BODY = bytes(range(256)) * 40


@pytest.fixture
def upstream(httpserver):
    httpserver.expect_request("/obj").respond_with_response(Response(BODY))
    return httpserver


def proxy_for(upstream, fault):
    return FaultProxy(upstream.host, upstream.port, plan=lambda m, p: fault, stall_seconds=2)


def test_faithful_forwarding(upstream):
    with proxy_for(upstream, None) as proxy:
        with requests.Session() as s:
            for _ in range(3):  # keep-alive across requests
                r = s.get(proxy.url + "/obj", timeout=5)
                assert r.status_code == 200 and r.content == BODY
        assert proxy.forwarded == 3


@pytest.mark.parametrize("status", ["500", "503", "429"])
def test_status_faults(upstream, status):
    with proxy_for(upstream, status) as proxy:
        r = requests.get(proxy.url + "/obj", timeout=5)
        assert r.status_code == int(status)
        assert proxy.injected[status] == 1 and proxy.forwarded == 0


def test_flip_changes_one_byte(upstream):
    with proxy_for(upstream, "flip") as proxy:
        r = requests.get(proxy.url + "/obj", timeout=5)
        assert r.status_code == 200 and len(r.content) == len(BODY)
        assert sum(a != b for a, b in zip(r.content, BODY, strict=True)) == 1


def test_damage_changes_one_byte_of_the_request_body(httpserver):
    received = []

    def keep(request):
        received.append(request.get_data())
        return Response("stored")

    httpserver.expect_request("/up", method="PUT").respond_with_handler(keep)
    with FaultProxy(httpserver.host, httpserver.port, plan=lambda m, p: "damage") as proxy:
        r = requests.put(proxy.url + "/up", data=BODY, timeout=5)
        assert r.status_code == 200 and proxy.injected["damage"] == 1
    assert len(received[0]) == len(BODY)
    assert sum(a != b for a, b in zip(received[0], BODY, strict=True)) == 1


def test_truncate_reset_and_stall_are_errors(upstream):
    with proxy_for(upstream, "truncate") as proxy, pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(proxy.url + "/obj", timeout=5).content  # noqa: B018
    with proxy_for(upstream, "reset") as proxy, pytest.raises(requests.exceptions.ConnectionError):
        requests.get(proxy.url + "/obj", timeout=5)
    with proxy_for(upstream, "stall") as proxy, pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(proxy.url + "/obj", timeout=0.5)
