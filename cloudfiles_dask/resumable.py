"""Resumable, multi-client transfers driven by a sqlite ledger.

A *ledger* is one sqlite file describing one transfer job: a source cloudpath, a destination
cloudpath, what to do with the stored encoding, and one row per file. Any number of processes
on one machine can drain the same ledger with :meth:`ResumableTransfer.execute`; each one
*leases* blocks of rows, transfers them, and marks them done. A client killed at any moment
(even with SIGKILL) loses nothing: a row is marked done only after its transfer returned,
transfers are idempotent (re-copying a file gives the same file; file:// writes are atomic
renames), and a lease simply expires.

Limits, plainly: the ledger uses sqlite's WAL journal, which needs every client on the same host
with the file on a local filesystem (not NFS/SMB). Leases use the wall clock (epoch ms). Writes
to the ledger are serialised: each block costs two short write transactions, so blocks of a few
hundred files keep the ledger far from being the bottleneck. A transfer killed mid-file may leave
a hidden ``.cfdask-tmp-<host>-<pid>-...`` file in a file:// destination (never a partial file
under the real name), an S3 upload or GCS parts; the run that resumes the job removes, before
it returns, those of the keys its ledger handed out more than once and the temp files of dead
processes of its machine in the directories it writes into (see :meth:`execute`), and
``CloudFiles.sweep`` / ``cloudfiles sweep`` find any others.

    >>> rt = ResumableTransfer("job.db", lease_msec=30_000)   # doctest: +SKIP
    >>> rt.init("gs://bucket/src", "file:///data/dest", reencode="gzip")
    >>> rt.execute(progress=True)        # run this in as many processes as you like
    >>> rt.status()["remaining"]
    0
    >>> rt.close()                       # as the original: the finished job's ledger is deleted

Ledger schema (format version 1)::

    xfermeta  one row (id = 1): source TEXT, dest TEXT, encoding TEXT ('keep' | 'decode' | a
              codec name), created INTEGER (epoch ms), version INTEGER (= 1)
    filelist  one row per file: id INTEGER PRIMARY KEY AUTOINCREMENT, src TEXT, dest TEXT UNIQUE,
              done INTEGER (0/1), lease INTEGER (epoch ms until which the row is leased; 0 = free),
              attempts INTEGER (how many times the row was handed to a client)
              + index filelist_free ON (done, lease)
    stats     key TEXT PRIMARY KEY, value INTEGER: 'total' rows and 'finished' rows, kept in the
              same transactions as the rows they count, so counts never need COUNT(*).

Ledgers written by the original ``cloud-files`` (its layout: ``xfermeta(id, source, dest,
reencode, created)``, ``filelist(id, filename, finished, lease)``, ``stats(id, key, value)``) are
detected when opened and migrated once, in place, into the layout above, in one transaction: a
crash midway leaves the original ledger exactly as it was (still in its rollback journal mode), and
the next open migrates it again. Each distinct ``filename`` becomes one row with ``src = dest =
filename``, done if any of its rows was finished; leases are dropped (the original's lease clock
is not ours); the original's ``reencode`` (NULL, ``'0'`` for False, ``'1'`` for True, or a codec
name) becomes our encoding label. Stop the original's clients first: after the migration they can
no longer read the ledger.

Differences from the original ``cloudfiles.resumable_tools`` (deliberate):

- :meth:`ResumableTransfer.close` deletes the ledger only once every file is done; while files
  remain it keeps it and warns (``UserWarning`` naming how many). The original deleted it
  unconditionally (also at the end of the CLI's ``xfer execute``), breaking other clients still
  working and losing the job. Leaving a ``with ResumableTransfer(...)`` block only closes the
  connection. :meth:`ResumableFileSet.delete` and :meth:`ResumableTransfer.cleanup` delete the
  file, refused while files are unfinished unless ``force=True``.
- ``init`` is atomic: the rows are staged in a private temporary table and published, together
  with the job description, in one transaction. A client killed during ``init`` leaves the
  ledger exactly as it was before (no job, or the previous rows), so running ``init`` again is
  always the fix; there is no half-written state to detect.
- ``init`` (and ``ResumableFileSet.create``) on a ledger holding a different job refuses instead
  of wiping it; on the same job it adds the new paths (a destination key already present is
  never added twice).
- Rows carry a destination key, so renames (``(src, dest)`` pairs, ``{"path", "dest_path"}``
  dicts) survive resumption. :meth:`ResumableFileSet.next` (and iterating a ResumableFileSet)
  yields the key string for a file stored under its own name, as the original does, and the
  ``(src, dest)`` pair for a renamed one; both are accepted by ``mark_finished``.
- With ``lease_msec == 0``, :meth:`ResumableFileSet.next` walks the unfinished rows once (the
  original handed the same unfinished rows out again and again); with a ``limit`` it yields at
  most ``limit`` files (the original finished its last block).
- With ``lease_msec > 0``, ``execute`` does not return while rows leased by other clients (live,
  or killed with an unexpired lease) are unfinished: it waits for them, so "execute returned"
  means "the job is complete".
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

from ._engine import ops
from ._engine.jobs import TransferOptions, transfer_pairs
from .cloudfiles import CloudFiles
from .compression import normalize_encoding
from .dask import cluster
from .exceptions import LedgerError
from .progress import make_progress

if TYPE_CHECKING:
    import sqlite3

__all__ = ["LedgerError", "ResumableFileSet", "ResumableTransfer"]

LEDGER_VERSION = 1
MAX_PARAMS = 999  # sqlite's historical SQLITE_MAX_VARIABLE_NUMBER: stay under it everywhere
BUSY_TIMEOUT_SEC = 60.0  # a large init holds the write lock for seconds; wait, do not fail
_STAGE_BATCH = 10_000
_KEEP, _DECODE = "keep", "decode"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS xfermeta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        source TEXT NOT NULL,
        dest TEXT NOT NULL,
        encoding TEXT NOT NULL,
        created INTEGER NOT NULL,
        version INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS filelist (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        src TEXT NOT NULL,
        dest TEXT NOT NULL UNIQUE,
        done INTEGER NOT NULL DEFAULT 0,
        lease INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS filelist_free ON filelist (done, lease)",
    """CREATE TABLE IF NOT EXISTS stats (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "INSERT OR IGNORE INTO stats (key, value) VALUES ('total', 0), ('finished', 0)",
)
_TABLES = {"xfermeta", "filelist", "stats"}
# The original cloud-files' ledger tables are renamed to this prefix inside the migrating
# transaction, then dropped in the same transaction (never visible outside it).
_MIGRATING = "cfdask_migrating_"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _chunks(items: list[Any], size: int = MAX_PARAMS) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def encoding_label(reencode: Any) -> str:
    """The ledger's text for a ``reencode`` argument: 'keep' (None), 'decode' (False, '',
    'none', 'identity') or the canonical codec name ('gzip', 'br', 'zstd', 'xz', 'bz2')."""
    if reencode is None or reencode == _KEEP:
        return _KEEP
    if reencode is False or (isinstance(reencode, str) and reencode.lower() in ("", "none", _DECODE)):
        return _DECODE
    codec = normalize_encoding(reencode)
    return _DECODE if codec is None else codec


