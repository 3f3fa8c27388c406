"""Keeps every source partition's records in offset order through rebalances.

Right after a rebalance Faust can hand a stream a record prefetched *ahead* of where the
partition resumes; its consumer then drops the records in between (they are below its
read offset) and records them as a "gap" that the next commit treats as processed, so
they are lost for good (faust-streaming/faust#216, #221; here: totals short of the log
after a worker left the group, ``tests/integration/test_chaos.py``).

The tracker's updates are idempotent (event ids, log positions), so the remedy is cheap:
remember the next offset each partition should deliver, and when a record arrives beyond
it, seek the consumer back and skip records until the expected one comes again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka import TopicPartition

log = logging.getLogger(__name__)


# An offset that comes first after this many seeks in a row has no records before it
# (e.g. transaction markers): accept the gap rather than seek forever.
TRUE_GAP_REPEATS = 5
# Faust's consumer sets its read offset just *after* handing a record to the stream, so a
# seek made while the stream handles that record is undone at once (the records read again
# fall below the read offset and are dropped). Seeking a moment later lands after it.
SEEK_DELAY = 0.05
# When even that seek was undone and no record follows to trigger another (the stale ones
# were the partition's last), the seek is repeated until the expected record comes.
SEEK_RETRY = 1.0


Committed = Callable[[Any], Awaitable[int | None]]


def committed_offset(app: faust.App) -> Committed:
    """The group's committed offset of a partition, asked of the broker through Faust's
    consumer. Faust has no public call for it: its aiokafka consumer lives in a thread of
    its own, reached as Faust's own ``seek_to_committed`` does (``_thread.call_thread``)."""
    async def committed(tp: Any) -> int | None:
        thread = app.consumer._thread  # type: ignore[attr-defined]
        consumer = thread._ensure_consumer()
        offset: int | None = await thread.call_thread(
            consumer.committed, TopicPartition(tp.topic, tp.partition))
        return offset
    return committed


class OffsetContinuity:
    """Per partition, the next offset to process; for a partition newly assigned here, the
    group's committed offset, where Faust resumes."""

    def __init__(self, app: faust.App, committed: Committed | None = None,
                 seek_delay: float = SEEK_DELAY, seek_retry: float = SEEK_RETRY) -> None:
        self.app = app
        self.committed = committed or committed_offset(app)
        self.seek_delay = seek_delay
        self.seek_retry = seek_retry
        self.expected: dict[Any, int | None] = {}  # TP -> next offset to process
        self.ahead: dict[Any, tuple[int, int]] = {}  # TP -> (last offset ahead, times in a row)
        self.pending_seeks: dict[Any, asyncio.Task[None]] = {}
        self.rewinds = 0

    def keep_only(self, assigned: set[Any]) -> None:
        """Forget partitions this worker no longer consumes (another worker moved them on)."""
        for tps in (self.expected, self.ahead):
            for tp in set(tps) - assigned:
                del tps[tp]

    async def admit(self, message: Any) -> bool:
        """True to process ``message``; False to skip it because records before it were
        skipped - the consumer is sent back to them and it will come again."""
        tp, offset = message.tp, message.offset
        if tp not in self.expected:
            self.expected[tp] = await self._committed_or_none(tp)
        expected = self.expected.get(tp)
        last_ahead, times = self.ahead.get(tp, (None, 0))
        times = times + 1 if offset == last_ahead else 1
        if expected is None or offset <= expected or times >= TRUE_GAP_REPEATS:
            # In order, a replay after a seek (harmless), or a gap the broker confirms.
            self.expected[tp] = offset + 1
            self.ahead.pop(tp, None)
            return True
        if last_ahead is None:
            self.rewinds += 1
            log.warning("%s[%d]: got offset %d but %d was next; reading again from %d "
                        "(faust-streaming#216)", tp.topic, tp.partition, offset, expected,
                        expected)
        self.ahead[tp] = (offset, times)
        if tp not in self.pending_seeks:
            self.pending_seeks[tp] = asyncio.ensure_future(self._seek_back(tp))
        return False

    async def _committed_or_none(self, tp: Any) -> int | None:
        try:
            return await self.committed(tp)
        except Exception as error:  # the guard must never stop the stream
            log.warning("%s[%d]: committed offset unknown (%r); following the records as "
                        "they come", tp.topic, tp.partition, error)
            return None

    async def _seek_back(self, tp: Any) -> None:
        try:
            delay = self.seek_delay
            while True:
                await asyncio.sleep(delay)
                expected = self.expected.get(tp)
                if tp not in self.ahead or expected is None:
                    return  # back in order, or moved to another worker
                consumer = self.app.consumer
                await consumer.seek(tp, expected)
                # Faust noted the skipped range as a gap, which its next commit would count
                # as processed; the records are read again, so the gap must go.
                consumer._gap.pop(tp, None)  # type: ignore[attr-defined]
                delay = self.seek_retry
        finally:
            self.pending_seeks.pop(tp, None)
