"""Builds the whole tracker - app, tables, agents, views, metrics - from settings."""

from __future__ import annotations

import gc
from dataclasses import dataclass

import faust
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry

from services.tracker import compat
from services.tracker.agents import Pipeline
from services.tracker.api.views import Views
from services.tracker.app import create_faust_app
from services.tracker.domain.ledger import HeadlineCache
from services.tracker.metrics import FAUST_PREFIX, TrackerMetrics
from services.tracker.monitor import LagMonitor
from services.tracker.settings import Settings
from services.tracker.tables import TrackerTables


@dataclass(frozen=True)
class Tracker:
    settings: Settings
    app: faust.App
    tables: TrackerTables
    metrics: TrackerMetrics
    pipeline: Pipeline
    views: Views


# Allocations between young collections (Python's default: 700).
GC_YOUNG_THRESHOLD = 100_000


def build_tracker(settings: Settings) -> Tracker:
    compat.check()
    # The fold keeps many small long-lived objects (ledger months, root entries); with the
    # default thresholds the collector walks them over and over (a third of the fold's time
    # in a profile). Young garbage is still collected, in larger steps.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)
    app = create_faust_app(settings)
    tables = TrackerTables.declare(app, settings.partitions)
    registry = CollectorRegistry(auto_describe=True)
    metrics = TrackerMetrics(registry)
    # Faust's own health in the same registry (no page of its own: /metrics serves both):
    # rebalances and recoveries, end and committed offsets per partition (their difference
    # is the consumer lag), commit latency, send errors.
    app.monitor = LagMonitor(metrics=FaustMetrics.create(registry, FAUST_PREFIX))
    headlines = HeadlineCache()  # one cache for the publish timer and the views
    pipeline = Pipeline(app, settings, tables, metrics, headlines)
    views = Views(app, settings, tables, metrics, headlines)
    return Tracker(settings, app, tables, metrics, pipeline, views)
