"""Laws of the fold, checked with hypothesis on ``replay`` and the steps it is made of.

Amounts are whole cents and rates have few digits, so every figure is exact and the laws
can be checked with ``==``.
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import FxRatePublished
from services.tracker.domain.flows import flow_of
from services.tracker.domain.fold import (
    MemoryStore,
    apply_commitment,
    apply_event,
    apply_flow,
    apply_flows,
    apply_fx_rate,
    replay,
)
from services.tracker.domain.ledger import (
    EMPTY_ROOT,
    HeadlineCache,
    buckets_of,
    expanded,
    headline,
    ledger_update,
    position_key,
    with_update,
)
from services.tracker.domain.periods import months_of, period_kind
from services.tracker.domain.validation import validate
from services.tracker.tables import (
    LatestUpdates,
    ledger_records,
    split_group_key,
)

LIMIT = 64 * 1024
COUNTRIES = ("IN", "RU", "US", "AE")
RATES = {"EUR": "1.08", "INR": "0.012"}  # published (valid from 2000) before any flow
RATED = ("USD", *RATES)
UNRATED = ("GBP", "JPY")

FOLD_SETTINGS = settings(max_examples=60, deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])

amounts = st.integers(0, 10**10).map(lambda cents: f"{Decimal(cents) / 100:.2f}")
signed_amounts = st.integers(-10**10, 10**10).map(lambda cents: f"{Decimal(cents) / 100:.2f}")
days = st.dates(min_value=date(2023, 1, 1), max_value=date(2025, 12, 31)).map(date.isoformat)
two_countries = st.lists(st.sampled_from(COUNTRIES), min_size=2, max_size=2, unique=True)


@st.composite
def transactions(draw, currencies: tuple[str, ...] = RATED,
                 kinds: tuple[str, ...] = ("trade", "energy", "defense"),
                 directions: tuple[str, ...] = ("import", "export"),
                 on_days: st.SearchStrategy[str] = days) -> tuple[str, dict]:
    """(kind, fields) of one transaction record, without its event id."""
    kind = draw(st.sampled_from(kinds))
    first, second = draw(two_countries)
    fields: dict[str, Any] = {"amount": draw(amounts), "occurred_at": draw(on_days),
                              "currency": draw(st.sampled_from(currencies))}
    if kind == "defense":
        fields.update(buyer=first, supplier=second,
                      stage=draw(st.sampled_from(["contract_signed", "delivered", "paid"])))
    else:
        fields.update(reporter=first, partner=second,
                      direction=draw(st.sampled_from(directions)))
    if kind == "energy" and draw(st.booleans()):
        fields.update(quantity=str(draw(st.integers(0, 10**6))), unit="bbl")
    return kind, fields


@st.composite
def corrections_of(draw, original: tuple[str, dict]) -> tuple[str, dict]:
    """A correction of ``original``: same kind and countries, new amount, maybe new date,
    currency and direction (or stage)."""
    kind, fields = original
    changed = {**fields, "amount": draw(signed_amounts | st.just("0"))}
    if draw(st.booleans()):
        changed["occurred_at"] = draw(days)
    if draw(st.booleans()):
        changed["currency"] = draw(st.sampled_from(RATED))
    if kind != "defense" and draw(st.booleans()):
        changed["direction"] = "export" if fields["direction"] == "import" else "import"
    if kind == "energy" and draw(st.booleans()):  # drop the volume, or give one
        changed.pop("quantity", None)
        changed.pop("unit", None)
        if draw(st.booleans()):
            changed.update(quantity=str(draw(st.integers(0, 10**6))), unit="bbl")
    return kind, changed


def to_record(make, event_id: str, transaction: tuple[str, dict], **extra: Any):
    kind, fields = transaction
    return getattr(make, kind)(event_id, **fields, **extra)


def rate_records(make, currencies=RATES):
    return [make.fx_rate(f"fx-{currency}", currency=currency, rate=rate)
            for currency, rate in currencies.items()]


def fx_event(make, currency: str, rate: str, valid_from: str = "2000-01-01",
             event_id: str = "fx") -> FxRatePublished:
    return FxRatePublished.model_validate(
        make.fx_event(event_id, currency=currency, rate=rate, valid_from=valid_from))


def flow_from(record):
    kind, raw = record
    return flow_of(validate(kind, raw, LIMIT))  # type: ignore[arg-type]


def figures(make, records) -> dict:
    return make.store_totals(replay(records).store)


# -- (a) duplicates never double count ----------------------------------------------------

@FOLD_SETTINGS
@given(data=st.data())
def test_repeated_records_never_double_count(make, data):
    originals = data.draw(st.lists(transactions(), min_size=1, max_size=8), label="originals")
    records = [to_record(make, f"e{i}", t) for i, t in enumerate(originals)]
    targets = data.draw(st.lists(st.integers(0, len(originals) - 1), max_size=3),
                        label="corrected")
    for number, index in enumerate(targets):
        correction = data.draw(corrections_of(originals[index]))
        records.append(to_record(make, f"c{number}", correction, corrects=f"e{index}"))
    log = data.draw(st.permutations(records), label="log")

    repeats = data.draw(st.lists(st.tuples(st.integers(0, len(log) - 1), st.integers(0, 99)),
                                 min_size=1, max_size=6), label="repeats")
    with_repeats = list(log)
    for index, where in repeats:
        first = with_repeats.index(log[index])  # a copy always follows its first delivery
        with_repeats.insert(first + 1 + where % (len(with_repeats) - first), log[index])

    once = replay([*rate_records(make), *log])
    repeated = replay([*rate_records(make), *with_repeats])
    assert make.store_totals(repeated.store) == make.store_totals(once.store)
    assert repeated.outcomes.get("duplicate", 0) == len(repeats)
    assert once.outcomes.get("duplicate", 0) == 0


# -- (b) order independence ---------------------------------------------------------------

@FOLD_SETTINGS
@given(data=st.data())
def test_any_order_of_distinct_originals_gives_the_same_totals(make, data):
    originals = data.draw(st.lists(transactions(), min_size=1, max_size=8))
    records = [to_record(make, f"e{i}", t) for i, t in enumerate(originals)]
    shuffled = data.draw(st.permutations(records))
    expected = figures(make, [*rate_records(make), *records])
    assert figures(make, [*rate_records(make), *shuffled]) == expected
    assert expected  # something was counted


# -- (c) corrections ----------------------------------------------------------------------

@FOLD_SETTINGS
@given(data=st.data())
def test_original_plus_correction_in_either_order_equals_the_correction_alone(make, data):
    original = data.draw(transactions(), label="original")
    correction = data.draw(corrections_of(original), label="correction")
    first = to_record(make, "o1", original)
    fix = to_record(make, "c1", correction, corrects="o1")
    rates = rate_records(make)
    alone = make.nonzero(figures(make, [*rates, fix]))
    assert make.nonzero(figures(make, [*rates, first, fix])) == alone
    assert make.nonzero(figures(make, [*rates, fix, first])) == alone
    if Decimal(correction[1]["amount"]) == 0 and "quantity" not in correction[1]:
        assert alone == {}  # a zero correction removes the flow


def test_correction_with_amount_zero_removes_the_flow(make):
    report = replay([make.trade("t1", amount="100"), make.trade("t2", amount="40"),
                     make.trade("c1", amount="0", corrects="t1")])
    assert report.outcomes == {"applied": 2, "corrected": 1}
    result = make.store_totals(report.store)
    assert result[("IN-RU", "trade", "value_usd", "2024")] == Decimal(40)
    assert make.nonzero(figures(make, [make.trade("t1", amount="100"),
                                       make.trade("c1", amount="0", corrects="t1")])) == {}


def test_correction_can_move_a_flow_to_another_month(make):
    result = figures(make, [
        make.trade("t1", amount="100", occurred_at="2024-03-31"),
        make.trade("c1", amount="120", occurred_at="2024-04-01", corrects="t1"),
    ])
    assert result.get(("IN-RU", "trade", "value_usd", "FY2023-24"), 0) == 0
    assert result[("IN-RU", "trade", "value_usd", "FY2024-25")] == Decimal(120)
    assert result[("IN-RU", "trade", "value_usd", "2024")] == Decimal(120)


def test_the_correction_later_in_the_log_wins_whatever_the_originals_position(make):
    first, second = (make.trade("c1", amount="70", corrects="t1"),
                     make.trade("c2", amount="80", corrects="t1"))
    for log in ([make.trade("t1"), first, second], [first, make.trade("t1"), second],
                [first, second, make.trade("t1")]):
        assert figures(make, log)[("IN-RU", "trade", "value_usd", "2024")] == Decimal(80)


def test_later_correction_wins_even_when_the_earlier_one_waited_for_a_rate(make):
    original = make.trade("t1", amount="100")
    waiting = make.trade("c1", amount="70", currency="GBP", corrects="t1")
    later = make.trade("c2", amount="80", corrects="t1")
    rate = make.fx_rate("fx", currency="GBP", rate="1")
    key = ("IN-RU", "trade", "value_usd", "2024")
    assert figures(make, [rate, original, waiting, later])[key] == Decimal(80)
    assert figures(make, [original, waiting, later, rate])[key] == Decimal(80)  # actual: 70


def test_correction_of_a_correction_replaces_it(make):
    result = figures(make, [make.trade("t1", amount="100"),
                            make.trade("c1", amount="70", corrects="t1"),
                            make.trade("c2", amount="60", corrects="c1")])
    assert result[("IN-RU", "trade", "value_usd", "2024")] == Decimal(60)  # actual: 130


def test_a_correction_named_by_an_earlier_one_keeps_that_ones_root(make):
    """c2 names c1 before c1 (naming t1) is seen: c2 starts a root of its own under c1's
    id, which c1 then must not replace with an alias to t1's root - c3, naming c2, still
    finds c2's figure to replace."""
    result = figures(make, [make.trade("t1", amount="100"),
                            make.trade("c2", amount="60", corrects="c1"),
                            make.trade("c1", amount="70", corrects="t1"),
                            make.trade("c3", amount="5", corrects="c2")])
    assert result[("IN-RU", "trade", "value_usd", "2024")] == Decimal(75)


