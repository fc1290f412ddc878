"""What the browser shows of a file: the first bytes of an object turned into a preview (text,
JSON, a CSV table, an image or a hex dump), and the bounded decoding of a compressed prefix.

No widgets here: a :class:`Preview` is plain data (HTML, or image bytes), which the browser puts
into its widgets.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import html
import json
import lzma
import posixpath
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Rows and columns of a CSV preview table.
CSV_ROWS = 20
CSV_COLUMNS = 20
#: Bytes shown by a hex dump (16 a line).
HEX_BYTES = 1024
#: Characters of a Python object's repr shown (mem:// stores objects as they are).
REPR_CHARS = 4000

_COMPRESSION_SUFFIXES = {".gz": "gzip", ".br": "br", ".zst": "zstd", ".xz": "xz", ".bz2": "bz2"}
_EXTENSIONS = {
    ".json": "json", ".geojson": "json", ".ipynb": "json", ".jsonl": "text", ".ndjson": "text",
    ".csv": "csv", ".tsv": "tsv",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".gif": "image",
}
_TEXT_EXTENSIONS = {
    ".txt", ".md", ".rst", ".log", ".py", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf",
    ".xml", ".html", ".htm", ".css", ".js", ".ts", ".sh", ".c", ".h", ".cpp", ".hpp", ".java",
    ".go", ".rs", ".r", ".sql", ".tex", ".svg", ".env",
}
_CONTENT_TYPES = {
    "application/json": "json", "text/csv": "csv", "text/tab-separated-values": "tsv",
    "image/png": "image", "image/jpeg": "image", "image/gif": "image",
}
_PRE = ('<pre style="max-height:28em;overflow:auto;margin:0;white-space:pre-wrap;'
        'word-break:break-all;font-size:12px">{}</pre>')


@dataclass
class Preview:
    """A file's preview.

    ``kind``: ``"text"``, ``"json"``, ``"csv"``, ``"image"``, ``"hex"``, ``"empty"`` or
    ``"object"`` (a Python object stored on mem://). ``html``: what to show (for every kind but
    an image shown as one); ``image``/``image_format``: the bytes and ``png``/``jpeg``/``gif``
    of an image small enough to show; ``note``: a line about what is shown (how much of the
    file, decoded from what); ``text``: the decoded text of text-like kinds.
    """

    kind: str
    html: str = ""
    note: str = ""
    image: bytes | None = None
    image_format: str | None = None
    text: str | None = None


def declared_kind(name: str, content_type: str | None) -> tuple[str | None, str | None]:
    """``(kind, encoding)`` as the name (its extension, under a compression suffix) or else the
    Content-Type says; ``(None, suffix encoding)`` when neither says."""
    base, ext = posixpath.splitext(name.lower())
    encoding = _COMPRESSION_SUFFIXES.get(ext)
    if encoding:
        ext = posixpath.splitext(base)[1]
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext], encoding
    if ext in _TEXT_EXTENSIONS:
        return "text", encoding
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in _CONTENT_TYPES:
        return _CONTENT_TYPES[ctype], encoding
    if ctype.startswith("text/") or ctype.endswith("+json") or ctype.endswith("+xml"):
        return ("json" if ctype.endswith("+json") else "text"), encoding
    return None, encoding


def image_format(data: bytes) -> str | None:
    """``png``, ``jpeg`` or ``gif`` from the first bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    return None


