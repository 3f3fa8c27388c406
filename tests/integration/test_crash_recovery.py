"""kill -9 the worker while events stream in, restart it, and the totals still equal the log:
nothing lost, nothing counted twice (the textbook `table[key] += amount` agent fails this)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time

import pytest

from services.tracker.settings import Settings
from services.tracker.topics import ensure_topics
from tests.integration.conftest import Deployment, wait_until
from tests.integration.reliability import (
    PAIRS,
    events_counted,
    stream_of_events,
    totals_equal,
    year_totals,
)


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


@pytest.mark.parametrize("failpoint", ["TRACKER_INTAKE_CRASH_AFTER_BATCHES",
                                       "TRACKER_FOLD_CRASH_AFTER_RECORDS"])
def test_kill_9_between_sending_a_batch_and_committing_it(
        deployment: Deployment, failpoint: str) -> None:
    """The hardest moments for the guarantees: the intake's batch is on the broker but its
    source offsets are not committed, or a folded record's changelog writes are queued but
    its offset is not committed. Both are replayed after the restart."""
    records, expected = stream_of_events(1500, seed=11, pairs=PAIRS[:5])
    asyncio.run(ensure_topics(Settings(kafka_bootstrap=deployment.kafka.bootstrap,
                                       topic_prefix=deployment.prefix)))
    deployment.produce(records)  # all there before the worker starts: full batches
    worker = deployment.worker(**{failpoint: "3", "TRACKER_INTAKE_BATCH_SIZE": "100"})
    with contextlib.suppress(AssertionError):  # it may die before or after it is ready
        worker.start()
    assert worker.process is not None
    assert worker.process.wait(60) == -signal.SIGKILL, "the failpoint did not fire"
    assert "Failpoint: killing the worker" in worker.log_path.read_text()

    del worker.env[failpoint]
    worker.start()
    wait_until(lambda: totals_equal(worker, expected), 90,
               message="totals equal to the log after the crash at the failpoint")
    counted = events_counted(worker)
    topic = deployment.topic("trade-transactions")
    if failpoint.startswith("TRACKER_INTAKE"):
        # The restarted intake sent the batch again; the fold recognised every event of it.
        assert counted.get((topic, "duplicate"), 0) >= 1
    reconciled = deployment.run_cli("reconcile", "--url", worker.url)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "No differences" in reconciled.stdout
