"""Faust tables holding the fold's state, and the per-partition view the fold steps use.

Each value is plain JSON. The fold may change a ledger in place, but every key it changes
is staged (``BatchStore``) and reaches the changelog when the record is flushed: a change
made behind the store's back would not. Ledgers are whole in memory and root entries on
disk (``roots``), and both go to their changelogs grouped: one record per pair and folded
ledger-input record (``pair#offset``), holding what that record changed for the pair. A
batch then costs a changelog record per pair it touched, not one per event or per month,
and so does recovery; a record folded again after a crash rewrites the same keys.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from faust.types import TP, EventT, TableT

from services.tracker.changelog_writes import OrderedWrites, Record
from services.tracker.compat import note_key_partition, stored_values
from services.tracker.domain.ledger import (
    JSON,
    RootEntry,
    Touched,
    is_partial,
    ledger_update,
    with_update,
)
from services.tracker.domain.reference import empty_reference
from services.tracker.ledger_snapshots import PartitionSnapshot, load, save, snapshot_path
from services.tracker.partitioning import partition_of
from services.tracker.roots import NAME as ROOTS
from services.tracker.roots import PartitionRoots, RootTable

log = logging.getLogger(__name__)

LEDGERS = "ledgers"  # the ledger table's name, and its saved partitions' directory
GROUP_SEPARATOR = "#"  # changelog key of a pair's group: "AE-IN#4017"


def group_key(pair: str, record_offset: int) -> str:
    return f"{pair}{GROUP_SEPARATOR}{record_offset}"


def split_group_key(key: str) -> tuple[str, int]:
    pair, _, offset = key.partition(GROUP_SEPARATOR)
    return pair, int(offset)


# The ledger changelog stays small only if the broker compacts it: superseded updates are
# deleted by tombstones, but compaction never touches a partition's active segment, which
# rolls at 1 GiB or after 7 days by default - until then a restart reads every update of
# the week. Rolled at least hourly, it holds at most an hour of updates besides the
# compacted rest. Smaller segments than the broker's would bound it by size as well, but
# keep its cleaner busier (docs/performance.md, "The roots on disk").
LEDGER_CHANGELOG = {"segment.ms": str(60 * 60 * 1000)}

# How many partial pieces (just the buckets a record changed) a month may have in the
# changelog before its next write is whole: recovery reads at most this many records more
# per month, and a month is written whole once per this many records that change it.
MAX_PARTIAL_PIECES = 8


@dataclass
class LatestUpdates:
    """Per pair, which ledger updates (by record offset) the changelog still needs.

    A month needs its latest whole piece and the partial pieces written after it (see
    ``ledger_update``). An update none of whose months needs it any more, and which is
    not the pair's last (every update carries the head), is superseded: the ledger
    changelog deletes it with a tombstone, so compaction keeps a few records per pair and
    month, as it would with a key per month."""

    # pair -> month -> the offsets of the month's pieces still needed, oldest first
    chains: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    holds: dict[str, dict[int, set[str]]] = field(default_factory=dict)  # offset -> months
    last: dict[str, int] = field(default_factory=dict)  # pair -> offset of its latest update
    owed: dict[str, set[int]] = field(default_factory=dict)  # pair -> tombstones owed

    def partial_pieces(self, pair: str, month: str) -> int:
        """How many pieces the month's next whole write would supersede."""
        return len(self.chains.get(pair, {}).get(month, ()))

    def add(self, pair: str, offset: int, whole: Iterable[str],
            partial: Iterable[str] = ()) -> list[int]:
        """Note an update; returns the offsets of the updates it supersedes."""
        chains = self.chains.setdefault(pair, {})
        holds = self.holds.setdefault(pair, {})
        held = holds.setdefault(offset, set())
        released: set[int] = set()
        for month in whole:
            for previous in chains.get(month, ()):
                if previous != offset:
                    holds[previous].discard(month)
                    released.add(previous)
            chains[month] = [offset]
            held.add(month)
        for month in partial:
            chain = chains.setdefault(month, [])
            if offset not in chain:
                chain.append(offset)
            held.add(month)
        # The update before this one may have held the head alone.
        released.update(old for old in (self.last.get(pair),) if old is not None)
        self.last[pair] = offset
        dead = sorted(old for old in released if old != offset and not holds.get(old, True))
        for old in dead:
            del holds[old]
        return dead

    def recovered(self, pair: str, offset: int, update: JSON | None) -> None:
        """Note an update (None: a tombstone) read back from the changelog. The updates it
        supersedes may have lost their tombstones to a crash: they are owed, and go with
        the pair's next update unless their tombstones turn up."""
        owed = self.owed.setdefault(pair, set())
        owed.discard(offset)  # deleted, or written again after it was superseded
        if update is not None:
            owed.update(self.add(pair, offset, *whole_and_partial(update)))

    def forget(self, pair: str) -> None:
        for pieces in (self.chains, self.holds, self.last, self.owed):
            pieces.pop(pair, None)

    def to_json(self, pairs: Iterable[str]) -> JSON:
        """What is known of ``pairs``, as JSON (``restore`` reads it back)."""
        return {pair: {"chains": self.chains.get(pair, {}),
                       "holds": {str(offset): sorted(months) for offset, months
                                 in self.holds.get(pair, {}).items()},
                       "last": self.last.get(pair),
                       "owed": sorted(self.owed.get(pair, ()))}
                for pair in pairs}

    def restore(self, saved: JSON) -> None:
        for pair, known in saved.items():
            self.chains[pair] = known["chains"]
            self.holds[pair] = {int(offset): set(months)
                                for offset, months in known["holds"].items()}
            if known["last"] is not None:
                self.last[pair] = known["last"]
            self.owed[pair] = set(known["owed"])


