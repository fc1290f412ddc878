"""file:// internals that the contract suite does not reach: the one-syscall read path and its
fallbacks, atomic writes, removal of stale encodings, the one-thread write budget, and the
scandir-once listing (checked against a plain reference walk on random trees)."""

from __future__ import annotations

import os
import random
import threading

import pytest

from cloudfiles_dask import CloudFiles
from cloudfiles_dask._suffixes import split_stored_name
from cloudfiles_dask.backends import local

SUFFIXES = ["", ".gz", ".br", ".zstd", ".xz", ".bz2"]


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def cf(root):
    return CloudFiles("file://" + str(root))


def write(path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# -- reads --------------------------------------------------------------------------------------


def test_read_prefers_the_bare_name_then_suffixes_in_order(root, cf):
    write(root / "k.br", b"brotli bytes")
    write(root / "k.gz", b"gzip bytes")
    assert cf.get("k", raw=True) == b"gzip bytes"
    write(root / "k", b"plain")
    blob = cf.backend.get("k")
    assert (blob.content, blob.encoding) == (b"plain", None)


def test_a_directory_named_like_the_key_is_not_read(root, cf):
    (root / "d").mkdir()
    assert cf.backend.get("d") is None
    write(root / "d.xz", b"xz bytes")
    blob = cf.backend.get("d")
    assert (blob.content, blob.encoding) == (b"xz bytes", "xz")


@pytest.mark.parametrize("one_read", [None, 3])
@pytest.mark.parametrize(
    "start, end",
    [(None, None), (0, None), (5, None), (None, 7), (2, 9), (-4, None), (None, -3), (-6, -2),
     (40, None), (40, 50), (9, 2), (5, 5), (0, 1000)],
)
def test_byte_ranges_in_any_read_size(root, cf, monkeypatch, one_read, start, end):
    """``one_read`` shrinks the largest single read, standing in for files above 2 GiB (what
    one read() returns at most): the bytes are then read in steps, to the same answer."""
    if one_read:
        monkeypatch.setattr(local, "_ONE_READ", one_read)
    data = bytes(range(32))
    write(root / "r", data)
    assert cf.backend.get("r", start, end).content == data[start:end]


def test_read_sees_a_file_that_grew_after_it_was_sized(root, cf, monkeypatch):
    write(root / "g", b"0123456789")
    real_fstat = os.fstat

    class Shrunk:
        def __init__(self, st):
            self.st_size = st.st_size - 4

    monkeypatch.setattr(local.os, "fstat", lambda fd: Shrunk(real_fstat(fd)))
    assert cf.backend.get("g").content == b"0123456789"


def threads_that_called(monkeypatch, method: str, action):
    """``(action(), the threads LocalBackend.<method> ran on meanwhile)``."""
    seen = set()
    real = getattr(local.LocalBackend, method)

    def spy(self, *args):
        seen.add(threading.get_ident())
        return real(self, *args)

    monkeypatch.setattr(local.LocalBackend, method, spy)
    return action(), seen


def test_reads_run_on_the_calling_thread(root, cf, monkeypatch):
    for i in range(50):
        write(root / f"f{i}", b"%d" % i)
    results, seen = threads_that_called(monkeypatch, "get", lambda: cf.get([f"f{i}" for i in range(50)]))
    assert [r["content"] for r in results] == [b"%d" % i for i in range(50)]
    assert seen == {threading.get_ident()}


# -- writes -------------------------------------------------------------------------------------


def test_writes_run_on_the_calling_thread(cf, monkeypatch):
    count, seen = threads_that_called(monkeypatch, "put", lambda: cf.puts([(f"d{i % 3}/f{i}", b"x") for i in range(60)]))
    assert count == 60
    assert seen == {threading.get_ident()}


def test_puts_remove_every_stale_encoding(root, cf):
    keys = [f"a/k{i}" for i in range(12)]
    for i, key in enumerate(keys):  # each key starts with one or two stale stored forms
        write(root / (key + SUFFIXES[i % 6]), b"old")
        write(root / (key + SUFFIXES[(i + 3) % 6]), b"old")
    cf.puts([(key, b"new") for key in keys], compress="br")
    assert sorted(os.listdir(root / "a")) == sorted(f"k{i}.br" for i in range(12))
    assert cf.get(keys, return_dict=True) == {key: b"new" for key in keys}
    cf.puts([(key, b"plain") for key in keys])
    assert sorted(os.listdir(root / "a")) == sorted(f"k{i}" for i in range(12))


class Reader:
    """A binary handle that checks, while it is being read, that nothing shows under the final
    name yet (the bytes go to a hidden temporary file), and can fail half way."""

    def __init__(self, final, data: bytes, fail: bool = False):
        self.final, self.data, self.fail, self.calls = final, data, fail, 0

    def seekable(self) -> bool:
        return False

    def read(self, n: int = -1) -> bytes:
        assert not os.path.exists(self.final)
        self.calls += 1
        if self.calls == 1:
            return self.data
        if self.fail:
            raise OSError("source went away")
        return b""


def test_write_appears_only_when_complete(root, cf):
    reader = Reader(root / "dir" / "big", b"z" * 100_000)
    cf.put("dir/big", reader, compress=None)
    assert reader.calls >= 2
    assert (root / "dir" / "big").read_bytes() == b"z" * 100_000
    assert os.listdir(root / "dir") == ["big"]


def test_failed_write_leaves_neither_file_nor_temporary(root, cf):
    write(root / "dir" / "other")
    with pytest.raises(OSError, match="went away"):
        cf.put("dir/big", Reader(root / "dir" / "big", b"z" * 1000, fail=True), compress=None)
    assert os.listdir(root / "dir") == ["other"]


def test_failed_bytes_write_keeps_the_old_file(root, cf, monkeypatch):
    write(root / "k", b"old")

    def short_disk(fd, data):
        os.write(fd, bytes(memoryview(data)[:3]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local, "_write_all", short_disk)
    with pytest.raises(OSError, match="No space"):
        cf.put("k", b"new content", compress=None)
    assert os.listdir(root) == ["k"]
    assert (root / "k").read_bytes() == b"old"


def test_write_buffers_of_any_item_size(root, cf):
    import array

    data = array.array("i", range(1000))
    local.atomic_write(str(root / "arr"), memoryview(data))
    assert (root / "arr").read_bytes() == data.tobytes()


# -- listing ------------------------------------------------------------------------------------


def reference_listing(base: str, prefix: str, flat: bool, size: bool) -> list:
    """The listing rules written out plainly (one os.path call and one suffix scan per entry)."""
    rel_dir, _, fragment = prefix.rpartition("/")

    def walk(rel: str, fragment: str):
        try:
            scanner = os.scandir(os.path.join(base, rel))
        except (FileNotFoundError, NotADirectoryError):
            return
        entries = []
        with scanner:
            for entry in scanner:
                name = entry.name
                if name.startswith(local.TMP_PREFIX) or (name.startswith(".") and name.endswith(local.PARTIAL_SUFFIX)):
                    continue
                if entry.is_dir():
                    if name.startswith(fragment):
                        entries.append((name + "/", True, name))
                else:
                    key, enc = split_stored_name(name)
                    if key.startswith(fragment):
                        entries.append((key, False, name))
        # a key stored in several forms is listed once, with the size of the form a read picks
        entries.sort(key=lambda e: (e[0], SUFFIXES.index(e[2][len(e[0]):]) if not e[1] else 0))
        last = None
        for key, is_dir, name in entries:
            if is_dir:
                if flat:
                    yield rel + key, None
                else:
                    yield from walk(rel + key, "")
                continue
            if key == last:
                continue
            last = key
            yield rel + key, os.path.getsize(os.path.join(base, rel, name)) if size else None

    return list(walk(rel_dir + "/" if rel_dir else "", fragment))


def random_tree(root, seed: int) -> None:
    rng = random.Random(seed)
    names = ["a", "a0", "a.b", "ab", "b", "x.json", ".hidden", "z", "a-", "gz", "k.gz"]
    for _ in range(120):
        depth = rng.randint(0, 3)
        parts = [rng.choice(["a", "b", "a.b", "d", "ab"]) for _ in range(depth)]
        name = rng.choice(names) + rng.choice(SUFFIXES + ["", "", ""])
        if rng.random() < 0.05:
            name = local.TMP_PREFIX + "0123"
        elif rng.random() < 0.05:
            name = "." + name + local.PARTIAL_SUFFIX
        path = root.joinpath(*parts, name)
        if path.exists() or any(p.exists() and not p.is_dir() for p in path.parents):
            continue
        write(path, b"y" * rng.randint(0, 50))
    os.makedirs(root / "empty" / "dir", exist_ok=True)
    os.makedirs(root / (local.TMP_PREFIX + "dir"), exist_ok=True)
    write(root / (local.TMP_PREFIX + "dir") / "inside")


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/b", "a.b/", "d/a", "ab/a.", "nothing/", "z"])
def test_listing_matches_the_reference_walk(root, cf, seed, prefix):
    random_tree(root, seed)
    base = str(root)
    for flat in (False, True):
        for size in (False, True):
            got = list(cf.backend.list(prefix, flat, size))
            assert got == reference_listing(base, prefix, flat, size), (prefix, flat, size)
    assert list(cf.list(prefix)) == [k for k, _ in reference_listing(base, prefix, False, False)]


def test_listing_follows_symlinked_directories(root, cf):
    write(root / "real" / "f")
    os.symlink(root / "real", root / "link")
    assert list(cf.list()) == ["link/f", "real/f"]


def test_listing_order_puts_directories_among_keys(root, cf):
    for name in ["a", "a.b", "a0", "a-"]:
        write(root / name)
    write(root / "ad" / "in")
    write(root / "a_" / "in")
    assert list(cf.list()) == sorted(["a", "a.b", "a0", "a-", "ad/in", "a_/in"])
