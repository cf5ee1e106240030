"""Netflix Conductor's JSON shapes: request bodies in, Workflow and Task views of folded state out.

Request bodies ignore unknown fields, as Conductor's server does, so a client built for a newer
server still works. Views carry Conductor's field names and status values: the engine's own
statuses that Conductor lacks are mapped to the nearest one (COMPENSATING runs, so RUNNING;
COMPENSATION_FAILED is FAILED), and a task left unfinished by a run that ended is CANCELED.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from orchestrator.dsl.model import WorkflowTask, walk_tasks
from orchestrator.engine.records import ResultStatus, TaskStatus, WorkflowStatus
from orchestrator.engine.state import TaskState, WorkflowState
from orchestrator.engine.tasks import child_workflow_id

Json = Any
# A Conductor request field's generous cap: bodies are also capped whole in bytes.
MAX_TEXT = 2048
WORKFLOW_STATUS: dict[WorkflowStatus, str] = {
    WorkflowStatus.RUNNING: "RUNNING",
    WorkflowStatus.PAUSED: "PAUSED",
    WorkflowStatus.COMPENSATING: "RUNNING",
    WorkflowStatus.COMPLETED: "COMPLETED",
    WorkflowStatus.FAILED: "FAILED",
    WorkflowStatus.TIMED_OUT: "TIMED_OUT",
    WorkflowStatus.TERMINATED: "TERMINATED",
    WorkflowStatus.COMPENSATION_FAILED: "FAILED",
}
CHILD_STARTING_TYPES = ("SUB_WORKFLOW", "START_WORKFLOW")


class ConductorBody(BaseModel):
    """A Conductor request body: unknown fields are ignored, as Conductor ignores them."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        alias_generator=AliasGenerator(validation_alias=to_camel),
        validate_by_name=True,
    )


class StartWorkflowRequest(ConductorBody):
    """Conductor's StartWorkflowRequest; ``taskToDomain`` and ``priority`` have no effect here."""

    name: str | None = Field(None, max_length=128)
    version: int | None = Field(None, ge=1, le=2**31 - 1)
    correlation_id: str | None = Field(None, max_length=256)
    input: dict[str, Json] | None = None
    task_to_domain: dict[str, Json] | None = None
    workflow_def: dict[str, Json] | None = None
    priority: int | None = None


class TaskResultBody(ConductorBody):
    """Conductor's TaskResult: a worker's (or a person's) report about one task."""

    workflow_instance_id: str = Field(min_length=1, max_length=128)
    task_id: str = Field(min_length=1, max_length=256)
    status: ResultStatus
    output_data: dict[str, Json] | None = None
    reason_for_incompletion: str | None = Field(None, max_length=MAX_TEXT)
    callback_after_seconds: int = Field(0, ge=0, le=2**31 - 1)
    worker_id: str | None = Field(None, max_length=256)


class RerunWorkflowRequest(ConductorBody):
    """Conductor's RerunWorkflowRequest; ``reRunFromTaskId`` may also be a reference name."""

    re_run_from_workflow_id: str | None = None
    re_run_from_task_id: str | None = Field(None, max_length=256)
    task_input: dict[str, Json] | None = None
    workflow_input: dict[str, Json] | None = None
    correlation_id: str | None = None


class SkipTaskRequest(ConductorBody):
    """Conductor's SkipTaskRequest: the output the skipped task should have had."""

    task_input: dict[str, Json] | None = None
    task_output: dict[str, Json] | None = None


def workflow_status(status: WorkflowStatus) -> str:
    """A run's status as Conductor names it."""
    return WORKFLOW_STATUS[status]


def task_status(task: TaskState, run_ended: bool) -> str:
    """A task's status as Conductor names it.

    An unfinished task of a run that ended is CANCELED; a task the engine (not a worker) is
    carrying out, or one that waits for a signal, is IN_PROGRESS, as in Conductor.
    """
    if task.status.terminal:
        return str(task.status)
    if run_ended:
        return "CANCELED"
    if task.status is TaskStatus.SCHEDULED and (task.awaiting_signal or not task.worker):
        return "IN_PROGRESS"
    return str(task.status)


