"""The stream wiring: the batch intake and the fold agent, thin around the pure domain.

1. The intake (``services/tracker/intake``), in a process of its own next to the
   worker's, validates what producers sent, in batches over aiokafka. Invalid records go
   to ``dead-letters`` with the original key and bytes and the reason in headers. A batch
   goes on to the internal ledger-input topic as one record per destination partition:
   transactions normalised and routed by canonical pair, FX rates and commitments copied
   to every partition, so each partition folds them in log order with the transactions
   they affect.
2. ``fold`` is a Faust agent over ledger-input: Faust's per-record cost is paid once per
   batch. It applies each item at its position (record offset, index in the record),
   which makes a replay after a crash harmless (see domain/ledger.py), and writes each
   touched table key once per record.

Metrics and progress snapshots are refreshed on a timer for the pairs that changed, off
the fold's hot path.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Any

import faust
import orjson

from schemas.events import FxRatePublished
from services.tracker.changelog_writes import OrderedWrites
from services.tracker.compat import kafka_producer, wait_before_flush
from services.tracker.continuity import OffsetContinuity
from services.tracker.domain.fold import apply_commitment, apply_flows, apply_fx_rate
from services.tracker.domain.ledger import Headline, HeadlineCache, Position
from services.tracker.domain.progress import commitment_pair, progress
from services.tracker.domain.reference import is_defined
from services.tracker.failpoints import crash_at
from services.tracker.intake import process as intake_process
from services.tracker.intake.envelope import ReferenceItem, decode_runs
from services.tracker.metrics import TrackerMetrics
from services.tracker.partitioning import partition_of
from services.tracker.settings import Settings
from services.tracker.tables import (
    BatchStore,
    TrackerTables,
    owned_partitions,
    partition_reference,
)

log = logging.getLogger(__name__)

CONTINUITY_CHECK = 2.0  # seconds between checks for partitions that stopped short
# Seconds a worker whose intake ended may take to stop before it exits without finishing.
STOP_AFTER_CRASH = 20.0

METRIC_OUTCOME = {"applied": "applied", "corrected": "applied", "superseded": "applied",
                  "duplicate": "duplicate", "pending": "pending"}


def exit_if_still_running(seconds: float) -> None:
    """Exit the process with status 1 in ``seconds`` unless it has ended by then. A Faust
    worker stopping after a crash can wait forever for its consumer to stop
    (robinhood/faust#684, open; seen once in 613 tests: "RecoverySafeConsumer: Stopping..."
    and nothing after), and a worker that neither folds nor exits is the one outcome the
    intake's supervision must not have."""
    def exit_now() -> None:
        log.error("The worker did not stop within %.0f s of its intake ending; exiting", seconds)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()


class CountedRecords:
    """Which ledger-input records this process has counted in its metrics: per partition,
    the highest offset folded. A record folded again (Faust resumes from the last commit
    after a rebalance; the continuity guard sends a partition back) repeats the outcomes
    of its first fold, since its positions are already applied; counted again, every
    event in it would show twice in ``tracker_events_total`` and its first broker append,
    long past, in the latency. A new process counts from its start, as its counters do."""

    def __init__(self) -> None:
        self.through: dict[int, int] = {}
        self.replaying: set[int] = set()

    def first_time(self, partition: int, offset: int) -> bool:
        """Note a folded record; False if this process folded (and counted) it before."""
        through = self.through.get(partition, -1)
        if offset > through:
            self.through[partition] = offset
            self.replaying.discard(partition)
            return True
        if partition not in self.replaying:
            self.replaying.add(partition)
            log.info("ledger-input[%d]: folding again from offset %d (folded up to %d "
                     "here before); those records are not counted again", partition,
                     offset, through)
        return False


class IntakeProcess(faust.Service):
    """Runs the intake's process from the start of the app. An app task would start once
    the tables are recovered, but the intake needs nothing of them: started with the app,
    its own start (a Python process, a group join) overlaps the worker's, and the first
    ledger-input records are waiting when the fold begins."""

    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]], **kwargs: Any) -> None:
        self._run = run
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self.add_future(self._run())  # cancelled when the app stops


