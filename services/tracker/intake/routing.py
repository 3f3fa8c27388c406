"""A batch of contract-topic records -> validated items grouped by destination partition,
and the records that go to ``dead-letters``. Pure: no Kafka here, so the tests and the
benchmark call it as the intake does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from services.tracker.domain.flows import flow_of
from services.tracker.domain.validation import Kind, validate
from services.tracker.errors import InvalidEventError
from services.tracker.intake.envelope import (
    ReferenceItem,
    Source,
    encode_item,
    encode_transaction,
    join_encoded,
)
from services.tracker.partitioning import partition_of

# An FX rate or a commitment: the kind says so as well as an isinstance on the event would.
REFERENCE_KINDS: frozenset[Kind] = frozenset({"fx_rate", "commitment"})


class SourceRecord(Protocol):
    """What the intake reads of a consumed record (aiokafka's ``ConsumerRecord``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...  # milliseconds
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Rejected:
    record: SourceRecord
    reason: str


@dataclass
class RoutedBatch:
    """Encoded items per destination partition, in the order they were read."""

    items: dict[int, list[bytes]] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    references: list[ReferenceItem] = field(default_factory=list)
    transactions: int = 0

    def records(self, max_bytes: int) -> Iterable[tuple[int, bytes]]:
        """(partition, record value) with each value at most ``max_bytes`` (one item may
        exceed it only if it alone does: items are never split)."""
        for partition, encoded in self.items.items():
            chunk: list[bytes] = []
            size = 2
            for item in encoded:
                if chunk and size + len(item) + 1 > max_bytes:
                    yield partition, join_encoded(chunk)
                    chunk, size = [], 2
                chunk.append(item)
                size += len(item) + 1
            if chunk:
                yield partition, join_encoded(chunk)


def route_batch(records: Iterable[SourceRecord], kinds: Mapping[str, Kind], partitions: int,
                max_event_bytes: int) -> RoutedBatch:
    """Validate and normalise each record; a transaction goes to its pair's partition, an
    FX rate or a commitment to every partition."""
    routed = RoutedBatch()
    items = routed.items
    transactions = 0
    for record in records:
        kind = kinds[record.topic]
        try:
            event = validate(kind, record.value, max_event_bytes)
            if kind in REFERENCE_KINDS:
                source = Source(record.topic, record.partition, record.offset,
                                record.timestamp / 1000)
                reference = ReferenceItem(source, event)  # type: ignore[arg-type]  # by its kind
                encoded = encode_item(reference)
                for partition in range(partitions):
                    items.setdefault(partition, []).append(encoded)
                routed.references.append(reference)
                continue
            flow = flow_of(event)  # type: ignore[arg-type]  # a transaction by its kind
        except InvalidEventError as error:
            routed.rejected.append(Rejected(record, error.reason))
            continue
        # The source's fields only: a Source would be built just to be encoded.
        items.setdefault(partition_of(flow.pair, partitions), []).append(encode_transaction(
            (record.topic, record.partition, record.offset, record.timestamp / 1000), flow))
        transactions += 1
    routed.transactions = transactions
    return routed
