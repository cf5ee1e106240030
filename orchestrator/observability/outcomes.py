"""What a committed batch's events say, as metrics and as the spans of what ended in it.

Runs once per batch after its transaction commits and before its states are stored, so the
store still answers with each workflow's state from before the batch: that is where an
attempt scheduled in an earlier batch finds its task type and scheduled time. Counters are
summed over the batch and added once per task type, which keeps the per-event cost at a dict
update; spans are built only when tracing records.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from opentelemetry.trace import Link, SpanContext

from orchestrator.engine.records import (
    Event,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TaskSkipped,
    TaskTimedOut,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRejected,
    WorkflowReopened,
    WorkflowStarted,
    WorkflowTerminated,
)
from orchestrator.observability import instruments, tracing
from orchestrator.observability.runs import RunTrace
from orchestrator.processor.batch import Batch
from orchestrator.processor.store import PartitionStore

__all__ = ["record_outcomes"]

TaskEnd = TaskCompleted | TaskFailed | TaskTimedOut | TaskSkipped
RunEnd = WorkflowCompleted | WorkflowFailed | WorkflowTerminated | WorkflowRejected
RunOf = Callable[[Batch, int, str], RunTrace]
AttemptKey = tuple[str, str, int]
_OUTCOMES: dict[type[Event], str] = {
    TaskCompleted: "completed",
    TaskFailed: "failed",
    TaskTimedOut: "timed_out",
    TaskSkipped: "skipped",
}


def record_outcomes(
    batch: Batch,
    stores: Mapping[int, PartitionStore],
    run_of: RunOf,
    links: Mapping[AttemptKey, SpanContext],
) -> None:
    """Count the batch's task and workflow outcomes; emit spans of attempts and runs that ended.

    ``links`` holds the span contexts the results of this batch carried (the worker's span of
    each attempt), which the attempt's span links to.
    """
    scheduled: dict[AttemptKey, tuple[str, int]] = {}
    counts: Counter[tuple[str, str]] = Counter()
    metrics = instruments.processor()
    spans = tracing.recording()
    for partition, event in batch.events:
        match event:
            case TaskScheduled():
                scheduled[event.workflow_id, event.task_id, event.attempt] = (
                    event.task_type,
                    event.at,
                )
                counts["scheduled", event.task_type] += 1
                if event.attempt > 1:
                    counts["retried", event.task_type] += 1
            case TaskCompleted() | TaskFailed() | TaskTimedOut() | TaskSkipped():
                key = (event.workflow_id, event.task_id, event.attempt)
                task_type, at = scheduled.get(key) or _scheduled_before(stores[partition], key)
                _count_end(event, task_type, at, counts)
                if spans:
                    run = run_of(batch, partition, event.workflow_id)
                    _attempt_span(run, event, task_type, at, links.get(key))
            case WorkflowStarted() | WorkflowReopened():
                counts["started", ""] += 1
            case WorkflowCompleted() | WorkflowFailed() | WorkflowTerminated() | WorkflowRejected():
                counts["ended", _run_status(event)] += 1
                if spans:
                    _run_span(batch, partition, event, run_of(batch, partition, event.workflow_id))
    _add(metrics, counts)


def _scheduled_before(store: PartitionStore, key: AttemptKey) -> tuple[str, int]:
    """Task type and scheduled time of an attempt scheduled in an earlier batch."""
    state = store.get(key[0])
    task = state.tasks.get(key[1]) if state is not None else None
    if task is None:
        return "unknown", 0
    return task.task_type, task.scheduled_at if task.attempt == key[2] else 0


def _count_end(event: TaskEnd, task_type: str, at: int, counts: Counter[tuple[str, str]]) -> None:
    match event:
        case TaskCompleted():
            counts["completed", task_type] += 1
            if at:
                instruments.processor().task_latency.record(
                    (event.at - at) / 1000, {"task_type": task_type}
                )
        case TaskFailed():
            counts["failed", task_type] += 1
        case TaskTimedOut():
            counts["timed_out", task_type] += 1
        case TaskSkipped():
            pass


def _add(metrics: instruments.ProcessorInstruments, counts: Counter[tuple[str, str]]) -> None:
    for (kind, label), count in counts.items():
        match kind:
            case "scheduled":
                metrics.tasks_scheduled.add(count, {"task_type": label})
            case "retried":
                metrics.tasks_retried.add(count, {"task_type": label})
            case "completed":
                metrics.tasks_completed.add(count, {"task_type": label})
            case "failed" | "timed_out":
                metrics.tasks_failed.add(count, {"task_type": label, "cause": kind})
            case "started":
                metrics.workflows_started.add(count)
            case _:
                metrics.workflows_ended.add(count, {"status": label})


def _run_status(event: RunEnd) -> str:
    match event:
        case WorkflowCompleted():
            return "COMPLETED"
        case WorkflowFailed():
            return "TIMED_OUT" if event.timed_out else "FAILED"
        case WorkflowTerminated():
            return "TERMINATED"
        case WorkflowRejected():
            return "REJECTED"


def _attempt_span(
    run: RunTrace, event: TaskEnd, task_type: str, at: int, link: SpanContext | None
) -> None:
    """The span of one task attempt: scheduled to ended, child of the run's span."""
    outcome = _OUTCOMES[type(event)]
    tracing.emit_span(
        f"task {task_type}",
        run.task_context(event.task_id, event.attempt),
        run.context,
        at or event.at,
        event.at,
        attributes={
            "workflow.id": event.workflow_id,
            "task.id": event.task_id,
            "task.type": task_type,
            "task.attempt": event.attempt,
            "task.outcome": outcome,
        },
        links=[Link(link)] if link is not None else (),
        error=event.reason if isinstance(event, TaskFailed | TaskTimedOut) else None,
    )


def _run_span(batch: Batch, partition: int, event: RunEnd, run: RunTrace) -> None:
    """The span of one workflow run: begun to ended, child of the span that asked for it."""
    state = batch.dirty.get(partition, {}).get(event.workflow_id)
    name = state.name if state is not None else ""
    status = _run_status(event)
    tracing.emit_span(
        f"workflow {name}",
        run.context,
        run.parent,
        run.started_at or (state.created_at if state is not None else event.at),
        event.at,
        attributes={
            "workflow.id": event.workflow_id,
            "workflow.name": name,
            "workflow.status": status,
        },
        error=None if status == "COMPLETED" else (getattr(event, "reason", None) or status),
    )


def is_run_start(event: Event) -> bool:
    """Whether ``event`` begins a run (and so a new trace context)."""
    return isinstance(event, WorkflowStarted | WorkflowReopened | WorkflowRejected)
