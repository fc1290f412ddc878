"""The engine's operations over a backend: batching, threads, codecs and progress, written once.

Faces (CloudFiles, CloudFile, dl, the CLI, Dask) call these; these call only the backend contract.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from typing import Any

from .. import _retry, _threads, compression
from .._iteration import batched
from ..backends.base import Backend, Blob, PutMeta
from ..exceptions import DecompressionError, ReadOnlyBackendError
from ..monitoring import TransmissionMonitor
from ..progress import Progress
from . import integrity
from .jobs import PutOptions, PutUnit, ReadUnit, TransferOptions


class Runner:
    """How to run work for one call: thread budget, green or not, where progress goes, and the
    transfer record (``recording``: a TransmissionMonitor, or None when nobody asked for one;
    then recording costs one attribute test per unit)."""

    __slots__ = ("num_threads", "green", "progress", "recording")

    def __init__(self, num_threads: int, green: bool, progress: Progress,
                 recording: TransmissionMonitor | None = None):
        self.num_threads = num_threads
        self.green = green
        self.progress = progress
        self.recording = recording

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.progress.close(exc, self.recording)

    def threads(self, cap: int | None) -> int:
        return self.num_threads if cap is None else min(cap, self.num_threads)

    def run(self, fn: Callable[[Any], Any], units: Iterable[Any], cap: int | None) -> list[Any]:
        return _threads.run(fn, units, self.threads(cap), self.green)


def call(backend: Backend, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` (a method of ``backend``) under the retry policy for its transient errors."""
    return _retry.call(fn, backend.retryable, *args)


# -- reads ------------------------------------------------------------------------------------------
def fetch(backend: Backend, unit: ReadUnit, part_size: int | None = None) -> Blob | None:
    """Read with retries; verify full reads against the service's checksum. A mismatch is read
    once more (bytes damaged in flight, or the object replaced between read and checksum) and
    then raised as an IntegrityError: never a silent retry-until-give-up, never bad bytes."""
    for _ in range(2):
        blob = _retry.call(backend.get, backend.retryable, unit.path, unit.start, unit.end)
        if blob is None or blob.hash is None or unit.ranged:
            return blob
        if integrity.matches(blob.content, blob.hash, blob.hash_type, part_size, blob.md5,
                             blob.crc32c):
            return blob
    raise integrity.mismatch(backend.url(unit.path), blob.hash, blob.hash_type, blob.content)


def get_one(backend: Backend, unit: ReadUnit, raw: bool, part_size: int | None = None) -> dict:
    """Fetch one key; the result dict CloudFiles.get returns for it. Errors propagate.
    ``part_size``: the part size of a multipart upload, to check an ETag made of unusual parts."""
    blob = fetch(backend, unit, part_size)
    content = encoding = None
    if blob is not None:
        encoding = blob.encoding
        content = blob.content
        if encoding and not raw:
            if unit.ranged:
                raise DecompressionError(
                    f"{unit.path!r} is stored with {encoding} encoding; byte range "
                    f"[{unit.start}:{unit.end}] applies to the stored bytes and cannot be decoded "
                    f"on its own. Pass raw=True to receive the stored bytes."
                )
            content = compression.decompress(content, encoding, unit.path)
    return {
        "path": unit.path,
        "content": content,
        "byte_range": (unit.start, unit.end),
        "error": None,
        "compress": backend.unencoded_label if blob is not None and encoding is None else encoding,
        "raw": raw,
        "tags": unit.tags,
    }


def _nbytes(content: Any) -> int:
    return len(content) if isinstance(content, (bytes, bytearray, memoryview, str)) else 0


