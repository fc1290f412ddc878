"""``cloudfiles verify SOURCE TARGET``: are two trees (or two files) the same?

Three checks, in order: the sets of names, the stored sizes, and checksums. Checksums come from
the services (Content-Md5, a plain md5 ETag, GCS crc32c, equal multipart ETags); where one side
has none — always the case for local files — ``--md5`` downloads the stored bytes and computes
md5 (in batches of up to 1 GiB). Sizes and checksums are of the *stored* bytes: a gzip copy of
an uncompressed file is a mismatch, as it should be for a verification of a copy.

An S3 object uploaded in parts has an ETag ``<md5 of the parts' md5s>-<parts>``, not the md5 of
its bytes. With ``--part-size P``, a file larger than ``--multipart-threshold`` (default: P)
whose counterpart has such an ETag is hashed in parts of P bytes the same way and compared with
it, so the object itself is never downloaded. Otherwise (or with other multipart ETags on both
sides) ``--md5`` downloads both and compares whole-content md5s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

import click

from .._checksums import part_md5s
from ..exceptions import MD5IntegrityError
from ._common import (
    CLIError,
    cloudfiles,
    dir_exists,
    errors_to_stdout,
    failure_status,
    file_exists,
    parse_path,
)

_HEX_MD5 = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART = re.compile(r"^[0-9a-f]{32}-\d+$")
BATCH_BYTES = 1 << 30


def checksums(meta: dict | None) -> dict[str, str]:
    """What a head() dict says about the content: ``{"md5": hex, "crc32c": b64, "etag": multipart}``."""
    found: dict[str, str] = {}
    if not meta:
        return found
    md5 = meta.get("Content-Md5") or meta.get("Content-MD5")
    if md5:
        try:
            found["md5"] = base64.b64decode(md5, validate=True).hex() if not _HEX_MD5.match(md5.lower()) else md5.lower()
        except (binascii.Error, ValueError):
            pass
    etag = (meta.get("ETag") or meta.get("Etag") or "").strip().strip('"').lower()
    if etag.startswith("w/"):
        etag = ""  # weak HTTP validators are not checksums
    if _HEX_MD5.match(etag):
        found.setdefault("md5", etag)
    elif _MULTIPART.match(etag):
        found["etag"] = etag
    crc = meta.get("Content-Crc32c")
    if crc:
        found["crc32c"] = str(crc)
    return found


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def multipart_etag(content: bytes, part_size: int) -> str:
    """The ETag S3 gives ``content`` uploaded in parts of ``part_size`` bytes:
    ``<hex md5 of the parts' md5 digests>-<number of parts>``."""
    digests = part_md5s(content, part_size)
    return f"{md5_hex(b''.join(digests))}-{len(digests)}"


def _download_md5(root: str, keys: list[str], sizes: dict[str, int],
                  digest: Any = md5_hex, part_size: int | None = None) -> dict[str, str]:
    """``digest`` (md5 hex by default) of the stored bytes of ``keys``, downloaded in batches of
    about 1 GiB. The download is checked against the service's checksum; ``part_size`` is the
    part size to try for multipart ETags (besides the usual ones)."""
    cf = cloudfiles(root)
    out: dict[str, str] = {}
    batch: list[str] = []
    batch_bytes = 0

    def flush() -> None:
        try:
            results = cf.get(batch, raw=True, part_size=part_size)
        except MD5IntegrityError as e:
            hint = "" if part_size else (
                "; if it was uploaded in parts of an unusual size, give that size with --part-size")
            raise CLIError(f"{e}{hint}") from None
        for result in results:
            if result["content"] is not None:
                out[result["path"]] = digest(result["content"])
        batch.clear()

    for key in keys:
        batch.append(key)
        batch_bytes += sizes.get(key) or 0
        if batch_bytes >= BATCH_BYTES:
            flush()
            batch_bytes = 0
    if batch:
        flush()
    return out


@click.command()
@click.argument("source")
@click.argument("target")
@click.option("-m", "--only-matching", is_flag=True,
              help="Compare only the names present on both sides; ignore the others.")
@click.option("-v", "--verbose", is_flag=True, help="Print a table of every difference (stdout).")
@click.option("--md5", is_flag=True,
              help="Download and md5 the files whose service gives no usable checksum. Required when a "
                   "side is local (local files have no stored checksum).")
@click.option("--part-size", type=click.IntRange(min=1), default=None, metavar="BYTES",
              help="S3 objects with a multipart ETag were uploaded in parts of this many bytes: the "
                   "other side's file is hashed in such parts and compared with the ETag, so the "
                   "object is not downloaded. Implies --md5.")
@click.option("--multipart-threshold", type=click.IntRange(min=0), default=None, metavar="BYTES",
              help="With --part-size: only files larger than this are hashed in parts (default: the "
                   "part size); smaller ones fall back to --md5.")
