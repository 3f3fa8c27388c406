"""Event models of the tracker's contract topics (pydantic v2, no Kafka or Faust here)."""

from schemas.events import (
    CommitmentChanged,
    DefenseTransactionRecorded,
    EnergyTransactionRecorded,
    FxRatePublished,
    TradeTransactionRecorded,
    TransactionEvent,
)

__all__ = [
    "CommitmentChanged",
    "DefenseTransactionRecorded",
    "EnergyTransactionRecorded",
    "FxRatePublished",
    "TradeTransactionRecorded",
    "TransactionEvent",
]
