"""The ``tracker`` command: run the embedded broker and the worker, load data, look at it."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.tracker import processes
from services.tracker.broker import EmbeddedKafka
from services.tracker.cluster import WEB_PORTS, LocalCluster, worker_environment
from services.tracker.errors import TrackerError
from services.tracker.preflight import check_connection
from services.tracker.settings import Settings

cli = typer.Typer(
    help="Event-sourced tracker of bilateral trade, energy and defense commitments.\n\n"
    "Configuration comes from TRACKER_* environment variables; `tracker config` shows them.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
broker_cli = typer.Typer(help="The embedded Apache Kafka broker (KRaft, one node).",
                         no_args_is_help=True)
cli.add_typer(broker_cli, name="broker")
cluster_cli = typer.Typer(
    help="The production topology on this machine: three Kafka nodes (KRaft, replication 3, "
    "min ISR 2) and two workers with a standby each.", no_args_is_help=True)
cli.add_typer(cluster_cli, name="cluster")
# Logs and pipes get a wide, fixed width so tables are not squeezed into 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as error:  # pydantic's message names the variable and the problem
        err.print(f"[red]Invalid configuration:[/red] {error}")
        raise typer.Exit(2) from None


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


@cli.command()
def worker() -> None:
    """Run one tracker worker in the foreground (Faust agents and the web server)."""
    from services.tracker.service import build_tracker
    from services.tracker.topics import ensure_topics

    settings = load_settings()
    check_connection(settings)
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)  # Faust makes one level only
    created = asyncio.run(ensure_topics(settings))
    if created:
        console.print(f"Created topics: {', '.join(created)}")
    tracker = build_tracker(settings)
    console.print(f"Worker {settings.worker_id} of {settings.app_id}: HTTP at {settings.web_url}, "
                  f"Kafka at {settings.kafka_bootstrap}")
    from faust.worker import Worker

    Worker(tracker.app, loglevel=settings.log_level.upper(), quiet=True).execute_from_commandline()


def _worker_pid_file(settings: Settings) -> Path:
    return settings.data_dir / f"{settings.worker_id}.pid"


@cli.command()
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


def start_worker(settings: Settings, env: dict[str, str] | None = None) -> None:
    """`tracker worker` in the background with ``env`` added to this environment (it must
    describe ``settings``), unless its pid file names a running process."""
    pid_file = _worker_pid_file(settings)
    if processes.running_pid(pid_file) is not None:
        return
    if processes.port_is_open(settings.web_bind, settings.web_port):
        err.print(f"[red]Port {settings.web_port} is taken[/red]; set TRACKER_WEB_PORT.")
        raise typer.Exit(1)
    processes.start_detached([sys.executable, "-m", "services.tracker.cli", "worker"],
                             settings.data_dir / "logs" / f"{settings.worker_id}.log", pid_file,
                             env={**os.environ, **(env or {})})


def stop_worker(settings: Settings) -> None:
    if processes.stop(_worker_pid_file(settings), timeout=20):
        console.print(f"Worker {settings.worker_id} stopped.")


def load_sample_once(settings: Settings, sample: Path | None, urls: list[str]) -> None:
    marker = settings.data_dir / "sample-loaded"
    if sample is not None and not marker.exists():
        sent = send_file(settings, sample, allow_invalid=True)
        marker.write_text(str(sample))
        with console.status("Waiting for the workers to fold the sample..."):
            folded = processes.wait_folded(urls, sent, timeout=180)
        if not folded:
            err.print(f"[yellow]The worker has not folded all {sent} records in 180s; "
                      "the figures below may still change.[/yellow]")
    elif sample is not None:
        console.print(f"Sample already loaded ({marker} exists); not sending it again.")


@cli.command()
def down() -> None:
    """Stop the background worker and broker started by `tracker up`."""
    stop_worker(load_settings())
    broker_stop()


def production_topology(base: Settings,
                        ) -> tuple[LocalCluster, list[tuple[Settings, dict[str, str]]]]:
    """The three nodes under ``<data dir>/cluster`` and each worker's settings with the
    TRACKER_* variables that give them (what its process gets on top of this one's).
    Ports count up from TRACKER_BROKER_PORT (clients +0, +2, +4; controllers +1, +3, +5)
    and TRACKER_WEB_PORT (+0, +1): 9092-9097 and 6066-6067 by default."""
    data_dir = base.data_dir / "cluster"
    first = base.broker_port
    kafka = LocalCluster(data_dir, client_ports=(first, first + 2, first + 4),
                         controller_ports=(first + 1, first + 3, first + 5))
    web_ports = tuple(base.web_port + index for index in range(len(WEB_PORTS)))
    workers = []
    for index in range(len(web_ports)):
        env = worker_environment(index, kafka.bootstrap, data_dir, web_ports)
        fields: dict[str, Any] = {name.removeprefix("TRACKER_").lower(): value
                                  for name, value in env.items()}
        workers.append((Settings(**fields), env))
    return kafka, workers


@cluster_cli.command("up")
def cluster_up(
    sample: Annotated[Path | None, typer.Option(help="JSON Lines file to load once.")] = None,
) -> None:
    """Start three Kafka nodes and two workers in the background (what `make cluster` runs),
    load the sample once, show the status."""
    from services.tracker.topics import ensure_topics

    kafka, workers = production_topology(load_settings())
    with console.status("Starting three Apache Kafka nodes (KRaft quorum)..."):
        kafka.start()
    console.print(f"Kafka cluster ready on [bold]{kafka.bootstrap}[/bold] (data in "
                  f"{kafka.data_dir})")
    # Created once here, so that two workers starting together do not race for them.
    created = asyncio.run(ensure_topics(workers[0][0]))
    if created:
        console.print(f"Created topics (replication {workers[0][0].replication}): "
                      f"{', '.join(created)}")
    for settings, env in workers:
        start_worker(settings, env)
    with console.status("Waiting for the workers to recover their tables..."):
        for settings, _ in workers:
            seconds = processes.wait_healthy(settings.web_url, 180)
            console.print(f"Worker {settings.worker_id} ready at [bold]{settings.web_url}"
                          f"[/bold] after {seconds:.1f}s")
    urls = [settings.web_url for settings, _ in workers]
    load_sample_once(workers[0][0], sample, urls)
    status(url=urls[0])
    console.print(f"\nHTTP:    {'  '.join(f'{url}/commitments/' for url in urls)}\n"
                  f"Kafka:   {kafka.bootstrap}\n"
                  f"Logs:    {kafka.data_dir / 'logs'}, {kafka.data_dir}/kafka-*/logs\n"
                  "Stop:    make cluster-stop   (data stays; `make cluster` again resumes)")


@cluster_cli.command("down")
def cluster_down() -> None:
    """Stop the cluster's workers, then its nodes; the data stays on disk."""
    kafka, workers = production_topology(load_settings())
    for settings, _ in workers:
        stop_worker(settings)
    stopped = kafka.stop()
    console.print(f"Kafka nodes stopped: {stopped}.")


@cluster_cli.command("status")
def cluster_status() -> None:
    """Say which nodes and workers of the cluster run."""
    kafka, workers = production_topology(load_settings())
    down = 0
    for node in kafka.nodes:
        pid = node.running_pid()
        down += pid is None
        console.print(f"Kafka node {node.node_id} ({node.bootstrap}): "
                      + (f"running, pid {pid}" if pid else "not running"))
    for settings, _ in workers:
        pid = processes.running_pid(_worker_pid_file(settings))
        down += pid is None
        console.print(f"Worker {settings.worker_id} ({settings.web_url}): "
                      + (f"running, pid {pid}" if pid else "not running"))
    if down:
        raise typer.Exit(1)


@cli.command("produce")
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


@cli.command()
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
        answer = httpx.get(f"{base}/commitments/", params=params, timeout=15)
    except httpx.HTTPError as error:
        err.print(f"[red]Cannot reach the worker at {base}:[/red] {error}")
        raise typer.Exit(1) from None
    if answer.status_code != 200:
        err.print(f"[red]{base} answered {answer.status_code}:[/red] {answer.text}")
        raise typer.Exit(1)
    table = Table(title=f"Commitments as of {as_of}" if as_of else "Commitments")
    for column in ("commitment", "pair", "sector", "basis", "target", "achieved", "ratio",
                   "projected", "status"):
        table.add_column(column, no_wrap=True)
    colour = {"achieved": "green", "on_track": "green", "at_risk": "yellow",
              "off_track": "red", "withdrawn": "dim"}
    for item in answer.json()["items"]:
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


@cli.command()
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


@cli.command()
def config() -> None:
    """Print the effective configuration (secrets masked)."""
    settings = load_settings()
    table = Table(title="Configuration (environment variable = value)")
    table.add_column("variable")
    table.add_column("value")
    for name in Settings.model_fields:
        table.add_row(f"TRACKER_{name.upper()}", str(getattr(settings, name)))
    console.print(table)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        cli()
    except TrackerError as error:
        err.print(f"[red]Error:[/red] {error}", soft_wrap=True)  # one line, however long
        sys.exit(1)


if __name__ == "__main__":
    main()
