"""The fold counts each ledger-input record in its metrics once per process."""

from __future__ import annotations

import logging

import pytest

from services.tracker.agents import CountedRecords


def test_a_record_is_counted_the_first_time_it_is_folded_only() -> None:
    counted = CountedRecords()
    assert [counted.first_time(0, offset) for offset in (0, 1, 2)] == [True, True, True]
    # Resumed from an earlier commit: 1 and 2 were counted, 3 is new.
    assert [counted.first_time(0, offset) for offset in (1, 2, 3)] == [False, False, True]


def test_partitions_are_counted_apart() -> None:
    counted = CountedRecords()
    assert counted.first_time(0, 5)
    assert counted.first_time(1, 2)
    assert not counted.first_time(0, 5)
    assert counted.first_time(1, 3)


def test_a_replay_is_logged_once_per_run(caplog: pytest.LogCaptureFixture) -> None:
    counted = CountedRecords()
    for offset in range(5):
        counted.first_time(3, offset)
    with caplog.at_level(logging.INFO, logger="services.tracker.agents"):
        for offset in (2, 3, 4, 5, 1, 2):
            counted.first_time(3, offset)
    replays = [record.getMessage() for record in caplog.records]
    assert replays == [
        "ledger-input[3]: folding again from offset 2 (folded up to 4 here before); "
        "those records are not counted again",
        "ledger-input[3]: folding again from offset 1 (folded up to 5 here before); "
        "those records are not counted again"]
