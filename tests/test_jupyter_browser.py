"""The notebook browser (cloudfiles_dask.jupyter.Browser) on real storage: mem://, file://, the
local S3 servers, fake-gcs-server and a Range-capable HTTP server, all on 127.0.0.1.

Clicks are simulated with the widgets' own ``click()`` and value changes, as the front end
would make them; each test then reads the widgets' state. Listings and previews run on
background threads: tests wait for them (``wait``/``wait_for_page``, with a generous limit that
only guards against a hang). A listing slowed on purpose is held by a gate on the server side
(a handler of the HTTP server, a plan of the fault proxy in front of rclone), released by the
test, so "the first page shows while the rest still lists" is checked without any timing.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import struct
import subprocess
import sys
import threading
import zlib
from uuid import uuid4

import brotli
import pytest
import zstandard

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.jupyter import Browser
from cloudfiles_dask.jupyter import _preview as preview_mod
from tests.servers import s3 as s3_servers
from tests.servers.fault_proxy import FaultProxy
from tests.servers.http import HTTPObjectServer

widgets = pytest.importorskip("ipywidgets")

LIMIT = 60  # seconds: only a guard against a hang, never a measure


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_RETRY_BASE", "0.01")
    monkeypatch.setenv("CLOUD_FILES_RETRY_MAX", "0.02")
    monkeypatch.setenv("CLOUD_FILES_RETRY_ATTEMPTS", "2")


@pytest.fixture
def browse():
    """``browse(location, **options)``: a Browser whose background work is over at teardown."""
    made: list[Browser] = []

    def make(location, **options) -> Browser:
        browser = Browser(location, **options)
        made.append(browser)
        return browser

    yield make
    for browser in made:
        assert browser.wait(LIMIT), "a browser's background work never ended"


def until(condition) -> None:
    """Poll ``condition`` until it holds (the limit only guards against a hang)."""
    done = threading.Event()
    for _ in range(LIMIT * 20):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError("the condition never held")


def settle(browser: Browser) -> Browser:
    assert browser.wait(LIMIT)
    return browser


def names(browser: Browser) -> list[str]:
    return [entry.name for entry in browser.entries]


def row_of(browser: Browser, name: str):
    for row in browser.rows:
        if row.entry is not None and row.entry.name == name:
            return row
    raise AssertionError(f"{name!r} is not on the page: {names(browser)}")


def shown_rows(browser: Browser) -> list:
    return [row for row in browser.rows if row.box.layout.display != "none"]


TREE = {
    "b.txt": b"hello browser\n",
    "a.json": json.dumps({"name": "a", "values": [1, 2, 3]}).encode(),
    "zdir/inner.txt": b"inside",
    "zdir/deeper/x.bin": bytes(range(50)),
    "adir/one.csv": b"x,y\n1,2\n3,4\n",
}


def seed(cf: CloudFiles, files: dict[str, bytes] = TREE) -> None:
    cf.puts(list(files.items()))


# -- the view -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["mem", "file"])
def test_folders_first_then_files_with_sizes_and_times(browse, make_cloudpath, kind):
    cf = CloudFiles(make_cloudpath(kind))
    seed(cf)
    browser = settle(browse(cf))
    assert names(browser) == ["adir/", "zdir/", "a.json", "b.txt"]
    rows = shown_rows(browser)
    assert len(rows) == 4 and all(row.box.layout.display == "flex" for row in rows)
    assert [row.name.icon for row in rows] == ["folder", "folder", "file-o", "file-o"]
    assert [row.name.description for row in rows] == ["adir/", "zdir/", "a.json", "b.txt"]
    assert row_of(browser, "b.txt").size.value.endswith(">14 B</div>")
    assert row_of(browser, "adir/").size.value == '<div class="cfd-right"></div>'
    # file:// and mem:// show modified times (a head per shown file is a local lookup there)
    assert browser.modified
    assert "20" in row_of(browser, "a.json").modified.value  # a year: a date is shown
    assert row_of(browser, "adir/").check.layout.visibility == "hidden"
    assert browser.up_button.disabled  # at the root
    assert "2 folders, 2 files" in browser.status.value
    assert browser.error_message is None and browser.error.layout.display == "none"
    assert "adir/" in repr(browser) and "a.json" in repr(browser)


def test_clicks_into_a_folder_breadcrumb_and_up(browse, make_cloudpath):
    cf = CloudFiles(make_cloudpath("mem"))
    seed(cf)
    browser = settle(browse(cf))
    row_of(browser, "zdir/").name.click()
    settle(browser)
    assert browser.prefix == "zdir/"
    assert names(browser) == ["deeper/", "inner.txt"]
    assert not browser.up_button.disabled
    assert [b.description for b in browser.breadcrumb.children if isinstance(b, widgets.Button)] == ["/", "zdir"]
    row_of(browser, "deeper/").name.click()
    settle(browser)
    assert browser.prefix == "zdir/deeper/" and names(browser) == ["x.bin"]
    crumbs = [b for b in browser.breadcrumb.children if isinstance(b, widgets.Button)]
    assert [b.description for b in crumbs] == ["/", "zdir", "deeper"]
    crumbs[1].click()  # back to zdir/ through the breadcrumb
    settle(browser)
    assert browser.prefix == "zdir/" and names(browser) == ["deeper/", "inner.txt"]
    browser.up_button.click()
    settle(browser)
    assert browser.prefix == "" and names(browser)[:2] == ["adir/", "zdir/"]
    assert browser.up_button.disabled
    browser.up_button.click()  # nothing above the root
    settle(browser)
    assert browser.prefix == ""


def test_pages_and_filter(browse, make_cloudpath):
    cf = CloudFiles(make_cloudpath("mem"))
    files = {f"f{i:02d}.txt": b"x" * i for i in range(23)}
    files.update({"d1/k": b"", "d2/k": b""})
    seed(cf, files)
    browser = settle(browse(cf, page_size=10))
    assert browser.pages == 3
    assert names(browser) == ["d1/", "d2/"] + [f"f{i:02d}.txt" for i in range(8)]
    assert browser.prev_button.disabled and not browser.next_button.disabled
    assert "page 1 of 3" in browser.page_label.value
    browser.next_button.click()
    assert browser.page == 1 and names(browser) == [f"f{i:02d}.txt" for i in range(8, 18)]
    browser.next_button.click()
    assert names(browser) == [f"f{i:02d}.txt" for i in range(18, 23)]
    assert len(shown_rows(browser)) == 5 and browser.next_button.disabled
    browser.next_button.click()  # no page 4
    assert browser.page == 2
    browser.prev_button.click()
    assert browser.page == 1
    # the filter: a substring, case-insensitive; back to page 1
    browser.filter_box.value = "F1"
    assert browser.page == 0
    assert names(browser) == [f"f{i}.txt" for i in range(10, 20)]
    assert "10 of 25 match" in browser.status.value
    browser.filter_box.value = "*2.txt"  # a glob
    assert names(browser) == ["f02.txt", "f12.txt", "f22.txt"]
    browser.filter_box.value = "d?"
    assert names(browser) == ["d1/", "d2/"]
    browser.filter_box.value = "nothing-like-this"
    assert names(browser) == [] and shown_rows(browser) == []
    browser.filter_box.value = ""
    assert len(names(browser)) == 10 and browser.pages == 3
    # going into a folder clears the filter
    browser.filter_box.value = "d1"
    row_of(browser, "d1/").name.click()
    settle(browser)
    assert browser.filter_box.value == "" and names(browser) == ["k"]


def test_selecting_files(browse, make_cloudpath):
    cf = CloudFiles(make_cloudpath("file"))
    seed(cf)
    browser = settle(browse(cf))
    row_of(browser, "b.txt").name.click()
    settle(browser)
    assert browser.selected == ["b.txt"]
    assert browser.selected_cloudpaths == [cf.abspath("b.txt")]
    assert browser.path_box.value == cf.abspath("b.txt")  # the full path, to copy
    assert row_of(browser, "b.txt").check.value is True
    assert "Content-Length" in browser.info.value and "14" in browser.info.value
    assert browser.metadata["Content-Length"] == 14
    assert browser.preview.kind == "text" and browser.preview.text == "hello browser\n"
    # ticking a box adds to the selection (and previews that file)
    row_of(browser, "a.json").check.value = True
    settle(browser)
    assert browser.selected == ["b.txt", "a.json"]
    assert browser.previewed == "a.json" and browser.preview.kind == "json"
    assert "1 selected" not in browser.selection_label.value and "2 selected" in browser.selection_label.value
    # the selection holds across folders
    row_of(browser, "adir/").name.click()
    settle(browser)
    row_of(browser, "one.csv").check.value = True
    settle(browser)
    assert browser.selected == ["b.txt", "a.json", "adir/one.csv"]
    row_of(browser, "one.csv").check.value = False
    assert browser.selected == ["b.txt", "a.json"]
    # clicking a name selects only that file
    row_of(browser, "one.csv").name.click()
    settle(browser)
    assert browser.selected == ["adir/one.csv"]
    assert cf.get(browser.selected, return_dict=True) == {"adir/one.csv": b"x,y\n1,2\n3,4\n"}


def test_browse_method_and_arguments(browse, make_cloudpath):
    cf = CloudFiles(make_cloudpath("mem"))
    seed(cf)
    browser = cf.browse(page_size=3, prefix="zdir")
    try:
        assert isinstance(browser, Browser) and browser.cloudfiles is cf
        assert browser.prefix == "zdir/" and browser.page_size == 3
    finally:
        assert browser.wait(LIMIT)
    assert len(browser.rows) == 2  # rows are made as a page needs them
    with pytest.raises(TypeError, match="cloudpath"):
        Browser(cf, secrets={"x": "y"})
    with pytest.raises(ValueError, match="page_size"):
        Browser(cf, page_size=0)
    bundle = settle(browse(cf.cloudpath))._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_importing_the_package_does_not_import_ipywidgets():
    code = ("import sys, cloudfiles_dask.jupyter\n"
            "from cloudfiles_dask import CloudFiles\n"
            "assert callable(CloudFiles.browse)\n"
            "print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- previews -------------------------------------------------------------------------------------
def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def jpeg(width: int, height: int) -> bytes:
    """The markers of a baseline JPEG up to its frame header (enough to be told and measured)."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


