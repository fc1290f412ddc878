"""What scripts and code written for the original CloudFiles CLI rely on:

- its Python-callable helpers (``_rm_many``, ``_rm_singles``, ``_mv_single``, ``_cp_single``),
  called in this process on real files and a real local S3 server (moto);
- CLOUDFILES_ERRORS=stdout: errors on stdout as ``cloudfiles: ...`` with exit status 0;
- the original's output forms on request: ``du --original-format``, ``head --original-format``,
  ``rm -f``, ``alias rm -f``, ``cat --raw``;
- ``verify --part-size / --multipart-threshold`` (S3 multipart ETags), through a recording proxy.

Commands run as the installed executable (``tests.test_cli.run``).
"""

from __future__ import annotations

import datetime
import gzip
import os
import threading
from types import SimpleNamespace

import psutil
import pytest

import cloudfiles_dask.cli as cli
from cloudfiles_dask import CloudFiles
from tests.servers.gcs import RecordingProxy
from tests.servers.http import HTTPObjectServer
from tests.test_cli import SOURCE_FILES, failing, files_under, make_tree, ok, run

MiB = 1 << 20
N = 30
STDOUT_ERRORS = {"CLOUDFILES_ERRORS": "stdout"}


# == the original's helpers, in this process ========================================================


@pytest.fixture(params=["file", "moto"])
def root(request, tmp_path) -> str:
    """A fresh root cloudpath (no trailing slash) on local disk or on the moto server."""
    if request.param == "file":
        return "file://" + str(tmp_path / "root")
    request.getfixturevalue("s3_env")
    server = request.getfixturevalue("moto_server")
    return f"s3://{server.endpoint}/{server.new_bucket()}/root"


def fill(root: str, names=None) -> CloudFiles:
    cf = CloudFiles(root)
    cf.delete(list(cf.list()))
    cf.puts([(name, b"hello world") for name in (names or [str(i) for i in range(N)])])
    return cf


class NoNewProcesses:
    """Watches this process's children while the block runs; ``started`` lists any new one."""

    def __init__(self):
        self.me = psutil.Process()
        self.before = {p.pid for p in self.me.children(recursive=True)}
        self.started: set[int] = set()
        self.stop = threading.Event()

    def _watch(self):
        while not self.stop.is_set():
            self.started |= {p.pid for p in self.me.children(recursive=True)} - self.before
            self.stop.wait(0.005)

    def __enter__(self):
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def rm_many(path, recursive=False):
    return cli._rm_many(path, recursive=recursive, progress=False, parallel=1, block_size=128)


def test_rm_many_as_the_original_tests_call_it(root, capfd):
    everything = {str(i) for i in range(N)}
    cf = fill(root)
    with NoNewProcesses() as watch:
        assert rm_many(root, recursive=True) is None
    assert list(cf) == [] and not watch.started  # parallel=1: no process started

    fill(root)
    rm_many(root, recursive=False)  # a directory without recursive: refused, as the CLI does
    assert set(cf) == everything
    assert "is a directory" in capfd.readouterr().err

    fill(root)
    rm_many(root + "/*")
    assert list(cf) == []
    fill(root)
    rm_many(root + "/**")
    assert list(cf) == []
    fill(root)
    rm_many(root + "/0")
    assert set(cf) == everything - {"0"}
    fill(root)
    rm_many(root + "/1*")
    assert set(cf) == everything - {"1"} - {str(i) for i in range(10, 20)}
    rm_many(root + "/nope")  # missing: ignored, as the original does
    rm_many(root + "/zz*")
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("slash", ["", "/"])
def test_rm_many_recursive_leaves_a_sibling_prefix(root, slash):
    cf = fill(root, ["test/wow", "test2/wow"])
    rm_many(f"{root}/test{slash}", recursive=True)
    assert list(cf) == ["test2/wow"]


def test_rm_singles(root):
    cf = fill(root)
    cli._rm_singles([f"{root}/3", f"{root}/4", f"{root}/missing"], progress=False, parallel=1, block_size=2)
    assert set(cf) == {str(i) for i in range(N)} - {"3", "4"}
    cli._rm_singles([], progress=False, parallel=1, block_size=2)


