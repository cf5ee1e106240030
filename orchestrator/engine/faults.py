"""Fault tolerance: retries with backoff, timeouts, and saga compensation.

Every decision lands in an event: whether a failed attempt is retried (``retrying`` on the
TaskFailed / TaskTimedOut), after which delay (``retry_delay_ms`` and ``dispatch_at`` on the next
attempt's TaskScheduled), and which compensations run (CompensationStarted). The policy a task
runs under is the TaskDef snapshot its TaskScheduled recorded, so replay never looks it up again.
"""

from __future__ import annotations

import hashlib
from typing import Any

from orchestrator.dsl.model import WorkflowTask, walk_tasks
from orchestrator.engine.emitter import Emitter
from orchestrator.engine.records import (
    CompensationStarted,
    TaskFailed,
    TaskScheduled,
    TaskStatus,
    TaskTimedOut,
    TimeoutAlerted,
    TimerFired,
    TimerKind,
    WorkflowFailed,
)
from orchestrator.engine.state import TaskState, WorkflowState

Json = Any
COMPENSATE_SUFFIX = "__compensate"


def retry_delay_ms(policy: dict[str, Json], attempt: int, jitter_key: str) -> int:
    """The delay before attempt ``attempt + 1`` under ``policy`` (capped, with jitter)."""
    base = int(policy.get("retryDelaySeconds", 0)) * 1000
    logic = policy.get("retryLogic", "FIXED")
    if logic == "LINEAR_BACKOFF":
        delay = base * int(policy.get("backoffScaleFactor", 1)) * attempt
    elif logic == "EXPONENTIAL_BACKOFF":
        delay = base * 2 ** (attempt - 1)
    else:
        delay = base
    cap = int(policy.get("maxRetryDelaySeconds", 0)) * 1000
    if cap:
        delay = min(delay, cap)
    jitter = int(policy.get("retryJitterPercent", 0))
    if jitter and delay:
        # Deterministic per (workflow, task, attempt): the engine has no randomness.
        spread = int.from_bytes(hashlib.sha256(jitter_key.encode()).digest()[:4], "big") / 2**32
        delay = int(delay * (1 + jitter / 100 * (2 * spread - 1)))
    return max(delay, 0)


def can_retry(task: TaskState) -> bool:
    """Whether the task's policy allows another attempt after the current one."""
    policy = task.policy or {}
    return task.worker and task.attempt <= int(policy.get("retryCount", 0))


def retry(em: Emitter, task: TaskState) -> None:
    """Schedule the next attempt of ``task`` after its backoff delay."""
    delay = retry_delay_ms(
        task.policy or {}, task.attempt, f"{em.workflow_id}/{task.task_id}/{task.attempt}"
    )
    em.emit(
        TaskScheduled,
        task_id=task.task_id,
        ref_name=task.ref_name,
        task_type=task.task_type,
        attempt=task.attempt + 1,
        input=task.input,
        worker=task.worker,
        optional=task.optional,
        async_complete=task.async_complete,
        dispatch_at=em.now + delay if delay else None,
        policy=task.policy,
        retry_delay_ms=delay,
    )


def fail_attempt(
    em: Emitter,
    task: TaskState,
    reason: str,
    *,
    error_type: str | None = None,
    terminal: bool = False,
    worker_id: str = "",
) -> bool:
    """Record a failed attempt and retry it if allowed; True when a retry was scheduled."""
    retrying = not terminal and can_retry(task)
    em.emit(
        TaskFailed,
        task_id=task.task_id,
        attempt=task.attempt,
        reason=reason,
        error_type=error_type,
        terminal=terminal,
        worker_id=worker_id,
        retrying=retrying,
    )
    if retrying:
        retry(em, task)
    return retrying


def time_out_attempt(em: Emitter, task: TaskState, kind: TimerKind, reason: str) -> bool:
    """Record a timed-out attempt and retry it if allowed; True when a retry was scheduled."""
    retrying = can_retry(task)
    em.emit(
        TaskTimedOut,
        task_id=task.task_id,
        attempt=task.attempt,
        kind=str(kind),
        reason=reason,
        retrying=retrying,
    )
    if retrying:
        retry(em, task)
    return retrying


# Timeouts ---------------------------------------------------------------------------------------


def response_deadline(task: TaskState) -> int | None:
    """When the attempt times out for lack of a result or heartbeat, if its policy says so."""
    seconds = int((task.policy or {}).get("responseTimeoutSeconds", 0))
    if not seconds or task.dispatched_at is None or task.awaiting_signal:
        return None
    return max(task.dispatched_at, task.heartbeat_at or 0) + seconds * 1000


def poll_deadline(task: TaskState) -> int | None:
    """When the attempt times out for lack of a worker picking it up (pollTimeoutSeconds).

    A command with ``ack`` makes the worker report IN_PROGRESS as it picks the task up.
    """
    seconds = int((task.policy or {}).get("pollTimeoutSeconds", 0))
    if not seconds or task.dispatched_at is None or task.status is not TaskStatus.SCHEDULED:
        return None
    return task.dispatched_at + seconds * 1000


