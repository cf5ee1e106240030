"""Conductor's workflow API under ``/api/workflow``: start, read, operate, execute synchronously.

Starts answer the new workflow id as ``text/plain``, as Conductor does. Operations check the
run's status like ``/v1`` (a 409 when it does not allow them) and send the same request records.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response

from orchestrator.api.auth import Principal, Role
from orchestrator.api.conductor.errors import error_response
from orchestrator.api.conductor.shapes import (
    RerunWorkflowRequest,
    SkipTaskRequest,
    StartWorkflowRequest,
    workflow_json,
    workflow_run_json,
    workflow_status_json,
)
from orchestrator.api.conductor.waiting import settled, until
from orchestrator.api.deps import PrincipalDep, ServiceDep
from orchestrator.api.models import StartRequest
from orchestrator.api.routes_workflows import ALLOWED
from orchestrator.api.service import SearchQuery, Service, now_ms
from orchestrator.dsl.validate import parse_definition
from orchestrator.engine.records import (
    PauseWorkflow,
    Record,
    RerunWorkflow,
    RestartWorkflow,
    ResumeWorkflow,
    RetryWorkflow,
    SkipTask,
    StartWorkflow,
    TerminateWorkflow,
)
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import DefinitionError, RequestConflictError

Json = Any
router = APIRouter(prefix="/api/workflow", tags=["conductor workflows"])
IdPath = Annotated[str, Path(min_length=1, max_length=128)]
NamePath = Annotated[str, Path(min_length=1, max_length=128)]
RefPath = Annotated[str, Path(min_length=1, max_length=256)]
MAX_CORRELATED = 1000
MAX_WAIT_S = 60.0


@router.post("", response_class=PlainTextResponse)
async def start_workflow(
    body: StartWorkflowRequest, request: Request, service: ServiceDep, principal: PrincipalDep
) -> PlainTextResponse:
    """Start a run (of a registered definition, or of an inline ``workflowDef``); its id as text."""
    workflow_id = await _start(service, principal, body, request.headers.get("traceparent"))
    return PlainTextResponse(workflow_id)


@router.post("/execute/{name}/{version}")
async def execute_workflow(
    *,
    name: NamePath,
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: StartWorkflowRequest,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    request_id: Annotated[str | None, Query(alias="requestId", max_length=256)] = None,
    wait_until: Annotated[str | None, Query(alias="waitUntilTaskRef", max_length=2048)] = None,
    wait_s: Annotated[float, Query(alias="waitForSeconds", ge=0)] = 10.0,
) -> dict[str, Json]:
    """Start a run and answer when it ends, reaches ``waitUntilTaskRef``, or the wait is over."""
    named = body.model_copy(update={"name": name, "version": version})
    workflow_id = await _start(service, principal, named, request.headers.get("traceparent"))
    refs = {ref for ref in (wait_until or "").split(",") if ref}
    state = await until(
        service, workflow_id, lambda run: settled(run, refs), min(wait_s, MAX_WAIT_S)
    )
    if state is None:  # not folded yet: the run is accepted, not visible
        return {"workflowId": workflow_id, "requestId": request_id, "status": "RUNNING"}
    return workflow_run_json(state, request_id)


@router.post("/{name}", response_class=PlainTextResponse)
async def start_workflow_by_name(
    *,
    name: NamePath,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    body: Annotated[dict[str, Json] | None, Body(description="the workflow input")] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    correlation_id: Annotated[str | None, Query(alias="correlationId", max_length=256)] = None,
    priority: Annotated[int | None, Query(description="accepted; has no effect")] = None,
) -> PlainTextResponse:
    """Start a run of ``name`` with the body as its input; its id as text."""
    start = StartWorkflowRequest(
        name=name, version=version, correlation_id=correlation_id, input=body, priority=priority
    )
    workflow_id = await _start(service, principal, start, request.headers.get("traceparent"))
    return PlainTextResponse(workflow_id)


@router.get("/{name}/correlated/{correlation_id}")
def get_correlated(
    *,
    name: NamePath,
    correlation_id: Annotated[str, Path(min_length=1, max_length=256)],
    service: ServiceDep,
    principal: PrincipalDep,
    include_closed: Annotated[bool, Query(alias="includeClosed")] = False,
    include_tasks: Annotated[bool, Query(alias="includeTasks")] = False,
) -> list[dict[str, Json]]:
    """Runs of ``name`` with this correlation id, newest first (ended ones if ``includeClosed``)."""
    query = SearchQuery(name=name, correlation_id=correlation_id, limit=MAX_CORRELATED)
    _, summaries = service.search(principal, query)
    found = []
    for summary in summaries:
        state = service.store.state(summary["workflowId"])
        if state is not None and (include_closed or not state.status.terminal):
            found.append(workflow_json(state, include_tasks=include_tasks))
    return found


@router.get("/{workflow_id}")
def get_workflow(
    workflow_id: IdPath,
    service: ServiceDep,
    principal: PrincipalDep,
    include_tasks: Annotated[bool, Query(alias="includeTasks")] = True,
) -> dict[str, Json]:
    """Conductor's Workflow: the run, its definition snapshot and (by default) its tasks."""
    return workflow_json(_state(service, principal, workflow_id), include_tasks=include_tasks)


@router.get("/{workflow_id}/status")
def get_workflow_status(
    workflow_id: IdPath,
    service: ServiceDep,
    principal: PrincipalDep,
    include_output: Annotated[bool, Query(alias="includeOutput")] = False,
    include_variables: Annotated[bool, Query(alias="includeVariables")] = False,
) -> dict[str, Json]:
    """Conductor's WorkflowStatus: status and correlation id; output and variables if asked."""
    state = _state(service, principal, workflow_id)
    return workflow_status_json(
        state, include_output=include_output, include_variables=include_variables
    )


