"""One tracker worker as a child process (``python -m services.tracker.cli worker``), the
way tests/integration/conftest.py runs it, plus what the benchmark reads from it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx

from bench.common import PROJECT_ROOT, Samples, events_folded, parse_metrics
from bench.proto import cpu_seconds, vm_hwm_kib
from services.tracker.api.paging import MAX_LIMIT
from services.tracker.processes import child_pids
from tests.ports import free_port

# Lines of a worker's log that tell how its fold was disturbed: group joins of the worker
# and of its intake (a join after the first is a rebalance), partitions the continuity
# guard sent back, and runs of records folded again.
DISTURBANCES = {
    "worker group joins": re.compile(r"\[INFO\] Joined group '"),
    "intake group joins": re.compile(r"intake: Joined group '"),
    "partitions sent back": re.compile(r"reading again from \d+"),
    "runs of records folded again": re.compile(r"folding again from offset"),
}


@dataclass
class TrackerWorker:
    bootstrap: str
    prefix: str
    data_dir: Path
    log_path: Path
    worker_id: str = "worker-1"
    web_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    scrape_seconds: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def app_id(self) -> str:
        return f"{self.prefix}tracker"

    @property
    def faust_dir(self) -> Path:
        """Its local table state (the roots' RocksDB databases)."""
        return self.data_dir / "faust"

    @property
    def trade_topic(self) -> str:
        return f"{self.prefix}trade-transactions"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def disturbances(self) -> str:
        """What its log says of rebalances, seeks back and records folded again."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return ", ".join(f"{len(pattern.findall(text))} {what}"
                         for what, pattern in DISTURBANCES.items())

    def env(self) -> dict[str, str]:
        return {**os.environ, "TRACKER_KAFKA_BOOTSTRAP": self.bootstrap,
                "TRACKER_TOPIC_PREFIX": self.prefix, "TRACKER_APP_ID": self.app_id,
                "TRACKER_WEB_PORT": str(self.web_port), "TRACKER_DATA_DIR": str(self.data_dir),
                "TRACKER_WORKER_ID": self.worker_id,
                "TRACKER_LOG_LEVEL": "info"}

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.tracker.cli", "worker"], cwd=PROJECT_ROOT,
                env=self.env(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the worker exited with {self.process.returncode}:\n{tail}")

    async def wait_ready(self, client: httpx.AsyncClient, timeout: float = 180.0) -> float:
        """Poll /health/ every 50 ms; seconds from process start to the first 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                answer = await client.get(f"{self.url}/health/", timeout=2)
                if answer.status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
        raise TimeoutError(f"worker not ready in {timeout:.0f}s; see {self.log_path}")

    async def metrics(self, client: httpx.AsyncClient) -> str:
        self._check_alive()
        answer = await client.get(f"{self.url}/metrics", timeout=30)
        answer.raise_for_status()
        return answer.text

    async def samples(self, client: httpx.AsyncClient) -> Samples:
        return parse_metrics(await self.metrics(client), ("tracker_events_total",
                                                          "tracker_processing_latency"))

    async def wait_folded(self, client: httpx.AsyncClient, target: int, timeout: float,
                          duty: float = 0.05, least: float = 0.5,
                          progress: Callable[[str], None] | None = None) -> tuple[float, int]:
        """Poll /metrics until ``target`` trade events are folded.

        A scrape costs the worker real time (its event loop renders every series), so the
        pause between scrapes is at least ``least`` seconds and long enough that scraping
        takes at most ``duty`` of the time. Returns the moment (time.monotonic) the count
        reached ``target``, interpolated between the last two scrapes, and the count seen;
        on timeout the count is below ``target``."""
        deadline = time.monotonic() + timeout
        previous: tuple[float, int] | None = None
        count = 0
        shown = time.monotonic()
        while time.monotonic() < deadline:
            started = time.monotonic()
            count = events_folded(await self.samples(client), self.trade_topic)
            now = time.monotonic()
            self.scrape_seconds.append(now - started)
            if count >= target:
                if previous is None or count == previous[1]:
                    return now, count
                share = (target - previous[1]) / (count - previous[1])
                return previous[0] + share * (now - previous[0]), count
            if progress is not None and now - shown >= 60:
                shown = now
                progress(f"  {count:,} of {target:,} folded")
            previous = (now, count)
            await asyncio.sleep(max(least, (now - started) * (1 - duty) / duty))
        return time.monotonic(), count

    async def usd_by_pair(self, client: httpx.AsyncClient) -> dict[str, Decimal]:
        """Exact trade totals per pair from /totals/ (the sum of the 2021-2025 years), page
        after page."""
        result: dict[str, Decimal] = {}
        link: str | None = f"/totals/?sector=trade&measure=value_usd&limit={MAX_LIMIT}"
        while link is not None:
            answer = await client.get(f"{self.url}{link}",
                                      headers={"Accept": "application/json"}, timeout=120)
            answer.raise_for_status()
            page = answer.json()
            for row in page["items"]:
                if len(row["period"]) == 4:
                    result[row["pair"]] = (result.get(row["pair"], Decimal(0))
                                           + Decimal(row["value"]))
            link = page["next"]
        return result

    def pids(self) -> list[int]:
        """The worker's process and its intake's: the tracker's cost is both."""
        return [self.pid, *child_pids(self.pid)]

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) or 0.0 for pid in self.pids())

    def peak_rss_mib(self) -> float:
        """The sum of each process's peak: an upper bound of their peak together."""
        return sum(vm_hwm_kib(pid) or 0 for pid in self.pids()) / 1024

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM and wait; returns the seconds the shutdown took (SIGKILL after timeout)."""
        if self.process is None or self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
