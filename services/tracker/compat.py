"""What the tracker uses of faust-streaming beyond its public API, in one place, and the
start-up ``check`` that the installed faust-streaming still has all of it.

Each private name of faust-streaming the tracker reads, calls or overrides is reached
here only, and listed in ``RELIED_ON``: a faust-streaming other than the pinned one that
renamed or dropped one stops the worker at start-up with the name, instead of failing in
the middle of a rebalance or silently skipping an override. Of aiokafka the tracker uses
the public API only, save the fetch wait that Faust fixes (``ShortFetchWaitThread``), which
is listed there too.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.stores import memory as faust_memory
from faust.stores import rocksdb as faust_rocksdb
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, ConsumerT, TableT

from services.tracker.errors import TrackerError

log = logging.getLogger(__name__)

# The faust-streaming version whose private names ``RELIED_ON`` lists (pyproject.toml pins
# it; a unit test keeps the two equal).
PINNED_FAUST = "0.15.3"


# -- the producer -------------------------------------------------------------------------

class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with idempotence on: a send retried after a broker failover is
    not written twice. faust-streaming turns it on only inside transactions
    (exactly_once; ``Producer._settings_extra``), which the tracker does not use, and has
    no setting for it.

    Its ``flush``, which Faust awaits before it commits offsets, first waits for
    ``pending``: writes the fold sends on the aiokafka producer only when their turn comes
    (``changelog_writes.OrderedWrites``)."""

    pending: Callable[[], Awaitable[None]] | None = None

    def _settings_extra(self) -> dict[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}

    async def flush(self) -> None:
        if self.pending is not None:
            await self.pending()
        await super().flush()


def wait_before_flush(app: faust.App, pending: Callable[[], Awaitable[None]]) -> None:
    """Make Faust's producer wait for ``pending`` whenever it is flushed."""
    producer = app.producer
    if not isinstance(producer, IdempotentProducer):
        raise TrackerError(f"the app's producer is a {type(producer).__name__}, not the "
                           "tracker's IdempotentProducer")
    producer.pending = pending


# How long the broker may hold a fetch that finds no new records. faust-streaming gives
# aiokafka 1,500 ms and has no setting for it (``_create_worker_consumer``). aiokafka sends
# a broker no new fetch while one is outstanding, and in table recovery the partitions
# already read (the roots changelog's tail, the input topics) share fetches with those
# still being read: each fetch that found nothing new held the next batch back for 1.5 s.
# Restarted on 1,000,000 events with its local state kept, a worker read its changelogs in
# 5.06 s instead of 5.36 (medians of 4 alternating rounds); caught up, the fold sends up
# to ten empty fetches a second instead of one.
FETCH_MAX_WAIT_MS = 100


class ShortFetchWaitThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer waits ``FETCH_MAX_WAIT_MS``."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when it starts
        return consumer


