"""The floor on local disk: a plain single-threaded Python loop."""

from __future__ import annotations

import os

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
        def walk(path: str) -> int:
            count = 0
            with os.scandir(path) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        count += walk(entry.path)
                    else:
                        count += 1
            return count

        return walk(os.path.join(self.root, prefix))
