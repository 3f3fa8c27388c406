"""Which representation to send, as HTTP says (RFC 9110, sections 12.5.1 and 12.4.2):
``?format=`` names one explicitly; otherwise the ``Accept`` header's media ranges are
weighed by their q-values, the most specific range matching a type giving its weight.
Nothing acceptable is a 406 - answered in JSON, whatever was asked for."""

from __future__ import annotations

from typing import Literal

from services.tracker.render import BadQuery

Kind = Literal["json", "html", "csv"]
# Order breaks ties between equal q-values: `*/*` and a missing header get JSON.
MEDIA_TYPES: dict[Kind, str] = {"json": "application/json", "html": "text/html",
                                "csv": "text/csv"}


def negotiate(accept: str | None, format_: Kind | None) -> Kind:
    if format_ is not None:
        return format_
    # No header (or an empty one) means any type is acceptable.
    if accept is None or not accept.strip():
        return "json"
    ranges = [parsed for part in accept.split(",") if (parsed := _media_range(part))]
    best: tuple[float, Kind] | None = None
    for kind, media_type in MEDIA_TYPES.items():
        weight = _weight(media_type, ranges)
        if weight > 0 and (best is None or weight > best[0]):
            best = (weight, kind)
    if best is None:
        offered = ", ".join(MEDIA_TYPES.values())
        raise BadQuery(f"Accept {accept[:200]!r}: none of {offered} is acceptable", 406)
    return best[1]


def _media_range(text: str) -> tuple[str, str, float] | None:
    """``type/subtype;params;q=0.5`` -> (type, subtype, q); None when malformed (a range
    that cannot be read matches nothing rather than failing the request)."""
    media, *params = (piece.strip() for piece in text.split(";"))
    kind, slash, subtype = media.lower().partition("/")
    if not slash or not kind or not subtype or (kind == "*" and subtype != "*"):
        return None
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value.strip())
            except ValueError:
                return None
            if not 0 <= quality <= 1:
                return None
    return kind, subtype, quality


def _weight(media_type: str, ranges: list[tuple[str, str, float]]) -> float:
    """The q of the most specific range matching ``media_type`` (0: none matches)."""
    kind, subtype = media_type.split("/")
    best_specificity, quality = -1, 0.0
    for range_kind, range_subtype, range_q in ranges:
        if (range_kind, range_subtype) == (kind, subtype):
            specificity = 2
        elif range_kind == kind and range_subtype == "*":
            specificity = 1
        elif range_kind == "*":
            specificity = 0
        else:
            continue
        if specificity > best_specificity:
            best_specificity, quality = specificity, range_q
    return quality
