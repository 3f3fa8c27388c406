"""Faust's own health in Prometheus, without its per-event bookkeeping.

``faust.sensors.prometheus.PrometheusMonitor`` runs for every message, stream event,
table read and send: labelled counters, a regex over the stream's label, timing state in
its base ``Monitor`` - several times the cost of folding one event, for figures nothing
here reads. The dashboard and alerts use what
Faust reports per commit and per rebalance - end and committed offsets (consumer lag),
rebalances, recoveries, commit latency, assignment and send errors - so those hooks stay
and the per-event ones go.
"""

from __future__ import annotations

from typing import Any

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor


class LagMonitor(PrometheusMonitor):
    """``PrometheusMonitor`` with its per-event hooks turned off."""

    def __init__(self, metrics: FaustMetrics, **kwargs: Any) -> None:
        super().__init__(metrics=metrics, **kwargs)
        self.faust_metrics = metrics  # the base class keeps them, but as a private name

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_table_get(self, table: Any, key: Any) -> None:
        return None

    def on_table_set(self, table: Any, key: Any, value: Any) -> None:
        return None

    def on_table_del(self, table: Any, key: Any) -> None:
        return None

    def on_send_initiated(self, producer: Any, topic: str, message: Any, keysize: int,
                          valsize: int) -> None:
        return None

    def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
        return None

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        self.send_errors += 1
        self.faust_metrics.total_error_messages_sent.inc()
