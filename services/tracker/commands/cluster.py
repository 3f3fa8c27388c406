"""`tracker cluster up|down|status`, what `make cluster` and `make cluster-stop` run: the
production topology of ``services/tracker/cluster.py`` on this machine, in the background."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from services.tracker import processes
from services.tracker.cluster import WEB_PORTS, LocalCluster, worker_environment
from services.tracker.commands.analyst import status
from services.tracker.commands.console import console, load_settings
from services.tracker.commands.loading import load_sample_once
from services.tracker.commands.workers import start_worker, stop_worker, worker_pid_file
from services.tracker.settings import Settings

cluster_cli = typer.Typer(
    help="The production topology on this machine: three Kafka nodes (KRaft, replication 3, "
    "min ISR 2) and two workers with a standby each.", no_args_is_help=True)


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
        pid = processes.running_pid(worker_pid_file(settings))
        down += pid is None
        console.print(f"Worker {settings.worker_id} ({settings.web_url}): "
                      + (f"running, pid {pid}" if pid else "not running"))
    if down:
        raise typer.Exit(1)
