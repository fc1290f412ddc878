"""What code written for the original ``cloudfiles`` expects of the facade: return shapes,
transfer records, ACLs and the private interface object some code reaches for."""

from __future__ import annotations

import os
import pickle
import stat

import pytest

from cloudfiles_dask import CloudFile, CloudFiles, dl
from cloudfiles_dask.monitoring import IOEnum, TransmissionMonitor
from tests.conftest_s3 import moto_server  # noqa: F401 (fixture)
from tests.servers.fault_proxy import FaultProxy
from tests.servers.s3 import ACCESS_KEY, SECRET_KEY

S3_SECRETS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
              "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def s3_root(moto_server):  # noqa: F811
    bucket = moto_server.new_bucket()
    return f"s3://{moto_server.endpoint}/{bucket}/dropin"


@pytest.fixture(params=["mem", "file"])
def root(request, tmp_path):
    if request.param == "mem":
        return f"mem://dropin-{os.urandom(4).hex()}/r"
    return f"file://{tmp_path}/r"


def test_return_dict_for_one_key_is_a_dict(root):
    cf = CloudFiles(root)
    cf.put("k", b"v")
    assert cf.get("k", return_dict=True) == {"k": b"v"}
    assert cf.get({"path": "k", "start": 0, "end": 1}, return_dict=True) == {"k": b"v"}
    assert cf.get("missing", return_dict=True) == {"missing": None}


def test_get_and_puts_return_their_recording(root):
    cf = CloudFiles(root)
    written, sent = cf.puts([(f"f{i}", b"x" * i) for i in range(1, 6)], return_recording=True)
    assert written == 5 and isinstance(sent, TransmissionMonitor)
    assert sent.direction is IOEnum.TX and sent.files == 5 and sent.total_bytes() == 15
    results, received = cf.get([f"f{i}" for i in range(1, 6)], return_recording=True)
    assert [r["content"] for r in results] == [b"x" * i for i in range(1, 6)]
    assert received.direction is IOEnum.RX and received.files == 5 and received.total_bytes() == 15
    content, one = cf.get("f3", return_recording=True)
    assert content == b"xxx" and one.files == 1 and one.total_bytes() == 3
    count, jsons = cf.put_jsons([("j", {"a": 1})], return_recording=True)
    assert count == 1 and jsons.files == 1 and jsons.total_bytes() == len(b'{"a":1}')
    assert cf.get("f1") == b"x" and not isinstance(cf.puts([("g", b"1")]), tuple)


def test_a_failed_read_is_recorded_as_an_error(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}")
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    cf.put("good", b"1")
    results, record = cf.get(["good", "bad"], raise_errors=False, return_recording=True)
    assert results[1]["error"] is not None
    assert record.files == 1 and record.num_errors == 1


def test_records_of_processes_are_merged(tmp_path):
    cf = CloudFiles(f"file://{tmp_path}", parallel=2)
    files = [(f"p{i:03d}", bytes(10)) for i in range(60)]
    count, sent = cf.puts(files, return_recording=True)
    assert count == 60 and sent.files == 60 and sent.total_bytes() == 600
    results, received = cf.get([k for k, _ in files], return_recording=True)
    assert len(results) == 60 and received.files == 60 and received.total_bytes() == 600
    assert pickle.loads(pickle.dumps(received)).files == 60


@pytest.mark.parametrize("reencode", [None, "gzip"])
def test_a_transfer_returns_its_record(root, tmp_path, reencode):
    src = CloudFiles(root)
    src.puts([(f"t{i}", bytes(100)) for i in range(7)], compress="gzip")
    record = src.transfer_to(f"file://{tmp_path}/copy", reencode=reencode)
    assert isinstance(record, TransmissionMonitor) and record.direction is IOEnum.TX
    assert record.files == 7 and record.total_bytes() > 0
    assert record.start_unix_time() <= record.end_unix_time()
    back = CloudFiles(f"mem://dropin-{os.urandom(4).hex()}/b").transfer_from(f"file://{tmp_path}/copy")
    assert back.files == 7
    missing = src.transfer_to(f"file://{tmp_path}/m", paths=["t0", "ghost"], allow_missing=True)
    assert missing.files == 2  # the empty file written for the missing source counts
    single = CloudFile(f"{root}/t1").transfer_to(f"file://{tmp_path}/one/t1")
    assert single.files == 1


def test_the_original_interface_object(root):
    cf = CloudFiles(root)
    cf.put("k", b"payload", compress="br")
    conn = cf._get_connection()
    with conn as same:
        assert same is conn
    content, encoding, _, _ = conn.get_file("k")
    assert encoding == "br" and content != b"payload"
    assert conn.get_file("missing") == (None, None, None, None)
    conn.put_file("raw", b"stored as is", "text/plain", None)
    assert cf.get("raw") == b"stored as is"
    assert conn.files_exist(["k", "nope"]) == {"k": True, "nope": False}
    assert conn.exists("raw") and conn.size("raw") == 12
    assert sorted(conn.list_files()) == ["k", "raw"]
    conn.delete_files(["raw"])
    assert cf.exists("raw") is False
    if root.startswith("mem://"):
        assert [os.path.splitext(name)[1] for name in conn._data if name.startswith("r/")] == [".br"]
    else:
        with pytest.raises(AttributeError):
            conn._data  # noqa: B018


