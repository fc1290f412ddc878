"""The installed ``cloudfiles`` executable against real local servers: moto and ``rclone serve s3``
(s3://http://127.0.0.1:PORT/bucket/...), fake-gcs-server (gs://bucket/..., found through
STORAGE_EMULATOR_HOST) and a read-only HTTP server with index pages (http://127.0.0.1:PORT/...).

Every command runs in a subprocess (``tests.test_cli.run``), which inherits ``os.environ`` as the
fixtures monkeypatched it: the test AWS keys, CLOUD_VOLUME_DIR/CLOUD_FILES_DIR pointing into
tmp_path, STORAGE_EMULATOR_HOST. Results are checked behind the library's back where it matters
(boto3 admin client, the emulator's JSON API, the disk), and with raw reads through the library.

Each test gets fresh buckets, so tests do not see each other's objects; the servers themselves are
session-scoped.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import brotli
import pytest

from cloudfiles_dask import CloudFiles
from tests.servers.gcs import RecordingProxy
from tests.servers.http import HTTPObjectServer
from tests.test_cli import failing, files_under, make_tree, ok

KiB = 1024
MiB = 1024 * KiB

FILES = {
    "a.txt": b"alpha\n",
    "b.jpg": bytes(range(256)) * 8,  # not utf-8
    "c.jpg": b"\xff\xd8\xff" + b"c" * 997,
    "sub/d.jpg": b"\x00\x01 d" * 100,
    "sub/deeper/e.txt": b"epsilon " * 100,
}
TOP = {k: v for k, v in FILES.items() if "/" not in k}


# -- fixtures and helpers ------------------------------------------------------------------------


@dataclass
class Root:
    """A fresh prefix ``t`` in a fresh bucket, with direct (non-library) access to what is stored."""

    kind: str  # moto | rclone | gs
    cloudpath: str  # ...://bucket/t  (no trailing slash)
    bucket: str
    server: object

    def path(self, *keys: str) -> str:
        return "/".join([self.cloudpath, *keys])

    def _name(self, key: str) -> str:
        return f"t/{key}"

    def seed(self, files: dict[str, bytes], encoding: str | None = None) -> None:
        """Store ``files`` as-is (already encoded if ``encoding``), without the library."""
        for key, data in files.items():
            if self.kind == "gs":
                self.server.upload(self.bucket, self._name(key), data, content_encoding=encoding)
            else:
                extra = {"ContentEncoding": encoding} if encoding else {}
                self.server.admin().put_object(Bucket=self.bucket, Key=self._name(key), Body=data, **extra)

    def keys(self, under: str = "") -> list[str]:
        """Every key below ``t/<under>`` (relative to ``t/``), sorted."""
        prefix = self._name(under)
        if self.kind == "gs":
            names = self.server.object_names(self.bucket, prefix)
        else:
            names, token = [], None
            while True:
                kwargs = {"ContinuationToken": token} if token else {}
                page = self.server.admin().list_objects_v2(Bucket=self.bucket, Prefix=prefix, **kwargs)
                names += [o["Key"] for o in page.get("Contents", [])]
                token = page.get("NextContinuationToken")
                if not token:
                    break
        return sorted(n[2:] for n in names)

    def stored(self, key: str) -> tuple[bytes, str | None]:
        """(stored bytes, Content-Encoding) of ``key``, exactly as the server holds them."""
        if self.kind == "gs":
            meta = self.server.metadata(self.bucket, self._name(key))
            return self.server.download(self.bucket, self._name(key)), meta.get("contentEncoding") or None
        obj = self.server.admin().get_object(Bucket=self.bucket, Key=self._name(key))
        return obj["Body"].read(), obj.get("ContentEncoding") or None

    def contents(self, under: str = "") -> dict[str, bytes]:
        """Decoded contents of every key below ``t/<under>``, relative to it."""
        out = {}
        for key in self.keys(under):
            data, encoding = self.stored(key)
            out[key[len(under):].lstrip("/")] = decode(data, encoding)
        return out


def decode(data: bytes, encoding: str | None) -> bytes:
    if encoding in (None, "", "identity"):
        return data
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "br":
        return brotli.decompress(data)
    raise AssertionError(f"unexpected encoding {encoding!r}")


@pytest.fixture
def env(s3_env, gcs_server, monkeypatch):
    """The environment every subprocess inherits (run() copies os.environ at call time)."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    monkeypatch.delenv("CLOUDFILES_DEBUG", raising=False)
    return os.environ


