"""Creating the contract topics before the worker subscribes to them."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from services.tracker.connection import client_options
from services.tracker.errors import TrackerError
from services.tracker.settings import Settings

log = logging.getLogger(__name__)


def table_changelog_topic(app_id: str, table: str) -> str:
    """A table's changelog, as Faust names it."""
    return f"{app_id}-{table}-changelog"


def topic_layout(settings: Settings) -> dict[str, int]:
    """Topic name -> partitions. Reference data is small and ordered: one partition."""
    names = settings.topics
    keyed = settings.partitions
    return {names.trade: keyed, names.energy: keyed, names.defense: keyed,
            names.commitments: 1, names.fx_rates: 1, names.dead_letters: keyed,
            names.progress: keyed, names.ledger: keyed}


async def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; returns the names created. Existing topics are left alone."""
    admin = AIOKafkaAdminClient(**client_options(settings),
                                request_timeout_ms=15000)
    try:
        await admin.start()
    except KafkaConnectionError:
        raise TrackerError(f"cannot reach Kafka at {settings.kafka_bootstrap}; is the broker "
                           "running? (`tracker broker start` or TRACKER_KAFKA_BOOTSTRAP)") from None
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, partitions, settings.replication,
                            topic_configs={"retention.ms": "-1"})
                   for name, partitions in topic_layout(settings).items() if name not in existing]
        if missing:
            with suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics(missing)
            log.info("Created topics: %s", ", ".join(t.name for t in missing))
        return [t.name for t in missing]
    finally:
        await admin.close()
