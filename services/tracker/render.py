"""One response in three formats: JSON, an HTML table for people, CSV (which one is
negotiated in ``services.tracker.api.negotiation``)."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel

Row = dict[str, Any]


class BadQuery(Exception):
    """A query the client must fix: answered with 400 and a JSON error."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def error_response(message: str, status: int) -> web.Response:
    """Errors are JSON whatever the request accepts: a client that cannot be served the
    type it asked for still learns why."""
    return web.Response(body=orjson.dumps({"error": message, "status": status}),
                        status=status, content_type="application/json")


def respond(kind: str, title: str, payload: BaseModel, rows: Sequence[Row],
            html_body: Callable[[], str] | None = None) -> web.Response:
    """``kind`` is the negotiated representation; ``payload`` the JSON body; ``rows`` the
    CSV (and, without ``html_body``, the HTML table)."""
    if kind == "json":
        response = web.Response(body=payload.model_dump_json(indent=2),
                                content_type="application/json")
    elif kind == "csv":
        response = web.Response(text=to_csv(rows), content_type="text/csv")
    else:
        body = html_body() if html_body is not None else to_html_table(rows)
        response = web.Response(text=page(title, f"<h1>{html.escape(title)}</h1>\n{body}"),
                                content_type="text/html")
    # The representation depends on Accept: a cache must not hand HTML to a JSON client.
    response.headers["Vary"] = "Accept"
    return response


def to_csv(rows: Sequence[Row]) -> str:
    out = io.StringIO()
    columns = _columns(rows)
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_html_table(rows: Sequence[Row]) -> str:
    if not rows:
        return "<p><em>No rows.</em></p>"
    columns = _columns(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, body: str) -> str:
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title><style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}}
table{{border-collapse:collapse;font-size:14px;margin-bottom:1rem}}
th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left}}
th{{background:#f3f3f3}} tr:nth-child(even) td{{background:#fafafa}}
td.num,table.months td{{text-align:right}} table.facts th{{width:11rem}}
.periods{{display:flex;flex-wrap:wrap;gap:0 3rem}} caption{{text-align:left;color:#555}}
</style></head><body>{body}</body></html>"""


def _columns(rows: Sequence[Row]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def history_chart(rows: Sequence[Row], label: str, width: int = 720, height: int = 260) -> str:
    """Achieved (line) against target (dashed) by month, as inline SVG: no script, no
    external resource."""
    if not rows:
        return ""
    achieved = [float(row["achieved"]) for row in rows]
    targets = [float(row["target"]) for row in rows]
    top = max([*achieved, *targets, 1e-9]) * 1.05
    left, right, upper, lower = 70, 45, 20, 40
    plot_w, plot_h = width - left - right, height - upper - lower

    def x(index: int) -> float:
        return left + (plot_w * index / max(1, len(rows) - 1))

    def y(value: float) -> float:
        return upper + plot_h * (1 - value / top)

    line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(achieved))
    target = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(targets))
    ticks = "".join(
        f'<text x="{left - 6}" y="{y(top * f / 1.05):.1f}" text-anchor="end" font-size="11">'
        f"{_compact(top * f / 1.05)}</text>" for f in (0, 0.25, 0.5, 0.75, 1.0))
    step = max(1, len(rows) // 8)
    months = "".join(
        f'<text x="{x(i):.1f}" y="{height - 18}" text-anchor="middle" font-size="11">'
        f"{html.escape(str(rows[i]['month']))}</text>" for i in range(0, len(rows), step))
    return (
        f'<svg id="history-chart" role="img" aria-label="History of {html.escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        f'<rect x="{left}" y="{upper}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        f'stroke="#ccc"/>{ticks}{months}'
        f'<polyline points="{target}" fill="none" stroke="#c0392b" stroke-dasharray="6 4" '
        f'stroke-width="2"><title>target</title></polyline>'
        f'<polyline points="{line}" fill="none" stroke="#2471a3" stroke-width="2.5">'
        f"<title>achieved</title></polyline>"
        f'<text x="{left + 8}" y="{upper + plot_h - 10}" font-size="12" fill="#2471a3">'
        f"achieved</text>"
        f'<text x="{left + 80}" y="{upper + plot_h - 10}" font-size="12" fill="#c0392b">'
        f"target</text>"
        "</svg>")


def _compact(value: float) -> str:
    for size, suffix in ((1e9, " bn"), (1e6, " m"), (1e3, " k")):
        if abs(value) >= size:
            return f"{value / size:,.1f}{suffix}"
    return f"{value:,.2f}"