def verify(source: str, target: str, only_matching: bool, verbose: bool, md5: bool,
           part_size: int | None, multipart_threshold: int | None) -> None:
    """Check that TARGET holds the same files as SOURCE: names, sizes and checksums.

    SOURCE and TARGET are both directories (compared recursively) or both files. Prints
    "success. N files matching." and exits 0, or "failed. ..." on stderr and exits 1.

    \b
    Examples:
      cloudfiles verify gs://bucket/dataset s3://mirror/dataset
      cloudfiles verify --md5 ./dataset gs://bucket/dataset
      cloudfiles verify --md5 -v ./a.bin gs://bucket/a.bin
      cloudfiles verify -m gs://bucket/big gs://bucket/partial-copy   # only the shared names
      cloudfiles verify --part-size 8388608 ./big s3://bucket/big     # multipart ETags, 8 MiB parts
    """
    if multipart_threshold is not None and part_size is None:
        raise CLIError("--multipart-threshold needs --part-size (the part size of the uploads)")
    if part_size is not None:
        md5 = True
        if multipart_threshold is None:
            multipart_threshold = part_size
    multipart = (part_size, multipart_threshold) if part_size is not None else None
    src, dst = parse_path(source), parse_path(target)
    for spec in (src, dst):
        if spec.wildcard:
            raise CLIError(f"{spec.arg}: verify does not take wildcards")
    if (src.local or dst.local) and not md5:
        local = src.arg if src.local else dst.arg
        raise CLIError(f"{local} is local and local files have no stored checksum; rerun with --md5")

    src_dir, dst_dir = dir_exists(src), dir_exists(dst)
    for spec, is_dir in ((src, src_dir), (dst, dst_dir)):
        if not is_dir and not file_exists(spec):
            raise CLIError(f"{spec.arg} does not exist")
    if src_dir != dst_dir:
        kinds = {True: "a directory", False: "a file"}
        raise CLIError(f"{source} is {kinds[src_dir]} but {target} is {kinds[dst_dir]}; "
                       "compare two directories or two files")
    if src_dir:
        src_root, dst_root = src.dirpath, dst.dirpath
        src_sizes = dict(cloudfiles(src_root).list(size=True))
        dst_sizes = dict(cloudfiles(dst_root).list(size=True))
        pairs = [(k, k) for k in sorted(src_sizes.keys() & dst_sizes.keys())]
        only_src = sorted(src_sizes.keys() - dst_sizes.keys())
        only_dst = sorted(dst_sizes.keys() - src_sizes.keys())
    else:
        src_root, dst_root = src.base, dst.base
        src_sizes, dst_sizes = {src.name: None}, {dst.name: None}
        pairs = [(src.name, dst.name)]
        only_src = only_dst = []

    _fill_sizes(src_root, src_sizes, [s for s, _ in pairs])
    _fill_sizes(dst_root, dst_sizes, [d for _, d in pairs])

    problems: list[tuple[str, str, Any, Any]] = []  # (name, problem, source value, target value)
    if not only_matching:
        problems += [(k, "missing in target", "present", "-") for k in only_src]
        problems += [(k, "missing in source", "-", "present") for k in only_dst]
    same_size = []
    for s, d in pairs:
        if src_sizes.get(s) != dst_sizes.get(d):
            problems.append((s, "size differs", src_sizes.get(s), dst_sizes.get(d)))
        else:
            same_size.append((s, d))

    problems += _compare_checksums(src_root, dst_root, same_size, src_sizes, dst_sizes, md5,
                                   multipart)

    matching = len(pairs) - sum(1 for p in problems if p[1] not in ("missing in target", "missing in source"))
    ignored = len(only_src) + len(only_dst) if only_matching else 0
    if not problems:
        message = f"success. {matching} {_files(matching)} matching."
        if ignored:
            message += f" {ignored} ignored."
        click.secho(message, fg="green")
        return
    if verbose:
        rows = [("path", "problem", "source", "target")] + [tuple(str(v) for v in p) for p in problems]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            click.echo("  ".join(value.ljust(widths[i]) for i, value in enumerate(row)).rstrip())
    counts: dict[str, int] = {}
    for p in problems:
        counts[p[1]] = counts.get(p[1], 0) + 1
    summary = ", ".join(_count_phrase(n, what) for what, n in counts.items())
    example = problems[0][0]
    hint = "" if verbose else " (-v lists them all)"
    click.secho(f"failed. {summary}; e.g. {example}{hint}. {matching} {_files(matching)} matching.",
                fg="red", err=not errors_to_stdout())
    click.get_current_context().exit(failure_status())


def _files(n: int) -> str:
    return "file" if n == 1 else "files"


