"""The Conductor definitions of tests/conductor_defs end to end on the broker, then rebuilt.

One processor thread and one worker thread serve every case at once: registration, starts,
signals to HUMAN tasks, real WAIT timers, sub-workflows and fire-and-forget children. Then,
with the processor stopped, every definition is registered again with different logic, and a
rebuild from the events topic must reach the same state as the live processor: a run follows
the definition snapshot in its events, never what is registered later.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from orchestrator.client import Client
from orchestrator.config import Settings
from orchestrator.dsl import parse_definition
from orchestrator.dsl.durations import parse_duration
from orchestrator.dsl.model import WorkflowDef
from orchestrator.engine.evolve import fold
from orchestrator.engine.records import TERMINAL_EVENTS, Event
from orchestrator.engine.state import WorkflowState
from orchestrator.errors import WorkflowNotFoundError
from orchestrator.log.reader import read_events
from orchestrator.processor.rebuild import digest, rebuild
from tests.conductor_defs.cases import Case, cases, definitions
from tests.conductor_defs.workers import worker
from tests.helpers import assert_eventually
from tests.integration.conftest import running_processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

Json = Any
WAIT_S = 90.0


@contextlib.contextmanager
def worker_running(settings: Settings) -> Iterator[None]:
    """The SIMPLE task handlers of tests/conductor_defs/workers.py in a thread."""
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run, args=(settings,), kwargs={"stop": stop, "grace_period": 2.0}
    )
    thread.daemon = True
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the worker did not stop"


def waiting_on(client: Client, workflow_id: str, ref: str) -> bool:
    """Whether the workflow waits for a signal to the task ``ref``, per its log."""
    try:
        state = client.status(workflow_id)
    except WorkflowNotFoundError:
        return False
    return any(
        task.ref_name == ref and task.awaiting_signal and not task.status.terminal
        for task in state.tasks.values()
    )


def run_case(client: Client, case: Case, workflow_id: str) -> None:
    """Send the case's signals, each once its task waits."""
    for signal in case.signals:
        assert_eventually(
            partial(waiting_on, client, workflow_id, signal.ref),
            timeout=WAIT_S,
            interval=0.25,
            message=f"{case.name}: {signal.ref} never waited for a signal",
        )
        client.signal(workflow_id, signal.ref, output=signal.output)


def assert_waited(state: WorkflowState) -> None:
    """Each WAIT with a duration completed no sooner than its duration after it began."""
    for task in state.tasks.values():
        if task.task_type == "WAIT" and (task.input or {}).get("duration"):
            waited = task.updated_at - task.scheduled_at
            assert waited >= parse_duration(task.input["duration"]), task.task_id


def all_workflows(settings: Settings) -> dict[str, WorkflowState]:
    """Every workflow in the log (children included), folded."""
    by_workflow: dict[str, list[Event]] = {}
    for event in read_events(settings):
        by_workflow.setdefault(event.workflow_id, []).append(event)
    return {wid: fold(events) for wid, events in by_workflow.items()}  # type: ignore[misc,arg-type]


def changed(definition: WorkflowDef) -> WorkflowDef:
    """The same name and version, other logic: SWITCH defaults that fail first, an extra task."""
    document = definition.to_json()

    def rework(tasks: list[dict[str, Json]]) -> None:
        for task in tasks:
            if task.get("type") in ("SWITCH", "DECISION"):
                ref = f"changed_{task['taskReferenceName']}"
                fail = {
                    "name": "changed_default",
                    "taskReferenceName": ref,
                    "type": "TERMINATE",
                    "inputParameters": {"terminationStatus": "FAILED"},
                }
                task["defaultCase"] = [fail, *task.get("defaultCase", [])]
            for branch in [
                *task.get("decisionCases", {}).values(),
                *task.get("forkTasks", []),
                task.get("loopOver", []),
            ]:
                rework(branch)

    rework(document["tasks"])
    document["tasks"].append({"name": "added_later", "taskReferenceName": "added_later"})
    return parse_definition(document, source=f"changed {definition.key}")


def test_conductor_cases_end_to_end_then_rebuild_matches_live(
    topics: Settings, client: Client, tmp_path: Path
) -> None:
    """Every case ends as expected on the broker; a rebuild after re-registration matches."""
    run = uuid4().hex[:6]
    started = {case.name: (case, f"{case.name}-{run}") for case in cases()}
    client.register(definitions())
    with running_processor(topics), worker_running(topics):
        for case, workflow_id in started.values():
            client.start(case.name, input=case.input, workflow_id=workflow_id)
        for case, workflow_id in started.values():
            run_case(client, case, workflow_id)
        for case, workflow_id in started.values():
            state = client.wait(workflow_id, timeout=WAIT_S)
            assert (str(state.status), state.output) == (case.status, case.output), (
                f"{case.name}: {state.reason}"
            )
            assert case.reason in (state.reason or ""), case.name
            assert_waited(state)
        assert_eventually(
            lambda: all(s.status.terminal for s in all_workflows(topics).values()),
            timeout=WAIT_S,
            interval=0.5,
            message="a child workflow did not finish",
        )
    states = all_workflows(topics)
    children = {wid for wid in states if wid.endswith(".start_audit.1")}
    assert {states[wid].output["entry"] for wid in children} == {
        "account_closed:ACC-12 by support-agent-3",
        "kitchen_sink by u-42",
    }
    assert sum(isinstance(event, TERMINAL_EVENTS) for event in read_events(topics)) == len(states)

    client.register([changed(definition) for definition in definitions()])
    live = digest(topics)
    rebuilt = topics.model_copy(update={"state_dir": tmp_path / "rebuilt"})
    rebuild(rebuilt)
    assert digest(rebuilt) == live
    assert len(live) == topics.partitions
