"""Which ledger updates a changelog still needs: each month's latest whole piece and the
partial ones after it, and the head."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.tracker.tables import LatestUpdates, group_key, split_group_key

MONTHS = ("2024-01", "2024-02", "2024-03", "2024-04")


def test_an_update_is_superseded_once_later_ones_hold_all_its_months():
    latest = LatestUpdates()
    assert latest.add("IN-RU", 10, ["2024-01", "2024-02"]) == []
    assert latest.add("IN-RU", 11, ["2024-01"]) == []  # 10 still holds February
    assert latest.add("IN-RU", 12, ["2024-02"]) == [10]
    assert latest.add("IN-RU", 13, []) == [], "11 holds January, 12 February"
    assert latest.add("AE-IN", 13, ["2024-01"]) == [], "pairs are apart"


def test_a_head_only_update_goes_with_the_next_one():
    latest = LatestUpdates()
    latest.add("IN-RU", 1, ["2024-01"])
    latest.add("IN-RU", 2, [])
    assert latest.add("IN-RU", 3, []) == [2]


def test_an_update_written_again_after_a_crash_is_not_its_own_successor():
    latest = LatestUpdates()
    latest.add("IN-RU", 5, ["2024-01"])
    assert latest.add("IN-RU", 5, ["2024-01"]) == []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(MONTHS), max_size=3), min_size=1, max_size=12))
def test_the_updates_kept_rebuild_every_month_and_the_head(updates):
    """Replaying only the updates not deleted gives every month's latest update, and the
    last update (the head) is never deleted."""
    latest = LatestUpdates()
    deleted: set[int] = set()
    for offset, months in enumerate(updates):
        deleted.update(latest.add("IN-RU", offset, months))
    kept = [offset for offset in range(len(updates)) if offset not in deleted]
    assert kept[-1] == len(updates) - 1
    newest = {month: offset for offset, months in enumerate(updates) for month in months}
    rebuilt = {month: offset for offset in kept for month in updates[offset]}
    assert rebuilt == newest


def test_partial_pieces_are_kept_until_a_whole_piece_of_their_month_follows():
    latest = LatestUpdates()
    assert latest.add("IN-RU", 1, ["2024-01"]) == []
    assert latest.add("IN-RU", 2, [], partial=["2024-01"]) == []
    assert latest.add("IN-RU", 3, [], partial=["2024-01"]) == [], "1 and 2 still needed"
    assert latest.partial_pieces("IN-RU", "2024-01") == 3
    assert sorted(latest.add("IN-RU", 4, ["2024-01"])) == [1, 2, 3]
    assert latest.partial_pieces("IN-RU", "2024-01") == 1


def test_a_month_written_in_part_after_a_crash_keeps_its_chain():
    latest = LatestUpdates()
    latest.add("IN-RU", 1, ["2024-01"])
    latest.add("IN-RU", 2, [], partial=["2024-01"])
    assert latest.add("IN-RU", 2, [], partial=["2024-01"]) == [], "written again"
    assert latest.partial_pieces("IN-RU", "2024-01") == 2


def test_group_keys_name_the_pair_and_the_record():
    assert split_group_key(group_key("AE-IN", 4017)) == ("AE-IN", 4017)
