"""The events producers publish; field names and meanings are the contract in docs/contract.md.

Every model is frozen and forbids unknown fields, so a typo in a producer is reported in
the dead-letter topic instead of being silently ignored.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from schemas.codes import CountryCode, CurrencyCode

SCHEMA_VERSION: Literal[1] = 1
SETTLEMENT_SHARE = "settlement_share"

EventId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^\S+$")]
Label = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Money = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=30, decimal_places=8)]


def _no_numbers(value: object) -> object:
    """pydantic reads numbers as Unix seconds; a number here is a producer's mistake."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("expected an ISO-8601 date or datetime string, not a number")
    return value


# Trade statistics and targets live in this range; dates outside it are typos (0204 for
# 2024) and would also break period arithmetic at the edges of the calendar.
FIRST_YEAR, LAST_YEAR = 1900, 2199


def _plausible(day: date) -> date:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ValueError(f"year {day.year} is outside {FIRST_YEAR}-{LAST_YEAR}")
    return day


def _event_time(value: object) -> date | datetime:
    """ISO-8601 date (``2024-05-01``) or datetime with a UTC offset."""
    if isinstance(value, str):
        if len(value) == 10:
            return _day(value)
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO-8601 date or datetime") from None
    elif isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        return value
    else:
        raise ValueError("expected an ISO-8601 date or datetime string")
    if when.tzinfo is None:
        raise ValueError("a datetime needs a UTC offset, e.g. 2024-05-01T00:00Z")
    _plausible(when.date())
    return when


# Events of a day share its date string; parsing it again costs more than finding it here.
@lru_cache(maxsize=8192)
def _day(value: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date or datetime") from None
    return _plausible(day)


Day = Annotated[date, BeforeValidator(_no_numbers), AfterValidator(_plausible)]
EventTime = Annotated[
    date | datetime,
    PlainValidator(_event_time),
    PlainSerializer(lambda when: when.isoformat(), return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date"},
                              {"type": "string", "format": "date-time"}]}),
]
Quantity = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=30, decimal_places=8)]


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    event_id: EventId
    occurred_at: EventTime = Field(description="Event time: ISO-8601 date or datetime.")
    schema_version: Literal[1] = SCHEMA_VERSION

    @property
    def occurred_on(self) -> date:
        when = self.occurred_at
        return when.date() if isinstance(when, datetime) else when


class _Transaction(Event):
    amount: Money
    currency: CurrencyCode
    corrects: EventId | None = Field(None, description="event_id whose contribution this replaces.")

    @model_validator(mode="after")
    def _no_negative_amount_unless_correction(self) -> Self:
        if self.amount < 0 and self.corrects is None:
            raise ValueError("amount: negative amounts are only allowed in corrections")
        if self.corrects == self.event_id:
            raise ValueError("corrects: an event cannot correct itself")
        return self


class _ReportedFlow(_Transaction):
    reporter: CountryCode
    partner: CountryCode
    direction: Literal["export", "import"] = Field(description="From the reporter's view.")
    hs_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{2,10}$")] | None = None

    @model_validator(mode="after")
    def _two_countries(self) -> Self:
        if self.reporter == self.partner:
            raise ValueError("partner: must differ from reporter")
        return self


class TradeTransactionRecorded(_ReportedFlow):
    """Goods or services (other than energy and military) crossing between two countries."""

    commodity: Annotated[str, StringConstraints(max_length=80)] | None = None


class EnergyTransactionRecorded(_ReportedFlow):
    """An energy commodity flow; ``quantity``/``unit`` feed volume targets."""

    commodity: Label
    quantity: Quantity | None = None
    unit: Label | None = None

    @model_validator(mode="after")
    def _quantity_with_unit(self) -> Self:
        if (self.quantity is None) != (self.unit is None):
            raise ValueError("quantity and unit: give both or neither")
        return self


class DefenseTransactionRecorded(_Transaction):
    """One stage of a defense deal; only ``delivered`` counts towards value totals."""

    buyer: CountryCode
    supplier: CountryCode
    stage: Literal["contract_signed", "delivered", "paid"]
    program: Annotated[str, StringConstraints(max_length=80)] | None = None

    @model_validator(mode="after")
    def _two_countries(self) -> Self:
        if self.buyer == self.supplier:
            raise ValueError("supplier: must differ from buyer")
        return self


TransactionEvent = TradeTransactionRecorded | EnergyTransactionRecorded | DefenseTransactionRecorded


class CommitmentChanged(Event):
    """A bilateral target declared, revised or withdrawn."""

    commitment_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")]
    action: Literal["declared", "revised", "withdrawn"]
    parties: tuple[CountryCode, CountryCode] | None = None
    sector: Literal["trade", "energy", "defense", "all"] | None = None
    metric: Label | None = Field(
        None, description="value_usd; a quantity unit such as bbl; or settlement_share.")
    currency: CurrencyCode | None = Field(
        None, description="For metric settlement_share: the settlement currency whose share "
        "of the pair's trade value is targeted (target is a fraction, e.g. 0.5).")
    target: Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=30,
                                     decimal_places=8)] | None = None
    basis: Literal["annual", "cumulative"] | None = None
    baseline: Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=30,
                                       decimal_places=8)] | None = None
    period_start: Day | None = None
    deadline: Day | None = None
    source: Annotated[str, StringConstraints(max_length=300)] | None = None

    @model_validator(mode="after")
    def _complete_when_declared(self) -> Self:
        """A declaration names everything; a revision only what changes."""
        if self.action == "declared":
            required = ("parties", "sector", "metric", "target", "period_start", "deadline",
                        "source")
            missing = [name for name in required if getattr(self, name) is None]
            if missing:
                raise ValueError(f"declared commitment lacks: {', '.join(missing)}")
        if self.parties is not None and self.parties[0] == self.parties[1]:
            raise ValueError("parties: two different countries expected")
        if self.period_start and self.deadline and self.deadline <= self.period_start:
            raise ValueError("deadline: must be after period_start")
        if self.metric == SETTLEMENT_SHARE:
            if self.action == "declared" and self.currency is None:
                raise ValueError("currency: a settlement_share target names its currency")
            if self.target is not None and self.target > 1:
                raise ValueError("target: a settlement_share target is a fraction up to 1")
        return self

    @property
    def effective_basis(self) -> Literal["annual", "cumulative"]:
        if self.basis is not None:
            return self.basis
        return "cumulative" if self.sector == "defense" else "annual"


class FxRatePublished(Event):
    """USD value of one unit of ``currency`` from ``valid_from`` on."""

    currency: CurrencyCode
    rate_to_usd: Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
    valid_from: Day


EVENT_MODELS: dict[str, type[Event]] = {
    "trade-transaction": TradeTransactionRecorded,
    "energy-transaction": EnergyTransactionRecorded,
    "defense-transaction": DefenseTransactionRecorded,
    "commitment": CommitmentChanged,
    "fx-rate": FxRatePublished,
}
