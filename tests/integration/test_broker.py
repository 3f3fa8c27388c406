"""The embedded broker is a real Apache Kafka: records go over TCP and survive a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.tracker.broker import EmbeddedKafka
from tests.ports import free_port


async def _roundtrip(bootstrap: str, topic: str, values: list[bytes]) -> list[bytes]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    for value in values:
        await producer.send_and_wait(topic, value, key=b"IN-RU")
    await producer.stop()
    return await _read(bootstrap, topic, len(values))


async def _read(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    seen: list[bytes] = []
    try:
        for _ in range(60):
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                seen += [m.value for m in messages]
            if len(seen) >= expected:
                break
    finally:
        await consumer.stop()
    return seen


def test_produce_and_consume_over_a_real_connection(kafka: EmbeddedKafka) -> None:
    values = [f"event-{n}".encode() for n in range(50)]
    assert asyncio.run(_roundtrip(kafka.bootstrap, "roundtrip", values)) == values


def test_records_survive_a_broker_restart(tmp_path: Path) -> None:
    broker = EmbeddedKafka(tmp_path / "kafka", port=free_port(), controller_port=free_port(),
                           heap="384m")
    broker.start(timeout=120)
    try:
        values = [b"kept-1", b"kept-2", b"kept-3"]
        assert asyncio.run(_roundtrip(broker.bootstrap, "durable", values)) == values
        assert broker.stop()
        assert broker.running_pid() is None
        assert not broker.format_storage(), "a restart must not re-format existing storage"
        broker.start(timeout=120)
        assert asyncio.run(_read(broker.bootstrap, "durable", 3)) == values
    finally:
        broker.stop()
