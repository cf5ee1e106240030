"""The timers a workflow's state asks for: delayed dispatches, WAIT deadlines and timeouts."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.engine.faults import (
    poll_deadline,
    response_deadline,
    task_deadline,
    workflow_deadline,
)
from orchestrator.engine.records import TimerFired, TimerKind
from orchestrator.engine.state import TaskState, WorkflowState


@dataclass(frozen=True, order=True)
class Timer:
    """One pending timer; ordered by due time."""

    due_at: int
    workflow_id: str
    task_id: str
    attempt: int
    kind: TimerKind

    @property
    def key(self) -> str:
        """A stable key for the timer table: due time first, so a scan finds due ones first."""
        return f"{self.due_at:016d}/{self.workflow_id}/{self.task_id}/{self.attempt}/{self.kind}"

    def fired(self) -> TimerFired:
        """The engine input this timer becomes when it is due."""
        return TimerFired(
            workflow_id=self.workflow_id,
            task_id=self.task_id,
            attempt=self.attempt,
            kind=self.kind,
            due_at=self.due_at,
        )


def pending_timers(state: WorkflowState) -> list[Timer]:
    """Every timer the state is waiting on (none once the workflow ended)."""
    if state.status.terminal:
        return []
    timers = []
    deadline = workflow_deadline(state)
    if deadline is not None:
        timers.append(Timer(deadline, state.workflow_id, "", 0, TimerKind.WORKFLOW_TIMEOUT))
    for task in state.tasks.values():
        if not task.status.terminal:
            timers.extend(_task_timers(state.workflow_id, task))
    return timers


def _task_timers(workflow_id: str, task: TaskState) -> list[Timer]:
    due = {
        TimerKind.DISPATCH: task.dispatch_at,
        TimerKind.WAIT: task.wait_until,
        TimerKind.RESPONSE_TIMEOUT: response_deadline(task),
        TimerKind.TASK_TIMEOUT: task_deadline(task),
        TimerKind.POLL_TIMEOUT: poll_deadline(task),
    }
    return [
        Timer(at, workflow_id, task.task_id, task.attempt, kind)
        for kind, at in due.items()
        if at is not None
    ]
