"""/metrics text of the tracker's series: the bulk histograms expose what prometheus_client's
Histogram would for the same observations; the per-pair gauges, set only when their
figures change, show what setting them all every time would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)
from prometheus_client.registry import DuplicateTimeseries

from services.tracker.domain.fold import replay
from services.tracker.domain.ledger import Headline, HeadlineCache
from services.tracker.domain.progress import Progress
from services.tracker.domain.validation import Kind
from services.tracker.metrics import (
    LAG_BUCKETS,
    LATENCY_BUCKETS,
    BulkHistogram,
    TrackerMetrics,
    day_start,
)

NOW = 1_700_000_000.0
# A value seen n times adds value * n to the sum, where a Histogram adds it n times: the
# same up to the last bits (0.005 * 18 is not 0.005 added 18 times). So any value, the
# bucket bounds among them, comes once; a repeated one is a number of sixteenths, which
# both sums hold exactly - and the text compares byte for byte.
OBSERVATIONS = st.one_of(
    st.lists(st.tuples(st.one_of(st.sampled_from(LATENCY_BUCKETS),
                                 st.floats(-1.0, 1e9), st.just(float("inf"))),
                       st.just(1)), max_size=30),
    st.lists(st.tuples(st.integers(0, 2**20).map(lambda sixteenths: sixteenths / 16),
                       st.integers(1, 1000)), max_size=30))


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both kinds of histogram read the clock for ``_created``; the tracker for "now"."""
    monkeypatch.setattr(time, "time", lambda: NOW)


