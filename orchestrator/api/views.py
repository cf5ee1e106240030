"""JSON views of folded state, camelCase as the API returns them."""

from __future__ import annotations

from typing import Any

from orchestrator.engine.state import TaskState, WorkflowState
from orchestrator.engine.tasks import child_workflow_id

CHILD_STARTING_TYPES = ("SUB_WORKFLOW", "START_WORKFLOW")

Json = Any


def workflow_view(summary: dict[str, Json], state: WorkflowState) -> dict[str, Json]:
    """A run: its summary plus input, output, variables and the definition it follows."""
    view = {key: value for key, value in summary.items() if key != "text"}
    view.update(
        input=state.input,
        output=state.output,
        variables=state.variables,
        definition=state.definition,
        parent=state.parent,
        failedTaskId=state.failed_task_id,
        continuedFrom=state.continued_from,
        continuedAs=state.continued_as,
    )
    return view


def task_view(workflow_id: str, task: TaskState) -> dict[str, Json]:
    """One task's current attempt; ``awaitingSignal`` marks WAIT/HUMAN tasks that wait for one."""
    view = {
        "taskId": task.task_id,
        "refName": task.ref_name,
        "taskType": task.task_type,
        "attempt": task.attempt,
        "status": str(task.status),
        "input": task.input,
        "output": task.output,
        "reason": task.reason,
        "workerId": task.worker_id,
        "scheduledTime": task.scheduled_at,
        "updateTime": task.updated_at,
        "optional": task.optional,
        "awaitingSignal": task.awaiting_signal and not task.status.terminal,
        "iteration": _iteration(task.task_id),
    }
    if task.task_type in CHILD_STARTING_TYPES:
        view["subWorkflowId"] = child_workflow_id(workflow_id, task.task_id, task.attempt)
    return view


def _iteration(task_id: str) -> int | None:
    """The DO_WHILE iteration a loop body task belongs to (task ids ``<ref>__<n>``)."""
    _, marker, number = task_id.rpartition("__")
    return int(number) if marker and number.isdigit() else None
