"""The cloudpath grammar (cloudfiles_dask.paths): parsing, rendering, helpers and aliases."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudfiles_dask import _dirs, paths
from cloudfiles_dask.exceptions import UnsupportedProtocolError
from cloudfiles_dask.paths import ExtractedPath, extract, normalize

EP = ExtractedPath
MATRIX = "https://s3-hpcrc.rc.princeton.edu"
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def isolated_aliases(monkeypatch, tmp_path):
    """Point CLOUD_FILES_DIR at an empty directory and undo every alias change afterwards."""
    cfdir = tmp_path / "cloudfiles-dir"
    monkeypatch.setenv("CLOUD_FILES_DIR", str(cfdir))
    saved, saved_acls = dict(paths.ALIASES), dict(paths._ACLS)
    paths._clear_caches()
    yield cfdir
    paths.ALIASES.clear()
    paths.ALIASES.update(saved)
    paths._ACLS.clear()
    paths._ACLS.update(saved_acls)
    paths._clear_caches()


def alias_file(cfdir: pathlib.Path) -> pathlib.Path:
    return cfdir / "aliases.json"


def write_alias_file(cfdir: pathlib.Path, text: str) -> pathlib.Path:
    cfdir.mkdir(parents=True, exist_ok=True)
    path = alias_file(cfdir)
    path.write_text(text)
    return path


# ----------------------------------------------------------------------------------------------
# extract: the examples of the reference


@pytest.mark.parametrize(
    "cloudpath, expected",
    [
        (
            "gs://bucket/dataset/layer",
            EP("precomputed", "gs", "bucket", "dataset/layer", None, None),
        ),
        (
            "graphene://http://localhost:8080/segmentation/1.0/testvol",
            EP("graphene", "http", None, "segmentation/1.0/testvol", "http://localhost:8080", None),
        ),
        (
            "file:///tmp/dataset/layer",
            EP("precomputed", "file", None, "/tmp/dataset/layer", None, None),
        ),
        (
            "precomputed://s3://https://s3-hpcrc.rc.princeton.edu/hello/world",
            EP("precomputed", "s3", "hello", "world", MATRIX, None),
        ),
    ],
)
def test_reference_examples(cloudpath, expected):
    assert extract(cloudpath) == expected


def test_extracted_path_field_order():
    assert ExtractedPath._fields == ("format", "protocol", "bucket", "path", "host", "alias")


# ----------------------------------------------------------------------------------------------
# formats


@pytest.mark.parametrize("fmt", paths.ALLOWED_FORMATS)
def test_every_format_prefix(fmt):
    assert extract(f"{fmt}://gs://bucket/key") == EP(fmt, "gs", "bucket", "key", None, None)


def test_allowed_formats_are_the_documented_ones():
    assert set(paths.ALLOWED_FORMATS) == {
        "graphene", "precomputed", "boss", "n5", "zarr", "zarr2", "zarr3",
        "brainmaps", "deepzoom", "nggraph", "render", "vtk", "nifti", "dvid",
    }  # fmt: skip


def test_default_format_is_precomputed():
    assert extract("s3://bucket/key").format == "precomputed"
    assert extract(normalize("/tmp/x")).format == "precomputed"


@pytest.mark.parametrize("fmt", ["zarr2", "zarr3", "n5", "zarr", "precomputed"])
def test_format_tail_becomes_format(fmt):
    assert extract(f"gs://bucket/a/b|{fmt}:") == EP(fmt, "gs", "bucket", "a/b", None, None)
    assert normalize(f"gs://bucket/a/b|{fmt}:") == f"{fmt}://gs://bucket/a/b"


def test_neuroglancer_precomputed_tail_is_stripped():
    assert normalize("gs://bucket/a|neuroglancer-precomputed:") == "gs://bucket/a"
    assert extract("gs://bucket/a|neuroglancer-precomputed:") == EP(
        "precomputed", "gs", "bucket", "a", None, None
    )


def test_format_tail_on_local_path(tmp_path):
    assert normalize(f"{tmp_path}/vol|zarr2:") == f"zarr2://file://{tmp_path}/vol"
    assert extract(normalize(f"{tmp_path}/vol|zarr2:")) == EP(
        "zarr2", "file", None, f"{tmp_path}/vol", None, None
    )
    with pytest.raises(UnsupportedProtocolError):  # no protocol: extract needs normalize first
        extract(f"{tmp_path}/vol|zarr2:")


def test_matching_prefix_and_tail_are_accepted():
    assert extract("zarr2://gs://b/x|zarr2:").format == "zarr2"


@pytest.mark.parametrize(
    "bad",
    [
        "zarr://gs://b/x|zarr2:",  # conflicting prefix and tail
        "gs://b/x|bogus:",  # unknown tail
        "zarr://relative/dir",  # a format needs a protocol after it
        "precomputed://zarr://gs://b/x",  # a second format where the protocol belongs
        "zarr://",
    ],
)
def test_bad_formats(bad):
    with pytest.raises(UnsupportedProtocolError) as info:
        extract(bad)
    assert repr(bad) in str(info.value)


# ----------------------------------------------------------------------------------------------
# protocols


def test_base_protocols():
    assert set(paths.BASE_ALLOWED_PROTOCOLS) == {
        "gs", "s3", "file", "mem", "http", "https", "middleauth+https", "ngauth+https"
    }  # fmt: skip
    assert set(paths.CLOUD_PROTOCOLS) == {"gs", "s3", "matrix", "tigerdata", "nokura"}


@pytest.mark.parametrize("protocol", ["gs", "s3", "mem"])
def test_bucketed_protocols(protocol):
    assert extract(f"{protocol}://bkt/a/b") == EP("precomputed", protocol, "bkt", "a/b", None, None)
    assert extract(f"{protocol}://bkt") == EP("precomputed", protocol, "bkt", "", None, None)
    assert extract(f"{protocol}://bkt/") == EP("precomputed", protocol, "bkt", "", None, None)


@pytest.mark.parametrize("protocol", ["gs", "s3"])
def test_trailing_slash_kept_for_object_stores(protocol):
    assert extract(f"{protocol}://bkt/dir/").path == "dir/"
    assert extract(f"{protocol}://bkt/a//b/").path == "a//b/"


@pytest.mark.parametrize("bucket", ["my-bucket", "my.bucket_1", "~user", "host:8080", "ünïcode"])
def test_bucket_names(bucket):
    assert extract(f"gs://{bucket}/k").bucket == bucket


@pytest.mark.parametrize(
    "scheme, netloc",
    [("https", "s3-hpcrc.rc.princeton.edu"), ("http", "localhost:9000"), ("https", "10.0.0.1:443")],
)
def test_s3_custom_endpoint(scheme, netloc):
    assert extract(f"s3://{scheme}://{netloc}/bkt/a/b/") == EP(
        "precomputed", "s3", "bkt", "a/b/", f"{scheme}://{netloc}", None
    )


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_http(scheme):
    assert extract(f"{scheme}://example.com:8000/a/b.json") == EP(
        "precomputed", scheme, None, "a/b.json", f"{scheme}://example.com:8000", None
    )
    assert extract(f"{scheme}://example.com") == EP(
        "precomputed", scheme, None, "", f"{scheme}://example.com", None
    )


def test_http_query_may_contain_a_url():
    ep = extract("https://example.com/redirect?to=https://other.org/x")
    assert ep.path == "redirect?to=https://other.org/x"
    assert ep.host == "https://example.com"


@pytest.mark.parametrize("protocol", ["middleauth+https", "ngauth+https"])
def test_authenticated_https(protocol):
    assert extract(f"{protocol}://cave.example.org/segmentation/table") == EP(
        "precomputed", protocol, None, "segmentation/table", "https://cave.example.org", None
    )


def test_graphene_middleauth():
    ep = extract("graphene://middleauth+https://host.org/segmentation/api/v1/table")
    assert ep == EP(
        "graphene", "middleauth+https", None, "segmentation/api/v1/table", "https://host.org", None
    )


# ----------------------------------------------------------------------------------------------
# local paths


def test_file_absolute_and_trailing_slash_dropped():
    assert extract("file:///tmp/dataset/layer/") == EP(
        "precomputed", "file", None, "/tmp/dataset/layer", None, None
    )


def test_file_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cwd = os.getcwd()
    assert extract("file://relative/x").path == os.path.join(cwd, "relative", "x")
    assert extract(normalize("relative/x")) == EP(
        "precomputed", "file", None, os.path.join(cwd, "relative/x"), None, None
    )
    assert extract("file://").path == cwd
    assert extract(normalize("./a/../b")).path == os.path.join(cwd, "b")


def test_results_follow_the_current_directory(tmp_path, monkeypatch):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    monkeypatch.chdir(tmp_path / "one")
    first = extract("file://x").path
    monkeypatch.chdir(tmp_path / "two")
    assert extract("file://x").path != first
    assert extract("file://x").path == os.path.join(os.getcwd(), "x")


def test_tilde_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert extract(normalize("~/data")).path == str(tmp_path / "data")
    assert extract("file://~/data/").path == str(tmp_path / "data")
    assert normalize("~/data") == f"file://{tmp_path}/data"


def test_pathlike_is_a_local_path(tmp_path):
    assert extract(tmp_path / "x") == EP(
        "precomputed", "file", None, str(tmp_path / "x"), None, None
    )


def test_windows_drive_paths():
    assert extract("file://C:\\x\\y", windows=True) == EP(
        "precomputed", "file", None, "C:\\x\\y", None, None
    )
    assert extract("file:///C:/x/y/", windows=True).path == "C:/x/y/"
    assert extract("file://D:\\data\\", windows=True).path == "D:\\data\\"
    assert extract("file://C:\\", windows=True).path == "C:\\"
    assert extract("zarr://file://C:\\vol", windows=True).format == "zarr"


def test_windows_false_treats_drive_path_as_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ep = extract("file://C:\\x\\y", windows=False)
    assert ep.protocol == "file"
    assert ep.path == os.path.join(os.getcwd(), "C:\\x\\y")


def test_windows_true_still_parses_cloud_paths():
    assert extract("gs://b/k", windows=True) == extract("gs://b/k", windows=False)


# ----------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "bad",
    [
        "gs://",
        "gs://///",
        "gs:///key",
        "s3://",
        "mem://",
        "matrix://",
        "s3://https://host.org/",
        "s3://https://host.org",
        "s3://https:///bucket/key",
        "https://",
        "https:///path",
        "middleauth+https://",
        "gs://gs://b/x",
        "gs://b/s3://x",
        "s3://https://host/b/gs://x",
        "s3://ftp://host/b",
        "file:///tmp/gs://x",
        "/tmp/gs://x",
        "bogus://bucket/key",
        "GS://bucket/key",
        "gs://bad bucket/key",
        "gs://bad@bucket/key",
        "gs://bucket:port/key",
        "/tmp/nul\x00byte",
    ],
)
def test_unparseable_paths(bad):
    with pytest.raises(UnsupportedProtocolError) as info:
        extract(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "Accepted cloudpaths" in message  # the help text lists the accepted forms
    assert "gs, s3, file" in message


def test_empty_string_is_an_unsupported_protocol_error():
    with pytest.raises(UnsupportedProtocolError) as info:
        extract("")
    assert "''" in str(info.value)


@pytest.mark.parametrize("bad", [None, b"gs://bucket/key", 42])
def test_non_strings(bad):
    with pytest.raises(UnsupportedProtocolError) as info:
        extract(bad)
    assert repr(bad) in str(info.value)


def test_error_is_a_value_error():
    with pytest.raises(ValueError):
        extract("nope://x")


def test_unknown_protocol_message_names_protocol():
    with pytest.raises(UnsupportedProtocolError, match="unknown protocol 'bogus'"):
        extract("bogus://bucket/key")


@pytest.mark.parametrize("bad", ["", None, "bogus://x", "gs://"])
def test_normalize_rejects_what_extract_rejects(bad):
    with pytest.raises(UnsupportedProtocolError) as info:
        normalize(bad)
    assert repr(bad) in str(info.value)


# ----------------------------------------------------------------------------------------------
# normalize


def test_normalize_bare_and_file_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cwd = os.getcwd()
    assert normalize("rel/x") == f"file://{cwd}/rel/x"
    assert normalize("file://rel/x") == f"file://{cwd}/rel/x"
    assert normalize("/abs/x") == "file:///abs/x"
    assert normalize("/abs/x/") == "file:///abs/x/"  # the directory hint survives
    assert normalize("/") == "file:///"
    assert normalize("file:///tmp/a/../b") == "file:///tmp/b"


@pytest.mark.parametrize(
    "path",
    [
        "gs://bucket/dir",
        "gs://bucket",
        "s3://https://host.org/b/k/",
        "zarr2://gs://b/x",
        "https://example.com/a?b=c",
        "matrix://b/k",
        "mem://b/k",
    ],
)
def test_normalize_leaves_remote_paths_alone(path):
    assert normalize(path) == path


# ----------------------------------------------------------------------------------------------
# rendering


@pytest.mark.parametrize(
    "path, protocolpath",
    [
        ("gs://bucket/dataset/layer", "gs://bucket/dataset/layer"),
        ("gs://bucket", "gs://bucket/"),
        (
            "precomputed://s3://https://s3-hpcrc.rc.princeton.edu/hello/world",
            f"s3://{MATRIX}/hello/world",
        ),
        ("graphene://http://localhost:8080/seg/1.0/vol", "http://localhost:8080/seg/1.0/vol"),
        ("middleauth+https://host.org/a/b", "middleauth+https://host.org/a/b"),
        ("matrix://bkt/key/", "matrix://bkt/key/"),
        ("file:///tmp/x/", "file:///tmp/x"),
        ("mem://b/k", "mem://b/k"),
    ],
)
def test_asprotocolpath(path, protocolpath):
    assert paths.asprotocolpath(extract(path)) == protocolpath
    assert paths.asprotocolpath(path) == protocolpath
    assert extract(protocolpath)[1:] == extract(path)[1:]


def test_ascloudpath_writes_the_format():
    assert paths.ascloudpath(extract("zarr3://gs://b/k")) == "zarr3://gs://b/k"
    assert paths.ascloudpath(extract("precomputed://gs://b/k")) == "precomputed://gs://b/k"
    assert paths.ascloudpath(extract("gs://b/k")) == "precomputed://gs://b/k"
    assert paths.ascloudpath(EP(None, "gs", "b", "k", None, None)) == "gs://b/k"
    assert paths.ascloudpath(extract("gs://b/k|n5:")) == "n5://gs://b/k"
    assert paths.ascloudpath("graphene://https://h.org/x") == "graphene://https://h.org/x"


@pytest.mark.parametrize(
    "path, bucketpath",
    [
        ("gs://bucket/a/b", "gs://bucket/"),
        ("s3://bucket", "s3://bucket/"),
        ("s3://https://host.org:9000/bucket/a", "s3://https://host.org:9000/bucket/"),
        ("matrix://bucket/a/b", "matrix://bucket/"),
        ("zarr://mem://b/k", "mem://b/"),
        ("https://host.org/a/b", "https://host.org/"),
        ("file:///tmp/x/y", "file:///tmp"),
        ("file:///", "file:///"),
    ],
)
def test_asbucketpath(path, bucketpath):
    assert paths.asbucketpath(path) == bucketpath
    assert paths.asbucketpath(extract(path)) == bucketpath


def test_asfilepath():
    assert paths.asfilepath(extract("file:///tmp/x/")) == "/tmp/x"
    for remote in ("gs://b/k", "https://h.org/x", "mem://b/k"):
        with pytest.raises(ValueError):
            paths.asfilepath(extract(remote))


def test_rendering_rejects_other_types():
    with pytest.raises(TypeError):
        paths.asprotocolpath(123)


# ----------------------------------------------------------------------------------------------
# dirname / basename


@pytest.mark.parametrize(
    "path, parent, name",
    [
        ("gs://b/a/c", "gs://b/a", "c"),
        ("gs://b/a/", "gs://b/a", ""),
        ("gs://b/a", "gs://b", "a"),
        ("s3://https://host.org/b/a/c", "s3://https://host.org/b/a", "c"),
        ("https://host.org/a/c.json", "https://host.org/a", "c.json"),
        ("zarr://gs://b/a/c", "zarr://gs://b/a", "c"),
        ("file:///tmp/a/c", "file:///tmp/a", "c"),
        ("file:///tmp", "file:///", "tmp"),
        ("/tmp/a/c", "/tmp/a", "c"),
        ("matrix://b/x/y", "matrix://b/x", "y"),
    ],
)
def test_dirname_basename(path, parent, name):
    assert paths.dirname(path) == parent
    assert paths.basename(path) == name


# ----------------------------------------------------------------------------------------------
# to_https_protocol


@pytest.mark.parametrize(
    "path, url",
    [
        ("gs://b/k/x", "https://storage.googleapis.com/b/k/x"),
        ("s3://b/k", "https://s3.amazonaws.com/b/k"),
        ("s3://https://host.org/b/k", "https://host.org/b/k"),
        ("s3://http://localhost:9000/b/k", "http://localhost:9000/b/k"),
        ("matrix://b/k", f"{MATRIX}/b/k"),
        ("tigerdata://b/k", "https://td.princeton.edu/b/k"),
        ("zarr2://gs://b/k", "zarr2://https://storage.googleapis.com/b/k"),
        ("https://example.com/x", "https://example.com/x"),
        ("file:///tmp/x", "file:///tmp/x"),
        ("mem://b/k", "mem://b/k"),
        ("relative/path", "relative/path"),
    ],
)
def test_to_https_protocol(path, url):
    assert paths.to_https_protocol(path) == url


def test_to_https_protocol_accepts_extracted_path():
    result = paths.to_https_protocol(extract("gs://b/k"))
    assert isinstance(result, ExtractedPath)
    assert result == extract("https://storage.googleapis.com/b/k")
    assert paths.to_https_protocol(extract("zarr://matrix://b/k")) == EP(
        "zarr", "https", None, "b/k", MATRIX, None
    )
    mem = extract("mem://b/k")
    assert paths.to_https_protocol(mem) is mem


def test_to_https_protocol_custom_alias():
    paths.add_alias("mystore", "s3://https://store.example.org")
    assert paths.to_https_protocol("mystore://b/k") == "https://store.example.org/b/k"


# ----------------------------------------------------------------------------------------------
# find_common_buckets


def test_find_common_buckets_groups_and_orders():
    groups = paths.find_common_buckets(
        [
            "gs://b1/x",
            "s3://b2/y",
            "gs://b1/z/w",
            {"path": "gs://b1/r", "start": 1, "end": 5, "tags": {"i": 7}},
            {"path": "file:///tmp/x/y", "byte_range": (3, 9)},
            "s3://https://host.org/b3/k",
            "matrix://b4/k",
        ]
    )
    assert list(groups) == [
        "gs://b1/", "s3://b2/", "file:///tmp", "s3://https://host.org/b3/", "matrix://b4/"
    ]  # fmt: skip
    assert groups["gs://b1/"] == [
        {"path": "x", "start": None, "end": None},
        {"path": "z/w", "start": None, "end": None},
        {"path": "r", "start": 1, "end": 5, "tags": {"i": 7}},
    ]
    assert groups["file:///tmp"] == [{"path": "x/y", "start": 3, "end": 9}]
    assert groups["s3://https://host.org/b3/"] == [{"path": "k", "start": None, "end": None}]


def test_find_common_buckets_single_inputs():
    assert paths.find_common_buckets("gs://b/k") == {
        "gs://b/": [{"path": "k", "start": None, "end": None}]
    }
    assert paths.find_common_buckets({"path": "mem://m/k", "end": 4}) == {
        "mem://m/": [{"path": "k", "start": None, "end": 4}]
    }


def test_find_common_buckets_does_not_mutate_input_dicts():
    item = {"path": "gs://b/k", "byte_range": (0, 1)}
    paths.find_common_buckets([item])
    assert item == {"path": "gs://b/k", "byte_range": (0, 1)}


def test_find_common_buckets_bad_items():
    with pytest.raises(ValueError):
        paths.find_common_buckets([{"start": 1}])
    with pytest.raises(TypeError):
        paths.find_common_buckets([42])
    with pytest.raises(UnsupportedProtocolError):
        paths.find_common_buckets(["gs://"])


# ----------------------------------------------------------------------------------------------
# get_protocol / pop_protocol / service_provider


def test_get_and_pop_protocol():
    assert paths.get_protocol("gs://b/k") == "gs"
    assert paths.get_protocol("zarr://s3://https://h.org/b/k") == "s3"
    assert paths.get_protocol("matrix://b/k") == "matrix"
    assert paths.get_protocol("/tmp/x") is None
    assert paths.pop_protocol("gs://b/k") == ("gs", "b/k")
    assert paths.pop_protocol("middleauth+https://h.org/x") == ("middleauth+https", "h.org/x")
    assert paths.pop_protocol("rel/x") == (None, "rel/x")
    assert paths.get_protocol("bogus://x") is None  # unknown, even after reading the alias file
    assert paths.get_protocol("precomputed:///tmp/x") is None


def test_service_provider():
    assert paths.service_provider(extract("matrix://b/k")) == "matrix"
    assert paths.service_provider("s3://https://h.org/b/k") == "s3"
    assert paths.service_provider(extract("gs://b/k")) == "gs"
    assert paths.service_provider("/tmp/x") == "file"


# ----------------------------------------------------------------------------------------------
# aliases


@pytest.mark.parametrize(
    "name, host, acl",
    [
        ("matrix", "s3://https://s3-hpcrc.rc.princeton.edu/", None),
        ("tigerdata", "s3://https://td.princeton.edu/", "private"),
        ("nokura", "s3://https://c10s.pni.princeton.edu/", "public-read"),
    ],
)
def test_official_aliases(name, host, acl):
    assert paths.OFFICIAL_ALIASES[name] == host
    assert paths.ALIASES[name] == host
    assert paths.resolve_alias(f"{name}://bucket/a") == (name, f"{host}bucket/a")
    assert paths.alias_acl(name) == acl
    ep = extract(f"{name}://bucket/a/b/")
    assert ep == EP("precomputed", "s3", "bucket", "a/b/", host[len("s3://") : -1], name)


@pytest.mark.parametrize("name", ["matrix", "tigerdata", "nokura"])
def test_official_aliases_cannot_be_overridden_or_removed(name):
    with pytest.raises(ValueError):
        paths.add_alias(name, "s3://https://evil.example.org/")
    with pytest.raises(ValueError):
        paths.add_persistent_alias(name, "s3://https://evil.example.org/")
    with pytest.raises(ValueError):
        paths.remove_alias(name)
    with pytest.raises(ValueError):
        paths.remove_persistent_alias(name)
    assert paths.ALIASES[name] == paths.OFFICIAL_ALIASES[name]


def test_official_alias_table_is_read_only():
    with pytest.raises(TypeError):
        paths.OFFICIAL_ALIASES["matrix"] = "s3://https://evil.example.org/"


def test_resolve_alias_keeps_format_and_tail():
    assert paths.resolve_alias("zarr://matrix://b/k") == ("matrix", f"zarr://s3://{MATRIX}/b/k")
    assert paths.resolve_alias("matrix://b/k|n5:") == ("matrix", f"s3://{MATRIX}/b/k|n5:")


@pytest.mark.parametrize("path", ["gs://b/k", "nosuchalias://b/k", "rel/x", "", "matrix"])
def test_resolve_alias_without_an_alias(path):
    assert paths.resolve_alias(path) == (None, path)


def test_add_alias_appends_slash_and_parses():
    paths.add_alias("lab", "s3://https://minio.lab.org:9000", acl="private")
    assert paths.ALIASES["lab"] == "s3://https://minio.lab.org:9000/"
    assert paths.alias_acl("lab") == "private"
    assert "lab" in paths.ALLOWED_PROTOCOLS
    ep = extract("zarr://lab://bkt/k")
    assert ep == EP("zarr", "s3", "bkt", "k", "https://minio.lab.org:9000", "lab")
    assert paths.asprotocolpath(ep) == "lab://bkt/k"
    assert paths.ascloudpath(ep) == "zarr://lab://bkt/k"
    assert paths.asbucketpath(ep) == "lab://bkt/"
    assert "lab" in str(pytest.raises(UnsupportedProtocolError, extract, "lab://").value)


@pytest.mark.parametrize("name", list(paths.BASE_ALLOWED_PROTOCOLS) + list(paths.ALLOWED_FORMATS))
def test_add_alias_refuses_protocols_and_formats(name):
    with pytest.raises(ValueError):
        paths.add_alias(name, "s3://https://x.example.org/")
    assert name not in paths.ALIASES


@pytest.mark.parametrize(
    "name, host",
    [
        ("ok", "s3://https:///"),
        ("ok", "not-a-host"),
        ("ok", "nope://x/"),  # not a base protocol
        ("ok", "matrix://bucket/"),  # an alias of an alias
        ("ok", "zarr://gs://b/"),  # a format
        ("ok", "gs://bad bucket/"),
        ("ok", ""),
        ("ok", None),
        ("bad name", "s3://https://x.example.org/"),
        ("9lives", "s3://https://x.example.org/"),
        ("", "s3://https://x.example.org/"),
    ],
)
def test_add_alias_validates(name, host):
    with pytest.raises(ValueError):
        paths.add_alias(name, host)
    assert "ok" not in paths.ALIASES


def test_alias_changes_are_never_stale():
    with pytest.raises(UnsupportedProtocolError):
        extract("fresh://b/k")
    paths.add_alias("fresh", "s3://https://one.example.org/")
    assert extract("fresh://b/k").host == "https://one.example.org"
    paths.add_alias("fresh", "s3://https://two.example.org/")
    assert extract("fresh://b/k").host == "https://two.example.org"
    paths.remove_alias("fresh")
    with pytest.raises(UnsupportedProtocolError):
        extract("fresh://b/k")
    paths.remove_alias("fresh")  # removing twice is fine


def test_help_text_lists_aliases():
    paths.add_alias("listedalias", "s3://https://x.example.org/")
    with pytest.raises(UnsupportedProtocolError) as info:
        extract("bogus://b")
    assert "listedalias" in str(info.value)
    assert "matrix" in str(info.value)


# ----------------------------------------------------------------------------------------------
# persistent aliases and the alias file


def test_alias_file_location_follows_env(isolated_aliases):
    assert _dirs.alias_file() == str(alias_file(isolated_aliases))


def test_persistent_alias_round_trip(isolated_aliases):
    paths.add_persistent_alias("store", "s3://https://store.example.org")
    stored = json.loads(alias_file(isolated_aliases).read_text())
    assert stored == {"store": {"host": "s3://https://store.example.org/"}}
    assert extract("store://b/k").host == "https://store.example.org"

    # another process would see it: forget it in memory, it comes back from the file
    paths.remove_alias("store")
    assert "store" not in paths.ALIASES
    assert extract("store://b/k") == EP(
        "precomputed", "s3", "b", "k", "https://store.example.org", "store"
    )

    paths.remove_persistent_alias("store")
    assert json.loads(alias_file(isolated_aliases).read_text()) == {}
    assert "store" not in paths.ALIASES
    with pytest.raises(UnsupportedProtocolError):
        extract("store://b/k")


def test_persistent_alias_keeps_other_entries_and_acl(isolated_aliases):
    write_alias_file(
        isolated_aliases, json.dumps({"old": {"host": "s3://https://old.example.org/"}})
    )
    paths.add_persistent_alias("new", "s3://https://new.example.org/", acl="public-read")
    stored = json.loads(alias_file(isolated_aliases).read_text())
    assert stored == {
        "old": {"host": "s3://https://old.example.org/"},
        "new": {"host": "s3://https://new.example.org/", "acl": "public-read"},
    }
    assert paths.alias_acl("new") == "public-read"
    paths.remove_persistent_alias("new")
    assert json.loads(alias_file(isolated_aliases).read_text()) == {
        "old": {"host": "s3://https://old.example.org/"}
    }


def test_persistent_alias_written_atomically(isolated_aliases, monkeypatch):
    calls = []
    real_replace = os.replace

    def spy(src, dst):
        calls.append((str(src), str(dst)))
        assert os.path.exists(src)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    paths.add_persistent_alias("atomic", "s3://https://a.example.org/")
    target = str(alias_file(isolated_aliases))
    assert len(calls) == 1
    src, dst = calls[0]
    assert dst == target
    assert os.path.dirname(src) == os.path.dirname(target) and src != target
    assert sorted(os.listdir(isolated_aliases)) == ["aliases.json"]  # no temporary left behind


def test_persistent_alias_refuses_to_clobber_corrupt_file(isolated_aliases):
    path = write_alias_file(isolated_aliases, "{not json")
    with pytest.raises(ValueError, match="aliases.json"):
        paths.add_persistent_alias("x1", "s3://https://x.example.org/")
    with pytest.raises(ValueError, match="aliases.json"):
        paths.remove_persistent_alias("x1")
    assert path.read_text() == "{not json"
    assert "x1" not in paths.ALIASES


def test_update_aliases_from_file(isolated_aliases):
    assert paths.update_aliases_from_file() == {}  # no file, no aliases
    write_alias_file(
        isolated_aliases,
        json.dumps(
            {
                "short": "s3://https://short.example.org",
                "full": {
                    "host": "s3://https://full.example.org/",
                    "acl": "private",
                    "note": "kept",
                },
                "matrix": {"host": "s3://https://evil.example.org/"},
            }
        ),
    )
    loaded = paths.update_aliases_from_file()
    assert loaded == {
        "short": {"host": "s3://https://short.example.org/", "acl": None},
        "full": {"host": "s3://https://full.example.org/", "acl": "private", "note": "kept"},
    }
    assert paths.ALIASES["matrix"] == "s3://https://s3-hpcrc.rc.princeton.edu/"
    assert paths.alias_acl("full") == "private"
    assert extract("full://b/k").host == "https://full.example.org"


@pytest.mark.parametrize(
    "content",
    [
        "[1, 2]",
        '{"gs": {"host": "s3://https://x.example.org/"}}',
        '{"zarr": {"host": "s3://https://x.example.org/"}}',
        '{"good": {"host": "s3://https://x.example.org/"}, "bad": {"nohost": 1}}',
        '{"good": {"host": "s3://https://x.example.org/"}, "bad": {"host": "nope://x"}}',
    ],
)
def test_update_aliases_from_malformed_file(isolated_aliases, content):
    write_alias_file(isolated_aliases, content)
    with pytest.raises(ValueError, match="aliases.json"):
        paths.update_aliases_from_file()
    assert "good" not in paths.ALIASES  # nothing is loaded from a bad file


def test_alias_file_not_read_for_known_protocols(isolated_aliases, monkeypatch):
    write_alias_file(isolated_aliases, "{ this is not JSON")
    reads = []
    real = _dirs.alias_file
    monkeypatch.setattr(_dirs, "alias_file", lambda: reads.append(1) or real())

    for path in [
        "gs://b/k",
        "s3://b/k",
        "s3://https://h.org/b/k",
        "mem://b/k",
        "file:///tmp/x",
        "/tmp/x",
        "https://h.org/x",
        "middleauth+https://h.org/x",
        "matrix://b/k",
        "zarr2://gs://b/k",
    ]:
        assert extract(normalize(path)).protocol in paths.BASE_ALLOWED_PROTOCOLS
        paths.get_protocol(path)
    paths.resolve_alias("nokura://b/k")
    paths.alias_acl("nokura")
    assert reads == []

    # an unknown protocol makes it look at the file, which is corrupt: the error says so
    with pytest.raises(UnsupportedProtocolError) as info:
        extract("unheard://b/k")
    assert len(reads) == 1
    assert "alias file" in str(info.value)
    assert "'unheard://b/k'" in str(info.value)


def test_alias_file_read_when_unknown_protocol_met(isolated_aliases):
    write_alias_file(
        isolated_aliases, json.dumps({"lazy": {"host": "s3://https://lazy.example.org/"}})
    )
    assert "lazy" not in paths.ALIASES  # not loaded until needed
    assert extract("lazy://bkt/key") == EP(
        "precomputed", "s3", "bkt", "key", "https://lazy.example.org", "lazy"
    )
    assert "lazy" in paths.ALIASES


def test_get_protocol_and_resolve_alias_load_lazily(isolated_aliases):
    write_alias_file(
        isolated_aliases, json.dumps({"lazy2": {"host": "s3://https://l2.example.org/"}})
    )
    assert paths.get_protocol("lazy2://b/k") == "lazy2"
    paths.remove_alias("lazy2")
    assert paths.resolve_alias("lazy2://b/k") == ("lazy2", "s3://https://l2.example.org/b/k")


def test_import_does_not_read_alias_file(tmp_path):
    cfdir = tmp_path / "cfd"
    write_alias_file(cfdir, json.dumps({"atimport": {"host": "s3://https://ai.example.org/"}}))
    script = textwrap.dedent(
        """
        from cloudfiles_dask import paths
        assert "atimport" not in paths.ALIASES, "read at import"
        assert paths.extract("gs://b/k").protocol == "gs"
        assert "atimport" not in paths.ALIASES, "read for a known protocol"
        assert paths.extract("atimport://b/k").host == "https://ai.example.org"
        print("ok")
        """
    )
    env = dict(os.environ, CLOUD_FILES_DIR=str(cfdir))
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ----------------------------------------------------------------------------------------------
# properties

buckets = st.from_regex(r"[~\w.\-]+(:\d+)?", fullmatch=True)
keys = st.text(st.characters(exclude_characters="|"), max_size=40).filter(lambda k: "://" not in k)
endpoints = st.from_regex(r"https?://[a-z0-9][a-z0-9.\-]{0,20}(:\d{1,5})?", fullmatch=True)


@PROPERTY_SETTINGS
@given(protocol=st.sampled_from(["gs", "s3", "mem"]), bucket=buckets, key=keys)
def test_property_protocolpath_round_trip(protocol, bucket, key):
    ep = extract(f"{protocol}://{bucket}/{key}")
    assert (ep.protocol, ep.bucket, ep.path) == (protocol, bucket, key)
    assert extract(paths.asprotocolpath(ep)) == ep


@PROPERTY_SETTINGS
@given(
    fmt=st.sampled_from(paths.ALLOWED_FORMATS),
    endpoint=endpoints,
    alias=st.sampled_from(["matrix", "tigerdata", "nokura"]),
    kind=st.sampled_from(["endpoint", "alias", "http"]),
    bucket=buckets,
    key=keys,
)
def test_property_cloudpath_round_trip(fmt, endpoint, alias, kind, bucket, key):
    if kind == "endpoint":
        path = f"{fmt}://s3://{endpoint}/{bucket}/{key}"
    elif kind == "alias":
        path = f"{fmt}://{alias}://{bucket}/{key}"
    else:
        path = f"{fmt}://{endpoint}/{key}"
    ep = extract(path)
    assert ep.format == fmt
    assert extract(paths.ascloudpath(ep)) == ep
    assert extract(paths.asprotocolpath(ep))[1:] == ep[1:]


prefixes = st.sampled_from(
    ["", "gs://", "s3://", "s3://https://", "s3://http://h/", "mem://", "file://", "https://",
     "middleauth+https://", "matrix://", "zarr2://", "precomputed://gs://", "unknown://", "C:\\",
     "~", "/", "//", "|"]
)  # fmt: skip
suffixes = st.sampled_from(["", "|zarr2:", "|neuroglancer-precomputed:", "|bogus:", "/", "://"])
texts = st.builds(lambda p, t, s: p + t + s, prefixes, st.text(max_size=30), suffixes)


@PROPERTY_SETTINGS
@given(text=st.one_of(st.text(), texts), windows=st.sampled_from([None, True, False]))
def test_property_extract_total(text, windows):
    try:
        result = extract(text, windows=windows)
    except UnsupportedProtocolError:
        return
    assert isinstance(result, ExtractedPath)
    assert result.format in paths.ALLOWED_FORMATS
    assert result.protocol in paths.BASE_ALLOWED_PROTOCOLS


@PROPERTY_SETTINGS
@given(text=st.one_of(st.text(), texts))
def test_property_normalize_idempotent(text):
    try:
        once = normalize(text)
    except UnsupportedProtocolError:
        return
    assert normalize(once) == once
    try:
        direct = extract(text)
    except UnsupportedProtocolError:  # no PROTOCOL://: a local path only normalize takes
        assert extract(once).protocol == "file"
    else:
        assert extract(once) == direct


# ----------------------------------------------------------------------------------------------
# the original's grammar: extract needs a protocol, normalize takes local paths


@pytest.mark.parametrize("bare", ["rel/x", "/tmp/x", "~/x", ".", "./x", "ou3bouqjsa fkj", "x|zarr:"])
def test_extract_of_a_bare_path_raises_but_normalize_takes_it(bare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsupportedProtocolError) as info:
        extract(bare)
    assert repr(bare) in str(info.value) and "normalize" in str(info.value)
    assert extract(normalize(bare)).protocol == "file"


def test_extract_of_a_bare_drive_path_raises():
    with pytest.raises(UnsupportedProtocolError):
        extract("C:\\x\\y", windows=True)
    assert extract("file://C:\\x\\y", windows=True).path == "C:\\x\\y"


def test_normalize_takes_a_format_before_a_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert normalize("zarr:///tmp/x") == "zarr://file:///tmp/x"
    assert normalize("zarr://rel/x") == f"zarr://file://{tmp_path}/rel/x"
    with pytest.raises(UnsupportedProtocolError):
        extract("zarr:///tmp/x")


def test_cloudfiles_takes_relative_and_bare_local_paths(tmp_path, monkeypatch):
    from cloudfiles_dask import CloudFiles

    monkeypatch.chdir(tmp_path)
    cf = CloudFiles("some/relative/path")
    cf.put("k", b"v")
    assert (tmp_path / "some" / "relative" / "path" / "k").read_bytes() == b"v"
    assert CloudFiles(str(tmp_path / "some")).get("relative/path/k") == b"v"


def test_the_originals_path_extraction_examples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert extract("precomputed://gs://fafb-ffn1-1234567") == EP(
        "precomputed", "gs", "fafb-ffn1-1234567", "", None, None
    )
    assert extract("file://seunglab-test/a/b") == EP(
        "precomputed", "file", None, os.path.join(os.getcwd(), "seunglab-test/a/b"), None, None
    )
    for bad in ("s4://dataset/layer", "dataset/layer", "lucifer://bucket/dataset/layer/",
                "gs://///", "ou3bouqjsa fkj aojsf oaojf ojsaf"):
        with pytest.raises(UnsupportedProtocolError):
            extract(bad)


# ----------------------------------------------------------------------------------------------
# get_any_protocol / pop_protocol / extract_format_protocol


def test_get_any_protocol_takes_whatever_comes_first():
    assert paths.get_any_protocol("zarr2://gs://b/k") == "zarr2"
    assert paths.get_any_protocol("nope://x") == "nope"
    assert paths.get_any_protocol("matrix://b/k") == "matrix"
    assert paths.get_any_protocol("middleauth+https://h.org/a") == "middleauth+https"
    assert paths.get_any_protocol("/tmp/x") is None
    assert paths.get_any_protocol("") is None
    assert paths.pop_protocol("zarr2://gs://b/k") == ("zarr2", "gs://b/k")
    assert paths.pop_protocol("nope://x") == ("nope", "x")
    assert paths.pop_protocol("") == (None, "")


def test_get_protocol_skips_the_format_and_knows_aliases():
    assert paths.get_protocol("graphene://https://h.org/x") == "https"
    assert paths.get_protocol("gs://b/k|bogus:") == "gs"
    assert paths.get_protocol("") is None
    assert paths.get_protocol("lucifer://b") is None
    paths.add_alias("lucifer", "mem://hell/")
    assert paths.get_protocol("lucifer://b") == "lucifer"


@pytest.mark.parametrize(
    "path, expected",
    [
        ("gs://b/k", ("precomputed", "gs", None, "b/k", None)),
        ("zarr2://gs://b/k", ("zarr2", "gs", None, "b/k", None)),
        ("gs://b/k|zarr2:", ("zarr2", "gs", None, "b/k", None)),
        ("gs://b/k|neuroglancer-precomputed:", ("precomputed", "gs", None, "b/k", None)),
        ("file:///tmp/x/", ("precomputed", "file", None, "/tmp/x/", None)),
        ("file://rel/x", ("precomputed", "file", None, "rel/x", None)),
        ("rel/x", ("precomputed", None, None, "rel/x", None)),
        ("", ("precomputed", None, None, "", None)),
        ("nope://b/k", ("precomputed", None, None, "nope://b/k", None)),
        ("matrix://b/k", ("precomputed", "s3", MATRIX, "b/k", "matrix")),
        ("s3://https://h.org/b/k", ("precomputed", "s3", "https://h.org", "b/k", None)),
        ("s3://b/k", ("precomputed", "s3", None, "b/k", None)),
        ("https://h.org/a/b", ("precomputed", "https", "https://h.org", "a/b", None)),
        ("http://h.org", ("precomputed", "http", "http://h.org", "", None)),
        ("middleauth+https://h.org/a", ("precomputed", "middleauth+https", "https://h.org", "a", None)),
        ("precomputed:///tmp/x", ("precomputed", None, None, "/tmp/x", None)),
        ("x|zarr:", ("zarr", None, None, "x", None)),
        ("gs://b/k|bogus:", ("precomputed", None, None, "bogus://gs://b/k", None)),
        ("gs://///", ("precomputed", "gs", None, "///", None)),
    ],
)
def test_extract_format_protocol(path, expected):
    assert paths.extract_format_protocol(path) == expected


def test_extract_format_protocol_without_defaults():
    assert paths.extract_format_protocol("gs://b/k", allow_defaults=False) == (
        None, "gs", None, "b/k", None
    )
    assert paths.extract_format_protocol("zarr://gs://b/k", allow_defaults=False)[0] == "zarr"
    assert paths.extract_format_protocol("rel/x", allow_defaults=False) == (
        None, None, None, "rel/x", None
    )


# ----------------------------------------------------------------------------------------------
# rendering: the original's test_ascloudpath and test_to_https_protocol cases


@pytest.mark.parametrize(
    "ep, cloudpath",
    [
        (EP("precomputed", "gs", "my_bucket", "of/heaven", None, None), "precomputed://gs://my_bucket/of/heaven"),
        (EP(None, "gs", "my_bucket", "of/heaven", None, None), "gs://my_bucket/of/heaven"),
        (EP(None, "file", "my_bucket", "of/heaven", None, None), "file://my_bucket/of/heaven"),
        (EP(None, "mem", "my_bucket", "of/heaven", None, None), "mem://my_bucket/of/heaven"),
        (EP(None, "https", "my_bucket", "of/heaven", "https://some.domain.com", None),
         "https://some.domain.com/my_bucket/of/heaven"),
        (EP("graphene", "https", "my_bucket", "of/heaven", "https://some.domain.com", None),
         "graphene://https://some.domain.com/my_bucket/of/heaven"),
        (EP(None, "s3", "my_bucket", "of/heaven", "https://some.domain.com", None),
         "s3://https://some.domain.com/my_bucket/of/heaven"),
        (EP("precomputed", "s3", "my_bucket", "of/heaven", "https://some.domain.com", None),
         "precomputed://s3://https://some.domain.com/my_bucket/of/heaven"),
        (EP("zarr", "s3", "b", "k", None, "matrix"), "zarr://matrix://b/k"),
    ],
)
def test_ascloudpath_of_extracted_paths(ep, cloudpath):
    assert paths.ascloudpath(ep) == cloudpath


def test_to_https_protocol_keeps_the_written_format_and_tail():
    assert paths.to_https_protocol("precomputed://gs://b/k") == (
        "precomputed://https://storage.googleapis.com/b/k"
    )
    assert paths.to_https_protocol("gs://b/k|zarr:") == "https://storage.googleapis.com/b/k|zarr:"
    assert paths.to_https_protocol("nokura://b/k") == "https://c10s.pni.princeton.edu/b/k"
    assert paths.to_https_protocol(EP(None, "gs", "b", "k", None, None)) == EP(
        "precomputed", "https", None, "b/k", "https://storage.googleapis.com", None
    )
    file_ep = EP(None, "file", "b", "k", None, None)
    assert paths.to_https_protocol(file_ep) is file_ep


# ----------------------------------------------------------------------------------------------
# aliases of any protocol


@pytest.mark.parametrize(
    "target, path, expected, rendered",
    [
        ("mem://example/", "hello", EP("precomputed", "mem", "example", "hello", None, "al"), "al://hello"),
        ("mem://example", "", EP("precomputed", "mem", "example", "", None, "al"), "al://"),
        ("gs://gbucket/pre", "k/l", EP("precomputed", "gs", "gbucket", "pre/k/l", None, "al"), "al://k/l"),
        ("s3://mybucket/", "k", EP("precomputed", "s3", "mybucket", "k", None, "al"), "al://k"),
        ("s3://http://localhost:9000/", "b/k",
         EP("precomputed", "s3", "b", "k", "http://localhost:9000", "al"), "al://b/k"),
        ("https://h.example.org/base/", "x/y",
         EP("precomputed", "https", None, "base/x/y", "https://h.example.org", "al"), "al://x/y"),
        ("file:///srv/data/", "sub/x", EP("precomputed", "file", None, "/srv/data/sub/x", None, "al"),
         "al://sub/x"),
    ],
)
def test_alias_to_any_protocol(target, path, expected, rendered):
    paths.add_alias("al", target)
    ep = extract(f"al://{path}")
    assert ep == expected
    assert paths.asprotocolpath(ep) == rendered
    assert extract(paths.asprotocolpath(ep)) == ep  # it reads back to the same place
    assert extract(paths.ascloudpath(ep)) == ep
    assert normalize(f"al://{path}") == f"al://{path}"
    assert paths.resolve_alias(f"al://{path}") == ("al", paths.ALIASES["al"] + path)
    assert paths.service_provider(ep) == "al"
    assert extract(f"zarr://al://{path}").format == "zarr"


def test_alias_to_a_relative_directory_follows_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths.add_alias("here", "file://data")
    ep = extract("here://x")
    assert ep == EP("precomputed", "file", None, str(tmp_path / "data" / "x"), None, "here")
    assert extract(paths.asprotocolpath(ep))[:5] == ep[:5]


def test_alias_to_https_rewrites_through_the_target():
    paths.add_alias("gcsal", "gs://gbucket/pre/")
    paths.add_alias("s3al", "s3://mybucket/")
    assert paths.to_https_protocol("gcsal://k") == "https://storage.googleapis.com/gbucket/pre/k"
    assert paths.to_https_protocol("s3al://k") == "https://s3.amazonaws.com/mybucket/k"
    assert paths.to_https_protocol(extract("s3al://k")) == extract("https://s3.amazonaws.com/mybucket/k")


def test_alias_acl_and_allowed_protocols():
    assert paths.alias_acl("nosuchalias") is None
    assert "memal" not in paths.ALLOWED_PROTOCOLS
    paths.add_alias("memal", "mem://m/", acl="private")
    assert paths.alias_acl("memal") == "private"
    assert paths.ALLOWED_PROTOCOLS[: len(paths.BASE_ALLOWED_PROTOCOLS)] == list(
        paths.BASE_ALLOWED_PROTOCOLS
    )
    assert "memal" in paths.ALLOWED_PROTOCOLS
    paths.add_alias("memal", "mem://m/")  # replaced without an ACL
    assert paths.alias_acl("memal") is None
    paths.remove_alias("memal")
    assert "memal" not in paths.ALLOWED_PROTOCOLS


def test_alias_file_constant_follows_env(isolated_aliases):
    assert paths.ALIAS_FILE == str(alias_file(isolated_aliases))
    assert "ALIAS_FILE" in dir(paths)
    with pytest.raises(AttributeError):
        paths.NO_SUCH_CONSTANT  # noqa: B018


def test_persistent_alias_to_mem_reads_and_writes_there(isolated_aliases):
    """The original's test_add_persistent_alias."""
    from cloudfiles_dask import CloudFiles

    paths.add_persistent_alias("example", "mem://example/")
    assert json.loads(alias_file(isolated_aliases).read_text()) == {
        "example": {"host": "mem://example/"}
    }
    cf = CloudFiles("example://hello")
    assert cf.protocol == "mem"
    cf.put("world", b"earth")
    assert cf.get("world") == b"earth"
    assert CloudFiles("mem://example/hello").get("world") == b"earth"
    assert CloudFiles("mem://example/").get("hello/world") == b"earth"
    assert cf.join(cf.cloudpath, "world") == "example://hello/world"
    paths.remove_persistent_alias("example")
    with pytest.raises(UnsupportedProtocolError):
        CloudFiles("example://hello")


def test_alias_to_a_local_directory_reads_and_writes_there(tmp_path):
    from cloudfiles_dask import CloudFiles

    paths.add_alias("disk", f"file://{tmp_path}/root")
    cf = CloudFiles("disk://sub")
    cf.put("k", b"v")
    assert (tmp_path / "root" / "sub" / "k").read_bytes() == b"v"
    assert list(CloudFiles("disk://").list()) == ["sub/k"]


def test_update_persistent_aliases_is_update_aliases_from_file(isolated_aliases):
    write_alias_file(isolated_aliases, json.dumps({"later": {"host": "mem://later/"}}))
    assert paths.update_persistent_aliases() == {"later": {"host": "mem://later/", "acl": None}}
    assert extract("later://k") == EP("precomputed", "mem", "later", "k", None, "later")


def test_find_common_buckets_takes_bare_local_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    top, _, below = str(tmp_path).strip("/").partition("/")
    groups = paths.find_common_buckets(["/srv/x/y", "rel/z"])
    assert groups["file:///srv"] == [{"path": "x/y", "start": None, "end": None}]
    assert groups[f"file:///{top}"] == [{"path": f"{below}/rel/z", "start": None, "end": None}]
