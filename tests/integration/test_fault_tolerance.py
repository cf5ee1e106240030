"""Fault tolerance against the real broker: retries, timeouts, lifecycle.

The tests share one processor thread and one worker; timers across a processor restart are in
``test_timer_restart``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.records import (
    DeadLetter,
    PauseWorkflow,
    ResumeWorkflow,
    RetryWorkflow,
    TaskScheduled,
    TaskStatus,
    TaskTimedOut,
)
from orchestrator.errors import WorkflowNotFoundError
from orchestrator.processor.loop import Processor
from orchestrator.worker import Worker
from tests.helpers import assert_eventually
from tests.integration.test_bad_input import cli, dead_letters

pytestmark = pytest.mark.integration
Json = Any


class Behaviour:
    """Worker behaviour the tests switch: how many calls fail, which attempt hangs."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.fail_first = 0
        self.hang_first_s = 0.0

    def reset(self) -> None:
        """No call fails or hangs (calls stay counted per key; each test uses keys of its own)."""
        self.fail_first = 0
        self.hang_first_s = 0.0

    def work(self, data: dict[str, Json]) -> dict[str, Json]:
        key = str(data.get("key"))
        self.calls[key] = self.calls.get(key, 0) + 1
        call = self.calls[key]
        if call == 1 and self.hang_first_s:
            time.sleep(self.hang_first_s)
        if call <= self.fail_first:
            raise RuntimeError(f"flaky call {call}")
        return {"call": call}


@pytest.fixture(scope="module")
def topics(module_topics: Settings) -> Settings:
    """The topics every test of the module shares, with one processor and one worker.

    Each test runs workflows of its own ids, names and worker keys; the task definition of
    `flaky` one test registers applies to no other test's failures (the others fail only
    tasks with a task definition inline, which wins).
    """
    return module_topics


@pytest.fixture(scope="module")
def flaky_worker(topics: Settings) -> Iterator[Behaviour]:
    """A worker of task type `flaky` in a thread, driven by a Behaviour."""
    state = Behaviour()
    worker = Worker(name="faults")
    worker.task("flaky")(state.work)
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(topics,), kwargs={"concurrency": 4, "stop": stop}, daemon=True
    )
    thread.start()
    yield state
    stop.set()
    thread.join(30)


@pytest.fixture
def behaviour(flaky_worker: Behaviour) -> Behaviour:
    """The shared worker's Behaviour, with nothing failing or hanging to begin with."""
    flaky_worker.reset()
    return flaky_worker


def one_task(name: str, **task_extra: Json) -> Any:
    """A workflow of one `flaky` task keyed by the workflow input."""
    return parse_definition(
        {
            "name": name,
            "tasks": [
                {
                    "name": "flaky",
                    "taskReferenceName": "t",
                    "inputParameters": {"key": "${workflow.input.key}"},
                    **task_extra,
                }
            ],
        }
    )


def warm_up(client: Client) -> None:
    """Run one plain `flaky` task to the end, so the worker's consumer group has joined."""
    client.register([one_task("warm_up")])
    assert (
        client.wait(client.start("warm_up", input={"key": "warm"}), timeout=60).status
        == "COMPLETED"
    )


def test_retries_from_a_registered_task_definition(
    topics: Settings,
    client: Client,
    module_processor: Processor,
    behaviour: Behaviour,
    tmp_path: Path,
) -> None:
    """`taskdefs register` sets retries; two failures then a success complete the workflow."""
    behaviour.fail_first = 2
    taskdef = tmp_path / "flaky.json"
    taskdef.write_bytes(
        orjson.dumps(
            {"name": "flaky", "retryCount": 3, "retryDelaySeconds": 1, "retryLogic": "FIXED"}
        )
    )
    registered = cli(topics, "taskdefs", "register", str(taskdef))
    assert registered.returncode == 0, registered.stderr
    client.register([one_task("retrying")])
    state = client.wait(client.start("retrying", input={"key": "r1"}, workflow_id="r1"), timeout=60)
    assert (state.status, state.tasks["t"].attempt, state.output) == ("COMPLETED", 3, {"call": 3})
    delays = [e.retry_delay_ms for e in client.history("r1") if isinstance(e, TaskScheduled)]
    assert delays == [None, 1000, 1000]


