"""Dead letters: list them, and re-drive them to where a fixed component can process them.

A letter from ``requests`` or ``results`` (a record a processor could not decode) is produced
again, same bytes, to its source topic at the partition its key hashes to. A letter from a task
topic (a command a worker could not decode, or a task that exhausted its retries) becomes a
``RetryWorkflow`` request for its workflow. Each re-drive writes a marker, keyed by the letter's
place in ``dead-letters``, to the compacted topic ``<prefix>dead-letters.replayed`` in the same
transaction, so a letter is re-driven once unless forced. Two operators replaying the same letter
at the same moment can still both send it: markers are read before the transaction starts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import orjson
from confluent_kafka import KafkaException

from orchestrator.config import Settings
from orchestrator.engine.records import DeadLetter, ExecuteTask, RetryWorkflow
from orchestrator.errors import BrokerError, SchemaError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_producer
from orchestrator.log.partitioning import partition_for
from orchestrator.log.scan import ensure_topic, read_messages, topic_partitions
from orchestrator.log.topics import Topics
from orchestrator.telemetry import get_logger

__all__ = [
    "Outcome",
    "Redrive",
    "Status",
    "StoredLetter",
    "list_dead_letters",
    "marker_topic",
    "parse_location",
    "redrive",
    "replay_dead_letters",
    "route",
]

MARKER_SUFFIX = "dead-letters.replayed"
TX_TIMEOUT_S = 30.0
_log = get_logger("orchestrator.dlq")


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """A dead letter and its place in the dead-letters topic."""

    partition: int
    offset: int
    letter: DeadLetter
    replayed: bool = False

    @property
    def location(self) -> str:
        """``partition:offset`` in the dead-letters topic, as ``dlq replay --offset`` takes it."""
        return f"{self.partition}:{self.offset}"


@dataclass(frozen=True, slots=True)
class Redrive:
    """The record that re-drives one letter, and where it goes."""

    topic: str
    partition: int
    key: str | None
    value: bytes | None  # None: nothing to send, only the marker to write
    headers: dict[str, str]
    description: str
    retries: str | None = None  # the workflow a RetryWorkflow re-drive retries


class Status(StrEnum):
    """What happened to one selected letter."""

    REPLAYED = "replayed"
    ALREADY_REPLAYED = "already replayed"  # skipped: a marker says so, and no --force
    MISSING = "missing"  # no letter at that place
    UNROUTABLE = "unroutable"  # nowhere to re-drive it


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one selected letter, with a readable detail."""

    location: str
    status: Status
    detail: str

    @property
    def replayed(self) -> bool:
        """Whether the letter was re-driven (and marked) now."""
        return self.status is Status.REPLAYED


def marker_topic(settings: Settings) -> str:
    """The compacted topic of replay markers."""
    return f"{settings.topic_prefix}{MARKER_SUFFIX}"


def parse_location(text: str) -> tuple[int, int]:
    """``(partition, offset)`` from ``"P:O"``; raises ValueError otherwise."""
    partition, sep, offset = text.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise ValueError(f"{text!r} is not PARTITION:OFFSET (for example 0:12)")
    return int(partition), int(offset)


def route(letter: DeadLetter, topics: Topics, partitions: int) -> Redrive | str:
    """The record that re-drives ``letter``, or why it cannot be re-driven.

    ``partitions`` is the partition count of requests and results.
    """
    if letter.source_topic in (topics.requests, topics.results):
        if letter.payload is None:
            return "the letter holds no payload"
        home = (
            letter.source_partition if letter.key is None else partition_for(letter.key, partitions)
        )
        headers = {"type": name} if (name := _type_name(letter.payload)) else {}
        target = f"{letter.source_topic}[{home}]"
        return Redrive(letter.source_topic, home, letter.key, letter.payload, headers, target)
    if letter.source_topic.startswith(f"{topics.prefix}tasks."):
        command = _decoded(letter.payload)
        workflow_id = command.workflow_id if isinstance(command, ExecuteTask) else letter.key
        if not workflow_id:
            return "no workflow id: no key, and the payload is not an ExecuteTask"
        request = RetryWorkflow(workflow_id=workflow_id, reason=f"dead letter: {letter.reason}")
        home = partition_for(workflow_id, partitions)
        return Redrive(
            topics.requests,
            home,
            workflow_id,
            CODEC.encode(request),
            {"type": CODEC.type_name(request)},
            f"RetryWorkflow {workflow_id} -> {topics.requests}[{home}]",
            retries=workflow_id,
        )
    return f"source topic {letter.source_topic} is not requests, results or a task topic"


def _decoded(payload: bytes | None) -> Any:
    try:
        return CODEC.decode(payload)
    except SchemaError:
        return None


def _type_name(payload: bytes) -> str | None:
    record = _decoded(payload)
    return None if record is None else CODEC.type_name(record)