@pytest.fixture
def roots(env, moto_server, rclone_server, gcs_server):
    """``roots["moto" | "rclone" | "gs"]``: one fresh Root per kind, made on first use."""

    class Roots(dict):
        def __missing__(self, kind: str) -> Root:
            if kind == "gs":
                bucket = "cfd-" + uuid4().hex[:20]
                gcs_server.create_bucket(bucket)
                root = Root("gs", f"gs://{bucket}/t", bucket, gcs_server)
            else:
                server = {"moto": moto_server, "rclone": rclone_server}[kind]
                bucket = server.new_bucket()
                root = Root(kind, f"s3://{server.endpoint}/{bucket}/t", bucket, server)
            self[kind] = root
            return root

    return Roots()


@pytest.fixture(scope="module")
def http_server():
    with HTTPObjectServer(index_pages=True) as server:
        server.put("site/dir/a.txt", b"hello over http\n")
        server.put("site/dir/sub/b.bin", bytes(range(256)))
        server.put("site/dir/z.txt", gzip.compress(b"zipped " * 20), content_encoding="gzip")
        yield server


@pytest.fixture
def src(tmp_path, env) -> Path:
    """tmp_path with ./src holding FILES (tests run the CLI with cwd=tmp_path)."""
    make_tree(tmp_path / "src", FILES)
    return tmp_path


def lines(proc) -> list[str]:
    return proc.stdout.decode().splitlines()


def head_json(path: str, cwd: Path) -> dict:
    return json.loads(ok("head", path, cwd=cwd).stdout)


def err(proc) -> str:
    return proc.stderr.decode(errors="replace")


# == ls =========================================================================================


@pytest.mark.parametrize("kind", ["moto", "gs"])
def test_ls_remote(kind, roots, src):
    root = roots[kind]
    root.seed(FILES)
    base = root.cloudpath
    assert lines(ok("ls", base, cwd=src)) == [root.path(k) for k in sorted(FILES)]
    assert lines(ok("ls", "--flat", base + "/", cwd=src)) == [root.path(k) for k in sorted(TOP)] + [root.path("sub/")]
    assert lines(ok("ls", root.path("zz"), cwd=src)) == []  # a prefix of nothing
    assert lines(ok("ls", "--shortpath", root.path("s"), cwd=src)) == ["sub/d.jpg", "sub/deeper/e.txt"]

    sized = dict(reversed(line.split("\t")) for line in lines(ok("ls", "--size", "--shortpath", base, cwd=src)))
    assert sized == {k: str(len(v)) for k, v in FILES.items()}

    assert lines(ok("ls", "--shortpath", root.path("*.jpg"), cwd=src)) == ["b.jpg", "c.jpg"]
    assert lines(ok("ls", root.path("**.jpg"), cwd=src)) == [root.path(k) for k in ("b.jpg", "c.jpg", "sub/d.jpg")]
    assert lines(ok("ls", root.path("*"), cwd=src)) == [root.path(k) for k in sorted(TOP)] + [root.path("sub/")]

    # -e: one listing per expansion, in order
    out = lines(ok("ls", "-e", root.path("[cs]"), cwd=src))
    assert out == [root.path("c.jpg"), root.path("sub/d.jpg"), root.path("sub/deeper/e.txt")]


def test_ls_rclone_and_http(roots, src, http_server):
    root = roots["rclone"]
    root.seed(FILES)
    assert lines(ok("ls", "--shortpath", root.cloudpath + "/", cwd=src)) == sorted(FILES)
    site = http_server.url + "/site/dir/"
    assert lines(ok("ls", site, cwd=src)) == [site + k for k in ("a.txt", "sub/b.bin", "z.txt")]
    assert lines(ok("ls", "--flat", "--shortpath", site, cwd=src)) == ["a.txt", "sub/", "z.txt"]


