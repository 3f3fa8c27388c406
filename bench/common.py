"""Helpers of the benchmark's phases: synthetic events, topics, producers, child processes,
/metrics."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.proto import parse_line, quantile

PROJECT_ROOT = Path(__file__).resolve().parents[1]
COUNTRIES = ("IN", "RU", "US", "CN", "AE", "SA", "JP", "DE", "BR", "ZA", "FR")
PAIRS = tuple(f"{a}-{b}" for a, b in itertools.combinations(sorted(COUNTRIES), 2))[:50]
PROBE_PAIR = "IS-NO"  # used by no other event: its total changes only with the probes
PROBE_MONTH = "2026-01"
FIRST_DAY = date(2021, 1, 1)
DAYS = (date(2025, 12, 31) - FIRST_DAY).days + 1
COMMODITY = "machinery, mechanical appliances and electrical equipment; parts thereof"


@dataclass
class Batch:
    """Events as (key, value) plus what a correct fold must show for them."""

    records: list[tuple[bytes, bytes]]
    usd_by_pair: dict[str, Decimal] = field(default_factory=dict)

    @property
    def usd(self) -> Decimal:
        return sum(self.usd_by_pair.values(), Decimal(0))


def trade_event(event_id: str, pair: str, day: str, amount: str, rng: random.Random) -> bytes:
    """One valid ``TradeTransactionRecorded``, reported by the importer (so the mirror rule
    keeps every event and the tracker's totals are plain sums, like the peer's)."""
    first, second = pair.split("-")
    reporter, partner = (first, second) if rng.random() < 0.5 else (second, first)
    return orjson.dumps({"event_id": event_id, "occurred_at": day, "amount": amount,
                         "currency": "USD", "reporter": reporter, "partner": partner,
                         "direction": "import", "hs_code": "8471", "commodity": COMMODITY,
                         "schema_version": 1})


def make_batch(count: int, tag: str, seed: int = 7, day: str | None = None) -> Batch:
    """``count`` distinct trade events over the 50 pairs and 2021-2025 (or one ``day``)."""
    rng = random.Random(seed)
    batch = Batch([])
    for index in range(count):
        pair = PAIRS[rng.randrange(len(PAIRS))]
        when = day or (FIRST_DAY + timedelta(days=rng.randrange(DAYS))).isoformat()
        cents = rng.randrange(100_000, 1_000_000_000)
        amount = f"{cents // 100}.{cents % 100:02d}"
        batch.records.append((pair.encode(), trade_event(f"{tag}-{index:07d}", pair, when,
                                                         amount, rng)))
        batch.usd_by_pair[pair] = batch.usd_by_pair.get(pair, Decimal(0)) + Decimal(amount)
    return batch


async def create_topic(bootstrap: str, name: str, partitions: int = 4) -> None:
    """A topic stamped with the broker's append time, so a record's timestamp is when the
    broker appended it (what the latency figures start from)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs={
            "retention.ms": "-1", "message.timestamp.type": "LogAppendTime"})])
    finally:
        await admin.close()
    await asyncio.sleep(0.5)  # let the leaders settle before the first produce


async def produce_fast(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Pre-production: large batches, linger, acks=1. Returns events/s."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20,
                                max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024)
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(records) / max(time.monotonic() - started, 1e-9)


async def steady_load(producer: AIOKafkaProducer, topic: str,
                      records: Iterator[tuple[bytes, bytes]], rate: float, total: int) -> float:
    """Send ``total`` events at ``rate`` events/s in 10 ms ticks, paced against the clock (a
    slow tick is made up by the next ones); returns the seconds it took."""
    tick = 0.01
    started = time.monotonic()
    sent = 0
    pending = []
    while sent < total:
        elapsed = time.monotonic() - started
        due = min(int(rate * (elapsed + tick)), total)
        while sent < due:
            key, value = next(records)
            pending.append(await producer.send(topic, value, key=key))
            sent += 1
        next_tick = started + (int(elapsed / tick) + 1) * tick
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    await asyncio.gather(*pending)
    return time.monotonic() - started


def median(sorted_values: list[float]) -> float:
    """The nearest-rank median (the lower middle value), like the children's p50."""
    return quantile(sorted_values, 0.50)


# -- /metrics -------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Samples = list[tuple[str, dict[str, str], float]]


def parse_metrics(text: str, names: tuple[str, ...] = ()) -> Samples:
    samples = []
    for line in text.splitlines():
        if not line or line[0] == "#" or (names and not line.startswith(names)):
            continue
        match = _SAMPLE.match(line)
        if match:
            labels = dict(_LABEL.findall(match.group(2) or ""))
            samples.append((match.group(1), labels, float(match.group(3))))
    return samples


