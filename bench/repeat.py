"""Repeat the one-worker throughput phase on fresh topics until an honesty check fails.

``python -m bench.repeat --rounds 20 [--events N] [--workdir DIR]``: one embedded broker,
then per round a new set of topics, N pre-produced events and a fresh worker folding them,
with the checks of the full run (every event folded once, exact sums). It stops at the
first failed check and leaves the work directory (broker and worker logs) in place, to
reproduce a rare failure with its logs rather than measure anything.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from bench.options import parse_args
from bench.phases import throughput
from bench.session import Session


async def repeat(rounds: int, bench_args: list[str], workdir: Path, console: Console) -> int:
    session = Session(parse_args([*bench_args, "--no-peer"]), workdir, console)
    try:
        await session.start_broker()
        for round_number in range(1, rounds + 1):
            prefix = f"rep{session.tag}{round_number}-"
            batch = await throughput.produce_input(session, f"{prefix}trade-transactions")
            worker = session.worker(f"tracker-round-{round_number}", prefix)
            await throughput.measure_tracker(session, worker, batch.usd_by_pair)
            worker.stop()
            failed = session.report.failed_checks()
            if failed:
                console.print(f"[red]round {round_number}: {'; '.join(failed)}[/red]; "
                              f"logs in {workdir} ({worker.log_path.name})")
                return 1
            session.say(f"round {round_number} of {rounds}: every check ok; worker log: "
                        f"{worker.disturbances()}")
    finally:
        await session.close()
    console.print(f"{rounds} rounds, every check ok; logs in {workdir}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.repeat",
        description="Repeat the one-worker throughput phase until an honesty check fails, "
                    "keeping the logs.")
    parser.add_argument("--rounds", type=int, default=10, help="rounds at most (default 10)")
    parser.add_argument("--events", type=int, default=200_000,
                        help="events per round (default 200,000)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where broker data and logs go (default: a new temp directory)")
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="tracker-repeat-"))
    workdir.mkdir(parents=True, exist_ok=True)
    console = Console() if sys.stdout.isatty() else Console(width=200)
    sys.exit(asyncio.run(repeat(options.rounds, ["--events", str(options.events)], workdir,
                                console)))


if __name__ == "__main__":
    main()
