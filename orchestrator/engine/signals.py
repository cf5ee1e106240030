"""Signals kept for a task that does not wait yet (``queueSignals``), and handed to it later.

A signal completes (or fails) a task that waits for one: WAIT, HUMAN, or an ``asyncComplete``
task. A session loops over a WAIT for the user's next message, and a message may arrive while
the run is busy between two WAITs. When the WAIT (or HUMAN) task's definition says
``"queueSignals": true`` in its ``inputParameters``, such a signal is recorded as
``SignalQueued`` instead of being rejected, and the next instance of that task takes the oldest
one as it starts (``SignalDequeued``, then its completion), in arrival order. Signals still
queued when a run continues as new go on to the successor run.
"""

from __future__ import annotations

from typing import Any

from orchestrator.dsl.model import WorkflowTask, walk_tasks
from orchestrator.engine.emitter import Emitter
from orchestrator.engine.records import ResultStatus, SignalDequeued, TaskCompleted, TaskFailed
from orchestrator.engine.state import WorkflowState

__all__ = ["QUEUE_SIGNALS", "queues_signals", "take_queued_signal"]

Json = Any
QUEUE_SIGNALS = "queueSignals"
_WAITING_TYPES = ("WAIT", "HUMAN")


def queues_signals(state: WorkflowState, task_ref: str) -> bool:
    """Whether the task named ``task_ref`` in the run's definition keeps early signals."""
    by_ref: dict[str, WorkflowTask] = state.memo(
        "defs-by-ref",
        lambda: {t.taskReferenceName: t for t in walk_tasks(state.workflow_def.tasks)},
    )
    task = by_ref.get(task_ref)
    return task is not None and _queues(task)


def _queues(task: WorkflowTask) -> bool:
    return task.type in _WAITING_TYPES and task.inputParameters.get(QUEUE_SIGNALS) is True


def take_queued_signal(em: Emitter, task: WorkflowTask, task_id: str) -> None:
    """If a signal was kept for ``task``, apply the oldest one to its new instance ``task_id``."""
    if not _queues(task):
        return
    ref = task.taskReferenceName
    kept = next((k for k in em.current.queued_signals if k["ref"] == ref), None)
    if kept is None:
        return
    em.emit(SignalDequeued, task_id=task_id, task_ref=ref)
    attempt = em.current.tasks[task_id].attempt
    status = ResultStatus(kept["status"])
    if status is ResultStatus.COMPLETED:
        output = kept["output"] if kept["output"] is not None else {}
        em.emit(TaskCompleted, task_id=task_id, attempt=attempt, output=output)
    else:
        em.emit(
            TaskFailed,
            task_id=task_id,
            attempt=attempt,
            reason=kept["reason"] or "failed by signal",
            terminal=status is ResultStatus.FAILED_WITH_TERMINAL_ERROR,
        )
