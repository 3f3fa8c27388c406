"""The roots table on RocksDB, without a broker: a record's entries reach the disk only
once the broker has acknowledged them, always with the changelog offset recovery resumes
from, and the fold reads the entries still waiting before the disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from services.tracker.roots import RootTable


@pytest.fixture
def roots(tmp_path: Path) -> Iterator[RootTable]:
    app = faust.App("roots-test", datadir=str(tmp_path), autodiscover=False)
    table = RootTable(app, name="roots", default=None, partitions=2)
    yield table
    table.data._dbs.clear()  # closes the databases


def on_disk(roots: RootTable, partition: int, key: str) -> bytes | None:
    return roots.partition(partition).db.get(key.encode())


def persisted(roots: RootTable, partition: int) -> int | None:
    return roots.persisted_offset(TP(roots.changelog_topic.get_topic_name(), partition))


def changelog_record(partition: int, offset: int, entries: dict[str, Any]) -> Any:
    return SimpleNamespace(message=SimpleNamespace(partition=partition, offset=offset),
                           value=entries)


def test_entries_reach_the_disk_only_once_acknowledged(roots: RootTable) -> None:
    entries = {"AE-IN/e1": ["e1", 4, 0]}
    roots.stage(0, entries)
    assert roots.partition(0).get("AE-IN/e1") == ["e1", 4, 0], "read before acknowledged"
    assert on_disk(roots, 0, "AE-IN/e1") is None
    assert persisted(roots, 0) is None

    roots.acknowledged(0, entries, changelog_offset=41)
    assert on_disk(roots, 0, "AE-IN/e1") == b'["e1",4,0]'
    assert persisted(roots, 0) == 41
    assert roots.unacked[0] == {}
    assert roots.partition(0).get("AE-IN/e1") == ["e1", 4, 0], "read from the disk"
    assert roots.partition(1).get("AE-IN/e1") is None, "partitions are apart"


def test_an_acknowledgement_keeps_a_later_records_entry_waiting(roots: RootTable) -> None:
    first, second = {"IN-RU/e1": {"v": 1}}, {"IN-RU/e1": {"v": 2}}
    roots.stage(0, first)
    roots.stage(0, second)
    roots.acknowledged(0, first, changelog_offset=7)
    assert roots.partition(0).get("IN-RU/e1") == {"v": 2}
    roots.acknowledged(0, second, changelog_offset=8)
    assert on_disk(roots, 0, "IN-RU/e1") == b'{"v":2}'
    assert persisted(roots, 0) == 8


def test_recovery_writes_the_groups_expanded_and_where_it_stopped(roots: RootTable) -> None:
    roots.apply_changelog_batch([
        changelog_record(0, 3, {"AE-IN/a": [1], "AE-IN/b": [2]}),
        changelog_record(1, 9, {"DE-FR/c": [3]}),
        changelog_record(0, 4, {"AE-IN/a": [5]}),
    ])
    assert [on_disk(roots, 0, key) for key in ("AE-IN/a", "AE-IN/b")] == [b"[5]", b"[2]"]
    assert on_disk(roots, 1, "DE-FR/c") == b"[3]"
    assert (persisted(roots, 0), persisted(roots, 1)) == (4, 9)


def test_a_revoked_partition_keeps_its_disk_as_it_was(roots: RootTable) -> None:
    roots.partition(0)  # the fold opens its partition's database
    roots.acknowledged(0, {"AE-IN/a": [1]}, changelog_offset=2)
    topic = roots.changelog_topic.get_topic_name()
    roots.data.revoke_partitions(roots, {TP(topic, 0)})
    late = {"AE-IN/b": [2]}
    roots.stage(0, late)
    roots.acknowledged(0, late, changelog_offset=3)
    assert on_disk(roots, 0, "AE-IN/b") is None, "recovery reads it from the changelog"
    assert persisted(roots, 0) == 2
    roots.forget_partitions_except({1})
    assert 0 not in roots.unacked


def test_a_record_reads_an_entry_from_disk_once(roots: RootTable) -> None:
    roots.partition(0)
    roots.acknowledged(0, {"AE-IN/a": {"v": 1}}, changelog_offset=1)
    view = roots.partition(0)
    first = view.get("AE-IN/a")
    assert first == {"v": 1} and view.get("AE-IN/a") is first
    assert view.get("AE-IN/none") is None and "AE-IN/none" in view.read
