"""Query parameters of every view, as pydantic models: the one place a query is read,
with the representation it asks for.
A bad query becomes a 400 whose message names the parameter; an unknown one is refused
(a typo such as ``?sectr=energy`` would otherwise widen the answer silently)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from typing import Annotated, Literal, TypeVar

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
)

from services.tracker.api.negotiation import Kind, negotiate
from services.tracker.api.paging import DEFAULT_LIMIT, MAX_LIMIT, Key, decode_cursor
from services.tracker.domain.periods import months_of
from services.tracker.render import BadQuery

PAIR = re.compile(r"\A[A-Za-z]{2}-[A-Za-z]{2}\Z")  # checked before upper(): ASCII only
SHOWN = 60  # characters of a bad value quoted back in an error


def _pair(text: str) -> str:
    parts = text.upper().split("-")
    if not PAIR.match(text) or parts[0] == parts[1]:
        raise ValueError(f"{text[:SHOWN]!r} is not two country codes such as IN-RU")
    return "-".join(sorted(parts))


def _period(text: str) -> str:
    months_of(text)  # raises ValueError naming what is wrong
    return text


def _day(value: object) -> date:
    # date.fromisoformat alone would take 20230331 and 2023-W13-5 too.
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError(f"{str(value)[:SHOWN]!r} is not a date such as 2023-03-31")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date such as 2023-03-31") from None


Pair = Annotated[str, AfterValidator(_pair), Field(
    description="Two ISO 3166 alpha-2 codes in either order; answered as the ordered pair.",
    json_schema_extra={"pattern": "^[A-Za-z]{2}-[A-Za-z]{2}$", "examples": ["IN-RU"]})]
Period = Annotated[str, AfterValidator(_period), Field(
    description="A calendar year, an Indian fiscal year (April-March) or a month.",
    json_schema_extra={"examples": ["2024", "FY2024-25", "2024-05"]})]
Day = Annotated[date, BeforeValidator(_day)]
Cursor = Annotated[Key, BeforeValidator(decode_cursor), WithJsonSchema({
    "type": "string", "description": "Opaque; the next link of a page carries it."})]
Sector = Literal["trade", "energy", "defense", "all"]
Measure = Annotated[str, StringConstraints(min_length=1, max_length=64), Field(
    description="value_usd, order_book_usd, payments_usd, or a unit such as bbl.",
    json_schema_extra={"examples": ["value_usd"]})]


class ViewQuery(BaseModel):
    """What every view takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["json", "csv", "html"] | None = Field(
        None, description="Overrides the Accept header.")
    as_of: Day | None = Field(
        None, description="Answer as of this day, by event time (default: today).")


class ListQuery(ViewQuery):
    """What list views take besides: a page."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Most items per page.")
    cursor: Cursor | None = None


class CommitmentsQuery(ListQuery):
    pass


class CommitmentQuery(ViewQuery):
    pass


class TotalsQuery(ListQuery):
    pair: Pair | None = None
    sector: Sector | None = None
    period: Period | None = None
    measure: Measure | None = None


class ExplainTotalsQuery(ViewQuery):
    pair: Pair
    sector: Sector = "all"
    period: Period | None = None
    measure: Measure = "value_usd"


class SettlementQuery(ListQuery):
    pair: Pair | None = None
    period: Period | None = None


Query = TypeVar("Query", bound=ViewQuery)


def read_query(model: type[Query], request: web.Request) -> tuple[Query, Kind]:
    """The query, and the representation to answer in: both refused (400, 406) before any
    work is done."""
    query = parse_query(model, request)
    return query, negotiate(request.headers.get("Accept"), query.format)


def parse_query(model: type[Query], request: web.Request) -> Query:
    counts = Counter(name for name, _ in request.query.items())
    repeated = [name for name, count in counts.items() if count > 1]
    if repeated:
        raise BadQuery(f"{repeated[0][:SHOWN]}: given more than once")
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as error:
        raise BadQuery(describe(error, model)) from None


def describe(error: ValidationError, model: type[BaseModel]) -> str:
    """One line naming the parameter(s) at fault."""
    problems = error.errors(include_url=False)
    unknown = [str(problem["loc"][0])[:SHOWN] for problem in problems
               if problem["type"] == "extra_forbidden"]
    if unknown:
        return (f"unknown query parameter(s): {', '.join(map(repr, unknown))}; "
                f"allowed: {', '.join(model.model_fields)}")
    problem = problems[0]
    name = str(problem["loc"][0])
    if problem["type"] == "missing":
        return f"{name}: required"
    if problem["type"] == "value_error":
        return f"{name}: {problem['ctx']['error']}"
    if problem["type"] == "literal_error":
        given = str(problem["input"])[:SHOWN]
        return f"{name}: {given!r} is not one of {problem['ctx']['expected']}"
    return f"{name}: {problem['msg']}"
