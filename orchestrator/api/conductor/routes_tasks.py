"""Conductor's task API under ``/api/tasks``: workers poll for tasks and report on them.

A poll takes task commands from Kafka through the polling bridge
(:mod:`orchestrator.api.conductor.polling`): a single poll answers one Task or 204 No Content,
a batch poll a list, possibly empty, as Conductor's server does. An update answers the task id
as ``text/plain`` once the broker acknowledged its record. An update of a task handed out by a
poll is published for the leased attempt at once; any other update is checked against the read
model, and one the run's state cannot take (unknown task, finished task or run) is a 404 or 409
with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from orchestrator.api.auth import Principal, Role
from orchestrator.api.conductor.errors import error_response
from orchestrator.api.conductor.polling import Bridge, get_bridge
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
BridgeDep = Annotated[Bridge, Depends(get_bridge)]
WorkerId = Annotated[str | None, Query(alias="workerid", max_length=256)]
Domain = Annotated[str | None, Query(max_length=256)]
SYNC_WAIT_S = 10.0
MAX_BATCH = 100
MAX_WAIT_MS = 10_000


@router.get("/poll/{task_type}", response_model=None)
async def poll(
    *,
    task_type: Segment,
    service: ServiceDep,
    principal: PrincipalDep,
    bridge: BridgeDep,
    worker_id: WorkerId = None,
    domain: Domain = None,
) -> Response:
    """One task of ``task_type``, handed out to this worker only; 204 when none comes soon."""
    tasks = await bridge.poll(
        task_type,
        count=1,
        timeout_s=bridge.config.wait_ms / 1000,
        worker_id=worker_id or "",
        domain=domain,
        namespace=_poll_namespace(service, principal, task_type),
    )
    return JSONResponse(tasks[0]) if tasks else Response(status_code=204)


@router.get("/poll/batch/{task_type}")
async def batch_poll(
    *,
    task_type: Segment,
    service: ServiceDep,
    principal: PrincipalDep,
    bridge: BridgeDep,
    count: Annotated[int, Query(ge=1, description=f"at most {MAX_BATCH}")] = 1,
    timeout: Annotated[int, Query(ge=0, description=f"ms, at most {MAX_WAIT_MS}")] = 100,
    worker_id: WorkerId = None,
    domain: Domain = None,
) -> JSONResponse:
    """Up to ``count`` tasks, waiting up to ``timeout`` ms for the first; a list, maybe empty."""
    tasks = await bridge.poll(
        task_type,
        count=min(count, MAX_BATCH),
        timeout_s=min(timeout, MAX_WAIT_MS) / 1000,
        worker_id=worker_id or "",
        domain=domain,
        namespace=_poll_namespace(service, principal, task_type),
    )
    return JSONResponse(tasks)


def _poll_namespace(service: Service, principal: Principal, task_type: str) -> str | None:
    """The namespace owning ``task_type`` (None when unregistered); pollers are operators in it."""
    task_def = service.projector.definitions.task_def(task_type)
    namespace = task_def.namespace if task_def is not None else None
    principal.require(Role.OPERATOR, namespace)
    return namespace


@router.post("", response_class=PlainTextResponse)
async def update_task(
    body: TaskResultBody, service: ServiceDep, principal: PrincipalDep, bridge: BridgeDep
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
    return await _apply(service, principal, bridge, body.workflow_instance_id, update)


@router.post("/{workflow_id}/{task_ref}/{status}", response_class=PlainTextResponse)
async def update_task_by_ref(
    *,
    workflow_id: Segment,
    task_ref: Segment,
    status: ResultStatus,
    service: ServiceDep,
    principal: PrincipalDep,
    bridge: BridgeDep,
    body: Annotated[dict[str, Json] | None, Body(description="the task's output")] = None,
    worker_id: WorkerId = None,
) -> Response:
    """Update the latest task with reference name (or id) ``task_ref`` to ``status``."""
    update = TaskUpdate(task=task_ref, status=status, output=body, worker_id=worker_id or "")
    return await _apply(service, principal, bridge, workflow_id, update)


@router.post("/{workflow_id}/{task_ref}/{status}/sync")
async def update_task_by_ref_sync(
    *,
    workflow_id: Segment,
    task_ref: Segment,
    status: ResultStatus,
    service: ServiceDep,
    principal: PrincipalDep,
    bridge: BridgeDep,
    body: Annotated[dict[str, Json] | None, Body(description="the task's output")] = None,
    worker_id: WorkerId = None,
) -> Response:
    """As the update above, answered with the Workflow once the update was applied."""
    update = TaskUpdate(task=task_ref, status=status, output=body, worker_id=worker_id or "")
    before = _visible_state(service, principal, workflow_id)
    answer = await _apply(service, principal, bridge, workflow_id, update)
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
    service: Service, principal: Principal, bridge: Bridge, workflow_id: str, update: TaskUpdate
) -> Response:
    lease = bridge.lease(workflow_id, update.task)
    if lease is not None:
        # Handed out by a poll: the leased attempt is known, the read model may lag behind.
        principal.require(Role.OPERATOR, lease.namespace)
        await bridge.report(lease, update)
        return PlainTextResponse(lease.task_id)
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