def _count_phrase(n: int, problem: str) -> str:
    """``3 files missing in target``, ``1 file with a different size``..."""
    noun = _files(n)
    if problem.endswith(" differs"):
        what = problem[: -len(" differs")]
        return f"{n} {noun} with {'a different' if n == 1 else 'different'} {what}{'' if n == 1 else 's'}"
    return f"{n} {noun} {problem}"


def _fill_sizes(root: str, sizes: dict[str, Any], keys: list[str]) -> None:
    missing = [k for k in keys if sizes.get(k) is None]
    if missing:
        sizes.update(cloudfiles(root).size(missing))


def _compare_checksums(src_root: str, dst_root: str, pairs: list[tuple[str, str]], src_sizes: dict,
                       dst_sizes: dict, md5: bool, multipart: tuple[int, int] | None = None,
                       ) -> list[tuple[str, str, Any, Any]]:
    if not pairs:
        return []
    src_heads = cloudfiles(src_root).head([s for s, _ in pairs])
    dst_heads = cloudfiles(dst_root).head([d for _, d in pairs])
    problems = []
    need_src: list[str] = []
    need_dst: list[str] = []
    undecided: list[tuple[str, str, dict, dict]] = []
    for s, d in pairs:
        a, b = checksums(src_heads.get(s)), checksums(dst_heads.get(d))
        for kind in ("md5", "crc32c"):
            if kind in a and kind in b:
                if a[kind] != b[kind]:
                    problems.append((s, f"{kind} differs", a[kind], b[kind]))
                break
        else:
            if "etag" in a and a.get("etag") == b.get("etag"):
                continue
            undecided.append((s, d, a, b))
            if "md5" not in a:
                need_src.append(s)
            if "md5" not in b:
                need_dst.append(d)
    if multipart is not None and undecided:
        undecided, need_src, need_dst = _compare_multipart(
            src_root, dst_root, undecided, src_sizes, dst_sizes, multipart, problems)
    if not undecided:
        return problems
    if not md5:
        raise CLIError(
            f"{len(undecided)} files (e.g. {undecided[0][0]}) have no checksum both sides share; "
            "rerun with --md5 to download and compare md5"
        )
    part_size = multipart[0] if multipart else None
    src_md5 = _download_md5(src_root, need_src, src_sizes, part_size=part_size)
    dst_md5 = _download_md5(dst_root, need_dst, dst_sizes, part_size=part_size)
    for s, d, a, b in undecided:
        left, right = a.get("md5") or src_md5.get(s), b.get("md5") or dst_md5.get(d)
        if left is None or right is None or left != right:
            problems.append((s, "md5 differs", left, right))
    return problems


def _unhashed(found: dict[str, str]) -> bool:
    """No md5 of the whole content, and no multipart ETag of its own."""
    return "md5" not in found and "etag" not in found


def _compare_multipart(src_root: str, dst_root: str, undecided: list[tuple[str, str, dict, dict]],
                       src_sizes: dict, dst_sizes: dict, multipart: tuple[int, int],
                       problems: list[tuple[str, str, Any, Any]],
                       ) -> tuple[list[tuple[str, str, dict, dict]], list[str], list[str]]:
    """Settle the pairs where one side has a multipart ETag and the other no checksum of its own,
    and is larger than the threshold: hash that other side in parts of the part size. Adds the
    mismatches to ``problems``; returns what is still undecided, and which sides of it need
    their md5 downloaded."""
    part_size, threshold = multipart
    by_side: dict[str, list[str]] = {"src": [], "dst": []}
    settled: list[tuple[str, str, str, str]] = []  # (src key, dst key, side hashed, etag)
    rest = []
    for s, d, a, b in undecided:
        if "etag" in b and _unhashed(a) and (src_sizes.get(s) or 0) > threshold:
            by_side["src"].append(s)
            settled.append((s, d, "src", b["etag"]))
        elif "etag" in a and _unhashed(b) and (dst_sizes.get(d) or 0) > threshold:
            by_side["dst"].append(d)
            settled.append((s, d, "dst", a["etag"]))
        else:
            rest.append((s, d, a, b))

    def in_parts(content: bytes) -> str:
        return multipart_etag(content, part_size)

    src_etags = _download_md5(src_root, by_side["src"], src_sizes, in_parts, part_size) if by_side["src"] else {}
    dst_etags = _download_md5(dst_root, by_side["dst"], dst_sizes, in_parts, part_size) if by_side["dst"] else {}
    for s, d, side, etag in settled:
        computed = src_etags.get(s) if side == "src" else dst_etags.get(d)
        if computed != etag:
            left, right = (computed, etag) if side == "src" else (etag, computed)
            problems.append((s, "multipart etag differs", left, right))
    need_src = [s for s, _, a, _ in rest if "md5" not in a]
    need_dst = [d for _, d, _, b in rest if "md5" not in b]
    return rest, need_src, need_dst