class LedgerTable(faust.Table):
    """A table of ledgers whose changelog holds ledger updates, put together on recovery,
    and saved per partition when the worker stops cleanly (``ledger_snapshots``)."""

    def __init__(self, *args: Any, snapshots: Path, partitions: int, **kwargs: Any) -> None:
        super().__init__(*args, partitions=partitions, **kwargs)
        self.latest = LatestUpdates()
        self.snapshots = snapshots  # the directory of the saved partitions
        self.partition_count = partitions
        # partition -> the last changelog offset the ledgers here reflect (read in
        # recovery, or written by the fold and acknowledged)
        self.through: dict[int, int] = {}
        # partition -> a loaded snapshot's offset, for recovery to start from (once)
        self.loaded: dict[int, int] = {}

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        store: Any = self.data
        for event in batch:
            update: JSON | None = event.value  # type: ignore[assignment]  # JSON-decoded
            pair, offset = split_group_key(str(event.key))
            self.latest.recovered(pair, offset, update)
            message = event.message
            self.reflects(message.partition, message.offset)
            if update is None:
                continue  # a superseded update's tombstone
            store[pair] = with_update(store.get(pair), pair, update)
            note_key_partition(store, pair, message.partition)

    def reflects(self, partition: int, changelog_offset: int) -> None:
        """The ledgers here reflect the partition's changelog up to ``changelog_offset``:
        read in recovery, or the first record of the last batch of a record's writes the
        broker acknowledged."""
        if self.through.get(partition, -1) < changelog_offset:
            self.through[partition] = changelog_offset

    async def on_rebalance(self, assigned: set[TP], revoked: set[TP],
                           newly_assigned: set[TP], generation_id: int = 0) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        topic = self.changelog_topic.get_topic_name()
        for tp in sorted(newly_assigned):
            if tp.topic == topic:
                self._load(tp.partition)

    def persisted_offset(self, tp: TP) -> int | None:
        """Where recovery starts reading a partition: a loaded snapshot's offset, asked
        once after it was loaded (later recoveries read from where the last ended)."""
        if tp.topic == self.changelog_topic.get_topic_name():
            return self.loaded.pop(tp.partition, None)
        return super().persisted_offset(tp)

    def _load(self, partition: int) -> None:
        snapshot = load(snapshot_path(self.snapshots, partition))
        if snapshot is None:
            return
        store: Any = self.data
        for pair, ledger in snapshot.ledgers.items():
            store[pair] = ledger
            note_key_partition(store, pair, partition)
        self.latest.restore(snapshot.latest)
        self.through[partition] = self.loaded[partition] = snapshot.offset
        log.info("Ledgers of partition %d loaded from %s (%d pair(s), changelog offset %d): "
                 "recovery reads the changelog from there", partition,
                 snapshot_path(self.snapshots, partition), len(snapshot.ledgers),
                 snapshot.offset)

    def forget_partition(self, partition: int) -> None:
        self.through.pop(partition, None)
        self.loaded.pop(partition, None)

    def save_snapshots(self, partitions: Iterable[int]) -> list[int]:
        """Save the ledgers of ``partitions``, which must be complete and whose every
        write the broker acknowledged; returns those saved."""
        ledgers = stored_values(self)
        by_partition: dict[int, list[str]] = {}
        for pair in ledgers:
            by_partition.setdefault(partition_of(pair, self.partition_count), []).append(pair)
        saved = []
        for partition in sorted(partitions):
            offset = self.through.get(partition)
            if offset is None:
                continue  # nothing read or written here: nothing to save
            pairs = by_partition.get(partition, [])
            save(self.snapshots, partition, PartitionSnapshot(
                offset, {pair: ledgers[pair] for pair in pairs}, self.latest.to_json(pairs)))
            saved.append(partition)
        return saved


