"""Throughput and CPU per event on the same N pre-produced events: the raw consumer, the
peer and one tracker worker, each checked to have read or folded every event once."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal

from bench.common import PAIRS, Batch, create_topic, make_batch, median, produce_fast
from bench.fold_window import fold_window
from bench.phases import memory, profiling
from bench.report import Figure, Report
from bench.session import Session
from bench.worker import TrackerWorker
from services.tracker import roots
from services.tracker.topics import table_changelog_topic


def throughput_figure(report: Report) -> Figure:
    return report.figure("throughput", "throughput", "events/s", 0)


def ready_throughput_figure(report: Report) -> Figure:
    return report.figure("throughput_ready", "throughput, from /health/ 200", "events/s", 0)


def cpu_figure(report: Report) -> Figure:
    return report.figure("cpu", "CPU per event", "µs", 1)


async def produce_input(session: Session, topic: str) -> Batch:
    """The N events every reader of this phase reads, on a 4-partition topic."""
    n = session.options.events
    session.say(f"generating and producing {n:,} events to {topic} ...")
    await create_topic(session.bootstrap, topic)
    batch = make_batch(n, f"b{session.tag}")
    rate = await produce_fast(session.bootstrap, topic, batch.records)
    size = sum(len(v) for _, v in batch.records) / n
    session.report.context.append(
        f"input: {n:,} trade events, {size:.0f} bytes of JSON on average, distinct ids, "
        f"USD, {len(PAIRS)} pairs, 2021-2025, keyed by pair, 4 partitions, "
        f"LogAppendTime; pre-produced at {rate:,.0f} events/s (aiokafka, acks=1, linger 20 ms)")
    return batch


async def measure_raw(session: Session, topic: str) -> None:
    """Baseline A: aiokafka ``getmany`` reading the events, no processing."""
    session.say("baseline A: raw aiokafka getmany ...")
    n = session.options.events
    child = session.raw_child("raw-throughput", topic, n)
    await child.start()
    result = await child.expect("result", 900)
    await child.finish()
    ready = result.get("ready") or result["first"]
    r = session.report
    throughput_figure(r).raw = result["count"] / max(result["last"] - ready, 1e-9)
    cpu_figure(r).raw = result["cpu"] / result["count"] * 1e6
    memory.peak_memory_figure(r).raw = result["vm_hwm_kib"] / 1024
    r.check("raw consumer read every event", result["count"] == n,
            f"{result['count']:,} of {n:,}")


async def measure_peer(session: Session, topic: str, usd: Decimal) -> None:
    """Baseline B: the same aggregation in Quix Streams with RocksDB state."""
    session.say("baseline B: Quix Streams stateful aggregation ...")
    n = session.options.events
    child = session.peer_child("peer-throughput", topic, f"peer{session.tag}",
                               session.workdir / "peer-state", n)
    await child.start()
    version = await child.expect("version", 120)
    result = await child.expect("result", 1800)
    await child.finish()
    r = session.report
    r.context.append(f"peer: quixstreams {version['quixstreams']} (default settings, "
                     "at-least-once, RocksDB state with changelog topics)")
    elapsed = max(result["last"] - result["first"], 1e-9)
    throughput_figure(r).peer = (result["count"] - 1) / elapsed
    cpu_figure(r).peer = result["cpu"] / result["count"] * 1e6
    memory.peak_memory_figure(r).peer = result["vm_hwm_kib"] / 1024
    r.check("peer folded every event once, exact USD sum",
            result["count"] == n and result["duplicates"] == 0
            and Decimal(result["usd"]) == usd,
            f"{result['count']:,} events, {result['duplicates']} duplicates")


# After /health/ 200, the time a worker's intake may still take to finish starting (its own
# process and group join) on empty topics.
STARTUP_SETTLE = 1.0


async def startup_cpu(session: Session) -> float:
    """CPU seconds a worker and its intake spend starting, without events to fold: from
    process start to /health/ 200 and the intake settled. The tracker's CPU is counted from
    process start less this, because the intake starts with the app and the fold begins
    when the tables are recovered: counted from /health/ 200, the first batches' work would
    be missed."""
    idle = session.worker("tracker-idle", f"bench{session.tag}i-")
    idle.start()
    await idle.wait_ready(session.client)
    await asyncio.sleep(STARTUP_SETTLE)
    starting = idle.cpu()
    idle.stop()
    return starting


async def measure_tracker(session: Session, worker: TrackerWorker,
                          usd_by_pair: dict[str, Decimal]) -> None:
    """One worker: events folded after its first ledger-input record / (first -> last
    record folded), as the peer's (N-1) / (first -> last event); also N / (worker ready ->
    all N folded). Then its totals against the exact sums. The worker is left running for
    the latency phase."""
    n = session.options.events
    starting = await startup_cpu(session)
    session.say(f"tracker: one worker folding {n:,} events ...")
    worker.start()
    await worker.wait_ready(session.client)
    ready, ready_at = time.monotonic(), time.time()
    with profiling.sampled(session, worker.pid):
        done, count = await worker.wait_folded(session.client, n, timeout=max(600.0, n / 20),
                                               progress=session.say)
        spent = worker.cpu()
    cpu = spent - starting
    r = session.report
    r.check("tracker folded every event once", count == n, f"{count:,} of {n:,}")
    if count < n:
        raise RuntimeError(f"the tracker folded only {count:,} of {n:,} events in time; "
                           f"see {worker.log_path}")
    window = await fold_window(session.bootstrap, table_changelog_topic(worker.app_id, roots.NAME))
    r.check("the worker's roots changelog holds one entry per event",
            window.entries == n, f"{window.entries:,} of {n:,}")
    throughput_figure(r).tracker = window.rate_of(n)
    ready_throughput_figure(r).tracker = n / (done - ready)
    r.context.append(f"tracker fold window: {window.records:,} ledger-input records folded in "
                     f"{window.last - window.first:,.2f} s from the first to the last; "
                     f"{window.first - ready_at:,.2f} s from "
                     "/health/ 200 to the first")
    scrapes = sorted(worker.scrape_seconds)
    r.context.append(f"tracker throughput phase: {done - ready:,.1f} s; {len(scrapes)} "
                     f"/metrics scrapes to detect the end, {median(scrapes) * 1e3:,.0f} ms "
                     f"median each, {sum(scrapes) / (done - ready):.1%} of the phase")
    r.context.append(f"tracker worker log during the phase: {worker.disturbances()}")
    cpu_figure(r).tracker = cpu / n * 1e6
    r.context.append(f"tracker CPU: {spent:,.2f} s from process start to the end of the phase, "
                     f"less {starting:,.2f} s that a worker and its intake spend starting on "
                     "empty topics (measured just before)")
    samples = await worker.samples(session.client)
    outcomes = Counter({labels["outcome"]: int(value) for name, labels, value in samples
                        if name == "tracker_events_total"
                        and labels.get("topic") == worker.trade_topic})
    live = await worker.usd_by_pair(session.client)
    r.check_totals("tracker totals (GET /totals/) equal the exact sums", live, usd_by_pair,
                   f"outcomes {dict(outcomes)}")