@pytest.mark.xfail(strict=True, reason="KNOWN LIMITATION (docs/architecture.md, "
                   "Corrections): state is partitioned by pair, so a correction must keep "
                   "the pair of the event it corrects; moving a flow to another pair takes "
                   "a reversal plus a new event")
def test_correction_changing_the_partner_replaces_the_original(make):
    result = figures(make, [make.trade("t1", amount="100", partner="RU"),
                            make.trade("c1", amount="70", partner="US", corrects="t1")])
    assert make.nonzero(result).get(("IN-RU", "all", "value_usd", "2024")) is None
    assert result[("IN-US", "all", "value_usd", "2024")] == Decimal(70)


def test_correction_moving_an_importer_report_lets_the_exporter_figure_count_again(make):
    mirror = make.trade("x1", reporter="RU", partner="IN", direction="export", amount="90",
                        occurred_at="2024-05-10")
    original = make.trade("o1", amount="100", occurred_at="2024-05-01")
    moved = make.trade("c1", amount="100", occurred_at="2024-06-01", corrects="o1")
    key = ("IN-RU", "trade", "value_usd", "2024-05")
    assert figures(make, [mirror, moved])[key] == Decimal(90)          # correction alone
    assert figures(make, [mirror, moved, original])[key] == Decimal(90)
    assert figures(make, [mirror, original, moved])[key] == Decimal(90)  # actual: 0


