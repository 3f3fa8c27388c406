"""kill -9 the worker while events stream in, restart it, and the totals still equal the log:
nothing lost, nothing counted twice (the textbook `table[key] += amount` agent fails this)."""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from decimal import Decimal

import orjson

from tests.integration.conftest import Deployment, Worker, wait_until

PAIRS = [("IN", "RU"), ("IN", "AE"), ("RU", "CN"), ("DE", "FR"), ("US", "JP"), ("BR", "ZA")]


def stream_of_events(count: int, seed: int) -> tuple[list[tuple[str, bytes, bytes]],
                                                       dict[tuple[str, str], Decimal]]:
    """Distinct USD imports over several pairs; returns records and expected (pair, year)."""
    rng = random.Random(seed)
    records, expected = [], defaultdict(Decimal)
    for number in range(count):
        reporter, partner = rng.choice(PAIRS)
        amount = Decimal(rng.randint(100, 10_000_000)) / 100
        year = rng.choice((2022, 2023, 2024))
        event = {"event_id": f"chaos-{seed}-{number}", "occurred_at":
                 f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                 "reporter": reporter, "partner": partner, "direction": "import",
                 "amount": str(amount), "currency": "USD"}
        pair = "-".join(sorted((reporter, partner)))
        records.append(("trade-transactions", pair.encode(), orjson.dumps(event)))
        expected[(pair, str(year))] += amount
    return records, dict(expected)


def observed_totals(worker: Worker) -> dict[tuple[str, str], Decimal]:
    rows = worker.get("/totals/", params={"sector": "trade", "measure": "value_usd"}).json()
    return {(r["pair"], r["period"]): Decimal(r["value"]) for r in rows["items"]
            if len(r["period"]) == 4}


def test_kill_9_mid_stream_loses_nothing_and_counts_nothing_twice(
        deployment: Deployment) -> None:
    records, expected = stream_of_events(4000, seed=7)
    worker = deployment.worker()
    worker.start()

    def produce_slowly() -> None:
        for start in range(0, len(records), 200):
            deployment.produce(records[start:start + 200])
            time.sleep(0.4)

    producer = threading.Thread(target=produce_slowly)
    producer.start()
    kills = 0
    for pause in (2.5, 3.5, 1.5):
        time.sleep(pause)
        worker.kill()
        kills += 1
        worker.start()
    producer.join(120)
    assert not producer.is_alive()
    assert kills == 3

    wait_until(lambda: observed_totals(worker) == expected, 90,
               message="totals equal to the log after three kill -9")
    # And they stay equal: no late re-application after recovery.
    time.sleep(3)
    assert observed_totals(worker) == expected

    reconciled = deployment.run_cli("reconcile", "--url", worker.url)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "No differences" in reconciled.stdout

    worker.stop()
    worker.start()
    assert observed_totals(worker) == expected, "a clean restart recovers the same tables"
