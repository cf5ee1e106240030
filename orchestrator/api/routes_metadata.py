"""Metadata routes: register, list, get and delete workflow and task definitions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.concurrency import run_in_threadpool

from orchestrator.api.deps import PrincipalDep, ServiceDep
from orchestrator.api.models import Name, RegisterResponse
from orchestrator.errors import WorkflowNotFoundError

Json = Any
router = APIRouter(prefix="/v1/metadata", tags=["metadata"])
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
NamePath = Annotated[str, Path(min_length=1, max_length=128)]
Documents = Annotated[
    dict[str, Json] | list[dict[str, Json]],
    Body(description="one Conductor WorkflowDef (or TaskDef) object, or a list of them"),
]


def _listed(documents: dict[str, Json] | list[dict[str, Json]]) -> list[dict[str, Json]]:
    return documents if isinstance(documents, list) else [documents]


@router.post("/workflows", status_code=201)
async def register_workflows(
    documents: Documents, service: ServiceDep, principal: PrincipalDep
) -> RegisterResponse:
    """Validate and register workflow definitions (admin); errors name the field path."""
    listed = _listed(documents)
    warnings = await run_in_threadpool(service.register, principal, listed)
    keys = [f"{doc.get('name')}:{doc.get('version', 1)}" for doc in listed]
    return RegisterResponse(registered=keys, warnings=warnings)


@router.get("/workflows")
def list_workflows(
    service: ServiceDep, principal: PrincipalDep, name: Name | None = None
) -> list[dict[str, Json]]:
    """Every version of every workflow definition the caller may see."""
    return [d.to_json() for d in service.visible_definitions(principal, name)]


@router.get("/workflows/{name}")
def get_workflow_versions(
    name: NamePath, service: ServiceDep, principal: PrincipalDep
) -> list[dict[str, Json]]:
    """All versions of one workflow definition, oldest first."""
    found = [d.to_json() for d in service.visible_definitions(principal, name)]
    if not found:
        raise WorkflowNotFoundError(f"no workflow definition {name!r}")
    return found


@router.get("/workflows/{name}/{version}")
def get_workflow_definition(
    name: NamePath, version: Version, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Json]:
    """One version of a workflow definition."""
    for definition in service.visible_definitions(principal, name):
        if definition.version == version:
            return definition.to_json()
    raise WorkflowNotFoundError(f"no workflow definition {name!r} version {version}")


@router.delete("/workflows/{name}/{version}", status_code=204)
async def delete_workflow_definition(
    name: NamePath, version: Version, service: ServiceDep, principal: PrincipalDep
) -> None:
    """Delete one version (admin); runs already started keep their snapshot."""
    await run_in_threadpool(service.delete_definition, principal, name, version)


@router.post("/taskdefs", status_code=201)
async def register_task_definitions(
    documents: Documents, service: ServiceDep, principal: PrincipalDep
) -> RegisterResponse:
    """Register task definitions (retries, timeouts) (admin)."""
    listed = _listed(documents)
    await run_in_threadpool(service.register_task_definitions, principal, listed)
    return RegisterResponse(registered=[str(doc.get("name")) for doc in listed])


@router.get("/taskdefs")
def list_task_definitions(service: ServiceDep, principal: PrincipalDep) -> list[dict[str, Json]]:
    """Every task definition the caller may see."""
    return [
        t.model_dump(mode="json", exclude_none=True)
        for t in service.visible_task_definitions(principal)
    ]


@router.get("/taskdefs/{name}")
def get_task_definition(
    name: NamePath, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Json]:
    """One task definition."""
    for task_def in service.visible_task_definitions(principal):
        if task_def.name == name:
            return task_def.model_dump(mode="json", exclude_none=True)
    raise WorkflowNotFoundError(f"no task definition {name!r}")


@router.delete("/taskdefs/{name}", status_code=204)
async def delete_task_definition(
    name: NamePath, service: ServiceDep, principal: PrincipalDep
) -> None:
    """Delete a task definition (admin)."""
    await run_in_threadpool(service.delete_task_definition, principal, name)
