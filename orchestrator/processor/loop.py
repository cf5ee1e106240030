"""The exactly-once processor: consume requests and results, decide, commit, store.

For each batch (the order is the design's invariant):

1. decode every input; decide and evolve each against the batch overlay of the owned
   partition's state (the store is not touched);
2. in one Kafka transaction, produce the events, the task commands and the dead letters, and
   add the consumed offsets (``send_offsets_to_transaction``, fenced by group metadata);
3. commit the transaction;
4. only then write each partition's changed states with its new checkpoint (the offset of its
   last event) to RocksDB, in one write batch per partition.

A failed transaction is fatal for the session: the overlay is dropped, the clients are closed,
and a new session rejoins the group and catches up from the log.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from orchestrator.config import Settings
from orchestrator.engine.outbox import Exhausted
from orchestrator.engine.records import DeadLetter, ExecuteTask, Input, Record, TaskResult
from orchestrator.errors import OrchestratorError, TransactionError
from orchestrator.log.codec import CODEC
from orchestrator.log.kafka import admin_client, make_consumer, make_producer
from orchestrator.log.partitioning import partition_for
from orchestrator.log.topics import Topics, ensure_task_topic
from orchestrator.processor.batch import Batch, apply_input, decode_input, needs_definitions
from orchestrator.processor.catchup import catch_up
from orchestrator.processor.definitions import DefinitionTable
from orchestrator.processor.store import PartitionStore, partition_path
from orchestrator.scripts import ScriptEngine
from orchestrator.telemetry import get_logger

log = get_logger(__name__)
MAX_BATCH = 1000
POLL_TIMEOUT_S = 0.05
TX_TIMEOUT_S = 30.0


def now_ms() -> int:
    """Wall-clock milliseconds: the only clock the engine's decisions see."""
    return int(time.time() * 1000)


