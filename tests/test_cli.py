"""The ``cloudfiles`` command line tool, run as the installed executable against local trees.

Helpers here (run/ok/failing/files_under/make_tree) are shared with the other test_cli_* files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def cloudfiles_exe() -> str:
    exe = shutil.which("cloudfiles", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.fail("the `cloudfiles` console script is not installed next to this Python")
    return exe


def run(*args: str, cwd: Path | str | None = None, stdin: bytes | None = None,
        env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``cloudfiles ARGS`` with bytes stdout/stderr; never raises on a non-zero exit."""
    full_env = dict(os.environ)
    full_env.pop("CLOUDFILES_DEBUG", None)
    full_env.setdefault("CLOUD_FILES_DIR", str(Path(cwd or ".").resolve() / ".cloudfiles-home"))
    if env:
        full_env.update(env)
    return subprocess.run(
        [cloudfiles_exe(), *args], cwd=cwd, input=stdin, capture_output=True, timeout=timeout, env=full_env,
    )


def ok(*args: str, **kwargs) -> subprocess.CompletedProcess:
    proc = run(*args, **kwargs)
    assert proc.returncode == 0, (args, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
    return proc


def failing(*args: str, **kwargs) -> subprocess.CompletedProcess:
    proc = run(*args, **kwargs)
    assert proc.returncode != 0, (args, proc.stdout, proc.stderr)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    return proc


def files_under(root: Path) -> set[str]:
    """Relative posix paths of the regular files below ``root`` (empty if it does not exist)."""
    if not root.exists():
        return set()
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


SOURCE_FILES = {
    "a.txt": b"alpha\n",
    "b.jpg": b"\xff\xd8\xff jpeg-ish b" * 20,
    "c.jpg": b"\xff\xd8\xff jpeg-ish c" * 30,
    "sub/d.jpg": b"\xff\xd8 d" * 50,
    "sub/deeper/e.txt": b"epsilon " * 100,
}


def make_tree(root: Path, files: dict[str, bytes] = SOURCE_FILES) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


# == ls =========================================================================================


@pytest.fixture
def tree(tmp_path):
    make_tree(tmp_path / "src")
    return tmp_path


def test_ls_recursive_full_paths_by_default(tree):
    out = ok("ls", "src", cwd=tree).stdout.decode().splitlines()
    root = "file://" + str(tree / "src")
    assert out == [f"{root}/{k}" for k in sorted(SOURCE_FILES)]


def test_ls_flat_and_shortpath(tree):
    out = ok("ls", "--flat", "--shortpath", "src/", cwd=tree).stdout.decode().splitlines()
    assert out == ["a.txt", "b.jpg", "c.jpg", "sub/"]


def test_ls_prefix_of_last_component(tree):
    out = ok("ls", "--shortpath", str(tree / "src" / "s"), cwd=tree).stdout.decode().splitlines()
    assert out == ["sub/d.jpg", "sub/deeper/e.txt"]


def test_ls_wildcards(tree):
    one_level = ok("ls", "--shortpath", "src/*.jpg", cwd=tree).stdout.decode().split()
    assert one_level == ["b.jpg", "c.jpg"]
    recursive = ok("ls", "--shortpath", "src/**.jpg", cwd=tree).stdout.decode().split()
    assert recursive == ["b.jpg", "c.jpg", "sub/d.jpg"]


def test_ls_size(tree):
    lines = ok("ls", "--size", "--shortpath", "src", cwd=tree).stdout.decode().splitlines()
    sizes = dict(reversed(line.split("\t")) for line in lines)
    assert sizes == {k: str(len(v)) for k, v in SOURCE_FILES.items()}


def test_ls_expressions_expand_to_one_listing_each(tmp_path):
    make_tree(tmp_path / "d", {f"{a}{b}/f": b"x" for a in "xyz" for b in "12"})
    out = ok("ls", "--shortpath", "-e", "d/[xz][12]", cwd=tmp_path).stdout.decode().split()
    # shortpath is relative to the directory each expansion lists
    assert sorted(out) == ["f"] * 4
    full = ok("ls", "-e", "d/[xz][12]", cwd=tmp_path).stdout.decode().split()
    assert [p.rsplit("/", 2)[-2] for p in full] == ["x1", "x2", "z1", "z2"]
    # without -e the brackets are literal: nothing is called that
    assert ok("ls", "d/[xz][12]", cwd=tmp_path).stdout == b""


def test_ls_sqlite_listing_db(tree):
    import sqlite3

    db = tree / "listing.db"
    proc = ok("ls", "--sqlite", str(db), "--progress", "src", cwd=tree)
    assert b"Listing" in proc.stderr
    ok("ls", "--sqlite", str(db), "src", cwd=tree)  # a rerun starts over without duplicating
    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT path, size FROM files"))
    assert rows == {k: len(v) for k, v in SOURCE_FILES.items()}
    assert conn.execute("SELECT COUNT(*) FROM files").fetchone()[0] == len(SOURCE_FILES)
    assert conn.execute("SELECT value FROM metadata WHERE name = 'cloudpath'").fetchone()[0] == "file://" + str(tree / "src")
    assert conn.execute("SELECT rows_done FROM checkpoint WHERE id = 1").fetchone()[0] == len(SOURCE_FILES)
    conn.close()

    make_tree(tree / "other", {"z": b"1"})
    proc = failing("ls", "--sqlite", str(db), "other", cwd=tree)
    assert b"src" in proc.stderr and b"other" in proc.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM files").fetchone()[0] == len(SOURCE_FILES)
    conn.close()


# == cp: naming rules =============================================================================

ALL = set(SOURCE_FILES)
TOP = {"a.txt", "b.jpg", "c.jpg"}
NESTED = {"src/" + k for k in SOURCE_FILES}


@pytest.mark.parametrize(
    "args, dest_exists, expected",
    [
        (["-r", "src", "dest"], False, ALL),
        (["-r", "src", "dest"], True, NESTED),
        (["-r", "src/", "dest"], False, ALL),
        (["-r", "src/", "dest"], True, NESTED),
        (["-r", "src", "dest/"], False, ALL),
        (["src/*", "dest"], False, TOP),
        (["src/*", "dest"], True, TOP),
        (["-r", "src/*", "dest"], True, ALL),
        (["src/**", "dest"], True, ALL),
        (["src/**", "dest"], False, ALL),
        (["src/*.jpg", "dest"], False, {"b.jpg", "c.jpg"}),
        (["src/**.jpg", "dest"], True, {"b.jpg", "c.jpg", "sub/d.jpg"}),
        (["src/a.txt", "dest"], True, {"a.txt"}),
        (["src/a.txt", "dest/"], False, {"a.txt"}),
        (["src/a.txt", "src/b.jpg", "dest"], False, {"a.txt", "b.jpg"}),
        (["-r", "src/sub", "src/a.txt", "dest"], False, {"a.txt", "sub/d.jpg", "sub/deeper/e.txt"}),
    ],
)
def test_cp_naming_rules(tree, args, dest_exists, expected):
    if dest_exists:
        (tree / "dest").mkdir()
    ok("cp", *args, cwd=tree)
    got = files_under(tree / "dest")
    assert got == expected
    for rel in got:
        original = rel[4:] if rel.startswith("src/") else rel
        assert (tree / "dest" / rel).read_bytes() == SOURCE_FILES[original]


def test_cp_single_file_to_new_path_takes_that_name(tree):
    ok("cp", "src/sub/d.jpg", "renamed.bin", cwd=tree)
    assert (tree / "renamed.bin").read_bytes() == SOURCE_FILES["sub/d.jpg"]
    ok("cp", "file://" + str(tree / "src/a.txt"), "file://" + str(tree / "x" / "y.txt"))
    assert (tree / "x" / "y.txt").read_bytes() == SOURCE_FILES["a.txt"]


def test_cp_star_without_r_skips_directories_with_a_note(tree):
    proc = ok("cp", "src/*", "dest", cwd=tree)
    assert b"skipping directory" in proc.stderr and b"sub" in proc.stderr


def test_cp_directory_without_r_is_an_error(tree):
    proc = failing("cp", "src", "dest", cwd=tree)
    assert b"src is a directory (not copied); use -r" in proc.stderr
    assert proc.stdout == b""
    assert not (tree / "dest").exists()


def test_cp_missing_source_is_an_error(tree):
    proc = failing("cp", "src/nope.txt", "dest", cwd=tree)
    assert b"src/nope.txt does not exist" in proc.stderr


def test_cp_several_sources_need_a_directory(tree):
    (tree / "file").write_bytes(b"x")
    proc = failing("cp", "src/a.txt", "src/b.jpg", "file", cwd=tree)
    assert b"not a directory" in proc.stderr
    assert (tree / "file").read_bytes() == b"x"


def test_cp_parallel_gives_the_same_result(tmp_path):
    files = {f"d{i % 7}/f{i}.bin": bytes([i % 256]) * (i + 1) for i in range(120)}
    make_tree(tmp_path / "src", files)
    ok("cp", "-r", "src", "one", cwd=tmp_path)
    ok("-p", "2", "cp", "-r", "src", "two", cwd=tmp_path)
    ok("-p", "2", "cp", "-r", "-c", "gzip", "src", "three", cwd=tmp_path)
    for name in ("one", "two"):
        assert files_under(tmp_path / name) == set(files)
        for rel, content in files.items():
            assert (tmp_path / name / rel).read_bytes() == content
    assert files_under(tmp_path / "three") == {k + ".gz" for k in files}


def test_cp_progress_goes_to_stderr(tree):
    proc = ok("cp", "-r", "--progress", "src", "dest", cwd=tree)
    assert proc.stdout == b""
    assert b"5/5" in proc.stderr and b"file" in proc.stderr


# == cp: compression =============================================================================


@pytest.mark.parametrize("codec, suffix", [("gzip", ".gz"), ("br", ".br")])
def test_cp_compression_stores_suffix_and_decodes(tree, codec, suffix):
    ok("cp", "-r", "-c", codec, "src", "packed", cwd=tree)
    assert files_under(tree / "packed") == {k + suffix for k in SOURCE_FILES}
    stored = (tree / "packed" / ("c.jpg" + suffix)).read_bytes()
    assert stored != SOURCE_FILES["c.jpg"]
    decoded = ok("cat", "packed/c.jpg", "packed/sub/deeper/e.txt", cwd=tree).stdout
    assert decoded == SOURCE_FILES["c.jpg"] + SOURCE_FILES["sub/deeper/e.txt"]

    ok("cp", "-r", "-c", "none", "packed", "plain", cwd=tree)
    assert files_under(tree / "plain") == set(SOURCE_FILES)
    for rel, content in SOURCE_FILES.items():
        assert (tree / "plain" / rel).read_bytes() == content


def test_cp_other_codecs(tree):
    for codec, suffix in (("zstd", ".zstd"), ("xz", ".xz"), ("bz2", ".bz2")):
        ok("cp", "-c", codec, "src/c.jpg", f"{codec}/", cwd=tree)
        assert files_under(tree / codec) == {"c.jpg" + suffix}
        assert ok("cat", f"{codec}/c.jpg", cwd=tree).stdout == SOURCE_FILES["c.jpg"]


def test_cp_gzip_is_real_gzip_and_same_keeps_it(tree):
    import gzip

    ok("cp", "-r", "-c", "gzip", "src", "gz", cwd=tree)
    assert gzip.decompress((tree / "gz" / "a.txt.gz").read_bytes()) == SOURCE_FILES["a.txt"]
    ok("cp", "-r", "gz", "copy", cwd=tree)  # -c same is the default: stored bytes kept
    assert files_under(tree / "copy") == {k + ".gz" for k in SOURCE_FILES}
    assert (tree / "copy" / "a.txt.gz").read_bytes() == (tree / "gz" / "a.txt.gz").read_bytes()
    ok("cp", "-r", "-c", "br", "gz", "br", cwd=tree)  # re-encoded
    assert files_under(tree / "br") == {k + ".br" for k in SOURCE_FILES}


def test_cp_unknown_codec_is_refused(tree):
    proc = failing("cp", "-r", "-c", "lz4", "src", "dest", cwd=tree)
    assert b"lz4" in proc.stderr


# == cp: stdin and stdout ==========================================================================


def test_cp_stdin_sources_keep_relative_layout(tree):
    listing = ok("ls", "src", cwd=tree).stdout
    ok("cp", "-", "dest", cwd=tree, stdin=listing)
    assert files_under(tree / "dest") == ALL
    for rel, content in SOURCE_FILES.items():
        assert (tree / "dest" / rel).read_bytes() == content


def test_cp_stdin_plain_local_paths(tree):
    ok("cp", "-", "dest", cwd=tree, stdin=b"src/a.txt\n\nsrc/sub/d.jpg\n")
    assert files_under(tree / "dest") == {"a.txt", "sub/d.jpg"}


def test_cp_to_stdout_is_binary_safe(tmp_path):
    data = bytes(range(256)) * 3
    (tmp_path / "bin.dat").write_bytes(data)
    assert ok("cp", "bin.dat", "-", cwd=tmp_path).stdout == data
    ok("cp", "-c", "gzip", "bin.dat", "gz/", cwd=tmp_path)
    assert (tmp_path / "gz" / "bin.dat.gz").exists()
    assert ok("cp", "gz/bin.dat", "-", cwd=tmp_path).stdout == data  # decoded
    assert ok("cat", "bin.dat", cwd=tmp_path).stdout == data


def test_cp_several_to_stdout_in_order(tree):
    proc = ok("cp", "src/c.jpg", "src/a.txt", "-", cwd=tree)
    assert proc.stdout == SOURCE_FILES["c.jpg"] + SOURCE_FILES["a.txt"]


# == mv ============================================================================================


def test_mv_file_rename_and_into_dir(tree):
    ok("mv", "src/a.txt", "moved.txt", cwd=tree)
    assert (tree / "moved.txt").read_bytes() == SOURCE_FILES["a.txt"]
    assert not (tree / "src" / "a.txt").exists()
    (tree / "box").mkdir()
    ok("mv", "moved.txt", "box", cwd=tree)
    assert files_under(tree / "box") == {"moved.txt"}


def test_mv_directory_to_new_and_existing(tree):
    ok("mv", "src", "renamed", cwd=tree)
    assert not (tree / "src").exists()
    assert files_under(tree / "renamed") == ALL
    (tree / "box").mkdir()
    ok("mv", "renamed/", "box", cwd=tree)
    assert files_under(tree / "box") == {"renamed/" + k for k in ALL}
    assert not (tree / "renamed").exists()


def test_mv_wildcard_and_keeps_encoding(tree):
    ok("cp", "-r", "-c", "gzip", "src", "gz", cwd=tree)
    ok("mv", "gz/**.jpg", "jpgs", cwd=tree)
    assert files_under(tree / "jpgs") == {"b.jpg.gz", "c.jpg.gz", "sub/d.jpg.gz"}
    assert files_under(tree / "gz") == {"a.txt.gz", "sub/deeper/e.txt.gz"}
    assert ok("cat", "jpgs/sub/d.jpg", cwd=tree).stdout == SOURCE_FILES["sub/d.jpg"]


def test_mv_parallel(tmp_path):
    files = {f"f{i}": str(i).encode() for i in range(60)}
    make_tree(tmp_path / "src", files)
    ok("-p", "2", "mv", "src/*", "dest", cwd=tmp_path)
    assert files_under(tmp_path / "dest") == set(files)
    assert files_under(tmp_path / "src") == set()


# == rm ============================================================================================


def test_rm_refuses_directory_without_r(tree):
    proc = failing("rm", "src", cwd=tree)
    assert b"src is a directory (not removed); use -r" in proc.stderr
    assert files_under(tree / "src") == ALL
    # a refusal anywhere stops the whole command before anything is removed
    failing("rm", "src/a.txt", "src/sub", cwd=tree)
    assert files_under(tree / "src") == ALL


def test_rm_missing_file_is_an_error_and_nothing_is_removed(tree):
    proc = failing("rm", "src/a.txt", "src/nope", cwd=tree)
    assert b"src/nope does not exist" in proc.stderr
    assert (tree / "src" / "a.txt").exists()


def test_rm_files_wildcards_and_recursive(tree):
    ok("rm", "src/a.txt", cwd=tree)
    assert files_under(tree / "src") == ALL - {"a.txt"}
    ok("rm", "src/*.jpg", cwd=tree)
    assert files_under(tree / "src") == {"sub/d.jpg", "sub/deeper/e.txt"}
    ok("rm", "-r", "src", cwd=tree)
    # as the original: the directory is emptied (sub-directories too) and kept
    assert (tree / "src").is_dir() and list((tree / "src").iterdir()) == []


def test_rm_stdin_and_parallel(tmp_path):
    files = {f"d/f{i}": b"x" for i in range(50)}
    make_tree(tmp_path / "src", files)
    ok("rm", "-", cwd=tmp_path, stdin=b"src/d/f1\nsrc/d/f2\n")
    assert files_under(tmp_path / "src") == set(files) - {"d/f1", "d/f2"}
    ok("-p", "2", "rm", "-r", "src", cwd=tmp_path)
    assert (tmp_path / "src").is_dir() and list((tmp_path / "src").iterdir()) == []


def test_rm_compressed_file_by_its_key(tree):
    ok("cp", "-c", "gzip", "src/a.txt", "gz/", cwd=tree)
    ok("rm", "gz/a.txt", cwd=tree)
    assert files_under(tree / "gz") == set()


# == cat ===========================================================================================


def test_cat_concatenates_in_argument_order(tree):
    out = ok("cat", "src/sub/d.jpg", "src/a.txt", "src/b.jpg", cwd=tree).stdout
    assert out == SOURCE_FILES["sub/d.jpg"] + SOURCE_FILES["a.txt"] + SOURCE_FILES["b.jpg"]


def test_cat_ranges(tree):
    content = SOURCE_FILES["sub/deeper/e.txt"]
    ok("cp", "-c", "gzip", "src/sub/deeper/e.txt", "gz/", cwd=tree)
    for spec, sl in (("2-5", slice(2, 5)), ("-3", slice(0, 3)), ("3-", slice(3, None)), ("790-1000", slice(790, 1000))):
        assert ok("cat", "-r", spec, "src/sub/deeper/e.txt", cwd=tree).stdout == content[sl]
        # a file stored compressed: the range applies to the decoded bytes
        assert ok("cat", "-r", spec, "gz/e.txt", cwd=tree).stdout == content[sl]


def test_cat_range_errors(tree):
    assert b"one SOURCE" in failing("cat", "-r", "1-2", "src/a.txt", "src/b.jpg", cwd=tree).stderr
    failing("cat", "-r", "5-2", "src/a.txt", cwd=tree)
    failing("cat", "-r", "x", "src/a.txt", cwd=tree)


def test_cat_missing_file_is_an_error_naming_it(tree):
    proc = failing("cat", "src/a.txt", "src/missing.bin", "src/b.jpg", cwd=tree)
    assert b"src/missing.bin does not exist" in proc.stderr
    assert proc.stdout == SOURCE_FILES["a.txt"] + SOURCE_FILES["b.jpg"]
    assert b"is a directory" in failing("cat", "src/sub", cwd=tree).stderr


def test_cat_stdin_paths(tree):
    assert ok("cat", "-", cwd=tree, stdin=b"src/c.jpg\nsrc/a.txt\n").stdout == SOURCE_FILES["c.jpg"] + SOURCE_FILES["a.txt"]


# == du ============================================================================================


def test_du_per_file_and_summaries(tree):
    lines = ok("du", "src", cwd=tree).stdout.decode().splitlines()
    root = "file://" + str(tree / "src")
    assert sorted(lines) == sorted(f"{len(v)}\t{root}/{k}" for k, v in SOURCE_FILES.items())

    total = sum(map(len, SOURCE_FILES.values()))
    assert ok("du", "-s", "src", cwd=tree).stdout.decode() == f"{total}\t{root}\n"
    ok("cp", "-r", "src", "copy", cwd=tree)
    out = ok("du", "-s", "-c", "-N", "src", "copy/a.txt", cwd=tree).stdout.decode().splitlines()
    assert out[0] == f"{total}\t{root}"
    assert out[1].startswith("6\t") and out[1].endswith("copy/a.txt")
    assert out[2] == f"{total + 6}\ttotal"
    assert out[3] == f"{len(SOURCE_FILES) + 1}\tfiles"


def test_du_human_and_extensions(tmp_path):
    make_tree(tmp_path / "d", {"big.bin": b"x" * 3 * 1024 * 1024, "a.json": b"y" * 1536, "noext": b"z"})
    out = ok("du", "-sh", "d", cwd=tmp_path).stdout.decode()
    assert out.startswith("3.00 MiB\t")
    assert ok("du", "-h", "d/a.json", cwd=tmp_path).stdout.decode().startswith("1.50 KiB\t")
    table = ok("du", "-e", "d", cwd=tmp_path).stdout.decode().splitlines()
    assert table[0].split("\t")[:3] == ["extension", "files", "bytes"]
    rows = {line.split("\t")[0]: line.split("\t")[1:3] for line in table[1:]}
    assert rows == {".bin": ["1", str(3 * 1024 * 1024)], ".json": ["1", "1536"], "(none)": ["1", "1"]}


def test_du_missing_path(tree):
    proc = failing("du", "src/a.txt", "nothing", cwd=tree)
    assert b"nothing does not exist" in proc.stderr
    assert proc.stdout.startswith(b"6\t")


# == head, touch, mkdir ==============================================================================


def test_head_single_and_several(tree):
    import json
    from datetime import datetime

    meta = json.loads(ok("head", "src/c.jpg", cwd=tree).stdout)
    assert meta["Content-Length"] == len(SOURCE_FILES["c.jpg"])
    datetime.fromisoformat(meta["Last-Modified"])

    ok("cp", "-c", "gzip", "src/a.txt", "gz/", cwd=tree)
    many = json.loads(ok("head", "src/a.txt", "gz/a.txt", cwd=tree).stdout)
    root = "file://" + str(tree)
    assert set(many) == {f"{root}/src/a.txt", f"{root}/gz/a.txt"}
    assert many[f"{root}/gz/a.txt"]["Content-Encoding"] == "gzip"
    wild = json.loads(ok("head", "src/*.jpg", cwd=tree).stdout)
    assert sorted(k.rsplit("/", 1)[1] for k in wild) == ["b.jpg", "c.jpg"]


def test_head_missing(tree):
    proc = failing("head", "src/zzz", cwd=tree)
    assert b"src/zzz does not exist" in proc.stderr and proc.stdout == b""


def test_touch_and_mkdir(tree):
    import os

    ok("touch", "new/deep/file", "src/a.txt", cwd=tree)
    assert (tree / "new" / "deep" / "file").read_bytes() == b""
    assert (tree / "src" / "a.txt").read_bytes() == SOURCE_FILES["a.txt"]
    os.utime(tree / "src" / "b.jpg", (1, 1))
    ok("touch", "src/b.jpg", cwd=tree)
    assert (tree / "src" / "b.jpg").stat().st_mtime > 1000
    ok("mkdir", "m1/m2", "m3", cwd=tree)
    assert (tree / "m1" / "m2").is_dir() and (tree / "m3").is_dir()


# == errors and help =================================================================================


def test_bad_cloudpath_is_one_line_on_stderr(tmp_path):
    proc = failing("ls", "nosuchproto://bucket/x", cwd=tmp_path)
    assert b"nosuchproto" in proc.stderr
    assert proc.stdout == b""


def test_unsupported_wildcards_and_file_destinations(tree):
    assert b"unsupported wildcard" in failing("cp", "src/a*b*", "dest", cwd=tree).stderr
    assert b"last path component" in failing("rm", "sr*/a.txt", cwd=tree).stderr
    (tree / "plainfile").write_bytes(b"keep")
    assert b"it is a file" in failing("cp", "-r", "src", "plainfile", cwd=tree).stderr
    assert (tree / "plainfile").read_bytes() == b"keep"


COMMANDS = [
    [], ["ls"], ["cp"], ["mv"], ["rm"], ["du"], ["cat"], ["head"], ["touch"], ["mkdir"], ["verify"],
    ["xfer"], ["xfer", "init"], ["xfer", "execute"], ["xfer", "status"],
    ["alias"], ["alias", "add"], ["alias", "ls"], ["alias", "rm"], ["demo"],
    ["watch"], ["watch", "net"], ["watch", "net", "print"], ["watch", "net", "histogram"], ["license"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "cloudfiles")
def test_help_shows_examples(tmp_path, command):
    proc = ok(*command, "--help", cwd=tmp_path)
    assert b"Examples" in proc.stdout


def test_acl_get_prints_modes_and_acls(tmp_path):
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "b").write_bytes(b"2")
    os.chmod(tmp_path / "b", 0o600)
    assert ok("acl", "get", "a", cwd=tmp_path).stdout.strip() == b"0o100644"
    both = json.loads(ok("acl", "get", "a", "b", cwd=tmp_path).stdout)
    assert both == {f"file://{tmp_path}/a": "0o100644", f"file://{tmp_path}/b": "0o100600"}
    proc = failing("acl", "get", "a", "nope", cwd=tmp_path)
    assert b"nope does not exist" in proc.stderr
    assert json.loads(proc.stdout)[f"file://{tmp_path}/nope"] is None
    original = ok("acl", "get", "--original-format", "a", "b", cwd=tmp_path).stdout.decode()
    assert original.startswith("{ 'file://") and "'0o100600'" in original  # pprint, indent 2
