"""Latency at a steady offered rate, broker append -> table update: the tracker from its
latency histogram (with a second window, send -> value visible at /metrics, from
bench.phases.visibility), the baselines per event on their own topics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from bench.common import (
    Child,
    create_topic,
    events_folded,
    histogram,
    histogram_quantile,
    make_batch,
    steady_load,
)
from bench.phases import visibility
from bench.session import Session
from bench.worker import TrackerWorker

LATENCY = "tracker_processing_latency_seconds"


@dataclass(frozen=True)
class UpdateWindow:
    """Broker append -> table update in one window, from the histogram's bucket deltas."""

    elapsed: float  # seconds the load took to send
    drain: float  # seconds from the last send until the worker had folded everything
    p50: float
    p99: float
    count: int  # observations in the window
    capped: bool  # the p99 fell beyond the last bucket
    complete: bool  # every event of the window was folded in time


async def measure_tracker(session: Session, worker: TrackerWorker, topic: str) -> None:
    """Both windows at the offered rate, and again at half the tracker's throughput when
    that rate is above it."""
    r = session.report
    rate, seconds = session.options.latency_rate, session.options.latency_seconds
    capacity = r.figures["throughput"].tracker
    windows = [("", rate)]
    if capacity < rate:
        # Above capacity the latency is the queue; also measure at half the throughput.
        windows.append(("s", max(10.0, float(round(capacity / 2, -1 if capacity > 200
                                                     else 0)))))
    for suffix, at in windows:
        label = "" if not suffix else f" at {at:,.0f}/s"
        session.say(f"tracker latency: {at:,.0f} events/s for {seconds:.0f} s, histogram ...")
        update = await update_window(session, worker, topic, at, seconds, f"u{suffix}")
        p50 = r.figure("p50" + suffix, f"latency p50{label}, broker append -> table update",
                       "ms")
        p99 = r.figure("p99" + suffix, f"latency p99{label}, broker append -> table update",
                       "ms")
        p50.tracker, p99.tracker = update.p50 * 1e3, update.p99 * 1e3
        over = " ≥ (beyond the last bucket, 30 s)" if update.capped else ""
        p50.note = (f"{update.count:,} observations, {at:,.0f}/s offered "
                    f"for {update.elapsed:.1f} s; quantiles from bucket deltas{over}")
        p99.note = (f"backlog drained {update.drain:.1f} s after the last send"
                    + (" — offered load above the tracker's capacity: this is queueing"
                       if at > capacity else ""))
        if suffix:
            p50.note += "; the baselines were only run at the main rate"
        if not update.complete:
            r.check(f"tracker folded the {at:,.0f}/s window", False, "timed out")
        session.say(f"tracker latency: {at:,.0f} events/s for {seconds:.0f} s, probes ...")
        await visibility.measure_tracker(session, worker, topic, at, seconds, suffix, label,
                                         capacity)


async def update_window(session: Session, worker: TrackerWorker, topic: str, rate: float,
                        seconds: float, tag: str) -> UpdateWindow:
    """Steady load with no scraping during it; the latency histogram before and after."""
    total = int(rate * seconds)
    before = await worker.samples(session.client)
    folded = events_folded(before, worker.trade_topic)
    load = iter(make_batch(total, f"{tag}{session.tag}", seed=len(tag) + 5).records)
    producer = AIOKafkaProducer(bootstrap_servers=session.bootstrap, acks=1, linger_ms=0)
    await producer.start()
    try:
        elapsed = await steady_load(producer, topic, load, rate, total)
    finally:
        await producer.stop()
    end = time.monotonic()
    done, count = await worker.wait_folded(session.client, folded + total, least=1.0,
                                           timeout=max(300.0, total / 20))
    after = await worker.samples(session.client)
    hist = (histogram(before, LATENCY), histogram(after, LATENCY))
    p50, observed, _ = histogram_quantile(*hist, 0.50)
    p99, _, capped = histogram_quantile(*hist, 0.99)
    return UpdateWindow(elapsed=elapsed, drain=max(0.0, done - end), p50=p50, p99=p99,
                        count=observed, capped=capped, complete=count >= folded + total)


async def measure_baselines(session: Session) -> None:
    """The raw consumer and the peer, each on its own topic at the main rate; each records
    now - append time per event."""
    rate, seconds = session.options.latency_rate, session.options.latency_seconds
    total = int(rate * seconds)
    r = session.report

    async def measure(name: str, make_child: Callable[[str, int], Child]) -> dict[str, float]:
        topic = f"bench{session.tag}-lat-{name}"
        await create_topic(session.bootstrap, topic)
        child = make_child(topic, total + 1)
        await child.start()
        producer = AIOKafkaProducer(bootstrap_servers=session.bootstrap, acks=1, linger_ms=0)
        await producer.start()
        try:
            warm = make_batch(1, f"w{name}{session.tag}", seed=9).records[0]
            await producer.send_and_wait(topic, warm[1], key=warm[0])
            await child.expect("first", 180)
            load = iter(make_batch(total, f"{name}{session.tag}", seed=5).records)
            await steady_load(producer, topic, load, rate, total)
        finally:
            await producer.stop()
        result = await child.expect("result", 600)
        await child.finish()
        latency: dict[str, float] = result["latency"]
        return latency

    def raw_child(topic: str, count: int) -> Child:
        return session.raw_child("raw-latency", topic, count, latency=True)

    def peer_child(topic: str, count: int) -> Child:
        return session.peer_child("peer-latency", topic, f"peerlat{session.tag}",
                                  session.workdir / "peer-lat-state", count, latency=True)

    session.say(f"baseline latency: {rate:,.0f} events/s for {seconds:.0f} s each ...")
    raw = await measure("raw", raw_child)
    if raw:
        r.figure("p50", "", "").raw = raw["p50"] * 1e3
        r.figure("p99", "", "").raw = raw["p99"] * 1e3
    peer = await session.peer_step("latency", measure("peer", peer_child))
    if peer:
        r.figure("p50", "", "").peer = peer["p50"] * 1e3
        r.figure("p99", "", "").peer = peer["p99"] * 1e3
