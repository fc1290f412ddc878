"""The backend contract on HTTP(S): a read-only backend, so objects are placed on the local test
server directly (``write``) and the tests about writing skip themselves.

Two servers run the whole suite: one lists through Apache-style index pages only, the other
through the GCS JSON listing API only (its index pages are switched off), so both listing paths
are held to the same contract.
"""

from __future__ import annotations

from uuid import uuid4

import pytest

from cloudfiles_dask.backends.base import Backend, PutMeta
from tests.servers.http import HTTPObjectServer

from .backend_contract import BackendContract

_SERVERS: dict[str, HTTPObjectServer] = {}  # "http://127.0.0.1:PORT" -> its server


@pytest.fixture(scope="module")
def index_server():
    with HTTPObjectServer(index_pages=True, json_listing=False) as server:
        _SERVERS[server.url] = server
        yield server
        del _SERVERS[server.url]


@pytest.fixture(scope="module")
def json_server():
    with HTTPObjectServer(index_pages=False, json_listing=True, json_page_size=7) as server:
        _SERVERS[server.url] = server
        yield server
        del _SERVERS[server.url]


class _HTTPContract(BackendContract):
    def write(self, backend: Backend, key: str, data: bytes, meta: PutMeta | None = None) -> None:
        meta = meta or PutMeta()
        server = _SERVERS[backend.root.host]
        server.put(
            backend.root.path.rstrip("/") + "/" + key,
            bytes(data),
            content_encoding=meta.encoding,
            content_type=meta.content_type or "application/octet-stream",
        )



class TestHTTPBackendIndexPages(_HTTPContract):
    @pytest.fixture
    def cloudpath(self, index_server) -> str:
        return f"{index_server.url}/contract-{uuid4().hex}/root"


class TestHTTPBackendJSONListing(_HTTPContract):
    @pytest.fixture
    def cloudpath(self, json_server) -> str:
        return f"{json_server.url}/bucket-{uuid4().hex}/root"
