"""The paging law without a broker: items spread over workers, each worker building its
page with ``by_group`` and ``page_of`` as the views do, a gatherer merging them - walking
the next cursors yields every item once, in order, whatever the limit and the spread."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.tracker.api.paging import Key, by_group, decode_cursor, encode_cursor, page_of

PAIRS = ["AE-IN", "BR-ZA", "CN-RU", "DE-FR", "IN-RU", "JP-US"]

Item = tuple[str, str]
Groups = dict[str, list[Item]]


def worker_page(groups: Groups, after: Key | None, limit: int) -> tuple[list[Item], bool]:
    items = by_group(list(groups.items()), after, limit, lambda _, rows: rows, lambda i: i)
    page, last = page_of(items, lambda i: i, limit, after, more_elsewhere=False)
    return page, last is not None


def gathered_page(workers: list[Groups], after: Key | None, limit: int
                  ) -> tuple[list[Item], Key | None]:
    local, *peers = workers
    answers = [worker_page(groups, after, limit) for groups in peers]
    items = by_group(list(local.items()), after, limit, lambda _, rows: rows, lambda i: i)
    return page_of(items + [i for page, _ in answers for i in page], lambda i: i, limit,
                   after, any(more for _, more in answers))


@settings(max_examples=300, deadline=None)
@given(rows=st.dictionaries(st.sampled_from(PAIRS),
                            st.sets(st.sampled_from(["2023", "2024", "2024-01", "FY2023-24"]),
                                    min_size=1), min_size=1),
       owners=st.lists(st.integers(0, 2), min_size=len(PAIRS), max_size=len(PAIRS)),
       limit=st.integers(1, 6))
def test_walking_the_pages_yields_every_item_once_in_order(
        rows: dict[str, set[str]], owners: list[int], limit: int) -> None:
    workers: list[Groups] = [{}, {}, {}]
    for index, (pair, periods) in enumerate(sorted(rows.items())):
        workers[owners[index]][pair] = [(pair, period) for period in periods]
    everything = sorted((pair, period) for pair, periods in rows.items() for period in periods)
    walked: list[Item] = []
    after: Key | None = None
    while True:
        page, after = gathered_page(workers, after, limit)
        assert len(page) <= limit
        walked += page
        if after is None:
            break
        after = decode_cursor(encode_cursor(after))
    assert walked == everything


@pytest.mark.parametrize("text", ["", "abc", "W10", "e30", "WzFd", "!!!!", "A" * 3000])
def test_a_cursor_the_api_did_not_give_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor(text)
