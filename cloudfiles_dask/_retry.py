"""Retries with exponential random-window backoff (tenacity), shared by the engine and backends.

Policy (as in the original CloudFiles): up to 7 attempts; before attempt n+1 the wait is uniform in
``[0, min(60, 0.5 * 2**(n-1))]`` seconds — a random window that doubles from 0.5 s up to 60 s.
Only errors the caller's ``retryable`` predicate accepts are retried (connection resets, timeouts,
429 and 5xx answers); anything else, like a 403 or an integrity mismatch, surfaces at once.

One rule for who retries what: the engine retries a whole call (a get, a put, one batch of
exists or deletes) with :func:`call`; a backend retries only the sub-requests of one call
(listing pages, the parts of an upload, the ranges of a read) with :func:`call_inner`, which
marks the error that survives them (:func:`mark_retried`), and :func:`call` never retries a
marked error again: the policy is never applied twice, one around the other.

The first attempt runs without tenacity, so a call that succeeds pays nothing for the policy.
The environment variables ``CLOUD_FILES_RETRY_ATTEMPTS``, ``CLOUD_FILES_RETRY_BASE`` and
``CLOUD_FILES_RETRY_MAX`` override the numbers (read at each retry; tests use them to stay fast).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")

ATTEMPTS = 7
BASE_SECONDS = 0.5
MAX_SECONDS = 60.0


def policy() -> tuple[int, float, float]:
    """``(attempts, base seconds, max seconds)`` in force now."""
    env = os.environ
    return (
        int(env.get("CLOUD_FILES_RETRY_ATTEMPTS", ATTEMPTS)),
        float(env.get("CLOUD_FILES_RETRY_BASE", BASE_SECONDS)),
        float(env.get("CLOUD_FILES_RETRY_MAX", MAX_SECONDS)),
    )


_RETRIED = "_cfdask_retried"


def mark_retried(error: BaseException) -> BaseException:
    """Mark ``error`` as having been retried already under the policy; returns it."""
    try:
        setattr(error, _RETRIED, True)
    except AttributeError:  # pragma: no cover - an exception class with __slots__
        pass
    return error


def retried(error: BaseException) -> bool:
    """True if ``error`` survived the policy already (see :func:`mark_retried`)."""
    return getattr(error, _RETRIED, False)


def call(fn: Callable[..., R], retryable: Callable[[BaseException], bool], *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)``, retried on errors for which ``retryable(error)`` is true and
    that were not retried already (:func:`retried`)."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        if retried(e) or not retryable(e):
            raise
        first = e
    attempts, base, cap = policy()
    if attempts <= 1:
        raise first
    import tenacity

    # The failure above was attempt 1: wait its window, then let tenacity run attempts 2..N,
    # whose windows continue the doubling (base * 2, base * 4, ... capped).
    time.sleep(random.uniform(0, min(cap, base)))
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts - 1),
        wait=tenacity.wait_random_exponential(multiplier=base * 2, max=cap),
        retry=tenacity.retry_if_exception(lambda error: retryable(error) and not retried(error)),
        reraise=True,
    )
    return retrying(fn, *args, **kwargs)


def call_inner(fn: Callable[..., R], retryable: Callable[[BaseException], bool], *args: Any) -> R:
    """:func:`call` for a sub-request inside one backend call; an error that survives the
    policy is marked (:func:`mark_retried`) so the engine does not retry the whole call."""
    try:
        return call(fn, retryable, *args)
    except Exception as e:
        mark_retried(e)
        raise


def timeouts() -> tuple[float, float]:
    """``(connect, read)`` socket timeouts for network backends, in seconds: 10 and 60 unless
    ``CLOUD_FILES_CONNECT_TIMEOUT`` / ``CLOUD_FILES_READ_TIMEOUT`` say otherwise. No call waits on a
    silent server longer than this (per attempt)."""
    env = os.environ
    return (
        float(env.get("CLOUD_FILES_CONNECT_TIMEOUT", 10)),
        float(env.get("CLOUD_FILES_READ_TIMEOUT", 60)),
    )
