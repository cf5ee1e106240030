"""Conductor's JSON shapes, task updates and error bodies, without a broker."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.responses import JSONResponse

from orchestrator.api.conductor.errors import error_body, is_conductor_path, reshape
from orchestrator.api.conductor.shapes import (
    StartWorkflowRequest,
    TaskResultBody,
    iteration_of,
    task_status,
    workflow_json,
    workflow_status,
    workflow_status_json,
)
from orchestrator.api.conductor.updates import Refusal, TaskUpdate, resolve
from orchestrator.api.conductor.waiting import settled
from orchestrator.engine.records import (
    ResultStatus,
    SignalTask,
    TaskResult,
    TaskStatus,
    WorkflowStatus,
)
from orchestrator.engine.state import TaskState, WorkflowState

Json = Any
DEFINITION = {
    "name": "flow",
    "version": 3,
    "tasks": [
        {"name": "review", "taskReferenceName": "review", "type": "HUMAN"},
        {"name": "encode", "taskReferenceName": "encode", "type": "SIMPLE"},
    ],
}


def task(task_id: str, status: TaskStatus = TaskStatus.SCHEDULED, **fields: Json) -> TaskState:
    """A task of ``run``; HUMAN tasks wait for a signal, others run on workers."""
    human = task_id.startswith("review")
    defaults: dict[str, Json] = {
        "ref_name": task_id,
        "task_type": "HUMAN" if human else "encode",
        "attempt": 1,
        "worker": not human,
        "awaiting_signal": human,
        "scheduled_at": 1_000,
        "updated_at": 2_000,
    }
    return TaskState(task_id=task_id, status=status, **(defaults | fields))


def run(status: WorkflowStatus = WorkflowStatus.RUNNING, *tasks: TaskState) -> WorkflowState:
    """A run of DEFINITION with ``tasks``."""
    state = WorkflowState(
        workflow_id="wf-1",
        name="flow",
        version=3,
        status=status,
        input={"order": 7},
        correlation_id="c-1",
        definition=DEFINITION,
        created_at=1_000,
        updated_at=3_000,
        parent={"workflow_id": "parent-1", "task_id": "child"},
    )
    state.tasks = {t.task_id: t for t in tasks}
    return state


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (WorkflowStatus.RUNNING, "RUNNING"),
        (WorkflowStatus.COMPENSATING, "RUNNING"),
        (WorkflowStatus.COMPENSATION_FAILED, "FAILED"),
        (WorkflowStatus.TIMED_OUT, "TIMED_OUT"),
        (WorkflowStatus.PAUSED, "PAUSED"),
    ],
)
def test_workflow_statuses_are_conductors(ours: WorkflowStatus, theirs: str) -> None:
    """Every engine status maps to one of Conductor's six."""
    assert workflow_status(ours) == theirs


def test_task_statuses_are_conductors() -> None:
    """Waiting and engine tasks are IN_PROGRESS; an unfinished task of an ended run is CANCELED."""
    assert task_status(task("review"), run_ended=False) == "IN_PROGRESS"
    assert task_status(task("encode"), run_ended=False) == "SCHEDULED"
    assert task_status(task("encode"), run_ended=True) == "CANCELED"
    assert task_status(task("encode", TaskStatus.COMPLETED), run_ended=True) == "COMPLETED"


def test_workflow_json_has_conductors_fields() -> None:
    """A run reads as Conductor's Workflow, its tasks as Conductor's Tasks."""
    state = run(
        WorkflowStatus.FAILED,
        task("review", TaskStatus.COMPLETED, output={"ok": True}),
        task("encode", TaskStatus.FAILED, attempt=3, reason="boom", worker_id="w9"),
    )
    found = workflow_json(state)
    assert found["workflowName"] == "flow"
    assert found["workflowVersion"] == 3
    assert found["status"] == "FAILED"
    assert (found["startTime"], found["endTime"]) == (1_000, 3_000)
    assert (found["parentWorkflowId"], found["parentWorkflowTaskId"]) == ("parent-1", "child")
    assert found["failedReferenceTaskNames"] == ["encode"]
    review, encode = found["tasks"]
    assert (review["seq"], encode["seq"]) == (1, 2)
    assert review["outputData"] == {"ok": True}
    assert encode["retryCount"] == 2
    assert encode["reasonForIncompletion"] == "boom"
    assert encode["workerId"] == "w9"
    assert encode["taskDefName"] == "encode"
    assert encode["workflowTask"]["taskReferenceName"] == "encode"
    assert workflow_json(state, include_tasks=False)["tasks"] == []


