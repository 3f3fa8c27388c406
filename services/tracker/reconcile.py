"""``tracker reconcile``: recompute every figure from the topics with the pure fold and
compare it with what a live worker serves. Differences mean the service and its log
disagree - the one thing an event-sourced tracker must never do."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from services.tracker.api.figures import figure_text
from services.tracker.api.models import Progress
from services.tracker.domain.fold import ReplayReport, replay
from services.tracker.domain.ledger import buckets_of, totals
from services.tracker.domain.progress import commitment_pair, progress
from services.tracker.domain.reference import is_defined
from services.tracker.domain.validation import Kind
from services.tracker.listing import every_item
from services.tracker.log import read_to_end
from services.tracker.settings import Settings

COMPARED_FIELDS = ("target", "achieved", "ratio", "run_rate_per_year", "projected_completion",
                   "status")


@dataclass
class LogRecord:
    timestamp: int
    topic: str
    partition: int
    offset: int
    kind: Kind
    value: bytes


@dataclass
class Reconciliation:
    records: dict[str, int] = field(default_factory=dict)
    dead_letters_expected: int = 0
    dead_letters_in_topic: int = 0
    # (what, key, value from the log, live value)
    differences: list[tuple[str, str, str, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences


async def read_log(settings: Settings) -> tuple[list[LogRecord], int]:
    names = settings.topics
    kinds: dict[str, Kind] = {names.trade: "trade", names.energy: "energy",
                              names.defense: "defense", names.commitments: "commitment",
                              names.fx_rates: "fx_rate"}
    log: list[LogRecord] = []
    for topic, kind in kinds.items():
        for message in await read_to_end(settings, topic):
            log.append(LogRecord(message.timestamp, topic, message.partition, message.offset,
                                 kind, message.value))
    # Arrival order approximates the order the worker saw them in.
    log.sort(key=lambda r: (r.timestamp, r.topic, r.partition, r.offset))
    dead = {(dict(m.headers).get("tracker.source.topic"), dict(m.headers).get(
        "tracker.source.partition"), dict(m.headers).get("tracker.source.offset"))
        for m in await read_to_end(settings, names.dead_letters)}
    return log, len(dead)


def expected_rows(report: ReplayReport) -> tuple[dict[tuple[str, ...], str], dict[str, Any]]:
    rows: dict[tuple[str, ...], str] = {}
    for pair, ledger in report.store.ledgers.items():
        for (sector, measure, period), amount in totals(buckets_of(ledger)).items():
            rows[(pair, sector, measure, period)] = figure_text(amount)
    commitments: dict[str, Any] = {}
    today = date.today()
    for commitment_id, commitment in report.store.reference()["commitments"].items():
        if not is_defined(commitment):
            continue
        pair_ledger = report.store.ledgers.get(commitment_pair(commitment))
        buckets = buckets_of(pair_ledger)
        # As the views serialise it, so the comparison is of the same rounding.
        commitments[commitment_id] = Progress.model_validate(
            progress(commitment, buckets, today)).model_dump(mode="json")
    return rows, commitments


def compare(result: Reconciliation, what: str, expected: dict[Any, Any],
            live: dict[Any, Any], same: Any) -> None:
    for key in sorted(set(expected) | set(live), key=str):
        log_value, live_value = expected.get(key), live.get(key)
        if log_value is None or live_value is None or not same(log_value, live_value):
            result.differences.append((what, "/".join(map(str, key)) if isinstance(key, tuple)
                                       else str(key), str(log_value), str(live_value)))


def reconcile(settings: Settings, url: str) -> Reconciliation:
    log, dead_in_topic = asyncio.run(read_log(settings))
    report = replay([(record.kind, record.value) for record in log], settings.max_event_bytes)
    result = Reconciliation(dead_letters_in_topic=dead_in_topic,
                            dead_letters_expected=report.outcomes.get("dead_letter", 0))
    for record in log:
        result.records[record.topic] = result.records.get(record.topic, 0) + 1
    expected_totals, expected_commitments = expected_rows(report)
    live_rows = every_item(url, "/totals/")
    live_totals = {(r["pair"], r["sector"], r["measure"], r["period"]): r["value"]
                   for r in live_rows}
    compare(result, "total", expected_totals, live_totals,
            lambda a, b: Decimal(a) == Decimal(b))
    live_items = every_item(url, "/commitments/")
    live_commitments = {item["commitment_id"]: item for item in live_items}
    compare(result, "commitment", expected_commitments, live_commitments,
            lambda a, b: all(a[f] == b[f] for f in COMPARED_FIELDS))
    if result.dead_letters_expected != result.dead_letters_in_topic:
        result.differences.append(("dead letters", "count", str(result.dead_letters_expected),
                                   str(result.dead_letters_in_topic)))
    return result
