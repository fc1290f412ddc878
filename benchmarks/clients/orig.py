"""The original CloudFiles (PyPI ``cloud-files``, import name ``cloudfiles``), num_threads=20.

S3 takes ``s3://http://127.0.0.1:PORT/bucket/`` with a secrets dict; GCS on the emulator takes an
``AnonymousCredentials()`` object as ``secrets`` (plus STORAGE_EMULATOR_HOST, set by the driver).
Its GCS ``exists`` and ``delete``, and the deletion of the parts of a large (composite) upload,
go through the JSON batch API, which fake-gcs-server does not serve ("not multi-part"): those
rows are reported as unsupported on this server.
cloud-files reads ``os.environ['AWS_SESSION_TOKEN']`` whenever ``AWS_ACCESS_KEY_ID`` is set in
the environment, so the driver keeps AWS keys out of the environment (every client gets them
explicitly).
"""

from __future__ import annotations

from .base import Unsupported
from .ours import Ours


def _batch_refused(error: Exception) -> bool:
    return "not multi-part" in str(error)


class OriginalCloudFiles(Ours):
    module = "cloudfiles"

    def _secrets(self, root: str):
        if root.startswith("gs://"):
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()
        return super()._secrets(root)

    def exists(self, keys: list[str]) -> int:
        return self._batched("exists", super().exists, keys)

    def delete(self, keys: list[str]) -> int:
        return self._batched("delete", super().delete, keys)

    def put_large(self, key: str, data: bytes) -> int:
        return self._batched("a large upload (deleting its composite parts)", super().put_large, key, data)

    def put_file(self, key: str, path: str) -> int:
        return self._batched("a large upload (deleting its composite parts)", super().put_file, key, path)

    def _batched(self, name: str, call, *args) -> int:
        try:
            return call(*args)
        except Exception as e:
            if self.backend == "gcs" and _batch_refused(e):
                raise Unsupported(f"cloud-files uses GCS JSON batch requests for {name}; "
                                  "fake-gcs-server does not serve them") from e
            raise
