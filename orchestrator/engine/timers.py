"""The timers a workflow's state asks for: delayed dispatches and WAIT deadlines."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.engine.records import TimerFired, TimerKind
from orchestrator.engine.state import WorkflowState


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
    for task in state.tasks.values():
        if task.status.terminal:
            continue
        if task.dispatch_at is not None:
            timers.append(
                Timer(
                    task.dispatch_at,
                    state.workflow_id,
                    task.task_id,
                    task.attempt,
                    TimerKind.DISPATCH,
                )
            )
        if task.wait_until is not None:
            timers.append(
                Timer(
                    task.wait_until, state.workflow_id, task.task_id, task.attempt, TimerKind.WAIT
                )
            )
    return timers