def test_ls_sqlite_on_s3(roots, src):
    root = roots["moto"]
    root.seed(FILES)
    db = src / "listing.db"
    # a finished listing leaves no page token behind, and a rerun rewrites rows in place
    proc = ok("ls", "--sqlite", str(db), root.cloudpath + "/", cwd=src)
    assert f"{len(FILES)} files".encode() in proc.stdout
    ok("ls", "--sqlite", str(db), root.cloudpath + "/", cwd=src)  # rerun: no duplicates
    conn = sqlite3.connect(db)
    try:
        assert dict(conn.execute("SELECT path, size FROM files")) == {k: len(v) for k, v in FILES.items()}
        assert conn.execute("SELECT value FROM metadata WHERE name = 'cloudpath'").fetchone()[0] == root.cloudpath + "/"
        token, done = conn.execute("SELECT page_token, rows_done FROM checkpoint WHERE id = 1").fetchone()
        assert token is None and done == len(FILES)
    finally:
        conn.close()
    other = roots["gs"]
    proc = failing("ls", "--sqlite", str(db), other.cloudpath + "/", cwd=src)
    assert root.cloudpath in err(proc) and other.cloudpath in err(proc)


def test_ls_sqlite_resumes_from_the_saved_page_token(roots, src):
    """An interrupted listing (simulated: the checkpoint holds a page token, and the rows are
    gone) continues from that page instead of starting over."""
    root = roots["rclone"]
    cf = CloudFiles(root.cloudpath)
    cf.puts([(f"k{i:05d}", b"") for i in range(2100)])  # three pages of 1000
    token = dict(cf.list(return_resume_token=True))["k01500"]
    assert token is not None
    db = src / "resume.db"
    ok("ls", "--sqlite", str(db), root.cloudpath + "/", cwd=src)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 2100
        conn.execute("DELETE FROM files")
        conn.execute("UPDATE checkpoint SET page_token = ?, rows_done = 1000 WHERE id = 1", (token,))
        conn.commit()
    finally:
        conn.close()
    ok("ls", "--sqlite", str(db), root.cloudpath + "/", cwd=src)
    conn = sqlite3.connect(db)
    try:
        paths = sorted(p for (p,) in conn.execute("SELECT path FROM files"))
        assert paths == [f"k{i:05d}" for i in range(1000, 2100)]  # pages 2 and 3 only: resumed
        assert conn.execute("SELECT page_token FROM checkpoint WHERE id = 1").fetchone()[0] is None
    finally:
        conn.close()


# == cp ===========================================================================================


@pytest.mark.parametrize(
    "src_kind, dst_kind",
    [("file", "moto"), ("moto", "gs"), ("gs", "rclone"), ("rclone", "moto"), ("gs", "file"), ("moto", "file")],
)
def test_cp_recursive_between_backends(src_kind, dst_kind, roots, src):
    if src_kind == "file":
        source = "src"
    else:
        roots[src_kind].seed(FILES)
        source = roots[src_kind].cloudpath
    if dst_kind == "file":
        ok("cp", "-r", source, "out", cwd=src)
        assert {k: (src / "out" / k).read_bytes() for k in files_under(src / "out")} == FILES
        return
    dest = roots[dst_kind]
    ok("cp", "-r", source, dest.path("copy"), cwd=src)  # dest does not exist: the copy is named so
    assert dest.contents("copy") == FILES
    assert all(enc is None for _, enc in (dest.stored(k) for k in dest.keys("copy")))
    ok("cp", "-r", source, dest.path("copy"), cwd=src)  # now it exists: nested by basename
    name = "src" if src_kind == "file" else "t"
    assert dest.contents(f"copy/{name}") == FILES


