"""Waiting on the read model for a run to move: synchronous execution and synchronous updates.

A run settles when it ends, or when a task named in ``waitUntilTaskRef`` has been reached
(scheduled, at least). The waits poll the read model, which the projector folds in a thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Set

from orchestrator.api.service import Service
from orchestrator.engine.state import WorkflowState

POLL_S = 0.02


def settled(state: WorkflowState, refs: Set[str]) -> bool:
    """Whether the run ended or reached one of the tasks ``refs`` names."""
    if state.status.terminal:
        return True
    return any(task.ref_name in refs for task in state.tasks.values())


async def until(
    service: Service,
    workflow_id: str,
    done: Callable[[WorkflowState], bool],
    timeout: float,
) -> WorkflowState | None:
    """The run once ``done(run)`` or ``timeout`` seconds pass; None if it is not folded by then."""
    deadline = time.monotonic() + timeout
    while True:
        state = service.store.state(workflow_id)
        if (state is not None and done(state)) or time.monotonic() >= deadline:
            return state
        await asyncio.sleep(POLL_S)
