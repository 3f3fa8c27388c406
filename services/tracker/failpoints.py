"""Crash points for the kill -9 tests: the process dies exactly where a crash is hardest
on the guarantees (records sent, offsets not yet committed), not wherever a timer lands."""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)


def crash_at(count: int, limit: int | None, where: str, *, with_parent: bool = False) -> None:
    """kill -9 this process when ``count`` reaches ``limit`` (None: never). ``with_parent``:
    the worker's process first, for a crash point of a process the worker runs (a machine
    that dies takes both)."""
    if limit is not None and count == limit:
        log.warning("Failpoint: killing the worker (SIGKILL) %s", where)
        if with_parent:
            os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
