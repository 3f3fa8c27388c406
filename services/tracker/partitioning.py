"""Which partition of the keyed topics a pair belongs to: the default (murmur2) partitioner,
so the internal topic, the tables and the contract topics keyed by pair agree."""

from __future__ import annotations

from functools import lru_cache

from aiokafka.partitioner import murmur2


@lru_cache(maxsize=65536)
def partition_of(pair: str, partitions: int) -> int:
    """Cached: asked per event, and for every table key after a rebalance."""
    return (murmur2(pair.encode()) & 0x7FFFFFFF) % partitions
