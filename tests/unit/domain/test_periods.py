"""Period labels: calendar year ``2024``, Indian fiscal year ``FY2024-25``, month ``2024-05``."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.tracker.domain.periods import (
    add_months,
    fiscal_year_label,
    month_label,
    month_start,
    months_between,
    months_of,
    period_kind,
    period_labels,
)


@pytest.mark.parametrize(("day", "expected"), [
    (date(2024, 5, 31), "2024-05"),
    (date(2024, 1, 1), "2024-01"),
    (date(999, 12, 31), "0999-12"),
])
def test_month_label(day, expected):
    assert month_label(day) == expected


@pytest.mark.parametrize(("day", "expected"), [
    (date(2024, 3, 31), "FY2023-24"),  # last day of a fiscal year
    (date(2024, 4, 1), "FY2024-25"),   # first day of the next
    (date(2024, 1, 1), "FY2023-24"),
    (date(2024, 12, 31), "FY2024-25"),
    (date(2025, 3, 31), "FY2024-25"),
    (date(1999, 4, 1), "FY1999-00"),   # the second year wraps at a century
    (date(2000, 3, 31), "FY1999-00"),
])
def test_fiscal_year_label(day, expected):
    assert fiscal_year_label(day) == expected


@pytest.mark.parametrize(("month", "expected"), [
    ("2024-03", ("2024", "FY2023-24", "2024-03")),
    ("2024-04", ("2024", "FY2024-25", "2024-04")),
    ("2025-01", ("2025", "FY2024-25", "2025-01")),
])
def test_period_labels(month, expected):
    assert period_labels(month) == expected


def test_months_of_a_calendar_year():
    assert months_of("2024") == [f"2024-{m:02d}" for m in range(1, 13)]


def test_months_of_a_fiscal_year_run_april_to_march():
    months = months_of("FY2024-25")
    assert len(months) == 12
    assert months[0] == "2024-04"
    assert months[-1] == "2025-03"
    assert months == [*(f"2024-{m:02d}" for m in range(4, 13)),
                      *(f"2025-{m:02d}" for m in range(1, 4))]


def test_months_of_a_fiscal_year_across_a_century():
    assert months_of("FY1999-00")[-1] == "2000-03"


def test_months_of_a_month_is_itself():
    assert months_of("2024-05") == ["2024-05"]


@pytest.mark.parametrize(("period", "kind"), [
    ("2024", "year"), ("FY2024-25", "fiscal_year"), ("2024-05", "month"),
])
def test_period_kind(period, kind):
    assert period_kind(period) == kind


@pytest.mark.parametrize("period", [
    "", "24", "20245", "2024-13", "2024-00", "2024-5", "2024/05", "May 2024", " 2024",
    "FY2024-26", "FY2024-24", "FY2024-2025", "FY24-25", "fy2024-25", "FY2024", "2024-05-01",
])
def test_invalid_labels_raise_value_error(period):
    with pytest.raises(ValueError, match="2024"):
        months_of(period)
    with pytest.raises(ValueError):
        period_kind(period)


def test_mismatched_fiscal_year_names_the_problem():
    with pytest.raises(ValueError, match="second year must follow the first"):
        months_of("FY2024-26")


@pytest.mark.parametrize("period", ["2024\n", "2024-05\n", "FY2024-25\n",
                                    "\uff12\uff10\uff12\uff14"])  # fullwidth digits
def test_labels_with_trailing_newline_or_non_ascii_digits_are_invalid(period):
    with pytest.raises(ValueError):
        months_of(period)


def test_month_start():
    assert month_start("2024-02") == date(2024, 2, 1)


@pytest.mark.parametrize(("month", "count", "expected"), [
    ("2024-05", 0, "2024-05"),
    ("2024-12", 1, "2025-01"),
    ("2024-01", -1, "2023-12"),
    ("2024-05", 12, "2025-05"),
    ("2024-05", -17, "2022-12"),
    ("2024-04", 118, "2034-02"),
])
def test_add_months(month, count, expected):
    assert add_months(month, count) == expected


def test_months_between_is_inclusive_and_empty_when_reversed():
    assert months_between("2024-11", "2025-02") == ["2024-11", "2024-12", "2025-01", "2025-02"]
    assert months_between("2024-05", "2024-05") == ["2024-05"]
    assert months_between("2024-06", "2024-05") == []


days = st.dates(min_value=date(1901, 1, 1), max_value=date(7999, 12, 31))


@given(days)
def test_every_day_lies_in_its_fiscal_and_calendar_year(day):
    month = month_label(day)
    year, fiscal, same_month = period_labels(month)
    assert same_month == month
    assert fiscal == fiscal_year_label(day)
    assert month in months_of(fiscal)
    assert month in months_of(year)
    assert period_kind(fiscal) == "fiscal_year"
    assert period_kind(year) == "year"


@given(days, st.integers(-2400, 2400))
def test_add_months_round_trips(day, count):
    month = month_label(day)
    moved = add_months(month, count)
    assert add_months(moved, -count) == month
    if count >= 0:
        assert len(months_between(month, moved)) == count + 1
