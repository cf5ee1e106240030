"""decide and evolve: what each request and result does to a workflow, and what it leaves alone."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from orchestrator.dsl import WorkflowDef, parse_definition
from orchestrator.engine import Decision, WorkflowState, decide, evolve, fold
from orchestrator.engine.records import (
    AnyEvent,
    Input,
    RequestRejected,
    ResultStatus,
    StartWorkflow,
    TaskCompleted,
    TaskFailed,
    TaskInProgress,
    TaskResult,
    TaskScheduled,
    TaskStatus,
    TerminateWorkflow,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRejected,
    WorkflowStarted,
    WorkflowStatus,
    WorkflowTerminated,
)
from orchestrator.errors import DefinitionError

WID = "wf-1"
NOW = 1_700_000_000_000


class Registry:
    """Definitions by name and version, as the processor's definition table serves them."""

    def __init__(self, *definitions: WorkflowDef) -> None:
        self.by_key: dict[tuple[str, int], WorkflowDef] = {}
        for definition in definitions:
            self.add(definition)

    def add(self, definition: WorkflowDef) -> None:
        """Register (or replace) ``definition`` under its name and version."""
        self.by_key[(definition.name, definition.version)] = definition

    def task_def(self, name: str) -> None:
        """No task types are registered: no retries, no timeouts."""
        return

    def get(self, name: str, version: int | None = None) -> WorkflowDef | None:
        """The definition at ``version``, or the latest one when None."""
        if version is None:
            versions = [v for (n, v) in self.by_key if n == name]
            return self.by_key[(name, max(versions))] if versions else None
        return self.by_key.get((name, version))


ORDER = parse_definition(
    {
        "name": "order",
        "version": 1,
        "tasks": [
            {
                "name": "charge_card",
                "taskReferenceName": "charge",
                "inputParameters": {"amount": "${workflow.input.amount}", "fixed": [1, "two"]},
            },
            {
                "name": "ship",
                "taskReferenceName": "ship",
                "inputParameters": {
                    "receipt": "${charge.output.receipt}",
                    "note": "paid ${charge.output.amount} for ${workflow.input.orderId}",
                    "first_line": "${charge.output.lines[0].sku}",
                },
            },
        ],
        "outputParameters": {
            "tracking": "${ship.output.tracking}",
            "charged": "${charge.output.amount}",
        },
    }
)
NO_OUTPUTS = parse_definition(
    {
        "name": "plain",
        "tasks": [
            {"name": "a", "taskReferenceName": "a"},
            {"name": "b", "taskReferenceName": "b"},
        ],
    }
)


class Run:
    """Drives one workflow as the processor does: decide, then evolve every emitted event."""

    def __init__(self, registry: Registry, workflow_id: str = WID) -> None:
        self.registry = registry
        self.workflow_id = workflow_id
        self.state: WorkflowState | None = None
        self.events: list[AnyEvent] = []
        self.now = NOW

    def apply(self, item: Input) -> Decision:
        """Decide ``item`` at the next millisecond and fold its events into the state."""
        self.now += 1
        decision = decide(self.state, item, self.registry, self.now)
        for event in decision.events:
            self.state = evolve(self.state, event)
        self.events.extend(decision.events)
        return decision

    def start(self, name: str = "order", version: int | None = 1, **input_: Any) -> Decision:
        """Send a StartWorkflow for ``name``."""
        return self.apply(
            StartWorkflow(
                workflow_id=self.workflow_id,
                name=name,
                version=version,
                input=input_,
                correlation_id="corr",
            )
        )

    def result(
        self,
        task_id: str,
        status: ResultStatus = ResultStatus.COMPLETED,
        output: Any = None,
        attempt: int = 1,
        **fields: Any,
    ) -> Decision:
        """Send a TaskResult for ``task_id``."""
        return self.apply(
            TaskResult(
                workflow_id=self.workflow_id,
                task_id=task_id,
                attempt=attempt,
                status=status,
                output=output,
                worker_id="w-1",
                **fields,
            )
        )

    def terminate(self, reason: str = "") -> Decision:
        """Send a TerminateWorkflow."""
        return self.apply(TerminateWorkflow(workflow_id=self.workflow_id, reason=reason))

    @property
    def current(self) -> WorkflowState:
        """The state, which must exist."""
        assert self.state is not None
        return self.state