LONG_TEXT = "".join(f"line {i:05d}: the quick brown fox\n" for i in range(20000)).encode()


def preview_of(browse, cf: CloudFiles, key: str, **options):
    browser = settle(browse(cf, **options))
    browser.select(key)
    settle(browser)
    assert browser.error_message is None, browser.error_message
    return browser


@pytest.mark.parametrize("kind", ["mem", "file"])
def test_previews_of_each_kind(browse, make_cloudpath, kind):
    cf = CloudFiles(make_cloudpath(kind))
    doc = {"name": "x", "nested": {"list": [1, 2, 3]}}
    cf.puts([
        ("notes.txt", b"plain text\nsecond line\n"),
        ("doc.json", json.dumps(doc).encode()),
        ("noext", json.dumps(doc).encode()),  # JSON told by its bytes
        ("table.csv", b"name,count\nalpha,1\nbeta,2\n<b>,3\n"),
        ("pic.png", png(3, 2)),
        ("pic.jpg", jpeg(640, 480)),
        ("pic.gif", gif(5, 7)),
        ("blob.bin", bytes(range(256)) * 2),
        ("empty.txt", b""),
    ])
    browser = settle(browse(cf))

    def show(key):
        browser.select(key)
        settle(browser)
        assert browser.error_message is None, browser.error_message
        note, body = browser.preview_box.children
        return browser.preview, body

    found, body = show("notes.txt")
    assert found.kind == "text" and found.text == "plain text\nsecond line\n"
    assert isinstance(body, widgets.HTML) and "second line" in body.value
    found, body = show("doc.json")
    assert found.kind == "json" and found.text == json.dumps(doc, indent=2)
    found, _ = show("noext")
    assert found.kind == "json" and json.loads(found.text) == doc
    found, body = show("table.csv")
    assert found.kind == "csv"
    assert "<th" in body.value and ">name</th>" in body.value and ">beta</td>" in body.value
    assert "&lt;b&gt;" in body.value  # cells are escaped
    found, body = show("pic.png")
    assert found.kind == "image" and isinstance(body, widgets.Image)
    assert body.format == "png" and bytes(body.value) == png(3, 2)
    found, body = show("pic.jpg")
    assert found.kind == "image" and body.format == "jpeg"
    found, body = show("pic.gif")
    assert found.kind == "image" and body.format == "gif"
    found, body = show("blob.bin")
    assert found.kind == "hex"
    assert "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|" in body.value
    assert "00000020" in body.value
    found, _ = show("empty.txt")
    assert found.kind == "empty"


