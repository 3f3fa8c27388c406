"""Baseline A, "raw": an aiokafka consumer reading with ``getmany`` and doing nothing else.

Run as a child process by bench.run (``python -m bench.raw --help``) so its CPU time and
peak memory are its own. Reads ``--count`` records from the beginning of every partition
of ``--topic`` (no consumer group, nothing committed), then prints one ``BENCH result``
line. ``BENCH first`` is printed when the first record arrives (time-to-ready), and with
``--latency`` each record's latency from its broker timestamp (LogAppendTime topics) to
the moment ``getmany`` handed it over is kept, the first record excluded (it is the
warm-up record the parent waits for before it starts the load).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiokafka import AIOKafkaConsumer

from bench.proto import cpu_seconds, emit, latency_summary, vm_hwm_kib


async def consume(bootstrap: str, topic: str, count: int, latency: bool,
                  timeout: float) -> None:
    # Without a group, a consumer given a topic is assigned all of its partitions; with no
    # committed offsets it starts at the beginning.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        ready = time.time()
        seen = 0
        first = last = 0.0
        cpu_start = cpu_seconds() or 0.0
        latencies: list[float] = []
        deadline = time.monotonic() + timeout
        while seen < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            if not batch:
                continue
            now = time.time()
            for records in batch.values():
                if latency:
                    latencies.extend(now - record.timestamp / 1000 for record in records)
                seen += len(records)
            if not first:
                first = now
                emit("first", t=now)
            last = now
        if latency and latencies:
            latencies = latencies[1:]
        emit("result", count=seen, ready=ready, first=first, last=last,
             cpu=(cpu_seconds() or 0.0) - cpu_start, vm_hwm_kib=vm_hwm_kib(),
             latency=latency_summary(latencies) if latency else None)
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True, help="records to read, then stop")
    parser.add_argument("--latency", action="store_true", help="keep per-record latencies")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after seconds")
    args = parser.parse_args()
    asyncio.run(consume(args.bootstrap, args.topic, args.count, args.latency, args.timeout))


if __name__ == "__main__":
    main()
