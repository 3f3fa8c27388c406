"""A worker's list view read whole, as `tracker status` and `tracker reconcile` read it:
page after page, following each page's ``next`` link until the last (docs/http.md,
Paging)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


def every_item(url: str, path: str, params: Mapping[str, str] | None = None,
               timeout: float = 60.0) -> list[Any]:
    """Every item of the list view at ``path`` of the worker at ``url``. The next links
    carry the query, so ``params`` go with the first request only. Raises
    ``httpx.HTTPStatusError`` on an answer other than 200, ``httpx.HTTPError`` when the
    worker cannot be reached."""
    items: list[Any] = []
    with httpx.Client(base_url=url, timeout=timeout) as client:
        page = _page(client.get(path, params=params))
        items += page["items"]
        while page["next"] is not None:
            page = _page(client.get(page["next"]))
            items += page["items"]
    return items


def _page(answer: httpx.Response) -> dict[str, Any]:
    # raise_for_status lets 3xx through; a list view answers 200 or an error.
    if answer.status_code != 200:
        raise httpx.HTTPStatusError(f"{answer.status_code} from {answer.url}",
                                    request=answer.request, response=answer)
    body: dict[str, Any] = answer.json()
    return body
