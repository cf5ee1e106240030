"""``decide``: what happens to a workflow when a request or result arrives.

Pure: time and ids come in with the input, definitions through a lookup; nothing here does
I/O. Each event is applied to a scratch state as soon as it is emitted, so later decisions in
the same call see earlier ones (a completed task's output feeds the next task's input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, assert_never

from orchestrator.dsl.expressions import resolve
from orchestrator.dsl.model import WorkflowDef, WorkflowTask
from orchestrator.engine.evolve import evolve
from orchestrator.engine.records import (
    AnyEvent,
    Input,
    RequestRejected,
    ResultStatus,
    StartWorkflow,
    TaskCompleted,
    TaskFailed,
    TaskInProgress,
    TaskResult,
    TaskScheduled,
    TerminateWorkflow,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRejected,
    WorkflowStarted,
    WorkflowTerminated,
)
from orchestrator.engine.state import WorkflowState

Json = Any


class Definitions(Protocol):
    """Where the engine looks up workflow definitions by name and version."""

    def get(self, name: str, version: int | None = None) -> WorkflowDef | None:
        """The definition with this name and version, or the latest version when None."""
        ...


@dataclass
class Decision:
    """The events an input produced, or why it produced none."""

    events: list[AnyEvent] = field(default_factory=list)
    ignored: str | None = None


class _Emitter:
    """Numbers events, applies each to a scratch state, and collects them."""

    def __init__(self, state: WorkflowState | None, workflow_id: str, now: int) -> None:
        self.state = state
        self.workflow_id = workflow_id
        self.now = now
        self.events: list[AnyEvent] = []

    def emit(self, event_type: type[AnyEvent], **fields: Any) -> WorkflowState:
        seq = (self.state.seq if self.state else 0) + 1
        event = event_type(workflow_id=self.workflow_id, seq=seq, at=self.now, **fields)
        self.state = evolve(self.state, event)
        self.events.append(event)
        return self.state


def decide(
    state: WorkflowState | None, item: Input, definitions: Definitions, now: int
) -> Decision:
    """The events that ``item`` causes for the workflow whose current state is ``state``."""
    emitter = _Emitter(state, item.workflow_id, now)
    match item:
        case StartWorkflow():
            ignored = _start(emitter, item, definitions)
        case TaskResult():
            ignored = _result(emitter, item)
        case TerminateWorkflow():
            ignored = _terminate(emitter, item)
        case _:
            assert_never(item)
    return Decision(emitter.events, ignored)


def _start(emitter: _Emitter, request: StartWorkflow, definitions: Definitions) -> str | None:
    if emitter.state is not None:
        return f"workflow {request.workflow_id} already exists ({emitter.state.status})"
    definition = definitions.get(request.name, request.version)
    if definition is None:
        wanted = "any version" if request.version is None else f"version {request.version}"
        emitter.emit(
            WorkflowRejected,
            name=request.name,
            version=request.version,
            input=request.input,
            correlation_id=request.correlation_id,
            reason=f"unknown workflow definition {request.name!r} ({wanted} not registered)",
        )
        return None
    state = emitter.emit(
        WorkflowStarted,
        name=definition.name,
        version=definition.version,
        input=request.input if request.input is not None else {},
        correlation_id=request.correlation_id,
        definition=definition.to_json(),
    )
    _advance(emitter, state)
    return None


def _unusable(state: WorkflowState | None, result: TaskResult) -> str | None:
    """Why ``result`` cannot apply to ``state`` (unknown, stale, duplicate), or None."""
    if state is None:
        return f"result for unknown workflow {result.workflow_id}"
    if state.status.terminal:
        return f"result for a workflow that is already {state.status}"
    task = state.tasks.get(result.task_id)
    if task is None:
        return f"result for unknown task {result.task_id!r}"
    if task.attempt != result.attempt:
        return f"stale result for attempt {result.attempt} (current attempt is {task.attempt})"
    if task.status.terminal:
        return f"duplicate result: attempt {task.attempt} is already {task.status}"
    return None


def _result(emitter: _Emitter, result: TaskResult) -> str | None:
    state = emitter.state
    reason = _unusable(state, result)
    if reason is not None:
        return reason
    assert state is not None
    task = state.tasks[result.task_id]
    common = {"task_id": task.task_id, "attempt": task.attempt, "worker_id": result.worker_id}
    match result.status:
        case ResultStatus.IN_PROGRESS:
            emitter.emit(TaskInProgress, output=result.output, **common)
        case ResultStatus.COMPLETED:
            state = emitter.emit(TaskCompleted, output=result.output, **common)
            _advance(emitter, state)
        case ResultStatus.FAILED | ResultStatus.FAILED_WITH_TERMINAL_ERROR:
            reason = result.reason or "the worker reported a failure without a reason"
            state = emitter.emit(
                TaskFailed,
                reason=reason,
                error_type=result.error_type,
                terminal=result.status is ResultStatus.FAILED_WITH_TERMINAL_ERROR,
                **common,
            )
            if _is_optional(state, task.ref_name):
                _advance(emitter, state)
                return None
            emitter.emit(
                WorkflowFailed,
                reason=f"task {task.ref_name!r} failed: {reason}",
                task_id=task.task_id,
            )
        case _:
            assert_never(result.status)
    return None


def _terminate(emitter: _Emitter, request: TerminateWorkflow) -> str | None:
    state = emitter.state
    if state is None:
        return f"terminate for unknown workflow {request.workflow_id}"
    if state.status.terminal:
        emitter.emit(
            RequestRejected,
            request_type="TerminateWorkflow",
            reason=f"workflow is already {state.status}",
        )
        return None
    emitter.emit(WorkflowTerminated, reason=request.reason or "terminated on request")
    return None


def context(state: WorkflowState) -> dict[str, Json]:
    """The document expressions are resolved against: ``workflow`` and every task by ref."""
    document: dict[str, Json] = {
        task.ref_name: {
            "input": task.input,
            "output": task.output,
            "status": str(task.status),
            "taskId": task.task_id,
            "retryCount": task.attempt - 1,
        }
        for task in state.tasks.values()
    }
    document["workflow"] = {
        "input": state.input,
        "output": state.output,
        "workflowId": state.workflow_id,
        "correlationId": state.correlation_id,
        "workflowType": state.name,
        "version": state.version,
        "status": str(state.status),
    }
    return document


def _is_optional(state: WorkflowState, ref_name: str) -> bool:
    """Whether the definition marks the task optional (its failure does not fail the run)."""
    return any(
        task.optional for task in state.workflow_def.tasks if task.taskReferenceName == ref_name
    )


def _next_task(state: WorkflowState) -> WorkflowTask | None:
    """The first task of the definition that has not been scheduled yet."""
    scheduled = {task.ref_name for task in state.tasks.values()}
    for task in state.workflow_def.tasks:
        if task.taskReferenceName not in scheduled:
            return task
    return None


def _advance(emitter: _Emitter, state: WorkflowState) -> None:
    """Schedule the next task, or complete the workflow when none is left."""
    task = _next_task(state)
    if task is None:
        emitter.emit(WorkflowCompleted, output=_workflow_output(state))
        return
    emitter.emit(
        TaskScheduled,
        task_id=task.taskReferenceName,
        ref_name=task.taskReferenceName,
        task_type=task.name,
        attempt=1,
        input=resolve(task.inputParameters, context(state)),
    )


def _workflow_output(state: WorkflowState) -> Json:
    definition = state.workflow_def
    if definition.outputParameters:
        return resolve(definition.outputParameters, context(state))
    last = state.tasks.get(definition.tasks[-1].taskReferenceName)
    return last.output if last is not None else {}
