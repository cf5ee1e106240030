"""Workflow definitions in Netflix Conductor's JSON DSL, parsed and validated with pydantic.

Field names are Conductor's (camelCase) so that existing definitions load unchanged; fields
this engine does not use are kept (``extra="allow"``) so a definition round-trips.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.dsl.names import check_task_type

Json = Any

#: Task types that run on workers (a topic ``tasks.<name>``, or ``tasks.<TYPE>`` for built-ins).
WORKER_TYPES = frozenset(
    {
        "SIMPLE",
        "HTTP",
        "KAFKA_PUBLISH",
        "EVENT",
        "LLM_CHAT_COMPLETE",
        "LLM_TEXT_COMPLETE",
        "LLM_EMBED",
        "LLM_INDEX",
        "LLM_SEARCH",
    }
)
#: Task types the engine carries out itself while deciding.
SYSTEM_TYPES = frozenset(
    {
        "SWITCH",
        "DECISION",
        "FORK_JOIN",
        "FORK",
        "JOIN",
        "FORK_JOIN_DYNAMIC",
        "DO_WHILE",
        "SUB_WORKFLOW",
        "START_WORKFLOW",
        "DYNAMIC",
        "INLINE",
        "LAMBDA",
        "JSON_JQ_TRANSFORM",
        "SET_VARIABLE",
        "TERMINATE",
        "NOOP",
        "WAIT",
        "HUMAN",
        "CONTINUE_AS_NEW",
    }
)
SUPPORTED_TASK_TYPES = WORKER_TYPES | SYSTEM_TYPES


DEFAULT_NAMESPACE = "default"
NAMESPACE_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


class TaskDef(BaseModel):
    """A task type's fault-tolerance policy (Conductor's TaskDef), registered or inline.

    Without a TaskDef a task gets no retries and no timeouts. ``maxRetryDelaySeconds`` caps a
    backoff and ``retryJitterPercent`` spreads retries (deterministically per attempt); both
    are this engine's additions.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1)
    description: str | None = None
    retryCount: int = Field(3, ge=0)
    retryLogic: Literal["FIXED", "LINEAR_BACKOFF", "EXPONENTIAL_BACKOFF"] = "FIXED"
    retryDelaySeconds: int = Field(60, ge=0)
    backoffScaleFactor: int = Field(1, ge=1)
    maxRetryDelaySeconds: int = Field(0, ge=0, description="cap of a retry delay; 0: none")
    retryJitterPercent: int = Field(0, ge=0, le=100)
    responseTimeoutSeconds: int = Field(0, ge=0, description="0: no response timeout")
    timeoutSeconds: int = Field(0, ge=0, description="0: no total timeout")
    timeoutPolicy: Literal["RETRY", "TIME_OUT_WF", "ALERT_ONLY"] = "TIME_OUT_WF"
    pollTimeoutSeconds: int = Field(0, ge=0)
    ownerEmail: str | None = None
    namespace: str = Field(
        DEFAULT_NAMESPACE, pattern=NAMESPACE_PATTERN, description="who may see and use it"
    )

    def policy(self) -> dict[str, Json]:
        """The fields the engine acts on, as recorded in each TaskScheduled event."""
        return self.model_dump(include=POLICY_FIELDS)


POLICY_FIELDS = {
    "retryCount",
    "retryLogic",
    "retryDelaySeconds",
    "backoffScaleFactor",
    "maxRetryDelaySeconds",
    "retryJitterPercent",
    "responseTimeoutSeconds",
    "timeoutSeconds",
    "timeoutPolicy",
    "pollTimeoutSeconds",
}


class SubWorkflowParams(BaseModel):
    """Which workflow a SUB_WORKFLOW task runs: by name and version, or an inline definition."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str | None = None
    version: int | None = None
    workflowDefinition: WorkflowDef | None = None


class WorkflowTask(BaseModel):
    """One step of a workflow: which task runs, under which reference name, with which input."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, description="task name; for SIMPLE tasks, the worker type")
    taskReferenceName: str = Field(min_length=1, description="unique name of this step")
    type: str = Field("SIMPLE", description="task kind; SIMPLE runs on a worker")
    description: str | None = None
    inputParameters: dict[str, Json] = Field(default_factory=dict)
    optional: bool = False
    startDelay: int = Field(0, ge=0, description="seconds to wait before the task is dispatched")
    asyncComplete: bool = False
    # SWITCH / DECISION
    evaluatorType: str | None = None
    expression: str | None = None
    caseValueParam: str | None = None
    caseExpression: str | None = None
    decisionCases: dict[str, list[WorkflowTask]] = Field(default_factory=dict)
    defaultCase: list[WorkflowTask] = Field(default_factory=list)
    # FORK_JOIN / JOIN / FORK_JOIN_DYNAMIC
    forkTasks: list[list[WorkflowTask]] = Field(default_factory=list)
    joinOn: list[str] = Field(default_factory=list)
    dynamicForkTasksParam: str | None = None
    dynamicForkTasksInputParamName: str | None = None
    # DO_WHILE
    loopCondition: str | None = None
    loopOver: list[WorkflowTask] = Field(default_factory=list)
    # SUB_WORKFLOW, DYNAMIC, EVENT
    subWorkflowParam: SubWorkflowParams | None = None
    dynamicTaskNameParam: str | None = None
    sink: str | None = None
    # Fault tolerance: an inline TaskDef, and a saga compensation run if the workflow fails
    taskDefinition: TaskDef | None = None
    compensation: WorkflowTask | None = None

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

    def children(self) -> list[list[WorkflowTask]]:
        """The nested task lists of this task (branches, fork arms, loop body)."""
        return [*self.decisionCases.values(), self.defaultCase, *self.forkTasks, self.loopOver]


class WorkflowDef(BaseModel):
    """A named, versioned workflow: a list of tasks, its inputs and its outputs."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    version: int = Field(1, ge=1)
    description: str | None = None
    tasks: list[WorkflowTask] = Field(min_length=1)
    inputParameters: list[str] = Field(default_factory=list)
    outputParameters: dict[str, Json] = Field(default_factory=dict)
    variables: dict[str, Json] = Field(default_factory=dict)
    schemaVersion: int = 2
    ownerEmail: str | None = None
    timeoutSeconds: int = Field(0, ge=0)
    timeoutPolicy: Literal["TIME_OUT_WF", "ALERT_ONLY"] = "TIME_OUT_WF"
    failureWorkflow: str | None = None
    namespace: str = Field(
        DEFAULT_NAMESPACE,
        pattern=NAMESPACE_PATTERN,
        description="the tenant that owns the definition and its runs (this engine's addition)",
    )

    @property
    def key(self) -> str:
        """The ``name:version`` key this definition has on the definitions topic."""
        return f"{self.name}:{self.version}"

    def to_json(self) -> dict[str, Json]:
        """The definition as JSON, with Conductor's field names, for events and the log."""
        return self.model_dump(mode="json", exclude_defaults=True, exclude_none=True) | {
            "name": self.name,
            "version": self.version,
        }


def walk_tasks(tasks: list[WorkflowTask]) -> list[WorkflowTask]:
    """Every task in ``tasks`` and in their nested lists, depth first, in document order."""
    found = []
    for task in tasks:
        found.append(task)
        for branch in task.children():
            found.extend(walk_tasks(branch))
    return found


SubWorkflowParams.model_rebuild()
WorkflowTask.model_rebuild()
