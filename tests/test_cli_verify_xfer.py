"""``cloudfiles verify``, ``alias`` and ``xfer``, run as the installed executable."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import SOURCE_FILES, failing, files_under, make_tree, ok


@pytest.fixture
def pair(tmp_path):
    make_tree(tmp_path / "src")
    make_tree(tmp_path / "copy")
    return tmp_path


# == verify ========================================================================================


def test_verify_success(pair):
    proc = ok("verify", "--md5", "src", "copy", cwd=pair)
    assert proc.stdout.decode().strip() == f"success. {len(SOURCE_FILES)} files matching."


def test_verify_local_needs_md5(pair):
    proc = failing("verify", "src", "copy", cwd=pair)
    assert b"--md5" in proc.stderr


def test_verify_detects_a_changed_byte(pair):
    target = pair / "copy" / "sub" / "d.jpg"
    data = bytearray(target.read_bytes())
    data[7] ^= 0x01  # same size, different content
    target.write_bytes(bytes(data))
    proc = failing("verify", "--md5", "src", "copy", cwd=pair)
    assert b"failed." in proc.stderr and b"md5" in proc.stderr and b"sub/d.jpg" in proc.stderr
    table = failing("verify", "--md5", "-v", "src", "copy", cwd=pair).stdout.decode()
    assert "sub/d.jpg" in table and "md5 differs" in table


def test_verify_detects_size_and_missing_files(pair):
    (pair / "copy" / "a.txt").write_bytes(b"longer than before\n")
    (pair / "copy" / "c.jpg").unlink()
    (pair / "copy" / "extra").write_bytes(b"?")
    proc = failing("verify", "--md5", "-v", "src", "copy", cwd=pair)
    table = proc.stdout.decode()
    assert "missing in target" in table and "c.jpg" in table
    assert "missing in source" in table and "extra" in table
    assert "size differs" in table and "a.txt" in table
    assert b"failed." in proc.stderr


def test_verify_only_matching_ignores_missing(pair):
    (pair / "copy" / "c.jpg").unlink()
    proc = ok("verify", "--md5", "-m", "src", "copy", cwd=pair)
    assert proc.stdout.decode().strip() == f"success. {len(SOURCE_FILES) - 1} files matching. 1 ignored."


def test_verify_two_files_and_kind_mismatch(pair):
    ok("verify", "--md5", "src/a.txt", "copy/a.txt", cwd=pair)
    failing("verify", "--md5", "src/a.txt", "copy/b.jpg", cwd=pair)
    assert b"directory" in failing("verify", "--md5", "src/a.txt", "copy", cwd=pair).stderr


def test_verify_compressed_copy_is_not_the_same_stored_bytes(pair):
    ok("cp", "-r", "-c", "gzip", "src", "gz", cwd=pair)
    failing("verify", "--md5", "src", "gz", cwd=pair)
    ok("cp", "-r", "gz", "gz2", cwd=pair)
    ok("verify", "--md5", "gz", "gz2", cwd=pair)


# == alias =========================================================================================


def test_alias_add_ls_rm(tmp_path):
    env = {"CLOUD_FILES_DIR": str(tmp_path / "cfhome")}
    listed = ok("alias", "ls", cwd=tmp_path, env=env).stdout.decode()
    assert "matrix:// -> s3://https://s3-hpcrc.rc.princeton.edu/ (official)" in listed

    ok("alias", "add", "minio", "s3://https://minio.example.com:9000", cwd=tmp_path, env=env)
    stored = json.loads((tmp_path / "cfhome" / "aliases.json").read_text())
    assert stored["minio"]["host"] == "s3://https://minio.example.com:9000/"
    listed = ok("alias", "ls", cwd=tmp_path, env=env).stdout.decode()
    assert "minio:// -> s3://https://minio.example.com:9000/" in listed
    assert "minio:// -> s3://https://minio.example.com:9000/ (official)" not in listed

    assert b"already exists" in failing("alias", "add", "minio", "s3://https://other.example.com/", cwd=tmp_path, env=env).stderr
    assert b"official" in failing("alias", "add", "matrix", "s3://https://x.example.com/", cwd=tmp_path, env=env).stderr
    assert b"official" in failing("alias", "rm", "tigerdata", cwd=tmp_path, env=env).stderr
    assert b"base protocol" in failing("alias", "add", "gs", "s3://https://x.example.com/", cwd=tmp_path, env=env).stderr
    failing("alias", "add", "weird", "not-a-host", cwd=tmp_path, env=env)

    ok("alias", "rm", "minio", cwd=tmp_path, env=env)
    assert "minio" not in json.loads((tmp_path / "cfhome" / "aliases.json").read_text())
    assert "minio" not in ok("alias", "ls", cwd=tmp_path, env=env).stdout.decode()
    assert b"no alias" in failing("alias", "rm", "minio", cwd=tmp_path, env=env).stderr


# == xfer (written last: built on cloudfiles_dask.resumable) =========================================


def _status(db, cwd) -> dict[str, str]:
    out = ok("xfer", "status", str(db), cwd=cwd).stdout.decode()
    return dict(line.split(": ", 1) for line in out.splitlines())


def test_xfer_init_status_execute(pair):
    db = pair / "job.db"
    ok("xfer", "init", "src", "dest", "--db", str(db), cwd=pair)
    status = _status(db, pair)
    assert status["total"] == str(len(SOURCE_FILES))
    assert status["remaining"] == str(len(SOURCE_FILES)) and status["finished"] == "0"
    assert status["source"] == "file://" + str(pair / "src")
    assert not (pair / "dest").exists()

    proc = ok("xfer", "execute", str(db), "--progress", "-b", "2", cwd=pair)
    assert f"{len(SOURCE_FILES)} of {len(SOURCE_FILES)}".encode() in proc.stdout
    assert files_under(pair / "dest") == set(SOURCE_FILES)
    for rel, content in SOURCE_FILES.items():
        assert (pair / "dest" / rel).read_bytes() == content
    assert not db.exists()  # finished: the ledger is deleted (use --keep-db to keep it)


def test_xfer_compression_txt_and_keep_db(pair):
    (pair / "want.txt").write_text("a.txt\n" + "file://" + str(pair / "src" / "sub" / "d.jpg") + "\n\n")
    db = pair / "job.db"
    ok("xfer", "init", "src", "gz", "--db", str(db), "-c", "gzip", "--txt", "want.txt", cwd=pair)
    assert _status(db, pair)["total"] == "2"
    ok("xfer", "execute", str(db), "--keep-db", cwd=pair)
    assert files_under(pair / "gz") == {"a.txt.gz", "sub/d.jpg.gz"}
    assert ok("cat", "gz/sub/d.jpg", cwd=pair).stdout == SOURCE_FILES["sub/d.jpg"]
    status = _status(db, pair)
    assert status["finished"] == "2" and status["remaining"] == "0"


def test_xfer_errors(pair):
    failing("xfer", "execute", "no-such.db", cwd=pair)
    failing("xfer", "init", "src", "dest", cwd=pair)  # --db is required
    db = pair / "job.db"
    ok("xfer", "init", "src", "dest", "--db", str(db), cwd=pair)
    proc = failing("xfer", "init", "copy", "dest", "--db", str(db), cwd=pair)
    assert b"xfer init" in proc.stderr
