"""A worker's local state checked against the changelogs before it starts.

The roots' databases and the saved ledgers each name the changelog offset they reflect.
One that names an offset the changelog has not reached was built from a changelog since
deleted or recreated (a broker whose data was wiped, say): Faust's recovery would start
past the new changelog's end, and the worker exits at start (faust-streaming/faust#158);
a fold over it would take new events for ones it saw. Such state is removed, and the
partition is restored from the current changelog instead.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.tracker import ledger_snapshots, roots
from services.tracker.connection import client_options
from services.tracker.settings import Settings
from services.tracker.tables import LEDGERS
from services.tracker.topics import table_changelog_topic

log = logging.getLogger(__name__)

async def discard_stale_local_state(settings: Settings) -> list[Path]:
    """Remove this worker's roots databases and saved ledgers that claim more of their
    changelog than it holds; returns their paths."""
    ledgers: dict[int, tuple[Path, int]] = {}
    for directory in settings.faust_data_dir.glob(f"**/{LEDGERS}"):
        ledgers.update(ledger_snapshots.saved_offsets(directory))
    held = {table_changelog_topic(settings.app_id, roots.NAME):
            roots.saved_offsets(settings.faust_data_dir),
            table_changelog_topic(settings.app_id, LEDGERS): ledgers}
    wanted = [TopicPartition(topic, partition)
              for topic, saved in held.items() for partition in saved]
    if not wanted:
        return []
    ends = await end_offsets(settings, wanted)
    stale = []
    for topic, saved in held.items():
        for partition, (path, offset) in saved.items():
            end = ends.get(TopicPartition(topic, partition), 0)
            if offset >= end:
                log.warning("Removing %s: it holds %s up to offset %d, but that ends at %d "
                            "(recreated?); the partition is restored from the changelog "
                            "instead", path, f"{topic}[{partition}]", offset, end)
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                stale.append(path)
    return stale


async def end_offsets(settings: Settings,
                      partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The end offsets of partitions of existing topics (a missing topic's are left out)."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        existing = await consumer.topics()
        asked = [tp for tp in partitions if tp.topic in existing]
        return dict(await consumer.end_offsets(asked)) if asked else {}
    finally:
        await consumer.stop()
