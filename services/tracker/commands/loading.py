"""Sending records to the contract topics: `tracker produce`, and the sample that
`tracker up` and `tracker cluster up` load once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.tracker import processes
from services.tracker.commands.console import console, err, load_settings
from services.tracker.preflight import check_connection
from services.tracker.settings import Settings

FOLD_TIMEOUT = 180.0


def produce_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON Lines file.")],
    allow_invalid: Annotated[bool, typer.Option(
        help="Also send records that fail their check (to exercise the dead-letter path).")]
    = False,
) -> int:
    """Check and send each record of FILE (JSON Lines of {"topic", "key"?, "value"});
    shows progress and a summary."""
    return send_file(load_settings(), file, allow_invalid)


def send_file(settings: Settings, file: Path, allow_invalid: bool) -> int:
    """`tracker produce` with given settings; returns the number of records sent."""
    from services.tracker.producer import produce, read_records

    check_connection(settings)
    records = list(read_records(file, settings.max_event_bytes))
    with Progress(TextColumn("Sending"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("send", total=len(records))
        summary = asyncio.run(produce(settings, records, send_invalid=allow_invalid,
                                      on_record=lambda: bar.advance(task)))
    table = Table(title=f"Sent from {file.name}")
    table.add_column("topic")
    table.add_column("records", justify="right")
    for topic, count in sorted(summary.sent.items()):
        table.add_row(topic, str(count))
    console.print(table)
    console.print(f"sent {summary.total_sent} (of which {summary.sent_invalid} failing their "
                  f"check, sent on purpose), rejected {len(summary.rejected)}")
    for line, reason in summary.rejected[:20]:
        console.print(f"  line {line}: {reason}")
    return summary.total_sent


def load_sample_once(settings: Settings, sample: Path | None, urls: list[str]) -> None:
    """Send ``sample`` unless an earlier start did (a marker in the data directory says
    so) and wait until the workers at ``urls`` have folded it."""
    marker = settings.data_dir / "sample-loaded"
    if sample is not None and not marker.exists():
        sent = send_file(settings, sample, allow_invalid=True)
        marker.write_text(str(sample))
        with console.status("Waiting for the workers to fold the sample..."):
            folded = processes.wait_folded(urls, sent, timeout=FOLD_TIMEOUT)
        if not folded:
            err.print(f"[yellow]The worker has not folded all {sent} records in "
                      f"{FOLD_TIMEOUT:.0f}s; the figures below may still change.[/yellow]")
    elif sample is not None:
        console.print(f"Sample already loaded ({marker} exists); not sending it again.")
