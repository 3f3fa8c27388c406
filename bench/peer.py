"""Baseline B, "peer": the tracker's core aggregation written with Quix Streams.

Sum of USD amounts by canonical pair and month, deduplicated by event id, in Quix Streams'
stateful processing (RocksDB state per message key, changelog topics, at-least-once
checkpoints every 5 s, the library's defaults). The input is keyed by canonical pair, as
``tracker produce`` keys it, so the state of a pair lives under its key: ``e:<event id>``
marks a seen event and ``m:<month>`` holds the month's running sum as a decimal string.

Unlike the tracker it does not validate events with pydantic, does not re-key through an
internal topic, keeps no per-event correction history and publishes no metrics; those
differences are part of what the comparison shows.

Runs in its own virtualenv (bench/peer-requirements.txt); standard library + quixstreams.
"""

from __future__ import annotations

import argparse
import logging
import time
from decimal import Decimal
from typing import Any

from bench.proto import cpu_seconds, emit, latency_summary, vm_hwm_kib


def run(bootstrap: str, topic_name: str, group: str, state_dir: str, count: int,
        latency: bool) -> None:
    from quixstreams import Application, State

    app = Application(broker_address=bootstrap, consumer_group=group,
                      auto_offset_reset="earliest", state_dir=state_dir, loglevel="WARNING",
                      processing_guarantee="at-least-once")
    topic = app.topic(topic_name, key_deserializer="str", value_deserializer="json")
    sdf = app.dataframe(topic)
    stats: dict[str, Any] = {"seen": 0, "duplicates": 0, "first": 0.0, "last": 0.0,
                             "usd": Decimal(0)}
    latencies: list[float] = []

    def fold(value: dict[str, Any], key: Any, timestamp: int, headers: Any,
             state: State) -> None:
        now = time.time()
        if not stats["first"]:
            stats["first"] = now
            emit("first", t=now)
        stats["seen"] += 1
        marker = "e:" + value["event_id"]
        if state.get(marker) is not None:
            stats["duplicates"] += 1
        else:
            state.set(marker, 1)
            low, high = sorted((value["reporter"], value["partner"]))
            month = f"m:{low}-{high}:{value['occurred_at'][:7]}"
            amount = Decimal(value["amount"])
            state.set(month, str(Decimal(state.get(month, "0")) + amount))
            stats["usd"] += amount
        if latency:
            latencies.append(time.time() - timestamp / 1000)
        stats["last"] = time.time()
        if stats["seen"] >= count:
            app.stop()

    sdf.update(fold, stateful=True, metadata=True)
    cpu_start = cpu_seconds() or 0.0
    app.run()
    emit("result", count=stats["seen"], duplicates=stats["duplicates"], first=stats["first"],
         last=stats["last"], closed=time.time(), usd=str(stats["usd"]),
         cpu=(cpu_seconds() or 0.0) - cpu_start, vm_hwm_kib=vm_hwm_kib(),
         latency=latency_summary(latencies[1:]) if latency else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True, help="consumer group (names the changelogs)")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--count", type=int, required=True, help="events to process, then stop")
    parser.add_argument("--latency", action="store_true", help="keep per-event latencies")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        import quixstreams
    except ImportError as error:
        emit("unavailable", reason=f"quixstreams is not importable: {error}")
        raise SystemExit(3) from None
    emit("version", quixstreams=quixstreams.__version__)
    run(args.bootstrap, args.topic, args.group, args.state_dir, args.count, args.latency)


if __name__ == "__main__":
    main()