def test_exhausted_retries_fail_and_dead_letter_then_retry_recovers(
    topics: Settings, client: Client, module_processor: Processor, behaviour: Behaviour
) -> None:
    """A task out of retries fails the workflow and lands in dead-letters; `retry` re-drives it."""
    behaviour.fail_first = 2
    client.register(
        [
            one_task(
                "exhaust", taskDefinition={"name": "flaky", "retryCount": 1, "retryDelaySeconds": 0}
            )
        ]
    )
    state = client.wait(client.start("exhaust", input={"key": "e1"}, workflow_id="e1"), timeout=60)
    assert state.status == "FAILED"
    letters = assert_eventually(
        lambda: [d for d in dead_letters(topics) if isinstance(d, DeadLetter) and d.key == "e1"],
        timeout=30,
    )
    assert "after 2 attempt(s)" in letters[0].reason
    assert letters[0].source_topic.endswith("tasks.flaky")
    client.request(RetryWorkflow(workflow_id="e1"))
    assert_eventually(lambda: client.status("e1").status == "COMPLETED", timeout=30)
    assert client.status("e1").tasks["t"].attempt == 3


def test_response_timeout_retries_a_hung_attempt(
    topics: Settings, client: Client, module_processor: Processor, behaviour: Behaviour
) -> None:
    """An attempt silent past responseTimeoutSeconds times out; the retry completes the run."""
    warm_up(client)  # a response timeout counts from dispatch: the worker must be there
    behaviour.hang_first_s = 6.0
    client.register(
        [
            one_task(
                "hangs",
                taskDefinition={
                    "name": "flaky",
                    "retryCount": 2,
                    "retryDelaySeconds": 0,
                    "responseTimeoutSeconds": 2,
                },
            )
        ]
    )
    state = client.wait(client.start("hangs", input={"key": "h1"}, workflow_id="h1"), timeout=60)
    assert state.status == "COMPLETED"
    timed_out = [e for e in client.history("h1") if isinstance(e, TaskTimedOut)]
    assert [(e.attempt, e.kind, e.retrying) for e in timed_out] == [(1, "RESPONSE_TIMEOUT", True)]


def test_pause_and_resume(
    topics: Settings, client: Client, module_processor: Processor, behaviour: Behaviour
) -> None:
    """A paused workflow schedules nothing new; resume lets it finish."""
    definition = parse_definition(
        {
            "name": "pausing",
            "tasks": [
                {"name": "h", "taskReferenceName": "h", "type": "HUMAN"},
                {"name": "flaky", "taskReferenceName": "t", "inputParameters": {"key": "p1"}},
            ],
        }
    )
    client.register([definition])
    client.start("pausing", workflow_id="p1")

    def waiting() -> bool:
        try:
            return "h" in client.status("p1").tasks
        except WorkflowNotFoundError:
            return False

    assert_eventually(waiting, timeout=30)
    client.request(PauseWorkflow(workflow_id="p1"))
    assert_eventually(lambda: client.status("p1").status == "PAUSED", timeout=30)
    client.signal("p1", "h")
    assert_eventually(
        lambda: client.status("p1").tasks["h"].status is TaskStatus.COMPLETED, timeout=30
    )
    assert "t" not in client.status("p1").tasks
    client.request(ResumeWorkflow(workflow_id="p1"))
    assert client.wait("p1", timeout=30).status == "COMPLETED"


def test_workers_acknowledge_tasks_with_a_poll_timeout(
    topics: Settings, client: Client, module_processor: Processor, behaviour: Behaviour
) -> None:
    """With pollTimeoutSeconds, the worker reports IN_PROGRESS on pick-up; no timeout fires."""
    warm_up(client)
    client.register(
        [
            one_task(
                "acked", taskDefinition={"name": "flaky", "retryCount": 0, "pollTimeoutSeconds": 5}
            )
        ]
    )
    state = client.wait(client.start("acked", input={"key": "a1"}, workflow_id="a1"), timeout=60)
    kinds = [type(e).__name__ for e in client.history("a1")]
    assert state.status == "COMPLETED"
    assert kinds == [
        "WorkflowStarted",
        "TaskScheduled",
        "TaskInProgress",
        "TaskCompleted",
        "WorkflowCompleted",
    ]