def test_cp_compression_to_s3_and_gs(roots, src):
    moto, gs, rclone = roots["moto"], roots["gs"], roots["rclone"]
    ok("cp", "-r", "-c", "gzip", "src", moto.path("gz"), cwd=src)
    for key, data in FILES.items():
        stored, encoding = moto.stored(f"gz/{key}")
        assert encoding == "gzip" and stored[:2] == b"\x1f\x8b" and gzip.decompress(stored) == data
    meta = head_json(moto.path("gz", "b.jpg"), src)
    assert meta["Content-Encoding"] == "gzip" and meta["Content-Length"] == len(moto.stored("gz/b.jpg")[0])

    ok("cp", "-c", "br", "src/b.jpg", gs.path("br", "b.jpg"), cwd=src)
    stored, encoding = gs.stored("br/b.jpg")
    assert encoding == "br" and brotli.decompress(stored) == FILES["b.jpg"]
    assert head_json(gs.path("br", "b.jpg"), src)["Content-Encoding"] == "br"

    # same: s3 gzip -> gs stays gzip (the library's raw read agrees)
    ok("cp", "-r", "-c", "same", moto.path("gz"), gs.path("same"), cwd=src)
    raw = CloudFiles(gs.path("same")).get("a.txt", raw=True)
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw) == FILES["a.txt"]
    assert gs.stored("same/sub/d.jpg")[1] == "gzip"
    assert CloudFiles(gs.path("same")).get("sub/d.jpg") == FILES["sub/d.jpg"]

    # none: gzip on s3 -> stored decoded on the other s3 server
    ok("cp", "-r", "-c", "none", moto.path("gz"), rclone.path("plain"), cwd=src)
    assert {k: rclone.stored(f"plain/{k}") for k in FILES} == {k: (v, None) for k, v in FILES.items()}
    meta = head_json(rclone.path("plain", "c.jpg"), src)
    assert meta["Content-Encoding"] in (None, "") and meta["Content-Length"] == len(FILES["c.jpg"])
    assert CloudFiles(rclone.path("plain")).get("c.jpg", raw=True) == FILES["c.jpg"]

    # br on gs -> local keeps br as a .br file; -c none decodes
    ok("cp", gs.path("br", "b.jpg"), "local/", cwd=src)
    assert brotli.decompress((src / "local" / "b.jpg.br").read_bytes()) == FILES["b.jpg"]
    ok("cp", "-c", "none", gs.path("br", "b.jpg"), "plain.jpg", cwd=src)
    assert (src / "plain.jpg").read_bytes() == FILES["b.jpg"]


def test_cp_part_bytes_forces_s3_multipart(roots, tmp_path, env):
    data = os.urandom(9 * MiB)  # two parts of the 8 MiB minimum
    (tmp_path / "big.bin").write_bytes(data)
    moto = roots["moto"]
    ok("cp", "--part-bytes", str(MiB), "big.bin", moto.path("big.bin"), cwd=tmp_path)
    meta = head_json(moto.path("big.bin"), tmp_path)
    assert meta["ETag"].strip('"').endswith("-2"), meta["ETag"]
    assert moto.stored("big.bin")[0] == data
    # without --part-bytes the same file is one PUT (a plain md5 ETag)
    ok("cp", "big.bin", moto.path("one.bin"), cwd=tmp_path)
    assert head_json(moto.path("one.bin"), tmp_path)["ETag"].strip('"') == hashlib.md5(data).hexdigest()


def test_cp_part_bytes_forces_gcs_composite(roots, tmp_path, env, gcs_server):
    data = os.urandom(3 * MiB + 123)
    (tmp_path / "big.bin").write_bytes(data)
    gs, moto = roots["gs"], roots["moto"]
    moto.seed({"big.bin": data})
    with RecordingProxy(gcs_server.url) as proxy:
        sub_env = {"STORAGE_EMULATOR_HOST": proxy.url}
        ok("cp", "--part-bytes", str(MiB), "big.bin", gs.path("big.bin"), cwd=tmp_path, env=sub_env)
        composes = proxy.requests("POST", "/compose")
        assert composes and all(f"/b/{gs.bucket}/o/" in c.path for c in composes)
        sources = json.loads(composes[-1].body)["sourceObjects"]
        assert len(sources) >= 2
        proxy.clear()
        # from s3 (a streamed source) too
        ok("cp", "--part-bytes", str(MiB), moto.path("big.bin"), gs.path("from-s3.bin"), cwd=tmp_path, env=sub_env)
        assert proxy.requests("POST", "/compose")
        proxy.clear()
        ok("cp", "big.bin", gs.path("whole.bin"), cwd=tmp_path, env=sub_env)  # default: no compose
        assert not proxy.requests("POST", "/compose")
    assert gs.keys() == ["big.bin", "from-s3.bin", "whole.bin"]  # no parts left behind
    assert all(gs.stored(k)[0] == data for k in gs.keys())


