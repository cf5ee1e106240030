"""Conductor's task update API under ``/api/tasks``: workers and people report on tasks.

Polling (``/api/tasks/poll/...``) is not served here. An update answers the task id as
``text/plain`` once the broker acknowledged its record; an update the run's state cannot
take (unknown task, finished task or run) is a 404 or 409 with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from orchestrator.api.auth import Principal, Role
from orchestrator.api.conductor.errors import error_response
from orchestrator.api.conductor.shapes import TaskResultBody, workflow_json
from orchestrator.api.conductor.updates import Refusal, TaskUpdate, resolve
from orchestrator.api.conductor.waiting import until
from orchestrator.api.deps import PrincipalDep, ServiceDep
from orchestrator.api.service import Service, now_ms
from orchestrator.engine.records import ResultStatus, SignalTask, TaskResult
from orchestrator.engine.state import WorkflowState
from orchestrator.log.partitioning import partition_for

Json = Any
router = APIRouter(prefix="/api/tasks", tags=["conductor tasks"])
Segment = Annotated[str, Path(min_length=1, max_length=256)]
SYNC_WAIT_S = 10.0


@router.post("", response_class=PlainTextResponse)
async def update_task(
    body: TaskResultBody, service: ServiceDep, principal: PrincipalDep
) -> Response:
    """Apply Conductor's TaskResult: a worker's result, or the answer to a waiting task."""
    update = TaskUpdate(
        task=body.task_id,
        status=body.status,
        output=body.output_data,
        reason=body.reason_for_incompletion,
        worker_id=body.worker_id or "",
        callback_after_seconds=body.callback_after_seconds,
    )
    return await _apply(service, principal, body.workflow_instance_id, update)


@router.post("/{workflow_id}/{task_ref}/{status}", response_class=PlainTextResponse)
async def update_task_by_ref(
    *,
    workflow_id: Segment,
    task_ref: Segment,
    status: ResultStatus,
    service: ServiceDep,
    principal: PrincipalDep,
    body: Annotated[dict[str, Json] | None, Body(description="the task's output")] = None,
    worker_id: Annotated[str | None, Query(alias="workerid", max_length=256)] = None,
) -> Response:
    """Update the latest task with reference name (or id) ``task_ref`` to ``status``."""
    update = TaskUpdate(task=task_ref, status=status, output=body, worker_id=worker_id or "")
    return await _apply(service, principal, workflow_id, update)


@router.post("/{workflow_id}/{task_ref}/{status}/sync")
async def update_task_by_ref_sync(
    *,
    workflow_id: Segment,
    task_ref: Segment,
    status: ResultStatus,
    service: ServiceDep,
    principal: PrincipalDep,
    body: Annotated[dict[str, Json] | None, Body(description="the task's output")] = None,
    worker_id: Annotated[str | None, Query(alias="workerid", max_length=256)] = None,
) -> Response:
    """As the update above, answered with the Workflow once the update was applied."""
    update = TaskUpdate(task=task_ref, status=status, output=body, worker_id=worker_id or "")
    before = _visible_state(service, principal, workflow_id)
    answer = await _apply(service, principal, workflow_id, update)
    if answer.status_code != 200:
        return answer
    after = await until(service, workflow_id, lambda run: run.seq > before.seq, SYNC_WAIT_S)
    return JSONResponse(workflow_json(after or before))


def _visible_state(service: Service, principal: Principal, workflow_id: str) -> WorkflowState:
    summary = service.visible_summary(principal, workflow_id)
    principal.require(Role.OPERATOR, summary["namespace"])
    state = service.store.state(workflow_id)
    assert state is not None  # written in the same batch as the summary
    return state


async def _apply(
    service: Service, principal: Principal, workflow_id: str, update: TaskUpdate
) -> Response:
    state = _visible_state(service, principal, workflow_id)
    match resolve(state, update, now_ms()):
        case Refusal(status=status, message=message):
            return error_response(status, message)
        case TaskResult() as result:
            await service.publisher.send(
                service.topics.results,
                workflow_id,
                result,
                partition=partition_for(workflow_id, service.settings.partitions),
            )
            return PlainTextResponse(result.task_id)
        case SignalTask() as signal:
            await service.send_request(signal)
            return PlainTextResponse(signal.task_ref)
