"""Crash points for the kill -9 tests: the process dies exactly where a crash is hardest
on the guarantees (records sent, offsets not yet committed), not wherever a timer lands."""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)


def crash_at(count: int, limit: int | None, where: str) -> None:
    """kill -9 this process when ``count`` reaches ``limit`` (None: never)."""
    if limit is not None and count == limit:
        log.warning("Failpoint: killing the worker (SIGKILL) %s", where)
        os.kill(os.getpid(), signal.SIGKILL)
