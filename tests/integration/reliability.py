"""Helpers of the reliability tests (chaos, bad input, HTTP fuzzing): event streams with
known sums, producers that report where each record landed or that retry across a broker
outage, readers of the worker's totals and Prometheus counters, and a check that the
deployment's consumer groups have committed everything sent."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.tracker.broker import EmbeddedKafka
from services.tracker.compat import persisted_offset_key
from tests.integration.conftest import Deployment, Worker

Record = tuple[str, bytes | None, bytes | None]  # (contract topic, key, value)
Where = tuple[str, int, int]  # (full topic name, partition, offset)

PAIRS = [("IN", "RU"), ("IN", "AE"), ("RU", "CN"), ("DE", "FR"), ("US", "JP"), ("BR", "ZA"),
         ("FR", "IT"), ("KE", "NG")]


def stream_of_events(count: int, seed: int, pairs: Sequence[tuple[str, str]] = PAIRS,
                     ) -> tuple[list[Record], dict[tuple[str, str], Decimal]]:
    """Distinct USD imports over several pairs; returns records and expected (pair, year)."""
    rng = random.Random(seed)
    records: list[Record] = []
    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for number in range(count):
        reporter, partner = rng.choice(pairs)
        amount = Decimal(rng.randint(100, 10_000_000)) / 100
        year = rng.choice((2022, 2023, 2024))
        event = {"event_id": f"rel-{seed}-{number}", "occurred_at":
                 f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                 "reporter": reporter, "partner": partner, "direction": "import",
                 "amount": str(amount), "currency": "USD"}
        pair = "-".join(sorted((reporter, partner)))
        records.append(("trade-transactions", pair.encode(), orjson.dumps(event)))
        expected[(pair, str(year))] += amount
    return records, dict(expected)


def year_totals(worker: Worker, sector: str = "trade") -> dict[tuple[str, str], Decimal]:
    """(pair, calendar year) -> value_usd as one worker answers for the whole deployment."""
    answer = worker.get("/totals/", params={"sector": sector, "measure": "value_usd"})
    if answer.status_code != 200:  # wait_until retries and reports the last one
        raise ValueError(f"{worker.url} answered {answer.status_code}: {answer.text[:300]}")
    rows = answer.json()["items"]
    return {(r["pair"], r["period"]): Decimal(r["value"]) for r in rows
            if len(r["period"]) == 4}


def totals_equal(worker: Worker, expected: dict[tuple[str, str], Decimal]) -> bool:
    """True when ``year_totals`` equals ``expected``; otherwise ValueError naming the first
    differences, which ``wait_until`` reports if they last."""
    got = year_totals(worker)
    differences = sorted((key, expected.get(key), got.get(key))
                         for key in set(expected) | set(got) if expected.get(key) != got.get(key))
    if differences:
        raise ValueError(f"{len(differences)} totals differ (key, log, worker): "
                         f"{differences[:3]}")
    return True


def own_deployment(broker: EmbeddedKafka, tmp: Path) -> Deployment:
    """A deployment on a broker of the test's own, built as the ``deployment`` fixture
    builds one on the shared broker."""
    prefix = f"t{uuid.uuid4().hex[:8]}-"
    env = {**os.environ, "TRACKER_KAFKA_BOOTSTRAP": broker.bootstrap,
           "TRACKER_TOPIC_PREFIX": prefix, "TRACKER_APP_ID": f"{prefix}tracker",
           "TRACKER_DATA_DIR": str(tmp / "data"), "TRACKER_LOG_LEVEL": "info"}
    return Deployment(broker, env, prefix, tmp)


def produce_located(deployment: Deployment, records: Sequence[Record]) -> list[Where]:
    """Send records in order, each acknowledged; returns where each one landed."""
    async def send() -> list[Where]:
        producer = AIOKafkaProducer(bootstrap_servers=deployment.kafka.bootstrap, acks="all")
        await producer.start()
        try:
            located = []
            for topic, key, value in records:
                meta = await producer.send_and_wait(deployment.topic(topic), value, key=key)
                located.append((meta.topic, meta.partition, meta.offset))
            return located
        finally:
            await producer.stop()
    return asyncio.run(send())


@dataclass
class RetryingProducer:
    """Sends ``records`` in batches from a thread, retrying a batch until the broker has
    acknowledged all of it - across a broker outage. A batch sent twice is harmless: the
    tracker dedupes by event id. With ``hold_at``, the records from that index on wait for
    ``release()``, so a test can be sure its chaos happens before the stream ends."""

    deployment: Deployment
    records: Sequence[Record]
    batch: int = 150
    pause: float = 0.25
    hold_at: int | None = None
    give_up_after: float = 60.0  # per batch
    acknowledged: int = 0
    failed_attempts: int = 0
    error: BaseException | None = None
    _released: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> RetryingProducer:
        self._thread = threading.Thread(target=self._run, name="retrying-producer", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        self._released.set()

    def join(self, timeout: float) -> None:
        assert self._thread is not None
        self.release()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"producer still busy after {timeout}s "
                                 f"({self.acknowledged}/{len(self.records)} acknowledged)")
        if self.error is not None:
            raise AssertionError(f"producer failed: {self.error!r}") from self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._send_all())
        except BaseException as error:  # reported by join()
            self.error = error

    async def _send_all(self) -> None:
        producer: AIOKafkaProducer | None = None
        try:
            for start in range(0, len(self.records), self.batch):
                while self.hold_at is not None and start >= self.hold_at \
                        and not self._released.is_set():
                    await asyncio.sleep(0.05)
                chunk = self.records[start:start + self.batch]
                deadline = time.monotonic() + self.give_up_after
                while True:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"batch at {start} not acknowledged in time")
                    try:
                        if producer is None:
                            producer = self._producer()
                            await producer.start()
                        futures = [await producer.send(self.deployment.topic(topic), value,
                                                       key=key) for topic, key, value in chunk]
                        await asyncio.gather(*futures)
                        break
                    except (KafkaError, OSError, TimeoutError):
                        self.failed_attempts += 1
                        if producer is not None:
                            with contextlib.suppress(Exception):
                                await asyncio.wait_for(producer.stop(), 5)
                            producer = None
                        await asyncio.sleep(0.5)  # back off: the broker may still be away
                self.acknowledged += len(chunk)
                # Paced: the stream lasts long enough for the chaos to happen while it flows.
                await asyncio.sleep(self.pause)
        finally:
            if producer is not None:
                await producer.stop()

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=self.deployment.kafka.bootstrap, acks="all",
                                request_timeout_ms=3000, retry_backoff_ms=200,
                                metadata_max_age_ms=2000)


def metric_samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Samples of one metric in Prometheus text format, by their label sets."""
    samples = {}
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels_text, value = line[len(name) + 1:].rsplit("} ", 1)
        labels = frozenset(tuple(part.split("=", 1)) for part in _label_parts(labels_text))
        samples[frozenset((k, v.strip('"')) for k, v in labels)] = float(value)
    return samples