def get_many(backend: Backend, units: Iterable[ReadUnit], raw: bool, runner: Runner,
             raise_errors: bool = True, part_size: int | None = None) -> list[dict]:
    progress = runner.progress
    advance = progress.advance if progress.active else None
    recording = runner.recording

    def job(unit: ReadUnit) -> dict:
        start = time.time() if recording is not None else 0.0
        try:
            result = get_one(backend, unit, raw, part_size)
        except Exception as e:
            if recording is not None:
                recording.record_error(start, time.time(), e)
            progress.fail(unit.path, e)
            if raise_errors:
                raise
            result = {
                "path": unit.path,
                "content": None,
                "byte_range": (unit.start, unit.end),
                "error": e,
                "compress": None,
                "raw": raw,
                "tags": unit.tags,
            }
        else:
            if recording is not None:
                recording.record(start, time.time(), _nbytes(result["content"]))
        if advance is not None:
            advance(1, _nbytes(result["content"]))
        return result

    return runner.run(job, units, backend.read_threads)


# -- writes -----------------------------------------------------------------------------------------
def require_writable(backend: Backend) -> None:
    if not backend.writable:
        raise ReadOnlyBackendError(f"{backend.describe()} is read-only: it cannot write or delete.")


def _encode(unit: PutUnit, stores_objects: bool) -> tuple[Any, str | None]:
    """The bytes to store for ``unit`` and their encoding."""
    content, options = unit.content, unit.options
    encoding = compression.normalize_encoding(options.compress)
    if isinstance(content, str):
        content = content.encode("utf-8")
    if isinstance(content, (bytes, bytearray, memoryview)):
        if encoding is not None and not options.raw:
            content = compression.compress(content, encoding, options.compression_level)
        return content, encoding
    if hasattr(content, "read"):
        if encoding is None or options.raw:
            return content, encoding  # streamed as is by the backend
        return compression.compress(content.read(), encoding, options.compression_level), encoding
    if stores_objects and (options.raw or encoding is None):
        return content, encoding  # mem:// keeps the object itself, as the original does
    raise TypeError(
        f"Content for {unit.path!r} must be bytes, str or a binary file handle, got "
        f"{type(content).__name__}. Use put_json for JSON-serialisable objects; only mem:// "
        f"stores Python objects as they are (uncompressed)."
    )


_LINE_BREAKS = frozenset("\r\n\0")


def _metadata(unit: PutUnit, encoding: str | None) -> PutMeta:
    """The unit's stored metadata; values with a line break or NUL are refused, as they would
    forge header lines (or multipart body lines) on the cloud backends."""
    options = unit.options
    for name in ("content_type", "cache_control", "storage_class"):
        value = getattr(options, name)
        if isinstance(value, str) and not _LINE_BREAKS.isdisjoint(value):
            raise ValueError(f"{name} for {unit.path!r} holds a line break or NUL, which would "
                             f"forge header lines: {value!r}")
    return PutMeta(options.content_type, encoding, options.cache_control, options.storage_class)


def put_one(backend: Backend, unit: PutUnit) -> int:
    content, encoding = _encode(unit, backend.stores_objects)
    meta = _metadata(unit, encoding)
    if not hasattr(content, "read"):
        call(backend, backend.put, unit.path, content, meta)
        return _nbytes(content)
    start = content.tell() if content.seekable() else None

    def attempt() -> None:
        if start is not None:
            content.seek(start)
        backend.put(unit.path, content, meta)

    # a stream that cannot be rewound cannot be sent twice: one attempt only
    if start is None:
        attempt()
        return 0
    call(backend, attempt)
    return _stream_size(content, start)


def _stream_size(handle: Any, start: int) -> int:
    """The bytes a plain file handle held from ``start`` on (0 when that cannot be known)."""
    try:
        return max(0, os.fstat(handle.fileno()).st_size - start)
    except (AttributeError, OSError, ValueError):
        return 0


def put_many(backend: Backend, units: Iterable[PutUnit], runner: Runner) -> int:
    require_writable(backend)
    progress = runner.progress
    advance = progress.advance if progress.active else None
    recording = runner.recording

    def job(unit: PutUnit) -> None:
        start = time.time() if recording is not None else 0.0
        try:
            nbytes = put_one(backend, unit)
        except Exception as e:
            if recording is not None:
                recording.record_error(start, time.time(), e)
            progress.fail(unit.path, e)
            raise
        if recording is not None:
            recording.record(start, time.time(), nbytes)
        if advance is not None:
            advance(1, nbytes)

    return len(runner.run(job, units, backend.write_threads))


