"""How the fold's changelog records reach the broker, in an order a crash cannot break.

A folded ledger-input record writes to three changelog topics: root entries, ledgers and
references. Recovery needs the roots to be at least as far along as the ledgers: a ledger
update that survived a ``kill -9`` when the root writes of the same record did not would
let the refold apply again an event that was a duplicate the first time. So a record's
ledger writes are sent only once the broker has its root writes, and its reference write
(a new FX rate or commitment) only once it has the ledger writes as well.

Waiting for those acknowledgements in the fold would hold each record up by two round
trips. ``OrderedWrites`` waits beside it instead: the fold hands over a record's writes
and goes on with the next record, its tables already changed in memory, while a chain of
tasks sends each record's ledger and reference writes in record order as their turn
comes. Faust flushes its producer before it commits offsets; the producer waits for this
chain first (``compat.IdempotentProducer``), so no offset is committed before the writes
of the records it covers are on the broker.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from services.tracker.domain.ledger import JSON

# A changelog record: key and value (None: a tombstone).
Record = tuple[str, JSON | None]
SendFailed = Callable[[BaseException], None]
Deliveries = list[asyncio.Future[Any]]
# Sends records to a topic's partition, reporting a failed delivery to the callback.
Send = Callable[[str, int, list[Record], SendFailed], Awaitable[Deliveries]]
# Told the offset of the first record of the last record batch holding a record's roots
# (or ledgers).
Acknowledged = Callable[[int], None]


async def send_records(producer: AIOKafkaProducer, topic: str, partition: int,
                       records: list[Record], failed: SendFailed) -> Deliveries:
    """Changelog records encoded as Faust's JSON codec would, in as few record batches as
    the producer's batch size allows; returns their deliveries. The caller need not await
    them: a batch the producer gives up on is reported to ``failed``."""
    deliveries: Deliveries = []

    def delivered(done: asyncio.Future[Any]) -> None:
        error = None if done.cancelled() else done.exception()
        if error is not None:
            failed(error)

    async def send(batch: Any) -> None:
        delivery = await producer.send_batch(batch, topic, partition=partition)
        delivery.add_done_callback(delivered)
        deliveries.append(delivery)

    batch = producer.create_batch()
    for key, value in records:
        encoded = (orjson.dumps(key), None if value is None else orjson.dumps(value))
        if batch.append(key=encoded[0], value=encoded[1], timestamp=None) is None:
            await send(batch)
            batch = producer.create_batch()  # an empty batch takes a record of any size
            batch.append(key=encoded[0], value=encoded[1], timestamp=None)
    await send(batch)
    return deliveries


# Records whose writes may wait in the chain before the fold waits for the oldest: the
# fold must not run far ahead of the broker, or the wait before a commit (and before
# partitions are handed over in a rebalance) grows with it, and so does memory.
MAX_WAITING_RECORDS = 4


class OrderedWrites:
    """Each folded record's ledger writes after its root writes, its reference write after
    both, records in the order they were folded."""

    def __init__(self, send: Send, failed: SendFailed,
                 max_waiting: int = MAX_WAITING_RECORDS) -> None:
        self.send = send
        self.failed = failed
        self.max_waiting = max_waiting
        self._waiting: deque[asyncio.Task[None]] = deque()

    @classmethod
    def on(cls, producer: AIOKafkaProducer, failed: SendFailed) -> OrderedWrites:
        return cls(partial(send_records, producer), failed)

    async def write(self, partition: int, roots: tuple[str, list[Record]],
                    ledgers: tuple[str, list[Record]],
                    references: tuple[str, list[Record]],
                    roots_acknowledged: Acknowledged | None = None,
                    ledgers_acknowledged: Acknowledged | None = None) -> None:
        """Send one record's writes, each argument a (topic, records) pair: the roots now,
        the rest in a task of the chain, which tells ``roots_acknowledged`` (in record
        order) once the broker has the roots, and ``ledgers_acknowledged`` once it has the
        ledgers."""
        topic, records = roots
        root_deliveries = (await self.send(topic, partition, records, self.failed)
                           if records else [])
        waiting = self._waiting
        while waiting and waiting[0].done():
            waiting.popleft()
        last = waiting[-1] if waiting else None
        waiting.append(asyncio.ensure_future(self._after(
            last, root_deliveries, (roots_acknowledged, ledgers_acknowledged), partition,
            ledgers, references)))
        while len(waiting) > self.max_waiting:
            await asyncio.shield(waiting.popleft())

    async def drained(self) -> None:
        """Return once every record handed over so far has sent all its writes (or one
        failed, which ``failed`` was told of)."""
        if self._waiting:
            await asyncio.shield(self._waiting[-1])

    async def _after(self, previous: asyncio.Task[None] | None, root_deliveries: Deliveries,
                     acknowledged: tuple[Acknowledged | None, Acknowledged | None],
                     partition: int, ledgers: tuple[str, list[Record]],
                     references: tuple[str, list[Record]]) -> None:
        roots_acknowledged, ledgers_acknowledged = acknowledged
        try:
            if previous is not None:
                await previous  # the records before it have sent theirs
            if not await _acknowledged(root_deliveries):
                return
            if roots_acknowledged is not None and root_deliveries:
                roots_acknowledged(root_deliveries[-1].result().offset)
            topic, records = ledgers
            ledger_deliveries = (await self.send(topic, partition, records, self.failed)
                                 if records else [])
            if ledgers_acknowledged is not None and ledger_deliveries:
                _when_acknowledged(ledger_deliveries[-1], ledgers_acknowledged)
            topic, records = references
            if records and await _acknowledged(ledger_deliveries):
                await self.send(topic, partition, records, self.failed)
        except Exception as error:  # the producer stopped or refused: the worker stops
            self.failed(error)


def _when_acknowledged(delivery: asyncio.Future[Any], acknowledged: Acknowledged) -> None:
    """Tell ``acknowledged`` the delivery's offset once the broker has it (without holding
    the chain up for it: a failed delivery is reported to ``failed``)."""
    def done(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            acknowledged(future.result().offset)
    delivery.add_done_callback(done)


async def _acknowledged(deliveries: Deliveries) -> bool:
    """Whether the broker acknowledged them all; one it did not was reported to ``failed``
    when it ended."""
    outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
    return not any(isinstance(outcome, BaseException) for outcome in outcomes)