def test_cp_stdin_sources_and_stdout(roots, src):
    moto, gs, rclone = roots["moto"], roots["gs"], roots["rclone"]
    moto.seed(FILES)
    listing = ok("ls", moto.cloudpath, cwd=src).stdout
    ok("cp", "-", gs.path("fromstdin") + "/", cwd=src, stdin=listing)
    assert gs.contents("fromstdin") == FILES  # layout kept relative to the common directory

    # paths from two servers: one group each
    mixed = f"{moto.path('sub/d.jpg')}\n{gs.path('fromstdin/c.jpg')}\n".encode()
    ok("cp", "-", rclone.path("mixed") + "/", cwd=src, stdin=mixed)
    assert rclone.contents("mixed") == {"d.jpg": FILES["sub/d.jpg"], "c.jpg": FILES["c.jpg"]}

    # binary to stdout, byte for byte; encoded objects come out decoded
    assert ok("cp", moto.path("b.jpg"), "-", cwd=src).stdout == FILES["b.jpg"]
    gs.seed({"z.gz.bin": gzip.compress(FILES["b.jpg"])}, encoding="gzip")
    out = ok("cp", gs.path("z.gz.bin"), moto.path("c.jpg"), "-", cwd=src).stdout
    assert out == FILES["b.jpg"] + FILES["c.jpg"]
    assert ok("cat", "-", cwd=src, stdin=mixed).stdout == FILES["sub/d.jpg"] + FILES["c.jpg"]


def test_cp_several_sources_into_a_remote_dir(roots, src):
    moto, gs = roots["moto"], roots["gs"]
    gs.seed({"g.bin": b"\x00gs\xff"})
    ok("cp", "src/a.txt", gs.path("g.bin"), "src/sub", moto.path("dest"), "-r", cwd=src)
    assert moto.contents("dest") == {
        "a.txt": FILES["a.txt"], "g.bin": b"\x00gs\xff",
        "sub/d.jpg": FILES["sub/d.jpg"], "sub/deeper/e.txt": FILES["sub/deeper/e.txt"],
    }


def test_cp_wildcards_on_remote_listings(roots, src):
    moto, gs = roots["moto"], roots["gs"]
    moto.seed(FILES)
    proc = ok("cp", moto.path("*"), gs.path("one") + "/", cwd=src)
    assert gs.contents("one") == TOP  # one level, not nested
    assert "sub" in err(proc)  # the skipped directory is mentioned
    ok("cp", moto.path("**.jpg"), gs.path("jpgs") + "/", cwd=src)
    assert gs.contents("jpgs") == {k: v for k, v in FILES.items() if k.endswith(".jpg")}
    ok("cp", gs.path("jpgs", "*.jpg"), "local/", cwd=src)
    assert files_under(src / "local") == {"b.jpg", "c.jpg"}
    proc = failing("cp", moto.path("*.png"), gs.path("none") + "/", cwd=src)
    assert "no files match" in err(proc) and gs.keys("none") == []


def test_cp_parallel_matches_serial(roots, tmp_path, env):
    tree = {f"d{i % 3}/f{i:02d}.bin": os.urandom(100 + i) for i in range(12)}
    make_tree(tmp_path / "src", tree)
    moto = roots["moto"]
    ok("-p", "1", "cp", "-r", "-c", "gzip", "-b", "5", "src", moto.path("p1"), cwd=tmp_path)
    ok("-p", "2", "cp", "-r", "-c", "gzip", "src", moto.path("p2"), cwd=tmp_path)
    assert moto.contents("p1") == moto.contents("p2") == tree
    encodings = {moto.stored(k)[1] for k in moto.keys()}
    assert encodings == {"gzip"} and len(moto.keys()) == 2 * len(tree)