# -- metadata -----------------------------------------------------------------------------------------
def exists_many(backend: Backend, keys: Iterable[str], runner: Runner) -> dict[str, bool]:
    progress = runner.progress

    def job(batch: list[str]) -> dict[str, bool]:
        found = call(backend, backend.exists_many, batch)
        progress.advance(len(batch))
        return found

    out: dict[str, bool] = {}
    for found in runner.run(job, batched(keys, backend.exists_batch_size), backend.read_threads):
        out.update(found)
    return out


def per_key(backend: Backend, fn: Callable[[str], Any], keys: Iterable[str], runner: Runner) -> dict[str, Any]:
    """``{key: fn(key)}`` over the read thread budget, with retries (head, size, ACLs)."""
    progress, recording = runner.progress, runner.recording

    def job(key: str) -> tuple[str, Any]:
        start = time.time() if recording is not None else 0.0
        value = call(backend, fn, key)
        if recording is not None:
            recording.record(start, time.time(), 0)
        progress.advance(1)
        return key, value

    return dict(runner.run(job, keys, backend.read_threads))


def delete_many(backend: Backend, keys: Iterable[str], runner: Runner) -> int:
    require_writable(backend)
    progress = runner.progress

    def job(batch: list[str]) -> int:
        call(backend, backend.delete_many, batch)
        progress.advance(len(batch))
        return len(batch)

    return sum(runner.run(job, batched(keys, backend.delete_batch_size), backend.write_threads))


def list_keys(backend: Backend, prefix: str, flat: bool, size: bool) -> Iterator[tuple[str, int | None]]:
    """Backend listing plus the rule that a flat listing of ``dir`` (no slash) whose only match is
    the directory ``dir/`` lists inside it, as object stores re-query with the slash."""
    listing = backend.list(prefix, flat, size)
    if not flat or not prefix or prefix.endswith("/"):
        return listing
    head = list(islice(listing, 2))
    if len(head) == 1 and head[0][0] == prefix + "/":
        return backend.list(prefix + "/", flat, size)
    return chain(head, listing)


# -- transfers ----------------------------------------------------------------------------------------
def transfer(
    src: Backend,
    dest: Backend,
    pairs: Iterable[tuple[str, str]],
    runner: Runner,
    options: TransferOptions = TransferOptions(),
) -> int:
    """Copy ``(src_key, dest_key)`` pairs; returns the number of files written.

    Strategy, first match wins (all but the last keep the stored encoding, ``reencode=None``):

    1. same-kind copy without the bytes passing through Python (file->file kernel copy, mem->mem,
       and server-side copies where a cloud backend declares them: s3->s3 on one endpoint with
       one set of credentials, gs->gs);
    2. anything -> file://: streamed to a temporary file, verified against the service checksum
       and size, renamed into place (memory stays near one chunk whatever the object size);
    3. file:// -> anything: the stored file's handle is uploaded (multipart / composite above the
       threshold), never read whole into memory;
    4. general: in blocks of ``block_size``, read the stored bytes (raw), re-encode only if asked,
       write them raw with their encoding. Memory is bounded by ``block_size`` objects.

    ``reencode``: None keeps the stored encoding; False, ``""`` or ``"none"`` stores the data
    decoded; a codec name re-encodes (objects already in that encoding pass through untouched).
    Any ``reencode`` other than None takes the general path.
    A missing source raises FileNotFoundError, or with ``allow_missing`` writes an empty file.

    ``resumable`` applies to strategy 2: each download appends to a partial file next to its
    destination, kept when interrupted; a retry, or a later run after a crash, asks only for the
    missing bytes (a ranged read) and the whole file is verified before it is renamed into place.
    The verification needs a service checksum to notice that the object changed in between:
    S3 and GCS always give one, plain HTTP servers rarely (there only the size is checked).
    """
    require_writable(dest)
    block_size, reencode, content_type = options.block_size, options.reencode, options.content_type
    allow_missing = options.allow_missing
    if reencode is None:
        if src.can_copy_to(dest) and (content_type is None or dest.local_files):
            return _transfer_by_copy(src, dest, pairs, runner, allow_missing)
        if dest.local_files and not src.local_files:
            return _transfer_by_stream(src, dest, pairs, runner, allow_missing, options.resumable)
        if src.local_files and not dest.local_files:
            return _transfer_by_handles(src, dest, pairs, runner, block_size, content_type, allow_missing)
        target = None
    else:
        target = None if reencode in (False, "", "none") else compression.normalize_encoding(reencode)
    reader, writer = _quiet(runner, None), _quiet(runner, runner.recording)
    written = 0
    for block in batched(pairs, block_size):
        units = [ReadUnit(s, tags=d) for s, d in block]
        got = get_many(src, units, raw=True, runner=reader)
        for result in got:
            if result["content"] is None:
                _missing(src, result["path"], allow_missing)
                result["content"], result["compress"] = b"", None
        if reencode is not None:
            got = compression.transcode(got, target, in_place=True)
        to_put = [PutUnit(r["tags"], r["content"], _stored_as_is(content_type, r["compress"]))
                  for r in got]
        put_many(dest, to_put, writer)
        written += len(to_put)
        runner.progress.advance(len(to_put), sum(_nbytes(u.content) for u in to_put))
    return written


