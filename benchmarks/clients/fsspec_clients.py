"""s3fs and gcsfs through their bulk calls: ``cat(list)``, ``pipe(dict)``, ``rm(list)``,
``find``; ``exists`` has no bulk form, so the per-key coroutines run through fsspec's own batched
gather (``_run_coros_in_chunks``), as fsspec's bulk calls do. Instance and listing caches off.
gcsfs needs ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` (set by the driver) or it stalls 60 s.
"""

from __future__ import annotations

import os

from .base import ACCESS_KEY, REGION, SECRET_KEY, Adapter, Unsupported


class _FSSpec(Adapter):
    bucket_attr = ""

    def _make_fs(self):
        raise NotImplementedError

    def __init__(self, spec: dict):
        super().__init__(spec)
        self.fs = self._make_fs()
        self.bucket = getattr(self, self.bucket_attr)

    def p(self, key: str) -> str:
        return f"{self.bucket}/{key}"

    def warm(self) -> None:
        self.fs.exists(self.p("warm-up/missing"))

    def get(self, keys: list[str]) -> int:
        found = self.fs.cat([self.p(k) for k in keys], on_error="raise")
        return sum(len(v) for v in found.values())

    def put(self, keys: list[str], datas: list[bytes]) -> int:
        self.fs.pipe({self.p(k): d for k, d in zip(keys, datas, strict=False)})
        return sum(map(len, datas))

    def exists(self, keys: list[str]) -> int:
        from fsspec.asyn import _run_coros_in_chunks, sync

        async def run():
            return await _run_coros_in_chunks([self.fs._exists(self.p(k)) for k in keys])

        return sum(bool(v) for v in sync(self.fs.loop, run))

    def delete(self, keys: list[str]) -> int:
        self.fs.rm([self.p(k) for k in keys])
        return len(keys)

    def list(self, prefix: str) -> int:
        return len(self.fs.find(self.p(prefix)))

    def put_large(self, key: str, data: bytes) -> int:
        self.fs.pipe_file(self.p(key), data)
        return len(data)

    def get_large(self, key: str) -> int:
        return len(self.fs.cat_file(self.p(key)))

    def put_file(self, key: str, path: str) -> int:
        self.fs.put_file(path, self.p(key))
        return os.path.getsize(path)

    def get_file(self, key: str, path: str) -> int:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.fs.get_file(self.p(key), path)
        return os.path.getsize(path)


class S3FS(_FSSpec):
    bucket_attr = "s3_bucket"

    def _make_fs(self):
        if self.backend != "s3":
            raise Unsupported(f"s3fs does not do {self.backend}")
        import s3fs

        return s3fs.S3FileSystem(
            key=ACCESS_KEY, secret=SECRET_KEY, endpoint_url=self.s3_url,
            client_kwargs={"region_name": REGION},
            skip_instance_cache=True, use_listings_cache=False,
        )


class GCSFS(_FSSpec):
    bucket_attr = "gcs_bucket"

    def _make_fs(self):
        if self.backend != "gcs":
            raise Unsupported(f"gcsfs does not do {self.backend}")
        import gcsfs

        return gcsfs.GCSFileSystem(
            endpoint_url=self.gcs_url, token="anon", project="test",
            skip_instance_cache=True, use_listings_cache=False,
        )