def test_an_image_larger_than_the_limit_shows_its_size_not_the_image(browse, make_cloudpath):
    cf = CloudFiles(make_cloudpath("mem"))
    cf.put("big.png", png(300, 200))
    browser = preview_of(browse, cf, "big.png", image_bytes=100, preview_bytes=64)
    assert browser.preview.kind == "hex"
    assert "300 × 200 PNG image too large" in browser.preview.note


@pytest.mark.parametrize("kind", ["mem", "file"])
@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd", "xz", "bz2"])
def test_compressed_objects_are_previewed_decoded_from_their_first_bytes(browse, make_cloudpath,
                                                                        kind, encoding):
    cf = CloudFiles(make_cloudpath(kind))
    cf.put("log.txt", LONG_TEXT, compress=encoding)
    browser = preview_of(browse, cf, "log.txt", preview_bytes=4096)
    found = browser.preview
    assert found.kind == "text"
    assert found.text and LONG_TEXT.decode().startswith(found.text)
    assert len(found.text) <= 4096 < len(LONG_TEXT)
    assert f"decoded from {encoding}" in found.note and "the start" in found.note
    # a small one decodes whole
    cf.put("small.json", b'{"a": [1, 2]}', compress=encoding)
    browser.select("small.json")
    settle(browser)
    assert browser.preview.kind == "json" and json.loads(browser.preview.text) == {"a": [1, 2]}
    assert "the whole file" in browser.preview.note