# -- (d) idempotent by position -----------------------------------------------------------

@FOLD_SETTINGS
@given(data=st.data())
def test_apply_flow_twice_at_the_same_position_changes_nothing_the_second_time(make, data):
    originals = data.draw(st.lists(transactions(currencies=(*RATED, *UNRATED)),
                                   min_size=1, max_size=6))
    records = [to_record(make, f"e{i}", t) for i, t in enumerate(originals)]
    for number, index in enumerate(data.draw(st.lists(
            st.integers(0, len(originals) - 1), max_size=2))):
        records.append(to_record(make, f"c{number}", data.draw(corrections_of(
            originals[index])), corrects=f"e{index}"))
    log = data.draw(st.permutations(records))
    log = [*log, *data.draw(st.lists(st.sampled_from(log), max_size=2))]  # deliveries again

    store = MemoryStore()
    for offset, (currency, rate) in enumerate(RATES.items()):
        apply_fx_rate(store, fx_event(make, currency, rate), (offset, 0))
    for offset, record in enumerate(log, start=len(RATES)):
        flow = flow_from(record)
        outcome = apply_flow(store, flow, (offset, 0))
        after_first = copy.deepcopy(store)
        assert apply_flow(store, flow, (offset, 0)) == outcome
        assert store == after_first


@dataclass
class RecordingStore(MemoryStore):
    """A MemoryStore that remembers every write, to replay any subset after a 'crash'. The
    tables write each value whole, and each ledger a step changed as one update of its
    changed months and head (``ledger_update`` since the step's position, as
    ``BatchStore.flush`` does): all of a write survives or none of it."""

    writes: list[tuple[str, tuple]] = field(default_factory=list)

    def set_reference(self, value):
        self.writes.append(("set_reference", (copy.deepcopy(value),)))
        super().set_reference(value)

    def set_root(self, key, value):
        self.writes.append(("set_root", (key, copy.deepcopy(value))))
        super().set_root(key, value)

    def record_ledger_updates(self, before: dict, since: tuple[int, ...]) -> None:
        for pair, ledger in self.ledgers.items():
            if ledger is not before.get(pair):
                self.writes.append(("put_update", (pair, copy.deepcopy(
                    ledger_update(ledger, since)))))


def plain(store: MemoryStore) -> MemoryStore:
    return MemoryStore(copy.deepcopy(store.reference_value), copy.deepcopy(store.ledgers),
                       copy.deepcopy(store.roots))


def put_update(store: MemoryStore, pair: str, update) -> None:
    store.set_ledger(pair, with_update(store.ledger(pair), pair, update))


def survivors(writes: list[tuple[str, tuple]]) -> Iterator[list[tuple[str, tuple]]]:
    """Every set of writes a crash can leave: any subset, in the order they were made."""
    for size in range(len(writes) + 1):
        yield from (list(subset) for subset in itertools.combinations(writes, size))


def after_crash_and_replay(base: MemoryStore, step, at: tuple[int, ...]):
    """(clean run, [(surviving writes, state after replaying the step on them), ...]);
    ``step`` folds one message at position ``at``."""
    recorder = RecordingStore(**vars(plain(base)))
    before = dict(recorder.ledgers)
    step(recorder, at)
    recorder.record_ledger_updates(before, at)
    clean = plain(recorder)
    outcomes = []
    for survived in survivors(recorder.writes):
        crashed = plain(base)
        for method, args in survived:
            if method == "put_update":
                put_update(crashed, *copy.deepcopy(args))
            else:
                getattr(MemoryStore, method)(crashed, *copy.deepcopy(args))
        step(crashed, at)
        outcomes.append(([method for method, _ in survived], crashed))
    return clean, outcomes


def test_crash_replay_of_a_flow_applies_it_once_whatever_writes_survived(make):
    base = MemoryStore()
    apply_fx_rate(base, fx_event(make, "EUR", "2"), (0, 0))
    apply_flow(base, flow_from(make.trade("t1", amount="100", currency="EUR")), (1, 0))
    correction = flow_from(make.trade("c1", amount="70", corrects="t1"))
    clean, outcomes = after_crash_and_replay(
        base, lambda store, at: apply_flow(store, correction, at), (2, 0))
    assert make.store_totals(clean)[("IN-RU", "trade", "value_usd", "2024")] == Decimal(70)
    assert len(outcomes) == 8  # root, alias and ledger writes: every subset of three
    for survived, state in outcomes:
        assert state == clean, survived


