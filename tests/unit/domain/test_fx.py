"""Event-sourced FX rates: the rate valid on a day is the latest one published for it."""

from __future__ import annotations

import copy
import json
from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.tracker.domain.fx import rate_on, with_rate


def test_usd_is_always_one_even_without_rates():
    assert rate_on({}, "USD", "2024-05-01") == Decimal(1)


def test_unknown_currency_has_no_rate():
    assert rate_on({}, "EUR", "2024-05-01") is None
    rates = with_rate({}, "GBP", date(2024, 1, 1), Decimal("1.25"))
    assert rate_on(rates, "EUR", "2024-05-01") is None


def test_rate_applies_from_its_valid_from_day_on():
    rates = with_rate({}, "EUR", date(2024, 5, 1), Decimal("1.08"))
    assert rate_on(rates, "EUR", "2024-04-30") is None
    assert rate_on(rates, "EUR", "2024-05-01") == Decimal("1.08")
    assert rate_on(rates, "EUR", "2030-01-01") == Decimal("1.08")


def test_latest_valid_rate_wins_whatever_order_rates_arrive_in():
    later_first = with_rate({}, "EUR", date(2024, 6, 1), Decimal("1.10"))
    later_first = with_rate(later_first, "EUR", date(2024, 1, 1), Decimal("1.05"))
    earlier_first = with_rate({}, "EUR", date(2024, 1, 1), Decimal("1.05"))
    earlier_first = with_rate(earlier_first, "EUR", date(2024, 6, 1), Decimal("1.10"))
    assert later_first == earlier_first
    assert later_first["EUR"] == [["2024-01-01", "1.05"], ["2024-06-01", "1.10"]]
    assert rate_on(later_first, "EUR", "2024-05-31") == Decimal("1.05")
    assert rate_on(later_first, "EUR", "2024-06-01") == Decimal("1.10")


def test_republishing_a_day_replaces_its_rate():
    rates = with_rate({}, "EUR", date(2024, 1, 1), Decimal("1.05"))
    rates = with_rate(rates, "EUR", date(2024, 1, 1), Decimal("1.07"))
    assert rates["EUR"] == [["2024-01-01", "1.07"]]


def test_setting_the_same_rate_again_changes_nothing():
    once = with_rate({}, "EUR", date(2024, 1, 1), Decimal("1.05"))
    assert with_rate(once, "EUR", date(2024, 1, 1), Decimal("1.05")) == once


def test_with_rate_leaves_its_input_alone_and_keeps_other_currencies():
    rates = with_rate({}, "GBP", date(2024, 1, 1), Decimal("1.25"))
    before = copy.deepcopy(rates)
    updated = with_rate(rates, "EUR", date(2024, 1, 1), Decimal("1.05"))
    assert rates == before
    assert updated["GBP"] == before["GBP"]
    assert json.loads(json.dumps(updated)) == updated  # stays JSON-able


rate_values = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31))


@given(st.lists(st.tuples(days, rate_values), min_size=1, max_size=8), days)
def test_rate_on_is_the_last_published_rate_of_the_latest_day_not_after(published, day):
    rates: dict = {}
    for valid_from, value in published:
        rates = with_rate(rates, "EUR", valid_from, value)
    latest_per_day = dict(published)  # the last value published for each day wins
    eligible = [valid_from for valid_from in latest_per_day if valid_from <= day]
    expected = latest_per_day[max(eligible)] if eligible else None
    assert rate_on(rates, "EUR", day.isoformat()) == expected
