"""What a Conductor task update becomes: a worker's TaskResult, a SignalTask, or a refusal.

Conductor clients update every kind of task the same way (``POST /api/tasks``). Here a task
that waits for a signal (WAIT, HUMAN, an ``asyncComplete`` task a worker finished) is answered
with a :class:`SignalTask`, a worker's task with a :class:`TaskResult` for its current attempt,
and anything else is refused with the reason, as data: the route turns it into a 4xx. The
engine checks again when it applies the record, and never applies one twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.engine.records import ResultStatus, SignalTask, TaskResult
from orchestrator.engine.state import TaskState, WorkflowState

Json = Any


@dataclass(frozen=True)
class Refusal:
    """Why an update cannot apply: the HTTP status and a message for the caller."""

    status: int
    message: str


@dataclass(frozen=True)
class TaskUpdate:
    """A client's update of one task: its id or reference name, and what it reports."""

    task: str
    status: ResultStatus
    output: Json = None
    reason: str | None = None
    worker_id: str = ""
    callback_after_seconds: int = 0


def find_task(state: WorkflowState, key: str) -> TaskState | None:
    """The task with id ``key``, else the latest task with reference name ``key``."""
    if key in state.tasks:
        return state.tasks[key]
    matches = [task for task in state.tasks.values() if task.ref_name == key]
    return matches[-1] if matches else None


def resolve(
    state: WorkflowState, update: TaskUpdate, now: int
) -> TaskResult | SignalTask | Refusal:
    """The record that applies ``update`` to the run's current state, or why none does."""
    task = find_task(state, update.task)
    if task is None:
        return Refusal(404, f"no task {update.task!r} in workflow {state.workflow_id}")
    if state.status.terminal:
        return Refusal(409, f"workflow {state.workflow_id} is already {state.status}")
    if task.status.terminal:
        return Refusal(409, f"task {task.task_id!r} is already {task.status}")
    if task.awaiting_signal:
        return _signal(state, task, update, now)
    if task.worker:
        return TaskResult(
            workflow_id=state.workflow_id,
            task_id=task.task_id,
            attempt=task.attempt,
            status=update.status,
            output=update.output,
            reason=update.reason,
            worker_id=update.worker_id,
            callback_after_seconds=update.callback_after_seconds,
        )
    return Refusal(
        409, f"task {task.task_id!r} ({task.task_type}) is carried out by the engine itself"
    )


def _signal(
    state: WorkflowState, task: TaskState, update: TaskUpdate, now: int
) -> SignalTask | Refusal:
    if update.status is ResultStatus.IN_PROGRESS:
        return Refusal(
            400,
            f"task {task.task_id!r} ({task.task_type}) waits to be COMPLETED or FAILED; "
            "IN_PROGRESS would change nothing",
        )
    return SignalTask(
        workflow_id=state.workflow_id,
        task_ref=task.task_id,
        status=update.status,
        output=update.output if update.output is not None else {},
        reason=update.reason,
        requested_at=now,
    )