def test_crash_replay_of_a_correction_across_months_whatever_writes_survived(make):
    """A correction moving a figure to another month changes two months of the ledger,
    stored as one update with the head."""
    base = MemoryStore()
    apply_fx_rate(base, fx_event(make, "EUR", "2"), (0, 0))
    apply_flow(base, flow_from(make.trade("t1", amount="100", currency="EUR",
                                          occurred_at="2024-05-10")), (1, 0))
    correction = flow_from(make.trade("c1", amount="70", corrects="t1",
                                           occurred_at="2024-07-02"))
    clean, outcomes = after_crash_and_replay(
        base, lambda store, at: apply_flow(store, correction, at), (2, 0))
    totals = make.store_totals(clean)
    assert totals[("IN-RU", "trade", "value_usd", "2024-07")] == Decimal(70)
    assert totals.get(("IN-RU", "trade", "value_usd", "2024-05"), Decimal(0)) == 0
    assert len(outcomes) == 2 ** 3  # root, alias, ledger update
    for survived, state in outcomes:
        assert make.store_totals(state) == totals, survived
        assert state.ledgers == clean.ledgers, survived


def test_crash_replay_of_a_rate_applies_released_flows_once_whatever_writes_survived(make):
    base = MemoryStore()
    apply_flow(base, flow_from(make.trade("t1", amount="100", currency="EUR")), (0, 0))
    rate = fx_event(make, "EUR", "2")
    clean, outcomes = after_crash_and_replay(
        base, lambda store, at: apply_fx_rate(store, rate, at), (1, 0))
    expected = make.store_totals(clean)
    assert expected[("IN-RU", "trade", "value_usd", "2024")] == Decimal(200)
    lost = [survived for survived, state in outcomes if make.store_totals(state) != expected]
    assert lost == []  # e.g. ['set_reference', 'put_update'] must not leave the total at 0


# -- (e) pending until the rate arrives ---------------------------------------------------

@FOLD_SETTINGS
@given(st.lists(transactions(currencies=("GBP",), directions=("import",)),
                min_size=1, max_size=8),
       st.integers(1, 10**5).map(lambda n: str(Decimal(n) / 1000)))
def test_flows_without_a_rate_are_pending_then_counted_once(make, originals, rate):
    records = [to_record(make, f"e{i}", t) for i, t in enumerate(originals)]
    report = replay(records)
    assert report.outcomes == {"pending": len(records)}
    assert make.store_totals(report.store) == {}
    store = report.store
    assert sum(len(ledger["pending"]) for ledger in store.ledgers.values()) == len(records)

    released = apply_fx_rate(store, fx_event(make, "GBP", rate), (len(records), 0))
    assert sorted(outcome for _, outcome in released) == ["applied"] * len(records)
    counted = make.store_totals(store)
    # every flow is an importer's report in value_usd: the totals are plain sums
    for year in ("2023", "2024", "2025"):
        expected = sum((Decimal(fields["amount"]) * Decimal(rate)
                        for kind, fields in originals
                        if kind != "defense" or fields["stage"] == "delivered"
                        if fields["occurred_at"].startswith(year)), Decimal(0))
        got = sum((amount for (_, sector, measure, period), amount in counted.items()
                   if (sector, measure, period) == ("all", "value_usd", year)), Decimal(0))
        assert got == expected

    settled = copy.deepcopy(store)
    assert apply_fx_rate(store, fx_event(make, "GBP", rate), (len(records), 0)) == []
    assert store == settled  # the same rate message replayed at the same offset
    apply_fx_rate(store, fx_event(make, "GBP", rate), (len(records) + 1, 0))
    assert make.store_totals(store) == counted  # ... or delivered again later
    rate_first = replay([make.fx_rate("fx", currency="GBP", rate=rate), *records])
    assert make.store_totals(rate_first.store) == counted


def test_rate_valid_only_after_the_flow_leaves_it_pending(make):
    report = replay([
        make.trade("t1", currency="GBP", amount="100", occurred_at="2024-05-15"),
        make.fx_rate("fx1", currency="GBP", rate="1.25", valid_from="2024-06-01"),
    ])
    assert report.outcomes == {"pending": 1, "applied": 1}  # the rate message itself
    assert make.store_totals(report.store) == {}
    released = apply_fx_rate(report.store, fx_event(make, "GBP", "1.2", "2024-05-01"), (2, 0))
    assert released == [("IN-RU", "applied")]
    assert make.store_totals(report.store)[("IN-RU", "trade", "value_usd", "2024")] == \
        Decimal(120)


def test_pending_duplicate_is_released_as_a_duplicate(make):
    store = replay([make.trade("t1", currency="GBP", amount="10"),
                    make.trade("t1", currency="GBP", amount="10")]).store
    released = apply_fx_rate(store, fx_event(make, "GBP", "2"), (5, 0))
    assert released == [("IN-RU", "applied"), ("IN-RU", "duplicate")]
    assert make.store_totals(store)[("IN-RU", "trade", "value_usd", "2024")] == Decimal(20)