def _quiet(runner: Runner, recording: TransmissionMonitor | None) -> Runner:
    """``runner`` for the inner steps of a transfer: no progress of their own (the transfer
    reports whole blocks), writes recorded in the transfer's record."""
    return Runner(runner.num_threads, runner.green, Progress(), recording)


def _stored_as_is(content_type: str | None, encoding: str | None) -> PutOptions:
    """How a transfer writes bytes it read raw: as they are, labelled with their encoding."""
    return PutOptions(content_type=content_type, compress=encoding, raw=True)


def _missing(src: Backend, key: str, allow_missing: bool) -> None:
    if not allow_missing:
        raise FileNotFoundError(f"Transfer source {src.url(key)} does not exist.")


def _naming_failures(progress: Progress,
                     job: Callable[[tuple[str, str]], None]) -> Callable[[tuple[str, str]], None]:
    """``job`` over a ``(source key, destination key)`` pair, telling ``progress`` which
    source failed before the error goes on."""
    if not progress.active:
        return job

    def named(pair: tuple[str, str]) -> None:
        try:
            job(pair)
        except Exception as e:
            progress.fail(pair[0], e)
            raise

    return named


def _transfer_by_copy(src: Backend, dest: Backend, pairs: Iterable[tuple[str, str]], runner: Runner, allow_missing: bool) -> int:
    progress, recording = runner.progress, runner.recording

    def job(pair: tuple[str, str]) -> None:
        src_key, dest_key = pair
        start = time.time() if recording is not None else 0.0
        nbytes = call(src, src.copy_to, src_key, dest, dest_key)
        if nbytes is None:
            _missing(src, src_key, allow_missing)
            call(dest, dest.put, dest_key, b"", PutMeta())
            nbytes = 0
        if recording is not None:
            recording.record(start, time.time(), nbytes)
        progress.advance(1, nbytes)

    return len(runner.run(_naming_failures(progress, job), pairs, dest.write_threads))


