"""Normalising a validated transaction into a ``Flow``: canonical pair, route, measure, month.

Mirror statistics: the same flow may be reported by the exporter and by the importer.
Every flow is kept with the role of whoever reported it, and totals prefer the importer's
figure for each route and month, falling back to the exporter's only where the importer
reported nothing (the IMF DOTS convention: import declarations are the more complete
record). Defense deals are reported once, by the procurement side, and count as the
importer's report.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from schemas.events import (
    DefenseTransactionRecorded,
    EnergyTransactionRecorded,
    TransactionEvent,
)
from services.tracker.domain.periods import month_label

Sector = Literal["trade", "energy", "defense"]
SECTORS: tuple[Sector, ...] = ("trade", "energy", "defense")

VALUE = "value_usd"
# Defense stages are one deal seen three times: only deliveries count towards value.
DEFENSE_MEASURES = {"delivered": VALUE, "contract_signed": "order_book_usd", "paid": "payments_usd"}


def canonical_pair(first: str, second: str) -> str:
    """``RU``/``IN`` and ``IN``/``RU`` are one relationship: ``IN-RU``."""
    return f"{first}-{second}" if first <= second else f"{second}-{first}"


# Countries and days repeat from event to event while formatting their labels costs more
# than the rest of a flow; the bounds keep a stream of odd dates or countries from growing
# the caches without end.
@lru_cache(maxsize=4096)
def _pair_and_route(exporter: str, importer: str) -> tuple[str, str]:
    return canonical_pair(exporter, importer), f"{exporter}>{importer}"


@lru_cache(maxsize=8192)
def _month_and_day(day: date) -> tuple[str, str]:
    return month_label(day), day.isoformat()


class Flow(NamedTuple):
    """One transaction as the ledger sees it, before currency conversion. A named tuple:
    immutable like a frozen dataclass, and made several times faster (two per event)."""

    event_id: str
    root_id: str
    is_correction: bool
    pair: str
    sector: Sector
    measure: str
    route: str  # "exporter>importer"
    role: Literal["importer", "exporter"]
    month: str
    day: str
    amount: Decimal
    currency: str
    quantity: Decimal | None = None
    unit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "root_id": self.root_id,
                "is_correction": self.is_correction, "pair": self.pair, "sector": self.sector,
                "measure": self.measure, "route": self.route, "role": self.role,
                "month": self.month, "day": self.day, "amount": str(self.amount),
                "currency": self.currency,
                "quantity": None if self.quantity is None else str(self.quantity),
                "unit": self.unit}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Flow:
        quantity = data.get("quantity")
        return cls(**{**data, "amount": Decimal(data["amount"]),
                      "quantity": None if quantity is None else Decimal(quantity)})


def flow_of(event: TransactionEvent) -> Flow:
    """Normalise a validated transaction event."""
    month, day = _month_and_day(event.occurred_on)
    event_id, corrects = event.event_id, event.corrects
    root_id = corrects or event_id
    if isinstance(event, DefenseTransactionRecorded):
        pair, route = _pair_and_route(event.supplier, event.buyer)
        return Flow(event_id, root_id, corrects is not None, pair, "defense",
                    DEFENSE_MEASURES[event.stage], route, "importer", month, day,
                    event.amount, event.currency)
    role: Literal["importer", "exporter"]
    if event.direction == "import":
        (pair, route), role = _pair_and_route(event.partner, event.reporter), "importer"
    else:
        (pair, route), role = _pair_and_route(event.reporter, event.partner), "exporter"
    if isinstance(event, EnergyTransactionRecorded):
        # quantity and unit come both or neither: the model checks it.
        return Flow(event_id, root_id, corrects is not None, pair, "energy", VALUE, route,
                    role, month, day, event.amount, event.currency, event.quantity,
                    event.unit)
    return Flow(event_id, root_id, corrects is not None, pair, "trade", VALUE, route, role,
                month, day, event.amount, event.currency)
