"""Benchmark of the tracker against a raw consumer and a peer framework (issue 7).

One run on its own embedded Apache Kafka broker (free ports, a temporary directory):

1. pre-produce N trade events (~220 bytes of JSON each, distinct ids, USD, 50 pairs,
   2021-2025) to a 4-partition topic with a batching producer;
2. baseline A "raw": aiokafka ``getmany`` reading them, no processing (child process);
3. baseline B "peer": the same aggregation in Quix Streams with RocksDB state (child
   process in its own virtualenv, bench/peer-requirements.txt);
4. the tracker: one worker on the same N events; N / (worker ready -> all N folded); then
   two workers of one app on N more;
5. latency at a steady rate for the tracker (its latency histogram, and marked probe
   events until their value shows at /metrics) and for both baselines;
6. time to ready: cold start, and restart with ~100,000 keys in the changelogs;
7. peak resident memory (VmHWM) of every process.

Each phase is a module of bench/phases/; ``run_phases`` below runs them in order.
The last line is ``ratio_vs_raw=<x> ratio_vs_peer=<y> p99_ms=<z> restart_vs_peer=<r>
cpu_vs_peer=<c>`` (r: the larger of the two restart ratios, local state kept and wiped; r and c
are tracker divided by peer).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from bench.options import Options, parse_args
from bench.phases import latency, memory, scale_out, throughput, time_to_ready
from bench.report import Report, final_line, render
from bench.session import Session


async def run_phases(session: Session) -> Report:
    r = session.report
    r.context.append(f"host: {os.cpu_count()} cores, load average {_load_average()} at start")
    peer_install = asyncio.create_task(session.install_peer())
    await session.start_broker()
    r.context.append(f"broker: embedded Apache Kafka (KRaft, one node) on {session.bootstrap}")

    prefix = f"bench{session.tag}-"
    trade_topic = f"{prefix}trade-transactions"
    batch = await throughput.produce_input(session, trade_topic)
    await peer_install
    await throughput.measure_raw(session, trade_topic)
    await session.peer_step("throughput",
                            throughput.measure_peer(session, trade_topic, batch.usd))
    main_worker = session.worker("tracker-main", prefix)
    await throughput.measure_tracker(session, main_worker, batch.usd_by_pair)
    await latency.measure_tracker(session, main_worker, trade_topic)
    memory.record_tracker(session, main_worker)
    main_worker.stop()
    await scale_out.measure_two_workers(session, f"bench{session.tag}s-")
    await latency.measure_baselines(session)
    await time_to_ready.measure(session)
    r.context.append(f"load average at the end {_load_average()}")
    return r


def _load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work sharing the machine's cores."""
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


async def amain(options: Options, console: Console) -> int:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="tracker-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    session = Session(options, workdir, console)
    ok = False
    try:
        report = await run_phases(session)
        # A failed check needs the logs as much as a failed phase does.
        ok = not report.failed_checks()
    finally:
        await session.close()
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
