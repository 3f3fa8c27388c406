"""Prometheus metrics of the contract. The registry is passed in, never global, so tests
and several apps in one process do not share series."""

from __future__ import annotations

import collections
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from datetime import time as clock
from functools import lru_cache
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from services.tracker.domain.flows import VALUE
from services.tracker.domain.ledger import Headline, settlement_shares, totals
from services.tracker.domain.progress import Progress

FAUST_PREFIX = "tracker_faust"
COMMITMENT_LABELS = ("commitment_id", "pair", "sector", "metric")
# Fine around 100 ms, the latency the service aims to stay under at steady load.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10,
                   30)
LAG_BUCKETS = (60, 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400, 5 * 365 * 86400)

Series = tuple[Gauge, tuple[str, ...]]  # a gauge and the label values of one of its series


@lru_cache(maxsize=4096)
def day_start(day: str) -> float:
    """Epoch seconds of a day's start, UTC (asked per applied event; days repeat)."""
    return datetime.combine(datetime.fromisoformat(day).date(), clock.min,
                            tzinfo=UTC).timestamp()


class BulkHistogram:
    """A histogram without labels that takes many observations under one lock.

    prometheus_client's ``Histogram`` takes a mutex per observation (twice: sum and
    bucket); the fold observes hundreds of events per ledger-input record, most of them
    sharing a broker timestamp or an event day, so it hands them over once per record as
    (value, count). The exposition is the one ``Histogram`` gives: same samples, ``le``
    labels, ``_created`` when prometheus_client exports it.

    /metrics renders on the event loop that folds (Faust's ``web_in_thread`` is off), but
    a scrape from another thread stays consistent, at one lock per record, not per event.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float],
                 registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        bounds = [float(bound) for bound in buckets]
        if bounds[-1] != math.inf:  # as Histogram: the +Inf bucket is always there
            bounds.append(math.inf)
        self._upper_bounds = tuple(bounds)
        self._le = tuple(floatToGoString(bound) for bound in bounds)
        self._counts = [0] * len(bounds)
        self._sum = 0.0
        self._created = time.time()
        self._lock = threading.Lock()
        registry.register(self)

    def observe_counts(self, observations: Iterable[tuple[float, int]]) -> None:
        """Observe each value ``count`` times."""
        bounds, counts = self._upper_bounds, self._counts
        with self._lock:
            for value, count in observations:
                counts[bisect_left(bounds, value)] += count  # the first bound >= value
                self._sum += value * count

    def describe(self) -> list[Metric]:
        """The family without samples, so the registry reserves its names."""
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        family = HistogramMetricFamily(self.name, self.documentation,
                                       buckets=list(zip(self._le, accumulate(counts), strict=True)),
                                       sum_value=total)
        if prometheus_metrics._use_created:  # the switch Histogram follows
            family.add_sample(f"{self.name}_created", {}, self._created)
        yield family


class TrackerMetrics:
    """Every series the tracker exports; each worker exports only the pairs it owns."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.target = Gauge("tracker_commitment_target", "Commitment target, in its metric "
                            "(USD for value_usd).", COMMITMENT_LABELS, registry=registry)
        self.achieved = Gauge("tracker_commitment_achieved", "Achieved so far: trailing twelve "
                              "months (annual) or sum since period start (cumulative).",
                              COMMITMENT_LABELS, registry=registry)
        self.ratio = Gauge("tracker_commitment_progress_ratio", "achieved / target.",
                           COMMITMENT_LABELS, registry=registry)
        self.projected = Gauge("tracker_commitment_projected_completion_timestamp_seconds",
                               "Projected date the target is met, Unix seconds; absent when "
                               "no growth.", COMMITMENT_LABELS, registry=registry)
        self.total_usd = Gauge("tracker_total_usd", "Running total value in USD under the "
                               "mirror rule.", ("pair", "sector", "period"), registry=registry)
        self.settlement_share = Gauge(
            "tracker_settlement_share", "Share of the pair's trade value (all sectors) settled "
            "in a currency, per calendar and fiscal year.", ("pair", "period", "currency"),
            registry=registry)
        self._event_counters: dict[tuple[str, str], Counter] = {}
        self.events = Counter("tracker_events", "Events handled, by source topic and outcome.",
                              ("topic", "outcome"), registry=registry)
        self.event_lag = BulkHistogram("tracker_event_lag_seconds", "Now minus the event time "
                                       "of the newest applied event.", LAG_BUCKETS, registry)
        self.latency = BulkHistogram("tracker_processing_latency_seconds", "Broker append time "
                                     "to table update.", LATENCY_BUCKETS, registry)
        # pair -> the series set for it, so a pair that moves to another worker is dropped
        # here whole (prometheus_client removes series by their full label values only);
        # each with its child, as labels() costs more than the set, and the value it shows,
        # so an unchanged figure is not set again.
        self._pair_series: dict[str, dict[Series, tuple[Gauge, float]]] = {}
        # pair -> the headline lines its totals and shares were last shown from
        self._shown_lines: dict[str, Headline] = {}

    def _set(self, gauge: Gauge, pair: str, labels: tuple[str, ...], value: float) -> None:
        series = self._pair_series.setdefault(pair, {})
        shown = series.get((gauge, labels))
        if shown is None:
            child = gauge.labels(*labels)
        elif shown[1] == value:
            return
        else:
            child = shown[0]
        child.set(value)
        series[(gauge, labels)] = (child, value)

    def _unset(self, gauge: Gauge, pair: str, labels: tuple[str, ...]) -> None:
        if self._pair_series.get(pair, {}).pop((gauge, labels), None) is not None:
            gauge.remove(*labels)

    def forget_pair(self, pair: str) -> None:
        """Stop exporting a pair this worker no longer owns."""
        self._shown_lines.pop(pair, None)
        for gauge, labels in self._pair_series.pop(pair, {}):
            gauge.remove(*labels)

    def pairs(self) -> set[str]:
        """Pairs with series exported here."""
        return set(self._pair_series)

    def count(self, topic: str, outcome: str, amount: int = 1) -> None:
        child = self._event_counters.get((topic, outcome))
        if child is None:  # labels() costs more than the increment; called per event
            child = self._event_counters[(topic, outcome)] = self.events.labels(topic, outcome)
        child.inc(amount)

    def observe_applied(self, applied: Collection[tuple[float, str]]) -> None:
        """The events one ledger-input record applied, as (broker append time, event day)
        each; a zero time (none known) leaves the event out of the latency."""
        if not applied:
            return
        now = time.time()
        timestamps, days = zip(*applied, strict=True)
        self.latency.observe_counts((max(0.0, now - timestamp), count)
                                    for timestamp, count in collections.Counter(timestamps).items()
                                    if timestamp)
        self.event_lag.observe_counts((max(0.0, now - day_start(day)), count)
                                      for day, count in collections.Counter(days).items())

    def show_progress(self, progress: Progress) -> None:
        labels = (progress.commitment_id, progress.pair, progress.sector, progress.metric)
        self._set(self.target, progress.pair, labels, float(progress.target))
        self._set(self.achieved, progress.pair, labels, float(progress.achieved))
        self._set(self.ratio, progress.pair, labels, float(progress.ratio))
        if progress.projected_completion is None:
            self._unset(self.projected, progress.pair, labels)
        else:
            when = datetime.combine(progress.projected_completion, clock.min, tzinfo=UTC)
            self._set(self.projected, progress.pair, labels, when.timestamp())

    def show_headline(self, pair: str, lines: Headline) -> None:
        """The pair's USD totals and settlement shares from its headline lines, unless
        these are the lines they were last shown from (a pair is refreshed for duplicates,
        pending events and commitments too).

        Calendar and fiscal years only: months would multiply the series by twelve and
        make every scrape slow; monthly figures are in GET /totals/."""
        if self._shown_lines.get(pair) == lines:
            return
        self._shown_lines[pair] = lines
        for (sector, measure, period), value in totals({}, lines=lines).items():
            if measure == VALUE and _is_year(period):
                self._set(self.total_usd, pair, (pair, sector, period), float(value))
        for (period, currency), share in settlement_shares({}, lines=lines).items():
            if _is_year(period):
                self._set(self.settlement_share, pair, (pair, period, currency), float(share))


def _is_year(period: str) -> bool:
    return period.startswith("FY") or len(period) == 4
