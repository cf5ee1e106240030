"""What a worker writes: task results to ``results`` and unreadable commands to ``dead-letters``.

Records are produced asynchronously (linger a few ms, no flush per record); the caller learns
of each acknowledgement through ``on_delivery``, served by whoever polls the producer. A result
goes to the workflow's partition of ``results``, keyed by workflow id, with a ``type`` header
and the ``traceparent`` of the worker's span of the attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from orchestrator.config import Settings
from orchestrator.engine.records import DeadLetter, ResultStatus, TaskResult
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import make_producer
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics
from orchestrator.observability.propagation import TRACEPARENT
from orchestrator.telemetry import get_logger

__all__ = ["DeliveryCallback", "Publisher"]

DeliveryCallback = Callable[[KafkaError | None, Message], None]
_Headers = dict[str, str | bytes | None]

RESULT_LINGER_MS = 0
_ANY_PARTITION = -1  # the producer's partitioner chooses
_QUEUE_FULL_WAIT_S = 0.05

_log = get_logger("orchestrator.worker")


class Publisher:
    """Produces a worker's results and dead letters; thread-safe, shared by its consumers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topics = Topics.from_settings(settings)
        self.producer: Producer = make_producer(settings, None, **{"linger.ms": RESULT_LINGER_MS})

    def result(
        self,
        result: TaskResult,
        on_delivery: DeliveryCallback,
        *,
        traceparent: bytes | str | None = None,
    ) -> None:
        """Produce ``result`` to its workflow's partition of ``results``, with ``traceparent``.

        A result the producer refuses outright (too large, say) is replaced by a FAILED result
        saying why, so the task fails visibly instead of timing out.
        """
        home = partition_for(result.workflow_id, self.settings.partitions)
        trace: _Headers | None = None if traceparent is None else {TRACEPARENT: traceparent}
        try:
            self._produce(
                self.topics.results, result.workflow_id, result, home, on_delivery, extra=trace
            )
        except KafkaException as exc:
            reason = f"cannot publish the task result: {exc.args[0].str()}"
            _log.error(
                "result refused",
                workflow_id=result.workflow_id,
                task_id=result.task_id,
                reason=reason,
            )
            failure = replace(
                result,
                status=ResultStatus.FAILED,
                output=None,
                reason=reason,
                error_type="ResultPublishError",
            )
            self._produce(
                self.topics.results, result.workflow_id, failure, home, on_delivery, extra=trace
            )

    def dead_letter(self, message: Message, reason: str, on_delivery: DeliveryCallback) -> None:
        """Produce a :class:`DeadLetter` holding ``message``'s bytes, origin and ``reason``."""
        key = message.key()
        letter = DeadLetter(
            key=key.decode(errors="replace") if key is not None else None,
            source_topic=message.topic() or "",
            source_partition=message.partition() or 0,
            source_offset=message.offset() or 0,
            reason=reason,
            payload=message.value(),
            failed_at=int(time.time() * 1000),
        )
        _log.warning(
            "dead-lettered task command",
            topic=letter.source_topic,
            partition=letter.source_partition,
            offset=letter.source_offset,
            reason=reason,
        )
        self._produce(self.topics.dead_letters, key, letter, _ANY_PARTITION, on_delivery)

    def _produce(
        self,
        topic: str,
        key: str | bytes | None,
        record: TaskResult | DeadLetter,
        partition: int,
        on_delivery: DeliveryCallback,
        *,
        extra: _Headers | None = None,
    ) -> None:
        value = CODEC.encode(record)
        headers: _Headers = {"type": CODEC.type_name(record), **(extra or {})}
        while True:
            try:
                self.producer.produce(
                    topic, value, key, partition, on_delivery=on_delivery, headers=headers
                )
                return
            except BufferError:
                # The producer's queue is full: wait for deliveries instead of buffering more.
                self.producer.poll(_QUEUE_FULL_WAIT_S)
