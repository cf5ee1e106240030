"""Conductor's metadata API: workflow and task definitions under ``/api/metadata``.

Registration goes through the same :class:`~orchestrator.api.service.Service` calls as
``/v1``, so a definition is validated (and refused with the field path) exactly the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.concurrency import run_in_threadpool

from orchestrator.api.auth import Principal
from orchestrator.api.deps import PrincipalDep, ServiceDep
from orchestrator.api.service import Service
from orchestrator.dsl.model import TaskDef
from orchestrator.errors import RequestConflictError, WorkflowNotFoundError

Json = Any
router = APIRouter(prefix="/api/metadata", tags=["conductor metadata"])
NamePath = Annotated[str, Path(min_length=1, max_length=128)]
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1)]
Document = Annotated[dict[str, Json], Body(description="one Conductor WorkflowDef or TaskDef")]
Documents = Annotated[list[dict[str, Json]], Body(description="a list of definitions")]


@router.post("/workflow")
async def create_workflow(
    document: Document,
    service: ServiceDep,
    principal: PrincipalDep,
    overwrite: Annotated[bool, Query(description="replace name and version if it exists")] = False,
) -> None:
    """Register one definition (admin); 409 if its name and version exist, unless ``overwrite``."""
    name, version = document.get("name"), document.get("version", 1)
    if not overwrite and isinstance(name, str) and isinstance(version, int):
        existing = service.projector.definitions.get(name, version)
        if existing is not None and principal.sees(existing.namespace):
            raise RequestConflictError(f"workflow {name!r} version {version} already exists")
    await run_in_threadpool(service.register, principal, [document])


@router.put("/workflow")
async def update_workflows(
    documents: Documents, service: ServiceDep, principal: PrincipalDep
) -> None:
    """Register or replace a list of definitions (admin), all or none."""
    await run_in_threadpool(service.register, principal, documents)


@router.get("/workflow")
def list_workflows(service: ServiceDep, principal: PrincipalDep) -> list[dict[str, Json]]:
    """Every version of every definition the caller may see."""
    return [d.to_json() for d in service.visible_definitions(principal, None)]


@router.get("/workflow/{name}")
def get_workflow(
    name: NamePath,
    service: ServiceDep,
    principal: PrincipalDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Json]:
    """One definition: ``version``, or the latest."""
    found = [
        d
        for d in service.visible_definitions(principal, name)
        if version is None or d.version == version
    ]
    if not found:
        which = f"{name!r} version {version}" if version else repr(name)
        raise WorkflowNotFoundError(f"no workflow definition {which}")
    return max(found, key=lambda d: d.version).to_json()


@router.delete("/workflow/{name}/{version}")
async def delete_workflow(
    name: NamePath, version: VersionPath, service: ServiceDep, principal: PrincipalDep
) -> None:
    """Delete one version (admin); runs already started keep their snapshot."""
    await run_in_threadpool(service.delete_definition, principal, name, version)


@router.post("/taskdefs")
async def create_task_definitions(
    documents: Documents, service: ServiceDep, principal: PrincipalDep
) -> None:
    """Register or replace a list of task definitions (admin)."""
    await run_in_threadpool(service.register_task_definitions, principal, documents)


@router.put("/taskdefs")
async def update_task_definition(
    document: Document, service: ServiceDep, principal: PrincipalDep
) -> None:
    """Register or replace one task definition (admin)."""
    await run_in_threadpool(service.register_task_definitions, principal, [document])


@router.get("/taskdefs")
def list_task_definitions(service: ServiceDep, principal: PrincipalDep) -> list[dict[str, Json]]:
    """Every task definition the caller may see."""
    return [_task_def_json(t) for t in service.visible_task_definitions(principal)]


@router.get("/taskdefs/{name}")
def get_task_definition(
    name: NamePath, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Json]:
    """One task definition."""
    return _task_def_json(_visible_task_def(service, principal, name))


@router.delete("/taskdefs/{name}")
async def delete_task_definition(
    name: NamePath, service: ServiceDep, principal: PrincipalDep
) -> None:
    """Delete a task definition (admin)."""
    await run_in_threadpool(service.delete_task_definition, principal, name)


def _visible_task_def(service: Service, principal: Principal, name: str) -> TaskDef:
    for task_def in service.visible_task_definitions(principal):
        if task_def.name == name:
            return task_def
    raise WorkflowNotFoundError(f"no task definition {name!r}")


def _task_def_json(task_def: TaskDef) -> dict[str, Json]:
    document: dict[str, Json] = task_def.model_dump(mode="json", exclude_none=True)
    return document
