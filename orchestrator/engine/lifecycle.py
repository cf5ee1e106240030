"""Operator requests on a workflow: pause, resume, retry, restart, rerun, skip."""

from __future__ import annotations

from typing import Any

from orchestrator.dsl.model import walk_tasks
from orchestrator.engine.emitter import Emitter
from orchestrator.engine.records import (
    PauseWorkflow,
    RequestRejected,
    RerunWorkflow,
    RestartWorkflow,
    ResumeWorkflow,
    RetryWorkflow,
    SkipTask,
    TaskSkipped,
    WorkflowPaused,
    WorkflowReopened,
    WorkflowResumed,
    WorkflowStatus,
)
from orchestrator.engine.state import TaskState, WorkflowState
from orchestrator.engine.walk import advance

Json = Any
Lifecycle = (
    PauseWorkflow | ResumeWorkflow | RetryWorkflow | RestartWorkflow | RerunWorkflow | SkipTask
)


def handle(em: Emitter, request: Lifecycle) -> str | None:
    """Apply an operator request, or record why it cannot apply; None unless ignored."""
    state = em.state
    if state is None:
        return f"{type(request).__name__} for unknown workflow {request.workflow_id}"
    problem = _refusal(state, request)
    if problem is not None:
        em.emit(RequestRejected, request_type=type(request).__name__, reason=problem)
        return None
    match request:
        case PauseWorkflow():
            em.emit(WorkflowPaused, reason=request.reason)
        case ResumeWorkflow():
            em.emit(WorkflowResumed)
        case RetryWorkflow():
            em.emit(WorkflowReopened, mode="retry", removed=_unfinished(state))
        case RestartWorkflow():
            definition = state.definition
            if request.use_latest_definition:
                latest = em.env.definitions.get(state.name)
                definition = latest.to_json() if latest is not None else definition
            em.emit(
                WorkflowReopened,
                mode="restart",
                removed=list(state.tasks),
                definition=definition,
                input=state.input,
            )
        case RerunWorkflow():
            em.emit(WorkflowReopened, mode="rerun", removed=_from_task(state, request.from_task))
        case SkipTask():
            _skip(em, state, request)
    advance(em)
    return None


def _refusal(state: WorkflowState, request: Lifecycle) -> str | None:  # noqa: PLR0911 - one case per request
    """Why ``request`` does not apply to the workflow as it is, or None."""
    status = state.status
    match request:
        case PauseWorkflow() if status is not WorkflowStatus.RUNNING:
            return f"only a RUNNING workflow can pause; it is {status}"
        case ResumeWorkflow() if status is not WorkflowStatus.PAUSED:
            return f"only a PAUSED workflow can resume; it is {status}"
        case RetryWorkflow() if status in (WorkflowStatus.COMPLETED,) or not status.terminal:
            return f"only a FAILED, TIMED_OUT or TERMINATED workflow can be retried; it is {status}"
        case RetryWorkflow() if not _unfinished(state):
            return "no failed task to retry"
        case RestartWorkflow() if not status.terminal or state.definition is None:
            return f"only an ended workflow can restart; it is {status}"
        case RerunWorkflow() if _latest(state, request.from_task) is None:
            return f"no task {request.from_task!r} ran in this workflow"
        case SkipTask():
            return _skip_refusal(state, request.task_ref)
    return None


def _unfinished(state: WorkflowState) -> list[str]:
    """Tasks to start again on retry: failed (not optional), timed out, or never finished."""
    return [
        task.task_id
        for task in state.tasks.values()
        if (task.failed and not task.optional) or not task.status.terminal
    ]


def _latest(state: WorkflowState, ref: str) -> TaskState | None:
    if ref in state.tasks:
        return state.tasks[ref]
    matches = [task for task in state.tasks.values() if task.ref_name == ref]
    return matches[-1] if matches else None


def _from_task(state: WorkflowState, ref: str) -> list[str]:
    """The task and everything scheduled after it, plus whatever had not finished."""
    start = _latest(state, ref)
    assert start is not None
    ids = list(state.tasks)
    later = ids[ids.index(start.task_id) :]
    return later + [tid for tid in ids if tid not in later and not state.tasks[tid].status.terminal]


def _skip_refusal(state: WorkflowState, ref: str) -> str | None:
    if state.status.terminal:
        return f"workflow is already {state.status}"
    task = _latest(state, ref)
    if task is not None:
        return f"task {task.task_id!r} is already {task.status}" if task.status.terminal else None
    refs = {t.taskReferenceName for t in walk_tasks(state.workflow_def.tasks)}
    return None if ref in refs else f"no task {ref!r} in the definition"


def _skip(em: Emitter, state: WorkflowState, request: SkipTask) -> None:
    task = _latest(state, request.task_ref)
    output = request.output if request.output is not None else {}
    if task is None:
        em.emit(TaskSkipped, task_id=request.task_ref, attempt=0, output=output)
    else:
        em.emit(TaskSkipped, task_id=task.task_id, attempt=task.attempt, output=output)
