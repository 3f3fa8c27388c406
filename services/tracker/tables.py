"""Faust tables holding the fold's state, and the per-partition view the fold steps use.

Each value is plain JSON. A value is always reassigned after a change (never mutated in
place), otherwise the change would not reach the changelog.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import faust
from aiokafka.partitioner import murmur2
from faust.types import TableT

from services.tracker.domain.ledger import JSON
from services.tracker.domain.reference import empty_reference


def partition_of(pair: str, partitions: int) -> int:
    """The partition the default (murmur2) partitioner gives a pair key."""
    return (murmur2(pair.encode()) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True)
class TrackerTables:
    ledgers: TableT  # pair -> ledger (buckets, pending flows, position)
    roots: TableT  # "pair/root event id" -> what each event did to that flow
    references: TableT  # "p<partition>" -> FX rates and commitments, one copy each

    @classmethod
    def declare(cls, app: faust.App, partitions: int) -> TrackerTables:
        def table(name: str, help_text: str) -> TableT:
            return app.Table(name, default=None, partitions=partitions, help=help_text)

        return cls(table("ledgers", "Monthly buckets and pending flows per pair."),
                   table("roots", "Per original event: duplicates and corrections."),
                   table("references", "FX rates and commitments, one copy per partition."))


@dataclass
class PartitionStore:
    """The fold's ``Store`` over the tables, for the partition of the current event."""

    tables: TrackerTables
    partition: int
    partitions: int

    @property
    def _reference_key(self) -> str:
        return f"p{self.partition}"

    def reference(self) -> JSON:
        return self.tables.references.get(self._reference_key) or empty_reference()

    def set_reference(self, value: JSON) -> None:
        if value is not self.tables.references.get(self._reference_key):
            self.tables.references[self._reference_key] = value

    def ledger(self, pair: str) -> JSON | None:
        return self.tables.ledgers.get(pair)

    def set_ledger(self, pair: str, value: JSON) -> None:
        if value is not self.tables.ledgers.get(pair):
            self.tables.ledgers[pair] = value

    def root(self, key: str) -> JSON | None:
        return self.tables.roots.get(key)

    def set_root(self, key: str, value: JSON) -> None:
        if value is not self.tables.roots.get(key):
            self.tables.roots[key] = value

    def pairs_with_pending(self) -> Iterator[str]:
        return (pair for pair, ledger in list(self.tables.ledgers.items())
                if ledger and ledger["pending"]
                and partition_of(pair, self.partitions) == self.partition)


def local_reference(tables: TrackerTables) -> JSON:
    """Any local copy of the reference data (all partitions hold the same)."""
    for key, value in tables.references.items():
        if value is not None and str(key).startswith("p"):
            return value
    return empty_reference()
