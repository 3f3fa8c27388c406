"""Ledgers saved at a clean stop: the files, and the bookkeeping saved with them."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.tracker.ledger_snapshots import (
    PartitionSnapshot,
    load,
    save,
    saved_offsets,
    snapshot_path,
)
from services.tracker.tables import LatestUpdates

MONTHS = ("2024-01", "2024-02", "2024-03")
PAIRS = ("IN-RU", "AE-IN")


def test_a_snapshot_reads_back_as_saved_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    snapshot = PartitionSnapshot(41, {"IN-RU": {"months": {"2024-01": {"a": "1.50"}}}},
                                 {"IN-RU": {"chains": {}, "holds": {}, "last": 40, "owed": []}})
    path = save(tmp_path / "ledgers", 3, snapshot)
    assert path == snapshot_path(tmp_path / "ledgers", 3)
    assert load(path) == snapshot
    assert [p.name for p in (tmp_path / "ledgers").iterdir()] == [path.name]
    assert saved_offsets(tmp_path / "ledgers") == {3: (path, 41)}


def test_a_newer_snapshot_replaces_the_older(tmp_path: Path) -> None:
    save(tmp_path, 0, PartitionSnapshot(5, {}, {}))
    save(tmp_path, 0, PartitionSnapshot(9, {"IN-RU": {}}, {}))
    assert load(snapshot_path(tmp_path, 0)) == PartitionSnapshot(9, {"IN-RU": {}}, {})


@pytest.mark.parametrize("content", [b"", b"{\"offset\": 3}", b"3\n{\"ledgers\": {}", b"3\n[]",
                                     b"3\n{\"ledgers\": {}}", b"x\n{}"])
def test_an_unreadable_snapshot_is_ignored_with_a_warning(
        tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture) -> None:
    path = snapshot_path(tmp_path, 2)
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert load(path) is None
    assert "read from their whole changelog" in caplog.text


@pytest.mark.parametrize("content", [b"", b"{\"offset\": 3}", b"x\n{}"])
def test_a_snapshot_without_an_offset_is_not_listed(tmp_path: Path, content: bytes) -> None:
    snapshot_path(tmp_path, 2).write_bytes(content)
    assert saved_offsets(tmp_path) == {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PAIRS), st.integers(0, 30),
                          st.lists(st.sampled_from(MONTHS), max_size=2),
                          st.lists(st.sampled_from(MONTHS), max_size=2)), max_size=15),
       st.sets(st.sampled_from(PAIRS)))
def test_the_bookkeeping_of_the_pairs_saved_reads_back_through_json(updates, saved_pairs):
    """Restored from its JSON, the bookkeeping of the pairs saved supersedes the same
    updates as the original when the next ones come."""
    latest = LatestUpdates()
    for pair, offset, whole, partial in sorted(updates, key=lambda update: update[1]):
        latest.add(pair, offset, whole, partial)
    latest.owed.setdefault("IN-RU", set()).add(3)
    restored = LatestUpdates()
    restored.restore(orjson.loads(orjson.dumps(latest.to_json(saved_pairs))))
    for pieces in ("chains", "holds", "last", "owed"):
        original = {pair: value for pair, value in getattr(latest, pieces).items()
                    if pair in saved_pairs}
        assert {pair: value for pair, value in getattr(restored, pieces).items()
                if value or pieces == "last"} == {pair: value for pair, value
                                                   in original.items() if value
                                                   or pieces == "last"}
    for pair in saved_pairs:
        assert restored.add(pair, 99, list(MONTHS)) == latest.add(pair, 99, list(MONTHS))
