"""Reference data every partition keeps a copy of: FX rates and commitment definitions."""

from __future__ import annotations

from typing import Any, TypeGuard

from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.domain.fx import with_rate
from services.tracker.domain.ledger import JSON, Position, is_after

_DEFINITION_FIELDS = ("parties", "sector", "metric", "target", "basis", "baseline",
                      "period_start", "deadline", "source")


REQUIRED_DEFINITION = ("parties", "sector", "metric", "target", "basis", "period_start",
                       "deadline")


def is_defined(commitment: JSON | None) -> TypeGuard[JSON]:
    """True once declared: a revision or withdrawal of an unknown id defines nothing."""
    return commitment is not None and all(name in commitment for name in REQUIRED_DEFINITION)


def empty_reference() -> JSON:
    return {"position": None, "fx": {}, "fx_event_ids": [], "commitments": {}}


def apply_fx_rate(reference: JSON, event: FxRatePublished, position: Position) -> JSON:
    """Set a rate; a redelivered rate message (same event id) changes nothing."""
    if not is_after(position, reference["position"]):
        return reference
    if event.event_id in reference["fx_event_ids"]:
        return {**reference, "position": list(position)}
    rates = with_rate(reference["fx"], event.currency, event.valid_from, event.rate_to_usd)
    return {**reference, "fx": rates, "fx_event_ids": [*reference["fx_event_ids"], event.event_id],
            "position": list(position)}


def apply_commitment(reference: JSON, event: CommitmentChanged, position: Position) -> JSON:
    """Declare, revise or withdraw; a repeated event id changes nothing."""
    if not is_after(position, reference["position"]):
        return reference
    current: dict[str, Any] = reference["commitments"].get(event.commitment_id) or {
        "commitment_id": event.commitment_id, "withdrawn": False, "event_ids": []}
    if event.event_id in current["event_ids"]:
        return {**reference, "position": list(position)}
    given = event.model_dump(mode="json", include=set(_DEFINITION_FIELDS), exclude_none=True)
    updated = {**current, **given, "event_ids": [*current["event_ids"], event.event_id],
               "withdrawn": event.action == "withdrawn",
               "last_action": event.action, "updated_at": event.occurred_on.isoformat()}
    if "sector" in updated and "basis" not in given and "basis" not in current:
        updated["basis"] = "cumulative" if updated["sector"] == "defense" else "annual"
    commitments = {**reference["commitments"], event.commitment_id: updated}
    return {**reference, "commitments": commitments, "position": list(position)}
