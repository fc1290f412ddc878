"""Helpers for tests that start worker processes of their own."""

from __future__ import annotations

import subprocess


def stop_all(procs: list[subprocess.Popen]) -> None:
    """Kill the processes still running, reap all of them and close their pipes."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()
