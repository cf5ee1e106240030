"""Rebuild: drop a partition's RocksDB state and fold it again from ``events``.

Run it while no processor owns the partitions (the store takes RocksDB's lock). The result is
the same state the live processor held, because the state is nothing but the fold of the log.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.config import Settings
from orchestrator.log.kafka import make_consumer
from orchestrator.log.topics import Topics
from orchestrator.processor.catchup import CatchUpResult, catch_up
from orchestrator.processor.store import PartitionStore, partition_path


def rebuild(settings: Settings, partitions: Iterable[int] | None = None) -> list[CatchUpResult]:
    """Delete and refold each partition's store (all partitions when None)."""
    numbers = range(settings.partitions) if partitions is None else partitions
    topics = Topics(settings.topic_prefix)
    consumer = make_consumer(settings, None, **{"enable.partition.eof": True})
    results = []
    try:
        for number in numbers:
            path = partition_path(settings.state_dir, settings.topic_prefix, number)
            PartitionStore.destroy(path)
            store = PartitionStore(path)
            try:
                results.append(catch_up(consumer, topics.events, number, store))
            finally:
                store.close()
    finally:
        consumer.close()
    return results


def digest(settings: Settings) -> dict[int, str]:
    """The content digest of every partition store under the state directory."""
    digests = {}
    for number in range(settings.partitions):
        path = partition_path(settings.state_dir, settings.topic_prefix, number)
        if path.exists():
            store = PartitionStore(path)
            try:
                digests[number] = store.digest()
            finally:
                store.close()
    return digests