FOLDED_OUTCOMES = ("applied", "duplicate", "pending", "dead_letter")


def events_folded(samples: Samples, topic: str) -> int:
    """Sum of tracker_events_total for ``topic`` over the outcomes that end an event."""
    return int(sum(value for name, labels, value in samples
                   if name == "tracker_events_total" and labels.get("topic") == topic
                   and labels.get("outcome") in FOLDED_OUTCOMES))


def histogram(samples: Samples, name: str) -> dict[float, float]:
    """Cumulative bucket counts by upper bound (``+Inf`` as math.inf)."""
    return {float(labels["le"]): value for metric, labels, value in samples
            if metric == f"{name}_bucket"}


def histogram_quantile(before: dict[float, float], after: dict[float, float],
                       q: float) -> tuple[float, int, bool]:
    """Quantile of the observations made between two snapshots, interpolated linearly
    inside the bucket like PromQL's histogram_quantile. Returns (value, count, capped):
    capped means the quantile fell in the +Inf bucket and the value is the largest bound."""
    bounds = sorted(after)
    delta = [after[b] - before.get(b, 0.0) for b in bounds]
    total = delta[-1] if delta else 0.0
    if total <= 0:
        return math.nan, 0, False
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cumulative in zip(bounds, delta, strict=True):
        if cumulative >= rank:
            if math.isinf(bound):
                return lower, int(total), True
            inside = cumulative - below
            share = (rank - below) / inside if inside else 1.0
            return lower + (bound - lower) * share, int(total), False
        lower, below = bound, cumulative
    return lower, int(total), True


def probe_value(text: str) -> float:
    """The probe pair's trade total for the probe month's year (the worker exports
    tracker_total_usd for years only; the pair has no other events), 0 before the first
    probe (label order in the exposition is not relied on)."""
    wanted = (f'pair="{PROBE_PAIR}"', 'sector="trade"', f'period="{PROBE_MONTH[:4]}"')
    at = text.find(f'tracker_total_usd{{pair="{PROBE_PAIR}"')
    while at >= 0:
        end = text.find("\n", at)
        line = text[at:end if end >= 0 else None]
        labels, _, value = line.rpartition(" ")
        if all(label in labels for label in wanted):
            return float(value)
        at = text.find(f'tracker_total_usd{{pair="{PROBE_PAIR}"', at + 1)
    return 0.0


# -- child processes ------------------------------------------------------------------------

class Child:
    """A baseline child process speaking the BENCH line protocol on stdout."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.argv = argv
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0.0
        self.lines: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self.started = time.time()
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE, stderr=log,
            stdin=asyncio.subprocess.DEVNULL)
        log.close()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("a") as log:
            async for raw in self.process.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                log.write(line + "\n")
                parsed = parse_line(line)
                if parsed is not None:
                    await self.lines.put(parsed)
        await self.lines.put(("exit", {}))

    async def expect(self, kind: str, timeout: float) -> dict[str, Any]:
        """Wait for a ``BENCH <kind>`` line; fail if the child exits first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no '{kind}' from {self.argv[2]} in {timeout:.0f}s; "
                                   f"see {self.log_path}")
            got, fields = await asyncio.wait_for(self.lines.get(), left)
            if got == kind:
                return fields
            if got == "unavailable":
                raise PeerUnavailable(fields.get("reason", "unavailable"))
            if got == "exit":
                code = await self.process.wait() if self.process else None
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self.argv[2]} exited ({code}) before '{kind}':\n{tail}")

    async def finish(self, timeout: float = 60.0) -> None:
        if self.process is None:
            return
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.kill()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()


class PeerUnavailable(Exception):
    """Quix Streams cannot run here; the reason is printed, nothing is made up."""


def ensure_peer_python(venv: Path, log_path: Path) -> Path:
    """The peer's virtualenv with bench/peer-requirements.txt installed (once)."""
    python = venv / "bin" / "python"
    requirements = PROJECT_ROOT / "bench" / "peer-requirements.txt"
    stamp = venv / ".bench-installed"
    if python.exists() and stamp.exists() and stamp.read_text() == requirements.read_text():
        return python
    with log_path.open("ab") as log:
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "-r", str(requirements)]]
        for step in steps:
            done = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT, check=False,
                                  timeout=600)
            if done.returncode != 0:
                raise PeerUnavailable(f"could not install {requirements.name} into {venv} "
                                      f"(`{' '.join(step[:3])}...` exited {done.returncode}; "
                                      f"see {log_path})")
    stamp.write_text(requirements.read_text())
    return python
