"""The writing process of the chaos test (tests/test_chaos.py): one resumable transfer client,
run as ``python tests/chaos_child.py JOB.json`` and killed with SIGKILL by the test at random
moments, then run again until the job is done.

JOB.json: ``{"db", "src", "dest", "keys" (None: list the source), "threshold", "block_size",
"lease_msec"}``. What it prints, one line each, flushed at once:

    started                  the interpreter is up, about to run init
    ready PRE TOTAL          init done (the job recorded or found); PRE rows were already done
    done N                   the ledger's finished count after each block this client finished
    finished N               execute returned; this client transferred N files

Exit status 0 only after ``execute`` returned, so a kill is always told apart from an end.
"""

from __future__ import annotations

import json
import sys

from cloudfiles_dask import CloudFiles, resumable
from cloudfiles_dask.resumable import ResumableTransfer


def threshold_cloudfiles(threshold: int) -> type[CloudFiles]:
    """A CloudFiles whose default ``composite_upload_threshold`` is ``threshold`` bytes (see
    :func:`use_threshold`)."""

    class ThresholdCloudFiles(CloudFiles):
        def __init__(self, cloudpath, *args, **kwargs):
            if not args:
                kwargs.setdefault("composite_upload_threshold", threshold)
            super().__init__(cloudpath, *args, **kwargs)

    return ThresholdCloudFiles


def use_threshold(threshold: int) -> None:
    """Make every CloudFiles that ``ResumableTransfer`` builds upload in parts above
    ``threshold`` bytes.

    TEST SEAM, clearly not an API: ``ResumableTransfer.execute`` builds plain
    ``CloudFiles(source)`` / ``CloudFiles(dest)`` from the cloudpaths of its ledger and offers
    no way to pass ``composite_upload_threshold`` (default 100 MB). The chaos test needs objects
    of a few MiB to go up as S3 multipart uploads and GCS composite uploads, so the name
    ``CloudFiles`` inside ``cloudfiles_dask.resumable`` is replaced by a subclass whose default
    threshold is ``threshold``. Nothing else changes: the configuration (and so what a Dask
    worker receives) is an ordinary CloudFilesConfig with that threshold.
    """
    resumable.CloudFiles = threshold_cloudfiles(threshold)  # type: ignore[misc]


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(job_path: str) -> None:
    with open(job_path) as f:
        job = json.load(f)
    use_threshold(int(job["threshold"]))
    say("started")
    rt = ResumableTransfer(job["db"], lease_msec=int(job.get("lease_msec", 0)))
    rt.init(job["src"], job["dest"], paths=job.get("keys"))
    pre = rt.fileset.finished()
    say(f"ready {pre} {rt.fileset.total()}")
    seen = {"files": 0}

    def progress(event) -> None:
        if event.kind == "advance":
            seen["files"] += event.files
            say(f"done {seen['files']}")

    transferred = rt.execute(block_size=int(job["block_size"]), progress=progress)
    say(f"finished {transferred}")


if __name__ == "__main__":
    main(sys.argv[1])
