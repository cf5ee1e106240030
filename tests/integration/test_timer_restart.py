"""Timers across a processor restart: the processor as a child process, killed and started again.

Apart from ``test_fault_tolerance``, whose tests share one processor thread: here no processor
may run for a while, so the test has topics and processors of its own.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from orchestrator.client import Client
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import TaskCompleted
from orchestrator.engine.state import TaskState
from orchestrator.errors import WorkflowNotFoundError
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

SLEEPY = parse_definition(
    {
        "name": "sleepy",
        "tasks": [
            {
                "name": "w",
                "taskReferenceName": "w",
                "type": "WAIT",
                "inputParameters": {"duration": "3s"},
            }
        ],
    }
)


@pytest.mark.timeout(180)
def test_a_timer_due_while_no_processor_runs_fires_once_on_start(
    client: Client, processor_processes: Any
) -> None:
    """A WAIT that comes due while the processor is down completes once when it starts again."""
    client.register([SLEEPY])
    processor = processor_processes.start("timers")
    client.start("sleepy", workflow_id="s1")

    def scheduled() -> TaskState | None:
        try:
            return client.status("s1").tasks.get("w")
        except WorkflowNotFoundError:
            return None

    wait = assert_eventually(scheduled, timeout=60)
    processor_processes.kill(processor)
    assert wait.wait_until is not None
    assert not client.status("s1").tasks["w"].status.terminal, "the timer fired before the kill"
    # The timer comes due while no processor runs (that is the point of the test): wait for
    # its due time, which the log holds, rather than a guess.
    time.sleep(max(0.0, wait.wait_until / 1000 - time.time()) + 0.1)
    processor_processes.start("timers")
    state = client.wait("s1", timeout=60)
    assert state.status == "COMPLETED"
    completions = [
        e for e in client.history("s1") if isinstance(e, TaskCompleted) and e.task_id == "w"
    ]
    assert len(completions) == 1
