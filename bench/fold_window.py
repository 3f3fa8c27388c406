"""When a tracker worker folded its events, read back from its roots changelog.

The peer's throughput runs from its first folded event to its last; the tracker's from
its ``/health/`` answer to the end includes the start of its intake (a process, a group
join), which the peer's figure leaves out. The fold writes the root entries of each
ledger-input record it folds as changelog records stamped when they are sent, one entry
per new event, so that changelog says when the first and the last record were folded and
how many events each held.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer

from services.tracker.tables import split_group_key


@dataclass(frozen=True)
class FoldWindow:
    first: float  # seconds since the epoch: the first folded record's writes were sent
    last: float  # the same for the last one
    events: int  # root entries written after the first record's: events folded since
    entries: int  # root entries in all: one per distinct event
    records: int  # ledger-input records folded

    def rate_of(self, n: int) -> float:
        """Events per second for ``n`` distinct events, less the first record's. Records
        folded twice (around a rebalance) write their entries twice, so ``entries`` can
        exceed ``n``; the first record's entries cannot."""
        return (n - (self.entries - self.events)) / max(self.last - self.first, 1e-9)


async def fold_window(bootstrap: str, topic: str) -> FoldWindow:
    """Read the whole roots changelog; a record is (ledger-input partition, offset), the
    changelog partition being the ledger-input one."""
    # Without a group, a subscription is every partition of the topic.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = sorted(consumer.assignment())
        if not partitions:
            raise RuntimeError(f"no partitions for {topic}")
        ends = await consumer.end_offsets(partitions)
        folded: dict[tuple[int, int], list[int]] = {}  # record -> [first stamp ms, entries]
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=2000)
            if not batch:
                raise RuntimeError(f"{topic} ended early: {sorted(map(str, remaining))}")
            for tp, messages in batch.items():
                for message in messages:
                    _, record_offset = split_group_key(orjson.loads(message.key))
                    entries = len(orjson.loads(message.value)) if message.value else 0
                    seen = folded.setdefault((tp.partition, record_offset),
                                             [message.timestamp, 0])
                    seen[0] = min(seen[0], message.timestamp)
                    seen[1] += entries
                    if message.offset + 1 >= ends[tp]:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    stamps = sorted(folded.values())
    return FoldWindow(first=stamps[0][0] / 1000, last=stamps[-1][0] / 1000,
                      events=sum(entries for _, entries in stamps[1:]),
                      entries=sum(entries for _, entries in stamps), records=len(stamps))