# == mv ===========================================================================================


def test_mv_remote_to_remote_and_file_to_remote(roots, src):
    moto, gs, rclone = roots["moto"], roots["gs"], roots["rclone"]
    moto.seed(FILES)
    ok("mv", moto.path("sub"), gs.path("moved"), cwd=src)
    assert moto.keys() == sorted(TOP)  # sources gone
    assert gs.contents("moved") == {"d.jpg": FILES["sub/d.jpg"], "deeper/e.txt": FILES["sub/deeper/e.txt"]}

    ok("mv", moto.path("a.txt"), rclone.path("renamed.txt"), cwd=src)  # a single file takes the name
    assert rclone.contents() == {"renamed.txt": FILES["a.txt"]} and "a.txt" not in moto.keys()

    ok("mv", "src/sub/deeper/e.txt", "src/c.jpg", gs.path("moved") + "/", cwd=src)
    assert not (src / "src" / "c.jpg").exists() and not (src / "src" / "sub" / "deeper" / "e.txt").exists()
    assert gs.contents("moved")["c.jpg"] == FILES["c.jpg"] and gs.contents("moved")["e.txt"] == FILES["sub/deeper/e.txt"]

    ok("mv", "src", moto.path("tree"), cwd=src)  # a local directory to a remote one
    assert not (src / "src").exists()
    assert moto.contents("tree") == {"a.txt": FILES["a.txt"], "b.jpg": FILES["b.jpg"], "sub/d.jpg": FILES["sub/d.jpg"]}


@pytest.mark.parametrize("kind", ["moto", "gs"])
def test_mv_onto_itself_is_refused_and_keeps_the_file(kind, roots, src):
    root = roots[kind]
    root.seed({"k.bin": b"keep me", "d/x": b"x"})
    for args in ((root.path("k.bin"), root.path("k.bin")), (root.path("k.bin"), root.cloudpath + "/"),
                 (root.path("d", "*"), root.path("d"))):
        proc = failing("mv", *args, cwd=src)
        assert "same file" in err(proc) and "nothing was moved" in err(proc)
    assert root.contents() == {"k.bin": b"keep me", "d/x": b"x"}


# == rm ===========================================================================================


@pytest.mark.parametrize("kind", ["moto", "gs"])
def test_rm_remote(kind, roots, src):
    root = roots[kind]
    root.seed(FILES)
    root.seed({"subway/x": b"x"})  # shares a prefix with sub/
    before = root.keys()
    for arg in (root.path("sub"), root.path("sub") + "/"):
        proc = failing("rm", arg, cwd=src)
        assert "is a directory" in err(proc) and arg in err(proc)
        assert root.keys() == before  # nothing deleted
    proc = failing("rm", root.path("a.txt"), root.path("nope"), cwd=src)
    assert root.path("nope") in err(proc) and root.keys() == before

    ok("rm", "-r", root.path("sub"), cwd=src)
    assert root.keys() == sorted(["a.txt", "b.jpg", "c.jpg", "subway/x"])
    ok("rm", root.path("*.jpg"), root.path("subway", "x"), cwd=src)
    assert root.keys() == ["a.txt"]


# == du, cat, head, touch =============================================================================