def test_redelivered_rate_message_does_not_undo_a_revision(make):
    first = make.fx_rate("fx-a", currency="EUR", rate="2", valid_from="2024-01-01")
    revised = make.fx_rate("fx-b", currency="EUR", rate="3", valid_from="2024-01-01")
    flow = make.trade("t1", currency="EUR", amount="100")
    key = ("IN-RU", "trade", "value_usd", "2024")
    assert figures(make, [first, revised, flow])[key] == Decimal(300)
    assert figures(make, [first, revised, first, flow])[key] == Decimal(300)  # actual: 200


# -- (f) fiscal and calendar years are sums of their months -------------------------------

@FOLD_SETTINGS
@given(data=st.data())
def test_year_totals_are_the_sums_of_their_months(make, data):
    originals = data.draw(st.lists(transactions(), min_size=1, max_size=10))
    records = [to_record(make, f"e{i}", t) for i, t in enumerate(originals)]
    for number, index in enumerate(data.draw(st.lists(
            st.integers(0, len(originals) - 1), max_size=3))):
        records.append(to_record(make, f"c{number}", data.draw(corrections_of(
            originals[index])), corrects=f"e{index}"))
    result = figures(make, [*rate_records(make), *records])
    years = 0
    for (pair, sector, measure, period), amount in result.items():
        if period_kind(period) == "month":
            year, fiscal = period[:4], fiscal_label(period)
            assert (pair, sector, measure, year) in result
            assert (pair, sector, measure, fiscal) in result
            continue
        years += 1
        months = sum((result.get((pair, sector, measure, month), Decimal(0))
                      for month in months_of(period)), Decimal(0))
        assert amount == months, (pair, sector, measure, period)
    assert years >= 2  # at least one calendar and one fiscal year were checked


