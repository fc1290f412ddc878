"""obstore (Rust ``object_store``): async calls with 64 in flight, and sync calls (which release
the GIL) from a pool of 20 threads. The report shows the better of the two as "obstore best".

GCS: ``GCSStore`` takes ``base_url`` and a bearer token; its PUT (an XML-API style
``PUT /bucket/key``) is refused by fake-gcs-server ("invalid uploadType"), so there is no GCS PUT
row for obstore, and GCS objects are seeded by another client.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from .base import ACCESS_KEY, REGION, SECRET_KEY, Adapter, Unsupported

IN_FLIGHT = 64


class _Obstore(Adapter):
    def __init__(self, spec: dict):
        super().__init__(spec)
        import obstore
        from obstore.store import GCSStore, S3Store

        self.obs = obstore
        if self.backend == "s3":
            self.store = S3Store(
                self.s3_bucket, endpoint=self.s3_url, access_key_id=ACCESS_KEY,
                secret_access_key=SECRET_KEY, region=REGION,
                virtual_hosted_style_request=False, client_options={"allow_http": True},
            )
        elif self.backend == "gcs":
            self.store = GCSStore(
                self.gcs_bucket, base_url=self.gcs_url, client_options={"allow_http": True},
                credential_provider=lambda: {"token": "anonymous", "expires_at": None},
            )
        else:
            raise Unsupported(f"obstore is not compared on {self.backend}")

    def _no_gcs_put(self) -> None:
        if self.backend == "gcs":
            raise Unsupported("obstore's GCS PUT is refused by fake-gcs-server (invalid uploadType)")

    def warm(self) -> None:
        try:
            self.obs.head(self.store, "warm-up/missing")
        except FileNotFoundError:
            pass

    def delete(self, keys: list[str]) -> int:
        self.obs.delete(self.store, keys)  # its bulk delete (S3 DeleteObjects, 1000 per request)
        return len(keys)

    def list(self, prefix: str) -> int:
        return sum(len(batch) for batch in self.obs.list(self.store, prefix))

    def put_file(self, key: str, path: str) -> int:
        self._no_gcs_put()
        self.obs.put(self.store, key, Path(path))  # multipart for large files (obstore's default)
        return os.path.getsize(path)

    def get_file(self, key: str, path: str) -> int:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            for chunk in self.obs.get(self.store, key):
                f.write(chunk)
        return os.path.getsize(path)


class ObstoreAsync(_Obstore):
    def _gather(self, make_coro, items) -> list:
        async def run():
            limit = asyncio.Semaphore(IN_FLIGHT)

            async def one(item):
                async with limit:
                    return await make_coro(item)

            return await asyncio.gather(*(one(i) for i in items))

        return asyncio.run(run())

    def get(self, keys: list[str]) -> int:
        async def one(key):
            resp = await self.obs.get_async(self.store, key)
            return len(await resp.bytes_async())

        return sum(self._gather(one, keys))

    def put(self, keys: list[str], datas: list[bytes]) -> int:
        self._no_gcs_put()

        async def one(pair):
            await self.obs.put_async(self.store, pair[0], pair[1])
            return len(pair[1])

        return sum(self._gather(one, list(zip(keys, datas, strict=False))))

    def exists(self, keys: list[str]) -> int:
        async def one(key):
            try:
                await self.obs.head_async(self.store, key)
                return 1
            except FileNotFoundError:
                return 0

        return sum(self._gather(one, keys))

    def delete(self, keys: list[str]) -> int:
        async def run():
            await self.obs.delete_async(self.store, keys)

        asyncio.run(run())
        return len(keys)

    def put_large(self, key: str, data: bytes) -> int:
        self._no_gcs_put()

        async def run():
            await self.obs.put_async(self.store, key, data)

        asyncio.run(run())
        return len(data)

    def get_large(self, key: str) -> int:
        async def run():
            resp = await self.obs.get_async(self.store, key)
            return len(await resp.bytes_async())

        return asyncio.run(run())


class ObstoreThreads(_Obstore):
    def get(self, keys: list[str]) -> int:
        obs, store = self.obs, self.store
        return sum(self.pool.map(lambda k: len(obs.get(store, k).bytes()), keys))

    def put(self, keys: list[str], datas: list[bytes]) -> int:
        self._no_gcs_put()
        obs, store = self.obs, self.store
        list(self.pool.map(lambda k, d: obs.put(store, k, d), keys, datas))
        return sum(map(len, datas))

    def exists(self, keys: list[str]) -> int:
        obs, store = self.obs, self.store

        def one(key):
            try:
                obs.head(store, key)
                return 1
            except FileNotFoundError:
                return 0

        return sum(self.pool.map(one, keys))

    def put_large(self, key: str, data: bytes) -> int:
        self._no_gcs_put()
        self.obs.put(self.store, key, data)
        return len(data)

    def get_large(self, key: str) -> int:
        return len(self.obs.get(self.store, key).bytes())
