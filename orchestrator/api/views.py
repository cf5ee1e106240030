"""JSON views of folded state, camelCase as the API returns them."""

from __future__ import annotations

from typing import Any

from orchestrator.engine.state import TaskState, WorkflowState

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
    )
    return view


def task_view(task: TaskState) -> dict[str, Json]:
    """One task's current attempt."""
    return {
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
    }