def test_a_truncated_json_is_reindented_and_a_truncated_csv_drops_its_cut_line(browse, make_cloudpath):
    cf = CloudFiles(make_cloudpath("mem"))
    cf.put("big.json", json.dumps({"items": [{"id": i, "tag": "t,{]"} for i in range(500)]}).encode())
    cf.put("big.csv", b"".join(b"%d,%d\n" % (i, i * i) for i in range(5000)))
    browser = preview_of(browse, cf, "big.json", preview_bytes=200)
    text = browser.preview.text
    assert browser.preview.kind == "json" and text.endswith("…")
    assert text.startswith('{\n  "items": [\n    {\n      "id": 0,\n      "tag": "t,{]"\n    },')
    assert "the first 200 B of" in browser.preview.note
    browser.select("big.csv")
    settle(browser)
    table = browser.preview_box.children[1].value
    assert browser.preview.kind == "csv" and table.count("<tr>") == preview_mod.CSV_ROWS + 1
    assert "the first rows and columns only" in table


# -- background listing -----------------------------------------------------------------------
class Gate:
    """Holds the requests it is asked about until released."""

    def __init__(self):
        self.released = threading.Event()
        self.holding = threading.Event()

    def hold(self) -> None:
        self.holding.set()
        self.released.wait(LIMIT)

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def http_server():
    with HTTPObjectServer(json_listing=True, index_pages=False, json_page_size=5) as server:
        yield server


def hold_later_pages(http_server) -> Gate:
    """A gate the server's listing requests after the first page (those with a pageToken)
    wait at."""
    gate = Gate()

    def hold(request):
        if request.args.get("pageToken"):
            gate.hold()
        return None

    http_server.handlers.append(hold)
    return gate


def test_first_page_shows_while_the_rest_still_lists_http(browse, http_server):
    for i in range(12):
        http_server.put(f"bucket/root/big/k{i:02d}", b"v" * i)
    gate = hold_later_pages(http_server)
    try:
        browser = browse(f"{http_server.url}/bucket/root", prefix="big", page_size=5)
        assert browser.wait_for_page(LIMIT)
        assert gate.holding.wait(LIMIT)  # the second page is asked for, and held
        assert names(browser) == [f"k{i:02d}" for i in range(5)]
        assert not browser.listing_done
        assert "listing…" in browser.status.value and "+" in browser.page_label.value
    finally:
        gate.release()
    settle(browser)
    assert browser.listing_done and len(browser.listed) == 12
    assert "0 folders, 12 files" in browser.status.value and browser.pages == 3


