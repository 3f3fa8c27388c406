"""The ledgers of a partition saved when the worker stops cleanly, so that the next worker
on the same data directory reads only the tail of the ledger changelog.

The ledgers are held in memory, and a restart otherwise rebuilds them from their whole
changelog: an hour of updates besides the compacted rest, hundreds of megabytes once a
million events are behind it. A snapshot holds a partition's ledgers, the bookkeeping of
which updates supersede which (``LatestUpdates``), and the changelog offset they reflect
at least. Recovery then reads the changelog from that offset: each update there writes
whole months or the buckets it changed, so one applied again over a snapshot that
already holds it changes nothing.

A snapshot is saved only when the fold stopped between two records and the broker has
acknowledged every changelog write; it is written to a temporary file and renamed, so a
crash never leaves half of one. One older than the changelog (the topic recreated) is
removed before the worker starts, as stale roots databases are (``local_state``).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from services.tracker.domain.ledger import JSON

log = logging.getLogger(__name__)

SUFFIX = ".ledgers.json"


@dataclass(frozen=True)
class PartitionSnapshot:
    offset: int  # every ledger changelog record up to this one is reflected
    ledgers: dict[str, JSON]  # pair -> ledger
    latest: JSON  # LatestUpdates of these pairs (``LatestUpdates.to_json``)


def snapshot_path(directory: Path, partition: int) -> Path:
    return directory / f"{partition}{SUFFIX}"


def save(directory: Path, partition: int, snapshot: PartitionSnapshot) -> Path:
    """Write a partition's snapshot atomically (temporary file, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = snapshot_path(directory, partition)
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as out:
        # The offset on a line of its own: the check before start reads just that.
        out.write(b"%d\n" % snapshot.offset)
        out.write(orjson.dumps({"ledgers": snapshot.ledgers, "latest": snapshot.latest}))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    return path


def load(path: Path) -> PartitionSnapshot | None:
    """A saved snapshot; None (and a warning) if it cannot be read, and then recovery
    reads the whole changelog as it would without one."""
    try:
        offset, _, rest = path.read_bytes().partition(b"\n")
        saved = orjson.loads(rest)
        return PartitionSnapshot(int(offset), saved["ledgers"], saved["latest"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        _unreadable(path, error)
        return None


def saved_offsets(directory: Path) -> dict[int, tuple[Path, int]]:
    """partition -> (path, offset) of every snapshot in ``directory`` that names one."""
    found = {}
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        try:
            with path.open("rb") as saved:
                found[int(path.name.removesuffix(SUFFIX))] = (path, int(saved.readline()))
        except (OSError, ValueError) as error:
            _unreadable(path, error)
    return found


def _unreadable(path: Path, error: Exception) -> None:
    log.warning("Ignoring the ledger snapshot %s (%r): the partition's ledgers are read "
                "from their whole changelog", path, error)