def task_deadline(task: TaskState) -> int | None:
    """When the attempt exceeds its total time (timeoutSeconds), if its policy says so."""
    seconds = int((task.policy or {}).get("timeoutSeconds", 0))
    if not seconds or task.dispatched_at is None or task.alerted:
        return None
    return task.dispatched_at + seconds * 1000


def workflow_deadline(state: WorkflowState) -> int | None:
    """When the workflow exceeds its timeoutSeconds, if it has one."""
    seconds = state.workflow_def.timeoutSeconds if state.definition else 0
    if not seconds or state.timeout_alerted:
        return None
    return state.created_at + seconds * 1000


_DEADLINES = {
    TimerKind.RESPONSE_TIMEOUT: response_deadline,
    TimerKind.TASK_TIMEOUT: task_deadline,
    TimerKind.POLL_TIMEOUT: poll_deadline,
}


def on_timeout(em: Emitter, timer: TimerFired) -> str | None:
    """Act on a due timeout timer; the reason it was ignored, or None."""
    state = em.current
    if timer.kind is TimerKind.WORKFLOW_TIMEOUT:
        deadline = workflow_deadline(state)
        if deadline is None or deadline > em.now:
            return "workflow timeout no longer due"
        seconds = state.workflow_def.timeoutSeconds
        reason = f"workflow did not finish within {seconds} s"
        if state.workflow_def.timeoutPolicy == "ALERT_ONLY":
            em.emit(TimeoutAlerted, kind=str(timer.kind), reason=reason)
        else:
            fail_workflow(em, reason, None, timed_out=True)
        return None
    task = state.tasks[timer.task_id]
    deadline = _DEADLINES[timer.kind](task)
    if deadline is None or deadline > em.now:
        return f"{timer.kind} of {task.task_id!r} moved or cleared"
    if timer.kind is TimerKind.POLL_TIMEOUT:
        seconds = task.policy["pollTimeoutSeconds"]
        time_out_attempt(em, task, timer.kind, f"no worker picked the task up within {seconds} s")
        return None
    if timer.kind is TimerKind.RESPONSE_TIMEOUT:
        seconds = task.policy["responseTimeoutSeconds"]
        time_out_attempt(em, task, timer.kind, f"no result or heartbeat within {seconds} s")
        return None
    seconds, policy = task.policy["timeoutSeconds"], task.policy.get("timeoutPolicy", "TIME_OUT_WF")
    reason = f"task did not finish within {seconds} s"
    if policy == "ALERT_ONLY":
        em.emit(TimeoutAlerted, task_id=task.task_id, kind=str(timer.kind), reason=reason)
    elif policy == "RETRY":
        time_out_attempt(em, task, timer.kind, reason)
    else:
        em.emit(
            TaskTimedOut,
            task_id=task.task_id,
            attempt=task.attempt,
            kind=str(timer.kind),
            reason=reason,
        )
        fail_workflow(
            em, f"task {task.ref_name!r} timed out: {reason}", task.task_id, timed_out=True
        )
    return None


def fail_workflow(
    em: Emitter,
    reason: str,
    task_id: str | None,
    *,
    timed_out: bool = False,
    compensation: Json = None,
) -> None:
    """End the workflow FAILED (TIMED_OUT, COMPENSATION_FAILED), starting its failureWorkflow."""
    state = em.current
    failure_workflow = state.workflow_def.failureWorkflow if state.definition else None
    failure_id = f"{state.workflow_id}.failure.{state.seq + 1}" if failure_workflow else None
    em.emit(
        WorkflowFailed,
        reason=reason,
        task_id=task_id,
        timed_out=timed_out,
        compensation=compensation,
        failure_workflow_id=failure_id,
    )


# Compensation -----------------------------------------------------------------------------------


def compensation_steps(state: WorkflowState) -> list[dict[str, Json]]:
    """Compensations of the completed tasks that name one, latest completion first."""
    by_ref = state.memo(
        "defs-by-ref",
        lambda: {t.taskReferenceName: t for t in walk_tasks(state.workflow_def.tasks)},
    )
    steps = []
    for task in state.tasks.values():
        definition = by_ref.get(task.ref_name)
        done = task.status is TaskStatus.COMPLETED
        if definition is not None and definition.compensation is not None and done:
            steps.append(
                {
                    "task_id": task.task_id + COMPENSATE_SUFFIX,
                    "for": task.task_id,
                    "task": definition.compensation.model_dump(mode="json", exclude_defaults=True),
                }
            )
    return list(reversed(steps))


def start_compensation(em: Emitter, reason: str, task_id: str | None) -> bool:
    """Begin compensating instead of failing at once; False when nothing needs compensating."""
    steps = compensation_steps(em.current)
    if not steps:
        return False
    em.emit(CompensationStarted, reason=reason, task_id=task_id, steps=steps)
    return True


def compensation_task(step: dict[str, Json]) -> WorkflowTask:
    """The WorkflowTask a compensation step runs."""
    return WorkflowTask.model_validate(step["task"])