def test_a_new_navigation_drops_the_old_listing(browse, http_server):
    for i in range(9):
        http_server.put(f"bucket/root/slow/s{i}", b"s")
    http_server.put("bucket/root/fast/f1", b"f")
    gate = Gate()

    def hold_slow(request):
        if request.args.get("prefix", "").endswith("slow/") and request.args.get("pageToken"):
            gate.hold()
        return None

    http_server.handlers.append(hold_slow)
    try:
        browser = browse(f"{http_server.url}/bucket/root", prefix="slow", page_size=5)
        assert browser.wait_for_page(LIMIT) and gate.holding.wait(LIMIT)
        browser.open("fast")
        assert browser.wait_for_page(LIMIT)
    finally:
        gate.release()
    settle(browser)  # the slow listing's last page came after: it was dropped
    assert browser.prefix == "fast/" and names(browser) == ["f1"]
    assert [e.key for e in browser.listed] == ["fast/f1"]


def test_close_stops_the_listing(browse, http_server):
    for i in range(9):
        http_server.put(f"bucket/root/k{i}", b"k")
    gate = hold_later_pages(http_server)
    try:
        browser = browse(f"{http_server.url}/bucket/root", page_size=5)
        assert browser.wait_for_page(LIMIT) and gate.holding.wait(LIMIT)
        browser.close()
    finally:
        gate.release()
    settle(browser)
    assert len(browser.listed) == 5 and not browser.listing_done  # the rest was dropped


def test_a_later_selection_wins_over_an_earlier_slow_preview(browse, http_server):
    http_server.put("bucket/root/slow.txt", b"slow file")
    http_server.put("bucket/root/quick.txt", b"quick file")
    gate = Gate()

    def hold_slow_read(request):
        if request.method == "GET" and request.path.endswith("/slow.txt"):
            gate.hold()
        return None

    http_server.handlers.append(hold_slow_read)
    browser = settle(browse(f"{http_server.url}/bucket/root"))
    try:
        browser.select("slow.txt")
        assert gate.holding.wait(LIMIT)
        browser.select("quick.txt")
        until(lambda: browser.preview is not None)  # shown while the slow read is still held
        assert browser.preview.text == "quick file" and not browser.wait(0)
    finally:
        gate.release()
    settle(browser)
    assert browser.previewed == "quick.txt" and browser.preview.text == "quick file"
    assert browser.path_box.value.endswith("/quick.txt")


def test_previews_read_a_bounded_range(browse, http_server):
    """What the server is asked for: a Range of at most preview_bytes, never the whole object,
    for a plain and a gzip-encoded object."""
    http_server.put("bucket/root/big.txt", LONG_TEXT, content_type="text/plain")
    http_server.put("bucket/root/big.log", gzip.compress(LONG_TEXT), content_encoding="gzip")
    browser = settle(browse(f"{http_server.url}/bucket/root", preview_bytes=1000))
    for key in ("big.txt", "big.log"):
        http_server.clear_requests()
        browser.select(key)
        settle(browser)
        assert browser.error_message is None, browser.error_message
        gets = http_server.requests_to(f"bucket/root/{key}", "GET")
        assert gets and all(r.headers.get("range") == "bytes=0-999" for r in gets), gets
        assert browser.preview.kind == "text" and LONG_TEXT.decode().startswith(browser.preview.text)
        assert 0 < len(browser.preview.text) <= 1000


# -- every backend ----------------------------------------------------------------------------------
def check_tour(browser: Browser) -> None:
    assert browser.wait(LIMIT)
    assert browser.error_message is None, browser.error_message
    assert names(browser)[:4] == ["adir/", "zdir/", "a.json", "b.txt"]
    assert row_of(browser, "b.txt").size.value.endswith(">14 B</div>")
    row_of(browser, "zdir/").name.click()
    settle(browser)
    assert names(browser) == ["deeper/", "inner.txt"]
    row_of(browser, "inner.txt").name.click()
    settle(browser)
    assert browser.error_message is None, browser.error_message
    assert browser.preview.text == "inside" and browser.metadata["Content-Length"] == 6
    assert browser.selected == ["zdir/inner.txt"]
    assert row_of(browser, "inner.txt").modified.value != '<div class="cfd-right">—</div>'  # known now
    browser.up_button.click()
    settle(browser)
    assert names(browser)[0] == "adir/"


