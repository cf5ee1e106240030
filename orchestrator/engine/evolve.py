"""``evolve``: apply one event to a workflow's state. Pure: the given state is never changed."""

from __future__ import annotations

import dataclasses
from typing import Any, assert_never

from orchestrator.engine.records import (
    AnyEvent,
    CompensationStarted,
    LoopIterated,
    RequestRejected,
    SignalDequeued,
    SignalForwarded,
    SignalQueued,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskInProgress,
    TaskReassigned,
    TaskScheduled,
    TaskSkipped,
    TaskStatus,
    TaskTimedOut,
    TimeoutAlerted,
    VariablesUpdated,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowRejected,
    WorkflowReopened,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowStatus,
    WorkflowTerminated,
)
from orchestrator.engine.state import TaskState, WorkflowState


def evolve(state: WorkflowState | None, event: AnyEvent) -> WorkflowState:  # noqa: PLR0912, PLR0915 - one case per event type
    """The state after ``event``; ``state`` is None before a workflow's first event."""
    if state is None:
        return _begin(event)
    new = state.copy()
    new.seq = event.seq
    new.updated_at = event.at
    match event:
        case WorkflowStarted() | WorkflowRejected():
            raise ValueError(f"workflow {event.workflow_id} already began (event {event.seq})")
        case TaskScheduled():
            new.tasks[event.task_id] = _scheduled(event)
        case TaskInProgress():
            task = new.tasks[event.task_id]
            _update_task(
                new,
                event.task_id,
                event.at,
                status=TaskStatus.IN_PROGRESS,
                worker_id=event.worker_id,
                output=event.output if event.output is not None else task.output,
                awaiting_signal=event.awaiting_signal,
                heartbeat_at=event.at,
                dispatch_at=event.callback_at,
            )
        case TaskDispatched():
            _update_task(new, event.task_id, event.at, dispatch_at=None, dispatched_at=event.at)
        case TaskReassigned():
            assignment = {
                "assignee": event.assignee,
                "group": event.group,
                "escalationLevel": event.level,
                "dueAt": event.due_at,
            }
            _update_task(new, event.task_id, event.at, wait_until=event.due_at, output=assignment)
        case TaskTimedOut():
            _update_task(
                new,
                event.task_id,
                event.at,
                status=TaskStatus.TIMED_OUT,
                reason=event.reason,
                awaiting_signal=False,
                dispatch_at=None,
            )
        case TimeoutAlerted():
            if event.task_id:
                _update_task(new, event.task_id, event.at, alerted=True)
            else:
                new.timeout_alerted = True
        case TaskSkipped():
            if event.task_id in new.tasks:
                _update_task(
                    new,
                    event.task_id,
                    event.at,
                    status=TaskStatus.SKIPPED,
                    output=event.output,
                    awaiting_signal=False,
                    dispatch_at=None,
                )
            else:
                new.skips[event.task_id] = event.output
        case LoopIterated():
            _iterate(new, event)
        case VariablesUpdated():
            new.variables = {**new.variables, **(event.variables or {})}
        case TaskCompleted():
            _update_task(
                new,
                event.task_id,
                event.at,
                status=TaskStatus.COMPLETED,
                output=event.output,
                worker_id=event.worker_id,
                awaiting_signal=False,
            )
        case TaskFailed():
            _update_task(
                new,
                event.task_id,
                event.at,
                status=TaskStatus.FAILED,
                reason=event.reason,
                worker_id=event.worker_id,
                awaiting_signal=False,
            )
        case CompensationStarted():
            new.status = WorkflowStatus.COMPENSATING
            new.reason = event.reason
            new.failed_task_id = event.task_id
            new.compensation = list(event.steps or [])
        case WorkflowPaused():
            new.status = WorkflowStatus.PAUSED
        case WorkflowResumed():
            new.status = WorkflowStatus.RUNNING
        case WorkflowReopened():
            _reopen(new, event)
        case WorkflowCompleted():
            new.status = WorkflowStatus.COMPLETED
            new.output = event.output
            new.continued_as = event.continued_as
        case WorkflowFailed():
            new.status = _failed_status(event)
            new.reason = event.reason
            new.output = event.output
            new.failed_task_id = event.task_id
        case WorkflowTerminated():
            new.status = WorkflowStatus.TERMINATED
            new.reason = event.reason
            new.output = event.output
        case SignalQueued():
            kept = {
                "ref": event.task_ref,
                "status": str(event.status),
                "output": event.output,
                "reason": event.reason,
            }
            new.queued_signals = [*new.queued_signals, kept]
        case SignalDequeued():
            queued = new.queued_signals
            first = next(i for i, kept in enumerate(queued) if kept["ref"] == event.task_ref)
            new.queued_signals = queued[:first] + queued[first + 1 :]
        case RequestRejected() | SignalForwarded():
            pass
        case _:
            assert_never(event)
    return new


