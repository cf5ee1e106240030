"""Whole-topic reads of raw records, and topics outside the engine's fixed layout.

The operator tools (``orchestrator.audit``, ``orchestrator.dlq``) copy records byte for byte and
read small operational topics, so they need the records themselves (key, partition, headers,
timestamp, value), not decoded events. :func:`read_messages` reads partitions from an offset to
their end like ``reader.read_events`` does (read_committed, end = partition EOF).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.cimpl import NewTopic  # confluent_kafka.admin re-exports it without __all__

from orchestrator.config import Settings
from orchestrator.errors import BrokerError
from orchestrator.log.kafka import admin_client, make_consumer
from orchestrator.log.topics import creation_error, partition_counts
from orchestrator.telemetry import get_logger

__all__ = ["ensure_topic", "is_empty", "read_messages", "topic_partitions"]

_CONFIG_ERRORS = frozenset(
    {KafkaError.INVALID_CONFIG, KafkaError.POLICY_VIOLATION, KafkaError.UNSUPPORTED_VERSION}
)
_log = get_logger("orchestrator.scan")


def topic_partitions(settings: Settings, topic: str) -> int | None:
    """The partition count of ``topic``, or None when it does not exist."""
    counts = partition_counts(admin_client(settings), [topic], settings.connect_timeout_s)
    return counts.get(topic)


def read_messages(
    settings: Settings,
    topic: str,
    partitions: Iterable[int],
    *,
    start: int = 0,
    stall_timeout: float = 60.0,
) -> Iterator[Any]:
    """Every record of ``partitions`` of ``topic`` from offset ``start`` to the current end.

    Records of one partition come in offset order; partitions interleave. Raises
    :class:`BrokerError` when no record and no end-of-partition arrives for ``stall_timeout``
    seconds, so a topic of any size can be read while a dead broker still fails in bounded time.
    """
    numbers = list(partitions)
    open_partitions = set(numbers)
    consumer: Any = make_consumer(settings, None, **{"enable.partition.eof": True})
    try:
        consumer.assign([TopicPartition(topic, number, start) for number in numbers])
        last_progress = time.monotonic()
        while open_partitions:
            if time.monotonic() - last_progress > stall_timeout:
                raise BrokerError(f"reading {topic} made no progress for {stall_timeout:g} s")
            for message in consumer.consume(1000, 0.1):
                last_progress = time.monotonic()
                error = message.error()
                if error is None:
                    yield message
                elif error.code() == KafkaError._PARTITION_EOF:
                    open_partitions.discard(message.partition())
                else:
                    _log.warning("consumer error", topic=topic, error=str(error))
    finally:
        consumer.close()


def is_empty(settings: Settings, topic: str, partitions: int) -> bool:
    """Whether no partition of ``topic`` holds a record (every low watermark equals the high)."""
    consumer: Any = make_consumer(settings)
    try:
        for number in range(partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, number), timeout=settings.connect_timeout_s
            )
            if high > low:
                return False
        return True
    except KafkaException as exc:
        raise BrokerError(f"cannot read the offsets of {topic}: {exc}") from exc
    finally:
        consumer.close()


def ensure_topic(
    settings: Settings, name: str, partitions: int, config: dict[str, str] | None = None
) -> int:
    """Create ``name`` with ``partitions`` unless it exists; return its partition count.

    A broker that refuses ``config`` (compaction, say) gets the topic without it.
    """
    admin = admin_client(settings)
    existing = partition_counts(admin, [name], settings.connect_timeout_s).get(name)
    if existing is not None:
        return existing
    error = _create(admin, name, partitions, settings, config or {})
    if error is not None and error.code() in _CONFIG_ERRORS and config:
        _log.warning("topic config rejected; creating without it", topic=name)
        error = _create(admin, name, partitions, settings, {})
    if error is not None and error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
        raise BrokerError(f"cannot create topic {name}: {error.name()}: {error.str()}")
    return _wait_for_count(admin, name, settings.connect_timeout_s)


def _create(
    admin: Any, name: str, partitions: int, settings: Settings, config: dict[str, str]
) -> KafkaError | None:
    spec = NewTopic(
        name,
        num_partitions=partitions,
        replication_factor=settings.replication_factor,
        config=config,
    )
    timeout = settings.connect_timeout_s
    future: Future[None] = admin.create_topics(
        [spec], operation_timeout=timeout, request_timeout=timeout
    )[name]
    return creation_error(future, timeout)


def _wait_for_count(admin: Any, name: str, timeout: float) -> int:
    """The partition count of a freshly created topic, once the metadata shows it."""
    deadline = time.monotonic() + timeout
    while True:
        count = partition_counts(admin, [name], timeout).get(name)
        if count is not None:
            return count
        if time.monotonic() >= deadline:
            raise BrokerError(f"topic {name} does not appear in the metadata after creation")
        time.sleep(0.05)
