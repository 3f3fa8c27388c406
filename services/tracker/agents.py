"""Faust agents: thin wiring that validates, re-keys and folds with the pure domain code.

Two stages, one internal topic between them:

1. ``route_transactions`` and ``route_reference`` validate what producers sent. Invalid
   records go to ``dead-letters`` with the original key and bytes and the reason in
   headers. Valid transactions are normalised and re-keyed by canonical pair; FX rates and
   commitments are broadcast to every partition, so each partition folds them in log
   order with the transactions they affect.
2. ``fold`` applies each ledger-input message to the tables at its (offset, sequence)
   position, which makes a replay after a crash harmless (see domain/ledger.py).
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

import faust
import orjson

from schemas.events import CommitmentChanged, FxRatePublished
from services.tracker.domain.flows import Flow, flow_of
from services.tracker.domain.fold import apply_commitment, apply_flow, apply_fx_rate
from services.tracker.domain.ledger import settlement_shares, totals
from services.tracker.domain.progress import commitment_pair, progress
from services.tracker.domain.reference import is_defined
from services.tracker.domain.validation import Kind, validate
from services.tracker.errors import InvalidEventError
from services.tracker.metrics import TrackerMetrics
from services.tracker.settings import Settings
from services.tracker.tables import PartitionStore, TrackerTables, partition_of

log = logging.getLogger(__name__)

METRIC_OUTCOME = {"applied": "applied", "corrected": "applied", "superseded": "applied",
                  "duplicate": "duplicate", "pending": "pending"}


class Pipeline:
    """Holds the topics and registers the agents on the app."""

    def __init__(self, app: faust.App, settings: Settings, tables: TrackerTables,
                 metrics: TrackerMetrics) -> None:
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
        async for event in stream.events():
            message = event.message
            envelope = orjson.loads(event.value)
            store = PartitionStore(self.tables, message.partition, self.settings.partitions)
            touched: set[str] = set()
            if envelope["kind"] == "transaction":
                flow = Flow.from_json(envelope["flow"])
                outcome = apply_flow(store, flow, (message.offset, 0))
                self.metrics.count(envelope["topic"], METRIC_OUTCOME[outcome])
                if outcome != "pending":
                    # Faust gives Message.timestamp in seconds already.
                    self.metrics.observe_applied(envelope["timestamp"], flow.day)
                touched.add(flow.pair)
            elif envelope["kind"] == "fx_rate":
                fx_event = FxRatePublished.model_validate_json(envelope["event"])
                for pair, outcome in apply_fx_rate(store, fx_event, message.offset):
                    self.metrics.count("released-pending", METRIC_OUTCOME[outcome])
                    touched.add(pair)
            else:
                commitment = CommitmentChanged.model_validate_json(envelope["event"])
                apply_commitment(store, commitment, message.offset)
                stored = store.reference()["commitments"].get(commitment.commitment_id)
                if is_defined(stored):
                    pair = commitment_pair(stored)
                    if partition_of(pair, self.settings.partitions) == message.partition:
                        touched.add(pair)
            for pair in touched:
                await self._publish(store, pair)

    async def _publish(self, store: PartitionStore, pair: str) -> None:
        """Refresh the pair's metrics and send a progress snapshot per commitment."""
        ledger = store.ledger(pair)
        buckets = ledger["buckets"] if ledger else {}
        self.metrics.show_totals(pair, {k: float(v) for k, v in totals(buckets).items()})
        self.metrics.show_settlement(
            pair, {k: float(v) for k, v in settlement_shares(buckets).items()})
        today = date.today()
        for commitment in store.reference()["commitments"].values():
            if not is_defined(commitment) or commitment_pair(commitment) != pair:
                continue
            snapshot = progress(commitment, buckets, today)
            self.metrics.show_progress(snapshot)
            value = {**snapshot.to_json(), "published_at": time.time()}
            await self.progress_updates.send(key=snapshot.commitment_id.encode(),
                                             value=orjson.dumps(value))
