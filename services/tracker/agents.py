"""Faust agents: thin wiring that validates, re-keys and folds with the pure domain code.

Two stages, one internal topic between them:

1. ``route_transactions`` and ``route_reference`` validate what producers sent. Invalid
   records go to ``dead-letters`` with the original key and bytes and the reason in
   headers. Valid transactions are normalised and re-keyed by canonical pair; FX rates and
   commitments are broadcast to every partition, so each partition folds them in log
   order with the transactions they affect.
2. ``fold`` applies each ledger-input message to the tables at its (offset, sequence)
   position, which makes a replay after a crash harmless (see domain/ledger.py). It folds
   a batch at a time and writes each touched key once per batch.

Metrics and progress snapshots are refreshed on a timer for the pairs that changed, off
the fold's hot path.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

import faust
import orjson

from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.continuity import OffsetContinuity
from services.tracker.domain.flows import Flow, flow_of
from services.tracker.domain.fold import apply_commitment, apply_flow, apply_fx_rate
from services.tracker.domain.ledger import HeadlineCache, settlement_shares, totals
from services.tracker.domain.progress import commitment_pair, progress
from services.tracker.domain.reference import is_defined
from services.tracker.domain.validation import Kind, validate
from services.tracker.errors import InvalidEventError
from services.tracker.metrics import TrackerMetrics
from services.tracker.settings import Settings
from services.tracker.tables import (
    BatchStore,
    TrackerTables,
    owned_partitions,
    partition_of,
    partition_reference,
)

log = logging.getLogger(__name__)

METRIC_OUTCOME = {"applied": "applied", "corrected": "applied", "superseded": "applied",
                  "duplicate": "duplicate", "pending": "pending"}


class Pipeline:
    """Holds the topics and registers the agents on the app."""

    def __init__(self, app: faust.App, settings: Settings, tables: TrackerTables,
                 metrics: TrackerMetrics, headlines: HeadlineCache) -> None:
        self.app = app
        self.settings = settings
        self.tables = tables
        self.metrics = metrics
        names = settings.topics

        def topic(*topic_names: str) -> faust.TopicT:
            return app.topic(*topic_names, key_type=bytes, value_type=bytes,
                             key_serializer="raw", value_serializer="raw")

        self.transactions = topic(*names.transactions)
        self.reference_sources = topic(names.commitments, names.fx_rates)
        self.ledger_input = app.topic(names.ledger, key_type=bytes, value_type=bytes,
                                      key_serializer="raw", value_serializer="raw",
                                      partitions=settings.partitions, internal=False)
        self.dead_letters = topic(names.dead_letters)
        self.progress_updates = topic(names.progress)
        self.kinds: dict[str, Kind] = {names.trade: "trade", names.energy: "energy",
                                       names.defense: "defense", names.commitments: "commitment",
                                       names.fx_rates: "fx_rate"}
        app.agent(self.transactions, name="route-transactions")(self.route_transactions)
        app.agent(self.reference_sources, name="route-reference")(self.route_reference)
        app.agent(self.ledger_input, name="fold")(self.fold)
        self.continuity = OffsetContinuity(app, {
            *self.transactions.topics, *self.reference_sources.topics,
            *self.ledger_input.topics})
        app.on_rebalance_complete.connect(self._before_streams_resume)
        self.dirty: set[str] = set()  # pairs whose metrics and snapshots are stale
        self.headlines = headlines
        app.timer(settings.publish_interval, name="publish-progress")(self.publish_dirty)

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

    # -- stage 1: validate and re-key ------------------------------------------------------

    async def _dead_letter(self, message: Any, reason: str) -> None:
        log.warning("Dead letter from %s[%d]@%d: %s", message.topic, message.partition,
                    message.offset, reason)
        headers = [("tracker.reason", reason.encode()),
                   ("tracker.source.topic", message.topic.encode()),
                   ("tracker.source.partition", str(message.partition).encode()),
                   ("tracker.source.offset", str(message.offset).encode())]
        await self.dead_letters.send(key=message.key, value=message.value, headers=headers)
        self.metrics.count(message.topic, "dead_letter")

    async def route_transactions(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            if not self.continuity.admit(message):
                continue
            try:
                flow = flow_of(validate(self.kinds[message.topic], event.value,  # type: ignore[arg-type]
                                        self.settings.max_event_bytes))
            except InvalidEventError as error:
                await self._dead_letter(message, error.reason)
                continue
            envelope = {"kind": "transaction", "topic": message.topic,
                        "partition": message.partition, "offset": message.offset,
                        "timestamp": message.timestamp, "flow": flow.to_json()}
            await self.ledger_input.send(key=flow.pair.encode(), value=orjson.dumps(envelope))

    async def route_reference(self, stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            if not self.continuity.admit(message):
                continue
            kind = self.kinds[message.topic]
            try:
                validated = validate(kind, event.value, self.settings.max_event_bytes)
            except InvalidEventError as error:
                await self._dead_letter(message, error.reason)
                continue
            envelope = orjson.dumps({"kind": kind, "topic": message.topic,
                                     "event": validated.model_dump_json()})
            for partition in range(self.settings.partitions):
                await self.ledger_input.send(key=message.key, value=envelope,
                                             partition=partition)
            self.metrics.count(message.topic, "applied")

    # -- stage 2: fold ---------------------------------------------------------------------

    async def fold(self, stream: faust.StreamT) -> None:
        """Fold a batch at a time: each touched table key is written once per batch.

        ``take_events`` acks the events only after the batch is folded and its changelog
        records are queued, and Faust flushes the producer before committing offsets, so a
        crash can at worst replay the batch - which the positions make harmless.
        """
        settings = self.settings
        # take_events exists on Stream but is missing from StreamT in faust-streaming.
        async for events in stream.take_events(  # type: ignore[attr-defined]
                settings.fold_batch_size, within=settings.fold_batch_within):
            stores: dict[int, BatchStore] = {}
            applied: list[tuple[float, str]] = []
            for event in events:
                message = event.message
                if not self.continuity.admit(message):
                    continue
                store = stores.get(message.partition)
                if store is None:
                    store = stores[message.partition] = BatchStore(
                        self.tables, message.partition, settings.partitions)
                self._fold_one(store, message, orjson.loads(event.value), applied)
            for store in stores.values():
                store.flush()
            for broker_timestamp, day in applied:
                # Faust gives Message.timestamp in seconds already.
                self.metrics.observe_applied(broker_timestamp, day)

    def _fold_one(self, store: BatchStore, message: Any, envelope: dict[str, Any],
                  applied: list[tuple[float, str]]) -> None:
        if envelope["kind"] == "transaction":
            flow = Flow.from_json(envelope["flow"])
            outcome = apply_flow(store, flow, (message.offset, 0))
            self.metrics.count(envelope["topic"], METRIC_OUTCOME[outcome])
            if outcome != "pending":
                applied.append((envelope["timestamp"], flow.day))
            self.dirty.add(flow.pair)
        elif envelope["kind"] == "fx_rate":
            fx_event = FxRatePublished.model_validate_json(envelope["event"])
            for pair, outcome in apply_fx_rate(store, fx_event, message.offset):
                self.metrics.count("released-pending", METRIC_OUTCOME[outcome])
                self.dirty.add(pair)
        else:
            commitment = CommitmentChanged.model_validate_json(envelope["event"])
            apply_commitment(store, commitment, message.offset)
            stored = store.reference()["commitments"].get(commitment.commitment_id)
            if is_defined(stored):
                pair = commitment_pair(stored)
                if partition_of(pair, self.settings.partitions) == message.partition:
                    self.dirty.add(pair)

    # -- publishing ------------------------------------------------------------------------

    async def publish_dirty(self) -> None:
        """Refresh metrics and send progress snapshots for the pairs changed since the last
        call. Runs on a timer, off the fold's hot path: a burst of events for one pair
        costs one snapshot, not one per event."""
        pairs, self.dirty = self.dirty, set()
        for pair in sorted(pairs):
            await self._publish(pair)

    async def _publish(self, pair: str) -> None:
        """Refresh the pair's metrics and send a progress snapshot per commitment."""
        ledger = self.tables.ledgers.get(pair)
        if ledger is None:  # not (or no longer) owned here
            return
        lines = self.headlines.lines(ledger)
        self.metrics.show_totals(pair, {k: float(v) for k, v in
                                        totals({}, lines=lines).items()})
        self.metrics.show_settlement(pair, {k: float(v) for k, v in
                                            settlement_shares({}, lines=lines).items()})
        today = date.today()
        today_lines = self.headlines.lines(ledger, today)
        reference = partition_reference(self.tables,
                                        partition_of(pair, self.settings.partitions))
        for commitment in reference["commitments"].values():
            if not is_defined(commitment) or commitment_pair(commitment) != pair:
                continue
            snapshot = progress(commitment, {}, today, lines=today_lines)
            self.metrics.show_progress(snapshot)
            value = {**snapshot.to_json(), "published_at": time.time()}
            await self.progress_updates.send(key=snapshot.commitment_id.encode(),
                                             value=orjson.dumps(value))