def test_du_remote(roots, src):
    moto, gs = roots["moto"], roots["gs"]
    moto.seed(FILES)
    gs.seed(TOP)
    total, top = sum(map(len, FILES.values())), sum(map(len, TOP.values()))
    out = lines(ok("du", "-s", "-c", moto.cloudpath, gs.cloudpath + "/", cwd=src))
    assert out == [f"{total}\t{moto.cloudpath}", f"{top}\t{gs.cloudpath}/", f"{total + top}\ttotal"]
    human = lines(ok("du", "-s", "-h", "-c", moto.cloudpath, cwd=src))
    assert human == [f"{total / KiB:.2f} KiB\t{moto.cloudpath}", f"{total / KiB:.2f} KiB\ttotal"]
    per_file = lines(ok("du", moto.path("sub"), cwd=src))
    assert per_file == [f"{len(FILES[k])}\t{moto.path(k)}" for k in ("sub/d.jpg", "sub/deeper/e.txt")]
    # '*' is one level, '**' all of them (as in ls)
    assert lines(ok("du", "-s", moto.path("*.jpg"), cwd=src)) == [f"{len(FILES['b.jpg']) + len(FILES['c.jpg'])}\t{moto.path('*.jpg')}"]
    deep = sum(len(v) for k, v in FILES.items() if k.endswith(".jpg"))
    assert lines(ok("du", "-s", moto.path("**.jpg"), cwd=src)) == [f"{deep}\t{moto.path('**.jpg')}"]
    proc = failing("du", moto.path("nope"), cwd=src)
    assert moto.path("nope") in err(proc)


def test_cat_ranges_s3_and_http(roots, src, http_server):
    moto = roots["moto"]
    moto.seed({"b.jpg": FILES["b.jpg"]})
    moto.seed({"z.txt": gzip.compress(FILES["sub/deeper/e.txt"])}, encoding="gzip")
    assert ok("cat", "-r", "10-20", moto.path("b.jpg"), cwd=src).stdout == FILES["b.jpg"][10:20]
    assert ok("cat", "-r", "-5", moto.path("b.jpg"), cwd=src).stdout == FILES["b.jpg"][:5]
    assert ok("cat", "-r", "2040-", moto.path("b.jpg"), cwd=src).stdout == FILES["b.jpg"][2040:]
    assert ok("cat", "-r", "3-11", moto.path("z.txt"), cwd=src).stdout == FILES["sub/deeper/e.txt"][3:11]
    site = http_server.url + "/site/dir"
    assert ok("cat", "-r", "6-10", site + "/a.txt", cwd=src).stdout == b"over"
    assert ok("cat", "-r", "250-", site + "/sub/b.bin", cwd=src).stdout == bytes(range(250, 256))
    assert ok("cat", site + "/z.txt", site + "/a.txt", cwd=src).stdout == b"zipped " * 20 + b"hello over http\n"


def test_head_s3_gs_http(roots, src, http_server):
    moto, gs = roots["moto"], roots["gs"]
    moto.seed({"a.txt": FILES["a.txt"]})
    gs.seed({"g.gz": gzip.compress(b"g" * 100)}, encoding="gzip")
    meta = head_json(moto.path("a.txt"), src)
    assert meta["Content-Length"] == 6 and meta["ETag"].strip('"') == hashlib.md5(FILES["a.txt"]).hexdigest()
    meta = head_json(gs.path("g.gz"), src)
    assert meta["Content-Encoding"] == "gzip" and meta["Content-Length"] == len(gs.stored("g.gz")[0])
    meta = head_json(http_server.url + "/site/dir/sub/b.bin", src)
    assert meta["Content-Length"] == 256
    several = json.loads(ok("head", moto.path("a.txt"), gs.path("*"), cwd=src).stdout)
    assert set(several) == {moto.path("a.txt"), gs.path("g.gz")}
    proc = failing("head", gs.path("missing.txt"), cwd=src)
    assert gs.path("missing.txt") in err(proc)


def test_touch_s3_and_gs(roots, src):
    moto, gs = roots["moto"], roots["gs"]
    moto.seed({"keep": b"kept"})
    ok("touch", moto.path("new"), moto.path("keep"), gs.path("flags", "done"), cwd=src)
    assert moto.stored("new") == (b"", None) and moto.stored("keep") == (b"kept", None)
    assert gs.keys() == ["flags/done"] and gs.stored("flags/done")[0] == b""


# == verify, xfer ====================================================================================


