"""Request and response bodies of the HTTP API, with the limits every field is held to.

Unknown fields are refused (a typo is an error, not a silent default), and every string has
a length limit; whole bodies are also capped in bytes by :mod:`orchestrator.api.limits`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Json = Any
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.\-]+$")]
Reason = Annotated[str, Field(max_length=2048)]
TaskRef = Annotated[str, Field(min_length=1, max_length=256)]
WorkflowId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class Body(BaseModel):
    """A request body: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StartRequest(Body):
    """Start a run of a registered workflow."""

    name: Name
    version: int | None = Field(None, ge=1, le=2**31 - 1)
    input: dict[str, Json] = Field(default_factory=dict)
    correlationId: str | None = Field(None, max_length=256)
    workflowId: WorkflowId | None = Field(
        None, description="idempotency: a second start with the same id starts nothing"
    )


class StartResponse(BaseModel):
    """The id of the run; with ``wait``, also where it got to."""

    workflowId: str
    status: str | None = None
    output: Json = None


class ReasonBody(Body):
    """An operation that records why."""

    reason: Reason = ""


class EmptyBody(Body):
    """An operation without options."""


class RestartBody(Body):
    """Restart an ended run from the beginning."""

    useLatestDefinition: bool = False


class RerunBody(Body):
    """Run again from one task (reference name or task id)."""

    fromTask: TaskRef
    taskInput: dict[str, Json] | None = None


class SkipBody(Body):
    """Skip a task (running or not yet reached) with the output it should have had."""

    taskRef: TaskRef
    output: dict[str, Json] | None = None


class SignalBody(Body):
    """Complete or fail a waiting WAIT or HUMAN task."""

    taskRef: TaskRef
    status: Literal["COMPLETED", "FAILED"] = "COMPLETED"
    output: dict[str, Json] = Field(default_factory=dict)
    reason: Reason | None = None


class CompleteBody(Body):
    """A reviewer's answer to a HUMAN task."""

    status: Literal["COMPLETED", "FAILED"] = "COMPLETED"
    output: dict[str, Json] = Field(default_factory=dict)
    reason: Reason | None = None


class Accepted(BaseModel):
    """An operation was accepted by the log; the processor applies it (or records why not)."""

    workflowId: str
    requested: str


class RegisterResponse(BaseModel):
    """What registration published, and what it warns about."""

    registered: list[str]
    warnings: list[str] = Field(default_factory=list)


class Page(BaseModel):
    """One page of search results and the number of matches in all."""

    total: int
    results: list[dict[str, Json]]