@pytest.fixture(params=["moto", "rclone"])
def s3_server(request, s3_env):
    """Each local S3 server in turn."""
    return request.getfixturevalue(f"{request.param}_server")


def test_on_s3(browse, s3_server):
    root = f"s3://{s3_server.endpoint}/{s3_server.new_bucket()}/root"
    cf = CloudFiles(root)
    seed(cf)
    cf.put("packed.txt", LONG_TEXT, compress="gzip")
    browser = browse(root)
    assert not browser.modified  # no head per listed file on a remote service
    check_tour(browser)
    assert row_of(browser, "b.txt").modified.value == '<div class="cfd-right">—</div>'
    browser.select("packed.txt")
    settle(browser)
    assert browser.metadata["Content-Encoding"] == "gzip"
    assert browser.preview.kind == "text" and LONG_TEXT.decode().startswith(browser.preview.text)
    assert "decoded from gzip" in browser.preview.note


def test_on_gcs(browse, gcs_server, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    bucket = "browse-" + uuid4().hex[:12]
    gcs_server.create_bucket(bucket)
    seed(CloudFiles(f"gs://{bucket}/root"))
    check_tour(browse(f"gs://{bucket}/root"))


@pytest.mark.parametrize("listing", ["json", "apache", "nginx"])
def test_on_http(browse, listing):
    """HTTP lists through the GCS JSON API or a server's index pages."""
    options = {"json_listing": True, "index_pages": False} if listing == "json" else {"index_style": listing}
    with HTTPObjectServer(**options) as server:
        for key, data in TREE.items():
            server.put(f"bucket/root/{key}", data)
        browser = browse(f"{server.url}/bucket/root")
        check_tour(browser)
        assert browser.wait(LIMIT)


# -- errors are shown, never raised ------------------------------------------------------------------
def closed_port() -> int:
    return s3_servers.free_port()  # bound and closed again: nothing listens there


def assert_shows_error(browser: Browser, *fragments: str) -> None:
    assert browser.wait(LIMIT)
    message = browser.error_message
    assert message, "no error shown"
    assert browser.error.layout.display == "block"
    for fragment in fragments:
        assert fragment in message, message
        assert fragment in browser.error.value or fragment.replace("'", "&#x27;") in browser.error.value
    assert browser.listing_done and browser.wait_for_page(LIMIT)


def test_a_server_that_is_down(browse, s3_env):
    port = closed_port()
    browser = browse(f"s3://http://127.0.0.1:{port}/bucket/root")
    assert_shows_error(browser, "Listing", f"127.0.0.1:{port}")
    assert names(browser) == []


def test_a_missing_bucket(browse, rclone_server, s3_env):
    browser = browse(f"s3://{rclone_server.endpoint}/no-such-bucket-{uuid4().hex[:8]}/x")
    assert_shows_error(browser, "Listing", "no-such-bucket")


def test_a_missing_gcs_bucket(browse, gcs_server, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    browser = browse(f"gs://missing-{uuid4().hex[:12]}/x")
    assert_shows_error(browser, "Listing", "missing-")


def test_permission_refused(browse, rclone_server, s3_env):
    bucket = rclone_server.new_bucket()
    CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/r").put("k", b"v")
    wrong = {"AWS_ACCESS_KEY_ID": "nobody", "AWS_SECRET_ACCESS_KEY": "wrong-secret"}
    browser = browse(f"s3://{rclone_server.endpoint}/{bucket}/r", secrets=wrong)
    assert_shows_error(browser, "AuthorizationError")
    assert "wrong-secret" not in browser.error_message


def test_an_unknown_protocol(browse):
    browser = browse("nope://bucket/x")
    assert_shows_error(browser, "Cannot open", "nope")
    browser.up_button.click()
    browser.refresh_button.click()  # nothing to do, nothing raised


def test_a_file_gone_after_listing(browse, make_cloudpath):
    cf = CloudFiles(make_cloudpath("file"))
    seed(cf)
    browser = settle(browse(cf))
    cf.delete("b.txt")
    row_of(browser, "b.txt").name.click()
    assert browser.wait(LIMIT)
    assert "does not exist" in browser.error_message and browser.preview is None
    row_of(browser, "a.json").name.click()  # the next file read clears it
    settle(browser)
    assert browser.error_message is None and browser.preview.kind == "json"
    browser.select("b.txt")
    settle(browser)
    assert "does not exist" in browser.error_message
    browser.refresh_button.click()  # listing again clears it
    settle(browser)
    assert browser.error_message is None and "b.txt" not in names(browser)


# -- S3: the first page of a large prefix, with rclone held behind the fault proxy -----------------
@pytest.fixture(scope="module")
def big_rclone(tmp_path_factory):
    """rclone serving a directory where 1 100 files were written before it started (faster than
    1 100 PUTs): more than one listing page (1 000 keys)."""
    root = tmp_path_factory.mktemp("rclone-big")
    folder = root / "bigbucket" / "many"
    folder.mkdir(parents=True)
    for i in range(1100):
        (folder / f"key{i:05d}").write_bytes(b"x")
    server = s3_servers.rclone_server(str(root), str(tmp_path_factory.mktemp("rclone-big-logs")))
    with s3_servers.running(server):
        yield server


def test_first_page_shows_while_the_rest_still_lists_s3(browse, big_rclone, s3_env):
    gate = Gate()

    def plan(method: str, target: str):
        if "continuation-token" in target:
            gate.hold()
        return None

    proxy = FaultProxy("127.0.0.1", big_rclone.port, plan)
    try:
        browser = browse(f"s3://{proxy.url}/bigbucket/many", page_size=40)
        assert browser.wait_for_page(LIMIT)
        assert gate.holding.wait(LIMIT)
        assert names(browser) == [f"key{i:05d}" for i in range(40)]
        assert not browser.listing_done and "listing…" in browser.status.value
        browser.next_button.click()  # the next page is there already
        assert names(browser) == [f"key{i:05d}" for i in range(40, 80)]
    finally:
        gate.release()
    try:
        settle(browser)
        assert browser.listing_done and len(browser.listed) == 1100
        assert browser.error_message is None
    finally:
        proxy.close()


# -- the preview helpers ---------------------------------------------------------------------------
@pytest.mark.parametrize("encoding, compress", [
    ("gzip", gzip.compress), ("br", brotli.compress), ("zstd", zstandard.ZstdCompressor().compress),
    ("xz", lzma.compress), ("bz2", bz2.compress),
])
def test_decode_prefix_stops_at_its_limit(encoding, compress):
    zeros = compress(bytes(5_000_000))  # expands ~1000x or more
    out, complete = preview_mod.decode_prefix(zeros, encoding, 1000, True)
    assert out == bytes(1000) and not complete
    data = os.urandom(3000)
    stored = compress(data)
    assert preview_mod.decode_prefix(stored, encoding, 10_000, True) == (data, True)
    # the first half of the stored bytes: a start of the data, never an error
    out, complete = preview_mod.decode_prefix(stored[: len(stored) // 2], encoding, 10_000, False)
    assert data.startswith(out) and not complete
    with pytest.raises(ValueError, match=encoding):
        preview_mod.decode_prefix(b"\x00not compressed at all" * 10, encoding, 100, True)


def test_preview_helpers():
    assert preview_mod.reindent_json('{"a":[1,{"b":"x,]"}],"c"') == (
        '{\n  "a": [\n    1,\n    {\n      "b": "x,]"\n    }\n  ],\n  "c"')
    assert preview_mod.image_size(png(7, 9), "png") == (7, 9)
    assert preview_mod.image_size(jpeg(640, 480), "jpeg") == (640, 480)
    assert preview_mod.image_size(gif(5, 3), "gif") == (5, 3)
    assert preview_mod.declared_kind("x.csv.gz", None) == ("csv", "gzip")
    assert preview_mod.declared_kind("x", "application/json; charset=utf-8") == ("json", None)
    assert preview_mod.declared_kind("x", "application/octet-stream") == (None, None)
    # a UTF-8 character cut by the range is dropped, not an error
    cut = "héllo".encode()[:2]
    assert preview_mod.make_preview("t.txt", cut, False).text == "h"
    assert preview_mod.make_preview("t.txt", b"\x00\x01", True).kind == "hex"
    assert preview_mod.make_preview("t.png", b"\x89PNG\r\n\x1a\n" + bytes(8), False).kind == "hex"
    assert preview_mod.human_size(1536) == "1.5 KiB" and preview_mod.human_size(None) == ""