def fiscal_label(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    start = year if mon >= 4 else year - 1
    return f"FY{start}-{(start + 1) % 100:02d}"


# -- replay as a whole --------------------------------------------------------------------

def test_replay_reports_dead_letters_and_keeps_going(make):
    report = replay([
        ("trade", b"{oops"),
        make.trade("t1", currency="ZZZ"),
        make.trade("t2", amount="5"),
        ("fx_rate", b""),
    ])
    assert report.outcomes == {"dead_letter": 3, "applied": 1}
    assert [event_id for event_id, _ in report.dead_letters] == ["?", "?", "?"]
    reasons = [reason for _, reason in report.dead_letters]
    assert reasons[0].startswith("not valid JSON")
    assert "unknown currency code 'ZZZ'" in reasons[1]
    assert reasons[2].startswith("empty value")
    assert make.store_totals(report.store)[("IN-RU", "trade", "value_usd", "2024")] == 5


def test_replay_honours_max_bytes(make):
    record = make.trade("t1")
    report = replay([record], max_bytes=len(record[1]) - 1)
    assert report.outcomes == {"dead_letter": 1}
    assert "exceeds the limit" in report.dead_letters[0][1]


def test_replay_folds_commitments_into_the_reference(make):
    report = replay([
        make.commitment("ev1", commitment_id="c1", sector="defense", target="5400"),
        make.commitment("ev1", commitment_id="c1", sector="defense", target="5400"),
        make.commitment("ev2", commitment_id="c1", action="withdrawn"),
    ])
    stored = report.store.reference()["commitments"]["c1"]
    assert stored["event_ids"] == ["ev1", "ev2"]
    assert stored["withdrawn"] is True
    assert stored["basis"] == "cumulative"  # the default for defense
    assert stored["target"] == "5400"
    assert stored["parties"] == ["IN", "RU"]


def test_commitment_replayed_at_the_same_offset_changes_nothing(make):
    from schemas.events import CommitmentChanged

    store = MemoryStore()
    event = CommitmentChanged.model_validate(make.commitment_event("ev1"))
    apply_commitment(store, event, (3, 0))
    before = copy.deepcopy(store)
    apply_commitment(store, event, (3, 0))
    assert store == before
    assert store.reference()["position"] == [3, 0]


# -- exactness: what the laws above rely on -------------------------------------------------

def test_order_independence_with_a_precise_rate(make):
    rate = make.fx_rate("fx", currency="EUR", rate="96071.7994383898")
    flows = [make.trade(f"t{i}", currency="EUR", amount=amount) for i, amount in enumerate(
        ["998764646803.73284029", "805592156548.64565912", "505111599062.44696683"])]
    assert figures(make, [rate, *flows]) == figures(make, [rate, *reversed(flows)])


# -- (g) the cached headline is the headline ----------------------------------------------

@FOLD_SETTINGS
@given(data=st.data())
def test_cached_headline_from_month_sums_equals_the_headline_of_the_days(make, data):
    """The views and metrics read ``HeadlineCache.lines``, which sums whole months from
    their sums over the days; it must agree with ``headline`` over every day bucket,
    corrections and the mirror rule included, as of any date - also for a ledger put back
    from its changelog update."""
    originals = data.draw(st.lists(transactions(kinds=("trade", "energy")), min_size=1,
                                   max_size=8), label="originals")
    records = [to_record(make, f"e{i}", t) for i, t in enumerate(originals)]
    for number, index in enumerate(data.draw(st.lists(
            st.integers(0, len(originals) - 1), max_size=3), label="corrected")):
        correction = data.draw(corrections_of(originals[index]))
        records.append(to_record(make, f"c{number}", correction, corrects=f"e{index}"))
    for number, index in enumerate(data.draw(st.lists(
            st.integers(0, len(originals) - 1), max_size=3), label="mirrored")):
        # The partner's report of the same route and month: the mirror rule picks one.
        kind, fields = originals[index]
        mirrored = {**fields, "reporter": fields["partner"], "partner": fields["reporter"],
                    "direction": "export" if fields["direction"] == "import" else "import",
                    "amount": data.draw(amounts)}
        records.append(to_record(make, f"m{number}", (kind, mirrored)))
    store = replay([*rate_records(make), *data.draw(st.permutations(records))]).store
    as_of = data.draw(st.one_of(st.none(), st.dates(date(2019, 1, 1), date(2027, 1, 1))))
    cache = HeadlineCache()
    for pair, ledger in store.ledgers.items():
        expected = headline(buckets_of(ledger), as_of)
        assert cache.lines(ledger, as_of) == expected
        assert with_update(None, pair, ledger_update(ledger)) == ledger


# -- (h) a fold that changes its values in place -----------------------------------------

@FOLD_SETTINGS
@given(st.lists(transactions(currencies=(*RATED, UNRATED[0])), min_size=1, max_size=16),
       st.data())
def test_changes_in_place_equal_copy_on_write_and_their_writes_rebuild_the_ledgers(
        make, originals, data):
    """The tables' fold changes ledgers in place and writes, per record, the months changed
    since the record's position: those writes must put the same ledgers together on
    recovery, and the headline cache must notice every change made in place."""
    records = [*rate_records(make), *[to_record(make, f"e{i}", t)
                                      for i, t in enumerate(originals)]]
    records += [to_record(make, f"c{i}", originals[i], corrects=f"e{i}")
                for i in data.draw(st.lists(st.integers(0, len(originals) - 1), max_size=3))]
    records.append(make.fx_rate("fx-late", currency=UNRATED[0], rate="3"))
    pure, in_place = MemoryStore(), MemoryStore(in_place=True)
    recovered: dict[str, dict] = {}
    cache = HeadlineCache()
    for offset, (kind, raw) in enumerate(records):
        apply_event(pure, kind, validate(kind, raw, LIMIT), offset)
        apply_event(in_place, kind, validate(kind, raw, LIMIT), offset)
        for pair, ledger in in_place.ledgers.items():
            update = copy.deepcopy(ledger_update(ledger, since=(offset,)))
            recovered[pair] = with_update(recovered.get(pair), pair, update)
            assert cache.lines(ledger) == headline(buckets_of(ledger)), pair
        assert recovered == in_place.ledgers
    assert (in_place.reference_value, in_place.ledgers, in_place.roots) == (
        pure.reference_value, pure.ledgers, pure.roots)


# -- (i) compact root entries -------------------------------------------------------------

class FullRootStore(MemoryStore):
    """A fold whose root entries all take the full form: ``record`` never sees a root as
    new, which is how every entry was stored before compact ones."""

    def root(self, key):
        return self.roots.get(key, EMPTY_ROOT)

    def set_root(self, key, value):
        assert isinstance(value, dict)
        super().set_root(key, value)


def fold_record(store: MemoryStore, record, offset: int):
    """Fold one ledger-input record: a flow's outcome, or what a rate released."""
    kind, raw = record
    event = validate(kind, raw, LIMIT)
    if isinstance(event, FxRatePublished):
        return apply_fx_rate(store, event, (offset, 0))
    return apply_event(store, kind, event, offset)


def corrected_log(make, originals, data) -> list:
    """The originals, drawn corrections of them (and of corrections), a late rate for the
    unrated currency, in a drawn order after the known rates, some delivered again."""
    records = [to_record(make, f"e{i}", t) for i, t in enumerate(originals)]
    for number, index in enumerate(data.draw(st.lists(
            st.integers(0, len(originals) - 1), max_size=4), label="corrected")):
        named = data.draw(st.sampled_from([f"e{index}", *[f"c{n}" for n in range(number)]]))
        records.append(to_record(make, f"c{number}", data.draw(corrections_of(
            originals[index])), corrects=named))
    records.append(make.fx_rate("fx-late", currency=UNRATED[0], rate="3"))
    log = [*rate_records(make), *data.draw(st.permutations(records), label="log")]
    return log + data.draw(st.lists(st.sampled_from(log), max_size=3), label="delivered again")


@FOLD_SETTINGS
@given(st.lists(transactions(currencies=(*RATED, UNRATED[0])), min_size=1, max_size=12),
       st.data())
def test_compact_root_entries_fold_as_the_full_form(make, originals, data):
    """With compact root entries the fold gives the outcomes, ledgers and (expanded) root
    entries of a fold that keeps every entry whole - through corrections, corrections of
    corrections, duplicates, flows released by a late rate, records folded again after a
    crash, and entries put back from their JSON changelog."""
    log = corrected_log(make, originals, data)

    compact, full = MemoryStore(in_place=True), FullRootStore(in_place=True)
    for offset in range(len(log)):
        # A crash: the records since an earlier offset are folded again at their offsets.
        refolded = range(data.draw(st.integers(0, offset)), offset + 1) if data.draw(
            st.booleans(), label=f"crash after {offset}") else range(offset, offset + 1)
        for at in refolded:
            assert fold_record(compact, log[at], at) == fold_record(full, log[at], at)
        if data.draw(st.booleans(), label=f"recover after {offset}"):
            compact.roots = orjson.loads(orjson.dumps(compact.roots))
        assert compact.ledgers == full.ledgers
        assert {key: expanded(entry) for key, entry in compact.roots.items()} == full.roots
    for key, entry in full.roots.items():  # compact exactly where one plain event applied
        one_plain_event = entry.get("current_log_position") is not None and [
            *entry["changes"]] == [position_key(entry["current_log_position"])] and not (
            entry["corrected"])
        assert isinstance(compact.roots[key], list) == one_plain_event, entry


# -- (j) ledger writes of just the buckets a record changed -------------------------------

@dataclass
class TouchingStore(MemoryStore):
    """The tables' fold: values changed in place, the bucket keys each ledger-input record
    changes noted per pair, and the ledgers it set written at the end of the record."""

    in_place: bool = True
    touched_keys: dict[str, dict] = field(default_factory=dict)
    staged: set[str] = field(default_factory=set)

    def set_ledger(self, pair, value):
        self.staged.add(pair)
        super().set_ledger(pair, value)

    def touched(self, pair):
        return self.touched_keys.setdefault(pair, {})

    def writes(self, latest: LatestUpdates, offset: int, max_partial: int) -> list:
        records = [record for pair in sorted(self.staged) for record in ledger_records(
            latest, pair, self.ledgers[pair], self.touched(pair), offset, max_partial)]
        self.staged.clear()
        self.touched_keys.clear()
        return copy.deepcopy(records)


# Two months, so that records often change the same month of a pair.
FEW_DAYS = st.sampled_from(["2024-01-05", "2024-01-20", "2024-02-05"])


def fold_ledger_input(store: MemoryStore, records, offset: int) -> None:
    """Fold one ledger-input record holding several events, at (offset, index)."""
    for index, (kind, raw) in enumerate(records):
        event = validate(kind, raw, LIMIT)
        if isinstance(event, FxRatePublished):
            apply_fx_rate(store, event, (offset, index))
        else:
            apply_flow(store, flow_of(event), (offset, index))  # type: ignore[arg-type]


def recovered(log: list) -> tuple[dict, LatestUpdates]:
    """The ledgers and update chains a worker puts together from a ledger changelog."""
    ledgers: dict[str, dict] = {}
    latest = LatestUpdates()
    for key, update in copy.deepcopy(log):  # decoded afresh, as from the changelog
        pair, offset = split_group_key(key)
        latest.recovered(pair, offset, update)
        if update is not None:
            ledgers[pair] = with_update(ledgers.get(pair), pair, update)
    return ledgers, latest


def compacted(log: list) -> list:
    """What log compaction may leave: each key's last record, in the order of those."""
    last = {key: (at, value) for at, (key, value) in enumerate(log)}
    return [(key, value) for key, (_, value) in sorted(last.items(), key=lambda kv: kv[1][0])
            if value is not None]


@settings(FOLD_SETTINGS, max_examples=150)
@given(st.lists(transactions(currencies=(*RATED, UNRATED[0]), on_days=FEW_DAYS),
                min_size=1, max_size=20),
       st.data())
def test_ledger_writes_of_changed_buckets_rebuild_the_ledgers_after_crashes_and_compaction(
        make, originals, data):
    """A record's ledger writes hold just the buckets it changed, where a month's chain of
    such pieces allows, else the month whole, and supersede the updates no month needs any
    more. Whatever prefix of a record's ledger writes a crash leaves before the records
    from the last commit are folded again on the ledgers recovered from the log, the log
    and its compaction rebuild the ledgers of a fold without crashes."""
    events = [*rate_records(make), *[to_record(make, f"e{i}", t)
                                     for i, t in enumerate(originals)]]
    events += [to_record(make, f"c{i}", data.draw(corrections_of(originals[i])),
                         corrects=f"e{i}")
               for i in data.draw(st.lists(st.integers(0, len(originals) - 1), max_size=4),
                                  label="corrected")]
    events.append(make.fx_rate("fx-late", currency=UNRATED[0], rate="3"))
    events = data.draw(st.permutations(events), label="log")
    cuts = sorted(data.draw(st.sets(st.integers(1, len(events) - 1), max_size=10),
                            label="cuts"))
    records = [events[start:end]
               for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True)]
    max_partial = data.draw(st.integers(1, 2), label="max partial pieces")

    clean, clean_after = TouchingStore(), []
    for offset, record in enumerate(records):
        fold_ledger_input(clean, record, offset)
        clean_after.append(copy.deepcopy(clean.ledgers))
    live, latest, log = TouchingStore(), LatestUpdates(), []
    for offset, record in enumerate(records):
        roots_before = copy.deepcopy(live.roots)
        reference_before = copy.deepcopy(live.reference_value)
        fold_ledger_input(live, record, offset)
        writes = live.writes(latest, offset, max_partial)
        if data.draw(st.booleans(), label=f"crash in record {offset}"):
            kept = data.draw(st.integers(0, len(writes)), label="ledger writes kept")
            log += writes[:kept]
            ledgers, latest = recovered(log)
            # The mixes the order of the writes leaves (changelog_writes.OrderedWrites):
            # a record's root writes kept when any of its ledger writes are, since those
            # are sent once the broker has the roots; its reference write only when all of
            # them are.
            roots_kept = kept > 0 or data.draw(st.booleans(), label="root writes kept")
            reference_kept = kept == len(writes) and roots_kept and data.draw(
                st.booleans(), label="reference kept")
            live = TouchingStore(
                copy.deepcopy(live.reference_value if reference_kept else reference_before),
                ledgers, copy.deepcopy(live.roots if roots_kept else roots_before))
            # Folded again from the last committed record on, this one included.
            for again in range(data.draw(st.integers(0, offset), label="committed"), offset):
                fold_ledger_input(live, records[again], again)
                log += live.writes(latest, again, max_partial)
            fold_ledger_input(live, record, offset)
            writes = live.writes(latest, offset, max_partial)
        log += writes
        assert live.ledgers == clean_after[offset]
    assert recovered(log)[0] == clean.ledgers
    assert recovered(compacted(log))[0] == clean.ledgers
    # Each month needs its latest whole piece and the partial ones after it, the head the
    # last update: compaction keeps no more records than that.
    kept = Counter(split_group_key(key)[0] for key, _ in compacted(log))
    for pair, records_kept in kept.items():
        assert records_kept <= (max_partial + 1) * len(clean.ledgers[pair]["months"]) + 1


