"""One batch of inputs: decide over each, collect what the transaction must write.

The batch reads workflow state through an overlay (states changed earlier in this batch win
over the store) and never writes the store itself; the loop does that after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from orchestrator.engine import Definitions, decide, evolve
from orchestrator.engine.emitter import Scripts
from orchestrator.engine.outbox import Exhausted, outbound
from orchestrator.engine.records import (
    DeadLetter,
    Event,
    Input,
    Record,
    StartWorkflow,
)
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import OrchestratorError
from orchestrator.log.codec import CODEC
from orchestrator.log.partitioning import partition_for
from orchestrator.observability.runs import RunTrace
from orchestrator.processor.store import PartitionStore
from orchestrator.telemetry import get_logger

log = get_logger(__name__)


class Outbound(NamedTuple):
    """A record the batch sends, with the partition and the event it follows from."""

    record: Record | Exhausted
    partition: int
    origin: Event


@dataclass
class Batch:
    """Everything one transaction writes, and the states to store once it commits.

    ``runs`` caches the trace context of each workflow the batch touches; ``new_runs`` holds
    the trace rows of runs begun in it, stored with the states.
    """

    now: int
    events: list[tuple[int, Event]] = field(default_factory=list)
    outbox: list[Outbound] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    dirty: dict[int, dict[str, WorkflowState]] = field(default_factory=dict)
    runs: dict[str, RunTrace] = field(default_factory=dict)
    new_runs: dict[int, dict[str, bytes]] = field(default_factory=dict)

    def state(
        self, partition: int, store: PartitionStore, workflow_id: str
    ) -> WorkflowState | None:
        """The workflow's state as of everything decided so far in this batch."""
        changed = self.dirty.get(partition, {}).get(workflow_id)
        return changed if changed is not None else store.get(workflow_id)

    def dead_letter(self, message: Any, reason: str) -> None:
        """Send ``message`` to dead-letters with ``reason``."""
        key = message.key()
        self.dead_letters.append(
            DeadLetter(
                key=key.decode(errors="replace") if key is not None else None,
                source_topic=message.topic(),
                source_partition=message.partition(),
                source_offset=message.offset(),
                reason=reason,
                payload=message.value(),
                failed_at=self.now,
            )
        )
        log.warning(
            "dead-lettered record", topic=message.topic(), offset=message.offset(), reason=reason
        )


def decode_input(message: Any, partitions: int, requests_topic: str) -> Input:
    """The request or result in ``message``; raises OrchestratorError naming what is wrong."""
    record = CODEC.decode(message.value())
    role = "requests" if message.topic() == requests_topic else "results"
    if not isinstance(record, Record) or record.topic_role != role:
        raise OrchestratorError(
            f"a {type(record).__name__} record does not belong on {message.topic()}"
        )
    home = partition_for(record.workflow_id, partitions)
    if home != message.partition():
        raise OrchestratorError(
            f"record for workflow {record.workflow_id!r} arrived on partition "
            f"{message.partition()} but belongs on {home} (key it by workflow id)"
        )
    return record  # type: ignore[return-value]


def apply_input(
    batch: Batch,
    partition: int,
    store: PartitionStore,
    item: Input,
    definitions: Definitions,
    *,
    scripts: Scripts | None = None,
) -> None:
    """Decide ``item`` against the current state and add the outcome to ``batch``."""
    state = batch.state(partition, store, item.workflow_id)
    decision = decide(state, item, definitions, batch.now, scripts)
    if decision.ignored is not None:
        log.info(
            "input ignored",
            workflow_id=item.workflow_id,
            input=type(item).__name__,
            reason=decision.ignored,
        )
        return
    for event in decision.events:
        state = evolve(state, event)
        batch.events.append((partition, event))
        records = outbound(event, state)
        if records:
            batch.outbox.extend(Outbound(record, partition, event) for record in records)
    if state is not None:
        batch.dirty.setdefault(partition, {})[item.workflow_id] = state


def needs_definitions(items: list[Input], definitions: Definitions) -> bool:
    """Whether a start request in ``items`` names a definition the table lacks."""
    return any(
        isinstance(item, StartWorkflow) and definitions.get(item.name, item.version) is None
        for item in items
    )
