"""What every adapter shares: the spec, the root URLs, credentials, a thread pool."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

THREADS = 20
ACCESS_KEY = SECRET_KEY = "testing"
REGION = "us-east-1"
AWS_SECRETS = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": REGION,
}


class Unsupported(Exception):
    """This client has no way to do this operation here (reported as such, not as a failure)."""


class Adapter:
    def __init__(self, spec: dict):
        self.spec = spec
        self.backend = spec["backend"]
        self._pool: ThreadPoolExecutor | None = None

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(THREADS)
        return self._pool

    # -- where things are -------------------------------------------------------------------------
    @property
    def s3_url(self) -> str:
        return self.spec["s3"]["url"]

    @property
    def s3_bucket(self) -> str:
        return self.spec["s3"]["bucket"]

    @property
    def gcs_url(self) -> str:
        return self.spec["gcs"]["url"]

    @property
    def gcs_bucket(self) -> str:
        return self.spec["gcs"]["bucket"]

    @property
    def file_root(self) -> str:
        return self.spec["file_root"]

    def cloudfiles_root(self, backend: str | None = None) -> str:
        """The root cloudpath in the CloudFiles grammar (ours and the original share it)."""
        backend = backend or self.backend
        if backend == "s3":
            return f"s3://{self.s3_url}/{self.s3_bucket}/"
        if backend == "gcs":
            return f"gs://{self.gcs_bucket}/"
        if backend == "file":
            return "file://" + os.path.abspath(self.file_root)
        raise Unsupported(backend)

    def warm(self) -> None:
        """One cheap request before timing, so that making the client is not timed."""

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
