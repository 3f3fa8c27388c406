"""How far along a commitment is, from a pair's monthly totals.

``annual`` targets ("USD 100 billion of trade a year by 2030"): achieved is the trailing
twelve months ending with the latest month that has data; the run-rate is how much that
figure grew over the past year; the target is met once any twelve-month window inside the
commitment period (so also any complete calendar or fiscal year) reaches it.

``cumulative`` targets ("deliveries worth USD 5.4 billion"): achieved is the sum from
``period_start`` to the deadline; the run-rate is the average monthly amount, per year.

Status: ``achieved`` once met; otherwise the straight-line projection decides -
``on_track`` by the deadline, ``at_risk`` within a year after it, ``off_track`` later or
when the figure is not growing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext
from typing import Any, Literal

from schemas.events import SETTLEMENT_SHARE
from services.tracker.domain.flows import VALUE
from services.tracker.domain.ledger import (
    JSON,
    MONEY,
    Buckets,
    Headline,
    monthly_series,
    settlement,
)
from services.tracker.domain.periods import add_months, month_label, month_start, months_between

Status = Literal["achieved", "on_track", "at_risk", "off_track", "withdrawn"]
GRACE = timedelta(days=365)


@dataclass(frozen=True, slots=True)
class Progress:
    commitment_id: str
    pair: str
    sector: str
    metric: str
    basis: str
    target: Decimal
    achieved: Decimal
    ratio: Decimal
    run_rate_per_year: Decimal
    projected_completion: date | None
    status: Status
    data_through: str | None
    period_start: date
    deadline: date
    source: str
    as_of: date

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        quantum = Decimal("0.0001") if self.metric == SETTLEMENT_SHARE else Decimal("0.01")
        with localcontext(MONEY):  # a ratio of a 30-digit amount exceeds 28 digits
            for name in ("target", "achieved", "run_rate_per_year"):
                data[name] = str(getattr(self, name).quantize(quantum))
            data["ratio"] = str(self.ratio.quantize(Decimal("0.0001")))
        for name in ("projected_completion", "period_start", "deadline", "as_of"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        return data


def month_end(month: str) -> date:
    return month_start(add_months(month, 1)) - timedelta(days=1)


def commitment_pair(commitment: JSON) -> str:
    low, high = sorted(commitment["parties"])
    return f"{low}-{high}"


def progress(commitment: JSON, buckets: Buckets, as_of: date,
             lines: Headline | None = None) -> Progress:
    """Progress of one (declared or revised) commitment as of ``as_of``. ``lines``: the
    ``headline`` of the buckets as of that day when the caller has it already."""
    start = date.fromisoformat(commitment["period_start"])
    deadline = date.fromisoformat(commitment["deadline"])
    target = Decimal(commitment["target"])
    share_of = commitment.get("currency") if commitment["metric"] == SETTLEMENT_SHARE else None
    series = monthly_series(buckets, commitment["sector"],
                            VALUE if share_of else commitment["metric"], as_of, lines)
    last_allowed = min(month_label(as_of), month_label(deadline))
    months_with_data = [m for m in series if month_label(start) <= m <= last_allowed]
    last = max(months_with_data) if months_with_data else None
    if share_of:
        paid_in = {month: amount for (month, currency), amount in settlement(
            buckets, commitment["sector"], as_of, lines).items() if currency == share_of}
        achieved, run_rate, met_in = _share(series, paid_in, start, target, last)
    elif commitment["basis"] == "annual":
        achieved, run_rate, met_in = _annual(series, start, target, last)
    else:
        achieved, run_rate, met_in = _cumulative(series, start, target, last)
    projected = _projection(achieved, run_rate, target, last, met_in)
    status: Status
    if commitment.get("withdrawn"):
        status = "withdrawn"
    elif met_in is not None:
        status = "achieved"
    elif projected is None:
        status = "off_track"
    elif projected <= deadline:
        status = "on_track"
    elif projected <= deadline + GRACE:
        status = "at_risk"
    else:
        status = "off_track"
    return Progress(
        commitment_id=commitment["commitment_id"], pair=commitment_pair(commitment),
        sector=commitment["sector"], metric=commitment["metric"], basis=commitment["basis"],
        target=target, achieved=achieved, ratio=achieved / target,
        run_rate_per_year=run_rate, projected_completion=projected, status=status,
        data_through=last, period_start=start, deadline=deadline,
        source=commitment.get("source", ""), as_of=as_of)


def _trailing(series: dict[str, Decimal], month: str) -> Decimal:
    return sum((series.get(add_months(month, -back), Decimal(0)) for back in range(12)),
               Decimal(0))


def _annual(series: dict[str, Decimal], start: date, target: Decimal,
            last: str | None) -> tuple[Decimal, Decimal, str | None]:
    if last is None:
        return Decimal(0), Decimal(0), None
    achieved = _trailing(series, last)
    run_rate = achieved - _trailing(series, add_months(last, -12))
    # A window counts once it lies wholly inside the commitment period.
    first_full = add_months(month_label(start), 11)
    met_in = next((m for m in months_between(first_full, last)
                   if _trailing(series, m) >= target), None)
    return achieved, run_rate, met_in


def _share(total: dict[str, Decimal], paid_in: dict[str, Decimal], start: date,
           target: Decimal, last: str | None) -> tuple[Decimal, Decimal, str | None]:
    """Share of the trailing twelve months' value settled in one currency."""
    def share(month: str) -> Decimal:
        whole = _trailing(total, month)
        return _trailing(paid_in, month) / whole if whole else Decimal(0)

    if last is None:
        return Decimal(0), Decimal(0), None
    achieved = share(last)
    run_rate = achieved - share(add_months(last, -12))
    first_full = add_months(month_label(start), 11)
    met_in = next((m for m in months_between(first_full, last) if share(m) >= target), None)
    return achieved, run_rate, met_in


def _cumulative(series: dict[str, Decimal], start: date, target: Decimal,
                last: str | None) -> tuple[Decimal, Decimal, str | None]:
    if last is None:
        return Decimal(0), Decimal(0), None
    running, met_in = Decimal(0), None
    window = months_between(month_label(start), last)
    for month in window:
        running += series.get(month, Decimal(0))
        if met_in is None and running >= target:
            met_in = month
    run_rate = running / len(window) * 12
    return running, run_rate, met_in


def _projection(achieved: Decimal, run_rate: Decimal, target: Decimal, last: str | None,
                met_in: str | None) -> date | None:
    if met_in is not None:
        return month_end(met_in)
    if last is None or run_rate <= 0:
        return None
    # Already at the target, with no full window inside the period yet: due now.
    months_needed = max(0, math.ceil((target - achieved) / run_rate * 12))
    if months_needed > 12 * 200:  # beyond any useful horizon
        return None
    return month_end(add_months(last, months_needed))