def whole_and_partial(update: JSON) -> tuple[list[str], list[str]]:
    """The months a ledger update writes whole, and those it writes in part."""
    months: dict[bool, list[str]] = {False: [], True: []}
    for month, piece in update["months"].items():
        months[is_partial(piece)].append(month)
    return months[False], months[True]


@dataclass(frozen=True)
class TrackerTables:
    ledgers: LedgerTable  # pair -> ledger (buckets, pending flows, position)
    roots: RootTable  # "pair/root event id" -> what each event did to that flow
    references: TableT  # "p<partition>" -> FX rates and commitments, one copy each

    def drop_partitions_except(self, kept: set[int], partitions: int) -> set[str]:
        """Forget the keys of partitions another worker owns now (the in-memory store keeps
        what this worker wrote before the partition moved; the roots' store closes a
        revoked partition's database itself); returns the pairs dropped."""
        self.roots.forget_partitions_except(kept)
        dropped: set[str] = set()
        for table in (self.ledgers, self.references):
            store: Any = table.data
            for key in list(store.keys()):
                text = str(key)
                partition = (int(text[1:]) if table is self.references
                             else partition_of(text, partitions))
                if partition not in kept:
                    del store[key]
                    if table is self.ledgers:
                        dropped.add(text)
        for pair in dropped:
            self.ledgers.latest.forget(pair)
        for partition in range(partitions):
            if partition not in kept:
                self.ledgers.forget_partition(partition)
        return dropped

    @classmethod
    def declare(cls, app: faust.App, partitions: int) -> TrackerTables:
        def table(name: str, help_text: str) -> TableT:
            return app.Table(name, default=None, partitions=partitions, help=help_text)

        ledgers = LedgerTable(app, name=LEDGERS, default=None, beacon=app.tables.beacon,
                              partitions=partitions, extra_topic_configs=LEDGER_CHANGELOG,
                              snapshots=ledger_snapshot_dir(app),
                              help="Monthly buckets and pending flows per pair.")
        roots = RootTable(app, name=ROOTS, default=None, beacon=app.tables.beacon,
                          partitions=partitions,
                          help="Per original event: duplicates and corrections.")
        app.tables.add(ledgers)
        app.tables.add(roots)
        return cls(ledgers, roots,
                   table("references", "FX rates and commitments, one copy per partition."))


