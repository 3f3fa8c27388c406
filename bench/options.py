"""The benchmark's command line (``python -m bench.run --help``) and the sizes it picks."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.common import PROJECT_ROOT

Size = TypeVar("Size", int, float)


@dataclass(frozen=True)
class Options:
    events: int
    latency_rate: float
    latency_seconds: float
    recovery_events: int
    peer: bool
    peer_venv: Path
    profile: Path | None
    workdir: Path | None
    keep: bool
    quick: bool


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Throughput, latency, time to ready and memory of the tracker against "
                    "a raw aiokafka consumer and Quix Streams, on an embedded Kafka broker.")
    parser.add_argument("--events", type=int, default=None,
                        help="events for the throughput phase (default 200,000; quick 20,000)")
    parser.add_argument("--latency-rate", type=float, default=None,
                        help="steady load in events/s (default 1,000; quick 200)")
    parser.add_argument("--latency-seconds", type=float, default=None,
                        help="length of each latency window (default 20; quick 3)")
    parser.add_argument("--recovery-events", type=int, default=None,
                        help="distinct events (= root keys) before the restart "
                             "(default 100,000; quick 1,500)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a smoke run (about a minute)")
    parser.add_argument("--no-peer", dest="peer", action="store_false",
                        help="skip Quix Streams (its columns stay empty)")
    parser.add_argument("--peer-venv", type=Path, default=PROJECT_ROOT / ".venv" / "bench-peer",
                        help="virtualenv for Quix Streams, created on first use "
                             "(default .venv/bench-peer)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="sample the tracker worker with py-spy during the throughput "
                             "phase; raw stacks go to DIR, a summary to the output")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where broker data and logs go (default: a new temp directory)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (it is removed after a successful run)")
    args = parser.parse_args(argv)
    quick: bool = args.quick

    def pick(value: Size | None, full: Size, small: Size) -> Size:
        return value if value is not None else (small if quick else full)

    # Quick: enough events that the CPU spent folding them stands out from the start-up
    # CPU taken off the tracker's count (about a second), whose own spread it must exceed.
    return Options(events=pick(args.events, 200_000, 20_000),
                   latency_rate=pick(args.latency_rate, 1_000.0, 200.0),
                   latency_seconds=pick(args.latency_seconds, 20.0, 3.0),
                   recovery_events=pick(args.recovery_events, 100_000, 1_500),
                   peer=args.peer, peer_venv=args.peer_venv, profile=args.profile,
                   workdir=args.workdir, keep=args.keep, quick=quick)
