"""What one decision works with: the environment it may consult and the events it emits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.dsl.model import TaskDef, WorkflowDef
from orchestrator.engine.evolve import evolve
from orchestrator.engine.records import AnyEvent
from orchestrator.engine.state import WorkflowState

Json = Any

#: A decision that emits more events than this is a runaway loop; the workflow fails.
MAX_EVENTS_PER_DECISION = 50_000


class Definitions(Protocol):
    """Where the engine looks up workflow definitions by name and version."""

    def get(self, name: str, version: int | None = None) -> WorkflowDef | None:
        """The definition with this name and version, or the latest version when None."""
        ...

    def task_def(self, name: str) -> TaskDef | None:
        """The registered TaskDef of a task type, or None."""
        ...


class Scripts(Protocol):
    """Evaluates the JavaScript and jq a definition carries (raises ScriptError)."""

    def javascript(self, expression: str, bindings: Mapping[str, Any]) -> Any:
        """The value of ``expression`` with ``$`` bound to ``bindings``."""
        ...

    def jq(self, query: str, data: Any) -> list[Any]:
        """Every output of the jq program ``query`` over ``data``."""
        ...


class NoScripts:
    """The evaluator used when none is configured: every script fails clearly."""

    def javascript(self, expression: str, bindings: Mapping[str, Any]) -> Any:
        """Refuse: no JavaScript engine is configured."""
        raise RuntimeError("no JavaScript evaluator is configured")

    def jq(self, query: str, data: Any) -> list[Any]:
        """Refuse: no jq evaluator is configured."""
        raise RuntimeError("no jq evaluator is configured")


@dataclass(frozen=True)
class Environment:
    """What a decision may consult besides the state: definitions, the time, script engines."""

    definitions: Definitions
    now: int
    scripts: Scripts = field(default_factory=NoScripts)


class RunawayError(Exception):
    """A decision emitted more events than MAX_EVENTS_PER_DECISION (an endless loop)."""


class Emitter:
    """Numbers events, applies each to a scratch state, and collects them."""

    def __init__(self, state: WorkflowState | None, workflow_id: str, env: Environment) -> None:
        self.state = state
        self.workflow_id = workflow_id
        self.env = env
        self.events: list[AnyEvent] = []
        self.failure: tuple[str | None, str] | None = None

    @property
    def now(self) -> int:
        """The decision's clock reading, epoch milliseconds."""
        return self.env.now

    @property
    def current(self) -> WorkflowState:
        """The scratch state, which exists once the workflow began."""
        assert self.state is not None, "the workflow has not begun"
        return self.state

    def emit(self, event_type: type[AnyEvent], **fields: Any) -> WorkflowState:
        """Create the next event, apply it to the scratch state, and return that state."""
        if len(self.events) >= MAX_EVENTS_PER_DECISION:
            raise RunawayError(f"one decision emitted over {MAX_EVENTS_PER_DECISION} events")
        seq = (self.state.seq if self.state else 0) + 1
        event = event_type(workflow_id=self.workflow_id, seq=seq, at=self.env.now, **fields)
        self.state = evolve(self.state, event)
        self.events.append(event)
        return self.state

    def fail(self, task_id: str | None, reason: str) -> None:
        """Remember the first failure found while walking, for the WorkflowFailed event."""
        if self.failure is None:
            self.failure = (task_id, reason)


def context(state: WorkflowState) -> dict[str, Json]:
    """The document expressions resolve against: ``workflow`` and each task by reference name.

    Tasks are visited in scheduling order, so a reference name inside a loop resolves to its
    latest iteration.
    """
    document: dict[str, Json] = {
        task.ref_name: {
            "input": task.input,
            "output": task.output,
            "status": str(task.status),
            "taskId": task.task_id,
            "retryCount": task.attempt - 1,
            "reasonForIncompletion": task.reason,
        }
        for task in state.tasks.values()
    }
    document["workflow"] = {
        "input": state.input,
        "output": state.output,
        "variables": state.variables,
        "workflowId": state.workflow_id,
        "correlationId": state.correlation_id,
        "workflowType": state.name,
        "version": state.version,
        "status": str(state.status),
        "parentWorkflowId": (state.parent or {}).get("workflowId"),
    }
    return document