@pytest.fixture(params=[True, False], ids=["created", "no-created"])
def created_series(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.param:
        enable_created_metrics()
    else:
        disable_created_metrics()
    yield
    enable_created_metrics()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # both hold for all
@given(observations=OBSERVATIONS)
def test_a_bulk_histogram_shows_what_a_histogram_shows(
        observations: list[tuple[float, int]], frozen_clock: None,
        created_series: None) -> None:
    reference_registry, bulk_registry = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("latency_seconds", "Some help.", buckets=LATENCY_BUCKETS,
                          registry=reference_registry)
    bulk = BulkHistogram("latency_seconds", "Some help.", LATENCY_BUCKETS, bulk_registry)
    for value, count in observations:
        for _ in range(count):
            reference.observe(value)
    bulk.observe_counts(observations)
    assert generate_latest(bulk_registry) == generate_latest(reference_registry)


def test_a_bulk_histogram_reserves_its_names() -> None:
    registry = CollectorRegistry()  # not auto_describe: the collector says its names
    BulkHistogram("latency_seconds", "Some help.", LATENCY_BUCKETS, registry)
    with pytest.raises(DuplicateTimeseries):
        Histogram("latency_seconds", "Other help.", registry=registry)


def test_the_tracker_histograms_show_what_one_observation_per_event_showed(
        frozen_clock: None) -> None:
    """The contract's names, help texts and buckets; an event with no broker time counts
    towards the lag only."""
    applied = [(NOW - 0.0625, "2023-11-14"), (NOW - 0.0625, "2023-11-14"),
               (NOW - 0.0625, "2023-11-10"), (NOW - 2.5, "2023-11-10"),
               (NOW - 40.0, "2023-01-01"), (NOW - 0.25, "2017-01-01"),
               (NOW + 3.0, "2023-11-30"),  # clock skew, and an event day ahead: both 0
               (0.0, "2023-11-14")]
    reference_registry = CollectorRegistry()
    event_lag = Histogram("tracker_event_lag_seconds", "Now minus the event time of the "
                          "newest applied event.", buckets=LAG_BUCKETS,
                          registry=reference_registry)
    latency = Histogram("tracker_processing_latency_seconds", "Broker append time to table "
                        "update.", buckets=LATENCY_BUCKETS, registry=reference_registry)
    for broker_timestamp, day in applied:
        if broker_timestamp:
            latency.observe(max(0.0, NOW - broker_timestamp))
        event_lag.observe(max(0.0, NOW - day_start(day)))

    metrics = TrackerMetrics(CollectorRegistry(auto_describe=True))
    metrics.observe_applied(applied[:4])
    metrics.observe_applied(applied[4:])
    metrics.observe_applied([])
    for name in ("tracker_event_lag_seconds", "tracker_processing_latency_seconds"):
        expected = exposition(reference_registry, name)
        assert expected.startswith(f"# HELP {name} ".encode())
        assert exposition(metrics.registry, name) == expected


def exposition(registry: CollectorRegistry, histogram: str) -> bytes:
    """The text of one histogram of a registry."""
    return generate_latest(registry.restricted_registry(
        [f"{histogram}_{suffix}" for suffix in ("bucket", "count", "sum", "created")]))


# -- gauges of a pair --------------------------------------------------------------------

def headline_of(*records: tuple[Kind, bytes]) -> Headline:
    """The IN-RU headline lines after folding ``records``."""
    return HeadlineCache().lines(replay(records).store.ledgers["IN-RU"])


def pair_series(registry: CollectorRegistry) -> list[str]:
    """The /metrics lines of the per-pair gauges."""
    return [line for line in generate_latest(registry).decode().splitlines()
            if line.startswith(("tracker_total_usd{", "tracker_settlement_share{",
                                "tracker_commitment_"))]


def test_a_pair_shows_usd_totals_and_settlement_shares_per_year(make: ModuleType) -> None:
    lines = headline_of(make.fx_rate(currency="EUR", rate="2"),
                        make.trade("t1", amount="100", occurred_at="2024-05-15"),
                        make.trade("t2", amount="50", currency="EUR",
                                   occurred_at="2024-02-10"))
    metrics = TrackerMetrics(CollectorRegistry())
    metrics.show_headline("IN-RU", lines)

    def total(sector: str, period: str) -> float | None:
        return metrics.registry.get_sample_value(
            "tracker_total_usd", {"pair": "IN-RU", "sector": sector, "period": period})

    def share(period: str, currency: str) -> float | None:
        return metrics.registry.get_sample_value(
            "tracker_settlement_share", {"pair": "IN-RU", "period": period,
                                         "currency": currency})

    # 100 USD in May 2024 (FY2024-25), 50 EUR at 2 = 100 USD in February (FY2023-24)
    assert [total("trade", "2024"), total("all", "2024")] == [200.0, 200.0]
    assert [total("all", "FY2023-24"), total("all", "FY2024-25")] == [100.0, 100.0]
    assert total("all", "2024-05") is None, "months are in GET /totals/ only"
    assert [share("2024", "USD"), share("2024", "EUR")] == [0.5, 0.5]
    assert [share("FY2023-24", "EUR"), share("FY2024-25", "USD")] == [1.0, 1.0]
    assert metrics.pairs() == {"IN-RU"}


def test_figures_shown_again_and_again_are_those_shown_once(make: ModuleType) -> None:
    """Unchanged lines and values are skipped, not lost: not after a value went back, nor
    after the pair left this worker and came back with the same lines."""
    first = [make.fx_rate(currency="EUR", rate="2"),
             make.trade("t1", amount="100", occurred_at="2023-05-15"),
             make.trade("t2", amount="70", currency="EUR", occurred_at="2024-02-10")]
    before = headline_of(*first)
    # Same periods and currencies, other figures: a series that goes stays shown (as it
    # always has), which this compares around.
    after = headline_of(*first, make.trade("t3", amount="10", currency="EUR",
                                           occurred_at="2024-03-01"),
                        make.trade("t1c", amount="40", occurred_at="2023-05-15",
                                   corrects="t1"))
    metrics = TrackerMetrics(CollectorRegistry())
    for lines in (before, after, before, after, after):
        metrics.show_headline("IN-RU", lines)
        assert pair_series(metrics.registry) == shown_once("IN-RU", lines)
    metrics.forget_pair("IN-RU")
    assert pair_series(metrics.registry) == []
    assert metrics.pairs() == set()
    metrics.show_headline("IN-RU", after)
    assert pair_series(metrics.registry) == shown_once("IN-RU", after)


def shown_once(pair: str, lines: Headline) -> list[str]:
    metrics = TrackerMetrics(CollectorRegistry())
    metrics.show_headline(pair, lines)
    return pair_series(metrics.registry)


def test_a_projection_that_goes_and_comes_back_is_shown() -> None:
    projected = Progress(
        commitment_id="c1", pair="IN-RU", sector="trade", metric="value_usd",
        basis="annual", target=Decimal(1000), achieved=Decimal(250), ratio=Decimal("0.25"),
        run_rate_per_year=Decimal(100), projected_completion=date(2030, 6, 30),
        status="at_risk", data_through="2024-05", period_start=date(2024, 1, 1),
        deadline=date(2029, 12, 31), source="statement", as_of=date(2024, 6, 1))
    stalled = replace(projected, run_rate_per_year=Decimal(0), projected_completion=None)
    labels = {"commitment_id": "c1", "pair": "IN-RU", "sector": "trade",
              "metric": "value_usd"}
    metrics = TrackerMetrics(CollectorRegistry())

    def shown() -> float | None:
        return metrics.registry.get_sample_value(
            "tracker_commitment_projected_completion_timestamp_seconds", labels)

    metrics.show_progress(projected)
    assert shown() == day_start("2030-06-30")
    metrics.show_progress(stalled)
    assert shown() is None
    assert metrics.registry.get_sample_value("tracker_commitment_progress_ratio",
                                             labels) == 0.25
    metrics.show_progress(projected)
    assert shown() == day_start("2030-06-30")
    metrics.forget_pair("IN-RU")
    assert pair_series(metrics.registry) == []
