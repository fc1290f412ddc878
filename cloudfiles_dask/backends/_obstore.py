"""The lean data path: obstore (Rust ``object_store``) as the HTTP transport of the cloud backends.

A small GET through botocore costs ~2 ms of Python CPU (request building, signing, parsing), and
the GIL caps a process at one core of that. obstore's synchronous calls do the whole request in
Rust with the GIL released, so the engine's threads really run in parallel and a request costs
~0.1-0.2 ms of CPU. Backends use it for the calls that dominate bulk work (whole-object GETs,
single-request PUTs, HEAD for exists/size) and keep their SDK for everything else.

Rules kept here, once for every backend:

- which transport is in force: ``CLOUD_FILES_TRANSPORT`` = ``auto`` (default: obstore when it
  is importable and gevent has not monkey-patched threading — a blocking Rust call would stall
  every greenlet), ``obstore`` (required; an ImportError says how to install it) or ``sdk``
  (botocore only; gs:// has one transport of its own, see gcs.py);
- obstore's own retries are off: the library's retry policy (``_retry``) is the only one;
- connect/read timeouts follow ``CLOUD_FILES_CONNECT_TIMEOUT`` / ``CLOUD_FILES_READ_TIMEOUT``;
  there is no cap on a whole request (a large download may take as long as it needs);
- stores are made lazily, one per process and configuration (a pickled backend never carries
  one);
- obstore's tokio runtime does not survive ``fork()``: its threads are gone in the child and the
  first call there would hang forever. A child forked from a process that had imported obstore
  therefore uses the SDK path (spawned processes — ``parallel=N``, Dask — use obstore as usual);
- what an obstore error means: missing, refused (credentials), transient or permanent.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .. import _retry

MODES = ("auto", "obstore", "sdk")

_STORES: dict[tuple, Any] = {}
_LOCK = threading.Lock()
_FORKED_WITH_OBSTORE = False  # set in a child forked from a process that had imported obstore


def _gevent_patched() -> bool:
    if "gevent" not in sys.modules:
        return False
    try:
        from gevent import monkey

        return bool(monkey.is_module_patched("threading"))
    except Exception:  # pragma: no cover - half-installed gevent
        return False


def mode() -> str:
    """The transport asked for by ``CLOUD_FILES_TRANSPORT`` (checked)."""
    value = os.environ.get("CLOUD_FILES_TRANSPORT", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"CLOUD_FILES_TRANSPORT must be one of {', '.join(MODES)}, got {value!r}")
    return value


def enabled() -> bool:
    """Whether backends made now should send their data-path calls through obstore."""
    wanted = mode()
    if wanted == "sdk" or _FORKED_WITH_OBSTORE or _gevent_patched():
        return False
    try:
        import obstore  # noqa: F401
    except ImportError as e:
        if wanted == "obstore":
            raise ImportError(
                "CLOUD_FILES_TRANSPORT=obstore needs the obstore package: pip install obstore"
            ) from e
        return False
    return True


def client_options(endpoint: str | None) -> dict:
    connect, read = _retry.timeouts()
    options: dict[str, Any] = {
        "connect_timeout": timedelta(seconds=connect),
        "read_timeout": timedelta(seconds=read),
        "timeout": timedelta(days=1),  # no cap on a whole request; read_timeout guards stalls
        "user_agent": "cloudfiles-dask",
    }
    if endpoint and endpoint.startswith("http://"):
        options["allow_http"] = True
    return options


NO_RETRIES = {"max_retries": 0, "retry_timeout": timedelta(seconds=0)}


def part_retries() -> dict:
    """obstore's retry settings for the parts of one multipart upload, from the library's
    policy (``_retry``): a failed part is sent again, not the whole upload."""
    attempts, base, cap = _retry.policy()
    return {"max_retries": max(0, attempts - 1), "retry_timeout": timedelta(hours=1),
            "backoff": {"init_backoff": timedelta(seconds=base),
                        "max_backoff": timedelta(seconds=cap), "base": 2.0}}


def store(config_key: tuple, make: Callable[[], Any]) -> Any:
    """The store of this process for ``config_key`` (made by ``make()`` once)."""
    key = (os.getpid(), _retry.timeouts(), *config_key)
    found = _STORES.get(key)
    if found is not None:
        return found
    with _LOCK:
        found = _STORES.get(key)
        if found is None:
            found = _STORES[key] = make()
        return found


_INHERITED: list[dict] = []  # the parent's stores, in a forked child: never dropped


def _forget_after_fork() -> None:
    global _STORES, _LOCK, _FORKED_WITH_OBSTORE
    # Keep the parent's stores alive forever: dropping one runs Rust destructors that may wait
    # on locks held by tokio threads that do not exist in this process (a hang).
    _INHERITED.append(_STORES)
    _STORES = {}
    _LOCK = threading.Lock()
    if "obstore" in sys.modules:
        _FORKED_WITH_OBSTORE = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


# -- which keys obstore can carry ------------------------------------------------------------
# object_store parses keys into its own Path type: it refuses control characters and "." or ".."
# segments, and silently drops empty segments ("/x", "x/" and "x//y" become "x" and "x/y").
_NOT_A_PLAIN_KEY = re.compile(r"[\x00-\x1f\x7f]|(?:^|/)\.{0,2}(?:/|$)")


def plain_key(key: str) -> bool:
    """True if obstore reads and writes exactly ``key``; other keys must take the SDK path."""
    return _NOT_A_PLAIN_KEY.search(key) is None


# -- what an error means ----------------------------------------------------------------------
MISSING, REFUSED, TRANSIENT, PERMANENT = "missing", "refused", "transient", "permanent"

_STATUS = re.compile(r"status code: (\d{3})")
# transport-level trouble: the request may not have arrived, or the answer was cut short
_TRANSPORT_WORDS = (
    "error sending request", "connection", "timed out", "timeout", "reset", "broken pipe",
    "body", "incomplete", "unexpected eof", "closed", "hyper", "dns", "tcp connect",
)


def is_obstore_error(error: BaseException) -> bool:
    return type(error).__module__.startswith("obstore")


def status_of(error: BaseException) -> int | None:
    found = _STATUS.search(str(error))
    return int(found.group(1)) if found else None


def classify(error: BaseException) -> str | None:
    """MISSING, REFUSED, TRANSIENT or PERMANENT for an obstore error; None for anything else."""
    if not is_obstore_error(error) and not (
        isinstance(error, FileNotFoundError) and "obstore" in sys.modules
        and "Object at location" in str(error)
    ):
        return None
    name = type(error).__name__
    if isinstance(error, FileNotFoundError) or name == "NotFoundError":
        return MISSING
    if name in ("PermissionDeniedError", "UnauthenticatedError"):
        return REFUSED
    status = status_of(error)
    if status is not None:
        if status in (401, 403):
            return REFUSED
        if status == 404:
            return MISSING
        return TRANSIENT if status == 429 or status >= 500 else PERMANENT
    text = str(error).lower()
    if name == "GenericError" and any(word in text for word in _TRANSPORT_WORDS):
        return TRANSIENT
    return PERMANENT


_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</")


def message(error: BaseException) -> str:
    """What the service answered, briefly: ``HTTP 404 NoSuchBucket: The specified bucket does
    not exist``, or the first line of the error (the debug dump after it is noise for users)."""
    text = str(error).strip()
    status = status_of(error)
    fields = dict(_XML_FIELD.findall(text))
    if status is not None and fields:
        answer = f"HTTP {status} {fields.get('Code', '')}".strip()
        return answer + (f": {fields['Message']}" if fields.get("Message") else "")
    return text.splitlines()[0] if text else type(error).__name__
