"""HTML for people: amounts as people read them (USD 68.7 bn, 640,000,001 bbl, 68.7%),
tables narrow enough for the page, and a commitment's totals grouped as calendar years,
fiscal years and a grid of months. JSON and CSV keep the exact decimal strings."""

from __future__ import annotations

import html
from collections.abc import Sequence
from decimal import Decimal

from schemas.events import SETTLEMENT_SHARE
from services.tracker.domain.periods import period_kind
from services.tracker.render import Row, to_html_table

SCALES = ((Decimal(10) ** 12, "tn"), (Decimal(10) ** 9, "bn"), (Decimal(10) ** 6, "m"))
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PERCENT = "%"


def unit_of(measure: str) -> str:
    """USD for the *_usd measures and targets, % for settlement shares, else the unit."""
    if measure.endswith("_usd"):
        return "USD"
    return PERCENT if measure == SETTLEMENT_SHARE else measure


def amount(text: str, unit: str) -> str:
    value = Decimal(text)
    if unit == PERCENT:
        return f"{value * 100:,.1f}%"
    if unit == "USD":
        for size, suffix in SCALES:
            if abs(value) >= size:
                return f"USD {value / size:,.1f} {suffix}"
        return f"USD {value:,.2f}"
    if value == value.to_integral_value():
        return f"{value:,.0f} {unit}"
    return f"{value.normalize():,f} {unit}"


def totals(rows: Sequence[Row]) -> list[Row]:
    return [{"pair": r["pair"], "sector": r["sector"], "measure": r["measure"],
             "period": r["period"], "value": amount(r["value"], unit_of(r["measure"]))}
            for r in rows]


def shares(rows: Sequence[Row]) -> list[Row]:
    return [{"pair": r["pair"], "period": r["period"], "currency": r["currency"],
             "share": amount(r["share"], PERCENT)} for r in rows]


def commitments(rows: Sequence[Row]) -> list[Row]:
    """One line a commitment, with what a reader compares: a dozen short columns."""
    return [{"commitment": r["commitment_id"], "pair": r["pair"], "sector": r["sector"],
             "basis": r["basis"], "target": amount(r["target"], unit_of(r["metric"])),
             "achieved": amount(r["achieved"], unit_of(r["metric"])),
             "progress": amount(r["ratio"], PERCENT),
             "run rate / year": amount(r["run_rate_per_year"], unit_of(r["metric"])),
             "projected": r["projected_completion"] or "never at this rate",
             "deadline": r["deadline"], "status": r["status"],
             "data through": r["data_through"] or ""} for r in rows]


def history(rows: Sequence[Row], metric: str) -> list[Row]:
    return [{"month": r["month"], "target": amount(r["target"], unit_of(metric)),
             "achieved": amount(r["achieved"], unit_of(metric)),
             "progress": amount(r["ratio"], PERCENT), "status": r["status"]} for r in rows]


def commitment(progress: Row, period_totals: Sequence[Row], chart: str) -> str:
    """A commitment as facts (one per line, so nothing runs off the page), its history
    chart, then its totals by calendar year, fiscal year and month."""
    unit = unit_of(progress["metric"])
    facts = commitments([progress])[0] | {
        "metric": progress["metric"], "period start": progress["period_start"],
        "source": progress["source"], "as of": progress["as_of"]}
    lines = "".join(f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(value))}</td></tr>"
                    for name, value in facts.items() if name != "commitment")
    by_kind: dict[str, list[Row]] = {"year": [], "fiscal_year": [], "month": []}
    for row in period_totals:
        by_kind[period_kind(row["period"])].append(row)
    # A settlement share's totals are the pair's USD value it is a share of.
    shown = "USD" if unit == PERCENT else unit
    years = [{"year": r["period"], "total": amount(r["value"], shown)}
             for r in by_kind["year"]]
    fiscal = [{"fiscal year": r["period"], "total": amount(r["value"], shown)}
              for r in by_kind["fiscal_year"]]
    return "\n".join([
        f'<table class="facts">{lines}</table>', chart,
        '<div class="periods"><section><h2>Calendar years</h2>', to_html_table(years),
        "</section><section><h2>Fiscal years (April-March)</h2>", to_html_table(fiscal),
        "</section></div>", "<h2>Months</h2>", month_grid(by_kind["month"], shown)])


def month_grid(rows: Sequence[Row], unit: str) -> str:
    """Months as a year-by-month grid in one scale (named in the heading) - twelve short
    columns instead of a list of dozens of rows."""
    if not rows:
        return "<p><em>No rows.</em></p>"
    values = {row["period"]: Decimal(row["value"]) for row in rows}
    size, suffix = Decimal(1), unit
    if unit == "USD":
        largest = max(abs(value) for value in values.values())
        size, label = next(((s, n) for s, n in SCALES if largest >= s), (Decimal(1), ""))
        suffix = f"USD {label}".strip()
    years = sorted({period[:4] for period in values})
    head = "".join(f"<th>{month}</th>" for month in MONTHS)
    body = ""
    for year in years:
        cells = ""
        for number in range(1, 13):
            value = values.get(f"{year}-{number:02d}")
            cells += f'<td class="num">{"" if value is None else f"{value / size:,.2f}"}</td>'
        body += f"<tr><th>{year}</th>{cells}</tr>"
    return (f'<table class="months"><caption>{html.escape(suffix)}</caption><thead><tr>'
            f"<th></th>{head}</tr></thead><tbody>{body}</tbody></table>")