def test_workflow_status_json_includes_output_only_when_asked() -> None:
    """WorkflowStatus carries output and variables only when asked for."""
    state = run()
    state.output = {"x": 1}
    assert workflow_status_json(state)["output"] is None
    assert workflow_status_json(state, include_output=True)["output"] == {"x": 1}


def test_loop_iterations_come_from_task_ids() -> None:
    """A DO_WHILE body task ``ref__2`` is iteration 2; other tasks are iteration 0."""
    assert iteration_of("step__2") == 2
    assert iteration_of("step") == 0
    assert iteration_of("my__step") == 0


def test_request_bodies_ignore_unknown_fields_and_take_camel_case() -> None:
    """Conductor's bodies validate by their JSON names; unknown fields are ignored."""
    start = StartWorkflowRequest.model_validate(
        {"name": "flow", "correlationId": "c", "idempotencyStrategy": "FAIL", "priority": 5}
    )
    assert (start.name, start.correlation_id) == ("flow", "c")
    result = TaskResultBody.model_validate(
        {"workflowInstanceId": "wf", "taskId": "t", "status": "COMPLETED", "logs": []}
    )
    assert result.status is ResultStatus.COMPLETED


def test_an_update_of_a_waiting_task_is_a_signal() -> None:
    """A HUMAN task's update becomes a SignalTask for its task id."""
    update = TaskUpdate(task="review", status=ResultStatus.COMPLETED, output={"ok": True})
    record = resolve(run(WorkflowStatus.RUNNING, task("review")), update, now=5)
    assert record == SignalTask(
        workflow_id="wf-1",
        task_ref="review",
        status=ResultStatus.COMPLETED,
        output={"ok": True},
        requested_at=5,
    )


def test_an_update_of_a_worker_task_is_a_result_for_its_attempt() -> None:
    """A worker task's update becomes a TaskResult carrying the current attempt."""
    update = TaskUpdate(task="encode", status=ResultStatus.IN_PROGRESS, callback_after_seconds=9)
    record = resolve(run(WorkflowStatus.RUNNING, task("encode", attempt=2)), update, now=5)
    assert isinstance(record, TaskResult)
    assert (record.attempt, record.callback_after_seconds) == (2, 9)


@pytest.mark.parametrize(
    ("state", "update", "status"),
    [
        (run(), TaskUpdate(task="nope", status=ResultStatus.COMPLETED), 404),
        (
            run(WorkflowStatus.RUNNING, task("encode", TaskStatus.COMPLETED)),
            TaskUpdate(task="encode", status=ResultStatus.COMPLETED),
            409,
        ),
        (
            run(WorkflowStatus.TERMINATED, task("review")),
            TaskUpdate(task="review", status=ResultStatus.COMPLETED),
            409,
        ),
        (
            run(WorkflowStatus.RUNNING, task("review")),
            TaskUpdate(task="review", status=ResultStatus.IN_PROGRESS),
            400,
        ),
        (
            run(WorkflowStatus.RUNNING, task("encode", worker=False, task_type="JOIN")),
            TaskUpdate(task="encode", status=ResultStatus.COMPLETED),
            409,
        ),
    ],
)
def test_updates_that_cannot_apply_are_refused(
    state: WorkflowState, update: TaskUpdate, status: int
) -> None:
    """Unknown tasks, finished tasks or runs, and engine tasks are refused with a reason."""
    refusal = resolve(state, update, now=5)
    assert isinstance(refusal, Refusal)
    assert refusal.status == status
    assert refusal.message


def test_a_run_settles_when_it_ends_or_reaches_a_named_task() -> None:
    """Synchronous execution stops waiting at the end or at a ``waitUntilTaskRef`` task."""
    assert not settled(run(), {"review"})
    assert settled(run(WorkflowStatus.RUNNING, task("review")), {"review"})
    assert settled(run(WorkflowStatus.COMPLETED), set())


def test_errors_are_reshaped_for_conductor_paths() -> None:
    """A ``detail`` answer becomes Conductor's ErrorResponse, validation errors listed by path."""
    assert is_conductor_path("/api/workflow")
    assert is_conductor_path("/health")
    assert not is_conductor_path("/v1/workflows")
    detail = [{"type": "missing", "loc": ["body", "name"], "msg": "Field required"}]
    shaped = reshape(JSONResponse({"detail": detail}, status_code=400))
    body = orjson.loads(bytes(shaped.body))
    assert body["status"] == 400
    assert body["message"] == "body.name: Field required"
    assert body["validationErrors"] == [{"path": "body.name", "message": "Field required"}]
    challenge = JSONResponse({"detail": "no token"}, 401, headers={"WWW-Authenticate": "Bearer"})
    assert reshape(challenge).headers["www-authenticate"] == "Bearer"
    assert error_body(503, "down")["retryable"] is True
