"""Reading ``events`` back: one workflow's history, or every event of every partition."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from orchestrator.config import Settings
from orchestrator.engine.records import Event
from orchestrator.errors import WorkflowTimeoutError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_consumer
from orchestrator.log.topics import Topics


def read_events(
    settings: Settings,
    partitions: Iterable[int] | None = None,
    *,
    key: str | None = None,
    start: int = 0,
    follow: bool = False,
    timeout: float = 60.0,
) -> Iterator[Event]:
    """Events from ``start`` of each partition (all when None), optionally of one key.

    Without ``follow`` it stops when every partition reached its end (read_committed); with
    ``follow`` it keeps waiting for new events until ``timeout``.
    """
    topic = Topics(settings.topic_prefix).events
    numbers = list(range(settings.partitions) if partitions is None else partitions)
    consumer: Any = make_consumer(settings, None, **{"enable.partition.eof": True})
    wanted = key.encode() if key is not None else None
    open_partitions = set(numbers)
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(topic, number, start) for number in numbers])
        while open_partitions and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.1):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and not follow:
                        open_partitions.discard(message.partition())
                    continue
                if wanted is None or message.key() == wanted:
                    yield CODEC.decode(message.value())
    finally:
        consumer.close()
    if open_partitions and not follow:
        raise WorkflowTimeoutError(f"reading {topic} took over {timeout:g} s")
