"""kill -9 the worker while events stream in, restart it, and the totals still equal the log:
nothing lost, nothing counted twice (the textbook `table[key] += amount` agent fails this)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.tracker.ledger_snapshots import saved_offsets
from services.tracker.processes import alive, child_pids
from services.tracker.settings import Settings
from services.tracker.topics import ensure_topics
from tests.integration.conftest import Deployment, Worker, wait_until
from tests.integration.reliability import (
    PAIRS,
    Record,
    RetryingProducer,
    caught_up,
    events_counted,
    roots_changelog,
    roots_on_disk,
    stream_of_events,
    totals_equal,
    year_totals,
)


def test_kill_9_mid_stream_loses_nothing_and_counts_nothing_twice(
        deployment: Deployment) -> None:
    records, expected = stream_of_events(4000, seed=7, pairs=PAIRS[:6])
    applied = (deployment.topic("trade-transactions"), "applied")
    worker = deployment.worker()
    worker.start()
    # The stream is held back at each barrier until the kill before it has happened: every
    # kill comes after the worker folded part of the stream and before the rest is sent,
    # however fast or slow the machine.
    barriers = [1000, 2000, 3000]
    producer = RetryingProducer(deployment, records, batch=200, pause=0.4,
                                hold_at=barriers[0]).start()
    for kill, barrier in enumerate(barriers, 1):
        folded = wait_until(lambda: events_counted(worker).get(applied, 0), 60,
                            message=f"the worker to fold part of the stream before kill {kill}")
        worker.kill()
        sent = producer.acknowledged
        # A process applies an event once at most, and nothing past the barrier is sent
        # before the kill: the worker died with part of the stream folded, not all of it.
        assert 0 < folded <= barrier < len(records), f"kill {kill}: {folded} folded"
        assert sent <= barrier, f"kill {kill}: {sent} records sent past the barrier"
        if kill < len(barriers):
            producer.hold_at = barriers[kill]
        else:
            producer.release()
        worker.start()
    producer.join(120)
    assert producer.acknowledged == len(records), "the rest of the stream after the kills"

    wait_until(lambda: totals_equal(worker, expected), 90,
               message="totals equal to the log after three kill -9")
    # Still equal once everything sent has been folded and committed: no late re-application.
    wait_until(lambda: caught_up(deployment), 60,
               message="the worker to commit every record sent")
    assert year_totals(worker) == expected

    reconciled = deployment.run_cli("reconcile", "--url", worker.url)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "No differences" in reconciled.stdout

    worker.stop()
    # The root entries are on disk as their changelog holds them, with the offsets where
    # a restart reads it from: the last few records, not the history.
    on_disk, changelog = roots_on_disk(worker), roots_changelog(deployment)
    assert changelog and set(changelog) <= set(on_disk)
    assert all(not on_disk[partition].entries for partition in set(on_disk) - set(changelog))
    for partition, (entries, end) in changelog.items():
        assert on_disk[partition].entries == entries, f"partition {partition}"
        persisted = on_disk[partition].persisted_offset
        # A record writes a changelog record per pair it touched: recovery reads again
        # at most the last record's.
        assert persisted is not None and 0 <= end - 1 - persisted < len(PAIRS), (
            f"partition {partition}: recovery would read from {persisted} of {end}")
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


def intake_process_of(worker: Worker) -> int:
    assert worker.process is not None
    pid = worker.process.pid
    return wait_until(lambda: child_pids(pid), 30, message="the worker's intake process")[0]


def test_the_worker_and_its_intake_process_end_together(deployment: Deployment) -> None:
    """The intake runs in a child process of the worker: whichever of the two is killed,
    the other ends too, and a restart folds everything exactly once."""
    records, expected = stream_of_events(600, seed=13, pairs=PAIRS[:3])
    worker, applied = worker_that_folded(deployment, records[:200])

    intake = intake_process_of(worker)
    os.kill(intake, signal.SIGKILL)
    assert worker.process is not None
    assert worker.process.wait(60) != 0, "the worker stopped with an error"
    assert f"The intake stopped: the intake process {intake} was killed by SIGKILL" in (
        worker.log_path.read_text())

    worker.start()
    deployment.produce(records[200:400])
    # At least: the ledger-input records since the fold's last commit are folded again, and
    # a replayed event counts under its first outcome.
    wait_until(lambda: events_counted(worker).get(applied, 0) >= 200, 60,
               message="the next 200 events folded by the restarted worker")
    intake = intake_process_of(worker)
    worker.kill()
    wait_until(lambda: not alive(intake), 30, message="the intake to end with its worker")

    deployment.produce(records[400:])
    worker.start()
    wait_until(lambda: totals_equal(worker, expected), 90,
               message="totals equal to the log after both kills")
    reconciled = deployment.run_cli("reconcile", "--url", worker.url)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert "No differences" in reconciled.stdout


def test_local_state_from_changelogs_since_recreated_is_removed(
        deployment: Deployment) -> None:
    """A worker whose roots databases and saved ledgers hold more of their changelogs than
    these now have (the topics were deleted and recreated, as on a broker whose data was
    wiped) removes them at start instead of taking them for up to date."""
    records, expected = stream_of_events(400, seed=17, pairs=PAIRS[:4])
    worker = deployment.worker()
    worker.start()
    deployment.produce(records)
    wait_until(lambda: totals_equal(worker, expected), 60, message="the events folded")
    wait_until(lambda: caught_up(deployment), 60, message="the worker to commit them")
    worker.stop()
    first = roots_on_disk(worker)
    held = {partition for partition, roots in first.items()
            if roots.persisted_offset is not None}
    assert held, "the roots reached the disk"
    worker.start()
    worker.stop()
    assert "(recreated?)" not in worker.log_path.read_text(), "up-to-date state was removed"
    assert {partition: roots.entries for partition, roots in roots_on_disk(worker).items()} \
        == {partition: roots.entries for partition, roots in first.items()}

    saved = snapshot_offsets(worker)
    assert saved, "the ledgers were saved"
    for table in ("roots", "ledgers"):
        asyncio.run(delete_topic(deployment.kafka.bootstrap,
                                 deployment.topic(f"tracker-{table}-changelog")))
    before = len(worker.log_path.read_text())
    worker.start()
    log = worker.log_path.read_text()[before:]
    removed = {partition for partition in held if f"roots-{partition}.db" in log}
    assert removed == held, f"removed {sorted(removed)} of {sorted(held)}"
    removed = {partition for partition in saved if f"/{partition}.ledgers.json" in log}
    assert removed == set(saved), f"removed the ledgers of {sorted(removed)} of {sorted(saved)}"
    worker.stop()
    assert not any(roots.entries for roots in roots_on_disk(worker).values()), (
        "entries of the old changelog are still on disk")


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        for _ in range(100):  # deletion completes in the background
            if topic not in await admin.list_topics():
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{topic} still listed 20 s after its deletion")
    finally:
        await admin.close()


def test_a_clean_stop_saves_the_ledgers_and_the_next_worker_reads_only_the_tail(
        deployment: Deployment) -> None:
    """A worker stopped cleanly saves each partition's ledgers with the changelog offset
    they reflect, and the next worker on its data directory reads the ledger changelog
    from there. A kill -9 later leaves those saved ledgers behind the changelog: the next
    start reads the longer tail, and the totals still equal the log."""
    records, expected = stream_of_events(1200, seed=23, pairs=PAIRS[:6])
    worker, applied = worker_that_folded(deployment, records[:600])
    wait_until(lambda: caught_up(deployment), 60, message="the worker to commit it")
    worker.stop()
    log = worker.log_path.read_text()
    assert "Ledgers of partition(s) " in log and " saved in " in log, worker.log_digest()
    saved = snapshot_offsets(worker)
    assert saved and all(offset >= 0 for offset in saved.values()), saved

    before = len(worker.log_path.read_text())
    worker.start()
    log = worker.log_path.read_text()[before:]
    loaded = {int(partition) for partition in re.findall(r"Ledgers of partition (\d+) loaded", log)}
    assert loaded == set(saved), worker.log_digest()
    ledgers_changelog = deployment.topic("tracker-ledgers-changelog")
    assert recovery_starts(log, ledgers_changelog) == saved, "recovery read from the offsets saved"
    deployment.produce(records[600:])
    wait_until(lambda: events_counted(worker).get(applied, 0) == 600, 60,
               message="the second half folded")
    worker.kill()
    assert snapshot_offsets(worker) == saved, "a kill -9 saves nothing"
    worker.start()
    wait_until(lambda: totals_equal(worker, expected), 90,
               message="the totals after a restart from ledgers saved before the kill")
    wait_until(lambda: caught_up(deployment), 60, message="the worker to commit the rest")
    worker.stop()
    # The changelog alone (a replacement machine) still holds the same ledgers: no update
    # still needed was deleted by a tombstone written after the saved ledgers were loaded.
    shutil.rmtree(Path(worker.env["TRACKER_DATA_DIR"]) / "faust")
    worker.start()
    wait_until(lambda: totals_equal(worker, expected), 90,
               message="the totals restored from the changelogs alone")
    worker.stop()


def worker_that_folded(deployment: Deployment,
                       records: list[Record]) -> tuple[Worker, tuple[str, str]]:
    """A worker started on the deployment once it folded ``records``; and the (topic,
    outcome) its applied events are counted under."""
    applied = (deployment.topic("trade-transactions"), "applied")
    worker = deployment.worker()
    worker.start()
    deployment.produce(records)
    wait_until(lambda: events_counted(worker).get(applied, 0) == len(records), 60,
               message=f"the first {len(records)} events folded")
    return worker, applied


def snapshot_offsets(worker: Worker) -> dict[int, int]:
    """partition -> offset of the ledgers saved under the worker's data directory."""
    directories = list(Path(worker.env["TRACKER_DATA_DIR"]).glob("**/ledgers"))
    return {partition: offset for directory in directories
            for partition, (_, offset) in saved_offsets(directory).items()}


def recovery_starts(log: str, topic: str) -> dict[int, int]:
    """Where Faust's recovery started reading each partition of ``topic`` (its "Reading
    Starts At - Active" table), the partitions at -1 (from the start) left out."""
    table = log[log.index("active offsets at start of reading"):].split("\n[", 1)[0]
    starts, current = {}, None
    for name, partition, offset in re.findall(
            r"\|\s*(\S+)\s*\|\s*(\d+)\s*\|\s*(-?\d+)\s*\|", table):
        current = name if name != "〃" else current
        if current == topic and int(offset) >= 0:
            starts[int(partition)] = int(offset)
    return starts
