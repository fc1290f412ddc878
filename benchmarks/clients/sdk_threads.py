"""Plain boto3 / google-cloud-storage driven by a ThreadPoolExecutor of 20 threads.

Their connection pools are sized to the 20 threads (boto3 ``max_pool_connections=20``; the
requests session of google-cloud-storage gets an ``HTTPAdapter(pool_maxsize=20)``), as anyone
driving them from 20 threads would do after the first "pool is full" warning. Large objects use
boto3's transfer manager (``upload_fileobj``/``download_fileobj``/``upload_file``/
``download_file``) with ``max_concurrency=20``.
"""

from __future__ import annotations

import io
import os

from .base import ACCESS_KEY, REGION, SECRET_KEY, THREADS, Adapter, Unsupported


class Boto3Threads(Adapter):
    def __init__(self, spec: dict):
        super().__init__(spec)
        if self.backend != "s3":
            raise Unsupported("boto3 is S3 only")
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.client = boto3.session.Session().client(
            "s3", endpoint_url=self.s3_url, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, region_name=REGION,
            config=Config(
                max_pool_connections=THREADS, s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self.transfer_config = TransferConfig(max_concurrency=THREADS)
        self.bucket = self.s3_bucket

    def warm(self) -> None:
        self.exists(["warm-up/missing"])

    def get(self, keys: list[str]) -> int:
        c, b = self.client, self.bucket
        return sum(self.pool.map(lambda k: len(c.get_object(Bucket=b, Key=k)["Body"].read()), keys))

    def put(self, keys: list[str], datas: list[bytes]) -> int:
        c, b = self.client, self.bucket
        list(self.pool.map(lambda k, d: c.put_object(Bucket=b, Key=k, Body=d), keys, datas))
        return sum(map(len, datas))

    def exists(self, keys: list[str]) -> int:
        from botocore.exceptions import ClientError

        c, b = self.client, self.bucket

        def one(key):
            try:
                c.head_object(Bucket=b, Key=key)
                return 1
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return 0
                raise

        return sum(self.pool.map(one, keys))

    def delete(self, keys: list[str]) -> int:
        c, b = self.client, self.bucket
        chunks = [keys[i : i + 1000] for i in range(0, len(keys), 1000)]

        def one(chunk):
            c.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})

        list(self.pool.map(one, chunks))
        return len(keys)

    def list(self, prefix: str) -> int:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sum(len(page.get("Contents", [])) for page in pages)

    def put_large(self, key: str, data: bytes) -> int:
        self.client.upload_fileobj(io.BytesIO(data), self.bucket, key, Config=self.transfer_config)
        return len(data)

    def get_large(self, key: str) -> int:
        buf = io.BytesIO()
        self.client.download_fileobj(self.bucket, key, buf, Config=self.transfer_config)
        return len(buf.getbuffer())

    def put_file(self, key: str, path: str) -> int:
        self.client.upload_file(path, self.bucket, key, Config=self.transfer_config)
        return os.path.getsize(path)

    def get_file(self, key: str, path: str) -> int:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.client.download_file(self.bucket, key, path, Config=self.transfer_config)
        return os.path.getsize(path)


class GCSThreads(Adapter):
    def __init__(self, spec: dict):
        super().__init__(spec)
        if self.backend != "gcs":
            raise Unsupported("google-cloud-storage is GCS only")
        import requests
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        self.client = storage.Client(project="test", credentials=AnonymousCredentials())
        adapter = requests.adapters.HTTPAdapter(pool_connections=THREADS, pool_maxsize=THREADS)
        self.client._http.mount("http://", adapter)
        self.bucket = self.client.bucket(self.gcs_bucket)

    def warm(self) -> None:
        self.bucket.blob("warm-up/missing").exists()

    def get(self, keys: list[str]) -> int:
        b = self.bucket
        return sum(self.pool.map(lambda k: len(b.blob(k).download_as_bytes()), keys))

    def put(self, keys: list[str], datas: list[bytes]) -> int:
        b = self.bucket
        list(self.pool.map(
            lambda k, d: b.blob(k).upload_from_string(d, content_type="application/octet-stream"),
            keys, datas,
        ))
        return sum(map(len, datas))

    def exists(self, keys: list[str]) -> int:
        b = self.bucket
        return sum(self.pool.map(lambda k: int(b.blob(k).exists()), keys))

    def delete(self, keys: list[str]) -> int:
        b = self.bucket
        list(self.pool.map(lambda k: b.blob(k).delete(), keys))
        return len(keys)

    def list(self, prefix: str) -> int:
        return sum(1 for _ in self.client.list_blobs(self.bucket, prefix=prefix))

    # one large object: google-cloud-storage's own calls (they check md5/crc32c on download)
    def put_large(self, key: str, data: bytes) -> int:
        self.bucket.blob(key).upload_from_string(data, content_type="application/octet-stream")
        return len(data)

    def get_large(self, key: str) -> int:
        return len(self.bucket.blob(key).download_as_bytes())

    def put_file(self, key: str, path: str) -> int:
        self.bucket.blob(key).upload_from_filename(path)
        return os.path.getsize(path)

    def get_file(self, key: str, path: str) -> int:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.bucket.blob(key).download_to_filename(path)
        return os.path.getsize(path)