def test_acls_local_and_memory(tmp_path):
    local = CloudFiles(f"file://{tmp_path}")
    local.puts([("a", b"1"), ("b", b"2")])
    os.chmod(tmp_path / "b", 0o600)
    acls = local.get_acl(["a", "b", "missing"])
    assert stat.S_IMODE(acls["b"]) == 0o600 and stat.S_ISREG(acls["a"])
    assert acls["missing"] is None
    assert local.get_acl("a") == {"a": acls["a"]}  # one key: a dict too, as the original
    mem = CloudFiles(f"mem://dropin-{os.urandom(4).hex()}/x")
    mem.put("a", b"1")
    assert mem.get_acl(["a"]) == {"a": None}
    assert CloudFile(f"file://{tmp_path}/a").get_acl() == {"a": acls["a"]}


@pytest.mark.parametrize("transport", ["auto", "sdk"])
def test_s3_uploads_and_copies_give_the_bucket_owner_full_control(moto_server, monkeypatch,  # noqa: F811
                                                                  transport):
    monkeypatch.setenv("CLOUD_FILES_TRANSPORT", transport)
    bucket = moto_server.new_bucket()
    host, port = moto_server.endpoint.split("//")[1].split(":")
    with FaultProxy(host, int(port)) as proxy:
        root = f"s3://{proxy.url}/{bucket}/acl"
        cf = CloudFiles(root, secrets=S3_SECRETS, composite_upload_threshold=5 * 1024 * 1024)
        cf.put("one", b"1")
        cf.put("big", os.urandom(6 * 1024 * 1024), raw=True)  # a multipart upload
        copies = CloudFiles(root + "-copy", secrets=S3_SECRETS)
        cf.transfer_to(copies, ["one"])  # a server-side copy
        writes = [(method, target, headers) for method, target, headers in proxy.requests
                  if (method == "PUT" and "partNumber=" not in target)
                  or (method == "POST" and target.endswith("?uploads"))]
        assert len(writes) == 3, [w[:2] for w in writes]  # PUT, CreateMultipartUpload, copy
        assert {headers.get("x-amz-acl") for _, _, headers in writes} == {"bucket-owner-full-control"}
        for where, key in ((cf, "one"), (cf, "big"), (copies, "one")):
            acl = where.get_acl([key])[key]
            assert [grant["Permission"] for grant in acl["Grants"]] == ["FULL_CONTROL"], acl
        assert cf.get_acl(["nope"]) == {"nope": None}


def test_s3_results_and_heads_as_the_original(s3_root):
    cf = CloudFiles(s3_root, secrets=S3_SECRETS)
    cf.puts([("plain", b"p"), {"path": "gz", "content": b"g" * 100, "compress": "gzip"}])
    got = {r["path"]: r for r in cf.get(["plain", "gz", "missing"])}
    assert got["plain"]["compress"] == "" and got["gz"]["compress"] == "gzip"
    assert got["missing"]["compress"] is None and got["missing"]["content"] is None
    etag = cf.head("plain")["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 34


def test_path_helpers_and_arguments(tmp_path):
    cf = CloudFiles(f"precomputed://file://{tmp_path}/d")
    assert cf.abspath("k") == f"file://{tmp_path}/d{os.sep}k"
    mem = CloudFiles("zarr://mem://bucket/d")
    assert mem.abspath("k") == "mem://bucket/d/k"
    assert CloudFiles(f"file://{tmp_path}", parallel=True).parallel == 1
    local = CloudFiles(f"file://{tmp_path}")
    local.touch(["t"], nocopy=True)
    assert local.exists("t")


def test_dl_gives_each_result_its_full_path(tmp_path):
    CloudFiles(f"file://{tmp_path}/a").put("x", b"1")
    CloudFiles(f"file://{tmp_path}/b").put("y", b"2")
    results = dl([f"{tmp_path}/a/x", f"file://{tmp_path}/b/y"])
    assert [r["content"] for r in results] == [b"1", b"2"]
    for result in results:
        bucket = result["fullpath"][: -len(result["path"])].rstrip("/")
        assert result["fullpath"] == f"{bucket}/{result['path']}"
        assert result["fullpath"].startswith("file://")
        assert CloudFiles(bucket).get(result["path"]) == result["content"]


def test_gcs_acl_entries(gcs_server, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    bucket = "dropin-" + os.urandom(4).hex()
    gcs_server.create_bucket(bucket)
    cf = CloudFiles(f"gs://{bucket}/acl")
    cf.put("a", b"1")
    acls = cf.get_acl(["a", "missing"])
    assert acls["missing"] is None
    assert isinstance(acls["a"], list) and acls["a"], acls
    assert all(isinstance(entry, dict) and "role" in entry for entry in acls["a"])


def test_the_lock_class_can_be_wrapped_where_the_original_exposed_it(tmp_path, monkeypatch):
    import fasteners

    import cloudfiles_dask.backends as interfaces  # the original's cloudfiles.interfaces

    assert interfaces.fasteners is fasteners
    seen = []

    class Recording(fasteners.InterProcessReaderWriterLock):
        def __init__(self, path, *args, **kwargs):
            seen.append(os.path.basename(path))
            super().__init__(path, *args, **kwargs)

    monkeypatch.setattr(interfaces.fasteners, "InterProcessReaderWriterLock", Recording)
    cf = CloudFiles(f"file://{tmp_path}/data", locking=True, lock_dir=str(tmp_path / "locks"))
    cf.put("chunk", b"data" * 100, compress="gzip")
    assert cf.get("chunk") == b"data" * 100
    assert len(seen) >= 2 and seen[0] == seen[-1]  # the write and the read share one lock
