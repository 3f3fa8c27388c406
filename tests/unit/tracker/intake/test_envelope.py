"""The ledger-input codec: what the intake encodes, the fold and ``explain`` decode alike."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.domain.flows import Flow
from services.tracker.intake.envelope import (
    ReferenceItem,
    Run,
    Source,
    TransactionItem,
    decode_batch,
    decode_runs,
    encode_batch,
    encode_item,
    encode_transaction,
)

SOURCE = Source("trade-transactions", 2, 41, 1_700_000_000.123)
TRADE = Flow("t2", "t1", True, "IN-RU", "trade", "value_usd", "RU>IN", "importer", "2024-05",
             "2024-05-31", Decimal("-1234567.00000001"), "EUR")
ENERGY = Flow("n1", "n1", False, "IN-RU", "energy", "value_usd", "IN>RU", "exporter",
              "2024-05", "2024-05-15", Decimal("100"), "USD", Decimal("1000.5"), "bbl")


@pytest.mark.parametrize("flow", [TRADE, ENERGY])
def test_a_transaction_decodes_to_what_was_encoded(flow):
    [item] = decode_batch(encode_batch([TransactionItem(SOURCE, flow)]))
    assert item == TransactionItem(SOURCE, flow)
    assert type(item.source) is Source and type(item.flow) is Flow
    assert [type(value) for value in item.flow] == [type(value) for value in flow]


def test_the_intake_encodes_a_source_of_plain_fields_as_a_source():
    assert encode_transaction(tuple(SOURCE), ENERGY) == encode_item(TransactionItem(SOURCE, ENERGY))


def test_reference_items_decode_to_their_events():
    rate = FxRatePublished(event_id="fx1", occurred_at=date(2024, 1, 1), currency="EUR",
                           rate_to_usd=Decimal("1.08"), valid_from=date(2024, 1, 1))
    withdrawal = CommitmentChanged(event_id="c1", occurred_at=date(2024, 1, 1),
                                   commitment_id="target", action="withdrawn")
    items = [ReferenceItem(SOURCE, rate), TransactionItem(SOURCE, TRADE),
             ReferenceItem(SOURCE, withdrawal)]
    assert list(decode_batch(encode_batch(items))) == items


def test_runs_keep_each_item_at_its_index():
    rate = FxRatePublished(event_id="fx1", occurred_at=date(2024, 1, 1), currency="EUR",
                           rate_to_usd=Decimal("1.08"), valid_from=date(2024, 1, 1))
    trade, energy = TransactionItem(SOURCE, TRADE), TransactionItem(SOURCE, ENERGY)
    reference = ReferenceItem(SOURCE, rate)
    items = [trade, energy, reference, reference, energy]
    assert decode_runs(encode_batch(items)) == [
        (0, Run([SOURCE, SOURCE], [TRADE, ENERGY])), (2, reference), (3, reference),
        (4, Run([SOURCE], [ENERGY]))]
    assert decode_runs(encode_batch([reference])) == [(0, reference)]
    assert decode_runs(encode_batch([])) == []
    assert list(decode_batch(encode_batch(items))) == items
