"""This library: cloudfiles_dask.CloudFiles with num_threads=20."""

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
        return _tree_bytes(dest_dir)


def _tree_bytes(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names)


class OursDask(Ours):
    """cloudfiles_dask.dask.transfer on a LocalCluster of ``workers`` processes (two Dask threads
    each, so a worker overlaps two batches; every batch fans out on the CloudFiles' 20 threads
    inside its worker; the default batch size: about two batches per Dask thread). The cluster is
    started and every worker's clients are made before timing; the workers' CPU is added to the
    client CPU (``helper_cpu``)."""

    def __init__(self, spec: dict):
        super().__init__(spec)
        try:
            import distributed

            from cloudfiles_dask.dask import transfer
        except ImportError as e:
            from .base import Unsupported

            raise Unsupported(f"no Dask here ({e})") from None
        self._transfer = transfer
        self.cluster = distributed.LocalCluster(
            n_workers=spec["workers"], threads_per_worker=2, processes=True, host="127.0.0.1",
            dashboard_address=None)
        self.client = distributed.Client(self.cluster)

    def warm(self) -> None:
        super().warm()
        cf = self.cf

        def warm_worker() -> None:  # makes the worker's S3 clients (both transports)
            cf.get("warm-up/missing")
            cf.head("warm-up/missing")

        self.client.run(warm_worker)

    def helper_cpu(self) -> tuple[float, float]:
        """(user, system) CPU seconds the workers have used so far, summed."""
        def cpu() -> tuple[float, float]:
            import resource

            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime, usage.ru_stime

        times = list(self.client.run(cpu).values())
        return sum(u for u, _ in times), sum(s for _, s in times)

    def dask_transfer(self, keys: list[str], dest_dir: str) -> int:
        self._transfer(self.cf, "file://" + dest_dir, keys, client=self.client)
        return _tree_bytes(dest_dir)

    def close(self) -> None:
        self.client.close()
        self.cluster.close()
        super().close()