def ledger_snapshot_dir(app: faust.App) -> Path:
    """Where a worker saves its ledgers, beside the roots' databases."""
    return Path(app.conf.tabledir) / LEDGERS


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
    # Table values by (table, key): JSON objects, and root entries that may be lists
    # (``RootEntry``); the public methods say which. The ledgers and references are
    # read from their in-memory stores, the roots from ``roots``.
    staged: dict[tuple[str, str], Any] = field(default_factory=dict)
    # The tables' values are the fold's own: a record changes them in place, and its
    # writes to the changelog say which months it changed (``ledger_update``).
    in_place: bool = True
    # Per pair, the bucket keys this record changed, so its write holds just those.
    touched_keys: dict[str, Touched] = field(default_factory=dict)
    stored: dict[str, dict[str, Any]] = field(init=False)
    roots: PartitionRoots = field(init=False)
    ledgers_name: str = field(init=False)
    roots_name: str = field(init=False)
    references_name: str = field(init=False)

    def __post_init__(self) -> None:
        tables = self.tables
        self.stored = {table.name: stored_values(table)
                       for table in (tables.ledgers, tables.references)}
        self.roots = tables.roots.partition(self.partition)
        self.ledgers_name, self.roots_name, self.references_name = (
            table.name for table in (tables.ledgers, tables.roots, tables.references))

    def _get(self, name: str, key: str) -> Any:
        staged = self.staged.get((name, key), _MISSING)
        if staged is _MISSING:
            return self.stored[name].get(key)
        return staged

    def _set(self, name: str, key: str, value: Any) -> None:
        if value is not self._get(name, key):
            self.staged[(name, key)] = value

    def reference(self) -> JSON:
        return self._get(self.references_name, reference_key(self.partition)) or empty_reference()

    def set_reference(self, value: JSON) -> None:
        self._set(self.references_name, reference_key(self.partition), value)

    def ledger(self, pair: str) -> JSON | None:
        return self._get(self.ledgers_name, pair)

    def set_ledger(self, pair: str, value: JSON) -> None:
        # Changed in place, a ledger is the very object the table holds: staged whatever
        # its identity, and its write holds just the months this record changed.
        self.staged[(self.ledgers_name, pair)] = value

    def root(self, key: str) -> RootEntry | None:
        staged = self.staged.get((self.roots_name, key), _MISSING)
        return self.roots.get(key) if staged is _MISSING else staged

    def set_root(self, key: str, value: RootEntry) -> None:
        # An entry read from disk and returned unchanged by the fold (a duplicate, a
        # replayed position) is the object read; one read again after a later record's
        # flush would be equal, not the same.
        current = self.root(key)
        if value is not current and value != current:
            self.staged[(self.roots_name, key)] = value

    def touched(self, pair: str) -> Touched:
        return self.touched_keys.setdefault(pair, {})

    def pairs_with_pending(self) -> Iterator[str]:
        pairs = {pair for (name, pair) in self.staged if name == self.ledgers_name}
        pairs |= set(self.tables.ledgers.keys())
        return (pair for pair in sorted(pairs)
                if (ledger := self.ledger(pair)) and ledger["pending"]
                and partition_of(pair, self.partitions) == self.partition)

    async def flush(self, record_offset: int, writes: OrderedWrites) -> int:
        """Write every staged value to its table and hand its changelog records to
        ``writes``; returns how many values. ``record_offset``: the ledger-input record
        folded, which names the groups. The records go out as record batches, one
        changelog partition each: the roots at once, the ledgers once the broker has the
        roots, a reference once it has both (see ``OrderedWrites``). The root entries
        reach their database once the broker has them (see ``roots``)."""
        tables, partition = self.tables, self.partition
        ledgers, roots, references = tables.ledgers, tables.roots, tables.references
        ledgers_name, roots_name = self.ledgers_name, self.roots_name
        records: dict[str, list[Record]] = {ledgers_name: [], self.references_name: []}
        root_entries: dict[str, RootEntry] = {}
        roots_by_pair: dict[str, dict[str, RootEntry]] = {}
        latest, stored = ledgers.latest, self.stored
        for (name, key), value in self.staged.items():
            if name == roots_name:
                root_entries[key] = value
                pair = key[:key.index("/")]
                group = roots_by_pair.get(pair)
                if group is None:
                    group = roots_by_pair[pair] = {}
                group[key] = value
                continue
            if name == ledgers_name:
                records[name] += ledger_records(latest, key, value, self.touched(key),
                                                record_offset)
            else:
                records[name].append((key, value))
            stored[name][key] = value
        roots.stage(partition, root_entries)
        root_records: list[Record] = [(group_key(pair, record_offset), group)
                                      for pair, group in roots_by_pair.items()]

        def roots_acknowledged(changelog_offset: int) -> None:
            roots.acknowledged(partition, root_entries, changelog_offset)

        def ledgers_acknowledged(changelog_offset: int) -> None:
            ledgers.reflects(partition, changelog_offset)

        def topic(table: TableT) -> str:
            return table.changelog_topic.get_topic_name()

        await writes.write(partition, (topic(roots), root_records),
                           (topic(ledgers), records[ledgers_name]),
                           (topic(references), records[self.references_name]),
                           roots_acknowledged=roots_acknowledged,
                           ledgers_acknowledged=ledgers_acknowledged)
        written = len(self.staged)
        self.staged.clear()
        self.touched_keys.clear()
        return written


def ledger_records(latest: LatestUpdates, pair: str, ledger: JSON, touched: Touched,
                   record_offset: int, max_partial: int = MAX_PARTIAL_PIECES) -> list[Record]:
    """The ledger changelog records that store what one ledger-input record changed in a
    pair's ledger: its update (months it touched in part, where their chains allow, the
    others whole), then a tombstone for each update that one supersedes."""
    partial = {month: keys for month, keys in touched.items()
               if keys is not None and latest.partial_pieces(pair, month) < max_partial}
    update = ledger_update(ledger, since=(record_offset,), partial=partial)
    dead = {*latest.add(pair, record_offset, *whole_and_partial(update)),
            *latest.owed.pop(pair, ())}
    dead.discard(record_offset)
    return [(group_key(pair, record_offset), update),
            *((group_key(pair, offset), None) for offset in sorted(dead))]
