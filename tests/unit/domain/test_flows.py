"""Normalising validated transactions into flows: pair, route, role, measure, month."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from schemas.events import (
    DefenseTransactionRecorded,
    EnergyTransactionRecorded,
    TradeTransactionRecorded,
)
from services.tracker.domain.flows import Flow, canonical_pair, flow_of


def parse(model, payload):
    return model.model_validate_json(json.dumps(payload).encode())


def test_canonical_pair_ignores_order():
    assert canonical_pair("RU", "IN") == canonical_pair("IN", "RU") == "IN-RU"
    assert canonical_pair("US", "AE") == "AE-US"


def test_import_report_is_the_importers_view(make):
    flow = flow_of(parse(TradeTransactionRecorded, make.trade_event(
        "t1", reporter="IN", partner="RU", direction="import", amount="250.5",
        currency="EUR", occurred_at="2024-05-31")))
    assert (flow.pair, flow.route, flow.role) == ("IN-RU", "RU>IN", "importer")
    assert (flow.sector, flow.measure) == ("trade", "value_usd")
    assert (flow.month, flow.day) == ("2024-05", "2024-05-31")
    assert (flow.amount, flow.currency) == (Decimal("250.5"), "EUR")
    assert (flow.event_id, flow.root_id, flow.is_correction) == ("t1", "t1", False)


def test_export_report_is_the_exporters_view_of_the_same_route(make):
    flow = flow_of(parse(TradeTransactionRecorded, make.trade_event(
        reporter="RU", partner="IN", direction="export")))
    assert (flow.pair, flow.route, flow.role) == ("IN-RU", "RU>IN", "exporter")


def test_correction_keeps_the_root_of_the_event_it_corrects(make):
    flow = flow_of(parse(TradeTransactionRecorded, make.trade_event(
        "t2", corrects="t1", amount="-3")))
    assert (flow.event_id, flow.root_id, flow.is_correction) == ("t2", "t1", True)
    assert flow.amount == Decimal(-3)


def test_month_comes_from_the_local_date_of_an_aware_datetime(make):
    flow = flow_of(parse(TradeTransactionRecorded, make.trade_event(
        occurred_at="2024-03-31T23:30:00+05:30")))
    assert (flow.month, flow.day) == ("2024-03", "2024-03-31")


@pytest.mark.parametrize(("stage", "measure"), [
    ("delivered", "value_usd"),
    ("contract_signed", "order_book_usd"),
    ("paid", "payments_usd"),
])
def test_defense_stage_decides_the_measure(make, stage, measure):
    flow = flow_of(parse(DefenseTransactionRecorded, make.defense_event(
        buyer="IN", supplier="RU", stage=stage)))
    assert flow.measure == measure
    assert (flow.sector, flow.pair, flow.route, flow.role) == (
        "defense", "IN-RU", "RU>IN", "importer")


def test_energy_flow_carries_quantity_and_unit(make):
    flow = flow_of(parse(EnergyTransactionRecorded, make.energy_event(
        reporter="IN", partner="RU", direction="import", quantity="1000.5", unit="bbl")))
    assert (flow.sector, flow.measure) == ("energy", "value_usd")
    assert (flow.quantity, flow.unit) == (Decimal("1000.5"), "bbl")


def test_energy_flow_without_quantity(make):
    flow = flow_of(parse(EnergyTransactionRecorded, make.energy_event()))
    assert flow.quantity is None
    assert flow.unit is None


@pytest.mark.parametrize("quantity", [None, "12.5"])
def test_flow_json_round_trip(make, quantity):
    unit = None if quantity is None else "bbl"
    flow = flow_of(parse(EnergyTransactionRecorded, make.energy_event(
        amount="0.00000001", quantity=quantity, unit=unit, corrects="n0")))
    data = json.loads(json.dumps(flow.to_json()))
    assert Decimal(data["amount"]) == Decimal("0.00000001")
    assert Flow.from_json(data) == flow


# Whole flows, as the keyword-built Flow of before the caches gave them: the same countries
# and days come back in other roles, so a cache keyed wrongly would show here.
WHOLE_FLOWS = [
    (TradeTransactionRecorded, "trade_event", dict(
        event_id="t1", reporter="IN", partner="RU", direction="import", amount="250.5",
        currency="EUR", occurred_at="2024-05-31"),
     Flow("t1", "t1", False, "IN-RU", "trade", "value_usd", "RU>IN", "importer", "2024-05",
          "2024-05-31", Decimal("250.5"), "EUR")),
    (TradeTransactionRecorded, "trade_event", dict(
        event_id="t2", reporter="IN", partner="RU", direction="export", amount="-3",
        corrects="t1", occurred_at="2024-05-31T23:30:00-05:00"),
     Flow("t2", "t1", True, "IN-RU", "trade", "value_usd", "IN>RU", "exporter", "2024-05",
          "2024-05-31", Decimal("-3"), "USD")),
    (TradeTransactionRecorded, "trade_event", dict(
        event_id="t3", reporter="RU", partner="IN", direction="import", occurred_at="1900-01-01"),
     Flow("t3", "t3", False, "IN-RU", "trade", "value_usd", "IN>RU", "importer", "1900-01",
          "1900-01-01", Decimal("100"), "USD")),
    (DefenseTransactionRecorded, "defense_event", dict(
        event_id="d1", buyer="IN", supplier="RU", stage="paid", occurred_at="2024-05-31"),
     Flow("d1", "d1", False, "IN-RU", "defense", "payments_usd", "RU>IN", "importer",
          "2024-05", "2024-05-31", Decimal("100"), "USD")),
    (DefenseTransactionRecorded, "defense_event", dict(
        event_id="d2", buyer="RU", supplier="IN", stage="delivered", corrects="d0"),
     Flow("d2", "d0", True, "IN-RU", "defense", "value_usd", "IN>RU", "importer", "2024-05",
          "2024-05-15", Decimal("100"), "USD")),
    (EnergyTransactionRecorded, "energy_event", dict(
        event_id="n1", reporter="RU", partner="IN", direction="export", quantity="1000.5",
        unit="bbl", occurred_at="2024-05-31"),
     Flow("n1", "n1", False, "IN-RU", "energy", "value_usd", "RU>IN", "exporter", "2024-05",
          "2024-05-31", Decimal("100"), "USD", Decimal("1000.5"), "bbl")),
    (EnergyTransactionRecorded, "energy_event", dict(
        event_id="n2", reporter="US", partner="AE", direction="import"),
     Flow("n2", "n2", False, "AE-US", "energy", "value_usd", "AE>US", "importer", "2024-05",
          "2024-05-15", Decimal("100"), "USD")),
]


def test_whole_flows_in_every_role_and_sector(make):
    for _round in range(2):  # the second from the caches
        for model, builder, fields, expected in WHOLE_FLOWS:
            flow = flow_of(parse(model, getattr(make, builder)(**fields)))
            assert flow == expected
            assert [type(value) for value in flow] == [type(value) for value in expected]
