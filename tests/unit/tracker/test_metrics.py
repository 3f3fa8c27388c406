"""/metrics text of the tracker's series: the bulk histograms expose what prometheus_client's
Histogram would for the same observations."""

from __future__ import annotations

import time
from collections.abc import Iterator

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
