"""The intake in a process of its own, next to the worker's.

One Python process runs on one core at a time: validating and re-keying in the worker's
process would take the fold's time. ``tracker worker`` starts the intake as its child
(``python -m services.tracker.intake``, with the same environment, hence the same
settings) and the two live and die together:

* the child reports what each batch adds to the ``tracker_events`` counter as one JSON line
  on its stdout, which only the worker reads (stray prints go to stderr, the log);
* the worker keeps the child's stdin open and never writes to it: when the worker ends,
  however it ends (kill -9 included), the child reads end of file and stops;
* when the child ends, the worker stops too rather than serve figures that no longer move
  (the guarantees need nothing more: the intake is at least once, see ``loop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import BinaryIO

import orjson

from services.tracker.errors import TrackerError
from services.tracker.intake.loop import Counted, Intake
from services.tracker.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0  # seconds the intake gets to stop after the worker closed its stdin


class IntakeExited(TrackerError):
    """The intake's process ended while the worker was running."""


Count = Callable[[str, str, int], None]


async def supervise(count: Count) -> None:
    """Run the intake's process until it ends (an error) or this task is cancelled (the
    worker stops: the process is asked to stop, and killed if it takes too long)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.tracker.intake", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, start_new_session=True)
    assert child.stdout is not None and child.stdin is not None
    log.info("Intake process %d started", child.pid)
    try:
        while line := await child.stdout.readline():
            for topic, outcome, amount in orjson.loads(line):
                count(topic, outcome, amount)
        code = await child.wait()
        how = (f"was killed by {signal.Signals(-code).name}" if code < 0
               else f"exited with {code}; its log lines above say why")
        raise IntakeExited(f"the intake process {child.pid} {how}")
    finally:
        if child.returncode is None:
            child.stdin.close()
            try:
                await asyncio.wait_for(child.wait(), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("Intake process %d did not stop in %.0f s; killing it",
                            child.pid, STOP_TIMEOUT)
                child.kill()
                await child.wait()


def _report_to(stream: BinaryIO) -> Counted:
    def report(counts: list[tuple[str, str, int]]) -> None:
        stream.write(orjson.dumps(counts) + b"\n")
    return report


async def _until_stdin_closes() -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()


async def _serve(settings: Settings, report: BinaryIO) -> None:
    intake = asyncio.ensure_future(Intake(settings, _report_to(report)).run())
    parent_gone = asyncio.ensure_future(_until_stdin_closes())
    await asyncio.wait({intake, parent_gone}, return_when=asyncio.FIRST_COMPLETED)
    if parent_gone.done():
        log.info("The worker closed the intake's stdin; the intake stops")
        intake.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await intake
        return
    parent_gone.cancel()
    intake.result()  # the error that ended it


def main() -> None:
    """The child's entry point (``python -m services.tracker.intake``)."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="[%(asctime)s] [%(process)d] [%(levelname)s] intake: "
                               "%(message)s")
    # The reports get stdout to themselves: anything else printed goes to the log.
    report = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        asyncio.run(_serve(settings, report))
    except Exception:
        log.exception("The intake failed")
        sys.exit(1)
