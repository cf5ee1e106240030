"""Catch-up: fold a partition's ``events`` into its store, from the checkpoint to the end.

Used on assignment (closing the gap a crash between commit and store write leaves) and by
``orchestrator rebuild`` (from offset 0 into an empty store). Reads are read_committed, so
events of aborted transactions never reach the state. The trace context of each run is
restored from the headers of the event that began it, so trace rows are rebuilt with the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, TopicPartition

from orchestrator.engine.evolve import evolve
from orchestrator.engine.records import Event
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import OrchestratorError, StateError
from orchestrator.log.codec import CODEC
from orchestrator.observability import instruments
from orchestrator.observability.outcomes import is_run_start
from orchestrator.observability.propagation import PARENT_SPAN_ID, header
from orchestrator.observability.runs import RunTrace
from orchestrator.processor.store import PartitionStore
from orchestrator.telemetry import get_logger

log = get_logger(__name__)
FLUSH_EVERY = 5000


@dataclass
class CatchUpResult:
    """How much a catch-up replayed."""

    partition: int
    events: int
    checkpoint: int
    seconds: float


def catch_up(
    consumer: Any, topic: str, partition: int, store: PartitionStore, timeout: float = 120.0
) -> CatchUpResult:
    """Replay ``topic``/``partition`` from the store's checkpoint to the end into the store.

    The end is where the read_committed consumer reports end-of-partition (``consumer`` must be
    created with ``enable.partition.eof``): the last stable offset. Watermarks are not used,
    because a broker may count transaction markers in them or report 0 while a transaction
    is open.
    """
    started = time.monotonic()
    checkpoint, count = store.checkpoint, 0
    pending: dict[str, WorkflowState] = {}
    traces: dict[str, bytes] = {}
    folded = instruments.processor().catchup_events
    where, reported = {"partition": str(partition)}, 0
    consumer.assign([TopicPartition(topic, partition, checkpoint + 1)])
    try:
        at_end = False
        while not at_end:
            if time.monotonic() - started > timeout:
                raise StateError(f"catch-up of {topic}[{partition}] stalled after {checkpoint}")
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise StateError(f"catch-up of {topic}[{partition}]: {error}")
                    at_end = True
                    continue
                _fold_one(message, store, pending, traces)
                checkpoint, count = message.offset(), count + 1
            if len(pending) >= FLUSH_EVERY:
                store.write(pending, checkpoint, traces)
                folded.add(count - reported, where)
                pending.clear()
                traces.clear()
                reported = count
        if count:
            store.write(pending, checkpoint, traces)
            folded.add(count - reported, where)
    finally:
        consumer.unassign()
    return CatchUpResult(partition, count, checkpoint, time.monotonic() - started)


def _fold_one(
    message: Any,
    store: PartitionStore,
    pending: dict[str, WorkflowState],
    traces: dict[str, bytes],
) -> None:
    try:
        event = CODEC.decode(message.value())
        if not isinstance(event, Event):
            raise StateError(f"{type(event).__name__} is not an event")
        state = pending.get(event.workflow_id) or store.get(event.workflow_id)
        if state is not None and event.seq <= state.seq:
            return  # already folded (a store written after this event's batch)
        pending[event.workflow_id] = evolve(state, event)  # type: ignore[arg-type]
        if is_run_start(event):
            _restore_trace(message, event, traces)
    except (OrchestratorError, ValueError) as exc:
        log.error("skipping event that does not fold", offset=message.offset(), error=str(exc))


def _restore_trace(message: Any, event: Event, traces: dict[str, bytes]) -> None:
    """The trace row of the run ``event`` began, from its headers (if it carries them)."""
    headers = message.headers()
    run = RunTrace.from_headers(header(headers), header(headers, PARENT_SPAN_ID), event.at)
    if run is not None:
        traces[event.workflow_id] = run.to_bytes()
