"""A file-manager view of a bucket or folder in a notebook: :class:`Browser`.

``CloudFiles(...).browse()`` or ``Browser(cloudpath)`` shows one folder at a time: a breadcrumb
path, an up button, folders first and then files with their sizes, a filter box, pages of
entries, and beside them the selected file's metadata (``head``) and a preview read with a
bounded byte range.

Nothing here blocks the kernel: each folder is listed (flat, one level, with sizes) on a
background thread that fills the view as entries arrive, so the first page shows while the
rest still lists; a new navigation makes the older listing stop and its results are dropped.
Previews and metadata are read on background threads too. Every error (refused, missing,
unreachable) is shown in the widget's error line, never raised into the notebook.

ipywidgets is imported when a Browser is made, never when this module is imported.
"""

from __future__ import annotations

import fnmatch
import html
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import cloudfiles as _cloudfiles
from ..exceptions import CloudFilesError
from . import _preview
from ._kernel import ipywidgets
from ._preview import Preview

#: Entries on one page of the view.
PAGE_SIZE = 50
#: Stored bytes read for a preview (and decoded bytes shown at most).
PREVIEW_BYTES = 64 * 1024
#: The largest image shown (stored bytes read to show it).
IMAGE_BYTES = 4 * 1024 * 1024
#: Stored bytes read at most to find a first decodable block of a compressed object (bzip2
#: blocks are up to 900 kB of data: its first block may end beyond ``preview_bytes``).
DECODE_WINDOW = 1024 * 1024
#: Seconds between refreshes of the view while a folder lists.
REFRESH_SECONDS = 0.25
#: ``modified`` times are read for the shown page (one head per file shown) on these protocols
#: by default: there a head is a stat, not a request.
_LOCAL_PROTOCOLS = ("file", "mem")

_STYLE = """<style>
.cfd-browser .cfd-name button, .cfd-browser button.cfd-name { text-align: left;
  justify-content: flex-start; overflow: hidden; text-overflow: ellipsis; }
.cfd-browser .cfd-right { text-align: right; }
</style>"""



