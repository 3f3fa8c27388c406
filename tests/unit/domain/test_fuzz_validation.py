"""Fuzzing ``validate``: whatever bytes a producer sends, the answer is a model or an
``InvalidEventError`` with a reason - never another exception - and whatever is accepted
goes through the rest of the pipeline (normalising, the agents' JSON envelopes, the fold
and the totals) without crashing."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.codes import COUNTRIES, CURRENCIES
from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.domain.flows import Flow, flow_of
from services.tracker.domain.fold import replay
from services.tracker.domain.ledger import buckets_of, totals
from services.tracker.domain.progress import progress
from services.tracker.domain.validation import MODELS, Kind, validate
from services.tracker.errors import InvalidEventError

KINDS: tuple[Kind, ...] = ("trade", "energy", "defense", "commitment", "fx_rate")
TRANSACTIONS = ("trade", "energy", "defense")
LIMIT = 64 * 1024
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

VALID: dict[str, dict[str, Any]] = {
    "trade": {"event_id": "t-1", "occurred_at": "2024-05-15", "reporter": "IN",
              "partner": "RU", "direction": "import", "amount": "100.5", "currency": "USD",
              "commodity": "pharmaceuticals", "hs_code": "3004"},
    "energy": {"event_id": "n-1", "occurred_at": "2024-05-15T10:00:00+05:30",
               "reporter": "IN", "partner": "RU", "direction": "import", "amount": "2000",
               "currency": "EUR", "commodity": "crude_oil", "quantity": "1000", "unit": "bbl"},
    "defense": {"event_id": "d-1", "occurred_at": "2024-05-15", "buyer": "IN",
                "supplier": "RU", "amount": "5000", "currency": "USD", "stage": "delivered",
                "program": "S-400"},
    "commitment": {"event_id": "c-ev-1", "occurred_at": "2024-07-09",
                   "commitment_id": "in-ru-100bn", "action": "declared",
                   "parties": ["RU", "IN"], "sector": "all", "metric": "value_usd",
                   "target": "100000000000", "basis": "annual", "baseline": "65000000000",
                   "period_start": "2024-01-01", "deadline": "2030-12-31",
                   "source": "22nd annual summit, Moscow"},
    "fx_rate": {"event_id": "fx-1", "occurred_at": "2024-01-01", "currency": "EUR",
                "rate_to_usd": "1.08", "valid_from": "2024-01-01"},
}
# Optional fields worth setting to junk too.
OPTIONAL = ["corrects", "schema_version", "hs_code", "commodity", "quantity", "unit", "program",
            "basis", "baseline", "source", "parties", "stage", "action"]

SPECIAL_STRINGS = [
    # numbers in disguise
    "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "+inf", "1e999", "-1e999",
    "1E+30", "1e-30", "-0", "0", "-1", "-0.00000001", "0.000000001", "1_000", " 5 ", "5,0",
    "99999999999999999999999999999999", "9999999999999999999999.99999999", "0x10", "١٢٣",
    # dates near and beyond the edges
    "0001-01-01", "0001-12-31", "9999-12-31", "0000-01-01", "10000-01-01", "2024-02-30",
    "2024-13-01", "2024-05-01T00:00:00Z", "2024-05-01T00:00:00", "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59-23:59", "2024-05-01T00:00:00+24:00", "2024-05-01T25:00:00Z",
    "\uff12\uff10\uff12\uff14-\uff10\uff15-\uff10\uff11", "2024-W20-1", "20240501", "2024-05-01 ",
    # codes and labels, right and wrong
    "IN", "RU", "XX", "in", "İN", "\uff29\uff2e", "USD", "EUR", "XXX", "usd", "import", "export",
    "delivered", "paid", "declared", "revised", "withdrawn", "annual", "cumulative", "all",
    "crude_oil", "bbl", "value_usd", "t-1", "d-1",
    # odd text
    "", " ", "\n", "\x00", "\u202e", "🇮🇳", "\u2115", "\ud800", "a" * 129, "x" * 400,
]


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": [value]}
    return value


JSON_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
                | st.text(max_size=20) | st.sampled_from(SPECIAL_STRINGS))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)
JUNK = st.one_of(
    JSON_SCALARS,
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.lists(JSON_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3),
    st.sampled_from([nested(5), nested(60), "z" * 70_000, ["IN"], ["IN", "IN"],
                     ["IN", "RU", "CN"], {"$gt": ""}]),
)


IDS = st.text(st.characters(exclude_categories=("Z", "C")), min_size=1, max_size=128)
OFFSETS = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                        max_value=timedelta(hours=23, minutes=59)).map(timezone)
WHEN = st.dates().map(date.isoformat) | st.datetimes(timezones=OFFSETS).map(datetime.isoformat)
MONEY = st.decimals(min_value=0, max_value=Decimal("9999999999999999999999.99999999"), places=8)
POSITIVE = (st.decimals(min_value=Decimal("1e-12"), allow_nan=False, allow_infinity=False)
            | st.sampled_from([Decimal("1e-30"), Decimal("1e30"), Decimal("1E+100")]))
COUNTRY = st.sampled_from(sorted(COUNTRIES))
LABELS = st.from_regex(r"\A[a-z][a-z0-9_]{0,39}\Z")


def number(values: st.SearchStrategy[Decimal]) -> st.SearchStrategy[Any]:
    """A decimal as a producer may write it: a string, or a JSON number."""
    return values.map(str) | values.map(float).filter(math.isfinite) | values.map(int)


@st.composite
def plausible(draw: st.DrawFn, kind: str) -> bytes:
    """An event built from values of the right shape, often extreme: mostly accepted."""
    event = dict(VALID[kind])
    event["event_id"] = draw(IDS)
    event["occurred_at"] = draw(WHEN)
    first, second = draw(st.lists(COUNTRY, min_size=2, max_size=2, unique=True))
    if kind in TRANSACTIONS:
        event["amount"] = draw(number(MONEY))
        event["currency"] = draw(st.sampled_from(sorted(CURRENCIES)))
        if draw(st.booleans()):
            event["corrects"] = draw(IDS)
            event["amount"] = draw(number(MONEY.map(lambda amount: -amount)))
    if kind in ("trade", "energy"):
        event.update(reporter=first, partner=second,
                     direction=draw(st.sampled_from(["import", "export"])))
        if kind == "trade":
            event["commodity"] = draw(st.text(max_size=80))
        else:
            event.update(commodity=draw(LABELS), quantity=draw(number(MONEY)),
                         unit=draw(LABELS))
    elif kind == "defense":
        event.update(buyer=first, supplier=second,
                     stage=draw(st.sampled_from(["contract_signed", "delivered", "paid"])))
    elif kind == "commitment":
        start, deadline = sorted(draw(st.lists(st.dates(), min_size=2, max_size=2,
                                               unique=True)))
        event.update(parties=[first, second], target=draw(number(POSITIVE)),
                     sector=draw(st.sampled_from(["trade", "energy", "defense", "all"])),
                     metric=draw(LABELS), period_start=start.isoformat(),
                     deadline=deadline.isoformat(),
                     basis=draw(st.sampled_from(["annual", "cumulative", None])),
                     action=draw(st.sampled_from(["declared", "revised", "withdrawn"])))
    else:
        event.update(currency=draw(st.sampled_from(sorted(CURRENCIES))),
                     rate_to_usd=draw(number(POSITIVE)), valid_from=draw(st.dates()).isoformat())
    return encode({k: v for k, v in event.items() if v is not None}, draw(st.booleans()))


def encode(value: Any, ascii_only: bool) -> bytes:
    """JSON as a producer might write it: NaN/Infinity literals and lone surrogates kept."""
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True).encode(
        "utf-8", "surrogatepass")


@st.composite
def mutated(draw: st.DrawFn, kind: str) -> bytes:
    """A valid event of ``kind`` with one to four fields dropped, replaced or added."""
    event = dict(VALID[kind])
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(st.sampled_from(["drop", "set", "set", "add"]))
        if operation == "drop" and event:
            del event[draw(st.sampled_from(sorted(event)))]
        elif operation == "set":
            field = draw(st.sampled_from(sorted(set(VALID[kind]) | set(OPTIONAL))))
            event[field] = draw(JUNK)
        else:
            event[draw(st.text(min_size=1, max_size=12))] = draw(JUNK)
    return encode(event, draw(st.booleans()))


def check(kind: Kind, raw: bytes | None, max_bytes: int = LIMIT) -> object | None:
    """The property: a reasoned rejection, or an event the whole pipeline digests."""
    try:
        event = validate(kind, raw, max_bytes)
    except InvalidEventError as error:
        assert isinstance(error.reason, str)
        assert error.reason.strip(), f"empty reason for {raw!r}"
        return None
    assert isinstance(event, MODELS[kind])
    digest(kind, event, raw, max_bytes)
    return event


def digest(kind: Kind, event: Any, raw: bytes | None, max_bytes: int) -> None:
    if kind in TRANSACTIONS:
        flow = flow_of(event)
        # route-transactions -> ledger-input -> fold: the envelope round trip.
        assert Flow.from_json(orjson.loads(orjson.dumps(flow.to_json()))) == flow
        assert flow.month == flow.day[:7]
    else:
        # route-reference -> ledger-input -> fold: the model's own JSON is read back.
        assert MODELS[kind].model_validate_json(event.model_dump_json()) == event
    assert raw is not None
    alone = replay([(kind, raw)], max_bytes)
    assert alone.dead_letters == []
    # In context: a rate for its currency from the earliest day (so a transaction is
    # folded, not parked) and the same event again (a duplicate).
    context: list[tuple[Kind, bytes]] = []
    currency = getattr(event, "currency", None) or "USD"  # commitments may name none
    if currency != "USD":
        context.append(("fx_rate", orjson.dumps({
            "event_id": "fuzz-fx", "occurred_at": "1900-01-01", "currency": currency,
            "rate_to_usd": "1.25", "valid_from": "1900-01-01"})))
    report = replay([*context, (kind, raw), (kind, raw)], max_bytes)
    assert report.dead_letters == []
    if kind in TRANSACTIONS:
        assert report.outcomes.get("duplicate") == 1, report.outcomes
    for ledger in report.store.ledgers.values():
        totals(buckets_of(ledger))


def test_the_valid_bases_are_valid() -> None:
    for kind in KINDS:
        assert check(kind, orjson.dumps(VALID[kind])) is not None, kind


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(raw=st.binary(max_size=300), max_bytes=st.sampled_from([256, 2048, LIMIT]))
@example(raw=b"", max_bytes=LIMIT)
@example(raw=b"\xff\xfe\x00{", max_bytes=LIMIT)
@example(raw=b"[" * 5000, max_bytes=LIMIT)
@example(raw=json.dumps(nested(300)).encode(), max_bytes=LIMIT)
@example(raw=json.dumps({**VALID["trade"], "commodity": nested(300)}).encode(), max_bytes=LIMIT)
@example(raw=b"{}" + b" " * 300, max_bytes=256)
def test_arbitrary_bytes(kind: Kind, raw: bytes, max_bytes: int) -> None:
    check(kind, raw, max_bytes)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(value=JSON_VALUES, ascii_only=st.booleans())
@example(value=float("nan"), ascii_only=True)
@example(value={"event_id": float("inf")}, ascii_only=True)
@example(value=nested(40), ascii_only=True)
def test_arbitrary_json(kind: Kind, value: Any, ascii_only: bool) -> None:
    check(kind, encode(value, ascii_only))


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_mutated_valid_events(kind: Kind, data: st.DataObject) -> None:
    check(kind, data.draw(mutated(kind)), data.draw(st.sampled_from([2048, LIMIT])))


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_plausible_extreme_events(kind: Kind, data: st.DataObject) -> None:
    check(kind, data.draw(plausible(kind)))


@pytest.mark.parametrize("raw", [None, b""])
@pytest.mark.parametrize("kind", KINDS)
def test_nothing_at_all(kind: Kind, raw: bytes | None) -> None:
    assert check(kind, raw) is None


@pytest.mark.parametrize(("field", "value"), [
    ("occurred_at", "1900-01-01"), ("occurred_at", "2199-12-31"),
    ("occurred_at", "1900-01-01T00:30:00+01:00"), ("occurred_at", "2199-12-31T23:59:59-23:59"),
    ("amount", "9999999999999999999999.99999999"), ("amount", "0.00000001"), ("amount", 0),
    ("amount", "1E+21"), ("event_id", "\u00e9" * 128), ("currency", "XAU"),
])
@pytest.mark.parametrize("kind", TRANSACTIONS)
def test_extreme_but_valid_transactions_go_through(kind: Kind, field: str, value: Any) -> None:
    assert check(kind, orjson.dumps({**VALID[kind], field: value})) is not None


def test_unicode_commodity_goes_through() -> None:
    flag = "\U0001f1ee\U0001f1f3 "
    assert check("trade", orjson.dumps({**VALID["trade"], "commodity": flag * 20}))


def test_negative_amounts_need_corrects() -> None:
    event = {**VALID["trade"], "amount": "-5"}
    assert check("trade", orjson.dumps(event)) is None
    assert check("trade", orjson.dumps({**event, "event_id": "t-2", "corrects": "t-1"}))


# -- accepted events and the progress computation that runs right after them -------------
#
# After every folded event the fold agent publishes progress for the pair's commitments
# (agents.Pipeline._publish -> progress(...).to_json()), and GET /commitments/ computes the
# same. These events pass validation; the computation must not blow up on them.

def progress_after(records: list[tuple[Kind, dict[str, Any]]]) -> list[dict[str, Any]]:
    report = replay([(kind, orjson.dumps(event)) for kind, event in records])
    assert report.dead_letters == []
    ledger = report.store.ledgers.get("IN-RU")
    buckets = buckets_of(ledger)
    return [progress(commitment, buckets, date(2025, 6, 30)).to_json()
            for commitment in report.store.reference_value["commitments"].values()]


def commitment(**fields: Any) -> dict[str, Any]:
    return {**VALID["commitment"], "sector": "trade", **fields}


def test_progress_after_ordinary_events() -> None:
    [row] = progress_after([("commitment", commitment()), ("trade", VALID["trade"])])
    assert Decimal(row["achieved"]) == Decimal("100.5")


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "2200-01-01", "9999-12-31",
                                 "0001-01-01T00:30:00+01:00"])
def test_dates_outside_the_plausible_years_are_refused(day: str) -> None:
    """Year 0001 once broke progress (add_months reached year 0) and 9999 the period
    walk; such dates are typos in trade data, refused with a reason instead."""
    for kind, fields in (("trade", {"occurred_at": day}),
                         ("commitment", {"period_start": day[:10], "deadline": "2199-12-31"})):
        with pytest.raises(InvalidEventError, match="outside 1900-2199"):
            validate(kind, orjson.dumps({**VALID[kind], **fields}), LIMIT)  # type: ignore[arg-type]


def test_a_target_beyond_thirty_digits_is_refused() -> None:
    with pytest.raises(InvalidEventError, match="target"):
        validate("commitment", orjson.dumps(commitment(target="1e30")), LIMIT)


def test_progress_of_a_tiny_target_against_a_huge_amount() -> None:
    """A ratio of ~1e25 needs more than the default 28 digits to be rounded for output."""
    rows = progress_after([("commitment", commitment(target="0.001")),
                           ("trade", {**VALID["trade"],
                                      "amount": "9999999999999999999999.99999999"})])
    assert Decimal(rows[0]["ratio"]) > Decimal("1e24")


def test_rate_and_commitment_models_survive_their_own_json() -> None:
    for model, kind in ((FxRatePublished, "fx_rate"), (CommitmentChanged, "commitment")):
        event = model.model_validate_json(orjson.dumps(VALID[kind]))
        assert model.model_validate_json(event.model_dump_json()) == event
