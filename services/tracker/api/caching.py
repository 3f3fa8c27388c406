"""Validators for polling clients (RFC 9110, sections 8.8.3 and 13.1.2). A view's entity
tag is a digest of what its answer is a function of: the view, the parsed query, the
negotiated representation and the positions (in the ledger-input log) of the table values
it reads - so it is known before the answer is built, and a dashboard polling an unchanged
view gets a 304 for the price of reading a few positions."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from aiohttp import web

# Part of every tag: a release that changes a representation must not match old tags.
REPRESENTATION = 1


def entity_tag(*parts: Any) -> str:
    digest = hashlib.blake2b(orjson.dumps([REPRESENTATION, *parts], default=str),
                             digest_size=12).hexdigest()
    return f'"{digest}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """If-None-Match compares weakly: ``W/"x"`` matches ``"x"``; ``*`` matches any."""
    if not if_none_match:
        return False
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return "*" in candidates or tag in candidates


def not_modified(tag: str) -> web.Response:
    response = web.Response(status=304)
    response.headers["ETag"] = tag
    response.headers["Vary"] = "Accept"
    return response