def test_mv_single_as_the_original_tests_call_it(root, capfd):
    def mv(src, dest):
        with NoNewProcesses() as watch:
            assert cli._mv_single(src, dest, progress=False, block_size=5, part_bytes=int(100e6),
                                  no_sign_request=False, parallel=1) is None
        assert not watch.started

    cf = fill(root)
    other = CloudFiles(root + "2")
    other.delete(list(other.list()))
    mv(root, root + "2")
    assert list(cf) == [] and sorted(other) == sorted(str(i) for i in range(N))

    fill(root)
    mv(f"{root}/*", f"{root}/move/")
    assert sorted(cf.list(prefix="move")) == sorted(f"move/{i}" for i in range(N))

    fill(root)
    mv(f"{root}/1", f"{root}/move/1")
    assert cf.exists("move/1") and not cf.exists("1")

    mv(f"{root}/missing", f"{root}/elsewhere")
    assert "missing does not exist" in capfd.readouterr().err
    assert not cf.exists("elsewhere")


def test_cp_single(tmp_path, monkeypatch):
    make_tree(tmp_path / "src")
    monkeypatch.chdir(tmp_path)
    cli._cp_single(None, str(tmp_path / "src"), str(tmp_path / "dest"), True, "same", False, 128,
                   int(1e8), False, False, False, False)
    assert files_under(tmp_path / "dest") == set(SOURCE_FILES)
    # the original's compression values; a ctx with obj["parallel"]; a chart in the cwd
    ctx = SimpleNamespace(obj={"parallel": 1})
    cli._cp_single(ctx, str(tmp_path / "src" / "a.txt"), str(tmp_path / "gz") + "/", False, "gzip", False,
                   128, int(1e8), False, False, True, False)
    assert gzip.decompress((tmp_path / "gz" / "a.txt.gz").read_bytes()) == SOURCE_FILES["a.txt"]
    assert [p.name for p in tmp_path.glob("cloudfiles-cp-flight-time-*.png")]
    cli._cp_single(ctx, str(tmp_path / "gz" / "a.txt"), str(tmp_path / "plain.txt"), False, False, False,
                   128, int(1e8), False, False, False, False)
    assert (tmp_path / "plain.txt").read_bytes() == SOURCE_FILES["a.txt"]


def test_helpers_report_errors_where_the_cli_does(tmp_path, capfd, monkeypatch):
    make_tree(tmp_path / "src")
    cli._cp_single(None, str(tmp_path / "src"), str(tmp_path / "dest"), False, "same", False, 128,
                   int(1e8), False, False, False, False)
    out, err = capfd.readouterr()
    assert out == "" and err.startswith("cloudfiles: ") and "is a directory" in err
    monkeypatch.setenv("CLOUDFILES_ERRORS", "stdout")
    rm_many(str(tmp_path / "src"))
    out, err = capfd.readouterr()
    assert err == "" and out.startswith("cloudfiles: ") and "is a directory" in out
    assert files_under(tmp_path / "src") == set(SOURCE_FILES)


def test_the_shim_surface():
    assert {"main", "_rm_many", "_rm_singles", "_mv_single", "_cp_single"} <= set(cli.__all__)
    assert cli.main.name == "main" and cli.license.name == "license"


# == CLOUDFILES_ERRORS=stdout ======================================================================


@pytest.fixture
def tree(tmp_path):
    make_tree(tmp_path / "src")
    return tmp_path


ERROR_CASES = [
    (("cat", "doesnotexist"), "doesnotexist does not exist"),
    (("cat", "-r", "0-5", "doesnotexist"), "doesnotexist does not exist"),
    (("rm", "src"), "is a directory"),
    (("cp", "src", "dest"), "is a directory"),
    (("cp", "src/nope", "dest"), "src/nope does not exist"),
    (("du", "nothing"), "nothing does not exist"),
    (("head", "src/zzz"), "src/zzz does not exist"),
    (("ls", "nosuchproto://bucket/x"), "nosuchproto"),
    (("alias", "rm", "nosuchalias"), "no alias nosuchalias"),
]


