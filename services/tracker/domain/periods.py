"""Period labels of the contract: calendar year ``2024``, Indian fiscal year ``FY2024-25``
(1 April 2024 - 31 March 2025) and month ``2024-05``."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

# \A...\Z and [0-9]: "2024\n" and non-ASCII digits are not labels.
_YEAR = re.compile(r"\A([0-9]{4})\Z")
_FISCAL = re.compile(r"\AFY([0-9]{4})-([0-9]{2})\Z")
_MONTH = re.compile(r"\A([0-9]{4})-(0[1-9]|1[0-2])\Z")


def month_label(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def fiscal_year_label(day: date) -> str:
    start = day.year if day.month >= 4 else day.year - 1
    return f"FY{start:04d}-{(start + 1) % 100:02d}"


# Every headline line of every published pair asks for its month's labels; the months in
# the ledgers are few, so the labels are worked out once each.
@lru_cache(maxsize=4096)
def period_labels(month: str) -> tuple[str, str, str]:
    """The calendar year, fiscal year and month a month label belongs to."""
    first = month_start(month)
    return (f"{first.year:04d}", fiscal_year_label(first), month)


def month_start(month: str) -> date:
    year, mon = month.split("-")
    return date(int(year), int(mon), 1)


def add_months(month: str, count: int) -> str:
    index = _index(month) + count
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _index(month: str) -> int:
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def months_between(first: str, last: str) -> list[str]:
    """Month labels from ``first`` to ``last`` inclusive (empty if last < first)."""
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(_index(first), _index(last) + 1)]


def months_of(period: str) -> list[str]:
    """The months a period label covers; raises ValueError for a label of no known kind."""
    if match := _YEAR.match(period):
        year = int(match.group(1))
        return months_between(f"{year:04d}-01", f"{year:04d}-12")
    if match := _FISCAL.match(period):
        start = int(match.group(1))
        if (start + 1) % 100 != int(match.group(2)):
            raise ValueError(f"fiscal year {period!r}: the second year must follow the first")
        return months_between(f"{start:04d}-04", f"{start + 1:04d}-03")
    if _MONTH.match(period):
        return [period]
    raise ValueError(f"period {period!r}: expected 2024, FY2024-25 or 2024-05")


def period_kind(period: str) -> str:
    months_of(period)  # validates
    if _FISCAL.match(period):
        return "fiscal_year"
    return "year" if _YEAR.match(period) else "month"