def _failed_status(event: WorkflowFailed) -> WorkflowStatus:
    if event.timed_out:
        return WorkflowStatus.TIMED_OUT
    if isinstance(event.compensation, dict) and event.compensation.get("failed"):
        return WorkflowStatus.COMPENSATION_FAILED
    return WorkflowStatus.FAILED


def _reopen(state: WorkflowState, event: WorkflowReopened) -> None:
    """Back to RUNNING; the removed tasks start again later, with higher attempt numbers."""
    state.status = WorkflowStatus.RUNNING
    state.reason = None
    state.output = None
    state.failed_task_id = None
    state.compensation = []
    state.continued_as = None
    for task_id in event.removed or []:
        task = state.tasks.pop(task_id, None)
        if task is not None:
            state.retired[task_id] = max(state.retired.get(task_id, 0), task.attempt)
    if event.mode == "restart":
        state.skips = {}
        state.created_at = event.at
        state.timeout_alerted = False
        if event.definition is not None:
            state.definition = event.definition
            state._parsed = None
            state._memo = {}
        state.input = event.input
        state.variables = dict(state.workflow_def.variables)


def _scheduled(event: TaskScheduled) -> TaskState:
    output: dict[str, Any] | None = None
    if event.task_type == "DO_WHILE":
        output = {"iteration": 0}
        items = (event.input or {}).get("items")
        if isinstance(items, list) and items:
            output.update(item=items[0], index=0)
    return TaskState(
        task_id=event.task_id,
        ref_name=event.ref_name,
        task_type=event.task_type,
        attempt=event.attempt,
        status=TaskStatus.SCHEDULED,
        input=event.input,
        output=output,
        scheduled_at=event.at,
        updated_at=event.at,
        worker=event.worker,
        optional=event.optional,
        async_complete=event.async_complete,
        dispatch_at=event.dispatch_at,
        wait_until=event.wait_until,
        awaiting_signal=event.task_type in ("WAIT", "HUMAN"),
        policy=event.policy,
        dispatched_at=event.at if event.worker and event.dispatch_at is None else None,
    )


def _iterate(state: WorkflowState, event: LoopIterated) -> None:
    task = state.tasks[event.task_id]
    output = {
        **(task.output or {}),
        str(event.iteration): event.output,
        "iteration": event.iteration,
    }
    items = (task.input or {}).get("items")
    if isinstance(items, list) and event.iteration < len(items):
        output.update(item=items[event.iteration], index=event.iteration)
    _update_task(state, event.task_id, event.at, status=TaskStatus.IN_PROGRESS, output=output)


def _begin(event: AnyEvent) -> WorkflowState:
    match event:
        case WorkflowStarted():
            return WorkflowState(
                workflow_id=event.workflow_id,
                name=event.name,
                version=event.version,
                status=WorkflowStatus.RUNNING,
                seq=event.seq,
                input=event.input,
                correlation_id=event.correlation_id,
                definition=event.definition,
                created_at=event.at,
                updated_at=event.at,
                variables=dict(event.variables or {}),
                parent=event.parent,
                continued_from=event.continued_from,
            )
        case WorkflowRejected():
            return WorkflowState(
                workflow_id=event.workflow_id,
                name=event.name,
                version=event.version,
                status=WorkflowStatus.FAILED,
                seq=event.seq,
                input=event.input,
                correlation_id=event.correlation_id,
                reason=event.reason,
                created_at=event.at,
                updated_at=event.at,
                parent=event.parent,
            )
        case _:
            raise ValueError(
                f"workflow {event.workflow_id}: {type(event).__name__} before the workflow began"
            )


def _update_task(state: WorkflowState, task_id: str, at: int, **changes: object) -> None:
    task = state.tasks.get(task_id)
    if task is None:
        raise ValueError(f"workflow {state.workflow_id}: event for unknown task {task_id!r}")
    state.tasks[task_id] = dataclasses.replace(task, updated_at=at, **changes)  # type: ignore[arg-type]


def fold(events: list[AnyEvent], state: WorkflowState | None = None) -> WorkflowState | None:
    """The state after applying ``events`` in order."""
    for event in events:
        state = evolve(state, event)
    return state
