"""The human-task inbox: waiting HUMAN tasks, and completing them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from orchestrator.api.auth import Role
from orchestrator.api.deps import PrincipalDep, ServiceDep
from orchestrator.api.models import Accepted, CompleteBody
from orchestrator.api.service import now_ms
from orchestrator.engine.records import ResultStatus, SignalTask
from orchestrator.errors import WorkflowNotFoundError

Json = Any
router = APIRouter(prefix="/v1/human-tasks", tags=["human tasks"])
Segment = Annotated[str, Path(min_length=1, max_length=256)]


@router.get("")
def list_human_tasks(
    service: ServiceDep,
    principal: PrincipalDep,
    assignee: Annotated[str | None, Query(max_length=256)] = None,
    group: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, list[dict[str, Json]]]:
    """HUMAN tasks waiting for someone, oldest first; filter by assignee and group."""
    rows = service.human_tasks(principal, assignee, group)
    rows.sort(key=lambda row: row["scheduledTime"])
    return {"results": rows}


@router.post("/{workflow_id}/{task_ref}/complete", status_code=202)
async def complete_human_task(
    workflow_id: Segment,
    task_ref: Segment,
    body: CompleteBody,
    service: ServiceDep,
    principal: PrincipalDep,
) -> Accepted:
    """Answer a waiting HUMAN task (by reference name or task id) with an output."""
    waiting = [
        row
        for row in service.human_tasks(principal, None, None)
        if row["workflowId"] == workflow_id and task_ref in (row["refName"], row["taskId"])
    ]
    if not waiting:
        raise WorkflowNotFoundError(f"no waiting human task {task_ref!r} in {workflow_id!r}")
    principal.require(Role.OPERATOR, waiting[0]["namespace"])
    record = SignalTask(
        workflow_id=workflow_id,
        task_ref=waiting[0]["taskId"],
        status=ResultStatus(body.status),
        output=body.output,
        reason=body.reason,
        requested_at=now_ms(),
    )
    await service.send_request(record)
    return Accepted(workflowId=workflow_id, requested="complete")
