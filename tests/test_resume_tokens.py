"""Resumable listings: S3 continuation tokens and GCS page tokens through CloudFiles.list."""

from __future__ import annotations

from uuid import uuid4

import pytest

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.backends import s3


@pytest.fixture(params=["moto", "rclone", "gcs"])
def cf(request, monkeypatch):
    if request.param == "gcs":
        server = request.getfixturevalue("gcs_server")
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
        bucket = "tok-" + uuid4().hex[:12]
        server.create_bucket(bucket)
        cf = CloudFiles(f"gs://{bucket}/d")
        cf.backend.list_page_size = 7
    else:
        request.getfixturevalue("s3_env")
        server = request.getfixturevalue(f"{request.param}_server")
        monkeypatch.setattr(s3, "LIST_PAGE_SIZE", 7)
        cf = CloudFiles(f"s3://{server.endpoint}/{server.new_bucket()}/d")
    cf.puts([(f"k{i:03d}", b"x" * i) for i in range(40)])
    return cf


def test_resume_from_any_item_repeats_at_most_a_page_and_skips_nothing(cf):
    full = list(cf.list(size=True, return_resume_token=True))
    keys = [k for k, _, _ in full]
    assert keys == [f"k{i:03d}" for i in range(40)]
    assert [n for _, n, _ in full] == list(range(40))
    tokens = [t for _, _, t in full]
    assert tokens[0] is None and len(set(tokens)) >= 5  # several pages, each with its token
    for position in (8, 20, 39):
        resumed = [k for k, _ in cf.list(return_resume_token=True, resume_token=tokens[position])]
        assert resumed == keys[keys.index(resumed[0]):]  # a suffix of the full listing...
        assert keys.index(resumed[0]) <= position  # ...that starts no later than the item
        assert position - keys.index(resumed[0]) < 7  # ...and repeats less than one page


def test_tokens_are_none_on_local_backends_and_refused_for_flat(tmp_path):
    cf = CloudFiles("file://" + str(tmp_path))
    cf.puts([("a", b"1"), ("b/c", b"2")])
    assert list(cf.list(return_resume_token=True)) == [("a", None), ("b/c", None)]
    with pytest.raises(ValueError, match="recursive"):
        list(cf.list(flat=True, resume_token="x"))
    with pytest.raises(ValueError, match="cannot be resumed"):
        list(cf.list(resume_token="x"))
