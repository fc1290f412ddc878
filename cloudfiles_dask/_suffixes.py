"""A key's encoding as a name suffix, as file:// and mem:// store it.

A key K stored with encoding E is kept under the name K + suffix(E). Reads probe K first, then
K.gz, K.br, K.zstd, K.xz, K.bz2, in that fixed order, so the answer never depends on history.
Writes remove the other forms of K, so through this library a key has exactly one stored form.
"""

from __future__ import annotations

from .compression import ENCODING_SUFFIXES, SUFFIX_ENCODINGS, SUFFIX_ORDER

_SUFFIXES: tuple[tuple[str, str | None], ...] = tuple(
    (sfx, SUFFIX_ENCODINGS.get(sfx)) for sfx in SUFFIX_ORDER
)


def stored_variants(key: str) -> tuple[tuple[str, str | None], ...]:
    """``(stored name, encoding)`` candidates for ``key`` in probing order."""
    return tuple((key + sfx, enc) for sfx, enc in _SUFFIXES)


def stored_name(key: str, encoding: str | None) -> str:
    """The name ``key`` is stored under with ``encoding`` (always suffixed, even if ``key``
    already ends with that suffix: ``x.gz`` gzipped is ``x.gz.gz`` and reads back decoded)."""
    return key + (ENCODING_SUFFIXES[encoding] if encoding else "")


def split_stored_name(name: str) -> tuple[str, str | None]:
    """``(key, encoding)`` for a stored name: one known suffix is stripped."""
    for sfx, enc in _SUFFIXES[1:]:
        if name.endswith(sfx):
            return name[: -len(sfx)], enc
    return name, None
