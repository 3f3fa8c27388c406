"""The guard against records lost around a rebalance: records Faust skips after a jump ahead
(faust-streaming#216) and partitions never committed (see services/tracker/continuity.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP

from services.tracker.continuity import OffsetContinuity

TRADE = TP("trade-transactions", 2)


@dataclass
class FakeConsumer:
    assigned: set[TP] = field(default_factory=set)
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    _gap: dict[TP, Any] = field(default_factory=lambda: defaultdict(list))
    _read_offset: dict[TP, int | None] = field(default_factory=dict)

    def assignment(self) -> set[TP]:
        return self.assigned

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.extend(partitions.items())


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
            if guard.admit(Message(tp, offset)):
                passed.append(offset)
            for _ in range(3):
                await asyncio.sleep(0)
        for task in list(guard.pending_seeks.values()):
            task.cancel()
        await asyncio.gather(*guard.pending_seeks.values(), return_exceptions=True)
        return passed
    return asyncio.run(run())


def guard(committed: dict[TP, int] | None = None, earliest: dict[TP, int] | None = None,
          assigned: set[TP] | None = None) -> tuple[OffsetContinuity, FakeConsumer]:
    """A guard over a fake consumer, rebased on an assignment (``TRADE`` unless told);
    ``committed``/``earliest``: the group's committed and the log's earliest offsets."""
    async def offsets_of(offsets: dict[TP, int] | None, tps: list[TP]) -> dict[TP, int | None]:
        return {tp: (offsets or {}).get(tp) for tp in tps}

    app = FakeApp(FakeConsumer(assigned={TRADE} if assigned is None else assigned))
    continuity = OffsetContinuity(
        app, {TRADE.topic}, lambda tps: offsets_of(committed, tps),  # type: ignore[arg-type]
        lambda tps: offsets_of(earliest, tps), seek_delay=0, seek_retry=60)
    asyncio.run(continuity.rebase())
    return continuity, app.consumer


def test_records_in_order_and_replays_pass():
    continuity, consumer = guard(committed={TRADE: 5})
    assert admitted(continuity, 5, 6, 7, 3, 4, 5, 6, 7, 8) == [5, 6, 7, 3, 4, 5, 6, 7, 8]
    assert consumer.seeks == []


def test_a_jump_ahead_seeks_back_and_skips_until_the_expected_record_returns():
    continuity, consumer = guard(committed={TRADE: 112})
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
    continuity, consumer = guard(committed={TRADE: 5})
    continuity.seek_retry = 0.01

    async def seeks_at_least(count: int) -> None:
        while len(consumer.seeks) < count:
            await asyncio.sleep(continuity.seek_retry)

    async def run() -> None:
        assert continuity.admit(Message(TRADE, 5))
        assert not continuity.admit(Message(TRADE, 9))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(seeks_at_least(3), timeout=5)
        assert len(consumer.seeks) >= 3, "seeks again while 6 does not come"
        assert continuity.admit(Message(TRADE, 6))
        await asyncio.gather(*continuity.pending_seeks.values())
        assert not continuity.pending_seeks, "stops once the partition is back in order"
    asyncio.run(run())
    assert set(consumer.seeks) == {(TRADE, 6)}


def test_offsets_without_records_are_accepted_once_the_broker_confirms_the_gap():
    continuity, consumer = guard(committed={TRADE: 10})
    # e.g. transaction markers at 11 and 12: after each seek the broker answers with 13.
    assert admitted(continuity, 10, 13, 13, 13, 13, 13, 14) == [10, 13, 14]
    assert consumer.seeks == [(TRADE, 11)]


def test_a_newly_assigned_partition_starts_at_the_committed_offset():
    continuity, consumer = guard(committed={TRADE: 40})
    assert admitted(continuity, 57, 40, 41) == [40, 41], "57 came before the seek to 40"
    assert consumer.seeks == [(TRADE, 40)]


def test_a_partition_never_committed_is_read_from_its_earliest_offset():
    # Faust's seek to committed offsets leaves it where a skipped fetch ended: the guard
    # seeks it to the start itself, and a record from beyond sends it back there.
    continuity, consumer = guard(earliest={TRADE: 0})
    assert consumer.seeks == [(TRADE, 0)]
    assert admitted(continuity, 700, 0, 1) == [0, 1]
    assert consumer.seeks == [(TRADE, 0), (TRADE, 0)]


def test_committed_offset_zero_counts_as_never_committed():
    continuity, consumer = guard(committed={TRADE: 0}, earliest={TRADE: 3})
    assert consumer.seeks == [(TRADE, 3)], "records before 3 were deleted by retention"
    assert admitted(continuity, 3) == [3]


def test_a_rebalance_rebases_every_assigned_partition_and_forgets_the_others():
    other, not_a_source = TP("trade-transactions", 3), TP("tracker-totals-changelog", 3)
    continuity, consumer = guard(committed={TRADE: 10, other: 50},
                                 assigned={TRADE, other, not_a_source})
    admitted(continuity, 10, 11)
    admitted(continuity, 50, tp=other)
    consumer.assigned = {other}
    asyncio.run(continuity.rebase())
    assert set(continuity.expected) == {other}, "only source partitions assigned here"
    assert continuity.expected[other] == 50, "back to the committed offset"
    assert admitted(continuity, 400) == [400], "a partition not assigned here is followed"
    assert admitted(continuity, 52, tp=other) == []
    assert consumer.seeks == [(other, 50)]


def test_offsets_unknown_after_a_rebalance_leave_the_records_followed():
    async def broker_down(tps: list[TP]) -> dict[TP, int | None]:
        raise ConnectionError("broker down")

    app = FakeApp(FakeConsumer(assigned={TRADE}))
    continuity = OffsetContinuity(app, {TRADE.topic}, broker_down,  # type: ignore[arg-type]
                                  broker_down, seek_delay=0, seek_retry=60)
    asyncio.run(continuity.rebase())
    assert admitted(continuity, 7, 8) == [7, 8]
    assert app.consumer.seeks == []


def watched(ends: dict[TP, int], quiet: float, *offsets: int,
            committed: dict[TP, int] | None = None, idle_for: float = 0.0,
            handed_over: int | None = None) -> tuple[OffsetContinuity, FakeConsumer]:
    """A guard that admitted ``offsets`` of ``TRADE`` (the last ``idle_for`` seconds ago),
    then ran one watch with the log ending at ``ends``, the group's commits at
    ``committed`` and Faust's consumer having handed the streams ``TRADE`` up to
    ``handed_over`` (by default the last offset admitted)."""
    continuity, consumer = guard(committed=committed or {TRADE: 3})
    continuity.quiet = quiet
    admitted(continuity, *offsets)
    continuity.last_admitted -= idle_for
    consumer._read_offset[TRADE] = offsets[-1] if handed_over is None else handed_over

    async def highwaters(*tps: TP) -> dict[TP, int]:
        return {tp: ends[tp] for tp in tps}

    consumer.highwaters = highwaters  # type: ignore[attr-defined]
    asyncio.run(continuity.watch())
    return continuity, consumer


def test_a_partition_that_stopped_short_of_its_log_is_read_again():
    # Faust skipped (and acked) offsets 5-9 as fetched in an older generation; no later
    # record comes to reveal the gap.
    continuity, consumer = watched({TRADE: 10}, 0, 3, 4, committed={TRADE: 10})
    assert consumer.seeks == [(TRADE, 5)]
    assert continuity.rewinds == 1
    # The same once the fold is idle, whatever the commits say: nothing can be waiting.
    _, idle = watched({TRADE: 10}, 0, 3, 4, committed={TRADE: 5}, idle_for=60)
    assert idle.seeks == [(TRADE, 5)]


def test_a_quiet_partition_of_a_busy_fold_whose_records_were_not_acked_is_left_alone():
    # Its next records wait behind other partitions' in the consumer's buffers: sending
    # it back would fold them twice.
    continuity, consumer = watched({TRADE: 10}, 0, 3, 4, committed={TRADE: 5})
    assert consumer.seeks == []
    assert continuity.rewinds == 0


def test_records_handed_to_the_stream_are_awaited_even_by_a_fold_that_looks_idle():
    # No record came for a minute (the fold stalled), but Faust handed offsets 5-8 to the
    # fold's stream: they are on their way, and a seek back would fold them twice.
    continuity, consumer = watched({TRADE: 10}, 0, 3, 4, committed={TRADE: 5},
                                   idle_for=60, handed_over=8)
    assert consumer.seeks == []
    assert continuity.rewinds == 0
    # Had Faust skipped them instead (and acked them), the commit shows it.
    _, skipped = watched({TRADE: 10}, 0, 3, 4, committed={TRADE: 9}, idle_for=60,
                         handed_over=8)
    assert skipped.seeks == [(TRADE, 5)]
    # Where a seek left the read offset (the expected record) nothing was handed over.
    _, sought = watched({TRADE: 10}, 0, 3, 4, committed={TRADE: 5}, idle_for=60,
                        handed_over=5)
    assert sought.seeks == [(TRADE, 5)]


def test_a_partition_at_the_end_of_its_log_or_still_receiving_is_left_alone():
    _, at_end = watched({TRADE: 5}, 0, 3, 4)
    assert at_end.seeks == []
    _, receiving = watched({TRADE: 10}, 60, 3, 4)  # its last record came just now
    assert receiving.seeks == []