class RecoverySafeConsumer(faust_aiokafka.Consumer):
    """Faust's consumer, with the changelog partitions sent back to where table recovery
    stands whenever a fetch returns while a rebalance has stopped the flow.

    A fetch that completes while a rebalance has stopped the flow is discarded, and Faust
    seeks every partition back to its committed offset instead (``Consumer.getmany``,
    faust-streaming/faust#256). Changelog partitions are never committed, so aiokafka's
    ``seek_to_committed`` leaves them where the discarded fetch ended. When the recovery
    had already sought them to its start, that is their end: recovery then waits for
    records that never come ("No event received for active tp ... since recovery
    start"), and the worker never turns ready (seen in the worker-leaving chaos test).

    Its thread's aiokafka consumer waits ``FETCH_MAX_WAIT_MS`` for fetches that find
    nothing."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ShortFetchWaitThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        discarding = not self.flow_active  # as in ``getmany``, which discarded a fetch
        await super().perform_seek()
        if discarding:
            await self.rewind_changelogs()

    async def rewind_changelogs(self) -> None:
        recovery = self.app.tables.recovery  # type: ignore[attr-defined]
        offsets = recovery_positions(recovery, self.assignment())
        if not offsets:
            return
        try:
            await self.seek_wait(offsets)
        except Exception as error:
            # Faust's own ``getmany`` logs and goes on when this seek fails; so does this.
            # A seek fails when the assignment changed under it, and then the new
            # rebalance's recovery seeks its changelogs itself.
            log.warning("Could not send %d changelog partition(s) back to the recovery's "
                        "offsets: %r", len(offsets), error)
            return
        log.info("A fetch returned while the rebalance stopped the flow: %d changelog "
                 "partition(s) sent back to where table recovery reads", len(offsets))


def recovery_positions(recovery: Any, assigned: set[TP]) -> dict[TP, int]:
    """Where Faust's recovery reads each assigned changelog partition from next: its last
    applied offset, read again and skipped as Faust's own seek does, or 0 when it has
    applied none (-1)."""
    return {tp: max(offsets.get(tp, -1), 0)
            for tps, offsets in ((recovery.active_tps, recovery.active_offsets),
                                 (recovery.standby_tps, recovery.standby_offsets))
            for tp in tps if tp in assigned}


class TrackerTransport(faust_aiokafka.Transport):
    Consumer = RecoverySafeConsumer
    Producer = IdempotentProducer


class TrackerApp(faust.App):
    """A Faust app whose changelog and topic writes go through ``IdempotentProducer`` and
    whose consumer is ``RecoverySafeConsumer``. Faust has no setting for the transport's
    class: its app makes one in ``_new_transport`` and ``_new_producer_transport``."""

    def _new_transport(self) -> Any:
        return TrackerTransport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return TrackerTransport(self.conf.broker_producer, self)


def kafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under Faust's. Faust sends changelog records one at a time
    through its producer buffer and stalls the streams while more than 100 wait ("producer
    buffer full", faust-streaming/faust#173, open); the fold
    sends a batch's records as record batches on the same producer instead, so Faust's
    flush before each commit still covers them."""
    producer = getattr(app.producer, "_producer", None)
    if not isinstance(producer, AIOKafkaProducer):
        raise TrackerError(
            "faust-streaming's producer has no aiokafka producer at `_producer`: this "
            f"faust-streaming version ({faust.__version__}) is not the one the tracker pins "
            f"({PINNED_FAUST})")
    return producer


# -- the consumer -------------------------------------------------------------------------

async def committed_offsets(app: faust.App, tps: list[TP]) -> dict[TP, int | None]:
    """The group's committed offsets of partitions (None: never committed), asked of the
    broker by the aiokafka consumer under Faust's. Faust has no public call for it: its
    aiokafka consumer lives in a thread of its own, reached as Faust's own
    ``seek_to_committed`` does (``_thread.call_thread`` with
    ``_thread._ensure_consumer()``)."""
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._ensure_consumer()

    async def ask() -> dict[TP, int | None]:
        return {tp: await consumer.committed(TopicPartition(tp.topic, tp.partition))
                for tp in tps}
    offsets: dict[TP, int | None] = await thread.call_thread(ask)
    return offsets


def handed_to_streams(consumer: ConsumerT, tp: TP) -> int | None:
    """The offset of the last record of ``tp`` that Faust's consumer handed to the streams
    (or where a seek last set it; None: neither). Faust keeps it to drop records fetched
    again below it, and has no public call to read it."""
    offset: int | None = consumer._read_offset.get(tp)  # type: ignore[attr-defined]
    return offset


def forget_gap(consumer: ConsumerT, tp: TP) -> None:
    """Drop the range of offsets Faust's consumer noted as skipped in ``tp``. After a jump
    ahead, Faust drops the records in between and its next commit counts that gap as
    processed (faust-streaming/faust#216, #221); the continuity guard reads them again,
    so the gap must not be committed. Faust has no public call to clear it."""
    consumer._gap.pop(tp, None)  # type: ignore[attr-defined]


# -- the tables ---------------------------------------------------------------------------

def note_key_partition(store: Any, key: Any, partition: int) -> None:
    """Note which partition a key of Faust's in-memory store came from, as the store's own
    ``apply_changelog_batch`` does: after a rebalance, the store drops the keys of the
    partitions no longer assigned here by these notes. A table that applies its changelog
    itself bypasses that method, and the store has no public call for the note."""
    store._key_partition[key] = partition


