"""The ledger-input record: a batch of validated items bound for one partition of the fold.

One codec, shared by the intake that writes these records, the fold agent and ``explain``
that read them. An item's position in the fold is (record offset, index in the record).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.domain.flows import Flow


@dataclass(frozen=True, slots=True)
class Source:
    """Where an item came from: a record of a contract topic."""

    topic: str
    partition: int
    offset: int
    timestamp: float  # broker append time, seconds

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


@dataclass(frozen=True, slots=True)
class TransactionItem:
    source: Source
    flow: Flow


@dataclass(frozen=True, slots=True)
class ReferenceItem:
    """An FX rate or a commitment: every partition gets a copy, so each folds it in log
    order with the transactions it affects."""

    source: Source
    event: FxRatePublished | CommitmentChanged


Item = TransactionItem | ReferenceItem

# Item tags on the wire; the flow or event follows the source fields.
_TRANSACTION, _FX_RATE, _COMMITMENT = "t", "fx", "c"


def encode_item(item: Item) -> bytes:
    source = item.source
    head: dict[str, Any] = {"topic": source.topic, "partition": source.partition,
                            "offset": source.offset, "timestamp": source.timestamp}
    if isinstance(item, TransactionItem):
        return orjson.dumps({"kind": _TRANSACTION, **head, "flow": item.flow.to_json()})
    kind = _FX_RATE if isinstance(item.event, FxRatePublished) else _COMMITMENT
    return orjson.dumps({"kind": kind, **head, "event": item.event.model_dump(mode="json")})


def join_encoded(items: Iterable[bytes]) -> bytes:
    """Encoded items -> one record value (a JSON array)."""
    return b"[" + b",".join(items) + b"]"


def encode_batch(items: Iterable[Item]) -> bytes:
    return join_encoded(encode_item(item) for item in items)


def decode_batch(raw: bytes) -> Iterator[Item]:
    for data in orjson.loads(raw):
        source = Source(data["topic"], data["partition"], data["offset"], data["timestamp"])
        kind = data["kind"]
        if kind == _TRANSACTION:
            yield TransactionItem(source, Flow.from_json(data["flow"]))
        elif kind == _FX_RATE:
            yield ReferenceItem(source, FxRatePublished.model_validate(data["event"]))
        else:
            yield ReferenceItem(source, CommitmentChanged.model_validate(data["event"]))
