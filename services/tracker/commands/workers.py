"""Workers in the background, as `tracker up` and `tracker cluster up` run them: one
``tracker worker`` process each, with its pid file and log under the data directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from services.tracker import processes
from services.tracker.commands.console import console, err
from services.tracker.settings import Settings


def worker_pid_file(settings: Settings) -> Path:
    return settings.data_dir / f"{settings.worker_id}.pid"


def start_worker(settings: Settings, env: dict[str, str] | None = None) -> None:
    """`tracker worker` in the background with ``env`` added to this environment (it must
    describe ``settings``), unless its pid file names a running process."""
    pid_file = worker_pid_file(settings)
    if processes.running_pid(pid_file) is not None:
        return
    if processes.port_is_open(settings.web_bind, settings.web_port):
        err.print(f"[red]Port {settings.web_port} is taken[/red]; set TRACKER_WEB_PORT.")
        raise typer.Exit(1)
    processes.start_detached([sys.executable, "-m", "services.tracker.cli", "worker"],
                             settings.data_dir / "logs" / f"{settings.worker_id}.log", pid_file,
                             env={**os.environ, **(env or {})})


def stop_worker(settings: Settings) -> None:
    if processes.stop(worker_pid_file(settings), timeout=20):
        console.print(f"Worker {settings.worker_id} stopped.")
