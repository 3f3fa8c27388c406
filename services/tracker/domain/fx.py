"""Event-sourced FX rates: the rate valid on a day is the latest one published for it."""

from __future__ import annotations

from bisect import bisect_right
from datetime import date
from decimal import Decimal

# currency -> [[valid_from ISO date, rate_to_usd], ...] sorted by valid_from; JSON-able.
Rates = dict[str, list[list[str]]]


def with_rate(rates: Rates, currency: str, valid_from: date, rate: Decimal) -> Rates:
    """A copy of ``rates`` with one rate set; setting the same rate again changes nothing."""
    series = {row[0]: row[1] for row in rates.get(currency, [])}
    series[valid_from.isoformat()] = str(rate)
    return {**rates, currency: [[day, series[day]] for day in sorted(series)]}


ONE = Decimal(1)


def rate_on(rates: Rates, currency: str, day: str) -> Decimal | None:
    """USD per unit of ``currency`` on ``day`` (an ISO date, as flows and ``Rates`` hold
    it), or None when no rate is valid yet."""
    if currency == "USD":
        return ONE
    series = rates.get(currency)
    if not series:
        return None
    index = bisect_right([row[0] for row in series], day)
    return Decimal(series[index - 1][1]) if index else None
