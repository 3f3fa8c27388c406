"""Provenance: which events make up a figure. The tables keep only summaries; the details
come from the log on demand - the pair's partition of the ledger-input topic, replayed
with the pure fold, carries every flow with its source topic, partition and offset."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from schemas.events import FxRatePublished
from services.tracker.domain.fold import (
    MemoryStore,
    apply_commitment,
    apply_flow,
    apply_fx_rate,
)
from services.tracker.domain.ledger import JSON, alias_target, buckets_of, expanded, totals
from services.tracker.domain.periods import months_of
from services.tracker.intake.envelope import ReferenceItem, decode_batch
from services.tracker.log import read_to_end
from services.tracker.partitioning import partition_of
from services.tracker.settings import Settings

LARGEST = 10


@dataclass(frozen=True)
class Figure:
    pair: str
    sector: str
    measure: str
    months: frozenset[str] | None  # None: every month
    as_of: date | None

    def covers(self, bucket: str) -> bool:
        sector, measure, _route, _role, day, _currency = bucket.split("|")
        return (self.sector in ("all", sector) and measure == self.measure
                and (self.months is None or day[:7] in self.months)
                and (self.as_of is None or day <= self.as_of.isoformat()))


@dataclass
class Replayed:
    store: MemoryStore = field(default_factory=MemoryStore)
    sources: dict[str, list[JSON]] = field(default_factory=dict)  # event id -> where it was
    duplicates: list[str] = field(default_factory=list)


def replay_pair(messages: list[Any], pair: str) -> Replayed:
    """Fold one pair's flows (and the reference data) exactly as the worker did."""
    replayed = Replayed()
    for message in messages:
        for index, item in enumerate(decode_batch(message.value)):
            position = (message.offset, index)
            if isinstance(item, ReferenceItem):
                if isinstance(item.event, FxRatePublished):
                    apply_fx_rate(replayed.store, item.event, position)
                else:
                    apply_commitment(replayed.store, item.event, position)
                continue
            if item.flow.pair != pair:
                continue
            replayed.sources.setdefault(item.flow.event_id, []).append(item.source.to_json())
            if apply_flow(replayed.store, item.flow, position) == "duplicate":
                replayed.duplicates.append(item.flow.event_id)
    return replayed


async def explain(settings: Settings, figure: Figure) -> JSON:
    messages = await read_to_end(settings, settings.topics.ledger,
                                 [partition_of(figure.pair, settings.partitions)])
    return summarise(replay_pair(messages, figure.pair), figure)


def summarise(replayed: Replayed, figure: Figure) -> JSON:
    ledger = replayed.store.ledgers.get(figure.pair)
    buckets = buckets_of(ledger)
    # The mirror rule: an exporter's report is hidden where the importer reported that
    # route and month.
    importer_months = set()
    for key in buckets:
        sector, measure, route, role, day, _currency = key.split("|")
        if role == "importer" and (figure.as_of is None or day <= figure.as_of.isoformat()):
            importer_months.add((sector, measure, route, day[:7]))
    contributions, corrections = [], []
    by_topic: Counter[str] = Counter()
    entries = [expanded(entry) for entry in replayed.store.roots.values()
               if alias_target(entry) is None]
    for entry in entries:
        if not entry["current"]:
            continue
        parts = {k: Decimal(v) for k, v in entry["current"].items() if figure.covers(k)}
        if not parts:
            continue
        event_id = entry["current_event"]
        source = replayed.sources[event_id][0]
        key = next(iter(parts))
        sector, measure, route, role, day, currency = key.split("|")
        hidden = role == "exporter" and (sector, measure, route, day[:7]) in importer_months
        contributions.append({"event_id": event_id, **source, "day": day, "route": route,
                              "reported_by": role, "currency": currency,
                              "amount": str(sum(parts.values(), Decimal(0))),
                              "counted": not hidden})
        if not hidden:
            by_topic[source["topic"]] += 1
        for change in entry["changes"].values():
            if change["outcome"] in ("corrected", "superseded"):
                before = sum((Decimal(v) for k, v in (change["before"] or {}).items()
                              if figure.covers(k)), Decimal(0))
                corrections.append({"event_id": change["event_id"],
                                    "sources": replayed.sources.get(change["event_id"], []),
                                    "outcome": change["outcome"],
                                    "replaced_amount": str(before)})
    root_of = {event_id: entry for entry in entries for event_id in entry["seen"]}
    duplicates = [{"event_id": event_id, "sources": replayed.sources[event_id]}
                  for event_id in sorted(set(replayed.duplicates))
                  if any(figure.covers(k) for k in root_of[event_id]["current"] or {})]
    pending = [{"event_id": item["flow"]["event_id"], "currency": item["flow"]["currency"],
                "day": item["flow"]["day"], "sources": replayed.sources[item["flow"]["event_id"]]}
               for item in (ledger["pending"] if ledger else [])]
    value = sum((Decimal(c["amount"]) for c in contributions if c["counted"]), Decimal(0))
    figure_totals = totals(buckets, figure.as_of)
    contributions.sort(key=lambda c: Decimal(c["amount"]), reverse=True)
    return {
        "pair": figure.pair, "sector": figure.sector, "measure": figure.measure,
        "as_of": figure.as_of.isoformat() if figure.as_of else None,
        "value": str(value), "events_counted": sum(by_topic.values()),
        "events_by_topic": dict(sorted(by_topic.items())),
        "largest": contributions[:LARGEST],
        "hidden_by_mirror_rule": [c for c in contributions if not c["counted"]][:LARGEST],
        "corrections": corrections, "duplicates_ignored": duplicates,
        "pending_fx": pending, "periods_in_figure": len(figure_totals),
    }


def figure_for_period(pair: str, sector: str, measure: str, period: str | None,
                      as_of: date | None) -> Figure:
    return Figure(pair, sector, measure, frozenset(months_of(period)) if period else None, as_of)