def snapshot(state: WorkflowState | None) -> bytes | None:
    """The state's JSON bytes, to compare before and after."""
    return None if state is None else orjson.dumps(state.to_json())


@pytest.fixture
def run() -> Run:
    """A fresh workflow run against a registry holding ORDER and NO_OUTPUTS."""
    return Run(Registry(ORDER, NO_OUTPUTS))


def finish_order(run: Run) -> None:
    """Start ORDER and complete both tasks."""
    run.start(amount=42, orderId="o-9")
    run.result("charge", output={"receipt": "r-1", "amount": 42, "lines": [{"sku": "s-1"}]})
    run.result("ship", output={"tracking": "TRK"})


# Happy path -------------------------------------------------------------------------------------


def test_start_emits_started_then_schedules_the_first_task(run: Run) -> None:
    """A start emits WorkflowStarted (seq 1) and TaskScheduled for the first task (seq 2)."""
    decision = run.start(amount=42, orderId="o-9")
    assert decision.ignored is None
    started, scheduled = decision.events
    assert isinstance(started, WorkflowStarted)
    assert (started.seq, started.name, started.version) == (1, "order", 1)
    assert started.input == {"amount": 42, "orderId": "o-9"}
    assert started.correlation_id == "corr"
    assert started.definition == ORDER.to_json()
    assert isinstance(scheduled, TaskScheduled)
    assert (scheduled.seq, scheduled.task_id, scheduled.ref_name) == (2, "charge", "charge")
    assert (scheduled.task_type, scheduled.attempt) == ("charge_card", 1)
    assert scheduled.input == {"amount": 42, "fixed": [1, "two"]}
    assert {(e.workflow_id, e.at) for e in decision.events} == {(WID, run.now)}
    assert run.current.status is WorkflowStatus.RUNNING
    assert run.current.tasks["charge"].status is TaskStatus.SCHEDULED


def test_completed_task_schedules_the_next_with_inputs_from_its_output(run: Run) -> None:
    """Completing a task emits TaskCompleted and schedules the next task with resolved inputs."""
    run.start(amount=42, orderId="o-9")
    decision = run.result(
        "charge", output={"receipt": "r-1", "amount": 42, "lines": [{"sku": "s-1"}]}
    )
    completed, scheduled = decision.events
    assert isinstance(completed, TaskCompleted)
    assert (completed.seq, completed.task_id, completed.attempt) == (3, "charge", 1)
    assert completed.worker_id == "w-1"
    assert isinstance(scheduled, TaskScheduled)
    assert (scheduled.seq, scheduled.task_id, scheduled.task_type) == (4, "ship", "ship")
    assert scheduled.input == {"receipt": "r-1", "note": "paid 42 for o-9", "first_line": "s-1"}


def test_last_task_completes_the_workflow_with_output_parameters(run: Run) -> None:
    """After the last task, WorkflowCompleted carries the resolved outputParameters."""
    finish_order(run)
    assert [type(e) for e in run.events] == [
        WorkflowStarted,
        TaskScheduled,
        TaskCompleted,
        TaskScheduled,
        TaskCompleted,
        WorkflowCompleted,
    ]
    assert [e.seq for e in run.events] == [1, 2, 3, 4, 5, 6]
    done = run.events[-1]
    assert isinstance(done, WorkflowCompleted)
    assert done.output == {"tracking": "TRK", "charged": 42}
    assert run.current.status is WorkflowStatus.COMPLETED
    assert run.current.output == {"tracking": "TRK", "charged": 42}
    assert run.current.seq == 6
    assert {t.status for t in run.current.tasks.values()} == {TaskStatus.COMPLETED}


