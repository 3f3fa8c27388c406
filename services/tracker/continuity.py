"""Keeps every source partition's records in offset order through rebalances.

Two faults of the stack around a rebalance lose records for good, both seen in
``tests/integration/test_chaos.py`` as totals short of the log:

- Faust can hand a stream a record prefetched *ahead* of where the partition resumes; its
  consumer then drops the records in between (they are below its read offset) and notes
  them as a "gap" that the next commit treats as processed (faust-streaming/faust#216,
  #221).
- Records fetched during a rebalance are skipped by the streams (stale generation,
  faust-streaming/faust#223), and Faust then seeks every partition back to its committed
  offset - but aiokafka's ``seek_to_committed`` leaves a partition that has no committed
  offset (or offset 0) where the fetcher stands. A partition whose owner left before its
  first commit was therefore read from wherever the skipped fetch ended, often its end:
  none of its records arrived at the worker that took it over.

The tracker's updates are idempotent (event ids, log positions), so the remedy is cheap:
after every rebalance, before the streams resume, each assigned partition starts at its
committed offset or, never committed, at its earliest one (seeking there explicitly); from
then on, when a record arrives beyond the next expected offset, the consumer is sent back
and records are skipped until the expected one comes again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust

from services.tracker import compat

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
# A partition whose records stopped coming this long while its log has more is checked.
QUIET = 5.0
# The fold counts as idle when no record of any partition came for this long: then nothing
# can be waiting in the consumer's buffers.
IDLE = 1.0


Offsets = Callable[[list[Any]], Awaitable[dict[Any, int | None]]]


def committed_offsets(app: faust.App) -> Offsets:
    """The group's committed offsets of partitions (None: never committed)."""
    async def committed(tps: list[Any]) -> dict[Any, int | None]:
        return await compat.committed_offsets(app, tps)
    return committed


def earliest_offsets(app: faust.App) -> Offsets:
    async def earliest(tps: list[Any]) -> dict[Any, int | None]:
        return dict(await app.consumer.earliest_offsets(*tps))
    return earliest