def _transfer_by_stream(
    src: Backend,
    dest: Backend,
    pairs: Iterable[tuple[str, str]],
    runner: Runner,
    allow_missing: bool,
    resumable: bool = False,
) -> int:
    progress, recording = runner.progress, runner.recording

    def job(pair: tuple[str, str]) -> None:
        src_key, dest_key = pair
        start = time.time() if recording is not None else 0.0

        def produce(fileobj: Any, offset: int) -> Blob | None:
            return src.stream_to(src_key, fileobj, offset)

        def verify(path: str, blob: Blob) -> None:
            if blob.size is not None:
                got = os.path.getsize(path)
                if got != blob.size:
                    raise integrity.IntegrityError(
                        f"{src.url(src_key)}: the download holds {got} bytes, the object {blob.size}"
                        + (" (the partial file of an earlier download did not fit it)" if resumable else "")
                    )
            if blob.hash and not integrity.matches_file(path, blob.hash, blob.hash_type, md5=blob.md5,
                                                          crc32c=blob.crc32c):
                raise integrity.mismatch_file(path, src.url(src_key), blob.hash, blob.hash_type)

        try:
            blob = call(src, dest.receive, dest_key, produce, verify, resumable)
        except integrity.IntegrityError:
            # damaged in flight, replaced meanwhile, or a stale partial file (removed): once more
            blob = call(src, dest.receive, dest_key, produce, verify, resumable)
        if blob is None:
            _missing(src, src_key, allow_missing)
            call(dest, dest.put, dest_key, b"", PutMeta())
        nbytes = (blob.size or 0) if blob is not None else 0
        if recording is not None:
            recording.record(start, time.time(), nbytes)
        progress.advance(1, nbytes)

    return len(runner.run(_naming_failures(progress, job), pairs, src.read_threads))


def _transfer_by_handles(
    src: Backend,
    dest: Backend,
    pairs: Iterable[tuple[str, str]],
    runner: Runner,
    block_size: int,
    content_type: str | None,
    allow_missing: bool,
) -> int:
    # each file's write reports itself, with its bytes, to the transfer's progress
    writer = Runner(runner.num_threads, runner.green, runner.progress, runner.recording)
    written = 0
    for block in batched(pairs, block_size):
        handles = []
        units = []
        try:
            for src_key, dest_key in block:
                opened = src.open_stored(src_key)
                if opened is None:
                    _missing(src, src_key, allow_missing)
                    units.append(PutUnit(dest_key, b"", _stored_as_is(content_type, None)))
                    continue
                handles.append(opened[0])
                units.append(PutUnit(dest_key, opened[0], _stored_as_is(content_type, opened[1])))
            put_many(dest, units, writer)
        finally:
            for handle in handles:
                handle.close()
        written += len(units)
    return written


def move(src: Backend, dest: Backend, pairs: Iterable[tuple[str, str]], runner: Runner, block_size: int = 64) -> int:
    """Rename where both sides allow it; otherwise copy a block, then delete that block's sources."""
    require_writable(src)
    require_writable(dest)
    if src.can_rename_to(dest):
        progress = runner.progress

        def job(pair: tuple[str, str]) -> None:
            if not call(src, src.rename_to, pair[0], dest, pair[1]):
                raise FileNotFoundError(f"Move source {src.url(pair[0])} does not exist.")
            progress.advance(1)

        return len(runner.run(job, pairs, dest.write_threads))
    moved = 0
    for block in batched(pairs, block_size):
        moved += transfer(src, dest, block, runner, TransferOptions(block_size=block_size))
        # a key moved onto itself was copied onto itself: deleting it would lose it
        doomed = [s for s, d in block if src.url(s) != dest.url(d)]
        if doomed:
            call(src, src.delete_many, doomed)
    return moved


# -- debris: what interrupted writes leave behind ---------------------------------------------------
#: The default age of ``CloudFiles.sweep`` and ``cloudfiles sweep``, in seconds. A live writer of
#: this machine is protected whatever the age; the age protects the writers no backend can see
#: (another machine's, or an S3 multipart upload's, whose owner S3 does not keep), and one hour
#: is well past the time one object takes to write. Removing a live remote writer's debris never
#: damages data either: that write fails and is retried or resumed.
SWEEP_AGE = 3600.0
#: A temporary file no process of this machine owns (another machine's, or one whose name
#: records no owner) counts as abandoned, for the clean-up after a transfer, once nobody has
#: written to it for this long: no writer pauses a day in the middle of one file.
ABANDONED_AFTER = 24 * 3600.0
_TEMP_FILE = "temp-file"