# -- (k) a run of flows folded together ---------------------------------------------------

def fold_in_runs(store: MemoryStore, records, offset: int) -> list:
    """Fold one ledger-input record as the agent does: the flows between rates as runs
    (``apply_flows``), each rate on its own."""
    outcomes: list = []
    run: list = []
    for index, record in enumerate([*records, None]):
        event = None if record is None else validate(*record, LIMIT)
        if event is not None and not isinstance(event, FxRatePublished):
            run.append(flow_of(event))  # type: ignore[arg-type]
            continue
        outcomes += apply_flows(store, run, offset, index - len(run))
        run = []
        if event is not None:
            outcomes.append(apply_fx_rate(store, event, (offset, index)))
    return outcomes


def fold_one_by_one(store: MemoryStore, records, offset: int) -> list:
    outcomes = []
    for index, (kind, raw) in enumerate(records):
        event = validate(kind, raw, LIMIT)
        position = (offset, index)
        outcomes.append(apply_fx_rate(store, event, position)
                        if isinstance(event, FxRatePublished)
                        else apply_flow(store, flow_of(event), position))  # type: ignore[arg-type]
    return outcomes


@settings(FOLD_SETTINGS, max_examples=150)
@given(st.lists(transactions(currencies=(*RATED, UNRATED[0]), on_days=FEW_DAYS),
                min_size=1, max_size=24),
       st.data())
