"""The ledger-input record: a batch of validated items bound for one partition of the fold.

One codec, shared by the intake that writes these records, the fold agent and ``explain``
that read them. An item's position in the fold is (record offset, index in the record).

On the wire a record is a JSON array of items, each an array: a tag, the source (topic,
partition, offset, broker append time in seconds), then a transaction's flow fields in
``Flow`` order or a reference event as an object. Arrays rather than objects: decoding is
on the fold's hot path, once per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from functools import partial
from typing import Any, NamedTuple, cast

import orjson

from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.domain.flows import Flow


class Source(NamedTuple):
    """Where an item came from: a record of a contract topic."""

    topic: str
    partition: int
    offset: int
    timestamp: float  # broker append time, seconds

    def to_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class TransactionItem(NamedTuple):
    source: Source
    flow: Flow


class ReferenceItem(NamedTuple):
    """An FX rate or a commitment: every partition gets a copy, so each folds it in log
    order with the transactions it affects."""

    source: Source
    event: FxRatePublished | CommitmentChanged


Item = TransactionItem | ReferenceItem

_TRANSACTION, _FX_RATE, _COMMITMENT = "t", "fx", "c"


# A ``Source``, or just its fields where the intake would build one only to encode it.
SourceFields = tuple[str, int, int, float]


def encode_transaction(source: SourceFields, flow: Flow) -> bytes:
    quantity = flow.quantity
    return orjson.dumps([_TRANSACTION, *source, *flow[:10], str(flow.amount), flow.currency,
                         None if quantity is None else str(quantity), flow.unit])


def encode_item(item: Item) -> bytes:
    if isinstance(item, TransactionItem):
        return encode_transaction(item.source, item.flow)
    kind = _FX_RATE if isinstance(item.event, FxRatePublished) else _COMMITMENT
    return orjson.dumps([kind, *item.source, item.event.model_dump(mode="json")])


def join_encoded(items: Iterable[bytes]) -> bytes:
    """Encoded items -> one record value (a JSON array)."""
    return b"[" + b",".join(items) + b"]"


def encode_batch(items: Iterable[Item]) -> bytes:
    return join_encoded(encode_item(item) for item in items)


def decode_batch(raw: bytes) -> Iterator[Item]:
    """Every item of a record, in order (``explain`` and the tests; the fold reads runs)."""
    for _, what in decode_runs(raw):
        if isinstance(what, Run):
            yield from map(TransactionItem, what.sources, what.flows)
        else:
            yield what


class Run(NamedTuple):
    """Transactions that sit together in a record, between reference items: the fold
    folds them together. Two parallel lists: the fold passes ``flows`` on whole."""

    sources: list[Source]
    flows: list[Flow]


def decode_runs(raw: bytes) -> list[tuple[int, ReferenceItem | Run]]:
    """(index of the first, what) in record order: each reference item alone, and the
    transactions between them as runs. Decoded straight into runs, without an item per
    transaction: the fold decodes every event."""
    decoded: list[tuple[int, ReferenceItem | Run]] = []
    run: Run | None = None
    for index, row in enumerate(orjson.loads(raw)):
        kind = row[0]
        if kind == _TRANSACTION:
            row[15] = Decimal(row[15])
            if row[17] is not None:
                row[17] = Decimal(row[17])
            if run is None:
                run = Run([], [])
                decoded.append((index, run))
            run.sources.append(_new_source(row[1:5]))
            run.flows.append(_new_flow(row[5:19]))
            continue
        run = None
        model = FxRatePublished if kind == _FX_RATE else CommitmentChanged
        decoded.append((index, ReferenceItem(_new_source(row[1:5]),
                                             model.model_validate(row[5]))))
    return decoded


# Named tuples straight from a slice of the row, without their generated __new__ (a
# Python frame each): the fold decodes every event, and building these tuples is most of
# decoding it.
_new_source = cast(Callable[[list[Any]], Source], partial(tuple.__new__, Source))
_new_flow = cast(Callable[[list[Any]], Flow], partial(tuple.__new__, Flow))