@router.put("/{workflow_id}/pause")
async def pause(workflow_id: IdPath, service: ServiceDep, principal: PrincipalDep) -> Response:
    """Schedule nothing new until resumed."""
    return await _operate(service, principal, "pause", PauseWorkflow(workflow_id=workflow_id))


@router.put("/{workflow_id}/resume")
async def resume(workflow_id: IdPath, service: ServiceDep, principal: PrincipalDep) -> Response:
    """Resume a paused run."""
    return await _operate(service, principal, "resume", ResumeWorkflow(workflow_id=workflow_id))


@router.delete("/{workflow_id}")
async def terminate(
    workflow_id: IdPath,
    service: ServiceDep,
    principal: PrincipalDep,
    reason: Annotated[str, Query(max_length=2048)] = "",
    _trigger_failure_workflow: Annotated[
        bool, Query(alias="triggerFailureWorkflow", description="accepted; no effect")
    ] = False,
) -> Response:
    """End a running workflow as TERMINATED."""
    record = TerminateWorkflow(workflow_id=workflow_id, reason=reason)
    return await _operate(service, principal, "terminate", record)


@router.post("/{workflow_id}/restart")
async def restart(
    workflow_id: IdPath,
    service: ServiceDep,
    principal: PrincipalDep,
    use_latest: Annotated[bool, Query(alias="useLatestDefinitions")] = False,
) -> Response:
    """Run an ended workflow again from the start, with the same input."""
    record = RestartWorkflow(workflow_id=workflow_id, use_latest_definition=use_latest)
    return await _operate(service, principal, "restart", record)


@router.post("/{workflow_id}/retry")
async def retry(
    workflow_id: IdPath,
    service: ServiceDep,
    principal: PrincipalDep,
    _resume_subworkflow_tasks: Annotated[
        bool, Query(alias="resumeSubworkflowTasks", description="accepted; no effect")
    ] = False,
) -> Response:
    """Reopen a failed, timed-out or terminated run at its failed task."""
    return await _operate(service, principal, "retry", RetryWorkflow(workflow_id=workflow_id))


@router.post("/{workflow_id}/rerun", response_class=PlainTextResponse)
async def rerun(
    workflow_id: IdPath, body: RerunWorkflowRequest, service: ServiceDep, principal: PrincipalDep
) -> Response:
    """Run again from ``reRunFromTaskId`` (the first task when absent); the id as text."""
    state = _state(service, principal, workflow_id)
    if body.workflow_input and body.workflow_input != state.input:
        return error_response(400, "rerun with a new workflowInput is not supported")
    from_task = body.re_run_from_task_id or next(iter(state.tasks), None)
    if from_task is None:
        return error_response(409, f"workflow {workflow_id} has no task to rerun from")
    record = RerunWorkflow(workflow_id=workflow_id, from_task=from_task, task_input=body.task_input)
    await _operate(service, principal, "rerun", record)
    return PlainTextResponse(workflow_id)


@router.put("/{workflow_id}/skiptask/{task_ref}")
async def skip_task(
    workflow_id: IdPath,
    task_ref: RefPath,
    service: ServiceDep,
    principal: PrincipalDep,
    body: Annotated[SkipTaskRequest | None, Body()] = None,
) -> Response:
    """Skip a running or future task; it counts as done with ``taskOutput``."""
    output = body.task_output if body is not None else None
    record = SkipTask(workflow_id=workflow_id, task_ref=task_ref, output=output)
    return await _operate(service, principal, "skip", record)


async def _start(
    service: Service, principal: Principal, body: StartWorkflowRequest, traceparent: str | None
) -> str:
    if body.workflow_def is not None:
        return await _start_inline(service, principal, body, traceparent)
    start = StartRequest.model_validate(
        {
            "name": body.name or "",
            "version": body.version,
            "input": body.input or {},
            "correlationId": body.correlation_id,
        }
    )
    return await service.start(principal, start, traceparent)


async def _start_inline(
    service: Service, principal: Principal, body: StartWorkflowRequest, traceparent: str | None
) -> str:
    """A run of a definition given in the request; the engine keeps it as the run's snapshot."""
    definition = parse_definition(body.workflow_def, source="workflowDef")
    principal.require(Role.OPERATOR, definition.namespace)
    try:
        snapshot = definition.to_json()
    except ValueError as exc:  # pydantic's serialization depth limit
        raise DefinitionError(f"cannot be serialized: {exc}", source="workflowDef") from exc
    workflow_id = str(uuid.uuid4())
    record = StartWorkflow(
        workflow_id=workflow_id,
        name=definition.name,
        version=definition.version,
        input=body.input or {},
        correlation_id=body.correlation_id,
        requested_at=now_ms(),
        definition=snapshot,
    )
    await service.send_request(record, traceparent)
    return workflow_id


def _state(service: Service, principal: Principal, workflow_id: str) -> WorkflowState:
    service.visible_summary(principal, workflow_id)
    state = service.store.state(workflow_id)
    assert state is not None  # written in the same batch as the summary
    return state


async def _operate(service: Service, principal: Principal, op: str, record: Record) -> Response:
    """Check the caller's role and the run's status, then send ``record``; 200 with no body."""
    summary = service.visible_summary(principal, record.workflow_id)
    principal.require(Role.OPERATOR, summary["namespace"])
    if summary["status"] not in ALLOWED[op]:
        raise RequestConflictError(
            f"cannot {op} workflow {record.workflow_id}: it is {summary['status']}"
        )
    await service.send_request(record)
    return Response()