def test_flows_folded_in_runs_equal_flows_folded_one_by_one(make, originals, data):
    """``apply_flows`` gathers what new plain flows add and adds it once per run: the
    outcomes, ledgers, root entries and ledger writes must be those of ``apply_flow`` on
    each flow in turn - with duplicates, corrections (of corrections), flows waiting for a
    rate, records folded again after a crash and root writes a crash lost."""
    events = corrected_log(make, originals, data)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(events) - 1), max_size=6),
                            label="cuts"))
    records = [events[start:end]
               for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True)]

    in_runs, one_by_one = TouchingStore(), TouchingStore()
    latest_runs, latest_one = LatestUpdates(), LatestUpdates()
    roots_before: list[dict] = []
    for offset in range(len(records)):
        roots_before.append(copy.deepcopy(one_by_one.roots))
        refolded = range(data.draw(st.integers(0, offset)), offset + 1) if data.draw(
            st.booleans(), label=f"crash after {offset}") else range(offset, offset + 1)
        if len(refolded) > 1 and data.draw(st.booleans(), label="root writes lost"):
            lost_to = roots_before[refolded.start]
            in_runs.roots, one_by_one.roots = copy.deepcopy(lost_to), copy.deepcopy(lost_to)
        for at in refolded:
            assert (fold_in_runs(in_runs, records[at], at)
                    == fold_one_by_one(one_by_one, records[at], at))
            assert (in_runs.writes(latest_runs, at, 2)
                    == one_by_one.writes(latest_one, at, 2))
        assert in_runs.ledgers == one_by_one.ledgers
        assert in_runs.roots == one_by_one.roots
        assert in_runs.reference_value == one_by_one.reference_value


def test_new_plain_flows_of_a_run_are_gathered_and_the_rest_folded_one_by_one(make):
    """What makes the run worth it: each new plain flow is added without ``apply_change``,
    and what they added is in the ledger before a duplicate of one of them is folded."""
    first, second, third = (flow_from(make.trade(f"e{i}", amount="10.00", reporter="IN",
                                                 partner="RU", occurred_at="2024-01-05"))
                            for i in range(3))
    store = TouchingStore()
    outcomes = apply_flows(store, [first, second, first, third], 7)
    assert outcomes == ["applied", "applied", "duplicate", "applied"]
    ledger = store.ledgers["IN-RU"]
    assert ledger["counts"] == {"applied": 3, "corrected": 0, "superseded": 0, "duplicate": 1}
    assert ledger["position"] == [7, 3]
    assert buckets_of(ledger) == {"trade|value_usd|RU>IN|importer|2024-01-05|USD": "30.00"}
