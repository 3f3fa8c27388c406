"""kill -9 the worker while events stream in, restart it, and the totals still equal the log:
nothing lost, nothing counted twice (the textbook `table[key] += amount` agent fails this)."""

from __future__ import annotations

import threading
import time

from tests.integration.conftest import Deployment, wait_until
from tests.integration.reliability import PAIRS, stream_of_events, totals_equal, year_totals


def test_kill_9_mid_stream_loses_nothing_and_counts_nothing_twice(
        deployment: Deployment) -> None:
    records, expected = stream_of_events(4000, seed=7, pairs=PAIRS[:6])
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

    wait_until(lambda: totals_equal(worker, expected), 90,
               message="totals equal to the log after three kill -9")
    # And they stay equal: no late re-application after recovery.
    time.sleep(3)
    assert year_totals(worker) == expected

    reconciled = deployment.run_cli("reconcile", "--url", worker.url)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "No differences" in reconciled.stdout

    worker.stop()
    worker.start()
    assert year_totals(worker) == expected, "a clean restart recovers the same tables"
