"""Whose is it, and does that writer still run? The owner of what an interrupted write left
behind (a temporary file, an upload part) is ``host:pid``; only this machine can tell whether
one of its own processes still runs. Ground: imports nothing of the package."""

from __future__ import annotations

import os
import re
import socket

#: The longest host name an owner carries (Linux's own limit is 64): a temporary file's name
#: holding it stays far below the 255 bytes of a path component.
HOST_CHARS = 63
#: A process that started this much later than its supposed file or part was made is not its
#: writer (its pid was reused since). Generous on purpose: both times come from the wall clock,
#: which may jump forward meanwhile (an NTP correction), and a live writer taken for a dead one
#: would lose its work, while a dead one taken for live only waits for a later clean-up.
PID_REUSE_SLACK = 60.0

_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_boot: list[float | None] = []


def host_tag(hostname: str) -> str:
    """A host name as owners carry it: characters other than letters, digits, ``.``, ``_`` and
    ``-`` replaced (so it stays one path component on every filesystem), at most
    :data:`HOST_CHARS` of them."""
    return _HOST_UNSAFE.sub("_", hostname)[:HOST_CHARS] or "unknown"


def this_host() -> str:
    """This machine's :func:`host_tag`."""
    return host_tag(socket.gethostname())


def this_process() -> str:
    """``host:pid`` of this process."""
    return f"{this_host()}:{os.getpid()}"


def process_state(pid: int) -> tuple[bool, float | None]:
    """``(runs, started)``: whether process ``pid`` of this machine runs (a zombie does not: it
    can write nothing more), and when it started (Unix seconds; None where /proc cannot say, as
    on macOS). Outside POSIX a pid cannot be asked about safely (``os.kill`` would end it): it
    counts as running."""
    if pid <= 0:
        return False, None  # os.kill(0, ...) would mean the process group
    if os.name != "posix":
        return True, None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, None
    except PermissionError:
        pass  # another user's process: it runs
    except (OverflowError, OSError):
        return False, None  # no process can have such a pid
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rpartition(b")")[2].split()
        boot = _boot_time()
        state, ticks = fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    except (OSError, IndexError, ValueError):
        return True, None
    if state in (b"Z", b"X"):
        return False, None
    return True, None if boot is None else boot + ticks / _CLOCK_TICKS


def _boot_time() -> float | None:
    """When this machine booted (Unix seconds, from /proc/stat), None where unknown."""
    if not _boot:
        found = None
        try:
            with open("/proc/stat", "rb") as handle:
                for line in handle:
                    if line.startswith(b"btime "):
                        found = float(line.split()[1])
                        break
        except (OSError, ValueError):
            pass
        _boot.append(found)
    return _boot[0]


class Owners:
    """Which writers run, each pid asked once per instance (one search of a directory full of
    a killed writer's files asks once)."""

    def __init__(self) -> None:
        self.host = this_host()
        self._states: dict[int, tuple[bool, float | None]] = {}

    def runs(self, host: str, pid: int, created: float | None = None) -> bool:
        """True if ``host:pid`` is a process of this machine that runs and, when ``created``
        (Unix seconds) is given, started no later than that (a process started well after got
        a reused pid)."""
        if host != self.host:
            return False
        if pid == os.getpid():
            return True
        state = self._states.get(pid)
        if state is None:
            state = self._states[pid] = process_state(pid)
        running, started = state
        return running and (started is None or created is None
                            or started <= created + PID_REUSE_SLACK)

    def state(self, owner: str | None, created: float | None = None) -> tuple[bool, bool]:
        """``(live, orphaned)`` of an owner ``host:pid``: a process of this machine that runs,
        or whose writer has ended; ``(False, False)`` where that cannot be told (no owner, or
        another machine)."""
        if not owner:
            return False, False
        host, _, pid_text = owner.rpartition(":")
        if host != self.host or not pid_text.isdigit() or int(pid_text) <= 0:
            return False, False
        live = self.runs(host, int(pid_text), created)
        return live, not live
