"""The HTTP(S) backend against real local servers: reads, ranges, encodings, listing, credentials,
redirects, retries and broken connections. Every server here binds 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import socket
import threading
import time

import brotli
import pytest
import requests
import urllib3
from werkzeug import Response

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.backends import http as http_backend
from cloudfiles_dask.backends.base import PutMeta
from cloudfiles_dask.backends.http import (
    CAVEBackend,
    HTTPBackend,
    HTTPStatusError,
    HTTPTransportError,
    ListingUnavailableError,
    TruncatedBodyError,
)
from cloudfiles_dask.exceptions import (
    AuthorizationError,
    DecompressionError,
    MD5IntegrityError,
    ReadOnlyBackendError,
    UnsupportedCompressionType,
)
from tests.servers.http import HTTPObjectServer, self_signed_tls

PAYLOAD = bytes(range(256)) * 4  # 1024 bytes
PASSWORD = "s3cr3t-Pa55"
TOKEN = "cave-t0ken-XYZ"


@pytest.fixture(autouse=True)
def fast_retries_and_private_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("CLOUD_FILES_RETRY_BASE", "0.01")
    monkeypatch.setenv("CLOUD_FILES_RETRY_MAX", "0.02")
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "4")
    monkeypatch.setenv("CLOUD_VOLUME_DIR", str(tmp_path / "cv"))
    monkeypatch.setenv("CLOUD_FILES_DIR", str(tmp_path / "cf"))
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
    with HTTPObjectServer(json_listing=True) as srv:
        yield srv


def write_secret(tmp_path, name: str, content: dict) -> None:
    directory = tmp_path / "cv" / "secrets"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(content))


# -- reads through CloudFiles ------------------------------------------------------------------------------
def test_cloudfiles_reads_and_metadata(server):
    server.put("data/plain.bin", PAYLOAD)
    server.put("data/info", b'{"a": [1, 2]}', content_type="application/json")
    cf = CloudFiles(server.url + "/data")
    assert isinstance(cf.backend, HTTPBackend)
    assert cf.get("plain.bin") == PAYLOAD
    assert cf.get("missing") is None
    assert cf.get_json("info") == {"a": [1, 2]}
    assert cf.get_json(["info", "info"]) == [{"a": [1, 2]}, {"a": [1, 2]}]
    assert cf.exists("plain.bin") is True
    assert cf.exists(["plain.bin", "missing"]) == {"plain.bin": True, "missing": False}
    assert cf.size("plain.bin") == len(PAYLOAD)
    assert cf.size(["plain.bin", "missing"]) == {"plain.bin": len(PAYLOAD), "missing": None}
    head = cf.head("info")
    assert head["content-type"] == head["Content-Type"] == "application/json"  # case-insensitive
    assert head["Content-Length"] == 13 and head["Content-Encoding"] is None
    assert head["Last-Modified"].year >= 2024
    assert cf.head("missing") is None
    results = cf.get(["plain.bin", "missing", "info"])
    assert {r["path"]: r["content"] for r in results} == {
        "plain.bin": PAYLOAD, "missing": None, "info": b'{"a": [1, 2]}'
    }
    assert list(cf.list()) == ["info", "plain.bin"]


@pytest.mark.parametrize(
    "encoding,encode",
    [("gzip", gzip.compress), ("br", brotli.compress), ("x-gzip", gzip.compress)],
)
def test_content_encoding_decoded_by_get_and_kept_with_raw(server, encoding, encode):
    text = b"neuroglancer precomputed chunk " * 200
    stored = encode(text)
    server.put("enc/obj", stored, content_encoding=encoding)
    cf = CloudFiles(server.url + "/enc")
    assert cf.get("obj") == text
    assert cf.get("obj", raw=True) == stored
    [result] = cf.get(["obj"], raw=True)
    assert result["compress"] == ("gzip" if encoding == "x-gzip" else encoding)
    assert cf.head("obj")["Content-Encoding"] == result["compress"]
    assert cf.size("obj") == len(stored)  # the stored size, not the decoded one
    # what went over the wire: only decodable codecs offered
    assert server.requests[-1].headers["accept-encoding"] == "gzip, br, zstd"


def test_unsupported_content_encoding_is_a_clear_error(server):
    server.put("enc/deflated", b"x\x9c+\xc9\xc8,\x06\x00\x06\xc9\x02\x11", content_encoding="deflate")
    cf = CloudFiles(server.url + "/enc")
    with pytest.raises(UnsupportedCompressionType, match="deflate") as info:
        cf.get("deflated")
    assert server.url + "/enc/deflated" in str(info.value)


def range_headers(server, path):
    return [r.headers.get("range") for r in server.requests_to(path) if r.method == "GET"]


@pytest.mark.parametrize(
    "start,end,header",
    [
        (10, 20, "bytes=10-19"),
        (1000, None, "bytes=1000-"),
        (-3, None, "bytes=-3"),
        (-10, -4, "bytes=-10"),
        (None, 5, "bytes=0-4"),
        (1000, 5000, "bytes=1000-4999"),
    ],
)
def test_ranged_reads_send_one_range_request(server, start, end, header):
    server.put("r/obj", PAYLOAD)
    cf = CloudFiles(server.url + "/r")
    assert cf.get([{"path": "obj", "start": start, "end": end}])[0]["content"] == PAYLOAD[start:end]
    assert range_headers(server, "r/obj") == [header]
    assert server.requests_to("r/obj", "HEAD") == []


@pytest.mark.parametrize("start,end", [(5, -5), (-20, 1010), (3, -2000), (-5, 3)])
def test_mixed_sign_ranges_head_first(server, start, end):
    server.put("r/obj", PAYLOAD)
    backend = CloudFiles(server.url + "/r").backend
    assert backend.get("obj", start, end).content == PAYLOAD[start:end]
    assert len(server.requests_to("r/obj", "HEAD")) == 1


@pytest.mark.parametrize("start,end", [(7, 7), (9, 3), (-2, -5)])
def test_empty_ranges_send_nothing(server, start, end):
    server.put("r/obj", PAYLOAD)
    backend = CloudFiles(server.url + "/r").backend
    assert backend.get("obj", start, end).content == b""
    assert server.requests == []


def test_ranges_past_the_end_and_long_suffixes(server):
    server.put("r/obj", PAYLOAD)
    server.put("r/empty", b"")
    backend = CloudFiles(server.url + "/r").backend
    assert backend.get("obj", 1024, None).content == b""  # 416 from the server
    assert backend.get("obj", 5000, 6000).content == b""
    # werkzeug answers 416 to a suffix longer than the object; the slice is still the whole object
    assert backend.get("obj", -5000, None).content == PAYLOAD
    assert backend.get("obj", -5000, -1000).content == PAYLOAD[-5000:-1000]
    assert backend.get("empty", 0, 10).content == b""
    assert backend.get("empty", -3, None).content == b""
    assert backend.get("missing", 0, 10) is None
    assert backend.get("missing", -3, None) is None


@pytest.mark.parametrize("start,end", [(10, 20), (1000, None), (-3, None), (-10, -4), (5, -5), (0, 10**9)])
def test_server_ignoring_range_is_sliced_here(start, end):
    with HTTPObjectServer(honour_range=False) as srv:
        srv.put("r/obj", PAYLOAD)
        assert CloudFiles(srv.url + "/r").backend.get("obj", start, end).content == PAYLOAD[start:end]


def test_ranged_read_of_encoded_object_needs_raw(server):
    stored = gzip.compress(PAYLOAD)
    server.put("r/gz", stored, content_encoding="gzip")
    cf = CloudFiles(server.url + "/r")
    with pytest.raises(DecompressionError):
        cf.get([{"path": "gz", "start": 0, "end": 10}])
    assert cf.get([{"path": "gz", "start": 0, "end": 10}], raw=True)[0]["content"] == stored[:10]


def test_403_means_missing_like_a_public_gcs_bucket():
    with HTTPObjectServer(missing_status=403) as srv:
        srv.put("b/there", b"yes")
        cf = CloudFiles(srv.url + "/b")
        assert cf.get("nope") is None
        assert cf.get([{"path": "nope", "start": 0, "end": 3}])[0]["content"] is None
        assert cf.exists(["nope", "there"]) == {"nope": False, "there": True}
        assert cf.size("nope") is None
        assert cf.head("nope") is None
        assert len(srv.requests_to("b/nope")) == 5  # and none of them retried


def test_keys_are_percent_encoded_once(server):
    cf = CloudFiles(server.url + "/k")
    for key in ["with space", "plus+sign", "percent%20encoded", "hash#mark", "unicodé-日本", "q?x=1"]:
        server.put("k/" + key, key.encode())
        assert cf.get(key) == key.encode()
        assert server.requests[-1].path == "/k/" + key


def test_root_path_keeps_existing_escapes(server):
    server.put("a b/c", b"!")
    assert CloudFiles(server.url + "/a%20b").get("c") == b"!"
    assert CloudFiles(server.url + "/a b").get("c") == b"!"


# -- integrity --------------------------------------------------------------------------------------------
def test_x_goog_hash_is_reported_and_verified():
    with HTTPObjectServer(goog_hash=True) as srv:
        srv.put("g/good", PAYLOAD)
        srv.put("g/bad", PAYLOAD, headers={"x-goog-hash": "crc32c=AAAAAA==,md5=AAAAAAAAAAAAAAAAAAAAAA=="})
        srv.put("g/crc-only", PAYLOAD, headers={"x-goog-hash": "crc32c=" + _crc32c(PAYLOAD)})
        cf = CloudFiles(srv.url + "/g")
        blob = cf.backend.get("good")
        assert blob.hash_type == "md5" and blob.hash == __import__("hashlib").md5(PAYLOAD).hexdigest()
        assert cf.get("good") == PAYLOAD
        with pytest.raises(MD5IntegrityError):
            cf.get("bad")
        assert cf.backend.get("crc-only").hash_type == "crc32c"
        assert cf.get("crc-only") == PAYLOAD
        assert cf.backend.get("bad", 0, 10).hash is None  # ranged reads carry no whole-object hash
        assert cf.get([{"path": "bad", "start": 0, "end": 10}])[0]["content"] == PAYLOAD[:10]


def test_no_hash_without_x_goog_hash(server):
    server.put("g/x", PAYLOAD)
    blob = CloudFiles(server.url + "/g").backend.get("x")
    assert (blob.hash, blob.hash_type) == (None, None)


def _crc32c(data: bytes) -> str:
    from cloudfiles_dask._engine.integrity import crc32c_b64

    return crc32c_b64(data)


# -- read-only --------------------------------------------------------------------------------------------
def test_writes_are_refused_and_never_sent(server):
    cf = CloudFiles(server.url + "/ro")
    url = server.url + "/ro/"
    for attempt in (
        lambda: cf.put("x", b"1"),
        lambda: cf.puts([("x", b"1"), ("y", b"2")]),
        lambda: cf.put_json("x.json", {}),
        lambda: cf.delete("x"),
        lambda: cf.delete(["x", "y"]),
        lambda: cf.touch("x"),
    ):
        with pytest.raises(ReadOnlyBackendError, match="read-only") as info:
            attempt()
        assert url in str(info.value)
    backend = cf.backend
    for attempt in (
        lambda: backend.put("x", b"1", PutMeta()),
        lambda: backend.delete_many(["x"]),
        lambda: backend.touch(["x"]),
    ):
        with pytest.raises(ReadOnlyBackendError, match=url + "x"):
            attempt()
    assert isinstance(ReadOnlyBackendError("x"), NotImplementedError)
    assert {r.method for r in server.requests} <= {"GET", "HEAD"}


# -- listing ----------------------------------------------------------------------------------------------
TREE = {
    "info": b"i",
    "info.txt": b"it",
    "big.bin": b"b" * 5000,  # Apache shows "4.9K": the exact size needs a HEAD
    "build/info3": b"3",
    "level1/level2/x": b"xx",
    "level1/y": b"y",
    "odd name #1/é+.txt": b"odd",
    "zzz": b"",
}


def fill(srv, root: str) -> None:
    for key, data in TREE.items():
        srv.put(f"{root}/{key}", data)


@pytest.mark.parametrize("style", ["apache", "nginx"])
def test_index_page_listing(style):
    with HTTPObjectServer(index_style=style, json_listing=False) as srv:
        fill(srv, "site/data")
        cf = CloudFiles(srv.url + "/site/data")
        assert list(cf.list()) == sorted(TREE)
        assert list(cf.list(flat=True)) == ["big.bin", "build/", "info", "info.txt", "level1/", "odd name #1/", "zzz"]
        assert list(cf.list("level1/", flat=True)) == ["level1/level2/", "level1/y"]
        assert list(cf.list("inf")) == ["info", "info.txt"]
        assert list(cf.list("odd name #1/")) == ["odd name #1/é+.txt"]
        assert list(cf.list("build", flat=True)) == ["build/info3"]
        assert list(cf.list("nothing/")) == [] and list(cf.list("nothing")) == []
        srv.clear_requests()
        sizes = dict(cf.list(size=True))
        assert sizes == {k: len(v) for k, v in TREE.items()}
        heads = [r for r in srv.requests if r.method == "HEAD"]
        # nginx shows exact byte counts; Apache's "4.9K" costs one HEAD for that key only
        assert [r.path for r in heads] == ([] if style == "nginx" else ["/site/data/big.bin"])
        assert cf.isdir("level1") and not cf.isdir("info") and not cf.isdir("missing")
        assert CloudFiles(srv.url + "/site/data/level1").list(flat=True).__next__() == "level2/"
        assert cf.subtree_size() == {"N": len(TREE), "num_bytes": sum(map(len, TREE.values()))}


def test_index_listing_at_server_root():
    with HTTPObjectServer() as srv:
        srv.put("a", b"1")
        srv.put("d/b", b"2")
        assert list(CloudFiles(srv.url).list()) == ["a", "d/b"]
        assert list(CloudFiles(srv.url + "/").list(flat=True)) == ["a", "d/"]


def test_json_listing_pages_through_next_page_tokens():
    with HTTPObjectServer(json_listing=True, index_pages=False, json_page_size=2) as srv:
        keys = [f"k{i:02d}" for i in range(7)] + ["sub/a", "sub/b", "sub/deeper/c", "sub/"]
        for key in keys:
            srv.put(f"bucket/root/{key}", key.encode())
        srv.put("bucket/rootless", b"not under root/")
        cf = CloudFiles(srv.url + "/bucket/root")
        listed = list(cf.list(size=True))
        assert listed == [(k, len(k)) for k in sorted(keys) if not k.endswith("/")]
        listing_requests = srv.requests_to("storage/v1/b/bucket/o")
        tokens = [r.query.get("pageToken") for r in listing_requests]
        assert len(tokens) >= 5 and tokens[0] is None and all(tokens[1:])  # paged, >= 3 pages
        assert listing_requests[0].query["prefix"] == "root/"
        assert listing_requests[0].query["fields"] == "items(name,size),prefixes,nextPageToken"
        srv.clear_requests()
        assert list(cf.list(flat=True)) == [f"k{i:02d}" for i in range(7)] + ["sub/"]
        assert list(cf.list("sub/", flat=True)) == ["sub/a", "sub/b", "sub/deeper/"]
        assert {r.query.get("delimiter") for r in srv.requests} == {"/"}
        assert all(r.path.startswith("/storage/v1/") for r in srv.requests)  # no index probing


@pytest.mark.parametrize("probe_status", [404, 500])
def test_json_listing_probe_happens_once_per_backend(probe_status):
    with HTTPObjectServer(json_listing=False, index_pages=True) as srv:
        srv.handlers.append(
            lambda r: Response("?", status=probe_status) if r.path.startswith("/storage/") else None
        )
        fill(srv, "bucket/root")
        cf = CloudFiles(srv.url + "/bucket/root")
        for _ in range(3):
            assert list(cf.list("level1/")) == ["level1/level2/x", "level1/y"]
        probes = [r for r in srv.requests if r.path.startswith("/storage/v1/")]
        assert len(probes) == 1  # and a failed probe is not retried


def test_gcs_host_uses_json_api_without_probing():
    backend = CloudFiles("gs://bucket/x", use_https=True).backend
    assert backend._listing_mode == "json"
    assert backend._json_location() == ("bucket", "x/")


def test_listing_unavailable_is_a_clear_error():
    with HTTPObjectServer(json_listing=False, index_pages=False) as srv:
        srv.put("b/root/x", b"1")
        cf = CloudFiles(srv.url + "/b/root")
        with pytest.raises(ListingUnavailableError) as info:
            list(cf.list())
        assert isinstance(info.value, NotImplementedError)
        message = str(info.value)
        assert "neither" in message and srv.url + "/b/root/" in message and "404" in message
        with pytest.raises(NotImplementedError):
            cf.isdir("x")
        assert cf.get("x") == b"1"  # reads still work


def test_a_page_that_is_not_an_index_is_not_parsed_as_one(server):
    server.put("x", b"1")
    welcome = "<html><title>Welcome</title><body><a href='x'>x</a></body></html>"
    server.handlers.append(
        lambda r: Response(welcome, content_type="text/html") if r.path.endswith("/") else None
    )
    with pytest.raises(ListingUnavailableError, match="not a directory index"):
        list(CloudFiles(server.url).list())


@pytest.mark.parametrize("status", [401, 403])
def test_refused_listing_raises_authorization_error(status):
    with HTTPObjectServer(json_listing=True) as srv:
        srv.put("b/root/x", b"1")
        srv.handlers.append(
            lambda r: Response("no", status=status)
            if r.path.endswith("/") or r.path.startswith("/storage/") else None
        )
        with pytest.raises(AuthorizationError, match=str(status)):
            list(CloudFiles(srv.url + "/b/root").list())
    # on storage.googleapis.com-style JSON (mode known), a 403 is an authorization error too
    with HTTPObjectServer(json_listing=True, index_pages=False) as srv:
        backend = CloudFiles(srv.url + "/b/root").backend
        backend._listing_mode = "json"
        srv.handlers.append(lambda r: Response("no", status=status))
        with pytest.raises(AuthorizationError):
            list(backend.list())
        assert len(srv.requests) == 1  # not retried


def test_listing_pages_are_retried(server):
    fill(server, "b/root")
    cf = CloudFiles(server.url + "/b/root")
    assert list(cf.list("build/")) == ["build/info3"]  # the probe: this server speaks JSON
    server.clear_requests()
    server.fail_next(2, 503, path="/storage/v1/b/b/o")
    assert list(cf.list("level1/")) == ["level1/level2/x", "level1/y"]
    assert len(server.requests_to("storage/v1/b/b/o")) == 3
    assert not [r for r in server.requests if r.path.endswith("/")]  # no fallback to index pages


# -- credentials ----------------------------------------------------------------------------------------
@pytest.fixture
def auth_server():
    with HTTPObjectServer(basic_auth=("alice", PASSWORD), json_listing=True) as srv:
        srv.put("priv/x", b"secret data")
        yield srv


@pytest.mark.parametrize(
    "secrets",
    [{"user": "alice", "password": PASSWORD}, json.dumps({"user": "alice", "password": PASSWORD}), ("alice", PASSWORD)],
)
def test_basic_auth_from_secrets(auth_server, secrets):
    cf = CloudFiles(auth_server.url + "/priv", secrets=secrets)
    assert cf.get("x") == b"secret data"
    assert cf.exists("x") and cf.size("x") == 11
    assert list(cf.list()) == ["x"]
    assert PASSWORD not in repr(cf) and PASSWORD not in repr(cf.backend)


def test_basic_auth_from_secret_files(auth_server, tmp_path):
    write_secret(tmp_path, "http-secret.json", {"user": "alice", "password": PASSWORD})
    assert CloudFiles(auth_server.url + "/priv").get("x") == b"secret data"
    # a host-specific file wins over the generic one
    write_secret(tmp_path, "127.0.0.1-http-secret.json", {"user": "alice", "password": "wrong"})
    with pytest.raises(AuthorizationError, match="refused"):
        CloudFiles(auth_server.url + "/priv").get("x")


def test_basic_auth_from_url_userinfo_never_shown(auth_server):
    url = auth_server.url.replace("http://", f"http://alice:{PASSWORD}@") + "/priv"
    cf = CloudFiles(url)
    assert cf.get("x") == b"secret data"
    assert cf.backend.describe() == auth_server.url + "/priv/"
    with pytest.raises(HTTPStatusError) as info:
        auth_server.fail_next(1, 400)
        cf.get("x")
    assert PASSWORD not in str(info.value)


def test_missing_or_wrong_credentials_are_authorization_errors(auth_server):
    anonymous = CloudFiles(auth_server.url + "/priv")
    for call in (lambda: anonymous.get("x"), lambda: anonymous.exists("x"), lambda: anonymous.size("x"),
                 lambda: anonymous.head("x")):
        with pytest.raises(AuthorizationError, match="no credentials were sent") as info:
            call()
        assert auth_server.url + "/priv/x" in str(info.value)
        assert "http-secret.json" in str(info.value)
    wrong = CloudFiles(auth_server.url + "/priv", secrets={"user": "alice", "password": "nope"})
    auth_server.clear_requests()
    with pytest.raises(AuthorizationError, match="refused") as info:
        wrong.get("x")
    assert "nope" not in str(info.value)
    assert len(auth_server.requests) == 1  # 401 is not retried
    with pytest.raises(ValueError, match="user"):
        CloudFiles(auth_server.url + "/priv", secrets={"project": "x"}).get("x")


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return self_signed_tls(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def cave_server(tls, monkeypatch):
    context, ca_path = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_path)
    with HTTPObjectServer(bearer_token=TOKEN, ssl_context=context) as srv:
        srv.put("seg/info", b'{"type": "segmentation"}')
        yield srv


def cave_path(srv) -> str:
    return srv.url.replace("https://", "middleauth+https://") + "/seg"


@pytest.mark.parametrize("secrets", [{"token": TOKEN}, json.dumps({"token": TOKEN}), TOKEN])
def test_cave_bearer_token_over_tls(cave_server, secrets):
    cf = CloudFiles(cave_path(cave_server), secrets=secrets)
    assert isinstance(cf.backend, CAVEBackend)
    assert cf.get_json("info") == {"type": "segmentation"}
    assert cave_server.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(cf) and TOKEN not in repr(cf.backend)


def test_cave_token_files(cave_server, tmp_path):
    write_secret(tmp_path, "cave-secret.json", {"token": TOKEN})
    assert CloudFiles(cave_path(cave_server)).exists("info")
    write_secret(tmp_path, "127.0.0.1-cave-secret.json", {"token": "stale"})
    with pytest.raises(AuthorizationError, match="refused"):
        CloudFiles(cave_path(cave_server)).exists("info")


def test_cave_without_token_says_where_to_put_it(cave_server):
    with pytest.raises(AuthorizationError, match="cave-secret.json"):
        CloudFiles(cave_path(cave_server)).get("info")


def test_tls_is_verified(tls):
    context, _ = tls
    with HTTPObjectServer(ssl_context=context) as srv:  # no REQUESTS_CA_BUNDLE: an unknown issuer
        srv.put("x", b"1")
        backend = CloudFiles(srv.url).backend
        with pytest.raises(HTTPTransportError, match="(?i)certificate verify failed") as info:
            backend.get("x")
        assert not backend.retryable(info.value)


# -- redirects ---------------------------------------------------------------------------------------------
@pytest.fixture
def other_server():
    with HTTPObjectServer() as srv:
        srv.put("landing/x", b"from B")
        yield srv


@pytest.mark.parametrize("kind", ["basic", "bearer"])
def test_credentials_never_follow_a_redirect_to_another_host(server, other_server, kind):
    server.redirect("src/x", other_server.url + "/landing/x")
    server.redirect("src/moved", "/src/new")  # same host: credentials stay
    server.put("src/new", b"from A")
    if kind == "basic":
        cf = CloudFiles(server.url + "/src", secrets={"user": "alice", "password": PASSWORD})
    else:
        backend = CAVEBackend(CloudFiles(server.url + "/src").backend.root, _options({"token": TOKEN}))
        cf = None
    get = cf.get if cf is not None else (lambda key: backend.get(key).content)
    assert get("x") == b"from B"
    assert "authorization" in server.requests_to("src/x")[0].headers
    [landed] = other_server.requests_to("landing/x")
    assert "authorization" not in landed.headers
    assert get("moved") == b"from A"
    assert "authorization" in server.requests_to("src/new")[0].headers


def _options(secrets):
    from cloudfiles_dask.backends.base import BackendOptions

    return BackendOptions(secrets=secrets)


# -- retries and broken connections -------------------------------------------------------------------------
def test_503_twice_then_success(server):
    server.put("t/x", PAYLOAD)
    server.fail_next(2, 503, path="t/x")
    assert CloudFiles(server.url + "/t").get("x") == PAYLOAD
    assert len(server.requests_to("t/x")) == 3


@pytest.mark.parametrize("op", ["exists", "size", "head"])
def test_metadata_calls_retry_too(server, op):
    server.put("t/x", PAYLOAD)
    server.fail_next(1, 429, path="t/x")
    assert getattr(CloudFiles(server.url + "/t"), op)("x")
    assert len(server.requests_to("t/x")) == 2


def test_persistent_5xx_gives_up_after_the_attempts(server):
    server.put("t/x", PAYLOAD)
    server.fail_next(100, 500, path="t/x")
    with pytest.raises(HTTPStatusError) as info:
        CloudFiles(server.url + "/t").get("x")
    assert info.value.status == 500 and server.url + "/t/x" in str(info.value)
    assert len(server.requests_to("t/x")) == 4  # CLOUD_FILES_RETRY_ATTEMPTS


@pytest.mark.parametrize("status", [404, 400, 410])
def test_other_4xx_are_not_retried(server, status):
    server.put("t/x", PAYLOAD)
    server.fail_next(5, status, path="t/x")
    cf = CloudFiles(server.url + "/t")
    if status == 404:
        assert cf.get("x") is None
    else:
        with pytest.raises(HTTPStatusError, match=f"HTTP {status}"):
            cf.get("x")
    assert len(server.requests_to("t/x")) == 1


class RawServer:
    """A socket server that answers every request with ``reply`` (bytes) and closes, or never
    answers when ``reply`` is None. Counts connections."""

    def __init__(self, reply: bytes | None):
        self.reply = reply
        self.connections = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if self.reply is not None:
                conn.sendall(self.reply)
                conn.close()

    def close(self):
        self._sock.close()
        for conn in self._open:
            conn.close()


def test_truncated_body_is_retried_then_raised_never_returned_short():
    raw = RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n" + b"x" * 50)
    try:
        cf = CloudFiles(raw.url + "/data")
        with pytest.raises(TruncatedBodyError) as info:
            cf.get("obj")
        assert raw.url + "/data/obj" in str(info.value) and "50 of 100" in str(info.value)
        assert cf.backend.retryable(info.value)
        assert raw.connections == 4  # every attempt made, none returned 50 bytes
    finally:
        raw.close()


def test_silent_server_times_out_and_is_retried(monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_READ_TIMEOUT", "0.2")
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "2")
    raw = RawServer(None)
    try:
        started = time.monotonic()
        with pytest.raises(HTTPTransportError, match="(?i)timed? ?out") as info:
            CloudFiles(raw.url).get("obj")
        assert time.monotonic() - started < 5
        assert info.value.transient and raw.connections == 2
    finally:
        raw.close()


def test_connection_refused_names_the_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: refused
        with pytest.raises(HTTPTransportError) as info:
            CloudFiles(url + "/d").exists("k")
    assert url + "/d/k" in str(info.value) and info.value.transient


def test_retryable_classification():
    backend = CloudFiles("https://example.invalid/x").backend
    assert backend.retryable(requests.ConnectionError("reset"))
    assert backend.retryable(requests.Timeout("slow"))
    assert backend.retryable(requests.exceptions.ChunkedEncodingError("cut"))
    assert backend.retryable(urllib3.exceptions.ProtocolError("broken"))
    assert backend.retryable(HTTPStatusError("GET", "u", 503))
    assert backend.retryable(HTTPStatusError("GET", "u", 429))
    assert not backend.retryable(HTTPStatusError("GET", "u", 404))
    assert not backend.retryable(HTTPStatusError("GET", "u", 400))
    assert not backend.retryable(AuthorizationError("no"))
    assert not backend.retryable(ListingUnavailableError("no"))
    assert not backend.retryable(ValueError("bug"))
    assert not backend.retryable(requests.exceptions.SSLError("certificate verify failed: self-signed"))


def test_errors_pickle_for_other_processes():
    for error in (HTTPStatusError("GET", "http://h/x", 503, "Service Unavailable"),
                  HTTPTransportError("GET http://h/x failed", "http://h/x", True),
                  TruncatedBodyError("cut", "http://h/x"),
                  ListingUnavailableError("no listing")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
    assert pickle.loads(pickle.dumps(HTTPStatusError("GET", "u", 503))).transient


# -- connections, sessions, processes ----------------------------------------------------------------------
def test_connections_are_reused_across_calls_and_threads(server):
    for i in range(60):
        server.put(f"c/{i}", b"%d" % i)
    cf = CloudFiles(server.url + "/c", num_threads=4)
    for i in range(20):
        assert cf.get(str(i)) == b"%d" % i  # single keys run on this thread
    assert len({r.client_port for r in server.requests}) == 1
    keys = [str(i) for i in range(60)]
    for _ in range(3):
        assert len(cf.get(keys)) == 60
        assert all(cf.exists(keys).values())
    # worker threads are new on each call, yet they take pooled sessions: no new connections
    assert len({r.client_port for r in server.requests}) <= 5


def test_use_https_rewrites_to_an_http_backend_without_any_request(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("no network while constructing")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    cf = CloudFiles("gs://bucket/x", use_https=True)
    assert isinstance(cf.backend, HTTPBackend) and not isinstance(cf.backend, CAVEBackend)
    assert cf.backend.describe() == "https://storage.googleapis.com/bucket/x/"
    assert cf.backend.url("a b") == "https://storage.googleapis.com/bucket/x/a%20b"
    s3 = CloudFiles("s3://bucket/y/z", use_https=True).backend
    assert s3.describe() == "https://s3.amazonaws.com/bucket/y/z/"


def test_requests_is_imported_lazily():
    import subprocess
    import sys

    code = (
        "import sys; from cloudfiles_dask import CloudFiles; "
        "cf = CloudFiles('https://example.invalid/x'); cf.backend; "
        "print('requests' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_sessions_are_rebuilt_after_fork(server):
    server.put("f/x", b"parent")
    cf = CloudFiles(server.url + "/f")
    assert cf.get("x") == b"parent"
    assert http_backend._idle_sessions  # the parent keeps one for reuse
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no inherited sessions; a request works on its own connection
        try:
            ok = not http_backend._idle_sessions and cf.get("x") == b"parent"
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
    assert len({r.client_port for r in server.requests}) == 2
