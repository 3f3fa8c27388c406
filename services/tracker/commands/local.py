"""The local set-up `make run` and `make stop` drive: the embedded broker (`tracker
broker ...`), one worker in the foreground (`tracker worker`) or both in the background
(`tracker up` / `tracker down`), and the configuration they read (`tracker config`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from services.tracker import processes
from services.tracker.broker import EmbeddedKafka
from services.tracker.commands.analyst import status
from services.tracker.commands.console import console, load_settings
from services.tracker.commands.loading import load_sample_once
from services.tracker.commands.workers import start_worker, stop_worker
from services.tracker.preflight import check_connection
from services.tracker.settings import Settings

broker_cli = typer.Typer(help="The embedded Apache Kafka broker (KRaft, one node).",
                         no_args_is_help=True)


def embedded(settings: Settings) -> EmbeddedKafka:
    return EmbeddedKafka(settings.data_dir / "kafka", settings.broker_port,
                         settings.broker_controller_port, settings.broker_heap)


@broker_cli.command("start")
def broker_start() -> None:
    """Start the broker in the background (fetching its jars once) and wait until ready."""
    settings = load_settings()
    kafka = embedded(settings)
    with console.status("Starting Apache Kafka (first start downloads its jars)..."):
        pid = kafka.start()
    console.print(f"Kafka broker ready on [bold]{kafka.bootstrap}[/bold] (pid {pid}, "
                  f"data in {kafka.data_dir})")


@broker_cli.command("stop")
def broker_stop() -> None:
    """Stop the broker cleanly; its data stays on disk."""
    stopped = embedded(load_settings()).stop()
    console.print("Kafka broker stopped." if stopped else "No broker was running.")


@broker_cli.command("status")
def broker_status() -> None:
    """Say whether the broker runs and where."""
    kafka = embedded(load_settings())
    pid = kafka.running_pid()
    if pid is None:
        console.print("Kafka broker: not running")
        raise typer.Exit(1)
    console.print(f"Kafka broker: running, pid {pid}, {kafka.bootstrap}")


def worker() -> None:
    """Run one tracker worker in the foreground (Faust agents and the web server)."""
    from services.tracker.local_state import discard_stale_local_state
    from services.tracker.service import build_tracker
    from services.tracker.topics import ensure_topics

    settings = load_settings()
    check_connection(settings)
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)  # Faust makes one level only
    created = asyncio.run(ensure_topics(settings))
    if created:
        console.print(f"Created topics: {', '.join(created)}")
    for path in asyncio.run(discard_stale_local_state(settings)):
        console.print(f"[yellow]Removed {path}[/yellow]: built from a changelog that no "
                      "longer exists; it is restored from the current one")
    tracker = build_tracker(settings)
    console.print(f"Worker {settings.worker_id} of {settings.app_id}: HTTP at {settings.web_url}, "
                  f"Kafka at {settings.kafka_bootstrap}")
    from faust.worker import Worker

    Worker(tracker.app, loglevel=settings.log_level.upper(), quiet=True).execute_from_commandline()


def up(
    sample: Annotated[Path | None, typer.Option(help="JSON Lines file to load once.")] = None,
) -> None:
    """Start broker and worker in the background, load the sample once, show the status."""
    settings = load_settings()
    broker_start()
    start_worker(settings)
    with console.status("Waiting for the worker to recover its tables..."):
        seconds = processes.wait_healthy(settings.web_url, 120)
    console.print(f"Worker ready at [bold]{settings.web_url}[/bold] after {seconds:.1f}s")
    load_sample_once(settings, sample, [settings.web_url])
    status(url=settings.web_url)
    console.print(
        f"\nHTTP:    {settings.web_url}/commitments/  {settings.web_url}/totals/?pair=IN-RU\n"
        f"Metrics: {settings.web_url}/metrics\n"
        f"Logs:    {settings.data_dir / 'logs'}\n"
        "Stop:    make stop   (data stays in .data/; `make run` again resumes)")


def down() -> None:
    """Stop the background worker and broker started by `tracker up`."""
    stop_worker(load_settings())
    broker_stop()


def config() -> None:
    """Print the effective configuration (secrets masked)."""
    settings = load_settings()
    table = Table(title="Configuration (environment variable = value)")
    table.add_column("variable")
    table.add_column("value")
    for name in Settings.model_fields:
        table.add_row(f"TRACKER_{name.upper()}", str(getattr(settings, name)))
    console.print(table)
