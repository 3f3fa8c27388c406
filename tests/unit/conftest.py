"""Small builders shared by the unit tests: event payloads, raw records and totals.

Tests reach them through the session fixture ``make`` (``make.trade("t1", amount="5")``),
which works whether or not ``tests/`` is a package.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest

from services.tracker.domain.fold import MemoryStore
from services.tracker.domain.ledger import bucket_key, buckets_of, totals

JSON = dict[str, Any]
Record = tuple[str, bytes]
# (pair, sector, measure, period) -> amount, over every ledger of a store
StoreTotals = dict[tuple[str, str, str, str], Decimal]


def encode(payload: JSON) -> bytes:
    return json.dumps(payload).encode()


def _without_none(payload: JSON) -> JSON:
    return {key: value for key, value in payload.items() if value is not None}


# -- event payloads (dicts) -------------------------------------------------------------

def trade_event(event_id: str = "t1", *, amount: str = "100", currency: str = "USD",
                occurred_at: str = "2024-05-15", reporter: str = "IN", partner: str = "RU",
                direction: str = "import", corrects: str | None = None, **extra: Any) -> JSON:
    return _without_none({
        "event_id": event_id, "occurred_at": occurred_at, "amount": amount,
        "currency": currency, "reporter": reporter, "partner": partner,
        "direction": direction, "corrects": corrects, **extra})


def energy_event(event_id: str = "n1", *, amount: str = "100", currency: str = "USD",
                 occurred_at: str = "2024-05-15", reporter: str = "IN", partner: str = "RU",
                 direction: str = "import", commodity: str = "crude_oil",
                 quantity: str | None = None, unit: str | None = None,
                 corrects: str | None = None, **extra: Any) -> JSON:
    return _without_none({
        "event_id": event_id, "occurred_at": occurred_at, "amount": amount,
        "currency": currency, "reporter": reporter, "partner": partner,
        "direction": direction, "commodity": commodity, "quantity": quantity, "unit": unit,
        "corrects": corrects, **extra})


def defense_event(event_id: str = "d1", *, amount: str = "100", currency: str = "USD",
                  occurred_at: str = "2024-05-15", buyer: str = "IN", supplier: str = "RU",
                  stage: str = "delivered", corrects: str | None = None,
                  **extra: Any) -> JSON:
    return _without_none({
        "event_id": event_id, "occurred_at": occurred_at, "amount": amount,
        "currency": currency, "buyer": buyer, "supplier": supplier, "stage": stage,
        "corrects": corrects, **extra})


def fx_event(event_id: str = "fx1", *, currency: str = "EUR", rate: str = "2",
             valid_from: str = "2000-01-01", occurred_at: str | None = None) -> JSON:
    return {"event_id": event_id, "occurred_at": occurred_at or valid_from,
            "currency": currency, "rate_to_usd": rate, "valid_from": valid_from}


def commitment_event(event_id: str = "c-ev1", *, commitment_id: str = "c1",
                     action: str = "declared", occurred_at: str = "2024-01-01",
                     **fields: Any) -> JSON:
    payload: JSON = {"event_id": event_id, "occurred_at": occurred_at,
                     "commitment_id": commitment_id, "action": action}
    if action != "withdrawn":
        payload.update({"parties": ["IN", "RU"], "sector": "trade", "metric": "value_usd",
                        "target": "1000", "period_start": "2024-01-01",
                        "deadline": "2030-12-31", "source": "joint statement"})
    payload.update(fields)
    return _without_none(payload)


# -- raw records as replay() takes them ---------------------------------------------------

def trade(event_id: str = "t1", **fields: Any) -> Record:
    return ("trade", encode(trade_event(event_id, **fields)))


def energy(event_id: str = "n1", **fields: Any) -> Record:
    return ("energy", encode(energy_event(event_id, **fields)))


def defense(event_id: str = "d1", **fields: Any) -> Record:
    return ("defense", encode(defense_event(event_id, **fields)))


def fx_rate(event_id: str = "fx1", **fields: Any) -> Record:
    return ("fx_rate", encode(fx_event(event_id, **fields)))


def commitment(event_id: str = "c-ev1", **fields: Any) -> Record:
    return ("commitment", encode(commitment_event(event_id, **fields)))


# -- reading results ----------------------------------------------------------------------

def store_totals(store: MemoryStore) -> StoreTotals:
    """Headline totals of every ledger in a store, keyed by pair as well."""
    result: StoreTotals = {}
    for pair, ledger in store.ledgers.items():
        for (sector, measure, period), amount in totals(buckets_of(ledger)).items():
            result[(pair, sector, measure, period)] = amount
    return result


def nonzero(figures: dict[Any, Decimal]) -> dict[Any, Decimal]:
    """Drop zero entries: a bucket emptied by a correction may linger as ``0``."""
    return {key: value for key, value in figures.items() if value != 0}


def buckets_from(rows: Iterable[tuple[str, str, str, str, str, str]]) -> dict[str, str]:
    """Buckets from (sector, measure, route, role, month, amount) rows."""
    return {bucket_key(sector, measure, route, role, month): amount
            for sector, measure, route, role, month, amount in rows}


@pytest.fixture(scope="session")
def make() -> ModuleType:
    """This module: the builders above, as ``make.trade(...)``, ``make.store_totals(...)``."""
    return sys.modules[__name__]
