"""The processor's guarantees against the real broker: crashes, rebuild, scale-out."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.engine.evolve import fold
from orchestrator.engine.records import (
    TERMINAL_EVENTS,
    Event,
    TaskCompleted,
    TaskScheduled,
)
from orchestrator.engine.state import WorkflowState
from orchestrator.log.reader import read_events
from orchestrator.processor.rebuild import digest
from orchestrator.worker import Worker
from tests.helpers import assert_eventually

pytestmark = pytest.mark.integration

STEPS = 5
CHAIN = parse_definition(
    {
        "name": "chain",
        "version": 1,
        "tasks": [
            {
                "name": "add_one",
                "taskReferenceName": f"step{i}",
                "inputParameters": {
                    "v": "${workflow.input.v}" if i == 1 else f"${{step{i - 1}.output.v}}"
                },
            }
            for i in range(1, STEPS + 1)
        ],
        "outputParameters": {"v": f"${{step{STEPS}.output.v}}"},
    }
)


def chain_worker(delay: float) -> Worker:
    """A worker whose add_one task returns v + 1 after ``delay`` seconds."""
    worker = Worker(name="chain")

    @worker.task("add_one")
    def add_one(task_input: dict[str, int]) -> dict[str, int]:
        time.sleep(delay)
        return {"v": task_input["v"] + 1}

    return worker


@pytest.fixture
def running_worker(topics: Settings) -> Iterator[None]:
    """The chain worker in a thread: 20 ms per task, 4 at a time."""
    stop = threading.Event()
    worker = chain_worker(0.02)
    thread = threading.Thread(
        target=worker.run, args=(topics,), kwargs={"concurrency": 4, "stop": stop}, daemon=True
    )
    thread.start()
    yield
    stop.set()
    thread.join(30)


def fold_all(settings: Settings) -> tuple[dict[str, list[Event]], dict[str, WorkflowState]]:
    """Every workflow's events from the log, and their fold."""
    by_workflow: dict[str, list[Event]] = {}
    for event in read_events(settings):
        by_workflow.setdefault(event.workflow_id, []).append(event)
    states = {wid: fold(events) for wid, events in by_workflow.items()}  # type: ignore[arg-type]
    return by_workflow, states  # type: ignore[return-value]


def completed_count(settings: Settings) -> int:
    """How many workflows have a terminal event in the log."""
    return sum(isinstance(e, TERMINAL_EVENTS) for e in read_events(settings))


def assert_exactly_once(by_workflow: dict[str, list[Event]]) -> None:
    """No attempt scheduled or completed twice; seqs gap-free; one terminal event each."""
    for workflow_id, events in by_workflow.items():
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), workflow_id
        scheduled = Counter((e.task_id, e.attempt) for e in events if isinstance(e, TaskScheduled))
        completed = Counter((e.task_id, e.attempt) for e in events if isinstance(e, TaskCompleted))
        assert max(scheduled.values()) == 1, f"{workflow_id} scheduled twice: {scheduled}"
        assert max(completed.values()) == 1, f"{workflow_id} completed twice: {completed}"
        assert sum(isinstance(e, TERMINAL_EVENTS) for e in events) == 1, workflow_id


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_processor_three_times_loses_and_duplicates_nothing(
    topics: Settings, client: Client, processor_processes, running_worker: None, tmp_path: Path
) -> None:
    """200 five-task workflows survive three kill -9s of the processor, each exactly once."""
    client.register([CHAIN])
    processor = processor_processes.start("crashy")
    workflows = {f"wf-{i:03d}": i for i in range(200)}
    for workflow_id, value in workflows.items():
        client.start("chain", input={"v": value}, workflow_id=workflow_id)
    rng = random.Random(7)
    kills = 0
    for _ in range(3):
        time.sleep(rng.uniform(1.0, 4.0))
        processor_processes.kill(processor)
        kills += 1
        processor = processor_processes.start("crashy")
    assert_eventually(
        lambda: completed_count(topics) == len(workflows),
        timeout=180,
        interval=1.0,
        message="not every workflow reached a terminal event",
    )
    by_workflow, states = fold_all(topics)
    assert kills == 3
    assert set(states) == set(workflows)
    for workflow_id, value in workflows.items():
        assert states[workflow_id].status == "COMPLETED", states[workflow_id].reason
        assert states[workflow_id].output == {"v": value + STEPS}
    assert_exactly_once(by_workflow)

    processor_processes.kill(processor, sig=15)
    live = digest(topics)
    rebuilt_dir = tmp_path / "rebuilt"
    rebuilt = topics.model_copy(update={"state_dir": rebuilt_dir})
    subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "--state-dir", str(rebuilt_dir), "rebuild"],
        env=_env(topics),
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert digest(rebuilt) == live
    assert len(live) == topics.partitions


def _env(settings: Settings) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "ORCH_BOOTSTRAP": settings.bootstrap,
        "ORCH_TOPIC_PREFIX": settings.topic_prefix,
        "ORCH_PARTITIONS": str(settings.partitions),
    }


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_processors_share_partitions_and_hand_over(
    topics: Settings, client: Client, processor_processes, running_worker: None, tmp_path: Path
) -> None:
    """Two instances split six partitions; stopping one moves its share; all workflows finish."""
    client.register([CHAIN])
    first = processor_processes.start("a", tmp_path / "state-a")
    processor_processes.start("b", tmp_path / "state-b")
    workflows = {f"two-{i:03d}": i for i in range(60)}
    for workflow_id, value in list(workflows.items())[:30]:
        client.start("chain", input={"v": value}, workflow_id=workflow_id)
    assert_eventually(lambda: completed_count(topics) == 30, timeout=90, interval=0.5)
    owned_a = {p.name for p in (tmp_path / "state-a").rglob("p0*")}
    owned_b = {p.name for p in (tmp_path / "state-b").rglob("p0*")}
    assert owned_a, "instance a should own partitions"
    assert owned_b, "instance b should own partitions"
    assert not owned_a & owned_b, f"partitions owned twice: {owned_a & owned_b}"

    processor_processes.kill(first, sig=15)
    for workflow_id, value in list(workflows.items())[30:]:
        client.start("chain", input={"v": value}, workflow_id=workflow_id)
    assert_eventually(lambda: completed_count(topics) == 60, timeout=120, interval=0.5)
    by_workflow, states = fold_all(topics)
    assert all(states[w].output == {"v": v + STEPS} for w, v in workflows.items())
    assert_exactly_once(by_workflow)
    owned_b_after = {p.name for p in (tmp_path / "state-b").rglob("p0*")}
    assert owned_b_after == {f"p{n:04d}" for n in range(topics.partitions)}