def test_verify_file_vs_s3_with_md5(roots, src):
    moto = roots["moto"]
    ok("cp", "-r", "src", moto.path("copy"), cwd=src)
    proc = ok("verify", "--md5", "src", moto.path("copy"), cwd=src)
    assert proc.stdout.decode().strip() == f"success. {len(FILES)} files matching."
    moto.seed({"copy/c.jpg": FILES["c.jpg"][:-1] + b"X"})  # same size, other bytes
    proc = failing("verify", "--md5", "src", moto.path("copy"), cwd=src)
    assert "failed." in err(proc) and "md5" in err(proc) and "c.jpg" in err(proc)
    proc = failing("verify", "src", moto.path("copy"), cwd=src)  # local needs --md5
    assert "--md5" in err(proc)


def test_verify_s3_vs_s3_by_etag(roots, src):
    moto, rclone = roots["moto"], roots["rclone"]
    moto.seed(FILES)
    rclone.seed(FILES)
    proc = ok("verify", moto.cloudpath, rclone.cloudpath, cwd=src)  # no --md5: ETags decide
    assert proc.stdout.decode().strip() == f"success. {len(FILES)} files matching."
    rclone.seed({"sub/d.jpg": b"\x00\x01 D" * 100})
    proc = failing("verify", moto.cloudpath, rclone.cloudpath, cwd=src)
    assert "md5" in err(proc) and "sub/d.jpg" in err(proc)
    table = failing("verify", "-v", moto.cloudpath, rclone.cloudpath, cwd=src).stdout.decode()
    assert "sub/d.jpg" in table and "md5 differs" in table
    rclone.seed({"extra": b"1"})
    proc = failing("verify", moto.cloudpath, rclone.cloudpath, cwd=src)
    assert "missing in source" in err(proc)


def test_xfer_file_to_s3_then_s3_to_gs(roots, src):
    moto, gs = roots["moto"], roots["gs"]
    db = src / "job.db"
    ok("xfer", "init", "src", moto.path("x"), "--db", str(db), cwd=src)
    status = ok("xfer", "status", str(db), cwd=src).stdout.decode()
    assert f"total: {len(FILES)}" in status and f"remaining: {len(FILES)}" in status
    assert moto.keys() == []  # init only plans
    ok("xfer", "execute", str(db), cwd=src)
    assert moto.contents("x") == FILES and not db.exists()  # the ledger is removed when done

    ok("xfer", "init", moto.path("x"), gs.path("y"), "--db", str(db), "-c", "gzip", cwd=src)
    ok("xfer", "execute", str(db), "--keep-db", "-b", "2", cwd=src)
    status = ok("xfer", "status", str(db), cwd=src).stdout.decode()
    assert f"finished: {len(FILES)}" in status and "remaining: 0" in status
    assert gs.contents("y") == FILES and {gs.stored(k)[1] for k in gs.keys()} == {"gzip"}


# == errors ========================================================================================


def test_missing_remote_file_errors(roots, src, http_server):
    moto, gs = roots["moto"], roots["gs"]
    for missing in (moto.path("nope.txt"), gs.path("nope.txt"), http_server.url + "/site/dir/nope.txt"):
        proc = failing("cat", missing, cwd=src)
        assert missing in err(proc) and "does not exist" in err(proc) and proc.stdout == b""
    proc = failing("cp", moto.path("nope.txt"), "out/", cwd=src)
    assert moto.path("nope.txt") in err(proc) and not (src / "out").exists()
    proc = failing("cp", "src/a.txt", gs.path("nope.txt"), moto.path("dest") + "/", cwd=src)
    assert gs.path("nope.txt") in err(proc) and moto.keys() == []  # nothing copied
    proc = failing("cp", gs.path("nope.txt"), "-", cwd=src)
    assert gs.path("nope.txt") in err(proc)


def test_http_destination_is_read_only(roots, src, http_server):
    site = http_server.url + "/site/"
    before = dict(http_server.objects)
    for args in (("cp", "src/a.txt", site + "new.txt"), ("cp", "-r", "src", site + "up/"),
                 ("cp", "-r", "src", site + "dir"), ("touch", site + "t"),
                 ("rm", site + "dir/a.txt"), ("mv", site + "dir/a.txt", "moved.txt")):
        proc = failing(*args, cwd=src)
        assert "read-only" in err(proc), (args, err(proc))
    assert http_server.objects == before and not (src / "moved.txt").exists()
