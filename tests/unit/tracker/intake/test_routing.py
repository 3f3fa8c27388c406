"""The intake's batches, folded as the fold agent folds them, give what ``replay`` gives
for the same records - in any chunking into batches, and when a batch is sent twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from schemas.events import FxRatePublished
from services.tracker.domain.fold import (
    MemoryStore,
    apply_commitment,
    apply_flow,
    apply_fx_rate,
    replay,
)
from services.tracker.domain.validation import Kind
from services.tracker.intake.envelope import ReferenceItem, decode_batch
from services.tracker.intake.routing import route_batch
from tests.unit.domain.test_fold import (
    FOLD_SETTINGS,
    LIMIT,
    UNRATED,
    rate_records,
    to_record,
    transactions,
)

PARTITIONS = 3
KINDS: dict[str, Kind] = {"trade-transactions": "trade", "energy-transactions": "energy",
                          "defense-transactions": "defense", "commitments": "commitment",
                          "fx-rates": "fx_rate"}
TOPICS = {kind: topic for topic, kind in KINDS.items()}


@dataclass(frozen=True)
class Consumed:
    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


def consumed(records: list[tuple[str, bytes]]) -> list[Consumed]:
    return [Consumed(TOPICS[kind], 0, offset, 1_700_000_000_000 + offset, None, raw)
            for offset, (kind, raw) in enumerate(records)]


class Fold:
    """The fold agent without Faust: one store per partition, ledger-input records folded
    item by item at (record offset, index)."""

    def __init__(self) -> None:
        self.stores = {partition: MemoryStore() for partition in range(PARTITIONS)}
        self.offsets = Counter[int]()
        self.outcomes = Counter[str]()

    def send(self, batch: list[Consumed], max_bytes: int = 512 * 1024) -> None:
        routed = route_batch(batch, KINDS, PARTITIONS, LIMIT)
        for partition, value in routed.records(max_bytes):
            assert len(value) <= max_bytes or value.count(b'{"kind"') == 1
            offset = self.offsets[partition]
            self.offsets[partition] += 1
            store = self.stores[partition]
            for index, item in enumerate(decode_batch(value)):
                position = (offset, index)
                if isinstance(item, ReferenceItem):
                    if isinstance(item.event, FxRatePublished):
                        for _pair, outcome in apply_fx_rate(store, item.event, position):
                            self.outcomes[outcome] += 1
                    else:
                        apply_commitment(store, item.event, position)
                else:
                    self.outcomes[apply_flow(store, item.flow, position)] += 1

    def totals(self, make) -> dict:
        result = {}
        for store in self.stores.values():
            result.update(make.store_totals(store))
        return result


def log_of(make, originals, data) -> list[tuple[str, bytes]]:
    records = [to_record(make, f"e{i}", t) for i, t in enumerate(originals)]
    for number, index in enumerate(data.draw(st.lists(
            st.integers(0, len(originals) - 1), max_size=3))):
        kind, fields = originals[index]
        records.append(to_record(make, f"c{number}", (kind, {**fields, "amount": "7.00"}),
                                 corrects=f"e{index}"))
    return [*rate_records(make), *data.draw(st.permutations(records))]


@FOLD_SETTINGS
@given(st.lists(transactions(currencies=("USD", "EUR", *UNRATED)), min_size=1, max_size=12),
       st.data())
def test_batches_fold_to_what_replay_gives(make, originals, data):
    log = log_of(make, originals, data)
    log.append(make.fx_rate("fx-late", currency=UNRATED[0], rate="3"))  # releases some
    records = consumed(log)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(records)), max_size=4)))
    fold = Fold()
    for start, end in zip([0, *cuts], [*cuts, len(records)], strict=True):
        if end > start:
            fold.send(records[start:end], max_bytes=data.draw(st.sampled_from(
                [64 * 1024, 1024, 200])))
    assert fold.totals(make) == make.store_totals(replay(log).store)


@FOLD_SETTINGS
@given(st.lists(transactions(), min_size=1, max_size=10), st.data())
def test_a_batch_sent_again_changes_nothing(make, originals, data):
    records = consumed(log_of(make, originals, data))
    fold = Fold()
    fold.send(records)
    once, before = fold.totals(make), Counter(fold.outcomes)
    resent = records[data.draw(st.integers(0, len(records) - 1)):]  # the intake crashed
    fold.send(resent)
    assert fold.totals(make) == once
    transactions_resent = sum(1 for record in resent if record.topic.endswith("-transactions"))
    assert fold.outcomes - before == Counter({"duplicate": transactions_resent})


def test_flows_parked_in_one_record_are_all_released_by_one_rate(make):
    fold = Fold()
    fold.send(consumed([make.trade("t1", currency="GBP", amount="10"),
                        make.trade("t2", currency="GBP", amount="20", occurred_at="2024-05-16"),
                        make.fx_rate("fx", currency="GBP", rate="2")]))
    assert fold.outcomes == Counter({"pending": 2, "applied": 2})
    totals = fold.totals(make)
    assert totals[("IN-RU", "trade", "value_usd", "2024")] == 60


def test_invalid_records_are_rejected_with_a_reason_and_nothing_else_is_lost(make):
    records = consumed([make.trade("t1"), ("trade", b"{not json"),
                        make.trade("t2", currency="ZZZ"), make.commitment()])
    routed = route_batch(records, KINDS, PARTITIONS, LIMIT)
    assert [r.record.offset for r in routed.rejected] == [1, 2]
    assert "not valid JSON" in routed.rejected[0].reason
    assert "currency" in routed.rejected[1].reason
    assert routed.transactions == 1 and len(routed.references) == 1
    # the commitment goes to every partition, each transaction to its pair's
    items = {partition: list(decode_batch(value)) for partition, value in routed.records(10**6)}
    assert sorted(items) == list(range(PARTITIONS))
    assert sum(len(batch) for batch in items.values()) == 1 + PARTITIONS