def reencode_value(label: str) -> Any:
    """The ``transfer_to(reencode=...)`` argument for a ledger encoding label."""
    if label == _KEEP:
        return None
    if label == _DECODE:
        return False
    return label


def _cloudpath(value: Any, what: str) -> str:
    if isinstance(value, CloudFiles):
        return value.cloudpath
    if isinstance(value, str):
        return CloudFiles(value).cloudpath
    raise TypeError(f"{what} must be a cloudpath string or a CloudFiles, got {type(value).__name__}")


def _pairs(items: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """Validate ``str`` / ``(src, dest)`` / ``{"path", "dest_path"}`` items into key pairs."""
    for src, dest in transfer_pairs(items):
        if not isinstance(src, str) or not isinstance(dest, str) or not src or not dest:
            raise TypeError(f"Transfer keys must be non-empty strings; got {(src, dest)!r}")
        yield src, dest


def _table_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _is_original_layout(conn: sqlite3.Connection) -> bool:
    """True for a ledger written by the original cloud-files: its ``xfermeta`` has a
    ``reencode`` column and no ``version`` (ours has ``encoding`` and ``version``)."""
    columns = _table_columns(conn, "xfermeta")
    return "reencode" in columns and "version" not in columns


def _original_encoding(value: Any) -> str:
    """Our encoding label for the original's ``xfermeta.reencode``. That column has TEXT
    affinity: None stays NULL (keep), False is stored as '0' (decode), True as '1' (gzip, as
    the original's compressor reads True); anything else is a codec name."""
    if value is None:
        return _KEEP
    text = str(value).strip().lower()
    if text in ("0", "false"):
        return _DECODE
    if text in ("1", "true"):
        return "gzip"
    return encoding_label(text)


def _file_ident(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class ResumableFileSet:
    """The ledger of one resumable transfer: a job description and one row per file.

    ``lease_msec`` is how long a block handed out by :meth:`next` stays reserved for the client
    that took it. With ``lease_msec=0`` leases are not used at all: :meth:`next` walks every
    unfinished row once, so two clients would do the same work (fine for one client that may be
    interrupted and rerun). With ``lease_msec > 0`` every row handed out is reserved inside a
    ``BEGIN IMMEDIATE`` transaction, so concurrent clients never receive the same row while its
    lease runs; a row whose lease expired (its client died or is too slow) is handed out again.

    The sqlite connection is opened on first use (WAL journal, a busy timeout so that concurrent
    writers wait for each other) and re-opened after a fork. Cost: counts (:meth:`total`,
    :meth:`finished`, :meth:`remaining`) read one stats row; :meth:`num_leased` and
    :meth:`available` scan only the rows currently leased; nothing scans the whole table.
    """

    def __init__(self, db_path: str | os.PathLike[str], lease_msec: int = 0):
        if not isinstance(lease_msec, int) or isinstance(lease_msec, bool) or lease_msec < 0:
            raise ValueError(f"lease_msec must be an int >= 0, got {lease_msec!r}")
        self.db_path = os.fspath(db_path)
        self.lease_msec = lease_msec
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._checked = False
        self._ident: tuple[int, int] | None = None  # (device, inode) of the file connected to
        # One connection per process, shared by this object's threads one operation at a time.
        self._lock = threading.RLock()
        self._in_txn = False  # a transaction of ours is open on the connection (see _connect)

    def __repr__(self) -> str:
        return f"ResumableFileSet({self.db_path!r}, lease_msec={self.lease_msec})"

    # Pickles by path (a connection cannot cross processes), so it can be sent to Dask workers.
    def __getstate__(self) -> dict[str, Any]:
        return {"db_path": self.db_path, "lease_msec": self.lease_msec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["db_path"], state["lease_msec"])  # type: ignore[misc]

    # -- connection --------------------------------------------------------------------------------
    def _connect(self, create: bool = False) -> sqlite3.Connection:
        import sqlite3

        if self._conn is not None and self._pid == os.getpid():
            if self._conn.in_transaction and not self._in_txn:
                # a transaction an interrupt (a Ctrl-C between two statements) left open: undo
                # it before anything else runs on this connection (SQLite has no nested ones)
                self._conn.execute("ROLLBACK")
            return self._conn
        if self._conn is not None:  # inherited through fork: never use the parent's handle
            self._conn = None
            self._checked = False
        if not os.path.exists(self.db_path):
            if not create:
                raise LedgerError(
                    f"No ResumableTransfer ledger at {self.db_path} (run init first)."
                )
            parent = os.path.dirname(os.path.abspath(self.db_path))
            os.makedirs(parent, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self.db_path, timeout=BUSY_TIMEOUT_SEC, isolation_level=None, check_same_thread=False
            )
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"not a ResumableTransfer ledger: {self.db_path} ({e})") from e
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SEC * 1000)}")
            # Before WAL: an original ledger is migrated in its own (rollback) journal mode, so
            # that a crash midway leaves that file exactly as the original left it.
            if _is_original_layout(conn):
                self._migrate_original(conn)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(
                    f"Could not put the ledger {self.db_path} in WAL mode (got {mode!r}); "
                    f"it must live on a local filesystem."
                )
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException as e:
            conn.close()
            if isinstance(e, sqlite3.DatabaseError):
                raise LedgerError(f"not a ResumableTransfer ledger: {self.db_path} ({e})") from e
            raise
        self._conn = conn
        self._pid = os.getpid()
        self._ident = _file_ident(self.db_path)
        return conn

    # -- migrating a ledger of the original cloud-files ----------------------------------------------
    def _migrate_original(self, conn: sqlite3.Connection) -> None:
        """Rewrite an original cloud-files ledger into format version 1, in one transaction."""
        import sqlite3

        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if _is_original_layout(conn):  # not already done by a client that got here first
                    self._migrate_original_locked(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise LedgerError(
                f"Could not migrate {self.db_path}, a ledger of the original cloud-files ({e}); "
                f"it was left as it was."
            ) from e

    def _migrate_original_locked(self, conn: sqlite3.Connection) -> None:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        row = None
        if "filelist" in names and {"filename", "finished"} <= _table_columns(conn, "filelist"):
            row = conn.execute("SELECT source, dest, reencode, created FROM xfermeta ORDER BY id LIMIT 1").fetchone()
        if row is None:
            raise LedgerError(
                f"{self.db_path} is a ledger of the original cloud-files whose init never completed: "
                f"it holds no job to resume (left as it was). Delete it and run init again."
            )
        source, dest, reencode, created = row
        try:
            encoding = _original_encoding(reencode)
            source, dest = _cloudpath(source, "source"), _cloudpath(dest, "dest")
        except Exception as e:
            raise LedgerError(
                f"Cannot migrate {self.db_path}, a ledger of the original cloud-files: its job "
                f"({source!r} -> {dest!r}, reencode {reencode!r}) is not understood: {e}. It was "
                f"left as it was."
            ) from e
        for table in sorted(names & _TABLES):
            conn.execute(f"ALTER TABLE {table} RENAME TO {_MIGRATING}{table}")
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO xfermeta (id, source, dest, encoding, created, version) VALUES (1, ?, ?, ?, ?, ?)",
            (source, dest, encoding, int(created) if created is not None else _now_ms(), LEDGER_VERSION),
        )
        self._copy_original_rows(conn)
        for table in sorted(names & _TABLES):
            conn.execute(f"DROP TABLE {_MIGRATING}{table}")

    def _copy_original_rows(self, conn: sqlite3.Connection) -> None:
        """Inside the migrating transaction: one row per distinct original filename (in the order
        first inserted), done if any of its rows was finished, and the stats that count them."""
        conn.execute(
            "INSERT INTO filelist (src, dest, done) "
            f"SELECT filename, filename, MAX(finished <> 0) FROM {_MIGRATING}filelist "
            "GROUP BY filename ORDER BY MIN(id)"
        )
        total, done = conn.execute("SELECT COUNT(*), COALESCE(SUM(done), 0) FROM filelist").fetchone()
        conn.execute("UPDATE stats SET value = ? WHERE key = 'total'", (total,))
        conn.execute("UPDATE stats SET value = ? WHERE key = 'finished'", (done,))

    def _db(self) -> sqlite3.Connection:
        """The connection to an existing ledger, checked to hold the ledger tables."""
        with self._lock:
            conn = self._connect()
            if not self._checked:
                self._check_tables(conn)
                self._checked = True
            return conn

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        with self._lock:
            return self._db().execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db().execute(sql, params).fetchall()

    def _check_tables(self, conn: sqlite3.Connection) -> None:
        import sqlite3

        try:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not _TABLES <= names:
                raise LedgerError(f"not a ResumableTransfer ledger: {self.db_path}")
            columns = {row[1] for row in conn.execute("PRAGMA table_info(xfermeta)")}
        except sqlite3.DatabaseError as e:
            raise LedgerError(f"not a ResumableTransfer ledger: {self.db_path} ({e})") from e
        if "version" not in columns:  # an original ledger is migrated on connect; not this one
            raise LedgerError(f"not a ResumableTransfer ledger: {self.db_path} (xfermeta has no version)")

    @contextlib.contextmanager
    def _write(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (BEGIN IMMEDIATE) so that read-then-write
        sequences such as leasing are atomic with respect to every other client."""
        with self._lock:
            conn = conn or self._db()
            self._in_txn = True
            try:
                # one try from BEGIN on: an interrupt landing as BEGIN returns still rolls back,
                # so the write lock is never kept past this call
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._in_txn = False

    def close(self) -> None:
        """Close this process's connection (the ledger file stays)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._checked = False

    def __enter__(self) -> ResumableFileSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the job -----------------------------------------------------------------------------------
    def create(self, src: Any, dest: Any, reencode: Any = None) -> None:
        """Create the ledger tables and record the job (source, destination, encoding).

        Idempotent for the same job; refuses (LedgerError) if the ledger holds a different one.
        """
        self._publish(_cloudpath(src, "src"), _cloudpath(dest, "dest"), encoding_label(reencode), None)

    def insert(self, items: Iterable[Any]) -> int:
        """Add files: ``str`` keys, ``(src, dest)`` pairs or ``{"path", "dest_path"}`` dicts.

        Returns how many rows were new. Atomic: the items are staged first, then added in one
        transaction (all or nothing, also when the process is killed). A destination key already
        in the ledger (or repeated in ``items``) is added once; the same destination from two
        different sources raises ValueError and adds nothing.
        """
        self._db()
        return self._publish(None, None, None, items)

    def _publish(self, source: str | None, dest: str | None, encoding: str | None, items: Iterable[Any] | None) -> int:
        with self._lock:
            return self._publish_locked(source, dest, encoding, items)

    def _publish_locked(
        self, source: str | None, dest: str | None, encoding: str | None, items: Iterable[Any] | None
    ) -> int:
        conn = self._connect(create=source is not None)
        staged = self._stage(conn, items) if items is not None else False
        added = 0
        try:
            with self._write(conn):
                if source is not None:
                    self._ensure_job(conn, source, dest, encoding)  # type: ignore[arg-type]
                if staged:
                    self._refuse_conflicts(conn)
                    added = self._insert_staged(conn)
        finally:
            if staged:
                conn.execute("DROP TABLE IF EXISTS temp.staging")
        self._checked = True
        return added

    def _stage(self, conn: sqlite3.Connection, items: Iterable[Any]) -> bool:
        """Copy ``items`` into a private temporary table (no lock on the ledger is held while a
        slow listing or generator is consumed)."""
        conn.execute("DROP TABLE IF EXISTS temp.staging")
        conn.execute("CREATE TEMP TABLE staging (src TEXT NOT NULL, dest TEXT NOT NULL)")
        pairs = _pairs(items)
        self._in_txn = True
        try:
            conn.execute("BEGIN")
            while True:
                batch = list(islice(pairs, _STAGE_BATCH))
                if not batch:
                    break
                conn.executemany("INSERT INTO temp.staging (src, dest) VALUES (?, ?)", batch)
            conn.execute("CREATE INDEX temp.staging_dest ON staging (dest, src)")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.execute("DROP TABLE IF EXISTS temp.staging")
            raise
        finally:
            self._in_txn = False
        return True

    def _insert_staged(self, conn: sqlite3.Connection) -> int:
        """Inside the publishing transaction: add the staged rows that are new, count them."""
        cur = conn.execute(
            "INSERT INTO filelist (src, dest) SELECT src, dest FROM temp.staging "
            "WHERE true ORDER BY rowid ON CONFLICT (dest) DO NOTHING"
        )
        added = cur.rowcount
        conn.execute("UPDATE stats SET value = value + ? WHERE key = 'total'", (added,))
        return added

    def _refuse_conflicts(self, conn: sqlite3.Connection) -> None:
        clash = conn.execute(
            "SELECT dest, MIN(src), MAX(src) FROM temp.staging GROUP BY dest "
            "HAVING MIN(src) <> MAX(src) LIMIT 1"
        ).fetchone()
        if clash is None:
            clash = conn.execute(
                "SELECT s.dest, f.src, s.src FROM temp.staging AS s JOIN filelist AS f "
                "ON f.dest = s.dest WHERE f.src <> s.src LIMIT 1"
            ).fetchone()
        if clash is not None:
            dest, one, other = clash
            raise ValueError(
                f"Destination key {dest!r} would be written from two sources ({one!r} and "
                f"{other!r}); nothing was added to {self.db_path}."
            )

    def _ensure_job(self, conn: sqlite3.Connection, source: str, dest: str, encoding: str) -> None:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if names and not (names & _TABLES):
            foreign = ", ".join(sorted(n for n in names if not n.startswith("sqlite_")))
            raise LedgerError(
                f"not a ResumableTransfer ledger: {self.db_path} (it holds other tables: {foreign}); "
                f"use a new file."
            )
        if names & _TABLES:
            self._check_tables(conn)
        for statement in _SCHEMA:
            conn.execute(statement)
        row = conn.execute("SELECT source, dest, encoding FROM xfermeta WHERE id = 1").fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO xfermeta (id, source, dest, encoding, created, version) "
                "VALUES (1, ?, ?, ?, ?, ?)",
                (source, dest, encoding, _now_ms(), LEDGER_VERSION),
            )
        elif tuple(row) != (source, dest, encoding):
            raise LedgerError(
                f"{self.db_path} already holds a different transfer job "
                f"({row[0]} -> {row[1]}, encoding {row[2]}); refusing to mix in "
                f"{source} -> {dest}, encoding {encoding}. Use another ledger file, or delete "
                f"this one first."
            )

    def metadata(self) -> dict[str, Any]:
        """``{"source", "dest", "reencode", "encoding", "created", "version"}`` of the job;
        ``reencode`` is the value handed to ``transfer_to`` (None keeps, False decodes, or a codec
        name), ``encoding`` its label in the ledger ('keep', 'decode' or the codec)."""
        row = self._one("SELECT source, dest, encoding, created, version FROM xfermeta WHERE id = 1")
        if row is None:
            raise LedgerError(f"The ledger {self.db_path} holds no job yet (run init first).")
        source, dest, encoding, created, version = row
        return {
            "source": source,
            "dest": dest,
            "reencode": reencode_value(encoding),
            "encoding": encoding,
            "created": created,
            "version": version,
        }

    # -- counts ------------------------------------------------------------------------------------
    def _stat(self, key: str) -> int:
        row = self._one("SELECT value FROM stats WHERE key = ?", (key,))
        return int(row[0]) if row else 0

    def total(self) -> int:
        """Rows in the ledger."""
        return self._stat("total")

    def finished(self) -> int:
        """Rows marked done."""
        return self._stat("finished")

    def remaining(self) -> int:
        """Rows not yet done (leased or not)."""
        row = self._one(
            "SELECT (SELECT value FROM stats WHERE key = 'total') - "
            "(SELECT value FROM stats WHERE key = 'finished')"
        )
        return int(row[0] or 0)

    def num_leased(self) -> int:
        """Unfinished rows whose lease has not yet expired (held by some client right now)."""
        row = self._one("SELECT COUNT(*) FROM filelist WHERE done = 0 AND lease > ?", (_now_ms(),))
        return int(row[0])

    def available(self) -> int:
        """Unfinished rows that may be leased right now."""
        return max(0, self.remaining() - self.num_leased())

    def next_expiry(self) -> int | None:
        """Epoch ms at which the first currently held lease runs out (None if none is held)."""
        row = self._one("SELECT MIN(lease) FROM filelist WHERE done = 0 AND lease > ?", (_now_ms(),))
        return None if row[0] is None else int(row[0])

    def debris_scope(self, everything: bool = False) -> tuple[list[str], Callable[[str], bool]]:
        """Where this job's interrupted writers can have left debris (temporary files,
        unfinished uploads, parts), for ``ops.remove_orphans``: the directories of the keys
        handed out more than once (a killed client's, or one whose lease ran out), or with
        ``everything`` of every key (a Dask worker that died had its block rerun under the
        same lease, so the ledger cannot tell its keys); and a test of whether a key is this
        job's."""
        if everything:
            sql = ("SELECT DISTINCT CASE WHEN instr(dest, '/') = 0 THEN '' "
                   "ELSE rtrim(dest, replace(dest, '/', '')) END FROM filelist")
            dirs = sorted(row[0] for row in self._all(sql))
        else:
            keys = self._all("SELECT dest FROM filelist WHERE attempts > 1")
            dirs = sorted({ops.key_dir(row[0]) for row in keys})
        return dirs, self.holds

    def holds(self, dest: str) -> bool:
        """True if ``dest`` is a destination key of this job (an index probe)."""
        return self._one("SELECT EXISTS (SELECT 1 FROM filelist WHERE dest = ?)", (dest,))[0] == 1

    def all_done(self) -> bool:
        """True when no row is unfinished (an index probe, not a count)."""
        row = self._one("SELECT EXISTS (SELECT 1 FROM filelist WHERE done = 0)")
        return not row[0]

    def __len__(self) -> int:
        return self.remaining()

    # -- handing out and finishing rows ----------------------------------------------------------------
    def _lease(self, block_size: int, after_id: int = 0) -> tuple[list[tuple[int, str, str]], int]:
        """Hand out up to ``block_size`` unfinished rows as ``(id, src, dest)``, counting an
        attempt on each, and return them with their lease value (epoch ms; 0 when unleased).

        With a lease: rows that are free now (``done = 0 AND lease <= now``), reserved until
        ``now + lease_msec``. Without: the next unfinished rows after ``after_id``, in id order.
        """
        with self._write() as conn:
            if self.lease_msec > 0:
                now = _now_ms()
                lease = now + self.lease_msec
                rows = conn.execute(
                    "UPDATE filelist SET lease = ?, attempts = attempts + 1 WHERE id IN ("
                    "SELECT id FROM filelist WHERE done = 0 AND lease <= ? LIMIT ?) "
                    "RETURNING id, src, dest",
                    (lease, now, block_size),
                ).fetchall()
            else:
                lease = 0
                rows = conn.execute(
                    "UPDATE filelist SET attempts = attempts + 1 WHERE id IN ("
                    "SELECT id FROM filelist WHERE +done = 0 AND id > ? ORDER BY id LIMIT ?) "
                    "RETURNING id, src, dest",
                    (after_id, block_size),
                ).fetchall()
        rows.sort()
        return rows, lease

    def next(self, limit: int | None = None, block_size: int = 200) -> Iterator[str | tuple[str, str]]:
        """Yield unfinished files one at a time, as the original does: the key (``str``) of a
        file stored under its own name, the ``(src, dest)`` pair of a renamed one (both are what
        :meth:`mark_finished` takes). Rows are leased ``block_size`` at a time, each block when
        its first file is about to be yielded; at most ``limit`` files in all (None or 0: no
        limit). Stops when nothing is available (see :meth:`next_blocks`).
        """
        for block in self.next_blocks(limit, block_size):
            for src, dest in block:
                yield src if src == dest else (src, dest)

    def next_blocks(self, limit: int | None = None, block_size: int = 200) -> Iterator[list[tuple[str, str]]]:
        """Yield blocks (lists of ``(src, dest)`` key pairs) of up to ``block_size`` rows, at most
        ``limit`` rows in all (None or 0: no limit), until no row is available. Mark them with
        :meth:`mark_finished`.

        With ``lease_msec > 0`` each block is leased when it is yielded (see the class doc); the
        generator stops when nothing is free, even if rows leased by others are unfinished (it
        does not wait: :meth:`ResumableTransfer.execute` does). With ``lease_msec == 0`` it walks
        the unfinished rows once in id order.
        """
        if not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be None or an int >= 0, got {limit!r}")
        limit = limit or None
        handed = 0
        after = 0
        while limit is None or handed < limit:
            want = block_size if limit is None else min(block_size, limit - handed)
            rows, _ = self._lease(want, after)
            if not rows:
                return
            after = rows[-1][0]
            handed += len(rows)
            yield [(src, dest) for _, src, dest in rows]

    def _finish_ids(self, ids: list[int]) -> int:
        """Mark rows done by id in one transaction; returns how many were newly done."""
        newly = 0
        with self._write() as conn:
            for chunk in _chunks(ids):
                cur = conn.execute(
                    f"UPDATE filelist SET done = 1, lease = 0 WHERE +done = 0 AND id IN ({_placeholders(len(chunk))})",
                    chunk,
                )
                newly += cur.rowcount
            conn.execute("UPDATE stats SET value = value + ? WHERE key = 'finished'", (newly,))
        return newly

    def _release_ids(self, ids: list[int], lease: int) -> None:
        """Give back rows this client still holds (same lease value) without finishing them."""
        if lease <= 0:
            return
        with self._write() as conn:
            for chunk in _chunks(ids, MAX_PARAMS - 1):
                conn.execute(
                    f"UPDATE filelist SET lease = 0 WHERE done = 0 AND lease = ? AND id IN ({_placeholders(len(chunk))})",
                    [lease, *chunk],
                )

    def mark_finished(self, items: Iterable[Any]) -> int:
        """Mark rows done, by destination key (``str``, ``(src, dest)`` or ``{"path",
        "dest_path"}`` as given to :meth:`insert`). One transaction; returns how many rows were
        newly done (unknown keys and rows already done are ignored)."""
        dests = [dest for _, dest in _pairs(items)]
        newly = 0
        with self._write() as conn:
            for chunk in _chunks(dests):
                cur = conn.execute(
                    f"UPDATE filelist SET done = 1, lease = 0 WHERE +done = 0 AND dest IN ({_placeholders(len(chunk))})",
                    chunk,
                )
                newly += cur.rowcount
            conn.execute("UPDATE stats SET value = value + ? WHERE key = 'finished'", (newly,))
        return newly

    def release(self) -> int:
        """Clear every lease (for instance after all clients were killed); returns how many
        unexpired leases were dropped. Clients still running may then see their rows handed out
        again, so a file may be transferred twice (harmless, only wasted work)."""
        with self._write() as conn:
            held = conn.execute(
                "SELECT COUNT(*) FROM filelist WHERE done = 0 AND lease > ?", (_now_ms(),)
            ).fetchone()[0]
            conn.execute("UPDATE filelist SET lease = 0 WHERE done = 0 AND lease > 0")
        return int(held)

    def __iter__(self) -> Iterator[str | tuple[str, str]]:
        """``self.next()``, as in the original: the unfinished files, leased as they are handed out."""
        return self.next()

    def pending(self) -> Iterator[tuple[str, str]]:
        """The unfinished ``(src, dest)`` pairs in id order, read-only (nothing is leased)."""
        after = 0
        while True:
            rows = self._all(
                "SELECT id, src, dest FROM filelist WHERE +done = 0 AND id > ? ORDER BY id LIMIT 1000",
                (after,),
            )
            if not rows:
                return
            after = rows[-1][0]
            for _, src, dest in rows:
                yield src, dest

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict (``id, src, dest, done, lease, attempts``): for inspection and
        tests; reads the whole table."""
        names = ("id", "src", "dest", "done", "lease", "attempts")
        rows = self._all(f"SELECT {', '.join(names)} FROM filelist ORDER BY id")
        return [dict(zip(names, row, strict=True)) for row in rows]

    # -- deleting ----------------------------------------------------------------------------------
    def delete(self, force: bool = False) -> None:
        """Delete the ledger file (and its -wal/-shm companions).

        Refused with LedgerError while rows are unfinished (some possibly leased by clients still
        working), unless ``force=True``, which abandons the job. Make sure no other client still
        has the ledger open: deleting it under a running client breaks that client. When the
        ledger this object checked was meanwhile deleted by another client (the path is gone, or
        names a new file), nothing is deleted.
        """
        with self._lock:
            if not force:
                remaining = self.remaining()
                if remaining:
                    leased = self.num_leased()
                    raise LedgerError(
                        f"Refusing to delete {self.db_path}: {remaining} file(s) are unfinished "
                        f"({leased} leased by running clients). Finish the job first, or pass "
                        f"force=True to abandon it."
                    )
            connected = self._conn is not None and self._pid == os.getpid()
            ident = self._ident if connected else None
            self.close()
            if ident is not None and _file_ident(self.db_path) != ident:
                return
            self._unlink()

    def _unlink(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.db_path + suffix)


class _LeaseRenewer:
    """Renews this client's leases on blocks being transferred (any number of blocks at once,
    each added when leased and removed when finished or given back), so that a slow block is
    not handed to another client when ``lease_msec`` runs out. It only renews rows still
    holding the lease value it set, with its own connection, on its own thread; renewal is best
    effort (a failed renewal only risks duplicate work). :meth:`remove` returns the block's
    lease as it stands: no renewal changes it afterwards."""

    def __init__(self, db_path: str, lease_msec: int):
        self._db_path = db_path
        self._lease_msec = lease_msec
        self._blocks: dict[Any, tuple[list[int], int]] = {}
        self._lock = threading.Lock()  # held while renewing: add/remove wait for a renewal
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cloudfiles-lease-renewer", daemon=True)

    def add(self, key: Any, ids: list[int], lease: int) -> None:
        with self._lock:
            self._blocks[key] = (ids, lease)

    def remove(self, key: Any) -> tuple[list[int], int]:
        with self._lock:
            return self._blocks.pop(key)

    def held(self) -> list[Any]:
        with self._lock:
            return list(self._blocks)

    def __enter__(self) -> _LeaseRenewer:
        if self._lease_msec > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        interval = max(self._lease_msec / 3000.0, 0.02)
        fileset: ResumableFileSet | None = None
        try:
            while not self._stop.wait(interval):
                fileset = fileset or ResumableFileSet(self._db_path, self._lease_msec)
                with self._lock:
                    if not self._blocks:
                        continue
                    new_lease = _now_ms() + self._lease_msec
                    with fileset._write() as conn:
                        for ids, lease in self._blocks.values():
                            for chunk in _chunks(ids, MAX_PARAMS - 2):
                                conn.execute(
                                    "UPDATE filelist SET lease = ? WHERE done = 0 AND lease = ? "
                                    f"AND id IN ({_placeholders(len(chunk))})",
                                    [new_lease, lease, *chunk],
                                )
                    self._blocks = {key: (ids, new_lease) for key, (ids, _) in self._blocks.items()}
        except Exception:  # best effort by design (see the class doc)
            pass
        finally:
            if fileset is not None:
                fileset.close()


class ResumableTransfer:
    """A transfer that can be interrupted, resumed, and run by several clients at once.

    ``db_path`` is the ledger file (see the module doc for its schema). ``lease_msec`` is how
    long a block of files stays reserved for the client transferring it: use ``0`` (the default)
    for one client at a time, and a value well above the time one block takes (for instance
    30000) when several clients drain the same ledger. Leases of a block still being transferred
    are renewed in the background, so a slow block is not handed out twice while its client lives.

    Only the source and destination *cloudpaths* are stored; ``execute`` builds plain
    ``CloudFiles(source)`` / ``CloudFiles(dest)`` from them (secrets come from the usual places).
    """

    def __init__(self, db_path: str | os.PathLike[str], lease_msec: int = 0):
        self.fileset = ResumableFileSet(db_path, lease_msec)

    @property
    def db_path(self) -> str:
        return self.fileset.db_path

    @property
    def rfs(self) -> ResumableFileSet:
        """The ledger (the original's name for :attr:`fileset`)."""
        return self.fileset

    @property
    def lease_msec(self) -> int:
        return self.fileset.lease_msec

    def __repr__(self) -> str:
        return f"ResumableTransfer({self.db_path!r}, lease_msec={self.lease_msec})"

    def init(self, src: str | CloudFiles, dest: str | CloudFiles, paths: Any = None, reencode: Any = None) -> int:
        """Record the job ``src -> dest`` and its files; returns how many files were added.

        ``paths``: None lists ``src``; a cloudpath string or a CloudFiles is listed (it must be
        ``src`` or a directory inside it: keys are stored relative to ``src``); any other iterable
        gives the keys as they are: ``str``, ``(src, dest)`` pairs or ``{"path", "dest_path"}``
        dicts. ``reencode``: None (or "keep") keeps the stored encoding, a codec name re-encodes,
        False/""/"none" (or "decode") stores decoded data; the ledger records which.

        Atomic: killed midway, the ledger is left as it was, and running ``init`` again is safe.
        On a ledger that already holds this job (same source, destination and encoding) the new
        paths are added; destination keys already present are skipped. A different job raises
        LedgerError.
        """
        source = _cloudpath(src, "src")
        target = _cloudpath(dest, "dest")
        label = encoding_label(reencode)
        if paths is None:
            items: Iterable[Any] = _listed_relative(source, source)
        elif isinstance(paths, str) or isinstance(paths, CloudFiles):
            items = _listed_relative(source, _cloudpath(paths, "paths"))
        elif isinstance(paths, dict) or not hasattr(paths, "__iter__"):
            raise TypeError(
                "paths must be None, a cloudpath, a CloudFiles, or an iterable of keys, (src, dest) "
                f"pairs or {{'path', 'dest_path'}} dicts; got {type(paths).__name__}"
            )
        else:
            items = paths
        return self.fileset._publish(source, target, label, items)

    def execute(self, progress: Any = False, block_size: int = 200, client: Any = None,
                max_in_flight: int | None = None) -> int:
        """Transfer every unfinished file; returns how many files this client transferred.

        Loop: lease up to ``block_size`` free rows, ``CloudFiles(source).transfer_to(dest,
        paths=[(src, dest), ...], reencode=...)``, then mark the block done in one transaction.
        With ``lease_msec > 0``, when nothing is free but rows are still leased (by other clients,
        or by a killed client whose lease has not run out), it sleeps until the first lease
        expires (polling at least once a second) and carries on: it returns only when every row
        is done. With ``lease_msec == 0`` it makes one pass over the unfinished rows.

        A failing block (for instance a missing source: FileNotFoundError naming the file) stays
        unfinished, its leases are given back, and the error propagates; rerun after fixing it.
        ``progress`` (True, a label, a callable taking ProgressEvent, or a tqdm bar) shows the
        whole ledger: the total is every row, and the first advance carries the files already
        finished (marked ``earlier``: they count in no rate); files finished by other clients
        are counted as they are seen.

        ``client`` (a ``distributed.Client``) runs the blocks as tasks of that Dask cluster
        (``pip install 'cloudfiles-dask[dask]'``), at most ``max_in_flight`` at once (default:
        twice the cluster's worker threads, at least 4). The ledger stays here, with this
        process: each block is leased here (its lease renewed here while its task runs),
        submitted, and marked done only once its task has finished, so a worker that dies (Dask
        runs its blocks again elsewhere) or this process killed (rerun ``execute``: leased
        blocks are taken again once their lease runs out) loses nothing and never transfers a
        file the ledger has marked done. Progress then also moves while blocks run.

        Into file://, before it returns, ``execute`` removes from the directories it wrote into
        the temporary files that killed writers left there (with ``client``, on each machine of
        the cluster): those of processes of this machine that no longer run, and those of other
        machines (or with no owner in their name) once untouched for a day; never one a live
        writer owns. Only those directories are looked at, not the whole destination. Into an
        object store it removes the unfinished uploads and parts of the keys its ledger handed
        out more than once (a killed run's); with ``client``, after a worker died (its block
        reran under the same lease), of any key of the ledger.
        """
        if not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")
        if client is not None:
            return self._execute_on(client, progress, block_size, max_in_flight)
        fs = self.fileset
        meta = fs.metadata()
        source, target = CloudFiles(meta["source"]), CloudFiles(meta["dest"])
        reencode = meta["reencode"]
        leasing = fs.lease_msec > 0
        transferred = 0
        shown = fs.finished()
        written: set[str] = set()  # the directories written into (for temp files of others)
        bar = make_progress(progress, fs.total(), "Transferring")
        try:
            bar.advance_earlier(shown)
            after = 0
            # one renewer for the whole run: each block's leases are renewed while it moves
            with _LeaseRenewer(fs.db_path, fs.lease_msec) as renewer:
                while True:
                    rows, lease = fs._lease(block_size, after)
                    if rows:
                        after = rows[-1][0]
                        ids = [row[0] for row in rows]
                        pairs = [(src, dst) for _, src, dst in rows]
                        written.update(ops.key_dir(dst) for _, dst in pairs)
                        renewer.add(after, ids, lease)
                        try:  # the block's files and bytes go onto the bar as they move
                            source.transfer_to(target, paths=pairs, block_size=len(pairs),
                                               reencode=reencode, progress=bar)
                        except BaseException:
                            _, lease = renewer.remove(after)  # as the last renewal left it
                            with contextlib.suppress(Exception):
                                fs._release_ids(ids, lease)
                            raise
                        renewer.remove(after)
                        fs._finish_ids(ids)
                        transferred += len(rows)
                        shown += len(rows)
                    elif not leasing or fs.all_done():
                        break
                    else:
                        expiry = fs.next_expiry()
                        wait_ms = 0 if expiry is None else expiry - _now_ms()
                        time.sleep(min(max(wait_ms, 20), 1000) / 1000.0)
                    finished = fs.finished()
                    if finished > shown:
                        bar.advance(finished - shown)
                        shown = finished
            scope, owns = fs.debris_scope()  # where killed predecessors wrote
            if target.backend.local_files:
                scope = sorted(written.union(scope))
            ops.remove_orphans(target.backend, scope, owns)
        except BaseException as error:
            bar.close(error)
            raise
        finally:
            bar.close()
        return transferred

    def _execute_on(self, client: Any, progress: Any, block_size: int,
                    max_in_flight: int | None) -> int:
        """:meth:`execute` with the blocks as tasks of a Dask cluster (see there)."""
        if max_in_flight is not None and (not isinstance(max_in_flight, int)
                                          or isinstance(max_in_flight, bool) or max_in_flight < 1):
            raise ValueError(f"max_in_flight must be an int >= 1 or None, got {max_in_flight!r}")
        fs = self.fileset
        meta = fs.metadata()
        src, dest = CloudFiles(meta["source"]).config, CloudFiles(meta["dest"]).config
        executor = cluster.executor_for(client, (src, dest), dest.num_threads)
        options = TransferOptions(reencode=meta["reencode"])
        leasing = fs.lease_msec > 0
        first = fs.finished()
        # files this client transferred; of those, rows it was first to mark done; rows other
        # clients marked done, as shown on the bar
        counted = {"ours": 0, "newly": 0, "others": 0}

        with make_progress(progress, fs.total(), "Transferring") as bar, \
                _LeaseRenewer(fs.db_path, fs.lease_msec) as renewer:
            bar.advance_earlier(first)

            def leased() -> Iterator[list[tuple[str, str]]]:
                for rows, lease in self._leased_blocks(block_size):
                    block = [(src_key, dest_key) for _, src_key, dest_key in rows]
                    renewer.add(id(block), [row[0] for row in rows], lease)
                    yield block

            def finished(block: list[tuple[str, str]], record: Any) -> None:
                ids, _ = renewer.remove(id(block))
                counted["newly"] += fs._finish_ids(ids)
                counted["ours"] += len(ids)
                others = fs.finished() - first - counted["newly"]
                if others > counted["others"]:  # blocks finished by other clients meanwhile
                    bar.advance(others - counted["others"])
                    counted["others"] = others

            try:
                while True:
                    if not leasing or fs.available():
                        cluster.run_transfer(executor, src, dest, leased(), options, bar,
                                             max_in_flight=max_in_flight, on_done=finished,
                                             cleanup=fs.debris_scope)
                    if not leasing or fs.all_done():
                        break
                    expiry = fs.next_expiry()  # the rest is leased by others: wait for them
                    wait_ms = 0 if expiry is None else expiry - _now_ms()
                    time.sleep(min(max(wait_ms, 20), 1000) / 1000.0)
            except BaseException:
                for key in renewer.held():  # blocks not finished: give their leases back
                    ids, lease = renewer.remove(key)
                    with contextlib.suppress(Exception):
                        fs._release_ids(ids, lease)
                raise
            others = fs.finished() - first - counted["newly"]
            if others > counted["others"]:
                bar.advance(others - counted["others"])
        return counted["ours"]

    def _leased_blocks(self, block_size: int) -> Iterator[tuple[list[tuple[int, str, str]], int]]:
        """Lease blocks of free rows until none is free: without leases, one pass over the
        unfinished rows."""
        after = 0
        while True:
            rows, lease = self.fileset._lease(block_size, after)
            if not rows:
                return
            after = rows[-1][0]
            yield rows, lease

    def status(self) -> dict[str, Any]:
        """The job and its counts: ``source, dest, reencode, encoding, created, total, finished,
        remaining, leased, available, lease_msec, db_path``. Cheap on any ledger size (no full
        scans: counts come from the stats row, ``leased`` from the leased rows only)."""
        fs = self.fileset
        meta = fs.metadata()
        total, finished = fs.total(), fs.finished()
        leased = fs.num_leased()
        remaining = total - finished
        return {
            "source": meta["source"],
            "dest": meta["dest"],
            "reencode": meta["reencode"],
            "encoding": meta["encoding"],
            "created": meta["created"],
            "total": total,
            "finished": finished,
            "remaining": remaining,
            "leased": leased,
            "available": max(0, remaining - leased),
            "lease_msec": fs.lease_msec,
            "db_path": fs.db_path,
        }

    def release(self) -> int:
        """Clear every lease (see :meth:`ResumableFileSet.release`)."""
        return self.fileset.release()

    def cleanup(self, force: bool = False) -> None:
        """Delete the ledger; refused while files are unfinished (see :meth:`ResumableFileSet.delete`)."""
        self.fileset.delete(force=force)

    def close(self) -> None:
        """Done with this job, as the original's ``close()``: once every file is done the ledger
        is deleted (with its -wal/-shm files); while files remain (unfinished, or leased by
        clients still working) it is kept, so the job can be resumed, with a ``UserWarning``
        naming how many remain. The original deleted it in both cases. Closes the connection
        either way; nothing happens when there is no ledger file. Leaving a ``with`` block only
        closes the connection.
        """
        fs = self.fileset
        if not os.path.exists(fs.db_path):
            fs.close()
            return
        try:
            remaining = fs.remaining()
            if remaining == 0:
                try:
                    fs.delete()
                    return
                except LedgerError:  # files were added in between: keep it, and say so
                    remaining = fs.remaining()
        finally:
            fs.close()
        warnings.warn(
            f"{fs.db_path}: {remaining} file(s) of the transfer remain unfinished, so the ledger "
            f"is kept (run execute again to finish the job, or cleanup(force=True) to abandon it).",
            UserWarning,
            stacklevel=2,
        )

    def __len__(self) -> int:
        return len(self.fileset)

    def __enter__(self) -> ResumableTransfer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fileset.close()  # the connection only: see close()


def _listed_relative(source: str, listed: str) -> Iterator[str]:
    """Keys under cloudpath ``listed``, made relative to ``source``."""
    if listed.rstrip("/") == source.rstrip("/"):
        prefix = ""
    elif listed.startswith(source.rstrip("/") + "/"):
        prefix = listed[len(source.rstrip("/")) + 1 :].strip("/") + "/"
    else:
        raise ValueError(
            f"paths={listed!r} is neither the transfer source {source!r} nor inside it; pass the "
            f"keys as an iterable instead."
        )
    return (prefix + key for key in CloudFiles(listed).list())
