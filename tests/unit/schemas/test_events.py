"""The event models: what the contract accepts and what it rejects."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from schemas.codes import COUNTRIES, CURRENCIES
from schemas.events import (
    EVENT_MODELS,
    SCHEMA_VERSION,
    CommitmentChanged,
    DefenseTransactionRecorded,
    EnergyTransactionRecorded,
    FxRatePublished,
    TradeTransactionRecorded,
)

Trade, Energy, Defense = TradeTransactionRecorded, EnergyTransactionRecorded, \
    DefenseTransactionRecorded
BUILDERS = {
    Trade: "trade_event",
    Energy: "energy_event",
    Defense: "defense_event",
    FxRatePublished: "fx_event",
    CommitmentChanged: "commitment_event",
}


def parse(model, payload):
    return model.model_validate_json(json.dumps(payload).encode())


@pytest.fixture
def build(make):
    """build(Model, **fields): a valid payload of that model with ``fields`` changed."""
    def payload(model, *args, **fields):
        return getattr(make, BUILDERS[model])(*args, **fields)
    return payload


@pytest.fixture
def rejected(build):
    """rejected(Model, **fields): the validation error text for that payload."""
    def text(model, *args, **fields) -> str:
        with pytest.raises(ValidationError) as caught:
            parse(model, build(model, *args, **fields))
        return str(caught.value)
    return text


# -- every kind parses ---------------------------------------------------------------------

@pytest.mark.parametrize(("model", "fields"), [
    (Trade, {}),
    (Energy, {"quantity": "5", "unit": "bbl"}),
    (Defense, {}),
    (FxRatePublished, {}),
    (CommitmentChanged, {}),
    (CommitmentChanged, {"action": "withdrawn"}),
])
def test_valid_payload_parses_with_schema_version_1(build, model, fields):
    payload = build(model, **fields)
    event = parse(model, payload)
    assert isinstance(event, model)
    assert event.schema_version == SCHEMA_VERSION == 1
    assert event.event_id == payload["event_id"]


def test_event_models_registry_names_the_five_contract_topics():
    assert dict(EVENT_MODELS) == {
        "trade-transaction": Trade,
        "energy-transaction": Energy,
        "defense-transaction": Defense,
        "commitment": CommitmentChanged,
        "fx-rate": FxRatePublished,
    }


def test_amount_is_parsed_as_exact_decimal(build):
    event = parse(Trade, build(Trade, amount="0.10000001"))
    assert event.amount == Decimal("0.10000001")


def test_events_are_frozen(build):
    event = parse(Trade, build(Trade))
    with pytest.raises(ValidationError):
        event.amount = Decimal(5)  # type: ignore[misc]


@pytest.mark.parametrize("model", [Trade, FxRatePublished, CommitmentChanged])
def test_unknown_fields_are_rejected(build, model):
    payload = {**build(model), "colour": "red"}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        parse(model, payload)


def test_schema_version_2_is_rejected(rejected):
    assert "schema_version" in rejected(Trade, schema_version=2)


# -- occurred_at --------------------------------------------------------------------------

@pytest.mark.parametrize(("occurred_at", "expected"), [
    ("2024-05-01", date(2024, 5, 1)),
    ("2024-05-01T10:00:00Z", date(2024, 5, 1)),
    ("2024-05-01T23:30:00+05:30", date(2024, 5, 1)),
])
def test_occurred_on_is_the_date_of_occurred_at(build, occurred_at, expected):
    event = parse(Trade, build(Trade, occurred_at=occurred_at))
    assert event.occurred_on == expected


@pytest.mark.parametrize(("occurred_at", "reason"), [
    ("2024-02-30", "'2024-02-30' is not an ISO-8601 date or datetime"),
    ("2024-0501", "'2024-0501' is not an ISO-8601 date or datetime"),
    ("1899-12-31", "year 1899 is outside 1900-2199"),
    ("1899-12-31T00:00Z", "year 1899 is outside 1900-2199"),
    ("2024-05-01T25:00Z", "'2024-05-01T25:00Z' is not an ISO-8601 date or datetime"),
])
def test_a_refused_event_time_is_refused_again_with_the_same_reason(rejected, occurred_at,
                                                                    reason):
    # dates are parsed once and kept: a refusal must not be kept as an answer
    assert reason in rejected(Trade, occurred_at=occurred_at)
    assert reason in rejected(Trade, occurred_at=occurred_at)


def test_events_of_one_day_share_its_date(build):
    first, second = (parse(Trade, build(Trade, event_id, occurred_at="2023-12-31"))
                     for event_id in ("t1", "t2"))
    assert first.occurred_at == second.occurred_at == date(2023, 12, 31)
    assert type(second.occurred_at) is date


@pytest.mark.parametrize("naive", ["2024-05-01T10:00:00", "2024-05-01T00:00"])
def test_naive_datetime_is_rejected(rejected, naive):
    assert "UTC offset" in rejected(Trade, occurred_at=naive)


# -- amounts and corrections --------------------------------------------------------------

def test_negative_amount_needs_corrects(build, rejected):
    assert "only allowed in corrections" in rejected(Trade, amount="-1")
    event = parse(Trade, build(Trade, "t2", amount="-1", corrects="t1"))
    assert event.amount == Decimal(-1)
    assert event.corrects == "t1"


def test_event_cannot_correct_itself(rejected):
    assert "cannot correct itself" in rejected(Trade, "t1", corrects="t1")


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "1.123456789"])
def test_non_finite_or_too_precise_amounts_are_rejected(rejected, amount):
    assert "amount" in rejected(Trade, amount=amount)


@pytest.mark.parametrize("event_id", ["", "has space", "x" * 129])
def test_bad_event_ids_are_rejected(rejected, event_id):
    assert "event_id" in rejected(Trade, event_id)


# -- countries and currencies -------------------------------------------------------------

def test_code_lists_hold_the_usual_codes():
    assert {"IN", "RU", "US", "AE"} <= COUNTRIES
    assert {"USD", "EUR", "INR", "RUB"} <= CURRENCIES
    assert "XX" not in COUNTRIES
    assert "ZZZ" not in CURRENCIES


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("reporter", "XX", "unknown country code 'XX'"),
    ("partner", "EU", "unknown country code 'EU'"),
    ("reporter", "in", "reporter"),
    ("currency", "ZZZ", "unknown currency code 'ZZZ'"),
    ("currency", "usd", "currency"),
])
def test_unknown_or_malformed_codes_are_rejected(rejected, field, value, needle):
    assert needle in rejected(Trade, **{field: value})


def test_reporter_and_partner_must_differ(rejected):
    assert "must differ from reporter" in rejected(Trade, reporter="IN", partner="IN")


def test_direction_must_be_import_or_export(rejected):
    assert "direction" in rejected(Trade, direction="transit")


# -- energy and defense -------------------------------------------------------------------

@pytest.mark.parametrize(("quantity", "unit"), [("5", None), (None, "bbl")])
def test_energy_quantity_and_unit_come_together(rejected, quantity, unit):
    assert "give both or neither" in rejected(Energy, quantity=quantity, unit=unit)


def test_energy_quantity_cannot_be_negative(rejected):
    assert "quantity" in rejected(Energy, quantity="-1", unit="bbl")


def test_energy_commodity_must_be_a_label(rejected):
    assert "commodity" in rejected(Energy, commodity="Crude Oil")


def test_defense_buyer_and_supplier_must_differ(rejected):
    assert "must differ from buyer" in rejected(Defense, buyer="IN", supplier="IN")


def test_defense_stage_must_be_known(rejected):
    assert "stage" in rejected(Defense, stage="ordered")


# -- commitments --------------------------------------------------------------------------

def test_declared_commitment_lists_missing_fields(build):
    payload = build(CommitmentChanged)
    del payload["target"], payload["source"]
    with pytest.raises(ValidationError, match="declared commitment lacks: target, source"):
        parse(CommitmentChanged, payload)


def test_withdrawn_commitment_needs_no_definition(build):
    event = parse(CommitmentChanged, build(CommitmentChanged, action="withdrawn"))
    assert event.action == "withdrawn"
    assert event.parties is None


def test_commitment_deadline_must_follow_period_start(rejected):
    text = rejected(CommitmentChanged, period_start="2024-01-01", deadline="2024-01-01")
    assert "deadline: must be after period_start" in text


def test_commitment_parties_must_differ(rejected):
    assert "two different countries" in rejected(CommitmentChanged, parties=["IN", "IN"])


@pytest.mark.parametrize("target", ["0", "-5"])
def test_commitment_target_must_be_positive(rejected, target):
    assert "target" in rejected(CommitmentChanged, target=target)


@pytest.mark.parametrize(("sector", "basis", "expected"), [
    ("trade", None, "annual"),
    ("energy", None, "annual"),
    ("all", None, "annual"),
    ("defense", None, "cumulative"),
    ("defense", "annual", "annual"),
    ("trade", "cumulative", "cumulative"),
])
def test_effective_basis(build, sector, basis, expected):
    event = parse(CommitmentChanged, build(CommitmentChanged, sector=sector, basis=basis))
    assert event.effective_basis == expected


def test_fx_rate_must_be_positive(rejected):
    assert "rate_to_usd" in rejected(FxRatePublished, rate="0")
