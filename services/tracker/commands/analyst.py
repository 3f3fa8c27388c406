"""What an analyst runs against a live worker: `tracker status` (every commitment's
progress as a table) and `tracker reconcile` (the worker's figures against the log)."""

from __future__ import annotations

from typing import Annotated

import httpx
import typer
from rich.table import Table

from services.tracker.commands.console import console, err, load_settings
from services.tracker.listing import every_item
from services.tracker.preflight import check_connection


def status(
    url: Annotated[str | None, typer.Option(help="Worker URL (default: this config's).")] = None,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Answer as the tracker would have on this day (YYYY-MM-DD), by event "
        "time.")] = None,
) -> None:
    """Show every commitment's progress as a terminal table."""
    base = url or load_settings().web_url
    params = {"as_of": as_of} if as_of else {}
    try:
        items = every_item(base, "/commitments/", params, timeout=15)
    except httpx.HTTPStatusError as error:
        answer = error.response
        err.print(f"[red]{base} answered {answer.status_code}:[/red] {answer.text}")
        raise typer.Exit(1) from None
    except httpx.HTTPError as error:
        err.print(f"[red]Cannot reach the worker at {base}:[/red] {error}")
        raise typer.Exit(1) from None
    table = Table(title=f"Commitments as of {as_of}" if as_of else "Commitments")
    for column in ("commitment", "pair", "sector", "basis", "target", "achieved", "ratio",
                   "projected", "status"):
        table.add_column(column, no_wrap=True)
    colour = {"achieved": "green", "on_track": "green", "at_risk": "yellow",
              "off_track": "red", "withdrawn": "dim"}
    for item in items:
        table.add_row(item["commitment_id"], item["pair"], item["sector"], item["basis"],
                      _money(item["target"], item["metric"]),
                      _money(item["achieved"], item["metric"]),
                      f"{float(item['ratio']):.1%}", item["projected_completion"] or "-",
                      f"[{colour[item['status']]}]{item['status']}[/]")
    console.print(table)


def _money(value: str, metric: str) -> str:
    amount = float(value)
    if metric == "settlement_share":
        return f"{amount:.1%}"
    if metric == "value_usd":
        return f"USD {amount / 1e9:,.2f} bn"
    return f"{amount:,.0f} {metric}"


def reconcile(
    url: Annotated[str | None, typer.Option(help="Worker URL (default: this config's).")] = None,
) -> None:
    """Recompute every total and commitment from the topics and compare with the live
    worker; prints differences and exits 1 on any."""
    from services.tracker.reconcile import reconcile as run_reconcile

    settings = load_settings()
    check_connection(settings)
    with console.status("Reading the topics from offset 0 and folding them..."):
        result = run_reconcile(settings, url or settings.web_url)
    summary = ", ".join(f"{topic} {count}" for topic, count in sorted(result.records.items()))
    console.print(f"Read {sum(result.records.values())} records ({summary}); "
                  f"dead letters expected {result.dead_letters_expected}, "
                  f"in topic {result.dead_letters_in_topic}")
    if result.clean:
        console.print("[green]No differences:[/green] the live tables equal the fold of the log.")
        return
    table = Table(title=f"{len(result.differences)} differences")
    for column in ("what", "key", "from the log", "live"):
        table.add_column(column)
    for row in result.differences[:200]:
        table.add_row(*row)
    console.print(table)
    raise typer.Exit(1)
