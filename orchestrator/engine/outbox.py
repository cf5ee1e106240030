"""What an event asks the processor to send: task commands, child workflows, parent results.

A projection of events (and the state after them), so it is never stored and never replayed:
the processor produces these records in the same transaction as the events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.engine.records import (
    AnyEvent,
    ExecuteTask,
    Record,
    ResultStatus,
    SignalForwarded,
    SignalTask,
    StartWorkflow,
    TaskDispatched,
    TaskFailed,
    TaskResult,
    TaskScheduled,
    TaskTimedOut,
    TerminateWorkflow,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRejected,
    WorkflowTerminated,
)
from orchestrator.engine.state import TaskState, WorkflowState
from orchestrator.engine.tasks import child_workflow_id

Json = Any


@dataclass(frozen=True)
class Exhausted:
    """A worker task failed for good after its retries: the processor dead-letters its command."""

    command: ExecuteTask
    reason: str


def outbound(event: AnyEvent, state: WorkflowState) -> list[Record | Exhausted]:  # noqa: PLR0911 - one case per event
    """The records ``event`` sends; ``state`` is the workflow's state right after it."""
    match event:
        case TaskScheduled() if event.worker and event.dispatch_at is None:
            return [command(state.tasks[event.task_id], state)]
        case TaskDispatched():
            return [command(state.tasks[event.task_id], state)]
        case TaskScheduled() if event.task_type in ("SUB_WORKFLOW", "START_WORKFLOW"):
            return [_child_start(event, state)]
        case TaskFailed() | TaskTimedOut() if _exhausted(event, state):
            task = state.tasks[event.task_id]
            reason = (
                f"task {task.ref_name!r} failed after {task.attempt} attempt(s): {event.reason}"
            )
            return [Exhausted(command(task, state), reason)]
        case WorkflowFailed() if event.failure_workflow_id:
            return [*_on_end(event, state), _failure_start(event, state)]
        case WorkflowCompleted() if event.continued_as:
            return [_successor_start(event, state), *_passed_on_signals(event, state)]
        case SignalForwarded():
            return [
                SignalTask(
                    workflow_id=event.to_workflow_id,
                    task_ref=event.task_ref,
                    status=event.status,
                    output=event.output,
                    reason=event.reason,
                    requested_at=event.at,
                )
            ]
        case WorkflowCompleted() | WorkflowFailed() | WorkflowTerminated() | WorkflowRejected():
            return _on_end(event, state)
        case _:
            return []


def _exhausted(event: TaskFailed | TaskTimedOut, state: WorkflowState) -> bool:
    """A worker task's final, non-deliberate failure (not retried, not a terminal error)."""
    task = state.tasks[event.task_id]
    deliberate = isinstance(event, TaskFailed) and event.terminal
    return task.worker and not event.retrying and not deliberate


def _failure_start(event: WorkflowFailed, state: WorkflowState) -> StartWorkflow:
    """The failureWorkflow run for this failure, linked to the failed workflow both ways."""
    return StartWorkflow(
        workflow_id=str(event.failure_workflow_id),
        name=str(state.workflow_def.failureWorkflow),
        input={
            "workflowId": state.workflow_id,
            "workflowType": state.name,
            "reason": event.reason,
            "failedTaskId": event.task_id,
            "failureStatus": str(state.status),
            "output": state.output,
            "input": state.input,
        },
        correlation_id=state.correlation_id,
        requested_at=event.at,
    )


def _successor_start(event: WorkflowCompleted, state: WorkflowState) -> StartWorkflow:
    """The fresh run a CONTINUE_AS_NEW task asked for: same workflow, the carried-over input.

    It follows the same definition snapshot, or the latest registered version when the task
    said ``useLatestDefinition``; it keeps the correlation id and the parent, so a parent's
    SUB_WORKFLOW task completes only when the last run of the chain ends.
    """
    task = next(
        (
            t
            for t in state.tasks.values()
            if t.task_type == "CONTINUE_AS_NEW"
            and isinstance(t.output, dict)
            and t.output.get("workflowId") == event.continued_as
        ),
        None,
    )
    latest = bool(task is not None and (task.input or {}).get("useLatestDefinition"))
    return StartWorkflow(
        workflow_id=str(event.continued_as),
        name=state.name,
        version=None if latest else state.version,
        input=event.next_input if event.next_input is not None else {},
        correlation_id=state.correlation_id,
        requested_at=event.at,
        parent=state.parent,
        definition=None if latest else state.definition,
        continued_from=state.workflow_id,
    )


