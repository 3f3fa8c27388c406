"""``tracker produce``: JSON Lines -> contract topics, checked record by record.

A line is ``{"topic": "trade-transactions", "key": "IN-RU", "value": {...}}``. ``key`` is
optional (the service re-keys anyway); ``value`` may be a JSON object or, to send exactly
those bytes, a string.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.connection import client_options
from services.tracker.domain.flows import flow_of
from services.tracker.domain.validation import Kind, validate
from services.tracker.errors import InvalidEventError
from services.tracker.settings import Settings

CONTRACT_TOPICS: dict[str, Kind] = {
    "trade-transactions": "trade", "energy-transactions": "energy",
    "defense-transactions": "defense", "commitments": "commitment", "fx-rates": "fx_rate"}


@dataclass(frozen=True)
class Record:
    line: int
    topic: str
    key: bytes | None
    value: bytes
    problem: str | None  # why the record fails its check, if it does


@dataclass
class Summary:
    sent: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    sent_invalid: int = 0

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())


def read_records(path: Path, max_bytes: int) -> Iterator[Record]:
    with path.open("rb") as lines:
        for number, raw_line in enumerate(lines, start=1):
            if not raw_line.strip():
                continue
            yield parse_line(number, raw_line, max_bytes)


def parse_line(number: int, raw_line: bytes, max_bytes: int) -> Record:
    try:
        line: Any = orjson.loads(raw_line)
        topic = line["topic"]
        value = line["value"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return Record(number, "", None, b"", 'not a {"topic", "value"} JSON line')
    if topic not in CONTRACT_TOPICS:
        return Record(number, topic, None, b"", f"unknown topic {topic!r}")
    payload = value.encode() if isinstance(value, str) else orjson.dumps(value)
    key = line.get("key")
    problem = None
    try:
        event = validate(CONTRACT_TOPICS[topic], payload, max_bytes)
    except InvalidEventError as error:
        problem = error.reason
    else:
        key = key or default_key(event)
    return Record(number, topic, key.encode() if isinstance(key, str) else None, payload, problem)


def default_key(event: Any) -> str:
    if isinstance(event, CommitmentChanged):
        return event.commitment_id
    if isinstance(event, FxRatePublished):
        return event.currency
    return flow_of(event).pair


async def produce(settings: Settings, records: list[Record], *, send_invalid: bool,
                  on_record: Any = None) -> Summary:
    """Send checked records (and failing ones too when ``send_invalid``)."""
    summary = Summary()
    producer = AIOKafkaProducer(**client_options(settings), acks="all",
                                enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        pending = []
        for record in records:
            if on_record:
                on_record()
            if record.problem is not None and (not send_invalid or not record.topic):
                summary.rejected.append((record.line, record.problem))
                continue
            topic = f"{settings.topic_prefix}{record.topic}"
            pending.append(await producer.send(topic, record.value, key=record.key))
            summary.sent[record.topic] = summary.sent.get(record.topic, 0) + 1
            summary.sent_invalid += record.problem is not None
        for future in pending:
            await future
    finally:
        await producer.stop()
    return summary
