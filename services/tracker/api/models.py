"""Response bodies of every view. The views build their answers through these models, and
the OpenAPI document takes its schemas from them, so the two cannot drift apart."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.tracker.api.figures import Figure

Status = Literal["achieved", "on_track", "at_risk", "off_track", "withdrawn"]


class Body(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class Error(Body):
    error: str = Field(description="What went wrong, naming the parameter at fault.")
    status: int = Field(description="The HTTP status, repeated.")


class Health(Body):
    status: Literal["ready", "recovering"]
    worker: str
    tables_recovered: bool
    rebalancing: bool


class Total(Body):
    pair: str
    sector: str
    measure: str
    period: str
    value: Figure = Field(description="USD for *_usd measures, else the measure's unit.")


class Totals(Body):
    items: list[Total]
    count: int = Field(description="Items in this page.")
    as_of: date | None
    next: str | None = Field(description="Relative link to the next page; null on the last.")


class Share(Body):
    pair: str
    period: str
    currency: str
    share: Figure = Field(description="Fraction of the period's USD value settled in it.")


class Shares(Body):
    items: list[Share]
    count: int = Field(description="Items in this page.")
    as_of: date | None
    next: str | None = Field(description="Relative link to the next page; null on the last.")


class Progress(Body):
    """A commitment's progress; ``target``, ``achieved`` and ``run_rate_per_year`` are in
    the commitment's metric (USD, a unit, or a fraction for settlement_share)."""

    commitment_id: str
    pair: str
    sector: str
    metric: str
    basis: str
    target: Figure
    achieved: Figure
    ratio: Figure = Field(description="achieved / target")
    run_rate_per_year: Figure
    projected_completion: date | None
    status: Status
    data_through: str | None = Field(description="The last month with data (YYYY-MM).")
    period_start: date
    deadline: date
    source: str
    as_of: date


class Commitments(Body):
    items: list[Progress]
    count: int = Field(description="Items in this page.")
    as_of: date | None
    next: str | None = Field(description="Relative link to the next page; null on the last.")


class PeriodTotal(Body):
    period: str
    value: Figure


class Commitment(Progress):
    definition: dict[str, Any] = Field(
        description="The commitment event in force, as declared or revised: the input "
        "contract of schemas/json, so its amounts are as the event gave them.")
    totals: list[PeriodTotal] = Field(
        description="The commitment's sector and metric by year, fiscal year and month.")


class HistoryMonth(Body):
    month: str
    target: Figure
    achieved: Figure
    ratio: Figure
    status: Status


class History(Body):
    commitment_id: str
    items: list[HistoryMonth]


class Source(Body):
    topic: str
    partition: int
    offset: int


class Contribution(Source):
    event_id: str
    day: date
    route: str
    reported_by: str
    currency: str
    amount: Figure = Field(description="USD, or the measure's unit.")
    counted: bool = Field(description="False when hidden by the mirror rule.")


class Correction(Body):
    event_id: str
    sources: list[Source]
    outcome: str
    replaced_amount: Figure


class Duplicate(Body):
    event_id: str
    sources: list[Source]


class Pending(Body):
    event_id: str
    currency: str
    day: date
    sources: list[Source]


class Explanation(Body):
    pair: str
    sector: str
    measure: str
    as_of: date | None
    value: Figure
    events_counted: int
    events_by_topic: dict[str, int]
    largest: list[Contribution]
    hidden_by_mirror_rule: list[Contribution]
    corrections: list[Correction]
    duplicates_ignored: list[Duplicate]
    pending_fx: list[Pending]
    periods_in_figure: int


class CommitmentExplanation(Explanation):
    commitment_id: str
