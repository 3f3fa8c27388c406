"""Latency at a steady offered rate, send -> value visible at the tracker's /metrics: probe
events on a pair nothing else uses, and a poller scraping /metrics until each shows."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from bench.common import (
    PROBE_MONTH,
    PROBE_PAIR,
    events_folded,
    make_batch,
    median,
    probe_value,
    steady_load,
    trade_event,
)
from bench.proto import latency_summary
from bench.session import Session
from bench.worker import TrackerWorker


@dataclass(frozen=True)
class VisibleWindow:
    """Send -> visible for the probes of one window; latencies are upper bounds."""

    p50: float
    p99: float
    count: int  # probes that became visible
    low50: float  # median of the lower bounds
    sent: int
    missing: int  # probes never seen in time
    bracket: float  # median gap between the scrape that missed a probe and the one showing it
    scrape: float  # median seconds per /metrics scrape
    duty: float  # share of the window spent scraping


async def measure_tracker(session: Session, worker: TrackerWorker, topic: str, rate: float,
                          seconds: float, suffix: str, label: str, capacity: float) -> None:
    """One window at ``rate``; its rows are keyed and labelled like the latency phase's
    window it follows (``suffix``, ``label``)."""
    r = session.report
    seen = await visible_window(session, worker, topic, rate, seconds, f"v{suffix}", capacity)
    vis50 = r.figure("vis50" + suffix,
                     f"latency p50{label}, send -> value visible at /metrics", "ms")
    vis99 = r.figure("vis99" + suffix,
                     f"latency p99{label}, send -> value visible at /metrics", "ms")
    vis50.tracker, vis99.tracker = seen.p50 * 1e3, seen.p99 * 1e3
    vis50.note = (f"{seen.count} probes, upper bounds (lower bound p50 "
                  f"{seen.low50 * 1e3:,.0f} ms; median gap between the scrape "
                  f"that missed a probe and the one that showed it "
                  f"{seen.bracket * 1e3:,.0f} ms)")
    vis99.note = (f"/metrics scrape took {seen.scrape * 1e3:,.0f} ms median; "
                  f"scraping occupied {seen.duty:.0%} of the window")
    if seen.missing:
        r.check(f"every probe became visible at {rate:,.0f}/s", False,
                f"{seen.missing} of {seen.sent} never showed")


async def visible_window(session: Session, worker: TrackerWorker, topic: str, rate: float,
                         seconds: float, tag: str, capacity: float) -> VisibleWindow:
    """Steady load with probe events on a pair nothing else uses (``PROBE_PAIR``, month
    ``PROBE_MONTH``) every 0.7-1.3 s; a poller scrapes /metrics until the pair's total
    includes each probe. Probes of one pair are folded in order, so the total reaching
    the running sum through probe k means probe k is visible.

    A latency is an upper bound: from just before ``send`` to the end of the first scrape
    that shows it; it became visible after the start of the scrape before, which gives
    the uncertainty."""
    total = int(rate * seconds)
    folded = events_folded(await worker.samples(session.client), worker.trade_topic)
    base = probe_value(await worker.metrics(session.client))
    load = iter(make_batch(total, f"{tag}{session.tag}", seed=len(tag) + 7).records)
    producer = AIOKafkaProducer(bootstrap_servers=session.bootstrap, acks=1, linger_ms=0)
    await producer.start()
    probes: list[tuple[float, float]] = []  # (sent at, running total through it)
    visible: dict[int, tuple[float, float]] = {}  # probe -> (upper, lower) bound
    scrapes: list[float] = []
    sending = asyncio.Event()
    sending.set()

    async def send_probes() -> None:
        expected = base
        while sending.is_set():
            amount = 1000 + len(probes)
            value = trade_event(f"{tag}p{session.tag}-{len(probes)}", PROBE_PAIR,
                                f"{PROBE_MONTH}-15", f"{amount}.00", session.rng)
            expected += amount
            probes.append((time.time(), expected))
            await producer.send(topic, value, key=PROBE_PAIR.encode())
            await asyncio.sleep(session.rng.uniform(0.7, 1.3))

    async def poll(deadline: float) -> None:
        previous: float | None = None
        while (sending.is_set() or len(visible) < len(probes)) \
                and time.monotonic() < deadline:
            if len(visible) == len(probes):
                await asyncio.sleep(0.005)  # nothing outstanding: no scrape
                continue
            started = time.time()
            text = await worker.metrics(session.client)
            ended = time.time()
            scrapes.append(ended - started)
            value = probe_value(text)
            for index, (sent, expected) in enumerate(probes):
                if index not in visible and value >= expected - 0.005:
                    lower = max(0.0, previous - sent) if previous is not None else 0.0
                    visible[index] = (ended - sent, lower)
            previous = started
            waiting = [sent for index, (sent, _) in enumerate(probes)
                       if index not in visible]
            # Scrape back to back while a probe is young, then back off to a quarter of
            # its age: about 25% resolution, and little load when the worker is behind.
            await asyncio.sleep(max(0.005, 0.25 * (ended - min(waiting))) if waiting
                                else 0.005)

    window_start = time.monotonic()
    poller = asyncio.create_task(poll(window_start + seconds
                                      + max(120.0, 3 * total / max(capacity, 1.0))))
    prober = asyncio.create_task(send_probes())
    try:
        await steady_load(producer, topic, load, rate, total)
    finally:
        sending.clear()
        await prober
        await poller
        await producer.stop()
    window = time.monotonic() - window_start
    await worker.wait_folded(session.client, folded + total + len(probes), least=1.0,
                             timeout=max(300.0, total / 20))
    uppers = sorted(upper for upper, _ in visible.values())
    summary = latency_summary(uppers)
    lowers = sorted(lower for _, lower in visible.values())
    return VisibleWindow(p50=summary["p50"], p99=summary["p99"], count=len(uppers),
                         low50=median(lowers), sent=len(probes),
                         missing=len(probes) - len(visible),
                         bracket=median(sorted(up - low for up, low in visible.values())),
                         scrape=median(sorted(scrapes)), duty=sum(scrapes) / window)
