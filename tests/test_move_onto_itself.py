"""Moving a key onto itself keeps it, on every writable backend (a copy-then-delete move would
otherwise delete the only copy)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from cloudfiles_dask import CloudFiles


@pytest.fixture(params=["mem", "file", "moto", "rclone", "gcs"])
def root(request, tmp_path, monkeypatch):
    kind = request.param
    if kind == "mem":
        return f"mem://self-{uuid4().hex}/x"
    if kind == "file":
        return "file://" + str(tmp_path / "x")
    if kind == "gcs":
        server = request.getfixturevalue("gcs_server")
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        bucket = "self-" + uuid4().hex[:12]
        server.create_bucket(bucket)
        return f"gs://{bucket}/x"
    request.getfixturevalue("s3_env")
    server = request.getfixturevalue(f"{kind}_server")
    return f"s3://{server.endpoint}/{server.new_bucket()}/x"


def test_move_onto_itself_keeps_the_file(root):
    cf = CloudFiles(root)
    cf.puts([("k", b"data"), ("j", b"other")], compress="gzip")
    assert cf.moves(cf, [("k", "k"), ("j", "j2")]) == 2
    assert cf.get("k") == b"data"
    assert cf.get("j2") == b"other" and cf.get("j") is None
    cf.move("k", cf.abspath("k"))
    assert cf.get("k") == b"data"