def _passed_on_signals(event: WorkflowCompleted, state: WorkflowState) -> list[Record]:
    """Signals still queued in a run that continues go to its successor, in order."""
    return [
        SignalTask(
            workflow_id=str(event.continued_as),
            task_ref=kept["ref"],
            status=ResultStatus(kept["status"]),
            output=kept["output"],
            reason=kept["reason"],
            requested_at=event.at,
        )
        for kept in state.queued_signals
    ]


def command(task: TaskState, state: WorkflowState) -> ExecuteTask:
    """The command a worker executes for the current attempt of ``task``."""
    return ExecuteTask(
        workflow_id=state.workflow_id,
        task_id=task.task_id,
        attempt=task.attempt,
        task_type=task.task_type,
        ref_name=task.ref_name,
        input=task.input,
        workflow_name=state.name,
        scheduled_at=task.scheduled_at,
        ack=bool((task.policy or {}).get("pollTimeoutSeconds")),
    )


def _child_start(event: TaskScheduled, state: WorkflowState) -> StartWorkflow:
    data = event.input or {}
    child = child_workflow_id(state.workflow_id, event.task_id, event.attempt)
    if event.task_type == "START_WORKFLOW":
        spec = data.get("startWorkflow") or {}
        return StartWorkflow(
            workflow_id=child,
            name=str(spec.get("name", "")),
            version=spec.get("version"),
            input=spec.get("input") or {},
            correlation_id=spec.get("correlationId"),
            requested_at=event.at,
        )
    child_input = {k: v for k, v in data.items() if not k.startswith("subWorkflow")}
    return StartWorkflow(
        workflow_id=child,
        name=str(data.get("subWorkflowName") or ""),
        version=data.get("subWorkflowVersion"),
        input=child_input,
        correlation_id=state.correlation_id,
        requested_at=event.at,
        parent={"workflowId": state.workflow_id, "taskId": event.task_id, "attempt": event.attempt},
        definition=data.get("subWorkflowDefinition"),
    )


def _on_end(event: AnyEvent, state: WorkflowState) -> list[Record | Exhausted]:
    records: list[Record | Exhausted] = []
    parent = state.parent
    if parent:
        records.append(_parent_result(event, state, parent))
    if not isinstance(event, WorkflowCompleted):
        reason = f"parent workflow {state.workflow_id} ended {state.status}"
        records.extend(
            TerminateWorkflow(
                workflow_id=child_workflow_id(state.workflow_id, t.task_id, t.attempt),
                reason=reason,
            )
            for t in state.tasks.values()
            if t.task_type == "SUB_WORKFLOW" and not t.status.terminal
        )
    return records


def _parent_result(event: AnyEvent, state: WorkflowState, parent: dict[str, Json]) -> TaskResult:
    common: dict[str, Any] = {
        "workflow_id": parent["workflowId"],
        "task_id": parent["taskId"],
        "attempt": int(parent["attempt"]),
        "worker_id": f"workflow:{state.workflow_id}",
    }
    if isinstance(event, WorkflowCompleted):
        child_output = event.output if isinstance(event.output, dict) else {"result": event.output}
        output = {**child_output, "subWorkflowId": state.workflow_id}
        return TaskResult(status=ResultStatus.COMPLETED, output=output, **common)
    return TaskResult(
        status=ResultStatus.FAILED,
        output={"subWorkflowId": state.workflow_id},
        reason=f"sub-workflow {state.workflow_id} {state.status}: {state.reason}",
        **common,
    )
