"""Shaping the views' answers: an entity tag and its 304, a page of a list view with its
``next`` link, an explanation in the three representations, and errors as JSON - on top
of ``render`` (JSON, CSV, HTML), ``caching`` and ``paging``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel

from services.tracker.api import models
from services.tracker.api.caching import entity_tag, matches, not_modified
from services.tracker.api.negotiation import Kind
from services.tracker.api.paging import Key, encode_cursor, page_of
from services.tracker.api.params import ListQuery, ViewQuery
from services.tracker.domain.ledger import JSON
from services.tracker.render import Row, error_response, respond, to_html_table

Item = TypeVar("Item", bound=BaseModel)


def answer_tag(request: web.Request, query: ViewQuery, kind: Kind,
               ledgers: list[tuple[str, JSON]], reference: Sequence[int] | None,
               *more: Any) -> str:
    """The entity tag of an answer built from ``ledgers`` and the reference data (at
    position ``reference``; None before any). A ledger's head position moves with every
    record applied to the pair."""
    return entity_tag(request.path, query.model_dump(mode="json"), kind,
                      [(key, ledger["position"]) for key, ledger in ledgers],
                      reference, *more)


def unchanged(request: web.Request, tag: str) -> web.Response | None:
    """A 304 when the client's ``If-None-Match`` names ``tag``."""
    return not_modified(tag) if matches(request.headers.get("If-None-Match"), tag) else None


def tagged(response: web.Response, tag: str) -> web.Response:
    response.headers["ETag"] = tag
    return response


def table(items: Sequence[BaseModel]) -> list[Row]:
    """Rows for CSV and HTML, with every figure as the JSON body has it."""
    return [item.model_dump(mode="json") for item in items]


def list_page(request: web.Request, query: ListQuery, kind: Kind, tag: str,
              items: Callable[[], list[Item]], key: Callable[[Item], Key],
              more_elsewhere: bool, title: str,
              body: type[models.Totals | models.Shares | models.Commitments],
              readable: Callable[[list[Row]], list[Row]]) -> web.Response:
    """One page of a list view, from ``items`` (built only when the client's tag is
    stale): the page, its ``next`` link (in the body and, for CSV and HTML too, whose
    bodies cannot carry it, the ``Link`` header) and its tag."""
    if (answer := unchanged(request, tag)) is not None:
        return answer
    page, last = page_of(items(), key, query.limit, query.cursor, more_elsewhere)
    link = str(request.rel_url.update_query(cursor=encode_cursor(last))) if last else None
    payload = body(items=page, count=len(page), as_of=query.as_of, next=link)
    rows = table(page)
    response = respond(kind, title, payload, rows, lambda: to_html_table(readable(rows)))
    if link:
        response.headers["Link"] = f'<{link}>; rel="next"'
    return tagged(response, tag)


def explained(kind: Kind, title: str, report: models.Explanation) -> web.Response:
    """An explanation: its summary, events by topic, and a table for each list in it."""
    data = report.model_dump(mode="json")
    sections = [(name.replace("_", " "), data[name]) for name in
                ("largest", "hidden_by_mirror_rule", "corrections", "duplicates_ignored",
                 "pending_fx")]
    summary = {k: v for k, v in data.items() if not isinstance(v, list | dict)}
    flat = [{"topic": t, "events": n} for t, n in data["events_by_topic"].items()]

    def readable() -> str:
        parts = [to_html_table([summary]), "<h2>events by topic</h2>", to_html_table(flat)]
        for name, rows in sections:
            parts += [f"<h2>{name}</h2>", to_html_table([_flatten(row) for row in rows])]
        return "\n".join(parts)

    return respond(kind, title, report, [summary], readable)


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    return {k: orjson.dumps(v).decode() if isinstance(v, list | dict) else v
            for k, v in row.items()}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Errors raised by aiohttp itself (no route matched, wrong method) get the same JSON
    body as the views' errors."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or error.content_type == "application/json":
            raise
        return error_response(f"{error.reason}: {request.path}", error.status)