def test_output_is_last_task_output_without_output_parameters(run: Run) -> None:
    """With empty outputParameters the workflow's output is the last task's output."""
    run.start("plain")
    run.result("a", output={"from": "a"})
    decision = run.result("b", output={"from": "b", "n": [1, 2]})
    done = decision.events[-1]
    assert isinstance(done, WorkflowCompleted)
    assert done.output == {"from": "b", "n": [1, 2]}
    assert run.current.output == {"from": "b", "n": [1, 2]}


def test_start_without_version_takes_the_latest(run: Run) -> None:
    """A start with version None runs the highest registered version, and records it."""
    v2 = parse_definition({**ORDER.to_json(), "version": 2})
    run.registry.add(v2)
    started = run.start(version=None, amount=1).events[0]
    assert isinstance(started, WorkflowStarted)
    assert started.version == 2
    assert run.current.version == 2


def test_start_without_input_has_empty_input(run: Run) -> None:
    """A start whose input is None begins with input {}."""
    run.apply(StartWorkflow(workflow_id=WID, name="plain"))
    assert run.current.input == {}


# Rejections and ignored inputs ----------------------------------------------------------------


def test_unknown_definition_is_rejected(run: Run) -> None:
    """A start naming no registered definition emits WorkflowRejected and the run is FAILED."""
    decision = run.start("nope", version=3, x=1)
    assert decision.ignored is None
    (rejected,) = decision.events
    assert isinstance(rejected, WorkflowRejected)
    assert (rejected.seq, rejected.name, rejected.version) == (1, "nope", 3)
    assert rejected.input == {"x": 1}
    assert "unknown workflow definition 'nope'" in rejected.reason
    assert "version 3" in rejected.reason
    assert run.current.status is WorkflowStatus.FAILED
    assert run.current.reason == rejected.reason
    assert run.current.tasks == {}


def test_unknown_version_is_rejected(run: Run) -> None:
    """A start naming a known definition at an unregistered version is rejected."""
    (rejected,) = run.start("order", version=9).events
    assert isinstance(rejected, WorkflowRejected)
    assert "version 9 not registered" in rejected.reason


def test_unknown_definition_without_version_is_rejected(run: Run) -> None:
    """With version None the rejection says no version is registered."""
    (rejected,) = run.start("nope", version=None).events
    assert isinstance(rejected, WorkflowRejected)
    assert "any version" in rejected.reason


@pytest.mark.parametrize("first", ["order", "nope"])
def test_duplicate_start_is_ignored(run: Run, first: str) -> None:
    """A second start for an existing (running or rejected) workflow id emits nothing."""
    run.start(first)
    before = snapshot(run.state)
    decision = run.start("plain")
    assert decision.events == []
    assert decision.ignored is not None
    assert f"workflow {WID} already exists" in decision.ignored
    assert snapshot(run.state) == before


def test_result_for_unknown_workflow_is_ignored(run: Run) -> None:
    """A result for a workflow that never started emits nothing and creates no state."""
    decision = run.result("charge")
    assert decision.events == []
    assert decision.ignored == f"result for unknown workflow {WID}"
    assert run.state is None


@pytest.mark.parametrize(
    ("task_id", "attempt", "reason"),
    [
        ("ghost", 1, "result for unknown task 'ghost'"),
        ("charge", 2, "stale result for attempt 2 (current attempt is 1)"),
        ("charge", 0, "stale result for attempt 0 (current attempt is 1)"),
        ("ship", 1, "result for unknown task 'ship'"),
    ],
)
def test_result_that_does_not_match_the_current_attempt_is_ignored(
    run: Run, task_id: str, attempt: int, reason: str
) -> None:
    """Results for unknown or not-yet-scheduled tasks or other attempts emit nothing."""
    run.start(amount=1)
    before = snapshot(run.state)
    decision = run.result(task_id, attempt=attempt)
    assert decision.events == []
    assert decision.ignored == reason
    assert snapshot(run.state) == before


