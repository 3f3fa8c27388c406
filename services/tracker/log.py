"""Reading a topic back from offset 0: the log the tracker's figures must equal."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.tracker.connection import client_options
from services.tracker.settings import Settings


async def partition_ids(settings: Settings, topic: str) -> list[int]:
    # The admin client: a consumer's partitions_for_topic stays None until it subscribes.
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for d in described if d["error_code"] == 0
                  for p in d["partitions"])


async def read_to_end(settings: Settings, topic: str,
                      partitions: Iterable[int] | None = None) -> list[Any]:
    """Records of ``topic`` (every partition, or the given ones) from offset 0 up to the
    end offsets at the time of the call, without joining a consumer group."""
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        wanted = partitions if partitions is not None else await partition_ids(settings, topic)
        assigned = [TopicPartition(topic, p) for p in wanted]
        if not assigned:
            return []
        consumer.assign(assigned)
        ends = await consumer.end_offsets(assigned)
        await consumer.seek_to_beginning(*assigned)
        records: list[Any] = []
        remaining = {tp for tp in assigned if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batch.items():
                records += [m for m in messages if m.offset < ends[tp]]
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()
