"""The roots table: a root entry per original event, kept on disk in RocksDB.

Root entries grow with the history (one per event ever folded), so they are not held in
memory: each partition's entries live in a RocksDB database under the worker's data
directory, through faust-streaming's RocksDB store. That store keeps, with the entries,
the offset of the changelog record they were read or written up to, and Faust's recovery
reads the changelog from there: a restart with its data directory reads the changelog's
tail, not its history, and a worker's memory no longer grows with the events it folded.

The tracker writes the entries itself, grouped as the changelog holds them (see
``tables``), so it also keeps that offset itself, in the same write batch as the entries:

- in recovery, for each batch of changelog records read;
- in the fold, once the broker has acknowledged a record's root writes. Until then its
  entries wait in ``unacked``, which the fold reads before the database: the database
  must never hold an entry that its changelog may lack, or a record folded again after a
  crash would find its events already recorded here and skip them (see
  ``changelog_writes``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.types import EventT
from rocksdict import AccessType, Options, Rdict, WriteBatch

from services.tracker.compat import open_partition_db, partition_db, persisted_offset_key
from services.tracker.domain.ledger import JSON, RootEntry

log = logging.getLogger(__name__)

NAME = "roots"

MiB = 1024 * 1024
# Per partition database. Faust's defaults (a 2 GiB block cache, three 64 MiB write
# buffers, 3 bloom bits per key) suit one large table per machine; the fold mostly asks
# for keys that are not there (a new event's), which a filter of 10 bits per key answers
# without reading a block about 99% of the time.
STORE_OPTIONS: dict[str, Any] = {
    "block_cache_size": 16 * MiB,
    "write_buffer_size": 16 * MiB,
    "max_write_buffer_number": 2,
    "bloom_filter_size": 10,
}


class RootTable(faust.Table):
    """Root entries, a key each on disk, grouped in the changelog (see the module)."""

    def __init__(self, app: faust.App, *, name: str, **kwargs: Any) -> None:
        # With the store's URL as scheme alone ("rocksdb://"), a table would silently get
        # the app's store instead: yarl reads it as an empty, false URL, and Faust falls
        # back on a false one (robinhood/faust#564, never merged). The path names the
        # databases, as Faust's default would.
        super().__init__(app, name=name, store=f"rocksdb:{name}",
                         options=dict(STORE_OPTIONS), **kwargs)
        # partition -> key -> entry, for records whose root writes the broker has not
        # acknowledged yet
        self.unacked: dict[int, dict[str, RootEntry]] = {}

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        writes: dict[int, WriteBatch] = {}
        last: dict[int, int] = {}
        for event in batch:
            message = event.message
            partition = message.partition
            write = writes.get(partition)
            if write is None:
                write = writes[partition] = WriteBatch(raw_mode=True)
            entries: JSON | None = event.value  # type: ignore[assignment]  # JSON-decoded
            for key, entry in (entries or {}).items():
                write.put(key.encode(), orjson.dumps(entry))
            last[partition] = message.offset
        for partition, write in writes.items():
            self._write(partition_db(self.data, partition), write, last[partition])

    def partition(self, partition: int) -> PartitionRoots:
        """The entries of one partition, as the fold reads them."""
        return PartitionRoots(self.unacked.setdefault(partition, {}),
                              partition_db(self.data, partition))

    def stage(self, partition: int, entries: dict[str, RootEntry]) -> None:
        """Entries a record wrote, whose changelog records are on their way."""
        self.unacked.setdefault(partition, {}).update(entries)

    def acknowledged(self, partition: int, entries: dict[str, RootEntry],
                     changelog_offset: int) -> None:
        """The broker has a record's root writes, the last of them in a record batch
        starting at ``changelog_offset``: the entries go to disk, with that offset as
        where recovery starts (it reads the batch again, which rewrites the same
        entries). A partition revoked meanwhile is skipped: its database stays where it
        was, and recovery reads these entries from the changelog if it comes back."""
        db = open_partition_db(self.data, partition)
        if db is not None:
            write = WriteBatch(raw_mode=True)
            for key, entry in entries.items():
                write.put(key.encode(), orjson.dumps(entry))
            self._write(db, write, changelog_offset)
        waiting = self.unacked.get(partition, {})
        for key, entry in entries.items():
            if waiting.get(key) is entry:  # not replaced by a later record's entry
                del waiting[key]

    def forget_partitions_except(self, kept: set[int]) -> None:
        for partition in [p for p in self.unacked if p not in kept]:
            del self.unacked[partition]

    def _write(self, db: Rdict, write: WriteBatch, offset: int) -> None:
        write.put(persisted_offset_key(), str(offset).encode())
        db.write(write)


def saved_offsets(faust_data_dir: Path) -> dict[int, tuple[Path, int]]:
    """partition -> (path, persisted offset) of the roots databases under a worker's Faust
    data directory that hold one."""
    found = {}
    for path in sorted(faust_data_dir.glob(f"**/{NAME}-*.db")):
        offset = _persisted_offset(path)
        if offset is not None:
            found[int(path.stem.rsplit("-", 1)[1])] = (path, offset)
    return found


def _persisted_offset(path: Path) -> int | None:
    db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
    try:
        offset = db.get(persisted_offset_key())
    finally:
        db.close()
    return None if offset is None else int(offset)


@dataclass(frozen=True)
class PartitionRoots:
    """One record's view of a partition's entries. What it read from disk it keeps: the
    fold asks for an entry again when it sets it, and nothing writes the disk meanwhile
    (a record is folded without a pause until its flush)."""

    unacked: dict[str, RootEntry]
    db: Rdict
    read: dict[str, RootEntry | None] = field(default_factory=dict)

    def get(self, key: str) -> RootEntry | None:
        entry = self.unacked.get(key)
        if entry is not None:
            return entry
        read = self.read
        if key in read:
            return read[key]
        stored = self.db.get(key.encode())
        entry = read[key] = None if stored is None else orjson.loads(stored)
        return entry
