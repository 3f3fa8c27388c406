"""Bytes from a contract topic -> a validated event, or an ``InvalidEventError`` whose
reason is written to the dead-letter topic."""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError

from schemas.events import (
    CommitmentChanged,
    DefenseTransactionRecorded,
    EnergyTransactionRecorded,
    Event,
    FxRatePublished,
    TradeTransactionRecorded,
)
from services.tracker.errors import InvalidEventError

Kind = Literal["trade", "energy", "defense", "commitment", "fx_rate"]

MODELS: dict[Kind, type[Event]] = {
    "trade": TradeTransactionRecorded,
    "energy": EnergyTransactionRecorded,
    "defense": DefenseTransactionRecorded,
    "commitment": CommitmentChanged,
    "fx_rate": FxRatePublished,
}

# The models' own validators: BaseModel.model_validate_json adds an argument check around
# them that costs a tenth of a small event's validation.
_VALIDATE_JSON = {kind: model.__pydantic_validator__.validate_json
                  for kind, model in MODELS.items()}


def describe(error: ValidationError) -> str:
    """A one-line reason naming each failing field, e.g. ``amount: ...; currency: ...``."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"]) or "event"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def validate(kind: Kind, raw: bytes | None, max_bytes: int) -> Event:
    if raw is None or not raw:
        raise InvalidEventError("empty value: a JSON object was expected")
    if len(raw) > max_bytes:
        raise InvalidEventError(f"payload of {len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        event: Event = _VALIDATE_JSON[kind](raw)
        return event
    except ValidationError as error:
        if error.errors()[0]["type"] == "json_invalid":
            raise InvalidEventError(f"not valid JSON: {error.errors()[0]['msg']}") from None
        raise InvalidEventError(describe(error)) from None
