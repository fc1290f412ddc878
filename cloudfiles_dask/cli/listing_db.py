"""``cloudfiles ls --sqlite FILE``: a resumable listing of a bucket into sqlite.

Schema::

    files      (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT UNIQUE NOT NULL, size INTEGER)
    checkpoint (id = 1, page_token TEXT, rows_done INTEGER, updated_at REAL)   -- one row
    metadata   (id INTEGER PRIMARY KEY, name TEXT UNIQUE, value TEXT)          -- id 1: cloudpath

``path`` is relative to the listed directory, so two listings (say a bucket and its copy) can
be compared with ``ATTACH`` and ``EXCEPT``. Rows arrive in batches of 5000; each batch and its
checkpoint update are one transaction, so an interrupted listing loses at most one batch.

Resuming: where the backend's listing gives page tokens (``CloudFiles.list(...,
return_resume_token=True, resume_token=...)``) a rerun continues from the saved token. Backends
without tokens (file://, mem://, https today) start over; rows already present are updated in
place (``path`` is unique), never duplicated. A database made for another cloudpath is refused.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ._common import CLIError, cloudfiles, make_bar

BATCH = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    size INTEGER
);
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    page_token TEXT,
    rows_done INTEGER NOT NULL DEFAULT 0,
    updated_at REAL
);
CREATE TABLE IF NOT EXISTS metadata (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    value TEXT
);
"""


def _connect(db_path: str) -> Any:
    import sqlite3

    try:
        conn = sqlite3.connect(db_path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-131072")  # 128 MiB
        conn.executescript(_SCHEMA)
    except sqlite3.DatabaseError as e:
        raise CLIError(f"{db_path} is not a usable sqlite listing database: {e}") from None
    return conn


def _claim(conn: Any, db_path: str, cloudpath: str) -> None:
    row = conn.execute("SELECT value FROM metadata WHERE name = 'cloudpath'").fetchone()
    if row is None:
        conn.execute("INSERT INTO metadata (id, name, value) VALUES (1, 'cloudpath', ?)", (cloudpath,))
    elif row[0] != cloudpath:
        raise CLIError(
            f"{db_path} holds a listing of {row[0]}, not {cloudpath}; "
            f"use another file (or delete this one) to list {cloudpath}"
        )


def list_into_sqlite(db_path: str, cloudpath: str, root: str, prefix: str, flat: bool, suffix: str,
                     progress: bool, cf_kwargs: dict[str, Any]) -> tuple[int, int]:
    """Fill ``db_path`` with the listing; returns (files in the DB, their total size)."""
    db_path = os.path.abspath(db_path)
    conn = _connect(db_path)
    try:
        _claim(conn, db_path, cloudpath)
        cf = cloudfiles(root, **cf_kwargs)
        saved = conn.execute("SELECT page_token, rows_done FROM checkpoint WHERE id = 1").fetchone()
        token = saved[0] if saved and not flat else None
        rows_done = saved[1] if saved and token else 0
        conn.execute(
            "INSERT INTO checkpoint (id, page_token, rows_done, updated_at) VALUES (1, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET page_token = excluded.page_token, rows_done = excluded.rows_done, "
            "updated_at = excluded.updated_at",
            (token, rows_done, time.time()),
        )
        with make_bar(progress, None, "Listing") as bar:
            batch: list[tuple[str, int | None]] = []
            last_token = token

            def flush() -> None:
                nonlocal rows_done
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO files (path, size) VALUES (?, ?) "
                    "ON CONFLICT(path) DO UPDATE SET size = excluded.size",
                    batch,
                )
                rows_done += len(batch)
                conn.execute(
                    "UPDATE checkpoint SET page_token = ?, rows_done = ?, updated_at = ? WHERE id = 1",
                    (last_token, rows_done, time.time()),
                )
                conn.execute("COMMIT")
                bar.advance(len(batch))
                batch.clear()

            entries = cf.list(prefix=prefix, flat=flat, size=True, return_resume_token=True, resume_token=token)
            for key, size, page_token in entries:
                if suffix and not key.endswith(suffix):
                    continue
                batch.append((key, size))
                last_token = page_token
                if len(batch) >= BATCH:
                    flush()
            last_token = None  # complete: a rerun starts from the beginning
            flush()
        count, nbytes = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files").fetchone()
        return int(count), int(nbytes)
    finally:
        conn.close()
