"""The state of one workflow, as the fold of its events.

``WorkflowState`` is replaced, never mutated in place, by ``evolve``; its ``tasks`` map holds
frozen ``TaskState`` values. Both convert to and from plain JSON for the state store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.dsl.model import WorkflowDef
from orchestrator.engine.records import TaskStatus, WorkflowStatus

Json = Any
STATE_VERSION = 2


@dataclass(frozen=True, slots=True)
class TaskState:
    """The current attempt of one task."""

    task_id: str
    ref_name: str
    task_type: str
    attempt: int
    status: TaskStatus
    input: Json = None
    output: Json = None
    reason: str | None = None
    worker_id: str = ""
    scheduled_at: int = 0
    updated_at: int = 0
    worker: bool = True
    optional: bool = False
    async_complete: bool = False
    dispatch_at: int | None = None
    wait_until: int | None = None
    awaiting_signal: bool = False
    policy: Json = None
    dispatched_at: int | None = None
    heartbeat_at: int | None = None
    alerted: bool = False

    @property
    def succeeded(self) -> bool:
        """COMPLETED or SKIPPED, or FAILED/TIMED_OUT where the task is optional."""
        if self.status in (TaskStatus.COMPLETED, TaskStatus.SKIPPED):
            return True
        return self.optional and self.status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)

    @property
    def failed(self) -> bool:
        """FAILED or TIMED_OUT for good."""
        return self.status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT)

    def to_json(self) -> dict[str, Json]:
        """Plain JSON for the state store."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Json]) -> TaskState:
        """Inverse of ``to_json``."""
        return cls(**{**data, "status": TaskStatus(data["status"])})


@dataclass(slots=True)
class WorkflowState:
    """Everything known about one workflow run, derived only from its events."""

    workflow_id: str
    name: str
    version: int | None
    status: WorkflowStatus
    seq: int = 0
    input: Json = None
    output: Json = None
    correlation_id: str | None = None
    reason: str | None = None
    definition: Json = None
    created_at: int = 0
    updated_at: int = 0
    variables: dict[str, Json] = field(default_factory=dict)
    parent: Json = None
    failed_task_id: str | None = None
    retired: dict[str, int] = field(default_factory=dict)
    skips: dict[str, Json] = field(default_factory=dict)
    compensation: list[Json] = field(default_factory=list)
    timeout_alerted: bool = False
    continued_from: str | None = None
    continued_as: str | None = None
    queued_signals: list[Json] = field(default_factory=list)
    tasks: dict[str, TaskState] = field(default_factory=dict)
    _parsed: WorkflowDef | None = field(default=None, compare=False, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def workflow_def(self) -> WorkflowDef:
        """The definition snapshot this run follows, parsed once."""
        if self._parsed is None:
            self._parsed = WorkflowDef.model_validate(self.definition)
        return self._parsed

    def copy(self) -> WorkflowState:
        """A copy that can be changed without touching this state (tasks are immutable)."""
        clone = dataclasses.replace(self)
        clone.tasks = dict(self.tasks)
        clone.retired = dict(self.retired)
        clone.skips = dict(self.skips)
        clone._parsed = self._parsed
        clone._memo = self._memo
        return clone

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value derived from immutable parts of this run, computed once per process.

        Only for derivations of data that never changes once written (the definition, a
        completed task's output), so sharing the memo between copies is safe.
        """
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def to_json(self) -> dict[str, Json]:
        """Plain JSON for the state store."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name[0] != "_"}
        data["tasks"] = [task.to_json() for task in self.tasks.values()]
        data["v"] = STATE_VERSION
        return data

    @classmethod
    def from_json(cls, data: dict[str, Json]) -> WorkflowState:
        """Inverse of ``to_json``."""
        fields = {k: v for k, v in data.items() if k not in ("v", "tasks")}
        tasks = [TaskState.from_json(task) for task in data["tasks"]]
        state = cls(**{**fields, "status": WorkflowStatus(data["status"])})
        state.tasks = {task.task_id: task for task in tasks}
        return state
