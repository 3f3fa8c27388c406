"""Raw bytes -> validated event, or an InvalidEventError whose reason goes to the DLQ."""

from __future__ import annotations

import json

import pytest

from schemas.events import (
    CommitmentChanged,
    DefenseTransactionRecorded,
    EnergyTransactionRecorded,
    FxRatePublished,
    TradeTransactionRecorded,
)
from services.tracker.domain.validation import MODELS, validate
from services.tracker.errors import InvalidEventError, TrackerError

LIMIT = 64 * 1024


def reason(kind, raw: bytes | None, max_bytes: int = LIMIT) -> str:
    with pytest.raises(InvalidEventError) as caught:
        validate(kind, raw, max_bytes)
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, TrackerError)
    return caught.value.reason


@pytest.fixture
def trade_bytes(make):
    """trade_bytes(**fields) / trade_bytes(drop="amount"): a trade record's raw value."""
    def build(*, drop: str | None = None, **fields) -> bytes:
        payload = make.trade_event(**fields)
        if drop:
            del payload[drop]
        return json.dumps(payload).encode()
    return build


@pytest.mark.parametrize(("kind", "builder", "model"), [
    ("trade", "trade_event", TradeTransactionRecorded),
    ("energy", "energy_event", EnergyTransactionRecorded),
    ("defense", "defense_event", DefenseTransactionRecorded),
    ("commitment", "commitment_event", CommitmentChanged),
    ("fx_rate", "fx_event", FxRatePublished),
])
def test_each_kind_validates_to_its_model(make, kind, builder, model):
    raw = make.encode(getattr(make, builder)())
    assert MODELS[kind] is model
    assert isinstance(validate(kind, raw, LIMIT), model)


@pytest.mark.parametrize("raw", [b"{not json", b"{\"event_id\":", b"\xff\xfe", b"   "])
def test_not_json(raw):
    assert reason("trade", raw).startswith("not valid JSON: ")


@pytest.mark.parametrize("raw", [b"[1, 2]", b"null", b"42", b"\"text\""])
def test_json_that_is_not_an_object(raw):
    assert reason("trade", raw) == "event: Input should be an object"


@pytest.mark.parametrize("raw", [b"", None])
def test_empty_value(raw):
    assert reason("trade", raw) == "empty value: a JSON object was expected"


@pytest.mark.parametrize(("fields", "field"), [
    ({"amount": "abc"}, "amount"),
    ({"amount": True}, "amount"),
    ({"amount": [1]}, "amount"),
    ({"event_id": 17}, "event_id"),
    ({"reporter": 12}, "reporter"),
    ({"direction": None}, "direction"),
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"hs_code": 8471}, "hs_code"),
])
def test_wrong_types_name_the_field(trade_bytes, fields, field):
    assert reason("trade", trade_bytes(**fields)).startswith(field)  # e.g. occurred_at.date:


def test_several_problems_are_all_named(trade_bytes):
    text = reason("trade", trade_bytes(amount="abc", currency="ZZZ"))
    assert "amount: " in text
    assert "currency: " in text
    assert "; " in text


def test_unknown_country(trade_bytes):
    assert reason("trade", trade_bytes(partner="XX")) == (
        "partner: Value error, unknown country code 'XX' (ISO 3166-1 alpha-2 expected)")


def test_unknown_currency(trade_bytes):
    assert reason("trade", trade_bytes(currency="ZZZ")) == (
        "currency: Value error, unknown currency code 'ZZZ' (ISO 4217 expected)")


@pytest.mark.parametrize("field", ["event_id", "occurred_at", "amount", "currency",
                                   "reporter", "partner", "direction"])
def test_missing_field(trade_bytes, field):
    assert reason("trade", trade_bytes(drop=field)) == f"{field}: Field required"


def test_missing_defense_field(make):
    payload = make.defense_event()
    del payload["stage"]
    assert reason("defense", make.encode(payload)) == "stage: Field required"


def test_negative_amount_only_in_corrections(trade_bytes):
    assert "negative amounts are only allowed in corrections" in reason(
        "trade", trade_bytes(amount="-10"))
    event = validate("trade", trade_bytes(event_id="t2", amount="-10", corrects="t1"), LIMIT)
    assert event.amount < 0


def test_oversize_payload(trade_bytes):
    raw = trade_bytes()
    assert reason("trade", raw, max_bytes=len(raw) - 1) == (
        f"payload of {len(raw)} bytes exceeds the limit of {len(raw) - 1}")
    assert validate("trade", raw, max_bytes=len(raw)).event_id == "t1"  # limit is inclusive


def test_oversize_is_checked_before_parsing():
    assert "exceeds the limit" in reason("trade", b"x" * 100, max_bytes=10)


def test_unknown_schema_version(trade_bytes):
    assert reason("trade", trade_bytes(schema_version=2)) == "schema_version: Input should be 1"


@pytest.mark.parametrize("kind", ["trade", "fx_rate"])
def test_naive_datetime(make, kind):
    payload = make.trade_event() if kind == "trade" else make.fx_event()
    payload["occurred_at"] = "2024-05-01T12:00:00"
    text = reason(kind, make.encode(payload))
    assert "occurred_at" in text
    assert "UTC offset" in text


def test_reporter_equals_partner(trade_bytes):
    assert "partner: must differ from reporter" in reason(
        "trade", trade_bytes(reporter="RU", partner="RU"))


def test_unknown_field(trade_bytes):
    assert reason("trade", trade_bytes(amout="5")) == "amout: Extra inputs are not permitted"


def test_wrong_kind_for_payload(make):
    raw = make.encode(make.fx_event())
    assert "Field required" in reason("trade", raw)


def test_integer_occurred_at_is_a_wrong_type(trade_bytes):
    assert reason("trade", trade_bytes(occurred_at=20240501)).startswith("occurred_at")
