"""The exactly-once processor: consume requests and results, decide, commit, store.

For each batch (the order is the design's invariant):

1. decode every input; decide and evolve each against the batch overlay of the owned
   partition's state (the store is not touched);
2. in one Kafka transaction, produce the events, the task commands and the dead letters, and
   add the consumed offsets (``send_offsets_to_transaction``, fenced by group metadata);
3. commit the transaction;
4. only then write each partition's changed states with its new checkpoint (the offset of its
   last event) to RocksDB, in one write batch per partition.

Steps 2 and 3 live in :mod:`orchestrator.processor.transaction`. A failed transaction is fatal
for the session: the overlay is dropped, the clients are closed, and a new session rejoins the
group and catches up from the log.

Tracing and metrics ride along (:mod:`orchestrator.observability.processor`): task commands,
child workflow starts and results to parents carry a ``traceparent`` header, the event that
begins a run names its trace, and a committed batch's events become counters and, when tracing
records, the spans of the task attempts and runs that ended in it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from opentelemetry.trace import SpanContext

from orchestrator.config import Settings
from orchestrator.engine.records import Input
from orchestrator.errors import OrchestratorError, TransactionError
from orchestrator.log.kafka import admin_client, make_consumer, make_producer
from orchestrator.log.topics import Topics
from orchestrator.observability.health import serve_health
from orchestrator.observability.processor import ProcessorTelemetry
from orchestrator.processor.batch import Batch, apply_input, decode_input, needs_definitions
from orchestrator.processor.catchup import catch_up
from orchestrator.processor.definitions import DefinitionTable
from orchestrator.processor.dispatch import Dispatcher
from orchestrator.processor.store import PartitionStore, partition_path
from orchestrator.processor.transaction import TX_TIMEOUT_S, Transaction
from orchestrator.scripts import ScriptEngine
from orchestrator.telemetry import get_logger

log = get_logger(__name__)
MAX_BATCH = 1000
POLL_TIMEOUT_S = 0.05


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
        self._dispatcher: Dispatcher | None = None
        self._transaction: Transaction | None = None
        self._catchup: Any = None
        self._scripts = ScriptEngine()
        self._rebalanced = False
        self._owned: set[int] = set()
        self._telemetry = ProcessorTelemetry(instance_id, self.stores)

    @property
    def group_id(self) -> str:
        """The consumer group every processor instance of this deployment joins."""
        return f"{self.settings.topic_prefix}processor"

    def run(self, stop: threading.Event) -> None:
        """Process until ``stop`` is set; a failed session is closed and a new one begins.

        With ``settings.metrics_port`` set, ``/healthz``, ``/readyz`` and ``/metrics`` are served
        meanwhile.
        """
        health = serve_health(self.settings, self.readiness)
        try:
            while not stop.is_set():
                try:
                    self._open()
                    self._loop(stop)
                except TransactionError as exc:
                    log.error("transaction failed; rejoining and catching up", error=str(exc))
                finally:
                    self._close()
        finally:
            if health is not None:
                health.close()

    def readiness(self) -> list[str]:
        """Why this instance is not ready to process: no assignment yet, or catch-up running."""
        if not self.ready.is_set():
            return ["waiting for a partition assignment"]
        behind = sorted(self._owned - self.stores.keys())
        return [f"catching up partitions {behind}"] if behind else []

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
        if self.settings.early_dispatch:
            self._dispatcher = Dispatcher(self.settings)
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
        self._transaction = Transaction(
            self.settings,
            self._telemetry,
            admin=self._admin,
            producer=self._producer,
            consumer=self._consumer,
            dispatcher=self._dispatcher,
        )
        log.info("processor session started", instance=self.instance_id, group=self.group_id)

    def _close(self) -> None:
        self.ready.clear()
        self._owned.clear()
        for client in (self._consumer, self._catchup, self._definitions):
            if client is not None:
                try:
                    client.close()
                except (KafkaException, RuntimeError) as exc:
                    log.warning("error closing client", error=str(exc))
        self._consumer = self._catchup = self._definitions = self._transaction = None
        if self._producer is not None:
            self._producer.flush(5)
            self._producer = None
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None
        self._close_stores(list(self.stores))

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._rebalanced = True
        if self._transaction is not None:
            self._transaction.rebalanced()
        owned = sorted({tp.partition for tp in partitions if tp.topic == self.topics.requests})
        self._owned.update(owned)
        self._telemetry.rebalanced([])
        self._telemetry.partitions(len(self._owned), len(self.stores))
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
            self._telemetry.partitions(len(self._owned), len(self.stores))
        self.ready.set()

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._rebalanced = True
        if self._transaction is not None:
            self._transaction.rebalanced()
        numbers = sorted({tp.partition for tp in partitions})
        self._owned.difference_update(numbers)
        self._telemetry.rebalanced(partitions)
        self._close_stores(numbers)
        self._telemetry.partitions(len(self._owned), len(self.stores))

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
            self._telemetry.refresh_lag(self._consumer)

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
        began = time.time_ns()
        batch = Batch(now=now_ms())
        inputs = [*self._decode(batch, messages), *self._due_timers(batch.now)]
        if not inputs and not batch.dead_letters:
            return
        with self._telemetry.batch_span(began, len(messages)):
            self._apply(batch, inputs)
            assert self._transaction is not None
            checkpoints = self._transaction.commit(batch)
            self._telemetry.committed(batch)
            self._store(batch, checkpoints)

    def _apply(self, batch: Batch, inputs: list[_Decoded]) -> None:
        """Step 1: decide every input against the batch overlay; trace the runs requests begin."""
        assert self._definitions is not None
        if needs_definitions([item for _, item, _ in inputs], self._definitions):
            self._definitions.refresh()
        for partition, item, context in inputs:
            store = self.stores.get(partition)
            if store is None:
                raise TransactionError(f"input for partition {partition}, which is not owned")
            mark = len(batch.events)
            apply_input(batch, partition, store, item, self._definitions, scripts=self._scripts)
            if item.topic_role == "requests":
                self._telemetry.applied(batch, partition, mark, context)

    def _decode(self, batch: Batch, messages: list[Any]) -> list[_Decoded]:
        """Decode records into inputs; record every offset; dead-letter what does not decode."""
        inputs: list[_Decoded] = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error", error=str(error))
                continue
            batch.offsets[(message.topic(), message.partition())] = message.offset() + 1
            try:
                item = decode_input(message, self.settings.partitions, self.topics.requests)
                context = self._telemetry.input_context(message, item)
                inputs.append((message.partition(), item, context))
            except OrchestratorError as exc:
                batch.dead_letter(message, str(exc))
            except Exception as exc:  # noqa: BLE001 - no input may stop the processor
                batch.dead_letter(message, f"undecodable record: {type(exc).__name__}: {exc}")
        return inputs

    def _due_timers(self, now: int) -> list[_Decoded]:
        """Due timers of every owned partition, as engine inputs."""
        return [
            (number, timer.fired(), None)
            for number, store in self.stores.items()
            for timer in store.due_timers(now)
        ]

    def _store(self, batch: Batch, checkpoints: dict[int, int]) -> None:
        """Step 4: write each partition's changed states and its checkpoint atomically."""
        for partition, states in batch.dirty.items():
            checkpoint = checkpoints.get(partition)
            if checkpoint is None:
                raise TransactionError(f"no delivery report for events of partition {partition}")
            self.stores[partition].write(states, checkpoint, batch.new_runs.get(partition))


_Decoded = tuple[int, Input, SpanContext | None]
"""An input, its partition, and the span context its record carried (requests only)."""
