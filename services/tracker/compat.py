"""What the tracker uses of faust-streaming beyond its public API, in one place."""

from __future__ import annotations

import faust
from aiokafka import AIOKafkaProducer

from services.tracker.errors import TrackerError


def kafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer under Faust's. Faust sends changelog records one at a time
    through its producer buffer and stalls the streams while more than 100 wait ("producer
    buffer full", faust-streaming/faust#173, open); the fold
    sends a batch's records as record batches on the same producer instead, so Faust's
    flush before each commit still covers them."""
    producer = getattr(app.producer, "_producer", None)
    if not isinstance(producer, AIOKafkaProducer):
        raise TrackerError(
            "faust-streaming's producer has no aiokafka producer at `_producer`: this "
            f"faust-streaming version ({faust.__version__}) is not the one the tracker pins")
    return producer
