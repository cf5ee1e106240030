"""Workflow routes: start, read, search, history, lifecycle operations, signals."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from orchestrator.api.auth import Principal, Role
from orchestrator.api.deps import PrincipalDep, ServiceDep
from orchestrator.api.models import (
    Accepted,
    Page,
    ReasonBody,
    RerunBody,
    RestartBody,
    SignalBody,
    SkipBody,
    StartRequest,
    StartResponse,
)
from orchestrator.api.service import SearchQuery, Service, now_ms
from orchestrator.api.views import task_view, workflow_view
from orchestrator.engine.records import (
    PauseWorkflow,
    Record,
    RerunWorkflow,
    RestartWorkflow,
    ResultStatus,
    ResumeWorkflow,
    RetryWorkflow,
    SignalTask,
    SkipTask,
    TerminateWorkflow,
    WorkflowStatus,
)
from orchestrator.errors import RequestConflictError

Json = Any
router = APIRouter(prefix="/v1/workflows", tags=["workflows"])
WorkflowIdPath = Annotated[str, Path(min_length=1, max_length=128)]
MAX_MS = 2**53
ENDED = {str(status) for status in WorkflowStatus if status.terminal}
# Which statuses each operation applies to; the processor re-checks and records a rejection.
ALLOWED: dict[str, set[str]] = {
    "terminate": {"RUNNING", "PAUSED", "COMPENSATING"},
    "pause": {"RUNNING"},
    "resume": {"PAUSED"},
    "retry": {"FAILED", "TIMED_OUT", "TERMINATED", "COMPENSATION_FAILED"},
    "restart": ENDED,
    "rerun": ENDED | {"RUNNING", "PAUSED"},
    "skip": {"RUNNING", "PAUSED"},
    "signal": {"RUNNING", "PAUSED"},
}


@router.post("", status_code=201, response_model_exclude_none=True)
async def start_workflow(
    body: StartRequest,
    request: Request,
    service: ServiceDep,
    principal: PrincipalDep,
    wait: Annotated[bool, Query(description="wait for the run to end")] = False,
    timeout: Annotated[float, Query(gt=0, le=300, description="seconds to wait")] = 10.0,
) -> StartResponse:
    """Start a run of a registered definition; with ``wait``, answer when it ends (or times out)."""
    workflow_id = await service.start(principal, body, request.headers.get("traceparent"))
    if not wait:
        return StartResponse(workflowId=workflow_id)
    summary = await _until_ended(service, workflow_id, timeout)
    if summary is None:
        return StartResponse(workflowId=workflow_id, status="RUNNING")
    state = service.store.state(workflow_id)
    return StartResponse(
        workflowId=workflow_id, status=summary["status"], output=state and state.output
    )


async def _until_ended(service: Service, workflow_id: str, timeout: float) -> Json:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        summary = service.store.summary(workflow_id)
        if summary is not None and summary["status"] in ENDED:
            return summary
        await asyncio.sleep(0.02)
    return None


@router.get("")
def search_workflows(
    service: ServiceDep,
    principal: PrincipalDep,
    name: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[WorkflowStatus | None, Query()] = None,
    correlationId: Annotated[str | None, Query(max_length=256)] = None,
    startedAfter: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    startedBefore: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    q: Annotated[str | None, Query(max_length=256, description="free text in the input")] = None,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    sort: Annotated[str, Query(pattern=r"^startTime:(asc|desc)$")] = "startTime:desc",
) -> Page:
    """Search by name, status, correlation id, start time and free text; newest first."""
    query = SearchQuery(
        name=name,
        status=str(status) if status else None,
        correlation_id=correlationId,
        started_after=startedAfter,
        started_before=startedBefore,
        text=q or None,
        offset=offset,
        limit=limit,
        ascending=sort.endswith("asc"),
    )
    total, results = service.search(principal, query)
    return Page(total=total, results=results)


@router.get("/{workflow_id}")
def get_workflow(
    workflow_id: WorkflowIdPath,
    service: ServiceDep,
    principal: PrincipalDep,
    includeTasks: bool = True,
) -> dict[str, Json]:
    """One run: its summary, input, output, variables, definition and (by default) its tasks."""
    summary = service.visible_summary(principal, workflow_id)
    state = service.store.state(workflow_id)
    assert state is not None  # written in the same batch as the summary
    view = workflow_view(summary, state)
    if includeTasks:
        view["tasks"] = [task_view(workflow_id, task) for task in state.tasks.values()]
    return view


@router.get("/{workflow_id}/history")
def get_history(
    workflow_id: WorkflowIdPath, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Json]:
    """Every event of the run, in order."""
    service.visible_summary(principal, workflow_id)
    return {"events": service.store.events(workflow_id)}


async def _operate(
    service: Service, principal: Principal, workflow_id: str, op: str, record: Record
) -> Accepted:
    summary = service.visible_summary(principal, workflow_id)
    principal.require(Role.OPERATOR, summary["namespace"])
    if summary["status"] not in ALLOWED[op] and not _forwarded(service, op, workflow_id):
        raise RequestConflictError(f"cannot {op} workflow {workflow_id}: it is {summary['status']}")
    await service.send_request(record)
    return Accepted(workflowId=workflow_id, requested=op)


def _forwarded(service: Service, op: str, workflow_id: str) -> bool:
    """Whether the engine passes this request on: a signal to a run that continued as new."""
    if op != "signal":
        return False
    state = service.store.state(workflow_id)
    return state is not None and state.continued_as is not None


@router.post("/{workflow_id}/terminate", status_code=202)
async def terminate(
    workflow_id: WorkflowIdPath, body: ReasonBody, service: ServiceDep, principal: PrincipalDep
) -> Accepted:
    """End a running workflow as TERMINATED."""
    record = TerminateWorkflow(workflow_id=workflow_id, reason=body.reason)
    return await _operate(service, principal, workflow_id, "terminate", record)


@router.post("/{workflow_id}/pause", status_code=202)
async def pause(
    workflow_id: WorkflowIdPath, body: ReasonBody, service: ServiceDep, principal: PrincipalDep
) -> Accepted:
    """Schedule nothing new until resumed (running tasks finish)."""
    record = PauseWorkflow(workflow_id=workflow_id, reason=body.reason)
    return await _operate(service, principal, workflow_id, "pause", record)


@router.post("/{workflow_id}/resume", status_code=202)
async def resume(
    workflow_id: WorkflowIdPath, service: ServiceDep, principal: PrincipalDep
) -> Accepted:
    """Resume a paused workflow."""
    record = ResumeWorkflow(workflow_id=workflow_id)
    return await _operate(service, principal, workflow_id, "resume", record)


@router.post("/{workflow_id}/retry", status_code=202)
async def retry(
    workflow_id: WorkflowIdPath, service: ServiceDep, principal: PrincipalDep
) -> Accepted:
    """Reopen a failed, timed-out or terminated run at its failed task."""
    record = RetryWorkflow(workflow_id=workflow_id)
    return await _operate(service, principal, workflow_id, "retry", record)


@router.post("/{workflow_id}/restart", status_code=202)
async def restart(
    workflow_id: WorkflowIdPath, body: RestartBody, service: ServiceDep, principal: PrincipalDep
) -> Accepted:
    """Run an ended workflow again from the start, with the same input."""
    record = RestartWorkflow(
        workflow_id=workflow_id, use_latest_definition=body.useLatestDefinition
    )
    return await _operate(service, principal, workflow_id, "restart", record)


@router.post("/{workflow_id}/rerun", status_code=202)
async def rerun(
    workflow_id: WorkflowIdPath, body: RerunBody, service: ServiceDep, principal: PrincipalDep
) -> Accepted:
    """Run again from one task: it and everything after it start over."""
    record = RerunWorkflow(
        workflow_id=workflow_id, from_task=body.fromTask, task_input=body.taskInput
    )
    return await _operate(service, principal, workflow_id, "rerun", record)


@router.post("/{workflow_id}/skip", status_code=202)
async def skip(
    workflow_id: WorkflowIdPath, body: SkipBody, service: ServiceDep, principal: PrincipalDep
) -> Accepted:
    """Skip a running or future task; it counts as done with ``output``."""
    record = SkipTask(workflow_id=workflow_id, task_ref=body.taskRef, output=body.output)
    return await _operate(service, principal, workflow_id, "skip", record)


@router.post("/{workflow_id}/signal", status_code=202)
async def signal(
    workflow_id: WorkflowIdPath, body: SignalBody, service: ServiceDep, principal: PrincipalDep
) -> Accepted:
    """Complete or fail a waiting WAIT or HUMAN task by reference name or task id."""
    record = SignalTask(
        workflow_id=workflow_id,
        task_ref=body.taskRef,
        status=ResultStatus(body.status),
        output=body.output,
        reason=body.reason,
        requested_at=now_ms(),
    )
    return await _operate(service, principal, workflow_id, "signal", record)
