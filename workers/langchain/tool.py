"""A workflow as a LangChain tool: an agent's call starts a run and gets the run's output."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.tools import BaseTool, ToolException
from langchain_core.tools.base import ArgsSchema, ToolExceptionHandlerOutput
from pydantic import Field, SkipValidation

from orchestrator.dsl.model import WorkflowDef
from orchestrator.engine.records import WorkflowStatus
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import WorkflowTimeoutError

__all__ = ["ANY_INPUT", "WorkflowRunner", "WorkflowTool", "input_schema"]

Json = Any
ANY_INPUT: dict[str, Json] = {"type": "object", "properties": {}, "additionalProperties": True}
_NOT_IN_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")


@runtime_checkable
class WorkflowRunner(Protocol):
    """What the tool needs of :class:`orchestrator.client.Client`: start a run, wait for it."""

    def start(self, name: str, *, version: int | None = None, input: Json = None) -> str:
        """Ask for a new run of ``name``; return its workflow id."""
        ...

    def wait(self, workflow_id: str, *, timeout: float = 60.0) -> WorkflowState:
        """Follow the run until it ends; return its final state."""
        ...


class WorkflowTool(BaseTool):
    """Runs the workflow ``workflow_name`` with the tool call's arguments as its input.

    A call starts a run through ``client``, waits up to ``timeout`` seconds for it to end and
    returns its output. The ``ToolMessage`` answering a tool call holds the output as JSON text
    and, as its ``artifact`` (seen by the application, not the model), ``{"workflowId",
    "status"}`` of the run. Arguments that are ``None`` are left out of the input.

    A run that ends other than COMPLETED, or does not end in time, raises a
    :class:`ToolException` naming the run; with ``handle_tool_error`` (on by default) the agent
    gets that message as an error ``ToolMessage`` instead. A run that times out here goes on
    running.

    Build one with :meth:`from_definition` to take the name, description and argument schema
    from the workflow's definition.
    """

    client: WorkflowRunner
    workflow_name: str
    workflow_version: int | None = None
    timeout: float = Field(default=60.0, gt=0)
    args_schema: Annotated[ArgsSchema | None, SkipValidation()] = Field(
        default_factory=lambda: dict(ANY_INPUT)
    )
    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], ToolExceptionHandlerOutput] | None = (
        True
    )

    @classmethod
    def from_definition(
        cls,
        client: WorkflowRunner,
        definition: WorkflowDef,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float = 60.0,
    ) -> WorkflowTool:
        """A tool running ``definition`` (this version), its arguments its ``inputParameters``.

        The tool's name defaults to the workflow's with characters OpenAI refuses in a function
        name replaced by ``_``; its description to the definition's, or one naming the workflow.
        """
        return cls(
            client=client,
            workflow_name=definition.name,
            workflow_version=definition.version,
            name=name or _NOT_IN_TOOL_NAME.sub("_", definition.name),
            description=description
            or definition.description
            or f"Runs the workflow {definition.name} and returns its output.",
            args_schema=input_schema(definition),
            timeout=timeout,
        )

    def _run(
        self,
        *args: Any,
        run_manager: CallbackManagerForToolRun | None = None,
        **arguments: Any,
    ) -> tuple[Json, dict[str, str]]:
        if args:
            raise ToolException(f"{self.name} takes named arguments, not {args!r}")
        workflow_input = {key: value for key, value in arguments.items() if value is not None}
        workflow_id = self.client.start(
            self.workflow_name, version=self.workflow_version, input=workflow_input
        )
        try:
            state = self.client.wait(workflow_id, timeout=self.timeout)
        except WorkflowTimeoutError as exc:
            raise ToolException(
                f"workflow {self.workflow_name} ({workflow_id}) did not finish within "
                f"{self.timeout:g} s; it goes on running"
            ) from exc
        if state.status != WorkflowStatus.COMPLETED:
            raise ToolException(
                f"workflow {self.workflow_name} ({workflow_id}) ended {state.status!s}: "
                f"{state.reason or 'no reason given'}"
            )
        return state.output, {"workflowId": workflow_id, "status": str(state.status)}


def input_schema(definition: WorkflowDef) -> dict[str, Json]:
    """The JSON schema of a tool call's arguments: one property per ``inputParameters`` name.

    Conductor's ``inputParameters`` names inputs without types or a required list, so each
    property takes any JSON value and none is required; a definition naming none takes any
    object.
    """
    if not definition.inputParameters:
        return dict(ANY_INPUT)
    properties = {
        name: {"description": f"the workflow input {name}"} for name in definition.inputParameters
    }
    return {"type": "object", "properties": properties}