def workflow_json(state: WorkflowState, *, include_tasks: bool = True) -> dict[str, Json]:
    """Conductor's Workflow: the run, its definition snapshot and (by default) its tasks."""
    ended = state.status.terminal
    parent = state.parent or {}
    return {
        "workflowId": state.workflow_id,
        "workflowName": state.name,
        "workflowVersion": state.version,
        "status": workflow_status(state.status),
        "input": state.input if state.input is not None else {},
        "output": state.output if state.output is not None else {},
        "correlationId": state.correlation_id,
        "reasonForIncompletion": state.reason,
        "createTime": state.created_at,
        "startTime": state.created_at,
        "updateTime": state.updated_at,
        "endTime": state.updated_at if ended else 0,
        "parentWorkflowId": parent.get("workflow_id"),
        "parentWorkflowTaskId": parent.get("task_id"),
        "variables": state.variables,
        "priority": 0,
        "taskToDomain": {},
        "failedReferenceTaskNames": _failed(state, "ref"),
        "failedTaskNames": _failed(state, "name"),
        "workflowDefinition": state.definition,
        "tasks": tasks_json(state) if include_tasks else [],
    }


def workflow_status_json(
    state: WorkflowState, *, include_output: bool = False, include_variables: bool = False
) -> dict[str, Json]:
    """Conductor's WorkflowStatus: id, correlation id, status, and output and variables if asked."""
    return {
        "workflowId": state.workflow_id,
        "correlationId": state.correlation_id,
        "status": workflow_status(state.status),
        "output": state.output if include_output else None,
        "variables": state.variables if include_variables else None,
    }


def workflow_run_json(state: WorkflowState, request_id: str | None) -> dict[str, Json]:
    """Conductor's WorkflowRun, what a synchronous execution answers."""
    return {
        "workflowId": state.workflow_id,
        "requestId": request_id,
        "correlationId": state.correlation_id,
        "status": workflow_status(state.status),
        "input": state.input if state.input is not None else {},
        "output": state.output if state.output is not None else {},
        "variables": state.variables,
        "createTime": state.created_at,
        "updateTime": state.updated_at,
        "priority": 0,
        "tasks": tasks_json(state),
    }


def tasks_json(state: WorkflowState) -> list[dict[str, Json]]:
    """Every task of the run (its current attempt), in the order they were scheduled."""
    steps = _steps(state)
    return [
        task_json(state, task, seq, steps.get(_base_ref(task.ref_name)))
        for seq, task in enumerate(state.tasks.values(), start=1)
    ]


def task_json(
    state: WorkflowState, task: TaskState, seq: int, step: WorkflowTask | None = None
) -> dict[str, Json]:
    """Conductor's Task: one task's current attempt, within its run."""
    ended = task.status.terminal
    view: dict[str, Json] = {
        "taskId": task.task_id,
        "taskType": task.task_type,
        "taskDefName": step.name if step is not None else task.task_type,
        "referenceTaskName": task.ref_name,
        "status": task_status(task, state.status.terminal),
        "inputData": task.input if task.input is not None else {},
        "outputData": task.output if isinstance(task.output, dict) else {},
        "reasonForIncompletion": task.reason,
        "retryCount": max(task.attempt - 1, 0),
        "seq": seq,
        "pollCount": 1 if task.worker and task.heartbeat_at is not None else 0,
        "scheduledTime": task.scheduled_at,
        "startTime": task.heartbeat_at or task.dispatched_at or 0,
        "endTime": task.updated_at if ended else 0,
        "updateTime": task.updated_at,
        "workflowInstanceId": state.workflow_id,
        "workflowType": state.name,
        "correlationId": state.correlation_id,
        "workerId": task.worker_id or None,
        "callbackAfterSeconds": 0,
        "iteration": iteration_of(task.task_id),
        "retried": False,
        "executed": ended,
        "workflowPriority": 0,
        "responseTimeoutSeconds": (task.policy or {}).get("responseTimeoutSeconds", 0),
    }
    if step is not None:
        view["workflowTask"] = step.model_dump(mode="json", exclude_defaults=True)
    if task.task_type in CHILD_STARTING_TYPES:
        view["subWorkflowId"] = child_workflow_id(state.workflow_id, task.task_id, task.attempt)
    return view


def iteration_of(task_id: str) -> int:
    """The DO_WHILE iteration a loop body task belongs to (task ids ``<ref>__<n>``), else 0."""
    _, marker, number = task_id.rpartition("__")
    return int(number) if marker and number.isdigit() else 0


def _base_ref(ref_name: str) -> str:
    base, marker, number = ref_name.rpartition("__")
    return base if marker and number.isdigit() else ref_name


def _steps(state: WorkflowState) -> dict[str, WorkflowTask]:
    """The definition's tasks by reference name (none for a run rejected before it began)."""
    if not state.definition:
        return {}
    return {step.taskReferenceName: step for step in walk_tasks(state.workflow_def.tasks)}


def _failed(state: WorkflowState, field: str) -> list[str]:
    failed = [task for task in state.tasks.values() if task.failed and not task.optional]
    if field == "ref":
        return sorted({task.ref_name for task in failed})
    return sorted({task.task_type for task in failed})
