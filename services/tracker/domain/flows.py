"""Normalising a validated transaction into a ``Flow``: canonical pair, route, measure, month.

Mirror statistics: the same flow may be reported by the exporter and by the importer.
Every flow is kept with the role of whoever reported it, and totals prefer the importer's
figure for each route and month, falling back to the exporter's only where the importer
reported nothing (the IMF DOTS convention: import declarations are the more complete
record). Defense deals are reported once, by the procurement side, and count as the
importer's report.
"""

from __future__ import annotations

from decimal import Decimal
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
    low, high = sorted((first, second))
    return f"{low}-{high}"


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
    common: dict[str, Any] = {
        "event_id": event.event_id,
        "root_id": event.corrects or event.event_id,
        "is_correction": event.corrects is not None,
        "month": month_label(event.occurred_on),
        "day": event.occurred_on.isoformat(),
        "amount": event.amount,
        "currency": event.currency,
    }
    if isinstance(event, DefenseTransactionRecorded):
        return Flow(pair=canonical_pair(event.buyer, event.supplier), sector="defense",
                    measure=DEFENSE_MEASURES[event.stage],
                    route=f"{event.supplier}>{event.buyer}", role="importer", **common)
    role: Literal["importer", "exporter"]
    if event.direction == "import":
        route, role = f"{event.partner}>{event.reporter}", "importer"
    else:
        route, role = f"{event.reporter}>{event.partner}", "exporter"
    sector: Sector = "energy" if isinstance(event, EnergyTransactionRecorded) else "trade"
    extra: dict[str, Any] = {}
    if isinstance(event, EnergyTransactionRecorded) and event.quantity is not None:
        extra = {"quantity": event.quantity, "unit": event.unit}
    return Flow(pair=canonical_pair(event.reporter, event.partner), sector=sector,
                measure=VALUE, route=route, role=role, **common, **extra)
