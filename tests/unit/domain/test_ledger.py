"""Root entries, ledger changes, pending flows and headline totals (the mirror rule)."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal

import orjson
import pytest

from services.tracker.domain.flows import Flow
from services.tracker.domain.fold import replay
from services.tracker.domain.fx import with_rate
from services.tracker.domain.ledger import (
    EMPTY_ROOT,
    Change,
    RootEntry,
    add_pending,
    alias_root,
    alias_target,
    apply_change,
    bucket_key,
    buckets_of,
    contribution_of,
    empty_ledger,
    expanded,
    headline_months,
    ledger_update,
    monthly_series,
    record,
    releasable,
    sum_key,
    totals,
    with_update,
)

PAIR = "IN-RU"
KEY_MAY = bucket_key("trade", "value_usd", "RU>IN", "importer", "2024-05-15", "USD")


def flow(event_id: str = "t1", *, corrects: str | None = None, amount: str = "100",
         month: str = "2024-05", route: str = "RU>IN", role: str = "importer",
         sector: str = "trade", measure: str = "value_usd", currency: str = "USD",
         quantity: str | None = None, unit: str | None = None) -> Flow:
    return Flow(event_id=event_id, root_id=corrects or event_id, is_correction=bool(corrects),
                pair=PAIR, sector=sector, measure=measure,  # type: ignore[arg-type]
                route=route, role=role, month=month, day=f"{month}-15",  # type: ignore[arg-type]
                amount=Decimal(amount), currency=currency,
                quantity=None if quantity is None else Decimal(quantity), unit=unit)


# -- contributions ------------------------------------------------------------------------

def test_bucket_key():
    assert bucket_key("trade", "value_usd", "RU>IN", "importer", "2024-05-15", "INR") == (
        "trade|value_usd|RU>IN|importer|2024-05-15|INR")


def test_contribution_converts_to_usd_and_keeps_the_settlement_currency():
    assert contribution_of(flow(amount="250", currency="EUR"), Decimal("1.1")) == {
        bucket_key("trade", "value_usd", "RU>IN", "importer", "2024-05-15", "EUR"): "275.0"}


def test_contribution_adds_the_quantity_bucket_in_its_unit():
    contribution = contribution_of(
        flow(sector="energy", amount="70", quantity="1000", unit="bbl"), Decimal(1))
    assert {key: Decimal(value) for key, value in contribution.items()} == {
        bucket_key("energy", "value_usd", "RU>IN", "importer", "2024-05-15"): Decimal(70),
        bucket_key("energy", "bbl", "RU>IN", "importer", "2024-05-15", "-"): Decimal(1000),
    }


def test_a_valid_thirty_digit_amount_is_kept_exactly():
    amount = "1234567890123456789012.12345678"  # max_digits=30, decimal_places=8: valid
    contribution = contribution_of(flow(amount=amount), Decimal(1))
    assert Decimal(contribution[KEY_MAY]) == Decimal(amount)


# -- record: the root entry of one original event -----------------------------------------

def test_first_report_is_applied():
    entry, change = record(None, flow("t1"), {KEY_MAY: "100"}, (1, 0))
    assert change == Change("applied", "t1", None, {KEY_MAY: "100"})
    assert expanded(entry)["current"] == {KEY_MAY: "100"}
    assert expanded(entry)["seen"] == {"t1": [1, 0]}


def test_same_event_id_again_is_a_duplicate_that_changes_nothing():
    entry, _ = record(None, flow("t1"), {KEY_MAY: "100"}, (1, 0))
    again, change = record(entry, flow("t1", amount="999"), {KEY_MAY: "999"}, (2, 0))
    assert change == Change("duplicate", "t1")
    assert expanded(again)["current"] == {KEY_MAY: "100"}


def test_correction_after_original_replaces_its_contribution():
    entry, _ = record(None, flow("t1"), {KEY_MAY: "100"}, (1, 0))
    entry, change = record(entry, flow("t2", corrects="t1"), {KEY_MAY: "80"}, (2, 0))
    assert change == Change("corrected", "t2", {KEY_MAY: "100"}, {KEY_MAY: "80"})
    assert expanded(entry)["corrected"] is True
    assert expanded(entry)["current_event"] == "t2"


def test_original_after_its_correction_is_superseded():
    entry, first = record(None, flow("t2", corrects="t1"), {KEY_MAY: "80"}, (1, 0))
    assert first == Change("corrected", "t2", None, {KEY_MAY: "80"})
    entry, change = record(entry, flow("t1"), {KEY_MAY: "100"}, (2, 0))
    assert change == Change("superseded", "t1")
    assert expanded(entry)["current"] == {KEY_MAY: "80"}


def test_later_correction_in_the_log_wins():
    entry, _ = record(None, flow("t1"), {KEY_MAY: "100"}, (1, 0))
    entry, _ = record(entry, flow("t3", corrects="t1"), {KEY_MAY: "70"}, (2, 0))
    entry, change = record(entry, flow("t2", corrects="t1"), {KEY_MAY: "80"}, (3, 0))
    assert change.before == {KEY_MAY: "70"}
    assert expanded(entry)["current"] == {KEY_MAY: "80"}


def test_replaying_a_position_returns_the_recorded_change_and_keeps_the_entry():
    entry, change = record(None, flow("t1"), {KEY_MAY: "100"}, (1, 0))
    again, replayed = record(entry, flow("t1"), {KEY_MAY: "100"}, (1, 0))
    assert replayed == change
    assert again == entry


# -- record: compact entries say what the full form says ----------------------------------

KEY_JUN = bucket_key("trade", "value_usd", "RU>IN", "importer", "2024-06-15", "USD")
KEY_BBL = bucket_key("energy", "bbl", "RU>IN", "importer", "2024-05-15", "-")

T1 = (flow("t1"), {KEY_MAY: "100", KEY_BBL: "7"})
T1_AGAIN = (flow("t1", amount="999"), {KEY_MAY: "999"})  # same id: a duplicate
C2 = (flow("c2", corrects="t1", amount="80"), {KEY_JUN: "80"})
C3 = (flow("c3", corrects="c2", amount="70"), {KEY_MAY: "70"})  # names the correction
ORIGINAL, DUPLICATE, CORRECTION = (1, 0), (2, 3), (3, 0)

# Each step: (flow, contribution, position, log position or None).
SEQUENCES = {
    "applied": [(*T1, ORIGINAL, None)],
    "replayed at its position": [(*T1, ORIGINAL, None), (*T1, ORIGINAL, None)],
    "duplicate": [(*T1, ORIGINAL, None), (*T1_AGAIN, DUPLICATE, None)],
    "duplicate replayed": [(*T1, ORIGINAL, None), (*T1_AGAIN, DUPLICATE, None),
                           (*T1_AGAIN, DUPLICATE, None), (*T1, ORIGINAL, None)],
    "correction after the original": [(*T1, ORIGINAL, None), (*C2, CORRECTION, None)],
    "correction before the original": [(*C2, CORRECTION, None), (*T1, (4, 0), None)],
    "original replayed after its correction": [
        (*T1, ORIGINAL, None), (*C2, CORRECTION, None), (*T1, ORIGINAL, None),
        (*C2, CORRECTION, None)],
    "correction of a correction": [(*T1, ORIGINAL, None), (*C2, CORRECTION, None),
                                   (*C3, (4, 1), None)],
    "older correction after a newer one": [(*T1, (5, 0), None), (*C3, (4, 1), None),
                                           (*C2, CORRECTION, None)],
    "released from the pending list": [(*T1, (9, 0, *ORIGINAL), ORIGINAL),
                                       (*T1, (9, 0, *ORIGINAL), ORIGINAL)],
    "released, then corrected": [(*T1, (9, 0, *ORIGINAL), ORIGINAL), (*C2, (10, 0), None)],
    "released correction of a compact root": [(*T1, ORIGINAL, None),
                                              (*C2, (9, 0, *CORRECTION), CORRECTION)],
    "duplicate released after the original": [(*T1, ORIGINAL, None),
                                              (*T1_AGAIN, (9, 0, *DUPLICATE), DUPLICATE)],
}


@pytest.mark.parametrize("steps", SEQUENCES.values(), ids=SEQUENCES.keys())
def test_compact_entries_record_what_the_full_form_records(steps):
    """``record`` from a compact entry (stored and recovered as JSON) and from the full
    form of the same root give the same change, and entries that say the same."""
    compact: RootEntry | None = None
    full: RootEntry = EMPTY_ROOT  # never compact: what every entry was before
    for the_flow, contribution, position, log_position in steps:
        recovered = None if compact is None else orjson.loads(orjson.dumps(compact))
        assert recovered == compact
        compact, change = record(recovered, the_flow, contribution, position, log_position)
        full, full_change = record(full, the_flow, contribution, position, log_position)
        assert isinstance(full, dict)
        assert change == full_change
        assert expanded(compact) == full


def test_a_new_plain_event_at_its_log_position_gets_a_compact_entry():
    entry, change = record(None, flow("t1"), {KEY_MAY: "100", KEY_BBL: "7"}, (12, 3))
    assert entry == ["t1", 12, 3, KEY_MAY, "100", KEY_BBL, "7"]
    assert change == Change("applied", "t1", None, {KEY_MAY: "100", KEY_BBL: "7"})
    assert expanded(entry) == {
        "current": {KEY_MAY: "100", KEY_BBL: "7"}, "current_event": "t1",
        "current_log_position": [12, 3], "corrected": False, "seen": {"t1": [12, 3]},
        "changes": {"12:3": {"outcome": "applied", "event_id": "t1", "before": None,
                             "after": {KEY_MAY: "100", KEY_BBL: "7"}}}}


def test_a_correction_or_a_released_flow_gets_the_full_form():
    correction, _ = record(None, flow("c1", corrects="t1"), {KEY_MAY: "80"}, (1, 0))
    released, _ = record(None, flow("t1"), {KEY_MAY: "100"}, (9, 0, 1, 0), (1, 0))
    assert isinstance(correction, dict)
    assert isinstance(released, dict)


def test_an_entry_no_event_changes_is_returned_as_it_was():
    """The same object, so that the tables write nothing for it."""
    entry, _ = record(None, flow("t1"), {KEY_MAY: "100"}, (1, 0))
    assert record(entry, flow("t1"), {KEY_MAY: "100"}, (1, 0))[0] is entry
    assert record(entry, flow("t1"), {KEY_MAY: "100"}, (2, 0))[0] is entry


def test_alias_target_names_the_root_of_an_alias_only():
    compact, _ = record(None, flow("alias_of"), {KEY_MAY: "100"}, (1, 0))
    full, _ = record(None, flow("c1", corrects="t1"), {KEY_MAY: "80"}, (1, 0))
    assert alias_target(alias_root("IN-RU/t1")) == "IN-RU/t1"
    assert [alias_target(entry) for entry in (compact, full, None)] == [None, None, None]


# -- applying changes to a ledger ---------------------------------------------------------

def test_apply_change_subtracts_before_and_adds_after():
    ledger = apply_change(empty_ledger(PAIR), Change("applied", "t1", None, {KEY_MAY: "100"}),
                          (1, 0))
    ledger = apply_change(ledger, Change("corrected", "t2", {KEY_MAY: "100"}, {KEY_MAY: "80"}),
                          (2, 0))
    assert Decimal(buckets_of(ledger)[KEY_MAY]) == 80
    assert ledger["counts"] == {"applied": 1, "corrected": 1, "superseded": 0, "duplicate": 0}
    assert ledger["position"] == [2, 0]


def test_apply_change_ignores_positions_already_reflected():
    change = Change("applied", "t1", None, {KEY_MAY: "100"})
    ledger = apply_change(empty_ledger(PAIR), change, (5, 1))
    assert apply_change(ledger, change, (5, 1)) is ledger
    assert apply_change(ledger, change, (5, 0)) is ledger
    assert apply_change(ledger, change, (4, 9)) is ledger
    assert Decimal(buckets_of(apply_change(ledger, change, (5, 2)))[KEY_MAY]) == 200


KEY_JULY = bucket_key("trade", "value_usd", "RU>IN", "importer", "2024-07-02", "USD")


def test_a_ledger_is_stored_as_an_update_of_its_changed_months_and_head():
    first = apply_change(empty_ledger(PAIR), Change("applied", "t1", None, {KEY_MAY: "100"}),
                         (1, 0))
    moved = apply_change(first, Change("corrected", "c1", {KEY_MAY: "100"}, {KEY_JULY: "70"}),
                         (2, 0))
    update = ledger_update(moved, since=(2,))
    assert sorted(update["months"]) == ["2024-05", "2024-07"]
    assert update["head"]["position"] == [2, 0]
    assert with_update(first, PAIR, update) == moved
    assert with_update(None, PAIR, ledger_update(moved)) == moved, "a new ledger"
    # A month emptied by a correction stays, with its position, so a replay skips it.
    assert moved["months"]["2024-05"] == {} and moved["month_positions"]["2024-05"] == [2, 0]
    third = apply_change(moved, Change("applied", "t2", None, {KEY_JULY: "5"}), (3, 0))
    assert sorted(ledger_update(third, since=(3,))["months"]) == ["2024-07"], "only what changed"


def test_a_month_written_in_part_holds_just_the_buckets_changed_and_rebuilds_the_ledger():
    first = apply_change(empty_ledger(PAIR), Change("applied", "t1", None, {KEY_MAY: "100"}),
                         (1, 0))
    first = apply_change(first, Change("applied", "t2", None, {KEY_JULY: "30"}), (1, 1))
    touched: dict = {}
    moved = apply_change(copy.deepcopy(first),
                         Change("corrected", "c1", {KEY_MAY: "100"}, {KEY_JULY: "70"}),
                         (2, 0), in_place=True, touched=touched)
    assert touched == {"2024-05": {KEY_MAY}, "2024-07": {KEY_JULY}}
    update = ledger_update(moved, since=(2,), partial={"2024-07": {KEY_JULY}})
    july = update["months"]["2024-07"]
    assert july["partial"] and july["buckets"] == {KEY_JULY: "100"}
    assert july["sums"] == {sum_key(KEY_JULY): "100"} and july["position"] == [2, 0]
    assert not update["months"]["2024-05"].get("partial"), "not in ``partial``: whole"
    assert with_update(first, PAIR, update) == moved
    gone = ledger_update(moved, since=(2,), partial={"2024-05": {KEY_MAY}})["months"]
    assert gone["2024-05"]["buckets"] == {KEY_MAY: None}, "a bucket that went"
    assert with_update(first, PAIR, {**update, "months": gone}) == moved


def test_a_month_changed_again_by_a_record_folded_again_is_to_be_written_whole():
    ledger = apply_change(empty_ledger(PAIR), Change("applied", "t1", None, {KEY_MAY: "100"}),
                          (4, 0))
    touched: dict = {}
    apply_change(ledger, Change("applied", "t2", None, {KEY_MAY: "5"}), (4, 1),
                 in_place=True, touched=touched)
    assert touched == {"2024-05": None}, "what the first attempt changed is not known"


def test_a_change_to_the_head_alone_is_an_update_without_months():
    parked = add_pending(empty_ledger(PAIR), flow("t1", currency="EUR"), (1, 0))
    assert ledger_update(parked, since=(1,)) == {
        "months": {}, "head": {"pair": PAIR, "position": [1, 0], "pending": parked["pending"],
                               "counts": parked["counts"]}}


def test_pending_flows_wait_for_a_rate_and_leave_by_event_id():
    ledger = add_pending(empty_ledger(PAIR), flow("t1", currency="EUR"), (1, 0))
    ledger = add_pending(ledger, flow("t2", currency="GBP"), (2, 0))
    assert add_pending(ledger, flow("t3", currency="EUR"), (2, 0)) is ledger  # replayed
    assert releasable(ledger, {}) == []
    rates = with_rate({}, "EUR", date(2024, 1, 1), Decimal("1.1"))
    ready = releasable(ledger, rates)
    assert [(f.event_id, parked_at) for f, parked_at in ready] == [("t1", (1, 0))]
    released, _ = ready[0]
    change = Change("applied", "t1", None, {KEY_MAY: "110"})
    left = apply_change(ledger, change, (3, 2), released=released)
    assert [item["flow"]["event_id"] for item in left["pending"]] == ["t2"]
    assert buckets_of(left) == {KEY_MAY: "110"}, "released in the same write that applies it"


# -- headline totals: the mirror rule -----------------------------------------------------

def test_importer_figure_is_preferred_over_the_exporters_for_the_same_route_and_month(make):
    buckets = make.buckets_from([
        ("trade", "value_usd", "RU>IN", "importer", "2024-05", "100"),
        ("trade", "value_usd", "RU>IN", "exporter", "2024-05", "90"),
    ])
    assert headline_months(buckets) == {("trade", "value_usd", "2024-05"): Decimal(100)}


def test_exporter_figure_counts_where_the_importer_reported_nothing(make):
    buckets = make.buckets_from([
        ("trade", "value_usd", "RU>IN", "importer", "2024-05", "100"),
        ("trade", "value_usd", "RU>IN", "exporter", "2024-06", "70"),   # other month
        ("trade", "value_usd", "IN>RU", "exporter", "2024-05", "40"),   # other route
    ])
    assert headline_months(buckets) == {
        ("trade", "value_usd", "2024-05"): Decimal(140),
        ("trade", "value_usd", "2024-06"): Decimal(70),
    }


def test_mirror_rule_end_to_end(make):
    report = replay([
        make.trade("imp", reporter="IN", partner="RU", direction="import", amount="100"),
        make.trade("exp", reporter="RU", partner="IN", direction="export", amount="90"),
        make.trade("only", reporter="RU", partner="IN", direction="export", amount="70",
                   occurred_at="2024-06-02"),
        make.trade("back-x", reporter="IN", partner="RU", direction="export", amount="40"),
        make.trade("back-m", reporter="RU", partner="IN", direction="import", amount="45"),
    ])
    figures = make.store_totals(report.store)
    # May: RU>IN importer 100 (not 90) + IN>RU importer 45 (not 40); June: exporter-only 70
    assert figures[(PAIR, "trade", "value_usd", "2024-05")] == Decimal(145)
    assert figures[(PAIR, "trade", "value_usd", "2024-06")] == Decimal(70)
    assert figures[(PAIR, "trade", "value_usd", "2024")] == Decimal(215)
    assert figures[(PAIR, "all", "value_usd", "FY2024-25")] == Decimal(215)


def test_totals_cover_year_fiscal_year_month_and_sector_all(make):
    buckets = make.buckets_from([
        ("trade", "value_usd", "RU>IN", "importer", "2024-03", "10"),
        ("trade", "value_usd", "RU>IN", "importer", "2024-04", "20"),
        ("energy", "value_usd", "RU>IN", "importer", "2024-04", "5"),
        ("energy", "bbl", "RU>IN", "importer", "2024-04", "3"),
    ])
    assert totals(buckets) == {
        ("trade", "value_usd", "2024"): Decimal(30),
        ("trade", "value_usd", "FY2023-24"): Decimal(10),
        ("trade", "value_usd", "FY2024-25"): Decimal(20),
        ("trade", "value_usd", "2024-03"): Decimal(10),
        ("trade", "value_usd", "2024-04"): Decimal(20),
        ("energy", "value_usd", "2024"): Decimal(5),
        ("energy", "value_usd", "FY2024-25"): Decimal(5),
        ("energy", "value_usd", "2024-04"): Decimal(5),
        ("energy", "bbl", "2024"): Decimal(3),
        ("energy", "bbl", "FY2024-25"): Decimal(3),
        ("energy", "bbl", "2024-04"): Decimal(3),
        ("all", "value_usd", "2024"): Decimal(35),
        ("all", "value_usd", "FY2023-24"): Decimal(10),
        ("all", "value_usd", "FY2024-25"): Decimal(25),
        ("all", "value_usd", "2024-03"): Decimal(10),
        ("all", "value_usd", "2024-04"): Decimal(25),
        ("all", "bbl", "2024"): Decimal(3),
        ("all", "bbl", "FY2024-25"): Decimal(3),
        ("all", "bbl", "2024-04"): Decimal(3),
    }


def test_monthly_series_by_sector_and_for_all(make):
    buckets = make.buckets_from([
        ("trade", "value_usd", "RU>IN", "importer", "2024-04", "20"),
        ("trade", "value_usd", "RU>IN", "exporter", "2024-04", "999"),
        ("defense", "value_usd", "RU>IN", "importer", "2024-04", "7"),
        ("defense", "order_book_usd", "RU>IN", "importer", "2024-05", "500"),
    ])
    assert monthly_series(buckets, "trade", "value_usd") == {"2024-04": Decimal(20)}
    assert monthly_series(buckets, "all", "value_usd") == {"2024-04": Decimal(27)}
    assert monthly_series(buckets, "defense", "order_book_usd") == {"2024-05": Decimal(500)}
    assert monthly_series(buckets, "energy", "value_usd") == {}


# -- defense stages -----------------------------------------------------------------------

@pytest.mark.parametrize(("stage", "measure"), [
    ("delivered", "value_usd"),
    ("contract_signed", "order_book_usd"),
    ("paid", "payments_usd"),
])
def test_defense_stage_counts_only_towards_its_measure(make, stage, measure):
    report = replay([make.defense("d1", stage=stage, amount="500")])
    figures = make.store_totals(report.store)
    assert figures[(PAIR, "defense", measure, "2024")] == Decimal(500)
    assert figures[(PAIR, "all", measure, "2024")] == Decimal(500)
    measures = {key[2] for key in figures}
    assert measures == {measure}
    if measure != "value_usd":
        assert (PAIR, "defense", "value_usd", "2024") not in figures


def test_one_defense_deal_in_three_stages_counts_value_once(make):
    report = replay([
        make.defense("sign", stage="contract_signed", amount="900", occurred_at="2023-06-01"),
        make.defense("deliver", stage="delivered", amount="300", occurred_at="2024-05-01"),
        make.defense("pay", stage="paid", amount="300", occurred_at="2024-05-20"),
        make.trade("t1", amount="50"),
    ])
    figures = make.store_totals(report.store)
    assert figures[(PAIR, "defense", "value_usd", "2024")] == Decimal(300)
    assert figures[(PAIR, "all", "value_usd", "2024")] == Decimal(350)
    assert figures[(PAIR, "defense", "order_book_usd", "2023")] == Decimal(900)
    assert figures[(PAIR, "defense", "payments_usd", "2024")] == Decimal(300)
