"""The guard against records Faust skips around a rebalance (faust-streaming#216)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from services.tracker.continuity import OffsetContinuity

TRADE = TP("trade-transactions", 2)


@dataclass
class FakeConsumer:
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    _gap: dict[TP, Any] = field(default_factory=lambda: defaultdict(list))

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


@dataclass
class FakeApp:
    consumer: FakeConsumer = field(default_factory=FakeConsumer)


@dataclass
class Message:
    tp: TP
    offset: int


def admitted(guard: OffsetContinuity, *offsets: int, tp: TP = TRADE) -> list[int]:
    """Offsets the guard admits; after each one its delayed seek (if any) gets to run once.
    The seeks it would repeat later are cancelled at the end."""
    async def run() -> list[int]:
        passed = []
        for offset in offsets:
            if await guard.admit(Message(tp, offset)):
                passed.append(offset)
            for _ in range(3):
                await asyncio.sleep(0)
        for task in list(guard.pending_seeks.values()):
            task.cancel()
        await asyncio.gather(*guard.pending_seeks.values(), return_exceptions=True)
        return passed
    return asyncio.run(run())


def guard(committed: dict[TP, int] | None = None) -> tuple[OffsetContinuity, FakeConsumer]:
    """A guard over a fake consumer; ``committed``: the group's committed offsets."""
    async def committed_offset(tp: TP) -> int | None:
        return (committed or {}).get(tp)

    app = FakeApp()
    return (OffsetContinuity(app, committed_offset, seek_delay=0,  # type: ignore[arg-type]
                             seek_retry=60), app.consumer)


def test_records_in_order_and_replays_pass():
    continuity, consumer = guard()
    assert admitted(continuity, 5, 6, 7, 3, 4, 5, 6, 7, 8) == [5, 6, 7, 3, 4, 5, 6, 7, 8]
    assert consumer.seeks == []


def test_a_jump_ahead_seeks_back_and_skips_until_the_expected_record_returns():
    continuity, consumer = guard()
    consumer._gap[TRADE].append((114, 304))
    assert admitted(continuity, 112, 113, 304, 305, 306, 114, 115) == [112, 113, 114, 115]
    # One seek, a moment after the jump; the records still ahead are skipped meanwhile.
    assert consumer.seeks == [(TRADE, 114)]
    assert TRADE not in consumer._gap, "the gap Faust noted must not be committed"
    assert continuity.rewinds == 1
    assert admitted(continuity, 117) == []
    assert continuity.rewinds == 2


def test_the_seek_is_repeated_until_the_expected_record_comes():
    # The records fetched before the seek were the partition's last and Faust undid the
    # seek: nothing else arrives to trigger another one.
    continuity, consumer = guard()
    continuity.seek_retry = 0.01

    async def run() -> None:
        assert await continuity.admit(Message(TRADE, 5))
        assert not await continuity.admit(Message(TRADE, 9))
        await asyncio.sleep(0.1)
        assert len(consumer.seeks) >= 3, "seeks again while 6 does not come"
        assert await continuity.admit(Message(TRADE, 6))
        await asyncio.gather(*continuity.pending_seeks.values())
        assert not continuity.pending_seeks, "stops once the partition is back in order"
    asyncio.run(run())
    assert set(consumer.seeks) == {(TRADE, 6)}


def test_offsets_without_records_are_accepted_once_the_broker_confirms_the_gap():
    continuity, consumer = guard()
    # e.g. transaction markers at 11 and 12: after each seek the broker answers with 13.
    assert admitted(continuity, 10, 13, 13, 13, 13, 13, 14) == [10, 13, 14]
    assert consumer.seeks == [(TRADE, 11)]


def test_a_newly_assigned_partition_starts_at_the_committed_offset():
    continuity, consumer = guard(committed={TRADE: 40})
    assert admitted(continuity, 57, 40, 41) == [40, 41], "57 came before the seek to 40"
    assert consumer.seeks == [(TRADE, 40)]


def test_a_partition_never_committed_starts_with_its_first_record():
    continuity, consumer = guard()
    assert admitted(continuity, 0, 1) == [0, 1]
    assert consumer.seeks == []


def test_partitions_moved_away_are_forgotten():
    continuity, consumer = guard()
    other = TP("trade-transactions", 3)
    admitted(continuity, 10)
    admitted(continuity, 50, tp=other)
    continuity.keep_only({other})
    assert admitted(continuity, 400) == [400], "a partition coming back starts afresh"
    assert admitted(continuity, 52, tp=other) == []
    assert consumer.seeks == [(other, 51)]
