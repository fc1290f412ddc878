"""This library: cloudfiles_dask.CloudFiles with num_threads=20 (its Dask rows: dask_clients.py)."""

from __future__ import annotations

import os

from .base import AWS_SECRETS, THREADS, Adapter


class Ours(Adapter):
    module = "cloudfiles_dask"

    def __init__(self, spec: dict):
        super().__init__(spec)
        self.lib = __import__(self.module)
        self.cf = self._open(self.cloudfiles_root())

    def _secrets(self, root: str):
        if root.startswith("s3://"):
            return dict(AWS_SECRETS)
        return None

    def _open(self, root: str):
        return self.lib.CloudFiles(root, secrets=self._secrets(root), num_threads=THREADS)

    def warm(self) -> None:
        self.cf.get("warm-up/missing")
        if self.backend == "s3":
            # our S3 has two transports (our own signed requests for the data path and listing,
            # botocore for deletes): make both now, as every peer's one client is made before timing
            # (not for cloud-files, whose GCS head() of a missing key raises AttributeError)
            self.cf.head("warm-up/missing")
        if self.spec.get("op") == "transfer_mix":
            self.warm_mix(self.spec["local_path"] + "-warm")

    def get(self, keys: list[str]) -> int:
        results = self.cf.get(keys)
        return sum(len(r["content"]) for r in results if r["content"] is not None)

    def put(self, keys: list[str], datas: list[bytes]) -> int:
        self.cf.puts(list(zip(keys, datas, strict=False)), compress=None)
        return sum(map(len, datas))

    def exists(self, keys: list[str]) -> int:
        return sum(bool(v) for v in self.cf.exists(keys).values())

    def delete(self, keys: list[str]) -> int:
        self.cf.delete(keys)
        return len(keys)

    def list(self, prefix: str) -> int:
        return sum(1 for _ in self.cf.list(prefix))

    def put_large(self, key: str, data: bytes) -> int:
        self.cf.put(key, data, compress=None)
        return len(data)

    def get_large(self, key: str) -> int:
        return len(self.cf.get(key))

    def put_file(self, key: str, path: str) -> int:
        with open(path, "rb") as f:
            self.cf.put(key, f, compress=None)
        return os.path.getsize(path)

    def get_file(self, key: str, path: str) -> int:
        # the CloudFiles way to a file: transfer to a file:// root (path = root/key)
        root = path[: -len(key)].rstrip("/")
        self.cf.transfer_to("file://" + root, paths=[key])
        return os.path.getsize(path)

    def transfer(self, src_root: str, mid_root: str, dest_root: str) -> dict:
        import time

        t0 = time.perf_counter()
        self._open(src_root).transfer_to(self._open(mid_root))
        t1 = time.perf_counter()
        self._open(mid_root).transfer_to(self._open(dest_root))
        t2 = time.perf_counter()
        return {"file_to_s3_s": t1 - t0, "s3_to_gcs_s": t2 - t1}

    def dask_transfer(self, keys: list[str], dest_dir: str) -> int:
        """The in-process baseline of the Dask rows: one transfer_to on this process's threads."""
        self.cf.transfer_to("file://" + dest_dir, paths=keys)
        return tree_bytes(dest_dir)

    # -- the mixed-size transfer (S3 -> file://): one process here, Dask in clients.dask_clients --
    @property
    def mix_src(self):
        """The CloudFiles of the mixed-size objects (``prefix`` under the bucket), made once."""
        if getattr(self, "_mix_src", None) is None:
            self._mix_src = self._open(self.cloudfiles_root() + self.spec["prefix"] + "/")
        return self._mix_src

    def warm_mix(self, scratch: str, **kwargs) -> None:
        """Before timing: the source's connections, and one small transfer to ``scratch`` (the
        file:// side and every code path of a transfer imported and started once; ``kwargs``:
        ``client=`` for the Dask rows)."""
        self.mix_src.get("warm-up/missing")
        self.mix_src.head("warm-up/missing")
        self.mix_src.transfer_to("file://" + scratch, paths=[self.spec["warm_key"]], **kwargs)

    def transfer_mix(self, dest_dir: str) -> int:
        """``transfer_to(dest)`` with no paths: the source listed (timed), then copied."""
        self.mix_src.transfer_to("file://" + dest_dir)
        return tree_bytes(dest_dir)


def tree_bytes(root: str) -> int:
    """The bytes of every file under ``root``: what arrived, whatever a transfer returns."""
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names)