class Processor:
    """One processor instance: a member of the processor group that owns some partitions."""

    def __init__(self, settings: Settings, instance_id: str) -> None:
        self.settings = settings
        self.instance_id = instance_id
        self.topics = Topics(settings.topic_prefix)
        self.stores: dict[int, PartitionStore] = {}
        self.ready = threading.Event()
        self._admin = admin_client(settings)
        self._definitions: DefinitionTable | None = None
        self._consumer: Any = None
        self._producer: Any = None
        self._catchup: Any = None
        self._scripts = ScriptEngine()
        self._rebalanced = False

    @property
    def group_id(self) -> str:
        """The consumer group every processor instance of this deployment joins."""
        return f"{self.settings.topic_prefix}processor"

    def run(self, stop: threading.Event) -> None:
        """Process until ``stop`` is set; a failed session is closed and a new one begins."""
        while not stop.is_set():
            try:
                self._open()
                self._loop(stop)
            except TransactionError as exc:
                log.error("transaction failed; rejoining and catching up", error=str(exc))
            finally:
                self._close()

    # Session ----------------------------------------------------------------------------------

    def _open(self) -> None:
        self._definitions = DefinitionTable(self.settings)
        self._definitions.refresh()
        self._producer = make_producer(
            self.settings,
            transactional_id=f"{self.settings.topic_prefix}processor-{self.instance_id}",
            **{"transaction.timeout.ms": 60000},
        )
        self._producer.init_transactions(TX_TIMEOUT_S)
        self._catchup = make_consumer(
            self.settings, group_id=None, **{"enable.partition.eof": True}
        )
        self._consumer = make_consumer(self.settings, group_id=self.group_id)
        self._consumer.subscribe(
            [self.topics.requests, self.topics.results],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info("processor session started", instance=self.instance_id, group=self.group_id)

    def _close(self) -> None:
        self.ready.clear()
        for client in (self._consumer, self._catchup, self._definitions):
            if client is not None:
                try:
                    client.close()
                except (KafkaException, RuntimeError) as exc:
                    log.warning("error closing client", error=str(exc))
        self._consumer = self._catchup = self._definitions = None
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None
        self._close_stores(list(self.stores))

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._rebalanced = True
        owned = sorted({tp.partition for tp in partitions if tp.topic == self.topics.requests})
        for number in owned:
            store = PartitionStore(
                partition_path(self.settings.state_dir, self.settings.topic_prefix, number)
            )
            result = catch_up(self._catchup, self.topics.events, number, store)
            self.stores[number] = store
            log.info(
                "partition assigned",
                partition=number,
                replayed=result.events,
                checkpoint=result.checkpoint,
                seconds=round(result.seconds, 3),
            )
        self.ready.set()

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._rebalanced = True
        self._close_stores(sorted({tp.partition for tp in partitions}))

    def _close_stores(self, numbers: list[int]) -> None:
        for number in numbers:
            store = self.stores.pop(number, None)
            if store is not None:
                store.close()
                log.info("partition released", partition=number)

    # Batches ----------------------------------------------------------------------------------

    def _loop(self, stop: threading.Event) -> None:
        assert self._definitions is not None
        while not stop.is_set():
            self._rebalanced = False
            began = time.monotonic()
            messages = self._next_batch()
            self._check_not_stalled(time.monotonic() - began)
            self._definitions.poll()
            self._process(messages)

    def _check_not_stalled(self, gap_s: float) -> None:
        """End the session if waiting for records took longer than the group tolerates.

        The wait is bounded by POLL_TIMEOUT_S, so a longer one means the process was frozen
        (or blocked) and may have lost its partitions without its client having noticed yet;
        firing its timers now would duplicate the new owner's events. Rebalances (and their
        catch-ups, which run inside the wait) do not count. Every transaction also carries
        the owned partitions' offsets, which fences a stale instance on Kafka (KIP-447).
        """
        limit_s = self.settings.session_timeout_ms / 1000
        if gap_s > limit_s and not self._rebalanced:
            raise TransactionError(
                f"the loop stalled for {gap_s:.1f} s (over the {limit_s:g} s session timeout); "
                "its partitions may have moved: rejoining and catching up"
            )

    def _next_batch(self) -> list[Any]:
        """Wait for one record, then take what else is already fetched, without waiting.

        ``consume(n, timeout)`` blocks until ``n`` records or the timeout, which would add the
        whole timeout to every task's latency under light load.
        """
        first = self._consumer.poll(POLL_TIMEOUT_S)
        if first is None:
            return []
        return [first, *self._consumer.consume(MAX_BATCH - 1, 0)]

    def _process(self, messages: list[Any]) -> None:
        """Step 1 for one batch of records and due timers, then steps 2-4."""
        batch = Batch(now=now_ms())
        inputs = [*self._decode(batch, messages), *self._due_timers(batch.now)]
        if not inputs and not batch.dead_letters:
            return
        assert self._definitions is not None
        if needs_definitions([item for _, item in inputs], self._definitions):
            self._definitions.refresh()
        for partition, item in inputs:
            store = self.stores.get(partition)
            if store is None:
                raise TransactionError(f"input for partition {partition}, which is not owned")
            apply_input(batch, partition, store, item, self._definitions, scripts=self._scripts)
        checkpoints = self._commit(batch)
        self._store(batch, checkpoints)

    def _decode(self, batch: Batch, messages: list[Any]) -> list[tuple[int, Input]]:
        """Decode records into inputs; record every offset; dead-letter what does not decode."""
        inputs: list[tuple[int, Input]] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error", error=str(error))
                continue
            batch.offsets[(message.topic(), message.partition())] = message.offset() + 1
            try:
                item = decode_input(message, self.settings.partitions, self.topics.requests)
                inputs.append((message.partition(), item))
            except OrchestratorError as exc:
                batch.dead_letter(message, str(exc))
            except Exception as exc:  # noqa: BLE001 - no input may stop the processor
                batch.dead_letter(message, f"undecodable record: {type(exc).__name__}: {exc}")
        return inputs

    def _due_timers(self, now: int) -> list[tuple[int, Input]]:
        """Due timers of every owned partition, as engine inputs."""
        return [
            (number, timer.fired())
            for number, store in self.stores.items()
            for timer in store.due_timers(now)
        ]

    def _commit(self, batch: Batch) -> dict[int, int]:
        """Steps 2 and 3: produce everything and the offsets in one transaction; commit it."""
        last_offsets: dict[int, int] = {}

        def delivered(error: Any, message: Any) -> None:
            if error is None:
                partition = message.partition()
                last_offsets[partition] = max(last_offsets.get(partition, -1), message.offset())

        for task_type in {r.task_type for r in batch.outbox if isinstance(r, ExecuteTask)}:
            ensure_task_topic(self._admin, self.settings, task_type)
        try:
            self._producer.begin_transaction()
            for partition, event in batch.events:
                self._produce(self.topics.events, event.workflow_id, event, partition, delivered)
            for record in batch.outbox:
                if isinstance(record, Exhausted):
                    letter = self._exhausted_letter(record, batch.now)
                    self._produce(self.topics.dead_letters, letter.key, letter)
                    continue
                topic, home = self._route(record)
                self._produce(topic, record.workflow_id, record, home)
            for letter in batch.dead_letters:
                self._produce(self.topics.dead_letters, letter.key, letter)
            self._producer.send_offsets_to_transaction(
                self._fencing_offsets(batch), self._consumer.consumer_group_metadata(), TX_TIMEOUT_S
            )
            self._producer.commit_transaction(TX_TIMEOUT_S)
        except KafkaException as exc:
            self._abort()
            raise TransactionError(
                f"transaction of {len(batch.events)} events failed: {exc}"
            ) from exc
        self._producer.poll(0)
        return last_offsets

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
        if unknown:  # nothing fetched there yet this session: restate what the group holds
            for committed in self._consumer.committed(unknown, timeout=TX_TIMEOUT_S):
                if committed.offset >= 0:
                    offsets[(committed.topic, committed.partition)] = committed.offset
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
        callback: Any = None,
    ) -> None:
        kwargs: dict[str, Any] = {"on_delivery": callback} if callback else {}
        if partition is not None:
            kwargs["partition"] = partition
        self._producer.produce(
            topic,
            key=key.encode() if key is not None else None,
            value=CODEC.encode(record),
            headers={"type": CODEC.type_name(record)},
            **kwargs,
        )

    def _abort(self) -> None:
        try:
            self._producer.abort_transaction(TX_TIMEOUT_S)
        except KafkaException as exc:
            log.warning("abort failed", error=str(exc))

    def _store(self, batch: Batch, checkpoints: dict[int, int]) -> None:
        """Step 4: write each partition's changed states and its checkpoint atomically."""
        for partition, states in batch.dirty.items():
            checkpoint = checkpoints.get(partition)
            if checkpoint is None:
                raise TransactionError(f"no delivery report for events of partition {partition}")
            self.stores[partition].write(states, checkpoint)
