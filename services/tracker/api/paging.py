"""Pages of a list view. A cursor is the sort key of the last item a page held, encoded so
that clients treat it as opaque; the next page holds the items after it. Each worker
builds at most ``limit`` (plus one pair's) items in key order, and the merged page is
the first ``limit`` of them: bounded time and size however many pairs are tracked."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

import orjson

Key = tuple[str, ...]
Item = TypeVar("Item")
Group = TypeVar("Group")
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


def encode_cursor(key: Key) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).rstrip(b"=").decode()


def decode_cursor(text: object) -> Key:
    """ValueError unless ``text`` is a cursor this API gave."""
    if not isinstance(text, str) or len(text) > 2000:
        raise ValueError("not a cursor this API gave (use the next link of a page)")
    try:
        key = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise ValueError("not a cursor this API gave (use the next link of a page)") from None
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise ValueError("not a cursor this API gave (use the next link of a page)")
    return tuple(key)


def page_of(items: Sequence[Item], key: Callable[[Item], Key], limit: int,
            after: Key | None, more_elsewhere: bool) -> tuple[list[Item], Key | None]:
    """The first ``limit`` items after ``after``, and the cursor of the next page (None on
    the last). ``more_elsewhere``: a worker had more items than it sent. It sent ``limit``
    of them, so either one of those is cut from this page (and what it did not send sorts
    after the cut) or the page is exactly its items: either way nothing is skipped."""
    ordered = sorted((item for item in items if after is None or key(item) > after), key=key)
    page = ordered[:limit]
    more = len(ordered) > limit or more_elsewhere
    return page, key(page[-1]) if page and more else None


def by_group(groups: Sequence[tuple[str, Group]], after: Key | None, limit: int,
             items_of: Callable[[str, Group], list[Item]], key: Callable[[Item], Key]
             ) -> list[Item]:
    """The items after the cursor of a list whose key starts with the group's name (a
    pair), built group by group in order and no further than a page needs: more than
    ``limit`` of them, or all. Every item of a later group sorts after these."""
    items: list[Item] = []
    for name, group in sorted(groups, key=lambda named: named[0]):
        if after is not None and name < after[0]:
            continue
        if len(items) > limit:
            break
        items += [item for item in items_of(name, group) if after is None or key(item) > after]
    return items
