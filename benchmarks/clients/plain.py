"""The floor on local disk: a plain single-threaded Python loop."""

from __future__ import annotations

import os
from collections.abc import Iterator

from .base import Adapter, Unsupported


class Plain(Adapter):
    def __init__(self, spec: dict):
        super().__init__(spec)
        if self.backend != "file":
            raise Unsupported("plain loops are local disk only")
        self.root = os.path.abspath(self.file_root)

    def get(self, keys: list[str]) -> int:
        root, total = self.root, 0
        for key in keys:
            with open(os.path.join(root, key), "rb") as f:
                total += len(f.read())
        return total

    def put(self, keys: list[str], datas: list[bytes]) -> int:
        root, made = self.root, set()
        for key, data in zip(keys, datas, strict=False):
            path = os.path.join(root, key)
            parent = os.path.dirname(path)
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            with open(path, "wb") as f:
                f.write(data)
        return sum(map(len, datas))

    def list(self, prefix: str) -> int:
        # a listing's output is the keys ("prefix/name"), so the floor makes them too (unsorted:
        # directory order); counted by the same consumer as every other client's listing
        def walk(path: str, rel: str) -> Iterator[str]:
            with os.scandir(path) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        yield from walk(entry.path, rel + entry.name + "/")
                    else:
                        yield rel + entry.name

        return sum(1 for _ in walk(os.path.join(self.root, prefix), prefix.rstrip("/") + "/"))