def stored_values(table: TableT) -> dict[str, Any]:
    """The dict under a table's in-memory store. The fold reads it directly: ``Table.get``
    passes every read through Faust's collection layers and a sensor hook, and a missing
    key (a new event's root entry, the common read) through a KeyError as well."""
    values: dict[str, Any] = table.data.data  # type: ignore[attr-defined]
    return values


def partition_db(store: Any, partition: int) -> Any:
    """The RocksDB database of one partition of a table on Faust's RocksDB store, opened
    if it is not. The store reads and writes only a key at a time, taking the partition
    from the current event, and the tracker writes many keys per partition at once,
    outside any event."""
    return store._db_for_partition(partition)


def open_partition_db(store: Any, partition: int) -> Any | None:
    """The partition's database if the store has it open (None once the partition was
    revoked: opening it again here would hold its lock and keep it from the store)."""
    dbs: dict[int, Any] = store._dbs
    return dbs.get(partition)


def persisted_offset_key() -> bytes:
    """The key under which Faust's RocksDB store keeps, in each partition's database, the
    changelog offset table recovery starts from."""
    key: bytes = faust_rocksdb.Store.offset_key
    return key


# -- the start-up check -------------------------------------------------------------------

@dataclass(frozen=True)
class Reliance:
    """A private name of a faust-streaming class the tracker relies on. ``set_by``: for an
    attribute each instance gets, the method of ``owner`` that sets it."""

    owner: type
    name: str
    set_by: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__qualname__}.{self.name}"

    def holds(self) -> bool:
        if self.set_by is None:
            return hasattr(self.owner, self.name)
        # An instance attribute exists only once the app has made the instance, as the
        # worker starts: the name is looked for in the code of the method that sets it.
        method = getattr(self.owner, self.set_by, None)
        code = getattr(method, "__code__", None)
        return code is not None and self.name in code.co_names


RELIED_ON = (
    Reliance(faust_aiokafka.Producer, "_settings_extra"),  # IdempotentProducer
    Reliance(faust.App, "_new_transport"),  # TrackerApp
    Reliance(faust.App, "_new_producer_transport"),  # TrackerApp
    Reliance(faust_aiokafka.Producer, "_producer"),  # kafka_producer
    Reliance(faust_aiokafka.Consumer, "_thread", set_by="__init__"),  # committed_offsets
    # RecoverySafeConsumer (called by __init__)
    Reliance(faust_consumer.ThreadDelegateConsumer, "_new_consumer_thread", set_by="__init__"),
    # ShortFetchWaitThread
    Reliance(faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer"),
    Reliance(AIOKafkaConsumer, "_fetch_max_wait_ms", set_by="__init__"),
    Reliance(faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer"),  # committed_offsets
    Reliance(faust_consumer.Consumer, "_gap", set_by="__init__"),  # forget_gap
    Reliance(faust_consumer.Consumer, "_read_offset", set_by="__init__"),  # handed_to_streams
    Reliance(faust_memory.Store, "_key_partition", set_by="__post_init__"),  # note_key_partition
    Reliance(faust_memory.Store, "data", set_by="__post_init__"),  # stored_values
    Reliance(faust_rocksdb.Store, "_db_for_partition"),  # partition_db
    Reliance(faust_rocksdb.Store, "_dbs", set_by="__init__"),  # open_partition_db
    Reliance(faust_rocksdb.Store, "offset_key"),  # persisted_offset_key
)


def check() -> None:
    """Stop with a one-line ``TrackerError`` naming every private name of faust-streaming
    that the tracker relies on and the installed version lacks."""
    missing = [f"`{reliance.qualified_name}`" for reliance in RELIED_ON if not reliance.holds()]
    if missing:
        raise TrackerError(
            f"faust-streaming {faust.__version__} has no {', '.join(missing)}, which the "
            "tracker relies on (services/tracker/compat.py): install the pinned "
            f"faust-streaming=={PINNED_FAUST}")