@pytest.mark.parametrize("args, message", ERROR_CASES, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_errors_to_stdout_with_exit_status_0(tree, args, message):
    proc = run(*args, cwd=tree, env=STDOUT_ERRORS)
    assert proc.returncode == 0, proc
    assert proc.stderr == b""
    line = proc.stdout.decode().strip()
    assert line.startswith("cloudfiles: ") and message in line
    # by default: stderr, exit status 1, naming the command
    proc = failing(*args, cwd=tree)
    assert proc.stdout == b"" and message in proc.stderr.decode()
    assert proc.stderr.decode().startswith(f"cloudfiles {args[0]}")
    assert files_under(tree / "src") == set(SOURCE_FILES)


def test_errors_to_stdout_keep_the_output_in_order(tree):
    proc = run("cat", "src/a.txt", "src/missing", "src/c.jpg", cwd=tree, env=STDOUT_ERRORS)
    assert proc.returncode == 0
    assert proc.stdout == (SOURCE_FILES["a.txt"] + f"cloudfiles: {'src/missing'} does not exist\n".encode()
                           + SOURCE_FILES["c.jpg"])
    proc = run("du", "src/a.txt", "nothing", cwd=tree, env=STDOUT_ERRORS)
    assert proc.returncode == 0 and proc.stdout.decode().splitlines()[-1] == "cloudfiles: nothing does not exist"


def test_verify_failure_on_stdout(tree):
    make_tree(tree / "copy")
    (tree / "copy" / "a.txt").write_bytes(b"ALPHA\n")
    proc = run("verify", "--md5", "src", "copy", cwd=tree, env=STDOUT_ERRORS)
    assert proc.returncode == 0 and proc.stderr == b""
    assert proc.stdout.decode().startswith("failed. 1 file with a different md5")
    assert failing("verify", "--md5", "src", "copy", cwd=tree).stderr.decode().startswith("failed.")


def test_an_unknown_errors_value_is_noted_and_ignored(tree):
    proc = failing("cat", "doesnotexist", cwd=tree, env={"CLOUDFILES_ERRORS": "elsewhere"})
    assert b"CLOUDFILES_ERRORS='elsewhere'" in proc.stderr and b"does not exist" in proc.stderr
    assert proc.stdout == b""
    ok("cat", "src/a.txt", cwd=tree, env={"CLOUDFILES_ERRORS": " STDOUT "})


# == the original's forms on request ================================================================


def test_rm_force_ignores_what_does_not_exist(tree):
    proc = failing("rm", "src/a.txt", "src/nope", cwd=tree)
    assert (tree / "src" / "a.txt").exists()
    proc = ok("rm", "-f", "src/a.txt", "src/nope", "src/zz*", cwd=tree)
    assert proc.stdout == proc.stderr == b""
    assert files_under(tree / "src") == set(SOURCE_FILES) - {"a.txt"}
    assert b"is a directory" in failing("rm", "-f", "src/sub", cwd=tree).stderr  # -f is not -r


def test_alias_rm_force(tmp_path):
    env = {"CLOUD_FILES_DIR": str(tmp_path / "cfhome")}
    assert b"no alias" in failing("alias", "rm", "ghost", cwd=tmp_path, env=env).stderr
    proc = ok("alias", "rm", "-f", "ghost", cwd=tmp_path, env=env)
    assert proc.stdout == proc.stderr == b""
    ok("alias", "add", "minio", "s3://https://minio.example.com:9000", cwd=tmp_path, env=env)
    ok("alias", "rm", "-f", "minio", cwd=tmp_path, env=env)
    assert "minio" not in ok("alias", "ls", cwd=tmp_path, env=env).stdout.decode()


def test_du_original_format(tmp_path):
    make_tree(tmp_path / "d", {"big.bin": b"x" * 3 * MiB, "a.json": b"y" * 1536, "sub/b.JSON": b"z" * 10,
                               "noext": b"w"})
    total = 3 * MiB + 1536 + 10 + 1

    def du(*args):
        return ok("du", "--original-format", *args, cwd=tmp_path).stdout.decode().splitlines()

    assert sorted(du("d")) == sorted([f"{3 * MiB}\tbig.bin", "1536\ta.json", "10\tsub/b.JSON", "1\tnoext"])
    assert du("d/a.json") == ["1536\td/a.json"]
    assert du("-s", "d", "d/a.json") == [f"{total}\td", "1536\td/a.json"]
    assert du("-sc", "d") == [f"{total}\td", f"{total}\tbytes total"]
    assert du("-shcN", "d") == ["3.00 MiB\td", "3.00 MiB\tbytes total", "4\tfiles total"]
    assert du("-h", "d/noext") == ["1 bytes\td/noext"]
    assert du("-sh", "d/a.json") == ["1.50 KiB\td/a.json"]
    table = du("-e", "d")
    assert table[4:] == ["", "Usage by file extension:", f"{3 * MiB}\t.bin", "1546\t.json", "1\t(no extension)"]
    # our own form, for comparison
    ours = ok("du", "-sc", "d", cwd=tmp_path).stdout.decode().splitlines()
    assert ours == [f"{total}\tfile://{tmp_path}/d", f"{total}\ttotal"]


def test_head_original_format(tree):
    def head(*args):
        out = ok("head", "--original-format", *args, cwd=tree).stdout.decode()
        return out, eval(out, {"datetime": datetime})  # Python reprs, as the original prints

    out, meta = head("src/c.jpg")
    assert out.startswith("{'") and meta["Content-Length"] == len(SOURCE_FILES["c.jpg"])
    assert isinstance(meta["Last-Modified"], datetime.datetime)
    out, several = head("src/a.txt", "src/*.jpg")
    assert out.startswith("{ '")  # pprint, indent 2
    assert set(several) == {"src/a.txt", "b.jpg", "c.jpg"}
    assert several["b.jpg"]["Content-Length"] == len(SOURCE_FILES["b.jpg"])
    proc = run("head", "--original-format", "src/a.txt", "src/zzz", cwd=tree, env=STDOUT_ERRORS)
    assert "'src/zzz': None" in proc.stdout.decode() and "cloudfiles: src/zzz does not exist" in proc.stdout.decode()


def test_cat_raw_local(tree):
    ok("cp", "-c", "gzip", "src/sub/deeper/e.txt", "gz/", cwd=tree)
    stored = (tree / "gz" / "e.txt.gz").read_bytes()
    assert ok("cat", "--raw", "gz/e.txt", cwd=tree).stdout == stored
    assert ok("cat", "--raw", "-r", "0-2", "gz/e.txt", cwd=tree).stdout == b"\x1f\x8b"
    assert ok("cat", "--raw", "-r", "10-", "gz/e.txt", cwd=tree).stdout == stored[10:]
    assert ok("cat", "-r", "0-7", "gz/e.txt", cwd=tree).stdout == b"epsilon"  # decoded, by default
    assert ok("cat", "--raw", "src/a.txt", cwd=tree).stdout == SOURCE_FILES["a.txt"]


def test_cat_raw_range_is_one_ranged_request(tmp_path):
    content = b"zipped content " * 2000
    stored = gzip.compress(content)
    with HTTPObjectServer() as server:
        server.put("z.txt", stored, content_encoding="gzip")
        url = f"{server.url}/z.txt"
        assert ok("cat", "--raw", "-r", "5-105", url, cwd=tmp_path).stdout == stored[5:105]
        ranges = [r.headers.get("range") for r in server.requests_to("z.txt", "GET")]
        assert ranges == ["bytes=5-104"]
        server.clear_requests()
        assert ok("cat", "-r", "5-105", url, cwd=tmp_path).stdout == content[5:105]
        assert None in [r.headers.get("range") for r in server.requests_to("z.txt", "GET")]  # read whole


# == verify --part-size ============================================================================


@pytest.fixture
def multipart(tmp_path, s3_env, moto_server):
    """An 11 MiB file on disk and the same bytes on S3 uploaded in 5 MiB parts (ETag "...-3"),
    reached through a proxy that records the requests."""
    data = os.urandom(11 * MiB)
    (tmp_path / "big.bin").write_bytes(data)
    bucket = moto_server.new_bucket()
    admin = moto_server.admin()
    upload = admin.create_multipart_upload(Bucket=bucket, Key="t/big.bin")["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(data), 5 * MiB), 1):
        etag = admin.upload_part(Bucket=bucket, Key="t/big.bin", UploadId=upload, PartNumber=number,
                                 Body=data[start:start + 5 * MiB])["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    admin.complete_multipart_upload(Bucket=bucket, Key="t/big.bin", UploadId=upload,
                                    MultipartUpload={"Parts": parts})
    assert admin.head_object(Bucket=bucket, Key="t/big.bin")["ETag"].strip('"').endswith("-3")
    with RecordingProxy(moto_server.endpoint) as proxy:
        proxy.after.append(_head_keeps_its_length)
        yield SimpleNamespace(tmp=tmp_path, data=data, proxy=proxy,
                              remote=f"s3://{proxy.url}/{bucket}/t/big.bin", bucket=bucket, admin=admin)


def _head_keeps_its_length(seen, reply):
    """The proxy announces the length of the body it sends; a HEAD sends none, so give it a
    stand-in body of the upstream's Content-Length (never written: it is a HEAD)."""
    if seen.method == "HEAD" and reply.header("Content-Length"):
        reply.body = bytes(int(reply.header("Content-Length")))
    return reply


def object_reads(m) -> list:
    return [r for r in m.proxy.requests("GET", f"/{m.bucket}/t/big.bin")]


def test_verify_part_size_compares_the_multipart_etag_without_downloading(multipart):
    m = multipart
    proc = ok("verify", "--part-size", str(5 * MiB), "big.bin", m.remote, cwd=m.tmp)
    assert proc.stdout.decode().strip() == "success. 1 file matching."
    assert object_reads(m) == []  # only HEADs: the object was not downloaded
    # with the remote as the source, too
    ok("verify", "--md5", "--part-size", str(5 * MiB), m.remote, "big.bin", cwd=m.tmp)
    assert object_reads(m) == []


def test_verify_part_size_catches_a_changed_byte_and_a_wrong_part_size(multipart):
    m = multipart
    changed = bytearray(m.data)
    changed[7 * MiB] ^= 1
    (m.tmp / "changed.bin").write_bytes(changed)
    proc = failing("verify", "-v", "--part-size", str(5 * MiB), "changed.bin", m.remote, cwd=m.tmp)
    assert "multipart etag differs" in proc.stdout.decode()
    assert "failed." in proc.stderr.decode()
    proc = failing("verify", "--part-size", str(4 * MiB), "big.bin", m.remote, cwd=m.tmp)
    assert "multipart etag" in proc.stderr.decode()


def test_verify_multipart_threshold_and_the_md5_fallback(multipart):
    m = multipart
    # larger than the file: not hashed in parts; --md5 downloads the object and compares md5s
    ok("verify", "--part-size", str(5 * MiB), "--multipart-threshold", str(12 * MiB), "big.bin", m.remote,
       cwd=m.tmp)
    assert object_reads(m)
    # without --part-size the download cannot be checked against its ETag (5 MiB parts are not
    # among the usual sizes): an error that says what to do, not a false verdict
    proc = failing("verify", "--md5", "big.bin", m.remote, cwd=m.tmp)
    assert "--part-size" in proc.stderr.decode() and "failed." not in proc.stderr.decode()
    proc = failing("verify", "--multipart-threshold", "10", "big.bin", m.remote, cwd=m.tmp)
    assert "--part-size" in proc.stderr.decode()


def test_verify_part_size_on_local_pairs_changes_nothing(tmp_path):
    make_tree(tmp_path / "a")
    make_tree(tmp_path / "b")
    proc = ok("verify", "--part-size", "4", "a", "b", cwd=tmp_path)  # implies --md5
    assert proc.stdout.decode().strip() == f"success. {len(SOURCE_FILES)} files matching."