@pytest.mark.parametrize("status", list(ResultStatus))
def test_duplicate_result_is_ignored(run: Run, status: ResultStatus) -> None:
    """A result for an attempt that already completed emits nothing, whatever its status."""
    run.start("plain")
    run.result("a", output={"v": 1})
    before = snapshot(run.state)
    decision = run.result("a", status, output={"v": 2})
    assert decision.events == []
    assert decision.ignored == "duplicate result: attempt 1 is already COMPLETED"
    assert snapshot(run.state) == before


@pytest.mark.parametrize("status", list(ResultStatus))
def test_result_for_finished_workflow_is_ignored(run: Run, status: ResultStatus) -> None:
    """After a workflow ends, results for any of its tasks emit nothing."""
    run.start("plain")
    run.terminate()
    before = snapshot(run.state)
    decision = run.result("a", status)
    assert decision.events == []
    assert decision.ignored == "result for a workflow that is already TERMINATED"
    assert snapshot(run.state) == before


# Failures and progress --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "terminal"),
    [(ResultStatus.FAILED, False), (ResultStatus.FAILED_WITH_TERMINAL_ERROR, True)],
)
def test_failed_task_fails_the_workflow(run: Run, status: ResultStatus, terminal: bool) -> None:
    """A failed result emits TaskFailed (terminal flag per status) then WorkflowFailed naming it."""
    run.start(amount=1)
    decision = run.result("charge", status, reason="card declined", error_type="Declined")
    failed, workflow_failed = decision.events
    assert isinstance(failed, TaskFailed)
    assert (failed.seq, failed.task_id, failed.attempt) == (3, "charge", 1)
    assert (failed.reason, failed.error_type, failed.terminal) == (
        "card declined",
        "Declined",
        terminal,
    )
    assert isinstance(workflow_failed, WorkflowFailed)
    assert workflow_failed.seq == 4
    assert workflow_failed.task_id == "charge"
    assert workflow_failed.reason == "task 'charge' failed: card declined"
    assert run.current.status is WorkflowStatus.FAILED
    assert run.current.reason == workflow_failed.reason
    assert run.current.tasks["charge"].status is TaskStatus.FAILED
    assert run.current.tasks["charge"].reason == "card declined"
    assert "ship" not in run.current.tasks


def test_failure_without_reason_gets_one(run: Run) -> None:
    """A failure the worker sent without a reason still explains itself."""
    run.start(amount=1)
    failed, workflow_failed = run.result("charge", ResultStatus.FAILED).events
    assert isinstance(failed, TaskFailed)
    assert failed.reason == "the worker reported a failure without a reason"
    assert isinstance(workflow_failed, WorkflowFailed)
    assert "the worker reported a failure without a reason" in workflow_failed.reason


def test_in_progress_result_marks_the_task_in_progress(run: Run) -> None:
    """IN_PROGRESS emits TaskInProgress; the workflow keeps running and can still complete."""
    run.start("plain")
    (progress,) = run.result("a", ResultStatus.IN_PROGRESS, output={"pct": 50}).events
    assert isinstance(progress, TaskInProgress)
    assert (progress.seq, progress.task_id, progress.attempt) == (3, "a", 1)
    assert (progress.output, progress.worker_id) == ({"pct": 50}, "w-1")
    assert run.current.status is WorkflowStatus.RUNNING
    assert run.current.tasks["a"].status is TaskStatus.IN_PROGRESS
    assert run.current.tasks["a"].worker_id == "w-1"
    completed, scheduled = run.result("a", output={"done": True}).events
    assert isinstance(completed, TaskCompleted)
    assert isinstance(scheduled, TaskScheduled)
    assert scheduled.task_id == "b"


# Terminate --------------------------------------------------------------------------------------


