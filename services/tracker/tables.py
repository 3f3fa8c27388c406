"""Faust tables holding the fold's state, and the per-partition view the fold steps use.

Each value is plain JSON. A value is always reassigned after a change (never mutated in
place), otherwise the change would not reach the changelog. Ledgers are whole in memory
but go to their changelog as pieces - each changed month, the last with the head - so a
write costs what changed rather than the pair's whole history (``ledger_pieces``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaProducer
from faust.types import EventT, TableT

from services.tracker.domain.ledger import JSON, Owned, ledger_pieces, with_piece
from services.tracker.domain.reference import empty_reference
from services.tracker.partitioning import partition_of

PIECE_SEPARATOR = "@"  # changelog key of a month of a ledger: "AE-IN@2024-05"
ROOT_GROUP_SEPARATOR = "#"  # changelog key of a group of root entries: "AE-IN#4017"


class LedgerTable(faust.Table):
    """A table of ledgers whose changelog holds ledger pieces, put together on recovery."""

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        store: Any = self.data
        for event in batch:
            piece: JSON | None = event.value  # type: ignore[assignment]  # JSON-decoded
            if piece is None:
                continue  # ledgers are never deleted
            pair, _, month = str(event.key).partition(PIECE_SEPARATOR)
            store[pair] = with_piece(store.get(pair), pair, month, piece)
            # The in-memory store's own bookkeeping (as its apply_changelog_batch does): it
            # drops the keys of partitions no longer assigned here after a rebalance.
            store._key_partition[pair] = event.message.partition


class RootTable(faust.Table):
    """Root entries, one key each in memory, sent to the changelog grouped: one record per
    pair and folded ledger-input record (``pair#offset``) holding the entries it changed.
    A batch then costs a changelog record per pair it touched instead of one per event,
    and so does recovery. A record folded again after a crash rewrites the same key."""

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        store: Any = self.data
        for event in batch:
            entries: JSON | None = event.value  # type: ignore[assignment]  # JSON-decoded
            for key, entry in (entries or {}).items():
                store[key] = entry
                store._key_partition[key] = event.message.partition  # as in LedgerTable


def root_group_key(pair: str, record_offset: int) -> str:
    return f"{pair}{ROOT_GROUP_SEPARATOR}{record_offset}"


def piece_key(pair: str, month: str) -> str:
    return f"{pair}{PIECE_SEPARATOR}{month}" if month else pair


@dataclass(frozen=True)
class TrackerTables:
    ledgers: TableT  # pair -> ledger (buckets, pending flows, position)
    roots: TableT  # "pair/root event id" -> what each event did to that flow
    references: TableT  # "p<partition>" -> FX rates and commitments, one copy each

    def drop_partitions_except(self, kept: set[int], partitions: int) -> set[str]:
        """Forget the keys of partitions another worker owns now (the in-memory store keeps
        what this worker wrote before the partition moved); returns the pairs dropped."""
        dropped: set[str] = set()
        for table in (self.ledgers, self.roots, self.references):
            store: Any = table.data
            for key in list(store.keys()):
                text = str(key)
                partition = (int(text[1:]) if table is self.references
                             else partition_of(text.split("/", 1)[0], partitions))
                if partition not in kept:
                    del store[key]
                    if table is self.ledgers:
                        dropped.add(text)
        return dropped

    @classmethod
    def declare(cls, app: faust.App, partitions: int) -> TrackerTables:
        def table(name: str, help_text: str) -> TableT:
            return app.Table(name, default=None, partitions=partitions, help=help_text)

        ledgers = LedgerTable(app, name="ledgers", default=None, beacon=app.tables.beacon,
                              partitions=partitions,
                              help="Monthly buckets and pending flows per pair.")
        roots = RootTable(app, name="roots", default=None, beacon=app.tables.beacon,
                          partitions=partitions,
                          help="Per original event: duplicates and corrections.")
        app.tables.add(ledgers)
        app.tables.add(roots)
        return cls(ledgers, roots,
                   table("references", "FX rates and commitments, one copy per partition."))


def owned_partitions(app: faust.App, tables: TrackerTables, *,
                     standby: bool = False) -> set[int]:
    """Partitions whose state this worker holds as their active owner (and, with
    ``standby``, as a standby replica), by the assignment of the ledgers' changelog."""
    topic = tables.ledgers.changelog_topic.get_topic_name()
    assignor = app.assignor
    tps = {*assignor.assigned_actives(), *(assignor.assigned_standbys() if standby else ())}
    return {tp.partition for tp in tps if tp.topic == topic}


def reference_key(partition: int) -> str:
    return f"p{partition}"


def partition_reference(tables: TrackerTables, partition: int) -> JSON:
    """The reference data (FX rates, commitments) as folded on one partition."""
    return tables.references.get(reference_key(partition)) or empty_reference()


def local_reference(tables: TrackerTables) -> JSON:
    """Any local copy of the reference data (all partitions hold the same)."""
    for key, value in tables.references.items():
        if value is not None and str(key).startswith("p"):
            return value
    return empty_reference()


_MISSING = object()


@dataclass
class BatchStore:
    """The fold's ``Store`` over the tables for one partition. It keeps the writes of a
    batch and sends each touched key to its changelog once, at ``flush``: one changelog
    record per key per batch instead of one per event (the fold's cost is dominated by
    serialising table values).

    Writes go to the table's store and changelog directly with the batch's partition, as
    Faust's ``Table.__setitem__`` would; it cannot be used here because it takes the
    partition from the *current* event, which ``take_events`` does not set per event.
    """

    tables: TrackerTables
    partition: int
    partitions: int
    staged: dict[tuple[str, str], JSON] = field(default_factory=dict)
    # Ledgers and months this batch copied: nobody else sees them before ``flush``.
    owned: Owned = field(default_factory=dict)

    @property
    def _reference_key(self) -> str:
        return reference_key(self.partition)

    def _get(self, table: TableT, key: str) -> JSON | None:
        value = self.staged.get((table.name, key), _MISSING)
        return table.get(key) if value is _MISSING else value  # type: ignore[return-value]

    def _set(self, table: TableT, key: str, value: JSON) -> None:
        if value is not self._get(table, key):
            self.staged[(table.name, key)] = value

    def reference(self) -> JSON:
        return self._get(self.tables.references, self._reference_key) or empty_reference()

    def set_reference(self, value: JSON) -> None:
        self._set(self.tables.references, self._reference_key, value)

    def ledger(self, pair: str) -> JSON | None:
        return self._get(self.tables.ledgers, pair)

    def set_ledger(self, pair: str, value: JSON) -> None:
        self._set(self.tables.ledgers, pair, value)

    def root(self, key: str) -> JSON | None:
        return self._get(self.tables.roots, key)

    def set_root(self, key: str, value: JSON) -> None:
        self._set(self.tables.roots, key, value)

    def pairs_with_pending(self) -> Iterator[str]:
        pairs = {pair for (name, pair) in self.staged if name == self.tables.ledgers.name}
        pairs |= set(self.tables.ledgers.keys())
        return (pair for pair in sorted(pairs)
                if (ledger := self.ledger(pair)) and ledger["pending"]
                and partition_of(pair, self.partitions) == self.partition)

    async def flush(self, record_offset: int, producer: AIOKafkaProducer) -> int:
        """Write every staged value to its table and send its changelog records; returns
        how many values. ``record_offset``: the ledger-input record folded, which names
        the root groups. The records go out as record batches, one changelog partition
        each (a ledger's pieces in order), and are not awaited: Faust flushes the producer
        before it commits the record's offset."""
        ledgers, roots = self.tables.ledgers, self.tables.roots
        tables = {t.name: t for t in (ledgers, roots, self.tables.references)}
        records: dict[str, list[tuple[str, JSON]]] = {name: [] for name in tables}
        root_groups: dict[str, JSON] = {}
        for (name, key), value in self.staged.items():
            table = tables[name]
            if table is ledgers:
                records[name] += [(piece_key(key, month), piece) for month, piece
                                  in ledger_pieces(table.data.get(key), value)]
            elif table is roots:
                pair = key.split("/", 1)[0]
                root_groups.setdefault(root_group_key(pair, record_offset), {})[key] = value
            else:
                records[name].append((key, value))
            table.data[key] = value
        records[roots.name] += root_groups.items()
        for name, pieces in records.items():
            if pieces:
                await send_records(producer, tables[name].changelog_topic.get_topic_name(),
                                   self.partition, pieces)
        written = len(self.staged)
        self.staged.clear()
        return written


async def send_records(producer: AIOKafkaProducer, topic: str, partition: int,
                       records: list[tuple[str, JSON]]) -> None:
    """Changelog records encoded as Faust's JSON codec would, in as few record batches as
    the producer's batch size allows."""
    batch = producer.create_batch()
    for key, value in records:
        encoded = (orjson.dumps(key), orjson.dumps(value))
        if batch.append(key=encoded[0], value=encoded[1], timestamp=None) is None:
            await producer.send_batch(batch, topic, partition=partition)
            batch = producer.create_batch()  # an empty batch takes a record of any size
            batch.append(key=encoded[0], value=encoded[1], timestamp=None)
    await producer.send_batch(batch, topic, partition=partition)
