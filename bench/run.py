"""Benchmark of the tracker against a raw consumer and a peer framework (issue 7).

One run on its own embedded Apache Kafka broker (free ports, a temporary directory):

1. pre-produce N trade events (~220 bytes of JSON each, distinct ids, USD, 50 pairs,
   2021-2025) to a 4-partition topic with a batching producer;
2. baseline A "raw": aiokafka ``getmany`` reading them, no processing (child process);
3. baseline B "peer": the same aggregation in Quix Streams with RocksDB state (child
   process in its own virtualenv, bench/peer-requirements.txt);
4. the tracker: one worker on the same N events; N / (worker ready -> all N folded);
5. latency at a steady rate for the tracker (its latency histogram, and marked probe
   events until their value shows at /metrics) and for both baselines;
6. time to ready: cold start, and restart with ~100,000 keys in the changelogs;
7. peak resident memory (VmHWM) of every process.

The last line is ``ratio_vs_raw=<x> ratio_vs_peer=<y> p99_ms=<z> restart_vs_peer=<r>
cpu_vs_peer=<c>`` (r: the larger of the two restart ratios, local state kept and wiped; r and c
are tracker divided by peer).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from rich.console import Console

from bench.common import (
    PAIRS,
    PROBE_MONTH,
    PROBE_PAIR,
    Child,
    PeerUnavailable,
    create_topic,
    ensure_peer_python,
    events_folded,
    histogram,
    histogram_quantile,
    make_batch,
    probe_value,
    produce_fast,
    steady_load,
    trade_event,
)
from bench.options import Options, parse_args
from bench.proto import latency_summary, quantile
from bench.report import Report, final_line, render
from bench.worker import TrackerWorker
from services.tracker.broker import EmbeddedKafka, free_port

LATENCY = "tracker_processing_latency_seconds"


class Bench:
    def __init__(self, options: Options, workdir: Path, console: Console) -> None:
        self.o = options
        self.dir = workdir
        self.console = console
        self.report = Report()
        self.tag = uuid.uuid4().hex[:6]
        self.kafka = EmbeddedKafka(workdir / "kafka", port=free_port(),
                                   controller_port=free_port())
        self.children: list[Child] = []
        self.workers: list[TrackerWorker] = []
        self.peer_python: Path | None = None
        self.client = httpx.AsyncClient()
        self.rng = random.Random(3)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}")

    # -- children -------------------------------------------------------------------------

    def raw_child(self, name: str, topic: str, count: int, latency: bool = False) -> Child:
        argv = [sys.executable, "-m", "bench.raw", "--bootstrap", self.bootstrap,
                "--topic", topic, "--count", str(count)]
        child = Child(argv + (["--latency"] if latency else []), self.dir / f"{name}.log")
        self.children.append(child)
        return child

    def peer_child(self, name: str, topic: str, group: str, state: Path, count: int,
                   latency: bool = False) -> Child:
        if self.peer_python is None:
            raise PeerUnavailable(self.report.peer_problem or "peer disabled")
        argv = [str(self.peer_python), "-m", "bench.peer", "--bootstrap", self.bootstrap,
                "--topic", topic, "--group", group, "--state-dir", str(state),
                "--count", str(count)]
        child = Child(argv + (["--latency"] if latency else []), self.dir / f"{name}.log")
        self.children.append(child)
        return child

    def worker(self, name: str, prefix: str, worker_id: str = "worker-1") -> TrackerWorker:
        worker = TrackerWorker(self.bootstrap, prefix, self.dir / f"data-{prefix}",
                               self.dir / f"{name}.log", worker_id)
        self.workers.append(worker)
        return worker

    async def peer_step(self, what: str, step: Coroutine[Any, Any, Any]) -> Any:
        """Run a peer measurement; a failure is reported as such, never replaced by a figure."""
        if self.peer_python is None:
            step.close()  # the peer is off (--no-peer): never started, so never awaited
            return None
        try:
            return await step
        except (PeerUnavailable, RuntimeError, TimeoutError) as error:
            reason = f"{what}: {str(error).strip().splitlines()[0] if str(error) else error!r}"
            self.report.peer_problem = self.report.peer_problem or reason
            self.say(f"[red]peer failed[/red] {reason}")
            return None

    # -- the run --------------------------------------------------------------------------

    async def run(self) -> Report:
        r = self.report
        loads = os.getloadavg()
        r.context.append(f"host: {os.cpu_count()} cores, load average {loads[0]:.2f} "
                         f"{loads[1]:.2f} {loads[2]:.2f} at start")
        peer_setup = asyncio.create_task(self.setup_peer())
        self.say(f"starting Apache Kafka in {self.kafka.data_dir} ...")
        await asyncio.to_thread(self.kafka.start, 120)
        r.context.append(f"broker: embedded Apache Kafka (KRaft, one node) on {self.bootstrap}")

        prefix = f"bench{self.tag}-"
        trade_topic = f"{prefix}trade-transactions"
        batch = await self.preproduce(trade_topic)
        await peer_setup
        await self.raw_throughput(trade_topic)
        await self.peer_step("throughput", self.peer_throughput(trade_topic, batch.usd))
        main_worker = self.worker("tracker-main", prefix)
        await self.tracker_throughput(main_worker, batch.usd_by_pair)
        await self.tracker_latency(main_worker, trade_topic)
        r.figure("rss", "peak resident memory (VmHWM)", "MiB").tracker = \
            main_worker.peak_rss_mib()
        main_worker.stop()
        await self.tracker_scale_out(f"bench{self.tag}s-")
        await self.baseline_latency()
        await self.time_to_ready()
        loads = os.getloadavg()
        r.context.append(f"load average at the end {loads[0]:.2f} {loads[1]:.2f} {loads[2]:.2f}")
        return r

    async def setup_peer(self) -> None:
        if not self.o.peer:
            self.report.peer_problem = "disabled with --no-peer"
            return
        try:
            self.peer_python = await asyncio.to_thread(
                ensure_peer_python, self.o.peer_venv, self.dir / "peer-install.log")
        except (PeerUnavailable, OSError, subprocess.SubprocessError) as error:
            self.report.peer_problem = f"Quix Streams could not be installed: {error}"

    async def preproduce(self, topic: str) -> Any:
        n = self.o.events
        self.say(f"generating and producing {n:,} events to {topic} ...")
        await create_topic(self.bootstrap, topic)
        batch = make_batch(n, f"b{self.tag}")
        rate = await produce_fast(self.bootstrap, topic, batch.records)
        size = sum(len(v) for _, v in batch.records) / n
        self.report.context.append(
            f"input: {n:,} trade events, {size:.0f} bytes of JSON on average, distinct ids, "
            f"USD, {len(PAIRS)} pairs, 2021-2025, keyed by pair, 4 partitions, "
            f"LogAppendTime; pre-produced at {rate:,.0f} events/s (aiokafka, acks=1, linger 20 ms)")
        return batch

    async def raw_throughput(self, topic: str) -> None:
        self.say("baseline A: raw aiokafka getmany ...")
        child = self.raw_child("raw-throughput", topic, self.o.events)
        await child.start()
        result = await child.expect("result", 900)
        await child.finish()
        ready = result.get("ready") or result["first"]
        r = self.report
        r.figure("throughput", "throughput", "events/s", 0).raw = \
            result["count"] / max(result["last"] - ready, 1e-9)
        r.figure("cpu", "CPU per event", "µs", 1).raw = result["cpu"] / result["count"] * 1e6
        r.figure("rss", "peak resident memory (VmHWM)", "MiB").raw = result["vm_hwm_kib"] / 1024
        r.check("raw consumer read every event", result["count"] == self.o.events,
                f"{result['count']:,} of {self.o.events:,}")

    async def peer_throughput(self, topic: str, usd: Decimal) -> None:
        self.say("baseline B: Quix Streams stateful aggregation ...")
        child = self.peer_child("peer-throughput", topic, f"peer{self.tag}",
                                self.dir / "peer-state", self.o.events)
        await child.start()
        version = await child.expect("version", 120)
        result = await child.expect("result", 1800)
        await child.finish()
        r = self.report
        r.context.append(f"peer: quixstreams {version['quixstreams']} (default settings, "
                         "at-least-once, RocksDB state with changelog topics)")
        r.figure("throughput", "throughput", "events/s", 0).peer = \
            (result["count"] - 1) / max(result["last"] - result["first"], 1e-9)
        r.figure("cpu", "CPU per event", "µs", 1).peer = result["cpu"] / result["count"] * 1e6
        r.figure("rss", "peak resident memory (VmHWM)", "MiB").peer = result["vm_hwm_kib"] / 1024
        r.check("peer folded every event once, exact USD sum",
                result["count"] == self.o.events and result["duplicates"] == 0
                and Decimal(result["usd"]) == usd,
                f"{result['count']:,} events, {result['duplicates']} duplicates")

    async def tracker_throughput(self, worker: TrackerWorker,
                                 usd_by_pair: dict[str, Decimal]) -> None:
        n = self.o.events
        self.say(f"tracker: one worker folding {n:,} events ...")
        worker.start()
        await worker.wait_ready(self.client)
        ready = time.monotonic()
        cpu_start = worker.cpu()
        profiler = self.start_profiler(worker.pid) if self.o.profile else None
        done, count = await worker.wait_folded(self.client, n, timeout=max(600.0, n / 20),
                                               progress=self.say)
        cpu = worker.cpu() - cpu_start
        if profiler is not None:
            self.stop_profiler(profiler)
        r = self.report
        r.check("tracker folded every event", count >= n, f"{count:,} of {n:,}")
        if count < n:
            raise RuntimeError(f"the tracker folded only {count:,} of {n:,} events in time; "
                               f"see {worker.log_path}")
        r.figure("throughput", "throughput", "events/s", 0).tracker = n / (done - ready)
        scrapes = sorted(worker.scrape_seconds)
        r.context.append(f"tracker throughput phase: {done - ready:,.1f} s; {len(scrapes)} "
                         f"/metrics scrapes to detect the end, {_median(scrapes) * 1e3:,.0f} ms "
                         f"median each, {sum(scrapes) / (done - ready):.1%} of the phase")
        r.figure("cpu", "CPU per event", "µs", 1).tracker = cpu / n * 1e6
        samples = await worker.samples(self.client)
        outcomes = Counter({labels["outcome"]: int(value) for name, labels, value in samples
                            if name == "tracker_events_total"
                            and labels.get("topic") == worker.trade_topic})
        live = await worker.usd_by_pair(self.client)
        r.check("tracker totals (GET /totals/) equal the exact sums", live == usd_by_pair,
                f"outcomes {dict(outcomes)}")

    async def tracker_scale_out(self, prefix: str) -> None:
        """Two workers of one app on the same N events: their throughput against one's."""
        n = self.o.events
        topic = f"{prefix}trade-transactions"
        await create_topic(self.bootstrap, topic)
        batch = make_batch(n, f"s{self.tag}", seed=19)
        await produce_fast(self.bootstrap, topic, batch.records)
        self.say(f"tracker: two workers folding {n:,} events ...")
        workers = [self.worker(f"tracker-scale-{number}", prefix, f"worker-{number}")
                   for number in (1, 2)]
        for worker in workers:
            worker.data_dir = self.dir / f"data-{prefix}{worker.worker_id}"
            worker.start()
        for worker in workers:
            await worker.wait_ready(self.client)
        ready = time.monotonic()
        deadline = ready + max(600.0, n / 20)
        counts = [0, 0]
        while sum(counts) < n and time.monotonic() < deadline:
            counts = [events_folded(await w.samples(self.client), topic) for w in workers]
            await asyncio.sleep(0.5)
        done = time.monotonic()
        r = self.report
        r.check("two workers folded every event between them", sum(counts) >= n,
                f"{counts[0]:,} + {counts[1]:,} of {n:,}")
        for worker in workers:  # each answers for every pair, asking the other for its own
            live = await worker.usd_by_pair(self.client)
            r.check(f"{worker.worker_id}'s totals for both workers equal the exact sums",
                    live == batch.usd_by_pair, f"{len(live)} pairs")
        two = r.figure("throughput2", "throughput, two workers", "events/s", 0)
        two.tracker = n / (done - ready)
        one = r.figures["throughput"].tracker
        two.note = (f"{two.tracker / one:.2f}x one worker's; both on this machine's two "
                    "cores with the broker; end detected by 0.5 s polls")
        for worker in workers:
            worker.stop()

    async def tracker_latency(self, worker: TrackerWorker, topic: str) -> None:
        r = self.report
        rate, seconds = self.o.latency_rate, self.o.latency_seconds
        capacity = r.figures["throughput"].tracker
        windows = [("", rate)]
        if capacity < rate:
            # Above capacity the latency is the queue; also measure at half the throughput.
            windows.append(("s", max(10.0, float(round(capacity / 2, -1 if capacity > 200
                                                         else 0)))))
        for suffix, at in windows:
            label = "" if not suffix else f" at {at:,.0f}/s"
            self.say(f"tracker latency: {at:,.0f} events/s for {seconds:.0f} s, histogram ...")
            update = await self.update_window(worker, topic, at, seconds, f"u{suffix}")
            p50 = r.figure("p50" + suffix, f"latency p50{label}, broker append -> table update",
                           "ms")
            p99 = r.figure("p99" + suffix, f"latency p99{label}, broker append -> table update",
                           "ms")
            p50.tracker, p99.tracker = update["p50"] * 1e3, update["p99"] * 1e3
            over = " ≥ (beyond the last bucket, 30 s)" if update["capped"] else ""
            p50.note = (f"{update['count']:,} observations, {at:,.0f}/s offered "
                        f"for {update['elapsed']:.1f} s; quantiles from bucket deltas{over}")
            p99.note = (f"backlog drained {update['drain']:.1f} s after the last send"
                        + (" — offered load above the tracker's capacity: this is queueing"
                           if at > capacity else ""))
            if suffix:
                p50.note += "; the baselines were only run at the main rate"
            if not update["complete"]:
                r.check(f"tracker folded the {at:,.0f}/s window", False, "timed out")
            self.say(f"tracker latency: {at:,.0f} events/s for {seconds:.0f} s, probes ...")
            seen = await self.visible_window(worker, topic, at, seconds, f"v{suffix}", capacity)
            vis50 = r.figure("vis50" + suffix,
                             f"latency p50{label}, send -> value visible at /metrics", "ms")
            vis99 = r.figure("vis99" + suffix,
                             f"latency p99{label}, send -> value visible at /metrics", "ms")
            vis50.tracker, vis99.tracker = seen["p50"] * 1e3, seen["p99"] * 1e3
            vis50.note = (f"{seen['count']} probes, upper bounds (lower bound p50 "
                          f"{seen['low50'] * 1e3:,.0f} ms; median gap between the scrape "
                          f"that missed a probe and the one that showed it "
                          f"{seen['bracket'] * 1e3:,.0f} ms)")
            vis99.note = (f"/metrics scrape took {seen['scrape'] * 1e3:,.0f} ms median; "
                          f"scraping occupied {seen['duty']:.0%} of the window")
            if seen["missing"]:
                r.check(f"every probe became visible at {at:,.0f}/s", False,
                        f"{seen['missing']} of {seen['sent']} never showed")

    async def update_window(self, worker: TrackerWorker, topic: str, rate: float,
                            seconds: float, tag: str) -> dict[str, Any]:
        """Steady load with no scraping during it; the latency histogram before and after."""
        total = int(rate * seconds)
        before = await worker.samples(self.client)
        folded = events_folded(before, worker.trade_topic)
        load = iter(make_batch(total, f"{tag}{self.tag}", seed=len(tag) + 5).records)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=0)
        await producer.start()
        try:
            elapsed = await steady_load(producer, topic, load, rate, total)
        finally:
            await producer.stop()
        end = time.monotonic()
        done, count = await worker.wait_folded(self.client, folded + total, least=1.0,
                                               timeout=max(300.0, total / 20))
        after = await worker.samples(self.client)
        hist = (histogram(before, LATENCY), histogram(after, LATENCY))
        p50, observed, _ = histogram_quantile(*hist, 0.50)
        p99, _, capped = histogram_quantile(*hist, 0.99)
        return {"elapsed": elapsed, "drain": max(0.0, done - end), "p50": p50, "p99": p99,
                "count": observed, "capped": capped, "complete": count >= folded + total}

    async def visible_window(self, worker: TrackerWorker, topic: str, rate: float,
                             seconds: float, tag: str, capacity: float) -> dict[str, Any]:
        """Steady load with probe events on a pair nothing else uses (``PROBE_PAIR``, month
        ``PROBE_MONTH``) every 0.7-1.3 s; a poller scrapes /metrics until the pair's total
        includes each probe. Probes of one pair are folded in order, so the total reaching
        the running sum through probe k means probe k is visible.

        A latency is an upper bound: from just before ``send`` to the end of the first scrape
        that shows it; it became visible after the start of the scrape before, which gives
        the uncertainty."""
        total = int(rate * seconds)
        folded = events_folded(await worker.samples(self.client), worker.trade_topic)
        base = probe_value(await worker.metrics(self.client))
        load = iter(make_batch(total, f"{tag}{self.tag}", seed=len(tag) + 7).records)
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=0)
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
                value = trade_event(f"{tag}p{self.tag}-{len(probes)}", PROBE_PAIR,
                                    f"{PROBE_MONTH}-15", f"{amount}.00", self.rng)
                expected += amount
                probes.append((time.time(), expected))
                await producer.send(topic, value, key=PROBE_PAIR.encode())
                await asyncio.sleep(self.rng.uniform(0.7, 1.3))

        async def poll(deadline: float) -> None:
            previous: float | None = None
            while (sending.is_set() or len(visible) < len(probes)) \
                    and time.monotonic() < deadline:
                if len(visible) == len(probes):
                    await asyncio.sleep(0.005)  # nothing outstanding: no scrape
                    continue
                started = time.time()
                text = await worker.metrics(self.client)
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
        await worker.wait_folded(self.client, folded + total + len(probes), least=1.0,
                                 timeout=max(300.0, total / 20))
        uppers = sorted(upper for upper, _ in visible.values())
        summary = latency_summary(uppers)
        lowers = sorted(lower for _, lower in visible.values())
        return {"p50": summary["p50"], "p99": summary["p99"], "count": len(uppers),
                "low50": _median(lowers),
                "sent": len(probes), "missing": len(probes) - len(visible),
                "bracket": _median(sorted(up - low for up, low in visible.values())),
                "scrape": _median(sorted(scrapes)), "duty": sum(scrapes) / window}

    async def baseline_latency(self) -> None:
        rate, seconds = self.o.latency_rate, self.o.latency_seconds
        total = int(rate * seconds)
        r = self.report

        async def measure(name: str, make_child: Any) -> dict[str, float] | None:
            topic = f"bench{self.tag}-lat-{name}"
            await create_topic(self.bootstrap, topic)
            child: Child = make_child(topic, total + 1)
            await child.start()
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks=1, linger_ms=0)
            await producer.start()
            try:
                warm = make_batch(1, f"w{name}{self.tag}", seed=9).records[0]
                await producer.send_and_wait(topic, warm[1], key=warm[0])
                await child.expect("first", 180)
                load = iter(make_batch(total, f"{name}{self.tag}", seed=5).records)
                await steady_load(producer, topic, load, rate, total)
            finally:
                await producer.stop()
            result = await child.expect("result", 600)
            await child.finish()
            latency: dict[str, float] = result["latency"]
            return latency

        self.say(f"baseline latency: {rate:,.0f} events/s for {seconds:.0f} s each ...")
        raw = await measure("raw", lambda topic, count: self.raw_child(
            "raw-latency", topic, count, latency=True))
        if raw:
            r.figure("p50", "", "").raw = raw["p50"] * 1e3
            r.figure("p99", "", "").raw = raw["p99"] * 1e3
        peer = await self.peer_step("latency", measure("peer", lambda topic, count: self.peer_child(
            "peer-latency", topic, f"peerlat{self.tag}", self.dir / "peer-lat-state", count,
            latency=True)))
        if peer:
            r.figure("p50", "", "").peer = peer["p50"] * 1e3
            r.figure("p99", "", "").peer = peer["p99"] * 1e3

    async def time_to_ready(self) -> None:
        r = self.report
        m = self.o.recovery_events
        prefix = f"bench{self.tag}r-"
        self.say("tracker cold start on empty topics ...")
        worker = self.worker("tracker-recovery-1", prefix)
        worker.start()
        cold = r.figure("cold", "time to ready, cold start", "s", 2)
        cold.tracker = await worker.wait_ready(self.client)
        cold.note = "process start -> /health/ 200 (tracker, topics created by the worker); " \
                    "-> first event handled (baselines, 1-event topic)"
        self.say(f"tracker: filling the changelogs with {m:,} distinct events ...")
        batch = make_batch(m, f"r{self.tag}", seed=11)
        await produce_fast(self.bootstrap, worker.trade_topic, batch.records)
        started = time.monotonic()
        done, count = await worker.wait_folded(self.client, m, timeout=max(600.0, m / 20),
                                               progress=self.say)
        if count < m:
            raise RuntimeError(f"recovery fill: only {count:,} of {m:,} folded")
        r.context.append(f"recovery fill: {m:,} events folded at {m / (done - started):,.0f} "
                         "events/s by a fresh worker (includes the produce)")
        stopped = worker.stop()
        self.say(f"tracker: restart with {m:,} root keys in the changelogs ...")
        again = self.worker("tracker-recovery-2", prefix)
        # Same data dir and web port: with static membership the broker hands the restarted
        # member its previous assignment, and Faust asserts that the URL in it is its own.
        again.data_dir, again.web_port = worker.data_dir, worker.web_port
        again.start()
        recovery = r.figure("recovery", f"time to ready, restart with {m:,} keys", "s", 2)
        recovery.tracker = await again.wait_ready(self.client)
        recovery.note = (f"tracker: process start -> /health/ 200 (in-memory tables replayed "
                         f"from the changelogs; the previous worker took {stopped:.1f} s to stop)"
                         "; peer: local RocksDB wiped, restored from its changelog, -> first "
                         "new event handled; raw: stateless, its cold start")
        kept = r.figure("recovery_kept", "time to ready, restart, local state kept", "s", 2)
        # The in-memory store keeps nothing on disk: with or without the old data directory
        # a restart replays the changelogs, so the one measured restart is both figures.
        kept.tracker = recovery.tracker
        kept.note = (f"same {m:,} keys; tracker: the restart above (its in-memory tables keep "
                     "no local state); peer: its local RocksDB kept, -> first new event handled")
        live = await again.usd_by_pair(self.client)
        r.check("tracker totals after the restart equal the exact sums",
                live == batch.usd_by_pair, f"{len(live)} pairs")
        r.figure("rss_recovered", f"peak memory after restart with {m:,} keys", "MiB").tracker = \
            again.peak_rss_mib()
        again.stop()

        self.say("baselines: cold start and peer restart ...")
        raw_cold = await self.cold_start("raw", lambda topic: self.raw_child(
            "raw-cold", topic, 1))
        cold.raw = raw_cold
        r.figure("recovery", "", "").raw = raw_cold
        peer_cold = await self.peer_step("cold start", self.cold_start(
            "peer", lambda topic: self.peer_child("peer-cold", topic, f"peercold{self.tag}",
                                                  self.dir / "peer-cold-state", 1)))
        if peer_cold is not None:
            cold.peer = peer_cold
        restored = await self.peer_step("restart", self.peer_restart(worker.trade_topic, m,
                                                                     batch.usd))
        if restored is not None:
            r.figure("recovery", "", "").peer, r.figure("recovery_kept", "", "").peer = restored

    async def cold_start(self, name: str, make_child: Any) -> float:
        topic = f"bench{self.tag}-cold-{name}"
        await create_topic(self.bootstrap, topic)
        record = make_batch(1, f"c{name}{self.tag}", seed=13).records[0]
        await produce_fast(self.bootstrap, topic, [record])
        child: Child = make_child(topic)
        await child.start()
        first = await child.expect("first", 180)
        await child.expect("result", 120)
        await child.finish()
        return float(first["t"] - child.started)

    async def peer_restart(self, topic: str, m: int, usd: Decimal) -> tuple[float, float]:
        """Seconds to the first new event after a restart: (local state wiped, kept)."""
        group = f"peerrec{self.tag}"
        state = self.dir / "peer-recovery-state"
        fill = self.peer_child("peer-recovery-fill", topic, group, state, m)
        await fill.start()
        result = await fill.expect("result", 1800)
        await fill.finish()
        self.report.check("peer recovery fill exact", Decimal(result["usd"]) == usd
                          and result["duplicates"] == 0, f"{result['count']:,} events")
        times = []
        for label, directory in (("wiped", self.dir / "peer-recovery-state-wiped"),
                                 ("kept", state)):
            record = make_batch(1, f"m{label}{self.tag}", seed=17).records[0]
            await produce_fast(self.bootstrap, topic, [record])
            child = self.peer_child(f"peer-restart-{label}", topic, group, directory, 1)
            await child.start()
            first = await child.expect("first", 600)
            done = await child.expect("result", 120)
            await child.finish()
            if done["count"] != 1 or done["duplicates"] != 0:
                raise RuntimeError(f"peer restart ({label}) handled {done['count']} events, "
                                   f"{done['duplicates']} duplicates")
            times.append(float(first["t"] - child.started))
        return times[0], times[1]

    # -- profiling ------------------------------------------------------------------------

    def start_profiler(self, pid: int) -> subprocess.Popen[bytes] | None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        assert self.o.profile is not None
        self.o.profile.mkdir(parents=True, exist_ok=True)
        out = self.o.profile / "tracker-throughput.txt"
        try:
            return subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "100",
                                     "--format", "raw", "--nonblocking", "--output", str(out)],
                                    stdout=subprocess.DEVNULL,
                                    stderr=(self.dir / "py-spy.log").open("ab"))
        except OSError as error:
            self.report.notes.append(f"profiling skipped: {error}")
            return None

    def stop_profiler(self, profiler: subprocess.Popen[bytes]) -> None:
        profiler.send_signal(signal.SIGINT)
        try:
            profiler.wait(60)
        except subprocess.TimeoutExpired:
            profiler.kill()
        assert self.o.profile is not None
        out = self.o.profile / "tracker-throughput.txt"
        if out.exists():
            from bench.spy import summarise
            self.report.profile = summarise(out, top=25)

    async def close(self) -> None:
        for child in self.children:
            child.kill()
        for worker in self.workers:
            worker.kill()
        await self.client.aclose()
        await asyncio.to_thread(self.kafka.stop)


def _median(values: list[float]) -> float:
    return quantile(values, 0.5)


async def amain(options: Options, console: Console) -> int:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="tracker-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    bench = Bench(options, workdir, console)
    ok = False
    try:
        report = await bench.run()
        ok = True
    finally:
        await bench.close()
        if ok and not options.keep and options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok:
            console.print(f"[red]The run failed; logs are in {workdir}[/red]")
    render(report, options, console)
    failed = report.failed_checks()
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed[/red]: {'; '.join(failed)}")
    print(final_line(report), flush=True)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(amain(options, console)))
    sys.exit(130)


if __name__ == "__main__":
    main()