def test_terminate_running_workflow(run: Run) -> None:
    """Terminating a running workflow emits WorkflowTerminated with the given reason."""
    run.start(amount=1)
    (terminated,) = run.terminate("operator said so").events
    assert isinstance(terminated, WorkflowTerminated)
    assert (terminated.seq, terminated.reason) == (3, "operator said so")
    assert run.current.status is WorkflowStatus.TERMINATED
    assert run.current.reason == "operator said so"


def test_terminate_without_reason_gets_one(run: Run) -> None:
    """A terminate request without a reason is recorded as 'terminated on request'."""
    run.start(amount=1)
    (terminated,) = run.terminate().events
    assert isinstance(terminated, WorkflowTerminated)
    assert terminated.reason == "terminated on request"


@pytest.mark.parametrize("ending", ["complete", "fail", "terminate", "reject"])
def test_terminate_finished_workflow_is_rejected(run: Run, ending: str) -> None:
    """Terminating an ended workflow emits RequestRejected and changes nothing but seq."""
    if ending == "complete":
        finish_order(run)
    elif ending == "fail":
        run.start(amount=1)
        run.result("charge", ResultStatus.FAILED, reason="x")
    elif ending == "terminate":
        run.start(amount=1)
        run.terminate("first")
    else:
        run.start("nope")
    before = run.current
    decision = run.terminate("again")
    assert decision.ignored is None
    (rejected,) = decision.events
    assert isinstance(rejected, RequestRejected)
    assert rejected.seq == before.seq + 1
    assert rejected.request_type == "TerminateWorkflow"
    assert rejected.reason == f"workflow is already {before.status}"
    after = run.current
    assert (after.status, after.reason, after.output) == (
        before.status,
        before.reason,
        before.output,
    )
    assert after.tasks == before.tasks
    assert after.seq == before.seq + 1


def test_terminate_unknown_workflow_is_ignored(run: Run) -> None:
    """Terminating a workflow that never started emits nothing."""
    decision = run.terminate()
    assert decision.events == []
    assert decision.ignored == f"terminate for unknown workflow {WID}"


# evolve -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        TaskScheduled(
            workflow_id=WID, seq=1, at=1, task_id="a", ref_name="a", task_type="a", attempt=1
        ),
        WorkflowCompleted(workflow_id=WID, seq=1, at=1),
        WorkflowTerminated(workflow_id=WID, seq=1, at=1, reason="r"),
        RequestRejected(workflow_id=WID, seq=1, at=1, request_type="x", reason="r"),
    ],
)
def test_evolve_before_start_raises(event: AnyEvent) -> None:
    """An event other than WorkflowStarted/Rejected before the workflow began is a ValueError."""
    with pytest.raises(ValueError, match="before the workflow began"):
        evolve(None, event)


def test_evolve_second_start_raises(run: Run) -> None:
    """A second WorkflowStarted for a workflow that began is a ValueError."""
    run.start(amount=1)
    started = run.events[0]
    with pytest.raises(ValueError, match="already began"):
        evolve(run.state, started)


def test_evolve_event_for_unknown_task_raises(run: Run) -> None:
    """An event about a task that was never scheduled is a ValueError."""
    run.start(amount=1)
    event = TaskCompleted(workflow_id=WID, seq=3, at=1, task_id="ghost", attempt=1)
    with pytest.raises(ValueError, match="unknown task 'ghost'"):
        evolve(run.state, event)


def test_evolve_does_not_change_its_input(run: Run) -> None:
    """evolve returns a new state and leaves the given one as it was."""
    run.start(amount=1)
    state = run.current
    before = snapshot(state)
    completed = TaskCompleted(workflow_id=WID, seq=3, at=9, task_id="charge", attempt=1, output={})
    after = evolve(state, completed)
    assert after is not state
    assert snapshot(state) == before
    assert after.tasks["charge"].status is TaskStatus.COMPLETED


