"""Fixtures that start real processes: one Apache Kafka broker per test session (free
ports, its own data directory) and tracker workers as subprocesses, each test with its own
topic prefix and consumer group. If the broker cannot start, tests fail - never skip."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.tracker.broker import EmbeddedKafka
from tests.integration.independent_fold import Expected, expected_value_usd
from tests.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT_ROOT / "data" / "sample.jsonl"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedKafka]:
    broker = EmbeddedKafka(tmp_path_factory.mktemp("kafka"), port=free_port(),
                           controller_port=free_port(), heap="512m")
    broker.start(timeout=120)
    yield broker
    broker.stop()


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25,
               message: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail with ``message``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    result: Any = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
            last_error = None
        except (httpx.HTTPError, KeyError, ValueError) as error:
            last_error = error
        time.sleep(interval)
    last = f"last error: {last_error}" if last_error else f"last result: {result!r:.300}"
    raise AssertionError(f"timed out after {timeout}s waiting for {message} ({last})")


@dataclass
class Worker:
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    # How the worker is started; another interpreter's `tracker worker` for an installed copy.
    command: list[str] = field(
        default_factory=lambda: [sys.executable, "-m", "services.tracker.cli", "worker"])
    cwd: Path = PROJECT_ROOT

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['TRACKER_WEB_PORT']}"

    def start(self, ready_timeout: float = 60.0) -> float:
        """Start the worker and wait for /health/ to say ready; returns the seconds it took."""
        started = time.monotonic()
        out = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        wait_until(self.ready, ready_timeout, message=f"worker ready ({self.log_path})")
        return time.monotonic() - started

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}: "
                                 f"{self.log_path.read_text()[-3000:]}")
        return httpx.get(f"{self.url}/health/", timeout=2).status_code == 200

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=20, **kwargs)

    def kill(self) -> None:
        """kill -9: no shutdown, no final commit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_digest(self, lines: int = 60) -> str:
        """The last warnings, errors and partition moves of its log: what a failed test
        needs to tell a slow rebalance or recovery from wrong totals."""
        if not self.log_path.exists():
            return f"{self.log_path}: no log"
        kept = [line for line in self.log_path.read_text(errors="replace").splitlines()
                if any(mark in line for mark in DIGEST_MARKS)]
        return "\n".join([f"--- {self.log_path} ({self.url})", *kept[-lines:]])


DIGEST_MARKS = ("WARNING", "ERROR", "assigned", "Recovery", "Partitions of", "Worker]: Ready",
                "never committed", "Intake reading")


@dataclass
class Deployment:
    """One isolated tracker deployment on the shared broker."""

    kafka: EmbeddedKafka
    base_env: dict[str, str]
    prefix: str
    tmp: Path
    workers: list[Worker] = field(default_factory=list)

    def worker(self, worker_id: str = "worker-1", **extra: str) -> Worker:
        env = {**self.base_env, "TRACKER_WEB_PORT": str(free_port()),
               "TRACKER_WORKER_ID": worker_id, **extra}
        worker = Worker(env, self.tmp / f"{worker_id}.log")
        self.workers.append(worker)
        return worker

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def produce(self, records: list[tuple[str, bytes | None, bytes]]) -> None:
        """(contract topic, key, value) records, sent in order and acknowledged."""
        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.kafka.bootstrap, acks="all")
            await producer.start()
            try:
                for topic, key, value in records:
                    await producer.send_and_wait(self.topic(topic), value, key=key)
            finally:
                await producer.stop()
        asyncio.run(send())

    @contextlib.asynccontextmanager
    async def _from_the_start(self, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
        """A consumer of ``topic`` outside any group, reading from its first record."""
        consumer = AIOKafkaConsumer(self.topic(topic), bootstrap_servers=self.kafka.bootstrap,
                                    auto_offset_reset="earliest", enable_auto_commit=False,
                                    group_id=None)
        await consumer.start()
        try:
            yield consumer
        finally:
            await consumer.stop()

    def consume_all(self, topic: str, expected: int, timeout: float = 30.0,
                    until: Callable[[list[Any]], bool] | None = None) -> list[Any]:
        """Read ``topic`` from the start until ``expected`` records arrived and ``until``
        holds for them (or time out)."""
        async def read() -> list[Any]:
            records: list[Any] = []
            async with self._from_the_start(topic) as consumer:
                deadline = time.monotonic() + timeout
                while ((len(records) < expected or (until and not until(records)))
                       and time.monotonic() < deadline):
                    batch = await consumer.getmany(timeout_ms=500)
                    for messages in batch.values():
                        records.extend(messages)
            return records
        return asyncio.run(read())

    def consume_to_end(self, topic: str, timeout: float = 30.0) -> list[Any]:
        """Every record of ``topic``, read from the start to (at least) its end offsets as of
        the call: unlike ``consume_all``, it cannot stop short of a record already there."""
        async def read() -> list[Any]:
            records: list[Any] = []
            async with self._from_the_start(topic) as consumer:
                ends = await consumer.end_offsets(list(consumer.assignment()))
                deadline = time.monotonic() + timeout

                async def short_of_the_end() -> bool:
                    return any([await consumer.position(tp) < end for tp, end in ends.items()])

                while await short_of_the_end():
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{topic} not read to its end offsets {ends} "
                                             f"in {timeout}s ({len(records)} records read)")
                    batch = await consumer.getmany(timeout_ms=500)
                    for messages in batch.values():
                        records.extend(messages)
            return records
        return asyncio.run(read())

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "services.tracker.cli", *args],
                              cwd=PROJECT_ROOT, env=self.base_env, capture_output=True,
                              text=True, timeout=120, check=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keeps each phase's report on the test item, for fixtures that act on a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def deployment(kafka: EmbeddedKafka, tmp_path: Path,
               request: pytest.FixtureRequest) -> Iterator[Deployment]:
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    env = {**os.environ, "TRACKER_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "TRACKER_TOPIC_PREFIX": prefix, "TRACKER_APP_ID": f"{prefix}tracker",
           "TRACKER_DATA_DIR": str(tmp_path / "data"), "TRACKER_LOG_LEVEL": "info"}
    created = Deployment(kafka, env, prefix, tmp_path)
    yield created
    for worker in created.workers:
        worker.stop()
    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:
        # Shown with the failure (captured output of the teardown): CI keeps no logs.
        for worker in created.workers:
            print(worker.log_digest())


def json_bytes(value: Any) -> bytes:
    return orjson.dumps(value)


@pytest.fixture(scope="session")
def expected() -> Expected:
    """The sample's figures, computed without the tracker's domain code."""
    return expected_value_usd(SAMPLE)


@pytest.fixture
def loaded(deployment: Deployment, expected: Expected) -> Worker:
    return start_with_sample(deployment, expected)


def start_with_sample(deployment: Deployment, expected: Expected) -> Worker:
    """A worker of ``deployment`` with the sample produced and folded."""
    worker = deployment.worker()
    worker.start()
    done = deployment.run_cli("produce", str(SAMPLE), "--allow-invalid")
    assert done.returncode == 0, done.stderr
    assert "rejected 0" in done.stdout
    target = expected.trailing_twelve_months().quantize(Decimal("0.01"))

    def caught_up() -> bool:
        body = worker.get("/commitments/in-ru-100bn-2030/").json()
        return Decimal(body["achieved"]) == target

    wait_until(caught_up, 60, message="the 100 bn commitment to reach the sample's figure")
    return worker


