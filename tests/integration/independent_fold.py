"""Expected figures for a JSON Lines sample, computed without the tracker's domain code.

Only the contract is shared: the pydantic models decide what is valid. Everything else -
dedup, corrections, FX, the mirror rule, defense stages, period sums - is written again
here, plainly, so a bug in the service's fold cannot hide in its own expectation.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.events import (
    DefenseTransactionRecorded,
    EnergyTransactionRecorded,
    FxRatePublished,
    TradeTransactionRecorded,
)

TRANSACTION_MODELS: dict[str, Any] = {
    "trade-transactions": TradeTransactionRecorded,
    "energy-transactions": EnergyTransactionRecorded,
    "defense-transactions": DefenseTransactionRecorded,
}


@dataclass
class Expected:
    months: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    by_currency: dict[tuple[str, str], Decimal] = field(
        default_factory=lambda: defaultdict(Decimal))  # (month, currency) -> USD
    counted: dict[tuple[str, str], int] = field(
        default_factory=lambda: defaultdict(int))  # (month, topic) -> events counted
    duplicate_ids: list[tuple[str, str]] = field(default_factory=list)  # (event id, day)
    corrections: list[tuple[str, str]] = field(default_factory=list)  # (event id, day)
    invalid_lines: list[bytes] = field(default_factory=list)
    duplicates: int = 0

    def fiscal_year(self, start: int) -> Decimal:
        keys = [f"{start}-{m:02d}" for m in range(4, 13)] + [
            f"{start + 1}-{m:02d}" for m in range(1, 4)]
        return sum((self.months.get(k, Decimal(0)) for k in keys), Decimal(0))

    def fiscal_months(self, start: int) -> list[str]:
        return [f"{start}-{m:02d}" for m in range(4, 13)] + [
            f"{start + 1}-{m:02d}" for m in range(1, 4)]

    def trailing_twelve_months(self, last: str | None = None) -> Decimal:
        last = last or max(self.months)
        year, month = map(int, last.split("-"))
        total = Decimal(0)
        for back in range(12):
            index = year * 12 + month - 1 - back
            total += self.months.get(f"{index // 12}-{index % 12 + 1:02d}", Decimal(0))
        return total


def expected_value_usd(path: Path) -> Expected:
    """Monthly USD value of all sectors for the pair in the file (one pair assumed)."""
    expected = Expected()
    rates: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    effective: dict[str, tuple[Any, str]] = {}  # root event id -> (record that counts, topic)
    corrected: set[str] = set()
    seen: set[str] = set()
    for raw_line in path.read_text().splitlines():
        record = json.loads(raw_line)
        value = record["value"]
        # Encoded as `tracker produce` sends it: strings as-is, objects as compact JSON.
        raw = value.encode() if isinstance(value, str) else orjson.dumps(value)
        model = TRANSACTION_MODELS.get(record["topic"])
        if record["topic"] == "fx-rates":
            rate = FxRatePublished.model_validate_json(raw)
            rates[rate.currency].append((rate.valid_from.isoformat(), rate.rate_to_usd))
            continue
        if model is None:
            continue
        try:
            event = model.model_validate_json(raw)
        except ValidationError:
            expected.invalid_lines.append(raw)
            continue
        if event.event_id in seen:
            expected.duplicates += 1
            expected.duplicate_ids.append((event.event_id, event.occurred_at.isoformat()[:10]))
            continue
        seen.add(event.event_id)
        root = event.corrects or event.event_id
        if event.corrects is not None:
            effective[root] = (event, record["topic"])
            corrected.add(root)
            expected.corrections.append((event.event_id, event.occurred_at.isoformat()[:10]))
        elif root not in corrected:
            effective[root] = (event, record["topic"])
    by_route: dict[tuple[str, str, str], dict[str, list[tuple[Decimal, str, str]]]] = (
        defaultdict(lambda: defaultdict(list)))  # role -> [(usd, currency, topic)]
    for event, topic in effective.values():
        if isinstance(event, DefenseTransactionRecorded):
            if event.stage != "delivered":
                continue
            route, role = f"{event.supplier}>{event.buyer}", "importer"
        elif event.direction == "import":
            route, role = f"{event.partner}>{event.reporter}", "importer"
        else:
            route, role = f"{event.reporter}>{event.partner}", "exporter"
        day = event.occurred_at.isoformat()[:10]
        rate = Decimal(1) if event.currency == "USD" else max(
            r for r in rates[event.currency] if r[0] <= day)[1]
        sector = type(event).__name__
        by_route[(sector, route, day[:7])][role].append((event.amount * rate, event.currency,
                                                         topic))
    for (_sector, _route, month), roles in by_route.items():
        chosen = roles["importer"] if "importer" in roles else roles["exporter"]
        for usd, currency, topic in chosen:
            expected.months[month] += usd
            expected.by_currency[(month, currency)] += usd
            expected.counted[(month, topic)] += 1
    return expected
