"""Workflow definitions in Netflix Conductor's JSON DSL, parsed and validated with pydantic.

Field names are Conductor's (camelCase) so that existing definitions load unchanged; fields
this engine does not know yet are kept (``extra="allow"``) so a definition round-trips.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.dsl.names import check_task_type

Json = Any

SUPPORTED_TASK_TYPES = frozenset({"SIMPLE"})


class WorkflowTask(BaseModel):
    """One step of a workflow: which task runs, under which reference name, with which input."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, description="task type; workers subscribe to it")
    taskReferenceName: str = Field(min_length=1, description="unique name of this step")
    type: str = Field("SIMPLE", description="task kind: SIMPLE runs on a worker")
    description: str | None = None
    inputParameters: dict[str, Json] = Field(default_factory=dict)
    optional: bool = False

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in SUPPORTED_TASK_TYPES:
            supported = ", ".join(sorted(SUPPORTED_TASK_TYPES))
            raise ValueError(f"task type {value!r} is not supported (supported: {supported})")
        return value

    @field_validator("name")
    @classmethod
    def _legal_name(cls, value: str) -> str:
        return check_task_type(value)


class WorkflowDef(BaseModel):
    """A named, versioned workflow: an ordered list of tasks, its inputs and its outputs."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    version: int = Field(1, ge=1)
    description: str | None = None
    tasks: list[WorkflowTask] = Field(min_length=1)
    inputParameters: list[str] = Field(default_factory=list)
    outputParameters: dict[str, Json] = Field(default_factory=dict)
    schemaVersion: int = 2
    ownerEmail: str | None = None

    @property
    def key(self) -> str:
        """The ``name:version`` key this definition has on the definitions topic."""
        return f"{self.name}:{self.version}"

    def to_json(self) -> dict[str, Json]:
        """The definition as JSON, with Conductor's field names, for events and the log."""
        return self.model_dump(mode="json", exclude_none=True)
