"""Steps 2 and 3 of a batch: one Kafka transaction with its events, commands and offsets.

With a :class:`~orchestrator.processor.dispatch.Dispatcher` (``early_dispatch``), the task
commands are sent just before the transaction instead of inside it, and confirmed before the
commit. Every record carries a ``type`` header and the ``traceparent`` the processor's telemetry
chooses for it (:mod:`orchestrator.observability.processor`). The consumed offsets go into the
transaction together with the position of every other owned partition, which fences an
instance that lost its partitions (KIP-447).
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from orchestrator.config import Settings
from orchestrator.engine.outbox import Exhausted
from orchestrator.engine.records import DeadLetter, Event, ExecuteTask, Record, TaskResult
from orchestrator.errors import TransactionError
from orchestrator.log.codec import CODEC
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics, ensure_task_topic
from orchestrator.observability.processor import HeaderList, ProcessorTelemetry
from orchestrator.observability.propagation import TRACEPARENT
from orchestrator.processor.batch import Batch, Outbound
from orchestrator.processor.dispatch import Dispatcher
from orchestrator.telemetry import get_logger

__all__ = ["TX_TIMEOUT_S", "Transaction"]

log = get_logger(__name__)
TX_TIMEOUT_S = 30.0


class Transaction:
    """Commits batches through one session's transactional producer and group consumer."""

    def __init__(
        self,
        settings: Settings,
        telemetry: ProcessorTelemetry,
        *,
        admin: AdminClient,
        producer: Producer,
        consumer: Consumer,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self._telemetry = telemetry
        self._admin = admin
        self._producer = producer
        self._consumer = consumer
        self._dispatcher = dispatcher
        # Committed offsets of owned partitions with no position yet, read from the group once
        # per assignment: only this member commits them until the next rebalance.
        self._restated: dict[tuple[str, int], int] = {}

    def rebalanced(self) -> None:
        """Forget what was read from the group: the partitions may have moved meanwhile."""
        self._restated.clear()

    def commit(self, batch: Batch) -> dict[int, int]:
        """Produce everything and the offsets in one transaction and commit it.

        Returns the offset of each partition's last event. Raises TransactionError (after
        aborting) when anything fails.
        """
        last_offsets: dict[int, int] = {}

        def delivered(error: Any, message: Any) -> None:
            if error is None:
                partition = message.partition()
                last_offsets[partition] = max(last_offsets.get(partition, -1), message.offset())

        early, in_transaction = self._split_outbox(batch)
        began = time.perf_counter()
        try:
            for command in early:
                self._produce_outbound(batch, command, self._dispatcher)
            self._producer.begin_transaction()
            for partition, event in batch.events:
                self._produce_event(batch, partition, event, delivered)
            for outbound in in_transaction:
                self._produce_outbound(batch, outbound)
            for letter in batch.dead_letters:
                self._produce(self.topics.dead_letters, letter.key, letter)
            self._producer.send_offsets_to_transaction(
                self._fencing_offsets(batch), self._consumer.consumer_group_metadata(), TX_TIMEOUT_S
            )
            if self._dispatcher is not None:
                self._dispatcher.confirm(TX_TIMEOUT_S)
            self._producer.commit_transaction(TX_TIMEOUT_S)
        except (KafkaException, TransactionError) as exc:
            self._abort()
            raise TransactionError(
                f"transaction of {len(batch.events)} events failed: {exc}"
            ) from exc
        self._telemetry.metrics.commit_duration.record(time.perf_counter() - began)
        self._producer.poll(0)
        return last_offsets

    def _split_outbox(self, batch: Batch) -> tuple[list[Outbound], list[Outbound]]:
        """The task commands to send early (none without a dispatcher), and the records left for
        the transaction, in order. Every command's topic exists once this returns."""
        commands: list[Outbound] = []
        others: list[Outbound] = []
        for outbound in batch.outbox:
            if isinstance(outbound.record, ExecuteTask):
                ensure_task_topic(self._admin, self.settings, outbound.record.task_type)
                commands.append(outbound)
            else:
                others.append(outbound)
        return (commands, others) if self._dispatcher is not None else ([], batch.outbox)

    def _produce_event(self, batch: Batch, partition: int, event: Event, delivered: Any) -> None:
        self._producer.produce(
            self.topics.events,
            key=event.workflow_id.encode(),
            value=CODEC.encode(event),
            headers=self._telemetry.event_headers(batch, partition, event),
            partition=partition,
            on_delivery=delivered,
        )

    def _produce_outbound(
        self, batch: Batch, outbound: Outbound, early: Dispatcher | None = None
    ) -> None:
        traceparent = self._telemetry.outbound_traceparent(batch, outbound)
        record = outbound.record
        if isinstance(record, Exhausted):
            letter = self._exhausted_letter(record, batch.now)
            self._produce(self.topics.dead_letters, letter.key, letter, traceparent=traceparent)
            return
        topic, home = self._route(record)
        self._produce(topic, record.workflow_id, record, home, traceparent=traceparent, early=early)

    def _fencing_offsets(self, batch: Batch) -> list[TopicPartition]:
        """The batch's consumed offsets, plus the positions of every other owned partition.

        Every transaction commits offsets, even one that only fired timers: the group
        coordinator then checks this member's generation, so an instance that stalled and lost
        its partitions cannot commit stale events when it wakes up.
        """
        offsets = dict(batch.offsets)
        unknown = []
        for position in self._consumer.position(self._consumer.assignment()):
            key = (position.topic, position.partition)
            if key in offsets:
                continue
            if position.offset >= 0:
                offsets[key] = position.offset
            else:
                unknown.append(TopicPartition(position.topic, position.partition))
        missing = [tp for tp in unknown if (tp.topic, tp.partition) not in self._restated]
        if missing:  # nothing fetched there yet this session: restate what the group holds
            for committed in self._consumer.committed(missing, timeout=TX_TIMEOUT_S):
                self._restated[(committed.topic, committed.partition)] = committed.offset
        for tp in unknown:
            offset = self._restated[(tp.topic, tp.partition)]
            if offset >= 0:
                offsets[(tp.topic, tp.partition)] = offset
        return [TopicPartition(t, p, o) for (t, p), o in offsets.items()]

    def _exhausted_letter(self, exhausted: Exhausted, now: int) -> DeadLetter:
        """The dead letter of a task that failed for good: its last command and the reason."""
        command = exhausted.command
        return DeadLetter(
            key=command.workflow_id,
            source_topic=self.topics.tasks(command.task_type),
            source_partition=-1,
            source_offset=-1,
            reason=exhausted.reason,
            payload=CODEC.encode(command),
            failed_at=now,
        )

    def _route(self, record: Record) -> tuple[str, int | None]:
        """Where an outbound record goes: a task topic, or requests/results of its workflow."""
        if isinstance(record, ExecuteTask):
            return self.topics.tasks(record.task_type), None
        home = partition_for(record.workflow_id, self.settings.partitions)
        if isinstance(record, TaskResult):
            return self.topics.results, home
        return self.topics.requests, home

    def _produce(
        self,
        topic: str,
        key: str | None,
        record: Any,
        partition: int | None = None,
        *,
        traceparent: str | None = None,
        early: Dispatcher | None = None,
    ) -> None:
        """Produce ``record`` in the transaction, or through ``early`` (task commands only)."""
        headers: HeaderList = [("type", CODEC.type_name(record))]
        if traceparent is not None:
            headers.append((TRACEPARENT, traceparent))
        encoded_key, value = (key.encode() if key is not None else None), CODEC.encode(record)
        if early is not None:  # the partitioner places a task command by its key
            early.send(topic, encoded_key, value, headers)
            return
        kwargs: dict[str, Any] = {} if partition is None else {"partition": partition}
        self._producer.produce(topic, key=encoded_key, value=value, headers=headers, **kwargs)

    def _abort(self) -> None:
        try:
            self._producer.abort_transaction(TX_TIMEOUT_S)
        except KafkaException as exc:
            log.warning("abort failed", error=str(exc))
