"""Time to ready: the tracker's cold start on empty topics and its restart with M root keys
in the changelogs; the raw consumer's cold start; the peer's cold start and its restart with
the same M keys, local state wiped and kept."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from decimal import Decimal

from bench.common import Batch, Child, create_topic, make_batch, produce_fast
from bench.phases import memory
from bench.session import Session
from bench.worker import TrackerWorker


async def measure(session: Session) -> None:
    filled_topic, batch = await _tracker(session)
    await _baselines(session, filled_topic, batch)


async def _tracker(session: Session) -> tuple[str, Batch]:
    """Cold start, fill with M distinct events, restart; returns the filled trade topic and
    its events for the peer's restart."""
    r = session.report
    m = session.options.recovery_events
    prefix = f"bench{session.tag}r-"
    session.say("tracker cold start on empty topics ...")
    worker = session.worker("tracker-recovery-1", prefix)
    worker.start()
    cold = r.figure("cold", "time to ready, cold start", "s", 2)
    cold.tracker = await worker.wait_ready(session.client)
    cold.note = "process start -> /health/ 200 (tracker, topics created by the worker); " \
                "-> first event handled (baselines, 1-event topic)"
    session.say(f"tracker: filling the changelogs with {m:,} distinct events ...")
    batch = make_batch(m, f"r{session.tag}", seed=11)
    await produce_fast(session.bootstrap, worker.trade_topic, batch.records)
    started = time.monotonic()
    done, count = await worker.wait_folded(session.client, m, timeout=max(600.0, m / 20),
                                           progress=session.say)
    if count < m:
        raise RuntimeError(f"recovery fill: only {count:,} of {m:,} folded")
    r.context.append(f"recovery fill: {m:,} events folded at {m / (done - started):,.0f} "
                     "events/s by a fresh worker (includes the produce)")
    stopped = worker.stop()
    session.say(f"tracker: restart with {m:,} root keys, local state kept ...")
    kept = r.figure("recovery_kept", "time to ready, restart, local state kept", "s", 2)
    kept.tracker = await _restart(session, worker, "tracker-recovery-kept", batch,
                                  wipe=False)
    kept.note = (f"same {m:,} keys; tracker: process start -> /health/ 200, root entries "
                 "on disk read from the changelog's tail, ledgers and references replayed"
                 f" (the previous worker took {stopped:.1f} s to stop); peer: its local "
                 "RocksDB kept, -> first new event handled")
    session.say(f"tracker: restart with {m:,} root keys, local state wiped ...")
    recovery = r.figure("recovery", f"time to ready, restart with {m:,} keys", "s", 2)
    recovery.tracker = await _restart(session, worker, "tracker-recovery-wiped", batch,
                                      wipe=True, keys=m)
    recovery.note = ("local state wiped. tracker: process start -> /health/ 200, every "
                     "table restored from its changelog; peer: local RocksDB wiped, "
                     "restored from its changelog, -> first new event handled; raw: "
                     "stateless, its cold start")
    return worker.trade_topic, batch


async def _restart(session: Session, stopped: TrackerWorker, name: str, batch: Batch, *,
                   wipe: bool, keys: int | None = None) -> float:
    """Restart a stopped worker (its data directory wiped or kept); returns the seconds to
    ready, after checking its totals. ``keys``: record its peak memory as the figure after
    a restart with that many keys."""
    again = session.worker(name, stopped.prefix)
    # Same data dir and web port: with static membership the broker hands the restarted
    # member its previous assignment, and Faust asserts that the URL in it is its own.
    again.data_dir, again.web_port = stopped.data_dir, stopped.web_port
    if wipe:
        shutil.rmtree(again.faust_dir, ignore_errors=True)
    again.start()
    ready = await again.wait_ready(session.client)
    live = await again.usd_by_pair(session.client)
    session.report.check_totals(f"tracker totals after the restart ({'wiped' if wipe else 'kept'})"
                                " equal the exact sums", live, batch.usd_by_pair)
    if keys is not None:
        memory.record_tracker_after_restart(session, again, keys)
    again.stop()
    return ready


async def _baselines(session: Session, filled_topic: str, batch: Batch) -> None:
    """Cold starts on a 1-event topic; the peer's restarts on the tracker's filled topic."""

    def raw_child(topic: str) -> Child:
        return session.raw_child("raw-cold", topic, 1)

    def peer_child(topic: str) -> Child:
        return session.peer_child("peer-cold", topic, f"peercold{session.tag}",
                                  session.workdir / "peer-cold-state", 1)

    r = session.report
    session.say("baselines: cold start and peer restart ...")
    raw_cold = await cold_start(session, "raw", raw_child)
    r.figures["cold"].raw = raw_cold
    r.figures["recovery"].raw = raw_cold
    peer_cold = await session.peer_step("cold start", cold_start(session, "peer", peer_child))
    if peer_cold is not None:
        r.figures["cold"].peer = peer_cold
    restored = await session.peer_step("restart", peer_restart(
        session, filled_topic, session.options.recovery_events, batch.usd))
    if restored is not None:
        r.figures["recovery"].peer, r.figures["recovery_kept"].peer = restored


async def cold_start(session: Session, name: str, make_child: Callable[[str], Child]) -> float:
    """Seconds from process start to the first event handled, on a new 1-event topic."""
    topic = f"bench{session.tag}-cold-{name}"
    await create_topic(session.bootstrap, topic)
    record = make_batch(1, f"c{name}{session.tag}", seed=13).records[0]
    await produce_fast(session.bootstrap, topic, [record])
    child = make_child(topic)
    await child.start()
    first = await child.expect("first", 180)
    await child.expect("result", 120)
    await child.finish()
    return float(first["t"] - child.started)


async def peer_restart(session: Session, topic: str, m: int,
                       usd: Decimal) -> tuple[float, float]:
    """Seconds to the first new event after a restart: (local state wiped, kept)."""
    group = f"peerrec{session.tag}"
    state = session.workdir / "peer-recovery-state"
    fill = session.peer_child("peer-recovery-fill", topic, group, state, m)
    await fill.start()
    result = await fill.expect("result", 1800)
    await fill.finish()
    session.report.check("peer recovery fill exact", Decimal(result["usd"]) == usd
                         and result["duplicates"] == 0, f"{result['count']:,} events")
    times = []
    for label, directory in (("wiped", session.workdir / "peer-recovery-state-wiped"),
                             ("kept", state)):
        record = make_batch(1, f"m{label}{session.tag}", seed=17).records[0]
        await produce_fast(session.bootstrap, topic, [record])
        child = session.peer_child(f"peer-restart-{label}", topic, group, directory, 1)
        await child.start()
        first = await child.expect("first", 600)
        done = await child.expect("result", 120)
        await child.finish()
        if done["count"] != 1 or done["duplicates"] != 0:
            raise RuntimeError(f"peer restart ({label}) handled {done['count']} events, "
                               f"{done['duplicates']} duplicates")
        times.append(float(first["t"] - child.started))
    return times[0], times[1]
