"""Two tracker workers of one app on N fresh events: their throughput against one worker's,
and each worker's totals (for every pair, asking the other for its own) against the exact
sums."""

from __future__ import annotations

import asyncio
import time

from bench.common import create_topic, events_folded, make_batch, produce_fast
from bench.session import Session


async def measure_two_workers(session: Session, prefix: str) -> None:
    n = session.options.events
    topic = f"{prefix}trade-transactions"
    await create_topic(session.bootstrap, topic)
    batch = make_batch(n, f"s{session.tag}", seed=19)
    await produce_fast(session.bootstrap, topic, batch.records)
    session.say(f"tracker: two workers folding {n:,} events ...")
    workers = [session.worker(f"tracker-scale-{number}", prefix, f"worker-{number}")
               for number in (1, 2)]
    for worker in workers:
        worker.data_dir = session.workdir / f"data-{prefix}{worker.worker_id}"
        worker.start()
    for worker in workers:
        await worker.wait_ready(session.client)
    ready = time.monotonic()
    deadline = ready + max(600.0, n / 20)
    counts = [0, 0]
    # The partitions that move when the second worker joins are folded again from their
    # last commit, and those events are counted twice: the count reaching N is not the
    # end, the exact totals are.
    while time.monotonic() < deadline:
        counts = [events_folded(await w.samples(session.client), topic) for w in workers]
        if sum(counts) >= n and (
                await workers[0].usd_by_pair(session.client) == batch.usd_by_pair):
            break
        await asyncio.sleep(0.5)
    done = time.monotonic()
    r = session.report
    r.check("two workers folded every event between them", sum(counts) >= n,
            f"{counts[0]:,} + {counts[1]:,} of {n:,}")
    for worker in workers:  # each answers for every pair, asking the other for its own
        live = await worker.usd_by_pair(session.client)
        r.check_totals(f"{worker.worker_id}'s totals for both workers equal the exact sums",
                       live, batch.usd_by_pair)
    # From both workers' /health/ 200, as the row it is compared with: the first worker
    # folds alone until the second joins, and their first folded record would count that.
    two = r.figure("throughput2", "throughput, two workers", "events/s", 0)
    two.tracker = n / (done - ready)
    one = r.figures["throughput_ready"].tracker
    two.note = (f"{two.tracker / one:.2f}x one worker's from /health/ 200; both on this "
                "machine's two cores with the broker; end detected by 0.5 s polls")
    for worker in workers:
        worker.stop()