def list_dead_letters(settings: Settings, limit: int | None = None) -> list[StoredLetter]:
    """Dead letters, oldest first (by ``failed_at``), at most ``limit`` of them."""
    topic = Topics.from_settings(settings).dead_letters
    count = topic_partitions(settings, topic)
    if count is None:
        return []
    replayed = _markers(settings)
    letters = []
    for message in read_messages(settings, topic, range(count)):
        try:
            letter = CODEC.decode(message.value())
        except SchemaError as exc:
            _log.warning("undecodable dead letter", offset=message.offset(), error=str(exc))
            continue
        if isinstance(letter, DeadLetter):
            key = _marker_key(topic, message.partition(), message.offset())
            stored = StoredLetter(message.partition(), message.offset(), letter, key in replayed)
            letters.append(stored)
    letters.sort(key=lambda s: (s.letter.failed_at, s.partition, s.offset))
    return letters if limit is None else letters[:limit]


def replay_dead_letters(
    settings: Settings, selection: Collection[tuple[int, int]] | None, *, force: bool = False
) -> int:
    """Re-drive the letters at ``selection`` (every letter when None); return how many."""
    return sum(outcome.replayed for outcome in redrive(settings, selection, force=force))


def redrive(
    settings: Settings, selection: Collection[tuple[int, int]] | None, *, force: bool = False
) -> list[Outcome]:
    """Re-drive the selected letters in one transaction, with their markers; say what happened.

    Letters already marked as replayed are skipped unless ``force``. A workflow gets one
    ``RetryWorkflow`` per call: its other task letters are marked as covered by that request.
    """
    topics = Topics.from_settings(settings)
    partitions = topic_partitions(settings, topics.requests)
    if partitions is None:
        raise BrokerError(f"topic {topics.requests} does not exist")
    letters = {(s.partition, s.offset): s for s in list_dead_letters(settings)}
    wanted = list(letters) if selection is None else list(dict.fromkeys(selection))
    outcomes, plan = [], []
    retried: set[str] = set()
    for location in wanted:
        outcome, item = _plan_one(letters.get(location), location, topics, partitions, force)
        if item is not None and item.retries in retried:
            # One retry per workflow: this letter is marked, with no second request.
            detail = f"covered by the RetryWorkflow for {item.retries} above"
            outcome = Outcome(outcome.location, Status.REPLAYED, detail)
            item = replace(item, value=None)
        if item is not None:
            if item.retries is not None:
                retried.add(item.retries)
            plan.append((letters[location], item))
        outcomes.append(outcome)
    if plan:
        _send(settings, topics, plan, force)
    return outcomes


def _plan_one(
    stored: StoredLetter | None,
    location: tuple[int, int],
    topics: Topics,
    partitions: int,
    force: bool,
) -> tuple[Outcome, Redrive | None]:
    where = f"{location[0]}:{location[1]}"
    if stored is None:
        return Outcome(where, Status.MISSING, "no dead letter there"), None
    if stored.replayed and not force:
        return Outcome(where, Status.ALREADY_REPLAYED, "replayed before (--force: again)"), None
    planned = route(stored.letter, topics, partitions)
    if isinstance(planned, str):
        return Outcome(where, Status.UNROUTABLE, planned), None
    return Outcome(where, Status.REPLAYED, planned.description), planned


def _send(
    settings: Settings, topics: Topics, plan: list[tuple[StoredLetter, Redrive]], force: bool
) -> None:
    """Produce every re-drive and its marker in one transaction."""
    markers = marker_topic(settings)
    ensure_topic(settings, markers, 1, {"cleanup.policy": "compact"})
    producer: Any = make_producer(
        settings, transactional_id=f"{settings.topic_prefix}dlq-replay.{uuid.uuid4().hex}"
    )
    failures: list[Any] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(error)

    try:
        producer.init_transactions(TX_TIMEOUT_S)
        producer.begin_transaction()
        for stored, item in plan:
            if item.value is not None:
                headers = {**item.headers, "replayed-from": _where(topics, stored)}
                producer.produce(
                    item.topic,
                    value=item.value,
                    key=item.key,
                    partition=item.partition,
                    headers=list(headers.items()),
                    on_delivery=delivered,
                )
            marker = {"replayed_at": int(time.time() * 1000), "to": item.description}
            producer.produce(
                markers,
                value=orjson.dumps({**marker, "forced": force}),
                key=_where(topics, stored),
                partition=0,
                on_delivery=delivered,
            )
        producer.commit_transaction(TX_TIMEOUT_S)
    except KafkaException as exc:
        _abort(producer)
        raise BrokerError(f"replaying {len(plan)} dead letters failed: {exc}") from exc
    if failures:
        raise BrokerError(f"replaying dead letters failed: {failures[0]}")


def _abort(producer: Any) -> None:
    try:
        producer.abort_transaction(TX_TIMEOUT_S)
    except KafkaException as exc:
        _log.warning("abort of the replay transaction failed", error=str(exc))


def _where(topics: Topics, stored: StoredLetter) -> str:
    return _marker_key(topics.dead_letters, stored.partition, stored.offset)


def _marker_key(topic: str, partition: int, offset: int) -> str:
    return f"{topic}:{partition}:{offset}"


def _markers(settings: Settings) -> set[str]:
    """Keys of the letters already replayed."""
    topic = marker_topic(settings)
    count = topic_partitions(settings, topic)
    if count is None:
        return set()
    return set(_keys(read_messages(settings, topic, range(count))))


def _keys(messages: Iterator[Any]) -> Iterator[str]:
    for message in messages:
        key = message.key()
        if key is not None and message.value() is not None:
            yield key.decode(errors="replace")
