"""The intake's batch loop over aiokafka: fetch a batch, route it, send one ledger-input
record per destination partition (and the dead letters), wait for the broker to have
them all, then commit the source offsets.

At least once: a crash or a lost partition between the send and the commit sends the
batch again. That is harmless because the fold is idempotent by event id (a re-sent
flow, correction or rate is recognised as seen) and ``tracker reconcile`` counts dead
letters by their source position. Every worker runs one intake in its own consumer group
(``<app id>-intake``), so the source partitions spread over the workers as the fold's do.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from services.tracker.connection import client_options
from services.tracker.domain.validation import Kind
from services.tracker.failpoints import crash_at
from services.tracker.intake.routing import RoutedBatch, route_batch
from services.tracker.settings import Settings

log = logging.getLogger(__name__)


def source_kinds(settings: Settings) -> dict[str, Kind]:
    names = settings.topics
    return {names.commitments: "commitment", names.fx_rates: "fx_rate",
            names.trade: "trade", names.energy: "energy", names.defense: "defense"}


# (source topic, outcome, how many): what a batch adds to the ``tracker_events`` counter.
Counted = Callable[[list[tuple[str, str, int]]], None]


class Intake:
    def __init__(self, settings: Settings, counted: Counted) -> None:
        self.settings = settings
        self.counted = counted
        self.kinds = source_kinds(settings)
        self.batches = 0

    def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
        settings = self.settings
        options = client_options(settings)
        consumer = AIOKafkaConsumer(
            *self.kinds, **options,
            group_id=f"{settings.app_id}-intake",
            # Static membership, as the fold's: a restarted worker takes its partitions
            # back without a rebalance of the others.
            group_instance_id=f"{settings.app_id}-{settings.worker_id}-intake",
            enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=10_000, heartbeat_interval_ms=1_000,
            max_poll_interval_ms=300_000, rebalance_timeout_ms=20_000,
            max_partition_fetch_bytes=4 * 1024 * 1024)
        producer = AIOKafkaProducer(**options, acks="all", enable_idempotence=True,
                                    linger_ms=settings.producer_linger_ms,
                                    max_request_size=2 * settings.intake_record_max_bytes)
        return consumer, producer

    async def run(self) -> None:
        consumer, producer = self._clients()
        await producer.start()
        try:
            await consumer.start()
            try:
                log.info("Intake reading %s in batches of up to %d records",
                         ", ".join(self.kinds), self.settings.intake_batch_size)
                while True:
                    batch = await self._next_batch(consumer)
                    if batch:
                        await self._forward(consumer, producer, batch)
            finally:
                await consumer.stop()
        finally:
            await producer.stop()

    async def _next_batch(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[Any]]:
        """Records as they come, gathered for up to ``intake_linger_ms`` after the first:
        under a trickle, each batch would otherwise be a record or two, and the fold pays
        its per-record cost for every ledger-input record."""
        size = self.settings.intake_batch_size
        batch = await consumer.getmany(timeout_ms=1000, max_records=size)
        count = sum(map(len, batch.values()))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.intake_linger_ms / 1000
        while batch and count < size and (left := deadline - loop.time()) > 0:
            more = await consumer.getmany(timeout_ms=max(1, int(left * 1000)),
                                          max_records=size - count)
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
        return batch

    async def _forward(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                       batch: dict[TopicPartition, list[Any]]) -> None:
        settings = self.settings
        # Reference data first: a rate read in the same batch as the flows it converts
        # spares them a wait in the pending list.
        ordered = sorted(batch, key=lambda tp: self.kinds[tp.topic] not in ("fx_rate",
                                                                           "commitment"))
        routed = route_batch((record for tp in ordered for record in batch[tp]), self.kinds,
                             settings.partitions, settings.max_event_bytes)
        sends: list[Awaitable[Any]] = [
            await producer.send(settings.topics.ledger, value, partition=partition)
            for partition, value in routed.records(settings.intake_record_max_bytes)]
        sends += [await self._dead_letter(producer, rejected.record, rejected.reason)
                  for rejected in routed.rejected]
        await asyncio.gather(*sends)
        self._count(routed)
        self.batches += 1
        crash_at(self.batches, settings.intake_crash_after_batches,
                 "after an intake batch reached the broker, before its commit",
                 with_parent=True)
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            # The partitions moved to another worker meanwhile: it reads this batch again,
            # and the fold recognises what it already applied.
            log.warning("Intake commit after a rebalance failed (%s); the new owner reads "
                        "the batch again", error)

    async def _dead_letter(self, producer: AIOKafkaProducer, record: Any,
                           reason: str) -> Awaitable[Any]:
        log.warning("Dead letter from %s[%d]@%d: %s", record.topic, record.partition,
                    record.offset, reason)
        headers = [("tracker.reason", reason.encode()),
                   ("tracker.source.topic", record.topic.encode()),
                   ("tracker.source.partition", str(record.partition).encode()),
                   ("tracker.source.offset", str(record.offset).encode())]
        future: Awaitable[Any] = await producer.send(
            self.settings.topics.dead_letters, record.value, key=record.key, headers=headers)
        return future

    def _count(self, routed: RoutedBatch) -> None:
        rejected = Counter(rejected.record.topic for rejected in routed.rejected)
        references = Counter(item.source.topic for item in routed.references)
        counts = [*((topic, "dead_letter", count) for topic, count in rejected.items()),
                  *((topic, "applied", count) for topic, count in references.items())]
        if counts:
            self.counted(counts)