class Pipeline:
    """Holds the topics and registers the agents on the app."""

    def __init__(self, app: faust.App, settings: Settings, tables: TrackerTables,
                 metrics: TrackerMetrics, headlines: HeadlineCache) -> None:
        self.app = app
        self.settings = settings
        self.tables = tables
        self.metrics = metrics
        names = settings.topics

        self.ledger_input = app.topic(names.ledger, key_type=bytes, value_type=bytes,
                                      key_serializer="raw", value_serializer="raw",
                                      partitions=settings.partitions, internal=False)
        self.progress_updates = app.topic(names.progress, key_type=bytes, value_type=bytes,
                                          key_serializer="raw", value_serializer="raw")
        app.agent(self.ledger_input, name="fold")(self.fold)
        app.add_dependency(IntakeProcess(self.run_intake))
        self.continuity = OffsetContinuity(app, set(self.ledger_input.topics))
        app.on_rebalance_complete.connect(self._before_streams_resume)
        self.dirty: set[str] = set()  # pairs whose metrics and snapshots are stale
        self.folded = 0  # ledger-input records folded by this process
        self.counted = CountedRecords()
        self.changelog_write_failed = False
        self.headlines = headlines
        app.timer(settings.publish_interval, name="publish-progress")(self.publish_dirty)
        app.timer(CONTINUITY_CHECK, name="continuity-watch")(self.continuity.watch)

    async def _before_streams_resume(self, sender: Any, /, *args: Any, signal: Any,
                                     **kwargs: Any) -> None:
        await self.continuity.rebase()
        self._forget_moved_pairs()

    def _forget_moved_pairs(self) -> None:
        """Pairs whose partition went to another worker: their state (kept for standby
        partitions), their metrics and cached headlines go, so nothing here lists or exports
        a pair twice or stale."""
        partitions = self.settings.partitions
        changelog = self.tables.ledgers.changelog_topic.get_topic_name()
        # Only what both the assignor and the consumer say is gone: state dropped by mistake
        # would be folded again from the committed offsets onto nothing.
        consumed = {tp.partition for tp in self.app.consumer.assignment()
                    if tp.topic in self.ledger_input.topics}
        restored = {tp.partition for tp in self.app.consumer.assignment()
                    if tp.topic == changelog}
        kept = owned_partitions(self.app, self.tables, standby=True) | consumed | restored
        dropped = self.tables.drop_partitions_except(kept, partitions)
        active = owned_partitions(self.app, self.tables) | consumed
        moved = dropped | {pair for pair in self.metrics.pairs()
                           if partition_of(pair, partitions) not in active}
        for pair in moved:
            self.metrics.forget_pair(pair)
            self.headlines.forget(pair)
        if moved:
            log.info("%d pair(s) moved to other workers: no longer listed or exported here",
                     len(moved))

    async def run_intake(self) -> None:
        """The intake runs in its own process for as long as the worker; if it ends, so
        does the worker, rather than serve figures that no longer move."""
        try:
            await intake_process.supervise(self.metrics.count)
        except Exception as error:
            log.error("The intake stopped: %s", error)
            exit_if_still_running(STOP_AFTER_CRASH)
            await self.app.crash(error)

    # -- the fold --------------------------------------------------------------------------

    async def fold(self, stream: faust.StreamT) -> None:
        """Fold one ledger-input record (a batch) at a time.

        Faust acks a record when the next one is taken, after its changelog records are
        handed to ``writes``, and flushes the producer - which waits for ``writes`` -
        before committing offsets, so a crash can at worst replay the record, which the
        positions make harmless. Stopped between two records, it saves the ledgers.
        """
        partitions = self.settings.partitions
        writes = OrderedWrites.on(kafka_producer(self.app), self._changelog_failed)
        # Faust flushes its producer before it commits: the writes still waiting in the
        # chain go first.
        wait_before_flush(self.app, writes.drained)
        between_records = True
        try:
            async for event in stream.events():
                between_records = False
                await self._fold_record(event, partitions, writes)
                between_records = True
        except asyncio.CancelledError:
            if between_records:
                await self._save_ledgers(writes)
            raise
        # Faust ends the stream (StopAsyncIteration thrown into it) when the worker stops.
        await self._save_ledgers(writes)

    async def _fold_record(self, event: faust.EventT, partitions: int,
                           writes: OrderedWrites) -> None:
        message = event.message
        if not self.continuity.admit(message):
            return
        store = BatchStore(self.tables, message.partition, partitions)
        outcomes: Counter[tuple[str, str]] = Counter()
        # Per event: what the metrics need, gathered in plain lists and counted once.
        folded: list[tuple[str, str]] = []
        applied: list[tuple[float, str]] = []
        pairs: set[str] = set()
        offset = message.offset
        for index, what in decode_runs(event.value):
            if isinstance(what, ReferenceItem):
                self._fold_reference(store, what, (offset, index), outcomes)
                continue
            sources, flows = what
            for source, flow, outcome in zip(sources, flows,
                                             apply_flows(store, flows, offset, index),
                                             strict=True):
                folded.append((source.topic, outcome))
                if outcome != "pending":
                    applied.append((source.timestamp, flow.day))
                pairs.add(flow.pair)
        for (topic, outcome), count in Counter(folded).items():
            outcomes[(topic, METRIC_OUTCOME[outcome])] += count
        self.dirty |= pairs
        await store.flush(message.offset, writes)
        self.folded += 1
        crash_at(self.folded, self.settings.fold_crash_after_records,
                 "after a folded record queued its changelog writes, before its commit")
        if self.counted.first_time(message.partition, offset):
            for (topic, outcome), count in outcomes.items():
                self.metrics.count(topic, outcome, count)
            self.metrics.observe_applied(applied)

    async def _save_ledgers(self, writes: OrderedWrites) -> None:
        """Save the ledgers of the partitions this worker folds, once the broker has every
        changelog write, for the next worker on this data directory to read only the
        tail of their changelog (``ledger_snapshots``). Not after a write failed, nor
        while a rebalance has the partitions in flux."""
        app = self.app
        # The chain of writes first (``wait_before_flush``), then every delivery acknowledged.
        await app.producer.flush()
        if self.changelog_write_failed or app.rebalancing or app.in_recovery:
            log.info("Ledgers not saved: %s", "a changelog write failed"
                     if self.changelog_write_failed else "stopped during a rebalance")
            return
        started = time.monotonic()
        saved = self.tables.ledgers.save_snapshots(owned_partitions(app, self.tables))
        log.info("Ledgers of partition(s) %s saved in %.2f s, for a restart to read only "
                 "the tail of their changelog", ", ".join(map(str, saved)) or "(none)",
                 time.monotonic() - started)

    def _changelog_failed(self, error: BaseException) -> None:
        """A changelog write was lost: the tables could no longer be recovered as they
        are, so the worker stops (and replays from its last commit when restarted)."""
        log.error("A changelog write failed (%r); stopping the worker", error)
        self.changelog_write_failed = True
        self.app.add_future(self.app.crash(error))

    def _fold_reference(self, store: BatchStore, item: ReferenceItem, position: Position,
                        outcomes: Counter[tuple[str, str]]) -> None:
        event = item.event
        if isinstance(event, FxRatePublished):
            for pair, outcome in apply_fx_rate(store, event, position):
                outcomes[("released-pending", METRIC_OUTCOME[outcome])] += 1
                self.dirty.add(pair)
            return
        apply_commitment(store, event, position)
        stored = store.reference()["commitments"].get(event.commitment_id)
        if is_defined(stored):
            pair = commitment_pair(stored)
            if partition_of(pair, self.settings.partitions) == store.partition:
                self.dirty.add(pair)

    # -- publishing ------------------------------------------------------------------------

    async def publish_dirty(self) -> None:
        """Refresh metrics and send progress snapshots for the pairs changed since the last
        call. Runs on a timer, off the fold's hot path: a burst of events for one pair
        costs one snapshot, not one per event."""
        pairs, self.dirty = self.dirty, set()
        for pair in sorted(pairs):
            await self._publish(pair)
            # A pair takes a millisecond or more; the fold must not wait for all of them.
            await asyncio.sleep(0)

    async def _publish(self, pair: str) -> None:
        """Refresh the pair's metrics and send a progress snapshot per commitment."""
        ledger = self.tables.ledgers.get(pair)
        if ledger is None:  # not (or no longer) owned here
            return
        self.metrics.show_headline(pair, self.headlines.lines(ledger))
        today = date.today()
        today_lines: Headline | None = None  # only for pairs with commitments
        reference = partition_reference(self.tables,
                                        partition_of(pair, self.settings.partitions))
        for commitment in reference["commitments"].values():
            if not is_defined(commitment) or commitment_pair(commitment) != pair:
                continue
            if today_lines is None:
                today_lines = self.headlines.lines(ledger, today)
            snapshot = progress(commitment, {}, today, lines=today_lines)
            self.metrics.show_progress(snapshot)
            value = {**snapshot.to_json(), "published_at": time.time()}
            await self.progress_updates.send(key=snapshot.commitment_id.encode(),
                                             value=orjson.dumps(value))