@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of a folder: ``name`` within the folder (a folder's ends with ``/``), ``key``
    relative to the browser's root (what its CloudFiles takes), ``size`` in stored bytes (None
    for folders and where the listing does not say)."""

    name: str
    key: str
    size: int | None

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


def _matcher(pattern: str) -> Callable[[str], bool] | None:
    """The filter: a case-insensitive substring, or a glob when it has ``*``, ``?`` or ``[``."""
    pattern = pattern.strip().casefold()
    if not pattern:
        return None
    if any(ch in pattern for ch in "*?["):
        return lambda name: fnmatch.fnmatchcase(name.rstrip("/").casefold(), pattern)
    return lambda name: pattern in name.casefold()


class _Folder:
    """The entries listed so far of one folder, folders and files apart, and those the filter
    lets through. Listings mostly arrive in key order; they are sorted when one did not."""

    def __init__(self, prefix: str, pattern: str = ""):
        self.prefix = prefix
        self.dirs: list[Entry] = []
        self.files: list[Entry] = []
        self.shown_dirs: list[Entry] = []
        self.shown_files: list[Entry] = []
        self.match = _matcher(pattern)
        self.unsorted = False
        self.version = 0  # changes whenever what is shown may change
        self.done = False

    def add(self, key: str, size: int | None) -> None:
        name = key[len(self.prefix):]
        if not name or name == "/":
            return  # the folder's own marker object
        entry = Entry(name, key, size)
        every, shown = (self.dirs, self.shown_dirs) if entry.is_dir else (self.files, self.shown_files)
        if every and name < every[-1].name:
            self.unsorted = True
        every.append(entry)
        if self.match is None or self.match(name):
            shown.append(entry)
        self.version += 1

    def refilter(self, pattern: str) -> None:
        self.match = match = _matcher(pattern)
        self.shown_dirs = self.dirs[:] if match is None else [e for e in self.dirs if match(e.name)]
        self.shown_files = self.files[:] if match is None else [e for e in self.files if match(e.name)]
        self.version += 1

    def visible(self) -> tuple[list[Entry], list[Entry]]:
        if self.unsorted:
            for entries in (self.dirs, self.files, self.shown_dirs, self.shown_files):
                entries.sort(key=lambda e: e.name)
            self.unsorted = False
        return self.shown_dirs, self.shown_files

    @property
    def count(self) -> int:
        return len(self.dirs) + len(self.files)

    @property
    def shown(self) -> int:
        return len(self.shown_dirs) + len(self.shown_files)

    def page(self, number: int, size: int) -> list[Entry]:
        dirs, files = self.visible()
        start, end = number * size, (number + 1) * size
        out = dirs[start:end]
        if len(out) < size:
            out += files[max(0, start - len(dirs)):end - len(dirs)]
        return out


class _Row:
    """The widgets of one line of the view: a tick box (files), the name, the size, the time."""

    def __init__(self, widgets: Any, index: int, browser: Browser):
        self.entry: Entry | None = None
        self.check = widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="28px"))
        self.name = widgets.Button(layout=widgets.Layout(flex="1 1 auto", width="auto", min_width="8em"))
        self.name.add_class("cfd-name")
        self.size = widgets.HTML(layout=widgets.Layout(width="7em"))
        self.modified = widgets.HTML(layout=widgets.Layout(width="11.5em"))
        self.box = widgets.HBox([self.check, self.name, self.size, self.modified],
                                layout=widgets.Layout(display="none", width="100%"))
        self.name.on_click(lambda _: browser._clicked(index))
        self.check.observe(lambda change: browser._guarded(browser._ticked, index, change["new"]),
                           names="value")

    def show(self, entry: Entry | None, selected: bool, modified: str) -> None:
        self.entry = entry
        if entry is None:
            self.box.layout.display = "none"
            return
        self.box.layout.display = "flex"
        self.name.description = entry.name
        self.name.tooltip = entry.key
        self.name.icon = "folder" if entry.is_dir else "file-o"
        self.check.layout.visibility = "hidden" if entry.is_dir else "visible"
        self.check.value = selected
        self.size.value = f'<div class="cfd-right">{_preview.human_size(entry.size)}</div>'
        self.modified.value = f'<div class="cfd-right">{html.escape(modified)}</div>'


class Browser:
    """Browse a bucket or folder like a file manager, in a notebook.

    ``location``: a :class:`~cloudfiles_dask.CloudFiles` or a cloudpath (then ``options`` are
    the CloudFiles arguments, e.g. ``secrets=``); the browser's root, which the up button does
    not go above. ``prefix``: the folder shown first, relative to the root. ``page_size``:
    entries per page. ``preview_bytes``: the stored bytes read for a preview (a byte range:
    never the whole object; a compressed object's first bytes are decoded by streaming, at most
    ``preview_bytes`` of them shown); ``image_bytes``: the largest PNG/JPEG/GIF shown as an
    image. ``modified``: show modified times in the listing, read with one ``head`` per file of
    the shown page (listings give sizes, not times); the default does it on file:// and mem://
    only, where a head is a local lookup; elsewhere the time shows once a file is selected.

    Display it as the last value of a cell (or ``display(browser)``); the widgets are
    ``browser.widget``. The selection is ``browser.selected`` (keys, for the root's
    CloudFiles) and ``browser.selected_cloudpaths``; clicking a file's name selects only it,
    ticking its box adds it to the selection. The selected file's full cloudpath is in a text
    box, to copy.
    """

    def __init__(
        self,
        location: Any,
        *,
        prefix: str = "",
        page_size: int = PAGE_SIZE,
        preview_bytes: int = PREVIEW_BYTES,
        image_bytes: int = IMAGE_BYTES,
        modified: bool | None = None,
        **options: Any,
    ):
        for name, value in (("page_size", page_size), ("preview_bytes", preview_bytes),
                            ("image_bytes", image_bytes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if options and isinstance(location, _cloudfiles.CloudFiles):
            raise TypeError(f"CloudFiles options ({', '.join(options)}) go with a cloudpath, "
                            f"not with a CloudFiles")
        self.page_size = page_size
        self.preview_bytes = preview_bytes
        self.image_bytes = image_bytes
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._gen = 0  # the navigation counter: a background result of another is dropped
        self._preview_gen = 0
        self._busy = 0  # background threads running
        self._folder = _Folder("")
        self._listing_over = threading.Event()  # ends the current listing's redraws
        self._page = 0
        self._page_shown = False  # the current page has been shown filled (or the folder ended)
        self._error: str | None = None
        self._error_of_preview = False  # the error shown came from reading a file
        self._selected: dict[str, None] = {}
        self._mtimes: dict[str, datetime | None] = {}
        self._quiet = False  # set while the view itself changes its widgets' values
        self.preview: Preview | None = None
        self.metadata: dict | None = None
        self.previewed: str | None = None
        self.cloudfiles: Any = None
        self.modified = False
        self._build(ipywidgets("The browser"))
        try:
            cf = location if isinstance(location, _cloudfiles.CloudFiles) else _cloudfiles.CloudFiles(location, **options)
        except (CloudFilesError, ValueError, OSError) as e:
            self._folder.done = self._page_shown = True
            self._fail(f"Cannot open {location!r}", e)
            self._render()
            return
        self.cloudfiles = cf
        self.modified = cf.protocol in _LOCAL_PROTOCOLS if modified is None else bool(modified)
        self.root_label.value = f"<b>{html.escape(cf.cloudpath)}</b>"
        self.open(prefix)

    # -- widgets --------------------------------------------------------------------------------
    def _build(self, w: Any) -> None:
        self.up_button = w.Button(description="Up", icon="arrow-up", tooltip="The parent folder",
                                  layout=w.Layout(width="auto"))
        self.refresh_button = w.Button(description="", icon="refresh", tooltip="List again",
                                       layout=w.Layout(width="auto"))
        self.root_label = w.HTML()
        self.breadcrumb = w.HBox(layout=w.Layout(flex_flow="row wrap", align_items="center"))
        self.filter_box = w.Text(placeholder="filter: text, or a glob like *.json",
                                 continuous_update=True, layout=w.Layout(width="22em"))
        self.status = w.HTML()
        self.error = w.HTML(layout=w.Layout(display="none"))
        self.rows: list[_Row] = []  # made as a page needs them, up to page_size
        self.prev_button = w.Button(description="", icon="chevron-left", tooltip="Previous page",
                                    layout=w.Layout(width="auto"), disabled=True)
        self.next_button = w.Button(description="", icon="chevron-right", tooltip="Next page",
                                    layout=w.Layout(width="auto"), disabled=True)
        self.page_label = w.HTML()
        self.selection_label = w.HTML()
        self.path_box = w.Text(description="Path", placeholder="select a file",
                               layout=w.Layout(width="100%"))
        self.info = w.HTML()
        self.preview_box = w.VBox(layout=w.Layout(width="100%"))
        self.up_button.on_click(lambda _: self._guarded(self.up))
        self.refresh_button.on_click(lambda _: self._guarded(self.refresh))
        self.prev_button.on_click(lambda _: self._guarded(self.prev_page))
        self.next_button.on_click(lambda _: self._guarded(self.next_page))
        self.filter_box.observe(lambda change: self._guarded(self._filtered, change["new"]),
                                names="value")
        self._pager = w.HBox([self.prev_button, self.page_label, self.next_button,
                              self.selection_label], layout=w.Layout(align_items="center"))
        self.listing_box = listing = w.VBox([self._pager],
                                            layout=w.Layout(width="58%", min_width="24em"))
        preview = w.VBox([self.path_box, self.info, self.preview_box],
                         layout=w.Layout(width="42%", padding="0 0 0 1em"))
        self.widget = w.VBox([
            w.HTML(_STYLE),
            w.HBox([self.up_button, self.refresh_button, self.root_label, self.breadcrumb],
                   layout=w.Layout(align_items="center", flex_flow="row wrap")),
            w.HBox([self.filter_box, self.status], layout=w.Layout(align_items="center")),
            self.error,
            w.HBox([listing, preview], layout=w.Layout(width="100%")),
        ])
        self.widget.add_class("cfd-browser")
        self._widgets = w

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        where = self.cloudfiles.cloudpath if self.cloudfiles is not None else "(nothing)"
        with self._lock:
            folder = self._folder
            state = "listed" if folder.done else "listing"
            lines = [f"Browser({where!r}) at {folder.prefix or '/'!r}: {len(folder.dirs)} folders, "
                     f"{len(folder.files)} files {state}"]
            if self._error:
                lines.append(f"error: {self._error}")
            lines += [f"  {e.name}{'' if e.is_dir else '  ' + _preview.human_size(e.size)}"
                      for e in self.entries]
        return "\n".join(lines)

    # -- state, for Python --------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        """The folder shown, relative to the root ("" for the root, else ending in "/")."""
        return self._folder.prefix

    @property
    def page(self) -> int:
        """The page shown (from 0)."""
        return self._page

    @property
    def pages(self) -> int:
        """Pages of the entries listed so far (that pass the filter)."""
        return max(1, -(-self._folder.shown // self.page_size))

    @property
    def entries(self) -> list[Entry]:
        """The entries on the page shown."""
        with self._lock:
            return [row.entry for row in self.rows if row.entry is not None]

    @property
    def listed(self) -> list[Entry]:
        """Every entry of the folder listed so far (folders first), whatever the filter."""
        with self._lock:
            self._folder.visible()
            return self._folder.dirs + self._folder.files

    @property
    def listing_done(self) -> bool:
        """The folder shown has been listed to its end (or its listing failed)."""
        return self._folder.done

    @property
    def error_message(self) -> str | None:
        """The error shown, or None."""
        return self._error

    @property
    def filter(self) -> str:
        return self.filter_box.value

    @filter.setter
    def filter(self, pattern: str) -> None:
        self.filter_box.value = pattern

    @property
    def selected(self) -> list[str]:
        """The selected files' keys (relative to the root), in the order they were selected."""
        return list(self._selected)

    @property
    def selected_cloudpaths(self) -> list[str]:
        """The selected files' full cloudpaths."""
        return [self.cloudfiles.abspath(key) for key in self._selected]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the background work (listing, preview, times) is over; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._busy == 0, timeout)

    def wait_for_page(self, timeout: float | None = None) -> bool:
        """Wait until the page shown is filled (or the folder listed to its end, or failed);
        False on timeout. The listing may still go on."""
        with self._changed:
            return self._changed.wait_for(lambda: self._page_shown, timeout)

    def close(self) -> None:
        """Stop the background work (results still on their way are dropped) and close the
        widgets."""
        with self._lock:
            self._gen += 1
            self._preview_gen += 1
            self._listing_over.set()
        self.widget.close()
        for row in self.rows:
            for part in (row.check, row.name, row.size, row.modified, row.box):
                part.close()

    # -- actions (the buttons call these) -------------------------------------------------------------
    def open(self, prefix: str = "") -> None:
        """Show folder ``prefix`` (relative to the root) and list it in the background."""
        if self.cloudfiles is None:
            return
        prefix = prefix.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        with self._lock:
            self._gen += 1
            gen = self._gen
            self._listing_over.set()
            self._listing_over = over = threading.Event()
            self._folder = _Folder(prefix)
            self._page = 0
            self._page_shown = False
            self._set_error(None)
            self._quiet = True
            try:
                self.filter_box.value = ""
            finally:
                self._quiet = False
            self._show_path()
            self._render()
        self._start(self._list, gen, prefix, over)
        self._start(self._tick, gen, over)

    def up(self) -> None:
        """Show the parent folder (not above the root)."""
        prefix = self.prefix
        if prefix:
            self.open(prefix[:-1].rpartition("/")[0])

    def refresh(self) -> None:
        """List the folder shown again."""
        self.open(self.prefix)

    def next_page(self) -> None:
        with self._lock:
            if (self._page + 1) * self.page_size < self._folder.shown:
                self._page += 1
                self._page_shown = False
                self._render()

    def prev_page(self) -> None:
        with self._lock:
            if self._page > 0:
                self._page -= 1
                self._render()

    def select(self, key: str) -> None:
        """Select file ``key`` (relative to the root) alone, and show its metadata and preview."""
        with self._lock:
            self._selected = {key: None}
            self._render()
        self.show(key)

    def show(self, key: str) -> None:
        """Show file ``key``'s metadata and preview (read in the background)."""
        if self.cloudfiles is None:
            return
        with self._lock:
            self._preview_gen += 1
            gen = self._preview_gen
            self.previewed = key
            self.preview = self.metadata = None
            self.path_box.value = self.cloudfiles.abspath(key)
            self.info.value = "<i>reading…</i>"
            self.preview_box.children = ()
            if self._error_of_preview:
                self._set_error(None)
        self._start(self._read_preview, gen, key)

    # -- widget callbacks ---------------------------------------------------------------------------
    def _guarded(self, action: Callable[..., Any], *args: Any) -> None:
        """Run a button's action: an error goes to the error line, never to the notebook."""
        try:
            action(*args)
        except Exception as e:
            self._fail("Failed", e)

    def _clicked(self, index: int) -> None:
        entry = self.rows[index].entry
        if entry is None:
            return
        self._guarded(self.open if entry.is_dir else self.select, entry.key)

    def _ticked(self, index: int, value: bool) -> None:
        with self._lock:
            entry = self.rows[index].entry
            if self._quiet or entry is None or entry.is_dir:
                return  # the view's own change, not the user's
            if value:
                self._selected[entry.key] = None
            else:
                self._selected.pop(entry.key, None)
            self._render()
        if value:
            self.show(entry.key)

    def _filtered(self, pattern: str) -> None:
        with self._lock:
            if self._quiet:
                return
            self._folder.refilter(pattern)
            self._page = 0
            self._page_shown = self._folder.done
            self._render()

    # -- background work -----------------------------------------------------------------------------
    def _start(self, target: Callable[..., None], *args: Any) -> None:
        with self._lock:
            self._busy += 1

        def run() -> None:
            try:
                target(*args)
            except Exception as e:  # a bug of ours still shows, inside the widget
                self._fail("Failed", e)
            finally:
                with self._changed:
                    self._busy -= 1
                    self._changed.notify_all()

        threading.Thread(target=run, name=f"cfd-browser-{target.__name__}", daemon=True).start()

    def _list(self, gen: int, prefix: str, over: threading.Event) -> None:
        """List ``prefix`` flat, adding entries as they come; stop once another navigation
        began. The page shown is drawn as soon as it is filled, then by :meth:`_tick`."""
        try:
            self._list_entries(gen, prefix)
        finally:
            over.set()

    def _list_entries(self, gen: int, prefix: str) -> None:
        cf = self.cloudfiles
        listing = None
        try:
            listing = cf.list(prefix, flat=True, size=True)
            for key, size in listing:
                with self._lock:
                    if gen != self._gen:
                        listing.close()  # another folder is shown now
                        return
                    folder = self._folder
                    folder.add(key, size)
                    if not self._page_shown and folder.shown >= (self._page + 1) * self.page_size:
                        self._render()
        except Exception as e:
            with self._lock:
                if gen == self._gen:
                    self._folder.done = True
                    self._fail(f"Listing {cf.abspath(prefix) if prefix else cf.cloudpath} failed", e)
                    self._render()
            return
        with self._lock:
            if gen == self._gen:
                self._folder.done = True
                self._render()

    def _tick(self, gen: int, over: threading.Event) -> None:
        """While ``gen``'s listing runs, redraw what changed every :data:`REFRESH_SECONDS`."""
        drawn = -1
        while not over.wait(REFRESH_SECONDS):
            with self._lock:
                if gen != self._gen or self._folder.done:
                    return
                if self._folder.version != drawn:
                    drawn = self._folder.version
                    self._render()

    def _read_times(self, gen: int, keys: list[str]) -> None:
        """Modified times of the files shown, by one head each (on file:// and mem://)."""
        try:
            heads = self.cloudfiles.head(keys, progress=False)
        except Exception as e:
            with self._lock:
                if gen == self._gen:
                    self._fail("Reading modified times failed", e)
            return
        with self._lock:
            for key in keys:
                meta = heads.get(key)
                self._mtimes[key] = meta.get("Last-Modified") if meta else None
            if gen == self._gen:
                self._render()

    def _read_preview(self, gen: int, key: str) -> None:
        cf = self.cloudfiles
        try:
            meta = cf.head(key)
            if meta is None:
                raise FileNotFoundError(f"{cf.abspath(key)} does not exist (any more)")
            preview = self._make_preview(key, dict(meta))
        except Exception as e:
            with self._lock:
                if gen == self._preview_gen:
                    self.info.value = ""
                    self._fail(f"Reading {cf.abspath(key)} failed", e, preview=True)
            return
        with self._lock:
            if gen != self._preview_gen:
                return
            self.metadata = dict(meta)
            self.preview = preview
            self._mtimes[key] = meta.get("Last-Modified")
            self.info.value = _preview.metadata_html(self.metadata)
            self._show_preview(preview)
            self._render()

    def _make_preview(self, key: str, meta: dict) -> Preview:
        """Read the first bytes of ``key`` (one byte range) and make its preview."""
        name = key.rpartition("/")[2]
        size = meta.get("Content-Length")
        if size == 0:
            return _preview.make_preview(name, b"", True)
        kind, _ = _preview.declared_kind(name, meta.get("Content-Type"))
        want = self.preview_bytes
        if kind == "image" and isinstance(size, int) and size <= self.image_bytes:
            want = max(want, size)
        data, encoding = self._read(key, want)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            return _preview.make_preview(name, data, True)
        if (not encoding and _preview.image_format(bytes(data[:16])) and isinstance(size, int)
                and len(data) < size <= self.image_bytes):
            want = size
            data, encoding = self._read(key, want)  # an image found by its bytes: all of it
        # fewer bytes than asked for: the object ends there
        whole = len(data) < want or (isinstance(size, int) and len(data) >= size)
        return self._decoded_preview(key, name, meta, data, encoding, size, whole)

    def _decoded_preview(self, key: str, name: str, meta: dict, data: Any, encoding: str | None,
                         size: int | None, whole: bool) -> Preview:
        note = "" if whole else f"the first {_preview.human_size(len(data))} of {_preview.human_size(size) or 'the file'}"
        if encoding:
            limit = max(self.preview_bytes, self.image_bytes
                        if _preview.declared_kind(name, meta.get("Content-Type"))[0] == "image" else 0)
            decoded, complete = _preview.decode_prefix(bytes(data), encoding, limit, whole)
            if not decoded and not complete and not whole and len(data) < DECODE_WINDOW:
                data, _ = self._read(key, DECODE_WINDOW)  # no whole block yet: read further
                whole = len(data) < DECODE_WINDOW or (isinstance(size, int) and len(data) >= size)
                decoded, complete = _preview.decode_prefix(bytes(data), encoding, limit, whole)
            stored = "all" if whole else f"the first {_preview.human_size(len(data))}"
            note = (f"decoded from {encoding} ({stored} of {_preview.human_size(size) or '?'} "
                    f"stored); {'the whole file' if complete else 'the start'}")
            if not decoded and not complete:
                note += f": no complete {encoding} block in the bytes read"
            return _preview.make_preview(name, decoded, complete, meta.get("Content-Type"), note)
        return _preview.make_preview(name, data, whole, meta.get("Content-Type"), note)

    def _read(self, key: str, nbytes: int) -> tuple[Any, str | None]:
        """The first ``nbytes`` stored bytes of ``key`` (one ranged read) and their encoding."""
        result = self.cloudfiles.get([{"path": key, "start": 0, "end": nbytes}], raw=True,
                                     progress=False, parallel=1)[0]
        if result["content"] is None:
            raise FileNotFoundError(f"{self.cloudfiles.abspath(key)} does not exist (any more)")
        return result["content"], result["compress"] or None

    # -- drawing -------------------------------------------------------------------------------------
    def _render(self) -> None:
        """Draw the page shown, the page buttons and the status (under the lock)."""
        with self._lock:
            folder = self._folder
            total = folder.shown
            pages = max(1, -(-total // self.page_size))
            if folder.done and self._page >= pages:
                self._page = pages - 1
            entries = folder.page(self._page, self.page_size)
            if len(entries) > len(self.rows):
                self.rows += [_Row(self._widgets, i, self) for i in range(len(self.rows), len(entries))]
                self.listing_box.children = [row.box for row in self.rows] + [self._pager]
            self._quiet = True
            try:
                missing = []
                for row, entry in zip(self.rows, entries + [None] * (len(self.rows) - len(entries)), strict=True):
                    if entry is not None and not entry.is_dir:
                        if self.modified and entry.key not in self._mtimes:
                            missing.append(entry.key)
                        row.show(entry, entry.key in self._selected,
                                 _when(self._mtimes.get(entry.key)))
                    else:
                        row.show(entry, False, "")
            finally:
                self._quiet = False
            if missing:
                for key in missing:
                    self._mtimes[key] = None  # asked for once
                self._start(self._read_times, self._gen, missing)
            if len(entries) >= self.page_size or folder.done:
                self._page_shown = True
            more = "" if folder.done else "+"
            self.page_label.value = f"&nbsp;page {self._page + 1} of {pages}{more}&nbsp;"
            self.prev_button.disabled = self._page == 0
            self.next_button.disabled = (self._page + 1) * self.page_size >= total
            self.up_button.disabled = not folder.prefix
            if folder.match is not None:
                counts = f"{total:,} of {folder.count:,} match"
            else:
                counts = f"{len(folder.dirs):,} folders, {len(folder.files):,} files"
            if not folder.done:
                counts = f"listing… {counts} so far"
            elif self._error is None and not folder.count:
                counts = "empty: nothing under this folder"
            self.status.value = f"&nbsp;{counts}"
            chosen = len(self._selected)
            self.selection_label.value = f"&nbsp;&nbsp;{chosen} selected" if chosen else ""
            self._changed.notify_all()

    def _show_path(self) -> None:
        w = self._widgets
        parts = [part for part in self.prefix.split("/") if part]
        crumbs: list[Any] = []
        for depth, part in enumerate(parts):
            target = "/".join(parts[:depth + 1]) + "/"
            button = w.Button(description=part, tooltip=target, layout=w.Layout(width="auto"))
            button.on_click(lambda _, target=target: self._guarded(self.open, target))
            crumbs += [w.HTML("&nbsp;/&nbsp;"), button]
        root = w.Button(description="/", tooltip="The root", layout=w.Layout(width="auto"))
        root.on_click(lambda _: self._guarded(self.open, ""))
        self.breadcrumb.children = [root, *crumbs]

    def _show_preview(self, preview: Preview) -> None:
        w = self._widgets
        note = w.HTML(f"<i>{html.escape(preview.note)}</i>" if preview.note else "")
        if preview.kind == "image":
            body = w.Image(value=preview.image, format=preview.image_format,
                           layout=w.Layout(max_width="100%", object_fit="contain"))
        else:
            body = w.HTML(preview.html)
        self.preview_box.children = (note, body)

    def _set_error(self, message: str | None, preview: bool = False) -> None:
        self._error = message
        self._error_of_preview = preview
        self.error.value = "" if message is None else (
            f'<div style="color:#b00020;background:#fdecea;padding:4px 8px;border-radius:4px">'
            f"{html.escape(message)}</div>")
        self.error.layout.display = "none" if message is None else "block"

    def _fail(self, what: str, error: BaseException, preview: bool = False) -> None:
        """Show ``error`` in the error line."""
        with self._lock:
            self._set_error(f"{what}: {_describe(error)}", preview)
            self._changed.notify_all()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error) or repr(error)}"


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M")
    return "—" if value is None else str(value)
