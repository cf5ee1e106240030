"""Replaying a slice of the log: the events from a moment on, copied to a topic of their own.

``replay`` copies every event with ``at >= T`` from ``events`` to a new topic with the same
partition count, keeping each record's key, partition, headers, timestamp and value bytes, so a
new read model can be built from that slice; ``fold_topic`` builds one the way ``rebuild`` does,
with the processor's own stores and catch-up. A workflow that began before ``T`` has events in
the slice but not its start, so its events do not fold (catch-up logs and skips each one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

from orchestrator.config import Settings
from orchestrator.engine.records import Event
from orchestrator.errors import BrokerError, SchemaError, StateError, TopicLayoutError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_consumer, make_producer
from orchestrator.log.scan import ensure_topic, is_empty, read_messages, topic_partitions
from orchestrator.log.topics import Topics
from orchestrator.processor.catchup import CatchUpResult, catch_up
from orchestrator.processor.store import PartitionStore, partition_path

__all__ = ["Slice", "fold_topic", "parse_time", "replay", "replay_slice"]

#: How long a read may go without progress before it fails.
STALL_TIMEOUT_S = 60.0
#: How long folding one partition may take.
FOLD_TIMEOUT_S = 600.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Slice:
    """What ``replay_slice`` copied."""

    topic: str
    copied: int
    read: int
    partial_workflows: int  # workflows in the slice whose first event is not their start


def parse_time(text: str) -> int:
    """Epoch milliseconds from epoch milliseconds or an ISO 8601 date (UTC unless it says)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is neither epoch milliseconds nor an ISO 8601 date") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def replay(
    settings: Settings, from_time_ms: int, to_topic: str, *, stall_timeout: float = STALL_TIMEOUT_S
) -> int:
    """Copy every event with ``at >= from_time_ms`` to ``to_topic``; return how many."""
    return replay_slice(settings, from_time_ms, to_topic, stall_timeout=stall_timeout).copied


def replay_slice(
    settings: Settings, from_time_ms: int, to_topic: str, *, stall_timeout: float = STALL_TIMEOUT_S
) -> Slice:
    """Copy every event with ``at >= from_time_ms`` to ``to_topic``; say what was copied.

    ``to_topic`` is created with the partition count of ``events`` and must be new or empty.
    """
    source = Topics.from_settings(settings).events
    count = _prepare_target(settings, source, to_topic)
    producer = make_producer(settings, None, **{"linger.ms": "20"})
    failures: list[Any] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(error)

    copied = read = 0
    seen: set[str] = set()
    partial = 0
    for message in read_messages(settings, source, range(count), stall_timeout=stall_timeout):
        read += 1
        event = _event_of(message)
        if event.at < from_time_ms:
            continue
        if event.workflow_id not in seen:
            seen.add(event.workflow_id)
            partial += event.seq != 1
        _copy(producer, to_topic, message, delivered)
        copied += 1
    if producer.flush(stall_timeout) > 0 or failures:
        detail = failures[0] if failures else "not acknowledged in time"
        raise BrokerError(f"copying events to {to_topic} failed: {detail}")
    return Slice(to_topic, copied, read, partial)


def _prepare_target(settings: Settings, source: str, target: str) -> int:
    """Create ``target`` like ``source``; return the partition count. Refuses a used target."""
    count = topic_partitions(settings, source)
    if count is None:
        raise BrokerError(f"topic {source} does not exist")
    if target == source:
        raise TopicLayoutError(f"cannot replay {source} into itself")
    existing = topic_partitions(settings, target)
    if existing is not None and existing != count:
        raise TopicLayoutError(f"{target} has {existing} partitions; {source} has {count}")
    if existing is not None and not is_empty(settings, target, count):
        raise TopicLayoutError(f"{target} already holds records; replay into a new topic")
    ensure_topic(settings, target, count)
    return count


def _event_of(message: Any) -> Event:
    """The event in ``message``; a record that is not one names where it lies."""
    where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
    try:
        event = CODEC.decode(message.value())
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from exc
    if not isinstance(event, Event):
        raise SchemaError(f"{where}: a {type(event).__name__} is not an event")
    return event


def _copy(producer: Any, topic: str, message: Any, delivered: Callable[[Any, Any], None]) -> None:
    """Produce ``message`` as it is to the same partition of ``topic``."""
    kind, timestamp = message.timestamp()
    extra = {"timestamp": timestamp} if kind != TIMESTAMP_NOT_AVAILABLE else {}
    while True:
        try:
            producer.produce(
                topic,
                value=message.value(),
                key=message.key(),
                partition=message.partition(),
                headers=message.headers(),
                on_delivery=delivered,
                **extra,
            )
            break
        except BufferError:
            producer.poll(0.1)  # the local queue is full: let deliveries drain it
    producer.poll(0)


def fold_topic(
    settings: Settings, topic: str, state_dir: Path, *, timeout: float = FOLD_TIMEOUT_S
) -> list[CatchUpResult]:
    """Fold ``topic`` (a copy of ``events``) into fresh partition stores under ``state_dir``.

    The stores are laid out like the processor's (``partition_path`` with the settings'
    prefix), so ``rebuild.digest`` reads them; their checkpoints are offsets in ``topic``.
    """
    if state_dir.resolve() == settings.state_dir.resolve():
        raise StateError(f"{state_dir} is the live state directory; fold into another one")
    count = topic_partitions(settings, topic)
    if count is None:
        raise BrokerError(f"topic {topic} does not exist")
    consumer = make_consumer(settings, None, **{"enable.partition.eof": True})
    results = []
    try:
        for number in range(count):
            path = partition_path(state_dir, settings.topic_prefix, number)
            PartitionStore.destroy(path)  # a checkpoint from another topic would be meaningless
            store = PartitionStore(path)
            try:
                results.append(catch_up(consumer, topic, number, store, timeout))
            finally:
                store.close()
    finally:
        consumer.close()
    return results
