"""A commitment through time, as the views answer for it: the definition in force on a
day, its progress on a day and at the end of each month since its start (its history),
its sector's and metric's totals by period, and the figure ``explain`` replays for it.
Every figure comes from the headline of the commitment's pair, through the cache the
publish timer shares."""

from __future__ import annotations

from datetime import date
from typing import Any

from schemas.events import SETTLEMENT_SHARE
from services.tracker.api import models
from services.tracker.domain.flows import VALUE
from services.tracker.domain.ledger import Headline, HeadlineCache, monthly_series, totals
from services.tracker.domain.periods import month_label, months_between
from services.tracker.domain.progress import commitment_pair, month_end, progress
from services.tracker.domain.reference import definition_as_of, is_defined
from services.tracker.explain import Figure
from services.tracker.tables import TrackerTables, local_reference

Commitment = dict[str, Any]


def defined_as_of(commitment: Commitment | None, as_of: date | None) -> Commitment | None:
    """The commitment as declared or revised by ``as_of`` (by today: as it stands); None
    when it was not defined then."""
    if commitment is None:
        return None
    if as_of is None:
        return commitment if is_defined(commitment) else None
    return definition_as_of(commitment, as_of)


def measure_of(commitment: Commitment) -> str:
    """The measure a commitment's metric is computed from: a settlement share is a share
    of the value."""
    metric: str = commitment["metric"]
    return VALUE if metric == SETTLEMENT_SHARE else metric


def explained_figure(commitment: Commitment, as_of: date | None) -> Figure:
    """The figure behind a commitment: its pair, sector and measure over the months from
    its start to its deadline (or ``as_of``, or today, if sooner)."""
    start, last = date.fromisoformat(commitment["period_start"]), as_of or date.today()
    months = frozenset(months_between(month_label(start), month_label(min(
        last, date.fromisoformat(commitment["deadline"])))))
    return Figure(commitment_pair(commitment), commitment["sector"], measure_of(commitment),
                  months, as_of)


class CommitmentFigures:
    """Reads commitments and their figures from this worker's tables."""

    def __init__(self, tables: TrackerTables, headlines: HeadlineCache) -> None:
        self.tables = tables
        self.headlines = headlines

    def commitments(self) -> dict[str, Commitment]:
        commitments: dict[str, Commitment] = local_reference(self.tables)["commitments"]
        return commitments

    def lines(self, commitment: Commitment, as_of: date | None) -> Headline:
        """The headline of the commitment's pair (as of a day), from the shared cache."""
        ledger = self.tables.ledgers.get(commitment_pair(commitment))
        return self.headlines.lines(ledger, as_of) if ledger else {}

    def progress(self, commitment: Commitment, as_of: date | None) -> models.Progress:
        day = as_of or date.today()
        return models.Progress.model_validate(
            progress(commitment, {}, day, lines=self.lines(commitment, day)))

    def period_totals(self, commitment: Commitment, as_of: date | None
                      ) -> list[models.PeriodTotal]:
        """The commitment's sector and metric by year, fiscal year and month."""
        return [
            models.PeriodTotal(period=period, value=amount)
            for (sector, measure, period), amount in sorted(totals(
                {}, lines=self.lines(commitment, as_of)).items(), key=lambda kv: kv[0][2])
            if sector == commitment["sector"] and measure == commitment["metric"]]

    def history(self, commitment: Commitment, as_of: date | None
                ) -> list[models.HistoryMonth]:
        """Progress at the end of each month from the period start (or first data)."""
        months = sorted(monthly_series({}, commitment["sector"], measure_of(commitment),
                                       lines=self.lines(commitment, as_of)))
        if not months:
            return []
        start = max(month_label(date.fromisoformat(commitment["period_start"])), months[0])
        last = min(months[-1], month_label(as_of or date.today()),
                   month_label(date.fromisoformat(commitment["deadline"])))
        rows = []
        for month in months_between(start, last):
            day = month_end(month)
            snapshot = progress(commitment, {}, day, lines=self.lines(commitment, day))
            rows.append(models.HistoryMonth(
                month=month, target=snapshot.target, achieved=snapshot.achieved,
                ratio=snapshot.ratio, status=snapshot.status))
        return rows