def _label_parts(text: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [part for part in [*parts, current] if part]


def events_counted(worker: Worker) -> dict[tuple[str, str], float]:
    """tracker_events_total as (topic, outcome) -> count."""
    samples = metric_samples(worker.get("/metrics").text, "tracker_events_total")
    return {(dict(labels)["topic"], dict(labels)["outcome"]): value
            for labels, value in samples.items()}


INPUT_TOPICS = ("trade-transactions", "energy-transactions", "defense-transactions",
                "commitments", "fx-rates")


def caught_up(deployment: Deployment) -> bool:
    """True when the intake's group has committed every record of the input topics and
    then the fold's group every ledger-input record: whatever was sent has been forwarded,
    folded and its changelog writes flushed, so nothing is still on its way to change a
    total. Otherwise ValueError naming the records left, which ``wait_until`` reports if
    they last."""
    app_id = deployment.base_env["TRACKER_APP_ID"]
    # In this order: once the intake has committed, its last batch is on ledger-input, so
    # the fold's end offsets read next include it.
    stages = ((f"{app_id}-intake", INPUT_TOPICS), (app_id, ("tracker-ledger-input",)))
    for group, topics in stages:
        try:
            behind = asyncio.run(uncommitted(deployment.kafka.bootstrap, group,
                                             [deployment.topic(name) for name in topics]))
        except KafkaError as error:  # e.g. the group coordinator moving: asked again
            raise ValueError(f"offsets of {group} unknown: {error!r}") from error
        if behind:
            raise ValueError(f"{group} has not committed {sum(behind.values())} record(s): "
                             f"{behind}")
    return True


async def uncommitted(bootstrap: str, group: str, topics: list[str]) -> dict[str, int]:
    """'topic[partition]' -> records past ``group``'s committed offset, where there are any."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await admin.start()
        try:
            partitions = list(consumer.assignment())
            if {tp.topic for tp in partitions} != set(topics):  # else nothing to compare
                raise ValueError(f"partitions of {topics} not all known: {partitions}")
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        finally:
            await admin.close()
    finally:
        await consumer.stop()
    left = {}
    for tp, end in sorted(ends.items()):
        # Offset -1 (or no entry): the group never committed this partition.
        done = max(committed[tp].offset, 0) if tp in committed else 0
        if end > done:
            left[f"{tp.topic}[{tp.partition}]"] = end - done
    return left


@dataclass(frozen=True)
class RootsOnDisk:
    entries: dict[str, object]  # every root entry in the partition's database
    persisted_offset: int | None  # where the next recovery reads the changelog from


def roots_on_disk(worker: Worker) -> dict[int, RootsOnDisk]:
    """The roots databases a stopped worker left in its data directory, by partition."""
    from rocksdict import AccessType, Options, Rdict

    on_disk = {}
    data_dir = Path(worker.env["TRACKER_DATA_DIR"]) / "faust" / worker.env["TRACKER_WORKER_ID"]
    for path in sorted(data_dir.glob("**/roots-*.db")):
        db = Rdict(str(path), options=Options(raw_mode=True),
                   access_type=AccessType.read_only())
        try:
            items = dict(db.items())
        finally:
            db.close()
        offset = items.pop(persisted_offset_key(), None)
        on_disk[int(path.stem.rsplit("-", 1)[1])] = RootsOnDisk(
            {key.decode(): orjson.loads(value) for key, value in items.items()},
            None if offset is None else int(offset))
    return on_disk


def roots_changelog(deployment: Deployment) -> dict[int, tuple[dict[str, object], int]]:
    """The roots changelog expanded as recovery would, by partition: its root entries,
    and its end offset."""
    expanded: dict[int, tuple[dict[str, object], int]] = {}
    for record in deployment.consume_to_end("tracker-roots-changelog"):
        entries, _ = expanded.get(record.partition, ({}, 0))
        entries.update(orjson.loads(record.value))
        expanded[record.partition] = (entries, record.offset + 1)
    return expanded