def image_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """``(width, height)`` read from an image's header, when the bytes hold it."""
    if fmt == "png" and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if fmt == "gif" and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if fmt == "jpeg":
        at = 2
        while at + 4 <= len(data) and data[at] == 0xFF:
            marker = data[at + 1]
            if marker == 0xFF:  # fill byte
                at += 1
                continue
            if marker in (0x01, *range(0xD0, 0xDA)):  # markers without a length
                at += 2
                continue
            length = int.from_bytes(data[at + 2:at + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
                if at + 9 > len(data):
                    return None
                return (int.from_bytes(data[at + 7:at + 9], "big"),
                        int.from_bytes(data[at + 5:at + 7], "big"))
            at += 2 + length
    return None


# -- decoding a compressed prefix ------------------------------------------------------------------
def decode_prefix(data: bytes, encoding: str, limit: int, whole: bool) -> tuple[bytes, bool]:
    """At most ``limit`` decoded bytes of the stored bytes ``data`` (the start of an object
    stored with ``encoding``; ``whole``: they are all of it), by streaming decompression that
    stops at ``limit``, so neither a truncated stream nor a huge expansion is a problem.
    Returns ``(decoded, complete)``: complete when the decoded bytes are the whole content.
    A stream damaged inside the bytes read raises ValueError."""
    step = _DECODERS.get(encoding)
    if step is None:
        raise ValueError(f"no decoder for {encoding!r}")
    try:
        out, ended = step(data, limit)
    except (zlib.error, lzma.LZMAError, OSError, EOFError, _CodecError) as e:
        raise ValueError(f"the {encoding} stream cannot be decoded: {e}") from e
    return out[:limit], ended and whole


class _CodecError(Exception):
    """A brotli or zstandard error (their own types), raised again as this."""


def _gzip(data: bytes, limit: int) -> tuple[bytes, bool]:
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
    out = decoder.decompress(data, limit)
    return out, decoder.eof and not decoder.unused_data  # not a first member of several


def _xz(data: bytes, limit: int) -> tuple[bytes, bool]:
    decoder = lzma.LZMADecompressor()
    out = decoder.decompress(data, max_length=limit)
    return out, decoder.eof and not decoder.unused_data


def _bz2(data: bytes, limit: int) -> tuple[bytes, bool]:
    decoder = bz2.BZ2Decompressor()
    out = decoder.decompress(data, max_length=limit)
    return out, decoder.eof and not decoder.unused_data


def _brotli(data: bytes, limit: int) -> tuple[bytes, bool]:
    import brotli

    decoder = brotli.Decompressor()
    pieces: list[bytes] = []
    total = 0
    for at in range(0, len(data), 1024):  # small steps: one step cannot expand without bound
        chunk = data[at:at + 1024]
        try:
            try:
                piece = decoder.process(chunk, output_buffer_limit=limit - total)
            except TypeError:  # brotli < 1.2 has no output limit
                piece = decoder.process(chunk)
        except brotli.error as e:
            raise _CodecError(str(e)) from e
        pieces.append(piece)
        total += len(piece)
        if total >= limit:
            return b"".join(pieces), False
    return b"".join(pieces), decoder.is_finished()


def _zstd(data: bytes, limit: int) -> tuple[bytes, bool]:
    import io

    import zstandard

    pieces: list[bytes] = []
    total = 0
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    while total < limit:
        try:
            piece = reader.read(min(65536, limit - total))
        except zstandard.ZstdError as e:
            if not pieces:
                raise _CodecError(str(e)) from e
            return b"".join(pieces), False  # the stored bytes end inside a frame
        if not piece:
            return b"".join(pieces), True
        pieces.append(piece)
        total += len(piece)
    return b"".join(pieces), False


_DECODERS: dict[str, Callable[[bytes, int], tuple[bytes, bool]]] = {
    "gzip": _gzip, "br": _brotli, "zstd": _zstd, "xz": _xz, "bz2": _bz2,
}


# -- previews ---------------------------------------------------------------------------------
def make_preview(name: str, data: Any, complete: bool, content_type: str | None = None,
                 note: str = "") -> Preview:
    """The preview of file ``name`` from its first (decoded) bytes ``data``; ``complete``: they
    are the whole file. ``note`` says how they were read."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        text = repr(data)
        shown = text[:REPR_CHARS] + ("…" if len(text) > REPR_CHARS else "")
        return Preview("object", _PRE.format(html.escape(shown)),
                       _join(note, f"a Python object ({type(data).__name__})"), text=shown)
    data = bytes(data)
    if not data:
        return Preview("empty", "<i>(empty file)</i>", note)
    fmt = image_format(data)
    if fmt is not None:
        if complete:
            return Preview("image", "", note, image=data, image_format=fmt)
        size = image_size(data, fmt)
        shape = f"{size[0]} × {size[1]} " if size else ""
        return Preview("hex", hex_dump(data),
                       _join(note, f"a {shape}{fmt.upper()} image too large to show"))
    kind, _ = declared_kind(name, content_type)
    text = _as_text(data, complete)
    if text is None:
        return Preview("hex", hex_dump(data), _join(note, "binary" if kind in (None, "image")
                                                    else f"not UTF-8 text ({kind} expected)"))
    if kind == "json" or (kind is None and complete and text.lstrip()[:1] in ("{", "[")):
        shown = pretty_json(text, complete)
        if shown is not None:
            return Preview("json", _PRE.format(html.escape(shown)), note, text=shown)
    if kind in ("csv", "tsv"):
        return Preview("csv", csv_table(text, complete, "\t" if kind == "tsv" else ","), note,
                       text=text)
    return Preview("text", _PRE.format(html.escape(text) + ("" if complete else "\n…")), note,
                   text=text)


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def _as_text(data: bytes, complete: bool) -> str | None:
    """The bytes as UTF-8 text (a character cut at the end is dropped), None if they are not."""
    if b"\x00" in data:
        return None
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        return decoder.decode(data, final=complete)
    except UnicodeDecodeError:
        return None


def pretty_json(text: str, complete: bool) -> str | None:
    """Indented JSON: parsed and dumped when whole; the start of a document re-indented token by
    token when cut (None when whole but not JSON)."""
    if complete:
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return None
    return reindent_json(text) + "\n…"


def reindent_json(text: str, indent: int = 2) -> str:
    """Re-indent (the start of) a JSON document without parsing it: it works on a prefix."""
    out: list[str] = []
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch in " \t\r\n":
            continue
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch in "{[":
            depth += 1
            out.append(ch + "\n" + " " * (indent * depth))
        elif ch in "}]":
            depth = max(0, depth - 1)
            out.append("\n" + " " * (indent * depth) + ch)
        elif ch == ",":
            out.append(",\n" + " " * (indent * depth))
        elif ch == ":":
            out.append(": ")
        else:
            out.append(ch)
    return "".join(out)


def csv_table(text: str, complete: bool, delimiter: str = ",") -> str:
    """The first :data:`CSV_ROWS` rows (first :data:`CSV_COLUMNS` columns) as an HTML table,
    the first row as its header; a line cut at the end of a partial read is left out."""
    lines = text.splitlines()
    if not complete and lines and not text.endswith(("\n", "\r")):
        lines.pop()
    rows: list[list[str]] = []
    more_rows = False
    for row in csv.reader(lines, delimiter=delimiter):
        if len(rows) > CSV_ROWS:
            more_rows = True
            break
        rows.append(row)
    if not rows:
        return "<i>(no complete line in the bytes read)</i>"
    wide = any(len(row) > CSV_COLUMNS for row in rows)
    cell = 'style="border:1px solid #ddd;padding:2px 6px;text-align:left"'

    def line(row: list[str], tag: str) -> str:
        cells = "".join(f"<{tag} {cell}>{html.escape(value)}</{tag}>" for value in row[:CSV_COLUMNS])
        return f"<tr>{cells}{f'<{tag} {cell}>…</{tag}>' if len(row) > CSV_COLUMNS else ''}</tr>"

    body = "".join(line(row, "td") for row in rows[1:])
    footer = ""
    if more_rows or not complete or wide:
        footer = "<div><i>the first rows and columns only</i></div>"
    return (f'<div style="max-height:28em;overflow:auto"><table style="border-collapse:collapse;'
            f'font-size:12px"><thead>{line(rows[0], "th")}</thead><tbody>{body}</tbody>'
            f"</table></div>{footer}")


def hex_dump(data: bytes, limit: int = HEX_BYTES) -> str:
    """``offset  hex bytes  |ascii|`` lines of the first ``limit`` bytes, as HTML."""
    lines = []
    for at in range(0, min(len(data), limit), 16):
        chunk = data[at:at + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk[:8]) + "  " + " ".join(f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{at:08x}  {hexes:<48}  |{text}|")
    if len(data) > limit:
        lines.append("…")
    return _PRE.format(html.escape("\n".join(lines)))


# -- metadata -----------------------------------------------------------------------------------
def metadata_html(meta: dict) -> str:
    """A two-column table of a ``head`` answer's known values."""
    rows = []
    for name, value in meta.items():
        if value is None or value == "":
            continue
        if isinstance(value, datetime):
            value = value.isoformat(sep=" ", timespec="seconds")
        elif name == "Content-Length" and isinstance(value, int):
            value = f"{value:,} ({human_size(value)})"
        rows.append(f'<tr><td style="padding:0 8px 0 0;color:#666">{html.escape(str(name))}</td>'
                    f"<td>{html.escape(str(value))}</td></tr>")
    return f'<table style="font-size:12px">{"".join(rows)}</table>'


def human_size(nbytes: int | None) -> str:
    """``1.5 KiB``; empty for None."""
    if nbytes is None:
        return ""
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{nbytes} B"
