"""The processor's tracing and metrics: trace context in, headers out, spans and counts after.

Per batch, the loop calls, in order: :meth:`ProcessorTelemetry.input_context` for each record
(a request's ``traceparent``; a result's, kept as the link of its attempt's span),
:meth:`~ProcessorTelemetry.applied` after deciding each request (a run it began gets a new
:class:`RunTrace`, stored with the batch's states), :meth:`~ProcessorTelemetry.event_headers`
and :meth:`~ProcessorTelemetry.outbound_traceparent` while producing, and
:meth:`~ProcessorTelemetry.committed` after the commit.

Headers: an event that begins a run carries the run's span as ``traceparent`` and the span id
of the run's parent as ``parent-span-id``; a task command (and a child workflow's start
request) carries its task attempt's span as ``traceparent``, so the worker's span (and the child
run's) is a child of it; a result to a parent workflow carries the child run's span. The whole
batch is one ``processor.batch`` span when tracing records.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import SpanContext

from orchestrator.engine.outbox import Exhausted
from orchestrator.engine.records import Event, ExecuteTask, Input, TaskResult
from orchestrator.log.codec import CODEC
from orchestrator.observability import instruments, tracing
from orchestrator.observability.outcomes import AttemptKey, is_run_start, record_outcomes
from orchestrator.observability.propagation import (
    PARENT_SPAN_ID,
    TRACEPARENT,
    header,
    parse_traceparent,
)
from orchestrator.observability.runs import RunTrace
from orchestrator.processor.batch import Batch, Outbound
from orchestrator.processor.store import PartitionStore

__all__ = ["ProcessorTelemetry"]

HeaderList = list[tuple[str, str | bytes | None]]
LAG_INTERVAL_S = 5.0
RUN_CACHE_SIZE = 10_000


class ProcessorTelemetry:
    """Trace context and metrics of one processor instance."""

    def __init__(self, instance_id: str, stores: Mapping[int, PartitionStore]) -> None:
        self.metrics = instruments.processor()
        self._instance = {"instance": instance_id}
        self._stores = stores
        self._links: dict[AttemptKey, SpanContext] = {}
        self._runs: dict[str, RunTrace] = {}  # of committed runs; cleared on every rebalance
        self._next_lag = 0.0

    # Trace context -------------------------------------------------------------------------

    def input_context(self, message: Any, item: Input) -> SpanContext | None:
        """A request's span context; a result's is kept as the link of its attempt's span."""
        if not isinstance(item, TaskResult):
            return parse_traceparent(header(message.headers()))
        if tracing.recording():
            context = parse_traceparent(header(message.headers()))
            if context is not None:
                self._links[item.workflow_id, item.task_id, item.attempt] = context
        return None

    def applied(self, batch: Batch, partition: int, mark: int, request: SpanContext | None) -> None:
        """Give each run the request just began (events from ``mark`` on) its trace context."""
        for _, event in batch.events[mark:]:
            if is_run_start(event):
                run = RunTrace.begin(request, event.at)
                batch.runs[event.workflow_id] = run
                batch.new_runs.setdefault(partition, {})[event.workflow_id] = run.to_bytes()

    def run_of(self, batch: Batch, partition: int, workflow_id: str) -> RunTrace:
        """The trace context of the workflow's current run (begun now, stored, or derived)."""
        run = batch.runs.get(workflow_id) or self._runs.get(workflow_id)
        if run is None:
            store = self._stores.get(partition)
            raw = store.trace(workflow_id) if store is not None else None
            run = RunTrace.from_bytes(workflow_id, raw) if raw else RunTrace.fallback(workflow_id)
            self._remember(workflow_id, run)
        batch.runs[workflow_id] = run
        return run

    def _remember(self, workflow_id: str, run: RunTrace) -> None:
        if len(self._runs) >= RUN_CACHE_SIZE:
            self._runs.clear()
        self._runs[workflow_id] = run

    def event_headers(self, batch: Batch, partition: int, event: Event) -> HeaderList:
        """``type``; on an event that begins a run, also the run's span and its parent's id.

        Later events of the run share its trace, so they go without: a header per event would
        cost every event of the log for a fact its run's first event already states.
        """
        headers: HeaderList = [("type", CODEC.type_name(event))]
        if is_run_start(event):
            run = self.run_of(batch, partition, event.workflow_id)
            headers.append((TRACEPARENT, run.header))
            if run.parent_header is not None:
                headers.append((PARENT_SPAN_ID, run.parent_header))
        return headers

    def outbound_traceparent(self, batch: Batch, outbound: Outbound) -> str:
        """The span an outbound record continues: its task attempt's, else its run's."""
        run = self.run_of(batch, outbound.partition, outbound.origin.workflow_id)
        record = outbound.record
        command = record.command if isinstance(record, Exhausted) else record
        if isinstance(command, ExecuteTask):
            return run.task_header(command.task_id, command.attempt)
        task_id, attempt = (
            getattr(outbound.origin, "task_id", None),
            getattr(outbound.origin, "attempt", None),
        )
        if task_id and attempt:
            return run.task_header(task_id, attempt)
        return run.header

    # Batches -------------------------------------------------------------------------------

    @contextmanager
    def batch_span(self, began_ns: int, records: int) -> Iterator[None]:
        """A ``processor.batch`` span around the block, when tracing records."""
        if not tracing.recording():
            yield
            return
        with tracing.tracer().start_as_current_span(
            "processor.batch", start_time=began_ns, attributes={"records": records}
        ):
            yield

    def committed(self, batch: Batch) -> None:
        """Count the committed batch's outcomes and emit the spans of what ended in it."""
        record_outcomes(batch, self._stores, self.run_of, self._links)
        self._links.clear()
        for runs in batch.new_runs.values():
            for workflow_id in runs:
                self._remember(workflow_id, batch.runs[workflow_id])
        span = trace.get_current_span()
        if span.is_recording():
            partitions = {partition for _, partition in batch.offsets} | batch.dirty.keys()
            span.set_attributes(
                {
                    "partitions": len(partitions),
                    "events": len(batch.events),
                    "outbound": len(batch.outbox),
                    "dead_letters": len(batch.dead_letters),
                }
            )

    # Partitions ----------------------------------------------------------------------------

    def partitions(self, owned: int, caught_up: int) -> None:
        """Report how many partitions are assigned and how many of them are caught up."""
        self.metrics.partitions_owned.set(owned, self._instance)
        self.metrics.partitions_caught_up.set(caught_up, self._instance)

    def refresh_lag(self, consumer: Any) -> None:
        """Every few seconds, set each input partition's lag: cached high watermark - position.

        The watermark is the one the last fetch brought (no request to the broker). Under
        read_committed some brokers report it oddly while a transaction is open, so the value is
        best effort and never negative.
        """
        now = time.monotonic()
        if now < self._next_lag:
            return
        self._next_lag = now + LAG_INTERVAL_S
        for position in consumer.position(consumer.assignment()):
            if position.offset < 0:
                continue
            try:
                _, high = consumer.get_watermark_offsets(position, cached=True)
            except KafkaException:
                continue
            if high >= 0:
                self.metrics.lag.set(max(high - position.offset, 0), _where(position))

    def rebalanced(self, revoked: list[TopicPartition]) -> None:
        """Drop the cached runs (another instance may have begun new ones); zero revoked lags."""
        self._runs.clear()
        for partition in revoked:
            self.metrics.lag.set(0, _where(partition))


def _where(partition: TopicPartition) -> dict[str, str]:
    return {"topic": partition.topic, "partition": str(partition.partition)}
