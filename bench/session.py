"""What every phase of one benchmark run shares: the embedded broker, the work directory,
the report, the HTTP client, and the child processes and tracker workers it starts (all
stopped by ``close``)."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import TypeVar

import httpx
from rich.console import Console

from bench.common import Child, PeerUnavailable, ensure_peer_python
from bench.options import Options
from bench.report import Report
from bench.worker import TrackerWorker
from services.tracker.broker import EmbeddedKafka
from tests.ports import free_port

Result = TypeVar("Result")


class Session:
    """One run's shared state; ``close`` stops every process it started."""

    def __init__(self, options: Options, workdir: Path, console: Console) -> None:
        self.options = options
        self.workdir = workdir
        self.console = console
        self.report = Report()
        self.tag = uuid.uuid4().hex[:6]  # in this run's topic, group and event id names
        self.kafka = EmbeddedKafka(workdir / "kafka", port=free_port(),
                                   controller_port=free_port())
        self.children: list[Child] = []
        self.workers: list[TrackerWorker] = []
        self.peer_python: Path | None = None
        self.client = httpx.AsyncClient()
        self.rng = random.Random(3)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")

    async def start_broker(self) -> None:
        self.say(f"starting Apache Kafka in {self.kafka.data_dir} ...")
        await asyncio.to_thread(self.kafka.start, 120)

    async def install_peer(self) -> None:
        """The peer's virtualenv, or the reason it cannot run (``--no-peer`` included)."""
        if not self.options.peer:
            self.report.peer_problem = "disabled with --no-peer"
            return
        try:
            self.peer_python = await asyncio.to_thread(
                ensure_peer_python, self.options.peer_venv, self.workdir / "peer-install.log")
        except (PeerUnavailable, OSError, subprocess.SubprocessError) as error:
            self.report.peer_problem = f"Quix Streams could not be installed: {error}"

    def raw_child(self, name: str, topic: str, count: int, latency: bool = False) -> Child:
        argv = [sys.executable, "-m", "bench.raw", "--bootstrap", self.bootstrap,
                "--topic", topic, "--count", str(count)]
        child = Child(argv + (["--latency"] if latency else []), self.workdir / f"{name}.log")
        self.children.append(child)
        return child

    def peer_child(self, name: str, topic: str, group: str, state: Path, count: int,
                   latency: bool = False) -> Child:
        if self.peer_python is None:
            raise PeerUnavailable(self.report.peer_problem or "peer disabled")
        argv = [str(self.peer_python), "-m", "bench.peer", "--bootstrap", self.bootstrap,
                "--topic", topic, "--group", group, "--state-dir", str(state),
                "--count", str(count)]
        child = Child(argv + (["--latency"] if latency else []), self.workdir / f"{name}.log")
        self.children.append(child)
        return child

    def worker(self, name: str, prefix: str, worker_id: str = "worker-1") -> TrackerWorker:
        worker = TrackerWorker(self.bootstrap, prefix, self.workdir / f"data-{prefix}",
                               self.workdir / f"{name}.log", worker_id)
        self.workers.append(worker)
        return worker

    async def peer_step(self, what: str, step: Coroutine[None, None, Result]) -> Result | None:
        """Run a peer measurement; a failure is reported as such, never replaced by a figure."""
        if self.peer_python is None:
            step.close()  # the peer is off (--no-peer): never started, so never awaited
            return None
        try:
            return await step
        except (PeerUnavailable, RuntimeError, TimeoutError) as error:
            reason = f"{what}: {str(error).strip().splitlines()[0] if str(error) else error!r}"
            self.report.peer_problem = self.report.peer_problem or reason
            self.say(f"[red]peer failed[/red] {reason}")
            return None

    async def close(self) -> None:
        for child in self.children:
            child.kill()
        for worker in self.workers:
            worker.kill()
        await self.client.aclose()
        await asyncio.to_thread(self.kafka.stop)