def test_fold_of_the_events_equals_the_driven_state(run: Run) -> None:
    """Folding a run's events from nothing gives the state the run held."""
    finish_order(run)
    assert snapshot(fold(run.events)) == snapshot(run.state)


# Purity of decide --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        StartWorkflow(workflow_id=WID, name="order", version=1),
        TaskResult(workflow_id=WID, task_id="charge", attempt=1, status=ResultStatus.COMPLETED),
        TaskResult(workflow_id=WID, task_id="charge", attempt=1, status=ResultStatus.FAILED),
        TaskResult(workflow_id=WID, task_id="charge", attempt=1, status=ResultStatus.IN_PROGRESS),
        TaskResult(workflow_id=WID, task_id="charge", attempt=7, status=ResultStatus.COMPLETED),
        TerminateWorkflow(workflow_id=WID),
    ],
    ids=lambda item: f"{type(item).__name__}-{getattr(item, 'status', '')}",
)
def test_decide_does_not_mutate_the_state(run: Run, item: Input) -> None:
    """decide leaves the state it is given exactly as it was, whatever it decides."""
    run.start(amount=1, orderId="o")
    state = run.current
    before = snapshot(state)
    tasks = state.tasks
    decide(state, item, run.registry, NOW + 100)
    assert snapshot(state) == before
    assert state.tasks is tasks


def test_decide_events_continue_the_state_seq(run: Run) -> None:
    """The events of one decision are numbered state.seq + 1, + 2, ... without gaps."""
    run.start(amount=1)
    run.result("charge", output={"receipt": "r"})
    seqs = [e.seq for e in run.result("ship", output={}).events]
    assert seqs == [5, 6]


# Definition snapshot ----------------------------------------------------------------------------


def test_running_workflow_keeps_its_definition_snapshot(run: Run) -> None:
    """A redefinition under the same name and version does not change a running workflow."""
    run.start(amount=5, orderId="o-1")
    replacement = parse_definition(
        {
            "name": "order",
            "version": 1,
            "tasks": [{"name": "other", "taskReferenceName": "other"}],
            "outputParameters": {"changed": True},
        }
    )
    run.registry.add(replacement)
    assert run.registry.get("order", 1) == replacement
    # The state also passes through the store between inputs, as JSON.
    run.state = WorkflowState.from_json(orjson.loads(orjson.dumps(run.current.to_json())))
    scheduled = run.result("charge", output={"receipt": "r", "amount": 5, "lines": []}).events[-1]
    assert isinstance(scheduled, TaskScheduled)
    assert scheduled.task_id == "ship"
    done = run.result("ship", output={"tracking": "T"}).events[-1]
    assert isinstance(done, WorkflowCompleted)
    assert done.output == {"tracking": "T", "charged": 5}
    assert run.current.definition == ORDER.to_json()


def test_new_run_uses_the_new_definition(run: Run) -> None:
    """A start after a redefinition snapshots the definition the lookup returns then."""
    replacement = parse_definition(
        {"name": "order", "version": 1, "tasks": [{"name": "other", "taskReferenceName": "x"}]}
    )
    run.registry.add(replacement)
    scheduled = run.start(amount=1).events[-1]
    assert isinstance(scheduled, TaskScheduled)
    assert scheduled.task_id == "x"


# Known gaps -------------------------------------------------------------------------------------


def test_optional_task_is_not_silently_ignored() -> None:
    """A failed optional task does not fail the workflow (or optional is refused when parsing)."""
    document = {
        "name": "opt",
        "tasks": [
            {"name": "a", "taskReferenceName": "a", "optional": True},
            {"name": "b", "taskReferenceName": "b"},
        ],
    }
    try:
        definition = parse_definition(document)
    except DefinitionError:
        return
    run = Run(Registry(definition))
    run.start("opt")
    run.result("a", ResultStatus.FAILED, reason="flaky")
    assert run.current.status is WorkflowStatus.RUNNING
    assert "b" in run.current.tasks
