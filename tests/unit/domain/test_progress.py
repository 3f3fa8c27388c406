"""Commitment progress. Every expected figure is worked out by hand in the comments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.tracker.domain.fold import replay
from services.tracker.domain.ledger import bucket_key, buckets_of
from services.tracker.domain.progress import commitment_pair, month_end, progress


def monthly(amounts: dict[str, int | str], *, sector: str = "trade",
            measure: str = "value_usd", role: str = "importer") -> dict[str, str]:
    """Buckets holding ``amounts`` (month -> amount) for one route."""
    return {bucket_key(sector, measure, "RU>IN", role, month): str(amount)
            for month, amount in amounts.items()}


def commitment(*, basis: str, target: str, period_start: str, deadline: str,
               sector: str = "trade", metric: str = "value_usd", **extra) -> dict:
    return {"commitment_id": "c1", "parties": ["RU", "IN"], "sector": sector,
            "metric": metric, "target": target, "basis": basis,
            "period_start": period_start, "deadline": deadline, "source": "statement",
            "withdrawn": False, **extra}


def months(first_year: int, first_month: int, count: int) -> list[str]:
    labels = []
    year, month = first_year, first_month
    for _ in range(count):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return labels


def test_month_end():
    assert month_end("2024-02") == date(2024, 2, 29)
    assert month_end("2023-12") == date(2023, 12, 31)


def test_commitment_pair_is_canonical():
    assert commitment_pair({"parties": ["RU", "IN"]}) == "IN-RU"


# -- cumulative ---------------------------------------------------------------------------
# 2023-12: 1000 (before period_start, never counted); 2024-01..2024-04: 100 each.
# As of 2024-04-20: achieved = 400 over 4 months, run-rate = 400 / 4 * 12 = 1200 a year.

CUMULATIVE = {"2023-12": 1000, "2024-01": 100, "2024-02": 100, "2024-03": 100,
              "2024-04": 100}
AS_OF = date(2024, 4, 20)


def cumulative(target: str, deadline: str = "2024-12-31", **extra):
    return progress(commitment(basis="cumulative", target=target, period_start="2024-01-01",
                               deadline=deadline, **extra), monthly(CUMULATIVE), AS_OF)


def test_cumulative_sums_from_period_start():
    result = cumulative("1000")
    assert result.achieved == Decimal(400)  # not 1400: 2023-12 is before the period
    assert result.ratio == Decimal("0.4")
    assert result.run_rate_per_year == Decimal(1200)
    assert result.data_through == "2024-04"
    assert result.pair == "IN-RU"


@pytest.mark.parametrize(("target", "deadline", "projected", "status"), [
    # 600 to go at 1200 a year: 6 months after 2024-04 -> end of 2024-10
    ("1000", "2024-12-31", date(2024, 10, 31), "on_track"),
    ("1000", "2024-10-31", date(2024, 10, 31), "on_track"),    # exactly on the deadline
    # 1800 to go: 18 months after 2024-04 -> end of 2025-10
    ("2200", "2024-12-31", date(2025, 10, 31), "at_risk"),     # within a year after 2024-12-31
    ("2200", "2024-10-31", date(2025, 10, 31), "at_risk"),     # deadline + 365 days exactly
    ("2200", "2024-10-30", date(2025, 10, 31), "off_track"),   # one day beyond the grace year
    # 3600 to go: 36 months after 2024-04 -> end of 2027-04
    ("4000", "2024-12-31", date(2027, 4, 30), "off_track"),
    # 250 reached in 2024-03 (100, 200, 300); 400 reached in 2024-04
    ("250", "2024-12-31", date(2024, 3, 31), "achieved"),
    ("400", "2024-12-31", date(2024, 4, 30), "achieved"),
])
def test_cumulative_projection_and_status(target, deadline, projected, status):
    result = cumulative(target, deadline)
    assert result.projected_completion == projected
    assert result.status == status


def test_withdrawn_beats_every_other_status():
    assert cumulative("250", withdrawn=True).status == "withdrawn"
    assert cumulative("4000", withdrawn=True).status == "withdrawn"


def test_no_data_means_nothing_achieved_and_no_projection():
    result = progress(commitment(basis="cumulative", target="10", period_start="2024-01-01",
                                 deadline="2025-01-01"), {}, AS_OF)
    assert (result.achieved, result.run_rate_per_year) == (Decimal(0), Decimal(0))
    assert result.projected_completion is None
    assert result.data_through is None
    assert result.status == "off_track"


def test_data_after_as_of_or_after_the_deadline_is_ignored():
    buckets = monthly({**CUMULATIVE, "2024-05": 5000})
    early = progress(commitment(basis="cumulative", target="1000", period_start="2024-01-01",
                                deadline="2024-12-31"), buckets, AS_OF)
    assert early.achieved == Decimal(400)  # 2024-05 is after as_of
    closed = progress(commitment(basis="cumulative", target="1000", period_start="2024-01-01",
                                 deadline="2024-03-15"), buckets, date(2024, 12, 1))
    assert closed.achieved == Decimal(300)  # 2024-01..2024-03 only
    assert closed.data_through == "2024-03"


def test_sector_all_and_the_mirror_rule_feed_progress():
    buckets = {
        **monthly({"2024-01": 100}),
        **monthly({"2024-01": 999}, role="exporter"),                 # mirror: ignored
        **monthly({"2024-02": 50}, sector="energy"),
        **monthly({"2024-03": 25}, sector="defense"),
        **monthly({"2024-03": 700}, sector="defense", measure="order_book_usd"),
    }
    everything = progress(commitment(basis="cumulative", target="1000", sector="all",
                                     period_start="2024-01-01", deadline="2025-12-31"),
                          buckets, AS_OF)
    assert everything.achieved == Decimal(175)  # 100 + 50 + 25
    trade_only = progress(commitment(basis="cumulative", target="1000", sector="trade",
                                     period_start="2024-01-01", deadline="2025-12-31"),
                          buckets, AS_OF)
    assert trade_only.achieved == Decimal(100)


# -- annual -------------------------------------------------------------------------------
# 2023-01..2023-12: 100 each; 2024-01..2024-06: 10 each. As of 2024-06-15:
# trailing twelve months to 2024-06 = 6 * 100 (2023-07..12) + 6 * 10 = 660;
# the twelve months before that (to 2023-06) = 6 * 100 = 600, so the run-rate is 60.

ANNUAL = {**dict.fromkeys(months(2023, 1, 12), 100), **dict.fromkeys(months(2024, 1, 6), 10)}
ANNUAL_AS_OF = date(2024, 6, 15)


def annual(target: str, period_start: str, deadline: str = "2030-12-31"):
    return progress(commitment(basis="annual", target=target, period_start=period_start,
                               deadline=deadline), monthly(ANNUAL), ANNUAL_AS_OF)


def test_annual_achieved_is_the_trailing_twelve_months():
    result = annual("5000", "2023-01-01")
    assert result.achieved == Decimal(660)  # neither 1260 (all data) nor 60 (2024 so far)
    assert result.run_rate_per_year == Decimal(60)
    assert result.data_through == "2024-06"


def test_annual_is_achieved_once_any_twelve_month_window_reaches_the_target():
    # window 2023-01..2023-12 = 1200 >= 960, although the latest window holds only 660
    result = annual("960", "2023-01-01")
    assert result.status == "achieved"
    assert result.achieved == Decimal(660)
    assert result.projected_completion == date(2023, 12, 31)


def test_annual_windows_must_lie_inside_the_commitment_period():
    # From 2023-04 the first full window ends 2024-03: 9 * 100 + 3 * 10 = 930 < 960; later
    # windows hold 840, 750, 660. Not met. 300 to go at 60 a year = 5 years = 60 months
    # after 2024-06 -> end of 2029-06, before the 2030-12-31 deadline.
    result = annual("960", "2023-04-01")
    assert result.status == "on_track"
    assert result.projected_completion == date(2029, 6, 30)
    # the same with a deadline of 2027-12-31: 2029-06-30 is beyond the grace year
    assert annual("960", "2023-04-01", deadline="2027-12-31").status == "off_track"
    # and with 2028-12-31: 2029-06-30 is within it
    assert annual("960", "2023-04-01", deadline="2028-12-31").status == "at_risk"


def test_annual_is_off_track_when_the_figure_is_not_growing():
    # 24 flat months of 100: both trailing windows are 1200, the run-rate is 0
    flat = monthly(dict.fromkeys(months(2022, 1, 24), 100))
    result = progress(commitment(basis="annual", target="2000", period_start="2023-01-01",
                                 deadline="2030-12-31"), flat, date(2024, 1, 10))
    assert result.achieved == Decimal(1200)
    assert result.run_rate_per_year == Decimal(0)
    assert result.projected_completion is None
    assert result.status == "off_track"


def test_to_json_rounds_and_formats():
    data = cumulative("2200").to_json()
    assert data["target"] == "2200.00"
    assert data["achieved"] == "400.00"
    assert data["run_rate_per_year"] == "1200.00"
    assert data["ratio"] == "0.1818"  # 400 / 2200 = 0.181818...
    assert data["projected_completion"] == "2025-10-31"
    assert data["period_start"] == "2024-01-01"
    assert data["status"] == "at_risk"


# -- from events, through the fold --------------------------------------------------------

def test_progress_of_a_declared_commitment_from_replayed_events(make):
    report = replay([
        make.commitment("ev1", commitment_id="c1", sector="defense", metric="value_usd",
                        target="1000", period_start="2024-01-01", deadline="2026-12-31"),
        make.defense("d1", stage="delivered", amount="300", occurred_at="2024-02-10"),
        make.defense("d2", stage="contract_signed", amount="5000", occurred_at="2024-02-11"),
        make.defense("d3", stage="paid", amount="300", occurred_at="2024-03-01"),
        make.defense("d4", stage="delivered", amount="100", occurred_at="2024-03-20"),
    ])
    stored = report.store.reference()["commitments"]["c1"]
    buckets = buckets_of(report.store.ledgers["IN-RU"])
    result = progress(stored, buckets, date(2024, 3, 31))
    # cumulative (defense default): deliveries only, 300 + 100 = 400 over 2024-01..2024-03,
    # run-rate 400 / 3 * 12 = 1600 a year; 600 to go -> ceil(600 / 1600 * 12) = 5 months
    # after 2024-03 -> end of 2024-08, before the deadline
    assert result.basis == "cumulative"
    assert result.achieved == Decimal(400)
    assert result.projected_completion == date(2024, 8, 31)
    assert result.status == "on_track"
