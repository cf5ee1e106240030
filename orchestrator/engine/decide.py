"""``decide``: what happens to a workflow when a request, a result or a timer arrives.

Pure: time, definitions and script engines come in through the ``Environment``; nothing here
does I/O. Each event is applied to a scratch state as soon as it is emitted, so later
decisions in the same call see earlier ones (a completed task's output feeds the next input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, assert_never

from orchestrator.dsl.model import WorkflowDef
from orchestrator.dsl.validate import parse_definition
from orchestrator.engine import lifecycle
from orchestrator.engine.emitter import (
    Definitions,
    Emitter,
    Environment,
    RunawayError,
    Scripts,
)
from orchestrator.engine.faults import fail_attempt, on_timeout
from orchestrator.engine.human import escalate
from orchestrator.engine.records import (
    AnyEvent,
    Input,
    PauseWorkflow,
    RequestRejected,
    RerunWorkflow,
    RestartWorkflow,
    ResultStatus,
    ResumeWorkflow,
    RetryWorkflow,
    SignalForwarded,
    SignalQueued,
    SignalTask,
    SkipTask,
    StartWorkflow,
    TaskCompleted,
    TaskDispatched,
    TaskFailed,
    TaskInProgress,
    TaskResult,
    TerminateWorkflow,
    TimerFired,
    TimerKind,
    WorkflowFailed,
    WorkflowRejected,
    WorkflowStarted,
    WorkflowTerminated,
)
from orchestrator.engine.signals import queues_signals
from orchestrator.engine.state import TaskState, WorkflowState
from orchestrator.engine.walk import advance
from orchestrator.errors import OrchestratorError

Json = Any

__all__ = ["Decision", "Definitions", "Environment", "Scripts", "decide"]


@dataclass
class Decision:
    """The events an input produced, or why it produced none."""

    events: list[AnyEvent] = field(default_factory=list)
    ignored: str | None = None


def decide(
    state: WorkflowState | None,
    item: Input,
    definitions: Definitions,
    now: int,
    scripts: Scripts | None = None,
) -> Decision:
    """The events that ``item`` causes for the workflow whose current state is ``state``."""
    env = (
        Environment(definitions, now) if scripts is None else Environment(definitions, now, scripts)
    )
    em = Emitter(state, item.workflow_id, env)
    try:
        ignored = _dispatch(em, item)
    except RunawayError as exc:
        em = Emitter(state, item.workflow_id, env)
        em.emit(WorkflowFailed, reason=f"workflow stopped: {exc}")
        ignored = None
    return Decision(em.events, ignored)


def _dispatch(em: Emitter, item: Input) -> str | None:
    match item:
        case StartWorkflow():
            return _start(em, item)
        case TaskResult():
            return _result(em, item)
        case SignalTask():
            return _signal(em, item)
        case TerminateWorkflow():
            return _terminate(em, item)
        case TimerFired():
            return _timer(em, item)
        case (
            PauseWorkflow()
            | ResumeWorkflow()
            | RetryWorkflow()
            | RestartWorkflow()
            | RerunWorkflow()
            | SkipTask()
        ):
            return lifecycle.handle(em, item)
        case _:
            assert_never(item)


def _start(em: Emitter, request: StartWorkflow) -> str | None:
    if em.state is not None:
        return f"workflow {request.workflow_id} already exists ({em.state.status})"
    definition, problem = _definition(em.env.definitions, request)
    if definition is None:
        em.emit(
            WorkflowRejected,
            name=request.name,
            version=request.version,
            input=request.input,
            correlation_id=request.correlation_id,
            reason=problem,
            parent=request.parent,
        )
        return None
    em.emit(
        WorkflowStarted,
        name=definition.name,
        version=definition.version,
        input=request.input if request.input is not None else {},
        correlation_id=request.correlation_id,
        definition=definition.to_json(),
        variables=dict(definition.variables),
        parent=request.parent,
        continued_from=request.continued_from,
    )
    advance(em)
    return None


def _definition(definitions: Definitions, request: StartWorkflow) -> tuple[WorkflowDef | None, str]:
    if request.definition is not None:
        try:
            return parse_definition(request.definition, source="inline definition"), ""
        except OrchestratorError as exc:
            return None, f"invalid inline definition: {exc}"
    definition = definitions.get(request.name, request.version)
    if definition is None:
        wanted = "any version" if request.version is None else f"version {request.version}"
        return None, f"unknown workflow definition {request.name!r} ({wanted} not registered)"
    return definition, ""


def _unusable(state: WorkflowState | None, result: TaskResult) -> str | None:
    """Why ``result`` cannot apply to ``state`` (unknown, stale, duplicate), or None."""
    if state is None:
        return f"result for unknown workflow {result.workflow_id}"
    if state.status.terminal:
        return f"result for a workflow that is already {state.status}"
    task = state.tasks.get(result.task_id)
    if task is None:
        return f"result for unknown task {result.task_id!r}"
    return _stale(task, result)


def _stale(task: TaskState, result: TaskResult) -> str | None:
    """Why a result for an existing task is stale or a duplicate, or None."""
    if task.attempt != result.attempt:
        return f"stale result for attempt {result.attempt} (current attempt is {task.attempt})"
    if task.status.terminal:
        return f"duplicate result: attempt {task.attempt} is already {task.status}"
    if task.awaiting_signal:
        return f"task {task.task_id!r} waits for a signal, not a worker result"
    return None


def _result(em: Emitter, result: TaskResult) -> str | None:
    reason = _unusable(em.state, result)
    if reason is not None:
        return reason
    task = em.current.tasks[result.task_id]
    common = {"task_id": task.task_id, "attempt": task.attempt, "worker_id": result.worker_id}
    match result.status:
        case ResultStatus.IN_PROGRESS:
            callback = result.callback_after_seconds * 1000
            em.emit(
                TaskInProgress,
                output=result.output,
                callback_at=em.now + callback if callback else None,
                **common,
            )
            return None
        case ResultStatus.COMPLETED if task.async_complete:
            em.emit(TaskInProgress, output=result.output, awaiting_signal=True, **common)
            return None
        case ResultStatus.COMPLETED:
            em.emit(TaskCompleted, output=result.output, **common)
        case ResultStatus.FAILED | ResultStatus.FAILED_WITH_TERMINAL_ERROR:
            fail_attempt(
                em,
                task,
                result.reason or "the worker reported a failure without a reason",
                error_type=result.error_type,
                terminal=result.status is ResultStatus.FAILED_WITH_TERMINAL_ERROR,
                worker_id=result.worker_id,
            )
        case _:
            assert_never(result.status)
    advance(em)
    return None


def _signal(em: Emitter, signal: SignalTask) -> str | None:
    state = em.state
    if state is None:
        return f"signal for unknown workflow {signal.workflow_id}"
    if state.continued_as is not None:
        em.emit(
            SignalForwarded,
            to_workflow_id=state.continued_as,
            task_ref=signal.task_ref,
            status=signal.status,
            output=signal.output,
            reason=signal.reason,
        )
        return None
    task = _signalled_task(state, signal.task_ref)
    problem = _why_not_waiting(state, task, signal.task_ref)
    if problem is not None and _kept_for_later(state, signal):
        em.emit(
            SignalQueued,
            task_ref=signal.task_ref,
            status=signal.status,
            output=signal.output,
            reason=signal.reason,
        )
        return None
    if problem is not None:
        em.emit(RequestRejected, request_type="SignalTask", reason=problem)
        return None
    assert task is not None
    common = {"task_id": task.task_id, "attempt": task.attempt}
    if signal.status is ResultStatus.COMPLETED:
        em.emit(TaskCompleted, output=signal.output if signal.output is not None else {}, **common)
    elif signal.status is ResultStatus.IN_PROGRESS:
        em.emit(RequestRejected, request_type="SignalTask", reason="a signal must complete or fail")
        return None
    else:
        em.emit(
            TaskFailed,
            reason=signal.reason or "failed by signal",
            terminal=signal.status is ResultStatus.FAILED_WITH_TERMINAL_ERROR,
            **common,
        )
    advance(em)
    return None


def _kept_for_later(state: WorkflowState, signal: SignalTask) -> bool:
    """Whether a signal no task waits for now is queued: its task says ``queueSignals``."""
    if state.status.terminal or signal.status is ResultStatus.IN_PROGRESS:
        return False
    return queues_signals(state, signal.task_ref)


def _signalled_task(state: WorkflowState, task_ref: str) -> TaskState | None:
    if task_ref in state.tasks:
        return state.tasks[task_ref]
    matches = [task for task in state.tasks.values() if task.ref_name == task_ref]
    return matches[-1] if matches else None


def _why_not_waiting(state: WorkflowState, task: TaskState | None, task_ref: str) -> str | None:
    if state.status.terminal:
        return f"workflow is already {state.status}"
    if task is None:
        return f"no task {task_ref!r} in this workflow"
    if task.status.terminal:
        return f"task {task.task_id!r} is already {task.status}"
    if not task.awaiting_signal:
        return f"task {task.task_id!r} ({task.task_type}) is not waiting for a signal"
    return None


def _terminate(em: Emitter, request: TerminateWorkflow) -> str | None:
    state = em.state
    if state is None:
        return f"terminate for unknown workflow {request.workflow_id}"
    if state.status.terminal:
        em.emit(
            RequestRejected,
            request_type="TerminateWorkflow",
            reason=f"workflow is already {state.status}",
        )
        return None
    em.emit(WorkflowTerminated, reason=request.reason or "terminated on request")
    return None


def _timer(em: Emitter, timer: TimerFired) -> str | None:  # noqa: PLR0911 - one case per timer kind
    state = em.state
    if timer.kind is TimerKind.WORKFLOW_TIMEOUT:
        if state is None or state.status.terminal:
            return "workflow timeout for a workflow that ended"
        return on_timeout(em, timer)
    task = state.tasks.get(timer.task_id) if state is not None else None
    if state is None or state.status.terminal or task is None or task.attempt != timer.attempt:
        return "timer for a task that is gone"
    if task.status.terminal:
        return f"timer for task {task.task_id!r}, which is already {task.status}"
    match timer.kind:
        case TimerKind.DISPATCH if task.dispatch_at is not None:
            em.emit(TaskDispatched, task_id=task.task_id, attempt=task.attempt)
        case TimerKind.WAIT if task.task_type == "HUMAN":
            if task.wait_until is None or task.wait_until > em.now:
                return f"due time of {task.task_id!r} moved"
            escalate(em, task)
            advance(em)
        case TimerKind.WAIT if task.wait_until is not None:
            em.emit(TaskCompleted, task_id=task.task_id, attempt=task.attempt, output={})
            advance(em)
        case TimerKind.RESPONSE_TIMEOUT | TimerKind.TASK_TIMEOUT | TimerKind.POLL_TIMEOUT:
            ignored = on_timeout(em, timer)
            advance(em)
            return ignored
        case _:
            return f"timer {timer.kind} no longer set on task {task.task_id!r}"
    return None