class OffsetContinuity:
    """Per source partition assigned here, the next offset to process."""

    def __init__(self, app: faust.App, source_topics: set[str],
                 committed: Offsets | None = None, earliest: Offsets | None = None,
                 seek_delay: float = SEEK_DELAY, seek_retry: float = SEEK_RETRY,
                 quiet: float = QUIET, idle: float = IDLE) -> None:
        self.app = app
        self.source_topics = source_topics
        self.committed = committed or committed_offsets(app)
        self.earliest = earliest or earliest_offsets(app)
        self.seek_delay = seek_delay
        self.seek_retry = seek_retry
        self.quiet = quiet
        self.idle = idle
        self.expected: dict[Any, int] = {}  # TP -> next offset to process
        self.ahead: dict[Any, tuple[int, int]] = {}  # TP -> (last offset ahead, times in a row)
        self.pending_seeks: dict[Any, asyncio.Task[None]] = {}
        self.rewinds = 0
        self.last_seen: dict[Any, float] = {}  # TP -> when a record of it last came
        self.last_admitted = 0.0  # when any record was last admitted

    async def rebase(self) -> None:
        """Where each assigned source partition starts after a rebalance. Called before the
        streams resume (Faust's ``on_rebalance_complete``), so no record of the new
        assignment has reached them yet."""
        assigned = sorted(tp for tp in self.app.consumer.assignment()
                          if tp.topic in self.source_topics)
        self.expected, self.ahead = {}, {}
        self.last_seen = {}
        try:
            committed = await self.committed(assigned)
            never = [tp for tp in assigned if not committed.get(tp)]
            earliest = await self.earliest(never) if never else {}
            if never:
                # aiokafka's seek_to_committed, which Faust calls next, leaves these where
                # the fetcher stands (see the module's docstring). In the consumer's own
                # thread, as ``_seek``: Faust's ``seek`` raced the fetcher, whose
                # ``fetched_records`` then stopped a worker that had just joined with a
                # KeyError for one of these partitions.
                await self.app.consumer.seek_wait({tp: earliest[tp] or 0 for tp in never})
            self.expected = {tp: committed.get(tp) or earliest.get(tp) or 0 for tp in assigned}
        except Exception as error:  # the guard must never stop the worker
            log.warning("Start offsets of the assigned partitions unknown (%r); following "
                        "the records as they come", error)
            return
        if never:
            log.info("%d assigned partition(s) never committed, read from their earliest "
                     "offsets: %s", len(never),
                     ", ".join(f"{tp.topic}[{tp.partition}]@{earliest[tp]}" for tp in never))

    def admit(self, message: Any) -> bool:
        """True to process ``message``; False to skip it because records before it were
        skipped - the consumer is sent back to them and it will come again."""
        tp, offset = message.tp, message.offset
        expected = self.expected.get(tp)
        last_ahead, times = self.ahead.get(tp, (None, 0))
        times = times + 1 if offset == last_ahead else 1
        if expected is None or offset <= expected or times >= TRUE_GAP_REPEATS:
            # In order, a replay after a seek (harmless), or a gap the broker confirms.
            self.expected[tp] = offset + 1
            self.last_seen[tp] = self.last_admitted = time.monotonic()
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

    async def watch(self) -> None:
        """Send back every assigned partition whose log holds records past the next
        expected offset while none of its records came for ``quiet`` seconds. Faust acks
        the records it skips as fetched in an older generation (faust-streaming#223), so
        its next commit can pass them; when no later record follows, nothing else would
        reveal the gap - with a batch per ledger-input record, a partition can have few.

        Quiet alone proves nothing while the fold is busy: a partition's next records can
        wait behind other partitions' in the consumer's buffers for many seconds (each
        holds thousands of events), and sending it back would fold them all again. So a
        partition goes back only when the group's committed offset is past the expected
        one (records acked without being folded) - or, once no record came for ``idle``
        seconds, when its log holds more and Faust has handed none of them to the fold's
        stream. A fold stalled that long (the machine's cores taken, the broker slow to
        acknowledge its writes) is not idle while records it was handed still wait: a
        skipped one among them was acked, which the commit shows.
        """
        quiet = self.quiet
        if not self.expected:
            return
        now = time.monotonic()
        waiting = [tp for tp, expected in self.expected.items()
                   if tp not in self.pending_seeks
                   and now - self.last_seen.setdefault(tp, now) >= quiet]
        if not waiting:
            return
        try:
            ends = await self.app.consumer.highwaters(*waiting)
            behind = [tp for tp in waiting if self._short_of(tp, ends)]
            idle = now - self.last_admitted >= self.idle
            unsure = [tp for tp in behind if not idle or self._handed_over(tp)]
            if unsure:
                committed = await self.committed(unsure)
                behind = [tp for tp in behind
                          if tp not in unsure or self._short_of(tp, committed)]
        except Exception as error:  # the guard must never stop the worker
            log.warning("End or committed offsets unknown (%r); cannot check for stalled "
                        "partitions", error)
            return
        for tp in behind:
            expected = self.expected.get(tp)
            if expected is None:
                continue  # moved to another worker meanwhile
            self.rewinds += 1
            self.last_seen[tp] = now
            log.warning("%s[%d]: no record for %.0f s but the log ends at %d and %d was "
                        "next; reading again from %d (faust-streaming#223)", tp.topic,
                        tp.partition, quiet, ends[tp], expected, expected)
            await self._seek(tp, expected)

    def _handed_over(self, tp: Any) -> bool:
        """Whether Faust handed records of ``tp`` past the expected one to the streams.
        (Its read offset is the last record handed over, or where a seek set it: equal
        to the expected offset, it may be either.)"""
        expected = self.expected.get(tp)
        handed = compat.handed_to_streams(self.app.consumer, tp)
        return expected is not None and handed is not None and handed > expected

    def _short_of(self, tp: Any, offsets: Mapping[Any, int | None]) -> bool:
        """Whether ``offsets`` holds an offset for ``tp`` past the next one expected (a
        rebalance while the broker was asked may have dropped ``tp``)."""
        expected = self.expected.get(tp)
        return expected is not None and (offsets.get(tp) or 0) > expected

    async def _seek(self, tp: Any, offset: int) -> None:
        """Seek in the consumer's own thread: Faust's ``seek`` calls aiokafka from this
        one, racing its fetcher (a KeyError in ``Fetcher.fetched_records`` stopped a worker
        after a broker outage)."""
        try:
            await self.app.consumer.seek_wait({tp: offset})
        except Exception as error:  # the guard must never stop the worker
            log.warning("%s[%d]: seek to %d failed (%r); retrying later", tp.topic,
                        tp.partition, offset, error)

    async def _seek_back(self, tp: Any) -> None:
        try:
            delay = self.seek_delay
            while True:
                await asyncio.sleep(delay)
                expected = self.expected.get(tp)
                if tp not in self.ahead or expected is None:
                    return  # back in order, or moved to another worker
                consumer = self.app.consumer
                await self._seek(tp, expected)
                # Faust noted the skipped range as a gap, which its next commit would count
                # as processed; the records are read again, so the gap must go.
                compat.forget_gap(consumer, tp)
                delay = self.seek_retry
        finally:
            self.pending_seeks.pop(tp, None)
