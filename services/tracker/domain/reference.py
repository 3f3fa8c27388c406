"""Reference data every partition keeps a copy of: FX rates and commitment definitions."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeGuard

from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.domain.fx import with_rate
from services.tracker.domain.ledger import JSON, Position, is_after

_DEFINITION_FIELDS = ("parties", "sector", "metric", "currency", "target", "basis",
                      "baseline", "period_start", "deadline", "source")


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
    """Declare, revise or withdraw; a repeated event id changes nothing.

    Every version is kept with its event date, so the definition in force on any past day
    can be answered (``definition_as_of``); the stored value is the one in force now.
    """
    if not is_after(position, reference["position"]):
        return reference
    current: dict[str, Any] = reference["commitments"].get(event.commitment_id) or {
        "commitment_id": event.commitment_id, "withdrawn": False, "event_ids": [],
        "versions": []}
    if event.event_id in current["event_ids"]:
        return {**reference, "position": list(position)}
    version = {"at": event.occurred_on.isoformat(), "action": event.action,
               "fields": event.model_dump(mode="json", include=set(_DEFINITION_FIELDS),
                                          exclude_none=True)}
    versions = [*current["versions"], version]
    updated = {**_fold_versions(event.commitment_id, versions), "versions": versions,
               "event_ids": [*current["event_ids"], event.event_id]}
    commitments = {**reference["commitments"], event.commitment_id: updated}
    return {**reference, "commitments": commitments, "position": list(position)}


def _fold_versions(commitment_id: str, versions: list[JSON]) -> JSON:
    definition: JSON = {"commitment_id": commitment_id, "withdrawn": False}
    for version in versions:
        given = version["fields"]
        definition.update(given, withdrawn=version["action"] == "withdrawn",
                          last_action=version["action"], updated_at=version["at"])
        if "sector" in given and "basis" not in given and "basis" not in definition:
            definition["basis"] = "cumulative" if given["sector"] == "defense" else "annual"
    return definition


def definition_as_of(commitment: JSON, as_of: date) -> JSON | None:
    """The commitment as declared/revised/withdrawn by events dated on or before ``as_of``
    (in log order); None if it was not declared yet."""
    versions = [v for v in commitment.get("versions", []) if v["at"] <= as_of.isoformat()]
    definition = _fold_versions(commitment["commitment_id"], versions)
    return definition if is_defined(definition) else None