def _debris(backend: Backend, prefix: str, older_than: float, flat: bool = False) -> list[Any]:
    return list(backend.find_debris(prefix, older_than, flat))


def sweep(backend: Backend, prefix: str, older_than: float, delete: bool, runner: Runner) -> list[dict]:
    """What interrupted writes left under ``prefix``, at least ``older_than`` seconds old (see
    ``Backend.find_debris``), as plain dicts; with ``delete`` each one not ``live`` is removed
    (on the runner's threads, as many as the backend writes with).

    Each dict: ``kind``, ``key`` (the key it was becoming; None when unknown), ``url`` (that
    key's cloudpath, or None), ``handle`` (what it is: a file's path, an upload id, a part's
    key), ``size`` (bytes, or None), ``created`` (Unix seconds, or None), ``age`` (seconds, or
    None), ``owner`` (``host:pid`` or None), ``live`` (a writer of this machine still owns it:
    never removed), ``orphaned`` (its writer is known to have ended) and ``removed``."""
    if delete:
        require_writable(backend)
    found = call(backend, _debris, backend, prefix, older_than)
    now = time.time()
    removed: list[bool] = [False] * len(found)
    if delete:
        def job(index: int) -> None:
            removed[index] = call(backend, backend.remove_debris, [found[index]]) > 0

        runner.run(job, [i for i, item in enumerate(found) if not item.live], backend.write_threads)
    return [{
        "kind": item.kind,
        "key": item.key,
        "url": None if item.key is None else backend.url(item.key),
        "handle": item.handle,
        "size": item.size,
        "created": item.created,
        "age": None if item.created is None else max(0.0, now - item.created),
        "owner": item.owner,
        "live": item.live,
        "orphaned": item.orphaned,
        "removed": was_removed,
    } for item, was_removed in zip(found, removed, strict=True)]


def key_dir(key: str) -> str:
    """The directory prefix of ``key`` (``"a/b/"`` for ``"a/b/c"``, ``""`` at the top)."""
    head, sep, _ = key.rpartition("/")
    return head + sep


def noting_dirs(pairs: Iterable[tuple[str, str]], into: set[str]) -> Iterator[tuple[str, str]]:
    """``pairs`` as they are, the directory of each destination key added to ``into`` (what
    :func:`remove_orphans` needs after a transfer)."""
    add = into.add
    for pair in pairs:
        add(key_dir(pair[1]))
        yield pair


def remove_orphans(backend: Backend, dirs: Iterable[str],
                   owns: Callable[[str], bool] | None = None) -> int:
    """Remove, from the directories ``dirs`` only (key prefixes ending in ``/``, or ``""``:
    each looked at alone, not below it), what interrupted writers left there. Never what a
    live writer of this machine owns. Returns how many were removed.

    - Local files: the temporary files of a process of this machine that has ended, at any
      age, and those no process of this machine owns once nobody has written to them for
      :data:`ABANDONED_AFTER`.
    - Object stores: debris whose writer is known to have ended (GCS parts name their writer),
      and debris of the keys ``owns(key)`` accepts: a resumed job's finished keys, whose
      unfinished uploads and parts can only be its own cut-short writers' (S3 uploads record
      no writer).

    What resumed and Dask transfers run over the directories they wrote into, before they
    finish."""
    if not backend.writable:
        return 0
    removed = 0
    for prefix in sorted(set(dirs)):
        found = [item for item in call(backend, _debris, backend, prefix, 0.0, True)
                 if not item.live]
        if backend.local_files:
            found = [item for item in found if item.kind == _TEMP_FILE]
            doomed = [item for item in found if item.orphaned]
            if len(doomed) < len(found):  # some nobody here owns: only when long untouched
                doomed += [item for item in call(backend, _debris, backend, prefix,
                                                 ABANDONED_AFTER, True)
                           if item.kind == _TEMP_FILE and not item.live and not item.orphaned]
        else:
            doomed = [item for item in found if item.orphaned or (
                owns is not None and item.key is not None and owns(item.key))]
        if doomed:
            removed += call(backend, backend.remove_debris, doomed)
    return removed
