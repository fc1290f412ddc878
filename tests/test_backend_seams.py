"""The backend side of the seams between the engine and the backends: what each network
backend class forgets of this process with ``reset_process_state()`` (clients, connections,
sessions), and mem://'s ``reset_process_state()`` and ``clear(bucket)``, which the engine reaches
through ``backend_class`` (no face imports a backend module). Real local servers throughout."""

from __future__ import annotations

from uuid import uuid4

import pytest

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.backends import gcs, memory, s3
from cloudfiles_dask.backends import http as http_backend
from cloudfiles_dask.backends.base import backend_class
from tests.servers.http import HTTPObjectServer


def test_the_classes_declare_their_helper_threads():
    assert backend_class("gs").helper_threads == gcs.PARTS_IN_FLIGHT
    assert backend_class("s3").helper_threads == s3.HELPER_THREADS
    assert backend_class("mem").helper_threads == 0


def test_s3_forgets_its_clients(moto_server, s3_env):
    bucket = moto_server.new_bucket()
    cf = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/")
    cf.put("x", b"1")
    assert cf.head("x")["Content-Length"] == 1  # through botocore: a client is made and kept
    client = cf.backend._client()
    assert any(kept is client for _, kept in s3._CLIENTS.values())
    backend_class("s3").reset_process_state()
    assert s3._CLIENTS == {}
    fresh = CloudFiles(f"s3://{moto_server.endpoint}/{bucket}/")
    assert fresh.head("x")["Content-Length"] == 1
    assert fresh.backend._client() is not client
    assert len(s3._CLIENTS) == 1


def test_gcs_forgets_its_connections_and_refused_batches(gcs_server, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    bucket = "seams-" + uuid4().hex[:16]
    gcs_server.create_bucket(bucket)
    cf = CloudFiles(f"gs://{bucket}/r")
    cf.put("x", b"1")
    conn = cf.backend._c()
    assert conn in gcs._CONNECTIONS.values()
    gcs._NO_BATCH.add("http://refused.invalid")  # as if that endpoint had refused a batch
    try:
        backend_class("gs").reset_process_state()
        assert gcs._CONNECTIONS == {} and gcs._NO_BATCH == set()
    finally:
        gcs._NO_BATCH.discard("http://refused.invalid")
    fresh = CloudFiles(f"gs://{bucket}/r")
    assert fresh.get("x") == b"1"
    assert fresh.backend._c() is not conn


def test_http_closes_and_forgets_its_sessions():
    with HTTPObjectServer() as server:
        server.put("d/x", b"1")
        cf = CloudFiles(server.url + "/d")
        assert cf.get("x") == b"1"
        sessions = list(http_backend._idle_sessions)
        assert sessions  # kept for the next request
        pools = [adapter.poolmanager.pools for s in sessions for adapter in s.adapters.values()]
        assert any(len(pool) for pool in pools)  # with the kept-alive connection
        backend_class("http").reset_process_state()
        assert http_backend._idle_sessions == []
        assert not any(len(pool) for pool in pools)  # closed, connections and all
        assert cf.get("x") == b"1"  # a new session then
        assert len({r.client_port for r in server.requests}) == 2


@pytest.fixture
def mem_buckets():
    names = ["seams-" + uuid4().hex for _ in range(2)]
    yield names
    for name in names:
        memory.clear_memory(name)


def test_mem_forgets_every_object_of_the_process(mem_buckets):
    one, two = (CloudFiles(f"mem://{name}/p") for name in mem_buckets)
    one.put("a", b"1")
    two.put("b", b"2", compress="gzip")
    backend_class("mem").reset_process_state()
    assert one.get("a") is None and two.get("b") is None
    assert list(one.list()) == [] and list(two.list()) == []
    one.put("a", b"again")  # backends made before still work, on the same (empty) store
    assert CloudFiles(f"mem://{mem_buckets[0]}/p").get("a") == b"again"


def test_mem_clear_forgets_one_bucket_or_all(mem_buckets):
    one, two = (CloudFiles(f"mem://{name}/p") for name in mem_buckets)
    one.put("a", b"1")
    two.put("b", b"2")
    backend_class("mem").clear(mem_buckets[0])
    assert one.get("a") is None and two.get("b") == b"2"
    one.put("a", b"1")
    backend_class("mem").clear()
    assert one.get("a") is None and two.get("b") is None
